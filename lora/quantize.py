"""QLoRA: the frozen base weights of the transformer kept in 4 bit (NF4) or 8 bit, dequantized when used.

``LoraConfig(quantize="4bit")`` (or ``"8bit"``) makes :func:`lora.inject` quantize every large frozen matrix of
the transformer layers: the packed ``in_proj_weight`` of self- and cross-attention, ``out_proj``, ``linear1`` and
``linear2`` (about 95 % of MusicGen's LM weights), with bitsandbytes' block-wise quantizers (NF4 with blocks of 64
as in the QLoRA paper, or 8-bit dynamic blocks of 256). Embeddings, output heads and norms stay as they are.

How. Each weight becomes a ``torch.nn.utils.parametrize`` parametrization whose stored tensors are the quantized
uint8 data and its per-block scales (frozen) and whose value is the dequantized matrix. audiocraft reads
``self.in_proj_weight`` and calls ``F.linear`` with it, so its own attention code, the KV-cached streaming
generation, autocast and gradient checkpointing all keep working unchanged. While the model is at rest, and across
layers when gradient checkpointing is on, the base takes 4 or 8 bits per weight instead of 32; within a layer the
dequantized matrix is recomputed on use (under autocast, in the compute dtype). bitsandbytes (>= 0.45) runs these
quantizers on CUDA and on the CPU.

``dequantize_base`` turns the weights back into ordinary parameters (holding the quantized values: quantization
is lossy); :func:`lora.merge`, :func:`lora.remove` and exports do it first. The base's fingerprint is taken before
quantization, so an adapter trained with QLoRA loads onto the full-precision base it was trained from.
"""

from __future__ import annotations

import importlib.util
import typing as tp

import torch
from torch import nn
from torch.nn.utils import parametrize

from genrecraft.core.errors import UserError

MODES = ("4bit", "8bit")
#: Which weights of each transformer layer are quantized: (submodule path, parameter name).
QUANTIZED_WEIGHTS = (("self_attn", "in_proj_weight"), ("self_attn.out_proj", "weight"),
                     ("cross_attention", "in_proj_weight"), ("cross_attention.out_proj", "weight"),
                     ("linear1", "weight"), ("linear2", "weight"))
NF4_BLOCKSIZE = 64
INT8_BLOCKSIZE = 256


class QuantizationUnavailable(UserError, RuntimeError):
    """QLoRA was asked for where it cannot run."""


def check_quantization_available(mode: str) -> None:
    """Raise :class:`QuantizationUnavailable` with the fix if ``mode`` cannot run here."""
    if mode not in MODES:
        raise QuantizationUnavailable(f"quantize={mode!r}: use one of {MODES} (or None for plain LoRA)")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise QuantizationUnavailable(
            f"LoraConfig.quantize={mode!r} needs bitsandbytes: `pip install bitsandbytes` (or "
            "`pip install -e '.[qlora]'` in genrecraft), or use quantize=None (plain LoRA).")


def _bnb_functional():
    import logging

    # bitsandbytes logs at import that optional CPU kernels from the `kernels` package are missing; its own
    # kernels are used instead, so the message is noise here.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    import bitsandbytes.functional as F

    return F


class QuantizedWeight(nn.Module):
    """A parametrization: stores a weight as three frozen tensors, the quantized uint8 data and the per-block
    ``absmax`` and ``code`` of bitsandbytes' quantizer, and gives back the dequantized matrix in the weight's
    original dtype and shape."""

    def __init__(self, mode: str, shape: torch.Size, dtype: torch.dtype):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"quantize mode {mode!r}: use one of {MODES}")
        self.mode = mode
        self.shape = tuple(shape)
        self.dtype = dtype

    def right_inverse(self, weight: torch.Tensor) -> tp.Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        F = _bnb_functional()
        w = weight.detach().float().contiguous()
        if self.mode == "4bit":
            data, state = F.quantize_4bit(w, blocksize=NF4_BLOCKSIZE, quant_type="nf4", compress_statistics=False)
        else:
            data, state = F.quantize_blockwise(w, blocksize=INT8_BLOCKSIZE)
        return data, state.absmax, state.code

    def forward(self, data: torch.Tensor, absmax: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        F = _bnb_functional()
        if self.mode == "4bit":
            state = F.QuantState(absmax=absmax, shape=torch.Size(self.shape), code=code, blocksize=NF4_BLOCKSIZE,
                                 quant_type="nf4", dtype=torch.float32)
            weight = F.dequantize_4bit(data, state)
        else:
            state = F.QuantState(absmax=absmax, code=code, blocksize=INT8_BLOCKSIZE, dtype=torch.float32)
            weight = F.dequantize_blockwise(data, state)
        return weight.to(self.dtype)


def _targets(lm: nn.Module) -> tp.Iterator[tp.Tuple[nn.Module, str]]:
    """(module, parameter name) of every weight :data:`QUANTIZED_WEIGHTS` names in the transformer's layers."""
    for layer in lm.transformer.layers:
        for path, attr in QUANTIZED_WEIGHTS:
            module: tp.Optional[nn.Module] = layer
            for part in path.split("."):
                module = getattr(module, part, None)
                if module is None:
                    break
            if module is not None and isinstance(getattr(module, attr, None), torch.Tensor):
                yield module, attr


def is_quantized(lm: nn.Module) -> bool:
    return any(parametrize.is_parametrized(m) for m in lm.modules())


def quantize_base(lm: nn.Module, mode: str) -> tp.Dict[str, int]:
    """Quantize the transformer's frozen matrices in place (see the module docstring).

    Returns ``{"weights", "params", "bytes_before", "bytes_after"}`` (storage of the quantized weights).
    """
    check_quantization_available(mode)
    if is_quantized(lm):
        raise RuntimeError("the base is already quantized")
    count = params = before = after = 0
    for module, attr in _targets(lm):
        weight = getattr(module, attr)
        if weight.requires_grad:
            raise RuntimeError("quantize_base expects a frozen base (lora.inject freezes it first)")
        before += weight.numel() * weight.element_size()
        parametrize.register_parametrization(module, attr, QuantizedWeight(mode, weight.shape, weight.dtype),
                                             unsafe=True)
        holder = module.parametrizations[attr]
        after += sum(t.numel() * t.element_size() for t in (holder.original0, holder.original1, holder.original2))
        count += 1
        params += weight.numel()
    return {"weights": count, "params": params, "bytes_before": before, "bytes_after": after}


def dequantize_base(lm: nn.Module) -> int:
    """Turn quantized weights back into ordinary (frozen) parameters with the dequantized values; returns how
    many. The state-dict keys are audiocraft's again."""
    count = 0
    for module in lm.modules():
        if parametrize.is_parametrized(module):
            for attr in list(module.parametrizations.keys()):
                parametrize.remove_parametrizations(module, attr, leave_parametrized=True)
                getattr(module, attr).requires_grad_(False)
                count += 1
    return count


def plain_state_dict(lm: nn.Module) -> tp.Dict[str, torch.Tensor]:
    """The LM's state dict with audiocraft's keys: quantized weights appear dequantized under their own name."""
    state = {k: v for k, v in lm.state_dict().items() if ".parametrizations." not in f".{k}"}
    for name, module in lm.named_modules():
        if parametrize.is_parametrized(module):
            prefix = f"{name}." if name else ""
            for attr in module.parametrizations.keys():
                state[prefix + attr] = getattr(module, attr).detach()
    return state
