"""Training curves of Dora runs: cross-entropy and perplexity over steps and epochs, as PNG plots.

    python -m genrecraft.curves <SIG | xp folder> [more runs ...] [--out DIR]

One run: ``training_curves.png`` next to the run (``<xp>/curves/``, or ``--out``) with CE and perplexity per
training update (from the run's TensorBoard events) and per epoch (train and valid, from ``history.json``), and valid CE per
codebook (``ce_q1..``). Several runs: also ``compare_valid_ce.png`` overlaying their valid CE.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import typing as tp
from pathlib import Path

from .core import cli, runs
from .models import _xp_folder

STEP_STAGE = "train_step"  # the TensorBoard section of per-update metrics (genrecraft.solvers writes it)


def _folder(run: tp.Union[str, Path]) -> Path:
    path = Path(run)
    if (path / "history.json").exists():
        return path
    return _xp_folder(str(run))


def read_history(run: tp.Union[str, Path]) -> tp.List[tp.Dict[str, tp.Dict[str, float]]]:
    """Per-epoch metrics of a run (Dora's ``history.json``)."""
    return runs.read_history(_folder(run))


def read_steps(run: tp.Union[str, Path]) -> tp.List[tp.Dict[str, float]]:
    """Per-update training metrics of a run, from its TensorBoard events (``<xp>/tensorboard/``, written by the
    recipes' ``logging.log_tensorboard`` and genrecraft's solvers every ``logging.log_updates`` updates).

    Returns ``[{"step": global update, "epoch": e, "x": fractional epoch, "ce": .., "ppl": .., ...}, ...]`` sorted by
    step; empty for a run without TensorBoard events. A resumed run's repeated updates count once (the last).
    """
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    prefix = STEP_STAGE + "/"
    rows: tp.Dict[int, tp.Dict[str, float]] = {}
    for events in sorted((_folder(run) / "tensorboard").rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={SCALARS: 0})
        accumulator.Reload()
        for tag in accumulator.Tags().get(SCALARS, []):
            if tag.startswith(prefix):
                for event in accumulator.Scalars(tag):
                    rows.setdefault(event.step, {"step": event.step})[tag[len(prefix):]] = event.value
    out = []
    for step in sorted(rows):
        row = rows[step]
        if "epoch" in row:
            row["x"] = row["epoch"]
            row["epoch"] = int(math.ceil(row["epoch"]))
            out.append(row)
    return out


def plot_training_curves(run: tp.Union[str, Path], out_dir: tp.Optional[tp.Union[str, Path]] = None,
                         title: tp.Optional[str] = None) -> tp.List[Path]:
    """Write ``training_curves.png`` for one run; returns the written paths (empty if the run has no history)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = _folder(run)
    history, steps = read_history(folder), read_steps(folder)
    if not history:
        return []
    out_dir = Path(out_dir) if out_dir else folder / "curves"
    out_dir.mkdir(parents=True, exist_ok=True)
    epochs = list(range(1, len(history) + 1))

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, metric in zip(axes[:2], ("ce", "ppl")):
        if steps:
            ax.plot([s["x"] for s in steps], [s.get(metric, float("nan")) for s in steps],
                    color="tab:blue", alpha=0.35, lw=1, label="train (per step)")
        for split, color in (("train", "tab:blue"), ("valid", "tab:orange")):
            values = [e.get(split, {}).get(metric, float("nan")) for e in history]
            ax.plot(epochs, values, "o-", color=color, label=f"{split} (per epoch)")
        ax.set_xlabel("epoch")
        ax.set_ylabel({"ce": "cross-entropy (nats)", "ppl": "perplexity"}[metric])
        if metric == "ppl":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    codebooks = sorted(k for k in history[-1].get("valid", {}) if re.fullmatch(r"ce_q\d+", k))
    for key in codebooks:
        axes[2].plot(epochs, [e["valid"].get(key, float("nan")) for e in history], "o-", label=f"valid {key}")
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("cross-entropy per codebook")
    axes[2].grid(alpha=0.3)
    if codebooks:
        axes[2].legend()
    fig.suptitle(title or f"Training curves: {folder.name}")
    fig.tight_layout()
    path = out_dir / "training_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def plot_valid_comparison(runs: tp.Mapping[str, tp.Union[str, Path]], out_file: tp.Union[str, Path]) -> Path:
    """Overlay the valid CE per epoch of several runs (``{label: run}``) in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, run in runs.items():
        history = read_history(run)
        ax.plot(range(1, len(history) + 1), [e["valid"]["ce"] for e in history], "o-", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("valid cross-entropy (nats)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_file, dpi=110)
    plt.close(fig)
    return out_file


def build_parser(prog: str = "python -m genrecraft.curves") -> argparse.ArgumentParser:
    parser = cli.parser(prog, __doc__)
    parser.add_argument("runs", nargs="+", help="Dora signatures or xp folders")
    cli.add_out(parser, required=False, help="output folder (default: <xp>/curves for each run)")
    return parser


def run(args: argparse.Namespace) -> int:
    written = []
    for run_name in args.runs:
        written += plot_training_curves(run_name, args.out)
    if len(args.runs) > 1:
        target = Path(args.out or ".") / "compare_valid_ce.png"
        written.append(plot_valid_comparison({str(r): r for r in args.runs}, target))
    for path in written:
        print(path)
    return 0


def main(argv: tp.Optional[tp.List[str]] = None, prog: str = "python -m genrecraft.curves") -> int:
    return cli.run(run, build_parser(prog).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
