"""Inspect LoRA adapters, and merge one into its base as a plain audiocraft model.

    python -m lora info ADAPTER_DIR
    python -m lora merge --base facebook/musicgen-small --adapter ADAPTER_DIR --out EXPORT_DIR
    python -m lora export-peft ADAPTER_DIR --out PEFT_DIR [--base-model-name-or-path HF_EXPORT_OR_ID]
    python -m lora import-peft PEFT_DIR --base hf:facebook/musicgen-small --out ADAPTER_DIR

Bad input (a missing, damaged or mismatched adapter) exits with status 2 and one line naming the file.
``merge`` writes a folder that plain ``MusicGen.get_pretrained(EXPORT_DIR)`` loads (no genrecraft needed).
``export-peft`` writes a peft LoRA adapter for transformers' ``MusicgenForConditionalGeneration``
(``PeftModel.from_pretrained(musicgen, PEFT_DIR)``); ``import-peft`` turns a peft adapter trained on transformers'
MusicGen into a genrecraft adapter for ``--base``. ``--base`` takes any model spec that
``genrecraft.models.load_model`` understands.
"""

from __future__ import annotations

import argparse
import json
import sys

from .io import AdapterMismatchError, export_merged, load_adapter, read_adapter_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lora", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="print an adapter's config (targets, rank, base model, size)")
    info.add_argument("adapter")
    merge = sub.add_parser("merge", help="merge an adapter into its base and export in audiocraft's format")
    merge.add_argument("--base", required=True, help="base model spec, e.g. facebook/musicgen-small")
    merge.add_argument("--adapter", required=True, help="adapter folder (adapter_config.json + safetensors)")
    merge.add_argument("--out", required=True, help="output folder for state_dict.bin + compression_state_dict.bin")
    merge.add_argument("--device", default="cpu")
    export = sub.add_parser("export-peft", help="write a genrecraft adapter as a peft adapter for transformers' "
                                                "MusicgenForConditionalGeneration")
    export.add_argument("adapter", help="genrecraft adapter folder")
    export.add_argument("--out", required=True, help="output folder (adapter_config.json + adapter_model.safetensors)")
    export.add_argument("--base-model-name-or-path", default=None,
                        help="peft's base_model_name_or_path: the transformers export of the adapter's base "
                             "(default: the adapter's base model id)")
    imp = sub.add_parser("import-peft", help="turn a peft LoRA adapter on transformers' MusicGen into a genrecraft "
                                             "adapter")
    imp.add_argument("peft_adapter", help="peft adapter folder (adapter_config.json + adapter_model.safetensors)")
    imp.add_argument("--base", required=True, help="the base model spec, e.g. hf:facebook/musicgen-small")
    imp.add_argument("--out", required=True, help="output genrecraft adapter folder")
    imp.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    try:
        if args.command == "info":
            print(json.dumps(read_adapter_config(args.adapter), indent=2))
            return 0
        if args.command == "export-peft":
            from .peft_format import export_peft

            out = export_peft(args.adapter, args.out, base_model_name_or_path=args.base_model_name_or_path)
            print(f"peft adapter written to {out}; apply it with PeftModel.from_pretrained(musicgen, {str(out)!r})")
            return 0
        if args.command == "import-peft":
            from genrecraft.models import load_model

            from .peft_format import import_peft

            model = load_model(args.base, device=args.device)
            out = import_peft(args.peft_adapter, model, args.out, base_model_id=args.base)
            print(f"genrecraft adapter written to {out}; use it as {args.base}@{out}")
            return 0
        from genrecraft.models import load_model

        model = load_model(args.base, device=args.device)
        load_adapter(model, args.adapter)
        out = export_merged(model, args.out, extra_info={"base": args.base, "adapter": str(args.adapter)})
        print(f"merged model written to {out}; load it with MusicGen.get_pretrained({str(out)!r})")
        return 0
    except (FileNotFoundError, ValueError, AdapterMismatchError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
