"""Style adherence (eval.adherence): closed forms, prompt parsing, audio with known key and tempo, a tiny model."""

import json
import math

import numpy as np
import pytest
import soundfile as sf

from eval import adherence as adh
from genrecraft.synth import SongSpec, render_song


def test_mirex_scores_and_tempo_classes():
    assert adh.mirex_key_score("C", "major", "C", "major") == 1.0
    assert adh.mirex_key_score("C", "major", "G", "major") == 0.5
    assert adh.mirex_key_score("C", "major", "F", "major") == 0.5
    assert adh.mirex_key_score("C", "major", "A", "minor") == 0.3
    assert adh.mirex_key_score("A", "minor", "C", "major") == 0.3
    assert adh.mirex_key_score("C", "major", "C", "minor") == 0.2
    assert adh.mirex_key_score("C#", "minor", "Db", "minor") == 1.0
    assert adh.mirex_key_score("C", "major", "F#", "major") == 0.0
    assert adh.tempo_class(100, 103.9) == "correct" and adh.tempo_class(100, 104.5) == "wrong"
    assert adh.tempo_class(90, 180) == "octave" and adh.tempo_class(90, 45.5) == "octave"
    assert adh.tempo_class(90, float("nan")) == "wrong"
    with pytest.raises(ValueError, match="not a pitch class"):
        adh.pitch_class("H")


def test_prompt_target_reads_the_description_then_the_sidecar():
    t = adh.prompt_target("mellow lo-fi with piano, in E minor, 86 bpm")
    assert (t.key, t.mode, t.bpm) == ("E", "minor", 86.0)
    t = adh.prompt_target("a calm lo-fi piece (92 beats per minute), key of Bb major")
    assert (t.key, t.mode, t.bpm) == ("Bb", "major", 92.0)
    t = adh.prompt_target("lo-fi with drums", {"key": "F# minor", "bpm": 78.2})
    assert (t.key, t.mode, t.bpm) == ("F#", "minor", 78.2)
    t = adh.prompt_target("no labels at all", {})
    assert t.key is None and t.bpm is None
    t = adh.prompt_target("lo-fi", {"key": "e minor"})  # spelled in lower case: still E minor
    assert (t.key, t.mode) == ("E", "minor")
    t = adh.prompt_target("lo-fi", {"key": "H minor", "bpm": 80})  # not a key: not scored, rather than a crash
    assert t.key is None and t.mode is None and t.bpm == 80.0


def test_js_distance_and_tag_distribution():
    p = adh.tag_distribution([{"rock", "guitar"}, {"rock"}])
    assert p == pytest.approx({"guitar": 1 / 3, "rock": 2 / 3})
    assert adh.js_distance(p, p) == pytest.approx(0.0, abs=1e-12)
    assert adh.js_distance({"a": 1.0}, {"b": 1.0}) == pytest.approx(1.0)
    assert 0 < adh.js_distance({"a": 0.5, "b": 0.5}, {"a": 1.0}) < 1
    assert math.isnan(adh.js_distance({}, {"a": 1.0}))


SONGS = [SongSpec("A", "minor", 84.0, "lofi", seed=1), SongSpec("E", "major", 124.0, "synthpop", seed=2),
         SongSpec("D", "minor", 78.0, "lofi", seed=3), SongSpec("G", "major", 130.0, "synthpop", seed=4)]


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    """Four 'generated' clips with known key and tempo, and a style B (lo-fi) training manifest."""
    root = tmp_path_factory.mktemp("adherence")
    clips = root / "clips"
    clips.mkdir()
    files = []
    for i, spec in enumerate(SONGS):
        path = clips / f"{i:04d}.wav"
        sf.write(path, render_song(spec, 15.0), 32000)
        files.append(path)
    train = root / "train"
    train.mkdir()
    lines = []
    for i in range(3):
        wav = train / f"song{i}-00000000.wav"
        sf.write(wav, render_song(SongSpec("C", "minor", 80.0 + i, "lofi", seed=10 + i), 2.0), 32000)
        wav.with_suffix(".json").write_text(json.dumps({"genre": "hip-hop, electronic", "moods": ["chill"],
                                                       "instrument": "piano, drums", "key": "C minor"}))
        lines.append(json.dumps({"path": str(wav), "duration": 2.0, "sample_rate": 32000}))
    (train / "data.jsonl").write_text("\n".join(lines) + "\n")
    return files, train


def _prompts(path, descriptions):
    path.write_text("".join(json.dumps({"index": i, "source": "", "description": d}) + "\n"
                            for i, d in enumerate(descriptions)))
    return path


@pytest.fixture(scope="module")
def dsp_labeler():
    from dataset_builder.label import LabelConfig, Labeler

    return Labeler(LabelConfig(tagger="none"))


@pytest.mark.slow
def test_audio_with_known_key_and_tempo_scores_high_and_wrong_prompts_score_low(known, dsp_labeler, tmp_path):
    files, train = known
    right = _prompts(tmp_path / "right.jsonl", [f"{s.style}, in {s.key} {s.mode}, {s.bpm:g} bpm" for s in SONGS])
    # every prompt a tritone away (MIREX 0) and 30 % faster (neither correct nor an octave)
    wrong = _prompts(tmp_path / "wrong.jsonl", [
        f"{s.style}, in {adh.PITCHES[(adh.pitch_class(s.key) + 6) % 12]} {s.mode}, {s.bpm * 1.3:.0f} bpm"
        for s in SONGS])
    good = adh.adherence(files, right, train, labeler=dsp_labeler, n_boot=200)
    bad = adh.adherence(files, wrong, train, labeler=dsp_labeler, n_boot=200)
    assert good["n_clips"] == 4 and good["tempo_clips"] == 4 and good["key_clips"] == 4
    assert good["tempo_adherence"] >= 0.75 and good["key_adherence"] >= 0.75, good["clips"]
    assert bad["tempo_adherence"] == 0.0 and bad["key_adherence"] <= 0.25, bad["clips"]
    lo, hi = good["key_interval"]
    assert lo <= good["key_adherence"] <= hi
    # the DSP-only labeller gives no tags: no tag distance rather than a made-up one
    assert good["tag_distance"] is not None and math.isnan(good["tag_distance"])


def test_clips_without_a_prompt_are_a_clear_error(known, dsp_labeler, tmp_path):
    files, train = known
    prompts = _prompts(tmp_path / "p.jsonl", ["lofi, in A minor, 84 bpm"])
    with pytest.raises(ValueError, match="have no prompt"):
        adh.adherence(files, prompts, train, labeler=dsp_labeler)


@pytest.mark.slow
def test_tag_distance_is_lower_for_the_style_the_clips_are_in(known, tmp_path):
    """musicnn tags of lo-fi clips sit closer to lo-fi training tags than to synth-pop clips' own tags."""
    from dataset_builder.label import LabelConfig, Labeler

    files, train = known
    labeler = Labeler(LabelConfig(tagger="musicnn"))
    lofi = adh.label_clips([files[0], files[2]], [adh.Target()] * 2, labeler)
    pop = adh.label_clips([files[1], files[3]], [adh.Target()] * 2, labeler)
    lofi_tags = adh.tag_distribution([set(c.tags) for c in lofi])
    pop_tags = adh.tag_distribution([set(c.tags) for c in pop])
    assert lofi_tags and pop_tags
    same = adh.score(lofi, lofi_tags, n_boot=50)["tag_distance"]
    other = adh.score(lofi, pop_tags, n_boot=50)["tag_distance"]
    assert same == pytest.approx(0.0, abs=1e-9) and other > same


@pytest.mark.slow
def test_adherence_on_a_tiny_models_clips(known, dsp_labeler, tmp_path):
    """Any model spec: clips that eval.generate wrote for tiny:0 are labelled and scored (noise, so no
    expectation on the values, only on their ranges)."""
    from eval.generate import GenerateConfig, generate_for_eval
    from genrecraft.models import load_model
    from genrecraft.synth import write_dataset

    _, train = known
    manifest = write_dataset(tmp_path, "tiny_adh", SONGS[:2], seconds=3.0)
    out = tmp_path / "generated"
    config = GenerateConfig(n=2, duration=2.0, prompt_duration=0, batch_size=2, progress=False)
    clips = generate_for_eval(lambda: load_model("tiny:0", device="cpu"), "tiny", manifest, out, config)
    result = adh.adherence(clips["text"], out / "prompts.jsonl", train, labeler=dsp_labeler, n_boot=50)
    assert result["n_clips"] == 2 and result["key_clips"] == 2 and result["tempo_clips"] == 2
    assert 0.0 <= result["key_adherence"] <= 1.0 and 0.0 <= result["tempo_adherence"] <= 1.0
    asked = {c["asked"]["key"] for c in result["clips"]}
    assert asked == {"A", "E"}  # from the test songs' descriptions (write_dataset states key and bpm)
