"""Read a playlist file: one entry per line, ``#`` comments, optional ``key=value`` tags after the entry.

    https://www.youtube.com/playlist?list=PL...     artist="Various"
    https://example.com/audio/song.mp3             artist=YOASOBI title="アイドル" genre=j-pop
    ~/music/jpop/                                  # a folder: every audio file in it, recursively
    ./favourites.m3u                               # an M3U/M3U8 list, parsed here (yt-dlp misreads them as HLS)
    file:///data/song.flac                         # only with --allow-file-urls

Relative paths are relative to the playlist file. Tags override what the source says about each song; known
tags: artist, title, genre, license, moods, instrument, keywords, description.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import shlex
import typing as tp
import urllib.parse
import urllib.request
from pathlib import Path

AUDIO_EXTENSIONS = {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aiff", ".aif", ".wma",
                    ".webm", ".mka", ".mp4"}
PLAYLIST_EXTENSIONS = {".m3u", ".m3u8"}
KNOWN_TAGS = {"artist", "title", "genre", "license", "moods", "instrument", "keywords", "description"}


@dataclasses.dataclass
class Source:
    """One playlist entry (before expansion): a URL, a local file or folder."""

    kind: str  # "url" | "file" | "folder"
    location: str  # URL, or absolute path
    tags: tp.Dict[str, str]
    line: int  # line number in the playlist (1-based), 0 for entries of an M3U
    origin: str  # the text as written, for reports

    @property
    def key(self) -> str:
        return hashlib.sha1(f"{self.kind}:{self.location}".encode()).hexdigest()[:12]


@dataclasses.dataclass
class Failure:
    """Something that was skipped, and why (collected into the failure report).

    ``kind`` is ``"skip"`` for the song's own faults (cannot decode, silent, too short, dead link), remembered by
    reruns until ``--retry-failed``; ``"environment"`` for the machine's (disk full, permission denied, a killed
    worker, a network time-out): never remembered, the run exits non-zero and the next run tries again; and
    ``"warning"`` for a playlist line whose song is kept all the same (an unknown tag, left out; a duplicate, kept
    once)."""

    stage: str
    reason: str
    source: str = ""
    line: int = 0
    item_id: str = ""
    kind: str = "skip"  # "skip": the song's own fault, remembered; "environment": the machine's, retried next run;
    # "warning": the song is kept

    @property
    def skipped(self) -> bool:
        return self.kind != "warning"

    def to_dict(self) -> tp.Dict[str, tp.Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: tp.Mapping[str, tp.Any]) -> "Failure":
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


def _parse_tags(words: tp.List[str], line: int) -> tp.Tuple[tp.Dict[str, str], tp.List[str]]:
    tags, errors = {}, []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            errors.append(f"line {line}: {word!r} is not a key=value tag: left out, the song kept (quote tag values "
                          "with spaces)")
        elif key not in KNOWN_TAGS:
            close = difflib.get_close_matches(key.lower(), sorted(KNOWN_TAGS), n=1)
            hint = f"did you mean {close[0]}=? " if close else ""
            errors.append(f"line {line}: unknown tag {key!r} left out, the song kept ({hint}known: "
                          f"{', '.join(sorted(KNOWN_TAGS))})")
        else:
            tags[key] = value
    return tags, errors


def _read_m3u(text: str, base: str, tags: tp.Dict[str, str], allow_file_urls: bool,
              origin: str) -> tp.Tuple[tp.List[Source], tp.List[Failure]]:
    sources: tp.List[Source] = []
    failures: tp.List[Failure] = []
    extinf: tp.Dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip().lstrip("\ufeff")
        if not line:
            continue
        if line.startswith("#EXTINF"):
            _, _, label = line.partition(",")
            artist, sep, title = label.partition(" - ")
            extinf = {"artist": artist.strip(), "title": title.strip()} if sep else {"title": label.strip()}
            continue
        if line.startswith("#"):
            continue
        entry_tags = {**{k: v for k, v in extinf.items() if v}, **tags}
        extinf = {}
        target = urllib.parse.urljoin(base, line) if "://" in base else line
        sources_, failures_ = _classify(target, Path(base) if "://" not in base else None, entry_tags, 0,
                                        allow_file_urls, f"{origin} -> {line}")
        sources += sources_
        failures += failures_
    return sources, failures


def _classify(entry: str, base_dir: tp.Optional[Path], tags: tp.Dict[str, str], line: int, allow_file_urls: bool,
              origin: str) -> tp.Tuple[tp.List[Source], tp.List[Failure]]:
    scheme = urllib.parse.urlparse(entry).scheme.lower()
    if scheme == "file":
        if not allow_file_urls:
            return [], [Failure("playlist", "file:// URLs are off by default: pass --allow-file-urls, or write the "
                                "path without file://", origin, line)]
        path = Path(urllib.parse.unquote(urllib.parse.urlparse(entry).path))
        if path.suffix.lower() in PLAYLIST_EXTENSIONS:
            entry = str(path)
        else:
            return [Source("url", entry, tags, line, origin)], []
    elif scheme in ("http", "https"):
        if Path(urllib.parse.urlparse(entry).path).suffix.lower() in PLAYLIST_EXTENSIONS:
            try:
                with urllib.request.urlopen(entry, timeout=30) as response:
                    text = response.read().decode("utf-8", errors="replace")
            except OSError as exc:
                return [], [Failure("playlist", f"could not fetch the M3U playlist: {exc}", origin, line)]
            return _read_m3u(text, entry, tags, allow_file_urls, origin)
        return [Source("url", entry, tags, line, origin)], []
    elif scheme and len(scheme) > 1:
        return [Source("url", entry, tags, line, origin)], []  # yt-dlp knows many schemes; it will say if not
    path = Path(entry).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    path = path.resolve()
    if path.is_dir():
        return [Source("folder", str(path), tags, line, origin)], []
    if not path.exists():
        return [], [Failure("playlist", f"no such file or folder: {path}", origin, line)]
    if path.suffix.lower() in PLAYLIST_EXTENSIONS:
        return _read_m3u(path.read_text(errors="replace"), str(path.parent), tags, allow_file_urls, origin)
    return [Source("file", str(path), tags, line, origin)], []


def read_playlist(path: tp.Union[str, Path], allow_file_urls: bool = False
                  ) -> tp.Tuple[tp.List[Source], tp.List[Failure]]:
    """Parse a playlist file into sources; bad lines become failures (the run goes on). Duplicate entries are
    kept once (the first, with its tags)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"playlist {path} does not exist")
    if path.suffix.lower() in PLAYLIST_EXTENSIONS:
        sources, failures = _read_m3u(path.read_text(errors="replace"), str(path.resolve().parent), {},
                                      allow_file_urls, path.name)
    else:
        sources, failures = [], []
        for number, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            text = raw.strip().lstrip("\ufeff")
            if not text or text.startswith("#"):
                continue
            try:
                words = shlex.split(text, comments=True)
            except ValueError as exc:
                failures.append(Failure("playlist", f"cannot parse the line ({exc}); quote tag values with spaces",
                                        text, number))
                continue
            if not words:
                continue
            tags, errors = _parse_tags(words[1:], number)
            failures += [Failure("playlist", e, text, number, kind="warning") for e in errors]
            found, bad = _classify(words[0], path.resolve().parent, tags, number, allow_file_urls, words[0])
            sources += found
            failures += bad
    unique: tp.Dict[str, Source] = {}
    for source in sources:
        if source.key in unique:
            failures.append(Failure("playlist", f"duplicate of line {unique[source.key].line} (kept once)",
                                    source.origin, source.line, kind="warning"))
        else:
            unique[source.key] = source
    return list(unique.values()), failures
