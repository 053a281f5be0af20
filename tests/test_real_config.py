"""The real model's path: MusicGen-small's real configs through every command of the README, on the stand-in hub.

The stand-in hub (:mod:`genrecraft.standin_hub`) holds ``facebook/musicgen-small`` and ``t5-base`` with random
weights in the real formats and the hub cache's layout, so the commands below run exactly as a user with internet
types them (``HF_HUB_OFFLINE=1`` and ``HF_HOME`` aside), with only the overrides a CPU needs: fewer and shorter
steps, ``device=cpu``, no autocast, no loader workers. A change that breaks the real recipes, loaders or exports
fails here. Nothing measured here says anything about quality: the weights are random.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from genrecraft import standin_hub as hub

pytestmark = pytest.mark.slow

# What a CPU needs (device, no fp16 autocast, no loader processes) and a run short enough for a test: 2 updates
# on 5 s segments, 2 valid segments, and the end-of-run evaluate and generate stages on 1-2 short samples.
CPU = ["device=cpu", "autocast=false", "dataset.num_workers=0"]
SHORT = ["optim.epochs=1", "optim.updates_per_epoch=2", "schedule.cosine.warmup=0", "dataset.segment_duration=5",
         "dataset.valid.num_samples=2", "dataset.evaluate.num_samples=2", "dataset.generate.num_samples=1",
         "generate.lm.gen_duration=1", "generate.lm.prompt_duration=0.5"]


@pytest.fixture(scope="module")
def hub_env(standin_hub, work_dir):
    """os.environ for the commands: the stand-in hub, offline, genrecraft's Dora package."""
    patch = pytest.MonkeyPatch()
    for key, value in hub.env(standin_hub).items():
        patch.setenv(key, value)
    patch.setenv("DORA_PACKAGE", "genrecraft")
    yield dict(os.environ)
    patch.undo()


def sh(*args: str, env=None, cwd=None) -> str:
    """Run a command as a user would; fail with its output if it fails."""
    proc = subprocess.run([str(a) for a in args], env=env or dict(os.environ), cwd=cwd, capture_output=True,
                          text=True)
    assert proc.returncode == 0, f"{' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n" \
                                 f"{proc.stderr[-5000:]}"
    return proc.stdout + proc.stderr


def py(code: str, env):
    """Run a Python snippet in a fresh process; returns the JSON it printed after ``RESULT ``."""
    out = sh(sys.executable, "-c", textwrap.dedent(code), env=env)
    return json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[len("RESULT "):])


def test_standin_hub_matches_the_real_config(hub_env):
    """MusicGen.get_pretrained loads the stand-in, and its names and shapes are those the real config builds."""
    out = py("""
        import json, torch
        from genrecraft.core import compat; compat.apply()
        from audiocraft.models import builders
        from audiocraft.models.musicgen import MusicGen
        from genrecraft.models import compose
        model = MusicGen.get_pretrained("facebook/musicgen-small", device="cpu")
        cfg = compose(["solver=musicgen/musicgen_base_32khz", "model/lm/model_scale=small", "device=cpu"])
        reference = {k: v.shape for k, v in builders.get_lm_model(cfg).state_dict().items()}
        loaded = model.lm.state_dict()
        codec = model.compression_model
        x = torch.randn(1, 1, 32000)
        codes = codec.encode(x)[0]
        print("RESULT " + json.dumps({
            "same_keys": sorted(loaded) == sorted(reference),
            "same_shapes": all(loaded[k].shape == reference[k] for k in reference),
            "params": sum(p.numel() for p in model.lm.parameters()),
            "codec": [int(codec.sample_rate), int(codec.frame_rate), int(codec.num_codebooks), int(codec.cardinality)],
            "t5": type(model.lm.condition_provider.conditioners["description"].t5).__name__,
            "distinct_codes": [len(c.unique()) for c in codes[0]],
        }))
    """, hub_env)
    info = out
    assert info["same_keys"] and info["same_shapes"]
    assert 420e6 < info["params"] < 421e6  # MusicGen-small's LM, T5 excluded
    assert info["codec"] == [32000, 50, 4, 2048]
    assert info["t5"] == "T5EncoderModel"
    assert min(info["distinct_codes"]) > 10  # codebooks drawn from the encoder's outputs: tokens vary


@pytest.fixture(scope="module")
def dataset(hub_env, tmp_path_factory):
    """`python -m dataset_builder playlist.txt --out ... --name ...` on five rendered 31 s songs."""
    import soundfile as sf

    from genrecraft.synth import SongSpec, render_song

    root = tmp_path_factory.mktemp("real")
    songs = root / "songs"
    songs.mkdir()
    for i, (key, mode, bpm) in enumerate([("C", "major", 100), ("A", "minor", 90), ("G", "major", 110),
                                          ("E", "minor", 96), ("F", "major", 104)]):
        sf.write(songs / f"song{i}.wav", render_song(SongSpec(key, mode, bpm, "synthpop", seed=i), 31.0), 32000)
    (root / "playlist.txt").write_text(f"{songs}/  genre=synthpop\n")
    out = root / "data"
    sh(sys.executable, "-m", "dataset_builder", root / "playlist.txt", "--out", out, "--name", "realcfg",
       "--tagger", "none", "--split", "0.4,0.2,0.4", env=hub_env)
    return out


def dora(solver: str, *extra: str, env) -> str:
    """`dora -P genrecraft run solver=... dset=audio/realcfg` with the CPU and short-run overrides; returns the sig."""
    argv = [f"solver=musicgen/{solver}", "dset=audio/realcfg", *CPU, *SHORT, *extra]
    sh(sys.executable, "-m", "dora", "-P", "genrecraft", "run", *argv, env=env)
    from genrecraft import experiments

    return experiments.get_xp(argv).sig


def history(sig: str):
    from genrecraft.core import paths

    return json.loads((paths.dora_dir() / "xps" / sig / "history.json").read_text())


@pytest.fixture(scope="module")
def full_sig(dataset, hub_env):
    return dora("genrecraft_small_full", env=hub_env)


@pytest.fixture(scope="module")
def lora_sig(dataset, hub_env):
    return dora("genrecraft_small_lora", env=hub_env)


def test_full_finetuning_runs_and_resumes(full_sig, hub_env):
    first = history(full_sig)
    assert len(first) == 1 and first[0]["valid"]["ce"] > 0
    from genrecraft.core import paths

    log = (paths.dora_dir() / "xps" / full_sig / "solver.log.0").read_text()
    assert "Loading a pretrained model" in log  # continue_from=//pretrained/facebook/musicgen-small
    # The same command again resumes: the checkpoint reloads (weights_only) and nothing is trained twice.
    dora("genrecraft_small_full", env=hub_env)
    assert history(full_sig) == first


def test_lora_run_writes_its_adapter(lora_sig):
    from genrecraft.core import paths

    folder = paths.dora_dir() / "xps" / lora_sig
    config = json.loads((folder / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_id"] == "//pretrained/facebook/musicgen-small"
    assert config["lm_shape"] == {"dim": 1024, "num_layers": 24, "num_heads": 16, "n_q": 4, "card": 2048}
    # adapters only: a few MB, not the 1.7 GB LM
    assert (folder / "checkpoint.th").stat().st_size < 100e6


def test_qlora_run(dataset, hub_env):
    sig = dora("genrecraft_small_lora", "lora.quantize=4bit", env=hub_env)
    assert len(history(sig)) == 1


def test_export_merge_and_generate(full_sig, lora_sig, hub_env, tmp_path):
    sh(sys.executable, "-m", "genrecraft.export", full_sig, "--out", tmp_path / "full", env=hub_env)
    from genrecraft.core import paths

    adapter = paths.dora_dir() / "xps" / lora_sig / "adapter"
    sh(sys.executable, "-m", "lora", "merge", "--model", "facebook/musicgen-small", "--adapter", adapter,
       "--out", tmp_path / "lora", env=hub_env)
    out = py(f"""
        import json, torch
        from audiocraft.models.musicgen import MusicGen
        from genrecraft.core import compat; compat.apply()   # torch's weights_only default; plain loading below
        result = {{}}
        base = MusicGen.get_pretrained("facebook/musicgen-small", device="cpu")
        probe = torch.randn(1, 1, 32000, generator=torch.Generator().manual_seed(0))
        for name in ("full", "lora"):
            model = MusicGen.get_pretrained({str(tmp_path)!r} + "/" + name, device="cpu")
            model.set_generation_params(duration=0.2)
            wav = model.generate(["calm piano"])
            same_codec = torch.equal(model.compression_model.encode(probe)[0], base.compression_model.encode(probe)[0])
            result[name] = [list(wav.shape), model.sample_rate, same_codec]
        print("RESULT " + json.dumps(result))
    """, hub_env)
    result = out
    for name in ("full", "lora"):
        shape, rate, same_codec = result[name]
        assert rate == 32000 and shape[:2] == [1, 1] and shape[2] >= 0.2 * 32000 - 640
        assert same_codec, f"the {name} export does not carry the base model's codec"


def test_transformers_export_carries_the_runs_own_codec(full_sig, hub_env, tmp_path):
    # the codec in audiocraft's format is converted, not fetched: no facebook/encodec_32khz download is needed
    sh(sys.executable, "-m", "genrecraft.export", full_sig, "--format", "transformers", "--out", tmp_path / "hf",
       env=hub_env)
    out = py(f"""
        import json, torch
        from audiocraft.models.musicgen import MusicGen
        from transformers import MusicgenForConditionalGeneration
        from genrecraft.core import compat; compat.apply()
        base = MusicGen.get_pretrained("facebook/musicgen-small", device="cpu").compression_model
        hf = MusicgenForConditionalGeneration.from_pretrained({str(tmp_path / "hf")!r}).audio_encoder.eval()
        probe = 0.1 * torch.randn(1, 1, 3 * 32000, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            ours = base.encode(probe)[0][..., 25:-25]  # away from the edges, where the two pad differently
            theirs = hf.encode(probe, bandwidth=2.2).audio_codes[0][..., 25:-25]
        print("RESULT " + json.dumps([list(ours.shape), float((ours == theirs).float().mean())]))
    """, hub_env)
    shape, agreement = out
    assert shape == [1, 4, 100] and agreement == 1.0


def test_report(dataset, full_sig, lora_sig, hub_env, tmp_path):
    """`genrecraft.report` (eval compare's CE, generation, FAD and listening pairs, then the page) on the three
    models. `eval compare` itself is the same code (genrecraft.report calls it), tested on tiny models."""
    models = ["--model", "base=facebook/musicgen-small", "--model", f"full=//sig/{full_sig}",
              "--model", f"lora=//sig/{lora_sig}"]
    sh(sys.executable, "-m", "genrecraft.report", *models, "--manifest", dataset / "egs" / "test", "--dataset",
       dataset, "--out", tmp_path / "report", "--num-clips", "2", "--duration", "1", "--listening-prompts", "1",
       "--listening-duration", "1", env=hub_env)
    assert (tmp_path / "report" / "report.html").exists()
    summary = json.loads((tmp_path / "report" / "eval" / "report.json").read_text())
    assert "vs_baseline" in summary["results"]["full"]["ce"]
    # every model's CE in windows of the same length: the shortest training segment (5 s here, not the base's 30)
    assert {summary["results"][m]["ce"]["segment_duration"] for m in ("base", "full", "lora")} == {5.0}


def test_gpu_benchmark_dry_run(standin_hub, hub_env):
    """The prepared GPU benchmark builds everything it needs and composes every run it would make, with no GPU."""
    root = Path(__file__).resolve().parents[1]
    out = sh(sys.executable, root / "bench" / "bench_gpu.py", "--dry-run", "--hub", standin_hub, env=hub_env)
    assert "dry run ok" in out
    for case in ("full_fp16", "full_bf16", "lora_r8", "lora_r8_ckpt", "qlora_4bit"):
        assert f'"case": "{case}"' in out
