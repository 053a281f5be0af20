"""Style adherence: does a model play what it was asked, and does it sound like the target style?

The dataset builder's own labeller (:class:`dataset_builder.label.Labeler`: essentia key and tempo with the
backbeat octave check, musicnn tags) labels every generated clip, and the labels are scored against

- **the prompt**: the key, mode and tempo the clip was asked for - as its description states them (``in E
  minor, 86 bpm``), else as the prompt's source clip was labelled (its sidecar's ``key`` and ``bpm``: the labels
  the description was written from);

  - ``tempo_adherence``: share of clips whose tempo is within 4 % of the asked bpm; clips at double, half,
    triple or a third of it are counted apart (``tempo_octave``): an octave error is a labeller's as much as a
    model's mistake;
  - ``key_adherence``: MIREX weighted key score (1 same key and mode, 0.5 a fifth away, 0.3 relative
    major/minor, 0.2 parallel major/minor, else 0), averaged over clips;

- **the target style**: ``tag_distance``, the Jensen-Shannon distance (base 2: 0 identical, 1 disjoint) between
  the generated clips' tag distribution (genres, moods and instruments, each clip's tags counted once) and the
  tags of the target style's training chunks (their sidecars' ``genre``, ``moods`` and ``instrument``).

Intervals are percentile bootstrap intervals over generated clips (:mod:`eval.stats`). For a real GPU run, point
:func:`adherence` at the clips ``python -m eval compare`` generated (``generated/<label>/text``) with
``prompts.jsonl`` and the target style's training manifest, or let ``compare`` run it (stage ``adherence``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import typing as tp
from pathlib import Path

import numpy as np

from dataset_builder.label import LabelConfig, Labeler
from genrecraft.core.audio import list_audio

from . import stats
from .generate import REAL_LABEL

PITCHES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_SPELLING = {"Db": "C#", "D#": "Eb", "Gb": "F#", "G#": "Ab", "A#": "Bb", "Cb": "B", "Fb": "E", "E#": "F",
             "B#": "C"}
TEMPO_TOLERANCE = 0.04
OCTAVE_FACTORS = (2.0, 0.5, 3.0, 1 / 3)
_KEY_RE = re.compile(r"\b([A-G](?:#|b)?)\s+(major|minor)\b")
_BPM_RE = re.compile(r"\b(\d{2,3}(?:\.\d+)?)\s*(?:bpm|beats per minute)\b", re.IGNORECASE)


def pitch_class(key: str) -> int:
    """0..11 for a key name (``C``, ``F#``, ``Db``...); a ValueError for anything else."""
    name = _SPELLING.get(key.strip(), key.strip())
    if name not in PITCHES:
        raise ValueError(f"key {key!r} is not a pitch class; use one of {', '.join(PITCHES)} (or a flat/sharp "
                         "spelling of one)")
    return PITCHES.index(name)


def mirex_key_score(true_key: str, true_mode: str, key: str, mode: str) -> float:
    """MIREX weighted key score of an estimate (``key``, ``mode``) against the truth: 1 same, 0.5 a perfect fifth
    either way in the same mode, 0.3 relative major/minor, 0.2 parallel major/minor, else 0."""
    t, k = pitch_class(true_key), pitch_class(key)
    if t == k and mode == true_mode:
        return 1.0
    if mode == true_mode and (k - t) % 12 in (5, 7):
        return 0.5
    relative = (t + 9) % 12 if true_mode == "major" else (t + 3) % 12
    if mode != true_mode and k == relative:
        return 0.3
    if mode != true_mode and k == t:
        return 0.2
    return 0.0


def tempo_class(true_bpm: float, bpm: float, tolerance: float = TEMPO_TOLERANCE) -> str:
    """``correct`` (within ``tolerance`` of the truth), ``octave`` (within it of 2x, 1/2x, 3x or 1/3x) or
    ``wrong``."""
    if not (true_bpm > 0 and math.isfinite(bpm)):
        return "wrong"
    if abs(bpm - true_bpm) <= tolerance * true_bpm:
        return "correct"
    for factor in OCTAVE_FACTORS:
        if abs(bpm - factor * true_bpm) <= tolerance * factor * true_bpm:
            return "octave"
    return "wrong"


@dataclasses.dataclass
class Target:
    """What one clip was asked for; any field may be missing (None)."""

    key: tp.Optional[str] = None
    mode: tp.Optional[str] = None
    bpm: tp.Optional[float] = None


def prompt_target(description: tp.Optional[str], info: tp.Optional[tp.Mapping[str, tp.Any]] = None) -> Target:
    """Key, mode and bpm asked by ``description`` (``... in E minor, 86 bpm``); what it does not state comes from
    ``info``, the prompt's source clip's sidecar (``key``: ``"E minor"``, ``bpm``)."""
    target = Target()
    text = description or ""
    match = _KEY_RE.search(text)
    if match:
        target.key, target.mode = match.group(1), match.group(2)
    match = _BPM_RE.search(text)
    if match:
        target.bpm = float(match.group(1))
    info = info or {}
    if target.key is None and isinstance(info.get("key"), str):
        parts = info["key"].split()
        if len(parts) == 2 and parts[1] in ("major", "minor"):
            target.key, target.mode = parts
    if target.bpm is None and isinstance(info.get("bpm"), (int, float)) and info["bpm"] > 0:
        target.bpm = float(info["bpm"])
    if target.key is not None:
        target.key = target.key[:1].upper() + target.key[1:]
        try:
            pitch_class(target.key)
        except ValueError:
            target.key = target.mode = None  # not a key the labeller could produce: the clip's key is not scored
    return target


def _sidecar(path: tp.Union[str, Path, None]) -> tp.Dict[str, tp.Any]:
    if not path:
        return {}
    side = Path(path).with_suffix(".json")
    if not side.exists():
        return {}
    try:
        return json.loads(side.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the sidecar {side}: {exc}") from exc


def _split_tags(value: tp.Any) -> tp.List[str]:
    if isinstance(value, str):
        return [t.strip().lower() for t in re.split(r"[,/]", value) if t.strip()]
    if isinstance(value, (list, tuple)):
        return [str(t[0] if isinstance(t, (list, tuple)) else t).strip().lower() for t in value if t]
    return []


def sidecar_tags(info: tp.Mapping[str, tp.Any]) -> tp.Set[str]:
    """Tags of a training chunk from its sidecar (MusicInfo: ``genre``, ``moods``, ``instrument``)."""
    return set(_split_tags(info.get("genre")) + _split_tags(info.get("moods")) + _split_tags(info.get("instrument")))


def label_tags(labels: tp.Any) -> tp.Set[str]:
    """Tags of a labelled clip (:class:`dataset_builder.label.Labels`): its genres, moods and instruments."""
    return {n.strip().lower() for n, _ in list(labels.genres) + list(labels.moods) + list(labels.instruments)}


def tag_distribution(tag_sets: tp.Sequence[tp.Set[str]]) -> tp.Dict[str, float]:
    """Share of all tag occurrences per tag (each clip counts a tag once); empty when no clip has a tag."""
    counts: tp.Dict[str, int] = {}
    for tags in tag_sets:
        for tag in tags:
            counts[tag] = counts.get(tag, 0) + 1
    total = sum(counts.values())
    return {tag: n / total for tag, n in sorted(counts.items())} if total else {}


def js_distance(p: tp.Mapping[str, float], q: tp.Mapping[str, float]) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of two distributions over tags; NaN when either is empty."""
    if not p or not q:
        return float("nan")
    tags = sorted(set(p) | set(q))
    a = np.array([p.get(t, 0.0) for t in tags])
    b = np.array([q.get(t, 0.0) for t in tags])
    m = (a + b) / 2

    def kl(x: np.ndarray) -> float:
        mask = x > 0
        return float(np.sum(x[mask] * np.log2(x[mask] / m[mask])))

    return float(math.sqrt(max(0.0, (kl(a) + kl(b)) / 2)))


@dataclasses.dataclass
class ClipLabels:
    """What the labeller read from one generated clip, and what the clip was asked for."""

    path: str
    target: Target
    key: str
    mode: str
    bpm: float
    tags: tp.List[str]

    @property
    def key_score(self) -> tp.Optional[float]:
        if self.target.key is None or self.target.mode is None:
            return None
        return mirex_key_score(self.target.key, self.target.mode, self.key, self.mode)

    @property
    def tempo(self) -> tp.Optional[str]:
        return None if self.target.bpm is None else tempo_class(self.target.bpm, self.bpm)


def score(clips: tp.Sequence[ClipLabels], style_tags: tp.Mapping[str, float], n_boot: int = stats.DEFAULT_BOOTSTRAP,
          confidence: float = stats.DEFAULT_CONFIDENCE, seed: int = 0) -> tp.Dict[str, tp.Any]:
    """Adherence figures of labelled clips against their targets and the style's tag distribution (see the module
    docstring); each with a bootstrap interval over clips (NaN with fewer than 2 clips)."""
    stats.check_bootstrap_args(n_boot, confidence)
    tempo = [c.tempo for c in clips if c.tempo is not None]
    keys = [c.key_score for c in clips if c.key_score is not None]
    correct = [1.0 if t == "correct" else 0.0 for t in tempo]
    octave = [1.0 if t == "octave" else 0.0 for t in tempo]
    tag_sets = [set(c.tags) for c in clips]

    def tag_stat(idx: np.ndarray) -> float:
        return js_distance(tag_distribution([tag_sets[i] for i in idx]), style_tags)

    nan = (float("nan"), float("nan"))
    return {
        "n_clips": len(clips),
        "tempo_adherence": float(np.mean(correct)) if correct else None,
        "tempo_interval": stats.mean_interval(correct, n_boot, confidence, seed) if correct else nan,
        "tempo_octave": float(np.mean(octave)) if octave else None,
        "tempo_clips": len(tempo),
        "key_adherence": float(np.mean(keys)) if keys else None,
        "key_interval": stats.mean_interval(keys, n_boot, confidence, seed) if keys else nan,
        "key_clips": len(keys),
        "tag_distance": tag_stat(np.arange(len(clips))) if clips and style_tags else None,
        "tag_interval": (stats.statistic_interval(len(clips), tag_stat, n_boot=min(n_boot, 200),
                                                  confidence=confidence, seed=seed)
                         if clips and style_tags else nan),
        "generated_tags": tag_distribution(tag_sets),
        "clips": [{"path": c.path, "asked": dataclasses.asdict(c.target), "key": f"{c.key} {c.mode}",
                   "bpm": round(c.bpm, 1), "tempo": c.tempo, "key_score": c.key_score, "tags": c.tags}
                  for c in clips],
    }


def style_tag_distribution(manifest: tp.Union[str, Path]) -> tp.Dict[str, float]:
    """The target style's tag distribution from its training manifest's sidecars."""
    files = list_audio(manifest)
    if not files:
        raise ValueError(f"no audio in {manifest}: pass the target style's training manifest (e.g. "
                         "data/<name>/egs/train)")
    return tag_distribution([sidecar_tags(_sidecar(f)) for f in files])


def label_clips(files: tp.Sequence[tp.Union[str, Path]], targets: tp.Sequence[Target], labeler: tp.Any = None,
                progress: bool = False, desc: str = "labelling") -> tp.List[ClipLabels]:
    """Run the builder's labeller (musicnn tags unless ``labeler`` is given) on each clip."""
    import soundfile as sf
    from tqdm import tqdm

    if len(files) != len(targets):
        raise ValueError(f"{len(files)} clips but {len(targets)} targets: give one target per clip")
    if labeler is None:
        labeler = Labeler(LabelConfig(tagger="musicnn"))
    out = []
    for path, target in tqdm(list(zip(files, targets)), desc=desc, disable=not progress):
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
        labels = labeler(audio.mean(axis=1), sr)
        out.append(ClipLabels(path=str(path), target=target, key=labels.key, mode=labels.scale,
                              bpm=float(labels.bpm), tags=sorted(label_tags(labels))))
    return out


def prompt_targets(prompts_file: tp.Union[str, Path]) -> tp.Dict[str, Target]:
    """{clip stem: target} from ``eval.generate``'s ``prompts.jsonl`` (description, then the source's sidecar)."""
    targets = {}
    for line in Path(prompts_file).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        prompt = json.loads(line)
        targets[f"{int(prompt['index']):04d}"] = prompt_target(prompt.get("description"), _sidecar(prompt["source"]))
    return targets


def adherence(files: tp.Sequence[tp.Union[str, Path]], prompts_file: tp.Union[str, Path],
              style_manifest: tp.Union[str, Path], labeler: tp.Any = None, n_boot: int = stats.DEFAULT_BOOTSTRAP,
              confidence: float = stats.DEFAULT_CONFIDENCE, seed: int = 0, progress: bool = False,
              desc: str = "labelling") -> tp.Dict[str, tp.Any]:
    """Adherence of generated clips ``files`` (named ``<index>.wav`` as :mod:`eval.generate` writes them) to their
    prompts in ``prompts_file`` and to the style of ``style_manifest`` (its training split)."""
    targets = prompt_targets(prompts_file)
    missing = [Path(f).stem for f in files if Path(f).stem not in targets]
    if missing:
        raise ValueError(f"{len(missing)} clip(s) ({', '.join(missing[:3])}) have no prompt in {prompts_file}")
    clips = label_clips(files, [targets[Path(f).stem] for f in files], labeler, progress, desc)
    return score(clips, style_tag_distribution(style_manifest), n_boot, confidence, seed)


def compare_stage(report: tp.Dict[str, tp.Any], clips: tp.Mapping[str, tp.Mapping[str, tp.List[Path]]],
                  generated_dir: Path, train_manifest: tp.Union[str, Path], confidence: float, seed: int,
                  progress: bool = False) -> None:
    """``eval.compare``'s ``adherence`` stage: each model's text-to-music clips against their prompts and the
    target style's training tags, into ``report["results"][label]["adherence"]`` (one labeller for all); the
    real continuations too, as the ``real audio`` row (what the labeller reads from real music of this split)."""
    labeler = Labeler(LabelConfig(tagger="musicnn"))
    style = style_tag_distribution(train_manifest)
    targets = prompt_targets(Path(generated_dir) / "prompts.jsonl")

    sets = {label: paths["text"] for label, paths in clips.items()}
    first = next(iter(clips.values()), {})
    if first.get("reference"):
        sets[REAL_LABEL] = first["reference"]  # real continuations: the labeller's own ceiling on this test split
    for label, files in sets.items():
        labelled = label_clips(files, [targets[Path(f).stem] for f in files], labeler, progress,
                               desc=f"adherence ({label})")
        report["results"].setdefault(label, {})["adherence"] = score(labelled, style, confidence=confidence,
                                                                     seed=seed)
    report["adherence_reference"] = {"train_manifest": str(train_manifest), "style_tags": style}


def columns() -> tp.List[tp.Tuple[str, str, tp.Callable[[dict], tp.Tuple[tp.Any, tp.Any]]]]:
    """Report columns (key, title, getter of (value, interval)); see :data:`HIGHER_IS_BETTER`."""
    def get(field: str, interval: str):
        return lambda r: (r.get("adherence", {}).get(field), r.get("adherence", {}).get(interval))

    return [("tempo_adherence", "tempo adherence", get("tempo_adherence", "tempo_interval")),
            ("key_adherence", "key adherence", get("key_adherence", "key_interval")),
            ("tag_distance", "tag distance", get("tag_distance", "tag_interval"))]


#: Column keys where higher is better (all other report columns: lower is better).
HIGHER_IS_BETTER = frozenset({"tempo_adherence", "key_adherence"})


def markdown_lines(report: tp.Mapping[str, tp.Any]) -> tp.List[str]:
    """A section on adherence details: octave errors, and the most common tags per model against the style."""
    rows = [(label, r["adherence"]) for label, r in report["results"].items() if "adherence" in r]
    if not rows:
        return []
    style = report.get("adherence_reference", {}).get("style_tags", {})
    top = ", ".join(f"{t} {p:.0%}" for t, p in sorted(style.items(), key=lambda kv: -kv[1])[:5]) or "none"
    lines = ["## Style adherence", "",
             "The dataset builder's labeller on each generated clip: tempo within 4 % of the prompt's bpm (clips "
             "at 2x, 1/2x, 3x or 1/3x counted apart as octave errors), key and mode against the prompt's (MIREX "
             "weighted: 1 same, 0.5 fifth, 0.3 relative, 0.2 parallel), and the Jensen-Shannon distance of the "
             "clips' tags to the target style's training tags (0 same distribution, 1 disjoint). "
             f"Target style's tags: {top}.", "",
             "| model | clips | tempo within 4 % | octave errors | key (MIREX) | tag distance | most common tags |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for label, a in rows:
        tags = ", ".join(t for t, _ in sorted(a["generated_tags"].items(), key=lambda kv: -kv[1])[:3]) or "–"

        def fmt(v, i=None):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return "–"
            ok = i and all(x is not None and math.isfinite(x) for x in i)
            return f"{v:.2f}" + (f" [{i[0]:.2f}, {i[1]:.2f}]" if ok else "")

        lines.append(f"| {label} | {a['n_clips']} | {fmt(a['tempo_adherence'], a['tempo_interval'])} | "
                     f"{fmt(a['tempo_octave'])} | {fmt(a['key_adherence'], a['key_interval'])} | "
                     f"{fmt(a['tag_distance'], a['tag_interval'])} | {tags} |")
    return lines + [""]
