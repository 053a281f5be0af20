"""Generate the clips and blind A/B pairs of a listening test.

Every model makes one clip per prompt with the same seed, duration and sampling settings; all clips are set to
one loudness (LUFS) so that the louder clip does not win; each pair of models meets on each prompt in a random
A/B order. Prompts are random descriptions from a dataset's test split (--dataset) or lines of a file (--prompts).

Example:
  python -m scripts.make_pairs --dataset data/jpop --num-clips 10 --style J-pop --out listening/jpop \\
      --model base=facebook/musicgen-small --model full=//sig/1a2b3c4d --model lora=//sig/5e6f7a8b

Writes OUT/pairs.json and OUT/clips/ (what raters get), and OUT/key.json (which model made which clip; --key
writes it elsewhere). Rerun the same command to resume after an interruption. Then: python -m scripts.rate OUT
"""

from __future__ import annotations

import argparse
import logging
import sys
import typing as tp
from pathlib import Path

from genrecraft.core import cli
from genrecraft.models import SPEC_HELP, default_device, load_for_inference, parse_model_spec
from scripts.listening import pairs


def parse_model(text: str) -> tp.Tuple[str, str]:
    """``NAME=SPEC`` -> (NAME, SPEC), the spec checked without loading anything; a bare SPEC is named by its
    label (``tiny:1`` -> ``tiny1``, ``//sig/1a2b3c4d`` -> ``1a2b3c4d``)."""
    (name, spec), = cli.named([text])
    label = parse_model_spec(spec).label  # parsed even when named: a spec that names nothing fails here
    return name or label, spec


def build_parser(prog: str = "python -m scripts.make_pairs") -> argparse.ArgumentParser:
    parser = cli.parser(prog, __doc__, epilog=SPEC_HELP)
    cli.add_models(parser, help="a model to compare (two or more), NAME=SPEC, e.g. base=facebook/musicgen-small; "
                                "specs below")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", type=Path,
                        help="dataset folder (uses egs/test/data.jsonl) or a manifest: prompts are random "
                             "descriptions from its clips' sidecar .json files")
    source.add_argument("--prompts", type=Path, help="text file with one prompt per line (# comments)")
    cli.add_num_clips(parser, None, help="clips per model, one per prompt: prompts drawn from --dataset (default "
                                         "10), or the first N of --prompts (default all)")
    cli.retired(parser, "--num-prompts", to="--num-clips", type=int)
    cli.retired(parser, "-k", to="--num-clips", type=int)
    cli.add_out(parser, type=Path, help="output folder of the listening test")
    parser.add_argument("--key", type=Path, default=None, help="where the key goes (default OUT/key.json)")
    parser.add_argument("--style", default=None, help="the target style, named in the style question (e.g. J-pop)")
    parser.add_argument("--against", default=None, metavar="NAME",
                        help="pair every other model with this one only (default: every pair of models)")
    gen = pairs.GenerationSettings()
    cli.add_duration(parser, gen.duration)
    cli.add_seed(parser, gen.seed, help="seed of the generation; also picks the prompts from --dataset")
    parser.add_argument("--gen-batch-size", type=int, default=gen.batch_size, help="clips generated together")
    cli.retired(parser, "--batch-size", to="--gen-batch-size", type=int)
    cli.add_sampling(parser, gen)
    parser.add_argument("--greedy", action="store_true", help="argmax decoding instead of sampling")
    parser.add_argument("--loudness", type=float, default=pairs.PairsConfig.loudness_lufs,
                        help="loudness of every clip in LUFS")
    parser.add_argument("--peak", type=float, default=pairs.PairsConfig.peak_dbfs,
                        help="sample-peak ceiling in dBFS")
    parser.add_argument("--blind-seed", type=int, default=None,
                        help="seed of the A/B and pair order (default: random, recorded in the key)")
    cli.add_device(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    named = [parse_model(m) for m in args.model]
    cli.check_names([n for n, _ in named])
    if args.dataset is not None:
        prompts = pairs.sample_descriptions(args.dataset, args.num_clips or 10, seed=args.seed)
    else:
        prompts = pairs.read_prompt_file(args.prompts)[:args.num_clips]
    config = pairs.PairsConfig(
        generation=pairs.GenerationSettings(
            duration=args.duration, use_sampling=not args.greedy, top_k=args.top_k, top_p=args.top_p,
            temperature=args.temperature, cfg_coef=args.cfg_coef, seed=args.seed, batch_size=args.gen_batch_size),
        loudness_lufs=args.loudness, peak_dbfs=args.peak, against=args.against, style=args.style,
        blind_seed=args.blind_seed)
    device = args.device or default_device()
    result = pairs.make_pairs({name: _loader(spec, device) for name, spec in named}, prompts, args.out, config,
                              key_path=args.key, specs=dict(named))
    print(f"{result.n_pairs} pairs of {result.n_clips} clips at {result.loudness_lufs:.1f} LUFS in {result.folder}")
    print(f"key: {result.key_path} (keep it from the raters)")
    print(f"next: python -m scripts.rate {result.folder}")
    return 0


def main(argv: tp.Optional[tp.List[str]] = None, prog: str = "python -m scripts.make_pairs") -> int:
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    return cli.run(run, args)


def _loader(spec: str, device: str) -> tp.Callable[[], tp.Any]:
    def load() -> tp.Any:
        return load_for_inference(spec, device=device)

    return load


if __name__ == "__main__":
    sys.exit(main())
