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


def worker(quick: bool, seconds: float) -> dict:
    """Render every clip and run the musicnn taggers on it; returns the raw tag probabilities per clip."""
    import numpy as np
    import soxr

    from dataset_builder.label.musicnn import MusicnnModel
    from genrecraft import synth
    from tests.fixtures import gmsongs, voices

    models = [MusicnnModel("MSD_musicnn"), MusicnnModel("MTT_musicnn")]
    rows = []
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
            audio16k = soxr.resample(audio, voices.SAMPLE_RATE, 16000).astype(np.float32)
            scores = {}
            for model in models:
                scores[model.name] = {k: round(v, 5) for k, v in model.tags(audio16k).items()}
            rows.append({"set": subset, "song": getattr(base, "groove", getattr(base, "style", "")), "kind": kind,
                         "level_db": level, "scores": scores})
    return {"rows": rows}


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
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.quick, args.seconds)))
        return
    from bench.common import report, run_worker
    from dataset_builder.vocals import VOCAL_THRESHOLD

    if args.scores and args.scores.exists():
        result = json.loads(args.scores.read_text())
    else:
        cmd = [sys.executable, __file__, "--worker", "--seconds", str(args.seconds)] + (["--quick"] if args.quick
                                                                                        else [])
        result = run_worker(cmd, "vocals worker", memory=False)
        if args.scores:
            args.scores.write_text(json.dumps(result))
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
        "note": "per-kind and per-level rows include every clip without a voice of that set"})


if __name__ == "__main__":
    main()
