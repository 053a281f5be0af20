"""Atomic file writes: write to a temporary file in the same folder, then rename over the target."""

from __future__ import annotations

import contextlib
import json
import os
import re
import typing as tp
from pathlib import Path


_TEMPORARY = re.compile(r"^\..+\.tmp-\d+$")


def temporary_name(target: Path) -> Path:
    """The temporary file :func:`atomic_path` writes before renaming it over ``target``."""
    return target.with_name(f".{target.name}.tmp-{os.getpid()}")


def remove_stale_temporaries(folder: tp.Union[str, Path]) -> tp.List[Path]:
    """Delete the temporaries a killed writer left under ``folder`` (``.NAME.tmp-PID`` files only).

    Call it only while no other process writes there (for example, holding the folder's lock): a live writer's
    temporary looks the same. Returns what was removed.
    """
    removed = []
    for path in Path(folder).rglob(".*.tmp-*"):
        if _TEMPORARY.match(path.name) and path.is_file() and not path.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_path(target: tp.Union[str, Path]) -> tp.Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target``, on error it is deleted."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(target)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(target: tp.Union[str, Path], text: str) -> Path:
    """Write ``text`` to ``target`` atomically (UTF-8)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_json(target: tp.Union[str, Path], data: tp.Any) -> Path:
    """Write ``data`` as indented JSON to ``target`` atomically."""
    return write_text(target, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
