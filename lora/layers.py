"""LoRA adapters and the hosts that apply them inside audiocraft's modules.

Design. An adapter never replaces the module it adapts: the host module keeps its own parameters (so the base
model's state-dict keys and values are untouched) and gains a ``lora`` ModuleDict; its class is swapped for a
subclass that adds the adapter's output (``remove`` swaps it back). Adapters act on the INPUT of a projection,
``y = W x + scaling * B A dropout(x)``, so LoRA dropout is the paper's.

- ``nn.Linear`` hosts (attention ``out_proj``, ``linear1``, ``linear2``, output ``linears``) and embedding hosts
  (``emb``) add the adapter in their own forward.
- audiocraft's attention keeps q, k and v in one packed ``in_proj_weight`` [3*dim, dim] and uses it through
  ``F.linear`` (whole, for self-attention; sliced ``[:dim]``, ``[dim:2dim]``, ``[2dim:]`` for cross-attention),
  so no module exists to wrap. The attention host runs audiocraft's own forward under a ``TorchFunctionMode``
  that recognises those ``F.linear`` calls by the weight they use (pointer and shape) and adds the matching
  adapters' output. Every other operation passes through untouched, so training, autocast, streaming
  generation with the KV cache and gradient checkpointing (which re-runs the module's forward) all see LoRA.

Run time (:mod:`lora.runtime`). Every adapter has a ``scale`` (its strength, 1 by default) that multiplies its
``scaling`` and can change between generations; at 0 the adapter is skipped. A host holds its adapters in
``lora`` (the model's own adapter: the one trained, saved and loaded) and, when several adapters are stacked, the
others in ``lora_stack[name]``; every active adapter of every set adds its update.
"""

from __future__ import annotations

import contextlib
import math
import typing as tp

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize
from torch.overrides import TorchFunctionMode

SEGMENTS = ("q", "k", "v")


class LoraAdapter(nn.Module):
    """The low-rank update of one linear projection: ``delta(x) = scaling * B(A(dropout(x)))``.

    ``A`` [r, in] is Kaiming-initialised and ``B`` [out, r] is zero, so an injected model starts identical to
    its base. ``x`` is [..., in], the output [..., out].
    """

    def __init__(self, in_features: int, out_features: int, r: int, scaling: float, dropout: float):
        super().__init__()
        self.lora_A = nn.Parameter(torch.empty(r, in_features))
        self.lora_B = nn.Parameter(torch.zeros(out_features, r))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.scaling = scaling
        self.scale = 1.0  # run-time strength (lora.runtime.set_scale); not saved with the adapter
        self.merged = False

    @property
    def effective_scaling(self) -> float:
        return self.scaling * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.dropout(x))

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """The update of an input that has already been through this adapter's dropout."""
        return F.linear(F.linear(x, self.lora_A), self.lora_B) * self.effective_scaling

    def delta_weight(self) -> torch.Tensor:
        """The update as a dense [out, in] matrix, computed in float32 (at the current ``scale``)."""
        return (self.lora_B.float() @ self.lora_A.float()) * self.effective_scaling


class LoraEmbeddingAdapter(nn.Module):
    """Low-rank update of an embedding table [num, dim]: ``delta(ids) = scaling * B(A^T[ids])``.

    No dropout: the input is token ids. ``A`` [r, num] is zero-mean Gaussian and ``B`` [dim, r] is zero.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, r: int, scaling: float):
        super().__init__()
        self.lora_A = nn.Parameter(torch.randn(r, num_embeddings) / r)
        self.lora_B = nn.Parameter(torch.zeros(embedding_dim, r))
        self.scaling = scaling
        self.scale = 1.0  # run-time strength (lora.runtime.set_scale); not saved with the adapter
        self.merged = False

    @property
    def effective_scaling(self) -> float:
        return self.scaling * self.scale

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.linear(F.embedding(ids, self.lora_A.t()), self.lora_B) * self.effective_scaling

    def delta_weight(self) -> torch.Tensor:
        """The update of the table, [num, dim], float32 (at the current ``scale``)."""
        return (self.lora_B.float() @ self.lora_A.float()).t() * self.effective_scaling


def is_active(adapter: nn.Module) -> bool:
    """Whether an adapter adds its update in the forward pass (not merged into the weight, strength not 0)."""
    return not adapter.merged and adapter.scale != 0


def adapter_sets(host: nn.Module) -> tp.List[nn.ModuleDict]:
    """The host's adapter sets: its own ``lora``, then each stacked ``lora_stack[name]`` (slot -> adapter)."""
    stack = getattr(host, "lora_stack", None)
    return [host.lora] + (list(stack.values()) if stack is not None else [])  # type: ignore[list-item]


def active_adapters(host: nn.Module, slot: str) -> tp.List[nn.Module]:
    """The active adapters of ``slot`` (``weight``, ``q``, ``k`` or ``v``) over every adapter set of the host."""
    return [s[slot] for s in adapter_sets(host) if slot in s and is_active(s[slot])]


class _LinearHost:
    """Mixin for ``nn.Linear`` subclasses: adds the ``weight`` adapters."""

    lora: nn.ModuleDict

    def forward(self, x):
        out = super().forward(x)  # type: ignore[misc]
        for adapter in active_adapters(self, "weight"):  # type: ignore[arg-type]
            out = out + adapter(x).to(out.dtype)
        return out


class _EmbeddingHost:
    """Mixin for ``nn.Embedding`` subclasses (audiocraft's ScaledEmbedding): adds the ``weight`` adapters."""

    lora: nn.ModuleDict

    def forward(self, ids):
        out = super().forward(ids)  # type: ignore[misc]
        for adapter in active_adapters(self, "weight"):  # type: ignore[arg-type]
            out = out + adapter(ids).to(out.dtype)
        return out


class _PackedProjectionMode(TorchFunctionMode):
    """Adds q/k/v adapters to the ``F.linear`` calls that use an attention's packed ``in_proj_weight``.

    Memory: what autograd keeps for the backward pass of an adapter is its (dropped-out) input, one [B, T, dim]
    tensor per adapter. The adapters that read the same input share one dropout mask and, for self-attention,
    one fused ``A`` projection (``[A_q; A_k; A_v]``), so q, k and v keep one copy of their input, not three
    (as one packed projection does in full fine-tuning). Each adapter still gets its own independent low-rank
    update; with dropout the three see the same mask (as peft's adapters on one module would not, but as the
    shared input of a packed projection suggests). Stacked adapters (several per segment) join the same fused
    ``A`` projection.

    ``adapters`` maps a segment (``q``, ``k``, ``v``) to its active adapters.
    """

    def __init__(self, weight: torch.Tensor, adapters: tp.Mapping[str, tp.Sequence[LoraAdapter]]):
        super().__init__()
        self.dim = weight.shape[0] // 3
        self.adapters = adapters
        base = weight.data_ptr()
        step = self.dim * weight.shape[1] * weight.element_size()
        self.full = (base, tuple(weight.shape))
        self.slices = {(base + i * step, (self.dim, weight.shape[1])): name for i, name in enumerate(SEGMENTS)}
        self._dropped: tp.Dict[int, tp.Tuple[torch.Tensor, torch.Tensor]] = {}

    def _dropout(self, x: torch.Tensor, adapter: LoraAdapter) -> torch.Tensor:
        """``adapter.dropout(x)``, drawn once per input tensor during one forward of the attention."""
        if isinstance(adapter.dropout, nn.Identity) or not adapter.training:
            return x
        hit = self._dropped.get(id(x))
        if hit is None or hit[0] is not x:
            hit = (x, adapter.dropout(x))
            self._dropped[id(x)] = hit
        return hit[1]

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func is not F.linear:
            return out
        x = args[0] if args else kwargs["input"]
        weight = args[1] if len(args) > 1 else kwargs["weight"]
        key = (weight.data_ptr(), tuple(weight.shape))
        if key == self.full:  # self-attention: one projection to [q | k | v]
            active = [(i, a) for i, name in enumerate(SEGMENTS) for a in self.adapters.get(name, ())]
            if not active:
                return out
            dropped = self._dropout(x, active[0][1])
            hidden = F.linear(dropped, torch.cat([a.lora_A for _, a in active]))  # [..., n * r]
            ranks = [a.lora_A.shape[0] for _, a in active]
            parts: tp.List[tp.Optional[torch.Tensor]] = [None] * len(SEGMENTS)
            for (i, adapter), h in zip(active, hidden.split(ranks, dim=-1)):
                part = (F.linear(h, adapter.lora_B) * adapter.effective_scaling).to(out.dtype)
                parts[i] = part if parts[i] is None else parts[i] + part
            zeros = out.new_zeros(*out.shape[:-1], self.dim)
            return out + torch.cat([zeros if p is None else p for p in parts], dim=-1)
        name = self.slices.get(key)  # cross-attention: q, k and v from slices (k and v read the same input)
        if name is None:
            return out
        for adapter in self.adapters.get(name, ()):
            out = out + adapter.project(self._dropout(x, adapter)).to(out.dtype)
        return out


class _AttentionHost:
    """Mixin for audiocraft's ``StreamingMultiheadAttention``: runs its forward with q/k/v adapters active."""

    lora: nn.ModuleDict

    def forward(self, *args, **kwargs):
        adapters = {name: active_adapters(self, name) for name in SEGMENTS}  # type: ignore[arg-type]
        if not any(adapters.values()):
            return super().forward(*args, **kwargs)  # type: ignore[misc]
        # A QLoRA base dequantizes in_proj_weight on access: cache it so audiocraft's F.linear calls use the very
        # tensor (pointer) the mode recognises.
        cache = parametrize.cached() if parametrize.is_parametrized(self) else contextlib.nullcontext()
        with cache, _PackedProjectionMode(self.in_proj_weight, adapters):  # type: ignore[attr-defined]
            return super().forward(*args, **kwargs)  # type: ignore[misc]


_HOST_CLASSES: tp.Dict[tp.Tuple[type, type], type] = {}


def host_class(mixin: type, base: type) -> type:
    """The (cached) subclass of ``base`` that applies LoRA with ``mixin``."""
    key = (mixin, base)
    if key not in _HOST_CLASSES:
        _HOST_CLASSES[key] = type(f"Lora{base.__name__}", (mixin, base), {"_lora_base_class": base})
    return _HOST_CLASSES[key]


def make_host(module: nn.Module, mixin: type) -> nn.ModuleDict:
    """Turn ``module`` into a LoRA host in place (class swap); returns its ``lora`` ModuleDict."""
    if not hasattr(module, "lora"):
        module.lora = nn.ModuleDict()
        module.__class__ = host_class(mixin, type(module))
    return module.lora  # type: ignore[return-value]


def unmake_host(module: nn.Module) -> None:
    """Undo :func:`make_host`: original class, no ``lora`` submodule."""
    base = getattr(type(module), "_lora_base_class", None)
    if base is None:
        return
    del module.lora
    if hasattr(module, "lora_stack"):
        del module.lora_stack
    module.__class__ = base


def is_host(module: nn.Module) -> bool:
    return getattr(type(module), "_lora_base_class", None) is not None


LINEAR_HOST = _LinearHost
EMBEDDING_HOST = _EmbeddingHost
ATTENTION_HOST = _AttentionHost
