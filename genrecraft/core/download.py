"""The one downloader of model files: fetched once, atomically, checked, with a clear error offline.

Callers add their own advice to the error (where to put the file by hand, which environment variable points at
it); nothing here knows which model a file belongs to.
"""

from __future__ import annotations

import hashlib
import os
import typing as tp
import urllib.error
import urllib.request
from pathlib import Path

from .atomic import atomic_path
from .errors import ModelFilesError

OFFLINE_VARIABLES = ("GENRECRAFT_OFFLINE", "HF_HUB_OFFLINE")


def offline() -> bool:
    """Whether downloads are off (``GENRECRAFT_OFFLINE`` or ``HF_HUB_OFFLINE`` set)."""
    return any(os.environ.get(name) for name in OFFLINE_VARIABLES)


def offline_unless_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """Turn on ``HF_HUB_OFFLINE`` for this process when ``host`` cannot be reached, so that loading a cached model
    does not first wait through huggingface_hub's retries (about two minutes per model); call it before
    huggingface_hub is imported. Returns whether it did (never when an offline variable is already set)."""
    if offline() or reachable(host, timeout):
        return False
    os.environ["HF_HUB_OFFLINE"] = "1"
    return True


def reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``host``:443 opens within ``timeout`` seconds."""
    import socket

    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def sha256_of(path: tp.Union[str, Path], chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, target: tp.Union[str, Path], what: str, sha256: tp.Optional[str] = None,
          check: tp.Optional[tp.Callable[[Path], None]] = None, timeout: float = 60.0) -> Path:
    """``target``, downloaded from ``url`` first if it is not there. The download goes to a temporary file that
    must pass ``sha256`` (when given) and ``check(path)`` (when given) before it is renamed into place, so a
    half-written or wrong file is never left at ``target``. Raises :class:`ModelFilesError` naming ``what``,
    ``url`` and ``target`` when offline or when the download fails or does not verify."""
    target = Path(target)
    if target.is_file():
        return target
    if offline():
        raise ModelFilesError(f"{what} is not on this machine ({target}) and offline mode is set "
                              f"({' or '.join(OFFLINE_VARIABLES)}): no download; get {url} and put it there")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(target) as tmp, urllib.request.urlopen(url, timeout=timeout) as response:
            with open(tmp, "wb") as out:
                while block := response.read(1 << 20):
                    out.write(block)
            got = sha256_of(tmp) if sha256 is not None else None
            if got != sha256:
                raise ModelFilesError(f"{what} downloaded from {url} has sha256 {got}, expected {sha256}")
            if check is not None:
                check(Path(tmp))
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise ModelFilesError(f"could not download {what} from {url}: {exc}") from exc
    return target
