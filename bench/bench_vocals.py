"""The vocal flag (``--vocals flag|drop``): does the builder's vocal score tell songs with a voice from songs without?

    python bench/bench_vocals.py           # dev 36 clips + held-out 60 clips, 15 s each
    python bench/bench_vocals.py --quick   # 12 + 20 clips

Clips: songs rendered offline (tests.fixtures.gmsongs: sampled instruments and drum kits, 9 grooves; genrecraft.synth:
synth-pop and lo-fi), each once as it is (no voice) and once with a voice mixed over it (tests.fixtures.voices):
espeak-ng speech, espeak-ng "singing" (one syllable per melody note), or a melody on the General MIDI choir and voice
patches (Choir Aahs, Voice Oohs, Synth Voice), at -6, -12 or -18 dB relative to the song (RMS). Half the clips have a
voice. The signal (:func:`dataset_builder.vocals.vocal_score`) and the threshold (``VOCAL_THRESHOLD``) were chosen on
the ``dev`` songs; ``held-out`` songs (other grooves' seeds, keys, tempi, voices, and the synth songs) were not used.
Rows per set, per voice kind and per level: accuracy, false vocal rate (share of clips without a voice flagged) and
missed vocal rate (share of clips with a voice not flagged). Target: accuracy >= 0.9.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing as tp
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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
    import numpy as np
    import soxr

    from genrecraft import synth
    from tests.fixtures import gmsongs, voices

    for subset, held_out in (("dev", False), ("held-out", True)):
        songs = {}
        for base, kind, level, seed in clip_specs(held_out, quick):
            if id(base) not in songs:
                if isinstance(base, gmsongs.GrooveSpec):
                    audio = gmsongs.render_groove(base, seconds)
                else:
                    audio = soxr.resample(synth.render_song(base, seconds), synth.SAMPLE_RATE,
                                          voices.SAMPLE_RATE).astype(np.float32)
                songs[id(base)] = audio
            audio = songs[id(base)]
            if kind is not None:
                audio = voices.mix(audio, voices.voice(kind, base.key, base.mode, base.bpm, seconds, seed), level)
            yield subset, base, kind, level, audio


def worker(quick: bool, seconds: float) -> dict:
    """Render every clip and run the musicnn taggers on it; returns the raw tag probabilities per clip."""
    import numpy as np
    import soxr

    from dataset_builder.label.musicnn import MusicnnModel
    from tests.fixtures import voices

    models = [MusicnnModel("MSD_musicnn"), MusicnnModel("MTT_musicnn")]
    rows = []
    for subset, base, kind, level, audio in clips(quick, seconds):
        audio16k = soxr.resample(audio, voices.SAMPLE_RATE, 16000).astype(np.float32)
        scores = {}
        for model in models:
            scores[model.name] = {k: round(v, 5) for k, v in model.tags(audio16k).items()}
        rows.append({"set": subset, "song": getattr(base, "groove", getattr(base, "style", "")), "kind": kind,
                     "level_db": level, "scores": scores})
    return {"rows": rows}


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


def rates(clips, threshold: float) -> dict:
    from dataset_builder.vocals import vocal_score

    voiced = [c for c in clips if c["kind"]]
    plain = [c for c in clips if not c["kind"]]
    flagged = lambda c: vocal_score(c["scores"]) >= threshold  # noqa: E731
    false = sum(flagged(c) for c in plain)
    missed = sum(not flagged(c) for c in voiced)
    return {"clips": len(clips), "accuracy": (len(clips) - false - missed) / len(clips),
            "false_vocal_rate": false / len(plain) if plain else 0.0,
            "missed_vocal_rate": missed / len(voiced) if voiced else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--scores", type=Path, help="reuse (or, when missing, save) the worker's raw tag scores here")
    parser.add_argument("--truth", type=Path, help="reuse (or save) the key/tempo labels of the ground-truth songs")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--truth-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.quick, args.seconds)))
        return
    if args.truth_worker:
        print("RESULT " + json.dumps(truth_worker(30.0)))
        return
    from bench.common import cached_worker, report
    from dataset_builder.vocals import VOCAL_THRESHOLD

    cmd = [sys.executable, __file__, "--worker", "--seconds", str(args.seconds)] + (["--quick"] if args.quick else [])
    result = cached_worker(args.scores, cmd, "vocals worker", memory=False)
    truth = cached_worker(args.truth, [sys.executable, __file__, "--truth-worker"], "key/tempo worker", memory=False)
    descriptions = describe_thresholds(truth["rows"])
    clips = result["rows"]
    rows = []
    for subset in ("dev", "held-out"):
        mine = [c for c in clips if c["set"] == subset]
        rows.append({"set": subset, **rates(mine, VOCAL_THRESHOLD)})
        plain = [c for c in mine if not c["kind"]]
        for kind in sorted({c["kind"] for c in mine if c["kind"]}):
            rows.append({"set": f"{subset}: {kind} (+ songs without voice)",
                         **rates(plain + [c for c in mine if c["kind"] == kind], VOCAL_THRESHOLD)})
        for level in LEVELS:
            rows.append({"set": f"{subset}: voice at {level:g} dB (+ songs without voice)",
                         **rates(plain + [c for c in mine if c["level_db"] == level], VOCAL_THRESHOLD)})
    report("vocals" + ("_quick" if args.quick else ""), rows, params={
        "seconds_per_clip": args.seconds, "threshold": VOCAL_THRESHOLD, "target_accuracy": 0.9,
        "signal": "dataset_builder.vocals.vocal_score (musicnn MSD + MTT vocal tags)",
        "note": "per-kind and per-level rows include every clip without a voice of that set",
        "descriptions": descriptions, "separation_speed": separation_speed()})


if __name__ == "__main__":
    main()
