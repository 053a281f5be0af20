"""Export a finished training run as a folder that plain audiocraft loads.

    python -m genrecraft.export <SIG | //sig/SIG | xp folder> --out exports/jpop

Writes ``state_dict.bin`` and ``compression_state_dict.bin`` in audiocraft's export format, so that
``MusicGen.get_pretrained("exports/jpop")`` loads and generates with no genrecraft code, plus ``genrecraft.json``
(provenance: run signature, solver, best valid CE, toolkit version). For LoRA runs the adapters are merged into
the exported weights and the adapter folder is copied to ``<out>/adapter`` as well (load it onto the base with
``lora.load_adapter`` or the model spec ``BASE@<out>/adapter``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import typing as tp
from pathlib import Path

from . import compat


def export_run(sig_or_folder: str, out_dir: tp.Union[str, Path]) -> Path:
    """Export the best state of a Dora run (full fine-tuning or LoRA) to ``out_dir``; returns it."""
    compat.apply()
    import json

    import lora

    from .models import _xp_folder, load_experiment

    folder = _xp_folder(sig_or_folder)
    model = load_experiment(str(folder))
    cfg = model.lm.cfg
    history_file = folder / "history.json"
    history = json.loads(history_file.read_text()) if history_file.exists() else []
    valid = [e["valid"]["ce"] for e in history if "valid" in e]
    info = {"experiment": folder.name, "solver": str(cfg.solver), "epochs": len(history),
            "best_valid_ce": min(valid) if valid else None}
    out_dir = Path(out_dir)
    if cfg.solver == "musicgen_lora":
        info["lora_base"] = str(cfg.lora.base)
        staging = out_dir / ".adapter.tmp"
        if staging.exists():
            shutil.rmtree(staging)
        shutil.copytree(folder / "adapter", staging)
        if (out_dir / "adapter").exists():
            shutil.rmtree(out_dir / "adapter")
        staging.rename(out_dir / "adapter")
    lora.export_merged(model, out_dir, extra_info=info)
    return out_dir


def main(argv: tp.Optional[tp.List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genrecraft.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="Dora signature (as printed by dora run), //sig/<SIG>, or an xp folder")
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args(argv)
    try:
        out = export_run(args.run, args.out)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"exported to {out}\nload it with: MusicGen.get_pretrained({str(out)!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
