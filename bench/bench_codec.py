"""Reconstruction by the demo's spectral codec (genrecraft.spectral_codec): do key and tempo survive encode+decode?

    python bench/bench_codec.py            # codec fitted on 32 songs; 24 synthetic + 12 General MIDI test clips
    python bench/bench_codec.py --quick    # 8 songs; 6 + 3 test clips
    python bench/bench_codec.py --codec griffin_lim_iters=64   # a variant: results/codec_griffin_lim_iters64.json

The codec is fitted (k-means codebooks) on training songs of both kinds - synthetic songs in the demo's two
styles and General MIDI songs (the label benchmark's development grooves) - then every clip of two held-out test
sets is encoded to tokens and decoded back to audio:

- ``synth``: bench_labels.py's synthetic set (all 24 keys, synth-pop and lo-fi, 70..160 bpm), other seeds than
  the training songs;
- ``gm``: bench_labels.py's held-out General MIDI songs (sampled instruments, 9 grooves), every third one.

Per set: ``key_kept`` and ``tempo_kept``, the share of clips whose labels from the project's own labeller
(dataset_builder's DSP labeller: essentia KeyExtractor, RhythmExtractor2013 + backbeat octave check) are the same
on the decoded audio as on the original (key and mode equal; tempo within 4 %); ``key_truth`` and
``key_truth_decoded``, the MIREX weighted key score of the labels against the ground truth before and after;
``mel_distance_db``, the mean absolute difference of 64-band log-mel spectrograms (dB, each clipped 80 dB below
the original's peak); ``encode_rtf`` / ``decode_rtf``, seconds of computing per second of audio (2 threads).
Target (issue 18): key_kept and tempo_kept >= 0.9.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def mel_distance_db(reference, decoded, sample_rate: int) -> float:
    """Mean |log-mel(reference) - log-mel(decoded)| in dB, both clipped 80 dB below the reference's peak."""
    import librosa
    import numpy as np

    n = min(len(reference), len(decoded))
    mels = [librosa.feature.melspectrogram(y=np.asarray(x[:n], dtype=np.float32), sr=sample_rate, n_fft=2048,
                                           hop_length=512, n_mels=64) for x in (reference, decoded)]
    peak = float(mels[0].max()) or 1e-10
    db = [np.maximum(10 * np.log10(np.maximum(m, 1e-20) / peak), -80.0) for m in mels]
    return float(np.mean(np.abs(db[0] - db[1])))


def training_songs(quick: bool, folder: Path, seconds: float):
    """Songs the codec is fitted on: synthetic songs in both demo styles and General MIDI development songs."""
    import soundfile as sf

    from bench.bench_labels import PITCHES, gm_set
    from genrecraft import synth
    from tests.fixtures import gmsongs

    files = []
    count = 4 if quick else 16
    for i in range(count):
        style = ("synthpop", "lofi")[i % 2]
        spec = synth.SongSpec(PITCHES[(i * 5) % 12], ("major", "minor")[(i // 2) % 2],
                              float(72 + (i * 29) % 80), style, seed=5000 + i)
        path = folder / f"synth{i:02d}.wav"
        sf.write(path, synth.render_song(spec, seconds), synth.SAMPLE_RATE)
        files.append(path)
    for i, spec in enumerate(gm_set(quick=False, dev=True)[:count]):
        path = folder / f"gm{i:02d}.wav"
        sf.write(path, gmsongs.render_groove(spec, seconds), gmsongs.SAMPLE_RATE)
        files.append(path)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer songs (a smoke run)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per test clip (default %(default)s)")
    parser.add_argument("--codec", action="append", default=[], metavar="KEY=VALUE",
                        help="a codec setting other than the default (genrecraft.spectral_codec.DEFAULTS), repeatable; "
                             "the results go to codec_<key><value>.json")
    args = parser.parse_args()
    from genrecraft.spectral_codec import DEFAULTS

    overrides = {}
    for item in args.codec:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--codec {item}: use KEY=VALUE, e.g. griffin_lim_iters=64")
        if key not in DEFAULTS:
            parser.error(f"--codec {item}: unknown setting; known: {', '.join(sorted(DEFAULTS))}")
        overrides[key] = type(DEFAULTS[key])(value)

    import numpy as np
    import soxr
    import torch

    from bench.bench_labels import gm_set, ground_truth, mirex, tempo_class
    from bench.common import report
    from dataset_builder.label.dsp import DspLabeler
    from genrecraft import synth
    from genrecraft.core import compat
    from genrecraft.spectral_codec import fit_spectral_codec
    from tests.fixtures import gmsongs

    compat.apply()
    from audiocraft.solvers.compression import CompressionSolver

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.time()
        files = training_songs(args.quick, folder, 30.0)
        fitted = fit_spectral_codec(files, folder / "codec.th", seconds_per_file=30.0, progress=False, **overrides)
        fit_seconds = time.time() - t0
        codec = CompressionSolver.model_from_checkpoint(str(folder / "codec.th"))
        labeler = DspLabeler()
        sets = {"synth": [(spec, synth.render_song(spec, args.seconds), synth.SAMPLE_RATE)
                          for spec in ground_truth(args.quick)],
                "gm": [(spec, gmsongs.render_groove(spec, args.seconds), gmsongs.SAMPLE_RATE)
                       for spec in gm_set(quick=False)[::12 if args.quick else 3]]}
        rows = []
        for name, clips in sets.items():
            kept_key = kept_tempo = 0
            truth_before = truth_after = 0.0
            mels, enc, dec, audio_seconds, lost = [], 0.0, 0.0, 0.0, []
            for spec, clip, rate in clips:
                x = clip if rate == codec.sample_rate else soxr.resample(clip, rate, codec.sample_rate)
                x = np.ascontiguousarray(x, dtype=np.float32)
                with torch.no_grad():
                    t = time.perf_counter()
                    codes, _ = codec.encode(torch.from_numpy(x)[None, None])
                    enc += time.perf_counter() - t
                    t = time.perf_counter()
                    y = codec.decode(codes)[0, 0, :len(x)].numpy()
                    dec += time.perf_counter() - t
                audio_seconds += len(x) / codec.sample_rate
                before, after = labeler(x, codec.sample_rate), labeler(y, codec.sample_rate)
                kept_key += (before.key, before.scale) == (after.key, after.scale)
                tempo_same = tempo_class(before.bpm, after.bpm) == "correct"
                kept_tempo += tempo_same
                if not tempo_same:
                    lost.append({"bpm": spec.bpm, "before": round(before.bpm, 1), "after": round(after.bpm, 1)})
                truth_before += mirex(spec.key, spec.mode, before.key, before.scale)
                truth_after += mirex(spec.key, spec.mode, after.key, after.scale)
                mels.append(mel_distance_db(x, y, codec.sample_rate))
            n = len(clips)
            rows.append({"set": name, "clips": n, "key_kept": kept_key / n, "tempo_kept": kept_tempo / n,
                         "key_truth": truth_before / n, "key_truth_decoded": truth_after / n,
                         "mel_distance_db": float(np.mean(mels)), "encode_rtf": enc / audio_seconds,
                         "decode_rtf": dec / audio_seconds, "tempo_lost": lost})
    variant = "".join(f"_{k}{v}" for k, v in overrides.items())
    report("codec" + variant + ("_quick" if args.quick else ""), rows, params={
        "codec": {**DEFAULTS, **overrides}, "frame_rate": codec.frame_rate, "bands": codec.n_bands,
        "training_songs": len(files), "training_seconds_per_song": 30.0, "fit_seconds": round(fit_seconds, 1),
        "codes_used": fitted["codes_used"], "seconds_per_test_clip": args.seconds, "threads": 2,
        "labeller": "dataset_builder DspLabeler (degara + backbeat)", "targets": {"key_kept": 0.9, "tempo_kept": 0.9}})


if __name__ == "__main__":
    main()
