"""genrecraft's Dora solvers: MusicGen fine-tuning with early stopping, and LoRA training.

Both extend audiocraft's ``MusicGenSolver`` (same data pipeline, loss, metrics ``ce``, ``ppl``, ``ce_q1..``,
generation and evaluation stages) and are registered in :data:`genrecraft.train.SOLVERS`:

- ``solver: musicgen_ft``: full fine-tuning, plus early stopping on valid CE (``early_stopping.patience``);
- ``solver: musicgen_lora``: loads a base LM (``lora.base``), injects LoRA with :mod:`lora`, freezes the base,
  optimises only the adapters, checkpoints only adapter + optimizer state (small files: the checkpoint's
  ``model`` entry holds the adapter tensors, and the base is re-read from ``lora.base`` on resume), keeps an EMA
  of the adapters only, and writes the best state as an adapter folder (``<xp>/adapter``) each time it improves.
"""

from __future__ import annotations

import itertools
import logging
import typing as tp
from pathlib import Path

import torch
from torch import nn

from .core import compat

compat.apply()

from audiocraft.solvers import builders  # noqa: E402
from audiocraft.solvers.musicgen import MusicGenSolver  # noqa: E402

import lora  # noqa: E402

from .curves import STEP_STAGE  # noqa: E402
from .models import load_base_lm_state, load_lm_state  # noqa: E402

logger = logging.getLogger(__name__)

ADAPTER_DIR = "adapter"


class EarlyStoppingMixin:
    """Stop when valid CE has not improved for ``early_stopping.patience`` epochs (0 or missing: never).

    Uses the solver's history, so a resumed or re-run experiment takes the same decision.
    """

    history: tp.List[dict]
    cfg: tp.Any

    def epochs_since_best(self) -> int:
        scores = [epoch["valid"]["ce"] for epoch in self.history if "valid" in epoch and "ce" in epoch["valid"]]
        if not scores:
            return 0
        best = min(range(len(scores)), key=scores.__getitem__)
        return len(scores) - 1 - best

    def should_stop_training(self) -> bool:
        if super().should_stop_training():  # type: ignore[misc]
            return True
        patience = int(self.cfg.get("early_stopping", {}).get("patience", 0) or 0)
        if patience > 0 and self.epochs_since_best() >= patience:
            logger.info("Early stopping: valid ce has not improved for %d epochs (patience %d).",
                        self.epochs_since_best(), patience)
            return True
        return False


class PeakMemoryMixin:
    """Adds ``peak_gpu_gib`` (the stage's peak allocated GPU memory) to the train and valid summaries on CUDA, so
    ``history.json`` says what a run needed (the benchmarks read it)."""

    device: tp.Any

    def common_train_valid(self, dataset_split: str, **kwargs: tp.Any):
        cuda = torch.cuda.is_available() and str(self.device).startswith("cuda")
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        metrics = super().common_train_valid(dataset_split, **kwargs)  # type: ignore[misc]
        if cuda:
            metrics["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
        return metrics


class StepMetricsMixin:
    """Sends the training metrics of every ``logging.log_updates``-th update to the experiment loggers (TensorBoard
    with ``logging.log_tensorboard``, W&B with ``logging.log_wandb``), as ``train_step/<metric>`` at the global
    update; ``train_step/epoch`` is the fractional epoch. audiocraft itself sends only per-epoch summaries."""

    def run_step(self, idx: int, batch: tp.Any, metrics: dict):
        metrics = super().run_step(idx, batch, metrics)  # type: ignore[misc]
        every = max(1, int(self.log_updates))  # type: ignore[attr-defined]
        if self.is_training and (idx + 1) % every == 0:  # type: ignore[attr-defined]
            per_epoch = self.train_updates_per_epoch  # type: ignore[attr-defined]
            step = (self.epoch - 1) * per_epoch + idx + 1  # type: ignore[attr-defined]
            values = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float, torch.Tensor))
                      and (not isinstance(v, torch.Tensor) or v.numel() == 1)}
            values["epoch"] = self.epoch - 1 + (idx + 1) / per_epoch  # type: ignore[attr-defined]
            # flashy's ResultLogger.log_metrics would also print a summary line per call: go to the loggers only
            for logger in self.result_logger._experiment_loggers.values():  # type: ignore[attr-defined]
                logger.log_metrics(STEP_STAGE, values, step=step)
        return metrics


class MusicGenFTSolver(StepMetricsMixin, PeakMemoryMixin, EarlyStoppingMixin, MusicGenSolver):
    """Full fine-tuning of MusicGen (audiocraft's solver) with early stopping."""


class _AdapterModules(nn.Module):
    """The LM's adapter modules, shared (not copied): the state source for checkpoints, best state and EMA."""

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.hosts = nn.ModuleDict()
        for name, module in lm.named_modules():
            if hasattr(module, "lora") and isinstance(module.lora, nn.ModuleDict) and name:
                self.hosts[name.replace(".", "__")] = module.lora


def lora_config(block: tp.Any) -> "lora.LoraConfig":
    """The :class:`lora.LoraConfig` of a recipe's ``lora`` block: every key but ``base`` is a LoraConfig field
    (declared once there, with its default and help); unknown keys are an error naming the known ones."""
    from omegaconf import OmegaConf

    values = OmegaConf.to_container(block, resolve=True) if OmegaConf.is_config(block) else dict(block)
    values.pop("base", None)
    return lora.LoraConfig.from_dict(values)


class MusicGenLoRASolver(StepMetricsMixin, PeakMemoryMixin, EarlyStoppingMixin, MusicGenSolver):
    """Train LoRA adapters on a frozen MusicGen LM (see the module docstring). Config block ``lora``:

    ``base`` (model to adapt), ``r``, ``alpha``, ``dropout``, ``targets``, ``layers``, ``rslora``, ``quantize``
    (QLoRA: ``4bit`` or ``8bit`` frozen transformer weights).
    """

    def build_model(self) -> None:
        super().build_model()
        cfg = self.cfg
        if cfg.continue_from:
            raise ValueError(
                f"continue_from={cfg.continue_from!r} is not used by solver=musicgen_lora: the model to adapt is "
                "lora.base (e.g. lora.base=//pretrained/facebook/musicgen-small); rerunning the same command "
                "resumes a LoRA run.")
        if self.cfg.fsdp.use:
            raise ValueError("fsdp.use=true is not supported with LoRA: the frozen base needs no sharding of "
                             "optimizer state; use DDP (dora run -d)")
        if cfg.lora.base:
            self.logger.info("Loading the base LM from %s", cfg.lora.base)
            load_lm_state(self.model, load_base_lm_state(str(cfg.lora.base)))
        else:
            self.logger.warning("lora.base is empty: adapting a randomly initialised LM (tests only)")
        config = lora_config(cfg.lora)
        report = lora.inject(self.model, config)
        self.logger.info("%s", report)
        if config.quantize:
            # The base's matrices are quantized copies now; the few full-precision tensors left (embeddings, heads,
            # norms) get memory of their own, so the memory-mapped base file is let go.
            for tensor in itertools.chain(self.model.parameters(), self.model.buffers()):
                tensor.data = tensor.data.clone()
        self.adapters = _AdapterModules(self.model)

        # Checkpoints, best state and EMA track the adapters, not the frozen base. audiocraft insists on a state
        # source named "model", so that name now serves the adapter modules.
        from flashy.state import AttributeWrapper

        self.stateful.sources["model"] = AttributeWrapper(self, "adapters")
        self.best_state.states.pop("model", None)
        self.register_best_state("model")
        self._ema_sources["model"] = self.adapters
        self.optimizer = builders.get_optimizer(lora.lora_parameters(self.model), self.cfg.optim)
        self.lr_scheduler = builders.get_lr_scheduler(self.optimizer, self.cfg.schedule, self.total_updates)

    def save_checkpoints(self):
        super().save_checkpoints()
        import flashy

        if flashy.distrib.is_rank_zero() and self._new_best_state:
            with self.swap_best_state():
                lora.save_adapter(self.model, Path(self.folder) / ADAPTER_DIR,
                                  base_model_id=str(self.cfg.lora.base or "random-init"))
            self.logger.info("Best adapter written to %s", Path(self.folder) / ADAPTER_DIR)
