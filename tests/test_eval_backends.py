"""Embedding backends: clear errors when weights are missing offline, shapes, and the content-keyed cache."""

import shutil

import numpy as np
import pytest
import soundfile as sf

from eval import embeddings
from eval.embeddings import EmbeddingUnavailableError, embed_file, embed_files, get_backend
from genrecraft.synth import SAMPLE_RATE, SongSpec, render_song


@pytest.fixture()
def offline(monkeypatch, tmp_path):
    """No network: genrecraft's and the Hugging Face hub's offline switches, and an empty cache dir."""
    import huggingface_hub.constants

    monkeypatch.setenv("GENRECRAFT_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read once at import
    monkeypatch.setenv("GENRECRAFT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GENRECRAFT_VGGISH_GRAPH", raising=False)
    return tmp_path / "cache"


def _write_song(path, seconds=6.0, seed=0, style="synthpop"):
    audio = render_song(SongSpec(key="A", mode="minor", bpm=100, style=style, seed=seed), seconds)
    sf.write(path, audio, SAMPLE_RATE, subtype="PCM_16")
    return path


def test_unknown_backend_lists_the_names():
    with pytest.raises(ValueError) as info:
        get_backend("openl3")
    message = str(info.value)
    assert "openl3" in message
    for name in ("clap", "encodec", "musicnn", "vggish"):
        assert name in message
    assert embeddings.available_backends() == ["clap", "encodec", "musicnn", "vggish"]
    with pytest.raises(ValueError, match="lower-case"):
        embeddings.register("My Model", lambda arg=None: None)


def test_vggish_offline_names_the_url_and_the_path(offline):
    expected = offline / "models" / "vggish" / embeddings.VGGISH_FILE
    with pytest.raises(EmbeddingUnavailableError) as info:
        get_backend("vggish")
    message = str(info.value)
    assert embeddings.VGGISH_URL in message
    assert f"put it at {expected}" in message
    assert "offline mode" in message
    assert not expected.exists()
    with pytest.raises(EmbeddingUnavailableError, match="does not exist"):
        get_backend(f"vggish:{offline / 'missing.pb'}")


def test_clap_offline_says_how_to_place_the_folder(offline):
    with pytest.raises(EmbeddingUnavailableError) as info:
        get_backend("clap:nobody/no-such-clap-model")
    message = str(info.value)
    assert "'nobody/no-such-clap-model'" in message
    assert "config.json, model.safetensors, preprocessor_config.json" in message
    assert "--backend clap:/path/to/" in message


def test_encodec_offline(offline):
    with pytest.raises(EmbeddingUnavailableError) as info:
        get_backend("encodec://pretrained/facebook/encodec_32khz")
    message = str(info.value)
    assert "//pretrained/facebook/encodec_32khz" in message and "debug_compression_model works offline" in message

    backend = get_backend("encodec://pretrained/debug_compression_model")
    assert backend.sample_rate == 32000 and backend.dim > 0
    rng = np.random.default_rng(0)
    frames = backend.embed(rng.standard_normal(2 * 32000).astype(np.float32) * 0.1)
    assert frames.dtype == np.float32 and np.isfinite(frames).all()
    frame_rate = backend.model.frame_rate
    assert frames.shape == (int(2 * frame_rate), backend.dim)
    # the same seeded model every time: the same cache id, the same embeddings
    again = get_backend("encodec://pretrained/debug_compression_model")
    assert again.cache_id == backend.cache_id
    clip = rng.standard_normal(32000).astype(np.float32) * 0.1
    np.testing.assert_array_equal(again.embed(clip), backend.embed(clip))


def _tiny_clap():
    import torch
    from transformers import ClapConfig, ClapModel

    audio = dict(window_size=8, num_mel_bins=64, spec_size=256, patch_size=4, patch_stride=4, hidden_size=32,
                 patch_embeds_hidden_size=16, projection_dim=24, depths=[1, 1], num_attention_heads=[2, 2],
                 num_hidden_layers=2, enable_fusion=False)
    text = dict(vocab_size=99, hidden_size=32, projection_dim=24, num_hidden_layers=1, num_attention_heads=2,
                intermediate_size=37, max_position_embeddings=64)
    torch.manual_seed(0)
    return ClapModel(ClapConfig(text_config=text, audio_config=audio, projection_dim=24))


@pytest.mark.slow
def test_clap_backend_on_a_tiny_model(offline, tmp_path):
    from transformers import ClapFeatureExtractor

    model = _tiny_clap()
    backend = embeddings.ClapBackend(model)
    assert backend.sample_rate == 48000 and backend.dim == 24
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(25 * 48000).astype(np.float32) * 0.1
    frames = backend.embed(audio)
    assert frames.shape == (3, 24) and np.isfinite(frames).all()  # windows of 10, 10 and 5 s
    assert backend.embed(audio[: 20 * 48000 + 100]).shape == (2, 24)  # a 100-sample remainder is dropped
    assert backend.embed(audio[: 48000 // 2]).shape == (1, 24)  # shorter than 1 s: one window anyway
    np.testing.assert_allclose(backend.embed(audio[: 10 * 48000]), frames[:1], atol=1e-5)

    # the same model saved as a folder loads offline by path (what the error message tells users to do)
    folder = tmp_path / "tiny_clap"
    model.save_pretrained(folder)
    ClapFeatureExtractor(feature_size=64, truncation="rand_trunc").save_pretrained(folder)  # as larger_clap_*
    from_folder = get_backend(f"clap:{folder}")
    np.testing.assert_allclose(from_folder.embed(audio), frames, atol=1e-5)


@pytest.fixture(scope="module")
def musicnn_backend():
    return get_backend("musicnn")  # the session's cache dir: the converted model is shared with other tests


@pytest.mark.slow
def test_musicnn_embeds_a_clip(musicnn_backend, tmp_path):
    backend = musicnn_backend
    assert backend.name == "musicnn" and backend.sample_rate == 16000 and backend.dim == 200
    assert backend.cache_id.startswith("musicnn-MSD_musicnn-hop93-")
    from genrecraft.core.audio import load_audio

    path = _write_song(tmp_path / "song.wav", seconds=6.0)
    frames = backend.embed(load_audio(path, 16000))
    # 3 s patches every 93 mel frames (1.49 s): 6 s give 3 frames
    assert frames.shape == (3, 200) and frames.dtype == np.float32 and np.isfinite(frames).all()
    assert frames.std() > 0
    other = backend.embed(load_audio(_write_song(tmp_path / "lofi.wav", seconds=6.0, style="lofi"), 16000))
    assert np.abs(other - frames).max() > 1e-3
    # shorter than one patch: padded to one frame
    assert backend.embed(np.zeros(16000, np.float32)).shape == (1, 200)


def test_embedding_cache_is_keyed_by_content(musicnn_backend, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GENRECRAFT_CACHE_DIR", str(tmp_path / "cache"))
    calls = []
    real_embed = musicnn_backend.embed

    def counting(audio):
        calls.append(len(audio))
        return real_embed(audio)

    monkeypatch.setattr(musicnn_backend, "embed", counting)
    song = _write_song(tmp_path / "a.wav", seconds=4.0)
    first = embed_file(musicnn_backend, song)
    assert len(calls) == 1 and first.shape[1] == 200
    cached = embeddings.cache_path(musicnn_backend, embeddings.file_digest(song))
    assert cached.is_file() and str(cached).startswith(str(tmp_path / "cache" / "embeddings"))
    np.testing.assert_array_equal(np.load(cached), first)

    second = embed_file(musicnn_backend, song)  # read back, not embedded again
    assert len(calls) == 1
    np.testing.assert_array_equal(second, first)

    renamed = tmp_path / "elsewhere" / "b.wav"
    renamed.parent.mkdir()
    shutil.copy(song, renamed)
    np.testing.assert_array_equal(embed_file(musicnn_backend, renamed), first)
    assert len(calls) == 1  # same bytes under another name: a cache hit

    _write_song(renamed, seconds=4.0, seed=5)  # new content, same name: a miss
    changed = embed_file(musicnn_backend, renamed)
    assert len(calls) == 2 and np.abs(changed - first).max() > 0

    embed_file(musicnn_backend, song, cache=False)
    assert len(calls) == 3

    cached.write_bytes(b"not an npy file")  # a damaged entry is recomputed, with a warning
    with caplog.at_level("WARNING", logger="eval.embeddings"):
        np.testing.assert_array_equal(embed_file(musicnn_backend, song), first)
    assert len(calls) == 4 and "unreadable cached embedding" in caplog.text

    both = embed_files(musicnn_backend, [song, renamed], progress=False)
    assert len(calls) == 4 and len(both) == 2


def test_a_backend_returning_the_wrong_shape_is_caught(tmp_path, monkeypatch):
    monkeypatch.setenv("GENRECRAFT_CACHE_DIR", str(tmp_path / "cache"))

    class Broken(embeddings.EmbeddingBackend):
        name, sample_rate, dim = "broken", 8000, 4

        def embed(self, audio):
            return np.zeros((3, 5))

    song = _write_song(tmp_path / "a.wav", seconds=1.0)
    with pytest.raises(RuntimeError, match=r"expected \[frames, 4\]"):
        embed_file(Broken(), song)
    assert not list((tmp_path / "cache").rglob("*.npy"))
