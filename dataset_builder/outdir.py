"""The output folder is the builder's own: a marker file says so, and a lock keeps one builder at a time in it.

- ``.genrecraft-dataset`` marks a folder made by the builder. A non-empty folder without it (and without the
  ``items/`` + ``build_config.json`` of an older builder output) is refused unless ``force``: the builder never
  deletes what it did not write, but it does remove songs that left the playlist from its own ``items/``.
- ``.lock`` is held (``flock``) for the whole run and names the process holding it; a second builder on the same
  folder stops with that name. The kernel drops the lock when the process dies, even on kill -9.
- Files are written atomically (``.NAME.tmp-PID``, then renamed); a run killed mid-write leaves such a temporary,
  and the next run removes it once it holds the lock.
- ``--out`` inside an input folder is refused: the next run would read its own chunks as songs.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import sys
import typing as tp
from pathlib import Path

from genrecraft.core.atomic import remove_stale_temporaries, write_text

MARKER = ".genrecraft-dataset"
LOCK = ".lock"


def is_builder_output(out: Path) -> bool:
    """True if ``out`` was written by the dataset builder (this version, or an older one)."""
    return (out / MARKER).is_file() or ((out / "items").is_dir() and (out / "build_config.json").is_file())


def check_not_inside(out: Path, inputs: tp.Iterable[tp.Tuple[str, str]]) -> None:
    """Refuse an ``out`` inside (or equal to) an input folder; ``inputs`` holds (folder, how it was named)."""
    resolved = out.expanduser().resolve()
    for folder, named in inputs:
        folder_path = Path(folder).resolve()
        if resolved == folder_path or resolved.is_relative_to(folder_path):
            raise ValueError(f"--out {out} is inside the input folder {folder_path} ({named}): the builder would "
                             "read its own chunks as songs; choose an output folder outside it")


def _holder(lock_path: Path) -> str:
    try:
        data = json.loads(lock_path.read_text())
        return f"pid {data['pid']} on {data.get('host', '?')}, started {data.get('started', '?')}: " \
               f"{data.get('command', '?')}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _command() -> str:
    if sys.argv and sys.argv[0].endswith("__main__.py"):
        return " ".join(["python -m dataset_builder", *sys.argv[1:]])
    return " ".join(sys.argv) or "python"


@contextlib.contextmanager
def claim(out: Path, force: bool = False) -> tp.Iterator[Path]:
    """Make ``out`` the builder's (marker) and hold its lock while the block runs."""
    import fcntl

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not is_builder_output(out) and not force:
        raise ValueError(f"--out {out} is not empty and was not made by the dataset builder (no {MARKER}); choose "
                         "an empty or new folder, or pass --force to build into it anyway")
    out.mkdir(parents=True, exist_ok=True)
    lock_path = out / LOCK
    handle = open(lock_path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"another dataset builder is writing to {out} ({_holder(lock_path)}); wait for it "
                             "to finish or stop it, then rerun") from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": os.uname().nodename,
                                 "started": _dt.datetime.now().isoformat(timespec="seconds"),
                                 "command": _command()}) + "\n")
        handle.flush()
        if (out / MARKER).is_file():  # ours: a killed run's half-written files go (we hold the lock)
            remove_stale_temporaries(out)
        else:
            write_text(out / MARKER, "This folder is a genrecraft dataset_builder output; reruns resume it.\n")
        yield out
    finally:
        handle.close()  # closing the file drops the lock
