"""Fine-tuning recipes through Dora on CPU with the tiny family: full, LoRA, resume, early stopping, export."""

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from genrecraft.core import paths

from genrecraft import experiments
from genrecraft.synth import SongSpec, write_dataset

pytestmark = pytest.mark.slow


def _specs(style, keys, bpm):
    return [SongSpec(key=k, mode=m, bpm=bpm + 2 * i, style=style, seed=i) for i, (k, m) in enumerate(keys)]


@pytest.fixture(scope="module")
def datasets(work_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("training-data")
    a = _specs("synthpop", [("C", "major"), ("G", "major"), ("D", "major"), ("F", "major")], 120)
    b = _specs("lofi", [("A", "minor"), ("E", "minor"), ("D", "minor"), ("B", "minor")], 80)
    write_dataset(root, "train_style_a", a, config_dir=paths.user_config_dir())
    write_dataset(root, "train_style_b", b, config_dir=paths.user_config_dir())
    return "audio/train_style_a", "audio/train_style_b"


@pytest.fixture(scope="module")
def base_run(datasets):
    return experiments.run(["solver=musicgen/genrecraft_tiny", f"dset={datasets[0]}"], quiet=True)


def test_genrecraft_train_ends_with_the_runs_signature(datasets, base_run, capfd):
    from genrecraft import cli as app

    # the base run's own config: Dora finds it done, and the command says which run it was and what to do next
    assert app.main(["train", "genrecraft_tiny", f"dset={datasets[0]}"]) == 0
    out = capfd.readouterr().out
    assert f"run //sig/{base_run.sig} done" in out and f"genrecraft export {base_run.sig}" in out


def _valid(xp):
    return [epoch["valid"]["ce"] for epoch in experiments.history(xp)]


def test_full_finetuning_lowers_valid_ce(datasets, base_run):
    xp = experiments.run(["solver=musicgen/genrecraft_tiny_full", f"dset={datasets[1]}",
                          f"continue_from=//sig/{base_run.sig}"], quiet=True)
    valid = _valid(xp)
    assert len(valid) == 2 and valid[-1] < valid[0]
    state = torch.load(experiments.checkpoint_path(xp), map_location="cpu", weights_only=False)
    assert state["xp.cfg"]["solver"] == "musicgen_ft"


@pytest.fixture(scope="module")
def lora_run(datasets, base_run):
    return experiments.run(["solver=musicgen/genrecraft_tiny_lora", f"dset={datasets[1]}",
                            f"lora.base=//sig/{base_run.sig}"], quiet=True)


def test_lora_lowers_valid_ce_and_keeps_the_base(lora_run, base_run):
    valid = _valid(lora_run)
    assert len(valid) == 2 and valid[-1] < valid[0]
    from genrecraft.models import load_experiment

    import lora

    model = load_experiment(f"//sig/{lora_run.sig}")
    base_state = torch.load(experiments.checkpoint_path(base_run), map_location="cpu",
                            weights_only=False)["best_state"]["model"]
    for key, value in lora.base_state_dict(model.lm).items():
        assert torch.equal(value, base_state[key]), key
    assert lora.has_lora(model) and any(v.abs().sum() > 0 for k, v in lora.adapter_state_dict(model).items()
                                        if k.endswith("lora_B"))


def test_lora_checkpoint_holds_only_adapter_tensors(lora_run, base_run):
    state = torch.load(experiments.checkpoint_path(lora_run), map_location="cpu", weights_only=False)
    # The "model" entry (audiocraft's name) holds the adapter tensors only, as does the best state.
    for entry in (state["model"], state["best_state"]["model"]):
        assert entry and all(k.endswith(("lora_A", "lora_B")) for k in entry)
    lora_size = experiments.checkpoint_path(lora_run).stat().st_size
    base_size = experiments.checkpoint_path(base_run).stat().st_size
    assert lora_size < 0.5 * base_size
    adapter = lora_run.folder / "adapter"
    meta = json.loads((adapter / "adapter_config.json").read_text())
    assert meta["base_model_id"] == f"//sig/{base_run.sig}" and meta["lora"]["r"] == 4


def test_qlora_run_trains_adapters_on_a_4bit_base(datasets, base_run):
    import lora
    from genrecraft.models import load_experiment

    xp = experiments.run(["solver=musicgen/genrecraft_tiny_lora", f"dset={datasets[1]}",
                          f"lora.base=//sig/{base_run.sig}", "lora.quantize=4bit", "optim.epochs=1"], quiet=True)
    assert len(_valid(xp)) == 1
    state = torch.load(experiments.checkpoint_path(xp), map_location="cpu", weights_only=False)
    assert all(k.endswith(("lora_A", "lora_B")) for k in state["best_state"]["model"])
    meta = json.loads((xp.folder / "adapter" / "adapter_config.json").read_text())
    assert meta["lora"]["quantize"] == "4bit"
    model = load_experiment(f"//sig/{xp.sig}")  # the adapter on the full-precision base
    assert lora.has_lora(model) and not any(".parametrizations." in n for n, _ in model.lm.named_parameters())


def test_interrupted_run_resumes_from_its_saved_epoch(datasets, base_run):
    argv = ["solver=musicgen/genrecraft_tiny_lora", f"dset={datasets[1]}", f"lora.base=//sig/{base_run.sig}",
            "optim.epochs=3", "label=resume-test"]
    xp = experiments.get_xp(argv)
    proc = subprocess.Popen([sys.executable, "-m", "dora", "-P", "genrecraft", "run", *argv],
                            env=experiments.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history_file = xp.folder / "history.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if history_file.exists() and len(json.loads(history_file.read_text() or "[]")) >= 1:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = experiments.history(xp)
    assert 1 <= len(first) < 3, "the run should have been killed after its first epoch"

    experiments.run(argv, quiet=True)
    resumed = experiments.history(xp)
    assert len(resumed) == 3
    assert resumed[0] == first[0]  # epoch 1 was not redone
    assert "Loading existing checkpoint" in (xp.folder / "solver.log.0").read_text()


def test_early_stopping_stops_when_valid_ce_stalls(datasets, base_run):
    # lr 0: the weights never change, valid ce repeats exactly (valid segments are seeded by index).
    xp = experiments.run(["solver=musicgen/genrecraft_tiny_full", f"dset={datasets[1]}",
                          f"continue_from=//sig/{base_run.sig}", "optim.lr=0", "optim.epochs=6",
                          "early_stopping.patience=2"], quiet=True)
    valid = _valid(xp)
    assert len(valid) == 3 and valid[0] == valid[1] == valid[2]
    assert "Early stopping" in (xp.folder / "solver.log.0").read_text()


def test_early_stopping_rule():
    from genrecraft.solvers import EarlyStoppingMixin

    class Base:
        def should_stop_training(self):
            return False

    class Fake(EarlyStoppingMixin, Base):
        def __init__(self, scores, patience):
            self.history = [{"valid": {"ce": s}} for s in scores]
            self.cfg = {"early_stopping": {"patience": patience}}

    assert not Fake([3.0, 2.0, 1.0], 1).should_stop_training()
    assert Fake([3.0, 2.0, 2.5], 1).should_stop_training()
    assert not Fake([3.0, 2.0, 2.5], 2).should_stop_training()
    assert Fake([3.0, 2.0, 2.5, 2.1], 2).should_stop_training()
    assert not Fake([3.0, 4.0, 5.0], 0).should_stop_training()  # 0: never


@pytest.mark.parametrize("kind", ["full", "lora"])
def test_export_loads_with_plain_musicgen(kind, datasets, base_run, lora_run, tmp_path):
    from genrecraft.export import export_run

    run = base_run if kind == "full" else lora_run
    out = export_run(run.sig, tmp_path / "export")
    info = json.loads((out / "genrecraft.json").read_text())
    assert info["experiment"] == run.sig and info["best_valid_ce"] == min(_valid(run))
    if kind == "lora":
        assert (out / "adapter" / "adapter_model.safetensors").exists()
    code = textwrap.dedent(f"""
        import torch
        from audiocraft.models import MusicGen
        m = MusicGen.get_pretrained({str(out)!r}, device="cpu")
        m.set_generation_params(duration=1.0)
        wav = m.generate(["mellow lo-fi"])
        print("SHAPE", tuple(wav.shape), bool(torch.isfinite(wav).all()))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "USER": "test", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "SHAPE (1, 1, 32000) True" in result.stdout


def test_training_curves_are_plotted(base_run, lora_run, tmp_path):
    from genrecraft.curves import plot_training_curves, plot_valid_comparison, read_steps

    steps = read_steps(base_run.folder)  # from the run's TensorBoard events, not from its log text
    assert len(steps) >= 2 and steps[-1]["step"] > steps[0]["step"]
    assert all(s["ce"] > 0 and 0 < s["x"] <= s["epoch"] for s in steps)
    assert list((base_run.folder / "tensorboard").rglob("events.out.tfevents.*"))
    [png] = plot_training_curves(base_run.sig)
    assert png.parent == base_run.folder / "curves" and png.stat().st_size > 10_000
    cmp_png = plot_valid_comparison({"base": base_run.sig, "lora": lora_run.sig}, tmp_path / "cmp.png")
    assert cmp_png.stat().st_size > 10_000


def test_lora_solver_refuses_continue_from(datasets, base_run):
    with pytest.raises(experiments.ExperimentError, match="lora.base"):
        experiments.run(["solver=musicgen/genrecraft_tiny_lora", f"dset={datasets[1]}",
                         f"continue_from=//sig/{base_run.sig}"], quiet=True)


def test_lora_with_ema_tracks_only_the_adapters(datasets, base_run):
    xp = experiments.run(["solver=musicgen/genrecraft_tiny_lora", f"dset={datasets[1]}",
                          f"lora.base=//sig/{base_run.sig}", "optim.epochs=1", "optim.ema.use=true",
                          "optim.ema.updates=1", "optim.ema.device=cpu"], quiet=True)
    state = torch.load(experiments.checkpoint_path(xp), map_location="cpu", weights_only=False)
    ema = state["ema"]["state"]["model"]
    assert ema and all(k.endswith(("lora_A", "lora_B")) for k in ema)
    assert "EMA" in (xp.folder / "solver.log.0").read_text() or len(ema) == len(state["model"])


def test_base_weights_load_without_a_second_copy(tmp_path):
    """lora.base is read memory-mapped and taken as is on the CPU: the LM's tensors are the file's (no copy next
    to the random initialisation), a dtype the LM does not use is converted, and the outputs are the saved LM's."""
    from genrecraft.builders import TINY_SOLVER, build_lm, compose
    from genrecraft.models import load_base_lm_state, load_lm_state

    cfg = compose([f"solver={TINY_SOLVER}"])
    saved, lm = build_lm(cfg, seed=1), build_lm(cfg, seed=2)
    state = saved.state_dict()
    state["emb.0.weight"] = state["emb.0.weight"].double()
    torch.save({"xp.cfg": "", "best_state": state}, tmp_path / "state_dict.bin")
    mapped = load_base_lm_state(str(tmp_path))
    load_lm_state(lm, mapped)
    name = next(k for k, v in mapped.items() if k != "emb.0.weight" and v.dtype == torch.float32)
    assert lm.state_dict()[name].data_ptr() == mapped[name].data_ptr()
    assert lm.emb[0].weight.dtype == torch.float32 and lm.emb[0].weight.requires_grad
    for key, value in saved.state_dict().items():
        assert torch.equal(lm.state_dict()[key], value.float()), key
