"""genrecraft adapters <-> peft LoRA adapters on transformers' MusicGen.

A genrecraft adapter names audiocraft modules (``transformer.layers.3.self_attn.lora.q.lora_A``: the q slice of
the packed ``in_proj_weight``); peft names the modules of ``MusicgenForConditionalGeneration``
(``base_model.model.decoder.model.decoder.layers.3.self_attn.q_proj.lora_A.weight``). The module names are
mapped by :mod:`genrecraft.hf` (the one table of audiocraft <-> transformers names); the tensors themselves are
the same: both compute ``x + scaling * B A dropout(x)`` with ``A`` [r, in], ``B`` [out, r], ``scaling = alpha / r``
(``alpha / sqrt(r)`` with rsLoRA), and for embeddings ``A`` [r, num], ``B`` [dim, r].

- :func:`export_peft`: genrecraft adapter folder -> peft adapter folder (``adapter_config.json`` written by peft's
  own ``LoraConfig`` + ``adapter_model.safetensors``) that ``PeftModel.from_pretrained(musicgen, folder)`` applies.
- :func:`import_peft`: peft adapter folder -> genrecraft adapter folder for a given audiocraft base model.
"""

from __future__ import annotations

import json
import re
import typing as tp
from pathlib import Path

import torch

from genrecraft.core import hf_names, paths
from genrecraft.core.atomic import atomic_path

from .config import ALL_TARGETS, LoraConfig
from .inject import adapter_state_dict, get_lm, has_lora, inject, remove
from .io import CONFIG_NAME, WEIGHTS_NAME, read_adapter_config, save_adapter

PEFT_PREFIX = "base_model.model."  # peft's prefix for the wrapped model's modules in saved adapters
COMPOSITE_PREFIX = "decoder."  # MusicgenForConditionalGeneration's decoder (a MusicgenForCausalLM)
_GENRECRAFT_KEY = re.compile(r"(?P<host>.+)\.lora\.(?P<slot>q|k|v|weight)\.(?P<param>lora_A|lora_B)")
_PEFT_SUFFIXES = {".lora_A.weight": "lora_A", ".lora_B.weight": "lora_B",
                  ".lora_embedding_A": "lora_A", ".lora_embedding_B": "lora_B"}


def _target_of(lm_module: str, segment: tp.Optional[str]) -> tp.Tuple[str, tp.Optional[int]]:
    """genrecraft target name and layer index of an audiocraft module (``transformer.layers.3.linear1``)."""
    match = re.fullmatch(r"transformer\.layers\.(\d+)\.(self_attn|cross_attention)(\.out_proj)?", lm_module)
    if match:
        return f"{match.group(2)}.{'out' if match.group(3) else segment}", int(match.group(1))
    match = re.fullmatch(r"transformer\.layers\.(\d+)\.(linear1|linear2)", lm_module)
    if match:
        return match.group(2), int(match.group(1))
    match = re.fullmatch(r"(emb|linears)\.\d+", lm_module)
    if match:
        return match.group(1), None
    raise KeyError(lm_module)


def _target_regex(modules: tp.Iterable[str]) -> str:
    """A regex that fullmatches exactly ``modules`` (module names inside MusicgenForConditionalGeneration)."""
    return "|".join(re.escape(m) for m in sorted(modules))


def export_peft(adapter_dir: tp.Union[str, Path], out_dir: tp.Union[str, Path],
                base_model_name_or_path: tp.Optional[str] = None) -> Path:
    """Write a genrecraft adapter as a peft LoRA adapter for transformers' ``MusicgenForConditionalGeneration``.

    ``base_model_name_or_path`` goes into peft's config (default: the adapter's ``base_model_id``); it should
    name the transformers export of the adapter's base (``python -m genrecraft.export BASE --format
    transformers``). Returns ``out_dir``.
    """
    import peft
    from safetensors.torch import load_file, save_file


    meta = read_adapter_config(adapter_dir)
    config = LoraConfig.from_dict(meta["lora"])
    tensors = load_file(str(Path(adapter_dir) / WEIGHTS_NAME))
    out: tp.Dict[str, torch.Tensor] = {}
    modules = set()
    for key, value in tensors.items():
        match = _GENRECRAFT_KEY.fullmatch(key)
        if match is None:
            raise ValueError(f"{Path(adapter_dir) / WEIGHTS_NAME}: unexpected tensor {key!r}")
        host, slot, param = match["host"], match["slot"], match["param"]
        module = COMPOSITE_PREFIX + hf_names.lm_module_to_hf(host, None if slot == "weight" else slot)
        modules.add(module)
        if re.fullmatch(r"emb\.\d+", host):
            name = f"{PEFT_PREFIX}{module}.lora_embedding_{param[-1]}"
        else:
            name = f"{PEFT_PREFIX}{module}.{param}.weight"
        out[name] = value.contiguous()
    if base_model_name_or_path is None:
        base_model_name_or_path = str(meta.get("base_model_id") or "")
        for prefix in (paths.PRETRAINED, "hf:"):  # genrecraft's spec prefixes; peft wants a hub id or a folder
            if base_model_name_or_path.startswith(prefix):
                base_model_name_or_path = base_model_name_or_path[len(prefix):]
    peft_config = peft.LoraConfig(
        r=config.r, lora_alpha=config.alpha, lora_dropout=config.dropout, use_rslora=config.rslora, bias="none",
        target_modules=_target_regex(modules),
        base_model_name_or_path=base_model_name_or_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "adapter_model.safetensors") as tmp:
        save_file(out, str(tmp), metadata={"format": "pt"})
    peft_config.save_pretrained(str(out_dir))
    return out_dir


def read_peft_adapter(folder: tp.Union[str, Path]) -> tp.Tuple[LoraConfig, tp.Dict[str, torch.Tensor]]:
    """A peft LoRA adapter for transformers' MusicGen as ``(genrecraft LoraConfig, genrecraft-keyed tensors)``.

    Raises ``ValueError`` naming the file for what genrecraft's LoRA cannot represent: other peft methods, DoRA,
    trained biases, per-module ranks, adapters on the text or audio encoder, or different layers per target.
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_NAME, folder / "adapter_model.safetensors"
    if not config_path.is_file() or not weights_path.is_file():
        bin_path = folder / "adapter_model.bin"
        raise FileNotFoundError(
            f"{folder} is not a peft adapter folder: it needs {CONFIG_NAME} and adapter_model.safetensors"
            + (" (adapter_model.bin found: re-save it with PeftModel.save_pretrained(..., safe_serialization=True))"
               if bin_path.exists() else " (written by PeftModel.save_pretrained)"))
    meta = json.loads(config_path.read_text())
    if meta.get("peft_type") != "LORA":
        raise ValueError(f"{config_path}: peft_type {meta.get('peft_type')!r}; only LORA adapters can be imported")
    for key, ok in (("use_dora", lambda v: not v), ("bias", lambda v: v in (None, "none")),
                    ("rank_pattern", lambda v: not v), ("alpha_pattern", lambda v: not v),
                    ("fan_in_fan_out", lambda v: not v)):
        if not ok(meta.get(key)):
            raise ValueError(f"{config_path}: {key}={meta.get(key)!r} is not supported by genrecraft's LoRA; "
                             "train with plain LoRA (one r and lora_alpha for all modules, bias='none')")
    tensors = load_file(str(weights_path))
    out: tp.Dict[str, torch.Tensor] = {}
    layers_of: tp.Dict[str, tp.Set[tp.Optional[int]]] = {}
    rank = None
    for key, value in tensors.items():
        suffix = next((s for s in _PEFT_SUFFIXES if key.endswith(s)), None)
        if suffix is None or not key.startswith(PEFT_PREFIX):
            raise ValueError(f"{weights_path}: unexpected tensor {key!r} (not a peft LoRA A/B matrix)")
        module = key[len(PEFT_PREFIX):-len(suffix)]
        if module.startswith(("text_encoder.", "audio_encoder.", "enc_to_dec_proj")):
            raise ValueError(f"{weights_path}: {key!r} adapts the text/audio encoder; genrecraft adapts the "
                             "decoder (the LM) only")
        if module.startswith(COMPOSITE_PREFIX):
            module = module[len(COMPOSITE_PREFIX):]  # adapters made on MusicgenForCausalLM have no prefix
        try:
            lm_module, segment = hf_names.hf_module_to_lm(module)
            target, layer = _target_of(lm_module, segment)
        except KeyError:
            raise ValueError(f"{weights_path}: {key!r} adapts a module genrecraft's LoRA cannot reach (it covers "
                             "q/k/v/out_proj of self_attn and encoder_attn, fc1, fc2, embed_tokens, lm_heads)") \
                from None
        param = _PEFT_SUFFIXES[suffix]
        r = value.shape[0] if param == "lora_A" else value.shape[1]
        if rank is not None and r != rank:
            raise ValueError(f"{weights_path}: ranks differ between modules ({rank} and {r})")
        rank = r
        host, slot = (lm_module, segment) if segment else (lm_module, "weight")
        out[f"{host}.lora.{slot}.{param}"] = value
        layers_of.setdefault(target, set()).add(layer)
    if not out:
        raise ValueError(f"{weights_path} holds no LoRA tensors")
    layer_sets = {t: s for t, s in layers_of.items() if s != {None}}
    distinct = {tuple(sorted(s)) for s in layer_sets.values()}  # type: ignore[arg-type]
    if len(distinct) > 1:
        per_target = {t: sorted(s) for t, s in layer_sets.items()}  # type: ignore[type-var]
        raise ValueError(f"{weights_path}: targets adapt different layers ({per_target}); genrecraft's LoRA "
                         "adapts the same layers for every target")
    layers = distinct.pop() if distinct else None
    if int(meta.get("r", rank)) != rank:
        raise ValueError(f"{config_path}: r={meta.get('r')} but the tensors have rank {rank}")

    config = LoraConfig(r=int(rank), alpha=float(meta.get("lora_alpha", rank)),
                        dropout=float(meta.get("lora_dropout") or 0.0),
                        targets=tuple(t for t in ALL_TARGETS if t in layers_of), layers=layers,
                        rslora=bool(meta.get("use_rslora", False)))
    return config, out


def import_peft(peft_dir: tp.Union[str, Path], model: torch.nn.Module, out_dir: tp.Union[str, Path],
                base_model_id: str = "unknown") -> Path:
    """Turn a peft LoRA adapter (trained on transformers' MusicGen) into a genrecraft adapter folder.

    ``model`` is the audiocraft MusicGen (or LM) of the same base (e.g. ``load_model("hf:facebook/musicgen-small")``);
    the adapter is loaded onto it (injecting LoRA; any adapters it had are replaced) and saved with
    :func:`lora.save_adapter`, which records the base's fingerprint. Returns ``out_dir``.
    """

    config, tensors = read_peft_adapter(peft_dir)
    lm = get_lm(model)
    if has_lora(lm):
        remove(lm)
    n_layers = len(lm.transformer.layers)
    if config.layers is not None and list(config.layers) == list(range(n_layers)):
        config.layers = None
    inject(lm, config)
    expected = adapter_state_dict(lm)
    if set(tensors) != set(expected):
        missing, extra = sorted(set(expected) - set(tensors))[:4], sorted(set(tensors) - set(expected))[:4]
        raise ValueError(f"peft adapter {peft_dir} does not fit this model: missing {missing}, extra {extra}")
    for key, value in tensors.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ValueError(f"peft adapter {peft_dir}: {key} has shape {tuple(value.shape)}, this model needs "
                             f"{tuple(expected[key].shape)}: load the base the adapter was trained on")
    device = next(lm.parameters()).device
    lm.load_state_dict({k: v.to(device) for k, v in tensors.items()}, strict=False)
    return save_adapter(lm, out_dir, base_model_id=base_model_id)


__all__ = ["export_peft", "import_peft", "read_peft_adapter"]
