"""python -m eval: cross-entropy, FAD, spectral distances and the full base-vs-fine-tuned report.

Models are named by specs (``genrecraft.models.SPEC_HELP``): ``facebook/musicgen-small``, an exported folder,
``//sig/<SIG>`` of a Dora run, ``hf:<id or folder>`` (a transformers MusicGen), ``BASE@path/to/adapter``, or
``tiny:<seed>``. Sets of audio are folders, manifests (``data.jsonl`` or its folder) or text files of paths.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import typing as tp
from pathlib import Path

from genrecraft.core import cli
from genrecraft.core.atomic import write_json
from genrecraft.core.audio import list_audio, load_audio
from genrecraft.models import SPEC_HELP, default_device, load_for_inference, parse_model_spec

from . import stats
from .ce import CEConfig, check_manifest, evaluate_ce
from .embeddings import DEFAULT_BACKEND, EmbeddingUnavailableError, available_backends, get_backend
from .fad import fad
from .generate import GenerateConfig, generate_for_eval
from .report import CompareConfig, compare, parse_models
from .spectral import audio_features, feature_distance, mel_distance


def _write_json(path: tp.Optional[str], data: tp.Any) -> None:
    if path:
        write_json(path, data)
        print(f"wrote {path}")


def _device(arg: tp.Optional[str]) -> str:
    return arg or default_device()


def _ce_config(args) -> "tp.Any":
    return CEConfig(sampling=args.sampling, segment_duration=args.segment_duration, batch_size=args.ce_batch_size,
                    num_samples=args.num_samples, group_by=tuple(g for g in args.group_by.split(",") if g),
                    bootstrap=args.bootstrap, confidence=args.confidence, bootstrap_unit=args.bootstrap_unit,
                    max_clips=args.max_clips)


def _gen_config(args) -> "tp.Any":
    return GenerateConfig(n=args.num_clips, duration=args.duration, prompt_duration=args.prompt_duration,
                          batch_size=args.gen_batch_size, seed=args.seed, top_k=args.top_k, top_p=args.top_p,
                          temperature=args.temperature, cfg_coef=args.cfg_coef)


def _one_model(args) -> str:
    if bool(args.model) == bool(args.spec):
        raise ValueError("name exactly one model: --model SPEC")
    return args.model or args.spec


def cmd_ce(args) -> int:
    """Cross-entropy and perplexity of one model on a manifest (overall, per codebook, per genre/artist)."""
    args.model = _one_model(args)

    if not Path(args.manifest).exists():
        raise FileNotFoundError(f"manifest {args.manifest} does not exist")
    check_manifest(args.manifest)  # before loading the model: a bad manifest is named in seconds
    model = load_for_inference(args.model, device=_device(args.device))
    result = evaluate_ce(model, args.manifest, _ce_config(args), model_name=args.model)
    ci = result.intervals
    print(f"{args.model} on {args.manifest} ({result.sampling}, {len(result.units)} units, {result.n_tokens} tokens)")
    for key, value in result.metrics.items():
        interval = ci.get(key)
        extra = f"  [{interval[0]:.4f}, {interval[1]:.4f}]" if interval else ""
        print(f"  {key:8s} {value:.4f}{extra}")
    for field, groups in result.groups.items():
        for value, group in groups.items():
            print(f"  {field}={value}: ce {group['metrics']['ce']:.4f} ({group['n_clips']} clips)")
    _write_json(args.out, result.to_dict())
    return 0


def cmd_fad(args) -> int:
    """FAD (with a bootstrap interval), KAD, optionally FAD-inf, and the outlier clips of a set vs a reference."""
    result = fad(args.evaluated, args.reference, backend=args.backend, bootstrap=args.bootstrap,
                 kad=not args.no_kad, inf=args.inf, n_outliers=args.outliers, cache=not args.no_cache)
    lo, hi = result.fad_interval
    print(f"FAD ({result.backend}, {result.n_clips} clips / {result.n_frames} frames vs "
          f"{result.n_reference_clips} clips / {result.n_reference_frames} frames): {result.fad:.4f} "
          f"[{lo:.4f}, {hi:.4f}]")
    if result.kad is not None:
        print(f"KAD: {result.kad:.4f} [{result.kad_interval[0]:.4f}, {result.kad_interval[1]:.4f}]")
    if result.fad_inf:
        print(f"FAD-inf: {result.fad_inf['score']:.4f} (r2 {result.fad_inf['r2']:.3f})")
    for path, value in result.outliers:
        print(f"  outlier {value:10.2f}  {path}")
    _write_json(args.out, result.to_dict())
    return 0


def cmd_spectral(args) -> int:
    """Mel distance of paired clips (same file names in both folders) and feature distance of the two sets."""
    import numpy as np
    import soundfile as sf


    gen, ref = list_audio(args.generated), list_audio(args.reference)
    sr = args.sample_rate or sf.info(str(gen[0])).samplerate
    out: tp.Dict[str, tp.Any] = {"sample_rate": sr}
    by_name = {p.stem: p for p in ref}
    pairs = [(g, by_name[g.stem]) for g in gen if g.stem in by_name]
    if pairs:
        values = [mel_distance(load_audio(g, sr), load_audio(r, sr), sr) for g, r in pairs]
        out.update(mel_distance=float(np.mean(values)), mel_interval=stats.mean_interval(values),
                   pairs=[{"generated": str(g), "reference": str(r), "mel_distance": v}
                          for (g, r), v in zip(pairs, values)])
        lo, hi = out["mel_interval"]
        print(f"mel distance ({len(pairs)} pairs matched by file name): {out['mel_distance']:.3f} dB "
              f"[{lo:.3f}, {hi:.3f}]")
    else:
        print("mel distance: no file names in common, no pairs")
    g_feat = np.stack([audio_features(load_audio(p, sr), sr) for p in gen])
    r_feat = np.stack([audio_features(load_audio(p, sr), sr) for p in ref])
    out["feature_distance"] = feature_distance(g_feat, r_feat)
    print(f"feature distance ({len(gen)} vs {len(ref)} clips): {out['feature_distance']:.5f}")
    _write_json(args.out, out)
    return 0


def cmd_generate(args) -> int:
    """Generate evaluation clips of one model from a manifest's descriptions (and continuations of its clips)."""
    (name, text), = cli.named([_one_model(args)])
    spec = parse_model_spec(text)
    label = name or args.label or spec.label
    paths = generate_for_eval(lambda: load_for_inference(spec, device=_device(args.device)), label, args.manifest,
                              args.out, _gen_config(args))
    for kind, files in paths.items():
        print(f"{kind}: {len(files)} clips in {files[0].parent}")
    return 0


def cmd_compare(args) -> int:
    """Compare models on a test split (CE, FAD/KAD, spectral) and write report.json, report.md and plots."""
    models = parse_models([*args.model, *args.models])
    config = CompareConfig(ce=_ce_config(args), generate=_gen_config(args), backend=args.backend,
                           fad_bootstrap=args.bootstrap, fad_inf=args.inf,
                           stages=tuple(s for s in args.stages.split(",") if s), device=args.device,
                           train_manifest=args.train_manifest)
    compare(models, args.manifest, args.out, config)
    print((Path(args.out) / "report.md").read_text())
    print(f"report: {Path(args.out) / 'report.md'} (JSON: report.json, plots: plots/)")
    return 0


def cmd_backends(args) -> int:
    """List the embedding backends and whether each can be loaded on this machine."""
    for name in available_backends():
        try:
            backend = get_backend(name)
            print(f"{name:10s} ok          rate {backend.sample_rate}, dim {backend.dim}, cache id {backend.cache_id}")
        except EmbeddingUnavailableError as exc:
            print(f"{name:10s} unavailable {exc}")
    return 0


def _add_ce_args(p: argparse.ArgumentParser) -> None:
    d = CEConfig()
    g = p.add_argument_group("cross-entropy")
    g.add_argument("--sampling", choices=["windows", "solver"], default=d.sampling,
                   help="windows: every clip in consecutive windows; solver: audiocraft's valid loader")
    g.add_argument("--segment-duration", type=float, default=None,
                   help="window seconds (default: the shortest training segment of the models)")
    g.add_argument("--ce-batch-size", type=int, default=None, help="windows per forward pass")
    cli.retired(g, "--batch-size", to="--ce-batch-size", type=int)
    g.add_argument("--num-samples", type=int, default=None, help="solver sampling: number of segments")
    g.add_argument("--group-by", default=",".join(d.group_by), help="sidecar fields to break CE down by")
    g.add_argument("--bootstrap", type=int, default=d.bootstrap, help="bootstrap resamples for intervals (0: none)")
    cli.retired(g, "--fad-bootstrap", to="--bootstrap", type=int)
    g.add_argument("--confidence", type=float, default=d.confidence, help="interval level")
    g.add_argument("--bootstrap-unit", default=d.bootstrap_unit,
                   help="'clip' or a sidecar field such as 'title' (resample whole songs)")
    g.add_argument("--max-clips", type=int, default=None, help="only the first N clips")


def _add_gen_args(p: argparse.ArgumentParser) -> None:
    d = GenerateConfig()
    g = p.add_argument_group("generation")
    cli.add_num_clips(g, d.n, help="clips per model (cycling over the manifest's descriptions)")
    cli.retired(g, "-n", to="--num-clips", type=int)
    cli.add_duration(g, d.duration)
    g.add_argument("--prompt-duration", type=float, default=d.prompt_duration,
                   help="seconds of real audio prompting each continuation (0: none)")
    g.add_argument("--gen-batch-size", type=int, default=d.batch_size, help="clips generated together")
    cli.add_seed(g, d.seed, help="seed of the first batch")
    cli.add_sampling(p, d)


def configure(parser: argparse.ArgumentParser) -> None:
    """Fill ``parser`` (``python -m eval`` or ``genrecraft eval``) with the eval subcommands."""
    cli.parser(parser.prog, __doc__, epilog=SPEC_HELP, into=parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=cli.plain(func.__doc__).split("\n")[0])
        cli.parser("", func.__doc__, epilog=SPEC_HELP, into=p)
        p.set_defaults(func=func)
        return p

    backend_help = f"embedding backend: {', '.join(available_backends())}, optionally name:arg"
    p = add("ce", cmd_ce)
    cli.add_model(p, required=False)
    p.add_argument("spec", nargs="?", help=argparse.SUPPRESS)  # the earlier positional form
    p.add_argument("--manifest", required=True, help="test manifest (data.jsonl or its folder)")
    cli.add_device(p)
    cli.add_out(p, required=False, help="write the full result as JSON here")
    _add_ce_args(p)

    p = add("fad", cmd_fad)
    p.add_argument("evaluated", help="the set to score (folder, manifest or list of paths)")
    p.add_argument("reference", help="the reference set (folder, manifest, list, or a .npz of statistics)")
    p.add_argument("--backend", default=DEFAULT_BACKEND, help=backend_help)
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples of clips (0: none)")
    p.add_argument("--inf", action="store_true", help="also FAD-inf (extrapolated to an infinite set)")
    p.add_argument("--no-kad", action="store_true", help="skip KAD")
    p.add_argument("--outliers", type=int, default=10, help="list the N clips with the largest per-clip FD")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    cli.add_out(p, required=False, help="write the result as JSON here")

    p = add("spectral", cmd_spectral)
    p.add_argument("generated", help="generated clips (folder, manifest or list)")
    p.add_argument("reference", help="reference clips; files with the same name are paired for the mel distance")
    p.add_argument("--sample-rate", type=int, default=None, help="analysis rate (default: the first file's)")
    cli.add_out(p, required=False, help="write the result as JSON here")

    p = add("generate", cmd_generate)
    cli.add_model(p, required=False, help="the model (a model spec: see below), named NAME=SPEC or after the spec")
    p.add_argument("spec", nargs="?", help=argparse.SUPPRESS)  # the earlier positional form
    p.add_argument("--label", default=None, help=argparse.SUPPRESS)  # the earlier way to name it
    p.add_argument("--manifest", required=True, help="manifest whose descriptions (and clips) prompt the model")
    cli.add_out(p, help="output folder (clips go to <out>/<name>/...)")
    cli.add_device(p)
    _add_gen_args(p)

    p = add("compare", cmd_compare)
    cli.add_models(p, required=False, help="a model to compare, repeatable: NAME=SPEC (the first is the baseline)")
    p.add_argument("models", nargs="*", help=argparse.SUPPRESS)  # the earlier positional NAME=SPEC form
    p.add_argument("--manifest", required=True, help="test manifest (data.jsonl or its folder)")
    cli.add_out(p, help="report folder")
    p.add_argument("--backend", default=DEFAULT_BACKEND, help=backend_help)
    p.add_argument("--inf", action="store_true", help="also FAD-inf")
    p.add_argument("--stages", default="ce,generate,fad,spectral", help="stages to run (comma-separated)")
    p.add_argument("--train-manifest", default=None,
                   help="the target style's training split (e.g. data/jpop/egs/train): adds style adherence "
                        "(tempo, key, tags against the prompts and the style) and the memorisation check")
    cli.add_device(p)
    _add_ce_args(p)
    _add_gen_args(p)

    add("backends", cmd_backends)


def build_parser(prog: str = "python -m eval") -> argparse.ArgumentParser:
    parser = cli.parser(prog, __doc__)
    configure(parser)
    return parser


def main(argv: tp.Optional[tp.List[str]] = None, prog: str = "python -m eval") -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return cli.run(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
