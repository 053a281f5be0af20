"""FAD (and KAD, FAD-inf, per-clip FD) between a set of clips and a reference set, with any embedding backend.

>>> result = fad("generated/lora/text", "data/jpop/egs/test", backend="musicnn")   # doctest: +SKIP
>>> result.fad, result.fad_interval, result.kad, result.outliers[:3]                # doctest: +SKIP

Frames of all clips of a set are pooled (as in the original FAD and in fadtk); the bootstrap interval resamples
*clips* of the evaluated set (with their frames) against the fixed reference. FD grows when a set is small (its
expected value has a 1/N term), so only compare FADs computed with the same number of clips and durations, use
:attr:`FADResult.fad_inf` (extrapolated to an infinite set), or KAD (unbiased) for small sets.
"""

from __future__ import annotations

import dataclasses
import logging
import typing as tp
from pathlib import Path

import numpy as np

from genrecraft.core.audio import list_audio

from . import frechet, stats
from .embeddings import DEFAULT_BACKEND, EmbeddingBackend, embed_files, get_backend

logger = logging.getLogger(__name__)

#: KAD's Gram matrices grow as frames^2: beyond this many frames per set, a seeded random subset is used.
KAD_MAX_FRAMES = 4000


MIN_FRAMES = 2  # a mean and a covariance need at least two embedding frames per set
MIN_CLIPS_FOR_INTERVAL = 2  # bootstrap intervals resample clips: one clip gives no interval


@dataclasses.dataclass
class FADResult:
    """FAD of an evaluated set against a reference set (see the module docstring). ``outliers``: the clips
    with the largest per-clip FD, ``[(path, fd), ...]``, largest first."""

    backend: str
    n_clips: int
    n_frames: int
    n_reference_clips: int
    n_reference_frames: int
    fad: float
    fad_interval: tp.Tuple[float, float]
    check_discrepancy: float
    kad: tp.Optional[float] = None
    kad_interval: tp.Tuple[float, float] = (float("nan"), float("nan"))
    fad_inf: tp.Optional[tp.Dict[str, tp.Any]] = None
    outliers: tp.List[tp.Tuple[str, float]] = dataclasses.field(default_factory=list)

    def to_dict(self) -> tp.Dict[str, tp.Any]:
        return dataclasses.asdict(self)


def embed_set(source: tp.Union[str, Path, tp.Sequence[tp.Union[str, Path]]],
              backend: tp.Union[str, EmbeddingBackend] = DEFAULT_BACKEND, cache: bool = True,
              progress: bool = True) -> tp.Tuple[tp.List[Path], tp.List[np.ndarray]]:
    """Files of a set (folder, manifest, list file, or a list of paths) and their embedding frames."""
    backend = get_backend(backend)
    files = [Path(f) for f in source] if isinstance(source, (list, tuple)) else list_audio(source)
    if not files:
        raise ValueError(f"the set {source!r} has no audio files")
    return files, embed_files(backend, files, cache=cache, progress=progress)


def _subsample(frames: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if frames.shape[0] <= limit:
        return frames
    idx = np.sort(np.random.default_rng(seed).choice(frames.shape[0], size=limit, replace=False))
    return frames[idx]


def fad_from_embeddings(clips: tp.Sequence[np.ndarray], reference: tp.Union[tp.Sequence[np.ndarray],
                                                                            frechet.GaussianStats],
                        backend_name: str = "", names: tp.Optional[tp.Sequence[str]] = None,
                        bootstrap: int = 200, confidence: float = stats.DEFAULT_CONFIDENCE, kad: bool = True,
                        inf: bool = False, n_outliers: int = 10, seed: int = 0) -> FADResult:
    """FAD of embedded clips (a list of [frames_i, D]) against reference clips or reference statistics.

    ``kad`` needs reference frames (not only statistics). ``inf`` adds FAD-inf. ``bootstrap`` resamples clips
    (0: no interval).
    """
    stats.check_bootstrap_args(bootstrap, confidence)
    if not clips:
        raise ValueError("no clips to evaluate")
    frames = np.concatenate([np.asarray(c, dtype=np.float64) for c in clips])
    if isinstance(reference, frechet.GaussianStats):
        ref_stats, ref_frames, n_ref = reference, None, 0
    else:
        if not reference:
            raise ValueError("no reference clips")
        ref_frames = np.concatenate([np.asarray(c, dtype=np.float64) for c in reference])
        n_ref = len(reference)
        if ref_frames.shape[0] < MIN_FRAMES:
            raise ValueError(f"the reference set has {ref_frames.shape[0]} embedding frame(s); FAD and KAD need at "
                             f"least {MIN_FRAMES} per set (a mean and a covariance)")
        ref_stats = frechet.GaussianStats.from_embeddings(ref_frames)
    if frames.shape[0] < MIN_FRAMES:
        raise ValueError(f"the evaluated set has {frames.shape[0]} embedding frame(s); FAD and KAD need at least "
                         f"{MIN_FRAMES} per set (a mean and a covariance)")
    if bootstrap and len(clips) < MIN_CLIPS_FOR_INTERVAL:
        logger.warning("FAD/KAD confidence intervals need at least %d clips in the evaluated set (got %d): they "
                       "are reported as nan; evaluate more clips for an interval", MIN_CLIPS_FOR_INTERVAL,
                       len(clips))
    dim = frames.shape[1]
    if min(frames.shape[0], int(ref_stats.n)) < dim:
        logger.warning("FAD from %d and %d frames of %d dimensions: a covariance from fewer frames than dimensions "
                       "is rank-deficient and the distance is biased; use at least %d frames (more clips) per set",
                       frames.shape[0], int(ref_stats.n), dim, dim)
    main = frechet.frechet_distance_details(frechet.GaussianStats.from_embeddings(frames), ref_stats)
    bounds = np.cumsum([0] + [len(c) for c in clips])

    def resampled(indices: np.ndarray) -> np.ndarray:
        return np.concatenate([frames[bounds[i]:bounds[i + 1]] for i in indices])

    interval = stats.statistic_interval(
        len(clips), lambda idx: frechet.frechet_distance_details(
            frechet.GaussianStats.from_embeddings(resampled(idx)), ref_stats, check=False).value,
        n_boot=bootstrap, confidence=confidence, seed=seed)
    result = FADResult(backend=backend_name, n_clips=len(clips), n_frames=int(frames.shape[0]),
                       n_reference_clips=n_ref, n_reference_frames=int(ref_stats.n), fad=main.value,
                       fad_interval=interval, check_discrepancy=main.discrepancy)
    if kad:
        if ref_frames is None:
            raise ValueError("KAD needs the reference frames, not only their statistics: pass reference clips")
        ref_k = _subsample(ref_frames, KAD_MAX_FRAMES, seed)
        bandwidth = frechet.median_pairwise_distance(_subsample(ref_k, 1000, seed))
        result.kad = frechet.kad(ref_k, _subsample(frames, KAD_MAX_FRAMES, seed + 1), bandwidth=bandwidth)
        result.kad_interval = stats.statistic_interval(
            len(clips), lambda idx: frechet.kad(ref_k, _subsample(resampled(idx), KAD_MAX_FRAMES, seed + 1),
                                                bandwidth=bandwidth),
            n_boot=min(bootstrap, 100), confidence=confidence, seed=seed)
    if inf:
        res = frechet.fad_inf(ref_stats, frames, seed=seed)
        result.fad_inf = dataclasses.asdict(res)
    if n_outliers and names is not None:
        per_clip = frechet.per_clip_fd(ref_stats, dict(zip([str(n) for n in names], clips)))
        result.outliers = per_clip[:n_outliers]
    return result


def fad(evaluated: tp.Union[str, Path, tp.Sequence[tp.Union[str, Path]]],
        reference: tp.Union[str, Path, tp.Sequence[tp.Union[str, Path]]],
        backend: tp.Union[str, EmbeddingBackend] = DEFAULT_BACKEND, bootstrap: int = 200,
        confidence: float = stats.DEFAULT_CONFIDENCE, kad: bool = True, inf: bool = False, n_outliers: int = 10,
        cache: bool = True, progress: bool = True, seed: int = 0) -> FADResult:
    """FAD of the audio set ``evaluated`` against the set ``reference`` (folders, manifests, list files or lists
    of paths; ``reference`` may also be a ``.npz`` of :class:`frechet.GaussianStats`). See
    :func:`fad_from_embeddings` for the options."""
    backend = get_backend(backend)
    files, clips = embed_set(evaluated, backend, cache=cache, progress=progress)
    ref: tp.Union[tp.List[np.ndarray], frechet.GaussianStats]
    if isinstance(reference, (str, Path)) and str(reference).endswith(".npz"):
        ref = frechet.GaussianStats.load(reference)
        kad = False
    else:
        _, ref = embed_set(reference, backend, cache=cache, progress=progress)
    return fad_from_embeddings(clips, ref, backend_name=backend.cache_id, names=[str(f) for f in files],
                               bootstrap=bootstrap, confidence=confidence, kad=kad, inf=inf,
                               n_outliers=n_outliers, seed=seed)
