"""The offline demo: genrecraft end to end on a built-in synthetic corpus, on CPU, with no downloads.

Stages (each prints its progress):

1. render a small corpus of synthetic songs with known key and tempo;
2. write it as an audiocraft dataset and register ``dset=audio/<name>``;
3. train the tiny MusicGen (``solver=musicgen/genrecraft_tiny``) on it through Dora;
4. report the validation cross-entropy per epoch and where the generated samples are.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import experiments, paths
from .synth import SongSpec, write_dataset

DEMO_SPECS = [SongSpec(key=k, mode=m, bpm=b, style="synthpop", seed=i)
              for i, (k, m, b) in enumerate([("C", "major", 120), ("G", "major", 124), ("D", "major", 118),
                                             ("A", "minor", 122), ("E", "minor", 126), ("F", "major", 120),
                                             ("Bb", "major", 116), ("D", "minor", 128)])]


def _stage(n: int, total: int, text: str) -> float:
    print(f"\n[{n}/{total}] {text}", flush=True)
    return time.time()


def run_demo(out: Path, epochs: int = 3) -> Path:
    """Run the demo into ``out``; returns the Dora experiment folder."""
    out.mkdir(parents=True, exist_ok=True)
    total = 3
    t0 = _stage(1, total, f"Rendering {len(DEMO_SPECS)} synthetic synth-pop songs and writing the dataset")
    write_dataset(out / "data", "genrecraft_demo", DEMO_SPECS, seconds=8.0, config_dir=paths.user_config_dir())
    print(f"      done in {time.time() - t0:.1f} s: {out / 'data' / 'genrecraft_demo'}")

    t0 = _stage(2, total, f"Training the tiny MusicGen for {epochs} epochs through Dora (CPU)")
    argv = ["solver=musicgen/genrecraft_tiny", "dset=audio/genrecraft_demo", f"optim.epochs={epochs}"]
    xp = experiments.run(argv, log_file=out / "train.log", quiet=True)
    print(f"      done in {time.time() - t0:.1f} s: experiment {xp.sig} in {xp.folder}")

    _stage(3, total, "Results")
    for epoch, metrics in enumerate(experiments.history(xp), start=1):
        print(f"      epoch {epoch}: train ce {metrics['train']['ce']:.3f}, valid ce {metrics['valid']['ce']:.3f} "
              f"(ppl {metrics['valid']['ppl']:.2f})")
    samples = sorted(Path(xp.folder, "samples").rglob("*.wav"))
    print(f"      {len(samples)} generated samples under {Path(xp.folder, 'samples')}")
    return Path(xp.folder)


def main(argv: list[str] | None = None) -> int:
    """Run genrecraft end to end offline on a built-in synthetic corpus (CPU, a few minutes)."""
    parser = argparse.ArgumentParser(prog="python -m genrecraft.demo", description=main.__doc__)
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: <work dir>/demo; work dir: $GENRECRAFT_WORK_DIR or "
                             "~/.local/share/genrecraft)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (default: 3)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    out = (args.out or paths.work_dir() / "demo").resolve()
    try:
        run_demo(out, epochs=args.epochs)
    except experiments.ExperimentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"\nDemo finished. Everything is under {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
