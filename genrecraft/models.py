"""Compose audiocraft configs and build MusicGen models, real or tiny.

- :func:`compose` composes a config the way ``dora -P genrecraft run`` does (audiocraft's tree, then
  ``audiocraft_configs/``, then the user's config folder), without running anything.
- :func:`tiny_musicgen` builds the CPU test model of ``solver=musicgen/genrecraft_tiny`` in-process.
- :func:`load_pretrained` loads ``facebook/musicgen-*`` (or an exported folder) with a clear error offline.
"""

from __future__ import annotations

import typing as tp

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
    return builders.get_lm_model(cfg).to(cfg.device).eval()


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
        return MusicGen.get_pretrained(name, device=device)
    except (OSError, ValueError, RuntimeError) as exc:
        if isinstance(exc, ModelUnavailableError):
            raise
        raise ModelUnavailableError(
            f"could not load MusicGen weights {name!r}: {exc}. If this is a Hugging Face id, this machine needs "
            "internet access to huggingface.co once (weights are then cached in ~/.cache/huggingface), or set "
            "HF_HUB_OFFLINE=1 with the files already in that cache. If it is a folder, it must hold "
            "state_dict.bin and compression_state_dict.bin (see `python -m genrecraft.export`).") from exc
