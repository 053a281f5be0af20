"""Blind A/B pairs of clips from two or more MusicGen models, for a listening test.

Every model generates one clip per prompt with the same seed, duration and sampling settings. All clips are then
brought to one integrated loudness (ITU-R BS.1770, measured with pyloudnorm), so that the louder clip does not
win. Each pair of models meets on each prompt, the two clips in a random A/B order, and the pairs are shuffled so
that neither their order nor their ids reveal the models.

The output folder::

    pairs.json   what raters may see: the questions, and per pair its prompt and the files of clips A and B
    clips/       the loudness-normalised clips (16-bit WAV), named by random ids
    raw/         the clips as generated (float WAV), so that a rerun resumes where it stopped
    key.json     which model made which clip (``key_path`` puts it elsewhere); the rating server never reads it

Rerunning with the same arguments resumes: clips already generated are kept. Rerunning with other models, prompts
or settings into the same folder is refused (the blind key would no longer match).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import math
import random
import secrets
import typing as tp
from pathlib import Path

import numpy as np

from eval.generate import SamplingSettings
from genrecraft.core import atomic
from genrecraft.core.audio import read_manifest, write_wav

logger = logging.getLogger(__name__)

PAIRS_FORMAT = "genrecraft-listening-pairs/1"
KEY_FORMAT = "genrecraft-listening-key/1"
SILENCE_LUFS = -70.0  # BS.1770's absolute gate: below it a clip has no measurable loudness

#: A model, or a function that loads it (called only when that model still has clips to generate).
ModelSource = tp.Union[tp.Any, tp.Callable[[], tp.Any]]


def _help(text: str, **kwargs: tp.Any) -> tp.Any:
    return dataclasses.field(metadata={"help": text}, **kwargs)


@dataclasses.dataclass(frozen=True)
class Question:
    """A 1-5 rating asked for each clip of each pair."""

    id: str = _help("short id used in the database and the CSV files, e.g. 'quality'")
    text: str = _help("the question as raters read it")
    low: str = _help("label of score 1")
    high: str = _help("label of score 5")

    def __post_init__(self):
        if not self.id.isidentifier():
            raise ValueError(f"Question.id={self.id!r} must be a short identifier such as 'quality'")


def default_questions(style: tp.Optional[str] = None) -> tp.Tuple[Question, ...]:
    """Audio quality, fit to the style (named when ``style`` is given) and fit to the text prompt."""
    style_text = f"How well does it fit the style \u201c{style}\u201d?" if style else \
        "How well does it fit the intended style of music?"
    return (Question("quality", "Audio quality: how good does it sound?", "Bad", "Excellent"),
            Question("style", style_text, "Not at all", "Perfectly"),
            Question("prompt", "How well does it match the text prompt?", "Not at all", "Perfectly"))


@dataclasses.dataclass(frozen=True)
class GenerationSettings(SamplingSettings):
    """MusicGen sampling settings, the same for every model of a listening test (:class:`SamplingSettings` with
    a listening test's defaults: 15 s clips, one prompt per batch so that each clip depends on its seed alone)."""

    duration: float = _help("seconds per clip", default=15.0)
    seed: int = _help("seed of the first prompt; prompt i uses seed + i with every model", default=0)
    batch_size: int = _help("prompts generated together. With more than 1, a clip depends on its batch (the same "
                            "for every model), not on its seed alone", default=1)

    def __post_init__(self):
        super().__post_init__()
        if not 1.0 <= self.duration <= 300.0:
            raise ValueError(f"duration={self.duration}: use 1 to 300 seconds (loudness needs at least 0.4 s)")


@dataclasses.dataclass(frozen=True)
class PairsConfig:
    """How the clips of a listening test are made and paired."""

    generation: GenerationSettings = _help("sampling settings", default_factory=GenerationSettings)
    loudness_lufs: float = _help("integrated loudness of every clip, LUFS (EBU R128's -23 leaves headroom)",
                                 default=-23.0)
    peak_dbfs: float = _help("highest sample peak allowed after normalisation; if a clip would exceed it, all "
                             "clips are set lower together", default=-1.0)
    against: tp.Optional[str] = _help("pair every other model with this one only (e.g. 'base'); default: every "
                                      "pair of models", default=None)
    style: tp.Optional[str] = _help("the target style, named in the style question (e.g. 'J-pop')", default=None)
    blind_seed: tp.Optional[int] = _help("seed of the A/B order and pair order; default: random, recorded in the "
                                         "key", default=None)

    def __post_init__(self):
        if not -60.0 <= self.loudness_lufs <= -5.0:
            raise ValueError(f"loudness_lufs={self.loudness_lufs}: use a level between -60 and -5 LUFS, e.g. -23")
        if not -20.0 <= self.peak_dbfs <= 0.0:
            raise ValueError(f"peak_dbfs={self.peak_dbfs}: use a ceiling between -20 and 0 dBFS, e.g. -1")


@dataclasses.dataclass(frozen=True)
class ListeningTest:
    """Where a listening test was written and what is in it."""

    folder: Path
    pairs_path: Path
    key_path: Path
    n_pairs: int
    n_clips: int
    loudness_lufs: float


# ---------------------------------------------------------------------------------------------------------------
# Prompts


def read_prompt_file(path: Path) -> tp.List[str]:
    """Prompts from a text file: one per line; blank lines and lines starting with ``#`` are skipped."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    prompts = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise ValueError(f"prompt file {path} has no prompts: write one description per line")
    return prompts


def find_manifest(source: Path) -> Path:
    """The test-split manifest of a dataset: ``source`` itself if it is a file, else the first of
    ``egs/test/data.jsonl``, ``test/data.jsonl``, ``data.jsonl``, ``egs/data.jsonl`` (or ``.jsonl.gz``) under it."""
    source = Path(source)
    if source.is_file():
        return source
    if not source.is_dir():
        raise FileNotFoundError(f"dataset or manifest not found: {source}")
    for rel in ("egs/test/data.jsonl", "test/data.jsonl", "data.jsonl", "egs/data.jsonl"):
        for candidate in (source / rel, source / f"{rel}.gz"):
            if candidate.is_file():
                return candidate
    raise ValueError(f"no manifest under {source}: expected egs/test/data.jsonl (as `python -m dataset_builder` "
                     "writes it) or pass the data.jsonl file itself")


def manifest_descriptions(source: Path) -> tp.List[str]:
    """Every distinct ``description`` in the MusicInfo sidecars (``<clip>.json``) of a manifest's clips, in order."""
    manifest = find_manifest(source)
    entries = read_manifest(manifest)
    seen: tp.Dict[str, None] = {}
    for entry in entries:
        text = entry["info"].get("description") if isinstance(entry["info"], dict) else None
        if isinstance(text, str) and text.strip():
            seen.setdefault(text.strip(), None)
    if not seen:
        raise ValueError(f"none of the {len(entries)} clips in {manifest} has a sidecar .json with a 'description'; "
                         "pass prompts with --prompts FILE instead")
    return list(seen)


def sample_descriptions(source: Path, k: int, seed: int = 0) -> tp.List[str]:
    """``k`` distinct descriptions drawn at random (seeded) from a dataset's test split (see :func:`find_manifest`)."""
    if k < 1:
        raise ValueError(f"k={k}: ask for at least one prompt")
    descriptions = manifest_descriptions(source)
    if len(descriptions) < k:
        logger.warning("only %d distinct descriptions in %s; using all of them instead of %d",
                       len(descriptions), source, k)
        k = len(descriptions)
    return random.Random(seed).sample(descriptions, k)


# ---------------------------------------------------------------------------------------------------------------
# Audio


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """BS.1770 integrated loudness in LUFS of ``audio`` [T] or [T, C]; ``-inf`` for silence."""
    import pyloudnorm

    meter = pyloudnorm.Meter(sample_rate)
    with np.errstate(divide="ignore"):
        return float(meter.integrated_loudness(np.asarray(audio, dtype=np.float64)))


def peak_dbfs(audio: np.ndarray) -> float:
    """Sample peak of ``audio`` in dBFS (``-inf`` for silence)."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def generate_clips(model: tp.Any, prompts: tp.Sequence[str], settings: GenerationSettings,
                   indices: tp.Optional[tp.Iterable[int]] = None,
                   ) -> tp.Iterator[tp.Tuple[int, np.ndarray]]:
    """Generate ``prompts`` with a loaded MusicGen, yielding ``(prompt index, audio [T, C] float32)``.

    Prompt ``i`` is generated right after ``torch.manual_seed(settings.seed + i)`` (with ``batch_size`` > 1: the
    seed of the first prompt of its batch; batches are fixed slices of ``prompts``), so two models given the same
    prompts and settings draw the same random numbers. ``indices`` limits the work to those prompts (their whole
    batches are generated, only those clips are yielded).
    """
    import torch

    wanted = set(range(len(prompts)) if indices is None else indices)
    settings.apply(model)
    bs = settings.batch_size
    for start in range(0, len(prompts), bs):
        batch = list(range(start, min(start + bs, len(prompts))))
        if not wanted.intersection(batch):
            continue
        torch.manual_seed(settings.seed + start)
        with torch.no_grad():
            wav = model.generate([prompts[i] for i in batch], progress=False)  # [B, C, T]
        audio = wav.detach().float().cpu().numpy()
        for row, i in enumerate(batch):
            if i in wanted:
                yield i, np.ascontiguousarray(audio[row].T)


def _read_json(path: Path, what: str) -> tp.Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{what} not found: {path}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} {path} is not valid JSON ({exc}); regenerate it with `python -m scripts.make_pairs`"
                         ) from exc


# ---------------------------------------------------------------------------------------------------------------
# The test


def _identity(models: tp.Sequence[str], specs: tp.Mapping[str, str], prompts: tp.Sequence[str],
              config: PairsConfig, questions: tp.Sequence[Question]) -> tp.Dict[str, tp.Any]:
    """What must be equal for a rerun to resume an existing test."""
    return {"models": {m: specs.get(m) for m in models}, "prompts": list(prompts),
            "generation": dataclasses.asdict(config.generation), "against": config.against,
            "loudness_target_lufs": config.loudness_lufs, "peak_dbfs": config.peak_dbfs,
            "questions": [dataclasses.asdict(q) for q in questions]}


def _plan(models: tp.Sequence[str], n_prompts: int, config: PairsConfig, blind_seed: int,
          ) -> tp.Tuple[tp.Dict[str, tp.Dict[str, tp.Any]], tp.List[tp.Dict[str, tp.Any]]]:
    """Clip ids and blind pairs: ``({clip_id: {model, prompt_index, seed}}, [pair, ...])``."""
    rng = random.Random(blind_seed)

    def token() -> str:
        return f"{rng.getrandbits(64):016x}"

    clip_ids: tp.Dict[tp.Tuple[str, int], str] = {}
    clips: tp.Dict[str, tp.Dict[str, tp.Any]] = {}
    gen = config.generation
    for model in models:
        for i in range(n_prompts):
            cid = token()
            clip_ids[model, i] = cid
            seed = gen.seed + (i // gen.batch_size) * gen.batch_size
            clips[cid] = {"model": model, "prompt_index": i, "seed": seed}
    if config.against is None:
        matchups = [(a, b) for k, a in enumerate(models) for b in models[k + 1:]]
    else:
        matchups = [(config.against, m) for m in models if m != config.against]
    pairs = []
    for i in range(n_prompts):
        for x, y in matchups:
            a, b = (x, y) if rng.random() < 0.5 else (y, x)
            pairs.append({"prompt_index": i, "a": a, "b": b, "clip_a": clip_ids[a, i], "clip_b": clip_ids[b, i]})
    rng.shuffle(pairs)
    width = len(str(len(pairs)))
    for n, pair in enumerate(pairs, start=1):
        pair["id"] = f"p{n:0{width}d}"
    return clips, pairs


def _check_resumable(key: tp.Dict[str, tp.Any], identity: tp.Dict[str, tp.Any], key_path: Path,
                     blind_seed: tp.Optional[int]) -> None:
    if key.get("format") != KEY_FORMAT:
        raise ValueError(f"{key_path} is not a listening-test key ({KEY_FORMAT}); choose another output folder")
    for field, value in identity.items():
        if key.get(field) != value:
            raise ValueError(
                f"{key_path.parent} already holds a listening test with a different {field!r} "
                f"(there: {key.get(field)!r}; now: {value!r}). Rerun with the same arguments to resume it, or "
                "choose a new output folder.")
    if blind_seed is not None and key.get("blind_seed") != blind_seed:
        raise ValueError(f"blind_seed={blind_seed} differs from the test in {key_path.parent} "
                         f"({key.get('blind_seed')}); leave it out to resume, or choose a new output folder")


def make_pairs(models: tp.Mapping[str, ModelSource], prompts: tp.Sequence[str], out: Path,
               config: PairsConfig = PairsConfig(), key_path: tp.Optional[Path] = None,
               specs: tp.Optional[tp.Mapping[str, str]] = None,
               questions: tp.Optional[tp.Sequence[Question]] = None) -> ListeningTest:
    """Generate, loudness-normalise and blind-pair clips of every model on every prompt, into ``out``.

    ``models`` maps a short name (``base``, ``full``, ``lora``) to a loaded MusicGen or to a function returning
    one; a function is called only if that model still has clips to make, and the model is released after its
    clips. ``specs`` (name -> how the model was named, e.g. ``facebook/musicgen-small``) is recorded in the key.
    Resumes an interrupted run with the same arguments. Returns what was written.
    """
    import torch
    from tqdm import tqdm

    names = list(models)
    if len(names) < 2:
        raise ValueError(f"models={names}: a listening test compares at least two models")
    for name in names:
        if not name or not all(ch.isalnum() or ch in "-_.+" for ch in name):
            raise ValueError(f"model name {name!r}: use letters, digits, '-', '_', '.' or '+' (e.g. 'base', 'lora')")
    if config.against is not None and config.against not in names:
        raise ValueError(f"against={config.against!r} is not one of the models {names}")
    prompts = [p.strip() for p in prompts]
    if not prompts or not all(prompts):
        raise ValueError("prompts must be a non-empty list of non-empty descriptions")
    specs = dict(specs or {})
    questions = tuple(questions or default_questions(config.style))
    out = Path(out).resolve()
    key_path = Path(key_path).resolve() if key_path else out / "key.json"
    pairs_path = out / "pairs.json"
    identity = _identity(names, specs, prompts, config, questions)

    if key_path.exists():
        key = _read_json(key_path, "listening-test key")
        _check_resumable(key, identity, key_path, config.blind_seed)
        logger.info("resuming the listening test in %s", out)
    else:
        if pairs_path.exists():
            raise ValueError(f"{pairs_path} exists but its key {key_path} does not: pass --key with the key's "
                             "path, or choose a new output folder")
        blind_seed = config.blind_seed if config.blind_seed is not None else secrets.randbits(31)
        clips, pairs = _plan(names, len(prompts), config, blind_seed)
        key = {"format": KEY_FORMAT, "test_id": secrets.token_hex(8),
               "created": _dt.datetime.now().isoformat(timespec="seconds"), **identity,
               "blind_seed": blind_seed, "style": config.style, "clips": clips, "pairs": pairs, "complete": False}
        atomic.write_json(key_path, key)

    clip_of = {(c["model"], c["prompt_index"]): cid for cid, c in key["clips"].items()}
    raw_dir, clip_dir = out / "raw", out / "clips"
    if key.get("complete") and pairs_path.exists() and all(
            (clip_dir / f"{cid}.wav").exists() for cid in key["clips"]):
        return _summary(out, pairs_path, key_path, key)

    # 1. Generate what is missing, one model at a time.
    gen = config.generation
    for name in names:
        missing = [i for i in range(len(prompts)) if not (raw_dir / f"{clip_of[name, i]}.wav").exists()]
        if not missing:
            continue
        source = models[name]
        model = source if hasattr(source, "generate") else source()
        try:
            with tqdm(total=len(missing), desc=f"generating {name}", unit="clip") as bar:
                for i, audio in generate_clips(model, prompts, gen, indices=missing):
                    cid = clip_of[name, i]
                    write_wav(raw_dir / f"{cid}.wav", audio.T, model.sample_rate, "FLOAT")  # [T, C] -> [C, T]
                    bar.update(1)
        finally:
            if model is not source:
                del model
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()

    # 2. Bring every clip to one loudness.
    level = _normalise_all(key, raw_dir, clip_dir, config)

    # 3. The public pairs file (no model names), then the key marked complete.
    public = {"format": PAIRS_FORMAT, "test_id": key["test_id"], "duration": gen.duration,
              "loudness_lufs": round(level, 2), "style": config.style,
              "questions": [dataclasses.asdict(q) for q in questions],
              "pairs": [{"id": p["id"], "prompt": prompts[p["prompt_index"]],
                         "a": f"clips/{p['clip_a']}.wav", "b": f"clips/{p['clip_b']}.wav"}
                        for p in sorted(key["pairs"], key=lambda p: p["id"])]}
    atomic.write_json(pairs_path, public)
    key["loudness_lufs"] = level
    key["complete"] = True
    atomic.write_json(key_path, key)
    return _summary(out, pairs_path, key_path, key)


def _normalise_all(key: tp.Dict[str, tp.Any], raw_dir: Path, clip_dir: Path, config: PairsConfig) -> float:
    """Write ``clips/`` at one common loudness; returns that level (lowered if a clip would pass the peak ceiling)."""
    import soundfile as sf

    measured = {}
    for cid in key["clips"]:
        audio, sr = sf.read(raw_dir / f"{cid}.wav", dtype="float32", always_2d=True)
        measured[cid] = (audio, sr, integrated_loudness(audio, sr), peak_dbfs(audio))
    audible = {cid: m for cid, m in measured.items() if m[2] > SILENCE_LUFS}
    level = config.loudness_lufs
    if audible:
        loudest_peak = max(peak - lufs for _, _, lufs, peak in audible.values()) + level
        if loudest_peak > config.peak_dbfs:
            level -= loudest_peak - config.peak_dbfs
            logger.warning("at %.1f LUFS a clip would peak at %.1f dBFS; all clips are set to %.1f LUFS instead",
                           config.loudness_lufs, loudest_peak, level)
    for cid, (audio, sr, lufs, peak) in measured.items():
        info = key["clips"][cid]
        info.update(sample_rate=int(sr), raw_lufs=round(lufs, 2) if math.isfinite(lufs) else None,
                    raw_peak_dbfs=round(peak, 2) if math.isfinite(peak) else None)
        if cid in audible:
            audio = audio * np.float32(10.0 ** ((level - lufs) / 20.0))
            info["silent"] = False
        else:
            logger.warning("clip %s (model %s, prompt %d) is silent; it is kept as generated",
                           cid, info["model"], info["prompt_index"])
            info["silent"] = True
        write_wav(clip_dir / f"{cid}.wav", np.clip(audio, -1.0, 1.0).T, sr, "PCM_16")  # [T, C] -> [C, T]
    return level


def _summary(out: Path, pairs_path: Path, key_path: Path, key: tp.Dict[str, tp.Any]) -> ListeningTest:
    return ListeningTest(folder=out, pairs_path=pairs_path, key_path=key_path, n_pairs=len(key["pairs"]),
                         n_clips=len(key["clips"]), loudness_lufs=float(key["loudness_lufs"]))


def load_pairs(folder: Path) -> tp.Dict[str, tp.Any]:
    """Read and check ``<folder>/pairs.json`` (what the rating page shows)."""
    path = Path(folder) / "pairs.json"
    data = _read_json(path, "pairs file")
    if not isinstance(data, dict) or data.get("format") != PAIRS_FORMAT:
        raise ValueError(f"{path} is not a listening-test pairs file ({PAIRS_FORMAT}); make one with "
                         "`python -m scripts.make_pairs`")
    return data


def load_key(path: Path) -> tp.Dict[str, tp.Any]:
    """Read and check a key file written by :func:`make_pairs`."""
    data = _read_json(path, "listening-test key")
    if not isinstance(data, dict) or data.get("format") != KEY_FORMAT:
        raise ValueError(f"{path} is not a listening-test key ({KEY_FORMAT})")
    if not data.get("complete"):
        raise ValueError(f"the listening test of {path} is not finished; rerun `python -m scripts.make_pairs` "
                         "with the same arguments to complete it")
    return data
