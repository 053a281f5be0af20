"""The demo's signal-processing codec (genrecraft.spectral_codec): an audiocraft CompressionModel whose decoder
gives back music the labeller reads as the original."""

import numpy as np
import pytest
import soundfile as sf
import torch

from genrecraft.spectral_codec import band_map, fit_spectral_codec, kmeans
from genrecraft.synth import SongSpec, render_song

SONGS = [SongSpec("C", "major", 120.0, "synthpop", seed=0), SongSpec("A", "minor", 80.0, "lofi", seed=1),
         SongSpec("E", "major", 128.0, "synthpop", seed=2), SongSpec("D", "minor", 76.0, "lofi", seed=3)]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spectral")
    files = []
    for i, spec in enumerate(SONGS):
        path = folder / f"song{i}.wav"
        sf.write(path, render_song(spec, 20.0), 32000)
        files.append(path)
    result = fit_spectral_codec(files, folder / "checkpoint.th", seconds_per_file=20.0, progress=False,
                                bins=256, kmeans_iters=10)
    return files, result


def _load(path):
    from audiocraft.solvers.compression import CompressionSolver

    from genrecraft.core import compat

    compat.apply()
    return CompressionSolver.model_from_checkpoint(str(path))


def test_bands_are_one_bin_then_one_semitone_wide():
    bands = band_map(32000, 2048)
    assert bands[0] == 0 and np.all(np.diff(bands) >= 0) and np.all(np.diff(bands) <= 1)
    freqs = np.arange(1025) * 32000 / 2048
    assert len(np.unique(bands[freqs < 250])) == np.sum(freqs < 250)  # low bins: a band each
    wide = bands[(freqs >= 1000) & (freqs < 2000)]  # one octave above 1 kHz: 12 semitone bands
    assert len(np.unique(wide)) in (12, 13)


def test_kmeans_finds_well_separated_clusters():
    torch.manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = torch.cat([c + 0.1 * torch.randn(50, 2) for c in centres])
    means, sizes = kmeans(points, 3, 10)
    found = sorted(tuple(np.round(m.numpy()).astype(int)) for m in means)
    assert found == [(0, 0), (0, 10), (10, 0)] and sorted(sizes.tolist()) == [50, 50, 50]


@pytest.mark.slow
def test_loads_as_an_audiocraft_compression_model_with_fixed_frame_rate(fitted):
    files, result = fitted
    codec = _load(result["path"])
    assert type(codec).__name__ == "SpectralCodec"
    assert (codec.sample_rate, codec.frame_rate, codec.cardinality, codec.num_codebooks) == (32000, 50, 256, 4)
    assert min(result["codes_used"]) >= 100, result["codes_used"]
    x = torch.from_numpy(sf.read(files[0], dtype="float32")[0][: 32000 * 3])[None, None]
    codes, scale = codec.encode(x)
    assert scale is None and codes.shape == (1, 4, 150) and codes.dtype == torch.int64
    assert int(codes.max()) < 256
    audio = codec.decode(codes)
    assert audio.shape == (1, 1, 150 * 640) and torch.isfinite(audio).all()
    assert torch.equal(audio, codec.decode(codes))  # Griffin-Lim from zero phase: deterministic
    noise = codec.decode(torch.randint(0, 256, (2, 4, 25)))  # any token sequence decodes (as an LM's would)
    assert noise.shape == (2, 1, 25 * 640) and torch.isfinite(noise).all()


def test_decoded_audio_keeps_key_and_tempo(fitted):
    """The project's labeller reads the same key and tempo from a held-out song after encode + decode."""
    from dataset_builder.label.dsp import DspLabeler

    _, result = fitted
    codec = _load(result["path"])
    labeler = DspLabeler()
    spec = SongSpec("A", "minor", 84.0, "lofi", seed=42)  # not one of the fitted songs
    x = render_song(spec, 15.0)
    with torch.no_grad():
        y = codec.decode(codec.encode(torch.from_numpy(x)[None, None])[0])[0, 0].numpy()
    before, after = labeler(x, 32000), labeler(y, 32000)
    assert (after.key, after.scale) == (before.key, before.scale) == ("A", "minor")
    assert abs(after.bpm / before.bpm - 1) < 0.04, (before.bpm, after.bpm)
    assert np.sqrt(np.mean(y ** 2)) > 0.3 * np.sqrt(np.mean(x ** 2))  # not silence


def test_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="needs audio files"):
        fit_spectral_codec([], tmp_path / "x.th", progress=False)
    short = tmp_path / "short.wav"
    sf.write(short, np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1, 32000)
    with pytest.raises(ValueError, match="at least"):
        fit_spectral_codec([short], tmp_path / "y.th", progress=False)
    with pytest.raises(ValueError, match="unknown spectral codec setting"):
        fit_spectral_codec([short], tmp_path / "z.th", progress=False, hop=3)
