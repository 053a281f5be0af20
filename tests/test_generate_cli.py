"""``python -m genrecraft.generate`` on the tiny model: seeds, LoRA strength and stacking, files, errors.

The tiny model of a seed is built from config once per module and copied for each command (building it composes
Hydra configs, seconds each; the CLI's own loading path is otherwise the same)."""

import copy
import functools
import json
import types

import numpy as np
import pytest
import soundfile as sf
import torch

import lora
from genrecraft import generate as cli, models
from lora.runtime import merge_adapters

_build_tiny = models.tiny_musicgen

LSB = 1.5 / 32768  # 16-bit files: what float rounding in a sum of adapters may move by one quantization step


@functools.lru_cache(maxsize=None)
def _built(seed):
    return _build_tiny(seed=seed)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny model is much faster on one thread of a busy machine
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def cached_tiny(monkeypatch):
    monkeypatch.setattr(models, "tiny_musicgen", lambda seed=0, device="cpu", **_: copy.deepcopy(_built(seed)))


def _adapter(folder, targets, r, seed):
    lm = copy.deepcopy(_built(0).lm)
    lora.inject(lm, lora.LoraConfig(r=r, alpha=2.0 * r, targets=targets))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in lora.lora_parameters(lm):
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return lora.save_adapter(lm, folder, base_model_id="tiny:0")


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    one = _adapter(root / "one", lora.ATTENTION_TARGETS + ("linears",), 4, seed=1)
    two = _adapter(root / "two", ("linear1", "linear2", "linears"), 2, seed=2)
    merged = merge_adapters([(one, 0.7), (two, -1.3)], root / "merged")
    return one, two, merged


def run(tmp_path, name, *args, prompt="bright synth-pop"):
    out = tmp_path / f"{name}.wav"
    argv = ([prompt] if prompt else []) + ["--model", "tiny:0", "--duration", "0.5", "--top-k", "50",
                                          "--device", "cpu", "--out", str(out), *map(str, args)]
    assert cli.main(argv) == 0
    return out


def audio(path):
    data, sr = sf.read(str(path), dtype="float32")
    assert sr == 32000
    return data


def test_same_seed_same_audio_and_sidecar(tmp_path):
    a = run(tmp_path, "a", "--seed", 5, "--num-clips", 2, "--gen-batch-size", 1)
    b = run(tmp_path, "b", "--seed", 5, "--num-clips", 2, "--gen-batch-size", 1)
    c = run(tmp_path, "c", "--seed", 6)
    first, second = a.with_name("a-000.wav"), a.with_name("a-001.wav")
    assert abs(len(audio(first)) - 16000) <= 640  # 0.5 s, to one codec frame
    np.testing.assert_array_equal(audio(first), audio(b.with_name("b-000.wav")))
    np.testing.assert_array_equal(audio(second), audio(b.with_name("b-001.wav")))
    assert not np.array_equal(audio(first), audio(second))  # clip 2 is batch 2: seed 6
    np.testing.assert_array_equal(audio(second), audio(c))   # ... which is --seed 6's first batch
    meta = json.loads(first.with_suffix(".json").read_text())
    assert meta["seed"] == 5 and meta["model"] == "tiny:0" and meta["settings"]["top_k"] == 50
    assert meta["sample_rate"] == 32000 and abs(meta["seconds"] - 0.5) <= 0.021 and meta["adapters"] == []
    with sf.SoundFile(str(first)) as f:
        assert json.loads(f.comment) == meta  # the same settings in the file's own comment tag


def test_scale_and_stacking(tmp_path, adapters):
    one, two, merged = adapters
    base = audio(run(tmp_path, "base"))
    off = audio(run(tmp_path, "off", "--adapter", one, "--scale", 0))
    np.testing.assert_array_equal(off, base)  # strength 0 is the base model
    full = audio(run(tmp_path, "full", "--adapter", one))
    assert not np.allclose(full, base, atol=1e-3)
    # strength 1 is the adapter as loaded today (a BASE@adapter spec)
    np.testing.assert_array_equal(full, audio(cli_spec_run(tmp_path, f"tiny:0@{one}")))
    stacked = run(tmp_path, "stacked", "--adapter", f"{one}:0.7", "--adapter", f"{two}:-1.3")
    meta = json.loads(stacked.with_suffix(".json").read_text())
    assert [(a["name"], a["scale"]) for a in meta["adapters"]] == [("one", 0.7), ("two", -1.3)]
    single = audio(run(tmp_path, "single", "--adapter", merged))
    np.testing.assert_allclose(audio(stacked), single, atol=LSB)  # stacked = their weighted sum in one adapter
    np.testing.assert_allclose(audio(run(tmp_path, "merged", "--adapter", f"{one}:0.7", "--adapter",
                                         f"{two}:-1.3", "--merge")), single, atol=LSB)
    assert not np.allclose(single, full, atol=1e-3)


def cli_spec_run(tmp_path, spec):
    out = tmp_path / "spec.wav"
    assert cli.main(["bright synth-pop", "--model", spec, "--duration", "0.5", "--top-k", "50", "--device", "cpu",
                     "--out", str(out)]) == 0
    return out


def test_prompts_file_continuation_and_mp3(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# two prompts\nbright synth-pop\n\nmellow lofi\n")
    opening = tmp_path / "opening.wav"
    sf.write(str(opening), 0.3 * np.sin(np.arange(16000) * 2 * np.pi * 440 / 32000), 32000)
    out = tmp_path / "clips"
    assert cli.main(["--prompts", str(prompts), "--model", "tiny:0", "--duration", "1", "--prompt-audio",
                     str(opening), "--device", "cpu", "--out", str(out), "--gen-batch-size", "2"]) == 0
    files = sorted(out.glob("clip-*.wav"))
    assert [f.name for f in files] == ["clip-000.wav", "clip-001.wav"]
    first = audio(files[0])
    assert abs(len(first) - 48000) <= 640  # the 0.5 s opening, then 1 s of continuation (to one codec frame)
    assert json.loads(files[1].with_suffix(".json").read_text())["prompt"] == "mellow lofi"
    mp3 = run(tmp_path, "clip", "--format", "mp3").with_suffix(".mp3")
    info = sf.info(str(mp3))
    assert info.samplerate == 32000 and abs(info.duration - 0.5) < 0.1


@pytest.mark.parametrize("args, message", [
    (["--model", "tiny:x"], "seed must be an integer"),
    (["--model", "tiny:0", "--adapter", "/nonexistent/adapter:0.5"], "is not a LoRA adapter folder"),
    (["--model", "tiny:0", "--prompts", "/nonexistent/prompts.txt"], "prompts file"),
    (["--model", "tiny:0", "--prompt-audio", "/nonexistent/a.wav"], "--prompt-audio"),
    (["--model", "tiny:0", "--top-p", "2"], "top_p=2.0"),
    (["--model", "/nonexistent/model"], "/nonexistent/model: no such folder"),
    (["--model", "tiny:0", "--device", "gpu"], "'gpu' is not a torch device"),
])
def test_user_errors_are_one_clear_line(tmp_path, capsys, args, message):
    prompt = [] if "--prompts" in args else ["x"]
    try:
        code = cli.main(prompt + args + ["--out", str(tmp_path / "x.wav")])
    except SystemExit as exc:  # argparse's own errors (a flag's type): usage, then one error line
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    err = err[err.index("error: "):] if "usage:" in err else err
    assert err.startswith("error: ") and message in err
    assert not list(tmp_path.glob("*.wav"))


def test_adapter_argument_parsing(tmp_path):
    assert cli.AdapterArg.parse("a/jpop:0.5") == cli.AdapterArg(cli.Path("a/jpop"), 0.5)
    assert cli.AdapterArg.parse("a/jpop") == cli.AdapterArg(cli.Path("a/jpop"), None)
    odd = tmp_path / "v1:2"
    odd.mkdir()
    assert cli.AdapterArg.parse(str(odd)).folder == odd  # an existing folder is read whole
    assert cli.main(["--model", "tiny:0"]) == 2  # no prompt: a user error, exit 2


def test_evaluation_loads_an_adapter_folded_in(adapters):
    """eval and the listening tests load LoRA models merged and plain: the same tokens, no adapter left."""
    one = adapters[0]
    adapted, merged = models.load_model(f"tiny:0@{one}"), models.load_for_inference(f"tiny:0@{one}")
    assert lora.has_lora(adapted.lm) and not lora.has_lora(merged.lm)
    assert not any("lora" in k for k in merged.lm.state_dict())
    tokens = []
    for model in (adapted, merged, models.load_model("tiny:0")):
        model.set_generation_params(duration=0.5, use_sampling=False, cfg_coef=1.0)
        with torch.no_grad():
            tokens.append(model.generate(["lofi, E minor"], progress=False, return_tokens=True)[1])
    assert torch.equal(tokens[0], tokens[1]) and not torch.equal(tokens[0], tokens[2])  # the adapter counts
    assert not lora.has_lora(models.load_for_inference("tiny:0").lm)


def test_a_prompt_longer_than_the_model_can_continue_is_refused_before_generating():
    model = types.SimpleNamespace(sample_rate=32000, max_duration=2.0)  # generate() checks before it touches the model
    config = cli.GenerateConfig(duration=1.0)
    too_long = torch.zeros(1, 1, 3 * 32000)
    with pytest.raises(cli.GenerationError, match="--prompt-audio is 3.0 s; this model continues at most 2 s"):
        next(cli.generate(model, ["x"], config, too_long))
