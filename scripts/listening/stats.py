"""Statistics of a listening test: preference counts with a binomial test and Wilson interval, mean opinion
scores with a t interval, and agreement between raters (Fleiss' kappa, Krippendorff's alpha)."""

from __future__ import annotations

import dataclasses
import math
import typing as tp

import numpy as np


@dataclasses.dataclass(frozen=True)
class WinRate:
    """How often one model was preferred over another (or over all others). Ties ("no preference") are counted
    but left out of the rate and of the test: rate = wins / (wins + losses), the sign test's convention."""

    wins: int
    losses: int
    ties: int
    win_rate: tp.Optional[float]
    ci_low: tp.Optional[float]
    ci_high: tp.Optional[float]
    p_value: tp.Optional[float]  # two-sided exact binomial test of win_rate = 0.5

    @property
    def decided(self) -> int:
        return self.wins + self.losses


def win_rate(wins: int, losses: int, ties: int = 0, confidence: float = 0.95) -> WinRate:
    """Win rate with its Wilson score interval and a two-sided exact binomial test against 0.5 (scipy)."""
    from scipy.stats import binomtest

    n = wins + losses
    if n == 0:
        return WinRate(wins, losses, ties, None, None, None, None)
    result = binomtest(wins, n, 0.5, alternative="two-sided")
    ci = result.proportion_ci(confidence_level=confidence, method="wilson")
    return WinRate(wins, losses, ties, wins / n, float(ci.low), float(ci.high), float(result.pvalue))


@dataclasses.dataclass(frozen=True)
class MeanScore:
    """Mean opinion score with a t-based confidence interval (``None`` where it is undefined)."""

    n: int
    mean: tp.Optional[float]
    sd: tp.Optional[float]
    ci_low: tp.Optional[float]
    ci_high: tp.Optional[float]


def mean_score(scores: tp.Sequence[float], confidence: float = 0.95) -> MeanScore:
    """Mean, sample standard deviation and the ``confidence`` t interval of ``scores``."""
    from scipy.stats import t as student_t

    x = np.asarray(scores, dtype=np.float64)
    n = int(x.size)
    if n == 0:
        return MeanScore(0, None, None, None, None)
    mean = float(x.mean())
    if n == 1:
        return MeanScore(1, mean, None, None, None)
    sd = float(x.std(ddof=1))
    half = float(student_t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return MeanScore(n, mean, sd, mean - half, mean + half)


def fleiss_kappa(counts: np.ndarray) -> tp.Optional[float]:
    """Fleiss' kappa of ``counts`` [items, categories]: how many raters put item i in category j.

    Every item must have the same number of raters (at least 2). Returns ``None`` when all ratings fall in one
    category (chance agreement is then 1 and kappa is undefined).
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] == 0:
        raise ValueError(f"counts has shape {counts.shape}; expected [items, categories] with at least one item")
    per_item = counts.sum(axis=1)
    n = per_item[0]
    if not np.all(per_item == n) or n < 2:
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of raters for every item")
    p_category = counts.sum(axis=0) / counts.sum()
    p_item = ((counts ** 2).sum(axis=1) - n) / (n * (n - 1))
    p_chance = float((p_category ** 2).sum())
    if math.isclose(p_chance, 1.0):
        return None
    return (float(p_item.mean()) - p_chance) / (1.0 - p_chance)


def krippendorff_alpha(data: np.ndarray, level: str,
                       value_domain: tp.Optional[tp.Sequence[float]] = None) -> tp.Optional[float]:
    """Krippendorff's alpha of ``data`` [raters, items] (NaN where a rater did not rate an item), with the
    ``krippendorff`` package. ``None`` when it is undefined (fewer than two ratings of any item, or no variation)."""
    import krippendorff

    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] < 2:
        return None
    try:
        with np.errstate(divide="ignore", invalid="ignore"):
            value = float(krippendorff.alpha(reliability_data=data, level_of_measurement=level,
                                             value_domain=value_domain))
    except ValueError:
        return None
    return value if math.isfinite(value) else None
