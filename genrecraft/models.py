"""Model specs and loading: every way genrecraft names a MusicGen, and the one function that loads them.

Builders (config composition, the tiny CPU model, codec packages) are one layer down in
:mod:`genrecraft.builders`; the names used everywhere are re-exported here.

- :func:`load_pretrained` loads ``facebook/musicgen-*`` (or an exported folder) with a clear error offline.
- :func:`load_model` loads any model named by a spec (:data:`SPEC_HELP`: a Hugging Face id, an exported folder,
  a Dora experiment, a transformers MusicGen (``hf:``), a base plus a LoRA adapter, or ``tiny:<seed>``);
  :func:`parse_model_spec` parses one.
"""

from __future__ import annotations

import dataclasses
import typing as tp
from pathlib import Path

import lora

from . import hf
from .builders import (MIN_EXPORT_SEGMENT_DURATION, TINY_SOLVER, build_lm, compose, load_checkpoint_weights,
                       tiny_musicgen)
from .core import compat, paths
from .core.errors import UserError


class ModelUnavailableError(UserError, RuntimeError):
    """A model's weights cannot be found locally or downloaded."""


def load_pretrained(name: str, device: tp.Optional[str] = None):
    """``MusicGen.get_pretrained(name)`` with a clear error when the weights cannot be had.

    ``name`` is a Hugging Face id (``facebook/musicgen-small``) or a folder with ``state_dict.bin`` and
    ``compression_state_dict.bin`` (audiocraft's export format).
    """
    if name.startswith(("/", "./", "../", "~")) and not Path(name).expanduser().is_dir():
        raise ModelUnavailableError(f"{name}: no such folder (a model folder holds state_dict.bin and "
                                    "compression_state_dict.bin; a Hugging Face id looks like facebook/musicgen-small)")
    compat.apply()
    from audiocraft.models.musicgen import MusicGen

    try:
        model = MusicGen.get_pretrained(name, device=device)
    except (OSError, ValueError, RuntimeError) as exc:
        if isinstance(exc, ModelUnavailableError):
            raise
        raise ModelUnavailableError(
            f"could not load MusicGen weights {name!r}: {exc}. If this is a Hugging Face id, this machine needs "
            "internet access to huggingface.co once (weights are then cached in ~/.cache/huggingface), or set "
            "HF_HUB_OFFLINE=1 with the files already in that cache. If it is a folder, it must hold "
            "state_dict.bin and compression_state_dict.bin (see `python -m genrecraft.export`).") from exc
    # The codec is this repository's (or folder's) compression_state_dict.bin, whatever the stored training config
    # says (a released MusicGen's names a checkpoint of Meta's cluster): exports of this model then carry it.
    model.lm.cfg.compression_model_checkpoint = paths.PRETRAINED + name
    return model


def _xp_folder(sig_or_folder: str):
    value = sig_or_folder[len("//sig/"):] if sig_or_folder.startswith("//sig/") else sig_or_folder
    folder = Path(value)
    if not (folder / "checkpoint.th").exists():
        folder = paths.dora_dir() / "xps" / value
    if not (folder / "checkpoint.th").exists():
        raise ValueError(f"no finished Dora experiment at {sig_or_folder!r}: expected a signature from "
                         f"{paths.dora_dir() / 'xps'} or a folder holding checkpoint.th")
    return folder


def load_base_lm_state(base: str) -> tp.Dict[str, tp.Any]:
    """The plain LM state dict named by ``lora.base``.

    Accepted: ``//pretrained/<hf id>`` (e.g. ``//pretrained/facebook/musicgen-small``), ``hf:<id or folder>`` (a
    transformers MusicGen, converted with :mod:`genrecraft.hf`), ``//sig/<SIG>`` of a
    finished genrecraft/audiocraft run (its best state), a ``checkpoint.th`` path, or an exported folder with
    ``state_dict.bin``.
    """
    from audiocraft.utils import checkpoint

    if paths.pretrained_name(base):
        return load_checkpoint_weights(_lm_file(paths.pretrained_name(base)))["best_state"]
    if base.startswith("hf:"):
        return hf.load_hf_lm_state(base[len("hf:"):])
    path = Path(base)
    if path.is_dir() and (path / "state_dict.bin").exists():
        return load_checkpoint_weights(path / "state_dict.bin")["best_state"]
    resolved = checkpoint.resolve_checkpoint_path(base, use_fsdp=False)
    if resolved is None or not Path(resolved).exists():
        raise ValueError(
            f"lora.base={base!r} was not found. Use //pretrained/facebook/musicgen-small (or -medium), "
            "hf:<id or folder> (a transformers MusicGen), //sig/<SIG> of a finished Dora run, a checkpoint.th path, "
            "or a folder exported by `python -m genrecraft.export`.")
    state = load_checkpoint_weights(resolved)
    best = state.get("fsdp_best_state") or state.get("best_state") or {}
    if "model" not in best or all(".lora." in k or "lora_" in k for k in best["model"]):
        raise ValueError(f"lora.base={base!r}: checkpoint {resolved} holds no full model best state (a LoRA "
                         "run's checkpoint holds adapters only: export it with `python -m genrecraft.export` and "
                         "use the exported folder as base)")
    return best["model"]


def load_lm_state(lm, state: tp.Mapping[str, tp.Any]) -> None:
    """``lm.load_state_dict(state)``, holding one copy of the weights, not two, when the LM is on the CPU.

    There each parameter and buffer takes the state's tensor as its data (converted if its dtype differs): the
    random initialisation is freed, and with a memory-mapped state (what :func:`load_base_lm_state` returns) the
    weights are read from disk as they are first used. The parameters stay the same objects, so an optimizer
    already built on them still holds them. On an accelerator the state is copied onto the device.
    """
    own = lm.state_dict(keep_vars=True)
    if (any(t.device.type != "cpu" for t in own.values()) or own.keys() != state.keys()
            or any(own[k].shape != state[k].shape for k in own)):
        lm.load_state_dict(state)  # a device copy, or torch's own message for missing, unexpected or misshapen keys
        return
    for key, tensor in own.items():
        tensor.data = state[key].to(tensor.dtype)


def load_experiment(sig_or_folder: str, device: str = "cpu"):
    """The best model of a Dora experiment (``//sig/<SIG>``, a signature or an xp folder) as a ``MusicGen``.

    Full fine-tuning runs give the best LM state; LoRA runs give their base with the best adapter loaded
    (unmerged, so :func:`lora.save_adapter` still works; ``lora.merge`` it for speed).
    """
    compat.apply()
    from audiocraft.models.musicgen import MusicGen
    from audiocraft.solvers.compression import CompressionSolver
    from omegaconf import OmegaConf

    folder = _xp_folder(sig_or_folder)
    state = load_checkpoint_weights(folder / "checkpoint.th")
    cfg = OmegaConf.create(state["xp.cfg"])
    cfg.device = device
    lm = build_lm(cfg)
    best = state.get("fsdp_best_state") or state["best_state"]
    if cfg.solver == "musicgen_lora":
        if cfg.lora.base:
            lm.load_state_dict(load_base_lm_state(str(cfg.lora.base)))
        adapter_dir = folder / "adapter"
        if not (adapter_dir / "adapter_config.json").exists():
            raise ValueError(f"LoRA experiment {folder} has no best adapter yet ({adapter_dir}); let it finish an "
                             "epoch")
        lora.load_adapter(lm, adapter_dir, check_base=bool(cfg.lora.base))
    else:
        lm.load_state_dict(best["model"])
    lm.eval()
    codec = CompressionSolver.wrapped_model_from_checkpoint(cfg, cfg.compression_model_checkpoint, device=device)
    duration = max(float(cfg.dataset.segment_duration), MIN_EXPORT_SEGMENT_DURATION)
    return MusicGen(name=f"xp:{folder.name}", compression_model=codec, lm=lm, max_duration=duration)


SPEC_HELP = """Model specs:
  facebook/musicgen-small     a Hugging Face id (or //pretrained/<id>): downloaded once, then cached
  path/to/export              a folder with state_dict.bin (python -m genrecraft.export, python -m lora merge)
  //sig/<SIG> or path/to/xp   a Dora experiment: its best state (LoRA runs: base + best adapter)
  hf:ID_OR_DIR                a transformers MusicGen (MusicgenForConditionalGeneration): a hub id or folder
  BASE@path/to/adapter        any spec above plus a LoRA adapter folder
  tiny[:SEED]                 the tiny CPU test model, random weights from SEED (default 0)"""

@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec (see :data:`SPEC_HELP`).

    ``kind``: ``pretrained`` (``name`` is a Hugging Face id), ``export`` (``name`` is a folder with
    ``state_dict.bin``), ``experiment`` (``name`` is ``//sig/<SIG>`` or an xp folder), ``hf`` (``name`` is a
    transformers MusicGen hub id or folder), ``adapter`` (``base`` is the parsed base spec, ``name`` the adapter
    folder) or ``tiny`` (``seed``).
    """

    kind: str
    name: str = ""
    seed: int = 0
    base: tp.Optional["ModelSpec"] = None
    text: str = ""

    def __str__(self) -> str:
        return self.text or (f"tiny:{self.seed}" if self.kind == "tiny" else self.name)

    @property
    def label(self) -> str:
        """A short name for tables and file names: the last part of the id, signature or folder."""
        import re

        if self.kind == "tiny":
            return f"tiny{self.seed}"
        if self.kind == "adapter":
            return f"{self.base.label}+{Path(self.name).name}"  # type: ignore[union-attr]
        value = self.name.rstrip("/").split("/")[-1] or self.name
        return re.sub(r"[^A-Za-z0-9_.+-]+", "_", value)


def parse_model_spec(spec: str) -> ModelSpec:
    """Parse a model spec (see :data:`SPEC_HELP`) without loading anything; raises ``ValueError`` if it names
    nothing genrecraft can load. Folders are told apart by their files (``checkpoint.th`` or ``state_dict.bin``)."""

    text = spec
    spec = spec.strip()
    if not spec:
        raise ValueError(f"empty model spec.\n{SPEC_HELP}")
    if "@" in spec:
        base, _, adapter = spec.rpartition("@")
        if not base or not adapter:
            raise ValueError(f"model spec {text!r}: write BASE@path/to/adapter.\n{SPEC_HELP}")
        return ModelSpec(kind="adapter", name=adapter, base=parse_model_spec(base), text=text)
    if spec == "tiny" or spec.startswith("tiny:"):
        seed = spec.partition(":")[2]
        if seed and not seed.isdigit():
            raise ValueError(f"model spec {text!r}: the tiny model's seed must be an integer, e.g. tiny:3")
        return ModelSpec(kind="tiny", seed=int(seed or 0), text=text)
    if spec.startswith("//sig/"):
        return ModelSpec(kind="experiment", name=spec, text=text)
    if spec.startswith("hf:"):
        name = spec[len("hf:"):]
        if not name:
            raise ValueError(f"model spec {text!r}: write hf:<hub id> or hf:path/to/transformers-folder")
        if Path(name).is_dir() and not (Path(name) / "config.json").is_file():
            raise ValueError(f"model spec {text!r}: folder {name} has no config.json (a transformers MusicGen folder "
                             "holds config.json and model.safetensors; python -m genrecraft.export ... --format "
                             "transformers writes one)")
        return ModelSpec(kind="hf", name=name, text=text)
    path = Path(spec)
    if path.is_dir():
        if (path / "checkpoint.th").exists():
            return ModelSpec(kind="experiment", name=spec, text=text)
        if (path / "state_dict.bin").exists():
            return ModelSpec(kind="export", name=spec, text=text)
        raise ValueError(f"model spec {text!r} is a folder with neither state_dict.bin (an exported model) nor "
                         f"checkpoint.th (a Dora experiment).\n{SPEC_HELP}")
    spec = paths.pretrained_name(spec) or spec
    if "/" in spec and not path.exists():
        return ModelSpec(kind="pretrained", name=spec, text=text)
    raise ValueError(f"cannot read model spec {text!r}.\n{SPEC_HELP}")


def model_config(spec: tp.Union[str, ModelSpec]):
    """The LM config (OmegaConf) of the model named by ``spec``, read without building or loading the model.

    Files are memory-mapped, so only the config is read from a multi-GB checkpoint.
    """
    from omegaconf import OmegaConf

    parsed = spec if isinstance(spec, ModelSpec) else parse_model_spec(spec)
    if parsed.kind == "adapter":
        return model_config(parsed.base)  # type: ignore[arg-type]
    if parsed.kind == "tiny":
        return compose([f"solver={TINY_SOLVER}"])
    if parsed.kind == "experiment":
        return OmegaConf.create(load_checkpoint_weights(_xp_folder(parsed.name) / "checkpoint.th")["xp.cfg"])
    path = f"{parsed.name}/state_dict.bin" if parsed.kind == "export" else _lm_file(parsed.name)
    return OmegaConf.create(load_checkpoint_weights(path)["xp.cfg"])


def _lm_file(name: str) -> str:
    """The path of ``state_dict.bin`` for a Hugging Face id or a folder, resolved as audiocraft's loaders resolve it
    (same cache), downloaded on first use."""
    if Path(name).is_dir():
        return str(Path(name) / "state_dict.bin")
    import audiocraft
    from audiocraft.models import loaders
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(repo_id=name, filename="state_dict.bin", cache_dir=loaders.get_audiocraft_cache_dir(),
                               library_name="audiocraft", library_version=audiocraft.__version__)
    except Exception as exc:  # huggingface_hub raises many kinds: offline, not found, gated, network
        raise ModelUnavailableError(
            f"could not get state_dict.bin of {name!r}: {exc}. This machine needs internet access to huggingface.co "
            "once (then it is cached), or HF_HUB_OFFLINE=1 with the file already in the cache.") from exc


def training_segment(cfg) -> float:
    """Seconds of audio per training example of the LM ``cfg`` (before an export raised it for generation)."""
    dataset = cfg.dataset
    return float(dataset.get("train_segment_duration", None) or dataset.segment_duration)


def codec_fingerprint(model) -> str:
    """A short hash of the tokens ``model``'s compression model gives for a fixed 1 s probe signal (noise plus a
    chord), with its sample rate, frame rate and codebook shape: two models with the same fingerprint tokenize
    audio identically, so their cross-entropies are on the same targets."""
    import hashlib

    import torch

    codec = model.compression_model
    generator = torch.Generator().manual_seed(0)
    t = torch.arange(codec.sample_rate) / codec.sample_rate
    chord = sum(torch.sin(2 * torch.pi * f * t) for f in (220.0, 277.2, 329.6)) / 3
    probe = (0.5 * chord + 0.1 * torch.randn(codec.sample_rate, generator=generator))[None, None]
    device = next(iter(codec.parameters()), torch.empty(0)).device
    with torch.no_grad():
        codes = codec.encode(probe.to(device))[0].cpu()
    head = f"{codec.sample_rate}/{codec.frame_rate}/{codec.num_codebooks}x{codec.cardinality}:"
    return head + hashlib.sha1(codes.numpy().astype("int64").tobytes()).hexdigest()[:12]


def default_device() -> str:
    """``cuda`` when a GPU is available, else ``cpu``: the device the command-line tools load models on by default."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_for_inference(spec: tp.Union[str, ModelSpec], device: str = "cpu"):
    """:func:`load_model` with any LoRA adapter folded into the weights and taken out (``lora.remove`` with
    ``merge_weights``): the same outputs as the adapted model at the plain model's speed, for evaluation and
    listening tests (in the tiny demo model, generating through the adapters took twice as long)."""
    model = load_model(spec, device=device)
    if lora.has_lora(model.lm):
        lora.remove(model.lm, merge_weights=True)
    return model


def load_model(spec: tp.Union[str, ModelSpec], device: str = "cpu"):
    """Load a ``MusicGen`` named by a model spec (see :data:`SPEC_HELP`)."""
    parsed = spec if isinstance(spec, ModelSpec) else parse_model_spec(spec)
    if parsed.kind == "adapter":
        model = load_model(parsed.base, device=device)  # type: ignore[arg-type]
        lora.load_adapter(model, parsed.name)
        return model
    if parsed.kind == "tiny":
        return tiny_musicgen(seed=parsed.seed, device=device)
    if parsed.kind == "experiment":
        return load_experiment(parsed.name, device=device)
    if parsed.kind == "hf":
        return hf.load_hf(parsed.name, device=device)
    return load_pretrained(parsed.name, device=device)
