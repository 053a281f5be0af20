"""Tell a song's own faults from the machine's.

A song that cannot be decoded, is silent, too short or a dead link is remembered as a skip (reruns do not try it
again unless ``--retry-failed``). Out of disk space, permission denied, a killed worker or a network time-out say
nothing about the song: they are reported as environmental, never remembered, and the next run tries again.
"""

from __future__ import annotations

import errno
import re
import typing as tp

# errno values that describe the machine, not the input
ENV_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.ENOMEM,
              errno.EMFILE, errno.ENFILE, errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNREFUSED,
              errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNABORTED}
# errno values after which nothing more can be written: the run stops instead of failing every song in turn
FATAL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
_ENV_TEXT = re.compile(
    r"No space left on device|Disk quota exceeded|Read-only file system|Permission denied|Errno (28|122|30|13)\b"
    r"|timed? ?out|Temporary failure in name resolution|Network is unreachable|No route to host"
    r"|Connection (reset|refused|aborted)|Remote end closed connection|IncompleteRead"
    r"|HTTP Error (429|5\d\d)", re.IGNORECASE)
_FATAL_TEXT = re.compile(r"No space left on device|Disk quota exceeded|Read-only file system|Errno (28|122|30)\b",
                         re.IGNORECASE)


class EnvironmentFault(Exception):
    """The machine failed, not the song: reported, never remembered as a skip; a rerun tries again.

    ``fatal`` faults (disk full, read-only file system) stop the run: every later write would fail too.
    """

    def __init__(self, message: str, fatal: bool = False):
        super().__init__(message)
        self.fatal = fatal

    def __reduce__(self):  # keep ``fatal`` when a worker process sends it back
        return type(self), (str(self), self.fatal)


def _chain(exc: BaseException) -> tp.Iterator[BaseException]:
    seen: tp.Set[int] = set()
    todo: tp.List[tp.Optional[BaseException]] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [current.__cause__, current.__context__]
        info = getattr(current, "exc_info", None)  # yt-dlp's DownloadError keeps the original error here
        if isinstance(info, tuple) and len(info) > 1 and isinstance(info[1], BaseException):
            todo.append(info[1])


def classify(exc: BaseException) -> tp.Optional[EnvironmentFault]:
    """An :class:`EnvironmentFault` describing ``exc`` if the machine caused it, else None (the song's fault)."""
    for current in _chain(exc):
        if isinstance(current, EnvironmentFault):
            return current
        if isinstance(current, OSError) and current.errno in ENV_ERRNOS:
            name = errno.errorcode.get(current.errno, str(current.errno))
            where = f" ({current.filename})" if current.filename else ""
            return EnvironmentFault(f"{current.strerror or current} [{name}]{where}",
                                    fatal=current.errno in FATAL_ERRNOS)
        if isinstance(current, TimeoutError):
            return EnvironmentFault(f"network time-out: {current}")
    text = " ".join(str(c) for c in _chain(exc))
    if _ENV_TEXT.search(text):
        return EnvironmentFault(str(exc).strip() or type(exc).__name__, fatal=bool(_FATAL_TEXT.search(text)))
    return None


def writing(target: tp.Any, exc: BaseException) -> EnvironmentFault:
    """A failed write of one of our own files is never the song's fault."""
    fault = classify(exc)
    message = f"cannot write {target}: {fault or exc}"
    return EnvironmentFault(message, fatal=bool(fault and fault.fatal))
