"""Compare models on a test split: cross-entropy, FAD/KAD, spectral distances; a JSON, markdown and plot report.

    genrecraft eval compare --model base=facebook/musicgen-small --model full=//sig/1a2b3c4d \\
        --model lora=facebook/musicgen-small@exports/jpop/adapter --manifest data/jpop/egs/test --out reports/jpop

For each model (any spec of :func:`genrecraft.models.load_model`, named ``--model NAME=SPEC``):

1. ``ce``: cross-entropy and perplexity on every test clip (:mod:`eval.ce`, windows mode), per codebook and per
   genre/artist, with bootstrap intervals; and the paired difference to the baseline (the first model) on the
   same clips: the most sensitive answer to "did fine-tuning help";
2. ``generate``: the same N prompts and seeds for every model (:mod:`eval.generate`);
3. ``fad``: FAD and KAD of each model's text-to-music clips against the real test clips, with the chosen
   embedding (musicnn by default: offline), bootstrap intervals and the clips most unlike the reference; a
   ``real audio`` row (real continuations of the same length and number) shows what a perfect model would score
   with this many clips;
4. ``spectral``: the mel distance between each continuation of a real prompt and the real continuation, and the
   feature distance between generated and real clips (:mod:`eval.spectral`).

Outputs in ``--out``: ``report.json`` (everything), ``report.md`` (tables), ``plots/*.png`` (bars with
intervals; CE per genre), ``curves/<label>/training_curves.png`` for Dora runs, ``ce/<label>.json`` and
``generated/`` (reused by a rerun: finished stages are skipped as long as the settings match).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import typing as tp
from pathlib import Path

import numpy as np

from genrecraft.core import cli, compat
from genrecraft.core.atomic import write_json, write_text
from genrecraft.core.audio import list_audio, load_audio
from genrecraft.curves import plot_training_curves
from genrecraft.models import (ModelSpec, codec_fingerprint, default_device, load_for_inference, model_config, parse_model_spec,
                               training_segment)

from . import adherence, memorisation, stats
from .adherence import HIGHER_IS_BETTER, columns
from .ce import CEConfig, CEResult, evaluate_ce, paired_difference
from .embeddings import DEFAULT_BACKEND, embed_files, get_backend
from .fad import fad_from_embeddings
from .generate import REAL_LABEL, GenerateConfig, generate_for_eval
from .spectral import audio_features, feature_distance, mel_distance

logger = logging.getLogger(__name__)

STAGES = ("ce", "generate", "fad", "spectral")


@dataclasses.dataclass
class CompareConfig:
    """Settings of a comparison (one per report; identical for every model)."""

    ce: CEConfig = dataclasses.field(default_factory=CEConfig, metadata={"help": "cross-entropy settings"})
    generate: GenerateConfig = dataclasses.field(default_factory=GenerateConfig,
                                                 metadata={"help": "generation settings"})
    backend: str = dataclasses.field(default=DEFAULT_BACKEND, metadata={"help": "embedding backend for FAD/KAD"})
    fad_bootstrap: int = dataclasses.field(default=200, metadata={"help": "bootstrap resamples for FAD and the "
                                                                          "spectral distances (0: none)"})
    fad_inf: bool = dataclasses.field(default=False, metadata={"help": "also report FAD-inf"})
    stages: tp.Tuple[str, ...] = dataclasses.field(default=STAGES, metadata={"help": "stages to run"})
    device: tp.Optional[str] = dataclasses.field(default=None, metadata={"help": "cuda or cpu (default: cuda if "
                                                                                 "available)"})
    curves: bool = dataclasses.field(default=True, metadata={"help": "plot training curves of Dora runs"})
    train_manifest: tp.Optional[str] = dataclasses.field(default=None, metadata={
        "help": "the target style's training split: adds style adherence (eval.adherence) and the memorisation "
                "check (eval.memorisation)"})
    progress: bool = dataclasses.field(default=True, metadata={"help": "show progress bars"})

    def __post_init__(self):
        self.stages = tuple(self.stages)
        bad = [s for s in self.stages if s not in STAGES]
        if bad or not self.stages:
            raise ValueError(f"stages={list(self.stages)}: choose among {', '.join(STAGES)}")
        if "fad" in self.stages or "spectral" in self.stages:
            if "generate" not in self.stages:
                self.stages = self.stages + ("generate",)
        stats.check_bootstrap_args(self.fad_bootstrap, self.ce.confidence)


def parse_models(args: tp.Sequence[str]) -> tp.Dict[str, ModelSpec]:
    """``NAME=SPEC`` texts (a bare spec is named by :attr:`genrecraft.models.ModelSpec.label`) -> {name: ModelSpec},
    each spec parsed here, once, and passed down."""
    out: tp.Dict[str, ModelSpec] = {}
    for name, text in cli.named(args):
        spec = parse_model_spec(text)
        label = name or spec.label
        cli.check_names([*out, label], reserved=("reference", REAL_LABEL))
        out[label] = spec
    if not out:
        raise ValueError("no models to compare: pass --model NAME=SPEC, e.g. --model base=facebook/musicgen-small")
    return out


def as_spec(spec: tp.Union[str, ModelSpec]) -> ModelSpec:
    """A spec as a :class:`ModelSpec` (texts are parsed; callers at the edge pass ModelSpecs already)."""
    return spec if isinstance(spec, ModelSpec) else parse_model_spec(spec)


def _key(*parts: tp.Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _settings(config: tp.Any) -> tp.Dict[str, tp.Any]:
    data = dataclasses.asdict(config)
    data.pop("progress", None)
    return data


def _check_generation_settings(out_dir: Path, manifest: Path, config: GenerateConfig) -> None:
    settings = {"manifest": str(manifest.resolve()), "generate": _settings(config)}
    path = out_dir / "generated" / "settings.json"
    if path.exists():
        old = json.loads(path.read_text())
        if old != json.loads(json.dumps(settings)):
            raise ValueError(f"{out_dir / 'generated'} holds clips made with other settings or another manifest "
                             f"({path}); use another --out folder or delete that one")
    else:
        write_json(path, settings)


def _check_model_folder(folder: Path, spec: str) -> None:
    path = folder / "model.json"
    if path.exists():
        old = json.loads(path.read_text()).get("spec")
        if old != spec:
            raise ValueError(f"{folder} holds clips of model {old!r}, not {spec!r}: use another label or --out")
    else:
        write_json(path, {"spec": spec})


def compare(models: tp.Mapping[str, str], manifest: tp.Union[str, Path], out_dir: tp.Union[str, Path],
            config: tp.Optional[CompareConfig] = None) -> tp.Dict[str, tp.Any]:
    """Run the comparison (see the module docstring) and write the report; returns ``report.json``'s content.
    The first model is the baseline that the others are compared with."""

    compat.apply()
    models = {label: as_spec(spec) for label, spec in models.items()}
    config = config or CompareConfig()
    explicit_segment = config.ce.segment_duration is not None
    config = equal_ce_windows(models, config)
    manifest = Path(manifest)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = config.device or default_device()
    labels = list(models)
    baseline = labels[0]
    report: tp.Dict[str, tp.Any] = {
        "manifest": str(manifest), "models": {label: spec.text for label, spec in models.items()}, "baseline": baseline, "device": device,
        "settings": {"ce": _settings(config.ce), "ce_segment_explicit": explicit_segment,
                     "generate": _settings(config.generate), "backend": config.backend,
                     "fad_bootstrap": config.fad_bootstrap, "stages": list(config.stages)},
        "results": {label: {} for label in labels}}
    if "generate" in config.stages:
        _check_generation_settings(out_dir, manifest, config.generate)

    ce_results: tp.Dict[str, CEResult] = {}
    codecs: tp.Dict[str, str] = {}
    clips: tp.Dict[str, tp.Dict[str, tp.List[Path]]] = {}
    for label in labels:
        spec = models[label]
        loaded: tp.Dict[str, tp.Any] = {}

        def get_model(spec=spec, loaded=loaded):
            if "model" not in loaded:
                logger.info("Loading %s", spec.text)
                loaded["model"] = load_for_inference(spec, device=device)
            return loaded["model"]

        if "ce" in config.stages:
            path = out_dir / "ce" / f"{label}.json"
            key = _key(spec.text, str(manifest.resolve()), _settings(config.ce))
            cached = json.loads(path.read_text()) if path.exists() else {}
            if cached.get("key") == key and cached.get("codec"):
                ce_results[label] = CEResult.from_dict(cached["result"])
                codecs[label] = cached["codec"]
            else:
                codecs[label] = codec_fingerprint(get_model())
                check_same_codec(codecs, models)
                ce_results[label] = evaluate_ce(get_model(), manifest, config.ce, model_name=spec.text)
                write_json(path, {"key": key, "codec": codecs[label], "result": ce_results[label].to_dict()})
            check_same_codec(codecs, models)
        if "generate" in config.stages:
            _check_model_folder(out_dir / "generated" / label, spec.text)
            clips[label] = generate_for_eval(get_model, label, manifest, out_dir / "generated", config.generate)
        loaded.clear()
        _free_memory()

    for label, result in ce_results.items():
        entry = report["results"][label]
        entry["ce"] = {"metrics": result.metrics, "intervals": result.intervals, "n_clips": len(result.units),
                       "n_tokens": result.n_tokens, "groups": result.groups,
                       "segment_duration": result.config.get("segment_duration")}
        if label != baseline and baseline in ce_results:
            entry["ce"]["vs_baseline"] = paired_difference(ce_results[baseline], result, config.ce.bootstrap,
                                                           config.ce.confidence, config.ce.seed)
    if "fad" in config.stages:
        _fad_stage(report, clips, manifest, config)
    if "spectral" in config.stages:
        _spectral_stage(report, clips, manifest, config)
    if config.train_manifest and clips:
        adherence.compare_stage(report, clips, out_dir / "generated", config.train_manifest, config.ce.confidence,
                                config.ce.seed, config.progress)
        memorisation.compare_stage(report, clips, config.train_manifest, config.backend, config.ce.seed,
                                   config.progress)
    if config.curves:
        report["curves"] = {}
        for label in labels:
            parsed = models[label]
            if parsed.kind == "experiment":
                report["curves"][label] = [str(p) for p in _training_curves(parsed.name, out_dir / "curves" / label)]
    report["plots"] = [str(p) for p in plot_report(report, out_dir / "plots")]
    write_json(out_dir / "report.json", report)

    write_text(out_dir / "report.md", markdown_report(report))
    return report


def equal_ce_windows(models: tp.Mapping[str, tp.Union[str, ModelSpec]], config: CompareConfig) -> CompareConfig:
    """``config`` with a CE window length every model shares: the one set, else the shortest training segment
    of the models (a model trained on 5 s windows is not scored on 30 s while its base is)."""
    if "ce" not in config.stages or config.ce.segment_duration is not None:
        return config

    segments = {label: training_segment(model_config(spec)) for label, spec in models.items()}
    shortest = min(segments.values())
    if len(set(segments.values())) > 1:
        logger.info("Training segments differ (%s): every model's CE is computed in %g s windows",
                    ", ".join(f"{k} {v:g} s" for k, v in segments.items()), shortest)
    return dataclasses.replace(config, ce=dataclasses.replace(config.ce, segment_duration=shortest))


def check_same_codec(codecs: tp.Mapping[str, str], models: tp.Mapping[str, tp.Any]) -> None:
    """Refuse a comparison whose models tokenize audio differently (their CEs would be on different targets)."""
    if len(set(codecs.values())) <= 1:
        return
    first = next(iter(codecs))
    other = next(label for label, value in codecs.items() if value != codecs[first])
    raise ValueError(
        f"models {first!r} ({as_spec(models[first]).text}) and {other!r} ({as_spec(models[other]).text}) tokenize audio with different "
        f"codecs ({codecs[first]} vs {codecs[other]}), so their cross-entropies are on different targets and "
        "cannot be compared. Train and export every model with its base model's own codec (the genrecraft recipes "
        "use compression_model_checkpoint=//pretrained/facebook/musicgen-*), or compare them in separate runs.")


def _free_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _training_curves(run: str, out_dir: Path) -> tp.List[Path]:
    try:
        return plot_training_curves(run, out_dir)
    except (ValueError, OSError) as exc:
        logger.warning("No training curves for %s: %s", run, exc)
        return []


def _fad_stage(report, clips, manifest: Path, config: CompareConfig) -> None:

    backend = get_backend(config.backend)
    reference_files = list_audio(manifest)
    reference = embed_files(backend, reference_files, progress=config.progress, desc="embedding (test clips)")
    report["fad_reference"] = {"backend": backend.cache_id, "clips": len(reference_files)}
    sets = {label: paths["text"] for label, paths in clips.items()}
    first = next(iter(clips.values()), {})
    if "reference" in first:
        sets[REAL_LABEL] = first["reference"]
    for label, files in sets.items():
        embedded = embed_files(backend, files, progress=config.progress, desc=f"embedding ({label})")
        result = fad_from_embeddings(embedded, reference, backend_name=backend.cache_id,
                                     names=[str(f) for f in files], bootstrap=config.fad_bootstrap,
                                     confidence=config.ce.confidence, inf=config.fad_inf, seed=config.ce.seed)
        report["results"].setdefault(label, {})["fad"] = result.to_dict()


def _spectral_stage(report, clips, manifest: Path, config: CompareConfig) -> None:
    from tqdm import tqdm


    sr = None
    reference_files = list_audio(manifest)
    ref_features = None
    for label, paths in clips.items():
        entry = report["results"][label].setdefault("spectral", {})
        text = paths["text"]
        import soundfile as sf

        sr = sr or sf.info(str(text[0])).samplerate
        if ref_features is None:
            ref_features = np.stack([audio_features(load_audio(f, sr), sr) for f in tqdm(
                reference_files, desc="features (test clips)", disable=not config.progress)])
        if len(ref_features) < 2:  # the distance is scaled by the test clips' spread, which one clip has not
            logger.warning("feature distance skipped: the test split %s has %d clip(s), it needs at least 2",
                           manifest, len(ref_features))
        else:
            gen_features = np.stack([audio_features(load_audio(f, sr), sr) for f in text])
            entry["feature_distance"] = feature_distance(gen_features, ref_features)
            entry["feature_interval"] = stats.statistic_interval(
                len(gen_features), lambda idx: feature_distance(gen_features[idx], ref_features),
                n_boot=config.fad_bootstrap, confidence=config.ce.confidence, seed=config.ce.seed)
        if "continuation" in paths:
            values = [mel_distance(load_audio(g, sr), load_audio(r, sr), sr)
                      for g, r in tqdm(list(zip(paths["continuation"], paths["reference"])),
                                       desc=f"mel distance ({label})", disable=not config.progress)]
            entry["mel_distance"] = float(np.mean(values))
            entry["mel_interval"] = stats.mean_interval(values, config.fad_bootstrap, config.ce.confidence,
                                                        config.ce.seed)
            entry["mel_per_clip"] = values


# --- output ---------------------------------------------------------------------------------------------------


def _fmt(value: tp.Optional[float], interval: tp.Optional[tp.Sequence[float]] = None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:.{digits}f}"
    if interval and all(v is not None and math.isfinite(v) for v in interval):
        text += f" [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"
    return text


Column = tp.Tuple[str, str, tp.Callable[[dict], tp.Tuple[tp.Any, tp.Any]]]


def metric_columns() -> tp.List[Column]:
    """The report's metrics: (key in the report, column title, getter of (value, interval)); lower is better for
    all of them but :func:`higher_is_better`'s."""
    return [
        ("ce", "CE (nats)", lambda r: (r.get("ce", {}).get("metrics", {}).get("ce"),
                                       r.get("ce", {}).get("intervals", {}).get("ce"))),
        ("ppl", "perplexity", lambda r: (r.get("ce", {}).get("metrics", {}).get("ppl"),
                                         r.get("ce", {}).get("intervals", {}).get("ppl"))),
        ("fad", "FAD", lambda r: (r.get("fad", {}).get("fad"), r.get("fad", {}).get("fad_interval"))),
        ("kad", "KAD", lambda r: (r.get("fad", {}).get("kad"), r.get("fad", {}).get("kad_interval"))),
        ("mel", "mel distance (dB)", lambda r: (r.get("spectral", {}).get("mel_distance"),
                                                r.get("spectral", {}).get("mel_interval"))),
        ("feature", "feature distance", lambda r: (r.get("spectral", {}).get("feature_distance"),
                                                   r.get("spectral", {}).get("feature_interval"))),
    ] + _adherence_columns()


def _adherence_columns() -> tp.List[Column]:
    return columns()


def higher_is_better(key: str) -> bool:
    """Whether a higher value of column ``key`` is better (the adherence scores); lower is, for all others."""
    return key in HIGHER_IS_BETTER


def arrow(key: str) -> str:
    return "↑" if higher_is_better(key) else "↓"


def present_columns(results: tp.Mapping[str, tp.Any]) -> tp.List[Column]:
    """The :func:`metric_columns` that at least one of ``results`` has a value for."""
    return [c for c in metric_columns() if any(c[2](r)[0] is not None for r in results.values())]


def markdown_report(report: tp.Mapping[str, tp.Any]) -> str:
    """The report as markdown: the main table, the paired CE differences, CE per group, FAD outliers."""
    results = report["results"]
    columns = present_columns(results)
    confidence = report["settings"]["ce"].get("confidence", 0.95)
    gen = report["settings"]["generate"]
    lines = [f"# Model comparison on `{report['manifest']}`", "",
             f"Lower is better (↓) except where marked ↑. Brackets: {confidence:.0%} bootstrap intervals. Baseline: "
             f"**{report['baseline']}**.", ""]
    lines += ["| model | " + " | ".join(f"{c[1]} {arrow(c[0])}" for c in columns) + " |",
              "| --- | " + " | ".join("---" for _ in columns) + " |"]
    for label, result in results.items():
        cells = [_fmt(*c[2](result)) for c in columns]
        name = f"{label} (`{report['models'][label]}`)" if label in report["models"] else f"*{label}*"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    diffs = [(label, r["ce"]["vs_baseline"]) for label, r in results.items() if "vs_baseline" in r.get("ce", {})]
    if diffs:
        lines += [f"## Cross-entropy change against {report['baseline']} (same clips, paired bootstrap)", "",
                  "| model | ΔCE (nats) | P(better than baseline) |", "| --- | --- | --- |"]
        for label, d in diffs:
            lines.append(f"| {label} | {_fmt(d['ce_diff'], d['ce_diff_interval'], 4)} | "
                         f"{_fmt(d.get('p_b_better'), digits=3)} |")
        lines.append("")
    for field in report["settings"]["ce"].get("group_by", ()):
        values = sorted({v for r in results.values() for v in r.get("ce", {}).get("groups", {}).get(field, {})})
        if not values or len(values) > 40:
            continue
        labels = [label for label, r in results.items() if "ce" in r]
        lines += [f"## Cross-entropy per {field}", "", "| " + field + " | clips | " + " | ".join(labels) + " |",
                  "| --- | --- | " + " | ".join("---" for _ in labels) + " |"]
        for value in values:
            first = next(r["ce"]["groups"][field][value] for r in results.values()
                         if value in r.get("ce", {}).get("groups", {}).get(field, {}))
            cells = []
            for label in labels:
                g = results[label]["ce"]["groups"][field].get(value)
                cells.append(_fmt(g["metrics"]["ce"], g["intervals"].get("ce")) if g else "–")
            lines.append(f"| {value} | {first['n_clips']} | " + " | ".join(cells) + " |")
        lines.append("")
    outliers = [(label, r["fad"]["outliers"][:3]) for label, r in results.items() if r.get("fad", {}).get("outliers")]
    if outliers:
        lines += ["## Clips most unlike the reference (per-clip Fréchet distance)", ""]
        for label, items in outliers:
            lines.append(f"- {label}: " + ", ".join(f"`{Path(p).name}` ({v:.1f})" for p, v in items))
        lines.append("")
    segments = sorted({r["ce"]["segment_duration"] for r in results.values() if "ce" in r})
    ce_settings = report["settings"]["ce"]
    sampling = ("every test clip in windows" if ce_settings.get("sampling", "windows") == "windows" else
                "audiocraft's valid sampling (random segments seeded by index)")
    origin = ("set explicitly" if report["settings"].get("ce_segment_explicit", True) else
              "the shortest training segment of the models")
    lines += ["## Settings", "",
              f"- Cross-entropy: {sampling} of {', '.join(f'{s:g}' for s in segments) or '?'} s "
              f"({origin}), audiocraft's masking and conditioning; bootstrap over "
              f"{ce_settings['bootstrap_unit']}s.",
              f"- Generation: {gen['n']} clips of {gen['duration']} s per model, top-k {gen['top_k']}, "
              f"CFG {gen['cfg_coef']}, seeds from {gen['seed']}; continuations of {gen['prompt_duration']} s "
              "real prompts.",
              f"- FAD/KAD: embedding `{report.get('fad_reference', {}).get('backend', report['settings']['backend'])}`"
              f" against {report.get('fad_reference', {}).get('clips', '?')} test clips. FAD depends on the number "
              f"of clips: compare rows of this table only. *{REAL_LABEL}*: real continuations, the floor a "
              "perfect model would reach with this many clips. KAD is unbiased, so it can fall below 0 when a set "
              "is as close to the test clips as chance allows.",
              "- mel distance: continuation of a real prompt vs the real continuation (dB); feature distance: "
              "cosine distance of mean MFCC/chroma/spectral feature vectors, generated vs test clips.", ""]

    lines += adherence.markdown_lines(report) + memorisation.markdown_lines(report)
    if report.get("plots"):
        lines += ["## Plots", ""] + [f"![{Path(p).stem}]({Path(p).relative_to(Path(p).parent.parent)})"
                                     for p in report["plots"]] + [""]
    for label, paths in report.get("curves", {}).items():
        lines += [f"Training curves of {label}: " + ", ".join(f"`{p}`" for p in paths), ""]
    return "\n".join(lines)


def plot_report(report: tp.Mapping[str, tp.Any], out_dir: Path) -> tp.List[Path]:
    """Bar plots with intervals: one panel per metric (``metrics.png``), and CE per group (``ce_by_<field>.png``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    columns = present_columns(results)
    written: tp.List[Path] = []
    if not columns:
        return written
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(columns), figsize=(3.2 * len(columns), 3.6), squeeze=False)
    for ax, (key, title, getter) in zip(axes[0], columns):
        names, values, lows, highs = [], [], [], []
        for label, result in results.items():
            value, interval = getter(result)
            if value is None:
                continue
            names.append(label)
            values.append(value)
            ok = interval and all(v is not None and math.isfinite(v) for v in interval)
            lows.append(value - interval[0] if ok else 0.0)
            highs.append(interval[1] - value if ok else 0.0)
        colors = ["0.6" if n == REAL_LABEL else f"C{i}" for i, n in enumerate(names)]
        ax.bar(range(len(names)), values, yerr=[np.maximum(lows, 0), np.maximum(highs, 0)], capsize=4,
               color=colors)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_title(f"{title} {arrow(key)}")
        # the axis spans the values and their intervals (not 0..max): differences of a few percent stay visible
        ends = [v - lo for v, lo in zip(values, lows)] + [v + hi for v, hi in zip(values, highs)]
        ends = [e for e in ends if math.isfinite(e)]
        if ends:
            low, high = min(ends), max(ends)
            pad = 0.15 * (high - low) or 0.05 * abs(high) or 0.05
            ax.set_ylim(low - pad, high + pad)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = out_dir / "metrics.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    for field in report["settings"]["ce"].get("group_by", ()):
        labels = [label for label, r in results.items() if r.get("ce", {}).get("groups", {}).get(field)]
        values = sorted({v for label in labels for v in results[label]["ce"]["groups"][field]})
        if not labels or len(values) < 2 or len(values) > 30:
            continue
        fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(values) * len(labels) / 2 + 2), 3.8))
        width = 0.8 / len(labels)
        for i, label in enumerate(labels):
            groups = results[label]["ce"]["groups"][field]
            ys = [groups[v]["metrics"]["ce"] if v in groups else np.nan for v in values]
            err = [[max(0.0, groups[v]["metrics"]["ce"] - groups[v]["intervals"]["ce"][0]) if v in groups and
                    groups[v]["intervals"] else 0.0 for v in values],
                   [max(0.0, groups[v]["intervals"]["ce"][1] - groups[v]["metrics"]["ce"]) if v in groups and
                    groups[v]["intervals"] else 0.0 for v in values]]
            ax.bar(np.arange(len(values)) + i * width, ys, width, yerr=err, capsize=3, label=label)
        ax.set_xticks(np.arange(len(values)) + width * (len(labels) - 1) / 2, values, rotation=30, ha="right")
        ax.set_ylabel("cross-entropy (nats) ↓")
        ax.set_title(f"Cross-entropy per {field}")
        ax.legend()
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        path = out_dir / f"ce_by_{field}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
