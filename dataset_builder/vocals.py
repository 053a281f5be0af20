"""Vocals in the training set (``--vocals keep|flag|drop|separate``, ``--vocal-threshold``).

MusicGen was trained on instrumental music; fine-tuned on sung chunks it learns muddy half-vocals. So:

- ``flag`` (default): each chunk's :func:`vocal_score` goes into its sidecar (``vocal_score``) and the card shows the
  share of vocal chunks (score >= threshold) per song and overall. No extra cost: the score is made from the
  musicnn tagger's own outputs (stored with the labels).
- ``drop``: chunks whose score is >= the threshold are left out of the manifests (listed in the card with their
  scores). Computed from stored labels, so a rerun with ``drop`` after ``flag`` changes only the manifests.
- ``separate``: every chunk goes through demucs ``htdemucs`` (the field's separator) and the accompaniment (the sum
  of the drums, bass and other stems) is what is labelled and trained on; descriptions say ``instrumental``.
  Runs on the GPU when there is one; on the project's 2-core CPU it ran at 0.25-0.32x real time (shared, load
  10-11: bench/bench_vocals.py), so an hour of music takes hours there. An 80 MB download on first use. Separated chunks
  sit in ``separated/<song>/<chunk>.wav`` (same start and length as the mix, ids ending in ``-acc``); done ones are
  skipped on a rerun.
- ``keep``: nothing about vocals.

The score is the vocal detector's probability of a voice (:mod:`.label.vocal_detector`: a logistic regression on
the musicnn taggers' embeddings and tags, which the labelling computes anyway), so it needs the musicnn tagger
(``--tagger musicnn``, the default); with another tagger it is unknown (None).
"""

from __future__ import annotations

import dataclasses
import typing as tp
from pathlib import Path

import numpy as np

from .chunk import Chunk

if tp.TYPE_CHECKING:
    from .label import Labels

VOCALS = ("flag", "drop", "separate", "keep")
SEPARATED_SUFFIX = "-acc"

# The vocal score: the probability of a voice from the vocal detector (label/vocal_detector.py: a logistic regression
# on the musicnn taggers' embeddings and tags, fitted by bench/bench_vocals.py --fit), computed with the labels and
# stored with their raw scores. Its threshold was chosen on the detector's training clips.
# The tag score it replaced (still in each sidecar, ``vocal_tag_score``): the most probable of the MagnaTagATune voice
# tags of the musicnn MTT tagger, vocal at 0.025; it hears speech and sung syllables but hardly choirs and voice pads,
# and hears voices in distorted guitars (bench/RESULTS.md).
MTT_VOCAL_TAGS = ("vocal", "vocals", "voice", "singing", "female", "male", "woman", "man", "female vocal",
                  "male vocal", "female voice", "male voice", "choir", "choral", "opera")
VOCAL_THRESHOLD = 0.6
TAG_THRESHOLD = 0.025
DETECTOR = "vocal_detector"  # label.taggers.VOCAL_DETECTOR: where the labels keep the detector's probability


def vocal_score(scores: tp.Mapping[str, tp.Mapping[str, float]]) -> tp.Optional[float]:
    """The vocal detector's probability (0..1) that the chunk holds a voice, from the raw scores stored with its
    labels (``Labels.scores``); None when they have none (another tagger, or labels of an older version)."""
    detector = scores.get(DETECTOR)
    if not detector or "vocal" not in detector:
        return None
    return float(detector["vocal"])


def tag_score(scores: tp.Mapping[str, tp.Mapping[str, float]]) -> tp.Optional[float]:
    """The musicnn MTT tagger's probability of its most probable voice tag (0..1, vocal at :data:`TAG_THRESHOLD`;
    low numbers: a tagger's probabilities are spread over 50 tags): the detector's forerunner, kept in the sidecars
    as a second opinion. None without the MTT scores."""
    mtt = scores.get("MTT_musicnn")
    if not mtt:
        return None
    return max(float(mtt.get(t, 0.0)) for t in MTT_VOCAL_TAGS)


def scores_of(chunks: tp.Sequence[Chunk], labels: tp.Mapping[str, "Labels"]) -> tp.Dict[str, tp.Optional[float]]:
    return {c.chunk_id: vocal_score(labels[c.chunk_id].scores) if c.chunk_id in labels else None for c in chunks}


@dataclasses.dataclass
class VocalReport:
    """What the vocals stage did, for the card and the sidecars."""

    mode: str
    threshold: float
    scores: tp.Dict[str, tp.Optional[float]]  # chunk id -> vocal score of every labelled chunk (kept or dropped)
    dropped: tp.List[Chunk] = dataclasses.field(default_factory=list)


def apply(chunks: tp.Sequence[Chunk], labels: tp.Mapping[str, "Labels"], config
          ) -> tp.Tuple[tp.List[Chunk], VocalReport]:
    """The chunks that stay (all but the vocal ones with ``--vocals drop``) and the report."""
    scores = scores_of(chunks, labels) if config.vocals != "keep" else {}
    report = VocalReport(config.vocals, config.vocal_threshold, scores)
    if config.vocals != "drop":
        return list(chunks), report
    if any(s is None for s in scores.values()):
        raise ValueError("--vocals drop needs the musicnn tagger's scores (use --tagger musicnn)")
    report.dropped = [c for c in chunks if scores[c.chunk_id] >= config.vocal_threshold]
    gone = {c.chunk_id for c in report.dropped}
    return [c for c in chunks if c.chunk_id not in gone], report


def card_lines(report: VocalReport, chunks: tp.Sequence[Chunk], items: tp.Mapping[str, tp.Any]) -> tp.List[str]:
    """The card's Vocals section."""
    if report.mode == "keep":
        return []
    lines = ["## Vocals", ""]
    known = {k: v for k, v in report.scores.items() if v is not None}
    if report.mode == "separate":
        lines += ["Every chunk is the accompaniment demucs `htdemucs` separated from the mix (drums + bass + other "
                  "stems); descriptions say `instrumental`. Vocal score left in the accompaniment (musicnn; "
                  f"chunks at or above {report.threshold:g} may still hold a voice):"]
    else:
        lines += [f"Vocal score: the vocal detector's probability of a voice (0..1, from musicnn); a chunk counts "
                  f"as vocal at {report.threshold:g} or above (`--vocal-threshold`). Mode `{report.mode}`" + (
                      ": vocal chunks were left out of the manifests." if report.mode == "drop" else
                      ": vocal chunks are kept; each sidecar has its `vocal_score`.")]
    if not known:
        return lines + ["", "No vocal scores (the tagger is not musicnn).", ""]
    in_song: tp.Dict[str, tp.List[float]] = {}
    for chunk_id, score in known.items():
        in_song.setdefault(chunk_id.rsplit("-", 2 if chunk_id.endswith(SEPARATED_SUFFIX) else 1)[0], []).append(score)
    vocal = sum(s >= report.threshold for s in known.values())
    lines += ["", f"Overall: {vocal} of {len(known)} chunks vocal ({vocal / len(known):.0%}).", "",
              "| song | chunks | vocal chunks | vocal share | mean score |", "| --- | --- | --- | --- | --- |"]
    for song, values in sorted(in_song.items()):
        title = getattr(items.get(song), "title", song).replace("|", "/")
        n = sum(v >= report.threshold for v in values)
        lines.append(f"| {title} | {len(values)} | {n} | {n / len(values):.0%} | {np.mean(values):.2f} |")
    if report.dropped:
        lines += ["", f"Dropped as vocal ({len(report.dropped)}):", "", "| song | chunk | start (s) | vocal score |",
                  "| --- | --- | --- | --- |"]
        lines += [f"| {getattr(items.get(c.item_id), 'title', c.item_id).replace('|', '/')} | {c.chunk_id} | "
                  f"{c.start:.1f} | {report.scores[c.chunk_id]:.2f} |" for c in report.dropped]
    return lines + [""]


# --- separate: htdemucs ---------------------------------------------------------------------------------------------

HTDEMUCS_URL = "https://dl.fbaipublicfiles.com/demucs/hybrid_transformer/955717e8-8726e21a.th"
HTDEMUCS_SHA256 = "8726e21a993978c7ba086d3872e7608d7d5bfca646ca4aca459ffda844faa8b4"


def load_htdemucs():
    """The pretrained htdemucs model (weights fetched once into the genrecraft cache, sha256-checked)."""
    from genrecraft.core import paths
    from genrecraft.core.download import fetch

    path = fetch(HTDEMUCS_URL, paths.cache_dir() / "models" / "demucs" / Path(HTDEMUCS_URL).name,
                 "the htdemucs separation weights", sha256=HTDEMUCS_SHA256)
    try:
        from demucs.states import load_model
    except ImportError as exc:
        raise ImportError("--vocals separate needs demucs: pip install 'genrecraft[separate]'") from exc
    return load_model(path)


class Separator:
    """Mono audio at any rate -> its accompaniment (every stem but ``vocals``) at the same rate and length.

    ``model`` is a demucs model (``sources`` names its stems, ``samplerate`` 44100, ``audio_channels`` 2);
    the pretrained htdemucs by default."""

    def __init__(self, model=None, device: tp.Optional[str] = None):
        import torch

        self.model = (model if model is not None else load_htdemucs()).eval()
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        sources = list(self.model.sources)
        if "vocals" not in sources:
            raise ValueError(f"the separation model has no vocals stem (stems: {sources})")
        self.keep = [i for i, s in enumerate(sources) if s != "vocals"]

    def stems(self, audio: np.ndarray, sample_rate: int) -> tp.Tuple[np.ndarray, int]:
        """Every stem of mono ``audio``: [stems, channels, samples] at the model's rate, and that rate."""
        import soxr
        import torch
        from demucs.apply import apply_model

        rate = int(self.model.samplerate)
        x = np.asarray(audio, dtype=np.float32)
        x = x if sample_rate == rate else soxr.resample(x, sample_rate, rate).astype(np.float32)
        mix = torch.from_numpy(np.ascontiguousarray(x))[None].expand(self.model.audio_channels, -1)
        mean, std = mix.mean(), mix.std() + 1e-8  # demucs' own normalisation (demucs.api)
        with torch.no_grad():
            out = apply_model(self.model, ((mix - mean) / std)[None], device=self.device, progress=False,
                              split=True, overlap=0.25, shifts=0)[0]  # no random shift: the same chunk, the same
            # stems (demucs' shift trick averages over random offsets; ~0.2 dB SDR for 2x the time)
        return (out * std + mean).numpy(), rate

    def accompaniment(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Mono accompaniment of mono ``audio`` [samples]: same rate, same number of samples."""
        import soxr

        stems, rate = self.stems(audio, sample_rate)
        acc = stems[self.keep].sum(axis=0).mean(axis=0).astype(np.float32)
        acc = acc if rate == sample_rate else soxr.resample(acc, rate, sample_rate).astype(np.float32)
        n = len(audio)
        return np.pad(acc[:n], (0, max(0, n - len(acc))))


def separated_path(out: Path, chunk: Chunk) -> Path:
    return out / "separated" / chunk.item_id / f"{chunk.chunk_id}{SEPARATED_SUFFIX}.wav"


def separate_chunks(chunks: tp.Sequence[Chunk], out: Path, config, progress: bool = True,
                    separator: tp.Optional[Separator] = None) -> tp.List[Chunk]:
    """``--vocals separate``: the accompaniment of every chunk (written once, atomically; a rerun skips what is
    there). Returns the separated chunks (``<chunk id>-acc``, same song, start and duration); other modes return
    ``chunks`` as they are. The model is loaded only when a chunk needs separating."""
    if config.vocals != "separate":
        return list(chunks)
    import soundfile as sf
    from tqdm import tqdm

    from genrecraft.core.atomic import atomic_path

    from .faults import writing

    def done(chunk: Chunk) -> bool:  # separated after the mix chunk was (last) written: a re-cut song separates again
        try:
            return separated_path(out, chunk).stat().st_mtime_ns >= Path(chunk.path).stat().st_mtime_ns
        except FileNotFoundError:
            return False

    todo = [c for c in chunks if not done(c)]
    if todo and separator is None:
        separator = Separator()
    for chunk in tqdm(todo, desc="Separating vocals (htdemucs)", unit="chunk", disable=not progress):
        audio, sr = sf.read(chunk.path, dtype="float32", always_2d=True)
        acc = separator.accompaniment(audio.mean(axis=1), sr)
        target = separated_path(out, chunk)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_path(target) as tmp:
                sf.write(tmp, np.clip(acc, -1.0, 1.0), sr, subtype="PCM_16", format="WAV")
        except Exception as exc:  # writing our own file: the machine's fault whatever the error says
            raise writing(target, exc) from exc
        (out / "labels" / f"{target.stem}.json").unlink(missing_ok=True)  # labels of an older separation
    result = []
    for chunk in chunks:
        path = separated_path(out, chunk)
        if path.exists():
            result.append(dataclasses.replace(chunk, chunk_id=path.stem, path=str(path)))
    return result
