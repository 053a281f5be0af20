"""A comparison scores every model on the same targets: one codec, and CE windows of one length."""

import pytest

from eval.report import CompareConfig, check_same_codec, equal_ce_windows
from genrecraft.models import codec_fingerprint, tiny_musicgen


@pytest.mark.slow
def test_codec_fingerprint_tells_codecs_apart():
    a, b = tiny_musicgen(seed=0), tiny_musicgen(seed=1)  # two LMs, one (seeded) debug codec
    assert codec_fingerprint(a) == codec_fingerprint(b)
    import torch

    with torch.no_grad():  # the same architecture with other codebooks tokenizes differently
        for layer in b.compression_model.quantizer.vq.layers:
            layer._codebook.embed.copy_(torch.randn_like(layer._codebook.embed))
    assert codec_fingerprint(a) != codec_fingerprint(b)


def test_mixed_codecs_are_refused_with_both_names():
    models = {"base": "facebook/musicgen-small", "full": "//sig/abc"}
    check_same_codec({"base": "32000/50/4x2048:aaa", "full": "32000/50/4x2048:aaa"}, models)
    with pytest.raises(ValueError, match=r"'base' \(facebook/musicgen-small\) and 'full' \(//sig/abc\)"):
        check_same_codec({"base": "32000/50/4x2048:aaa", "full": "32000/50/4x2048:bbb"}, models)


def test_ce_windows_default_to_the_shortest_training_segment():
    models = {"a": "tiny:0", "b": "tiny:1"}
    config = equal_ce_windows(models, CompareConfig())
    assert config.ce.segment_duration == 5.0  # the tiny recipe's training segment, set for every model
    explicit = CompareConfig()
    explicit.ce.segment_duration = 2.0
    assert equal_ce_windows(models, explicit).ce.segment_duration == 2.0
