"""The vocal flag (``--vocals flag|drop``): does the builder's vocal score tell songs with a voice from songs without?

    python bench/bench_vocals.py                 # dev 36 clips + held-out 60 clips (15 s each), training CV
    python bench/bench_vocals.py --fit           # refit the vocal detector on the training clips first
    python bench/bench_vocals.py --real          # also the share of chunks flagged on real instrumental music
    python bench/bench_vocals.py --features DIR  # keep the workers' features in DIR (a rerun reuses them)

Clips: songs rendered offline (tests.fixtures.gmsongs: sampled instruments and drum kits, 9 grooves; genrecraft.synth:
synth-pop and lo-fi), each once as it is (no voice) and once with a voice mixed over it (tests.fixtures.voices):
espeak-ng speech, espeak-ng "singing" (one syllable per melody note), or a melody on the General MIDI choir and voice
patches (Choir Aahs, Voice Oohs, Synth Voice), at -6, -12 or -18 dB relative to the song (RMS). Half the clips have a
voice. ``dev`` and ``held-out`` songs (other grooves' seeds, keys, tempi, voices, and the synth songs) were not used
to fit the detector.

The detector (:mod:`dataset_builder.label.vocal_detector`, the builder's ``vocal_score``) is fitted on ``train``
clips: 105 other songs (9 of each groove and 24 synthetic songs; other seeds, keys and tempi; ``TRAIN_BATCHES``
makes more), each plain, with a lead instrument that is not a voice (distorted guitar, violin, sax, organ, ...; hard
negatives) and with two voices (other espeak-ng voices; levels -3 to -21 dB); and two excerpts of each of 59 tracks
of real instrumental game music (``TRAIN_REAL``: four Debian packages, none in the real set), each plain and with a
voice. Regularisation and threshold are chosen by 5-fold cross-validation on the training clips only (folds by
song). Rows: accuracy, false vocal rate (share of clips without a voice flagged) and missed vocal rate (share of
clips with a voice not flagged), for the detector and for the voice-tag score it replaced (``vocals.tag_score``);
per voice kind and per level; each voice kind left out of the training set; with ``--real``, the share of 30 s
chunks flagged on bench_dataset_builder.py's real set (instrumental game music), and the accuracy on a 15 s excerpt
of each of its songs, plain and with a voice. Target: accuracy >= 0.9.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing as tp
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if tp.TYPE_CHECKING:
    import numpy as np

LEVELS = (-6.0, -12.0, -18.0)
PITCHES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def clip_specs(held_out: bool, quick: bool):
    """``(base, kind or None, level or None, seed)`` per clip; every base song once without and once with a voice."""
    from genrecraft.synth import SongSpec
    from tests.fixtures.gmsongs import GROOVES, GrooveSpec
    from tests.fixtures.voices import KINDS

    bases = []
    for g, groove in enumerate(GROOVES.values()):
        lo, hi = groove.tempo_range
        for k in range(2):
            i = 2 * g + k + (100 if held_out else 0)
            bases.append(GrooveSpec(PITCHES[(i * 7 + 2) % 12], ("major", "minor")[i % 2],
                                    float(round(lo + (hi - lo) * (0.25 + 0.5 * k))), groove.name, seed=5000 + i))
    if held_out:
        for i in range(12):
            bases.append(SongSpec(PITCHES[(i * 5) % 12], ("minor", "major")[i % 2], float(72 + (i * 23) % 88),
                                  ("synthpop", "lofi")[i % 2], seed=7000 + i))
    if quick:
        bases = bases[::3]
    specs = []
    for i, base in enumerate(bases):
        seed = (1 if held_out else 0) * 1000 + i
        specs.append((base, None, None, seed))
        specs.append((base, KINDS[(i + (2 if held_out else 0)) % len(KINDS)], LEVELS[i % len(LEVELS)], seed))
    return specs


def clips(quick: bool, seconds: float):
    """Render every clip: yields ``(set, base, kind or None, level or None, audio at voices.SAMPLE_RATE)``."""
    from tests.fixtures import voices

    for subset, held_out in (("dev", False), ("held-out", True)):
        songs = {}
        for base, kind, level, seed in clip_specs(held_out, quick):
            if id(base) not in songs:
                songs[id(base)] = render_base(base, seconds)
            audio = songs[id(base)]
            if kind is not None:
                audio = voices.mix(audio, voices.voice(kind, base.key, base.mode, base.bpm, seconds, seed), level)
            yield subset, base, kind, level, audio


# The detector's training set: songs, seeds, espeak-ng voices and levels none of the dev and held-out clips use.
TRAIN_ESPEAK_VOICES = ("en+m1", "en+f2", "en-gb+f4", "pt+m2", "nl+f1", "sv+m3", "pl+f5", "en-us+m6", "es+f3",
                       "it+m2", "en+m7", "en-gb-x-rp+f1")
# Lead instruments without a voice, mixed over songs as the voices are (0-based GM programs): overdriven and
# distorted guitar, violin, cello, string ensemble, trumpet, trombone, brass, alto and tenor sax, oboe, clarinet,
# flute, harmonica, drawbar and church organ, square and saw leads, fiddle, pan flute.
TRAIN_LEADS = (29, 30, 40, 42, 48, 56, 57, 61, 65, 66, 68, 71, 73, 22, 16, 19, 80, 81, 110, 75)


TRAIN_BATCHES = 1  # batches of 420 training clips (each batch: other songs, seeds and levels)


# Real instrumental music for the training set (Debian packages, none in bench_dataset_builder.py's real set): two
# 15 s excerpts of each track, each plain and with a voice over it, so that the detector sees produced music
# without a voice; fitted on rendered songs alone it took real music for a voice (bench/RESULTS.md).
# (package, folder, file patterns): an orchestral/electronic soundtrack, game tunes, tracker modules.
TRAIN_REAL = (("warzone2100-music", "/usr/share/games/warzone2100/music/albums", ("*.opus",)),
              ("xmoto-data", "/usr/share/games/xmoto/Textures/Musics", ("*.ogg",)),
              ("lincity-ng-data", "/usr/share/games/lincity-ng/music", ("*.ogg",)),
              ("pingus-data", "/usr/share/games/pingus/data/music", ("*.it", "*.s3m")))


@dataclasses.dataclass(frozen=True)
class RealExcerpt:
    """A training base from real music: ``seconds`` of ``path`` from ``start``; the voice over it is in ``key``."""

    path: str
    start: float
    key: str
    mode: str
    bpm: float
    seed: int
    groove: str = "real"


def real_training_bases(quick: bool = False):
    """The excerpts of :data:`TRAIN_REAL` (installing the package when missing, as root)."""
    import numpy as np

    missing = [package for package, folder, _ in TRAIN_REAL if not Path(folder).exists()]
    if missing:
        import subprocess

        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *missing], check=True,
                       capture_output=True)
    rng = np.random.default_rng(20261201)
    tracks = [t for _, folder, patterns in TRAIN_REAL
              for t in sorted(f for pattern in patterns for f in Path(folder).rglob(pattern))]
    tracks = tracks[: 6 if quick else None]
    bases = []
    for t, track in enumerate(tracks):
        for part in (0.3, 0.6):
            bases.append(RealExcerpt(str(track), part, PITCHES[int(rng.integers(12))],
                                     ("major", "minor")[int(rng.integers(2))], float(round(rng.uniform(70, 160))),
                                     seed=25000 + t))
    return bases


def training_specs(quick: bool = False, batches: tp.Sequence[int] = tuple(range(TRAIN_BATCHES))):
    """``(base, variant, level, seed)`` per training clip: each base song plain, with a lead instrument over it
    (``variant`` ``lead:<program>``), and with two voices (``variant`` a voice kind), at levels from -3 to -21 dB.
    Each batch: 9 songs of each General MIDI groove and 24 synthetic songs (4 clips each, 420 clips)."""
    import numpy as np

    from genrecraft.synth import SongSpec
    from tests.fixtures.gmsongs import GROOVES, GrooveSpec
    from tests.fixtures.voices import KINDS

    specs = []
    for batch in batches:
        rng = np.random.default_rng(20261130 + batch)
        bases = []
        for g, groove in enumerate(GROOVES.values()):
            lo, hi = groove.tempo_range
            for k in range(3 if quick else 9):
                bases.append(GrooveSpec(PITCHES[int(rng.integers(12))], ("major", "minor")[int(rng.integers(2))],
                                        float(round(rng.uniform(lo, hi))), groove.name,
                                        seed=20000 + 2000 * batch + 9 * g + k))
        for i in range(4 if quick else 24):
            bases.append(SongSpec(PITCHES[int(rng.integers(12))], ("minor", "major")[int(rng.integers(2))],
                                  float(round(rng.uniform(66, 170))), ("synthpop", "lofi")[i % 2],
                                  seed=21000 + 2000 * batch + i))
        for i, base in enumerate(bases):
            seed = 30000 + 10000 * batch + 10 * i
            specs.append((base, None, None, seed))
            specs.append((base, f"lead:{TRAIN_LEADS[(i + 7 * batch) % len(TRAIN_LEADS)]}",
                          float(rng.uniform(-18, -3)), seed + 1))
            for j in range(2):
                specs.append((base, KINDS[(2 * i + j + batch) % len(KINDS)], float(rng.uniform(-21, -3)),
                              seed + 2 + j))
    rng = np.random.default_rng(20261202)
    for i, base in enumerate(real_training_bases(quick)):
        seed = 60000 + 10 * i
        specs.append((base, None, None, seed))
        specs.append((base, KINDS[i % len(KINDS)], float(rng.uniform(-21, -3)), seed + 1))
    return specs


def _duration(path: str) -> float:
    import subprocess

    result = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path],
                            capture_output=True, text=True, check=True)
    return float(result.stdout.strip())


def render_base(base, seconds: float):
    import numpy as np
    import soxr

    from genrecraft import synth
    from tests.fixtures import gmsongs, voices

    if isinstance(base, RealExcerpt):
        from genrecraft.core.audio import load_audio

        offset = base.start * max(0.0, _duration(base.path) - seconds)
        if base.path.endswith((".it", ".s3m")):  # tracker modules: PyAV cannot read them, the ffmpeg CLI can
            from dataset_builder.chunk import decode_blocks

            whole = np.concatenate(list(decode_blocks(base.path, voices.SAMPLE_RATE)))
            audio = whole[int(offset * voices.SAMPLE_RATE):int((offset + seconds) * voices.SAMPLE_RATE)]
        else:
            audio = load_audio(base.path, voices.SAMPLE_RATE, offset=offset, duration=seconds)
        audio = np.pad(audio, (0, max(0, int(seconds * voices.SAMPLE_RATE) - len(audio))))
        return (0.89 * audio / (float(np.max(np.abs(audio))) or 1.0)).astype(np.float32)
    if isinstance(base, gmsongs.GrooveSpec):
        return gmsongs.render_groove(base, seconds)
    return soxr.resample(synth.render_song(base, seconds), synth.SAMPLE_RATE, voices.SAMPLE_RATE).astype(np.float32)


def training_clips(quick: bool, seconds: float, shard: int = 0, shards: int = 1,
                   batches: tp.Sequence[int] = tuple(range(TRAIN_BATCHES))):
    """Render the training clips (every ``shards``-th base song from ``shard``): yields ``(base, variant, level,
    audio)``."""
    from tests.fixtures import voices

    specs = training_specs(quick, batches)
    order = list(dict.fromkeys(id(b) for b, *_ in specs))
    mine = set(order[shard::shards])
    songs = {}
    for base, variant, level, seed in specs:
        if id(base) not in mine:
            continue
        if id(base) not in songs:
            songs = {id(base): render_base(base, seconds)}
        audio = songs[id(base)]
        if variant is None:
            yield base, variant, level, audio
            continue
        if variant.startswith("lead:"):
            over = voices.gm_melody(int(variant[5:]), base.key, base.mode, base.bpm, seconds, seed)
        else:
            over = voices.voice(variant, base.key, base.mode, base.bpm, seconds, seed, TRAIN_ESPEAK_VOICES)
        yield base, variant, level, voices.mix(audio, over, level)


def real_chunks(shard: int = 0, shards: int = 1, seconds: float = 30.0):
    """The 30 s chunks (the builder's default; a last one under 24 s left out) of bench_dataset_builder.py's real
    set, instrumental game music from Debian packages, at 16 kHz: yields ``("real", song, None, None, audio)``."""
    import types

    import numpy as np

    from bench.bench_dataset_builder import real_files
    from dataset_builder.chunk import decode_blocks

    for i, (package, path) in enumerate(real_files()):
        if i % shards != shard:
            continue
        audio = np.concatenate(list(decode_blocks(path, 16000)))
        n = int(seconds * 16000)
        song = types.SimpleNamespace(groove=f"{package}:{Path(path).stem}", seed=i, key="", mode="", bpm=0.0)
        for start in range(0, len(audio) - int(0.8 * n) + 1, n):
            yield "real", song, None, None, audio[start:start + n]


def real_voice_clips(seconds: float, shard: int = 0, shards: int = 1):
    """A 15 s excerpt (from the middle) of each song of the real set, once plain and once with a voice over it
    (the dev/held-out voices and levels): yields ``("real + voice", base, kind or None, level or None, audio)``."""
    from bench.bench_dataset_builder import real_files
    from tests.fixtures import voices
    from tests.fixtures.voices import KINDS

    for i, (package, path) in enumerate(real_files()):
        if i % shards != shard:
            continue
        base = RealExcerpt(path, 0.5, PITCHES[(i * 5) % 12], ("major", "minor")[i % 2], 90.0 + 3 * i, seed=i,
                           groove=f"{package}:{Path(path).stem}")
        audio = render_base(base, seconds)
        yield "real + voice", base, None, None, audio
        kind, level = KINDS[i % len(KINDS)], LEVELS[i % len(LEVELS)]
        over = voices.voice(kind, base.key, base.mode, base.bpm, seconds, 2000 + i)
        yield "real + voice", base, kind, level, voices.mix(audio, over, level)


def features_worker(which: str, quick: bool, seconds: float, shard: int, shards: int, out: Path) -> None:
    """The musicnn outputs the detector is fitted on, per clip: mean, max and std over 3 s patches of both
    models' tags and embeddings; saved to ``out`` (npz) with each clip's set, song, variant and level."""
    import numpy as np
    import soxr

    from dataset_builder.label.musicnn import MusicnnModel
    from tests.fixtures import voices

    models = [MusicnnModel("MSD_musicnn"), MusicnnModel("MTT_musicnn")]
    if which == "train":
        source = (("train",) + clip for clip in training_clips(quick, seconds, shard, shards))
    elif which == "real":
        source = real_chunks(shard, shards)
    elif which == "realvoice":
        source = real_voice_clips(seconds, shard, shards)
    else:
        source = (c for i, c in enumerate(clips(quick, seconds)) if i % shards == shard)
    feats, meta = [], []
    for subset, base, variant, level, audio in source:
        audio16k = audio if which == "real" else soxr.resample(audio, voices.SAMPLE_RATE, 16000).astype(np.float32)
        patches = models[0].patches(audio16k)
        row = []
        for model in models:
            got = model.predict(patches)
            for name in ("tags", "embedding"):
                x = got[name]
                row += [x.mean(0), x.max(0), x.std(0)]
        feats.append(np.concatenate(row).astype(np.float32))
        meta.append(json.dumps({"set": subset, "song": getattr(base, "groove", getattr(base, "style", "")),
                                "seed": base.seed, "kind": variant, "level_db": level}))
        print(len(meta), meta[-1], flush=True)
    np.savez(out, features=np.stack(feats), meta=np.array(meta))


def truth_worker(seconds: float) -> dict:
    """Key and tempo labels (with their confidences) of bench/bench_labels.py's ground-truth songs: its dev General
    MIDI songs (where the key and tempo thresholds are chosen) and its held-out synthetic and General MIDI songs."""
    from bench.bench_labels import ground_truth, gm_set
    from dataset_builder.label import LabelConfig, Labeler
    from genrecraft import synth
    from tests.fixtures import gmsongs

    labeler = Labeler(LabelConfig(tagger="none"))
    rows = []
    for subset, specs in (("dev", gm_set(False, dev=True)), ("held-out", ground_truth(False) + gm_set(False))):
        for spec in specs:
            if isinstance(spec, gmsongs.GrooveSpec):
                labels = labeler(gmsongs.render_groove(spec, seconds), gmsongs.SAMPLE_RATE)
            else:
                labels = labeler(synth.render_song(spec, seconds), synth.SAMPLE_RATE)
            rows.append({"set": subset, "key": spec.key, "mode": spec.mode, "bpm": spec.bpm,
                         "labels": labels.to_dict()})
    return {"rows": rows}


def false_share(rows, min_key_strength: float, min_tempo_confidence: float, seeds: int = 10) -> dict:
    """Share of descriptions that state a wrong key or a wrong tempo (off by more than 4 %), over ``seeds``
    descriptions per song, with the given confidence thresholds; and the share of right keys / tempi left out."""
    from dataset_builder.label import Labels, describe
    from dataset_builder.label.confidence import confident
    from eval.adherence import tempo_class

    false = total = 0
    left_out = {"key": 0, "tempo": 0}
    for row in rows:
        labels = Labels.from_dict(row["labels"])
        shown = confident(labels, 0.1, min_key_strength, min_tempo_confidence)
        right_key = labels.key == row["key"] and labels.scale == row["mode"]
        right_tempo = tempo_class(row["bpm"], labels.bpm) == "correct"
        left_out["key"] += right_key and not shown.key
        left_out["tempo"] += right_tempo and not shown.bpm
        for seed in range(seeds):
            text = describe(shown, seed=seed)
            says_key = bool(shown.key) and f"{shown.key} {shown.scale}" in text
            says_tempo = bool(shown.bpm) and f"{int(round(shown.bpm))} " in text
            false += (says_key and not right_key) or (says_tempo and not right_tempo)
            total += 1
    return {"false_description_share": false / total, "right_keys_left_out": left_out["key"] / len(rows),
            "right_tempi_left_out": left_out["tempo"] / len(rows)}


def separation_speed(seconds: float = 30.0) -> dict:
    """Real-time factor of ``--vocals separate`` on this machine's CPU, on an HTDemucs of the default layout
    (depth 4, 48 channels, a 5-layer cross-domain transformer) with random weights: the pretrained htdemucs cannot
    be downloaded here; its compute is the same for the same layout."""
    import time

    import numpy as np
    import torch
    from demucs.htdemucs import HTDemucs

    from dataset_builder.vocals import Separator

    torch.manual_seed(0)
    separator = Separator(HTDemucs(sources=["drums", "bass", "other", "vocals"]))
    audio = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * 32000))).astype(np.float32)
    separator.accompaniment(audio[:32000 * 8], 32000)  # warm-up
    result: tp.Dict[str, tp.Any] = {"seconds_of_audio": seconds,
                                    "parameters": sum(p.numel() for p in separator.model.parameters())}
    default = torch.get_num_threads()
    for threads in sorted({1, default}):
        torch.set_num_threads(threads)
        start = time.perf_counter()
        separator.accompaniment(audio, 32000)
        wall = time.perf_counter() - start
        result[f"{threads}_thread"] = {"wall_s": round(wall, 2), "real_time_factor": round(seconds / wall, 3)}
    torch.set_num_threads(default)
    return result


def describe_thresholds(rows) -> dict:
    """Key-strength and tempo-confidence thresholds: the dev songs' best (fewest false descriptions, then fewest right
    keys and tempi left out), and the false share before (no threshold) and after (the builder's thresholds)."""
    from dataset_builder.label.confidence import MIN_KEY_STRENGTH, MIN_TEMPO_CONFIDENCE

    dev = [r for r in rows if r["set"] == "dev"]
    held = [r for r in rows if r["set"] == "held-out"]
    keys = sorted({0.0} | {r["labels"]["key_strength"] for r in dev})
    tempi = sorted({0.0} | {r["labels"]["tempo_confidence"] for r in dev})
    best = min(((k, t) for k in keys for t in tempi), key=lambda kt: (
        lambda f: (round(f["false_description_share"], 6), f["right_keys_left_out"] + f["right_tempi_left_out"]))(
            false_share(dev, *kt, seeds=4)))
    return {"dev_best": {"min_key_strength": best[0], "min_tempo_confidence": best[1],
                         **false_share(dev, *best)},
            "used": {"min_key_strength": MIN_KEY_STRENGTH, "min_tempo_confidence": MIN_TEMPO_CONFIDENCE},
            "dev_before": false_share(dev, 0.0, 0.0), "dev_after": false_share(dev, MIN_KEY_STRENGTH,
                                                                               MIN_TEMPO_CONFIDENCE),
            "held_out_before": false_share(held, 0.0, 0.0),
            "held_out_after": false_share(held, MIN_KEY_STRENGTH, MIN_TEMPO_CONFIDENCE),
            "songs": {"dev": len(dev), "held_out": len(held)}}


def features(which: str, quick: bool, seconds: float, cache: tp.Optional[Path], workers: int):
    """:func:`features_worker`'s pooled musicnn outputs of the ``train``, ``eval`` (dev + held-out) or ``real`` clips,
    [clips, dim], and each clip's description; from ``cache`` (a folder) when there, else computed by ``workers``
    processes (and saved there)."""
    import subprocess
    import tempfile

    import numpy as np

    name = which + ("_quick" if quick and which != "real" else "") + f"_{seconds:g}s.npz"
    path = cache / name if cache else None
    if path is not None and path.exists():
        with np.load(path) as data:
            x, meta = data["features"], list(data["meta"])
    else:
        with tempfile.TemporaryDirectory(prefix="bench-vocals-") as tmp:
            parts = [Path(tmp) / f"{i}.npz" for i in range(workers)]
            procs = [subprocess.Popen([sys.executable, __file__, "--features-worker", which, str(i), str(workers),
                                       str(part), "--seconds", str(seconds)] + (["--quick"] if quick else []),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                     for i, part in enumerate(parts)]
            for proc in procs:
                _, err = proc.communicate()
                if proc.returncode != 0:
                    raise SystemExit(f"{which} features worker failed:\n{err[-3000:]}")
            loaded = [np.load(part) for part in parts]
            x = np.concatenate([d["features"] for d in loaded])
            meta = [m for d in loaded for m in d["meta"]]
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, features=x, meta=np.array(meta))
    meta = [json.loads(str(m)) for m in meta]
    order = sorted(range(len(meta)), key=lambda i: (meta[i]["set"], meta[i]["seed"], str(meta[i]["kind"])))
    return x[order], [meta[i] for i in order]  # one order, however the workers split the clips


def has_voice(meta) -> np.ndarray:
    import numpy as np

    return np.array([bool(m["kind"]) and not m["kind"].startswith("lead:") for m in meta])


def blocks_of(x: np.ndarray, blocks: tp.Sequence[str]) -> np.ndarray:
    """The columns of pooled blocks ``blocks`` of :func:`features_worker`'s rows (every block, in
    ``vocal_detector.block_names()`` order)."""
    import numpy as np

    from dataset_builder.label.vocal_detector import block_names

    starts, at = {}, 0
    for name in block_names():
        dim = 50 if ".tags." in name else 200
        starts[name] = (at, at + dim)
        at += dim
    assert x.shape[1] == at, (x.shape, at)
    return np.concatenate([x[:, slice(*starts[b])] for b in blocks], axis=1)


def tag_scores(x: np.ndarray) -> np.ndarray:
    """The old vocal score (``vocals.tag_score``: the MTT tagger's most probable voice tag) of feature rows."""
    from dataset_builder.label.musicnn import MTT_LABELS
    from dataset_builder.vocals import MTT_VOCAL_TAGS

    tags = blocks_of(x, ["MTT_musicnn.tags.mean"])
    return tags[:, [MTT_LABELS.index(t) for t in MTT_VOCAL_TAGS if t in MTT_LABELS]].max(axis=1)


# The detector's input: both musicnn models' 200-d embeddings and tag probabilities, averaged over the 3 s patches.
BLOCKS = ("MSD_musicnn.embedding.mean", "MTT_musicnn.embedding.mean", "MSD_musicnn.tags.mean", "MTT_musicnn.tags.mean")
C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def _model(c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))


def cross_validate(x, y, groups, c_grid=C_GRID) -> tp.Tuple[float, np.ndarray]:
    """The regularisation (``C``) with the best 5-fold accuracy at 0.5 (folds by song: a song's clips with and
    without a voice stay in one fold), and its out-of-fold probabilities."""
    from sklearn.model_selection import GroupKFold, cross_val_predict

    best = None
    for c in c_grid:
        prob = cross_val_predict(_model(c), x, y, groups=groups, cv=GroupKFold(5), method="predict_proba")[:, 1]
        accuracy = float(((prob >= 0.5) == y).mean())
        if best is None or accuracy > best[0]:
            best = (accuracy, c, prob)
    return best[1], best[2]


def fit(x, meta, blocks=BLOCKS, out: tp.Optional[Path] = None) -> dict:
    """Fit the detector on the training clips (regularisation and threshold by cross-validation on them only) and,
    with ``out``, write its weights file. Returns what was chosen and the cross-validated figures."""
    import numpy as np

    from dataset_builder.label import vocal_detector

    y, groups = has_voice(meta), np.array([m["seed"] for m in meta])
    a = blocks_of(x, blocks)
    c, prob = cross_validate(a, y, groups)
    grid = np.round(np.arange(0.1, 0.91, 0.05), 2)
    accuracy = [float(((prob >= t) == y).mean()) for t in grid]
    threshold = float(min((t for t, acc in zip(grid, accuracy) if acc >= max(accuracy) - 1e-9),
                          key=lambda t: abs(t - 0.5)))  # the best out-of-fold threshold nearest 0.5
    model = _model(c).fit(a, y)
    scaler, logistic = model[0], model[1]
    if out is not None:
        vocal_detector.save(out, blocks, scaler.mean_, scaler.scale_, logistic.coef_[0], logistic.intercept_[0],
                            threshold, C=c, clips=len(y), voiced=int(y.sum()),
                            fitted_by="python bench/bench_vocals.py --fit")
    return {"C": c, "threshold": threshold, "clips": len(y), "cv_probabilities": prob,
            "model": model}


def rates(flagged, voiced) -> dict:
    import numpy as np

    flagged, voiced = np.asarray(flagged, bool), np.asarray(voiced, bool)
    false, missed = int((flagged & ~voiced).sum()), int((~flagged & voiced).sum())
    return {"clips": len(flagged), "accuracy": round(1 - (false + missed) / len(flagged), 4),
            "false_vocal_rate": round(false / max(1, int((~voiced).sum())), 4) if (~voiced).any() else None,
            "missed_vocal_rate": round(missed / max(1, int(voiced.sum())), 4) if voiced.any() else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--fit", action="store_true", help="refit the vocal detector on the training clips and "
                        "write dataset_builder/label/reference/vocal_detector.npz")
    parser.add_argument("--real", action="store_true", help="also the share of chunks flagged on the real set "
                        "(bench_dataset_builder.py --set real: 99 min of instrumental game music) and its songs "
                        "with a voice mixed over them (~20 min more)")
    parser.add_argument("--features", type=Path, help="reuse (or, when missing, save) the workers' features here")
    parser.add_argument("--truth", type=Path, help="reuse (or save) the key/tempo labels of the ground-truth songs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-other", action="store_true", help="keep the descriptions and separation-speed "
                        "figures of the last full run (results/vocals.json) instead of measuring them again")
    parser.add_argument("--features-worker", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--truth-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.features_worker:
        which, shard, shards, out = args.features_worker
        features_worker(which, args.quick, args.seconds, int(shard), int(shards), Path(out))
        return
    if args.truth_worker:
        print("RESULT " + json.dumps(truth_worker(30.0)))
        return
    import numpy as np

    from bench.common import RESULTS, cached_worker, report
    from dataset_builder.label import vocal_detector
    from dataset_builder.vocals import TAG_THRESHOLD, VOCAL_THRESHOLD

    xt, mt = features("train", args.quick, args.seconds, args.features, args.workers)
    if args.fit:
        fitted = fit(xt, mt, out=vocal_detector.WEIGHTS)
        print(f"fitted on {fitted['clips']} clips: C={fitted['C']}, threshold {fitted['threshold']}; wrote "
              f"{vocal_detector.WEIGHTS}")
    detector = vocal_detector.VocalDetector()
    if abs(detector.threshold - VOCAL_THRESHOLD) > 1e-6:
        print(f"note: the weights' threshold {detector.threshold} differs from vocals.VOCAL_THRESHOLD "
              f"{VOCAL_THRESHOLD}: update it")
    xe, me = features("eval", args.quick, args.seconds, args.features, args.workers)
    yt, ye = has_voice(mt), has_voice(me)
    score = {"detector": lambda x: detector.probability(blocks_of(x, detector.blocks)) >= VOCAL_THRESHOLD,
             "voice tags": lambda x: tag_scores(x) >= TAG_THRESHOLD}
    rows = []
    cv = fit(xt, mt)  # the same choices on the training clips only, to report cross-validated figures
    rows.append({"set": "train (5-fold CV by song)", "score": "detector", **rates(cv["cv_probabilities"] >= cv[
        "threshold"], yt), "C": cv["C"]})
    rows.append({"set": "train", "score": "voice tags", **rates(score["voice tags"](xt), yt)})
    for subset in ("dev", "held-out"):
        mine = np.array([m["set"] == subset for m in me])
        for name, flag in score.items():
            rows.append({"set": subset, "score": name, **rates(flag(xe[mine]), ye[mine])})
        plain = mine & ~ye
        for kind in sorted({m["kind"] for m in me if m["kind"]}):
            pick = plain | (mine & np.array([m["kind"] == kind for m in me]))
            rows.append({"set": f"{subset}: {kind} (+ songs without voice)", "score": "detector",
                         **rates(score["detector"](xe[pick]), ye[pick])})
        for level in LEVELS:
            pick = plain | (mine & np.array([m["level_db"] == level for m in me]))
            rows.append({"set": f"{subset}: voice at {level:g} dB (+ songs without voice)", "score": "detector",
                         **rates(score["detector"](xe[pick]), ye[pick])})
    # Leave one voice kind out: fit without it (same blocks, C chosen again), test on the dev + held-out clips of
    # that kind and every clip without a voice.
    for kind in sorted({m["kind"] for m in me if m["kind"]}):
        keep = np.array([m["kind"] != kind for m in mt])
        model = fit(xt[keep], [m for m, k in zip(mt, keep) if k])
        pick = ~ye | np.array([m["kind"] == kind for m in me])
        prob = model["model"].predict_proba(blocks_of(xe[pick], BLOCKS))[:, 1]
        rows.append({"set": f"dev + held-out: {kind}, trained without {kind}", "score": "detector",
                     **rates(prob >= model["threshold"], ye[pick])})
    if args.real:
        xv, mv = features("realvoice", False, args.seconds, args.features, args.workers)
        for name, flag in score.items():
            rows.append({"set": "real + voice (real-set excerpts, plain and with a voice)", "score": name,
                         **rates(flag(xv), has_voice(mv))})
        xr, mr = features("real", False, 30.0, args.features, args.workers)
        for name, flag in score.items():
            flagged = flag(xr)
            rows.append({"set": "real (instrumental game music, 30 s chunks)", "score": name,
                         **rates(flagged, np.zeros(len(flagged), bool)), "flagged_share": round(float(
                             flagged.mean()), 4), "songs_with_a_flag": len({m["song"] for m, f in zip(mr, flagged)
                                                                           if f})})
    params = {"seconds_per_clip": args.seconds, "threshold": VOCAL_THRESHOLD, "tag_threshold": TAG_THRESHOLD,
              "target_accuracy": 0.9, "detector": {"blocks": detector.blocks, "file": str(
                  vocal_detector.WEIGHTS.relative_to(RESULTS.parents[1]))},
              "signal": "detector: dataset_builder.vocals.vocal_score (logistic regression on musicnn MSD + MTT "
                        "embeddings and tags); voice tags: vocals.tag_score (the MTT voice tags, the old score)",
              "training_clips": {"clips": len(yt), "with_voice": int(yt.sum()),
                                 "lead_instrument_no_voice": sum(bool(m["kind"]) and m["kind"].startswith("lead:")
                                                                 for m in mt)},
              "note": "per-kind and per-level rows include every clip without a voice of that set; real-set rows "
                      "count every flag as false (no voice expected in most of it, not listened to)"}
    previous = RESULTS / "vocals.json"
    if args.skip_other and previous.exists():
        old = json.loads(previous.read_text())
        params["descriptions"] = old["params"].get("descriptions")
        params["separation_speed"] = old["params"].get("separation_speed")
        params["other_figures_from"] = old["date"]
    else:
        truth = cached_worker(args.truth, [sys.executable, __file__, "--truth-worker"], "key/tempo worker",
                              memory=False)
        params["descriptions"] = describe_thresholds(truth["rows"])
        params["separation_speed"] = separation_speed()
    rows, params["row_details"] = issue_rows(rows)
    report("vocals" + ("_quick" if args.quick else ""), rows, params=params)


ROW_KEYS = ("set", "clips", "accuracy", "false_vocal_rate", "missed_vocal_rate")  # the rows issue 19 names


def issue_rows(rows):
    """``rows`` with exactly :data:`ROW_KEYS`: the score named in ``set`` (the detector's rows keep their set's name,
    the old voice-tag score's say so), any other key moved to the details returned beside them."""
    named, details = [], []
    for row in rows:
        name = row["set"] if row.get("score", "detector") == "detector" else f"{row['set']} [{row['score']}: old score]"
        named.append({"set": name, **{k: row[k] for k in ROW_KEYS[1:]}})
        extra = {k: v for k, v in row.items() if k not in ROW_KEYS and k != "score"}
        if extra:
            details.append({"set": name, **extra})
    return named, details


if __name__ == "__main__":
    main()
