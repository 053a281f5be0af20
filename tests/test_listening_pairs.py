"""Pair generation: tiny MusicGens stand in for base, full fine-tuning and LoRA.

Same seed gives the same clip, every clip ends at the target loudness, the blind key matches the public pairs,
a rerun resumes without regenerating, and prompts come from a dataset's test split."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from genrecraft.models import tiny_musicgen
from genrecraft.synth import SongSpec, render_song
from scripts import make_pairs as make_pairs_cli
from scripts.listening import pairs

PROMPTS = ["bright synth-pop, C major, 120 bpm", "mellow lofi beat with piano, A minor, 80 bpm"]
SETTINGS = pairs.GenerationSettings(duration=1.5, top_k=50, seed=11)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The tiny model runs 10-100x faster on one thread than on two busy cores.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def models():
    return {"base": tiny_musicgen(seed=0), "full": tiny_musicgen(seed=1), "lora": tiny_musicgen(seed=2)}


@pytest.fixture(scope="module")
def test_dir(models, tmp_path_factory):
    out = tmp_path_factory.mktemp("listening") / "test"
    pairs.make_pairs(models, PROMPTS, out, pairs.PairsConfig(generation=SETTINGS, blind_seed=5))
    return out


@pytest.mark.slow
def test_same_seed_same_clip(models, test_dir):
    key = json.loads((test_dir / "key.json").read_text())
    clips = {(c["model"], c["prompt_index"]): cid for cid, c in key["clips"].items()}
    # Generating again with the same model, prompts and settings gives the same audio as the stored raw clip.
    again = dict(pairs.generate_clips(models["full"], PROMPTS, SETTINGS))
    for i in range(len(PROMPTS)):
        stored, sr = sf.read(test_dir / "raw" / f"{clips['full', i]}.wav", dtype="float32", always_2d=True)
        assert sr == 32000 and stored.shape[1] == 1 and abs(stored.shape[0] - 48000) <= 1280  # whole 25 Hz frames
        np.testing.assert_array_equal(stored, again[i])
    # Every model used the same seed for a prompt; different models give different clips.
    for i in range(len(PROMPTS)):
        assert len({key["clips"][clips[m, i]]["seed"] for m in models}) == 1
        assert key["clips"][clips["base", i]]["seed"] == SETTINGS.seed + i
    base0, _ = sf.read(test_dir / "raw" / f"{clips['base', 0]}.wav", dtype="float32")
    assert not np.allclose(base0, again[0][:, 0])


def test_clips_share_one_loudness(test_dir):
    key = json.loads((test_dir / "key.json").read_text())
    assert key["loudness_lufs"] == -23.0
    for cid in key["clips"]:
        audio, sr = sf.read(test_dir / "clips" / f"{cid}.wav", dtype="float32", always_2d=True)
        assert sf.info(test_dir / "clips" / f"{cid}.wav").subtype == "PCM_16"
        assert abs(pairs.integrated_loudness(audio, sr) - (-23.0)) < 0.5
        assert pairs.peak_dbfs(audio) <= -1.0 + 1e-3


def test_blind_key_is_consistent(test_dir):
    public = json.loads((test_dir / "pairs.json").read_text())
    key = json.loads((test_dir / "key.json").read_text())
    assert public["test_id"] == key["test_id"] and key["complete"]
    text = (test_dir / "pairs.json").read_text()
    for name in ("base", "full", "lora"):
        assert name not in text  # nothing public names a model
    by_id = {p["id"]: p for p in key["pairs"]}
    assert sorted(by_id) == sorted(p["id"] for p in public["pairs"])
    meetings = set()
    for p in public["pairs"]:
        k = by_id[p["id"]]
        assert p["prompt"] == PROMPTS[k["prompt_index"]]
        assert p["a"] == f"clips/{k['clip_a']}.wav" and p["b"] == f"clips/{k['clip_b']}.wav"
        ca, cb = key["clips"][k["clip_a"]], key["clips"][k["clip_b"]]
        assert (ca["model"], cb["model"]) == (k["a"], k["b"]) and k["a"] != k["b"]
        assert ca["prompt_index"] == cb["prompt_index"] == k["prompt_index"]
        assert (test_dir / p["a"]).is_file() and (test_dir / p["b"]).is_file()
        meetings.add((frozenset((k["a"], k["b"])), k["prompt_index"]))
    # Every pair of models meets once on every prompt, in both A/B orders across the test.
    assert len(meetings) == len(public["pairs"]) == 3 * len(PROMPTS)
    assert {k["a"] < k["b"] for k in key["pairs"]} == {True, False}


def test_rerun_resumes_and_refuses_other_settings(models, test_dir):
    key = json.loads((test_dir / "key.json").read_text())
    lost = next(cid for cid, c in key["clips"].items() if c["model"] == "lora")
    (test_dir / "raw" / f"{lost}.wav").unlink()
    (test_dir / "clips" / f"{lost}.wav").unlink()
    before = {p: p.read_bytes() for p in (test_dir / "clips").iterdir()}
    loaded = []

    def loader(name):
        def load():
            loaded.append(name)
            return models[name]
        return load

    sources = {name: loader(name) for name in models}
    result = pairs.make_pairs(sources, PROMPTS, test_dir, pairs.PairsConfig(generation=SETTINGS))
    assert loaded == ["lora"]  # only the model with a missing clip was loaded
    assert result.n_pairs == 6 and (test_dir / "clips" / f"{lost}.wav").is_file()
    for path, data in before.items():
        assert path.read_bytes() == data  # the other clips are unchanged
    with pytest.raises(ValueError, match="'generation'"):
        pairs.make_pairs(sources, PROMPTS, test_dir,
                         pairs.PairsConfig(generation=pairs.GenerationSettings(duration=2.0, top_k=50, seed=11)))
    with pytest.raises(ValueError, match="'prompts'"):
        pairs.make_pairs(sources, PROMPTS[:1], test_dir, pairs.PairsConfig(generation=SETTINGS))


class LevelModel:
    """A stand-in MusicGen that plays a synthetic song at a fixed gain: clips of very different loudness."""

    sample_rate = 32000

    def __init__(self, gain):
        self.gain = gain

    def set_generation_params(self, duration, **_):
        self.duration = duration

    def generate(self, descriptions, progress=False):
        song = render_song(SongSpec(seed=len(descriptions[0])), self.duration)
        return torch.from_numpy(song * self.gain).reshape(1, 1, -1).repeat(len(descriptions), 1, 1)


def test_loudness_levels_and_peak_ceiling(tmp_path):
    settings = pairs.GenerationSettings(duration=3.0)
    sources = {"quiet": LevelModel(0.05), "loud": LevelModel(0.9)}
    result = pairs.make_pairs(sources, PROMPTS, tmp_path / "a",
                              pairs.PairsConfig(generation=settings, loudness_lufs=-23))
    key = json.loads(result.key_path.read_text())
    raw = {c["model"]: c["raw_lufs"] for c in key["clips"].values()}
    assert raw["loud"] - raw["quiet"] > 20  # 0.9 / 0.05 is 25 dB apart before normalisation
    for cid in key["clips"]:
        audio, sr = sf.read(tmp_path / "a" / "clips" / f"{cid}.wav", always_2d=True)
        assert abs(pairs.integrated_loudness(audio, sr) + 23.0) < 0.5

    # At -6 LUFS these clips would clip: every clip is set lower together, none above the -1 dBFS ceiling.
    result = pairs.make_pairs(sources, PROMPTS, tmp_path / "b",
                              pairs.PairsConfig(generation=settings, loudness_lufs=-6))
    assert result.loudness_lufs < -6.0
    key = json.loads(result.key_path.read_text())
    levels = []
    for cid in key["clips"]:
        audio, sr = sf.read(tmp_path / "b" / "clips" / f"{cid}.wav", always_2d=True)
        levels.append(pairs.integrated_loudness(audio, sr))
        assert pairs.peak_dbfs(audio) <= -1.0 + 1e-3
    assert max(levels) - min(levels) < 0.5 and abs(np.mean(levels) - result.loudness_lufs) < 0.5


def _dataset(root: Path, descriptions):
    egs = root / "egs" / "test"
    egs.mkdir(parents=True)
    lines = []
    for i, text in enumerate(descriptions):
        wav = root / "clips" / f"c{i}.wav"
        wav.parent.mkdir(exist_ok=True)
        sf.write(wav, np.zeros(3200, np.float32), 32000)
        wav.with_suffix(".json").write_text(json.dumps({"description": text, "genre": "pop"}))
        lines.append(json.dumps({"path": str(wav), "duration": 0.1, "sample_rate": 32000}))
    (egs / "data.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_prompts_from_the_test_split(tmp_path):
    texts = [f"description number {i}" for i in range(8)] + ["description number 0"]  # one duplicate
    root = _dataset(tmp_path / "ds", texts)
    picked = pairs.sample_descriptions(root, 5, seed=3)
    assert len(picked) == len(set(picked)) == 5 and set(picked) <= set(texts)
    assert pairs.sample_descriptions(root / "egs" / "test" / "data.jsonl", 5, seed=3) == picked
    assert pairs.sample_descriptions(root, 50, seed=0).__len__() == 8  # all distinct ones when asked for more

    empty = tmp_path / "empty" / "egs" / "test"
    empty.mkdir(parents=True)
    (empty / "data.jsonl").write_text(json.dumps({"path": str(tmp_path / "nowhere.wav"), "duration": 1.0,
                                                  "sample_rate": 32000}) + "\n")
    with pytest.raises(ValueError, match="--prompts"):
        pairs.sample_descriptions(tmp_path / "empty", 3)
    with pytest.raises(ValueError, match="no manifest"):
        pairs.find_manifest(tmp_path)


@pytest.mark.slow
def test_command_line_with_tiny_model_specs(tmp_path, capsys):
    root = _dataset(tmp_path / "ds", ["warm jazz trio", "fast drum and bass", "calm ambient pads"])
    out = tmp_path / "cli"
    argv = ["--model", "base=tiny:0", "--model", "tiny:3", "--dataset", str(root), "-k", "2", "--out", str(out),
            "--key", str(tmp_path / "secret" / "key.json"), "--duration", "1", "--top-k", "20", "--style", "jazz"]
    assert make_pairs_cli.main(argv) == 0
    assert "2 pairs of 4 clips" in capsys.readouterr().out
    key = pairs.load_key(tmp_path / "secret" / "key.json")
    assert key["models"] == {"base": "tiny:0", "tiny3": "tiny:3"} and not (out / "key.json").exists()
    public = pairs.load_pairs(out)
    assert "jazz" in public["questions"][1]["text"]
    stamps = {f: f.stat().st_mtime_ns for f in (out / "clips").iterdir()}
    assert make_pairs_cli.main(argv) == 0  # the same command again: already complete, nothing rewritten
    assert {f: f.stat().st_mtime_ns for f in (out / "clips").iterdir()} == stamps
    capsys.readouterr()
    assert make_pairs_cli.main(argv[:-2]) == 2  # without --style the questions differ: refused, nothing lost
    assert "'questions'" in capsys.readouterr().err
    assert {f: f.stat().st_mtime_ns for f in (out / "clips").iterdir()} == stamps
    # A spec that names nothing loadable stops before anything is generated.
    assert make_pairs_cli.main(["--model", "base=tiny:0", "--model", "other=not-a-model", "--prompts",
                                str(tmp_path / "p.txt"), "--out", str(tmp_path / "never")]) == 2
    assert "cannot read model spec 'not-a-model'" in capsys.readouterr().err and not (tmp_path / "never").exists()
