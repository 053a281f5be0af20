"""The General MIDI ground-truth songs: the MIDI holds the stated tempo, key and groove; fluidsynth renders it."""

import shutil

import numpy as np
import pytest

from tests.fixtures.gmsongs import GROOVES, KICK, SNARE, GrooveSpec, render_groove, write_midi
from genrecraft.synth import PITCH_CLASSES


def test_midi_has_the_tempo_key_and_groove(tmp_path):
    import mido

    spec = GrooveSpec("Eb", "minor", 96.0, "boombap", seed=5)
    write_midi(spec, 20.0, tmp_path / "song.mid")
    midi = mido.MidiFile(str(tmp_path / "song.mid"))
    tempos = [m.tempo for m in midi.tracks[0] if m.type == "set_tempo"]
    assert tempos == [mido.bpm2tempo(96.0)]
    now, drums, pitches = 0, {}, set()
    for message in midi.tracks[0]:
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            if message.channel == 9:
                drums.setdefault(message.note, set()).add(now % (4 * midi.ticks_per_beat))
            else:
                pitches.add(message.note % 12)
    sixteenth = midi.ticks_per_beat // 4
    swing = int(GROOVES["boombap"].swing * sixteenth)
    for drum in (KICK, SNARE):
        expected = {s * sixteenth + (swing if s % 2 else 0) for s in GROOVES["boombap"].drums[drum]}
        assert drums[drum] == expected, drum
    tonic = PITCH_CLASSES.index("Eb")
    natural_minor = {(tonic + i) % 12 for i in (0, 2, 3, 5, 7, 8, 10)}
    assert pitches <= natural_minor | {(tonic + 11) % 12}  # the raised leading tone over the dominant
    assert (tonic + 11) % 12 in pitches and tonic in pitches


def test_spec_errors_are_named():
    with pytest.raises(ValueError, match="groove='polka'"):
        GrooveSpec(groove="polka")
    with pytest.raises(ValueError, match="key='H'"):
        GrooveSpec(key="H")
    assert GrooveSpec(key="Db").key == "C#"


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="needs fluidsynth (make sysdeps installs it)")
def test_render_is_audio_of_the_right_length():
    audio = render_groove(GrooveSpec("A", "major", 120.0, "house"), seconds=4.0, sample_rate=22050)
    assert audio.dtype == np.float32 and audio.shape == (4 * 22050,)
    assert 0.5 < np.abs(audio).max() <= 0.9 and np.sqrt(np.mean(audio ** 2)) > 0.05
