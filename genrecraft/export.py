"""Export a finished training run as a folder that plain audiocraft loads, or any model to transformers.

    python -m genrecraft.export <SIG | //sig/SIG | xp folder> --out exports/jpop
    python -m genrecraft.export <SIG | any model spec> --format transformers --out exports/jpop-hf
        [--dataset-card data/jpop/dataset_card.md] [--eval-report reports/jpop/report.md] [--push-to-hub USER/REPO]

Writes ``state_dict.bin`` and ``compression_state_dict.bin`` in audiocraft's export format, so that
``MusicGen.get_pretrained("exports/jpop")`` loads and generates with no genrecraft code, plus ``genrecraft.json``
(provenance: run signature, solver, best valid CE, toolkit version). For LoRA runs the adapters are merged into
the exported weights and the adapter folder is copied to ``<out>/adapter`` as well (load it onto the base with
``lora.load_adapter`` or the model spec ``BASE@<out>/adapter``).

``--format transformers`` writes a folder that ``MusicgenForConditionalGeneration.from_pretrained`` and
``AutoProcessor.from_pretrained`` load with no genrecraft code (see :mod:`genrecraft.hf`): the fine-tuned LM as
the decoder (LoRA merged), the base's T5 and EnCodec, the processor files and a model card (``README.md`` with the
hub's YAML front matter). ``--push-to-hub REPO`` then uploads that folder with huggingface_hub (``--private``; the
token from ``HF_TOKEN`` or ``huggingface-cli login``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import typing as tp
from pathlib import Path

import lora

from . import __version__, hf
from .builders import exportable_config_yaml, write_compression_package
from .core import cli, compat, paths
from .core.atomic import atomic_path, write_json
from .core.runs import read_history, valid_ce
from .models import SPEC_HELP, ModelSpec, _xp_folder, load_experiment, load_model, parse_model_spec


def export_merged(model, out_dir: tp.Union[str, Path], extra_info: tp.Optional[dict] = None) -> Path:
    """Export the LM with adapters merged in audiocraft's format, loadable by plain ``MusicGen.get_pretrained(out_dir)``.

    Writes ``state_dict.bin`` (``best_state``, ``xp.cfg``, ``version``, ``exported``), ``compression_state_dict.bin``
    and ``genrecraft.json`` (provenance: toolkit version, LoRA config). The LM must carry its config as ``lm.cfg``
    (audiocraft's loaders and genrecraft's builders set it).
    """
    import audiocraft
    import torch

    lm = lora.get_lm(model)
    cfg = getattr(lm, "cfg", None)
    if cfg is None:
        raise ValueError("this LM has no .cfg (its audiocraft config); build it with genrecraft.models or load it with "
                         "MusicGen.get_pretrained, which set it")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.to("cpu") for k, v in lora.merged_state_dict(lm).items()}
    with atomic_path(out_dir / "state_dict.bin") as tmp:
        torch.save({"best_state": state, "xp.cfg": exportable_config_yaml(cfg), "version": audiocraft.__version__,
                    "exported": True}, tmp)
    write_compression_package(cfg.compression_model_checkpoint, out_dir / "compression_state_dict.bin",
                              sample_rate=int(cfg.sample_rate))
    info = {"genrecraft_version": __version__, "merged_lora": lora.get_config(lm).to_dict() if lora.has_lora(lm) else None}
    info.update(extra_info or {})
    write_json(out_dir / "genrecraft.json", info)
    return out_dir


def export_run(sig_or_folder: str, out_dir: tp.Union[str, Path]) -> Path:
    """Export the best state of a Dora run (full fine-tuning or LoRA) to ``out_dir``; returns it."""
    compat.apply()
    folder = _xp_folder(sig_or_folder)
    model = load_experiment(str(folder))
    cfg = model.lm.cfg
    history = read_history(folder)
    valid = valid_ce(history)
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
    export_merged(model, out_dir, extra_info=info)
    return out_dir


def _resolve_spec(text: str):
    """A model spec, where a bare Dora signature counts as ``//sig/<SIG>``."""
    try:
        return parse_model_spec(text)
    except ValueError:
        try:
            _xp_folder(text)
        except ValueError:
            raise ValueError(f"{text!r} is neither a Dora signature nor a model spec (see --help)") from None
        return ModelSpec(kind="experiment", name=f"//sig/{text}", text=text)


def _base_model_id(spec: tp.Any, model: tp.Any) -> tp.Optional[str]:
    """The hub id of the weights a model was fine-tuned from, for the model card's ``base_model``."""
    if spec.kind == "adapter":
        return _base_model_id(spec.base, model)
    if spec.kind in ("pretrained", "hf"):
        return spec.name if not Path(spec.name).exists() else None
    cfg = getattr(model.lm, "cfg", None)
    if cfg is None:
        return None
    lora_cfg = cfg.get("lora") or {}
    for value in (lora_cfg.get("base"), cfg.get("continue_from")):
        value = str(value or "")
        if paths.pretrained_name(value):
            return paths.pretrained_name(value)
        if value.startswith("hf:") and not Path(value[3:]).exists():
            return value[3:]
    return None


def dataset_summary(card: tp.Union[str, Path]) -> str:
    """The head of a ``dataset_card.md`` (split table and notes, no plots and no source list) for a model card."""
    lines = []
    for line in Path(card).read_text().splitlines():
        if line.startswith("## "):
            break
        if line.startswith("# ") or line.startswith("!["):
            continue
        lines.append(line)
    return "\n".join(lines).strip()


def eval_table(report: tp.Union[str, Path]) -> str:
    """The first table of an eval ``report.md`` (one row per model) for a model card."""
    table: tp.List[str] = []
    for line in Path(report).read_text().splitlines():
        if line.startswith("|"):
            table.append(line)
        elif table:
            break
    return "\n".join(table)


def export_transformers_spec(spec: str, out_dir: tp.Union[str, Path], audio_encoder: tp.Optional[str] = None,
                             dataset_card: tp.Optional[str] = None, eval_report: tp.Optional[str] = None,
                             license_id: tp.Optional[str] = None, device: str = "cpu") -> Path:
    """Export the model named by ``spec`` (a Dora signature or any model spec) as a transformers MusicGen folder."""
    compat.apply()
    parsed = _resolve_spec(spec)
    model = load_model(parsed, device=device)
    info: tp.Dict[str, tp.Any] = {"source": spec, "name": f"MusicGen fine-tuned with genrecraft ({parsed.label})",
                                  "base_model": _base_model_id(parsed, model)}
    if license_id:
        info["license"] = license_id
    if lora.has_lora(model):
        info["lora"] = lora.get_config(model).to_dict()
    sources = ((dataset_card, "dataset_summary", dataset_summary), (eval_report, "eval_table", eval_table))
    for path, key, read in sources:
        if path:
            if not Path(path).is_file():
                raise FileNotFoundError(f"{path} not found: pass the dataset_card.md written by python -m "
                                        "dataset_builder / the report.md written by python -m eval compare")
            info[key] = read(path)
    return hf.export_transformers(model, out_dir, audio_encoder=audio_encoder, card=info)


def build_parser(prog: str = "python -m genrecraft.export") -> argparse.ArgumentParser:
    parser = cli.parser(prog, __doc__, epilog=SPEC_HELP)
    parser.add_argument("run", help="Dora signature (as printed by dora run), //sig/<SIG>, or an xp folder; with "
                                    "--format transformers also any model spec (BASE@adapter, an export, hf:...)")
    cli.add_out(parser, help="output folder")
    parser.add_argument("--format", choices=("audiocraft", "transformers"), default="audiocraft",
                        help="audiocraft: state_dict.bin for MusicGen.get_pretrained; transformers: a folder for "
                             "MusicgenForConditionalGeneration.from_pretrained")
    hub = parser.add_argument_group("with --format transformers")
    hub.add_argument("--audio-encoder", default=None,
                     help="EnCodec in transformers' format (hub id or folder) to use instead of the model's own "
                          "codec (default: the model's own, converted from audiocraft's format when it is in it)")
    hub.add_argument("--dataset-card", default=None, help="dataset_card.md to summarise in README.md")
    hub.add_argument("--eval-report", default=None, help="eval report.md whose table goes in README.md")
    hub.add_argument("--license", default=None, help="licence id for README.md (default: cc-by-nc-4.0, that of "
                                                     "Meta's MusicGen weights)")
    hub.add_argument("--push-to-hub", metavar="REPO", default=None,
                     help="upload the folder to this hub model repo (user/name)")
    hub.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    cli.add_device(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    if args.format == "audiocraft" and (args.push_to_hub or args.audio_encoder or args.dataset_card
                                        or args.eval_report or args.license):
        raise ValueError("--push-to-hub, --audio-encoder, --dataset-card, --eval-report and --license need "
                         "--format transformers")
    if args.format == "transformers":
        out = export_transformers_spec(args.run, args.out, audio_encoder=args.audio_encoder,
                                       dataset_card=args.dataset_card, eval_report=args.eval_report,
                                       license_id=args.license, device=args.device or "cpu")
        print(f"exported to {out}\nload it with: MusicgenForConditionalGeneration.from_pretrained({str(out)!r})")
        if args.push_to_hub:
            url = hf.push_to_hub(out, args.push_to_hub, private=args.private)
            print(f"uploaded to https://huggingface.co/{args.push_to_hub} ({url})")
        return 0
    out = export_run(args.run, args.out)
    print(f"exported to {out}\nload it with: MusicGen.get_pretrained({str(out)!r})")
    return 0


def main(argv: tp.Optional[tp.List[str]] = None, prog: str = "python -m genrecraft.export") -> int:
    return cli.run(run, build_parser(prog).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
