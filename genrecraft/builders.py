"""Build audiocraft models from configs: the layer below model specs and loading (:mod:`genrecraft.models`).

- :func:`compose` composes a config the way ``dora -P genrecraft run`` does (audiocraft's tree, then
  ``audiocraft_configs/``, then the user's config folder), without running anything;
- :func:`build_lm` builds the LM a config describes; :func:`tiny_musicgen` the CPU test model;
- :func:`debug_codec_config` and :func:`write_compression_package`: the codec package every export carries;
- :func:`exportable_config_yaml`: an LM config as an export's ``xp.cfg``;
- :func:`load_checkpoint_weights`: a Dora checkpoint, memory-mapped.
"""

from __future__ import annotations

import typing as tp
from pathlib import Path

from . import spectral_codec  # noqa: F401  (registers the demo's codec with audiocraft's builder)
from .core import compat, paths
from .core.atomic import atomic_path

TINY_SOLVER = "musicgen/genrecraft_tiny"


def compose(overrides: tp.Sequence[str] = ()) -> tp.Any:
    """Compose audiocraft's ``config.yaml`` with Hydra overrides, e.g. ``["solver=musicgen/genrecraft_tiny"]``.

    Returns an OmegaConf ``DictConfig``, resolved as far as Hydra resolves it.
    """
    compat.apply()
    from hydra import compose as hydra_compose, initialize_config_dir
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


def debug_codec_config(sample_rate: int = 32000):
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

    prefix = paths.PRETRAINED
    with atomic_path(out_file) as tmp:
        if checkpoint == prefix + "debug_compression_model":
            codec = builders.get_debug_compression_model(sample_rate=sample_rate)
            torch.save({"best_state": codec.state_dict(), "xp.cfg": OmegaConf.to_yaml(debug_codec_config(sample_rate)),
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


def load_checkpoint_weights(path):
    """A Dora ``checkpoint.th`` or a ``state_dict.bin``, memory-mapped: only the tensors that are used (the
    weights) are read from disk, when they are used.

    A full fine-tuning run's checkpoint also holds the optimizer state (twice the weights with Adam) and the best
    state; reading it whole to get the weights costs three to four times the model's size in memory. A file in
    torch's legacy (pre-zip) format cannot be mapped and is read whole.
    """
    import torch

    compat.apply()
    try:
        return torch.load(path, map_location="cpu", mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc) and "zipfile" not in str(exc):
            raise
        return torch.load(path, map_location="cpu")
