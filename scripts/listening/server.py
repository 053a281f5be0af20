"""The rating page: a small local web server (Python's ``http.server``) in front of a :class:`RatingStore`.

It serves one listening-test folder written by :func:`scripts.listening.pairs.make_pairs`: the page and its
script (no external assets, works offline), the clips of each pair as ``/audio/<pair>/<A|B>`` (the clip file
names never reach the browser), and a small JSON API that stores each answer the moment it is given. It never
reads the key file, so nothing it serves can tell which model made a clip.

API (JSON in and out)::

    GET  /api/test                    questions, pairs (id, prompt), duration, require_listen
    POST /api/session  {rater}        start or resume a rater's session -> their order and answers so far
    POST /api/answer   {rater, pair_id, kind, side?, question?, value}   -> {complete, n_complete, finished}
    GET  /api/progress                per rater: pairs complete out of all
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import logging
import re
import threading
import typing as tp
import urllib.parse
from pathlib import Path

from . import pairs as pairs_mod
from .store import AnswerError, RatingStore

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
_STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8"}
_AUDIO_RE = re.compile(r"^/audio/([\w-]+)/([AB])(?:\.wav)?$")
MAX_BODY = 64 * 1024  # bytes of a POST body; answers are a few hundred
SOCKET_TIMEOUT = 15.0  # seconds a client may stay silent mid-request (a bad Content-Length, a stalled upload)


class RatingApp:
    """What the handler needs: the pairs, the store, and the clip files behind each pair."""

    def __init__(self, folder: Path, db_path: tp.Optional[Path] = None, require_listen: tp.Optional[bool] = None):
        self.folder = Path(folder).resolve()
        self.test = pairs_mod.load_pairs(self.folder)
        self.audio: tp.Dict[tp.Tuple[str, str], Path] = {}
        for pair in self.test["pairs"]:
            for side in ("A", "B"):
                path = (self.folder / pair[side.lower()]).resolve()
                if self.folder not in path.parents or not path.is_file():
                    raise ValueError(f"pair {pair['id']}: clip {pair[side.lower()]!r} is not a file inside "
                                     f"{self.folder}; rerun `python -m scripts.make_pairs` to complete the test")
                self.audio[pair["id"], side] = path
        self.store = RatingStore(db_path or self.folder / "ratings.sqlite", self.test["test_id"],
                                 [p["id"] for p in self.test["pairs"]], [q["id"] for q in self.test["questions"]],
                                 require_listen=require_listen)

    def test_info(self) -> tp.Dict[str, tp.Any]:
        t = self.test
        return {"test_id": t["test_id"], "duration": t["duration"], "style": t.get("style"),
                "questions": t["questions"], "require_listen": self.store.require_listen,
                "pairs": {p["id"]: {"prompt": p["prompt"]} for p in t["pairs"]}}


class _Handler(http.server.BaseHTTPRequestHandler):
    """Every request ends in a response or a closed connection, never a traceback: bad input is a 4xx with a
    JSON error, a client that stops sending times out (``timeout``: the socket timeout of each connection, so a
    Content-Length larger than the body cannot hold a thread), anything unexpected is a 500 and one log line."""

    server_version = "genrecraft-listening/1"
    timeout = SOCKET_TIMEOUT
    app: RatingApp  # set on the subclass made by make_server

    def log_message(self, format: str, *args: tp.Any) -> None:  # noqa: A002 (the base class's name)
        logger.debug("%s %s", self.address_string(), format % args)

    # -- responses ---------------------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str,
              headers: tp.Optional[tp.Mapping[str, str]] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: tp.Any, status: int = 200) -> None:
        self._send(status, json.dumps(data).encode(), "application/json", {"Cache-Control": "no-store"})

    def _error(self, status: int, message: str) -> None:
        self._json({"error": message}, status)

    # -- GET ---------------------------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = urllib.parse.urlsplit(self.path).path
        try:
            if path in ("/", "/index.html"):
                self._static("index.html")
            elif path.startswith("/static/"):
                self._static(path[len("/static/"):])
            elif path == "/api/test":
                self._json(self.app.test_info())
            elif path == "/api/progress":
                self._json(self.app.store.progress())
            elif (m := _AUDIO_RE.match(path)) and (m.group(1), m.group(2)) in self.app.audio:
                self._audio(self.app.audio[m.group(1), m.group(2)])
            else:
                self._error(404, f"no such page: {path}")
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # never a traceback to the console: one line, and a 500 to the client
            self._internal_error(exc)

    do_HEAD = do_GET

    def _internal_error(self, exc: BaseException) -> None:
        logger.error("%s %s: %s: %s", self.command, self.path, type(exc).__name__, exc)
        self.close_connection = True
        try:
            self._error(500, f"internal error: {type(exc).__name__}")
        except OSError:
            pass

    def _static(self, name: str) -> None:
        path = STATIC / name
        if "/" in name or path.suffix not in _STATIC_TYPES or not path.is_file():
            self._error(404, f"no such file: {name}")
            return
        self._send(200, path.read_bytes(), _STATIC_TYPES[path.suffix], {"Cache-Control": "no-cache"})

    def _audio(self, path: Path) -> None:
        data = path.read_bytes()
        size = len(data)
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
        m = re.match(r"^bytes=(\d*)-(\d*)$", self.headers.get("Range", ""))
        if m and (m.group(1) or m.group(2)):
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:  # the last N bytes
                start, end = max(0, size - int(m.group(2))), size - 1
            if start >= size or start > end:
                self._send(416, b"", "audio/wav", {"Content-Range": f"bytes */{size}"})
                return
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            self._send(206, data[start:end + 1], "audio/wav", headers)
        else:
            self._send(200, data, "audio/wav", headers)

    # -- POST --------------------------------------------------------------------------------------------------

    def do_POST(self) -> None:  # noqa: N802
        path = urllib.parse.urlsplit(self.path).path
        try:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self.close_connection = True
                self._error(400, f"bad Content-Length {self.headers.get('Content-Length')!r}")
                return
            if length > MAX_BODY:
                self.close_connection = True  # the body is not read: the connection cannot be reused
                self._error(413, f"request body over {MAX_BODY} bytes")
                return
            data = self.rfile.read(length)
            if len(data) < length:
                self.close_connection = True
                self._error(400, f"the body ended after {len(data)} of {length} bytes")
                return
            try:
                body = json.loads(data or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:  # also a body that is not UTF-8
                self._error(400, f"send a JSON object ({exc})")
                return
            store = self.app.store
            try:
                if path == "/api/session":
                    self._json(store.start(body.get("rater")))
                elif path == "/api/answer":
                    self._json(store.record(body.get("rater"), body.get("pair_id"), body.get("kind"),
                                            body.get("value"), side=body.get("side"), question=body.get("question")))
                else:
                    self._error(404, f"no such endpoint: {path}")
            except AnswerError as exc:
                self._error(400, str(exc))
        except TimeoutError:
            self.close_connection = True  # the client sent less than its Content-Length and went quiet
            try:
                self._error(408, f"no data for {self.timeout:g} s; the connection is closed")
            except OSError:
                pass
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # never a traceback to the console: one line, and a 500 to the client
            self._internal_error(exc)


def make_server(folder: Path, db_path: tp.Optional[Path] = None, host: str = "127.0.0.1", port: int = 8765,
                require_listen: tp.Optional[bool] = None) -> http.server.ThreadingHTTPServer:
    """A rating server for the listening test in ``folder`` (not yet serving: call ``serve_forever``).

    ``db_path`` defaults to ``<folder>/ratings.sqlite``; ``port=0`` picks a free port (see ``server_port``).
    ``require_listen`` (default: as stored in the database, else True): a pair counts as answered only once both
    clips were played to the end.
    """
    app = RatingApp(folder, db_path, require_listen)
    handler = type("RatingHandler", (_Handler,), {"app": app})
    try:
        server = http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise OSError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port, or 0 for any free "
                      "port") from exc
    server.daemon_threads = True
    server.app = app  # type: ignore[attr-defined]
    return server


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_of(server: http.server.HTTPServer) -> str:
    """The address to open in a browser."""
    host, port = server.server_address[:2]
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    host = f"[{host}]" if ":" in str(host) else host
    return f"http://{host}:{port}/"


def serve_in_thread(server: http.server.ThreadingHTTPServer) -> threading.Thread:
    """Run ``server`` in a daemon thread (stop it with ``server.shutdown()``)."""
    thread = threading.Thread(target=server.serve_forever, name="rating-server", daemon=True)
    thread.start()
    return thread
