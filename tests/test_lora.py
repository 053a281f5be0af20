"""LoRA on tiny LMs built from config: invariants, files, streaming, export, errors."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch

import lora
from genrecraft.export import export_merged
from genrecraft.models import tiny_musicgen

B, K, S = 2, 4, 24


@pytest.fixture()
def model():
    return tiny_musicgen(seed=0)


def _inputs(lm, seed=0):
    """Random tokens [B, K, S] and random 5-step description embeddings for cross-attention.

    (The tiny config's noop tokenizer gives one condition token, over which attention weights are always 1, so
    cross-attention keys would not matter; five steps make every projection count.)
    """
    g = torch.Generator().manual_seed(seed)
    seq = torch.randint(0, lm.card, (B, K, S), generator=g)
    embeds = torch.randn(B, 5, lm.dim, generator=g)
    mask = torch.ones(B, 5, dtype=torch.long)
    return seq, {"description": (embeds, mask)}


def _forward(lm, seq, tensors):
    return lm(seq, [], condition_tensors=tensors)


def _randomise_adapters(lm, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in lora.lora_parameters(lm):
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)


@pytest.mark.slow
def test_identity_at_init_and_report(model):
    lm = model.lm
    seq, ct = _inputs(lm)
    base = _forward(lm, seq, ct)
    report = lora.inject(lm, lora.LoraConfig(r=4, alpha=8, targets=lora.ALL_TARGETS))
    assert torch.equal(_forward(lm, seq, ct), base)  # B = 0
    assert report.targets["self_attn.q"] == 2 and report.targets["cross_attention.v"] == 2
    assert report.targets["emb"] == 4 and report.targets["linears"] == 4
    trainable = [n for n, p in lm.named_parameters() if p.requires_grad]
    assert trainable and all(".lora." in n for n in trainable)
    assert report.trainable == sum(p.numel() for p in lora.lora_parameters(lm))
    assert 0 < report.fraction < 1


@pytest.mark.parametrize("targets", [lora.ATTENTION_TARGETS, ("cross_attention.k",), ("self_attn.v",),
                                     lora.ALL_TARGETS])
@pytest.mark.slow
def test_merged_equals_unmerged_equals_lora_forward(model, targets):
    lm = model.lm
    seq, ct = _inputs(lm)
    base = _forward(lm, seq, ct)
    lora.inject(lm, lora.LoraConfig(r=4, targets=targets))
    _randomise_adapters(lm)
    adapted = _forward(lm, seq, ct)
    assert (adapted - base).abs().max() > 1e-3  # every target set really changes the output
    lora.merge(lm)
    assert lora.is_merged(lm)
    torch.testing.assert_close(_forward(lm, seq, ct), adapted, atol=1e-5, rtol=1e-5)
    lora.unmerge(lm)
    torch.testing.assert_close(_forward(lm, seq, ct), adapted, atol=1e-5, rtol=1e-5)
    # A plain LM loaded with the merged state dict computes the same thing.
    plain = tiny_musicgen(seed=0).lm
    plain.load_state_dict(lora.merged_state_dict(lm))
    torch.testing.assert_close(_forward(plain, seq, ct), adapted, atol=1e-5, rtol=1e-5)


def test_each_packed_segment_changes_only_its_projection(model):
    """An adapter on self_attn.k must change k's rows of the merged in_proj_weight, and only those."""
    lm = model.lm
    before = lm.transformer.layers[0].self_attn.in_proj_weight.detach().clone()
    lora.inject(lm, lora.LoraConfig(r=2, targets=("self_attn.k",), layers=(0,)))
    _randomise_adapters(lm)
    after = lora.merged_state_dict(lm)["transformer.layers.0.self_attn.in_proj_weight"]
    dim = before.shape[1]
    assert torch.equal(after[:dim], before[:dim]) and torch.equal(after[2 * dim:], before[2 * dim:])
    assert not torch.equal(after[dim:2 * dim], before[dim:2 * dim])
    assert "transformer.layers.1.self_attn.lora.k.lora_A" not in lora.adapter_state_dict(lm)


@pytest.mark.slow
def test_only_lora_parameters_change_when_training(model):
    lm = model.lm
    lm.train()
    seq, ct = _inputs(lm)
    lora.inject(lm, lora.LoraConfig(r=4, alpha=8, dropout=0.1))
    frozen = {k: v.clone() for k, v in lora.base_state_dict(lm).items()}
    adapters = {k: v.clone() for k, v in lora.adapter_state_dict(lm).items()}
    opt = torch.optim.AdamW(lora.lora_parameters(lm), lr=1e-2)
    for _ in range(3):
        logits = _forward(lm, seq, ct)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, lm.card), seq.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    for k, v in lora.base_state_dict(lm).items():
        assert torch.equal(v, frozen[k]), k
    changed = [k for k, v in lora.adapter_state_dict(lm).items() if not torch.equal(v, adapters[k])]
    assert any(k.endswith("lora_B") for k in changed) and any(k.endswith("lora_A") for k in changed)


@pytest.mark.slow
def test_dropout_only_in_train_mode(model):
    lm = model.lm
    seq, ct = _inputs(lm)
    lora.inject(lm, lora.LoraConfig(r=4, dropout=0.5))
    _randomise_adapters(lm)
    lm.eval()
    torch.testing.assert_close(_forward(lm, seq, ct), _forward(lm, seq, ct))
    lm.train()
    # cfg dropout of the LM is about conditions; condition tensors are precomputed here, so any difference
    # between two train-mode passes comes from LoRA's input dropout.
    torch.manual_seed(0)
    a = _forward(lm, seq, ct)
    torch.manual_seed(1)
    b = _forward(lm, seq, ct)
    assert (a - b).abs().max() > 1e-4


def assert_streaming_equals_full_forward(lm):
    """Token-by-token generation with the KV cache gives the full forward pass's logits."""
    seq, ct = _inputs(lm)
    full = _forward(lm, seq, ct)
    steps = []
    with torch.no_grad(), lm.streaming():
        for t in range(S):
            steps.append(_forward(lm, seq[:, :, t:t + 1], ct))
    torch.testing.assert_close(torch.cat(steps, dim=2), full, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_streaming_with_kv_cache_equals_full_forward(model):
    lora.inject(model.lm, lora.LoraConfig(r=4, targets=lora.ALL_TARGETS))
    _randomise_adapters(model.lm)
    assert_streaming_equals_full_forward(model.lm)


@pytest.mark.slow
def test_generate_with_adapter_active(model):
    lora.inject(model, lora.LoraConfig(r=4))
    _randomise_adapters(model.lm)
    model.set_generation_params(duration=1.0, use_sampling=False)
    with_lora = model.generate(["bright synth-pop"])
    lora.remove(model)
    plain = model.generate(["bright synth-pop"])
    assert with_lora.shape == plain.shape and not torch.equal(with_lora, plain)


def test_autocast_bf16_runs_and_stays_close(model):
    lm = model.lm
    seq, ct = _inputs(lm)
    lora.inject(lm, lora.LoraConfig(r=4))
    _randomise_adapters(lm)
    ref = _forward(lm, seq, ct)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = _forward(lm, seq, ct)
    assert low.dtype == torch.bfloat16
    assert (low.float() - ref).abs().mean() < 0.05 * ref.abs().mean()


def test_gradient_checkpointing_keeps_lora_gradients():
    from genrecraft.models import tiny_musicgen as build

    plain = build(seed=0).lm
    ckpt = build(seed=0, overrides=["transformer_lm.checkpointing=torch"]).lm
    grads = []
    for lm in (plain, ckpt):
        lm.train()
        lora.inject(lm, lora.LoraConfig(r=4))
        _randomise_adapters(lm)
        seq, ct = _inputs(lm)
        lm.zero_grad()
        _forward(lm, seq, ct).float().pow(2).mean().backward()
        grads.append([p.grad.clone() for p in lora.lora_parameters(lm)])
    for g_plain, g_ckpt in zip(*grads):
        torch.testing.assert_close(g_plain, g_ckpt, atol=1e-5, rtol=1e-4)


def test_remove_restores_keys_and_values(model):
    lm = model.lm
    original = {k: v.clone() for k, v in lm.state_dict().items()}
    classes = {n: type(m) for n, m in lm.named_modules()}
    lora.inject(lm, lora.LoraConfig(r=4, targets=lora.ALL_TARGETS))
    _randomise_adapters(lm)
    lora.remove(lm)
    assert {n: type(m) for n, m in lm.named_modules()} == classes
    restored = lm.state_dict()
    assert restored.keys() == original.keys()
    for k in original:
        assert torch.equal(restored[k], original[k]), k
    assert not lora.has_lora(lm)
    # Strict loading of a plain state dict works again.
    lm.load_state_dict(original, strict=True)


@pytest.mark.slow
def test_save_load_round_trip(model, tmp_path):
    lm = model.lm
    seq, ct = _inputs(lm)
    lora.inject(lm, lora.LoraConfig(r=4, alpha=8, dropout=0.25, targets=("self_attn.q", "linear1")))
    _randomise_adapters(lm)
    adapted = _forward(lm, seq, ct)
    lora.save_adapter(lm, tmp_path / "ad", base_model_id="tiny:0")
    meta = json.loads((tmp_path / "ad" / "adapter_config.json").read_text())
    assert meta["lora"]["r"] == 4 and meta["lora"]["dropout"] == 0.25 and meta["base_model_id"] == "tiny:0"
    assert meta["genrecraft_version"] and meta["base_fingerprint"]["structure"]

    fresh = tiny_musicgen(seed=0)
    config = lora.load_adapter(fresh, tmp_path / "ad")
    assert config.targets == ("self_attn.q", "linear1")
    torch.testing.assert_close(_forward(fresh.lm, seq, ct), adapted)


@pytest.mark.slow
def test_adapter_refuses_another_base(model, tmp_path):
    lora.inject(model, lora.LoraConfig(r=4))
    lora.save_adapter(model, tmp_path / "ad", base_model_id="tiny:0")
    with pytest.raises(lora.AdapterMismatchError, match="tiny:0"):
        lora.load_adapter(tiny_musicgen(seed=1), tmp_path / "ad")  # same shape, other weights
    bigger = tiny_musicgen(seed=0, overrides=["transformer_lm.num_layers=3"])
    with pytest.raises(lora.AdapterMismatchError, match="shape"):
        lora.load_adapter(bigger, tmp_path / "ad")
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        lora.load_adapter(tiny_musicgen(seed=0), tmp_path)


@pytest.mark.slow
def test_export_merged_loads_with_plain_audiocraft(model, tmp_path):
    lora.inject(model, lora.LoraConfig(r=4, targets=lora.ALL_TARGETS))
    _randomise_adapters(model.lm)
    out = export_merged(model, tmp_path / "export")
    from audiocraft.modules.conditioners import ConditioningAttributes

    seq, _ = _inputs(model.lm)
    conds = [ConditioningAttributes(text={"description": d}) for d in ("bright synth-pop", "mellow lo-fi")]
    ct = model.lm.condition_provider(model.lm.condition_provider.tokenize(conds))
    expected = _forward(model.lm, seq, ct)
    torch.save({"seq": seq, "expected": expected}, tmp_path / "io.pt")
    # A fresh interpreter with audiocraft only: no genrecraft import, no shims.
    code = textwrap.dedent(f"""
        import torch
        from audiocraft.models import MusicGen
        from audiocraft.modules.conditioners import ConditioningAttributes
        m = MusicGen.get_pretrained({str(out)!r}, device="cpu")
        io = torch.load({str(tmp_path / 'io.pt')!r})
        conds = [ConditioningAttributes(text={{"description": d}}) for d in ("bright synth-pop", "mellow lo-fi")]
        ct = m.lm.condition_provider(m.lm.condition_provider.tokenize(conds))
        out = m.lm(io["seq"], [], condition_tensors=ct)
        print("MAXDIFF", (out - io["expected"]).abs().max().item())
        m.set_generation_params(duration=1.0)
        print("AUDIO", tuple(m.generate(["x"]).shape))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "USER": "test", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-2000:]
    maxdiff = float(result.stdout.split("MAXDIFF")[1].split()[0])
    assert maxdiff < 1e-4
    assert "AUDIO (1, 1, 32000)" in result.stdout


def test_bad_configs_and_targets_are_clear(model):
    with pytest.raises(ValueError, match="r=0"):
        lora.LoraConfig(r=0)
    with pytest.raises(ValueError, match="available"):
        lora.LoraConfig(targets=("self_attn.qkv",))
    with pytest.raises(ValueError, match="dropout"):
        lora.LoraConfig(dropout=1.0)
    with pytest.raises(ValueError, match="layers 0..1"):
        lora.inject(model, lora.LoraConfig(layers=(5,)))
    lora.inject(model, lora.LoraConfig())
    with pytest.raises(RuntimeError, match="already has LoRA"):
        lora.inject(model, lora.LoraConfig())


def test_non_packed_attention_is_refused():
    plain_attention = tiny_musicgen(seed=0, overrides=["transformer_lm.memory_efficient=false"])
    with pytest.raises(ValueError, match="memory_efficient"):
        lora.inject(plain_attention, lora.LoraConfig())


def _ddp_worker(rank, world, port, folder):
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        lm = tiny_musicgen(seed=0).lm.train()
        lora.inject(lm, lora.LoraConfig(r=4))
        _randomise_adapters(lm)
        ddp = torch.nn.parallel.DistributedDataParallel(lm)
        seq, ct = _inputs(lm, seed=rank)  # each rank its own batch
        ddp(seq, [], condition_tensors=ct).float().pow(2).mean().backward()
        torch.save([p.grad for p in lora.lora_parameters(lm)], f"{folder}/{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_averages_lora_gradients_across_processes(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"{r}.pt") for r in range(2)]
    local = []  # the same two batches, one process, no DDP
    for rank in range(2):
        lm = tiny_musicgen(seed=0).lm.train()
        lora.inject(lm, lora.LoraConfig(r=4))
        _randomise_adapters(lm)
        seq, ct = _inputs(lm, seed=rank)
        _forward(lm, seq, ct).float().pow(2).mean().backward()
        local.append([p.grad for p in lora.lora_parameters(lm)])
    for g0, g1, l0, l1 in zip(*ranks, *local):
        torch.testing.assert_close(g0, g1)  # synchronised
        torch.testing.assert_close(g0, (l0 + l1) / 2, atol=1e-6, rtol=1e-4)  # the average of both batches
    assert any(g.abs().sum() > 0 for g in ranks[0])


def _saved_input_copies(lm, targets):
    """How many float tensors of the input's size ([B, S, dim], or flattened) autograd keeps for one train-mode
    forward of layer 0's self-attention."""
    attn = lm.transformer.layers[0].self_attn
    lora.inject(lm, lora.LoraConfig(r=4, alpha=8, dropout=0.2, targets=targets, layers=(0,)))
    _randomise_adapters(lm)
    x = torch.randn(B, S, lm.dim)
    saved = []

    def pack(t):
        if t.dtype.is_floating_point and t.numel() == B * S * lm.dim:
            saved.append(t)
        return t

    lm.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = attn(x, x, x)[0]
    out.sum().backward()
    lora.remove(lm)
    return len(saved), x


def test_packed_qkv_adapters_share_one_dropped_input(model):
    """q, k and v adapters read the same input: autograd keeps one dropped copy of it, not three (at the recipe's
    2 x 30 s batch each copy is 12 MB per layer; three of them made LoRA need more memory than full fine-tuning)."""
    lm = model.lm
    q_only, _ = _saved_input_copies(lm, ("self_attn.q",))
    qkv, _ = _saved_input_copies(lm, ("self_attn.q", "self_attn.k", "self_attn.v"))
    assert q_only >= 1
    assert qkv == q_only


def test_fused_qkv_adapters_equal_separate_updates(model):
    """The fused [A_q; A_k; A_v] projection gives each of q, k and v exactly its own low-rank update."""
    lm = model.lm
    seq, ct = _inputs(lm)
    lora.inject(lm, lora.LoraConfig(r=4, alpha=8, targets=("self_attn.q", "self_attn.k", "self_attn.v")))
    _randomise_adapters(lm)
    fused = _forward(lm, seq, ct)
    attn = lm.transformer.layers[0].self_attn
    x = torch.randn(B, S, lm.dim)
    with torch.no_grad():
        packed = attn(x, x, x)[0]
        dim = lm.dim
        weight = attn.in_proj_weight.clone()
        for i, name in enumerate(("q", "k", "v")):
            weight[i * dim:(i + 1) * dim] += attn.lora[name].delta_weight()
        lora.remove(lm)
        attn.in_proj_weight.copy_(weight)
        assert torch.allclose(attn(x, x, x)[0], packed, atol=1e-5)
    assert torch.isfinite(fused).all()
