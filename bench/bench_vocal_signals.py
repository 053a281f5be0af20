"""Other offline signals for the vocal flag, measured on bench/bench_vocals.py's clips (issue 19).

    pip install silero-vad==6.2.3                  # not a dependency of genrecraft (it was not adopted)
    python bench/bench_vocal_signals.py            # dev 36 clips + held-out 60 clips, 15 s each
    python bench/bench_vocal_signals.py --features /tmp/f.json   # reuse (or save) the per-clip features

Signals per clip:

- ``musicnn``: the builder's score (:func:`dataset_builder.vocals.vocal_score`, the MTT tagger's voice tags);
- ``musicnn_harmonic``: the same score on the harmonic part (librosa HPSS, margin 2): the drums taken out;
- ``vad_*``: silero-vad (the weights its wheel ships, 16 kHz, one probability of speech per 32 ms frame): mean
  probability, share of frames above 0.5, 90th percentile, maximum;
- ``mel_*``: essentia PredominantPitchMelodia (80-1200 Hz, after EqualLoudness): share of voiced frames, mean
  confidence, and "wobble": the median over melody runs of >= 0.3 s of the std of the pitch (cents) around its
  0.35 s moving median (vibrato and the drift of a voice; a sampled instrument holds its pitch).

Each signal alone with its threshold chosen on the dev clips (best dev accuracy), then a logistic regression on the
dev clips of the musicnn score with one or two other signals (log of the probabilities); held-out clips are only
scored. Also: the musicnn score at higher thresholds than the builder's (fewer songs without a voice flagged, e.g.
the rendered rock songs). Cost: seconds per 30 s of audio for each signal on one torch thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

COMBINATIONS = (("musicnn", "vad_p90"), ("musicnn", "vad_share"), ("musicnn", "mel_wobble"),
                ("musicnn", "mel_voiced"), ("musicnn", "vad_p90", "mel_wobble"), ("musicnn", "vad_mean", "mel_voiced"))
THRESHOLDS = (0.025, 0.04, 0.06, 0.085)


def melodia_features(audio, sample_rate: int) -> dict:
    import essentia.standard as es
    import numpy as np
    from scipy.ndimage import median_filter

    hop = 256
    pitch, confidence = es.PredominantPitchMelodia(frameSize=2048, hopSize=hop, minFrequency=80, maxFrequency=1200,
                                                   sampleRate=sample_rate)(es.EqualLoudness(sampleRate=sample_rate)(
                                                       audio))
    pitch, confidence = np.asarray(pitch), np.asarray(confidence)
    voiced = pitch > 0
    edges = np.flatnonzero(np.diff(np.r_[0, voiced.astype(int), 0]))
    wobble = []
    for start, end in zip(edges[::2], edges[1::2]):
        if (end - start) * hop / sample_rate < 0.3:
            continue
        cents = 1200 * np.log2(pitch[start:end] / 55.0)
        deviation = cents - median_filter(cents, size=31, mode="nearest")
        wobble.append(float(np.std(deviation[np.abs(deviation) < 100])))
    return {"mel_voiced": float(voiced.mean()), "mel_confidence": float(confidence.mean()),
            "mel_wobble": float(np.median(wobble)) if wobble else 0.0}


def worker(quick: bool, seconds: float) -> dict:
    import librosa
    import numpy as np
    import soxr
    import torch

    from bench.bench_vocals import clips
    from dataset_builder.label.musicnn import MusicnnModel
    from dataset_builder.vocals import vocal_score
    from tests.fixtures import voices

    try:
        from silero_vad import load_silero_vad
    except ImportError:
        raise SystemExit("this benchmark needs silero-vad: pip install silero-vad==6.2.3")
    torch.set_num_threads(1)
    vad = load_silero_vad()
    mtt = MusicnnModel("MTT_musicnn")
    rows = []
    cost = {"musicnn": 0.0, "musicnn_harmonic": 0.0, "silero_vad": 0.0, "melodia": 0.0}
    for subset, base, kind, level, audio in clips(quick, seconds):
        start = time.perf_counter()
        audio16k = soxr.resample(audio, voices.SAMPLE_RATE, 16000).astype(np.float32)
        musicnn = vocal_score({"MTT_musicnn": mtt.tags(audio16k)})
        cost["musicnn"] += time.perf_counter() - start
        start = time.perf_counter()
        harmonic = librosa.effects.harmonic(audio16k, margin=2.0).astype(np.float32)
        musicnn_harmonic = vocal_score({"MTT_musicnn": mtt.tags(harmonic)})
        cost["musicnn_harmonic"] += time.perf_counter() - start
        start = time.perf_counter()
        vad.reset_states()
        with torch.no_grad():
            speech = vad.audio_forward(torch.from_numpy(audio16k)[None], 16000)[0].numpy()
        cost["silero_vad"] += time.perf_counter() - start
        start = time.perf_counter()
        melodia = melodia_features(audio, voices.SAMPLE_RATE)
        cost["melodia"] += time.perf_counter() - start
        rows.append({"set": subset, "song": getattr(base, "groove", getattr(base, "style", "")), "kind": kind,
                     "level_db": level, "musicnn": musicnn,
                     "musicnn_harmonic": musicnn_harmonic, "vad_mean": float(speech.mean()),
                     "vad_share": float((speech > 0.5).mean()), "vad_p90": float(np.quantile(speech, 0.9)),
                     "vad_max": float(speech.max()), **melodia})
    per_30s = {k: round(v / len(rows) * 30.0 / seconds, 3) for k, v in cost.items()}
    return {"rows": rows, "seconds_per_30s_clip": per_30s}


def rates(flags, clips) -> dict:
    flags = [bool(f) for f in flags]
    voiced = [f for f, c in zip(flags, clips) if c["kind"]]
    plain = [f for f, c in zip(flags, clips) if not c["kind"]]
    right = sum(voiced) + len(plain) - sum(plain)
    return {"clips": len(clips), "accuracy": right / len(clips), "false_vocal_rate": sum(plain) / len(plain),
            "missed_vocal_rate": 1 - sum(voiced) / len(voiced),
            "missed_by_kind": {k: round(1 - sum(f for f, c in zip(flags, clips) if c["kind"] == k)
                                        / sum(c["kind"] == k for c in clips), 2)
                               for k in sorted({c["kind"] for c in clips if c["kind"]})}}


def evaluate(clips) -> list:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    dev = [c for c in clips if c["set"] == "dev"]
    held = [c for c in clips if c["set"] == "held-out"]
    signals = [k for k in clips[0] if k not in ("set", "song", "kind", "level_db")]
    rows = []
    for signal in signals:
        accuracy = lambda t: rates([c[signal] >= t for c in dev], dev)["accuracy"]  # noqa: E731
        threshold = max(sorted({c[signal] for c in dev}), key=lambda t: (accuracy(t), -t))
        for name, subset in (("dev", dev), ("held-out", held)):
            rows.append({"set": name, "signal": signal, "threshold": round(threshold, 5),
                         **rates([c[signal] >= threshold for c in subset], subset)})
    features = lambda subset, keys: np.array([[np.log(max(c[k], 1e-4)) if not k.startswith("mel_") else c[k]  # noqa
                                               for k in keys] for c in subset])
    for keys in COMBINATIONS:
        model = LogisticRegression(max_iter=2000).fit(features(dev, keys), [bool(c["kind"]) for c in dev])
        for name, subset in (("dev", dev), ("held-out", held)):
            rows.append({"set": name, "signal": "logistic(" + " + ".join(keys) + ")",
                         **rates(list(model.predict(features(subset, keys))), subset)})
    for threshold in THRESHOLDS:
        for name, subset in (("dev", dev), ("held-out", held)):
            rock = [c for c in subset if not c["kind"] and c["song"] == "rock"]
            rows.append({"set": name, "signal": f"musicnn >= {threshold:g}", "threshold": threshold,
                         **rates([c["musicnn"] >= threshold for c in subset], subset),
                         "rock_songs_flagged": f"{sum(c['musicnn'] >= threshold for c in rock)}/{len(rock)}"})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--features", type=Path, help="reuse (or, when missing, save) the per-clip features here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.quick, args.seconds)))
        return
    from bench.common import cached_worker, report

    cmd = [sys.executable, __file__, "--worker", "--seconds", str(args.seconds)] + (["--quick"] if args.quick else [])
    result = cached_worker(args.features, cmd, "vocal signals worker", memory=False)
    rows = evaluate(result["rows"])
    print("\n".join(f"{r['set']:9s} {r['signal']}: missed by kind {r['missed_by_kind']}" for r in rows
                    if r["set"] == "held-out"))
    report("vocal_signals" + ("_quick" if args.quick else ""), rows, params={
        "seconds_per_clip": args.seconds, "seconds_per_30s_clip": result["seconds_per_30s_clip"],
        "silero_vad": "6.2.3",
        "note": "thresholds and logistic fits chosen on dev only; held-out only scored"})


if __name__ == "__main__":
    main()
