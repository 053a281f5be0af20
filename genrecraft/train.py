"""Dora entry point: audiocraft's training main with genrecraft's shims and solvers.

Use it as ``dora -P genrecraft run solver=musicgen/<config> ...`` (or ``export DORA_PACKAGE=genrecraft``).
Compared with ``-P audiocraft`` it

- applies :mod:`genrecraft.core.compat` in every process Dora starts (also the workers of ``dora run -d``, which
  Dora re-launches with ``-P <this package>``);
- finds genrecraft's configs in ``audiocraft_configs/`` and the user's in ``<work dir>/configs`` (through the
  Hydra search-path plugin in ``hydra_plugins/genrecraft_searchpath``);
- knows genrecraft's extra solvers (see :data:`SOLVERS`), e.g. ``solver: musicgen_lora``;
- keeps experiments in ``<work dir>/dora`` unless ``AUDIOCRAFT_DORA_DIR`` is set.
"""

from __future__ import annotations

import importlib
import typing as tp

from dora import hydra_main

from . import spectral_codec  # noqa: F401  (registers the demo's codec with audiocraft's builder)
from .core import compat

compat.apply()

import audiocraft.solvers  # noqa: E402  (after compat.apply: needs USER and the config tree)
import audiocraft.train as _ac_train  # noqa: E402
from audiocraft.environment import AudioCraftEnvironment  # noqa: E402
from audiocraft.utils.cluster import get_slurm_parameters  # noqa: E402

# `solver:` value in a config -> "module:Class" of a genrecraft solver. Looked up lazily so that importing
# this module stays cheap. Anything not listed goes to audiocraft's own registry.
SOLVERS: tp.Dict[str, str] = {
    "musicgen_ft": "genrecraft.solvers:MusicGenFTSolver",
    "musicgen_lora": "genrecraft.solvers:MusicGenLoRASolver",
}

_audiocraft_get_solver = audiocraft.solvers.get_solver


def get_solver(cfg):
    """Instantiate the solver named by ``cfg.solver``: genrecraft's own first, then audiocraft's."""
    target = SOLVERS.get(cfg.solver)
    if target is None:
        return _audiocraft_get_solver(cfg)
    module_name, _, class_name = target.partition(":")
    klass = getattr(importlib.import_module(module_name), class_name)
    return klass(cfg)


# audiocraft.train.get_solver (used by its main and by get_solver_from_xp) calls `solvers.get_solver`
# through the package attribute, so registering there makes our solvers visible to every audiocraft path.
audiocraft.solvers.get_solver = get_solver


def check_datasource(cfg) -> None:
    """Stop early, and clearly, when no dataset was chosen (instead of audiocraft's error deep in a loader)."""
    missing = [split for split in ("train", "valid", "evaluate", "generate")
               if split in cfg.datasource and not cfg.datasource[split]]
    if "train" in missing or "valid" in missing:
        raise ValueError(
            f"datasource.{missing[0]} is not set: choose a dataset with `dset=audio/<name>`. "
            "`python -m dataset_builder playlist.txt --out DIR` registers one per dataset it builds; "
            "list them with `ls $GENRECRAFT_WORK_DIR/configs/dset/audio` (default work dir: "
            "~/.local/share/genrecraft).")


def check_schedule(cfg) -> None:
    """A warm-up as long as the whole run crashes audiocraft's cosine scheduler (ZeroDivisionError) mid-run."""
    schedule = cfg.get("schedule", {})
    if schedule.get("lr_scheduler") != "cosine":
        return
    warmup = schedule.get("cosine", {}).get("warmup") or 0
    total = int(cfg.optim.epochs) * int(cfg.optim.updates_per_epoch)
    if warmup >= total:
        raise ValueError(
            f"schedule.cosine.warmup={warmup} but the run has only {total} updates (optim.epochs x "
            f"optim.updates_per_epoch): lower the warm-up (e.g. schedule.cosine.warmup={total // 10}) or train longer.")


@hydra_main(config_path=str(compat.audiocraft_config_dir()), config_name="config", version_base="1.1")
def main(cfg):
    """Train, resume or evaluate one experiment (audiocraft's main, unchanged in behaviour)."""
    check_datasource(cfg)
    check_schedule(cfg)
    return _ac_train.main.main(cfg)


main.dora.dir = AudioCraftEnvironment.get_dora_dir()
main._base_cfg.slurm = get_slurm_parameters(main._base_cfg.slurm)


if __name__ == "__main__":
    main()
