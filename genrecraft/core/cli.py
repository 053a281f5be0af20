"""Command-line pieces every genrecraft command shares: one flag per idea, readable help, one set of exit codes.

Every command (``genrecraft <command>`` and its ``python -m`` alias) builds its parser with these helpers, so the
same idea has the same flag everywhere (:data:`FLAGS`; ``tests/test_cli.py`` checks it across all commands) and
errors end the same way (:func:`run`; codes in :mod:`genrecraft.core.errors`).
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
import traceback
import typing as tp

from .errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USER, USER_ERRORS

FLAGS: tp.Dict[str, str] = {
    # idea -> the one flag that means it, in every command that takes it
    "models": "--model",
    "count of generated clips": "--num-clips",
    "seconds of generated audio": "--duration",
    "random seed": "--seed",
    "output file or folder": "--out",
    "torch device": "--device",
    "sampling temperature": "--temperature",
    "top-k sampling": "--top-k",
    "top-p sampling": "--top-p",
    "classifier-free guidance": "--cfg-coef",
    "test manifest": "--manifest",
    "cross-entropy window": "--segment-duration",
    "windows per cross-entropy batch": "--ce-batch-size",
    "clips per generation batch": "--gen-batch-size",
    "bootstrap resamples": "--bootstrap",
    "embedding backend": "--backend",
}
"""The shared vocabulary. A command that takes one of these ideas takes it under this flag and no other."""

RETIRED_FLAGS: tp.FrozenSet[str] = frozenset({
    # flags of earlier versions, still accepted (hidden from --help) where they were, so scripts keep working
    "-n", "--clips", "--num-prompts", "-k", "--seconds", "--batch-size", "--listening-seconds", "--fad-bootstrap",
    "--base",  # lora merge / import-peft: now --model, as everywhere
})

MODEL_NAME = re.compile(r"[A-Za-z0-9_.+-]+")
_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def plain(text: tp.Optional[str]) -> str:
    """A docstring as terminal text: Sphinx roles and double backquotes removed, indentation normalised."""
    text = textwrap.dedent(text or "").strip("\n")
    first, _, rest = text.partition("\n")
    text = first.strip() + ("\n" + textwrap.dedent(rest) if rest else "")
    text = _ROLE.sub(lambda m: m.group(1).rpartition(".")[2] if m.group(1).count(".") > 1 else m.group(1), text)
    return text.replace("``", "")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions keep their line breaks (they are docstrings); option help gets its default appended."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        default = action.default
        if ("%(default)" in help_text or "default" in help_text or default is None or isinstance(default, bool)
                or default == argparse.SUPPRESS or (isinstance(default, (list, tuple)) and not default)
                or action.option_strings == []):  # (a default of 0 is shown: 0 == False, but it is a value)
            return help_text
        if isinstance(default, (list, tuple)):
            default = ",".join(str(x) for x in default)
        return f"{help_text} (default: {default})"


def parser(prog: str, doc: tp.Optional[str], epilog: tp.Optional[str] = None,
           into: tp.Optional[argparse.ArgumentParser] = None) -> argparse.ArgumentParser:
    """A parser for a command (``into`` fills a ``genrecraft`` subcommand's parser instead of a new one)."""
    if into is not None:
        into.description = plain(doc)
        into.epilog = epilog
        into.formatter_class = HelpFormatter
        return into
    return argparse.ArgumentParser(prog=prog, description=plain(doc), epilog=epilog, formatter_class=HelpFormatter)


def retired(p: tp.Any, old: str, to: str, **kwargs: tp.Any) -> None:
    """Accept a retired flag (one of :data:`RETIRED_FLAGS`) as an alias of ``to``, hidden from --help."""
    if old not in RETIRED_FLAGS:
        raise ValueError(f"{old} is not a retired flag")
    new = to
    p.add_argument(old, dest=new.lstrip("-").replace("-", "_"), help=argparse.SUPPRESS, default=argparse.SUPPRESS,
                   **kwargs)


def add_models(p: argparse.ArgumentParser, required: bool = True, help: tp.Optional[str] = None) -> None:
    p.add_argument("--model", dest="model", action="append", default=[], metavar="NAME=SPEC", required=required,
                   help=help or "a model to use, repeatable: NAME=SPEC, or SPEC alone to name it after the spec "
                                "(model specs are listed below)")


def add_model(p: argparse.ArgumentParser, required: bool = True, help: tp.Optional[str] = None) -> None:
    p.add_argument("--model", dest="model", metavar="SPEC", required=required,
                   help=help or "the model (a model spec: see below)")


def device(text: str) -> str:
    """``--device``'s type: a torch device this machine has (``cpu``, ``cuda``, ``cuda:1``, ``mps``), else an
    argparse error (one line, exit 2) saying what it has, before any model is loaded."""
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a torch device: use cpu, cuda or cuda:N") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text}: this machine has no CUDA GPU that torch can use; use cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                                             f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise argparse.ArgumentTypeError(f"{text}: torch has no MPS device here; use cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"{text}: genrecraft runs on cpu, cuda or mps")
    return text


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", type=device, default=None,
                   help="torch device: cuda, cuda:N or cpu (default: cuda when available)")


def add_seed(p: argparse.ArgumentParser, default: tp.Optional[int] = 0, help: str = "random seed") -> None:
    p.add_argument("--seed", type=int, default=default, help=help)


def add_out(p: argparse.ArgumentParser, required: bool = True, help: str = "output folder", **kwargs: tp.Any) -> None:
    p.add_argument("--out", required=required, help=help, **kwargs)


def add_num_clips(p: argparse.ArgumentParser, default: int, help: str = "generated clips per model") -> None:
    p.add_argument("--num-clips", type=int, default=default, help=help)


def add_duration(p: argparse.ArgumentParser, default: tp.Optional[float],
                 help: str = "seconds of audio per generated clip") -> None:
    p.add_argument("--duration", type=float, default=default, help=help)


def add_sampling(p: argparse.ArgumentParser, defaults: tp.Any) -> None:
    """``--temperature --top-k --top-p --cfg-coef`` with the defaults of a generation-settings object."""
    group = p.add_argument_group("sampling")
    group.add_argument("--temperature", type=float, default=defaults.temperature, help="softmax temperature")
    group.add_argument("--top-k", type=int, default=defaults.top_k, help="sample among the k likeliest tokens")
    group.add_argument("--top-p", type=float, default=defaults.top_p,
                       help="sample among the likeliest tokens of total probability p (0: off, top-k is used)")
    group.add_argument("--cfg-coef", type=float, default=defaults.cfg_coef, help="classifier-free guidance")


def named(values: tp.Iterable[str]) -> tp.List[tp.Tuple[tp.Optional[str], str]]:
    """``NAME=SPEC`` texts -> ``[(NAME or None, SPEC)]``: the one reader of model names (checked, unique)."""
    out: tp.List[tp.Tuple[tp.Optional[str], str]] = []
    for text in values:
        name, sep, spec = text.partition("=")
        if not sep or not MODEL_NAME.fullmatch(name):
            name, spec = "", text  # a bare spec (which may itself contain '=' in a path)
        out.append((name or None, spec))
    return out


def check_names(names: tp.Sequence[str], reserved: tp.Sequence[str] = ()) -> None:
    """Raise ``ValueError`` for a duplicate, reserved or unreadable model name."""
    seen: tp.Set[str] = set()
    for name in names:
        if not MODEL_NAME.fullmatch(name):
            raise ValueError(f"model name {name!r}: use letters, digits and _ . + - only")
        if name in reserved:
            raise ValueError(f"model name {name!r} is reserved: choose another")
        if name in seen:
            raise ValueError(f"two models are named {name!r}: name them, e.g. --model base=SPEC --model tuned=SPEC")
        seen.add(name)


_SETTING = re.compile(r"([a-z][a-z0-9_]*)=")


def in_flag_terms(message: str, args: argparse.Namespace) -> str:
    """A settings object's error (``"top_k=0: ..."``) as the command's flag (``"--top-k 0: ..."``) when the setting
    came from a flag of that name; other messages unchanged."""
    match = _SETTING.match(message)
    if match is None or not hasattr(args, match.group(1)):
        return message
    return f"--{match.group(1).replace('_', '-')} {message[match.end():]}"


def run(func: tp.Callable[[argparse.Namespace], tp.Optional[int]], args: argparse.Namespace) -> int:
    """Run a command; user errors print ``error: ...`` and give exit code 2, bugs a traceback and 1."""
    import logging

    logging.getLogger("audiocraft.environment").setLevel(logging.ERROR)  # "Dora directory: ..." at each look-up
    try:
        return int(func(args) or EXIT_OK)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except USER_ERRORS as exc:
        print(f"error: {in_flag_terms(str(exc), args)}", file=sys.stderr)
        return EXIT_USER
    except Exception:  # noqa: BLE001 - a bug or a failure of the machine: show where
        traceback.print_exc()
        return EXIT_INTERNAL
