"""The tempo's confidence (beat regularity) on short and long chunks: right tempi it leaves out of descriptions,
wrong tempi it catches, with and without the tracker's first and last beats.

    python bench/bench_tempo_confidence.py           # demo songs in 15 s chunks; ground-truth songs at 15 s and 30 s
    python bench/bench_tempo_confidence.py --quick   # a few of each

Sets: ``demo``: the demo's two styles (genrecraft.demo.song_specs: synth-pop 112-136 bpm, lo-fi 72-92 bpm, 10 songs
each, 60 s), cut into 15 s chunks as the demo's builder does. ``dev`` and ``held-out``: bench_vocals.py's songs of
known key and tempo (bench_labels.py's dev General MIDI songs, where the description thresholds were chosen, and its
synthetic + General MIDI songs), as 15 s and 30 s clips. Each clip is tracked once (essentia RhythmExtractor2013,
degara, with the backbeat octave check, as the builder labels); a tempo is right within 4 %. Rows: per set, length
and regularity variant (:func:`dataset_builder.label.dsp.beat_regularity` with all intervals, with the first and
last left out as the builder does, or with a 10 % tolerance at 0.94): right tempi below the threshold (left out),
wrong tempi below it (caught).
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
    """``(set, seconds, true bpm, audio, sample rate)`` of every clip."""
    from bench.bench_labels import ground_truth, gm_set
    from genrecraft import synth
    from genrecraft.demo import song_specs
    from tests.fixtures import gmsongs

    for style in ("a", "b"):
        for spec in song_specs(style, 3 if quick else 10):
            song = synth.render_song(spec, 60.0)
            step = int(15.0 * synth.SAMPLE_RATE)
            for start in range(0, len(song) - step + 1, step):
                yield "demo", 15.0, spec.bpm, song[start:start + step], synth.SAMPLE_RATE
    for seconds in (15.0, 30.0):
        for subset, specs in (("dev", gm_set(quick, dev=True)), ("held-out", ground_truth(quick) + gm_set(quick))):
            for spec in specs:
                if isinstance(spec, gmsongs.GrooveSpec):
                    yield subset, seconds, spec.bpm, gmsongs.render_groove(spec, seconds), gmsongs.SAMPLE_RATE
                else:
                    yield subset, seconds, spec.bpm, synth.render_song(spec, seconds), synth.SAMPLE_RATE


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
    tracked: tp.List[tp.Tuple[str, float, bool, np.ndarray]] = []  # (set, seconds, right tempo, beats)
    for subset, seconds, truth, audio, rate in tqdm(clips(args.quick), desc="Tracking", unit="clip"):
        x = np.ascontiguousarray(soxr.resample(audio, rate, ESSENTIA_RATE) if rate != ESSENTIA_RATE else audio,
                                 dtype=np.float32)
        bpm, beats, _, _, _ = dsp._rhythm(x)
        bpm = float(bpm) * backbeat_octave(x, float(bpm), beats).factor
        tracked.append((subset, seconds, abs(bpm - truth) / truth <= 0.04, np.asarray(beats)))
    rows = []
    for subset, seconds in sorted({(t[0], t[1]) for t in tracked}, key=lambda k: (k[0] != "demo", k)):
        group = [t for t in tracked if (t[0], t[1]) == (subset, seconds)]
        right = [t for t in group if t[2]]
        wrong = [t for t in group if not t[2]]
        for variant, edge, tolerance, threshold in VARIANTS:
            low = [beat_regularity(t[3], tolerance, edge) < (threshold or MIN_TEMPO_CONFIDENCE) for t in group]
            rows.append({"set": subset, "seconds": seconds, "variant": variant, "clips": len(group),
                         "right_tempi": len(right), "right_left_out": sum(lo for lo, t in zip(low, group) if t[2]),
                         "wrong_tempi": len(wrong), "wrong_caught": sum(lo for lo, t in zip(low, group) if not t[2])})
    report("tempo_confidence" + ("_quick" if args.quick else ""), rows,
           params={"threshold": MIN_TEMPO_CONFIDENCE, "right_within": 0.04,
                   "tracker": "RhythmExtractor2013 degara + backbeat octave check"})


if __name__ == "__main__":
    main()
