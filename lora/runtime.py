"""LoRA at run time: strengths, several adapters stacked on one model, and a weighted merge of adapters.

>>> name = add_adapter(musicgen, "adapters/jpop", scale=0.7)     # doctest: +SKIP
>>> add_adapter(musicgen, "adapters/piano", name="piano", scale=0.5)  # doctest: +SKIP
>>> set_scale(musicgen, 0.0, "jpop")       # the next generation is the base plus piano at 0.5   # doctest: +SKIP
>>> merge_adapters([("adapters/jpop", 0.7), ("adapters/piano", 0.5)], "adapters/jpop+piano")   # doctest: +SKIP

- A strength (``scale``) multiplies an adapter's ``alpha / r``: 0 is the base model (the adapter is skipped), 1 is
  the adapter as trained. Changing it re-injects nothing; a merged adapter is unmerged and merged again at the
  new strength.
- The first adapter added is the model's own (``lora`` in the state dict: the one :func:`lora.save_adapter`,
  :func:`lora.load_adapter` and training see). The others are stacked beside it (``lora_stack.<name>``): frozen,
  each with its own config (rank, targets) and strength; the model computes the base plus every adapter's update.
  :func:`lora.merge` and :func:`lora.merged_state_dict` fold them all in, each at its strength.
- :func:`merge_adapters` writes ONE adapter equal to the weighted sum of several: their low-rank factors are
  concatenated (rank = the sum of ranks, ``alpha = r``), so the result is exact, not an approximation, and loads
  anywhere a single adapter does.
"""

from __future__ import annotations

import re
import typing as tp
from pathlib import Path

import torch
from torch import nn

from genrecraft.core.atomic import atomic_path, write_json

from .config import ALL_TARGETS, LoraConfig
from .inject import _adapted_slots, _build_adapters, fingerprint, get_lm, has_lora, same_base
from .io import (CONFIG_NAME, FORMAT, SKIP_CHECK, WEIGHTS_NAME, AdapterMismatchError, _lm_shape, _toolkit_version,
                 load_adapter, read_adapter_config)
from .layers import adapter_sets, is_host, make_host

DEFAULT_NAME = "default"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def adapter_name(folder: tp.Union[str, Path]) -> str:
    """A valid adapter name from a folder's name (``adapters/j-pop v2`` -> ``j-pop_v2``)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(folder).resolve().name)[:64].strip("_")
    return name or "adapter"


def _names(lm: nn.Module) -> tp.Dict[str, tp.Optional[str]]:
    """{adapter name: stack key, or None for the model's own adapter}."""
    names = getattr(lm, "_lora_names", None)
    if names is None:
        names = {DEFAULT_NAME: None} if has_lora(lm) else {}
    return dict(names)


def adapter_names(model: nn.Module) -> tp.List[str]:
    """The names of the adapters on ``model``, the model's own first; ``[]`` without LoRA."""
    return list(_names(get_lm(model)))


def _adapters_of(lm: nn.Module, name: str) -> tp.List[nn.Module]:
    names = _names(lm)
    if name not in names:
        raise KeyError(f"no adapter named {name!r} on this model; it has {list(names) or 'none'}")
    key = names[name]
    out = []
    for module in lm.modules():
        if not is_host(module):
            continue
        if key is None:
            out.extend(module.lora.values())
        elif hasattr(module, "lora_stack") and key in module.lora_stack:
            out.extend(module.lora_stack[key].values())
    return out


@torch.no_grad()
def set_scale(model: nn.Module, scale: float, name: tp.Optional[str] = None) -> None:
    """Set the strength of adapter ``name`` (every adapter when ``None``) to ``scale``: 0 is the base, 1 the
    adapter as trained; negative values subtract it. Takes effect at the next forward pass; merged adapters are
    re-merged at the new strength."""
    lm = get_lm(model)
    scale = float(scale)
    if not torch.isfinite(torch.tensor(scale)):
        raise ValueError(f"LoRA scale {scale} must be a finite number (0: off, 1: as trained)")
    names = [name] if name is not None else adapter_names(lm)
    if not names:
        raise ValueError("this model has no LoRA adapters to scale (load one with lora.runtime.add_adapter)")
    targets = {id(a) for n in names for a in _adapters_of(lm, n)}
    modules = dict(lm.named_modules())
    for host_name, adapter, weight, rows in _adapted_slots(lm):
        if id(adapter) not in targets or adapter.scale == scale:
            continue
        if adapter.merged:
            w = getattr(modules[host_name], weight)[rows]
            w.copy_((w.float() - adapter.delta_weight().to(w.device)).to(w.dtype))
            adapter.scale = scale
            w.copy_((w.float() + adapter.delta_weight().to(w.device)).to(w.dtype))
        else:
            adapter.scale = scale


def get_scale(model: nn.Module, name: str = DEFAULT_NAME) -> float:
    """The strength of adapter ``name``."""
    adapters = _adapters_of(get_lm(model), name)
    return float(adapters[0].scale) if adapters else 1.0


def add_adapter(model: nn.Module, folder: tp.Union[str, Path], name: tp.Optional[str] = None, scale: float = 1.0,
                check_base: bool = True) -> str:
    """Load the adapter in ``folder`` onto ``model`` beside any adapters it already has; returns its name.

    The first adapter becomes the model's own (as :func:`lora.load_adapter` loads it); later ones are stacked with
    their own config and strength. ``name`` defaults to the folder's name. Raises ``ValueError`` for a name in use
    and :class:`AdapterMismatchError` when the adapter was trained on another base.
    """
    lm = get_lm(model)
    name = name or adapter_name(folder)
    if not _NAME.match(name):
        raise ValueError(f"adapter name {name!r}: use 1 to 64 letters, digits, '_' or '-'")
    names = _names(lm)
    if name in names:
        raise ValueError(f"an adapter named {name!r} is already on this model ({list(names)}); pass another name")
    if not names:
        load_adapter(lm, folder, check_base=check_base)
        lm._lora_names = {name: None}  # type: ignore[attr-defined]
        set_scale(lm, scale, name)
        return name
    meta = read_adapter_config(folder)
    shape = _lm_shape(lm)
    if meta["lm_shape"] != shape:
        raise AdapterMismatchError(
            f"adapter {folder} was trained on an LM of shape {meta['lm_shape']} (base {meta['base_model_id']!r}), "
            f"but this model's LM has shape {shape}: stack only adapters of the same base")
    if any(a.merged for a in _all_adapters(lm)):
        raise ValueError("stack adapters before merging: call lora.unmerge(model), add the adapter, then merge")
    if check_base and not same_base(fingerprint(lm), meta["base_fingerprint"]):
        raise AdapterMismatchError(
            f"adapter {folder} was trained on base {meta['base_model_id']!r}, and this model's weights are not "
            "that base (fingerprint differs); " + SKIP_CHECK)
    config = LoraConfig.from_dict({**meta["lora"], "quantize": None})
    n_layers = len(lm.transformer.layers)
    layer_ids = list(range(n_layers)) if config.layers is None else list(config.layers)
    key = f"s{len(names)}_{name}".replace("-", "_")

    def container(module: nn.Module, mixin: type) -> nn.ModuleDict:
        make_host(module, mixin)
        if not hasattr(module, "lora_stack"):
            module.lora_stack = nn.ModuleDict()
        if key not in module.lora_stack:
            module.lora_stack[key] = nn.ModuleDict()
        return module.lora_stack[key]

    _build_adapters(lm, config, container, layer_ids)
    tensors = _read_tensors(Path(folder))
    wanted = {k: v for k, v in lm.state_dict().items() if f".lora_stack.{key}." in f".{k}"}
    mapped = {k.replace(".lora.", f".lora_stack.{key}.", 1): v for k, v in tensors.items()}
    if set(mapped) != set(wanted):
        missing, extra = sorted(set(wanted) - set(mapped))[:5], sorted(set(mapped) - set(wanted))[:5]
        raise AdapterMismatchError(f"adapter {folder} does not match its config: missing {missing}, extra {extra}")
    device = next(lm.parameters()).device
    for k, v in mapped.items():
        if tuple(v.shape) != tuple(wanted[k].shape):
            raise AdapterMismatchError(f"{folder}: {k} has shape {tuple(v.shape)}, expected {tuple(wanted[k].shape)}")
    lm.load_state_dict({k: v.to(device) for k, v in mapped.items()}, strict=False)
    for module in lm.modules():
        if hasattr(module, "lora_stack") and key in module.lora_stack:
            module.lora_stack[key].requires_grad_(False)
    names[name] = key
    lm._lora_names = names  # type: ignore[attr-defined]
    stack_configs = dict(getattr(lm, "_lora_stack_configs", {}))
    stack_configs[name] = config
    lm._lora_stack_configs = stack_configs  # type: ignore[attr-defined]
    set_scale(lm, scale, name)
    return name


def _all_adapters(lm: nn.Module) -> tp.List[nn.Module]:
    return [a for m in lm.modules() if is_host(m) for s in adapter_sets(m) for a in s.values()]


def _read_tensors(folder: Path) -> tp.Dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    path = folder / WEIGHTS_NAME
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own SafetensorError (and OSError) on a damaged file
        raise ValueError(f"{path} cannot be read as safetensors ({type(exc).__name__}: {exc}); copy the adapter "
                         "again or save it again") from exc


_LAYER_KEY = re.compile(r"^transformer\.layers\.(\d+)\.(.+)$")


def _target_suffixes(target: str, n_q: int) -> tp.List[str]:
    """State-dict key stems (without ``.lora_A``/``.lora_B``) of one target: per layer, or for emb/linears whole."""
    if target in ("emb", "linears"):
        return [f"{target}.{j}.lora.weight" for j in range(n_q)]
    attn, _, proj = target.partition(".")
    if proj == "out":
        return [f"{attn}.out_proj.lora.weight"]
    if proj:
        return [f"{attn}.lora.{proj}"]
    return [f"{target}.lora.weight"]


def merge_adapters(adapters: tp.Sequence[tp.Tuple[tp.Union[str, Path], float]], out: tp.Union[str, Path],
                   check_base: bool = True) -> Path:
    """Write to ``out`` one adapter equal to ``sum(weight_i * adapter_i)`` (each at its trained ``alpha / r``).

    The factors are concatenated: ``A = [A_1; A_2; ...]``, ``B = [w_1 s_1 B_1, w_2 s_2 B_2, ...]`` with
    ``alpha = r = sum(r_i)`` (scaling 1), targets the union (zero blocks where an adapter has none). Exact: the
    merged adapter's update is the weighted sum of the updates. The adapters must share one base model
    (``check_base=False`` skips the weights check, not the shape check). Returns ``out``.
    """
    from safetensors.torch import save_file

    if not adapters:
        raise ValueError("merge_adapters needs at least one (folder, weight) pair")
    metas = [read_adapter_config(folder) for folder, _ in adapters]
    first = metas[0]
    for (folder, _), meta in zip(adapters[1:], metas[1:]):
        if meta["lm_shape"] != first["lm_shape"]:
            raise AdapterMismatchError(f"adapter {folder} is for an LM of shape {meta['lm_shape']}, "
                                       f"{adapters[0][0]} for {first['lm_shape']}: only adapters of one base merge")
        if check_base and not same_base(meta["base_fingerprint"], first["base_fingerprint"]):
            raise AdapterMismatchError(f"adapters {adapters[0][0]} and {folder} were trained on different base "
                                       "weights (fingerprints differ); " + SKIP_CHECK)
    configs = [LoraConfig.from_dict(m["lora"]) for m in metas]
    tensors = [_read_tensors(Path(folder)) for folder, _ in adapters]
    targets = tuple(t for t in ALL_TARGETS if any(t in c.targets for c in configs))
    layers = None if any(c.layers is None for c in configs) else tuple(sorted({i for c in configs for i in c.layers}))
    n_layers, n_q = int(first["lm_shape"]["num_layers"]), int(first["lm_shape"]["n_q"])
    stems = []
    for target in targets:
        for suffix in _target_suffixes(target, n_q):
            if target in ("emb", "linears"):
                stems.append(suffix)
            else:
                stems += [f"transformer.layers.{i}.{suffix}" for i in (layers or range(n_layers))]
    # shapes of A [r, in] and B [out, r] by key stem, the layer index dropped (every layer has the same shapes)
    dims: tp.Dict[str, tp.Tuple[int, int]] = {}
    for t in tensors:
        for k, v in t.items():
            if k.endswith(".lora_A"):
                stem = k[:-len(".lora_A")]
                match = _LAYER_KEY.match(stem)
                dims[match.group(2) if match else stem] = (int(v.shape[1]), int(t[stem + ".lora_B"].shape[0]))
    merged: tp.Dict[str, torch.Tensor] = {}
    for stem in stems:
        match = _LAYER_KEY.match(stem)
        n_in, n_out = dims[match.group(2) if match else stem]
        a_parts, b_parts = [], []
        for (_, weight), config, t in zip(adapters, configs, tensors):
            if stem + ".lora_A" in t:
                a_parts.append(t[stem + ".lora_A"].float())
                b_parts.append(t[stem + ".lora_B"].float() * (float(weight) * config.scaling))
            else:
                a_parts.append(torch.zeros(config.r, n_in))
                b_parts.append(torch.zeros(n_out, config.r))
        merged[stem + ".lora_A"] = torch.cat(a_parts, dim=0).contiguous()
        merged[stem + ".lora_B"] = torch.cat(b_parts, dim=1).contiguous()
    bad = [k for k, v in merged.items() if not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"merging adapters produced non-finite values in {bad[0]} (an adapter diverged)")
    rank = sum(c.r for c in configs)
    config = LoraConfig(r=rank, alpha=float(rank), dropout=max(c.dropout for c in configs), targets=targets,
                        layers=layers)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / WEIGHTS_NAME) as tmp:
        save_file(merged, str(tmp), metadata={"format": FORMAT})
    write_json(out / CONFIG_NAME, {
        "format": FORMAT, "genrecraft_version": _toolkit_version(), "base_model_id": first["base_model_id"],
        "base_fingerprint": first["base_fingerprint"], "lm_shape": first["lm_shape"], "lora": config.to_dict(),
        "num_parameters": int(sum(v.numel() for v in merged.values())),
        "merged_from": [{"folder": str(Path(folder).resolve()), "weight": float(weight),
                         "base_model_id": meta["base_model_id"]} for (folder, weight), meta in zip(adapters, metas)],
    })
    return out


def describe(model: nn.Module) -> tp.List[tp.Dict[str, tp.Any]]:
    """One entry per adapter on ``model``: its name, strength and config (for logs and the generation sidecar)."""
    lm = get_lm(model)
    out = []
    stack_configs = getattr(lm, "_lora_stack_configs", {})
    for name, key in _names(lm).items():
        config = lm._lora_config if key is None else stack_configs[name]
        out.append({"name": name, "scale": get_scale(lm, name), "r": config.r, "alpha": config.alpha,
                    "targets": list(config.targets)})
    return out


__all__ = ["DEFAULT_NAME", "adapter_name", "adapter_names", "set_scale", "get_scale", "add_adapter",
           "merge_adapters", "describe"]