"""Label accuracy and labelling speed on two ground-truth sets of songs with known key and tempo.

    python bench/bench_labels.py           # 24 synthetic clips + 36 General MIDI clips, 30 s each
    python bench/bench_labels.py --quick   # 4 + 9 clips

Sets:
- ``synth``: genrecraft.synth, all 24 keys, two styles (synth-pop, lo-fi), tempi spread over 70..160 bpm.
- ``gm``: tests.fixtures.gmsongs, sampled instruments and drum kits (fluidsynth + FluidR3_GM), 9 grooves at 4 tempi
  each within the genre's range (rock, ballad, house, boom bap, drum and bass, punk, reggaeton, a snare on every
  beat, no drums). The backbeat thresholds in dataset_builder/label/dsp.py were chosen on other songs of these
  grooves (other tempi, keys and seeds: ``dev_set``); this benchmark reports on songs they were not tuned on.
Key accuracy: MIREX weighted score (1 exact, 0.5 perfect fifth, 0.3 relative major/minor, 0.2 parallel, else 0).
Tempo accuracy: share within 4 % of the truth; octave errors (x2, x1/2, x3, x1/3) counted apart; for the beat
tracker alone (``tempo_octave=off``) and with the backbeat octave check (the default).
Speed: real-time factor per core (timed in a process pinned to one core with taskset when available) for the
DSP labels (key + tempo + octave check + loudness) and for the musicnn taggers (MSD + MTT), excluding model
loading.
Targets: key score >= 0.9, tempo >= 0.9, musicnn labelling >= 8x real time per core, DSP >= 30x.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PITCHES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def ground_truth(quick: bool):
    """The synthetic set."""
    from genrecraft.synth import SongSpec

    specs = []
    for i, tonic in enumerate(PITCHES):
        for j, mode in enumerate(("major", "minor")):
            style = "synthpop" if (i + j) % 2 == 0 else "lofi"
            bpm = 70 + ((i * 2 + j) * 37) % 91  # 70..160, spread
            specs.append(SongSpec(tonic, mode, float(bpm), style, seed=100 + 2 * i + j))
    return specs[::6] if quick else specs


def gm_set(quick: bool, dev: bool = False):
    """The General MIDI set: 4 songs per groove (1 with ``quick``). ``dev=True`` gives the disjoint songs the
    octave-check thresholds were chosen on (tempi at the ends and thirds of each range instead of the eighths,
    other keys and seeds)."""
    from tests.fixtures.gmsongs import GROOVES, GrooveSpec

    specs = []
    for g, groove in enumerate(GROOVES.values()):
        lo, hi = groove.tempo_range
        for k in range(4):
            i = 4 * g + k
            if dev:
                specs.append(GrooveSpec(PITCHES[(i * 5) % 12], ("major", "minor")[i % 2],
                                        float(round(lo + (hi - lo) * k / 3)), groove.name, seed=i))
            else:
                specs.append(GrooveSpec(PITCHES[(i * 7 + 3) % 12], ("minor", "major")[i % 2],
                                        float(round(lo + (hi - lo) * (2 * k + 1) / 8)), groove.name, seed=1000 + i))
    return specs[::4] if quick else specs


# The MIREX weighted key score and the tempo classes are eval.adherence's (the adherence metric uses the same).
from eval.adherence import mirex_key_score as mirex, tempo_class  # noqa: E402


def worker(quick: bool, seconds: float, dev: bool = False) -> dict:
    """Label every clip of both sets with DSP (tracker alone, with the octave check, both tempo methods) and the
    synthetic set with musicnn too; returns per-clip results and timings."""
    import numpy as np
    import soxr

    from dataset_builder.label import LabelConfig, Labeler
    from dataset_builder.label.dsp import DspLabeler
    from genrecraft import synth
    from tests.fixtures import gmsongs

    clips = [("synth", spec, spec.style, synth.render_song(spec, seconds), synth.SAMPLE_RATE)
             for spec in ground_truth(quick)]
    clips += [("gm", spec, spec.groove, gmsongs.render_groove(spec, seconds), gmsongs.SAMPLE_RATE)
              for spec in gm_set(quick, dev)]
    dsp = {"degara": DspLabeler("degara", tempo_octave="off"),
           "degara+backbeat": DspLabeler("degara", tempo_octave="backbeat"),
           "multifeature": DspLabeler("multifeature", tempo_octave="off"),
           "multifeature+backbeat": DspLabeler("multifeature", tempo_octave="backbeat")}
    tagger = Labeler(LabelConfig(tagger="musicnn"))
    tagger(clips[0][3], clips[0][4])  # warm-up (TF session creation)
    rows = []
    times = {name: {"synth": 0.0, "gm": 0.0} for name in list(dsp) + ["musicnn"]}
    for subset, spec, style, clip, rate in clips:
        row = {"set": subset, "key": spec.key, "mode": spec.mode, "bpm": spec.bpm, "style": style}
        for method, labeler in dsp.items():
            t0 = time.perf_counter()
            labels = labeler(clip, rate)
            times[method][subset] += time.perf_counter() - t0
            row[method] = {"key": labels.key, "mode": labels.scale, "bpm": labels.bpm}
        if subset == "synth":
            t0 = time.perf_counter()
            full = tagger(clip, rate)  # DSP (degara + backbeat) + both musicnn taggers
            times["musicnn"][subset] += time.perf_counter() - t0
            row["genres"] = full.genres
        rows.append(row)
    audio = {subset: sum(seconds for c in clips if c[0] == subset) for subset in ("synth", "gm")}
    return {"rows": rows, "times": times, "audio_seconds": audio,
            "pinned": os.environ.get("GENRECRAFT_BENCH_PINNED") == "1", "np": np.__version__,
            "soxr": soxr.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--dev", action="store_true",
                        help="report on the songs the octave-check thresholds were chosen on, instead of the others")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.quick, args.seconds, args.dev)))
        return
    cmd = [sys.executable, __file__, "--worker", "--seconds", str(args.seconds)]
    cmd += (["--quick"] if args.quick else []) + (["--dev"] if args.dev else [])
    from bench.common import format_table, report, run_worker

    result = run_worker(cmd, "labelling worker", memory=False, pin=True)
    rows, per_style = [], []
    for subset in ("synth", "gm"):
        subset_rows = [r for r in result["rows"] if r["set"] == subset]
        n = len(subset_rows)
        for method in ("degara", "degara+backbeat", "multifeature", "multifeature+backbeat"):
            classes = [tempo_class(r["bpm"], r[method]["bpm"]) for r in subset_rows]
            rows.append({
                "set": subset, "labels": f"DSP: key + tempo {method} + loudness", "clips": n,
                "key_mirex": sum(mirex(r["key"], r["mode"], r[method]["key"], r[method]["mode"])
                                 for r in subset_rows) / n,
                "key_exact": sum(r[method]["key"] == r["key"] and r[method]["mode"] == r["mode"]
                                 for r in subset_rows) / n,
                "bpm_within_4pct": classes.count("correct") / n, "bpm_octave_errors": classes.count("octave") / n,
                "rtf_per_core": result["audio_seconds"][subset] / result["times"][method][subset]})
        if subset == "synth":
            default = rows[-3]
            rows.append({**default, "labels": "full: DSP (degara+backbeat) + musicnn MSD + MTT",
                         "rtf_per_core": result["audio_seconds"][subset] / result["times"]["musicnn"][subset]})
        for style in sorted({r["style"] for r in subset_rows}):
            got = [r for r in subset_rows if r["style"] == style]
            per_style.append({"set": subset, "style": style, "truth_bpm": " ".join(f"{r['bpm']:.0f}" for r in got),
                              "degara": " ".join(f"{r['degara']['bpm']:.0f}" for r in got),
                              "degara+backbeat": " ".join(f"{r['degara+backbeat']['bpm']:.0f}" for r in got),
                              "correct_before": sum(tempo_class(r["bpm"], r["degara"]["bpm"]) == "correct"
                                                    for r in got),
                              "correct_after": sum(tempo_class(r["bpm"], r["degara+backbeat"]["bpm"]) == "correct"
                                                   for r in got)})
    print(format_table(per_style) + "\n")
    name = "labels" + ("_dev" if args.dev else "") + ("_quick" if args.quick else "")
    report(name, rows, params={"seconds_per_clip": args.seconds, "pinned_to_one_core": result["pinned"],
                               "songs": "dev (thresholds chosen on these)" if args.dev else "held out",
                               "per_style": per_style,
                               "targets": {"key_mirex": 0.9, "bpm": 0.9, "rtf_musicnn": 8, "rtf_dsp": 30}})


if __name__ == "__main__":
    main()
