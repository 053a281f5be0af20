"""Bridge to Hugging Face transformers' MusicGen (``MusicgenForConditionalGeneration``).

This module is the one place where audiocraft's parameter names meet transformers'. Everything else (the
transformers export, the ``hf:`` model spec, peft adapters in :mod:`lora.peft_format`) goes through
:func:`lm_state_to_hf`, :func:`hf_state_to_lm` and :func:`lm_module_to_hf` / :func:`hf_module_to_lm`.

audiocraft's LM (``LMModel``) and transformers' decoder (``MusicgenForCausalLM``, held as ``decoder`` by
``MusicgenForConditionalGeneration``) compute the same function with these names:

- ``emb.{k}`` (codebook k's embedding, card + 1 rows) -> ``model.decoder.embed_tokens.{k}``;
- ``transformer.layers.{i}.self_attn.in_proj_weight`` [3*dim, dim] -> ``model.decoder.layers.{i}.self_attn.q_proj``,
  ``k_proj``, ``v_proj`` (rows ``[:dim]``, ``[dim:2*dim]``, ``[2*dim:]``); ``...self_attn.out_proj`` -> the same name;
- ``transformer.layers.{i}.cross_attention.*`` -> ``model.decoder.layers.{i}.encoder_attn.*`` (same split);
- ``transformer.layers.{i}.linear1`` / ``linear2`` -> ``model.decoder.layers.{i}.fc1`` / ``fc2``;
- ``transformer.layers.{i}.norm1`` / ``norm_cross`` / ``norm2`` -> ``model.decoder.layers.{i}.self_attn_layer_norm``
  / ``encoder_attn_layer_norm`` / ``final_layer_norm``;
- ``out_norm`` -> ``model.decoder.layer_norm``; ``linears.{k}`` (codebook k's output head) -> ``lm_heads.{k}``;
- ``condition_provider.conditioners.description.output_proj`` -> ``enc_to_dec_proj`` of the composite model.

The text encoder (T5) and the audio codec (EnCodec) are not part of the LM's state dict: the export takes them
from the loaded model (the T5 the conditioner runs, the codec MusicGen decodes with); a codec in audiocraft's own
format is converted to transformers' ``EncodecModel`` (:func:`encodec_to_transformers`: renamed, as transformers' own
conversion script makes ``facebook/encodec_32khz``, and checked to decode alike), so no download is needed.

One difference between the two libraries remains, whatever the weights: in a batch of descriptions of different
lengths audiocraft's cross-attention sees the padded positions (zero vectors) where transformers masks them, so
padded items get slightly different logits. Unpadded descriptions give the same logits (tests/test_hf.py).
"""

from __future__ import annotations

import copy
import json
import logging
import typing as tp
from pathlib import Path

import numpy as np

import lora
from lora.inject import get_lm

from . import __version__
from .builders import build_lm, compose
from .core import compat
from .core.atomic import write_json
from .core.hf_names import hf_state_to_lm, lm_state_to_hf

DEFAULT_AUDIO_ENCODER = "facebook/encodec_32khz"
logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------------------------
# Configs


def check_exportable(cfg: tp.Any) -> None:
    """Raise ``ValueError`` (naming the config field) if an LM config has a feature transformers' MusicGen lacks."""
    lm = cfg.transformer_lm
    wanted = {"positional_embedding": "sin", "norm": "layer_norm", "norm_first": True, "layer_scale": None,
              "bias_ff": False, "bias_attn": False, "bias_proj": False, "qk_layer_norm": False,
              "qk_layer_norm_cross": False, "kv_repeat": 1, "activation": "gelu", "causal": True}
    for key, value in wanted.items():
        found = lm.get(key, value)
        if found != value:
            raise ValueError(f"transformer_lm.{key}={found!r}: transformers' MusicGen needs {value!r}; this model "
                             "cannot be exported to transformers")
    if float(lm.get("max_period", 10000)) != 10000 or float(lm.get("positional_scale", 1.0)) != 1.0:
        raise ValueError("transformer_lm.max_period/positional_scale differ from 10000/1.0: transformers' MusicGen "
                         "has a fixed sinusoidal embedding")
    fuser = cfg.fuser
    if list(fuser.get("cross", [])) != ["description"] or list(fuser.get("prepend", [])) or list(fuser.get("sum", [])):
        raise ValueError(f"fuser {dict(fuser)}: transformers' MusicGen conditions on the description through "
                         "cross-attention only (fuser.cross=[description])")
    if cfg.codebooks_pattern.modeling != "delay" or list(cfg.codebooks_pattern.delay.delays) != list(range(lm.n_q)):
        raise ValueError("codebooks_pattern: transformers' MusicGen uses the delay pattern with delays 0..n_q-1")
    if int(cfg.get("channels", 1)) != 1:
        raise ValueError(f"channels={cfg.channels}: only mono MusicGen is exported (stereo interleaves codebooks)")


def decoder_config(lm: tp.Any):
    """transformers' ``MusicgenDecoderConfig`` for an audiocraft ``LMModel``."""
    from transformers import MusicgenDecoderConfig

    layer = lm.transformer.layers[0]
    return MusicgenDecoderConfig(
        vocab_size=int(lm.card), max_position_embeddings=2048, num_hidden_layers=len(lm.transformer.layers),
        ffn_dim=int(layer.linear1.out_features), num_attention_heads=int(layer.self_attn.num_heads),
        hidden_size=int(lm.dim), num_codebooks=int(lm.n_q), audio_channels=1, activation_function="gelu",
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, layerdrop=0.0, scale_embedding=False,
        tie_word_embeddings=False, pad_token_id=int(lm.card), bos_token_id=int(lm.card), eos_token_id=None)


def lm_overrides(dec_cfg: tp.Any, t5_name: str, device: str = "cpu") -> tp.List[str]:
    """Hydra overrides that build the audiocraft LM matching a transformers ``MusicgenDecoderConfig``."""
    if int(getattr(dec_cfg, "audio_channels", 1)) != 1:
        raise ValueError(f"audio_channels={dec_cfg.audio_channels}: only mono MusicGen models can be imported")
    if dec_cfg.ffn_dim % dec_cfg.hidden_size:
        raise ValueError(f"ffn_dim={dec_cfg.ffn_dim} is not a multiple of hidden_size={dec_cfg.hidden_size}")
    n_q = int(dec_cfg.num_codebooks)
    return ["solver=musicgen/musicgen_base_32khz", "model/lm/model_scale=small", f"device={device}",
            f"transformer_lm.dim={dec_cfg.hidden_size}", f"transformer_lm.num_heads={dec_cfg.num_attention_heads}",
            f"transformer_lm.num_layers={dec_cfg.num_hidden_layers}",
            f"transformer_lm.hidden_scale={dec_cfg.ffn_dim // dec_cfg.hidden_size}",
            f"transformer_lm.n_q={n_q}", f"transformer_lm.card={dec_cfg.vocab_size}",
            f"codebooks_pattern.delay.delays=[{','.join(str(i) for i in range(n_q))}]",
            f"conditioners.description.t5.name={t5_name}", "logging.log_tensorboard=false"]


def t5_conditioner(t5: tp.Any, tokenizer: tp.Any, output_dim: int, name: str = "t5-base", device: str = "cpu",
                   word_dropout: float = 0.0):
    """audiocraft's ``T5Conditioner`` around a T5 encoder and tokenizer already in memory.

    audiocraft's constructor downloads T5 by name (and only accepts the public names and their widths); this
    builds the same object from given modules, so that a transformers checkpoint's own text encoder (or a tiny
    test T5) is the one that conditions the LM. Its ``output_proj`` is fresh: load the LM state dict after.
    """
    compat.apply()
    from audiocraft.modules.conditioners import T5Conditioner, TextConditioner
    from audiocraft.utils.autocast import TorchAutocast

    cond = T5Conditioner.__new__(T5Conditioner)
    TextConditioner.__init__(cond, int(t5.config.d_model), output_dim)
    cond.device = device
    cond.name = name
    cond.finetune = False
    cond.word_dropout = word_dropout
    cond.autocast = TorchAutocast(enabled=False)
    cond.t5_tokenizer = tokenizer
    cond.__dict__["t5"] = t5.to(device).eval()  # as audiocraft does: kept out of the LM's state dict
    cond.normalize_text = False
    return cond.to(device)


def build_lm_with_t5(cfg: tp.Any, t5: tp.Any, tokenizer: tp.Any, seed: tp.Optional[int] = None):
    """Build the LM that ``cfg`` describes (a T5 description conditioner) around a T5 and tokenizer in memory.

    audiocraft would download T5 by ``conditioners.description.t5.name``; here the LM is built with a two-entry
    lookup table in its place, which is then swapped for :func:`t5_conditioner`. ``lm.cfg`` is ``cfg``.
    """
    from omegaconf import OmegaConf

    build_cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    build_cfg.conditioners.description = OmegaConf.create(
        {"model": "lut", "lut": {"n_bins": 2, "dim": 8, "tokenizer": "noop"}})
    lm = build_lm(build_cfg, seed=seed)
    t5_cfg = cfg.conditioners.description.t5
    lm.condition_provider.conditioners["description"] = t5_conditioner(
        t5, tokenizer, int(lm.dim), name=str(t5_cfg.name), device=str(cfg.device),
        word_dropout=float(t5_cfg.get("word_dropout", 0.0)))
    lm.cfg = cfg
    return lm.eval()


def _t5_name(text_config: tp.Any) -> str:
    """The audiocraft T5 name for a text encoder config (what ``xp.cfg`` records so audiocraft can rebuild it)."""
    from audiocraft.modules.conditioners import T5Conditioner

    name = str(getattr(text_config, "_name_or_path", "") or "")
    for candidate in (name, name.split("/")[-1], f"google/{name.split('/')[-1]}"):
        if candidate in T5Conditioner.MODELS:
            return candidate
    by_dim = {512: "t5-small", 768: "t5-base", 1024: "t5-large"}
    return by_dim.get(int(text_config.d_model), "t5-base")


# ----------------------------------------------------------------------------------------------------------------
# Export: audiocraft MusicGen -> transformers folder


def _description_conditioner(lm: tp.Any):
    from audiocraft.modules.conditioners import T5Conditioner

    conditioners = lm.condition_provider.conditioners
    cond = conditioners["description"] if "description" in conditioners else None
    if not isinstance(cond, T5Conditioner):
        kind = type(cond).__name__ if cond is not None else "none"
        raise ValueError(f"this model's text conditioner is {kind}, not T5: transformers' MusicGen encodes the "
                         "description with T5 (conditioners.description.model=t5). genrecraft's tiny test models "
                         "use a lookup table and cannot be exported to transformers.")
    return cond


def audio_encoder_for(model: tp.Any, audio_encoder: tp.Optional[str] = None):
    """transformers' ``EncodecModel`` for a MusicGen's codec.

    A codec that already is transformers' EnCodec (audiocraft's ``HFEncodecCompressionModel``, what
    ``//pretrained/facebook/encodec_32khz`` gives) is used as is, one in audiocraft's format is converted
    (:func:`encodec_to_transformers`). ``audio_encoder`` (a hub id or folder) replaces either; a codec that cannot
    be converted falls back to ``facebook/encodec_32khz``, the codec Meta's MusicGen checkpoints are built from.
    """
    from audiocraft.models.encodec import HFEncodecCompressionModel
    from transformers import EncodecModel

    codec = model.compression_model
    if audio_encoder is None and isinstance(codec, HFEncodecCompressionModel):
        return codec.model
    if audio_encoder is None:
        try:
            return encodec_to_transformers(codec)  # the model's own codec: the same weights, nothing to download
        except ValueError as exc:
            logger.info("the model's codec cannot be converted (%s): loading %s", exc, DEFAULT_AUDIO_ENCODER)
    name = audio_encoder or DEFAULT_AUDIO_ENCODER
    try:
        encoder = EncodecModel.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"could not load the audio encoder {name!r} in transformers' format: {exc}. This model's codec is in "
            "audiocraft's format; pass --audio-encoder with a transformers EnCodec folder or hub id that is cached "
            "(HF_HUB_OFFLINE=1) or reachable.") from exc
    _check_codec(encoder, model.lm, name)
    return encoder


def encodec_to_transformers(codec: tp.Any, atol: float = 1e-4) -> tp.Any:
    """transformers' ``EncodecModel`` with the weights of an audiocraft ``EncodecModel`` (MusicGen's
    ``compression_state_dict.bin``: what transformers' own conversion script makes of it, e.g.
    ``facebook/encodec_32khz``). Checked before it is returned: both decode the same random codes to the same audio
    (to ``atol``, 0.25 s away from the edges, where transformers pads by reflection and audiocraft with zeros: there
    the two differ, as they do for Meta's own codec and transformers' conversion of it). Raises
    ``ValueError`` for a codec of another kind or layout."""
    import torch
    from audiocraft.models.encodec import EncodecModel as AudiocraftEncodec
    from transformers import EncodecConfig, EncodecModel

    from .core.hf_names import encodec_state_to_hf

    if not isinstance(codec, AudiocraftEncodec):
        raise ValueError(f"the codec is a {type(codec).__name__}, not audiocraft's EnCodec")
    encoder, quantizer = codec.encoder, codec.quantizer
    bits = codec.num_codebooks * float(np.log2(codec.cardinality)) * codec.frame_rate / 1000.0
    config = EncodecConfig(
        sampling_rate=int(codec.sample_rate), audio_channels=int(codec.channels), hidden_size=int(encoder.dimension),
        codebook_dim=int(encoder.dimension), num_filters=int(encoder.n_filters),
        num_residual_layers=int(encoder.n_residual_layers), upsampling_ratios=list(codec.decoder.ratios),
        codebook_size=int(codec.cardinality), target_bandwidths=[float(round(bits, 4))], use_causal_conv=False,
        normalize=False, use_conv_shortcut=False)
    if getattr(codec, "causal", False) or getattr(codec, "renormalize", False):
        raise ValueError("a causal or renormalizing EnCodec has no transformers twin here")
    hf_codec = EncodecModel(config).eval()
    state = encodec_state_to_hf({k: v.detach().cpu().float().clone() for k, v in codec.state_dict().items()})
    target = hf_codec.state_dict()
    if set(state) != set(target) or any(state[k].shape != target[k].shape for k in state):
        raise ValueError(f"its layout differs from transformers' EnCodec ({len(set(state) ^ set(target))} names "
                         "differ or shapes do)")
    hf_codec.load_state_dict(state, strict=True)
    frames = 2 * int(codec.frame_rate)  # two seconds of codes
    codes = torch.randint(0, int(codec.cardinality), (1, codec.num_codebooks, frames),
                          generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = codec.decode(codes.to(next(codec.parameters()).device)).float().cpu()  # (weight_norm: no deepcopy)
        theirs = hf_codec.decode(codes[None], [None]).audio_values
    edge = int(codec.sample_rate) // 4  # the padding's effect lasts a few thousand samples (the decoder's LSTM)
    diff = float((ours[..., edge:-edge] - theirs[..., edge:-edge]).abs().max())
    if not diff <= atol:
        raise ValueError(f"the converted codec decodes differently ({diff:.1e} > {atol:g})")
    return hf_codec


def _check_codec(encoder: tp.Any, lm: tp.Any, name: str) -> None:
    cfg = encoder.config
    if int(cfg.codebook_size) != int(lm.card):
        raise ValueError(f"audio encoder {name!r} has codebooks of {cfg.codebook_size} entries, the LM predicts "
                         f"{lm.card}: pass the codec this MusicGen was trained with (--audio-encoder)")


def model_card(info: tp.Mapping[str, tp.Any]) -> str:
    """README.md for the hub: YAML front matter (license, base_model, library_name, tags) and a short text.

    ``info`` keys (all optional): ``base_model`` (hub id), ``license`` (default ``cc-by-nc-4.0``, Meta's MusicGen
    weights' licence), ``name``, ``source`` (the genrecraft spec exported), ``dataset_summary`` and ``eval_table``
    (markdown), ``lora`` (the merged adapter's config), ``tags``.
    """
    license_id = info.get("license") or "cc-by-nc-4.0"
    tags = ["musicgen", "text-to-audio", "music", "genrecraft", *info.get("tags", [])]
    lines = ["---", f"license: {license_id}", "library_name: transformers", "pipeline_tag: text-to-audio"]
    if info.get("base_model"):
        lines.append(f"base_model: {info['base_model']}")
    lines.append("tags:")
    lines += [f"- {t}" for t in dict.fromkeys(tags)]
    lines += ["---", "", f"# {info.get('name') or 'MusicGen fine-tuned with genrecraft'}", ""]
    base = info.get("base_model") or "a MusicGen checkpoint"
    lines.append(f"A MusicGen fine-tuned from `{base}` with genrecraft and exported to "
                 "transformers' `MusicgenForConditionalGeneration`. The decoder holds the fine-tuned weights"
                 + (" (a LoRA adapter merged in)" if info.get("lora") else "")
                 + "; the T5 text encoder and the EnCodec audio codec are the base model's.")
    if info.get("source"):
        lines += ["", f"Exported from `{info['source']}`."]
    lines += ["", "## Use", "", "```python",
              "from transformers import AutoProcessor, MusicgenForConditionalGeneration",
              "processor = AutoProcessor.from_pretrained(REPO)",
              "model = MusicgenForConditionalGeneration.from_pretrained(REPO)",
              "inputs = processor(text=[\"an upbeat J-pop song\"], padding=True, return_tensors=\"pt\")",
              "audio = model.generate(**inputs, max_new_tokens=256)  # [batch, 1, samples] at "
              "model.config.audio_encoder.sampling_rate", "```"]
    if info.get("dataset_summary"):
        lines += ["", "## Training data", "", str(info["dataset_summary"]).strip()]
    if info.get("eval_table"):
        lines += ["", "## Evaluation", "", str(info["eval_table"]).strip()]
    if info.get("lora"):
        lines += ["", "## LoRA", "", f"Merged adapter: `{json.dumps(info['lora'])}`"]
    lines += ["", "## Licence", "",
              f"`{license_id}`, inherited from the base weights (Meta's MusicGen weights are CC-BY-NC 4.0: no "
              "commercial use)."]
    return "\n".join(lines) + "\n"


def to_transformers_model(model: tp.Any, audio_encoder: tp.Optional[str] = None):
    """Build ``(MusicgenForConditionalGeneration, MusicgenProcessor)`` from an audiocraft ``MusicGen``.

    The decoder gets the LM's weights (LoRA adapters merged, the model itself untouched); the text encoder is the
    T5 the LM's conditioner runs and the tokenizer its tokenizer; the audio encoder see :func:`audio_encoder_for`.
    """
    compat.apply()
    from transformers import (EncodecFeatureExtractor, MusicgenForCausalLM, MusicgenForConditionalGeneration,
                              MusicgenProcessor)

    lm = get_lm(model)
    cfg = getattr(lm, "cfg", None)
    if cfg is not None:
        check_exportable(cfg)
    cond = _description_conditioner(lm)
    state = lora.merged_state_dict(lm) if lora.has_lora(lm) else lm.state_dict()
    state = {k: v.detach().to("cpu").float().contiguous() for k, v in state.items()}
    dec_state, proj_state = lm_state_to_hf(state)
    dec_cfg = decoder_config(lm)
    decoder = MusicgenForCausalLM(dec_cfg).eval()
    missing, unexpected = decoder.load_state_dict(dec_state, strict=False)
    missing = [k for k in missing if "embed_positions" not in k]
    if missing or unexpected:
        raise ValueError(f"LM -> transformers decoder: missing {missing[:6]}, unexpected {unexpected[:6]}")
    text_encoder = copy.deepcopy(cond.t5).to("cpu").float().eval()
    if int(text_encoder.config.d_model) == int(lm.dim):
        raise ValueError(f"the T5 width ({lm.dim}) equals the LM width: transformers' MusicGen then has no "
                         "enc_to_dec_proj to hold audiocraft's description output_proj")
    encoder = copy.deepcopy(audio_encoder_for(model, audio_encoder)).to("cpu").float().eval()
    _check_codec(encoder, lm, audio_encoder or "the model's codec")
    hf_model = MusicgenForConditionalGeneration(text_encoder=text_encoder, audio_encoder=encoder, decoder=decoder)
    # Modules built from a config (not from_pretrained) have no attention implementation chosen, and transformers'
    # MusicGen decoder then builds no causal mask: pick the one from_pretrained picks.
    for part in (hf_model.decoder, hf_model.text_encoder):
        if part.config._attn_implementation is None:
            try:
                part.set_attn_implementation("sdpa")
            except ValueError:
                part.set_attn_implementation("eager")
    hf_model.enc_to_dec_proj.load_state_dict(proj_state)
    hf_model.eval()
    gen = hf_model.generation_config
    gen.decoder_start_token_id = int(lm.card)
    gen.pad_token_id = int(lm.card)
    gen.do_sample = True
    gen.top_k = 250
    gen.guidance_scale = float(cfg.classifier_free_guidance.inference_coef) if cfg is not None else 3.0
    gen.max_length = int(30 * encoder.config.frame_rate)
    fe_cfg = encoder.config
    feature_extractor = EncodecFeatureExtractor(feature_size=int(fe_cfg.audio_channels),
                                                sampling_rate=int(fe_cfg.sampling_rate),
                                                chunk_length_s=fe_cfg.chunk_length_s, overlap=fe_cfg.overlap,
                                                padding_side="left")
    processor = MusicgenProcessor(feature_extractor=feature_extractor, tokenizer=cond.t5_tokenizer)
    return hf_model, processor


def export_transformers(model: tp.Any, out_dir: tp.Union[str, Path], audio_encoder: tp.Optional[str] = None,
                        card: tp.Optional[tp.Mapping[str, tp.Any]] = None) -> Path:
    """Write ``model`` (an audiocraft ``MusicGen``) as a transformers MusicGen folder; returns it.

    The folder holds ``config.json``, ``model.safetensors``, ``generation_config.json``, the processor files
    (tokenizer and feature extractor), ``README.md`` (model card, see :func:`model_card` for ``card``) and
    ``genrecraft.json``. ``MusicgenForConditionalGeneration.from_pretrained(out_dir)`` and
    ``AutoProcessor.from_pretrained(out_dir)`` load it without genrecraft. Written to a staging folder first, so an
    interrupted export leaves no half folder under ``out_dir``.
    """
    import shutil


    hf_model, processor = to_transformers_model(model, audio_encoder=audio_encoder)
    out_dir = Path(out_dir)
    staging = out_dir.with_name(out_dir.name + ".tmp")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    hf_model.save_pretrained(staging)
    processor.save_pretrained(staging)
    info = dict(card or {})
    (staging / "README.md").write_text(model_card(info))
    write_json(staging / "genrecraft.json", {"genrecraft_version": __version__, "format": "transformers",
                                             **{k: v for k, v in info.items() if k in ("source", "base_model",
                                                                                      "lora")}})
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)
    return out_dir


def push_to_hub(folder: tp.Union[str, Path], repo_id: str, private: bool = False,
                token: tp.Optional[str] = None) -> str:
    """Upload an exported folder to the Hugging Face hub as model repo ``repo_id``; returns the commit URL.

    Uses ``huggingface_hub.HfApi``: ``create_repo(..., exist_ok=True)`` then ``upload_folder``. The token is
    ``token`` or the usual place (``HF_TOKEN``, ``huggingface-cli login``).
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not (folder / "config.json").is_file() or not (folder / "README.md").is_file():
        raise FileNotFoundError(f"{folder} is not an exported transformers folder (config.json and README.md "
                                "missing): run python -m genrecraft.export ... --format transformers first")
    api = HfApi(token=token)
    api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
    commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                               commit_message="Upload MusicGen exported with genrecraft",
                               ignore_patterns=["*.tmp"])
    return str(getattr(commit, "commit_url", commit))


# ----------------------------------------------------------------------------------------------------------------
# Import: transformers folder or hub id -> audiocraft MusicGen


def load_transformers_musicgen(id_or_dir: str, device: str = "cpu"):
    """``(MusicgenForConditionalGeneration, tokenizer)`` from a folder or hub id, with a clear error offline."""
    compat.apply()
    from transformers import AutoTokenizer, MusicgenForConditionalGeneration

    path = Path(id_or_dir)
    if path.is_dir() and not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} has no config.json: a transformers MusicGen folder holds config.json, "
                                "model.safetensors and the tokenizer files (python -m genrecraft.export ... "
                                "--format transformers writes one)")
    try:
        config = json.loads((path / "config.json").read_text()) if path.is_dir() else None
        if config is not None and config.get("model_type") != "musicgen":
            raise ValueError(f"{path / 'config.json'}: model_type {config.get('model_type')!r}, expected 'musicgen' "
                             "(MusicGen-melody and stereo variants are not supported)")
        model = MusicgenForConditionalGeneration.from_pretrained(id_or_dir).to(device).eval()
        tokenizer = AutoTokenizer.from_pretrained(id_or_dir)
    except OSError as exc:
        raise FileNotFoundError(
            f"could not load a transformers MusicGen from {id_or_dir!r}: {exc}. A hub id needs internet access "
            "once, or HF_HUB_OFFLINE=1 with the files in the cache; a folder needs config.json, "
            "model.safetensors and the tokenizer files.") from exc
    return model, tokenizer


def musicgen_from_transformers(hf_model: tp.Any, tokenizer: tp.Any, name: str = "hf", device: str = "cpu"):
    """An audiocraft ``MusicGen`` that computes what ``hf_model`` computes.

    The LM is built from audiocraft's MusicGen config (``musicgen_base_32khz``) with the decoder's shape, its
    weights mapped back by :func:`hf_state_to_lm`; its description conditioner runs the checkpoint's own T5 and
    tokenizer; the codec is the checkpoint's EnCodec through audiocraft's ``HFEncodecCompressionModel``. The LM
    carries its config as ``lm.cfg`` (with ``t5.name`` set to the matching public T5, which is what audiocraft
    would load if the model is exported back to audiocraft's format).
    """
    compat.apply()
    from audiocraft.models.encodec import HFEncodecCompressionModel
    from audiocraft.models.musicgen import MusicGen

    dec_cfg = hf_model.decoder.config
    cfg = compose(lm_overrides(dec_cfg, _t5_name(hf_model.text_encoder.config), device=device))
    lm = build_lm_with_t5(cfg, hf_model.text_encoder.float(), tokenizer)
    dec_state = {k: v for k, v in hf_model.decoder.state_dict().items()}
    if hf_model.enc_to_dec_proj is None:
        raise ValueError("this transformers MusicGen has no enc_to_dec_proj (T5 width equals the decoder's); "
                         "audiocraft's LM always projects the description")
    state = hf_state_to_lm(dec_state, hf_model.enc_to_dec_proj.state_dict())
    lm.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    lm.to(device).eval()
    codec = HFEncodecCompressionModel(hf_model.audio_encoder.float().to(device)).eval()
    return MusicGen(name=name, compression_model=codec, lm=lm, max_duration=30.0)


def load_hf(id_or_dir: str, device: str = "cpu"):
    """The ``hf:ID_OR_DIR`` model spec: a transformers MusicGen as an audiocraft ``MusicGen``."""
    hf_model, tokenizer = load_transformers_musicgen(id_or_dir, device="cpu")
    return musicgen_from_transformers(hf_model, tokenizer, name=f"hf:{id_or_dir}", device=device)


def load_hf_lm_state(id_or_dir: str) -> tp.Dict[str, tp.Any]:
    """The audiocraft LM state dict of a transformers MusicGen (for ``lora.base=hf:...``)."""
    hf_model, _ = load_transformers_musicgen(id_or_dir)
    if hf_model.enc_to_dec_proj is None:
        raise ValueError(f"{id_or_dir}: no enc_to_dec_proj; audiocraft's LM always projects the description")
    return hf_state_to_lm(hf_model.decoder.state_dict(), hf_model.enc_to_dec_proj.state_dict())
