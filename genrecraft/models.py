"""Compose audiocraft configs and build MusicGen models, real or tiny.

- :func:`compose` composes a config the way ``dora -P genrecraft run`` does (audiocraft's tree, then
  ``audiocraft_configs/``, then the user's config folder), without running anything.
- :func:`tiny_musicgen` builds the CPU test model of ``solver=musicgen/genrecraft_tiny`` in-process.
- :func:`load_pretrained` loads ``facebook/musicgen-*`` (or an exported folder) with a clear error offline.
- :func:`load_model` loads any model named by a spec (:data:`SPEC_HELP`: a Hugging Face id, an exported folder,
  a Dora experiment, a transformers MusicGen (``hf:``), a base plus a LoRA adapter, or ``tiny:<seed>``);
  :func:`parse_model_spec` parses one.
"""

from __future__ import annotations

import dataclasses
import typing as tp
from pathlib import Path

from . import compat

TINY_SOLVER = "musicgen/genrecraft_tiny"


def compose(overrides: tp.Sequence[str] = ()) -> tp.Any:
    """Compose audiocraft's ``config.yaml`` with Hydra overrides, e.g. ``["solver=musicgen/genrecraft_tiny"]``.

    Returns an OmegaConf ``DictConfig``, resolved as far as Hydra resolves it.
    """
    compat.apply()
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        # Inside a running Dora/Hydra job: reuse its search path rather than fail.
        return hydra_compose("config", overrides=list(overrides))
    with initialize_config_dir(config_dir=str(compat.audiocraft_config_dir()), version_base="1.1",
                               job_name="genrecraft"):
        return hydra_compose("config", overrides=list(overrides))


def build_lm(cfg: tp.Any, seed: tp.Optional[int] = None):
    """Build (randomly initialised) the LM that ``cfg`` describes, on ``cfg.device``, in eval mode."""
    compat.apply()
    import torch
    from audiocraft.models import builders

    if seed is not None:
        torch.manual_seed(seed)
    lm = builders.get_lm_model(cfg).to(cfg.device).eval()
    lm.cfg = cfg  # as audiocraft's loaders do: exports and adapters read the LM's config from here
    return lm


def tiny_musicgen(seed: int = 0, overrides: tp.Sequence[str] = (), device: str = "cpu"):
    """A MusicGen with the tiny CPU config's LM (random weights from ``seed``) and the debug codec.

    Same structure as MusicGen-small (packed q/k/v attention, cross-attention, delay pattern, 4 codebooks),
    about 0.4 M parameters; generates at 32 kHz. ``overrides`` go to :func:`compose`.
    """
    from audiocraft.models import builders
    from audiocraft.models.musicgen import MusicGen

    cfg = compose([f"solver={TINY_SOLVER}", f"device={device}", *overrides])
    lm = build_lm(cfg, seed=seed)
    codec = builders.get_debug_compression_model(device=device, sample_rate=cfg.sample_rate)
    return MusicGen(name="genrecraft-tiny", compression_model=codec, lm=lm, max_duration=30.0)


class ModelUnavailableError(RuntimeError):
    """A model's weights cannot be found locally or downloaded."""


def load_pretrained(name: str, device: tp.Optional[str] = None):
    """``MusicGen.get_pretrained(name)`` with a clear error when the weights cannot be had.

    ``name`` is a Hugging Face id (``facebook/musicgen-small``) or a folder with ``state_dict.bin`` and
    ``compression_state_dict.bin`` (audiocraft's export format).
    """
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
    model.lm.cfg.compression_model_checkpoint = "//pretrained/" + name
    return model


def _debug_codec_config(sample_rate: int = 32000):
    """An encodec config that ``builders.get_compression_model`` turns into audiocraft's debug codec architecture."""
    from omegaconf import OmegaConf

    ratios = {16000: [10, 8, 8], 32000: [10, 8, 16]}[sample_rate]
    return OmegaConf.create({
        "device": "cpu", "sample_rate": sample_rate, "channels": 1, "compression_model": "encodec",
        "encodec": {"autoencoder": "seanet", "quantizer": "rvq", "sample_rate": sample_rate, "channels": 1,
                    "causal": False, "renormalize": False},
        "seanet": {"dimension": 32, "channels": 1, "causal": False, "n_filters": 4, "n_residual_layers": 1,
                   "ratios": ratios, "activation": "ELU", "activation_params": {"alpha": 1.0}, "norm": "none",
                   "norm_params": {}, "kernel_size": 7, "residual_kernel_size": 3, "last_kernel_size": 7,
                   "dilation_base": 2, "pad_mode": "reflect", "true_skip": True, "compress": 2, "lstm": 0,
                   "disable_norm_outer_blocks": 0, "decoder": {}, "encoder": {}},
        "rvq": {"n_q": 4, "q_dropout": False, "bins": 400, "decay": 0.99, "kmeans_init": True, "kmeans_iters": 10,
                "threshold_ema_dead_code": 2, "orthogonal_reg_weight": 0.0,
                "orthogonal_reg_active_codes_only": False},
    })


def write_compression_package(checkpoint: str, out_file, sample_rate: int = 32000) -> None:
    """Write ``compression_state_dict.bin`` (audiocraft's export format) for a solver's
    ``compression_model_checkpoint``.

    - ``//pretrained/debug_compression_model``: the full weights with a config that rebuilds them, so that plain
      audiocraft (without genrecraft's seeded shim) loads exactly the codec the LM was trained with;
    - ``//pretrained/facebook/musicgen-*`` (the base model's own codec, as the recipes use) or
      ``//pretrained/<exported folder>``: a copy of that repository's or folder's ``compression_state_dict.bin``;
    - ``//pretrained/<name>`` (e.g. ``facebook/encodec_32khz``): a reference, as audiocraft's own export does;
    - a path to a trained compression checkpoint: exported with audiocraft's ``export_encodec``.
    """
    compat.apply()
    import audiocraft
    import torch
    from audiocraft.models import builders
    from audiocraft.utils import export as ac_export
    from omegaconf import OmegaConf

    from .atomic import atomic_path

    prefix = "//pretrained/"
    with atomic_path(out_file) as tmp:
        if checkpoint == prefix + "debug_compression_model":
            codec = builders.get_debug_compression_model(sample_rate=sample_rate)
            torch.save({"best_state": codec.state_dict(), "xp.cfg": OmegaConf.to_yaml(_debug_codec_config(sample_rate)),
                        "version": audiocraft.__version__, "exported": True}, tmp)
        elif checkpoint.startswith(prefix) and (compat.is_audiocraft_repo(checkpoint[len(prefix):])
                                                or Path(checkpoint[len(prefix):]).is_dir()):
            # A released MusicGen's own codec, or an exported folder's: copy its package, so plain audiocraft
            # loads the export as it is.
            from audiocraft.models import loaders

            package = loaders.load_compression_model_ckpt(checkpoint[len(prefix):])
            torch.save({**package, "exported": True}, tmp)
        elif checkpoint.startswith(prefix):
            ac_export.export_pretrained_compression_model(checkpoint[len(prefix):], tmp)
        else:
            ac_export.export_encodec(checkpoint, tmp)


# audiocraft's MusicGen.__init__ calls set_generation_params(duration=15), whose default extend_stride=18 must be
# below max_duration, and max_duration is the LM config's dataset.segment_duration. A model trained on segments
# of 18 s or less (e.g. the tiny CPU family's 5 s) could then never be loaded by MusicGen.get_pretrained.
MIN_EXPORT_SEGMENT_DURATION = 30.0


def exportable_config_yaml(cfg) -> str:
    """The LM config as ``state_dict.bin``'s ``xp.cfg`` yaml, loadable by plain ``MusicGen.get_pretrained``.

    Raises ``dataset.segment_duration`` (the generation window) to 30 s when training used shorter segments,
    keeping the training value in ``dataset.train_segment_duration``.
    """
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    segment = float(cfg.dataset.segment_duration)
    if segment < MIN_EXPORT_SEGMENT_DURATION:
        cfg.dataset.train_segment_duration = segment
        cfg.dataset.segment_duration = MIN_EXPORT_SEGMENT_DURATION
    return OmegaConf.to_yaml(cfg)


def _xp_folder(sig_or_folder: str):

    from . import paths

    value = sig_or_folder[len("//sig/"):] if sig_or_folder.startswith("//sig/") else sig_or_folder
    folder = Path(value)
    if not (folder / "checkpoint.th").exists():
        folder = paths.dora_dir() / "xps" / value
    if not (folder / "checkpoint.th").exists():
        raise ValueError(f"no finished Dora experiment at {sig_or_folder!r}: expected a signature from "
                         f"{paths.dora_dir() / 'xps'} or a folder holding checkpoint.th")
    return folder


def load_checkpoint_weights(path):
    """A Dora ``checkpoint.th``, memory-mapped: only the tensors that are used (the weights) are read from disk.

    A full fine-tuning run's checkpoint also holds the optimizer state (twice the weights with Adam) and the best
    state; reading it whole to get the weights costs three to four times the model's size in memory.
    """
    import torch

    compat.apply()
    return torch.load(path, map_location="cpu", mmap=True)


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
        import lora

        from .solvers import load_base_lm_state

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

SPEC_KINDS = ("pretrained", "export", "experiment", "hf", "adapter", "tiny")


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
    if spec.startswith("//pretrained/"):
        spec = spec[len("//pretrained/"):]
    if "/" in spec and not path.exists():
        return ModelSpec(kind="pretrained", name=spec, text=text)
    raise ValueError(f"cannot read model spec {text!r}.\n{SPEC_HELP}")


def model_config(spec: tp.Union[str, ModelSpec]):
    """The LM config (OmegaConf) of the model named by ``spec``, read without building or loading the model.

    Files are memory-mapped, so only the config is read from a multi-GB checkpoint.
    """
    import torch
    from omegaconf import OmegaConf

    parsed = spec if isinstance(spec, ModelSpec) else parse_model_spec(spec)
    if parsed.kind == "adapter":
        return model_config(parsed.base)  # type: ignore[arg-type]
    if parsed.kind == "tiny":
        return compose([f"solver={TINY_SOLVER}"])
    if parsed.kind == "experiment":
        return OmegaConf.create(load_checkpoint_weights(_xp_folder(parsed.name) / "checkpoint.th")["xp.cfg"])
    if parsed.kind == "export":
        path = f"{parsed.name}/state_dict.bin"
    else:
        from huggingface_hub import hf_hub_download

        try:
            path = hf_hub_download(repo_id=parsed.name, filename="state_dict.bin", library_name="audiocraft")
        except Exception as exc:  # huggingface_hub raises many kinds: offline, not found, gated, network
            raise ModelUnavailableError(f"could not get state_dict.bin of {parsed.name!r}: {exc}") from exc
    compat.apply()
    return OmegaConf.create(torch.load(path, map_location="cpu", mmap=True)["xp.cfg"])


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


def load_model(spec: tp.Union[str, ModelSpec], device: str = "cpu"):
    """Load a ``MusicGen`` named by a model spec (see :data:`SPEC_HELP`)."""
    parsed = spec if isinstance(spec, ModelSpec) else parse_model_spec(spec)
    if parsed.kind == "adapter":
        import lora

        model = load_model(parsed.base, device=device)  # type: ignore[arg-type]
        lora.load_adapter(model, parsed.name)
        return model
    if parsed.kind == "tiny":
        return tiny_musicgen(seed=parsed.seed, device=device)
    if parsed.kind == "experiment":
        return load_experiment(parsed.name, device=device)
    if parsed.kind == "hf":
        from .hf import load_hf

        return load_hf(parsed.name, device=device)
    return load_pretrained(parsed.name, device=device)
