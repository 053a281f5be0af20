"""Synthetic music with known key, mode and tempo, for tests, benchmarks and the offline demo.

Nothing here is downloaded: songs are rendered with numpy from a chord progression in a given key, a bass
line, a melody from the scale and a drum pattern on the beat grid, so key and tempo are ground truth.
Two named styles differ in everything a tagger or an LM can pick up (tempo, mode, timbre, rhythm)::

    >>> song = render_song(SongSpec(key="A", mode="minor", bpm=90.0, style="lofi"), seconds=40.0)
    >>> song.shape, SAMPLE_RATE
    ((1280000,), 32000)
"""

from __future__ import annotations

import dataclasses
import json
import typing as tp
from pathlib import Path

import numpy as np
import soundfile as sf

from .core import audio
from .core.atomic import write_text

SAMPLE_RATE = 32000
PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_ALIASES = {"Db": "C#", "D#": "Eb", "Gb": "F#", "G#": "Ab", "A#": "Bb"}
_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
# Progressions as scale degrees (0-based): I-V-vi-IV for major; i-VI-iv-V for minor, whose V takes the raised
# leading tone (harmonic minor) so that the key cannot be heard as the relative major.
_PROGRESSIONS = {"major": (0, 4, 5, 3), "minor": (0, 5, 3, 4)}


@dataclasses.dataclass(frozen=True)
class Style:
    """How a style sounds: timbres, rhythm and density."""

    name: str
    description: str
    chord_harmonics: tp.Tuple[float, ...]  # relative amplitudes of partials 1..n of chord tones
    chord_attack: float  # seconds
    chord_release: float  # seconds
    melody_harmonics: tp.Tuple[float, ...]
    notes_per_beat: int  # melody density
    kick: tp.Tuple[int, ...]  # 16th-note steps in a 4/4 bar
    snare: tp.Tuple[int, ...]
    hat: tp.Tuple[int, ...]
    swing: float = 0.0  # delay of off-beat 16ths, as a fraction of a 16th


STYLES: tp.Dict[str, Style] = {
    # Bright, fast, plucked: "synth-pop".
    "synthpop": Style(
        name="synthpop", description="bright synth-pop with plucked synthesizer, bass and drums",
        chord_harmonics=(1.0, 0.5, 0.33, 0.25, 0.2, 0.16), chord_attack=0.005, chord_release=0.25,
        melody_harmonics=(1.0, 0.0, 0.33, 0.0, 0.2, 0.0, 0.14), notes_per_beat=2,
        kick=(0, 4, 8, 12), snare=(4, 12), hat=tuple(range(0, 16, 2))),
    # Dark, slow, soft pads with swing: "lo-fi".
    "lofi": Style(
        name="lofi", description="mellow lo-fi hip hop with soft pads, bass and laid-back drums",
        chord_harmonics=(1.0, 0.2, 0.05), chord_attack=0.35, chord_release=0.8,
        melody_harmonics=(1.0, 0.1), notes_per_beat=1,
        kick=(0, 7, 10), snare=(4, 12), hat=(0, 2, 4, 6, 8, 10, 12, 14), swing=0.35),
}


@dataclasses.dataclass(frozen=True)
class SongSpec:
    """Ground truth of one synthetic song."""

    key: str = "C"
    mode: str = "major"
    bpm: float = 120.0
    style: str = "synthpop"
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "key", check_key(self.key, self.mode))
        if not 40.0 <= self.bpm <= 240.0:
            raise ValueError(f"bpm={self.bpm} is outside 40..240")
        if self.style not in STYLES:
            raise ValueError(f"style={self.style!r}: use one of {', '.join(STYLES)}")

    @property
    def description(self) -> str:
        return f"{STYLES[self.style].description}, {self.key} {self.mode}, {round(self.bpm)} bpm"


def check_key(key: str, mode: str) -> str:
    """The key spelled as in PITCH_CLASSES (``Db`` -> ``C#``); a clear error for an unknown key or mode."""
    spelled = _ALIASES.get(key, key)
    if spelled not in PITCH_CLASSES:
        raise ValueError(f"key={key!r} is not a pitch class; use one of {', '.join(PITCH_CLASSES)}")
    if mode not in _SCALES:
        raise ValueError(f"mode={mode!r}: use 'major' or 'minor'")
    return spelled


def bar_harmony(mode: str, bar: int) -> tp.Tuple[int, tp.Tuple[int, ...], tp.List[int]]:
    """The chord's scale degree (0-based), the scale (semitones above the tonic) and the chord (a triad, semitones
    above the tonic) of ``bar`` in the progression of ``mode``."""
    degree = _PROGRESSIONS[mode][bar % len(_PROGRESSIONS[mode])]
    if mode == "minor" and degree == 4:
        scale = _SCALES["minor"][:6] + (11,)  # harmonic minor over the dominant
    else:
        scale = _SCALES[mode]
    return degree, scale, [scale[(degree + i) % 7] + 12 * ((degree + i) // 7) for i in (0, 2, 4)]


def _midi_to_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


def _tone(freq: float, n: int, harmonics: tp.Sequence[float], attack: float, release: float,
          sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / sr
    phase = rng.uniform(0, 2 * np.pi)
    out = np.zeros(n)
    for k, amp in enumerate(harmonics, start=1):
        if amp and freq * k < sr / 2:
            out += amp * np.sin(2 * np.pi * freq * k * t + phase * k)
    env = np.minimum(1.0, t / max(attack, 1e-4))
    tail = max(1, int(release * sr))
    if n > tail:
        env[-tail:] *= np.linspace(1.0, 0.0, tail)
    return out * env


def _drum(kind: str, sr: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "kick":
        n = int(0.25 * sr)
        t = np.arange(n) / sr
        freq = 45 + 90 * np.exp(-t * 30)
        return np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t * 12)
    if kind == "snare":
        n = int(0.18 * sr)
        t = np.arange(n) / sr
        return (0.6 * rng.standard_normal(n) + 0.4 * np.sin(2 * np.pi * 190 * t)) * np.exp(-t * 22)
    n = int(0.05 * sr)  # hat: differentiated noise is brighter
    noise = np.diff(rng.standard_normal(n + 1))
    return 0.35 * noise * np.exp(-np.arange(n) / sr * 80)


def _add(buf: np.ndarray, start: int, x: np.ndarray, gain: float) -> None:
    if start >= len(buf):
        return
    end = min(len(buf), start + len(x))
    buf[start:end] += gain * x[: end - start]


def render_song(spec: SongSpec, seconds: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Render ``seconds`` of mono float32 audio in [-1, 1] with the key, mode, tempo and style of ``spec``.

    Chords change every bar (4 beats); the melody is drawn from the scale with ``spec.seed``.
    """
    if seconds <= 0:
        raise ValueError(f"seconds={seconds} must be positive")
    style = STYLES[spec.style]
    rng = np.random.default_rng(spec.seed)
    n = int(round(seconds * sample_rate))
    chords, bass, melody, drums = (np.zeros(n) for _ in range(4))
    beat = 60.0 / spec.bpm
    sixteenth = beat / 4
    tonic = 60 + PITCH_CLASSES.index(spec.key)  # middle octave
    n_bars = int(np.ceil(seconds / (4 * beat)))
    drum_hits = {name: _drum(name, sample_rate, rng) for name in ("kick", "snare", "hat")}
    for bar in range(n_bars):
        bar_start = bar * 4 * beat
        degree, scale, triad = bar_harmony(spec.mode, bar)
        chord_len = int(4 * beat * sample_rate)
        for interval in triad:
            tone = _tone(_midi_to_hz(tonic + interval - 12), chord_len, style.chord_harmonics,
                         style.chord_attack, style.chord_release, sample_rate, rng)
            _add(chords, int(bar_start * sample_rate), tone, 0.22)
        for b in range(4):  # bass on every beat: root, octave on beat 3
            note = tonic + triad[0] - 24 + (12 if b == 2 else 0)
            tone = _tone(_midi_to_hz(note), int(beat * sample_rate * 0.9), (1.0, 0.4, 0.1), 0.01, 0.1,
                         sample_rate, rng)
            _add(bass, int((bar_start + b * beat) * sample_rate), tone, 0.35)
        steps = 4 * style.notes_per_beat
        for s in range(steps):
            if rng.random() < 0.2:
                continue  # a rest
            pick = int(rng.choice([0, 2, 4, 1, 5, 3, 6], p=[.25, .2, .2, .1, .1, .1, .05]))
            note = tonic + 12 + scale[(degree + pick) % 7]
            length = int(4 * beat / steps * sample_rate)
            tone = _tone(_midi_to_hz(note), length, style.melody_harmonics, 0.01, 0.05, sample_rate, rng)
            _add(melody, int((bar_start + s * 4 * beat / steps) * sample_rate), tone, 0.18)
        for step in range(16):
            offset = step * sixteenth + (style.swing * sixteenth if step % 2 else 0.0)
            start = int((bar_start + offset) * sample_rate)
            for name, pattern, gain in (("kick", style.kick, 0.9), ("snare", style.snare, 0.5),
                                        ("hat", style.hat, 0.25)):
                if step in pattern:
                    _add(drums, start, drum_hits[name], gain * (0.85 + 0.3 * rng.random()))
    mix = chords + bass + melody + drums
    peak = float(np.max(np.abs(mix))) or 1.0
    return (0.89 * mix / peak).astype(np.float32)


def write_dataset(root: Path, name: str, specs: tp.Sequence[SongSpec], seconds: float = 6.0,
                  config_dir: tp.Optional[Path] = None) -> Path:
    """Write a quick audiocraft dataset: one clip per spec, a manifest and MusicInfo sidecars from the ground truth.

    For tests of the training machinery only: no download, no labelling, and every split points at the same
    clips (``python -m dataset_builder`` is the real thing). With ``config_dir`` it also registers
    ``dset=audio/<name>`` there. Returns the manifest folder.
    """
    clips = root / name / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, spec in enumerate(specs):
        wav = clips / f"song{i:03d}.wav"
        sf.write(wav, render_song(spec, seconds), SAMPLE_RATE, subtype="PCM_16")
        info = {"title": f"song {i}", "artist": "synth", "key": f"{spec.key} {spec.mode}", "bpm": spec.bpm,
                "genre": spec.style, "moods": [], "keywords": "", "description": spec.description,
                "name": wav.stem, "instrument": "synthesizer"}
        wav.with_suffix(".json").write_text(json.dumps(info))
        lines.append(audio.audio_meta(wav, seconds, SAMPLE_RATE))
    egs = root / name / "egs"
    audio.write_manifest(egs / "data.jsonl", lines)
    if config_dir is not None:
        yaml = audio.dset_yaml({split: egs for split in ("train", "valid", "evaluate", "generate")}, SAMPLE_RATE)
        write_text(config_dir / "dset" / "audio" / f"{name}.yaml", yaml)
    return egs
