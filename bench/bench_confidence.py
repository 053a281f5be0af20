"""The key's and the tempo's confidences on short and long chunks: right tempi the beat regularity leaves out of
descriptions and wrong tempi it catches (with and without the tracker's first and last beats), and whether a key
strength tells wrong keys from right ones.

    python bench/bench_confidence.py           # demo songs in 15 s chunks; ground-truth songs at 15 s and 30 s
    python bench/bench_confidence.py --quick   # a few of each

Sets: ``demo``: the demo's two styles (genrecraft.demo.song_specs: synth-pop 112-136 bpm, lo-fi 72-92 bpm, 10 songs
each, 60 s), cut into 15 s chunks as the demo's builder does. ``dev`` and ``held-out``: bench_vocals.py's songs of
known key and tempo (bench_labels.py's dev General MIDI songs, where the description thresholds were chosen, and its
synthetic + General MIDI songs), as 15 s and 30 s clips. Each clip is tracked once (essentia RhythmExtractor2013,
degara, with the backbeat octave check, as the builder labels); a tempo is right within 4 %. Rows: per set, length
and regularity variant (:func:`dataset_builder.label.dsp.beat_regularity` with all intervals, with the first and
last left out as the builder does, or with a 10 % tolerance at 0.94): right tempi below the threshold (left out),
wrong tempi below it (caught). Key rows: right and wrong keys (essentia KeyExtractor, as the builder labels), the
weakest right key's strength and the strongest wrong key's: a key-strength threshold can only leave out wrong keys
without right ones if the second is below the first.
"""

from __future__ import annotations

import argparse
import sys
import typing as tp
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# (name, intervals left out at each end, tolerance, threshold or None for the builder's)
VARIANTS = (("all intervals", 0, 0.05, None), ("first and last left out (the builder's)", 1, 0.05, None),
            ("10 % tolerance", 0, 0.10, 0.94))


def clips(quick: bool) -> tp.Iterator[tp.Tuple[str, float, float, tp.Any, int]]:
    """``(set, seconds, song spec, audio, sample rate)`` of every clip."""
    from bench.bench_labels import ground_truth, gm_set
    from genrecraft import synth
    from genrecraft.demo import song_specs
    from tests.fixtures import gmsongs

    for style in ("a", "b"):
        for spec in song_specs(style, 3 if quick else 10):
            song = synth.render_song(spec, 60.0)
            step = int(15.0 * synth.SAMPLE_RATE)
            for start in range(0, len(song) - step + 1, step):
                yield "demo", 15.0, spec, song[start:start + step], synth.SAMPLE_RATE
    for seconds in (15.0, 30.0):
        for subset, specs in (("dev", gm_set(quick, dev=True)), ("held-out", ground_truth(quick) + gm_set(quick))):
            for spec in specs:
                if isinstance(spec, gmsongs.GrooveSpec):
                    yield subset, seconds, spec, gmsongs.render_groove(spec, seconds), gmsongs.SAMPLE_RATE
                else:
                    yield subset, seconds, spec, synth.render_song(spec, seconds), synth.SAMPLE_RATE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()

    import numpy as np
    import soxr
    from tqdm import tqdm

    from bench.common import report
    from dataset_builder.label.confidence import MIN_TEMPO_CONFIDENCE
    from dataset_builder.label.dsp import ESSENTIA_RATE, DspLabeler, backbeat_octave, beat_regularity

    dsp = DspLabeler()
    tracked: tp.List[tp.Dict[str, tp.Any]] = []
    for subset, seconds, spec, audio, rate in tqdm(clips(args.quick), desc="Labelling key and tempo", unit="clip"):
        x = np.ascontiguousarray(soxr.resample(audio, rate, ESSENTIA_RATE) if rate != ESSENTIA_RATE else audio,
                                 dtype=np.float32)
        key, scale, strength = dsp._key(x)
        bpm, beats, _, _, _ = dsp._rhythm(x)
        bpm = float(bpm) * backbeat_octave(x, float(bpm), beats).factor
        tracked.append({"set": subset, "seconds": seconds, "right_tempo": abs(bpm - spec.bpm) / spec.bpm <= 0.04,
                        "beats": np.asarray(beats), "right_key": (key, scale) == (spec.key, spec.mode),
                        "strength": float(strength)})
    rows = []
    for subset, seconds in sorted({(t["set"], t["seconds"]) for t in tracked}, key=lambda k: (k[0] != "demo", k)):
        group = [t for t in tracked if (t["set"], t["seconds"]) == (subset, seconds)]
        right = [t for t in group if t["right_tempo"]]
        wrong = [t for t in group if not t["right_tempo"]]
        for variant, edge, tolerance, threshold in VARIANTS:
            low = [beat_regularity(t["beats"], tolerance, edge) < (threshold or MIN_TEMPO_CONFIDENCE) for t in group]
            caught = sum(lo for lo, t in zip(low, group) if not t["right_tempo"])
            rows.append({"set": subset, "seconds": seconds, "label": "tempo", "variant": variant,
                         "clips": len(group), "right": len(right),
                         "right_left_out": sum(lo for lo, t in zip(low, group) if t["right_tempo"]),
                         "wrong": len(wrong), "wrong_caught": caught, "weakest_right": None, "strongest_wrong": None})
        keys_right = [t["strength"] for t in group if t["right_key"]]
        keys_wrong = [t["strength"] for t in group if not t["right_key"]]
        rows.append({"set": subset, "seconds": seconds, "label": "key", "variant": "key strength", "clips": len(group),
                     "right": len(keys_right), "right_left_out": None, "wrong": len(keys_wrong), "wrong_caught": None,
                     "weakest_right": round(min(keys_right), 3) if keys_right else None,
                     "strongest_wrong": round(max(keys_wrong), 3) if keys_wrong else None})
    report("confidence" + ("_quick" if args.quick else ""), rows,
           params={"threshold": MIN_TEMPO_CONFIDENCE, "right_within": 0.04,
                   "tracker": "RhythmExtractor2013 degara + backbeat octave check"})


if __name__ == "__main__":
    main()
