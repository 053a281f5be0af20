"""Inspect LoRA adapters, and merge one into its base as a plain audiocraft model.

    python -m lora info ADAPTER_DIR
    python -m lora merge --model facebook/musicgen-small --adapter ADAPTER_DIR --out EXPORT_DIR
    python -m lora export-peft ADAPTER_DIR --out PEFT_DIR [--base-model-name-or-path HF_EXPORT_OR_ID]
    python -m lora import-peft PEFT_DIR --model hf:facebook/musicgen-small --out ADAPTER_DIR

Bad input (a missing, damaged or mismatched adapter) exits with status 2 and one line naming the file.
``merge`` writes a folder that plain ``MusicGen.get_pretrained(EXPORT_DIR)`` loads (no genrecraft needed).
``export-peft`` writes a peft LoRA adapter for transformers' ``MusicgenForConditionalGeneration``
(``PeftModel.from_pretrained(musicgen, PEFT_DIR)``); ``import-peft`` turns a peft adapter trained on transformers'
MusicGen into a genrecraft adapter for ``--model``. ``--model`` (the adapter's base; ``--base`` in earlier versions)
takes any model spec that ``genrecraft.models.load_model`` understands.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing as tp

from genrecraft.core import cli
from genrecraft.core.errors import UserError
from genrecraft.export import export_merged
from genrecraft.models import SPEC_HELP, load_model

from .io import load_adapter, read_adapter_config
from .peft_format import export_peft, import_peft


def cmd_info(args: argparse.Namespace) -> int:
    """Print an adapter's config (targets, rank, base model, size)."""
    print(json.dumps(read_adapter_config(args.adapter), indent=2))
    return 0


def _base(args: argparse.Namespace) -> str:
    """The adapter's base: ``--model`` (or ``--base``, its earlier name: argparse cannot require one of the two)."""
    if not args.model:
        raise UserError(f"{args.command} needs --model: the adapter's base model, e.g. facebook/musicgen-small")
    return args.model


def cmd_merge(args: argparse.Namespace) -> int:
    """Merge an adapter into its base and export the result in audiocraft's format."""
    model = load_model(_base(args), device=args.device or "cpu")
    load_adapter(model, args.adapter, check_base=not args.skip_base_check)
    out = export_merged(model, args.out, extra_info={"base": args.model, "adapter": str(args.adapter)})
    print(f"merged model written to {out}; load it with MusicGen.get_pretrained({str(out)!r})")
    return 0


def cmd_export_peft(args: argparse.Namespace) -> int:
    """Write a genrecraft adapter as a peft adapter for transformers' MusicgenForConditionalGeneration."""
    out = export_peft(args.adapter, args.out, base_model_name_or_path=args.base_model_name_or_path)
    print(f"peft adapter written to {out}; apply it with PeftModel.from_pretrained(musicgen, {str(out)!r})")
    return 0


def cmd_import_peft(args: argparse.Namespace) -> int:
    """Turn a peft LoRA adapter on transformers' MusicGen into a genrecraft adapter."""
    model = load_model(_base(args), device=args.device or "cpu")
    out = import_peft(args.peft_adapter, model, args.out, base_model_id=args.model)
    print(f"genrecraft adapter written to {out}; use it as {args.model}@{out}")
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    """Fill ``parser`` (``python -m lora`` or ``genrecraft lora``) with the adapter subcommands."""
    cli.parser(parser.prog, __doc__, epilog=SPEC_HELP, into=parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=cli.plain(func.__doc__))
        cli.parser("", func.__doc__, into=p)
        p.set_defaults(func=func)
        return p

    p = add("info", cmd_info)
    p.add_argument("adapter", help="adapter folder (adapter_config.json + adapter_model.safetensors)")
    p = add("merge", cmd_merge)
    cli.add_model(p, required=False, help="the adapter's base model (a model spec; required), e.g. "
                                          "facebook/musicgen-small")
    cli.retired(p, "--base", to="--model")
    p.add_argument("--adapter", required=True, help="adapter folder (adapter_config.json + adapter_model.safetensors)")
    cli.add_out(p, help="output folder for state_dict.bin + compression_state_dict.bin")
    cli.add_device(p)
    p.add_argument("--skip-base-check", action="store_true",
                   help="merge even when --model's weights are not those the adapter was trained on (its fingerprint "
                        "differs): only when you know they are the same weights, e.g. re-saved")
    p = add("export-peft", cmd_export_peft)
    p.add_argument("adapter", help="genrecraft adapter folder")
    cli.add_out(p, help="output folder (adapter_config.json + adapter_model.safetensors)")
    p.add_argument("--base-model-name-or-path", default=None,
                   help="peft's base_model_name_or_path: the transformers export of the adapter's base "
                        "(default: the adapter's base model id)")
    p = add("import-peft", cmd_import_peft)
    p.add_argument("peft_adapter", help="peft adapter folder (adapter_config.json + adapter_model.safetensors)")
    cli.add_model(p, required=False, help="the adapter's base model (a model spec; required), e.g. "
                                          "hf:facebook/musicgen-small")
    cli.retired(p, "--base", to="--model")
    cli.add_out(p, help="output genrecraft adapter folder")
    cli.add_device(p)


def build_parser(prog: str = "python -m lora") -> argparse.ArgumentParser:
    parser = cli.parser(prog, __doc__)
    configure(parser)
    return parser


def main(argv: tp.Optional[tp.List[str]] = None, prog: str = "python -m lora") -> int:
    args = build_parser(prog).parse_args(argv)
    return cli.run(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
