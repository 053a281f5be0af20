"""Labels: key/tempo accuracy on audio of known key and tempo, the musicnn conversion and tagger, the EffNet path
with tiny hand-made graphs, descriptions."""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dataset_builder.label import LabelConfig, Labeler, Labels, describe
from dataset_builder.label import effnet, musicnn, musicnn_onnx, tfproto
from genrecraft.synth import SAMPLE_RATE, SongSpec, render_song

GROUND_TRUTH = [("C", "major", 120, "synthpop"), ("A", "minor", 90, "lofi"), ("F#", "major", 128, "synthpop"),
                ("Eb", "minor", 100, "lofi"), ("D", "major", 140, "synthpop"), ("B", "minor", 110, "lofi")]


@pytest.mark.slow
def test_key_and_bpm_on_known_songs():
    labeler = Labeler(LabelConfig(tagger="none"))
    for i, (key, mode, bpm, style) in enumerate(GROUND_TRUTH):
        labels = labeler(render_song(SongSpec(key, mode, bpm, style, seed=i), 30.0), SAMPLE_RATE)
        assert (labels.key, labels.scale) == (key, mode), (key, mode, labels)
        assert abs(labels.bpm - bpm) / bpm < 0.04, (bpm, labels.bpm)
        assert -30 < labels.loudness_lufs < -5
        assert labels.genres == [] and labels.tagger == "none"


@pytest.mark.slow
def test_backbeat_octave_check_fixes_the_trackers_octave_errors():
    """RhythmExtractor2013 reads these at double (70 bpm synth-pop: its 8th-note hats) and half tempo (156 bpm
    lo-fi: snare on every tracked beat); the backbeat check brings both back, and keeps a song it read right."""
    cases = [(SongSpec("C", "major", 70.0, "synthpop", seed=100), 2.0),
             (SongSpec("B", "minor", 156.0, "lofi", seed=123), 0.5),
             (SongSpec("A", "minor", 110.0, "lofi", seed=6), 1.0)]
    with_check, without = Labeler(LabelConfig(tagger="none")), Labeler(LabelConfig(tagger="none", tempo_octave="off"))
    for spec, tracker_ratio in cases:
        audio = render_song(spec, 30.0)
        raw = without(audio, SAMPLE_RATE)
        assert raw.bpm / spec.bpm == pytest.approx(tracker_ratio, rel=0.04), (spec, raw.bpm)
        labels = with_check(audio, SAMPLE_RATE)
        assert abs(labels.bpm - spec.bpm) / spec.bpm < 0.04, (spec, labels.bpm)
        assert labels.tempo_method == "degara+backbeat" and raw.tempo_method == "degara"


def _snare_track(bpm: float, beats_per_snare: int, seconds: float = 24.0, rate: int = 44100) -> np.ndarray:
    """Noise bursts (a snare-like 1-4 kHz transient) every ``beats_per_snare`` beats over a quiet 220 Hz tone."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    audio = 0.05 * np.sin(2 * np.pi * 220 * t)
    burst = rng.standard_normal(int(0.1 * rate)) * np.exp(-np.arange(int(0.1 * rate)) / rate * 30)
    for start in np.arange(0.5, seconds - 0.2, 60.0 / bpm * beats_per_snare):
        i = int(start * rate)
        audio[i: i + len(burst)] += 0.5 * burst[: len(audio) - i]
    return audio.astype(np.float32)


@pytest.mark.slow
def test_backbeat_octave_decisions_on_known_grids():
    from dataset_builder.label.dsp import backbeat_octave

    snare = _snare_track(90.0, 2)  # a backbeat at 90 bpm: the snare every 2 beats
    def grid(bpm):
        return np.arange(0.5, 23.5, 60.0 / bpm)
    assert backbeat_octave(snare, 90.0, grid(90.0)).factor == 1.0  # right: kept
    halved = backbeat_octave(snare, 180.0, grid(180.0))  # 8th notes counted as beats
    assert halved.factor == 0.5 and halved.accent_8 / halved.accent_4 > 1.45, halved
    doubled = backbeat_octave(snare, 45.0, grid(45.0))  # half notes counted as beats: the snare on every one
    assert doubled.factor == 2.0 and doubled.offbeat < 0.35, doubled
    every_beat = backbeat_octave(_snare_track(120.0, 1), 120.0, grid(120.0))  # a snare on every beat, as in Motown
    assert every_beat.factor == 1.0 and "outside" in every_beat.reason, every_beat  # 240 bpm is not taken
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(24 * 44100) / 44100).astype(np.float32)
    assert backbeat_octave(tone, 180.0, grid(180.0)).factor == 1.0  # nothing percussive: the tracker's tempo stays
    assert backbeat_octave(snare, 90.0, grid(90.0)[:5]).reason == "too few beats"


def test_beat_regularity_ignores_the_trackers_first_and_last_beat():
    from dataset_builder.label.dsp import beat_regularity

    steady = np.arange(0.3, 15.0, 0.75)  # 80 bpm over a 15 s chunk: 19 intervals
    assert beat_regularity(steady) == 1.0
    settling = steady.copy()
    settling[0] -= 0.2  # the tracker's first beat and last beat off the pulse
    settling[-1] += 0.1
    assert beat_regularity(settling) == 1.0
    assert beat_regularity(settling, edge=0) == pytest.approx(17 / 19)  # what it was: below the 0.95 kept
    wandering = steady.copy()
    wandering[8:11] += [0.1, 0.25, 0.1]  # inside the chunk: counted
    assert beat_regularity(wandering) < 0.8
    short = steady[:6].copy()  # 5 intervals: too few to leave any out
    short[0] -= 0.2
    assert beat_regularity(short) == pytest.approx(4 / 5)
    assert beat_regularity(steady[:4]) == 0.0  # 3 intervals: no tempo can be trusted


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="needs fluidsynth (make sysdeps installs it)")
def test_octave_check_on_sampled_drums():
    """Drum and bass at 174 bpm on General MIDI drums: the tracker reads 87, the check gives 174; a Motown-style
    snare on every beat at 120 bpm stays at 120."""
    from tests.fixtures.gmsongs import GrooveSpec, SAMPLE_RATE as GM_RATE, render_groove

    labeler = Labeler(LabelConfig(tagger="none"))
    for spec in (GrooveSpec("E", "minor", 174.0, "dnb", seed=3), GrooveSpec("G", "major", 120.0, "motown", seed=4)):
        labels = labeler(render_groove(spec, 30.0), GM_RATE)
        assert abs(labels.bpm - spec.bpm) / spec.bpm < 0.04, (spec, labels.bpm)
        assert (labels.key, labels.scale) == (spec.key, spec.mode), (spec, labels)


def test_labels_json_round_trip():
    labels = Labels("F#", "major", 0.8, 128.0, float("-inf"), [("electronic", 0.5)], [("happy", 0.2)],
                    [("synthesizer", 0.3)], ["80s"], "musicnn")
    data = json.loads(json.dumps(labels.to_dict()))
    back = Labels.from_dict(data)
    assert back.genres == [("electronic", 0.5)] and back.loudness_lufs == float("-inf") and back.keywords == ["80s"]


def test_describe_varies_and_is_deterministic():
    labels = Labels("F#", "major", 0.8, 128.0, -14.0, [("synth-pop", 0.5), ("electronic", 0.3)],
                    [("energetic", 0.4), ("happy", 0.2)], [("synthesizer", 0.5), ("drums", 0.4), ("bass", 0.2)])
    texts = [describe(labels, seed=s) for s in range(40)]
    assert texts == [describe(labels, seed=s) for s in range(40)]
    assert len(set(texts)) >= 20  # not one template
    assert all("synth-pop" in t for t in texts)
    assert sum("128" in t for t in texts) >= 25 and sum("F# major" in t for t in texts) >= 20
    assert all("  " not in t and not t.endswith(",") for t in texts)


def test_a_description_without_a_sure_genre_reads_as_english():
    labels = Labels("A", "minor", 0.8, 96.0, -14.0, [], [("calm", 0.4)], [("piano", 0.5)])
    texts = [describe(labels, seed=s) for s in range(60)]
    assert not any(f"music {noun}" in t for t in texts for noun in ("song", "track", "piece"))
    assert any(t.startswith("a mid-tempo song") for t in texts)  # the tempo template: "a mid-tempo song with ..."
    assert any(t.startswith("a calm piece") or t.startswith("a piece") for t in texts)
    assert all("  " not in t and not t.endswith(",") and not t.startswith("a a") for t in texts)
    # with a genre, the templates are the ones they were
    with_genre = dataclasses.replace(labels, genres=[("jazz", 0.6)])
    assert any(t.startswith("mid-tempo jazz song") for t in (describe(with_genre, seed=s) for s in range(60)))


@pytest.fixture(scope="module")
def musicnn_graphs():
    return {name: musicnn.model_file(name, "tensorflow") for name in musicnn.MODELS}


def test_musicnn_conversion_matches_the_original_model(musicnn_graphs):
    for name, graph in musicnn_graphs.items():
        stamp = json.loads(graph.with_name(f"{name}.verified.json").read_text())
        assert stamp["max_abs_diff_vs_original"] < 1e-4
        assert musicnn.verify(name, graph) < 1e-4
        # Cached: a second call reuses the file.
        mtime = graph.stat().st_mtime_ns
        assert musicnn.model_file(name, "tensorflow") == graph and graph.stat().st_mtime_ns == mtime


def test_a_wrong_conversion_is_caught(musicnn_graphs, tmp_path):
    graph = tfproto.GraphDef.FromString(musicnn_graphs["MSD_musicnn"].read_bytes())
    for node in graph.node:
        if node.op == "Const" and node.name.endswith("dense_1/bias"):
            value = tfproto.tensor_value(node.attr["value"].tensor) + 0.5
            node.attr["value"].tensor.CopyFrom(tfproto.tensor_proto(value.astype(np.float32)))
            break
    else:
        pytest.fail("no output bias found")
    broken = tmp_path / "broken.pb"
    broken.write_bytes(graph.SerializeToString())
    with pytest.raises(musicnn.ModelFilesError, match="differs from the original"):
        musicnn.verify("MSD_musicnn", broken)


def test_checkpoint_reader_reads_every_variable():
    import zipfile

    wheel = musicnn._wheel_path(musicnn.paths.cache_dir() / "models" / "musicnn")
    with zipfile.ZipFile(wheel) as archive, archive.open("musicnn/MSD_musicnn/.meta") as meta_file:
        meta = tfproto.MetaGraphDef.FromString(meta_file.read())
    variables = [n.name for n in meta.graph_def.node if n.op == "VariableV2"]
    assert len(variables) == 150
    # Parsing and re-serialising loses nothing: undeclared fields are kept (written after the declared ones).
    with zipfile.ZipFile(wheel) as archive:
        raw = archive.read("musicnn/MSD_musicnn/.meta")
    again = tfproto.MetaGraphDef.FromString(raw).SerializeToString()
    assert len(again) == len(raw) and tfproto.MetaGraphDef.FromString(again) == meta


@pytest.mark.slow
def test_shared_mel_patches_give_essentias_musicnn_outputs(musicnn_graphs):
    """The tagger computes the mel patches once for MSD and MTT and runs each network on them; the tags and
    embeddings are those of essentia's own TensorflowPredictMusiCNN on the same audio, patches included."""
    import soxr

    from dataset_builder.label.dsp import essentia_standard

    es = essentia_standard()
    song = soxr.resample(render_song(SongSpec("A", "minor", 96, "lofi", seed=4), 7.4), SAMPLE_RATE, 16000)
    for hop in (musicnn.PATCH_FRAMES, 93):
        model = musicnn.MusicnnModel("MTT_musicnn", patch_hop=hop, runtime="tensorflow")
        for audio in (song, song[:20000]):  # several patches and a partial last one; shorter than one patch
            padded = model._check(audio)
            for output, key in ((musicnn.TAGS_OUTPUT, "tags"), (musicnn.EMBEDDING_OUTPUT, "embedding")):
                expected = es.TensorflowPredictMusiCNN(graphFilename=str(model.graph), output=output,
                                                       patchHopSize=hop)(padded)
                got = model.predict(model.patches(audio))[key]
                assert got.shape == np.asarray(expected).shape and got.shape[0] >= 1
                np.testing.assert_allclose(got, expected, atol=1e-5)


def test_onnx_conversion_matches_the_original_model(tmp_path):
    """The ONNX build of each network reproduces the original TensorFlow model's stored outputs, is cached, and a
    wrong weight is caught by the same check."""
    import onnx

    for name in musicnn.MODELS:
        path = musicnn.model_file(name, "onnxruntime")
        stamp = json.loads(path.with_name(f"{name}.onnx.verified.json").read_text())
        assert path.suffix == ".onnx" and stamp["runtime"] == "onnxruntime"
        assert stamp["max_abs_diff_vs_original"] < 1e-4 and musicnn.verify(name, path) < 1e-4
        mtime = path.stat().st_mtime_ns
        assert musicnn.model_file(name, "onnxruntime") == path and path.stat().st_mtime_ns == mtime
    model = onnx.load(str(path))
    bias = next(t for t in model.graph.initializer if t.name == "dense_1/b")
    bias.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(bias) + 0.5, "dense_1/b"))
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(model.SerializeToString())
    with pytest.raises(musicnn.ModelFilesError, match="differs from the original"):
        musicnn.verify("MTT_musicnn", broken)
    with pytest.raises(ValueError, match="use one of onnxruntime, tensorflow"):
        musicnn.model_file("MSD_musicnn", "torch")
    with pytest.raises(musicnn.ModelFilesError, match="needs the onnxruntime_missing package: pip install"):
        musicnn_onnx._require("onnxruntime_missing")  # what a machine without onnxruntime is told


@pytest.mark.slow
def test_onnxruntime_tags_are_tensorflows():
    """The default runtime (onnxruntime) gives the tags and embeddings of essentia's TensorFlow on the same
    patches of two rendered songs, to float32 rounding."""
    import soxr

    for name in musicnn.MODELS:
        fast, reference = (musicnn.MusicnnModel(name, runtime=r) for r in ("onnxruntime", "tensorflow"))
        for spec in (SongSpec("A", "minor", 96, "lofi", seed=4), SongSpec("C", "major", 124, "synthpop", seed=2)):
            patches = fast.patches(soxr.resample(render_song(spec, 6.2), SAMPLE_RATE, 16000))
            got, expected = fast.predict(patches), reference.predict(patches)
            assert got["tags"].shape == (2, 50) and got["embedding"].shape == (2, 200)
            np.testing.assert_allclose(got["tags"], expected["tags"], atol=1e-5)
            np.testing.assert_allclose(got["embedding"], expected["embedding"], atol=1e-4)


@pytest.mark.slow  # importing librosa (numba) takes seconds
def test_percussive_part_is_librosas_hpss():
    import librosa

    from dataset_builder.label.dsp import percussive_part

    rng = np.random.default_rng(0)
    spec = np.abs(rng.normal(size=(40, 300))).astype(np.float32)
    spec[:, 100:140] = 0.0  # silence: zeros split the soft mask
    spec[5:9, :] = 3.0  # ties in the medians
    for s in (spec, spec.astype(np.float64), spec[:, :5]):
        np.testing.assert_array_equal(percussive_part(s, 17, 9), librosa.decompose.hpss(s, kernel_size=(17, 9))[1])


@pytest.mark.slow
def test_musicnn_tagger_on_music(musicnn_graphs):
    model = musicnn.MusicnnModel("MSD_musicnn")
    import soxr

    audio = soxr.resample(render_song(SongSpec("C", "major", 124, "synthpop", seed=2), 12.0), SAMPLE_RATE, 16000)
    tags = model.tags(audio)
    assert set(tags) == set(musicnn.MSD_LABELS) and all(0.0 <= p <= 1.0 for p in tags.values())
    assert max(tags, key=tags.get) in ("electronic", "electronica", "indie", "dance", "pop", "electro")
    embedding = model.embed(audio)
    assert embedding.shape == (4, 200) and np.isfinite(embedding).all()
    labeler = Labeler(LabelConfig(tagger="musicnn"))
    labels = labeler(render_song(SongSpec("A", "minor", 84, "lofi", seed=3), 12.0), SAMPLE_RATE)
    assert labels.genres and labels.tagger == "musicnn"
    assert all(" " not in mood for mood, _ in labels.moods)  # hyphenated for audiocraft


# ---- EffNet path with tiny hand-made graphs --------------------------------------------------------------------

def _node(graph, name, op, inputs=(), **attrs):
    node = graph.node.add(name=name, op=op)
    node.input.extend(inputs)
    for key, value in attrs.items():
        kind, v = value
        if kind == "type":
            node.attr[key].type = v
        elif kind == "b":
            node.attr[key].b = v
        elif kind == "i":
            node.attr[key].i = v
        elif kind == "shape":
            for d in v:
                node.attr[key].shape.dim.add(size=d)
    return node


def _const(graph, name, array):
    graph.node.append(tfproto.const_node(name, array))


def _embedding_graph(dim: int) -> bytes:
    """Placeholder[mel B,128,96] -> mean over time -> MatMul -> Split in two: PartitionedCall:0 and :1."""
    g = tfproto.GraphDef()
    g.versions.producer = 27
    f32 = ("type", tfproto.DT_FLOAT)
    _node(g, effnet.EMBEDDING_INPUT, "Placeholder", dtype=f32, shape=("shape", [-1, 128, 96]))
    _const(g, "axis", np.array([1], np.int32))
    _node(g, "mean", "Mean", [effnet.EMBEDDING_INPUT, "axis"], T=f32, Tidx=("type", tfproto.DT_INT32),
          keep_dims=("b", False))
    _const(g, "w", np.random.default_rng(0).normal(size=(96, 2 * dim)).astype(np.float32) / 10)
    _node(g, "proj", "MatMul", ["mean", "w"], T=f32, transpose_a=("b", False), transpose_b=("b", False))
    _const(g, "split_dim", np.array(1, np.int32))
    _node(g, "PartitionedCall", "Split", ["split_dim", "proj"], T=f32, num_split=("i", 2))
    return g.SerializeToString()


def _head_graph(input_name: str, output_node: str, dim: int, classes: int, seed: int) -> bytes:
    g = tfproto.GraphDef()
    g.versions.producer = 27
    f32 = ("type", tfproto.DT_FLOAT)
    _node(g, input_name, "Placeholder", dtype=f32, shape=("shape", [-1, dim]))
    _const(g, "w", np.random.default_rng(seed).normal(size=(dim, classes)).astype(np.float32))
    _node(g, "logits", "MatMul", [input_name, "w"], T=f32, transpose_a=("b", False), transpose_b=("b", False))
    _node(g, output_node, "Sigmoid", ["logits"], T=f32)
    return g.SerializeToString()


@pytest.fixture()
def tiny_effnet(tmp_path, monkeypatch):
    folder = tmp_path / "effnet"
    folder.mkdir()
    dim = 16
    (folder / effnet.EMBEDDING.name).write_bytes(_embedding_graph(dim))
    classes = {"genre": ["Electronic---Synth-pop", "Rock---Indie Rock", "Hip Hop---Boom Bap"],
               "mood": ["happy", "dark", "film", "energetic"], "instrument": ["synthesizer", "drums", "piano"]}
    for i, (head, (graph, meta, input_name, output)) in enumerate(effnet.HEADS.items()):
        (folder / graph.name).write_bytes(_head_graph(input_name, output.split(":")[0], dim, len(classes[head]), i))
        (folder / meta.name).write_text(json.dumps({"classes": classes[head]}))
    monkeypatch.setenv("GENRECRAFT_EFFNET_DIR", str(folder))
    return folder


def test_effnet_path_runs_hand_made_graphs(tiny_effnet):
    labeler = Labeler(LabelConfig(tagger="effnet", threshold=0.0, top=2))
    labels = labeler(render_song(SongSpec("D", "major", 120, "synthpop", seed=1), 10.0), SAMPLE_RATE)
    assert labels.tagger == "effnet" and labels.key == "D"
    assert len(labels.genres) == 2 and {g for g, _ in labels.genres} <= {"synth-pop", "indie rock", "boom bap"}
    assert len(labels.moods) == 2 and len(labels.instruments) == 2
    assert all(0.0 <= p <= 1.0 for _, p in labels.genres + labels.moods + labels.instruments)
    sums = json.loads((tiny_effnet / "checksums.json").read_text())
    assert set(sums) == {f.name for f in effnet.ALL_FILES}


def test_effnet_detects_a_changed_file(tiny_effnet):
    effnet.ensure_files(download=False)
    path = tiny_effnet / effnet.EMBEDDING.name
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(effnet.ModelFilesError, match="changed since it was first verified"):
        effnet.ensure_files(download=False)


def test_effnet_offline_error_says_where_to_put_files(tmp_path, monkeypatch):
    monkeypatch.setenv("GENRECRAFT_EFFNET_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(effnet, "BASE_URL", "http://127.0.0.1:9/models/")  # nothing listens: refused at once
    with pytest.raises(effnet.ModelFilesError) as info:
        effnet.ensure_files(download=True)
    message = str(info.value)
    assert "could not download" in message and str(tmp_path / "empty") in message
    assert "discogs-effnet-bs64-1.pb" in message and "--tagger musicnn" in message


def test_bad_label_config_is_named():
    with pytest.raises(ValueError, match="tagger='clap'"):
        LabelConfig(tagger="clap")
    with pytest.raises(ValueError, match="tempo_octave='guess'.*backbeat"):
        LabelConfig(tempo_octave="guess")


@pytest.mark.slow
def test_musicnn_labels_arrive_intact_in_audiocraft(musicnn_graphs, tmp_path, work_dir):
    import soundfile as sf

    from dataset_builder import BuildConfig, build
    from genrecraft.core import compat

    music = tmp_path / "music"
    music.mkdir()
    for i, (key, mode, bpm, style) in enumerate(GROUND_TRUTH[:3]):
        sf.write(music / f"s{i}.wav", render_song(SongSpec(key, mode, bpm, style, seed=i), 31.0), SAMPLE_RATE)
    playlist = tmp_path / "playlist.txt"
    playlist.write_text("music/\n")
    result = build(playlist, tmp_path / "out", BuildConfig(name="tagged", tagger="musicnn", workers=2,
                                                           split=(0.34, 0.33, 0.33)), progress=False)
    assert sum(result.counts.values()) == 3

    compat.apply()
    from audiocraft.data.music_dataset import MusicDataset

    seen_instrument = False
    for split in ("train", "valid", "test"):
        dataset = MusicDataset.from_meta(str(tmp_path / "out" / "egs" / split), segment_duration=None,
                                         sample_rate=32000, channels=1, return_info=True, shuffle=False,
                                         num_samples=None, sample_on_duration=False, sample_on_weight=False)
        for index in range(len(dataset)):
            _, info = dataset[index]
            sidecar = json.loads(Path(info.meta.path).with_suffix(".json").read_text())
            assert info.genre == sidecar["genre"] and sidecar["genre"]
            assert (info.moods or []) == sidecar["moods"]  # a list of single words: kept as is
            assert info.instrument == sidecar["instrument"]  # one string: kept (a list would be dropped)
            seen_instrument |= bool(info.instrument)
            assert sidecar["labels"]["tagger"] == "musicnn"
    assert seen_instrument


def test_a_new_tagger_is_one_class_and_one_registration():
    from dataset_builder.config import BuildConfig
    from dataset_builder.label import LabelConfig, Labeler, taggers

    @taggers.register
    class Constant(taggers.Tagger):
        name = "constant-test"

        def tags(self, audio16k, threshold, top):
            assert audio16k.dtype == np.float32 and len(audio16k) == 16000  # resampled to 16 kHz
            return {"genres": [("ambient", 0.9)], "moods": [("calm", 0.5)], "instruments": [], "keywords": []}

    try:
        assert "constant-test" in taggers.names() and BuildConfig(tagger="constant-test").tagger == "constant-test"
        t = np.arange(32000) / 32000
        labels = Labeler(LabelConfig(tagger="constant-test"))(0.3 * np.sin(2 * np.pi * 440 * t), 32000)
        assert labels.genres == [("ambient", 0.9)] and labels.moods == [("calm", 0.5)]
        assert labels.tagger == "constant-test"
    finally:
        del taggers.REGISTRY["constant-test"]
    with pytest.raises(ValueError, match="use one of musicnn, effnet, none"):
        LabelConfig(tagger="constant-test")
