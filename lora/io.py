"""Adapter files (save / load) and export of a merged model in audiocraft's own format."""

from __future__ import annotations

import dataclasses
import json
import typing as tp
from pathlib import Path

import torch
from torch import nn

from genrecraft import __version__
from genrecraft.core.atomic import atomic_path, write_json

from .config import LoraConfig
from .inject import (LORA_KEY, _adapted_slots, _adapted_weights, adapter_state_dict, base_state_dict, fingerprint,
                     get_config, get_lm, has_lora, inject, same_base)

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
FORMAT = "genrecraft-lora/1"
REQUIRED_KEYS = ("format", "base_model_id", "base_fingerprint", "lm_shape", "lora")
SKIP_CHECK = ("skip this check only if you know the weights are the same (check_base=False in Python, "
              "--skip-base-check in `genrecraft lora merge`)")


class AdapterMismatchError(ValueError):
    """An adapter does not fit the model it is loaded onto."""


def _toolkit_version() -> str:
    return __version__


def _lm_shape(lm: nn.Module) -> tp.Dict[str, int]:
    layer = lm.transformer.layers[0]
    return {"dim": int(lm.dim), "num_layers": len(lm.transformer.layers), "num_heads": int(layer.self_attn.num_heads),
            "n_q": int(lm.num_codebooks), "card": int(lm.card)}


def save_adapter(model: nn.Module, folder: tp.Union[str, Path], base_model_id: str = "unknown") -> Path:
    """Write ``adapter_config.json`` and ``adapter_model.safetensors`` (adapter tensors only) to ``folder``.

    The config records the targets, r, alpha, dropout, the base model id, a fingerprint of the base weights
    and the toolkit version. Each file is written atomically; the config last. Returns the folder.
    """
    from safetensors.torch import save_file

    lm = get_lm(model)
    config = get_config(lm)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in adapter_state_dict(lm).items()}
    with atomic_path(folder / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT})
    merged = [a.merged for a, _ in _adapted_weights(lm)]
    if any(merged):
        raise ValueError("save_adapter needs unmerged adapters (the fingerprint is of the base): call lora.unmerge")
    write_json(folder / CONFIG_NAME, {
        "format": FORMAT, "genrecraft_version": _toolkit_version(), "base_model_id": base_model_id,
        "base_fingerprint": fingerprint(lm), "lm_shape": _lm_shape(lm), "lora": config.to_dict(),
        "num_parameters": int(sum(t.numel() for t in tensors.values())),
    })
    return folder


def read_adapter_config(folder: tp.Union[str, Path]) -> tp.Dict[str, tp.Any]:
    """The parsed ``adapter_config.json`` of an adapter folder, with clear errors for a wrong folder."""
    folder = Path(folder)
    path = folder / CONFIG_NAME
    if not path.is_file() or not (folder / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(
            f"{folder} is not a LoRA adapter folder: it needs {CONFIG_NAME} and {WEIGHTS_NAME} "
            "(written by lora.save_adapter, by a LoRA training run, or by `python -m genrecraft.export`)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); the adapter folder is damaged: copy it again or "
                         "save the adapter again") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a JSON {type(data).__name__}, not the adapter config object")
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: format {data.get('format')!r} is not {FORMAT!r}")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ValueError(f"{path} is missing {', '.join(repr(k) for k in missing)} (an adapter config written by "
                         "lora.save_adapter has them all); save the adapter again")
    if not isinstance(data["lora"], dict) or not isinstance(data["lm_shape"], dict):
        raise ValueError(f"{path}: 'lora' and 'lm_shape' must be JSON objects")
    try:
        LoraConfig.from_dict(data["lora"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: bad 'lora' entry: {exc}") from exc
    return data


def load_adapter(model: nn.Module, folder: tp.Union[str, Path], check_base: bool = True) -> LoraConfig:
    """Load an adapter folder onto ``model`` (LMModel or MusicGen), injecting LoRA first if needed.

    Raises :class:`AdapterMismatchError` when the adapter was trained on another base model (shape or weights
    fingerprint differ; pass ``check_base=False`` to skip the weights check) or does not match the adapters
    already injected. Returns the adapter's :class:`LoraConfig`.
    """
    from safetensors.torch import load_file

    lm = get_lm(model)
    meta = read_adapter_config(folder)
    config = LoraConfig.from_dict(meta["lora"])
    shape = _lm_shape(lm)
    if meta["lm_shape"] != shape:
        raise AdapterMismatchError(
            f"adapter {folder} was trained on an LM of shape {meta['lm_shape']} (base {meta['base_model_id']!r}), "
            f"but this model's LM has shape {shape}: load it onto {meta['base_model_id']!r}")
    if has_lora(lm):
        if dataclasses.replace(get_config(lm), quantize=None) != dataclasses.replace(config, quantize=None):
            raise AdapterMismatchError(f"the model already has LoRA adapters with another config than {folder}; "
                                       "call lora.remove(model) first")
    elif check_base:
        found = fingerprint(lm)
        if not same_base(found, meta["base_fingerprint"]):
            raise AdapterMismatchError(
                f"adapter {folder} was trained on base {meta['base_model_id']!r}, and this model's weights are not "
                "that base (fingerprint differs). Load the base it was trained on, or " + SKIP_CHECK)
    if not has_lora(lm):
        # An adapter trained with QLoRA applies to the full-precision base: loading never quantizes the model.
        inject(lm, dataclasses.replace(config, quantize=None))
    weights = Path(folder) / WEIGHTS_NAME
    try:
        tensors = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own SafetensorError (and OSError) on a damaged file
        raise ValueError(f"{weights} cannot be read as safetensors ({type(exc).__name__}: {exc}); the file is "
                         "damaged or truncated: copy it again or save the adapter again") from exc
    wanted = adapter_state_dict(lm)
    expected = set(wanted)
    if set(tensors) != expected:
        missing, extra = sorted(expected - set(tensors))[:5], sorted(set(tensors) - expected)[:5]
        raise AdapterMismatchError(f"adapter {folder} does not match its config: missing {missing}, extra {extra}")
    for key, value in tensors.items():
        if tuple(value.shape) != tuple(wanted[key].shape):
            raise AdapterMismatchError(
                f"{weights}: {key} has shape {tuple(value.shape)}, but the config (r={config.r}) needs "
                f"{tuple(wanted[key].shape)}: {CONFIG_NAME} and {WEIGHTS_NAME} come from different adapters")
    device = next(lm.parameters()).device
    lm.load_state_dict({k: v.to(device) for k, v in tensors.items()}, strict=False)
    return config


@torch.no_grad()
def merged_state_dict(model: nn.Module) -> tp.Dict[str, torch.Tensor]:
    """The plain LM state dict with every adapter folded in (fp32 math), without changing the model."""
    lm = get_lm(model)
    state = {k: v.detach().clone() for k, v in base_state_dict(lm).items()}
    for name, adapter, weight, rows in _adapted_slots(lm):  # stacked adapters too, each at its scale
        key = f"{name}.{weight}" if name else weight
        if not adapter.merged:
            state[key][rows] = (state[key][rows].float() + adapter.delta_weight().to(state[key].device)
                                ).to(state[key].dtype)
    for key, value in state.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ValueError(f"merging LoRA produced non-finite values in {key} (the adapter diverged)")
    return state


__all__ = ["save_adapter", "load_adapter", "read_adapter_config", "merged_state_dict",
           "AdapterMismatchError", "CONFIG_NAME", "WEIGHTS_NAME", "LORA_KEY"]
