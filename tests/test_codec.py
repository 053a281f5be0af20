"""The demo's offline codec: audiocraft's debug EnCodec with codebooks fitted to real audio."""

import numpy as np
import pytest
import soundfile as sf
import torch

from genrecraft.codec import codes_in_use, fit_debug_codec
from genrecraft.synth import SongSpec, render_song


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("songs")
    files = []
    for i, (key, mode, bpm, style) in enumerate([("C", "major", 120, "synthpop"), ("A", "minor", 80, "lofi"),
                                                 ("E", "major", 128, "synthpop"), ("D", "minor", 76, "lofi")]):
        path = folder / f"song{i}.wav"
        sf.write(path, render_song(SongSpec(key, mode, bpm, style, seed=i), 20.0), 32000)
        files.append(path)
    return files


@pytest.fixture(scope="module")
def fitted(songs, tmp_path_factory):
    out = tmp_path_factory.mktemp("codec") / "checkpoint.th"
    return fit_debug_codec(songs, out, max_frames=1500, kmeans_iters=5, progress=False)


@pytest.mark.slow
def test_fitted_codebooks_use_many_codes(songs, fitted):
    from audiocraft.models import builders

    from genrecraft.core import compat
    from genrecraft.core.audio import load_audio

    compat.apply()
    assert fitted["frames"] == 4 * 15 * 25  # the first 15 s (seconds_per_file) of each song, 25 frames/s
    assert all(n >= 100 for n in fitted["codes_used"]), fitted["codes_used"]
    # audiocraft's own debug codec puts music on a handful of codes: the reason this module exists
    debug = builders.get_debug_compression_model()
    with torch.no_grad():
        codes, _ = debug.encode(torch.from_numpy(load_audio(songs[0], 32000))[None, None])
    assert max(len(np.unique(row)) for row in codes[0].numpy()) < 20
    assert min(codes_in_use(fitted["path"], songs[:1])) >= 50


@pytest.mark.slow
def test_fitted_codec_loads_as_audiocraft_checkpoint_and_is_deterministic(songs, fitted, tmp_path):
    from audiocraft.solvers.compression import CompressionSolver

    codec = CompressionSolver.model_from_checkpoint(str(fitted["path"]))
    assert codec.cardinality == 400 and codec.num_codebooks == 4 and codec.sample_rate == 32000
    again = fit_debug_codec(songs, tmp_path / "again.th", max_frames=1500, kmeans_iters=5, progress=False)
    first = torch.load(fitted["path"], map_location="cpu", weights_only=False)["best_state"]["model"]
    second = torch.load(again["path"], map_location="cpu", weights_only=False)["best_state"]["model"]
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_too_little_audio_is_a_clear_error(songs, tmp_path):
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(32000 * 2, dtype=np.float32) + 0.01, 32000)
    with pytest.raises(ValueError, match="at least 16 s of audio"):
        fit_debug_codec([short], tmp_path / "x.th", progress=False)
    with pytest.raises(ValueError, match="needs audio files"):
        fit_debug_codec([], tmp_path / "y.th", progress=False)
