"""Inject LoRA into audiocraft's LMModel; merge, unmerge and remove it."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import typing as tp

import torch
from torch import nn

from .config import ATTENTION_TARGETS, LoraConfig
from .layers import (ATTENTION_HOST, EMBEDDING_HOST, LINEAR_HOST, SEGMENTS, LoraAdapter, LoraEmbeddingAdapter,
                     adapter_sets, is_host, make_host, unmake_host)
from .quantize import check_quantization_available, dequantize_base, is_quantized, plain_state_dict, quantize_base

logger = logging.getLogger(__name__)

LORA_KEY = ".lora."  # every adapter tensor's state-dict key contains this
STACK_KEY = ".lora_stack."  # ... and every stacked adapter's (lora.runtime), which is not the model's own adapter


def _is_adapter_key(key: str) -> bool:
    key = f".{key}"
    return LORA_KEY in key or STACK_KEY in key


@dataclasses.dataclass
class InjectionReport:
    """What :func:`inject` did."""

    targets: tp.Dict[str, int]  # target name -> number of adapters created
    trainable: int  # parameters that require grad after injection (the adapters)
    total: int  # all parameters, adapters included (counted before any quantization)
    quantized: tp.Optional[tp.Dict[str, int]] = None  # QLoRA: what lora.quantize.quantize_base reported

    @property
    def fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        per_target = ", ".join(f"{k} x{v}" for k, v in self.targets.items())
        text = (f"LoRA: trainable params {self.trainable:,} / {self.total:,} ({100 * self.fraction:.3f} %); "
                f"adapters: {per_target}")
        if self.quantized:
            q = self.quantized
            text += (f"; base quantized: {q['weights']} matrices, {q['bytes_before'] / 2**20:.1f} MiB -> "
                     f"{q['bytes_after'] / 2**20:.1f} MiB")
        return text


def get_lm(model: nn.Module) -> nn.Module:
    """The ``LMModel`` of a MusicGen (``model.lm``) or the model itself."""
    lm = getattr(model, "lm", model)
    if not hasattr(lm, "transformer") or not hasattr(getattr(lm, "transformer"), "layers"):
        raise TypeError(f"expected audiocraft's LMModel or a MusicGen holding one, got {type(model).__name__}")
    return lm


def _check_attention(attn: nn.Module, where: str) -> None:
    if not getattr(attn, "custom", False) or not hasattr(attn, "in_proj_weight"):
        raise ValueError(
            f"{where} is not audiocraft's custom (memory-efficient) attention with a packed in_proj_weight; "
            "genrecraft's LoRA supports MusicGen's attention, built with transformer_lm.memory_efficient=true "
            "(the default for every released MusicGen).")
    if getattr(attn, "kv_repeat", 1) != 1:
        raise ValueError(f"{where} uses kv_repeat={attn.kv_repeat}; LoRA on packed q/k/v needs kv_repeat=1")
    if attn.in_proj_weight.shape[0] % 3:
        raise ValueError(f"{where}.in_proj_weight has shape {tuple(attn.in_proj_weight.shape)}, not [3*dim, dim]")


def _available_targets(lm: nn.Module) -> tp.List[str]:
    layer = lm.transformer.layers[0]
    found = [t for t in ATTENTION_TARGETS if hasattr(layer, t.split(".")[0])]
    found += [t for t in ("linear1", "linear2") if isinstance(getattr(layer, t, None), nn.Linear)]
    found += [t for t in ("emb", "linears") if hasattr(lm, t)]
    return found


def inject(model: nn.Module, config: LoraConfig) -> InjectionReport:
    """Add LoRA adapters to ``model`` (an ``LMModel`` or a ``MusicGen``) in place and freeze everything else.

    Raises ``ValueError`` (listing what is available) when a target matches nothing or when the attention is not
    audiocraft's packed kind; ``RuntimeError`` if the model already has adapters.
    """
    lm = get_lm(model)
    if has_lora(lm):
        raise RuntimeError("this model already has LoRA adapters: call lora.remove(model) first")
    if config.quantize is not None:
        check_quantization_available(config.quantize)
    n_layers = len(lm.transformer.layers)
    layer_ids = list(range(n_layers)) if config.layers is None else list(config.layers)
    bad = [i for i in layer_ids if i >= n_layers]
    if bad:
        raise ValueError(f"LoraConfig.layers has {bad}, but the model has layers 0..{n_layers - 1}")
    available = _available_targets(lm)
    missing = [t for t in config.targets if t not in available]
    if missing:
        raise ValueError(f"LoRA targets {missing} match nothing in this model; available: {', '.join(available)}")

    counts = _build_adapters(lm, config, make_host, layer_ids)

    for name, param in lm.named_parameters():
        param.requires_grad_(LORA_KEY in f".{name}")
    lm._lora_config = config  # type: ignore[attr-defined]
    report = InjectionReport(targets=counts, trainable=sum(p.numel() for p in lora_parameters(lm)),
                             total=sum(p.numel() for p in lm.parameters()))
    if config.quantize is not None:
        lm._lora_base_fingerprint = fingerprint(lm)  # type: ignore[attr-defined]  # of the unquantized base
        report.quantized = quantize_base(lm, config.quantize)
    logger.info("%s", report)
    return report


def _build_adapters(lm: nn.Module, config: LoraConfig, container: tp.Callable[[nn.Module, type], nn.ModuleDict],
                    layer_ids: tp.Sequence[int]) -> tp.Dict[str, int]:
    """Create ``config``'s adapters, each in the ModuleDict ``container(module, host mixin)`` gives (the host's own
    ``lora`` for :func:`inject`, a stacked set for :func:`lora.runtime.add_adapter`); returns counts per target."""
    device = next(lm.parameters()).device
    scaling, r = config.scaling, config.r
    counts: tp.Dict[str, int] = {t: 0 for t in config.targets}

    def linear_adapter(linear: nn.Linear) -> LoraAdapter:
        return LoraAdapter(linear.in_features, linear.out_features, r, scaling, config.dropout).to(device)

    for i in layer_ids:
        layer = lm.transformer.layers[i]
        for attn_name in ("self_attn", "cross_attention"):
            wanted = [t.split(".")[1] for t in config.targets if t.startswith(attn_name + ".")]
            if not wanted:
                continue
            attn = getattr(layer, attn_name)
            _check_attention(attn, f"transformer.layers.{i}.{attn_name}")
            dim = attn.in_proj_weight.shape[1]
            segments = [s for s in wanted if s in SEGMENTS]
            if segments:
                host = container(attn, ATTENTION_HOST)
                for s in segments:
                    host[s] = LoraAdapter(dim, dim, r, scaling, config.dropout).to(device)
                    counts[f"{attn_name}.{s}"] += 1
            if "out" in wanted:
                container(attn.out_proj, LINEAR_HOST)["weight"] = linear_adapter(attn.out_proj)
                counts[f"{attn_name}.out"] += 1
        for name in ("linear1", "linear2"):
            if name in config.targets:
                linear = getattr(layer, name)
                container(linear, LINEAR_HOST)["weight"] = linear_adapter(linear)
                counts[name] += 1
    if "emb" in config.targets:
        for emb in lm.emb:
            adapter = LoraEmbeddingAdapter(emb.num_embeddings, emb.embedding_dim, r, scaling).to(device)
            container(emb, EMBEDDING_HOST)["weight"] = adapter
            counts["emb"] += 1
    if "linears" in config.targets:
        for linear in lm.linears:
            container(linear, LINEAR_HOST)["weight"] = linear_adapter(linear)
            counts["linears"] += 1
    return counts


def _hosts(lm: nn.Module) -> tp.Iterator[tp.Tuple[str, nn.Module]]:
    for name, module in lm.named_modules():
        if is_host(module):
            yield name, module


def has_lora(model: nn.Module) -> bool:
    return any(True for _ in _hosts(get_lm(model)))


def get_config(model: nn.Module) -> LoraConfig:
    lm = get_lm(model)
    if not has_lora(lm):
        raise ValueError("this model has no LoRA adapters (call lora.inject or lora.load_adapter first)")
    return lm._lora_config


def lora_parameters(model: nn.Module) -> tp.List[nn.Parameter]:
    """The adapter parameters (what an optimizer should get)."""
    return [p for n, p in get_lm(model).named_parameters() if LORA_KEY in f".{n}"]


def adapter_state_dict(model: nn.Module) -> tp.Dict[str, torch.Tensor]:
    """Adapter tensors only, keyed as in the LM's state dict (``...self_attn.lora.q.lora_A``)."""
    return {k: v for k, v in get_lm(model).state_dict().items() if LORA_KEY in f".{k}"}


def base_state_dict(model: nn.Module) -> tp.Dict[str, torch.Tensor]:
    """The LM's state dict without adapter tensors: the keys of the plain audiocraft model (a QLoRA base's
    quantized weights appear dequantized)."""
    lm = get_lm(model)
    state = plain_state_dict(lm) if is_quantized(lm) else lm.state_dict()
    return {k: v for k, v in state.items() if not _is_adapter_key(k)}


def _adapted_slots(lm: nn.Module) -> tp.Iterator[tp.Tuple[str, nn.Module, str, slice]]:
    """(host name, adapter, name of the base weight it updates, its rows) for every adapter, stacked ones too."""
    for name, host in _hosts(lm):
        for adapters in adapter_sets(host):
            for slot, adapter in adapters.items():
                if slot == "weight":
                    yield name, adapter, "weight", slice(None)
                else:
                    dim = host.in_proj_weight.shape[0] // 3
                    i = SEGMENTS.index(slot)
                    yield name, adapter, "in_proj_weight", slice(i * dim, (i + 1) * dim)


def _adapted_weights(lm: nn.Module) -> tp.Iterator[tp.Tuple[nn.Module, torch.Tensor]]:
    """(adapter, the slice of the base weight it updates) pairs, stacked adapters included."""
    modules = dict(lm.named_modules())
    for name, adapter, weight, rows in _adapted_slots(lm):
        yield adapter, getattr(modules[name], weight)[rows]


@torch.no_grad()
def merge(model: nn.Module) -> None:
    """Fold every adapter into its base weight (W += scaling * B A, computed in fp32). Refuses non-finite results.

    A QLoRA base is dequantized first: its weights become ordinary parameters holding the quantized values."""
    lm = get_lm(model)
    _dequantize(lm)
    for adapter, weight in _adapted_weights(lm):
        if adapter.merged:
            continue
        merged = weight.float() + adapter.delta_weight().to(weight.device)
        if not torch.isfinite(merged).all():
            raise ValueError("merging LoRA produced non-finite weights (the adapter diverged); not merged")
        weight.copy_(merged.to(weight.dtype))
        adapter.merged = True


@torch.no_grad()
def unmerge(model: nn.Module) -> None:
    """Undo :func:`merge` (W -= scaling * B A)."""
    lm = get_lm(model)
    for adapter, weight in _adapted_weights(lm):
        if adapter.merged:
            weight.copy_((weight.float() - adapter.delta_weight().to(weight.device)).to(weight.dtype))
            adapter.merged = False


def is_merged(model: nn.Module) -> bool:
    flags = [a.merged for a, _ in _adapted_weights(get_lm(model))]
    return bool(flags) and all(flags)


def remove(model: nn.Module, merge_weights: bool = False) -> nn.Module:
    """Remove every adapter, restoring audiocraft's own module classes and state-dict keys.

    With ``merge_weights=True`` the adapters are folded in first (the plain model then computes what the adapted
    model did); otherwise the base weights are restored exactly (merged adapters are unmerged), except that a
    QLoRA base keeps its quantized values (quantization is lossy). Returns ``model``.
    """
    lm = get_lm(model)
    if merge_weights:
        merge(lm)
    else:
        unmerge(lm)
    _dequantize(lm)
    for _, host in list(_hosts(lm)):
        unmake_host(host)
    for attr in ("_lora_config", "_lora_base_fingerprint", "_lora_stack_configs", "_lora_names"):
        if hasattr(lm, attr):
            delattr(lm, attr)
    for p in lm.parameters():
        p.requires_grad_(True)
    return model


def _dequantize(lm: nn.Module) -> None:
    if is_quantized(lm):
        count = dequantize_base(lm)
        logger.info("Dequantized %d QLoRA base weights (they keep the quantized values)", count)


def fingerprint(model: nn.Module) -> tp.Dict[str, tp.Any]:
    """Identify the base weights (adapters excluded; must not be merged): ``{"structure", "signature"}``.

    ``structure`` hashes every base tensor's name and shape; ``signature`` is 8 sums of |values| over a strided
    sample of each tensor (float64), so it is cheap on a 1.5 B-parameter model, survives a save/load or a
    merge/unmerge round trip (float rounding), and changes when the weights are another model's.
    Compare two with :func:`same_base`.
    """
    lm = get_lm(model)
    if is_quantized(lm) and getattr(lm, "_lora_base_fingerprint", None):
        return lm._lora_base_fingerprint  # QLoRA: the full-precision base it was quantized from
    if any(a.merged for a, _ in _adapted_weights(lm)):
        raise ValueError("cannot fingerprint a model with merged adapters: call lora.unmerge(model) first")
    digest = hashlib.sha256()
    signature = [0.0] * 8
    for i, (key, tensor) in enumerate(sorted(base_state_dict(lm).items())):
        digest.update(f"{key}{tuple(tensor.shape)};".encode())
        flat = tensor.detach().reshape(-1)
        sample = flat[::max(1, flat.numel() // 4096)].to("cpu", torch.float64)
        signature[i % 8] += float(sample.abs().sum())
    return {"structure": digest.hexdigest()[:16], "signature": signature}


def same_base(a: tp.Mapping[str, tp.Any], b: tp.Mapping[str, tp.Any], rtol: float = 1e-4) -> bool:
    """Whether two :func:`fingerprint` results describe the same base weights (up to float rounding)."""
    if a.get("structure") != b.get("structure"):
        return False
    return all(abs(x - y) <= rtol * max(abs(x), abs(y), 1e-12) for x, y in zip(a["signature"], b["signature"]))
