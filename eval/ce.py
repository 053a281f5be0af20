"""Cross-entropy and perplexity of a MusicGen on a manifest: overall, per codebook and per label group.

The model sees exactly what audiocraft's ``MusicGenSolver`` shows it in its valid stage: the audio is encoded by
the model's own compression model, the text conditions come from each clip's MusicInfo sidecar through
audiocraft's ``MusicDataset`` (``MusicInfo.to_condition_attributes``, then the LM's condition provider, with the
LM in eval mode so condition dropout is off), and the loss is computed on the positions the delay pattern marks
valid (``padding_mask & model_output.mask``). Metric names are audiocraft's: ``ce``, ``ppl``, ``ce_q1..``,
``ppl_q1..`` (nats; ``ce`` is the mean of the per-codebook CEs).

Two ways to choose the audio (:attr:`CEConfig.sampling`):

- ``windows`` (default, for test sets): every clip of the manifest, cut into consecutive windows of the model's
  training segment length (the last, shorter window kept if at least ``min_segment_ratio`` of it). Every token
  counts once; ``ce_q<k>`` is summed NLL over summed tokens; bootstrap intervals resample clips (or songs:
  ``bootstrap_unit="title"``), and per-group numbers come from the sidecar fields in ``group_by``.
- ``solver``: audiocraft's own valid loader for this manifest (``builders.get_audio_datasets`` with the model's
  training config: random segments seeded by index, ``dataset.valid.num_samples``, the same batches), and the
  batch-averaged metrics of ``MusicGenSolver.run_step``. On the data a Dora run validated on, this reproduces
  that run's valid ``ce`` (see the tests); use it to compare with ``history.json``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import typing as tp
from pathlib import Path

import numpy as np

from genrecraft.core import compat
from genrecraft.core.audio import _manifest_file, read_manifest
from genrecraft.models import training_segment

from . import stats

logger = logging.getLogger(__name__)

SAMPLINGS = ("windows", "solver")


@dataclasses.dataclass
class CEConfig:
    """How to compute cross-entropy on a manifest (see the module docstring)."""

    sampling: str = dataclasses.field(default="windows", metadata={
        "help": "windows: every clip in consecutive windows (test sets); solver: audiocraft's valid loader, "
                "to reproduce a Dora run's valid ce"})
    segment_duration: tp.Optional[float] = dataclasses.field(default=None, metadata={
        "help": "window length in seconds (default: the model's training segment, e.g. 30)"})
    min_segment_ratio: tp.Optional[float] = dataclasses.field(default=None, metadata={
        "help": "windows: keep a clip's last, shorter window if it is at least this fraction of a window "
                "(default: the model's dataset.min_segment_ratio)"})
    batch_size: tp.Optional[int] = dataclasses.field(default=None, metadata={
        "help": "windows per forward pass (default: 4 for windows, the training config's for solver)"})
    num_samples: tp.Optional[int] = dataclasses.field(default=None, metadata={
        "help": "solver: number of random segments (default: the config's dataset.valid.num_samples)"})
    group_by: tp.Tuple[str, ...] = dataclasses.field(default=("genre", "artist"), metadata={
        "help": "sidecar fields to report CE per value of (windows mode)"})
    bootstrap: int = dataclasses.field(default=stats.DEFAULT_BOOTSTRAP, metadata={
        "help": "bootstrap resamples for confidence intervals (0: none)"})
    confidence: float = dataclasses.field(default=stats.DEFAULT_CONFIDENCE, metadata={
        "help": "confidence level of the intervals"})
    bootstrap_unit: str = dataclasses.field(default="clip", metadata={
        "help": "what the bootstrap resamples: 'clip', or a sidecar field such as 'title' to resample whole "
                "songs (chunks of one song are not independent)"})
    seed: int = dataclasses.field(default=0, metadata={"help": "seed of the bootstrap"})
    autocast: tp.Optional[bool] = dataclasses.field(default=None, metadata={
        "help": "run the LM under autocast (default: as in training on CUDA, off on CPU)"})
    max_clips: tp.Optional[int] = dataclasses.field(default=None, metadata={
        "help": "windows: evaluate only the first N clips of the manifest"})
    progress: bool = dataclasses.field(default=True, metadata={"help": "show a progress bar"})

    def __post_init__(self):
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sampling={self.sampling!r}: use one of {', '.join(SAMPLINGS)}")
        if self.segment_duration is not None and not self.segment_duration > 0:
            raise ValueError(f"segment_duration={self.segment_duration} must be positive")
        if self.min_segment_ratio is not None and not 0.0 <= self.min_segment_ratio <= 1.0:
            raise ValueError(f"min_segment_ratio={self.min_segment_ratio} must be in [0, 1]")
        for name in ("batch_size", "num_samples", "max_clips"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name}={value} must be >= 1 (or unset)")
        stats.check_bootstrap_args(self.bootstrap, self.confidence)
        self.group_by = tuple(self.group_by)


@dataclasses.dataclass
class CEResult:
    """Cross-entropy of one model on one manifest.

    ``metrics``: ``ce``, ``ppl``, ``ce_q<k>``, ``ppl_q<k>``; ``intervals``: bootstrap intervals of the same keys;
    ``groups``: ``{field: {value: {"metrics", "intervals", "n_clips", "n_tokens"}}}``; ``units``: one row per
    clip (windows) or segment (solver) with its summed NLL and token count per codebook, for paired comparisons.
    """

    model: str
    manifest: str
    sampling: str
    metrics: tp.Dict[str, float]
    intervals: tp.Dict[str, tp.Tuple[float, float]]
    groups: tp.Dict[str, tp.Dict[str, tp.Dict[str, tp.Any]]]
    units: tp.List[tp.Dict[str, tp.Any]]
    n_tokens: int
    config: tp.Dict[str, tp.Any]

    def to_dict(self) -> tp.Dict[str, tp.Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: tp.Mapping[str, tp.Any]) -> "CEResult":
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})

    def arrays(self) -> tp.Tuple[np.ndarray, np.ndarray]:
        """Summed NLL and token counts per unit: two arrays [units, K]."""
        return (np.array([u["nll"] for u in self.units], dtype=np.float64),
                np.array([u["tokens"] for u in self.units], dtype=np.float64))


# --- the loss, as audiocraft computes it ---------------------------------------------------------------------


def cross_entropy(logits, targets, mask):
    """audiocraft's ``MusicGenSolver._compute_cross_entropy``: CE per codebook over valid positions, and their mean.

    ``logits`` [B, K, T, card], ``targets`` [B, K, T] (int), ``mask`` [B, K, T] (bool). Returns
    ``(ce, [ce_q1, ..., ce_qK])`` (0-d tensors).
    """
    import torch.nn.functional as F

    B, K, T = targets.shape
    if logits.shape[:-1] != targets.shape or mask.shape != targets.shape:
        raise ValueError(f"shapes disagree: logits {tuple(logits.shape)}, targets {tuple(targets.shape)}, "
                         f"mask {tuple(mask.shape)}; expected [B, K, T, card], [B, K, T], [B, K, T]")
    per_codebook = []
    for k in range(K):
        logits_k = logits[:, k].reshape(-1, logits.size(-1))
        targets_k = targets[:, k].reshape(-1)
        mask_k = mask[:, k].reshape(-1)
        per_codebook.append(F.cross_entropy(logits_k[mask_k], targets_k[mask_k]))
    return sum(per_codebook) / K, per_codebook


def token_nll(logits, targets, mask):
    """Summed negative log-likelihood and number of valid tokens per item and codebook: two tensors [B, K].

    Same loss as :func:`cross_entropy` (``nll.sum(0) / tokens.sum(0)`` is its per-codebook CE), kept per item so
    that items can be pooled and resampled. Invalid positions (NaN logits, special-token targets) are ignored.
    """
    import torch
    import torch.nn.functional as F

    safe_targets = torch.where(mask, targets, torch.zeros_like(targets))
    nll = F.cross_entropy(logits.permute(0, 3, 1, 2).float(), safe_targets, reduction="none")  # [B, K, T]
    nll = torch.where(mask, nll, torch.zeros_like(nll))
    return nll.double().sum(-1), mask.sum(-1).double()


def metrics_from_sums(nll: np.ndarray, tokens: np.ndarray) -> tp.Dict[str, float]:
    """``ce``, ``ppl``, ``ce_q<k>``, ``ppl_q<k>`` from summed NLL and tokens [K] (or [units, K], summed first)."""
    nll = np.asarray(nll, dtype=np.float64).reshape(-1, np.shape(nll)[-1]).sum(0)
    tokens = np.asarray(tokens, dtype=np.float64).reshape(-1, np.shape(tokens)[-1]).sum(0)
    if (tokens <= 0).any():
        raise ValueError("no valid tokens to compute cross-entropy on (clips shorter than the codebook delay?)")
    ce_q = nll / tokens
    out = {"ce": float(ce_q.mean()), "ppl": float(math.exp(ce_q.mean()))}
    for k, value in enumerate(ce_q, start=1):
        out[f"ce_q{k}"] = float(value)
        out[f"ppl_q{k}"] = float(math.exp(value))
    return out


def bootstrap_intervals(nll: np.ndarray, tokens: np.ndarray, n_boot: int, confidence: float, seed: int = 0,
                        clusters: tp.Optional[tp.Sequence[tp.Any]] = None) -> tp.Dict[str, tp.Tuple[float, float]]:
    """Bootstrap intervals of :func:`metrics_from_sums`' values; ``clusters`` (one label per unit) resamples
    whole clusters (e.g. all chunks of a song) instead of units."""
    nll = np.asarray(nll, dtype=np.float64)
    tokens = np.asarray(tokens, dtype=np.float64)
    if clusters is not None:
        labels, inverse = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)
        onehot = np.zeros((len(labels), len(nll)))
        onehot[inverse, np.arange(len(nll))] = 1.0
        nll, tokens = onehot @ nll, onehot @ tokens
    if n_boot == 0 or len(nll) < 2:
        return {}
    counts = stats.resample_counts(len(nll), n_boot, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        ce_q = (counts @ nll) / (counts @ tokens)  # [n_boot, K]
    out = {"ce": stats.percentile_interval(ce_q.mean(1), confidence)}
    out["ppl"] = tuple(math.exp(v) for v in out["ce"])
    for k in range(ce_q.shape[1]):
        out[f"ce_q{k + 1}"] = stats.percentile_interval(ce_q[:, k], confidence)
        out[f"ppl_q{k + 1}"] = tuple(math.exp(v) for v in out[f"ce_q{k + 1}"])
    return out


def paired_difference(a: CEResult, b: CEResult, n_boot: int = stats.DEFAULT_BOOTSTRAP,
                      confidence: float = stats.DEFAULT_CONFIDENCE, seed: int = 0) -> tp.Dict[str, tp.Any]:
    """``ce(b) - ce(a)`` on the same clips, with a paired bootstrap interval (the same clips resampled for both).

    Negative means ``b`` predicts the data better. Both results must come from the same manifest and settings.
    """
    keys_a = [u["id"] for u in a.units]
    keys_b = [u["id"] for u in b.units]
    if keys_a != keys_b:
        raise ValueError(f"cannot pair {a.model!r} and {b.model!r}: they were evaluated on different clips or "
                         "settings (same manifest, sampling and segment duration needed)")
    nll_a, tok_a = a.arrays()
    nll_b, tok_b = b.arrays()
    diff = metrics_from_sums(nll_b, tok_b)["ce"] - metrics_from_sums(nll_a, tok_a)["ce"]
    out: tp.Dict[str, tp.Any] = {"ce_diff": diff, "ce_diff_interval": (float("nan"), float("nan"))}
    if n_boot and len(keys_a) >= 2:
        counts = stats.resample_counts(len(keys_a), n_boot, seed)
        with np.errstate(invalid="ignore", divide="ignore"):
            d = ((counts @ nll_b) / (counts @ tok_b)).mean(1) - ((counts @ nll_a) / (counts @ tok_a)).mean(1)
        out["ce_diff_interval"] = stats.percentile_interval(d, confidence)
        out["p_b_better"] = float((d < 0).mean())
    return out


# --- evaluation ----------------------------------------------------------------------------------------------


def _autocast(cfg, device: str, enabled: tp.Optional[bool]):
    import torch
    from audiocraft.utils.autocast import TorchAutocast

    if enabled is None:
        enabled = bool(cfg.get("autocast", False)) and device.startswith("cuda")
    dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}[str(cfg.get("autocast_dtype", "float16"))]
    return TorchAutocast(enabled=enabled, device_type="cuda" if device.startswith("cuda") else "cpu", dtype=dtype)


def _lm_outputs(lm, compression_model, audio, infos, autocast, padding_with_special_token: bool = False):
    """Encode ``audio`` [B, C, T] and run the LM as ``MusicGenSolver.run_step`` does in valid mode.

    Returns ``(logits [B, K, T, card], tokens [B, K, T], mask [B, K, T])``.
    """
    import torch

    attributes = [info.to_condition_attributes() for info in infos]
    attributes = lm.cfg_dropout(attributes)  # no-ops in eval mode, kept for parity with the solver
    attributes = lm.att_dropout(attributes)
    tokenized = lm.condition_provider.tokenize(attributes)
    tokens, scale = compression_model.encode(audio)
    if scale is not None:
        raise ValueError("compression models with scale (renormalisation) are not supported by MusicGen's LM")
    with autocast:
        condition_tensors = lm.condition_provider(tokenized)
    padding_mask = torch.ones_like(tokens, dtype=torch.bool)
    if padding_with_special_token:
        tokens, padding_mask = tokens.clone(), padding_mask.clone()
        for i, info in enumerate(infos):
            valid = math.floor(float(info.n_frames) / info.sample_rate * compression_model.frame_rate)
            tokens[i, :, valid:] = lm.special_token_id
            padding_mask[i, :, valid:] = False
    with autocast:
        output = lm.compute_predictions(tokens, [], condition_tensors)
    return output.logits, tokens, padding_mask & output.mask


def _info_value(info, field: str) -> str:
    value = getattr(info, field, None)
    if value is None:
        return "(none)"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "(none)"
    return str(value)


def _check_group_fields(fields: tp.Sequence[str]) -> None:
    from audiocraft.data.music_dataset import MusicInfo

    known = {f.name for f in dataclasses.fields(MusicInfo)}
    bad = [f for f in fields if f not in known]
    if bad:
        raise ValueError(f"group_by/bootstrap_unit field(s) {bad} are not MusicInfo fields; use some of "
                         f"{', '.join(sorted(known - {'self_wav', 'joint_embed', 'meta'}))}")


def _windows(model, manifest: Path, config: CEConfig) -> tp.Tuple[tp.List[dict], tp.Dict[str, tp.Any]]:
    import torch
    from audiocraft.data.music_dataset import MusicDataset
    from audiocraft.modules.conditioners import WavCondition
    from tqdm import tqdm

    lm, codec = model.lm, model.compression_model
    cfg = lm.cfg
    device = str(next(lm.parameters()).device)
    segment = config.segment_duration or training_segment(cfg)
    ratio = config.min_segment_ratio if config.min_segment_ratio is not None else float(
        cfg.dataset.get("min_segment_ratio", 0.8))
    batch_size = config.batch_size or 4
    autocast = _autocast(cfg, device, config.autocast)
    dataset = MusicDataset.from_meta(manifest, segment_duration=None, sample_rate=model.sample_rate,
                                     channels=model.audio_channels, pad=True, return_info=True,
                                     info_fields_required=False)
    n_clips = min(len(dataset), config.max_clips or len(dataset))
    seg_len = int(round(segment * model.sample_rate))
    min_len = max(int(math.ceil(ratio * seg_len)), int(math.ceil(model.sample_rate / codec.frame_rate)) * 8)
    K = lm.num_codebooks
    units: tp.List[dict] = []
    sums = {"nll": np.zeros((n_clips, K)), "tokens": np.zeros((n_clips, K))}
    pending: tp.List[tp.Tuple[int, tp.Any, tp.Any]] = []  # full-length windows: (clip index, [C, T], info)

    def flush(batch):
        audio = torch.stack([w for _, w, _ in batch]).to(device)
        logits, tokens, mask = _lm_outputs(lm, codec, audio, [i for _, _, i in batch], autocast)
        nll, count = token_nll(logits, tokens, mask)
        for (u, _, _), n, c in zip(batch, nll.cpu().numpy(), count.cpu().numpy()):
            sums["nll"][u] += n
            sums["tokens"][u] += c

    for index in tqdm(range(n_clips), desc="cross-entropy", unit="clip", disable=not config.progress):
        wav, info = dataset[index]
        unit = {"id": str(info.meta.path), "path": str(info.meta.path), "windows": 0}
        for field in config.group_by + (() if config.bootstrap_unit == "clip" else (config.bootstrap_unit,)):
            unit[field] = _info_value(info, field)
        units.append(unit)
        for start in range(0, wav.shape[-1], seg_len):
            window = wav[:, start:start + seg_len]
            n = window.shape[-1]
            if n < seg_len and (n < ratio * seg_len or n < min_len):
                continue  # a short remainder, as audiocraft's min_segment_ratio drops it
            winfo = dataclasses.replace(info, seek_time=start / model.sample_rate, n_frames=n, total_frames=n)
            winfo.self_wav = WavCondition(wav=window[None], length=torch.tensor([n]),
                                          sample_rate=[model.sample_rate], path=[info.meta.path],
                                          seek_time=[winfo.seek_time])
            unit["windows"] += 1
            if n < seg_len:
                flush([(index, window, winfo)])  # a shorter last window: alone, so nothing is padded
            else:
                pending.append((index, window, winfo))
                if len(pending) >= batch_size:
                    flush(pending)
                    pending = []
    if pending:
        flush(pending)
    for index, unit in enumerate(units):
        unit["nll"] = sums["nll"][index].tolist()
        unit["tokens"] = sums["tokens"][index].tolist()
    empty = [u["path"] for u in units if u["windows"] == 0]
    if empty:
        logger.warning("%d clip(s) shorter than %.0f%% of a %.1f s window were skipped, e.g. %s", len(empty),
                       100 * ratio, segment, empty[0])
        units = [u for u in units if u["windows"]]
    if not units:
        raise ValueError(f"no clip of {manifest} is long enough for a {segment} s window (min_segment_ratio "
                         f"{ratio}); pass a shorter segment_duration")
    return units, {"segment_duration": segment, "min_segment_ratio": ratio, "batch_size": batch_size}


def _solver(model, manifest: Path, config: CEConfig) -> tp.Tuple[tp.List[dict], tp.Dict[str, tp.Any],
                                                                 tp.Dict[str, float]]:
    import flashy
    import torch
    from audiocraft.solvers import builders
    from omegaconf import OmegaConf, open_dict
    from tqdm import tqdm

    lm, codec = model.lm, model.compression_model
    device = str(next(lm.parameters()).device)
    cfg = OmegaConf.create(OmegaConf.to_container(lm.cfg, resolve=True))
    with open_dict(cfg):
        cfg.execute_only = "valid"
        cfg.datasource.valid = str(manifest)
        cfg.dataset.num_workers = 0
        cfg.dataset.segment_duration = config.segment_duration or training_segment(cfg)
        if config.batch_size:
            cfg.dataset.batch_size = config.batch_size
        if config.num_samples:
            cfg.dataset.valid.num_samples = config.num_samples
        if config.min_segment_ratio is not None:
            cfg.dataset.min_segment_ratio = config.min_segment_ratio
    loader = builders.get_audio_datasets(cfg, dataset_type=builders.DatasetType.MUSIC)["valid"]
    autocast = _autocast(cfg, device, config.autocast)
    special = bool(cfg.get("tokens", {}).get("padding_with_special_token", False))
    average = flashy.averager()
    metrics: tp.Dict[str, float] = {}
    units: tp.List[dict] = []
    for batch_index, (audio, infos) in enumerate(tqdm(loader, desc="cross-entropy (solver)", unit="batch",
                                                      disable=not config.progress)):
        with torch.no_grad():
            logits, tokens, mask = _lm_outputs(lm, codec, audio.to(device), infos, autocast, special)
            ce, ce_q = cross_entropy(logits, tokens, mask)
            nll, count = token_nll(logits, tokens, mask)
        step = {"ce": ce, "ppl": torch.exp(ce)}
        for k, value in enumerate(ce_q, start=1):
            step[f"ce_q{k}"] = value
            step[f"ppl_q{k}"] = torch.exp(value)
        metrics = average(step)
        for i, info in enumerate(infos):
            unit = {"id": f"{batch_index}:{i}:{info.meta.path}@{info.seek_time:.3f}", "path": info.meta.path,
                    "seek_time": info.seek_time, "nll": nll[i].tolist(), "tokens": count[i].tolist()}
            if config.bootstrap_unit != "clip":  # the cluster label the bootstrap resamples by (e.g. the title)
                unit[config.bootstrap_unit] = _info_value(info, config.bootstrap_unit)
            units.append(unit)
    used = {"segment_duration": float(cfg.dataset.segment_duration), "batch_size": int(cfg.dataset.batch_size),
            "num_samples": len(loader.dataset), "min_segment_ratio": float(cfg.dataset.min_segment_ratio)}
    return units, used, {k: float(v) for k, v in metrics.items()}


def check_manifest(manifest: tp.Union[str, Path]) -> int:
    """Raise ValueError naming the file and line of the first bad entry of ``manifest`` (not JSON, a missing
    field, a wrong type, audio that does not exist) or an empty manifest; returns the number of entries.
    audiocraft's own loader would fail on these with a traceback, or later, in the middle of a run."""
    entries = read_manifest(manifest)
    file = _manifest_file(Path(manifest))
    numbered = [n for n, line in enumerate(Path(file).read_text(encoding="utf-8").splitlines(), start=1)
                if line.strip()] if file is not None and not file.name.endswith(".gz") else []
    for index, entry in enumerate(entries):
        if not Path(entry["path"]).is_file():
            where = f"{file}:{numbered[index]}" if index < len(numbered) else f"{file}, entry {index + 1}"
            raise ValueError(f"{where}: audio {entry['path']} does not exist (a moved dataset: rerun "
                             "python -m dataset_builder on its new folder to rewrite its manifests)")
    return len(entries)


def evaluate_ce(model, manifest: tp.Union[str, Path], config: tp.Optional[CEConfig] = None,
                model_name: str = "") -> CEResult:
    """Cross-entropy of a ``MusicGen`` (see :func:`genrecraft.models.load_model`) on an audiocraft manifest.

    ``manifest``: a ``data.jsonl`` or its folder (e.g. ``<dataset>/egs/test``). Audio is resampled to the
    model's rate. Returns a :class:`CEResult`.
    """
    import torch

    compat.apply()
    config = config or CEConfig()
    manifest = Path(manifest)
    if not manifest.exists():
        raise FileNotFoundError(f"manifest {manifest} does not exist")
    check_manifest(manifest)
    if not hasattr(model.lm, "cfg"):
        raise ValueError("the model's LM has no training config (lm.cfg): load it with genrecraft.models.load_model")
    _check_group_fields(tuple(config.group_by) + (() if config.bootstrap_unit == "clip" else
                                                  (config.bootstrap_unit,)))
    model.lm.eval()
    with torch.no_grad():
        if config.sampling == "windows":
            units, used = _windows(model, manifest, config)
            nll = np.array([u["nll"] for u in units])
            tokens = np.array([u["tokens"] for u in units])
            metrics = metrics_from_sums(nll, tokens)
        else:
            units, used, metrics = _solver(model, manifest, config)
            nll = np.array([u["nll"] for u in units])
            tokens = np.array([u["tokens"] for u in units])
    clusters = None if config.bootstrap_unit == "clip" else [u.get(config.bootstrap_unit) for u in units]
    intervals = bootstrap_intervals(nll, tokens, config.bootstrap, config.confidence, config.seed, clusters)
    groups: tp.Dict[str, tp.Dict[str, tp.Dict[str, tp.Any]]] = {}
    if config.sampling == "windows":
        for field in config.group_by:
            values = sorted({u[field] for u in units})
            groups[field] = {}
            for value in values:
                idx = [i for i, u in enumerate(units) if u[field] == value]
                sub_clusters = None if clusters is None else [clusters[i] for i in idx]
                groups[field][value] = {
                    "metrics": metrics_from_sums(nll[idx], tokens[idx]),
                    "intervals": bootstrap_intervals(nll[idx], tokens[idx], config.bootstrap, config.confidence,
                                                     config.seed, sub_clusters),
                    "n_clips": len(idx), "n_tokens": int(tokens[idx].sum())}
    settings = dataclasses.asdict(config)
    settings.update(used)
    return CEResult(model=model_name or getattr(model, "name", ""), manifest=str(manifest),
                    sampling=config.sampling, metrics=metrics, intervals=intervals, groups=groups, units=units,
                    n_tokens=int(tokens.sum()), config=settings)
