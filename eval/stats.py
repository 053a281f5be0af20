"""Bootstrap confidence intervals, seeded so that a report is reproducible.

Intervals are percentile bootstrap intervals. Ratios of sums (cross-entropy = summed NLL / token count) are
resampled as ratios, never as means of per-clip ratios, so a short clip weighs what its tokens weigh.
"""

from __future__ import annotations

import typing as tp

import numpy as np

DEFAULT_BOOTSTRAP = 1000
DEFAULT_CONFIDENCE = 0.95


def check_bootstrap_args(n_boot: int, confidence: float) -> None:
    if n_boot < 0:
        raise ValueError(f"bootstrap={n_boot} must be >= 0 (0 turns confidence intervals off)")
    if not 0.5 <= confidence < 1.0:
        raise ValueError(f"confidence={confidence} must be in [0.5, 1), e.g. 0.95")


def resample_counts(n_units: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """How often each of ``n_units`` units is drawn in each of ``n_boot`` resamples: [n_boot, n_units] (int)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=n_boot)


def percentile_interval(samples: np.ndarray, confidence: float = DEFAULT_CONFIDENCE) -> tp.Tuple[float, float]:
    """The central ``confidence`` interval of bootstrap ``samples`` (NaN-free)."""
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(samples, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def mean_interval(values: tp.Sequence[float], n_boot: int = DEFAULT_BOOTSTRAP,
                  confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> tp.Tuple[float, float]:
    """Bootstrap interval of the mean of ``values`` (e.g. one distance per clip pair)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2 or n_boot == 0:
        return float("nan"), float("nan")
    counts = resample_counts(x.size, n_boot, seed)
    return percentile_interval(counts @ x / x.size, confidence)


def statistic_interval(n_units: int, statistic: tp.Callable[[np.ndarray], float], n_boot: int = 200,
                       confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> tp.Tuple[float, float]:
    """Bootstrap interval of any ``statistic(indices)`` of a set of ``n_units`` units (indices drawn with
    replacement), e.g. a Fréchet distance recomputed on resampled clips."""
    if n_units < 2 or n_boot == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    samples = [statistic(rng.integers(0, n_units, size=n_units)) for _ in range(n_boot)]
    return percentile_interval(np.array(samples), confidence)
