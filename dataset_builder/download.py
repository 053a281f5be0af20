"""Turn playlist sources into songs ("items") with audio on disk: yt-dlp downloads, local files as they are.

Each song gets an id that cannot collide (yt-dlp names direct files by their URL's basename, so two
``.../song.mp3`` would clash): ``<extractor>-<video id>`` for sites yt-dlp knows, ``url-<hash of the URL>`` for
direct files, ``file-<hash of the path>`` for local files. A song is done once ``items/<id>.json`` exists (the
download archive: reruns skip it); its audio is converted to FLAC by yt-dlp's FFmpegExtractAudio, so later
stages never meet a codec they cannot read. Every failure is collected with its reason; the run goes on.

Progress is saved as it happens: a song's record as soon as it is downloaded, and a dead link's reason in
``skips/`` as soon as it is known, so a killed run over a long playlist does not check every link again (until
``--retry-failed``). Network time-outs and other faults of the machine are reported and never saved (see
:mod:`.faults`). Paths under ``--out`` are stored relative to it, so a moved dataset still finds its audio.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import subprocess
import typing as tp
from pathlib import Path

from genrecraft.core.atomic import write_json

from .faults import EnvironmentFault, classify, writing
from .playlist import AUDIO_EXTENSIONS, Failure, Source


@dataclasses.dataclass
class Item:
    """One song, with the audio to chunk and the metadata to keep."""

    item_id: str
    audio: str  # path of the audio file (downloaded, or the user's own file: read, never written)
    title: str
    artist: str
    duration: float
    source_url: str
    license: str
    tags: tp.Dict[str, str]
    origin: str
    line: int

    def to_dict(self) -> tp.Dict[str, tp.Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: tp.Mapping[str, tp.Any]) -> "Item":
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


def load_item(record: Path, out: Path) -> Item:
    """Read ``items/<id>.json``; a stored relative audio path is relative to ``out`` (where it is now)."""
    item = Item.from_dict(json.loads(record.read_text()))
    audio = Path(item.audio)
    if not audio.is_absolute():
        item.audio = str(out / audio)
    elif not audio.exists() and audio.parent.name == "downloads" and (out / "downloads" / audio.name).exists():
        item.audio = str(out / "downloads" / audio.name)  # written before paths were relative, then moved
    return item


def save_item(record: Path, item: Item, out: Path) -> None:
    data = item.to_dict()
    audio = Path(item.audio)
    if audio.is_relative_to(out):
        data["audio"] = str(audio.relative_to(out))
    try:
        write_json(record, data)
    except OSError as exc:
        raise writing(record, exc) from exc


def _skip_path(out: Path, name: str) -> Path:
    return out / "skips" / f"{name}.json"


def remember_skip(out: Path, name: str, failure: Failure) -> None:
    """Save a song's own fault as soon as it is known (a rerun skips it until ``--retry-failed``)."""
    try:
        write_json(_skip_path(out, name), failure.to_dict())
    except OSError as exc:
        raise writing(_skip_path(out, name), exc) from exc


def remembered_skip(out: Path, name: str, retry_failed: bool) -> tp.Optional[Failure]:
    path = _skip_path(out, name)
    if not path.exists():
        return None
    if retry_failed:
        path.unlink()
        return None
    try:
        return Failure.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError):
        return None  # half-written by an old crash: try the song again


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:80] or _hash(text)


def _clean_error(exc: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    text = re.sub(r"^ERROR:\s*", "", text).strip() or type(exc).__name__
    if "unable to obtain file audio codec" in text:
        return "not audio: the downloaded file has no audio stream ffmpeg can read"
    return text


def _ydl(config, extra: tp.Optional[dict] = None):
    import yt_dlp

    opts = {"quiet": True, "no_warnings": True, "noprogress": True, "retries": config.retries,
            "fragment_retries": config.retries, "socket_timeout": 30, "enable_file_urls": config.allow_file_urls,
            "noplaylist": False, "extract_flat": "in_playlist", "logger": _SilentLogger()}
    opts.update(extra or {})
    return yt_dlp.YoutubeDL(opts)


class _SilentLogger:
    """yt-dlp prints errors itself unless given a logger; ours keeps them for the failure report."""

    def debug(self, msg):
        pass

    info = warning = debug

    def error(self, msg):
        pass


@dataclasses.dataclass
class Entry:
    """A song to fetch: a URL with its id, or a local file."""

    item_id: str
    location: str
    is_url: bool
    source: Source
    title_hint: str = ""


def expand(source: Source, config) -> tp.Tuple[tp.List[Entry], tp.List[Failure]]:
    """Entries of one source: a playlist URL expands to its videos, a folder to its audio files."""
    if source.kind == "file":
        if Path(source.location).suffix.lower() not in AUDIO_EXTENSIONS:
            return [], [Failure("download", f"not an audio file extension ({Path(source.location).suffix or 'none'}); "
                                f"known: {', '.join(sorted(AUDIO_EXTENSIONS))}", source.origin, source.line)]
        return [Entry("file-" + _hash(source.location), source.location, False, source)], []
    if source.kind == "folder":
        files = sorted(p for p in Path(source.location).rglob("*") if p.is_file()
                       and p.suffix.lower() in AUDIO_EXTENSIONS)
        if not files:
            return [], [Failure("download", "folder holds no audio files", source.origin, source.line)]
        return [Entry("file-" + _hash(str(p)), str(p), False, source) for p in files], []
    try:
        with _ydl(config) as ydl:
            info = ydl.extract_info(source.location, download=False, process=False)
    except Exception as exc:  # yt-dlp raises DownloadError and friends; any failure of one source is reported
        fault = classify(exc)
        if fault is not None:
            return [], [Failure("download", _clean_error(fault), source.origin, source.line, kind="environment")]
        return [], [Failure("download", _clean_error(exc), source.origin, source.line)]
    if info.get("_type") in ("playlist", "multi_video"):
        entries = []
        for entry in info.get("entries") or []:
            if not entry:
                continue
            url = entry.get("url") or entry.get("webpage_url")
            if not url:
                continue
            key = entry.get("ie_key") or entry.get("extractor_key") or "item"
            item_id = ("url-" + _hash(url)) if key == "Generic" or not entry.get("id") else _slug(f"{key}-{entry['id']}")
            entries.append(Entry(item_id, url, True, source, entry.get("title") or ""))
        if not entries:
            return [], [Failure("download", "playlist has no entries", source.origin, source.line)]
        return entries, []
    key = info.get("extractor_key") or info.get("ie_key") or "Generic"
    if key == "Generic" or not info.get("id"):
        item_id = "url-" + _hash(source.location)
    else:
        item_id = _slug(f"{key}-{info['id']}")
    return [Entry(item_id, source.location, True, source, info.get("title") or "")], []


def probe(path: tp.Union[str, Path]) -> tp.Dict[str, tp.Any]:
    """Duration and tags of a local file (ffprobe); empty dict if ffprobe cannot read it."""
    cmd = ["ffprobe", "-v", "error", "-show_entries", "format=duration:format_tags", "-of", "json", str(path)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        return {}
    fmt = json.loads(result.stdout or "{}").get("format", {})
    tags = {k.lower(): v for k, v in (fmt.get("tags") or {}).items()}
    try:
        duration = float(fmt.get("duration", 0.0))
    except ValueError:
        duration = 0.0
    return {"duration": duration, "title": tags.get("title", ""), "artist": tags.get("artist", "")}


def fetch(entry: Entry, out: Path, config) -> Item:
    """Download (URL) or describe (local file) one entry; raises with a readable reason on failure."""
    tags = entry.source.tags
    if not entry.is_url:
        meta = probe(entry.location)
        return Item(entry.item_id, entry.location, tags.get("title") or meta.get("title") or Path(entry.location).stem,
                    tags.get("artist") or meta.get("artist") or "unknown", float(meta.get("duration", 0.0)),
                    Path(entry.location).as_uri(), tags.get("license", "unknown"), tags, entry.source.origin,
                    entry.source.line)
    downloads = out / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    opts = {"format": "bestaudio/best", "outtmpl": str(downloads / f"{entry.item_id}.%(ext)s"), "noplaylist": True,
            "extract_flat": False, "postprocessors": [{"key": "FFmpegExtractAudio", "preferredcodec": "flac"}]}
    with _ydl(config, opts) as ydl:
        info = ydl.extract_info(entry.location, download=True)
    if info is None:
        raise RuntimeError("yt-dlp returned nothing")
    files = [d.get("filepath") for d in info.get("requested_downloads") or [] if d.get("filepath")]
    audio = Path(files[-1]) if files else downloads / f"{entry.item_id}.flac"
    if not audio.exists():
        raise RuntimeError(f"yt-dlp reported success but {audio.name} is missing")
    artist = (tags.get("artist") or info.get("artist") or info.get("creator") or info.get("uploader")
              or info.get("channel") or "unknown")
    return Item(entry.item_id, str(audio), tags.get("title") or info.get("title") or entry.title_hint or entry.item_id,
                str(artist), float(info.get("duration") or 0.0), info.get("webpage_url") or entry.location,
                tags.get("license") or info.get("license") or "unknown", tags, entry.source.origin, entry.source.line)


def download(sources: tp.Sequence[Source], out: Path, config, progress: bool = True, retry_failed: bool = False,
             on_item: tp.Optional[tp.Callable[[Item], None]] = None) -> tp.Tuple[tp.List[Item], tp.List[Failure]]:
    """Stage 1: every song of every source, downloaded once. Returns the songs of this shard and the failures.
    ``on_item`` is called with each song as soon as its audio is there (the builder cuts it and starts labelling
    it while the next songs download).

    Raises :class:`.faults.EnvironmentFault` (fatal) when nothing more can be written (disk full)."""
    from tqdm import tqdm

    items_dir = out / "items"
    items_dir.mkdir(parents=True, exist_ok=True)
    entries: tp.List[Entry] = []
    failures: tp.List[Failure] = []
    for source in tqdm(sources, desc="Reading sources", unit="source", disable=not progress):
        known = remembered_skip(out, f"source-{source.key}", retry_failed) if source.kind == "url" else None
        if known is not None:
            failures.append(known)
            continue
        found, bad = expand(source, config)
        entries += found
        failures += bad
        if source.kind == "url" and bad and bad[0].kind == "skip":
            remember_skip(out, f"source-{source.key}", bad[0])
    seen: tp.Dict[str, Entry] = {}
    for entry in entries:
        if entry.item_id in seen:
            failures.append(Failure("download", f"same song as an earlier entry ({seen[entry.item_id].source.origin}); "
                                    "kept once", entry.source.origin, entry.source.line, entry.item_id))
        else:
            seen[entry.item_id] = entry
    index, count = config.shard
    mine = [e for e in seen.values() if int(hashlib.sha1(e.item_id.encode()).hexdigest(), 16) % count == index]
    items: tp.List[Item] = []
    for entry in tqdm(mine, desc="Downloading", unit="song", disable=not progress):
        record = items_dir / f"{entry.item_id}.json"
        if record.exists():
            try:
                item = load_item(record, out)
            except (ValueError, TypeError, KeyError):
                item = None  # unreadable record: fetch again
            if item is not None and Path(item.audio).exists():
                items.append(item)
                if on_item is not None:
                    on_item(item)
                continue
        if entry.is_url:
            known = remembered_skip(out, entry.item_id, retry_failed)
            if known is not None:
                failures.append(known)
                continue
        try:
            item = fetch(entry, out, config)
        except Exception as exc:  # one bad song never stops the run; the reason goes to the report
            fault = classify(exc)
            if fault is not None and fault.fatal:
                raise EnvironmentFault(f"downloading {entry.location}: {_clean_error(fault)}", fatal=True) from exc
            failure = Failure("download", _clean_error(fault or exc), entry.location, entry.source.line,
                              entry.item_id, kind="skip" if fault is None else "environment")
            failures.append(failure)
            if fault is None and entry.is_url:
                remember_skip(out, entry.item_id, failure)
            continue
        save_item(record, item, out)
        items.append(item)
        if on_item is not None:
            on_item(item)
    return items, failures
