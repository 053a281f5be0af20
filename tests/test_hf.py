"""The Hugging Face bridge (genrecraft.hf, lora.peft_format) on tiny models built from config: nothing is downloaded.

Parity is checked in float32: audiocraft LM -> transformers MusicGen gives the same logits (<= 1e-4) and the same
greedy tokens (with and without classifier-free guidance); audiocraft -> transformers -> audiocraft gives back the
same state dict; a genrecraft adapter applied through peft equals the merged export; import-peft gives back the
same tensors.
"""

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import pytest
import torch

import lora
from genrecraft import hf
from genrecraft.core import hf_names
from tests.fixtures import t5_models

TOL = 1e-4
TEXT = ["rock with drums"]  # one description: see test_padded_batch_is_a_known_difference


@pytest.fixture(scope="module")
def tiny():
    return t5_models.tiny_t5_musicgen(seed=0)


@pytest.fixture(scope="module")
def exported(tiny, tmp_path_factory):
    return hf.export_transformers(tiny, tmp_path_factory.mktemp("hf") / "tiny-hf",
                                  card={"base_model": "facebook/musicgen-small", "source": "tiny"})


def _codes(lm, batch=1, steps=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, lm.card, (batch, lm.n_q, steps), generator=g)


@torch.no_grad()
def _audiocraft_logits(model, codes, texts):
    from audiocraft.modules.conditioners import ConditioningAttributes

    return model.lm(codes, [ConditioningAttributes(text={"description": t}) for t in texts])  # [B, K, S, card]


@torch.no_grad()
def _hf_logits(hf_model, processor, codes, texts):
    B, K, S = codes.shape
    inputs = processor(text=texts, padding=True, return_tensors="pt")
    return hf_model(**inputs, decoder_input_ids=codes.reshape(B * K, S)).logits.reshape(B, K, S, -1)


def _load_hf(folder):
    from transformers import AutoProcessor, MusicgenForConditionalGeneration

    return MusicgenForConditionalGeneration.from_pretrained(folder).eval(), AutoProcessor.from_pretrained(folder)


def _conversion_module():
    """transformers' own MusicGen conversion script (shipped in transformers <= 4.4x; later wheels leave it out).
    ``GENRECRAFT_TRANSFORMERS_CONVERT_SCRIPT`` may point at a copy of ``convert_musicgen_transformers.py``."""
    try:
        return importlib.import_module("transformers.models.musicgen.convert_musicgen_transformers")
    except ImportError:
        path = os.environ.get("GENRECRAFT_TRANSFORMERS_CONVERT_SCRIPT") or _script_from_old_wheel()
        spec = importlib.util.spec_from_file_location("convert_musicgen_transformers", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


def _script_from_old_wheel() -> str:
    """The conversion script out of the transformers 4.40.2 wheel on PyPI (fetched once into the cache dir; the
    package is not installed). Skips only when PyPI cannot be reached."""
    import subprocess
    import sys
    import zipfile

    from genrecraft.core import paths

    folder = paths.cache_dir() / "transformers-4.40.2"
    script = folder / "convert_musicgen_transformers.py"
    if not script.exists():
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                               "transformers==4.40.2", "-d", str(folder)], capture_output=True, text=True)
        wheels = list(folder.glob("transformers-4.40.2-*.whl"))
        if proc.returncode != 0 or not wheels:
            pytest.skip(f"transformers 4.40.2 (whose wheel ships the conversion script) cannot be fetched from PyPI "
                        f"here: {proc.stderr.strip()[-200:]}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            script.write_bytes(wheel.read("transformers/models/musicgen/convert_musicgen_transformers.py"))
    return str(script)


@pytest.mark.slow
def test_mapping_agrees_with_transformers_conversion_script(tiny):
    convert = _conversion_module()
    state = {k: v.clone() for k, v in tiny.lm.state_dict().items()}
    theirs_decoder, theirs_proj = convert.rename_state_dict(dict(state), hidden_size=tiny.lm.dim)
    ours_decoder, ours_proj = hf.lm_state_to_hf(state)
    assert set(ours_decoder) == set(theirs_decoder) and set(ours_proj) == set(theirs_proj)
    assert all(torch.equal(ours_decoder[k], theirs_decoder[k]) for k in ours_decoder)
    assert all(torch.equal(ours_proj[k], theirs_proj[k]) for k in ours_proj)


def test_mapping_covers_the_decoder_and_inverts(tiny):
    from transformers import MusicgenForCausalLM

    state = tiny.lm.state_dict()
    decoder, proj = hf.lm_state_to_hf(state)
    expected = {k for k in MusicgenForCausalLM(hf.decoder_config(tiny.lm)).state_dict() if "embed_positions" not in k}
    assert set(decoder) == expected
    assert set(proj) == {"weight", "bias"}
    back = hf.hf_state_to_lm(decoder, proj)
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)
    for module, _ in tiny.lm.named_modules():
        for segment in (None, "q", "k", "v"):
            try:
                name = hf_names.lm_module_to_hf(module, segment)
            except KeyError:
                continue
            assert hf_names.hf_module_to_lm(name) == (module, segment)


def test_logits_match_audiocraft(tiny, exported):
    hf_model, processor = _load_hf(exported)
    codes = _codes(tiny.lm, batch=2, steps=12)
    texts = TEXT * 2
    diff = (_audiocraft_logits(tiny, codes, texts) - _hf_logits(hf_model, processor, codes, texts)).abs().max()
    assert diff <= TOL, diff


def test_padded_batch_is_a_known_difference(tiny, exported):
    """audiocraft lets cross-attention see padded text positions (zero vectors); transformers masks them. Each
    unpadded item matches; a description shorter than the batch's longest one does not. Documented in README."""
    hf_model, processor = _load_hf(exported)
    codes = _codes(tiny.lm, batch=2, steps=6)
    texts = ["a pop song with drums and synth", "rock"]
    ours, theirs = _audiocraft_logits(tiny, codes, texts), _hf_logits(hf_model, processor, codes, texts)
    assert (ours[0] - theirs[0]).abs().max() <= TOL
    assert (ours[1] - theirs[1]).abs().max() > TOL


@pytest.mark.slow
@pytest.mark.parametrize("cfg_coef", [1.0, 3.0])
def test_greedy_generation_gives_the_same_tokens(tiny, exported, cfg_coef):
    from audiocraft.modules.conditioners import ConditioningAttributes

    hf_model, processor = _load_hf(exported)
    captured = {}
    decode = hf_model.audio_encoder.decode

    def capture(codes, *args, **kwargs):
        captured["codes"] = codes[0]
        return decode(codes, *args, **kwargs)

    hf_model.audio_encoder.decode = capture
    steps = 16
    with torch.no_grad():
        ours = tiny.lm.generate(None, [ConditioningAttributes(text={"description": TEXT[0]})], max_gen_len=steps,
                                use_sampling=False, cfg_coef=cfg_coef)
        hf_model.generate(**processor(text=TEXT, return_tensors="pt"), do_sample=False,
                          guidance_scale=cfg_coef if cfg_coef > 1 else None, max_new_tokens=steps + tiny.lm.n_q - 1)
    theirs = captured["codes"]
    assert ours.shape == theirs.shape == (1, tiny.lm.n_q, steps)
    assert torch.equal(ours, theirs)


@pytest.mark.slow
def test_folder_loads_without_genrecraft(exported, tmp_path):
    script = textwrap.dedent(f"""
        import json, sys
        from transformers import AutoProcessor, MusicgenForConditionalGeneration, MusicgenProcessor
        model = MusicgenForConditionalGeneration.from_pretrained({str(exported)!r})
        processor = AutoProcessor.from_pretrained({str(exported)!r})
        assert isinstance(processor, MusicgenProcessor), type(processor)
        audio = model.generate(**processor(text=["pop"], return_tensors="pt"), max_new_tokens=8)
        print(json.dumps({{"genrecraft": any(m.startswith(("genrecraft", "audiocraft", "lora")) for m in sys.modules),
                           "shape": list(audio.shape), "start": model.generation_config.decoder_start_token_id}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": ""})
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["genrecraft"] is False
    assert result["shape"][:2] == [1, 1] and result["start"] == 1024
    names = {p.name for p in exported.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "README.md", "tokenizer.json",
            "processor_config.json"} <= names


@pytest.mark.slow
def test_round_trip_through_hf_spec(tiny, exported):
    from genrecraft.models import load_model, parse_model_spec

    assert parse_model_spec(f"hf:{exported}").kind == "hf"
    back = load_model(f"hf:{exported}")
    ours, theirs = tiny.lm.state_dict(), back.lm.state_dict()
    assert set(ours) == set(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert back.lm.cfg.conditioners.description.model == "t5" and back.sample_rate == tiny.sample_rate
    codes = _codes(tiny.lm)
    assert torch.equal(_audiocraft_logits(tiny, codes, TEXT), _audiocraft_logits(back, codes, TEXT))
    back.set_generation_params(duration=0.2)
    wav = back.generate(TEXT)  # audiocraft's own generation, decoded by the checkpoint's EnCodec
    assert wav.shape[:2] == (1, 1) and wav.shape[-1] >= int(0.2 * back.sample_rate) - 320
    from genrecraft.solvers import load_base_lm_state

    base = load_base_lm_state(f"hf:{exported}")
    assert all(torch.equal(base[k], ours[k]) for k in ours)


@pytest.fixture(scope="module")
def adapted(tmp_path_factory):
    """A tiny model with random (non-zero) adapters on every target of layer 1, and its adapter folder."""
    model = t5_models.tiny_t5_musicgen(seed=0)
    lora.inject(model, lora.LoraConfig(r=4, alpha=8, targets=lora.ALL_TARGETS, layers=(1,)))
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in lora.lora_parameters(model):
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    folder = lora.save_adapter(model, tmp_path_factory.mktemp("adapter") / "adapter", base_model_id="tiny")
    return model, folder


@pytest.mark.slow
def test_peft_adapter_equals_merged_export(adapted, exported, tmp_path):
    from peft import PeftModel

    model, folder = adapted
    merged = hf.export_transformers(model, tmp_path / "merged")
    from lora.__main__ import main as lora_main

    assert lora_main(["export-peft", str(folder), "--out", str(tmp_path / "peft"),
                      "--base-model-name-or-path", str(exported)]) == 0
    config = json.loads((tmp_path / "peft" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 4 and config["lora_alpha"] == 8
    base, processor = _load_hf(exported)
    with_peft = PeftModel.from_pretrained(base, tmp_path / "peft").eval()
    merged_model, _ = _load_hf(merged)
    codes = _codes(model.lm)
    theirs = _hf_logits(with_peft, processor, codes, TEXT)
    assert (theirs - _hf_logits(merged_model, processor, codes, TEXT)).abs().max() <= TOL
    assert (theirs - _audiocraft_logits(model, codes, TEXT)).abs().max() <= TOL
    with with_peft.disable_adapter():
        assert (theirs - _hf_logits(with_peft, processor, codes, TEXT)).abs().max() > 1e-3  # the adapter does act


@pytest.mark.slow
def test_import_peft_gives_back_the_same_adapter(adapted, exported, tmp_path):
    model, folder = adapted
    lora.export_peft(folder, tmp_path / "peft")
    from lora.__main__ import main as lora_main

    assert lora_main(["import-peft", str(tmp_path / "peft"), "--model", f"hf:{exported}",
                      "--out", str(tmp_path / "back")]) == 0
    fresh = t5_models.tiny_t5_musicgen(seed=0)
    config = lora.load_adapter(fresh, tmp_path / "back")
    assert config == lora.get_config(model)
    ours, back = lora.adapter_state_dict(model), lora.adapter_state_dict(fresh)
    assert set(ours) == set(back) and all(torch.equal(ours[k], back[k]) for k in ours)


def test_model_card_front_matter(exported, tmp_path):
    import yaml

    from genrecraft.export import dataset_summary, eval_table

    text = (exported / "README.md").read_text()
    front = yaml.safe_load(text.split("---")[1])
    assert front["license"] == "cc-by-nc-4.0" and front["library_name"] == "transformers"
    assert front["base_model"] == "facebook/musicgen-small" and "musicgen" in front["tags"]
    (tmp_path / "dataset_card.md").write_text("# Dataset card: jpop\n\n| split | songs |\n| --- | --- |\n"
                                              "| train | 9 |\n\n![tags](plots/tags.png)\n\n## Sources\n| x |\n")
    (tmp_path / "report.md").write_text("# Report\n\n| model | ce |\n| --- | --- |\n| base | 5.1 |\n\nmore\n| y |\n")
    card = hf.model_card({"dataset_summary": dataset_summary(tmp_path / "dataset_card.md"),
                          "eval_table": eval_table(tmp_path / "report.md"), "license": "mit"})
    assert "| train | 9 |" in card and "plots/tags.png" not in card and "| x |" not in card
    assert "| base | 5.1 |" in card and "| y |" not in card and "license: mit" in card


@pytest.mark.slow
def test_export_cli_from_hf_spec_and_push_to_hub(exported, tmp_path, capsys):
    from huggingface_hub import HfApi

    from genrecraft.export import main

    with mock.patch.object(HfApi, "create_repo") as create, mock.patch.object(HfApi, "upload_folder") as upload:
        upload.return_value = mock.Mock(commit_url="https://huggingface.co/me/jpop/commit/1")
        assert main([f"hf:{exported}", "--format", "transformers", "--out", str(tmp_path / "out"),
                     "--push-to-hub", "me/jpop", "--private"]) == 0
    create.assert_called_once_with(repo_id="me/jpop", repo_type="model", private=True, exist_ok=True)
    kwargs = upload.call_args.kwargs
    assert kwargs["repo_id"] == "me/jpop" and Path(kwargs["folder_path"]) == tmp_path / "out"
    assert (tmp_path / "out" / "model.safetensors").is_file() and "uploaded" in capsys.readouterr().out


def test_bad_input_is_clear(tmp_path, capsys):
    from genrecraft.export import main
    from genrecraft.models import parse_model_spec, tiny_musicgen

    with pytest.raises(ValueError, match="not T5"):
        hf.to_transformers_model(tiny_musicgen(seed=0))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        parse_model_spec(f"hf:{tmp_path / 'empty'}")
    with pytest.raises(FileNotFoundError, match="adapter_model.safetensors"):
        lora.read_peft_adapter(tmp_path / "empty")
    (tmp_path / "dora").mkdir()
    (tmp_path / "dora" / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "use_dora": True}))
    from safetensors.torch import save_file

    save_file({"base_model.model.decoder.lm_heads.0.lora_A.weight": torch.zeros(2, 4)},
              str(tmp_path / "dora" / "adapter_model.safetensors"))
    with pytest.raises(ValueError, match="use_dora"):
        lora.read_peft_adapter(tmp_path / "dora")
    (tmp_path / "dora" / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2}))
    save_file({"base_model.model.text_encoder.encoder.block.0.layer.0.SelfAttention.q.lora_A.weight":
               torch.zeros(2, 4)}, str(tmp_path / "dora" / "adapter_model.safetensors"))
    with pytest.raises(ValueError, match="text/audio encoder"):
        lora.read_peft_adapter(tmp_path / "dora")
    assert main(["nothing-here", "--format", "transformers", "--out", str(tmp_path / "x")]) == 2
    assert "neither a Dora signature nor a model spec" in capsys.readouterr().err


def test_an_audiocraft_encodec_converts_to_transformers_and_codes_alike():
    import types

    from audiocraft.models import builders

    from genrecraft.models import compose

    torch.manual_seed(0)
    codec = builders.get_compression_model(compose(["solver=compression/encodec_musicgen_32khz", "device=cpu"])).eval()
    for p in codec.parameters():
        p.data.normal_(0, 0.05)
    for layer in codec.quantizer.vq.layers:  # codebooks as a fitted codec has them (not the untrained zeros)
        layer._codebook.embed.data.normal_(0, 1)
    converted = hf.audio_encoder_for(types.SimpleNamespace(compression_model=codec))  # no hub: converted
    assert type(converted).__name__ == "EncodecModel" and converted.config.codebook_size == 2048
    assert converted.config.target_bandwidths == [2.2] and converted.config.sampling_rate == 32000
    probe = 0.1 * torch.randn(1, 1, 3 * 32000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = codec.encode(probe)[0][..., 25:-25]
        theirs = converted.encode(probe, bandwidth=2.2).audio_codes[0][..., 25:-25]
    assert torch.equal(ours, theirs)
    with pytest.raises(ValueError, match="not audiocraft's EnCodec"):
        hf.encodec_to_transformers(torch.nn.Linear(2, 2))
    layer = codec.decoder.model[0].conv.conv  # a weight of another shape: refused, not loaded half
    layer.weight_v = torch.nn.Parameter(torch.zeros(3, 3, 3))
    with pytest.raises(ValueError, match="layout differs"):
        hf.encodec_to_transformers(codec)
