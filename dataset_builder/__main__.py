"""Command line: ``python -m dataset_builder PLAYLIST --out DIR`` and ``python -m dataset_builder merge ...``."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import typing as tp
from pathlib import Path

from genrecraft.core import cli

from . import pipeline
from .config import BuildConfig, parse_shard
from .faults import EnvironmentFault, classify

EPILOG = """playlist format (one entry per line, # comments, optional key=value tags):
  https://www.youtube.com/playlist?list=...        any URL yt-dlp supports
  https://example.com/song.mp3  artist=YOASOBI     tags override metadata (artist, title, genre, license, ...)
  ~/music/jpop/                                    a local folder (recursively) or file
  favourites.m3u                                   M3U/M3U8 lists are read by genrecraft
  file:///data/song.flac                           only with --allow-file-urls

outputs under --out: egs/{train,valid,test}/data.jsonl (audiocraft manifests), a .json sidecar per chunk,
dataset_card.md (+ plots/, stats.json), failures.jsonl, dset_<name>.yaml; the dataset is registered for Dora
as dset=audio/<name>. Rerun the same command to resume; nothing done is redone.

exit status: 0 done; 1 some songs failed for reasons of the machine (disk full, permission denied, a killed
worker, a network time-out: nothing about them is remembered, rerun to try them again); 2 bad input or options
(one line on stderr); 130 interrupted (Ctrl-C; rerun to resume).

join shards:  python -m dataset_builder merge OUT_0 OUT_1 ... --out DIR"""


def _add_config_arguments(parser: argparse.ArgumentParser, skip: tp.Sequence[str] = ()) -> None:
    for field in dataclasses.fields(BuildConfig):
        if field.name in skip:
            continue
        flag = "--" + field.name.replace("_", "-")
        default = None if field.default is dataclasses.MISSING else field.default
        default = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = field.metadata.get("help", "") + (f" (default: {default})" if default not in (None, "") else "")
        if field.type in ("bool", bool):
            parser.add_argument(flag, action="store_true", help=help_text)
        elif field.name == "split":
            parser.add_argument(flag, default=None, help=help_text + "; e.g. 0.8,0.1,0.1")
        elif field.name == "shard":
            parser.add_argument(flag, default=None, help=help_text + "; e.g. 0/4")
        else:
            kind = {"int": int, "float": float}.get(str(field.type), str)
            parser.add_argument(flag, type=kind, default=None, choices=field.metadata.get("choices"), help=help_text)


def _config_from(args: argparse.Namespace) -> BuildConfig:
    values = {}
    for field in dataclasses.fields(BuildConfig):
        value = getattr(args, field.name, None)
        if value is None or value is False:
            continue
        if field.name == "split":
            try:
                value = tuple(float(x) for x in str(value).split(","))
            except ValueError as exc:
                raise ValueError(f"--split {value!r}: give three fractions like 0.8,0.1,0.1") from exc
        elif field.name == "shard":
            value = parse_shard(str(value))
        values[field.name] = value
    return BuildConfig(**values)


def merge_parser(prog: str = "python -m dataset_builder merge") -> argparse.ArgumentParser:
    parser = cli.parser(prog, "Join the outputs of --shard runs into one dataset.")
    parser.add_argument("shards", nargs="+", type=Path, help="output folders of the shard runs")
    cli.add_out(parser, type=Path, help="folder of the merged dataset")
    return parser


def build_parser(prog: str = "python -m dataset_builder") -> argparse.ArgumentParser:
    parser = cli.parser(prog, "Build a MusicGen training set from a playlist: download (yt-dlp), cut chunks, label "
                              "them (essentia), split by song, write audiocraft manifests.", epilog=EPILOG)
    parser.add_argument("playlist", type=Path, help="playlist file (see below)")
    cli.add_out(parser, type=Path, help="output folder (created; reruns resume)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--force", action="store_true",
                        help="build into a non-empty folder that is not a dataset_builder output (nothing the "
                             "builder did not write is deleted; files with the builder's own names, items/, chunks/, "
                             "egs/, ..., are written as usual)")
    parser.add_argument("--retry-failed", action="store_true",
                        help="try again the songs earlier runs skipped for their own faults (dead link, cannot "
                             "decode); faults of the machine are always tried again")
    _add_config_arguments(parser)
    return parser


def main(argv: tp.Optional[tp.List[str]] = None, prog: str = "python -m dataset_builder") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        if argv and argv[0] == "merge":
            args = merge_parser(prog + " merge").parse_args(argv[1:])
            result = pipeline.merge(args.shards, args.out)
        else:
            args = build_parser(prog).parse_args(argv)
            result = pipeline.build(args.playlist, args.out, _config_from(args), progress=not args.quiet,
                                    force=args.force, retry_failed=args.retry_failed)
    except cli.USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return cli.EXIT_USER
    except KeyboardInterrupt:
        print("\ninterrupted: everything finished so far is kept; rerun the same command to resume",
              file=sys.stderr)
        return 130
    except (EnvironmentFault, OSError) as exc:
        fault = exc if isinstance(exc, EnvironmentFault) else classify(exc)
        if fault is None:
            raise
        print(f"error: {fault}; the run stopped, everything finished so far is kept: fix this and rerun the same "
              "command", file=sys.stderr)
        return 1
    if result.card is None:
        print(f"shard done: {result.songs} songs under {result.out}; join shards with "
              f"`python -m dataset_builder merge ... --out DIR`")
    else:
        counts = ", ".join(f"{k} {v}" for k, v in result.counts.items())
        skipped = sum(1 for f in result.failures if f.skipped)
        warned = len(result.failures) - skipped
        print(f"\n{result.songs} songs -> chunks: {counts}. {skipped} skipped"
              + (f", {result.dropped_vocal} chunk(s) dropped as vocal (--vocals drop)" if result.dropped_vocal else "")
              + (f", {warned} playlist warning(s) (songs kept)" if warned else "")
              + f" (see {result.out / 'failures.jsonl'}).\nDataset card: {result.card}\n"
              f"Train: dora -P genrecraft run solver=musicgen/genrecraft_small_lora dset={result.dset}")
        if result.empty_splits:
            print(f"warning: no chunk in {', '.join(result.empty_splits)}: add songs (each split takes whole songs)",
                  file=sys.stderr)
    machine = result.environment_failures
    if machine:
        print(f"error: {len(machine)} item(s) failed for reasons of the machine, not of the songs (first: "
              f"{machine[0].stage} {machine[0].source or machine[0].item_id}: {machine[0].reason}); nothing about "
              "them is remembered: fix it and rerun the same command to do them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
