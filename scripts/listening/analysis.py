"""Analysis of a listening test: unblind the answers with the key, then win rates, MOS and rater agreement.

- Win rate of each model against all others and head to head, with a two-sided exact binomial test against 0.5
  and a Wilson 95 % interval. "No preference" answers are reported as ties and left out of the rate and test.
  Each answer counts once: with several raters per pair the answers are not independent, so read p-values
  near 0.05 with care (the per-pair majority, also written, is one conservative alternative).
- Position bias: how often side A was preferred over side B, with the same test (the A/B order is random, so a
  bias adds noise rather than favouring a model).
- Mean opinion score (1-5) per model and per question, with a t 95 % interval.
- Agreement between raters: Krippendorff's alpha (nominal for the preference, ordinal for each question; it
  allows raters who skipped pairs) and Fleiss' kappa of the preference over the pairs every rater answered.

Outputs (``<folder>/analysis`` by default): ``answers.csv`` (one unblinded row per rater and pair),
``win_rates.csv``, ``mos.csv``, ``agreement.csv``, ``summary.json``, ``report.md`` and ``listening_test.png``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import typing as tp
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from genrecraft.core import atomic

from . import pairs as pairs_mod, stats
from .store import RatingStore

CHOICE_CODES = {"A": 0, "B": 1, "none": 2}


@dataclasses.dataclass
class Analysis:
    """Everything :func:`analyze` computed; ``files`` maps an output name to its path."""

    models: tp.List[str]
    questions: tp.List[str]
    answers: tp.List[tp.Dict[str, tp.Any]]
    win_rates: tp.List[tp.Dict[str, tp.Any]]
    majority: tp.List[tp.Dict[str, tp.Any]]
    position: tp.Dict[str, tp.Any]
    mos: tp.List[tp.Dict[str, tp.Any]]
    agreement: tp.List[tp.Dict[str, tp.Any]]
    files: tp.Dict[str, Path] = dataclasses.field(default_factory=dict)


def load_answers(folder: Path, key_path: tp.Optional[Path] = None, db_path: tp.Optional[Path] = None,
                 complete_only: bool = True) -> tp.Tuple[tp.Dict[str, tp.Any], tp.Dict[str, tp.Any],
                                                         tp.List[tp.Dict[str, tp.Any]]]:
    """``(pairs, key, rows)``: the answers joined with the key, one row per rater and pair.

    Each row has rater, pair_id, prompt_index, prompt, model_A, model_B, preference ('A', 'B', 'none' or None),
    preferred_model (a model, 'none' or None), ``<question>_A`` / ``<question>_B`` scores and their
    ``<question>_<model>`` copies, played seconds, comment and complete. ``complete_only`` keeps the pairs a
    rater finished (a preference, every score, and both clips heard where the test asks for it).
    """
    folder = Path(folder)
    test = pairs_mod.load_pairs(folder)
    key = pairs_mod.load_key(Path(key_path) if key_path else folder / "key.json")
    if key["test_id"] != test["test_id"]:
        raise ValueError(f"the key ({key['test_id']}) belongs to another test than {folder}/pairs.json "
                         f"({test['test_id']}); pass --key with the right key file")
    db_path = Path(db_path) if db_path else folder / "ratings.sqlite"
    if not db_path.exists():
        raise FileNotFoundError(f"no ratings database at {db_path}: collect answers with `python -m scripts.rate "
                                f"{folder}` first (or pass --db)")
    questions = [q["id"] for q in test["questions"]]
    store = RatingStore(db_path, test["test_id"], [p["id"] for p in test["pairs"]], questions)
    pair_key = {p["id"]: p for p in key["pairs"]}
    rows = []
    for answer in store.answers():
        if complete_only and not answer["complete"]:
            continue
        pk = pair_key[answer["pair_id"]]
        row = {"rater": answer["rater"], "pair_id": answer["pair_id"], "prompt_index": pk["prompt_index"],
               "prompt": key["prompts"][pk["prompt_index"]], "model_A": pk["a"], "model_B": pk["b"],
               "preference": answer["preference"]}
        choice = answer["preference"]
        row["preferred_model"] = {"A": pk["a"], "B": pk["b"], "none": "none"}.get(choice) if choice else None
        for side in ("A", "B"):
            for q in questions:
                row[f"{q}_{side}"] = answer[f"{q}_{side}"]
        for side in ("A", "B"):
            row[f"played_{side}_s"] = answer[f"played_{side}_s"]
        row["comment"] = answer["comment"]
        row["complete"] = answer["complete"]
        rows.append(row)
    return test, key, rows


def _win_row(model: str, opponent: str, wr: stats.WinRate) -> tp.Dict[str, tp.Any]:
    return {"model": model, "opponent": opponent, "wins": wr.wins, "losses": wr.losses, "ties": wr.ties,
            "n": wr.wins + wr.losses + wr.ties, "win_rate": wr.win_rate, "ci_low": wr.ci_low, "ci_high": wr.ci_high,
            "p_value": wr.p_value}


def win_rates(rows: tp.Sequence[tp.Mapping[str, tp.Any]], models: tp.Sequence[str]) -> tp.List[tp.Dict[str, tp.Any]]:
    """Per model against all others (opponent 'all'), then head to head for each pair of models that met."""
    outcome: tp.Dict[tp.Tuple[str, str], Counter] = defaultdict(Counter)  # (model, opponent) -> wins/losses/ties
    for row in rows:
        if row["preference"] is None:
            continue
        a, b = row["model_A"], row["model_B"]
        winner = row["preferred_model"]
        for me, other in ((a, b), (b, a)):
            result = "ties" if winner == "none" else ("wins" if winner == me else "losses")
            outcome[me, other][result] += 1
    out = []
    for m in models:
        total = Counter()
        for (me, _), c in outcome.items():
            if me == m:
                total.update(c)
        out.append(_win_row(m, "all", stats.win_rate(total["wins"], total["losses"], total["ties"])))
    for i, m in enumerate(models):
        for other in models[i + 1:]:
            if (m, other) in outcome:
                c = outcome[m, other]
                out.append(_win_row(m, other, stats.win_rate(c["wins"], c["losses"], c["ties"])))
    return out


def majority_win_rates(rows: tp.Sequence[tp.Mapping[str, tp.Any]], models: tp.Sequence[str]
                       ) -> tp.List[tp.Dict[str, tp.Any]]:
    """Head to head on per-pair majority votes (one verdict per pair; a tied vote is a tie): independent units."""
    votes: tp.Dict[str, Counter] = defaultdict(Counter)
    meta: tp.Dict[str, tp.Tuple[str, str]] = {}
    for row in rows:
        if row["preference"] is not None:
            votes[row["pair_id"]][row["preferred_model"]] += 1
            meta[row["pair_id"]] = (row["model_A"], row["model_B"])
    majority_rows = []
    for pid, counter in votes.items():
        a, b = meta[pid]
        winner = "none" if counter[a] == counter[b] else (a if counter[a] > counter[b] else b)
        majority_rows.append({"model_A": a, "model_B": b, "preferred_model": winner, "preference": "x"})
    return [dict(r, unit="pair majority") for r in win_rates(majority_rows, models)]


def position_bias(rows: tp.Sequence[tp.Mapping[str, tp.Any]]) -> tp.Dict[str, tp.Any]:
    """How often side A was preferred over side B, whatever the models: far from 0.5 means raters favour a side
    (the random A/B order keeps that from favouring a model, but it adds noise)."""
    counts = Counter(r["preference"] for r in rows if r["preference"] is not None)
    return _win_row("side A", "side B", stats.win_rate(counts["A"], counts["B"], counts["none"]))


def mos(rows: tp.Sequence[tp.Mapping[str, tp.Any]], models: tp.Sequence[str], questions: tp.Sequence[str]
        ) -> tp.List[tp.Dict[str, tp.Any]]:
    """Mean opinion score per model and question, with its 95 % t interval."""
    scores: tp.Dict[tp.Tuple[str, str], tp.List[int]] = defaultdict(list)
    for row in rows:
        for side in ("A", "B"):
            for q in questions:
                if row[f"{q}_{side}"] is not None:
                    scores[row[f"model_{side}"], q].append(row[f"{q}_{side}"])
    out = []
    for q in questions:
        for m in models:
            s = stats.mean_score(scores[m, q])
            out.append({"question": q, "model": m, "n": s.n, "mean": s.mean, "sd": s.sd, "ci_low": s.ci_low,
                        "ci_high": s.ci_high})
    return out


def agreement(rows: tp.Sequence[tp.Mapping[str, tp.Any]], questions: tp.Sequence[str]) -> tp.List[tp.Dict[str, tp.Any]]:
    """Krippendorff's alpha of the preference (nominal) and of each question (ordinal), and Fleiss' kappa of the
    preference over the pairs that every rater answered."""
    raters = sorted({r["rater"] for r in rows})
    pair_ids = sorted({r["pair_id"] for r in rows})
    r_index = {r: i for i, r in enumerate(raters)}
    p_index = {p: i for i, p in enumerate(pair_ids)}
    pref = np.full((len(raters), len(pair_ids)), np.nan)
    scores = {q: np.full((len(raters), 2 * len(pair_ids)), np.nan) for q in questions}
    for row in rows:
        i, j = r_index[row["rater"]], p_index[row["pair_id"]]
        if row["preference"] is not None:
            pref[i, j] = CHOICE_CODES[row["preference"]]
        for q in questions:
            for k, side in enumerate(("A", "B")):
                if row[f"{q}_{side}"] is not None:
                    scores[q][i, 2 * j + k] = row[f"{q}_{side}"]

    out = []
    kappa = None
    everyone = np.all(~np.isnan(pref), axis=0) if len(raters) >= 2 else np.zeros(len(pair_ids), bool)
    if everyone.any():
        counts = np.stack([(pref[:, everyone] == code).sum(axis=0) for code in CHOICE_CODES.values()], axis=1)
        kappa = stats.fleiss_kappa(counts)
    paired = int((np.sum(~np.isnan(pref), axis=0) >= 2).sum()) if len(raters) else 0
    out.append({"measure": "fleiss_kappa", "target": "preference", "value": kappa, "raters": len(raters),
                "items": int(everyone.sum())})
    out.append({"measure": "krippendorff_alpha_nominal", "target": "preference",
                "value": stats.krippendorff_alpha(pref, "nominal"), "raters": len(raters), "items": paired})
    for q in questions:
        data = scores[q]
        items = int((np.sum(~np.isnan(data), axis=0) >= 2).sum()) if len(raters) else 0
        out.append({"measure": "krippendorff_alpha_ordinal", "target": q,
                    "value": stats.krippendorff_alpha(data, "ordinal", value_domain=[1, 2, 3, 4, 5]),
                    "raters": len(raters), "items": items})
    return out


# ---------------------------------------------------------------------------------------------------------------
# Outputs


def _csv_text(rows: tp.Sequence[tp.Mapping[str, tp.Any]], columns: tp.Optional[tp.Sequence[str]] = None) -> str:
    buf = io.StringIO()
    columns = list(columns or (rows[0].keys() if rows else []))
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return buf.getvalue()


def _fmt(value: tp.Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"
    return str(value)


def markdown_report(result: Analysis) -> str:
    """The tables of ``result`` as markdown."""
    lines = ["# Listening test", "", f"{len({r['rater'] for r in result.answers})} raters, "
             f"{len(result.answers)} answered pairs.", "", "## Preference (win rate, ties left out)", "",
             "| model | against | wins | losses | ties | win rate | 95 % CI (Wilson) | p (binomial) |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |"]
    for r in result.win_rates:
        ci = f"{_fmt(r['ci_low'])} to {_fmt(r['ci_high'])}" if r["ci_low"] is not None else "n/a"
        lines.append(f"| {r['model']} | {r['opponent']} | {r['wins']} | {r['losses']} | {r['ties']} | "
                     f"{_fmt(r['win_rate'])} | {ci} | {_fmt(r['p_value'])} |")
    pos = result.position
    lines += ["", f"Side A was preferred in {pos['wins']} answers and side B in {pos['losses']} "
              f"(p = {_fmt(pos['p_value'])}); a small p means raters favour one side.",
              "", "## Mean opinion score (1-5)", "", "| question | model | n | mean | 95 % CI |",
              "| --- | --- | ---: | ---: | --- |"]
    for r in result.mos:
        ci = f"{_fmt(r['ci_low'], 2)} to {_fmt(r['ci_high'], 2)}" if r["ci_low"] is not None else "n/a"
        lines.append(f"| {r['question']} | {r['model']} | {r['n']} | {_fmt(r['mean'], 2)} | {ci} |")
    lines += ["", "## Agreement between raters", "", "| measure | of | value | raters | items |",
              "| --- | --- | ---: | ---: | ---: |"]
    for r in result.agreement:
        lines.append(f"| {r['measure']} | {r['target']} | {_fmt(r['value'])} | {r['raters']} | {r['items']} |")
    return "\n".join(lines) + "\n"


def plot(result: Analysis, path: Path) -> Path:
    """One PNG: win rate per model (Wilson intervals), head-to-head shares, and MOS per question (t intervals)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models, questions = result.models, result.questions
    colors = {m: plt.cm.tab10(i % 10) for i, m in enumerate(models)}
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), gridspec_kw={"width_ratios": [1, 1.3, 1.5]})

    ax = axes[0]
    overall = [r for r in result.win_rates if r["opponent"] == "all"]
    for x, r in enumerate(overall):
        if r["win_rate"] is None:
            continue
        ax.bar(x, r["win_rate"], color=colors[r["model"]], width=0.6)
        ax.errorbar(x, r["win_rate"], yerr=[[r["win_rate"] - r["ci_low"]], [r["ci_high"] - r["win_rate"]]],
                    color="black", capsize=5)
        ax.text(x, 0.02, f"{r['wins']}-{r['losses']}-{r['ties']}", ha="center", va="bottom", fontsize=8,
                color="white")
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(range(len(overall)), [r["model"] for r in overall])
    ax.set_ylim(0, 1)
    ax.set_ylabel("win rate (ties left out)")
    ax.set_title("Preferred over the other models\n(95 % Wilson interval; W-L-T)")

    ax = axes[1]
    heads = [r for r in result.win_rates if r["opponent"] != "all"]
    for y, r in enumerate(heads):
        n = max(r["n"], 1)
        left = 0.0
        for count, color in ((r["wins"], colors[r["model"]]), (r["ties"], "lightgrey"),
                             (r["losses"], colors[r["opponent"]])):
            ax.barh(y, count / n, left=left, height=0.6, color=color)
            if count:
                ax.text(left + count / n / 2, y, str(count), ha="center", va="center", fontsize=9)
            left += count / n
    labels = []
    for r in heads:
        p = f", p={_fmt(r['p_value'], 2)}" if r["p_value"] is not None else ""
        labels.append(f"{r['model']} vs {r['opponent']}\n(n={r['n']}{p})")
    ax.set_yticks(range(len(heads)), labels)
    ax.set_ylim(max(len(heads), 1) - 0.4, -0.6)
    ax.set_xlim(0, 1)
    ax.axvline(0.5, color="black", linewidth=0.8, zorder=0)
    ax.set_xlabel("share of answers: left model | no preference | right model")
    ax.set_title("Head to head (answers per outcome)")

    ax = axes[2]
    width = 0.8 / max(len(models), 1)
    for k, m in enumerate(models):
        rows = {r["question"]: r for r in result.mos if r["model"] == m}
        xs = [i + (k - (len(models) - 1) / 2) * width for i in range(len(questions))]
        means = [rows[q]["mean"] if rows[q]["mean"] is not None else np.nan for q in questions]
        err = [[(rows[q]["mean"] - rows[q]["ci_low"]) if rows[q]["ci_low"] is not None else 0 for q in questions],
               [(rows[q]["ci_high"] - rows[q]["mean"]) if rows[q]["ci_high"] is not None else 0 for q in questions]]
        ax.bar(xs, means, width=width, color=colors[m], label=m)
        ax.errorbar(xs, means, yerr=err, fmt="none", color="black", capsize=3)
    ax.set_xticks(range(len(questions)), questions)
    ax.set_ylim(1, 5)
    ax.set_ylabel("mean opinion score")
    ax.set_title("Ratings (95 % t interval)")
    ax.legend(loc="upper right", fontsize=8)

    fig.tight_layout()
    with atomic.atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)


def analyze(folder: Path, key_path: tp.Optional[Path] = None, db_path: tp.Optional[Path] = None,
            out: tp.Optional[Path] = None, complete_only: bool = True) -> Analysis:
    """Analyse the answers collected for the listening test in ``folder`` and write the outputs to ``out``
    (default ``<folder>/analysis``)."""
    test, key, rows = load_answers(folder, key_path, db_path, complete_only)
    models = list(key["models"])
    questions = [q["id"] for q in test["questions"]]
    result = Analysis(models=models, questions=questions, answers=rows, win_rates=win_rates(rows, models),
                      majority=majority_win_rates(rows, models), position=position_bias(rows),
                      mos=mos(rows, models, questions),
                      agreement=agreement(rows, questions))
    out = Path(out) if out else Path(folder) / "analysis"
    answer_columns = (["rater", "pair_id", "prompt_index", "prompt", "model_A", "model_B", "preference",
                       "preferred_model"] + [f"{q}_{s}" for s in ("A", "B") for q in questions]
                      + ["played_A_s", "played_B_s", "comment", "complete"])
    win_columns = ["model", "opponent", "wins", "losses", "ties", "n", "win_rate", "ci_low", "ci_high", "p_value"]
    result.files = {
        "answers": atomic.write_text(out / "answers.csv", _csv_text(rows, answer_columns)),
        "win_rates": atomic.write_text(out / "win_rates.csv", _csv_text(
            [dict(r, unit="answer") for r in result.win_rates] + result.majority
            + [dict(result.position, unit="side")], ["unit", *win_columns])),
        "mos": atomic.write_text(out / "mos.csv", _csv_text(result.mos)),
        "agreement": atomic.write_text(out / "agreement.csv", _csv_text(result.agreement)),
        "summary": atomic.write_json(out / "summary.json", {
            "test_id": test["test_id"], "models": models, "questions": questions,
            "raters": sorted({r["rater"] for r in rows}), "answers": len(rows), "win_rates": result.win_rates,
            "majority_win_rates": result.majority, "position_bias": result.position, "mos": result.mos,
            "agreement": result.agreement}),
        "report": atomic.write_text(out / "report.md", markdown_report(result)),
    }
    result.files["plot"] = plot(result, out / "listening_test.png")
    return result
