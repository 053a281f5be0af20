"""genrecraft: fine-tune MusicGen to a style of music, from a playlist to a model you can hear and measure.

usage: genrecraft COMMAND [options]      (genrecraft COMMAND --help for each command's options)

Every command is a thin layer over the library; the same idea has the same flag everywhere (--model NAME=SPEC,
--num-clips, --duration, --seed, --out, --device, --temperature/--top-k/--top-p/--cfg-coef). Exit status: 0 done,
2 a problem with the input or set-up (one line on stderr that names it and the fix), 1 an internal error or a
failure of the machine (with a traceback), 130 interrupted. The python -m forms (python -m dataset_builder,
python -m eval, python -m lora, python -m scripts.make_pairs, ...) are the same commands.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shutil
import subprocess
import sys
import typing as tp
from pathlib import Path

from . import __version__
from .core import cli, compat, paths
from .core.errors import EXIT_USER

# name -> (module with main(argv, prog), one-line summary). Modules are imported only when their command runs.
COMMANDS: tp.Dict[str, tp.Tuple[str, str]] = {
    "build": ("dataset_builder.__main__", "build a dataset from a playlist: download, 30 s chunks, labels, manifests"),
    "train": ("genrecraft.cli", "fine-tune with a recipe (full, LoRA, QLoRA) through Dora; lists the recipes"),
    "eval": ("eval.__main__", "cross-entropy, FAD, spectral distances; compare base and fine-tuned models"),
    "listen": ("genrecraft.cli", "listening tests: make blind pairs, serve the rating page, analyse the ratings"),
    "report": ("genrecraft.report", "evaluate models, make listening pairs and write report.html in one step"),
    "curves": ("genrecraft.curves", "plot the training curves of Dora runs"),
    "export": ("genrecraft.export", "export a run for plain audiocraft or transformers (and the Hugging Face hub)"),
    "lora": ("lora.__main__", "LoRA adapters: info, merge into the base, peft export and import"),
    "generate": ("genrecraft.generate", "music from a text prompt: any model, LoRA strengths, stacked adapters"),
    "app": ("genrecraft.app", "a web page to hear models side by side, same prompt and seed (gradio)"),
    "demo": ("genrecraft.demo", "the whole loop offline on a built-in corpus (CPU)"),
    "doctor": ("genrecraft.cli", "check the installation: audiocraft, torch and GPU, system tools, folders"),
}

LISTEN: tp.Dict[str, tp.Tuple[str, str]] = {
    "pairs": ("scripts.make_pairs", "generate the clips and blind A/B pairs of a listening test"),
    "rate": ("scripts.rate", "serve the blind rating page"),
    "analyze": ("scripts.analyze", "win rates, preference scores and significance from the ratings"),
}


def _usage(commands: tp.Mapping[str, tp.Tuple[str, str]], doc: str) -> str:
    width = max(len(name) for name in commands) + 2
    lines = [cli.plain(doc), "", "commands:"]
    lines += [f"  {name:<{width}}{summary}" for name, (_, summary) in commands.items()]
    return "\n".join(lines)


def _dispatch(commands: tp.Mapping[str, tp.Tuple[str, str]], argv: tp.List[str], prog: str, doc: str) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(commands, doc))
        return 0 if argv else EXIT_USER
    name, rest = argv[0], argv[1:]
    if name not in commands:
        print(f"error: {prog}: unknown command {name!r}; the commands are: {', '.join(commands)}", file=sys.stderr)
        return EXIT_USER
    if name in LOCAL:
        return LOCAL[name](rest, f"{prog} {name}")
    module = importlib.import_module(commands[name][0])
    return int(module.main(rest, prog=f"{prog} {name}") or 0)


def listen(argv: tp.List[str], prog: str = "genrecraft listen") -> int:
    """Listening tests: genrecraft listen pairs (clips and blind pairs), rate (the rating page), analyze."""
    return _dispatch(LISTEN, argv, prog, listen.__doc__ or "")


# ------------------------------------------------------------------------------------------------------------------
# train


def recipes() -> tp.Dict[str, str]:
    """The training recipes in ``audiocraft_configs/solver/musicgen/``: name -> first line of their comment."""
    folder = Path(__file__).resolve().parents[1] / "audiocraft_configs" / "solver" / "musicgen"
    out = {}
    for path in sorted(folder.glob("*.yaml")):
        comment = [line[2:].strip() for line in path.read_text().splitlines()[1:4] if line.startswith("# ")]
        summary = comment[0] if comment else ""
        out[path.stem] = summary if len(summary) <= 80 else summary[:summary.rfind(" ", 0, 78)] + " ..."
    return out


def train_parser(prog: str = "genrecraft train") -> argparse.ArgumentParser:
    parser = cli.parser(prog, """Fine-tune MusicGen with one of genrecraft's recipes through Dora.

    genrecraft train genrecraft_small_lora dset=audio/jpop            (runs: dora -P genrecraft run solver=...)
    genrecraft train genrecraft_small_lora dset=audio/jpop optim.lr=5e-5 lora.r=16
    genrecraft train                                                  (lists the recipes)

Overrides are Hydra's (key=value). Running the same command again resumes the run; the signature it prints
names the run for eval, export and report (//sig/SIG). Logs go to TensorBoard under the run's folder.""")
    parser.add_argument("recipe", nargs="?", help="a recipe name (see the list with no arguments)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. dset=audio/jpop optim.lr=5e-5")
    parser.add_argument("--dry-run", action="store_true", help="print the dora command and exit")
    return parser


def train(argv: tp.List[str], prog: str = "genrecraft train") -> int:
    args = train_parser(prog).parse_args(argv)
    known = recipes()
    if not args.recipe:
        print("recipes (audiocraft_configs/solver/musicgen/):")
        for name, summary in known.items():
            print(f"  {name:<32}{summary}")
        print(f"\nrun one: {prog} RECIPE dset=audio/<dataset name> [key=value ...]")
        return 0
    recipe = args.recipe.rpartition("/")[2]
    if recipe not in known:
        print(f"error: no recipe {args.recipe!r}; the recipes are: {', '.join(known)}", file=sys.stderr)
        return EXIT_USER
    dora = shutil.which("dora") or str(Path(sys.executable).with_name("dora"))
    command = [dora, "-P", "genrecraft", "run", f"solver=musicgen/{recipe}", *args.overrides]
    print(" ".join(command), flush=True)
    if args.dry_run:
        return 0
    sig, problem = checked_run(command[4:])
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USER
    code = subprocess.call(command)
    if code == 0:
        print(f"\nrun //sig/{sig} done. Try it: genrecraft generate \"a prompt\" --model //sig/{sig} --out clip.wav; "
              f"share it: genrecraft export {sig} --out DIR")
    return code


def checked_run(overrides: tp.Sequence[str]) -> tp.Tuple[tp.Optional[str], tp.Optional[str]]:
    """``(signature, None)`` of the Dora run these Hydra overrides define, or ``(None, problem)``: what is wrong
    with them in one line (an unknown dataset or key, no dataset, a warm-up longer than the run), found by composing
    the config as Dora will, before Dora starts."""
    import logging

    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    logging.getLogger("audiocraft.environment").setLevel(logging.ERROR)  # "Dora directory: ..." at each look-up

    from . import experiments, train as train_module

    try:
        xp = experiments.get_xp(list(overrides))
        train_module.check_datasource(xp.cfg)
        train_module.check_schedule(xp.cfg)
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        missing = re.search(r"Could not find '(dset/audio/[^']+)'", text)
        if missing:
            text = (f"no dataset {missing.group(1)[5:]!r} (dset={missing.group(1)[5:]}): `python -m dataset_builder "
                    "PLAYLIST --out DIR` registers one per dataset it builds; list them with "
                    "`ls $GENRECRAFT_WORK_DIR/configs/dset/audio` (default work dir: ~/.local/share/genrecraft)")
        return None, text
    return xp.sig, None


# ------------------------------------------------------------------------------------------------------------------
# doctor

SYSTEM_TOOLS = {
    "ffmpeg": "audio decoding and encoding (apt-get install ffmpeg)",
    "fluidsynth": "rendering General MIDI songs for the label tests (apt-get install fluidsynth fluid-soundfont-gm)",
    "chromium": "the listening-page tests (apt-get install chromium chromium-driver)",
}


def doctor_parser(prog: str = "genrecraft doctor") -> argparse.ArgumentParser:
    return cli.parser(prog, doctor.__doc__)


def doctor(argv: tp.List[str], prog: str = "genrecraft doctor") -> int:
    """Check what genrecraft runs on; prints one line per check and the fix for what is missing."""
    doctor_parser(prog).parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # essentia's TensorFlow: no CUDA library warnings here
    problems = 0

    def line(ok: bool, what: str, detail: str) -> None:
        nonlocal problems
        problems += not ok
        print(f"{'ok     ' if ok else 'MISSING'} {what:<14}{detail}")

    print(f"genrecraft {__version__}, Python {sys.version.split()[0]}")
    try:
        compat.apply()
        import audiocraft
        import torch

        line(True, "audiocraft", f"{audiocraft.__version__}, config tree {compat.audiocraft_config_dir()}")
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU (training recipes need one)"
        line(True, "torch", f"{torch.__version__}; {gpu}")
    except compat.AudiocraftSetupError as exc:
        line(False, "audiocraft", str(exc))
    for module, what in (("essentia", "labels (essentia)"), ("yt_dlp", "downloads (yt-dlp)")):
        try:
            importlib.import_module(module)
            line(True, module, what)
        except ImportError as exc:
            line(False, module, f"{what}: {exc}; run make venv")
    for tool, why in SYSTEM_TOOLS.items():
        found = shutil.which(tool)
        line(bool(found), tool, found or why)
    for name, folder in (("work dir", paths.work_dir()), ("cache dir", paths.cache_dir())):
        writable = _writable(folder)
        line(writable, name, f"{folder}" + ("" if writable else ": not writable; set GENRECRAFT_WORK_DIR or "
                                                                 "GENRECRAFT_CACHE_DIR to a folder you can write"))
    from .core import download

    if os.environ.get("HF_HUB_OFFLINE") == "1":
        hub = "HF_HUB_OFFLINE=1: models load from the local cache only"
    elif not download.reachable():
        hub = "huggingface.co cannot be reached: models load from the local cache only (commands say so)"
    else:
        hub = "models download from huggingface.co on first use"
    print(f"note    hub           {hub}")
    print(f"{problems} problem(s)" if problems else "all good")
    return EXIT_USER if problems else 0


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".genrecraft-doctor"
        probe.write_text("ok")
        probe.unlink()
        return True
    except OSError:
        return False


LOCAL: tp.Dict[str, tp.Callable[[tp.List[str], str], int]] = {"train": train, "listen": listen, "doctor": doctor}


def parsers() -> tp.Dict[str, argparse.ArgumentParser]:
    """Every command's argument parser, by its full name (``genrecraft eval``, ``genrecraft listen pairs``, ...)."""
    out = {"genrecraft train": train_parser(), "genrecraft doctor": doctor_parser()}
    for name, (module, _) in COMMANDS.items():
        if name not in LOCAL:
            out[f"genrecraft {name}"] = importlib.import_module(module).build_parser(f"genrecraft {name}")
    for name, (module, _) in LISTEN.items():
        out[f"genrecraft listen {name}"] = importlib.import_module(module).build_parser(f"genrecraft listen {name}")
    out["genrecraft build merge"] = importlib.import_module("dataset_builder.__main__").merge_parser()
    return out


def main(argv: tp.Optional[tp.List[str]] = None, prog: str = "genrecraft") -> int:
    from genrecraft.core import download

    if argv is None and argv_needs_hub(sys.argv[1:]) and download.offline_unless_reachable():
        print("note: huggingface.co cannot be reached: models load from the local cache only (HF_HUB_OFFLINE=1)",
              file=sys.stderr)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--version"]:
        print(f"genrecraft {__version__}")
        return 0
    return _dispatch(COMMANDS, argv, prog, __doc__ or "")


def argv_needs_hub(argv: tp.Sequence[str]) -> bool:
    """Whether a command line may load a model from the Hugging Face hub (not for --help, the builder, listing)."""
    return bool(argv) and argv[0] not in ("build", "doctor", "--version", "-h", "--help") and not (
        {"-h", "--help"} & set(argv))


if __name__ == "__main__":
    sys.exit(main())
