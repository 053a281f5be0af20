"""Fréchet distance between Gaussians fitted to embeddings (FAD), and the small-set alternatives.

Everything is float64 numpy. For ``N(mu1, S1)`` and ``N(mu2, S2)``::

    FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr( (S1 S2)^(1/2) )

The hard term is ``tr((S1 S2)^(1/2))``. ``S1 S2`` is not symmetric, which is why the usual implementations call
``scipy.linalg.sqrtm`` on it (complex arithmetic, slow, and NaN or imaginary parts when a covariance is singular,
as it always is with fewer frames than dimensions). Here it comes from factors ``S1 = R1 R1^T`` and
``S2 = R2 R2^T`` (pivoted Cholesky, LAPACK ``dpstrf``, which stops at the numerical rank: a covariance of
N < D frames gives a thin [D, N - 1] factor): the eigenvalues of ``S1 S2`` are those of
``(R1^T R2)(R1^T R2)^T``, so ``tr((S1 S2)^(1/2))`` is the sum of the singular values of the small
``R1^T R2``. Taking singular values of the factor product, rather than square roots of the eigenvalues of
``R1^T S2 R1``, avoids squaring: the square root of an eigenvalue near round-off amplifies its error, which gave
FD ~ 1e-2 for a 1024-d set against itself. The cross-check computes the trace the second way (square roots of
the eigenvalues of the symmetric ``R2^T S1 R2``); the two agree to round-off unless something is wrong (a
"covariance" that is not positive semi-definite, or one so ill-conditioned that the second way loses digits), and
:class:`FrechetResult` reports their discrepancy. Pivots and eigenvalues below round-off (``D * eps * max``) count
as 0, and the distance is clamped at 0; a value below the round-off level of its own terms is reported as exactly 0
(so a set against itself gives 0, not ``5e-11``).

Also here: :func:`fad_inf` (FAD extrapolated to an infinite set, Chung et al. / fadtk's FAD-inf), :func:`kad`
(Kernel Audio Distance: unbiased MMD with a Gaussian kernel, for small sets), and :func:`per_clip_fd`.
"""

from __future__ import annotations

import dataclasses
import logging
import typing as tp
from pathlib import Path

import numpy as np

from genrecraft.core.atomic import atomic_path

logger = logging.getLogger(__name__)

ArrayLike = tp.Union[np.ndarray, tp.Sequence[tp.Sequence[float]]]


@dataclasses.dataclass(frozen=True)
class GaussianStats:
    """Mean ``mu`` [D] and covariance ``sigma`` [D, D] of a set of ``n`` embedding frames (float64)."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int

    def __post_init__(self):
        mu = np.asarray(self.mu, dtype=np.float64)
        sigma = np.asarray(self.sigma, dtype=np.float64)
        if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
            raise ValueError(f"GaussianStats: mu must be [D] and sigma [D, D]; got mu {mu.shape}, sigma {sigma.shape}")
        if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
            raise ValueError("GaussianStats: mu or sigma holds NaN or inf (check the embeddings)")
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "sigma", sigma)

    @property
    def dim(self) -> int:
        return int(self.mu.shape[0])

    @classmethod
    def from_embeddings(cls, frames: ArrayLike) -> "GaussianStats":
        """Fit to embedding frames [N, D] (N >= 2): sample mean and unbiased covariance (``np.cov``)."""
        x = np.asarray(frames, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"need embedding frames of shape [N >= 2, D], got {x.shape} (audio too short for "
                             "the embedding model, or an empty set)")
        if not np.isfinite(x).all():
            raise ValueError("embedding frames hold NaN or inf")
        return cls(x.mean(axis=0), np.cov(x, rowvar=False), x.shape[0])

    def save(self, path: tp.Union[str, Path]) -> Path:
        """Write ``mu``, ``sigma`` and ``n`` to an ``.npz`` file (atomically)."""
        path = Path(path)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, mu=self.mu, sigma=self.sigma, n=self.n)
        return path

    @classmethod
    def load(cls, path: tp.Union[str, Path]) -> "GaussianStats":
        with np.load(path) as data:
            return cls(data["mu"], data["sigma"], int(data["n"]))


@dataclasses.dataclass(frozen=True)
class FrechetResult:
    """A Fréchet distance with its parts and its cross-check.

    ``value``: the distance (>= 0). ``mean_term``: ``|mu1 - mu2|^2``. ``trace_term``: ``tr(S1) + tr(S2) -
    2 tr((S1 S2)^(1/2))``. ``tr_sqrt`` and ``tr_sqrt_check``: ``tr((S1 S2)^(1/2))`` computed as the singular values of
    ``R1^T R2`` and from the eigenvalues of ``R2^T S1 R2`` (see the module docstring); ``discrepancy``: their
    difference relative to ``tr(S1) + tr(S2)``.
    """

    value: float
    mean_term: float
    trace_term: float
    tr_sqrt: float
    tr_sqrt_check: float
    discrepancy: float


# The linear algebra below goes through SciPy's BLAS and LAPACK only (``dgemm`` rather than numpy's ``@``): the numpy
# and SciPy wheels each bundle their own OpenBLAS with its own thread pool, and alternating between the two (one
# pool's threads still spinning while the other works) made the distance ~1.7x slower on 2 cores.


def _factor(sigma: np.ndarray) -> np.ndarray:
    """``R`` [D, r] with ``R R^T = sigma`` for a PSD ``sigma`` [D, D], ``r`` its numerical rank: pivoted Cholesky
    (LAPACK ``dpstrf``, stopping at pivots below ``D * eps * max(diag)``)."""
    from scipy.linalg import lapack

    factor, piv, rank, info = lapack.dpstrf(sigma, lower=1)
    if info < 0:
        raise RuntimeError(f"LAPACK dpstrf failed (info={info})")
    root = np.empty((sigma.shape[0], rank), order="F")
    root[piv - 1] = np.tril(factor[:, :rank])
    return root


def _roundoff(eigenvalues: np.ndarray) -> float:
    return float(eigenvalues.shape[0] * np.finfo(np.float64).eps * max(np.abs(eigenvalues).max(), 0.0))


def _tr_sqrt_product(r1: np.ndarray, r2: np.ndarray) -> float:
    """``tr((S1 S2)^(1/2))`` as the sum of the singular values of ``R1^T R2`` (``Si = Ri Ri^T``)."""
    from scipy.linalg import blas, svdvals

    if min(r1.shape[1], r2.shape[1]) == 0:  # a zero covariance
        return 0.0
    return float(svdvals(blas.dgemm(1.0, r1, r2, trans_a=True), check_finite=False).sum())


def _tr_sqrt_product_eig(root: np.ndarray, other: np.ndarray) -> float:
    """``tr((S1 S2)^(1/2))`` as ``sum(sqrt(eig(R^T S2 R)))`` with ``S1 = R R^T`` (the cross-check)."""
    from scipy.linalg import blas, eigvalsh

    if root.shape[1] == 0:
        return 0.0
    # ``other`` is exactly symmetric: its transpose is the same matrix in the Fortran order BLAS wants (no copy)
    m = blas.dgemm(1.0, root, blas.dgemm(1.0, other.T, root), trans_a=True)
    m = 0.5 * (m + m.T)
    w = eigvalsh(m, check_finite=False)
    w = np.where(w > _roundoff(w), w, 0.0)
    return float(np.sqrt(w).sum())


#: Relative discrepancy between the two computations of tr((S1 S2)^(1/2)) above which a warning is logged.
CHECK_RTOL = 1e-7


def frechet_distance_details(a: GaussianStats, b: GaussianStats, check: bool = True) -> FrechetResult:
    """Fréchet distance between ``a`` and ``b`` with its terms and cross-check (see the module docstring).

    With ``check=False`` the second computation (two matrix products and a symmetric eigenvalue problem) is skipped
    and ``tr_sqrt_check`` is NaN.
    """
    if a.dim != b.dim:
        raise ValueError(f"embedding dimensions differ: {a.dim} vs {b.dim} (were both sets embedded with the same "
                         "backend?)")
    diff = a.mu - b.mu
    mean_term = float(diff @ diff)
    s1 = 0.5 * (a.sigma + a.sigma.T)
    s2 = 0.5 * (b.sigma + b.sigma.T)
    tr1, tr2 = float(np.trace(s1)), float(np.trace(s2))
    r2 = _factor(s2)
    tr_sqrt = _tr_sqrt_product(_factor(s1), r2)
    if check:
        tr_sqrt_check = _tr_sqrt_product_eig(r2, s1)
        discrepancy = abs(tr_sqrt - tr_sqrt_check) / max(tr1 + tr2, np.finfo(np.float64).tiny)
        if discrepancy > CHECK_RTOL:
            logger.warning("Fréchet distance cross-check: tr((S1 S2)^1/2) = %.10g from singular values but %.10g from "
                           "eigenvalues (relative discrepancy %.2e): the covariances may be ill-conditioned or not "
                           "positive semi-definite", tr_sqrt, tr_sqrt_check, discrepancy)
    else:
        tr_sqrt_check, discrepancy = float("nan"), float("nan")
    trace_term = tr1 + tr2 - 2.0 * tr_sqrt
    value = mean_term + trace_term
    # Round-off level of the sum: eps times the size of its terms, times the dimension.
    scale = mean_term + tr1 + tr2 + float(a.mu @ a.mu + b.mu @ b.mu)
    if value <= a.dim * np.finfo(np.float64).eps * scale:
        value = 0.0
    return FrechetResult(value=value, mean_term=mean_term, trace_term=trace_term, tr_sqrt=tr_sqrt,
                         tr_sqrt_check=tr_sqrt_check, discrepancy=discrepancy)


def frechet_distance(a: tp.Union[GaussianStats, ArrayLike], b: tp.Union[GaussianStats, ArrayLike],
                     check: bool = True) -> float:
    """Fréchet distance between two sets: :class:`GaussianStats` or embedding frames [N, D] (float64, >= 0)."""
    a = a if isinstance(a, GaussianStats) else GaussianStats.from_embeddings(a)
    b = b if isinstance(b, GaussianStats) else GaussianStats.from_embeddings(b)
    return frechet_distance_details(a, b, check=check).value


@dataclasses.dataclass(frozen=True)
class InfResult:
    """A metric extrapolated to an infinite set: ``score`` is the intercept of ``metric(n) = score + slope / n``
    fitted on ``points`` ``[(n, metric), ...]``; ``r2`` says how well the line fits."""

    score: float
    slope: float
    r2: float
    points: tp.List[tp.Tuple[int, float]]


def fad_inf(reference: GaussianStats, frames: ArrayLike, steps: int = 15, min_n: tp.Optional[int] = None,
            seed: int = 0) -> InfResult:
    """FAD-inf: FD of ``frames`` [N, D] against ``reference`` extrapolated to N = infinity.

    FD is biased upwards for finite sets, by an amount proportional to 1/N. Subsets of ``n`` frames (drawn with
    replacement, ``n`` from ``min_n`` to N in ``steps``) give FD(n); a line in 1/n gives the intercept. As fadtk's
    FAD-inf, but with a seeded generator so the result is reproducible.
    """
    x = np.asarray(frames, dtype=np.float64)
    n_max = x.shape[0]
    min_n = min_n or max(2, n_max // 4)
    if not 2 <= min_n < n_max:
        raise ValueError(f"fad_inf: min_n={min_n} must be in [2, {n_max}) (the number of frames)")
    if steps < 2:
        raise ValueError(f"fad_inf: steps={steps} must be >= 2")
    rng = np.random.default_rng(seed)
    ns = np.unique(np.linspace(min_n, n_max, steps).astype(int))
    points = []
    for n in ns:
        idx = rng.integers(0, n_max, size=int(n))
        points.append((int(n), frechet_distance_details(reference, GaussianStats.from_embeddings(x[idx]),
                                                        check=False).value))
    inv = 1.0 / np.array([p[0] for p in points], dtype=np.float64)
    ys = np.array([p[1] for p in points])
    slope, intercept = np.polyfit(inv, ys, 1)
    ss_tot = float(((ys - ys.mean()) ** 2).sum())
    r2 = 1.0 - float(((ys - (slope * inv + intercept)) ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    return InfResult(score=float(intercept), slope=float(slope), r2=r2, points=points)


def median_pairwise_distance(x: ArrayLike) -> float:
    """Median Euclidean distance between distinct rows of ``x`` [N, D]."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] < 2:
        raise ValueError("median_pairwise_distance needs at least 2 rows")
    sq = (x * x).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    iu = np.triu_indices(x.shape[0], k=1)
    return float(np.median(np.sqrt(d2[iu])))


#: KAD is reported multiplied by this factor, as kadtk does, so that typical values are not tiny.
KAD_SCALE = 100.0


def kad(reference: ArrayLike, frames: ArrayLike, bandwidth: tp.Optional[float] = None,
        scale: float = KAD_SCALE) -> float:
    """Kernel Audio Distance (Chung et al. 2025): unbiased MMD^2 with a Gaussian kernel, times ``scale``.

    ``reference`` [M, D] and ``frames`` [N, D] (M, N >= 2). The bandwidth defaults to the median pairwise distance
    of the *reference* set, so that several models compared against one reference share one kernel (kadtk takes
    it from the evaluated set, which makes scores of different models incomparable). Unbiased: it has no 1/N bias,
    unlike FD, which makes it the metric of choice for small sets; it can be slightly negative when the two sets
    come from one distribution.
    """
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(frames, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or min(x.shape[0], y.shape[0]) < 2:
        raise ValueError(f"kad needs two sets [M >= 2, D] and [N >= 2, D]; got {x.shape} and {y.shape}")
    if bandwidth is None:
        bandwidth = median_pairwise_distance(x)
    if not bandwidth > 0:
        raise ValueError(f"kad: bandwidth={bandwidth} must be positive (all reference frames identical?)")
    gamma = 1.0 / (2.0 * bandwidth ** 2)

    def gram(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        d2 = (p * p).sum(1)[:, None] + (q * q).sum(1)[None, :] - 2.0 * p @ q.T
        return np.exp(-gamma * np.maximum(d2, 0.0))

    m, n = x.shape[0], y.shape[0]
    kxx, kyy, kxy = gram(x, x), gram(y, y), gram(x, y)
    mmd = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
           - 2.0 * kxy.mean())
    return float(scale * mmd)


def per_clip_fd(reference: GaussianStats, clips: tp.Mapping[str, np.ndarray]) -> tp.List[tp.Tuple[str, float]]:
    """FD of each clip's own frames [n_i, D] against ``reference``, largest (most unlike the reference) first.

    Single clips have few frames, so their covariance is rank-deficient and the values are large and only
    comparable with each other: use them to find outliers (silence, noise, a broken generation), not as a score.
    """
    out, skipped = [], []
    for name, frames in clips.items():
        if np.asarray(frames).shape[0] < 2:
            skipped.append(name)
            continue
        out.append((name, frechet_distance_details(reference, GaussianStats.from_embeddings(frames),
                                                   check=False).value))
    if skipped:
        logger.warning("per-clip FD: %d clip(s) have fewer than 2 embedding frames (too short for the embedding "
                       "model) and were skipped, e.g. %s", len(skipped), skipped[0])
    return sorted(out, key=lambda item: -item[1])
