"""Shared helpers for benchmarks: machine description, a printed table, and the JSON file in bench/results/.

Every benchmark is a script ``bench/bench_<name>.py`` that ends with::

    report("name", rows, params={...})

which prints ``rows`` (a list of dicts with the same keys) as a table and writes
``bench/results/<name>.json`` with the rows, the parameters and the machine they ran on.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import typing as tp
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> tp.Dict[str, tp.Any]:
    """What the numbers were measured on."""
    info: tp.Dict[str, tp.Any] = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        mem_kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines()
                          if l.startswith("MemTotal")).split()[1])
        info["memory_gib"] = round(mem_kb / 2**20, 1)
    except (OSError, StopIteration, ValueError):
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def format_table(rows: tp.Sequence[tp.Mapping[str, tp.Any]]) -> str:
    """A plain-text table of ``rows`` (floats to 4 significant digits)."""
    if not rows:
        return "(no rows)"
    keys = list(rows[0].keys())

    def fmt(v: tp.Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    cells = [[fmt(r.get(k, "")) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = ["  ".join(k.ljust(w) for k, w in zip(keys, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def report(name: str, rows: tp.Sequence[tp.Mapping[str, tp.Any]],
           params: tp.Optional[tp.Mapping[str, tp.Any]] = None) -> Path:
    """Print the table and write ``bench/results/<name>.json``; returns the JSON path."""
    print(format_table(rows))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "date": _dt.datetime.now().isoformat(timespec="seconds"),
               "machine": machine(), "params": dict(params or {}), "rows": list(rows)}
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    tmp.replace(out)
    print(f"\nwrote {out}")
    return out


def run_worker(cmd: tp.Sequence[str], name: str, env: tp.Optional[tp.Mapping[str, str]] = None,
               memory: bool = True, pin: bool = False) -> tp.Dict[str, tp.Any]:
    """Run a benchmark worker process and return the JSON it printed on its ``RESULT `` line.

    ``memory`` (for memory benchmarks): glibc keeps freed heap pages mapped, so RSS would show the allocator's
    high-water mark, not live tensors; serving big allocations with mmap (``MALLOC_MMAP_THRESHOLD_``) returns them
    on free, so RSS follows live memory. ``pin`` (for per-core speed): the worker runs on core 0 under ``taskset``
    when it is installed, and then sees ``GENRECRAFT_BENCH_PINNED=1``.
    """
    import os
    import shutil
    import subprocess

    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **dict(env or {}))
    if memory:
        full_env["MALLOC_MMAP_THRESHOLD_"] = "131072"
    cmd = list(cmd)
    if pin and shutil.which("taskset"):
        cmd = ["taskset", "-c", "0"] + cmd
        full_env["GENRECRAFT_BENCH_PINNED"] = "1"
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env)
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[0][len("RESULT "):])


def cached_worker(cache: tp.Optional[Path], cmd: tp.Sequence[str], name: str, **kwargs) -> tp.Dict[str, tp.Any]:
    """:func:`run_worker`'s result, read from ``cache`` when that file exists (and saved there when it does not), so
    that a benchmark's summary can be redone without its slow worker."""
    if cache and cache.exists():
        return json.loads(cache.read_text())
    result = run_worker(cmd, name, **kwargs)
    if cache:
        cache.write_text(json.dumps(result))
    return result


def run_peak(cmd: tp.Sequence[str], env: tp.Optional[tp.Mapping[str, str]] = None,
             log_file: tp.Optional[Path] = None) -> tp.Dict[str, tp.Any]:
    """Run ``cmd`` to completion; returns ``ok``, ``seconds`` (wall) and ``peak_gib``, the process's peak resident
    memory (the kernel's VmHWM, read until it exits; run it with glibc returning freed tensors, see
    :func:`run_worker`, for a figure of live memory), and the output's tail in ``log``."""
    import re
    import subprocess
    import tempfile
    import time

    log_file = log_file or Path(tempfile.mkstemp(suffix=".log")[1])
    start = time.time()
    with open(log_file, "w") as log:
        proc = subprocess.Popen(list(map(str, cmd)), env=dict(env) if env else None, stdout=log,
                                stderr=subprocess.STDOUT)
        peak_kib = 0
        while proc.poll() is None:
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
                peak_kib = max(peak_kib, int(re.search(r"VmHWM:\s+(\d+)", status).group(1)))
            except (OSError, AttributeError):
                pass
            time.sleep(0.1)
    return {"ok": proc.returncode == 0, "seconds": time.time() - start, "peak_gib": peak_kib / 2**20,
            "log": log_file.read_text()[-4000:]}


def run_dora(argv: tp.Sequence[str], env: tp.Mapping[str, str]) -> tp.Dict[str, tp.Any]:
    """``dora -P genrecraft run <argv>`` in a child process: :func:`run_peak`'s figures plus the run's last train
    summary (``train``), its history and its ``Model size`` in M parameters. Raises SystemExit if it fails."""
    import re
    import sys

    from genrecraft import experiments

    xp = experiments.get_xp(list(argv))
    result = run_peak([sys.executable, "-m", "dora", "-P", "genrecraft", "run", *argv], env=env)
    if not result["ok"]:
        raise SystemExit(result["log"])
    history = json.loads((Path(xp.folder) / "history.json").read_text())
    log = (Path(xp.folder) / "solver.log.0").read_text()
    params = re.search(r"Model size: ([0-9.]+) M params", log)
    result.update(sig=xp.sig, history=history, train=history[-1]["train"],
                  model_m_params=float(params.group(1)) if params else float("nan"))
    return result
