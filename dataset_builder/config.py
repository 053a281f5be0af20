"""Settings of a dataset build, validated on creation."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import typing as tp

from .label import BPM_METHODS, TEMPO_OCTAVE, taggers
from .label.confidence import DEFAULT_MIN_TAG_CONFIDENCE
from .vocals import VOCAL_THRESHOLD, VOCALS

SPLIT_BY = ("song", "artist")
DEDUPE = ("group", "drop", "off")
REMAINDER = ("drop-short", "keep", "drop")


@dataclasses.dataclass
class BuildConfig:
    """Every knob of ``python -m dataset_builder`` (the CLI flags have the same names, with dashes)."""

    name: str = dataclasses.field(default="", metadata={
        "help": "dataset name for dset=audio/<name> (default: the output folder's name)"})
    chunk_seconds: float = dataclasses.field(default=30.0, metadata={"help": "chunk length in seconds"})
    sample_rate: int = dataclasses.field(default=32000, metadata={"help": "chunk sample rate (MusicGen: 32000)"})
    min_segment_ratio: float = dataclasses.field(default=0.8, metadata={
        "help": "a song's last, shorter chunk is kept if at least this fraction of a chunk (audiocraft's default)"})
    remainder: str = dataclasses.field(default="drop-short", metadata={
        "choices": REMAINDER,
        "help": f"last chunk of a song: {REMAINDER[0]} (drop it when below --min-segment-ratio), keep (always), "
                "drop (always)"})
    silence_db: float = dataclasses.field(default=-45.0, metadata={
        "help": "chunks quieter than this RMS level (dBFS) are skipped as silent"})
    tagger: str = dataclasses.field(default="musicnn", metadata={
        "choices": taggers.names(), "help": "genre/mood/instrument tagger (none: tempo and key only)"})
    bpm_method: str = dataclasses.field(default="degara", metadata={
        "choices": BPM_METHODS, "help": "essentia's tempo estimator"})
    tempo_octave: str = dataclasses.field(default="backbeat", metadata={
        "choices": TEMPO_OCTAVE, "help": "octave check of the tempo (backbeat: halve or double it from where the snare "
                "falls)"})
    workers: int = dataclasses.field(default=1, metadata={"help": "parallel labelling processes"})
    vocals: str = dataclasses.field(default="flag", metadata={
        "choices": VOCALS, "help": "chunks with a voice: flag (vocal_score in each sidecar, vocal share in the card), "
                "drop (leave out chunks at or above --vocal-threshold), separate (train on the accompaniment demucs "
                "htdemucs separates: slow on CPU, use a GPU; 80 MB download once), keep (do nothing)"})
    vocal_threshold: float = dataclasses.field(default=VOCAL_THRESHOLD, metadata={
        "help": "vocal score (the vocal detector's probability of a voice) at or above which a chunk counts as "
                "vocal; 0 to 1, above 0"})
    min_tag_confidence: float = dataclasses.field(default=DEFAULT_MIN_TAG_CONFIDENCE, metadata={
        "help": "descriptions use only genre/mood/instrument tags at least this probable (all stay in the "
                "sidecar's labels with their probabilities; playlist tags always win); 0.1 to 1"})
    split: tp.Tuple[float, float, float] = dataclasses.field(default=(0.8, 0.1, 0.1), metadata={
        "help": "train/valid/test fractions of the audio (by song, never by chunk)"})
    split_by: str = dataclasses.field(default="song", metadata={
        "choices": SPLIT_BY, "help": "keep each song (or each artist) in one split"})
    dedupe: str = dataclasses.field(default="group", metadata={
        "choices": DEDUPE, "help": "exact and near-duplicate songs: group (same split), drop (keep one), off"})
    near_duplicate: float = dataclasses.field(default=0.95, metadata={
        "help": "chroma similarity (0..1) above which two songs count as near-duplicates"})
    max_chunks_per_artist: int = dataclasses.field(default=0, metadata={
        "help": "balance: at most this many chunks per artist (0: no cap)"})
    max_chunks_per_genre: int = dataclasses.field(default=0, metadata={
        "help": "balance: at most this many chunks per top genre (0: no cap)"})
    seed: int = dataclasses.field(default=0, metadata={"help": "seed of the split and of the descriptions"})
    allow_file_urls: bool = dataclasses.field(default=False, metadata={"help": "let file:// URLs through yt-dlp"})
    retries: int = dataclasses.field(default=3, metadata={"help": "download retries per item"})
    shard: tp.Tuple[int, int] = dataclasses.field(default=(0, 1), metadata={
        "help": "process only songs of shard i of n (i/n); join shard outputs with `merge`"})

    def __post_init__(self):
        def bad(field: str, value, fix: str):  # named as the flag (the Python field is the same with "_")
            shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
            raise ValueError(f"--{field.replace('_', '-')} {shown}: {fix}")

        if self.name and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", self.name):
            bad("name", self.name, "use letters, digits, '_', '-', '.' (it becomes dset=audio/<name>)")
        if not 1.0 <= self.chunk_seconds <= 600.0:
            bad("chunk_seconds", self.chunk_seconds, "use 1 to 600 seconds (MusicGen trains on 30)")
        if self.sample_rate not in (16000, 22050, 24000, 32000, 44100, 48000):
            bad("sample_rate", self.sample_rate, "use 32000 for MusicGen (or 16000/24000/44100/48000)")
        if not 0.0 < self.min_segment_ratio <= 1.0:
            bad("min_segment_ratio", self.min_segment_ratio, "use a fraction in (0, 1]")
        if self.remainder not in REMAINDER:
            bad("remainder", self.remainder, f"use one of {REMAINDER}")
        if self.workers < 1:
            bad("workers", self.workers, "use 1 or more")
        self.split = tuple(float(x) for x in self.split)  # type: ignore[assignment]
        if len(self.split) != 3 or min(self.split) < 0 or abs(sum(self.split) - 1.0) > 1e-6 or self.split[0] <= 0:
            bad("split", self.split, "give three non-negative fractions train,valid,test summing to 1")
        if self.split_by not in SPLIT_BY:
            bad("split_by", self.split_by, f"use one of {SPLIT_BY}")
        if self.dedupe not in DEDUPE:
            bad("dedupe", self.dedupe, f"use one of {DEDUPE}")
        if not 0.0 < self.near_duplicate <= 1.0:
            bad("near_duplicate", self.near_duplicate, "use a similarity in (0, 1]")
        if self.tagger not in taggers.names():
            bad("tagger", self.tagger, f"use one of {', '.join(taggers.names())}")
        if self.bpm_method not in BPM_METHODS:
            bad("bpm_method", self.bpm_method, f"use one of {BPM_METHODS}")
        if self.tempo_octave not in TEMPO_OCTAVE:
            bad("tempo_octave", self.tempo_octave, f"use one of {TEMPO_OCTAVE}")
        if self.vocals not in VOCALS:
            bad("vocals", self.vocals, f"use one of {', '.join(VOCALS)}")
        if not 0.0 < self.vocal_threshold <= 1.0:
            bad("vocal_threshold", self.vocal_threshold, "use a score in (0, 1]")
        if not 0.1 <= self.min_tag_confidence <= 1.0:
            bad("min_tag_confidence", self.min_tag_confidence, "use a probability in [0.1, 1] (the tagger keeps "
                "no tag below 0.1)")
        if self.vocals == "drop" and self.tagger != "musicnn":
            bad("vocals", self.vocals, "drop needs the vocal score of --tagger musicnn")
        if self.vocals == "separate" and importlib.util.find_spec("demucs") is None:
            bad("vocals", self.vocals, "separate needs demucs: pip install 'genrecraft[separate]'")  # before any work
        i, n = self.shard
        if not (n >= 1 and 0 <= i < n):
            bad("shard", f"{i}/{n}", "use i/n with 0 <= i < n, e.g. 0/4")

    @property
    def chunk_samples(self) -> int:
        return int(round(self.chunk_seconds * self.sample_rate))


def parse_shard(text: str) -> tp.Tuple[int, int]:
    """``"2/8"`` -> ``(2, 8)``."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise ValueError(f"--shard {text!r}: use i/n, e.g. 0/4 (shards 0..n-1)")
    return int(match.group(1)), int(match.group(2))
