"""Signal-processing labels with essentia: key and mode, tempo, loudness."""

from __future__ import annotations

import dataclasses
import typing as tp

import numpy as np
import soxr

ESSENTIA_RATE = 44100  # RhythmExtractor2013 has no sample-rate parameter: it assumes 44.1 kHz
BPM_METHODS = ("degara", "multifeature")


def essentia_standard():
    """``essentia.standard`` with essentia's INFO messages off (it prints one per model graph it loads, in every
    labelling worker); warnings and errors still show."""
    import essentia

    essentia.log.infoActive = False
    import essentia.standard as es

    return es


@dataclasses.dataclass
class DspLabels:
    key: str  # tonic, e.g. "F#" (essentia spells sharps and flats as it estimates them)
    scale: str  # "major" | "minor"
    key_strength: float  # 0..1, the key profile correlation
    bpm: float
    bpm_confidence: float
    loudness_lufs: float  # integrated loudness (ITU-R BS.1770); -inf for digital silence


class DspLabeler:
    """Key (``KeyExtractor``), tempo (``RhythmExtractor2013``) and loudness (pyloudnorm, BS.1770).

    ``bpm_method``: ``degara`` (about 3x faster) or ``multifeature`` (essentia's most accurate, with a
    confidence). Both may report half or double the tempo (octave errors) on some music.
    """

    def __init__(self, bpm_method: str = "degara"):
        import pyloudnorm

        es = essentia_standard()

        if bpm_method not in BPM_METHODS:
            raise ValueError(f"bpm_method={bpm_method!r}: use one of {BPM_METHODS}")
        self.bpm_method = bpm_method
        self._key = es.KeyExtractor(sampleRate=ESSENTIA_RATE)
        self._rhythm = es.RhythmExtractor2013(method=bpm_method)
        self._meters: tp.Dict[int, tp.Any] = {}
        self._pyloudnorm = pyloudnorm

    def loudness(self, audio: np.ndarray, sample_rate: int) -> float:
        if sample_rate not in self._meters:
            self._meters[sample_rate] = self._pyloudnorm.Meter(sample_rate)
        if len(audio) < int(0.4 * sample_rate) or not np.any(audio):
            return float("-inf")
        return float(self._meters[sample_rate].integrated_loudness(audio.astype(np.float64)))

    def __call__(self, audio: np.ndarray, sample_rate: int) -> DspLabels:
        audio = np.asarray(audio, dtype=np.float32)
        x = audio if sample_rate == ESSENTIA_RATE else soxr.resample(audio, sample_rate, ESSENTIA_RATE)
        x = np.ascontiguousarray(x, dtype=np.float32)
        key, scale, strength = self._key(x)
        bpm, _, confidence, _, _ = self._rhythm(x)
        return DspLabels(key=str(key), scale=str(scale), key_strength=float(strength), bpm=float(bpm),
                         bpm_confidence=float(confidence), loudness_lufs=self.loudness(audio, sample_rate))
