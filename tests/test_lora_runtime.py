"""LoRA at run time on tiny LMs: strength, stacked adapters, weighted merge of adapters (lora.runtime)."""

import copy
import functools

import pytest
import torch

import lora
from genrecraft.models import tiny_musicgen
from lora.runtime import add_adapter, merge_adapters, set_scale

B, K, S = 2, 4, 16
TARGETS_1 = lora.ATTENTION_TARGETS
TARGETS_2 = ("self_attn.q", "self_attn.v", "cross_attention.k", "linear1", "linears", "emb")


@functools.lru_cache(maxsize=None)
def _tiny_lm():
    return tiny_musicgen(seed=0).lm


def _fresh_lm():
    """A fresh copy of the tiny LM of seed 0 (building one from config takes seconds; copying it, milliseconds)."""
    return copy.deepcopy(_tiny_lm())


def _inputs(lm, seed=0):
    g = torch.Generator().manual_seed(seed)
    seq = torch.randint(0, lm.card, (B, K, S), generator=g)
    embeds = torch.randn(B, 5, lm.dim, generator=g)
    return seq, {"description": (embeds, torch.ones(B, 5, dtype=torch.long))}


@torch.no_grad()
def _forward(lm, inputs):
    seq, tensors = inputs
    return lm(seq, [], condition_tensors=tensors)


def _make_adapter(folder, targets, r, seed, layers=None):
    model = _fresh_lm()
    lora.inject(model, lora.LoraConfig(r=r, alpha=2.0 * r, targets=targets, layers=layers))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in lora.lora_parameters(model):
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    lora.save_adapter(model, folder, base_model_id="tiny:0")
    return folder


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return (_make_adapter(root / "one", TARGETS_1, 4, seed=1),
            _make_adapter(root / "two", TARGETS_2, 2, seed=2, layers=(1,)))


@pytest.fixture(scope="module")
def base_out():
    lm = _fresh_lm()
    return _forward(lm, _inputs(lm))


def test_scale_zero_is_base_and_one_is_the_adapter(adapters, base_out):
    plain = _fresh_lm()
    lora.load_adapter(plain, adapters[0])  # today's adapter, as loaded before strengths existed
    inputs = _inputs(plain)
    adapted = _forward(plain, inputs)
    assert not torch.allclose(adapted, base_out, atol=1e-4)

    lm = _fresh_lm()
    assert add_adapter(lm, adapters[0], name="one", scale=0.0) == "one"
    assert torch.equal(_forward(lm, inputs), base_out)  # skipped, bit for bit
    set_scale(lm, 1.0, "one")
    assert torch.equal(_forward(lm, inputs), adapted)
    # linear in the strength: scale 0.5 equals an adapter whose B is halved
    set_scale(lm, 0.5)
    half = _forward(lm, inputs)
    with torch.no_grad():
        for name, p in plain.named_parameters():
            if name.endswith("lora_B"):
                p.mul_(0.5)
    torch.testing.assert_close(half, _forward(plain, inputs), atol=1e-5, rtol=1e-5)
    # merged at one strength, re-merged at another without re-injecting
    lora.merge(lm)
    torch.testing.assert_close(_forward(lm, inputs), half, atol=1e-5, rtol=1e-5)
    set_scale(lm, 1.0, "one")
    torch.testing.assert_close(_forward(lm, inputs), adapted, atol=1e-5, rtol=1e-5)
    lora.remove(lm)
    torch.testing.assert_close(_forward(lm, inputs), base_out, atol=1e-5, rtol=1e-5)


def test_stacking_equals_merged_weighted_sum(adapters, base_out, tmp_path):
    w1, w2 = 0.7, -1.3
    stacked = _fresh_lm()
    inputs = _inputs(stacked)
    add_adapter(stacked, adapters[0], scale=w1)
    add_adapter(stacked, adapters[1], name="two", scale=w2)
    assert lora.adapter_names(stacked) == ["one", "two"]
    out_stacked = _forward(stacked, inputs)
    assert not torch.allclose(out_stacked, base_out, atol=1e-4)

    # one adapter file holding the weighted sum (ranks concatenated) gives the same model
    merged_dir = merge_adapters([(adapters[0], w1), (adapters[1], w2)], tmp_path / "merged")
    meta = lora.read_adapter_config(merged_dir)
    assert meta["lora"]["r"] == 6 and meta["lora"]["alpha"] == 6.0 and "emb" in meta["lora"]["targets"]
    single = _fresh_lm()
    lora.load_adapter(single, merged_dir)
    torch.testing.assert_close(_forward(single, inputs), out_stacked, atol=1e-5, rtol=1e-5)

    # and the base with W + w1 dW1 + w2 dW2 folded in
    state = lora.merged_state_dict(stacked)
    plain = _fresh_lm()
    plain.load_state_dict(state)
    torch.testing.assert_close(_forward(plain, inputs), out_stacked, atol=1e-5, rtol=1e-5)
    lora.merge(stacked)  # --merge: every stacked adapter folded in at its strength
    torch.testing.assert_close(_forward(stacked, inputs), out_stacked, atol=1e-5, rtol=1e-5)
    lora.unmerge(stacked)

    # turning one off leaves the other; stacked adapters are not part of the model's own adapter or base
    set_scale(stacked, 0.0, "one")
    only_two = _fresh_lm()
    add_adapter(only_two, adapters[1], scale=w2)
    torch.testing.assert_close(_forward(stacked, inputs), _forward(only_two, inputs), atol=1e-5, rtol=1e-5)
    assert all(".lora_stack." not in k for k in lora.adapter_state_dict(stacked))
    assert all(".lora" not in k for k in lora.base_state_dict(stacked))
    assert not any(p.requires_grad for n, p in stacked.named_parameters() if ".lora_stack." in n)
    lora.remove(stacked)  # after a merge/unmerge round trip: the base up to float rounding
    torch.testing.assert_close(_forward(stacked, inputs), base_out, atol=1e-5, rtol=1e-5)


def test_runtime_errors_are_clear(adapters, tmp_path):
    lm = _fresh_lm()
    add_adapter(lm, adapters[0])
    with pytest.raises(ValueError, match="already on this model"):
        add_adapter(lm, adapters[1], name="one")
    with pytest.raises(KeyError, match="no adapter named 'nope'"):
        set_scale(lm, 0.5, "nope")
    with pytest.raises(ValueError, match="finite"):
        set_scale(lm, float("nan"))
    with pytest.raises(FileNotFoundError, match="not a LoRA adapter folder"):
        add_adapter(lm, tmp_path / "missing")
    other = _fresh_lm()
    with torch.no_grad():
        other.linears[0].weight.mul_(2.0)  # another base
    add_adapter(other, adapters[0], check_base=False)
    with pytest.raises(lora.AdapterMismatchError, match="fingerprint differs"):
        add_adapter(other, adapters[1])
