"""Run and inspect Dora experiments from Python (what ``dora -P genrecraft run ...`` does, plus its results).

>>> xp = run(["solver=musicgen/genrecraft_tiny", "dset=audio/mydata"])   # doctest: +SKIP
>>> [epoch["valid"]["ce"] for epoch in history(xp)]                      # doctest: +SKIP

Each run is a subprocess (as on the command line), so a crash or an out-of-memory kill never takes the
caller with it, and Dora's own resume logic applies: running the same arguments again continues the
experiment from its last checkpoint.
"""

from __future__ import annotations

import os
import subprocess
import sys
import typing as tp
from pathlib import Path

from .core import compat
from .core.errors import UserError
from .core.runs import read_history


class ExperimentError(UserError, RuntimeError):
    """A Dora run exited with an error."""


def get_xp(argv: tp.Sequence[str]):
    """The Dora experiment (``XP``: ``.sig``, ``.folder``, ``.cfg``) that these overrides define."""
    from .train import main

    return main.get_xp(list(argv))


def env() -> tp.Dict[str, str]:
    """Environment for a Dora subprocess: genrecraft's package, USER, and a quiet TensorFlow."""
    compat.ensure_user()
    compat.ensure_dora_dir()
    out = dict(os.environ)
    out.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    out["DORA_PACKAGE"] = "genrecraft"
    return out


def run(argv: tp.Sequence[str], log_file: tp.Optional[Path] = None, quiet: bool = False,
        on_line: tp.Optional[tp.Callable[[str], None]] = None):
    """Run ``dora -P genrecraft run <argv>`` to completion and return its ``XP``.

    Output goes to ``log_file`` if given (and to the terminal unless ``quiet``); ``on_line`` sees every line as
    it comes (e.g. to show progress while ``quiet``). Raises :class:`ExperimentError` with the tail of the log if
    the run fails.
    """
    xp = get_xp(argv)
    cmd = [sys.executable, "-m", "dora", "-P", "genrecraft", "run", *argv]
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1)
    tail: tp.List[str] = []
    log = open(log_file, "a", encoding="utf-8") if log_file else None
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if log:
                log.write(line)
            if not quiet:
                sys.stdout.write(line)
            if on_line is not None:
                on_line(line)
            tail = (tail + [line])[-40:]
    finally:
        code = proc.wait()
        if log:
            log.close()
    if code != 0:
        raise ExperimentError(
            f"`{' '.join(cmd)}` exited with {code}. Last lines:\n{''.join(tail)}"
            + (f"\nFull log: {log_file}" if log_file else ""))
    return xp


def history(xp) -> tp.List[tp.Dict[str, tp.Dict[str, float]]]:
    """Per-epoch metrics of an experiment: ``[{"train": {...}, "valid": {"ce": ..}, ...}, ...]``."""
    return read_history(xp.folder)


def checkpoint_path(xp) -> Path:
    """The experiment's last checkpoint (``checkpoint.th`` in its folder)."""
    return Path(xp.folder) / "checkpoint.th"
