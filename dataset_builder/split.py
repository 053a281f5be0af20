"""Stage 4: train/valid/test split by song (or artist), never by chunk; duplicates kept together or dropped;
optional caps per artist or genre to balance the classes.

Groups (a song, its duplicates, or all songs of an artist) are ordered by a seeded hash of their id, then each
goes to the split furthest below its target share of the audio. The assignment depends only on the songs and
the seed, not on the order in which they were processed.
"""

from __future__ import annotations

import hashlib
import typing as tp

from .chunk import Chunk
from .dedupe import Groups
from .download import Item
from .label import Labels
from .playlist import Failure

SPLITS = ("train", "valid", "test")


def empty_splits(counts: tp.Mapping[str, int], fractions: tp.Sequence[float]) -> tp.List[str]:
    """The splits asked for (a fraction above 0) that got no chunk: each split takes whole songs."""
    return [s for s, fraction in zip(SPLITS, fractions) if fraction > 0 and not counts.get(s)]


def _rank(text: str, seed: int) -> str:
    return hashlib.sha1(f"{seed}:{text}".encode()).hexdigest()


def assign_splits(items: tp.Sequence[Item], durations: tp.Mapping[str, float], groups: tp.Mapping[str, str],
                  fractions: tp.Sequence[float], split_by: str, seed: int) -> tp.Dict[str, str]:
    """Song id -> split. ``groups`` maps each song to its duplicate group; ``split_by="artist"`` joins artists."""
    joined = Groups()
    find, union = joined.find, joined.union

    for item in items:
        union(item.item_id, groups.get(item.item_id, item.item_id))
        if split_by == "artist":
            union(item.item_id, "artist:" + item.artist.strip().lower())
    key_of = {item.item_id: find(item.item_id) for item in items}
    group_seconds: tp.Dict[str, float] = {}
    for item in items:
        group_seconds[key_of[item.item_id]] = group_seconds.get(key_of[item.item_id], 0.0) + durations.get(
            item.item_id, 0.0)
    total = sum(group_seconds.values()) or 1.0
    have = {s: 0.0 for s in SPLITS}
    target = dict(zip(SPLITS, fractions))
    chosen: tp.Dict[str, str] = {}
    ordered = sorted(group_seconds, key=lambda g: _rank(g, seed))
    # With three groups or more, valid and test each get at least one (if their share is not zero).
    for split in ("valid", "test"):
        if len(ordered) - len(chosen) >= 2 and target[split] > 0:
            group = next(g for g in ordered if g not in chosen)
            chosen[group] = split
            have[split] += group_seconds[group]
    for group in ordered:
        if group in chosen:
            continue
        split = max(SPLITS, key=lambda s: (target[s] - have[s] / total, s == "train"))
        chosen[group] = split
        have[split] += group_seconds[group]
    return {item.item_id: chosen[key_of[item.item_id]] for item in items}


def apply_caps(chunks: tp.Sequence[Chunk], items: tp.Mapping[str, Item], labels: tp.Mapping[str, Labels],
               max_per_artist: int, max_per_genre: int, seed: int) -> tp.Tuple[tp.List[Chunk], tp.List[Failure]]:
    """Keep at most N chunks per artist / per top genre (chosen by a seeded hash, so spread over songs)."""
    if not max_per_artist and not max_per_genre:
        return list(chunks), []
    kept, dropped = [], []
    counts: tp.Dict[str, int] = {}
    for chunk in sorted(chunks, key=lambda c: _rank(c.chunk_id, seed)):
        keys = []
        if max_per_artist:
            keys.append(("artist:" + items[chunk.item_id].artist.lower(), max_per_artist))
        if max_per_genre:
            genres = labels[chunk.chunk_id].genres if chunk.chunk_id in labels else []
            keys.append(("genre:" + (genres[0][0] if genres else "unknown"), max_per_genre))
        if all(counts.get(k, 0) < cap for k, cap in keys):
            for k, _ in keys:
                counts[k] = counts.get(k, 0) + 1
            kept.append(chunk)
        else:
            dropped.append(chunk)
    order = {c.chunk_id: i for i, c in enumerate(chunks)}
    kept.sort(key=lambda c: order[c.chunk_id])
    failures = [Failure("balance", "over the per-artist/per-genre cap", c.path, 0, c.chunk_id) for c in dropped]
    return kept, failures
