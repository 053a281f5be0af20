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
        self.merged = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.dropout(x))

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """The update of an input that has already been through this adapter's dropout."""
        return F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        """The update as a dense [out, in] matrix, computed in float32."""
        return (self.lora_B.float() @ self.lora_A.float()) * self.scaling


class LoraEmbeddingAdapter(nn.Module):
    """Low-rank update of an embedding table [num, dim]: ``delta(ids) = scaling * B(A^T[ids])``.

    No dropout: the input is token ids. ``A`` [r, num] is zero-mean Gaussian and ``B`` [dim, r] is zero.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, r: int, scaling: float):
        super().__init__()
        self.lora_A = nn.Parameter(torch.randn(r, num_embeddings) / r)
        self.lora_B = nn.Parameter(torch.zeros(embedding_dim, r))
        self.scaling = scaling
        self.merged = False

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.linear(F.embedding(ids, self.lora_A.t()), self.lora_B) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        """The update of the table, [num, dim], float32."""
        return (self.lora_B.float() @ self.lora_A.float()).t() * self.scaling


def _active(adapters: tp.Iterable[nn.Module]) -> tp.List[nn.Module]:
    return [a for a in adapters if not a.merged]


class _LinearHost:
    """Mixin for ``nn.Linear`` subclasses: adds the ``weight`` adapter."""

    lora: nn.ModuleDict

    def forward(self, x):
        out = super().forward(x)  # type: ignore[misc]
        adapter = self.lora["weight"]
        if adapter.merged:
            return out
        return out + adapter(x).to(out.dtype)


class _EmbeddingHost:
    """Mixin for ``nn.Embedding`` subclasses (audiocraft's ScaledEmbedding): adds the ``weight`` adapter."""

    lora: nn.ModuleDict

    def forward(self, ids):
        out = super().forward(ids)  # type: ignore[misc]
        adapter = self.lora["weight"]
        if adapter.merged:
            return out
        return out + adapter(ids).to(out.dtype)


class _PackedProjectionMode(TorchFunctionMode):
    """Adds q/k/v adapters to the ``F.linear`` calls that use an attention's packed ``in_proj_weight``.

    Memory: what autograd keeps for the backward pass of an adapter is its (dropped-out) input, one [B, T, dim]
    tensor per adapter. The adapters that read the same input share one dropout mask and, for self-attention,
    one fused ``A`` projection (``[A_q; A_k; A_v]``), so q, k and v keep one copy of their input, not three
    (as one packed projection does in full fine-tuning). Each adapter still gets its own independent low-rank
    update; with dropout the three see the same mask (as peft's adapters on one module would not, but as the
    shared input of a packed projection suggests).
    """

    def __init__(self, weight: torch.Tensor, adapters: tp.Mapping[str, LoraAdapter]):
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
            active = [(i, self.adapters[name]) for i, name in enumerate(SEGMENTS)
                      if name in self.adapters and not self.adapters[name].merged]
            if not active:
                return out
            dropped = self._dropout(x, active[0][1])
            hidden = F.linear(dropped, torch.cat([a.lora_A for _, a in active]))  # [..., n * r]
            ranks = [a.lora_A.shape[0] for _, a in active]
            parts: tp.List[tp.Optional[torch.Tensor]] = [None] * len(SEGMENTS)
            for (i, adapter), h in zip(active, hidden.split(ranks, dim=-1)):
                parts[i] = (F.linear(h, adapter.lora_B) * adapter.scaling).to(out.dtype)
            zeros = out.new_zeros(*out.shape[:-1], self.dim)
            return out + torch.cat([zeros if p is None else p for p in parts], dim=-1)
        name = self.slices.get(key)  # cross-attention: q, k and v from slices (k and v read the same input)
        if name is None:
            return out
        adapter = self.adapters.get(name)
        if adapter is None or adapter.merged:
            return out
        return out + adapter.project(self._dropout(x, adapter)).to(out.dtype)


class _AttentionHost:
    """Mixin for audiocraft's ``StreamingMultiheadAttention``: runs its forward with q/k/v adapters active."""

    lora: nn.ModuleDict

    def forward(self, *args, **kwargs):
        adapters = {name: self.lora[name] for name in SEGMENTS if name in self.lora}
        if not _active(adapters.values()):
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
    module.__class__ = base


def is_host(module: nn.Module) -> bool:
    return getattr(type(module), "_lora_base_class", None) is not None


LINEAR_HOST = _LinearHost
EMBEDDING_HOST = _EmbeddingHost
ATTENTION_HOST = _AttentionHost
