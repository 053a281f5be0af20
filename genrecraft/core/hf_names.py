"""Parameter and module names of audiocraft's MusicGen LM and of transformers' MusicGen, both ways.

Pure name and tensor-layout mapping, no model code: :mod:`genrecraft.hf` converts whole models with it and
:mod:`lora.peft_format` converts adapters. The mapping itself is documented in :mod:`genrecraft.hf`.
"""

from __future__ import annotations

import re
import typing as tp

DESCRIPTION_PROJ = "condition_provider.conditioners.description.output_proj"
SEGMENTS = ("q", "k", "v")

# Module paths, audiocraft -> transformers (relative to MusicgenForCausalLM). One rule per kind of module; each
# regex matches a whole module path, and the template takes its groups. Both directions are derived from this table.
_MODULE_RULES: tp.Tuple[tp.Tuple[str, str], ...] = (
    (r"emb\.(\d+)", "model.decoder.embed_tokens.{0}"),
    (r"transformer\.layers\.(\d+)\.self_attn\.out_proj", "model.decoder.layers.{0}.self_attn.out_proj"),
    (r"transformer\.layers\.(\d+)\.cross_attention\.out_proj", "model.decoder.layers.{0}.encoder_attn.out_proj"),
    (r"transformer\.layers\.(\d+)\.linear1", "model.decoder.layers.{0}.fc1"),
    (r"transformer\.layers\.(\d+)\.linear2", "model.decoder.layers.{0}.fc2"),
    (r"transformer\.layers\.(\d+)\.norm1", "model.decoder.layers.{0}.self_attn_layer_norm"),
    (r"transformer\.layers\.(\d+)\.norm_cross", "model.decoder.layers.{0}.encoder_attn_layer_norm"),
    (r"transformer\.layers\.(\d+)\.norm2", "model.decoder.layers.{0}.final_layer_norm"),
    (r"out_norm", "model.decoder.layer_norm"),
    (r"linears\.(\d+)", "lm_heads.{0}"),
)
# The packed q/k/v of audiocraft's attention: one parameter, three transformers modules.
_PACKED_RULES: tp.Tuple[tp.Tuple[str, str], ...] = (
    (r"transformer\.layers\.(\d+)\.self_attn", "model.decoder.layers.{0}.self_attn.{1}_proj"),
    (r"transformer\.layers\.(\d+)\.cross_attention", "model.decoder.layers.{0}.encoder_attn.{1}_proj"),
)


def _template_regex(template: str) -> str:
    parts = re.split(r"(\{\d\})", template)
    return "".join(r"(\d+)" if p == "{0}" else r"([qkv])" if p == "{1}" else re.escape(p) for p in parts)


def lm_module_to_hf(path: str, segment: tp.Optional[str] = None) -> str:
    """The transformers module (relative to ``MusicgenForCausalLM``) for an audiocraft LM module path.

    ``segment`` (``q``, ``k`` or ``v``) picks one projection of a packed attention (``...self_attn``,
    ``...cross_attention``). Raises ``KeyError`` for a module transformers' MusicGen has no counterpart of.
    """
    rules = _PACKED_RULES if segment is not None else _MODULE_RULES
    for pattern, template in rules:
        match = re.fullmatch(pattern, path)
        if match:
            return template.format(*match.groups(), segment)
    raise KeyError(path)


def hf_module_to_lm(path: str) -> tp.Tuple[str, tp.Optional[str]]:
    """Inverse of :func:`lm_module_to_hf`: ``(audiocraft module path, segment or None)``."""
    for pattern, template in _PACKED_RULES:
        match = re.fullmatch(_template_regex(template), path)
        if match:
            layer, segment = match.groups()
            return pattern.replace(r"(\d+)", layer).replace("\\", ""), segment
    for pattern, template in _MODULE_RULES:
        match = re.fullmatch(_template_regex(template), path)
        if match:
            out = pattern
            for group in match.groups():
                out = out.replace(r"(\d+)", group, 1)
            return out.replace("\\", ""), None
    raise KeyError(path)


def lm_state_to_hf(state: tp.Mapping[str, tp.Any]) -> tp.Tuple[tp.Dict[str, tp.Any], tp.Dict[str, tp.Any]]:
    """Split an audiocraft LM state dict into ``(decoder state, enc_to_dec_proj state)`` in transformers' names.

    The decoder state loads into ``MusicgenForCausalLM``; the second into the composite model's
    ``enc_to_dec_proj``. Raises ``ValueError`` naming any tensor transformers' MusicGen has no place for.
    """
    decoder: tp.Dict[str, tp.Any] = {}
    proj: tp.Dict[str, tp.Any] = {}
    unknown = []
    for key, value in state.items():
        if key.startswith(DESCRIPTION_PROJ + "."):
            proj[key[len(DESCRIPTION_PROJ) + 1:]] = value
            continue
        module, _, param = key.rpartition(".")
        if param == "in_proj_weight":
            dim = value.shape[0] // 3
            for i, segment in enumerate(SEGMENTS):
                decoder[lm_module_to_hf(module, segment) + ".weight"] = value[i * dim:(i + 1) * dim]
            continue
        try:
            decoder[f"{lm_module_to_hf(module)}.{param}"] = value
        except KeyError:
            unknown.append(key)
    if unknown:
        raise ValueError(f"transformers' MusicGen has no counterpart for these LM tensors: {unknown[:6]}"
                         f"{' ...' if len(unknown) > 6 else ''} (layer scales, biases on attention or a "
                         "non-T5 conditioner are not part of its architecture)")
    return decoder, proj


def hf_state_to_lm(decoder: tp.Mapping[str, tp.Any], proj: tp.Mapping[str, tp.Any]) -> tp.Dict[str, tp.Any]:
    """Inverse of :func:`lm_state_to_hf`: the audiocraft LM state dict (packed q/k/v concatenated again)."""
    import torch

    state: tp.Dict[str, tp.Any] = {}
    packed: tp.Dict[str, tp.Dict[str, tp.Any]] = {}
    unknown = []
    for key, value in decoder.items():
        module, _, param = key.rpartition(".")
        if module.endswith("embed_positions") or key.endswith("embed_positions.weights"):
            continue  # transformers' sinusoidal table: a buffer, computed, not learned
        try:
            lm_module, segment = hf_module_to_lm(module)
        except KeyError:
            unknown.append(key)
            continue
        if segment is None:
            state[f"{lm_module}.{param}"] = value
        else:
            packed.setdefault(lm_module, {})[segment] = value
    if unknown:
        raise ValueError(f"these MusicGen decoder tensors have no counterpart in audiocraft's LM: {unknown[:6]}")
    for module, parts in packed.items():
        if set(parts) != set(SEGMENTS):
            raise ValueError(f"{module}: transformers state has {sorted(parts)} of q/k/v, needs all three")
        state[f"{module}.in_proj_weight"] = torch.cat([parts[s] for s in SEGMENTS], dim=0)
    for param, value in proj.items():
        state[f"{DESCRIPTION_PROJ}.{param}"] = value
    return state


# audiocraft's EnCodec (SEANet encoder/decoder + residual VQ) -> transformers' EncodecModel: the same modules in the
# same order, renamed; weight-normed convolutions store (g, v) as torch's weight_norm parametrization.
_ENCODEC_RENAMES: tp.Tuple[tp.Tuple[str, str], ...] = (
    (r"^(encoder|decoder)\.model\.", r"\1.layers."),
    (r"\.conv\.conv\.", ".conv."),
    (r"\.convtr\.convtr\.", ".conv."),
    (r"\.weight_g$", ".parametrizations.weight.original0"),
    (r"\.weight_v$", ".parametrizations.weight.original1"),
    (r"^quantizer\.vq\.layers\.(\d+)\._codebook\.", r"quantizer.layers.\1.codebook."),
)


def encodec_state_to_hf(state: tp.Mapping[str, tp.Any]) -> tp.Dict[str, tp.Any]:
    """An audiocraft ``EncodecModel``'s state dict under transformers' ``EncodecModel`` names."""
    out = {}
    for key, value in state.items():
        for pattern, replacement in _ENCODEC_RENAMES:
            key = re.sub(pattern, replacement, key)
        out[key] = value
    return out
