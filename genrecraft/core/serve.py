"""A folder served over loopback HTTP, for the demo, the tests and the benchmarks: the real yt-dlp download path
runs against it, offline.

>>> with FolderServer("www") as server:           # doctest: +SKIP
...     url = f"{server.url}/song.mp3"             # each request's path is kept in server.hits

Requests are not logged, and a client that hangs up early (yt-dlp probes files and closes the connection) is not
an error.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import sys
import threading
import typing as tp
from pathlib import Path

_HUNG_UP = (BrokenPipeError, ConnectionResetError)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    server: "FolderServer"

    def log_message(self, *args: tp.Any) -> None:
        pass

    def handle(self) -> None:
        with contextlib.suppress(*_HUNG_UP):
            super().handle()

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        super().do_GET()

    def do_HEAD(self) -> None:
        self.server.hits.append(self.path)
        super().do_HEAD()


class FolderServer(http.server.ThreadingHTTPServer):
    """Serves ``folder`` on ``host``:``port`` (0: a free port) from a daemon thread, started at once; ``url`` is
    its base URL and ``hits`` the paths requested so far. Use as a context manager, or call :meth:`close`.
    ``OSError`` if the port is taken."""

    daemon_threads = True

    def __init__(self, folder: tp.Union[str, Path], port: int = 0, host: str = "127.0.0.1"):
        self.hits: tp.List[str] = []
        super().__init__((host, port), functools.partial(_QuietHandler, directory=str(folder)))
        self.url = f"http://{host}:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def handle_error(self, request: tp.Any, client_address: tp.Any) -> None:
        if not isinstance(sys.exc_info()[1], _HUNG_UP):
            super().handle_error(request, client_address)

    def close(self) -> None:
        self.shutdown()
        self.server_close()

    def __exit__(self, *exc: tp.Any) -> None:
        self.close()
