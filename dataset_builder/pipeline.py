"""The whole build: download -> chunk -> label -> split -> write, plus sharding and merging.

Every stage keeps its results under ``--out`` (``items/``, ``downloads/``, ``chunks/``, ``labels/``, ``skips/``)
and skips what is already there, so a killed run restarts where it stopped and ends with the same manifests as an
uninterrupted one. Manifests, sidecars and the card are written last (:func:`finalize`), each file atomically.

The output folder is the builder's own (:mod:`.outdir`: marker, lock, never inside an input folder). Paths kept
in the state are relative to ``--out`` and the manifests and dset config are written from where ``--out`` is now,
so a moved dataset works after one rerun. Faults of the machine (:mod:`.faults`) are never recorded as the song's:
the result lists them (:attr:`BuildResult.environment_failures`) and the next run tries again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import typing as tp
from pathlib import Path

from genrecraft.core.atomic import write_json

from .card import write_card
from .chunk import Chunk, chunk_all, chunk_one, chunking, read_done
from .config import BuildConfig
from .dedupe import duplicate_groups
from .download import Item, download, load_item
from .labeling import LabelAhead, label_chunks
from .manifest import write_dropped_sidecars, write_manifests
from .outdir import check_not_inside, claim
from .playlist import Failure, read_playlist
from .split import SPLITS, apply_caps, assign_splits, empty_splits
from . import vocals

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class BuildResult:
    out: Path
    name: str
    dset: str  # "audio/<name>", for dset= in Dora
    counts: tp.Dict[str, int]  # chunks per split
    songs: int
    failures: tp.List[Failure]
    card: tp.Optional[Path]
    dropped_vocal: int = 0  # chunks left out by --vocals drop
    empty_splits: tp.List[str] = dataclasses.field(default_factory=list)  # asked for (fraction > 0), yet no chunk

    @property
    def environment_failures(self) -> tp.List[Failure]:
        """What the machine, not the input, made fail (disk, permissions, a killed worker, the network): the
        next run tries these again."""
        return [f for f in self.failures if f.kind == "environment"]


def dataset_name(out: Path, config: BuildConfig) -> str:
    if config.name:
        return config.name
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", out.resolve().name).strip("._") or "dataset"
    return name if re.match(r"[A-Za-z0-9_]", name) else f"d_{name}"


def _save_config(out: Path, config: BuildConfig) -> None:
    write_json(out / "build_config.json", dataclasses.asdict(config))


def _saved_config(folder: Path) -> tp.Optional[tp.Dict[str, tp.Any]]:
    try:
        saved = json.loads((folder / "build_config.json").read_text())
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) else None


def config_from_saved(saved: tp.Mapping[str, tp.Any]) -> BuildConfig:
    """The BuildConfig of a ``build_config.json`` (keys this version does not know are left out)."""
    known = {f.name for f in dataclasses.fields(BuildConfig)}
    values = {k: v for k, v in saved.items() if k in known}
    for key in ("split", "shard"):
        if key in values:
            values[key] = tuple(values[key])
    return BuildConfig(**values)


def _previous_chunking(out: Path) -> tp.Optional[tp.Dict[str, tp.Any]]:
    """The chunking options of the last run into ``out`` (for records written before they were recorded)."""
    saved = _saved_config(out)
    if saved is None:
        return None
    try:
        return chunking(config_from_saved(saved))
    except (TypeError, ValueError):
        return None


def _load_state(out: Path, config: BuildConfig) -> tp.Tuple[tp.Dict[str, Item], tp.List[Chunk], tp.Dict[str, dict]]:
    """Songs, chunks and fingerprints already on disk under ``out``, cut with ``config``'s chunking options."""
    items = {}
    for path in sorted((out / "items").glob("*.json")):
        item = _item_record(path, out)
        if item is not None:
            items[item.item_id] = item
    chunks, records = [], {}
    wanted = chunking(config)
    for done in sorted((out / "chunks").glob("*/_done.json")):
        try:
            found, record = read_done(done, out)
        except (ValueError, TypeError, KeyError):
            continue  # unreadable (an old crash): the next build cuts that song again
        if record["item_id"] in items and record.get("chunking", wanted) == wanted:
            records[record["item_id"]] = record
            chunks += found
    return items, chunks, records


def finalize(out: Path, config: BuildConfig, failures: tp.Sequence[Failure] = (), progress: bool = True
             ) -> BuildResult:
    """Split and write everything from the state under ``out`` (also the last step of :func:`merge`)."""
    out = Path(out)
    items, chunks, records = _load_state(out, config)
    name = dataset_name(out, config)
    chunks = vocals.separate_chunks(chunks, out, config, progress=progress)  # --vocals separate: accompaniments
    labels, label_failures = label_chunks(chunks, out, config, progress=progress)
    failures = list(failures) + label_failures
    chunks = [c for c in chunks if c.chunk_id in labels]
    chunks, vocal_report = vocals.apply(chunks, labels, config)  # --vocals drop: leave out the vocal chunks
    groups = duplicate_groups(records, config.near_duplicate) if config.dedupe != "off" else {i: i for i in records}
    if config.dedupe == "drop":
        dropped = {i for i, g in groups.items() if i != g}
        failures += [Failure("dedupe", f"duplicate of song {groups[i]} (dropped)", items[i].origin, items[i].line, i)
                     for i in sorted(dropped)]
        chunks = [c for c in chunks if c.item_id not in dropped]
    else:
        failures += [Failure("dedupe", f"duplicate of song {groups[i]} (kept in the same split)", items[i].origin,
                             items[i].line, i) for i in sorted(groups) if groups[i] != i]
    chunks, cap_failures = apply_caps(chunks, items, labels, config.max_chunks_per_artist,
                                      config.max_chunks_per_genre, config.seed)
    failures += cap_failures
    used = {c.item_id for c in chunks}
    durations = {i: sum(c.duration for c in chunks if c.item_id == i) for i in used}
    song_split = assign_splits([items[i] for i in sorted(used)], durations, groups, config.split, config.split_by,
                               config.seed)
    manifest = write_manifests(out, name, chunks, items, labels, song_split, config)
    if vocal_report is not None:
        write_dropped_sidecars(vocal_report.dropped, items, labels, config)
    card = write_card(out, name, chunks, items, labels, song_split, failures, groups, manifest, config,
                      vocal_report)
    _save_config(out, config)
    return BuildResult(out, name, manifest["dset"], manifest["counts"], len(used), list(failures), card,
                       len(vocal_report.dropped) if vocal_report is not None else 0,
                       empty_splits(manifest["counts"], config.split))


def _item_record(path: Path, out: Path) -> tp.Optional[Item]:
    """The song of ``path`` if it is a song record the builder wrote, else None (a folder used with --force may
    hold other files)."""
    try:
        item = load_item(path, out)
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return item if item.item_id == path.stem else None


def _start(out: Path, config: BuildConfig) -> tp.Optional[tp.Dict[str, tp.Any]]:
    """Record the options of this run before any stage changes a file; returns the chunking options of the
    previous run. When they change, the old manifests (which name the old chunks) are removed now and written
    again at the end, so ``build_config.json`` and the manifests never describe other chunks than those on disk."""
    previous = _previous_chunking(out)
    wanted = chunking(config)
    if previous is not None and previous != wanted:
        changed = ", ".join(f"{k.replace('_', '-')} {previous[k]} -> {wanted[k]}" for k in wanted
                            if previous.get(k) != wanted[k])
        logger.warning("%s: chunking options changed (%s); every song is cut and labelled again", out, changed)
        for split in SPLITS:
            (out / "egs" / split / "data.jsonl").unlink(missing_ok=True)
    _save_config(out, config)
    return previous


def build(playlist: tp.Union[str, Path], out: tp.Union[str, Path], config: tp.Optional[BuildConfig] = None,
          progress: bool = True, force: bool = False, retry_failed: bool = False) -> BuildResult:
    """Build a dataset from ``playlist`` into ``out``. With ``config.shard = (i, n)``, n > 1, only that shard's
    songs are downloaded, chunked and labelled; join the shards with :func:`merge`.

    ``out`` must be new, empty or an earlier output of the builder (``force``: use a non-empty folder anyway),
    not inside an input folder, and not in use by another builder (ValueError naming it). ``retry_failed``:
    try again the songs earlier runs skipped for their own faults (dead link, cannot decode). Raises
    :class:`.faults.EnvironmentFault` when the run cannot go on (disk full); everything done so far is kept."""
    config = config or BuildConfig()
    out = Path(out)
    sources, failures = read_playlist(playlist, allow_file_urls=config.allow_file_urls)
    check_not_inside(out, [(s.location, f"playlist line {s.line}: {s.origin}") for s in sources
                           if s.kind == "folder"])
    with claim(out, force=force):
        previous = _start(out, config)
        cut: tp.Dict[str, tp.Any] = {}
        with LabelAhead(out, config) as ahead:  # each song is cut, and its labelling started, once downloaded

            def cut_and_label(item: Item) -> None:
                if item.item_id not in cut:  # a song listed twice is cut once
                    cut[item.item_id] = chunk_one(item, out, config, retry_failed, previous)
                    ahead.submit(cut[item.item_id][0])

            items, download_failures = download(sources, out, config, progress=progress, retry_failed=retry_failed,
                                                on_item=cut_and_label)
            ahead.close(progress=progress)
        failures += download_failures
        chunks, _, chunk_failures = chunk_all(items, out, config, progress=progress, retry_failed=retry_failed,
                                              legacy=previous, done=cut)
        failures += chunk_failures
        if config.shard[1] > 1:
            chunks = vocals.separate_chunks(chunks, out, config, progress=progress)
            labels, label_failures = label_chunks(chunks, out, config, progress=progress)
            return BuildResult(out, dataset_name(out, config), "", {}, len({c.item_id for c in chunks}),
                               failures + label_failures, None)
        # Keep only this playlist's songs: a song removed from the playlist leaves the dataset on the next run
        # (not when a source could not be read this time: its songs are still in the playlist).
        if not any(f.kind == "environment" and f.stage == "download" for f in failures):
            keep = {i.item_id for i in items}
            for stale in (out / "items").glob("*.json"):
                if stale.stem not in keep and _item_record(stale, out) is not None:
                    stale.unlink()
        return finalize(out, config, failures, progress=progress)


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link (or copy, across file systems) every file of ``src`` into ``dst``; existing files are kept."""
    for path in src.rglob("*"):
        if path.is_file():
            target = dst / path.relative_to(src)
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)


def merge(shards: tp.Sequence[tp.Union[str, Path]], out: tp.Union[str, Path], config: tp.Optional[BuildConfig] = None,
          progress: bool = True) -> BuildResult:
    """Join the outputs of ``--shard i/n`` runs into one dataset at ``out`` and write it."""
    out = Path(out)
    for shard in shards:
        shard = Path(shard)
        if not (shard / "items").is_dir():
            raise ValueError(f"{shard} is not a dataset_builder output (no items/ folder)")
    check_not_inside(out, [(str(s), "a shard") for s in shards])
    if config is None:
        saved = _saved_config(Path(shards[0]))
        if saved is None:
            raise ValueError(f"{shards[0]} has no readable build_config.json")
        config = config_from_saved(saved)
    config = dataclasses.replace(config, shard=(0, 1))
    with claim(out):
        for shard in shards:
            for sub in ("items", "chunks", "labels", "separated"):
                if (Path(shard) / sub).is_dir():
                    _link_tree(Path(shard) / sub, out / sub)
        # Chunk paths are relative to the output folder (or rebuilt from it when older records hold absolute
        # ones), so the merged copies need no rewriting.
        _save_config(out, config)
        return finalize(out, config, progress=progress)
