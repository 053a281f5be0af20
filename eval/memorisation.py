"""Memorisation check: is a generated clip a copy of a training chunk?

For each generated clip, its nearest training chunk by two measures:

- ``embedding``: cosine similarity of mean embedding vectors (the FAD backend, musicnn by default);
- ``chroma``: the dataset builder's chroma fingerprint (:mod:`dataset_builder.dedupe`: 12 centred pitch-class
  energies every half second) compared frame by frame at the best offset (:func:`dataset_builder.dedupe.
  similarity`, offsets over the whole chunk).

What counts as "too close" comes from the training data itself: every training chunk's opening, cut to the
generated clips' duration, is compared in the same way with the chunks of *other* songs, and the highest of those
similarities is the threshold of each measure: two different songs of the training set were never closer than
that. A generated clip above the threshold on either measure is listed as a possible copy (``flagged``), with
its nearest chunk. Chunks are grouped into songs by their name (``<song id>-<start ms>``, as the builder names
them). With more than ``max_reference`` training chunks, a seeded random subset of them sets the thresholds.
"""

from __future__ import annotations

import dataclasses
import typing as tp
from pathlib import Path

import numpy as np

from dataset_builder.dedupe import ChromaAccumulator, similarity
from genrecraft.core.audio import list_audio, load_audio, resample

from .embeddings import DEFAULT_BACKEND, get_backend

MEASURES = ("embedding", "chroma")


def song_of(path: tp.Union[str, Path]) -> str:
    """The song a chunk belongs to: its file name without the trailing ``-<start ms>`` the builder adds."""
    stem = Path(path).stem
    head, _, tail = stem.rpartition("-")
    return head if head and tail.isdigit() else stem


def chroma_fingerprint(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """The builder's chroma fingerprint [frames, 12] of mono ``audio``."""
    acc = ChromaAccumulator(sample_rate)
    acc.update(np.asarray(audio, dtype=np.float32))
    return acc.signature()


def chroma_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Best mean frame cosine of two fingerprints over every offset that overlaps at least half the shorter."""
    return similarity(a, b, max_shift=max(len(a), len(b)))


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


@dataclasses.dataclass
class Item:
    """One clip's descriptors: unit mean embedding and chroma fingerprint."""

    path: str
    song: str
    embedding: np.ndarray
    chroma: np.ndarray


def describe(audio: np.ndarray, sample_rate: int, backend: tp.Any, path: str = "", song: str = "") -> Item:
    """An :class:`Item` from audio (embedded with ``backend``, an :class:`eval.embeddings.EmbeddingBackend`)."""
    x = resample(audio, sample_rate, backend.sample_rate) if sample_rate != backend.sample_rate else audio
    frames = np.asarray(backend.embed(np.asarray(x, dtype=np.float32)))
    return Item(path, song, _unit(frames.mean(axis=0)), chroma_fingerprint(audio, sample_rate))


def nearest(query: Item, references: tp.Sequence[Item], other_songs_only: bool = False
            ) -> tp.Dict[str, tp.Tuple[float, str]]:
    """{measure: (highest similarity, path of that reference)} of ``query`` against ``references``."""
    best = {m: (-np.inf, "") for m in MEASURES}
    for ref in references:
        if other_songs_only and ref.song == query.song:
            continue
        values = {"embedding": float(query.embedding @ ref.embedding),
                  "chroma": chroma_similarity(query.chroma, ref.chroma)}
        for m, v in values.items():
            if v > best[m][0]:
                best[m] = (v, ref.path)
    return best


@dataclasses.dataclass
class Reference:
    """The training side of the check, computed once per training set and clip length: every chunk's
    descriptors and the thresholds (see the module docstring)."""

    items: tp.List[Item]
    thresholds: tp.Dict[str, float]
    clip_seconds: float
    n_reference: int


def reference(training: tp.Sequence[tp.Union[str, Path]], clip_seconds: float, backend: tp.Any = None,
              sample_rate: int = 32000, max_reference: int = 200, seed: int = 0,
              progress: bool = False) -> Reference:
    """Describe the training chunks and set each measure's threshold from their ``clip_seconds`` openings."""
    from tqdm import tqdm

    training = list(training)
    if len({song_of(p) for p in training}) < 2:
        raise ValueError(f"the training set has {len({song_of(p) for p in training})} song(s): the thresholds "
                         "compare chunks of different songs, so it needs at least 2")
    backend = get_backend(DEFAULT_BACKEND if backend is None else backend)
    items = []
    for path in tqdm(training, desc="memorisation (training chunks)", disable=not progress):
        items.append(describe(load_audio(path, sample_rate), sample_rate, backend, str(path), song_of(path)))
    rng = np.random.default_rng(seed)
    subset = (rng.choice(len(training), size=max_reference, replace=False) if len(training) > max_reference
              else np.arange(len(training)))
    openings = [describe(load_audio(training[i], sample_rate, duration=clip_seconds), sample_rate, backend,
                         str(training[i]), song_of(training[i])) for i in subset]
    reference_pairs = [nearest(q, items, other_songs_only=True) for q in openings]
    thresholds = {}
    for m in MEASURES:
        values = [r[m][0] for r in reference_pairs if np.isfinite(r[m][0])]
        thresholds[m] = float(max(values)) if values else float("nan")
    return Reference(items, thresholds, clip_seconds, int(len(subset)))


def check(generated: tp.Sequence[tp.Union[str, Path]], training: tp.Sequence[tp.Union[str, Path]],
          backend: tp.Any = None, sample_rate: int = 32000, max_reference: int = 200, seed: int = 0,
          progress: bool = False, reuse: tp.Optional[tp.Dict[float, Reference]] = None) -> tp.Dict[str, tp.Any]:
    """Nearest training chunk of each ``generated`` clip and the clips closer to one than the training chunks of
    different songs are to each other (see the module docstring). Returns ``{"thresholds", "clips",
    "flagged", "n_training", "n_reference"}``; ``thresholds`` is ``{measure: value}``. ``reuse`` ({clip
    seconds: :class:`Reference`}, filled as it goes) shares the training side between calls on one training set."""
    from tqdm import tqdm

    if not generated:
        raise ValueError("no generated clips to check")
    backend = get_backend(DEFAULT_BACKEND if backend is None else backend)
    durations = [len(load_audio(p, sample_rate)) / sample_rate for p in generated]
    clip_seconds = float(np.median(durations))
    ref = reuse.get(clip_seconds) if reuse is not None else None
    if ref is None:
        ref = reference(training, clip_seconds, backend, sample_rate, max_reference, seed, progress)
        if reuse is not None:
            reuse[clip_seconds] = ref
    clips = []
    for path in tqdm(list(generated), desc="memorisation (generated clips)", disable=not progress):
        item = describe(load_audio(path, sample_rate), sample_rate, backend, str(path))
        near = nearest(item, ref.items)
        entry = {"path": str(path)}
        for m in MEASURES:
            entry[m] = {"similarity": near[m][0], "nearest": near[m][1],
                        "above_threshold": bool(near[m][0] > ref.thresholds[m])}
        entry["flagged"] = any(entry[m]["above_threshold"] for m in MEASURES)
        clips.append(entry)
    return {"thresholds": ref.thresholds, "clip_seconds": clip_seconds, "n_training": len(training),
            "n_reference": ref.n_reference, "clips": clips,
            "flagged": [c["path"] for c in clips if c["flagged"]]}


def compare_stage(report: tp.Dict[str, tp.Any], clips: tp.Mapping[str, tp.Mapping[str, tp.List[Path]]],
                  train_manifest: tp.Union[str, Path], backend: tp.Any = None, seed: int = 0,
                  progress: bool = False) -> None:
    """``eval.compare``'s ``memorisation`` stage: :func:`check` of each model's text-to-music clips against the
    training split ``train_manifest``, into ``report["results"][label]["memorisation"]``."""
    training = list_audio(train_manifest)
    backend = get_backend(DEFAULT_BACKEND if backend is None else backend)
    shared: tp.Dict[float, Reference] = {}  # the training side, described once for every model
    for label, paths in clips.items():
        report["results"][label]["memorisation"] = check(paths["text"], training, backend=backend, seed=seed,
                                                         progress=progress, reuse=shared)


def markdown_lines(report: tp.Mapping[str, tp.Any]) -> tp.List[str]:
    """The report's memorisation section: thresholds, per model the closest clip, and every flagged clip."""
    rows = [(label, r["memorisation"]) for label, r in report["results"].items() if "memorisation" in r]
    if not rows:
        return []
    thresholds = rows[0][1]["thresholds"]
    lines = ["## Memorisation", "",
             f"Nearest training chunk of each generated clip. A clip is listed as a possible copy when it is closer "
             f"to a training chunk than any two training chunks of different songs are to each other (embedding "
             f"cosine > {thresholds['embedding']:.3f} or chroma fingerprint similarity > "
             f"{thresholds['chroma']:.3f}, from {rows[0][1]['n_reference']} training chunks' openings).", "",
             "| model | clips | flagged | highest embedding cosine | highest chroma similarity |",
             "| --- | --- | --- | --- | --- |"]
    flagged = []
    for label, m in rows:
        best = {k: max(c[k]["similarity"] for c in m["clips"]) for k in MEASURES}
        lines.append(f"| {label} | {len(m['clips'])} | {len(m['flagged'])} | {best['embedding']:.3f} | "
                     f"{best['chroma']:.3f} |")
        flagged += [(label, c) for c in m["clips"] if c["flagged"]]
    lines.append("")
    if flagged:
        lines += ["Possible copies:", ""]
        for label, c in flagged:
            lines.append(f"- {label}: `{Path(c['path']).name}` ~ `{Path(c['chroma']['nearest']).name}` (chroma "
                         f"{c['chroma']['similarity']:.3f}), `{Path(c['embedding']['nearest']).name}` (embedding "
                         f"{c['embedding']['similarity']:.3f})")
    else:
        lines.append("No generated clip is closer to a training chunk than training chunks of different songs are "
                     "to each other.")
    return lines + [""]
