"""A tiny MusicGen built from config generates audio that is written and read back."""

import pytest
import numpy as np
import soundfile as sf
import torch

from genrecraft.models import tiny_musicgen


@pytest.mark.slow
def test_tiny_musicgen_generates_two_seconds(tmp_path):
    from audiocraft.data.audio import audio_write

    model = tiny_musicgen(seed=0)
    assert model.lm.transformer.layers[0].self_attn.custom  # packed q/k/v, as in MusicGen
    model.set_generation_params(duration=2.0, use_sampling=True, top_k=50)
    torch.manual_seed(7)
    wav = model.generate(["bright synth-pop, C major, 120 bpm"])
    assert wav.shape == (1, 1, 2 * model.sample_rate)
    assert torch.isfinite(wav).all()

    stem = audio_write(tmp_path / "clip", wav[0].cpu(), model.sample_rate, strategy="peak")
    audio, sr = sf.read(stem)
    assert sr == 32000 and audio.shape == (64000,)
    assert np.abs(audio).max() > 0.1  # peak-normalised, not silent

    # Same seed, same clip.
    torch.manual_seed(7)
    again = model.generate(["bright synth-pop, C major, 120 bpm"])
    assert torch.equal(wav, again)
