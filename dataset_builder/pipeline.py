"""The whole build: download -> chunk -> label -> split -> write, plus sharding and merging.

Every stage keeps its results under ``--out`` (``items/``, ``downloads/``, ``chunks/``, ``labels/``) and skips
what is already there, so a killed run restarts where it stopped and ends with the same manifests as an
uninterrupted one. Manifests, sidecars and the card are written last (:func:`finalize`), each file atomically.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import typing as tp
from pathlib import Path

from .card import write_card
from .chunk import Chunk, chunk_all
from .config import BuildConfig
from .dedupe import duplicate_groups
from .download import Item, download
from .labeling import label_chunks
from .manifest import write_manifests
from .playlist import Failure, read_playlist
from .split import apply_caps, assign_splits


@dataclasses.dataclass
class BuildResult:
    out: Path
    name: str
    dset: str  # "audio/<name>", for dset= in Dora
    counts: tp.Dict[str, int]  # chunks per split
    songs: int
    failures: tp.List[Failure]
    card: tp.Optional[Path]


def dataset_name(out: Path, config: BuildConfig) -> str:
    if config.name:
        return config.name
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", out.resolve().name).strip("._") or "dataset"
    return name if re.match(r"[A-Za-z0-9_]", name) else f"d_{name}"


def _save_config(out: Path, config: BuildConfig) -> None:
    from genrecraft.atomic import write_json

    write_json(out / "build_config.json", dataclasses.asdict(config))


def _load_state(out: Path) -> tp.Tuple[tp.Dict[str, Item], tp.List[Chunk], tp.Dict[str, dict]]:
    """Songs, chunks and fingerprints already on disk under ``out``."""
    items = {}
    for path in sorted((out / "items").glob("*.json")):
        item = Item.from_dict(json.loads(path.read_text()))
        items[item.item_id] = item
    chunks, records = [], {}
    for done in sorted((out / "chunks").glob("*/_done.json")):
        record = json.loads(done.read_text())
        if record["item_id"] in items:
            records[record["item_id"]] = record
            chunks += [Chunk(**c) for c in record["chunks"]]
    return items, chunks, records


def finalize(out: Path, config: BuildConfig, failures: tp.Sequence[Failure] = (), progress: bool = True
             ) -> BuildResult:
    """Split and write everything from the state under ``out`` (also the last step of :func:`merge`)."""
    out = Path(out)
    items, chunks, records = _load_state(out)
    name = dataset_name(out, config)
    labels, label_failures = label_chunks(chunks, out, config, progress=progress)
    failures = list(failures) + label_failures
    chunks = [c for c in chunks if c.chunk_id in labels]
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
    card = write_card(out, name, chunks, items, labels, song_split, failures, groups, manifest, config)
    _save_config(out, config)
    return BuildResult(out, name, manifest["dset"], manifest["counts"], len(used), list(failures), card)


def build(playlist: tp.Union[str, Path], out: tp.Union[str, Path], config: tp.Optional[BuildConfig] = None,
          progress: bool = True) -> BuildResult:
    """Build a dataset from ``playlist`` into ``out``. With ``config.shard = (i, n)``, n > 1, only that shard's
    songs are downloaded, chunked and labelled; join the shards with :func:`merge`."""
    config = config or BuildConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sources, failures = read_playlist(playlist, allow_file_urls=config.allow_file_urls)
    items, download_failures = download(sources, out, config, progress=progress)
    failures += download_failures
    chunks, _, chunk_failures = chunk_all(items, out, config, progress=progress)
    failures += chunk_failures
    if config.shard[1] > 1:
        labels, label_failures = label_chunks(chunks, out, config, progress=progress)
        _save_config(out, config)
        return BuildResult(out, dataset_name(out, config), "", {}, len({c.item_id for c in chunks}),
                           failures + label_failures, None)
    # Keep only this playlist's songs: a song removed from the playlist leaves the dataset on the next run.
    keep = {i.item_id for i in items}
    for stale in (out / "items").glob("*.json"):
        if stale.stem not in keep:
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
    out.mkdir(parents=True, exist_ok=True)
    if config is None:
        saved = json.loads((Path(shards[0]) / "build_config.json").read_text())
        saved["split"], saved["shard"] = tuple(saved["split"]), (0, 1)
        config = BuildConfig(**saved)
    for shard in shards:
        shard = Path(shard)
        if not (shard / "items").is_dir():
            raise ValueError(f"{shard} is not a dataset_builder output (no items/ folder)")
        for sub in ("items", "chunks", "labels"):
            if (shard / sub).is_dir():
                _link_tree(shard / sub, out / sub)
    # Chunk paths recorded in the shards point into the shards: rewrite them to the merged copies (an atomic
    # write replaces the hard link, so the shard's own file is untouched).
    from genrecraft.atomic import write_json

    for done in (out / "chunks").glob("*/_done.json"):
        record = json.loads(done.read_text())
        for chunk in record["chunks"]:
            chunk["path"] = str(done.parent / Path(chunk["path"]).name)
        write_json(done, record)
    return finalize(out, dataclasses.replace(config, shard=(0, 1)), progress=progress)
