"""Processes on Linux, read from ``/proc``: a process's children, the multiprocessing workers among them, whether
one is still alive. The builder's reliability tests and benchmark use them to check that no worker outlives a
killed or interrupted run."""

from __future__ import annotations

import contextlib
import subprocess
import time
import typing as tp
from pathlib import Path


def children(pid: int) -> tp.Set[int]:
    """The direct children of ``pid`` (every thread's; empty if it is gone)."""
    found: tp.Set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def spawned_workers(pid: int) -> tp.Set[int]:
    """The children of ``pid`` that multiprocessing spawned as workers (not its resource tracker)."""
    found = set()
    for child in children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            found.add(child)
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_for_workers(proc: "subprocess.Popen", n: int, within: float = 120.0) -> tp.Set[int]:
    """Wait up to ``within`` seconds, while ``proc`` runs, until it has ``n`` spawned workers; returns them."""
    deadline = time.time() + within
    while time.time() < deadline and proc.poll() is None and len(spawned_workers(proc.pid)) < n:
        time.sleep(0.02)
    return spawned_workers(proc.pid)


def wait_gone(pids: tp.Iterable[int], within: float = 10.0) -> bool:
    """Wait up to ``within`` seconds for every process of ``pids`` to end; whether they all did (multiprocessing's
    resource tracker ends last, once the pipes of the processes it watched close)."""
    pids = set(pids)
    deadline = time.time() + within
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return not any(alive(p) for p in pids)
