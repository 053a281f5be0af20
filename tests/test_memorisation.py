"""Memorisation check (eval.memorisation): a copy of a training chunk is flagged, a new song is not."""

import numpy as np
import pytest
import soundfile as sf

from eval import memorisation as mem
from genrecraft.synth import SongSpec, render_song

TRAIN = [SongSpec("A", "minor", 84.0, "lofi", seed=1), SongSpec("D", "minor", 76.0, "lofi", seed=2),
         SongSpec("F", "minor", 90.0, "lofi", seed=3)]


@pytest.fixture(scope="module")
def training(tmp_path_factory):
    """Three songs, two 8 s chunks each, named as the builder names chunks (<song>-<start ms>)."""
    folder = tmp_path_factory.mktemp("train")
    files = []
    for i, spec in enumerate(TRAIN):
        song = render_song(spec, 16.0)
        for start in (0, 8):
            path = folder / f"song{i}-{start * 1000:08d}.wav"
            sf.write(path, song[start * 32000:(start + 8) * 32000], 32000)
            files.append(path)
    return files


def test_song_of_follows_the_builders_chunk_names():
    assert mem.song_of("data/x/abc-def-00015000.wav") == "abc-def"
    assert mem.song_of("clip.wav") == "clip"


@pytest.mark.slow
def test_a_copy_is_flagged_and_a_new_song_is_not(training, tmp_path):
    copy = tmp_path / "0000.wav"
    song = sf.read(training[2])[0]
    sf.write(copy, song[32000:5 * 32000], 32000)  # 4 s from inside a training chunk
    new = tmp_path / "0001.wav"
    sf.write(new, render_song(SongSpec("B", "major", 128.0, "synthpop", seed=9), 4.0), 32000)
    result = mem.check([copy, new], training)
    assert result["n_training"] == 6 and result["clip_seconds"] == pytest.approx(4.0)
    by_name = {c["path"].rsplit("/", 1)[-1]: c for c in result["clips"]}
    assert by_name["0000.wav"]["flagged"], (by_name["0000.wav"], result["thresholds"])
    assert by_name["0000.wav"]["chroma"]["nearest"] == str(training[2])
    assert by_name["0000.wav"]["chroma"]["similarity"] > result["thresholds"]["chroma"]
    assert not by_name["0001.wav"]["flagged"], (by_name["0001.wav"], result["thresholds"])
    assert result["flagged"] == [str(copy)]
    for m in mem.MEASURES:
        assert -1.0 <= result["thresholds"][m] <= 1.0


def test_one_song_or_no_clips_is_a_clear_error(training, tmp_path):
    with pytest.raises(ValueError, match="at least 2"):
        mem.check([training[0]], training[:2])
    with pytest.raises(ValueError, match="no generated clips"):
        mem.check([], training)


@pytest.mark.slow
def test_tiny_models_clips_are_checked(training, tmp_path):
    """Any model spec: eval.generate's clips of tiny:0 get a nearest chunk on both measures."""
    from eval.generate import GenerateConfig, generate_for_eval
    from genrecraft.models import load_model
    from genrecraft.synth import write_dataset

    manifest = write_dataset(tmp_path, "tiny_mem", TRAIN[:2], seconds=3.0)
    config = GenerateConfig(n=2, duration=2.0, prompt_duration=0, batch_size=2, progress=False)
    clips = generate_for_eval(lambda: load_model("tiny:0", device="cpu"), "tiny", manifest, tmp_path / "gen",
                              config)
    result = mem.check(clips["text"], training)
    assert len(result["clips"]) == 2
    for clip in result["clips"]:
        for m in mem.MEASURES:
            assert np.isfinite(clip[m]["similarity"]) and clip[m]["nearest"] in {str(p) for p in training}


def test_the_training_side_is_described_once_for_every_model(training, tmp_path, monkeypatch):
    clip = tmp_path / "0000.wav"
    sf.write(clip, render_song(SongSpec("B", "major", 128.0, "synthpop", seed=9), 4.0), 32000)
    calls = []
    real = mem.describe
    monkeypatch.setattr(mem, "describe", lambda *a, **k: calls.append(1) or real(*a, **k))
    shared = {}
    first = mem.check([clip], training, reuse=shared)
    after_first = len(calls)
    second = mem.check([clip], training, reuse=shared)
    assert after_first == 6 + 6 + 1  # training chunks, their openings, the clip
    assert len(calls) - after_first == 1 and list(shared) == [pytest.approx(4.0)]
    assert second["thresholds"] == first["thresholds"] and second["clips"] == first["clips"]
