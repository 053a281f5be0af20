"""QLoRA: the frozen transformer weights in 4 bit (NF4) or 8 bit through bitsandbytes, on the CPU here."""

import copy

import pytest
import torch

import lora
from genrecraft.models import tiny_musicgen
from tests.test_lora import _forward, _inputs, _randomise_adapters, assert_streaming_equals_full_forward

MODES = ["4bit", "8bit"]


@pytest.fixture()
def model():
    return tiny_musicgen(seed=0)


def _dequantized_reference(lm_quantized, lm_plain):
    """A plain copy of the base whose weights are the quantized model's dequantized values."""
    ref = copy.deepcopy(lm_plain)
    ref.load_state_dict(lora.base_state_dict(lm_quantized), strict=False)
    return ref


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_quantized_base_stores_less_and_computes_the_dequantized_model(model, mode):
    lm = model.lm
    plain = copy.deepcopy(lm)
    seq, ct = _inputs(lm)
    base_out = _forward(plain, seq, ct)
    report = lora.inject(lm, lora.LoraConfig(r=4, targets=lora.ALL_TARGETS, quantize=mode))
    q = report.quantized
    assert q["weights"] == 6 * len(lm.transformer.layers)
    assert q["bytes_after"] < (0.2 if mode == "4bit" else 0.3) * q["bytes_before"]
    stored = [p for n, p in lm.named_parameters() if n.endswith(".original0")]
    assert len(stored) == q["weights"] and all(p.dtype == torch.uint8 for p in stored)
    assert not any(p.requires_grad for n, p in lm.named_parameters() if ".parametrizations." in n)
    out = _forward(lm, seq, ct)  # adapters start at zero: the quantized base alone
    err = ((out - base_out).abs().mean() / base_out.abs().mean()).item()
    assert 0 < err < (0.15 if mode == "4bit" else 0.03), err
    # exactly the model whose weights are the dequantized values (same math, plain modules)
    ref = _dequantized_reference(lm, plain)
    torch.testing.assert_close(out, _forward(ref, seq, ct), atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_qlora_trains_only_adapters_and_the_quantized_data_stays(model):
    lm = model.lm
    lm.train()
    lora.inject(lm, lora.LoraConfig(r=4, quantize="4bit"))
    stored = {n: p.clone() for n, p in lm.named_parameters() if ".parametrizations." in n}
    before = {n: p.clone() for n, p in lm.named_parameters() if ".lora." in n}
    opt = torch.optim.AdamW(lora.lora_parameters(lm), lr=1e-2)
    seq, ct = _inputs(lm)
    for _ in range(3):
        opt.zero_grad()
        _forward(lm, seq, ct).float().pow(2).mean().backward()
        opt.step()
    after = dict(lm.named_parameters())
    assert all(torch.equal(after[n], v) for n, v in stored.items())
    assert any(not torch.equal(after[n], v) for n, v in before.items())


@pytest.mark.slow
def test_qlora_streaming_with_kv_cache_equals_full_forward(model):
    lora.inject(model.lm, lora.LoraConfig(r=4, targets=lora.ALL_TARGETS, quantize="4bit"))
    _randomise_adapters(model.lm)
    assert_streaming_equals_full_forward(model.lm)


@pytest.mark.slow
def test_qlora_with_gradient_checkpointing_matches_without():
    grads = []
    for overrides in ([], ["transformer_lm.checkpointing=torch"]):
        lm = tiny_musicgen(seed=0, overrides=overrides).lm
        lm.train()
        lora.inject(lm, lora.LoraConfig(r=4, quantize="4bit"))
        _randomise_adapters(lm)
        seq, ct = _inputs(lm)
        _forward(lm, seq, ct).float().pow(2).mean().backward()
        grads.append([p.grad.clone() for p in lora.lora_parameters(lm)])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_qlora_adapter_loads_onto_the_full_precision_base(model, tmp_path):
    lm = model.lm
    seq, ct = _inputs(lm)
    lora.inject(lm, lora.LoraConfig(r=4, quantize="4bit"))
    _randomise_adapters(lm)
    folder = lora.save_adapter(lm, tmp_path / "adapter", base_model_id="tiny:0")
    fresh = tiny_musicgen(seed=0)
    config = lora.load_adapter(fresh, folder)  # the fingerprint is the unquantized base's
    assert config.quantize == "4bit" and not any(".parametrizations." in n for n, _ in fresh.lm.named_parameters())
    for name, tensor in lora.adapter_state_dict(lm).items():
        assert torch.equal(lora.adapter_state_dict(fresh)[name], tensor)
    with pytest.raises(lora.AdapterMismatchError):
        lora.load_adapter(tiny_musicgen(seed=1), folder)


@pytest.mark.slow
def test_merge_and_remove_dequantize_to_plain_keys(model):
    lm = model.lm
    keys = set(lm.state_dict())
    seq, ct = _inputs(lm)
    lora.inject(lm, lora.LoraConfig(r=4, targets=lora.ALL_TARGETS, quantize="8bit"))
    _randomise_adapters(lm)
    adapted = _forward(lm, seq, ct)
    lora.merge(lm)
    torch.testing.assert_close(_forward(lm, seq, ct), adapted, atol=1e-4, rtol=1e-4)
    lora.remove(lm, merge_weights=True)
    assert set(lm.state_dict()) == keys
    torch.testing.assert_close(_forward(lm, seq, ct), adapted, atol=1e-4, rtol=1e-4)
    lm.load_state_dict(lm.state_dict(), strict=True)


@pytest.mark.slow
def test_generate_with_qlora(model):
    lora.inject(model, lora.LoraConfig(r=4, quantize="4bit"))
    _randomise_adapters(model.lm)
    model.set_generation_params(duration=1.0, use_sampling=False)
    wav = model.generate(["bright synth-pop"])
    assert wav.shape[-1] == model.sample_rate and torch.isfinite(wav).all()


def test_unknown_mode_and_missing_bitsandbytes_are_clear(model, monkeypatch):
    with pytest.raises(ValueError, match="quantize"):
        lora.LoraConfig(quantize="2bit")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    with pytest.raises(lora.QuantizationUnavailable, match="pip install bitsandbytes"):
        lora.inject(model, lora.LoraConfig(quantize="4bit"))
    assert not lora.has_lora(model)
