"""Stage 5: audiocraft's own formats, written atomically.

- ``egs/{train,valid,test}/data.jsonl``: one AudioMeta per chunk (``path, duration, sample_rate, amplitude,
  weight, info_path``), as ``audiocraft.data.audio_dataset`` reads them;
- a sidecar ``<chunk>.json`` next to each chunk with the MusicInfo fields in the types audiocraft's loader keeps:
  ``instrument`` is one string (a list would be dropped silently), ``moods`` and ``keywords`` are lists of
  single words (a string would be split on spaces and commas, so multi-word moods are hyphenated), ``key`` is
  one lower-case string without commas (``"f# major"``: a comma makes the loader drop it), ``bpm`` a number.
  Extra fields (song id, source URL, licence, start time, split, every label with its probability) are ignored
  by audiocraft and kept for people;
- a dset config, so ``dset=audio/<name>`` works in Dora.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import typing as tp
from pathlib import Path

from genrecraft.core import audio, paths
from genrecraft.core.atomic import write_json, write_text

from .chunk import Chunk
from .download import Item
from .label import Labels, describe
from .label.confidence import DEFAULT_MIN_TAG_CONFIDENCE, confident
from .split import SPLITS

logger = logging.getLogger(__name__)


def _words(values: tp.Iterable[str]) -> tp.List[str]:
    return ["-".join(str(v).strip().lower().replace(",", " ").split()) for v in values if str(v).strip()]


def with_tags(labels: Labels, tags: tp.Mapping[str, str]) -> Labels:
    """``labels`` with the playlist's genre, moods and instrument tags in place of the tagger's (what the
    description is written from: a tag the user gave wins over a guess)."""
    changes: tp.Dict[str, tp.Any] = {}
    if tags.get("genre", "").strip():
        changes["genres"] = [(tags["genre"].strip().lower(), 1.0)]
    if tags.get("moods", "").strip():
        changes["moods"] = [(m, 1.0) for m in _words(tags["moods"].split(","))]
    if tags.get("instrument", "").strip():
        changes["instruments"] = [(i.strip().lower(), 1.0) for i in tags["instrument"].split(",") if i.strip()]
    return dataclasses.replace(labels, **changes) if changes else labels


def described(chunk: Chunk, item: Item, labels: Labels, config=None) -> Labels:
    """What a chunk's description is written from: the playlist's tags over the labeller's, then only what is sure
    enough (``config``'s ``min_tag_confidence``; an accompaniment stem's voice tags left out)."""
    from .vocals import SEPARATED_SUFFIX

    return confident(with_tags(labels, item.tags), getattr(config, "min_tag_confidence", DEFAULT_MIN_TAG_CONFIDENCE),
                     instrumental=chunk.chunk_id.endswith(SEPARATED_SUFFIX))


def music_info(chunk: Chunk, item: Item, labels: tp.Optional[Labels], split: tp.Optional[str], seed: int, config=None
               ) -> tp.Dict[str, tp.Any]:
    """The sidecar of one chunk: MusicInfo fields (in types audiocraft keeps) plus provenance. The MusicInfo fields
    and the description say only what is sure enough (:func:`.label.confidence.confident`, with ``config``'s
    ``min_tag_confidence``); ``labels`` keeps every label with its probability."""
    from .vocals import SEPARATED_SUFFIX, tag_score, vocal_score

    tags = item.tags
    mode = getattr(config, "vocals", "keep")
    separated = chunk.chunk_id.endswith(SEPARATED_SUFFIX)
    full = labels
    if labels is not None:
        labels = described(chunk, item, labels, config)
    info: tp.Dict[str, tp.Any] = {
        "title": item.title, "artist": item.artist, "key": None, "bpm": None, "genre": None, "moods": [],
        "keywords": [], "description": None, "name": chunk.chunk_id.lower(), "instrument": None,
    }
    if labels is not None:
        info["key"] = f"{labels.key} {labels.scale}".strip().lower().replace(",", " ") or None
        info["bpm"] = round(float(labels.bpm), 1) if labels.bpm else None
        info["genre"] = labels.genres[0][0].lower() if labels.genres else None
        info["moods"] = _words(m for m, _ in labels.moods)
        info["keywords"] = _words(labels.keywords)
        info["instrument"] = ", ".join(i.lower() for i, _ in labels.instruments) or None
        seed_int = int(hashlib.sha1(f"{seed}:{chunk.chunk_id}".encode()).hexdigest()[:8], 16)
        info["description"] = describe(labels, seed=seed_int) + (", instrumental" if separated else "")
    for field in ("genre", "instrument", "description"):
        if tags.get(field):
            info[field] = tags[field].strip().lower() if field != "description" else tags[field].strip()
    for field in ("moods", "keywords"):
        if tags.get(field):
            info[field] = _words(tags[field].split(","))
    if info["description"] is None:
        info["description"] = " ".join(x for x in [info["genre"] or "", "music"] if x)
    info.update({
        "song_id": item.item_id, "source_url": item.source_url, "license": item.license, "start": chunk.start,
        "split": split, "labels": full.to_dict() if full is not None else None,
    })
    if mode != "keep":  # the detector's probability of a voice, and the voice-tag score it replaced
        for field, score in (("vocal_score", vocal_score), ("vocal_tag_score", tag_score)):
            value = None if full is None else score(full.scores)
            info[field] = None if value is None else round(value, 4)
    return info


def write_dropped_sidecars(dropped: tp.Sequence[Chunk], items: tp.Mapping[str, Item],
                           labels: tp.Mapping[str, Labels], config) -> None:
    """The sidecars of chunks ``--vocals drop`` left out of the manifests: in no split (``"split": null``) and
    saying why, whatever an earlier run with another mode wrote there."""
    for chunk in dropped:
        info = music_info(chunk, items[chunk.item_id], labels.get(chunk.chunk_id), None, config.seed, config)
        info["dropped"] = "vocal (--vocals drop)"
        _write_sidecar(chunk, info)


def _write_sidecar(chunk: Chunk, info: tp.Mapping[str, tp.Any]) -> None:
    """``info`` as the chunk's sidecar, written only when it changed (a rerun leaves unchanged files alone)."""
    sidecar = Path(chunk.path).with_suffix(".json")
    if not sidecar.exists() or json.loads(sidecar.read_text()) != info:
        write_json(sidecar, info)


def dset_yaml(out: Path, sample_rate: int) -> str:
    egs = out.resolve() / "egs"
    return audio.dset_yaml({"train": egs / "train", "valid": egs / "valid", "evaluate": egs / "test",
                            "generate": egs / "test"}, sample_rate,
                           comment=f"Written by `python -m dataset_builder` for {out.resolve()}")


def write_manifests(out: Path, name: str, chunks: tp.Sequence[Chunk], items: tp.Mapping[str, Item],
                    labels: tp.Mapping[str, Labels], song_split: tp.Mapping[str, str], config
                    ) -> tp.Dict[str, tp.Any]:
    """Write sidecars, the three manifests and the dset config. Returns per-split counts and paths."""
    lines: tp.Dict[str, tp.List[tp.Dict[str, tp.Any]]] = {s: [] for s in SPLITS}
    for chunk in sorted(chunks, key=lambda c: c.chunk_id):
        split = song_split[chunk.item_id]
        _write_sidecar(chunk, music_info(chunk, items[chunk.item_id], labels.get(chunk.chunk_id), split, config.seed,
                                         config))
        lines[split].append(audio.audio_meta(chunk.path, chunk.duration, config.sample_rate))
    for split in SPLITS:
        audio.write_manifest(out / "egs" / split / "data.jsonl", lines[split])
    yaml = dset_yaml(out, config.sample_rate)
    write_text(out / f"dset_{name}.yaml", yaml)
    registered = paths.user_config_dir() / "dset" / "audio" / f"{name}.yaml"
    if registered.exists() and registered.read_text() != yaml:
        previous = next((line.split(" for ", 1)[-1] for line in registered.read_text().splitlines()
                         if line.startswith("# Written by")), "another folder")
        logger.warning("dset=audio/%s pointed to %s; it now points to %s (name datasets apart with --name)", name,
                       previous, out)
    write_text(registered, yaml)
    return {"counts": {s: len(lines[s]) for s in SPLITS}, "dset": f"audio/{name}", "dset_file": str(registered)}
