"""Vocals (--vocals flag|drop|separate|keep) and labels with confidence (--min-tag-confidence, playlist tags win).

The separator is demucs' HTDemucs built from its config with random weights (tiny): the same code path as the
pretrained htdemucs, without the download."""

import collections
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dataset_builder import BuildConfig, build, vocals
from dataset_builder.chunk import Chunk
from dataset_builder.download import Item
from dataset_builder.label import Labels
from dataset_builder.label.confidence import confident
from dataset_builder.manifest import music_info


@pytest.fixture
def one_torch_thread():
    """The tiny separator on one thread: on a busy 2-core machine two OpenMP threads made it 15x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_htdemucs():
    import torch
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(0)
    # htdemucs' own layout (depth 4, nfft 4096, a cross-domain transformer), 100k parameters instead of 42M
    return HTDemucs(sources=["drums", "bass", "other", "vocals"], channels=4, depth=4, t_layers=1, t_heads=2,
                    segment=2, dconv_comp=2, bottom_channels=0)


def _labels(**changes) -> Labels:
    base = Labels(key="F#", scale="major", key_strength=0.8, bpm=128.0, loudness_lufs=-12.0,
                  genres=[("techno", 0.6), ("classical", 0.15)], moods=[("weird", 0.12), ("happy", 0.4)],
                  instruments=[("vocals", 0.5), ("piano", 0.3)], keywords=["female vocals"], tagger="musicnn",
                  tempo_method="degara+backbeat", tempo_confidence=1.0)
    for k, v in changes.items():
        setattr(base, k, v)
    return base


def test_vocal_score_reads_the_detector_and_tag_score_the_voice_tags():
    mtt = {t: 0.005 for t in vocals.MTT_VOCAL_TAGS + ("no vocals", "piano")}
    scores = {"MTT_musicnn": {**mtt, "singing": 0.3}, "MSD_musicnn": {}, "vocal_detector": {"vocal": 0.12}}
    assert vocals.vocal_score(scores) == 0.12 and vocals.tag_score(scores) == 0.3
    quiet = vocals.tag_score({"MTT_musicnn": {**mtt, "no vocals": 0.6, "piano": 0.5}, "MSD_musicnn": {}})
    assert 0.0 <= quiet < vocals.TAG_THRESHOLD
    assert vocals.vocal_score({"MTT_musicnn": mtt}) is None  # labels of an older version: unknown, not "no voice"
    assert vocals.vocal_score({}) is None and vocals.tag_score({}) is None  # another tagger


def test_vocal_detector_weights_load_with_the_expected_shape():
    from dataset_builder.label import taggers, vocal_detector

    detector = vocal_detector.VocalDetector()
    dims = {"tags": 50, "embedding": 200}
    dim = sum(dims[b.split(".")[1]] for b in detector.blocks)
    assert detector.blocks and set(detector.blocks) <= set(vocal_detector.block_names())
    assert detector.coef.shape == detector.mean.shape == detector.scale.shape == (dim,)
    assert np.all(detector.scale > 0) and np.all(np.isfinite(detector.coef))
    assert detector.threshold == pytest.approx(vocals.VOCAL_THRESHOLD)  # the builder's default is the fitted one
    assert taggers.VOCAL_DETECTOR == vocals.DETECTOR
    assert vocal_detector.WEIGHTS.stat().st_size < 20_000
    rng = np.random.default_rng(0)
    outputs = {m: {"tags": rng.uniform(0, 1, (3, 50)), "embedding": rng.normal(0, 1, (3, 200))}
               for m in vocal_detector.MODELS}
    p = detector(outputs)
    assert 0.0 <= p <= 1.0
    assert detector.features(outputs).shape == (dim,)
    with pytest.raises(ValueError, match="patches"):
        vocal_detector.pooled({m: {"tags": np.zeros((0, 50)), "embedding": np.zeros((0, 200))}
                               for m in vocal_detector.MODELS})


def test_detector_file_round_trip(tmp_path):
    from dataset_builder.label import vocal_detector

    blocks = ["MTT_musicnn.tags.mean"]
    coef = np.zeros(50)
    coef[0] = 2.0
    path = vocal_detector.save(tmp_path / "d.npz", blocks, np.zeros(50), np.ones(50), coef, -1.0, 0.4, C=0.1)
    detector = vocal_detector.VocalDetector(path)
    x = np.zeros(50)
    x[0] = 0.5
    assert detector.threshold == pytest.approx(0.4)
    assert detector.probability(x) == pytest.approx(0.5)  # 2 * 0.5 - 1 = 0: the logistic's midpoint
    np.savez(tmp_path / "bad.npz", blocks=np.array(["MTT_musicnn.tags.median"]), mean=np.zeros(50),
             scale=np.ones(50), coef=coef, intercept=0.0, threshold=0.5)
    with pytest.raises(ValueError, match="not a vocal detector"):
        vocal_detector.VocalDetector(tmp_path / "bad.npz")


def test_musicnn_labels_without_the_detector_are_made_again():
    from dataset_builder.label import LabelConfig
    from dataset_builder.labeling import _is_current

    config = LabelConfig(tagger="musicnn")
    data = _labels(scores={"MTT_musicnn": {"vocal": 0.1}}).to_dict()
    assert not _is_current(data, config)  # labels of the version before the detector
    data["scores"]["vocal_detector"] = {"vocal": 0.2}
    assert _is_current(data, config)


@pytest.mark.slow
def test_a_clear_voice_over_a_song_scores_above_the_threshold_and_the_song_alone_below():
    """The builder's detector and threshold on real tagger outputs: espeak-ng singing at -6 dB over a rendered song
    is vocal, the song alone is not (bench/RESULTS.md, vocals, has the rates over many songs)."""
    from dataset_builder.label import LabelConfig, Labeler
    from tests.fixtures import gmsongs, voices

    spec = gmsongs.GrooveSpec("E", "major", 84.0, "nodrums", seed=11)
    song = gmsongs.render_groove(spec, 8.0)
    sung = voices.mix(song, voices.voice("sung", "E", "major", 84.0, 8.0, seed=2), -6.0)
    labeler = Labeler(LabelConfig(tagger="musicnn"))
    score = {name: vocals.vocal_score(labeler(audio, voices.SAMPLE_RATE).scores) for name, audio in (
        ("song", song), ("sung", sung))}
    assert score["song"] < vocals.VOCAL_THRESHOLD <= score["sung"], score


def test_confidence_filters_tags_key_and_tempo():
    labels = _labels()
    kept = confident(labels, min_tag_confidence=0.35)
    assert kept.genres == [("techno", 0.6)] and kept.moods == [("happy", 0.4)]
    assert kept.instruments == [("vocals", 0.5)] and kept.key == "F#" and kept.bpm == 128.0
    assert labels.moods[0] == ("weird", 0.12)  # the stored labels are not changed
    unsure = confident(_labels(key_strength=0.1, tempo_confidence=0.1), 0.35, min_key_strength=0.3,
                       min_tempo_confidence=0.5)
    assert unsure.key == "" and unsure.bpm == 0.0
    acc = confident(labels, 0.25, instrumental=True)
    assert ("vocals", 0.5) not in acc.instruments and "instrumental" in acc.keywords
    assert "female vocals" not in acc.keywords
    assert confident(labels, 0.25).keywords == ["female vocals"]  # no raw scores stored: kept
    scored = _labels(keywords=["female vocals", "80s"],
                     scores={"MSD_musicnn": {"female vocalists": 0.1, "female vocalist": 0.05, "80s": 0.5}})
    assert confident(scored, 0.25).keywords == ["80s"] and confident(scored, 0.6).keywords == []
    assert confident(scored, 0.1).keywords == ["female vocals", "80s"]


def test_playlist_tag_replaces_a_label_in_the_description_and_unsure_parts_are_left_out():
    item = Item("s1", "x.wav", "T", "A", 30.0, "http://x", "", {"genre": "J-Pop"}, "p", 1)
    chunk = Chunk("s1-00000000", "s1", "x.wav", 0.0, 30.0, -10.0)
    labels = _labels(key_strength=0.05, tempo_confidence=0.05)
    config = BuildConfig(min_tag_confidence=0.35)
    for seed in range(20):
        info = music_info(chunk, item, labels, "train", seed, config)
        assert "techno" not in info["description"] and "weird" not in info["description"]
        assert info["genre"] == "j-pop"
        assert info["labels"]["genres"][0] == ["techno", 0.6]  # every label stays, with its probability
        assert info["vocal_score"] is None  # no raw scores in these labels
    descriptions = [music_info(chunk, item, labels, "train", s, config)["description"] for s in range(20)]
    assert sum("j-pop" in d for d in descriptions) >= 15
    assert not any("128" in d for d in descriptions)  # an irregular beat: the tempo is left out, not stated
    sure = [music_info(chunk, item, _labels(), "train", s, config)["description"] for s in range(20)]
    assert any("128" in d for d in sure) and any("F# major" in d for d in sure)


def test_bad_vocal_options_are_named_by_their_flags():
    with pytest.raises(ValueError, match="^--vocals mute: use one of"):
        BuildConfig(vocals="mute")
    with pytest.raises(ValueError, match="^--vocal-threshold 0.0: "):
        BuildConfig(vocal_threshold=0.0)
    with pytest.raises(ValueError, match=r"^--min-tag-confidence 0.05: use a probability in \[0.1, 1\]"):
        BuildConfig(min_tag_confidence=0.05)
    with pytest.raises(ValueError, match="^--vocals drop: drop needs"):
        BuildConfig(vocals="drop", tagger="none")


def test_separate_without_demucs_fails_before_any_work(monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "demucs" else find_spec(name, *a))
    with pytest.raises(ValueError, match=r"--vocals separate: .*pip install 'genrecraft\[separate\]'"):
        BuildConfig(vocals="separate")
    monkeypatch.undo()
    assert BuildConfig(vocals="separate").vocals == "separate"  # demucs is a test dependency


@pytest.mark.slow
def test_separator_keeps_rate_and_length(one_torch_thread):
    separator = vocals.Separator(tiny_htdemucs())
    audio = (0.1 * np.random.default_rng(0).standard_normal(32000 * 3)).astype(np.float32)
    stems, rate = separator.stems(audio, 32000)
    assert rate == 44100 and stems.shape == (4, 2, 3 * 44100)
    acc = separator.accompaniment(audio, 32000)
    assert acc.shape == audio.shape and acc.dtype == np.float32 and np.all(np.isfinite(acc))
    assert np.allclose(acc, 0.0, atol=1e-6) is False  # three stems summed, not the vocals alone
    expected = stems[[0, 1, 2]].sum(axis=0).mean(axis=0)
    import soxr

    assert np.allclose(acc, soxr.resample(expected, 44100, 32000)[:len(acc)], atol=1e-4)


def test_htdemucs_weights_offline_error(monkeypatch, tmp_path):
    from genrecraft.core.errors import ModelFilesError

    monkeypatch.setenv("GENRECRAFT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("GENRECRAFT_OFFLINE", "1")
    with pytest.raises(ModelFilesError, match="htdemucs.*offline"):
        vocals.load_htdemucs()


# --- end to end on a tiny playlist --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_playlist(tmp_path_factory):
    """Two 8 s songs (two 4 s chunks each): one with espeak-ng singing over it, one without."""
    from tests.fixtures import gmsongs, voices

    root = tmp_path_factory.mktemp("vocals")
    spec = gmsongs.GrooveSpec("D", "minor", 120.0, "rock", seed=3)
    song = gmsongs.render_groove(spec, 8.0)
    sf.write(root / "plain.wav", song, gmsongs.SAMPLE_RATE)
    sung = voices.mix(song, voices.voice("sung", "D", "minor", 120.0, 8.0, seed=1), 0.0)
    sf.write(root / "sung.wav", sung, gmsongs.SAMPLE_RATE)
    playlist = root / "playlist.txt"
    playlist.write_text("plain.wav  title=Plain\nsung.wav  title=Sung genre=j-pop\n")
    sf.write(root / "short.wav", sung[:4 * gmsongs.SAMPLE_RATE], gmsongs.SAMPLE_RATE)
    (root / "short.txt").write_text("short.wav  title=Sung\n")
    return root, playlist


def _sidecars(out: Path):
    return {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("chunks/*/*-????????.json"))}


@pytest.mark.slow
def test_flag_and_drop_end_to_end(tiny_playlist, work_dir):
    root, playlist = tiny_playlist
    out = root / "out_flag"
    flag = BuildConfig(name="vocals_flag", chunk_seconds=4.0, tagger="musicnn", split=(1.0, 0.0, 0.0))
    result = build(playlist, out, flag, progress=False)
    sides = _sidecars(out)
    assert len(sides) == 4 and all(0.0 <= s["vocal_score"] <= 1.0 for s in sides.values())
    assert all(0.0 <= s["vocal_tag_score"] <= 1.0 for s in sides.values())  # the old score, a second opinion
    assert all(s["labels"]["scores"]["MTT_musicnn"] for s in sides.values())
    assert all(s["genre"] == "j-pop" for k, s in sides.items() if s["title"] == "Sung")
    card = result.card.read_text()
    assert "## Vocals" in card and "## Labels and their confidence" in card and "genre=j-pop" in card
    stated = json.loads((out / "stats.json").read_text())["tags_in_descriptions"]  # what the tag plot shows
    assert stated["genres"] == dict(collections.Counter(s["genre"] for s in sides.values() if s["genre"]))
    assert stated["genres"]["j-pop"] == 2  # the playlist's genre, not the labeller's, for the sung song
    stamps = {p: p.stat().st_mtime_ns for p in (out / "labels").glob("*.json")}

    # drop, at a threshold between the two songs' scores: the sung song's chunks leave, listed in the card
    by_song = {t: [s["vocal_score"] for s in sides.values() if s["title"] == t] for t in ("Plain", "Sung")}
    assert min(by_song["Sung"]) > max(by_song["Plain"]), by_song  # the voice is heard
    threshold = (min(by_song["Sung"]) + max(by_song["Plain"])) / 2
    drop = BuildConfig(name="vocals_flag", chunk_seconds=4.0, tagger="musicnn", split=(1.0, 0.0, 0.0),
                       vocals="drop", vocal_threshold=threshold, min_tag_confidence=0.9)
    result = build(playlist, out, drop, progress=False)
    lines = [json.loads(x) for x in (out / "egs" / "train" / "data.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all("plain" in Path(x["path"]).name or True for x in lines)
    kept = {Path(x["path"]).stem for x in lines}
    assert kept == {k for k, s in sides.items() if s["title"] == "Plain"}
    card = result.card.read_text()
    stats = json.loads((out / "stats.json").read_text())
    assert "Dropped as vocal (2)" in card and stats["vocals"]["dropped_chunks"] == 2
    assert card.split("Dropped as vocal")[1].count("| Sung | ") == 2  # each dropped chunk named with its song
    assert stats["tags_in_descriptions"]["genres"] == dict(collections.Counter(  # no tag under 0.9, none dropped
        s["genre"] for k, s in _sidecars(out).items() if k in kept and s["genre"]))
    # the rerun re-described from the stored labels: no tagger run, and no tag reaches 0.9 here
    assert {p: p.stat().st_mtime_ns for p in (out / "labels").glob("*.json")} == stamps
    again = _sidecars(out)
    for k in kept:
        assert again[k]["description"] != sides[k]["description"] or not sides[k]["labels"]["genres"]
        assert again[k]["genre"] is None or again[k]["labels"]["genres"][0][1] >= 0.9
    # the dropped chunks' sidecars, written by the flag run with a split, now say they are in none, and why
    dropped = {k: s for k, s in again.items() if k not in kept}
    assert len(dropped) == 2 and all(s["split"] is None and s["dropped"].startswith("vocal") for s in dropped.values())
    assert all(s["split"] == "train" and "dropped" not in s for k, s in again.items() if k in kept)


@pytest.mark.slow
def test_separate_end_to_end_with_a_random_weight_htdemucs(tiny_playlist, work_dir, monkeypatch, one_torch_thread):
    root, playlist = tiny_playlist
    loads = []
    monkeypatch.setattr(vocals, "load_htdemucs", lambda: loads.append(1) or tiny_htdemucs())
    out = root / "out_sep"
    config = BuildConfig(name="vocals_sep", chunk_seconds=2.0, tagger="none", split=(1.0, 0.0, 0.0),
                         vocals="separate")
    playlist = root / "short.txt"  # 4 s: two chunks of 2 s
    result = build(playlist, out, config, progress=False)
    lines = [json.loads(x) for x in (out / "egs" / "train" / "data.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and loads == [1]
    for line in lines:
        path = Path(line["path"])
        assert path.parent.parent.name == "separated" and path.stem.endswith("-acc")
        mix = out / "chunks" / path.parent.name / (path.stem[:-len("-acc")] + ".wav")
        acc, sr = sf.read(path)
        ref, ref_sr = sf.read(mix)
        assert sr == ref_sr == 32000 and len(acc) == len(ref) == 2 * 32000  # same start, same length
        side = json.loads(path.with_suffix(".json").read_text())
        assert side["description"].endswith("instrumental") and "instrumental" in side["keywords"]
        assert side["start"] in (0.0, 2.0)
    assert "htdemucs" in result.card.read_text()
    # resume: a rerun separates nothing again (the model is not even loaded)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "separated").rglob("*.wav")}
    build(playlist, out, config, progress=False)
    assert loads == [1] and {p: p.stat().st_mtime_ns for p in (out / "separated").rglob("*.wav")} == stamps
    # a run killed after the first chunk: only the missing one is separated
    first, second = sorted(stamps)
    second.unlink()
    build(playlist, out, config, progress=False)
    assert loads == [1, 1] and first.stat().st_mtime_ns == stamps[first] and second.exists()
    # another sample rate cuts the song again (same chunk ids): separated again, at the new rate, not reused
    build(playlist, out, dataclasses.replace(config, sample_rate=44100), progress=False)
    assert loads == [1, 1, 1]
    for path in (first, second):
        assert sf.info(str(path)).samplerate == 44100 and sf.info(str(path)).frames == 2 * 44100


@pytest.mark.slow
def test_keep_end_to_end(tiny_playlist, work_dir):
    root, playlist = tiny_playlist
    out = root / "out_keep"
    build(playlist, out, BuildConfig(name="vocals_keep", chunk_seconds=4.0, tagger="none", split=(1.0, 0.0, 0.0),
                                     vocals="keep"), progress=False)
    sides = _sidecars(out)
    assert len(sides) == 4 and all("vocal_score" not in s for s in sides.values())
    assert "## Vocals" not in (out / "dataset_card.md").read_text()
