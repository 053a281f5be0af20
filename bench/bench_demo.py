"""The offline demo's result, one row per model: does fine-tuning on style B move the model to style B?

    python bench/bench_demo.py            # the default demo (python -m genrecraft.demo), from scratch
    python bench/bench_demo.py --quick    # its CI setting
    python bench/bench_demo.py --from-run DIR --wall-seconds S   # figures of a demo already run into DIR

Rows (``model``: base, full, lora, real): ``fad`` with its bootstrap interval (``fad_low``, ``fad_high``) against
style B's test clips (musicnn embedding), ``ce`` with its interval on style B's test split (real audio: none),
``tempo_adherence`` and ``key_adherence`` (eval.adherence: the dataset builder's labeller on each generated clip
against its prompt; for ``real``, on the real continuations), ``tag_distance`` and ``flagged_copies``
(eval.memorisation). ``params``: the demo's wall time and settings, and the issue-18 checks
(genrecraft.demo_targets) with whether each was met.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the demo's --quick setting")
    parser.add_argument("--from-run", type=Path, default=None, help="a finished demo's output folder")
    parser.add_argument("--wall-seconds", type=float, default=None, help="with --from-run: its wall time")
    args = parser.parse_args()

    import dataclasses

    from bench.common import report
    from genrecraft.demo import DemoConfig
    from genrecraft.demo_targets import check, demo_rows

    if args.from_run is None:
        out = Path(tempfile.mkdtemp(prefix="genrecraft-demo-")) / "out"
        cmd = [sys.executable, "-m", "genrecraft.demo", "--out", str(out)] + (["--quick"] if args.quick else [])
        t0 = time.time()
        proc = subprocess.run(cmd, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        wall = time.time() - t0
        if proc.returncode != 0:
            raise SystemExit(f"the demo failed (exit {proc.returncode})")
    else:
        out, wall = args.from_run.resolve(), args.wall_seconds
    result = json.loads((out / "eval" / "report.json").read_text())
    runs = {}
    for label, spec in result["models"].items():
        from genrecraft.models import _xp_folder

        runs[label] = Path(_xp_folder(spec))
    checks = check(result, runs, strict=not args.quick)
    config = DemoConfig.quick(out) if args.quick else DemoConfig(out=out)
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k != "out"}
    report("demo" + ("_quick" if args.quick else ""), demo_rows(result), params={
        "wall_seconds": None if wall is None else round(wall, 1), "demo": settings,
        "checks": [dataclasses.asdict(c) for c in checks],
        "note": "wall time on the benchmark machine as shared at the time (other jobs running count against it)"})
    for c in checks:
        print(c.line())


if __name__ == "__main__":
    main()
