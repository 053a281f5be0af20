"""Spectral distances: 0 on identity, monotone in noise, gain-invariant; the feature distance sees timbre."""

import numpy as np
import pytest

from eval.spectral import FEATURE_NAMES, audio_features, feature_distance, log_mel, mel_distance
from genrecraft.synth import SAMPLE_RATE, SongSpec, render_song

SR = 16000


@pytest.fixture(scope="module")
def song():
    from genrecraft.core.audio import resample

    return resample(render_song(SongSpec(key="D", mode="major", bpm=120, style="synthpop", seed=3), 3.0),
                    SAMPLE_RATE, SR)


def test_mel_distance_is_zero_on_identity(song):
    assert mel_distance(song, song.copy(), SR) == 0.0
    assert mel_distance(song, song, SR, match_loudness=False) == 0.0


def test_mel_distance_grows_with_noise(song):
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(song.size).astype(np.float32)
    noise *= np.sqrt(np.mean(song ** 2)) / np.sqrt(np.mean(noise ** 2))
    values = [mel_distance(song, song + level * noise, SR) for level in (0.001, 0.01, 0.1, 0.3, 1.0)]
    assert values[0] > 0
    assert all(a < b for a, b in zip(values, values[1:])), values
    assert values[-1] > 5.0  # dB: noise as loud as the music is far away


def test_mel_distance_ignores_gain_when_matching_loudness(song):
    quiet = 0.1 * song
    assert mel_distance(song, quiet, SR) == pytest.approx(0.0, abs=1e-3)
    # without loudness matching a 20 dB level offset counts: 20 dB in every bin above the 80 dB floor, less below
    assert 10.0 < mel_distance(song, quiet, SR, match_loudness=False) <= 20.0 + 1e-9
    # different lengths: compared over the shorter clip
    assert mel_distance(song, song[: SR], SR) == 0.0


def test_log_mel_shape_and_level():
    t = np.arange(SR) / SR
    tone = np.sin(2 * np.pi * 1000.0 * t).astype(np.float32)
    mel = log_mel(tone, SR, n_fft=1024, hop=256, n_mels=64)
    assert tuple(mel.shape) == (64, 1 + SR // 256)
    # the loudest band is the one around 1 kHz, in every interior frame
    peak_bands = mel[:, 2:-2].argmax(dim=0)
    assert peak_bands.unique().numel() == 1


def test_audio_features_reflect_pitch_and_brightness():
    t = np.arange(2 * SR) / SR
    a440 = np.sin(2 * np.pi * 440.0 * t)
    c523 = np.sin(2 * np.pi * 523.25 * t)
    fa, fc = audio_features(a440, SR), audio_features(c523, SR)
    assert fa.shape == (len(FEATURE_NAMES),) and np.isfinite(fa).all()
    chroma = slice(20, 32)
    assert FEATURE_NAMES[20:32][int(np.argmax(fa[chroma]))] == "A"
    assert FEATURE_NAMES[20:32][int(np.argmax(fc[chroma]))] == "C"
    centroid = FEATURE_NAMES.index("centroid")
    assert 400 < fa[centroid] < 480 and fc[centroid] > fa[centroid]
    rms = FEATURE_NAMES.index("rms")
    assert fa[rms] == pytest.approx(1 / np.sqrt(2), rel=0.02)
    zcr = FEATURE_NAMES.index("zcr")
    assert fa[zcr] == pytest.approx(2 * 440.0 / SR, rel=0.05)


def _features(style, n, seed0=0):
    from genrecraft.core.audio import resample

    keys = ["C", "G", "A", "E", "D", "F"]
    return np.stack([audio_features(resample(render_song(
        SongSpec(key=keys[i % 6], mode="major", bpm=90 + 7 * i, style=style, seed=seed0 + i), 2.0),
        SAMPLE_RATE, SR), SR) for i in range(n)])


@pytest.mark.slow
def test_feature_distance_zero_on_same_set_larger_for_another_timbre():
    pop = _features("synthpop", 4)
    pop2 = _features("synthpop", 4, seed0=10)
    lofi = _features("lofi", 4)
    assert feature_distance(pop, pop) == 0.0
    assert feature_distance(pop, pop, scale="none") == 0.0
    same_style = feature_distance(pop2, pop)
    other_style = feature_distance(lofi, pop)
    assert 0.0 < same_style < other_style
    assert other_style > 3 * same_style
    assert 0.0 <= other_style <= 2.0


def test_feature_distance_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="differ in length"):
        feature_distance(rng.standard_normal((3, 5)), rng.standard_normal((3, 6)))
    with pytest.raises(ValueError, match="at least 2 reference"):
        feature_distance(rng.standard_normal((3, 5)), rng.standard_normal((1, 5)))
    with pytest.raises(ValueError, match="scale="):
        feature_distance(rng.standard_normal((3, 5)), rng.standard_normal((3, 5)), scale="zscore")
    with pytest.raises(ValueError, match="zero"):
        feature_distance(np.zeros((2, 5)), rng.standard_normal((3, 5)), scale="none")


def test_shape_errors():
    with pytest.raises(ValueError, match="mono audio"):
        mel_distance(np.zeros((2, 100)), np.zeros(100), SR)
    with pytest.raises(ValueError, match="mono audio"):
        mel_distance(np.zeros(100), np.zeros(0), SR)
    with pytest.raises(ValueError, match="NaN"):
        mel_distance(np.full(100, np.nan), np.zeros(100), SR)
    with pytest.raises(ValueError, match="mono audio"):
        audio_features(np.zeros((100, 2)), SR)
