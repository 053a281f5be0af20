"""Inspect LoRA adapters, and merge one into its base as a plain audiocraft model.

    python -m lora info ADAPTER_DIR
    python -m lora merge --base facebook/musicgen-small --adapter ADAPTER_DIR --out EXPORT_DIR

Bad input (a missing, damaged or mismatched adapter) exits with status 2 and one line naming the file.
``merge`` writes a folder that plain ``MusicGen.get_pretrained(EXPORT_DIR)`` loads (no genrecraft needed).
``--base`` takes any model spec that ``genrecraft.models.load_model`` understands.
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
    args = parser.parse_args(argv)
    try:
        if args.command == "info":
            print(json.dumps(read_adapter_config(args.adapter), indent=2))
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
