"""The demo's claims, checked on its own outputs (issue 18): what ``python -m genrecraft.demo`` prints at the end.

1. ``decodable``: every base, full and LoRA clip decodes to audio the labeller reads (a key, and a tempo in
   40..240 bpm);
2. ``fad_full`` / ``fad_lora``: FAD against style B's test clips is lower for the fine-tuned model than for the
   base, with non-overlapping bootstrap intervals (``strict``) or as point estimates (the ``--quick`` setting's
   looser version: its few clips give wide intervals);
3. ``valid_ce_full`` / ``valid_ce_lora``: valid CE on style B falls during fine-tuning: the best epoch is not the
   first (``strict``), or the best valid CE is below the first epoch's or equal to it (looser: with 3 epochs of 16
   updates the first epoch may be the best).

:func:`check` returns the checks; :func:`demo_rows` the figures of ``bench/results/demo.json``.
"""

from __future__ import annotations

import dataclasses
import math
import typing as tp
from pathlib import Path

from eval.generate import REAL_LABEL

from .core.runs import read_history, valid_ce

FINE_TUNED = ("full", "lora")


@dataclasses.dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"[{'met' if self.ok else 'NOT MET'}] {self.name}: {self.detail}"


def _valid_history(folder: Path) -> tp.List[float]:
    return valid_ce(read_history(folder))


def check(report: tp.Mapping[str, tp.Any], runs: tp.Mapping[str, Path], strict: bool = True) -> tp.List[Check]:
    """The demo's checks (see the module docstring) from ``eval/report.json``'s content and the runs' folders."""
    results = report["results"]
    checks = []
    unreadable = []
    for label in ("base",) + FINE_TUNED:
        for clip in results.get(label, {}).get("adherence", {}).get("clips", []):
            bpm = clip.get("bpm") or 0.0
            if not (clip.get("key") and 40.0 <= bpm <= 240.0):
                unreadable.append(f"{label}/{Path(clip['path']).name}")
    n = sum(len(results.get(l, {}).get("adherence", {}).get("clips", [])) for l in ("base",) + FINE_TUNED)
    checks.append(Check("decodable", n > 0 and not unreadable,
                        f"{n - len(unreadable)} of {n} clips read by the labeller (key and a tempo in 40..240 bpm)"
                        + (f"; not: {', '.join(unreadable[:5])}" if unreadable else "")))
    base = results["base"]["fad"]
    for label in FINE_TUNED:
        fad = results[label]["fad"]
        lower = fad["fad"] < base["fad"]
        apart = (all(math.isfinite(v) for v in fad["fad_interval"] + base["fad_interval"])
                 and fad["fad_interval"][1] < base["fad_interval"][0])
        ok = lower and (apart or not strict)
        checks.append(Check(f"fad_{label}", ok,
                            f"FAD {fad['fad']:.2f} [{fad['fad_interval'][0]:.2f}, {fad['fad_interval'][1]:.2f}] vs "
                            f"base {base['fad']:.2f} [{base['fad_interval'][0]:.2f}, {base['fad_interval'][1]:.2f}]"
                            f" ({'lower, intervals apart' if apart else 'lower, intervals overlap' if lower else 'higher than the base'})"))
    for label in FINE_TUNED:
        valid = _valid_history(runs[label])
        if not valid:
            checks.append(Check(f"valid_ce_{label}", False, "no valid CE in the run's history"))
            continue
        best_epoch = min(range(len(valid)), key=valid.__getitem__) + 1
        ok = best_epoch > 1 if strict else min(valid) <= valid[0]
        checks.append(Check(f"valid_ce_{label}", ok,
                            f"valid CE per epoch {', '.join(f'{v:.3f}' for v in valid)}: best at epoch {best_epoch} "
                            f"(its checkpoint is the one evaluated)"))
    return checks


def demo_rows(report: tp.Mapping[str, tp.Any]) -> tp.List[tp.Dict[str, tp.Any]]:
    """Rows of ``bench/results/demo.json``: one per model (base, full, lora, real) with FAD, CE and adherence."""
    rows = []
    for label, name in (("base", "base"), ("full", "full"), ("lora", "lora"), (REAL_LABEL, "real")):
        r = report["results"].get(label, {})
        fad, ce, adh = r.get("fad", {}), r.get("ce", {}), r.get("adherence", {})
        fad_iv = fad.get("fad_interval") or [None, None]
        ce_iv = ce.get("intervals", {}).get("ce") or [None, None]
        rows.append({"model": name, "fad": fad.get("fad"), "fad_low": fad_iv[0], "fad_high": fad_iv[1],
                     "ce": ce.get("metrics", {}).get("ce"), "ce_low": ce_iv[0], "ce_high": ce_iv[1],
                     "tempo_adherence": adh.get("tempo_adherence"), "key_adherence": adh.get("key_adherence"),
                     "tag_distance": adh.get("tag_distance"),
                     "flagged_copies": len(r.get("memorisation", {}).get("flagged", []))
                     if "memorisation" in r else None})
    return rows
