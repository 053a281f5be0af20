"""The genrecraft command: every subcommand listed, one flag per idea across all of them, one set of exit codes."""

from __future__ import annotations

import argparse
import subprocess
import sys
import typing as tp

import pytest

from genrecraft import cli as app
from genrecraft.core import cli
from genrecraft.core.errors import EXIT_USER

# Other spellings of the shared ideas: none of them may be a visible flag of any command.
SYNONYMS = {"--output", "-o", "--outdir", "--out-dir", "--output-dir", "--count", "--n", "--clips", "--num",
            "--seconds", "--length", "--secs", "--dev", "--gpu", "--random-seed", "--models", "--spec",
            "--temp", "--topk", "--topp", "--cfg", "--guidance", "--batch-size", "--num-prompts"}


def _actions(parser: argparse.ArgumentParser, name: str) -> tp.Iterator[tp.Tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _actions(sub, f"{name} {sub_name}")
        else:
            yield name, action


@pytest.fixture(scope="module")
def actions() -> tp.List[tp.Tuple[str, argparse.Action]]:
    return [item for name, parser in app.parsers().items() for item in _actions(parser, name)]


def test_help_lists_every_command(capsys):
    assert app.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in app.COMMANDS:
        assert f"\n  {name} " in out
    assert app.main(["listen", "--help"]) == 0
    out = capsys.readouterr().out
    for name in app.LISTEN:
        assert f"\n  {name} " in out


def test_same_idea_same_flag_everywhere(actions):
    visible = [(name, action) for name, action in actions if action.help != argparse.SUPPRESS]
    seen = {flag for _, action in visible for flag in action.option_strings}
    assert {"--model", "--num-clips", "--duration", "--seed", "--out", "--device", "--top-k"} <= seen
    wrong = []
    for name, action in visible:
        for flag in action.option_strings:
            if flag in cli.RETIRED_FLAGS or flag in SYNONYMS:
                wrong.append(f"{name}: {flag} (a retired or other name of a shared idea)")
        for idea, flag in cli.FLAGS.items():
            dest = flag.lstrip("-").replace("-", "_")
            if action.dest == dest and flag not in action.option_strings:
                wrong.append(f"{name}: {action.option_strings} holds {idea} ({dest}) but is not {flag}")
            if flag in action.option_strings and action.dest != dest:
                wrong.append(f"{name}: {flag} is stored as {action.dest}, not {dest}")
        if "SPEC" in str(action.metavar or "") and action.option_strings != ["--model"]:
            wrong.append(f"{name}: a model spec is taken by {action.option_strings}, not --model")
    assert not wrong, "\n".join(wrong)


def test_help_reads_as_text(actions, capsys):
    for parser in app.parsers().values():
        text = parser.format_help()
        assert "``" not in text and ":func:" not in text and ":mod:" not in text, parser.prog
    for name, action in actions:
        help_text = action.help if isinstance(action.help, str) else ""
        assert "('" not in help_text and "['" not in help_text, f"{name} {action.option_strings}: {help_text}"


def test_retired_flags_still_work():
    parser = app.parsers()["genrecraft eval"]
    args = parser.parse_args(["compare", "base=tiny:0", "--manifest", "m", "--out", "o", "-n", "3",
                              "--batch-size", "5", "--fad-bootstrap", "7"])
    assert (args.num_clips, args.ce_batch_size, args.bootstrap, args.models) == (3, 5, 7, ["base=tiny:0"])
    pairs_args = app.parsers()["genrecraft listen pairs"].parse_args(
        ["--model", "a=tiny:0", "--prompts", "p.txt", "--out", "o", "-k", "4", "--batch-size", "2"])
    assert (pairs_args.num_clips, pairs_args.gen_batch_size) == (4, 2)


def test_a_settings_error_names_the_flag_it_came_from():
    args = argparse.Namespace(top_k=0, gen_batch_size=2)
    assert cli.in_flag_terms("top_k=0: use 1 or more", args) == "--top-k 0: use 1 or more"
    # a setting no flag of this command is named after stays as it was (no made-up flag)
    assert cli.in_flag_terms("batch_size=0 must be >= 1", args) == "batch_size=0 must be >= 1"
    assert cli.in_flag_terms("model name 'a b': use letters", args) == "model name 'a b': use letters"


def test_an_unusable_device_is_refused_by_the_parser(monkeypatch, capsys):
    import torch

    parser = argparse.ArgumentParser(prog="x")
    cli.add_device(parser)
    assert parser.parse_args(["--device", "cpu"]).device == "cpu"
    for value, message in (("gpu", "'gpu' is not a torch device"), ("meta", "runs on cpu, cuda or mps")):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(["--device", value])
        assert exc.value.code == EXIT_USER and message in capsys.readouterr().err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on CI and on any machine without a GPU
    with pytest.raises(SystemExit):
        parser.parse_args(["--device", "cuda"])
    assert "cuda: this machine has no CUDA GPU that torch can use; use cpu" in capsys.readouterr().err


def test_train_refuses_a_wrong_config_in_one_line_before_dora_starts(capsys, work_dir):
    assert app.main(["train", "genrecraft_tiny", "dset=audio/no_such_dataset"]) == EXIT_USER
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith("error: no dataset 'audio/no_such_dataset'") and "dataset_builder" in err[0]
    assert app.main(["train", "genrecraft_tiny", "optim.no_such_key=3"]) == EXIT_USER
    assert "Could not override 'optim.no_such_key'" in capsys.readouterr().err


def test_exit_codes(tmp_path, capsys):
    assert app.main(["no-such-command"]) == EXIT_USER
    assert "unknown command 'no-such-command'" in capsys.readouterr().err
    # a user error: one line naming the thing, exit 2, no traceback
    assert app.main(["eval", "ce", "--model", "tiny:0", "--manifest", str(tmp_path / "missing.jsonl")]) == EXIT_USER
    err = capsys.readouterr().err
    assert "missing.jsonl" in err and "Traceback" not in err
    assert app.main(["listen", "analyze", str(tmp_path / "nothing")]) == EXIT_USER
    capsys.readouterr()
    assert app.main(["listen", "rate", str(tmp_path / "nothing")]) == EXIT_USER  # the folder is wrong, not the port
    err = capsys.readouterr().err
    assert "not found" in err and "genrecraft listen pairs --out" in err and "--port" not in err
    # an internal error: a traceback and exit 1
    assert cli.run(lambda args: 1 / 0, argparse.Namespace()) == 1
    assert "ZeroDivisionError" in capsys.readouterr().err
    # argparse's own usage errors are 2 as well
    with pytest.raises(SystemExit) as exc:
        app.main(["eval", "compare", "--no-such-flag"])
    assert exc.value.code == EXIT_USER


def test_train_lists_recipes_and_composes_the_dora_command(capsys):
    assert app.main(["train"]) == 0
    out = capsys.readouterr().out
    assert "genrecraft_small_lora" in out and "genrecraft_small_full" in out
    assert app.main(["train", "genrecraft_small_lora", "dset=audio/jpop", "lora.r=16", "--dry-run"]) == 0
    command = capsys.readouterr().out.split()
    assert command[1:] == ["-P", "genrecraft", "run", "solver=musicgen/genrecraft_small_lora", "dset=audio/jpop",
                           "lora.r=16"]
    assert app.main(["train", "no_such_recipe"]) == EXIT_USER


@pytest.mark.slow
def test_console_script_and_module_forms_agree():
    """``python -m genrecraft`` is the console script; the ``python -m`` aliases answer the same."""
    out = subprocess.run([sys.executable, "-m", "genrecraft", "eval", "--help"], capture_output=True, text=True)
    alias = subprocess.run([sys.executable, "-m", "eval", "--help"], capture_output=True, text=True)
    assert out.returncode == alias.returncode == 0
    assert out.stdout.replace("genrecraft eval", "python -m eval") == alias.stdout


def test_one_generation_settings_type():
    """Evaluation, listening tests and genrecraft generate share SamplingSettings: the same fields, one apply()."""
    import dataclasses

    from eval.generate import GenerateConfig, SamplingSettings
    from scripts.listening.pairs import GenerationSettings

    shared = {f.name for f in dataclasses.fields(SamplingSettings)}
    for kind in (GenerateConfig, GenerationSettings):
        assert issubclass(kind, SamplingSettings) and kind.apply is SamplingSettings.apply
        assert shared <= {f.name for f in dataclasses.fields(kind)}

    class Recorder:
        def set_generation_params(self, **params):
            self.params = params

    a, b = Recorder(), Recorder()
    GenerateConfig(duration=2.0, top_k=50, cfg_coef=2.0).apply(a)
    GenerationSettings(duration=2.0, top_k=50, cfg_coef=2.0).apply(b)
    assert a.params == b.params == {"duration": 2.0, "use_sampling": True, "top_k": 50, "top_p": 0.0,
                                    "temperature": 1.0, "cfg_coef": 2.0}
    with pytest.raises(ValueError, match="temperature"):
        GenerationSettings(temperature=0.0)


def test_app_names_models_as_every_command_does_and_finds_the_demo(tmp_path, capsys):
    import json

    from genrecraft import app as web

    assert app.main(["app", "--model", "x=tiny:0", "--model", "x=tiny:1"]) == EXIT_USER  # before gradio starts
    assert "two models are named 'x'" in capsys.readouterr().err
    assert web._pairs(["tiny:3", "b=tiny:0"], "model") == {"tiny3": "tiny:3", "b": "tiny:0"}
    assert web.demo_catalog(tmp_path) is None
    report = tmp_path / "demo" / "eval" / "report.json"
    report.parent.mkdir(parents=True)
    report.write_text(json.dumps({"models": {"base": "tiny:0", "full": "tiny:1"}}))
    assert web.demo_catalog(tmp_path).models == {"base": "tiny:0", "full": "tiny:1"}
