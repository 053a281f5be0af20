"""Statistics of the listening test against closed forms and published values, and the analysis tables on
hand-made answers whose results can be counted by hand."""

import math

import numpy as np
import pytest

from scripts.listening import analysis, stats


def wilson(k, n, z=1.959963984540054):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_win_rate_matches_closed_forms():
    wr = stats.win_rate(7, 3, ties=2)
    # Two-sided exact binomial test of 7 of 10 against 1/2: 2 * P(X >= 7) = 2 * (120 + 45 + 10 + 1) / 1024.
    assert wr.p_value == pytest.approx(352 / 1024, rel=1e-12)
    assert wr.win_rate == pytest.approx(0.7)
    assert (wr.ci_low, wr.ci_high) == pytest.approx(wilson(7, 10), rel=1e-9)
    assert wr.ties == 2 and wr.decided == 10
    assert stats.win_rate(0, 0, ties=4).p_value is None  # only ties: nothing to test


def test_mean_score_t_interval():
    scores = [3, 4, 4, 5, 2, 4]
    ms = stats.mean_score(scores)
    mean, sd = np.mean(scores), np.std(scores, ddof=1)
    half = 2.570581835636314 * sd / math.sqrt(6)  # t(0.975, 5)
    assert ms.mean == pytest.approx(mean) and ms.sd == pytest.approx(sd)
    assert (ms.ci_low, ms.ci_high) == pytest.approx((mean - half, mean + half), rel=1e-9)
    assert stats.mean_score([4]).ci_low is None


def test_fleiss_kappa_textbook_example():
    # Fleiss (1971) as worked on Wikipedia: 10 items, 14 raters, 5 categories, kappa = 0.210.
    counts = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                       [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    assert stats.fleiss_kappa(counts) == pytest.approx(0.20993, abs=5e-5)
    assert stats.fleiss_kappa(np.array([[3, 0], [0, 3]])) == pytest.approx(1.0)
    assert stats.fleiss_kappa(np.array([[3, 0], [3, 0]])) is None  # one category only: undefined
    with pytest.raises(ValueError, match="same number"):
        stats.fleiss_kappa(np.array([[2, 0], [1, 0]]))


def test_krippendorff_alpha_reference_example():
    # The reliability data of Krippendorff's "Computing Krippendorff's alpha-reliability" (3 coders, 15 units).
    nan = np.nan
    data = np.array([[nan, nan, nan, nan, nan, 3, 4, 1, 2, 1, 1, 3, 3, nan, 3],
                     [1, nan, 2, 1, 3, 3, 4, 3, nan, nan, nan, nan, nan, nan, nan],
                     [nan, nan, 2, 1, 3, 4, 4, nan, 2, 1, 1, 3, 3, nan, 4]])
    assert stats.krippendorff_alpha(data, "nominal") == pytest.approx(0.691, abs=5e-4)
    assert stats.krippendorff_alpha(data, "interval") == pytest.approx(0.811, abs=5e-4)
    assert stats.krippendorff_alpha(np.array([[1.0, 2.0]]), "nominal") is None  # one rater


def _row(rater, pair_id, a, b, pref, quality):
    qa, qb = quality
    return {"rater": rater, "pair_id": pair_id, "model_A": a, "model_B": b, "preference": pref,
            "preferred_model": {"A": a, "B": b, "none": "none"}[pref], "quality_A": qa, "quality_B": qb}


def test_analysis_tables_on_hand_made_answers():
    rows = [
        _row("r1", "p1", "base", "full", "A", (4, 2)),
        _row("r2", "p1", "base", "full", "A", (5, 3)),
        _row("r1", "p2", "full", "base", "B", (2, 4)),
        _row("r2", "p2", "full", "base", "none", (3, 3)),
        _row("r1", "p3", "lora", "base", "A", (4, 4)),
        _row("r2", "p3", "lora", "base", "B", (3, 5)),
    ]
    models = ["base", "full", "lora"]
    table = {(r["model"], r["opponent"]): r for r in analysis.win_rates(rows, models)}
    assert (table["base", "all"]["wins"], table["base", "all"]["losses"], table["base", "all"]["ties"]) == (4, 1, 1)
    assert table["base", "all"]["p_value"] == pytest.approx(stats.win_rate(4, 1).p_value)
    assert (table["full", "all"]["wins"], table["full", "all"]["losses"]) == (0, 3)
    assert (table["base", "full"]["wins"], table["base", "full"]["losses"], table["base", "full"]["ties"]) == (3, 0, 1)
    assert (table["base", "lora"]["wins"], table["base", "lora"]["losses"]) == (1, 1)
    assert ("full", "lora") not in table  # they never met

    majority = {(r["model"], r["opponent"]): r for r in analysis.majority_win_rates(rows, models)}
    # p1: base 2-0; p2: base 1, none 1 -> base; p3: one vote each -> tie.
    assert (majority["base", "full"]["wins"], majority["base", "full"]["losses"]) == (2, 0)
    assert majority["base", "lora"]["ties"] == 1

    side = analysis.position_bias(rows)
    assert (side["wins"], side["losses"], side["ties"]) == (3, 2, 1)  # A chosen 3 times, B twice, one "none"

    mos = {(r["model"], r["question"]): r for r in analysis.mos(rows, models, ["quality"])}
    assert mos["base", "quality"]["n"] == 6
    assert mos["base", "quality"]["mean"] == pytest.approx(np.mean([4, 5, 4, 3, 4, 5]))
    assert mos["full", "quality"]["mean"] == pytest.approx(np.mean([2, 3, 2, 3]))

    agreement = {(r["measure"], r["target"]): r for r in analysis.agreement(rows, ["quality"])}
    # Choices per pair (A/B/none): p1 A,A; p2 B,none; p3 A,B -> Fleiss' kappa by hand.
    counts = np.array([[2, 0, 0], [0, 1, 1], [1, 1, 0]])
    assert agreement["fleiss_kappa", "preference"]["value"] == pytest.approx(stats.fleiss_kappa(counts))
    assert agreement["fleiss_kappa", "preference"]["items"] == 3
    assert agreement["krippendorff_alpha_ordinal", "quality"]["items"] == 6
