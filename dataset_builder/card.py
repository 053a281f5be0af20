"""The dataset card (``dataset_card.md`` + ``stats.json`` + PNG plots) and the failure report
(``failures.jsonl`` + a table in the card): what is in the dataset, where it came from, what was skipped and why.
"""

from __future__ import annotations

import collections
import json
import typing as tp
from pathlib import Path

import numpy as np

from genrecraft.core.atomic import write_json, write_text

from .chunk import Chunk
from .download import Item
from .label import Labels
from .manifest import described
from .playlist import Failure
from .split import SPLITS, empty_splits


def _bar(ax, counter: tp.Counter, title: str, top: int = 20) -> None:
    pairs = counter.most_common(top)
    if not pairs:
        ax.text(0.5, 0.5, "none", ha="center", va="center")
    else:
        names, counts = zip(*pairs)
        ax.barh(range(len(names))[::-1], counts, color="tab:blue")
        ax.set_yticks(range(len(names))[::-1])
        ax.set_yticklabels(names, fontsize=8)
    ax.set_title(title)
    ax.set_xlabel("chunks")


def plot_histograms(stats: tp.Mapping[str, tp.Any], labels: tp.Sequence[Labels], folder: Path) -> tp.List[Path]:
    """``tags.png`` (``stats["tags_in_descriptions"]``: the tags descriptions state, playlist tags included) and
    ``keys_tempo_splits.png`` (keys and tempi of ``labels``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    for ax, field, title in zip(axes, ("genres", "moods", "instruments"), ("Genres", "Moods", "Instruments")):
        _bar(ax, collections.Counter(stats["tags_in_descriptions"][field]), f"{title} in descriptions")
    fig.tight_layout()
    fig.savefig(folder / "tags.png", dpi=100)
    plt.close(fig)
    written.append(folder / "tags.png")

    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    keys = collections.Counter(f"{lab.key} {lab.scale}" for lab in labels if lab.key)
    _bar(axes[0], keys, "Keys", top=24)
    bpms = [lab.bpm for lab in labels if lab.bpm]
    axes[1].hist(bpms, bins=30, color="tab:orange")
    axes[1].set_title("Tempo in descriptions (BPM)")
    axes[1].set_xlabel("bpm")
    splits = stats["splits"]
    axes[2].bar(list(splits), [splits[s]["hours"] * 60 for s in splits], color=["tab:blue", "tab:green", "tab:red"])
    axes[2].set_title("Minutes of audio per split")
    fig.tight_layout()
    fig.savefig(folder / "keys_tempo_splits.png", dpi=100)
    plt.close(fig)
    written.append(folder / "keys_tempo_splits.png")
    return written


def confidence_lines(chunks: tp.Sequence[Chunk], items: tp.Mapping[str, Item], labels: tp.Mapping[str, Labels],
                     config) -> tp.List[str]:
    """The card's section on label confidence: each tag's probability distribution, the key and tempo left out as
    unsure, and the labels the playlist gave."""
    from .label.confidence import MIN_KEY_STRENGTH, MIN_TEMPO_CONFIDENCE

    from_playlist = {i: items[i].tags for i in sorted({c.item_id for c in chunks})}
    from_playlist = {i: {k: v for k, v in t.items() if k in ("genre", "moods", "instrument", "keywords",
                                                             "description")} for i, t in from_playlist.items()}
    by_tag: tp.Dict[tp.Tuple[str, str], tp.List[float]] = collections.defaultdict(list)
    own = [labels[c.chunk_id] for c in chunks if c.chunk_id in labels]
    for c in chunks:
        lab = labels.get(c.chunk_id)
        if lab is None:
            continue
        for field, tag_field in (("genres", "genre"), ("moods", "moods"), ("instruments", "instrument")):
            if from_playlist.get(c.item_id, {}).get(tag_field):
                continue  # the playlist's tag replaces the labeller's for this song
            for tag, p in getattr(lab, field):
                by_tag[(field[:-1], tag)].append(p)
    lines = ["## Labels and their confidence", "",
             f"Descriptions use tags with probability >= {config.min_tag_confidence:g} (`--min-tag-confidence`); "
             "every tag stays in each sidecar's `labels` with its probability. Tags the labeller gave (chunks in "
             "which the tag passed the tagger's 0.1 floor; quartiles of its probability):", ""]
    if by_tag:
        lines += ["| field | tag | chunks | in descriptions | min | q25 | median | q75 | max |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for (field, tag), ps in sorted(by_tag.items(), key=lambda kv: (kv[0][0], -len(kv[1]), kv[0][1])):
            q = np.quantile(ps, [0, 0.25, 0.5, 0.75, 1])
            used = sum(p >= config.min_tag_confidence for p in ps)
            lines.append(f"| {field} | {tag} | {len(ps)} | {used} | " + " | ".join(f"{x:.2f}" for x in q) + " |")
    else:
        lines.append("No tagger labels.")
    unsure_key = sum(lab.key_strength < MIN_KEY_STRENGTH for lab in own)
    unsure_tempo = sum(lab.tempo_confidence is not None and lab.tempo_confidence < MIN_TEMPO_CONFIDENCE
                       for lab in own)
    key_line = (f"Key left out of {unsure_key} of {len(own)} descriptions (key strength < {MIN_KEY_STRENGTH:g})"
                if MIN_KEY_STRENGTH > 0 else "Key stated in every description (no key-strength threshold: on songs "
                "of known key, wrong keys were as strong as right ones)")
    lines += ["", f"{key_line}; tempo left out of {unsure_tempo} of {len(own)} (beat regularity < "
                  f"{MIN_TEMPO_CONFIDENCE:g})."]
    given = {i: t for i, t in from_playlist.items() if t}
    lines += ["", "Labels from the playlist (they replace the labeller's in descriptions and sidecars):", ""]
    if given:
        lines += ["| song | playlist tags |", "| --- | --- |"]
        lines += [f"| {items[i].title.replace('|', '/')} | "
                  + ", ".join(f"{k}={v}" for k, v in sorted(t.items())).replace("|", "/") + " |"
                  for i, t in given.items()]
    else:
        lines.append("None: every label comes from the labeller.")
    return lines + [""]


def write_card(out: Path, name: str, chunks: tp.Sequence[Chunk], items: tp.Mapping[str, Item],
               labels: tp.Mapping[str, Labels], song_split: tp.Mapping[str, str], failures: tp.Sequence[Failure],
               duplicates: tp.Mapping[str, str], manifest: tp.Mapping[str, tp.Any], config,
               vocal_report=None) -> Path:
    """Write the card, stats and plots; returns the card's path. ``vocal_report``: a
    :class:`.vocals.VocalReport` (the card's Vocals section)."""
    from . import vocals

    used_items = sorted({c.item_id for c in chunks})
    stats: tp.Dict[str, tp.Any] = {"name": name, "dset": manifest["dset"], "splits": {}, "config": {
        k: v for k, v in vars(config).items()}}
    for split in SPLITS:
        in_split = [c for c in chunks if song_split[c.item_id] == split]
        songs = {c.item_id for c in in_split}
        stats["splits"][split] = {"chunks": len(in_split), "songs": len(songs),
                                  "artists": len({items[s].artist for s in songs}),
                                  "hours": round(sum(c.duration for c in in_split) / 3600, 4)}
    total_hours = sum(s["hours"] for s in stats["splits"].values())
    groups = collections.Counter(duplicates.values())
    stats.update({"songs": len(used_items), "chunks": len(chunks), "hours": round(total_hours, 4),
                  "artists": len({items[i].artist for i in used_items}),
                  "duplicate_groups": sum(1 for n in groups.values() if n > 1),
                  "failures": sum(1 for f in failures if f.skipped),
                  "failures_of_the_machine": sum(1 for f in failures if f.kind == "environment"),
                  "playlist_warnings": sum(1 for f in failures if not f.skipped)})
    if vocal_report is not None and vocal_report.mode != "keep":
        known = [v for v in vocal_report.scores.values() if v is not None]
        stats["vocals"] = {"mode": vocal_report.mode, "threshold": vocal_report.threshold, "scored_chunks": len(known),
                           "vocal_chunks": sum(v >= vocal_report.threshold for v in known),
                           "dropped_chunks": len(vocal_report.dropped)}
    stated = [described(c, items[c.item_id], labels[c.chunk_id], config) for c in chunks if c.chunk_id in labels]
    stats["tags_in_descriptions"] = {field: dict(collections.Counter(n for lab in stated for n, _ in getattr(lab, field))
                                                 .most_common()) for field in ("genres", "moods", "instruments")}
    plots = plot_histograms(stats, stated, out / "plots")
    write_json(out / "stats.json", stats)
    write_text(out / "failures.jsonl", "".join(json.dumps(f.to_dict(), ensure_ascii=False) + "\n"
                                              for f in failures))

    lines = [f"# Dataset card: {name}", "",
             f"{stats['songs']} songs by {stats['artists']} artists, {stats['chunks']} chunks of "
             f"{config.chunk_seconds:g} s at {config.sample_rate} Hz mono, {total_hours:.2f} hours. "
             f"Labels: essentia key/tempo (`{config.bpm_method}`, octave check `{config.tempo_octave}`)/loudness "
             f"+ tagger `{config.tagger}`.", "",
             f"Train with: `dora -P genrecraft run solver=musicgen/genrecraft_small_lora dset={manifest['dset']}`",
             "", "| split | songs | artists | chunks | hours |", "| --- | --- | --- | --- | --- |"]
    for split, s in stats["splits"].items():
        lines.append(f"| {split} | {s['songs']} | {s['artists']} | {s['chunks']} | {s['hours']:.3f} |")
    empty = empty_splits({s: v["chunks"] for s, v in stats["splits"].items()}, config.split)
    if empty:
        lines += ["", f"**Warning:** no audio in {', '.join(empty)}: add songs (each split needs whole songs)."]
    lines += ["", "Songs are split whole (never chunk by chunk)" + (", artists too" if config.split_by == "artist"
                                                                    else "") + f"; {stats['duplicate_groups']} group(s) "
              "of duplicate songs were kept in one split" + (" (extra copies dropped)." if config.dedupe == "drop"
                                                             else "."), ""]
    lines += [f"![tags](plots/{plots[0].name})", "", f"![keys, tempo, splits](plots/{plots[1].name})", ""]
    if vocal_report is not None:
        lines += vocals.card_lines(vocal_report, chunks, items)
    lines += confidence_lines(chunks, items, labels, config)
    lines += ["## Sources and licences", "", "| song | artist | split | source | licence |",
              "| --- | --- | --- | --- | --- |"]
    for item_id in used_items:
        item = items[item_id]
        lines.append(f"| {item.title.replace('|', '/')} | {item.artist.replace('|', '/')} | {song_split[item_id]} "
                     f"| {item.source_url} | {item.license} |")
    warnings = [f for f in failures if not f.skipped]
    if warnings:
        lines += ["", f"## Playlist warnings ({len(warnings)}): the songs are kept", "", "| line | entry | warning |",
                  "| --- | --- | --- |"]
        lines += [f"| {f.line or ''} | {f.source.replace('|', '/')} | {f.reason.replace('|', '/')} |" for f in warnings]
    failures = [f for f in failures if f.skipped]
    lines += ["", f"## Skipped ({len(failures)})", ""]
    if failures:
        lines += ["| stage | input | line | reason |", "| --- | --- | --- | --- |"]
        for f in failures:
            reason = f.reason + (" (a fault of the machine, not of the song: the next run tries again)"
                                 if f.kind == "environment" else "")
            lines.append(f"| {f.stage} | {(f.source or f.item_id).replace('|', '/')} | {f.line or ''} | "
                         f"{reason.replace('|', '/')} |")
    else:
        lines.append("Nothing was skipped.")
    lines += ["", "Music keeps its own rights: check each source's licence before you publish a model trained on "
              "it.", ""]
    card = out / "dataset_card.md"
    write_text(card, "\n".join(lines))
    return card
