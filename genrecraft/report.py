"""Stage 5 and 6 of the demo (and of the same loop on your own music): evaluate, make listening pairs, report.

:func:`evaluate` takes the models to compare (base, full fine-tuning, LoRA), compares them on the
target style's test split with :func:`eval.compare` (cross-entropy and perplexity with paired intervals, FAD/KAD
with the offline musicnn embedding, mel and feature distances), makes blind listening pairs with
:func:`scripts.listening.pairs.make_pairs`, and writes one page that shows it all: ``report.html`` (the table,
the plots, audio players for the same prompt across models) and the same content as ``report.md``.
:func:`build_report` is :func:`evaluate` then :func:`write_report`.

    genrecraft report --out reports/jpop --manifest data/jpop/egs/test \\
        --model base=facebook/musicgen-small --model full=//sig/1a2b3c4d --model lora=//sig/5e6f7a8b
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import math
import os
import sys
import typing as tp
from pathlib import Path

from eval import adherence, memorisation
from eval.ce import CEConfig
from eval.generate import GenerateConfig
from eval.report import (REAL_LABEL, CompareConfig, _fmt as fmt, arrow, as_spec, compare, higher_is_better,
                         markdown_report, metric_columns, parse_models, present_columns)
from scripts.listening import pairs

from .core import cli
from .core.atomic import write_text
from .core.runs import read_history
from .curves import plot_valid_comparison
from .models import SPEC_HELP, default_device, load_for_inference

#: Models of the report in their order; the first is the baseline.
LABELS = ("base", "full", "lora")
CURVES_CAPTION = ("Valid cross-entropy per epoch of each training run, on that run's own validation split (the "
                  "fine-tuning runs on the target style's).")
DEMO_NOTE = ("Demo: a tiny MusicGen trained in minutes on CPU on a few synthetic songs, and a signal-processing "
             "stand-in for EnCodec (residual VQ over semitone-band spectra, Griffin-Lim decoder). The clips decode to "
             "music you can judge for style (tempo, key, instrumentation), not to MusicGen's quality, and FAD values "
             "are not comparable with published ones.")
TITLES = {"base": "base model", "full": "full fine-tuning", "lora": "LoRA"}


@dataclasses.dataclass
class ReportConfig:
    """Sizes of the evaluation (the demo passes its own; defaults suit a GPU run on a real test split)."""

    clips_per_model: int = 32
    clip_seconds: float = 10.0
    prompt_seconds: float = 3.0
    listening_prompts: int = 10
    listening_seconds: float = 15.0
    style: tp.Optional[str] = None
    title: str = "genrecraft report"
    note: tp.Optional[str] = None
    device: tp.Optional[str] = None
    seed: int = 0
    cfg_coef: float = 3.0  # classifier-free guidance of every generation (MusicGen's default)
    segment_duration: tp.Optional[float] = None  # CE window in seconds; None: the models' shortest training segment
    train_manifest: tp.Optional[str] = None  # the target style's training split: adherence and memorisation


def _relative(path: tp.Union[str, Path], root: Path) -> str:
    return os.path.relpath(Path(path).resolve(), root.resolve()).replace(os.sep, "/")


def _fmt(value: tp.Any, interval: tp.Any = None, digits: int = 3) -> str:
    return fmt(value, interval, digits)


def clear_best(results: tp.Mapping[str, tp.Any], getter: tp.Callable, higher: bool = False) -> tp.Optional[str]:
    """The model with the lowest value of a metric (the highest with ``higher``) when its interval lies wholly
    below (above) every other model's interval (``getter(result) -> (value, interval)``); ``None`` when the best
    is not clear."""
    sign = -1.0 if higher else 1.0
    scored = []
    for label, result in results.items():
        value, interval = getter(result)
        if label == REAL_LABEL or value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        ok = interval is not None and len(interval) == 2 and all(v is not None and math.isfinite(v) for v in interval)
        low, high = (sorted((sign * interval[0], sign * interval[1])) if ok else (sign * value, sign * value))
        scored.append((sign * value, label, (low, high)))
    if len(scored) < 2:
        return None
    scored.sort()
    (_, label, (_, high)), others = scored[0], scored[1:]
    return label if all(high < low for _, _, (low, _) in others) else None


def summary_lines(report: tp.Mapping[str, tp.Any]) -> tp.List[str]:
    """Plain-language findings: each model's cross-entropy change against the baseline, and the clearly best
    model on each metric (:func:`clear_best`)."""
    lines = []
    results = report["results"]
    baseline = report["baseline"]
    base_ce = results.get(baseline, {}).get("ce", {}).get("metrics", {}).get("ce")
    for label, result in results.items():
        diff = result.get("ce", {}).get("vs_baseline")
        if not diff or base_ce is None:
            continue
        lo, hi = diff["ce_diff_interval"]
        verdict = ("lower (better)" if math.isfinite(hi) and hi < 0 else
                   "higher (worse)" if math.isfinite(lo) and lo > 0 else "not clearly different")
        lines.append(f"{TITLES.get(label, label)}: cross-entropy {result['ce']['metrics']['ce']:.3f} vs "
                     f"{base_ce:.3f} nats for {TITLES.get(baseline, baseline)} (change "
                     f"{_fmt(diff['ce_diff'], diff['ce_diff_interval'])}): {verdict}.")
    for key, title, getter in metric_columns():
        label = clear_best(results, getter, higher_is_better(key))
        if label is not None:
            lines.append(f"Best {title}: {TITLES.get(label, label)} ({getter(results[label])[0]:.3f}; its interval "
                         "does not overlap the others').")
        elif sum(_finite(getter(r)[0]) for l, r in results.items() if l != REAL_LABEL) >= 2:
            lines.append(f"{title}: no clear difference between the models (overlapping intervals).")
    lines += paired_note(report)
    return lines


def _finite(value: tp.Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def paired_note(report: tp.Mapping[str, tp.Any]) -> tp.List[str]:
    """A line for each model whose paired CE change is clear while its CE interval overlaps the baseline's: the
    two answer different questions, and the paired one is the right one for "did fine-tuning help"."""
    results = report["results"]
    baseline = report["baseline"]
    base = results.get(baseline, {}).get("ce", {})
    base_iv = base.get("intervals", {}).get("ce")
    lines = []
    for label, result in results.items():
        diff = result.get("ce", {}).get("vs_baseline")
        iv = result.get("ce", {}).get("intervals", {}).get("ce")
        if not diff or not iv or not base_iv:
            continue
        lo, hi = diff["ce_diff_interval"]
        paired_clear = (math.isfinite(hi) and hi < 0) or (math.isfinite(lo) and lo > 0)
        overlap = iv[0] <= base_iv[1] and base_iv[0] <= iv[1]
        if paired_clear and overlap:
            lines.append(f"{TITLES.get(label, label)}: its CE interval overlaps {TITLES.get(baseline, baseline)}'s, "
                         "yet the paired change is clear. Not a contradiction: each CE interval resamples clips, and "
                         "clips differ in difficulty far more than the models differ; the paired change compares "
                         "both models on the same clips, so that spread cancels. Read the paired change.")
    return lines


def training_lines(runs: tp.Mapping[str, Path]) -> tp.List[str]:
    """Per training run: valid CE at the first and best epochs, which epoch's checkpoint the evaluation used
    (audiocraft keeps the state of the lowest valid CE as ``best_state``), and a warning when valid CE rose."""
    lines = []
    for label, folder in runs.items():
        history = read_history(folder)
        valid = [(i + 1, e["valid"]["ce"]) for i, e in enumerate(history) if "ce" in e.get("valid", {})]
        if not valid:
            continue
        best_epoch, best = min(valid, key=lambda x: x[1])
        name = TITLES.get(label, label)
        line = (f"{name}: valid CE {valid[0][1]:.3f} after epoch 1, best {best:.3f} at epoch {best_epoch} of "
                f"{len(valid)}; the evaluation uses epoch {best_epoch}'s checkpoint (the lowest valid CE).")
        if len(valid) > 1 and best_epoch == 1:
            line += (" Valid CE rose after the first epoch: training past it overfitted (or the learning rate is too "
                     "high), so more epochs did not help.")
        elif valid[-1][1] > best:
            line += f" It rose again afterwards (to {valid[-1][1]:.3f} at the last epoch)."
        lines.append(line)
    return lines


def _audio_rows(eval_dir: Path, labels: tp.Sequence[str], limit: int) -> tp.List[tp.Dict[str, tp.Any]]:
    """Prompts of the evaluation clips with each model's clip: [{"description", "text": {label: path},
    "continuation": {label: path}, "reference": path}]."""
    prompts_file = eval_dir / "generated" / "prompts.jsonl"
    if not prompts_file.exists():
        return []
    rows = []
    seen = set()
    for line in prompts_file.read_text(encoding="utf-8").splitlines():
        prompt = json.loads(line)
        if len(rows) >= limit or prompt.get("description") in seen:
            continue  # a test split smaller than the clips cycles its prompts: show each description once
        seen.add(prompt.get("description"))
        stem = f"{int(prompt['index']):04d}"
        row: tp.Dict[str, tp.Any] = {"description": prompt.get("description") or "(no description)",
                                     "text": {}, "continuation": {}, "reference": None}
        for label in labels:
            for kind in ("text", "continuation"):
                path = eval_dir / "generated" / label / kind / f"{stem}.wav"
                if path.exists():
                    row[kind][label] = path
        reference = eval_dir / "generated" / "reference" / "continuation" / f"{stem}.wav"
        row["reference"] = reference if reference.exists() else None
        rows.append(row)
    return rows


def render_markdown(report: tp.Mapping[str, tp.Any], out: Path, extra: tp.Mapping[str, tp.Any]) -> str:
    """The report as markdown, with paths relative to ``out``."""
    lines = [f"# {extra['title']}", ""]
    if extra.get("note"):
        lines += [f"> {extra['note']}", ""]
    lines += [f"- {line}" for line in summary_lines(report)] + [""]
    body = markdown_report(report).split("\n", 1)[1]  # drop its title, keep its tables and settings
    body = body.replace("](plots/", f"]({_relative(extra['eval_dir'], out)}/plots/")
    lines += ["## Metrics", body.strip(), ""]
    if extra.get("curves"):
        lines += ["## Training", "", CURVES_CAPTION, ""] + [f"- {t}" for t in extra.get("training", [])] + [
                  "", f"![valid cross-entropy per epoch]({_relative(extra['curves'], out)})", ""]
    rows = extra.get("audio", [])
    if rows:
        lines += ["## Listen", "", "Text-to-music clips from the same description and seed with every model:", "",
                  "| description | " + " | ".join(TITLES.get(l, l) for l in extra["labels"]) + " |",
                  "| --- | " + " | ".join("---" for _ in extra["labels"]) + " |"]
        for row in rows:
            cells = [f"[{row['text'][l].name}]({_relative(row['text'][l], out)})" if l in row["text"] else "–"
                     for l in extra["labels"]]
            lines.append(f"| {row['description']} | " + " | ".join(cells) + " |")
        lines.append("")
    listening = extra.get("listening")
    if listening:
        lines += ["## Listening test", "",
                  f"{listening['n_pairs']} blind A/B pairs ({listening['n_clips']} clips at "
                  f"{listening['loudness_lufs']:.0f} LUFS) in `{_relative(listening['folder'], out)}`. Rate them "
                  "(several raters, each in their own browser session), then analyse:", "", "```",
                  f"python -m scripts.rate {listening['folder']}", f"python -m scripts.analyze {listening['folder']}",
                  "```", ""]
    return "\n".join(lines)


def _html_table(report: tp.Mapping[str, tp.Any]) -> str:
    results = report["results"]
    columns = present_columns(results)
    best = {key: clear_best(results, getter, higher_is_better(key)) for key, _, getter in columns}
    head = "".join(f"<th>{html.escape(title)} {arrow(key)}</th>" for key, title, _ in columns)
    rows = []
    for label, result in results.items():
        name = TITLES.get(label, label)
        spec = report["models"].get(label)
        cells = []
        for key, _, getter in columns:
            value, interval = getter(result)
            text = html.escape(_fmt(value, interval))
            cells.append(f"<td class='best'>{text}</td>" if best[key] == label else f"<td>{text}</td>")
        spec_html = f"<br><code>{html.escape(spec)}</code>" if spec else ""
        rows.append(f"<tr><th>{html.escape(name)}{spec_html}</th>{''.join(cells)}</tr>")
    return f"<table><tr><th>model</th>{head}</tr>{''.join(rows)}</table>"


def _audio(path: tp.Optional[Path], out: Path) -> str:
    if path is None:
        return "–"
    return f"<audio controls preload='none' src='{html.escape(_relative(path, out))}'></audio>"


def render_html(report: tp.Mapping[str, tp.Any], out: Path, extra: tp.Mapping[str, tp.Any]) -> str:
    """The report as one self-contained HTML page (no external assets), paths relative to ``out``."""
    labels = extra["labels"]
    parts = [f"<h1>{html.escape(extra['title'])}</h1>"]
    if extra.get("note"):
        parts.append(f"<p class='note'>{html.escape(extra['note'])}</p>")
    parts += ["<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in summary_lines(report)) + "</ul>",
             f"<h2>Metrics</h2><p>On <code>{html.escape(str(report['manifest']))}</code>. Lower is better (↓) "
             f"except where marked ↑; brackets are {report['settings']['ce'].get('confidence', 0.95):.0%} bootstrap intervals; "
             "a model is highlighted where its interval lies wholly below the others'.</p>", _html_table(report)]

    for section in (adherence.markdown_lines(report), memorisation.markdown_lines(report)):
        if section:
            parts.append(f"<h2>{html.escape(section[0].lstrip('# '))}</h2><pre class='md'>"
                         f"{html.escape(chr(10).join(section[2:]).strip())}</pre>")
    for plot in report.get("plots", []):
        parts.append(f"<p><img src='{html.escape(_relative(plot, out))}' alt='{html.escape(Path(plot).stem)}'></p>")
    if extra.get("curves"):
        training = "".join(f"<li>{html.escape(t)}</li>" for t in extra.get("training", []))
        parts.append(f"<h2>Training</h2><p>{html.escape(CURVES_CAPTION)}</p><ul>{training}</ul>"
                     f"<p><img src='{html.escape(_relative(extra['curves'], out))}' "
                     "alt='valid cross-entropy per epoch'></p>")
    rows = extra.get("audio", [])
    if rows:
        head = "".join(f"<th>{html.escape(TITLES.get(l, l))}</th>" for l in labels)
        body = "".join(f"<tr><td>{html.escape(row['description'])}</td>"
                       + "".join(f"<td>{_audio(row['text'].get(l), out)}</td>" for l in labels) + "</tr>"
                       for row in rows)
        parts.append("<h2>Listen: text to music</h2><p>The same description and seed with every model.</p>"
                     f"<table><tr><th>description</th>{head}</tr>{body}</table>")
        cont = [row for row in rows if row["continuation"]]
        if cont:
            body = "".join(f"<tr><td>{html.escape(row['description'])}</td><td>{_audio(row['reference'], out)}</td>"
                           + "".join(f"<td>{_audio(row['continuation'].get(l), out)}</td>" for l in labels)
                           + "</tr>" for row in cont)
            parts.append("<h2>Listen: continuations of a real prompt</h2><p>What really followed the prompt, then "
                         "each model's continuation of it.</p><table><tr><th>description</th><th>real</th>"
                         f"{head}</tr>{body}</table>")
    listening = extra.get("listening")
    if listening:
        parts.append(f"<h2>Listening test</h2><p>{listening['n_pairs']} blind A/B pairs ({listening['n_clips']} "
                     f"clips at {listening['loudness_lufs']:.0f} LUFS) in "
                     f"<code>{html.escape(str(listening['folder']))}</code>. Rate them, then analyse:</p>"
                     f"<pre>python -m scripts.rate {html.escape(str(listening['folder']))}\n"
                     f"python -m scripts.analyze {html.escape(str(listening['folder']))}</pre>")
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.35em .6em;"
             "text-align:left;vertical-align:top}td.best{background:#e3f4e3;font-weight:600}img{max-width:100%}"
             "audio{width:220px}pre{background:#f4f4f4;padding:.8em}"
             ".note{background:#fff6dd;border-left:4px solid #e0b000;padding:.6em .9em}")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(extra['title'])}"
            f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>\n")


@dataclasses.dataclass
class Evaluation:
    """What :func:`evaluate` found: ``report`` is :func:`eval.compare`'s report; ``extra`` holds the audio rows,
    the training-curve plot and the listening test for the page."""

    out: Path
    report: tp.Dict[str, tp.Any]
    extra: tp.Dict[str, tp.Any]


def evaluate(models: tp.Mapping[str, str], manifest: Path, out: Path, config: ReportConfig,
             dataset: tp.Optional[Path] = None, runs: tp.Optional[tp.Mapping[str, Path]] = None,
             progress: bool = True) -> Evaluation:
    """Evaluate ``models`` ({label: spec}, the first is the baseline) on ``manifest`` into ``out/eval``, make
    listening pairs from ``dataset``'s test descriptions into ``out/listening`` (none when
    ``config.listening_prompts`` is 0 or no dataset is given), and plot the valid CE of ``runs`` ({label: xp
    folder}). Rerunning with the same settings reuses what is done."""

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    labels = list(models)
    compare_config = CompareConfig(
        ce=CEConfig(progress=progress, seed=config.seed, segment_duration=config.segment_duration),
        generate=GenerateConfig(n=config.clips_per_model, duration=config.clip_seconds,
                                prompt_duration=config.prompt_seconds, seed=config.seed, cfg_coef=config.cfg_coef,
                                progress=progress),
        device=config.device, curves=False, progress=progress, train_manifest=config.train_manifest)
    eval_dir = out / "eval"
    report = compare(dict(models), manifest, eval_dir, compare_config)
    extra: tp.Dict[str, tp.Any] = {"title": config.title, "note": config.note, "labels": labels,
                                   "eval_dir": eval_dir,
                                   "audio": _audio_rows(eval_dir, labels, limit=config.clips_per_model)}
    if runs:
        extra["training"] = training_lines(runs)
        extra["curves"] = plot_valid_comparison({TITLES.get(k, k): v for k, v in runs.items()},
                                                out / "plots" / "valid_ce.png")
    if config.listening_prompts and dataset is not None:
        extra["listening"] = dataclasses.asdict(make_listening_pairs(models, dataset, out / "listening", config))
    return Evaluation(out=out, report=report, extra=extra)


def write_report(evaluation: Evaluation) -> tp.Dict[str, Path]:
    """Write ``report.html`` and ``report.md`` into the evaluation's folder; returns their paths."""
    out = evaluation.out
    html_path, md_path = out / "report.html", out / "report.md"
    write_text(md_path, render_markdown(evaluation.report, out, evaluation.extra))
    write_text(html_path, render_html(evaluation.report, out, evaluation.extra))
    return {"report": html_path, "markdown": md_path}


def build_report(models: tp.Mapping[str, str], manifest: Path, out: Path, config: ReportConfig,
                 dataset: tp.Optional[Path] = None, runs: tp.Optional[tp.Mapping[str, Path]] = None,
                 progress: bool = True) -> tp.Dict[str, Path]:
    """:func:`evaluate`, then :func:`write_report`."""
    return write_report(evaluate(models, manifest, out, config, dataset=dataset, runs=runs, progress=progress))


def make_listening_pairs(models: tp.Mapping[str, str], dataset: Path, folder: Path, config: ReportConfig):
    """Blind A/B pairs of every pair of models on random test descriptions (:mod:`scripts.listening.pairs`)."""
    device = config.device or default_device()
    prompts = pairs.sample_descriptions(dataset, config.listening_prompts, seed=config.seed)
    settings = pairs.PairsConfig(generation=pairs.GenerationSettings(duration=config.listening_seconds,
                                                                      seed=config.seed, cfg_coef=config.cfg_coef),
                                 style=config.style, blind_seed=config.seed)
    specs = {label: as_spec(spec) for label, spec in models.items()}
    loaders = {label: (lambda spec=spec: load_for_inference(spec, device=device)) for label, spec in specs.items()}
    return pairs.make_pairs(loaders, prompts, folder, settings, specs={k: v.text for k, v in specs.items()})


def evaluate_demo(runs: tp.Mapping[str, tp.Any], out: Path, config: tp.Any) -> Evaluation:
    """The demo's stage 5: ``runs`` are its Dora experiments ``{"base", "full", "lora"}``, ``config`` its
    :class:`genrecraft.demo.DemoConfig`; style B's dataset is ``out/data/style_b``."""
    dataset = Path(out) / "data" / "style_b"
    models = {label: f"//sig/{runs[label].sig}" for label in LABELS}
    report_config = ReportConfig(clips_per_model=config.clips_per_model, clip_seconds=config.clip_seconds,
                                 prompt_seconds=min(3.0, config.clip_seconds),
                                 listening_prompts=config.listening_prompts,
                                 listening_seconds=max(1.0, config.clip_seconds), style="lo-fi", device="cpu",
                                 title="genrecraft demo: base vs full fine-tuning vs LoRA on style B (lo-fi)",
                                 note=DEMO_NOTE, train_manifest=str(dataset / "egs" / "train"),
                                 cfg_coef=config.cfg_coef)
    return evaluate(models, dataset / "egs" / "test", out, report_config, dataset=dataset,
                    runs={label: Path(runs[label].folder) for label in LABELS})


def build_parser(prog: str = "python -m genrecraft.report") -> argparse.ArgumentParser:
    parser = cli.parser(prog, __doc__, epilog=SPEC_HELP)
    cli.add_models(parser, required=False,
                   help="a model to compare, repeatable, the baseline first: NAME=SPEC, e.g. "
                        "base=facebook/musicgen-small")
    parser.add_argument("models", nargs="*", help=argparse.SUPPRESS)  # the earlier positional NAME=SPEC form
    parser.add_argument("--manifest", type=Path, required=True,
                        help="test manifest (e.g. data/jpop/egs/test): CE, FAD reference and prompts")
    parser.add_argument("--dataset", type=Path, default=None,
                        help="dataset folder for listening-test prompts (default: none, no listening pairs)")
    cli.add_out(parser, type=Path, help="report folder")
    defaults = ReportConfig()
    cli.add_num_clips(parser, defaults.clips_per_model,
                      help="generated clips per model for FAD and spectral distances")
    cli.retired(parser, "--clips", to="--num-clips", type=int)
    cli.add_duration(parser, defaults.clip_seconds)
    cli.retired(parser, "--seconds", to="--duration", type=float)
    parser.add_argument("--listening-prompts", type=int, default=defaults.listening_prompts,
                        help="prompts of the listening test (0: none)")
    parser.add_argument("--listening-duration", type=float, default=defaults.listening_seconds,
                        help="seconds per listening-test clip")
    cli.retired(parser, "--listening-seconds", to="--listening-duration", type=float)
    parser.add_argument("--style", default=None, help="the target style, named in the listening test")
    parser.add_argument("--title", default=defaults.title, help="title of the report")
    parser.add_argument("--segment-duration", type=float, default=None,
                        help="cross-entropy window in seconds, the same for every model (default: the shortest "
                             "training segment among the models)")
    parser.add_argument("--cfg-coef", type=float, default=defaults.cfg_coef,
                        help="classifier-free guidance of every generated clip")
    cli.add_device(parser)
    parser.add_argument("--train-manifest", default=None,
                        help="the target style's training split (e.g. data/jpop/egs/train): adds style adherence "
                             "and the memorisation check")
    return parser


def run(args: argparse.Namespace) -> int:
    models = parse_models([*args.model, *args.models])
    config = ReportConfig(clips_per_model=args.num_clips, clip_seconds=args.duration,
                          listening_prompts=args.listening_prompts, listening_seconds=args.listening_duration,
                          style=args.style, title=args.title,
                          device=args.device, segment_duration=args.segment_duration, cfg_coef=args.cfg_coef,
                          train_manifest=args.train_manifest)
    result = build_report(models, args.manifest, args.out, config, dataset=args.dataset)
    print(f"Report: {result['report']}\n        {result['markdown']}")
    return 0


def main(argv: tp.Optional[tp.List[str]] = None, prog: str = "python -m genrecraft.report") -> int:
    return cli.run(run, build_parser(prog).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
