"""Songs with known key and tempo played on sampled instruments: MIDI written with mido, rendered by fluidsynth
with the General MIDI soundfont that ``make sysdeps`` installs (FluidR3_GM).

This is the second, independent ground truth for the label benchmark: :mod:`genrecraft.synth` draws its own
drums and tones, these use recorded drum kits, pianos, basses and leads, and a spread of real grooves,
including ones whose snare does not mark beats 2 and 4 (reggaeton, a snare on every beat, no drums at all)::

    >>> spec = GrooveSpec(key="D", mode="minor", bpm=174.0, groove="dnb")
    >>> audio = render_groove(spec, seconds=30.0)        # float32, mono, 44.1 kHz   # doctest: +SKIP

The tempo is the quarter-note tempo each genre is written and annotated in (drum and bass at 174, not 87).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
import typing as tp
from pathlib import Path

import numpy as np

from .synth import PITCH_CLASSES, bar_harmony, check_key

SAMPLE_RATE = 44100
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")

# General MIDI percussion keys (channel 10).
KICK, SIDE_STICK, SNARE, CLAP, CLOSED_HAT, OPEN_HAT, RIDE, TAMBOURINE = 36, 37, 38, 39, 42, 46, 51, 54


@dataclasses.dataclass(frozen=True)
class Groove:
    """A genre's one-bar drum pattern on 16th-note steps, its usual tempo range and its instruments."""

    name: str
    tempo_range: tp.Tuple[float, float]
    drums: tp.Dict[int, tp.Tuple[int, ...]]  # GM drum key -> steps
    program_chords: int  # GM program numbers (0-based)
    program_bass: int
    program_lead: int
    swing: float = 0.0


_8THS = tuple(range(0, 16, 2))
GROOVES: tp.Dict[str, Groove] = {g.name: g for g in (
    Groove("rock", (84, 140), {KICK: (0, 8, 10), SNARE: (4, 12), CLOSED_HAT: _8THS}, 29, 33, 30),
    Groove("ballad", (62, 80), {KICK: (0, 7, 8), SIDE_STICK: (4, 12), CLOSED_HAT: tuple(range(16))}, 0, 32, 73),
    Groove("house", (118, 128), {KICK: (0, 4, 8, 12), CLAP: (4, 12), OPEN_HAT: (2, 6, 10, 14),
                                 CLOSED_HAT: tuple(range(16))}, 4, 38, 81),
    Groove("boombap", (82, 96), {KICK: (0, 3, 7, 10), SNARE: (4, 12), CLOSED_HAT: _8THS}, 4, 33, 11, swing=0.3),
    Groove("dnb", (165, 176), {KICK: (0, 10), SNARE: (4, 12), CLOSED_HAT: _8THS, RIDE: (2, 6, 10, 14)}, 89, 38, 81),
    Groove("punk", (160, 190), {KICK: (0, 8), SNARE: (4, 12), CLOSED_HAT: (0, 4, 8, 12)}, 29, 34, 30),
    # No backbeat: the snare off beats 2 and 4 (reggaeton's dembow), on every beat (Motown), or no drums.
    Groove("reggaeton", (88, 100), {KICK: (0, 4, 8, 12), SNARE: (3, 6, 11, 14), CLOSED_HAT: _8THS}, 4, 38, 81),
    Groove("motown", (104, 126), {KICK: (0, 6, 8), SNARE: (0, 4, 8, 12), TAMBOURINE: (4, 12)}, 0, 33, 56),
    Groove("nodrums", (60, 150), {}, 0, 32, 73),
)}


@dataclasses.dataclass(frozen=True)
class GrooveSpec:
    """Ground truth of one song: key, mode, quarter-note tempo, groove (a name in GROOVES), melody seed."""

    key: str = "C"
    mode: str = "major"
    bpm: float = 120.0
    groove: str = "rock"
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "key", check_key(self.key, self.mode))
        if self.groove not in GROOVES:
            raise ValueError(f"groove={self.groove!r}: use one of {', '.join(GROOVES)}")


def soundfont() -> str:
    """The General MIDI soundfont, or a clear error that says how to install it."""
    for path in SOUNDFONTS:
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"no General MIDI soundfont at {' or '.join(SOUNDFONTS)}: install it with "
                            "`make sysdeps` or `apt-get install fluid-soundfont-gm`")


def write_midi(spec: GrooveSpec, seconds: float, path: Path) -> None:
    """Chords (every bar), a bass line (every beat), a melody from the scale (8ths) and the groove's drums."""
    try:
        import mido
    except ImportError as exc:
        raise ImportError("genrecraft.gmsongs writes MIDI with mido: pip install mido (in genrecraft's dev extra)"
                          ) from exc

    groove = GROOVES[spec.groove]
    rng = np.random.default_rng(spec.seed)
    ticks_per_beat = 480
    sixteenth = ticks_per_beat // 4
    events: tp.List[tp.Tuple[int, mido.Message]] = []

    def note(channel: int, pitch: int, start: int, length: int, velocity: int) -> None:
        events.append((start, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)))
        events.append((start + length, mido.Message("note_off", channel=channel, note=pitch, velocity=0)))

    tonic = 60 + PITCH_CLASSES.index(spec.key)
    n_bars = int(np.ceil(seconds * spec.bpm / 60.0 / 4)) + 1
    for bar in range(n_bars):
        bar_start = bar * 4 * ticks_per_beat
        degree, scale, triad = bar_harmony(spec.mode, bar)
        for interval in triad:
            note(0, tonic + interval - 12, bar_start, 4 * ticks_per_beat - 10, 62)
        for beat in range(4):
            note(1, tonic + triad[0] - 24 + (12 if beat == 2 else 0), bar_start + beat * ticks_per_beat,
                 ticks_per_beat - 40, 88)
        for step in range(0, 16, 2):
            if rng.random() < 0.25:
                continue
            pick = int(rng.choice([0, 2, 4, 1, 5, 3, 6], p=[.25, .2, .2, .1, .1, .1, .05]))
            note(2, tonic + 12 + scale[(degree + pick) % 7], bar_start + step * sixteenth, 2 * sixteenth - 20, 70)
        for drum, steps in groove.drums.items():
            for step in steps:
                swing = int(groove.swing * sixteenth) if step % 2 else 0
                velocity = int(np.clip(rng.normal(100 if drum in (KICK, SNARE, CLAP) else 75, 8), 30, 127))
                note(9, drum, bar_start + step * sixteenth + swing, sixteenth, velocity)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(spec.bpm)))
    for channel, program in enumerate((groove.program_chords, groove.program_bass, groove.program_lead)):
        track.append(mido.Message("program_change", channel=channel, program=program))
    now = 0
    for time, message in sorted(events, key=lambda e: (e[0], e[1].type == "note_on")):
        track.append(message.copy(time=time - now))
        now = time
    midi = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    midi.tracks.append(track)
    midi.save(str(path))


def render_groove(spec: GrooveSpec, seconds: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``seconds`` of mono float32 audio of ``spec`` rendered by fluidsynth with the GM soundfont."""
    import soundfile as sf

    if shutil.which("fluidsynth") is None:
        raise FileNotFoundError("fluidsynth is not installed: run `make sysdeps` or `apt-get install fluidsynth`")
    with tempfile.TemporaryDirectory(prefix="genrecraft-gm-") as tmp:
        mid, wav = Path(tmp) / "song.mid", Path(tmp) / "song.wav"
        write_midi(spec, seconds, mid)
        subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.5", "-r", str(sample_rate), "-F", str(wav),
                        soundfont(), str(mid)], check=True, capture_output=True)
        audio, _ = sf.read(wav, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)[: int(seconds * sample_rate)]
    peak = float(np.max(np.abs(audio))) or 1.0
    return (0.89 * audio / peak).astype(np.float32)
