"""Label accuracy and labelling speed on a ground-truth set of synthetic songs with known key and tempo.

    python bench/bench_labels.py           # 24 clips of 30 s: all 24 keys, both styles, tempi 70..160 bpm
    python bench/bench_labels.py --quick   # 4 clips

Key accuracy: MIREX weighted score (1 exact, 0.5 perfect fifth, 0.3 relative major/minor, 0.2 parallel, else 0).
Tempo accuracy: share within 4 % of the truth; octave errors (x2, x1/2, x3, x1/3) counted apart.
Speed: real-time factor per core (timed in a process pinned to one core with taskset when available) for the
DSP labels (key + tempo + loudness) and for the musicnn taggers (MSD + MTT), excluding model loading.
Targets: key score >= 0.9, tempo >= 0.9, musicnn labelling >= 8x real time per core, DSP >= 30x.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PITCHES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def ground_truth(quick: bool):
    from genrecraft.synth import SongSpec

    specs = []
    for i, tonic in enumerate(PITCHES):
        for j, mode in enumerate(("major", "minor")):
            style = "synthpop" if (i + j) % 2 == 0 else "lofi"
            bpm = 70 + ((i * 2 + j) * 37) % 91  # 70..160, spread
            specs.append(SongSpec(tonic, mode, float(bpm), style, seed=100 + 2 * i + j))
    return specs[::6] if quick else specs


def mirex(true_key: str, true_mode: str, key: str, mode: str) -> float:
    norm = {"Db": "C#", "D#": "Eb", "Gb": "F#", "G#": "Ab", "A#": "Bb"}
    t, k = PITCHES.index(norm.get(true_key, true_key)), PITCHES.index(norm.get(key, key))
    if t == k and mode == true_mode:
        return 1.0
    if mode == true_mode and (k - t) % 12 in (5, 7):
        return 0.5
    relative = (t + 9) % 12 if true_mode == "major" else (t + 3) % 12
    if mode != true_mode and k == relative:
        return 0.3
    if mode != true_mode and k == t:
        return 0.2
    return 0.0


def tempo_class(true_bpm: float, bpm: float) -> str:
    if abs(bpm - true_bpm) <= 0.04 * true_bpm:
        return "correct"
    for factor in (2.0, 0.5, 3.0, 1 / 3):
        if abs(bpm - factor * true_bpm) <= 0.04 * factor * true_bpm:
            return "octave"
    return "wrong"


def worker(quick: bool, seconds: float) -> dict:
    """Label every clip with DSP (both tempo methods) and musicnn; returns per-clip results and timings."""
    import numpy as np

    from dataset_builder.label import LabelConfig, Labeler
    from dataset_builder.label.dsp import DspLabeler
    from genrecraft.synth import SAMPLE_RATE, render_song

    specs = ground_truth(quick)
    clips = [render_song(spec, seconds) for spec in specs]
    dsp = {m: DspLabeler(bpm_method=m) for m in ("degara", "multifeature")}
    tagger = Labeler(LabelConfig(tagger="musicnn"))
    tagger(clips[0], SAMPLE_RATE)  # warm-up (TF session creation)
    rows, times = [], {"degara": 0.0, "multifeature": 0.0, "musicnn": 0.0}
    for spec, clip in zip(specs, clips):
        row = {"key": spec.key, "mode": spec.mode, "bpm": spec.bpm, "style": spec.style}
        for method, labeler in dsp.items():
            t0 = time.perf_counter()
            labels = labeler(clip, SAMPLE_RATE)
            times[method] += time.perf_counter() - t0
            row[method] = {"key": labels.key, "mode": labels.scale, "bpm": labels.bpm}
        t0 = time.perf_counter()
        full = tagger(clip, SAMPLE_RATE)  # DSP (degara) + both musicnn taggers
        times["musicnn"] += time.perf_counter() - t0
        row["genres"] = full.genres
        rows.append(row)
    audio = len(clips) * seconds
    return {"rows": rows, "times": times, "audio_seconds": audio,
            "pinned": os.environ.get("GENRECRAFT_BENCH_PINNED") == "1", "np": np.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.quick, args.seconds)))
        return
    cmd = [sys.executable, __file__, "--worker", "--seconds", str(args.seconds)] + (["--quick"] if args.quick else [])
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0"] + cmd
        env["GENRECRAFT_BENCH_PINNED"] = "1"
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        raise SystemExit(proc.stderr[-3000:])
    result = json.loads(line[0][len("RESULT "):])
    rows = []
    n = len(result["rows"])
    for method in ("degara", "multifeature"):
        key_score = sum(mirex(r["key"], r["mode"], r[method]["key"], r[method]["mode"]) for r in result["rows"]) / n
        classes = [tempo_class(r["bpm"], r[method]["bpm"]) for r in result["rows"]]
        rows.append({
            "labels": f"DSP (key + tempo {method} + loudness)", "clips": n,
            "key_mirex": key_score, "key_exact": sum(
                r[method]["key"] == r["key"] and r[method]["mode"] == r["mode"] for r in result["rows"]) / n,
            "bpm_within_4pct": classes.count("correct") / n, "bpm_octave_errors": classes.count("octave") / n,
            "rtf_per_core": result["audio_seconds"] / result["times"][method]})
    rows.append({"labels": "full: DSP (degara) + musicnn MSD + MTT", "clips": n, "key_mirex": rows[0]["key_mirex"],
                 "key_exact": rows[0]["key_exact"], "bpm_within_4pct": rows[0]["bpm_within_4pct"],
                 "bpm_octave_errors": rows[0]["bpm_octave_errors"],
                 "rtf_per_core": result["audio_seconds"] / result["times"]["musicnn"]})
    from bench.common import report

    report("labels_quick" if args.quick else "labels", rows,
           params={"clips": n, "seconds_per_clip": args.seconds, "pinned_to_one_core": result["pinned"],
                   "targets": {"key_mirex": 0.9, "bpm": 0.9, "rtf_musicnn": 8, "rtf_dsp": 30}})


if __name__ == "__main__":
    main()
