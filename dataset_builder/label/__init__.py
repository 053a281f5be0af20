"""Labels for each chunk: key and mode, tempo, loudness (essentia DSP), genres, moods and instruments (a tagger),
and a text description built from them.

>>> from dataset_builder.label import LabelConfig, Labeler, describe
>>> labeler = Labeler(LabelConfig(tagger="musicnn"))     # doctest: +SKIP
>>> labels = labeler(audio, 32000)                       # doctest: +SKIP
>>> labels.key, labels.scale, round(labels.bpm), labels.genres[:1]   # doctest: +SKIP
('F#', 'major', 128, [('electronic', 0.42)])
>>> describe(labels, seed=7)                             # doctest: +SKIP

Taggers: ``musicnn`` (offline default: the MSD and MTT musicnn models shipped in the musicnn PyPI wheel),
``effnet`` (Discogs-EffNet + genre_discogs400 + MTG-Jamendo mood/theme and instrument heads, downloaded from
essentia.upf.edu), ``none`` (DSP labels only).
"""

from __future__ import annotations

import dataclasses
import typing as tp

import numpy as np
import soxr

from . import taggers
from .describe import describe
from .dsp import BPM_METHODS, TEMPO_OCTAVE, DspLabeler

TAGGERS = taggers.names()  # the built-in ones; taggers.names() also lists any registered later
Scored = tp.List[tp.Tuple[str, float]]


@dataclasses.dataclass
class LabelConfig:
    """How chunks are labelled."""

    tagger: str = dataclasses.field(default="musicnn", metadata={"help": "a registered tagger (taggers.names())"})
    bpm_method: str = dataclasses.field(default="degara", metadata={"help": ", ".join(BPM_METHODS)})
    tempo_octave: str = dataclasses.field(default="backbeat", metadata={"help": ", ".join(TEMPO_OCTAVE)})
    threshold: float = dataclasses.field(default=0.1, metadata={"help": "minimum tag probability to keep a tag"})
    top: int = dataclasses.field(default=3, metadata={"help": "at most this many genres / moods / instruments"})

    @property
    def tempo_method(self) -> str:
        """How the tempo was found, as recorded with each chunk's labels: ``degara+backbeat``, ``degara``, ..."""
        return self.bpm_method + ("" if self.tempo_octave == "off" else f"+{self.tempo_octave}")

    def __post_init__(self):
        if self.tagger not in taggers.names():
            raise ValueError(f"LabelConfig.tagger={self.tagger!r}: use one of {', '.join(taggers.names())}")
        if self.bpm_method not in BPM_METHODS:
            raise ValueError(f"LabelConfig.bpm_method={self.bpm_method!r}: use one of {', '.join(BPM_METHODS)}")
        if self.tempo_octave not in TEMPO_OCTAVE:
            raise ValueError(f"LabelConfig.tempo_octave={self.tempo_octave!r}: use one of {', '.join(TEMPO_OCTAVE)}")
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"LabelConfig.threshold={self.threshold} must be in [0, 1)")
        if self.top < 1:
            raise ValueError(f"LabelConfig.top={self.top} must be >= 1")


@dataclasses.dataclass
class Labels:
    """Labels of one chunk. Tag lists are ``(name, probability)`` sorted by probability (may be empty)."""

    key: str
    scale: str
    key_strength: float
    bpm: float
    loudness_lufs: float
    genres: Scored = dataclasses.field(default_factory=list)
    moods: Scored = dataclasses.field(default_factory=list)
    instruments: Scored = dataclasses.field(default_factory=list)
    keywords: tp.List[str] = dataclasses.field(default_factory=list)
    tagger: str = "none"
    tempo_method: str = ""  # LabelConfig.tempo_method; "" in labels written before the octave check existed
    tempo_confidence: tp.Optional[float] = None  # 0..1, DspLabels.tempo_confidence; None in older labels
    scores: tp.Dict[str, tp.Dict[str, float]] = dataclasses.field(default_factory=dict)  # every raw tag probability
    # by model ({"MSD_musicnn": {"rock": 0.1, ...}, ...}): what the vocal score and re-descriptions are made from

    def to_dict(self) -> tp.Dict[str, tp.Any]:
        out = dataclasses.asdict(self)
        for name in ("genres", "moods", "instruments"):
            out[name] = [[n, round(float(p), 4)] for n, p in out[name]]
        out["scores"] = {m: {t: round(float(p), 4) for t, p in s.items()} for m, s in out["scores"].items()}
        if not np.isfinite(out["loudness_lufs"]):
            out["loudness_lufs"] = None  # JSON has no -inf
        return out

    @classmethod
    def from_dict(cls, data: tp.Mapping[str, tp.Any]) -> "Labels":
        data = dict(data)
        for name in ("genres", "moods", "instruments"):
            data[name] = [(str(n), float(p)) for n, p in data.get(name, [])]
        if data.get("loudness_lufs") is None:
            data["loudness_lufs"] = float("-inf")
        return cls(**data)


class Labeler:
    """Labels chunks; loads its models once (create one per worker process)."""

    def __init__(self, config: tp.Optional[LabelConfig] = None):
        self.config = config or LabelConfig()
        self.dsp = DspLabeler(bpm_method=self.config.bpm_method, tempo_octave=self.config.tempo_octave)
        self.tagger = taggers.create(self.config.tagger)

    def __call__(self, audio: np.ndarray, sample_rate: int) -> Labels:
        """Label mono ``audio`` [samples] at ``sample_rate``."""
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"Labeler takes mono audio [samples], got shape {audio.shape}")
        dsp = self.dsp(audio, sample_rate)
        labels = Labels(key=dsp.key, scale=dsp.scale, key_strength=dsp.key_strength, bpm=dsp.bpm,
                        loudness_lufs=dsp.loudness_lufs, tagger=self.config.tagger,
                        tempo_method=self.config.tempo_method, tempo_confidence=dsp.tempo_confidence)
        if self.tagger is None:
            return labels
        audio16k = audio if sample_rate == 16000 else soxr.resample(audio, sample_rate, 16000).astype(np.float32)
        for field, value in self.tagger.tags(audio16k, self.config.threshold, self.config.top).items():
            setattr(labels, field, value)
        return labels


__all__ = ["LabelConfig", "Labeler", "Labels", "describe", "TAGGERS", "BPM_METHODS", "TEMPO_OCTAVE", "taggers"]
