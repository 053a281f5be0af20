"""Embedding throughput for FAD: the offline musicnn backend (the default), and the debug EnCodec backend.

    python bench/bench_embed.py            # 8 synthetic clips of 30 s
    python bench/bench_embed.py --quick    # 2 clips

Measured in a process pinned to one core with taskset (when available), as ``bench_labels.py`` does, after one
warm-up clip (model loading and TF session creation excluded). Two timings per backend: ``embed`` alone (audio
already at the backend's rate), and the whole uncached ``eval.embeddings.embed_file`` (read a 32 kHz WAV,
resample with soxr, embed). Reported: clips per second per core, seconds of audio per second (real-time factor),
frames per clip. The debug EnCodec model (``//pretrained/debug_compression_model``, 4 filters) is far smaller than
MusicGen's real 32 kHz EnCodec: its row shows the backend's overhead, not the real model's speed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BACKENDS = ("musicnn", "encodec://pretrained/debug_compression_model")


def worker(n_clips: int, seconds: float) -> dict:
    import numpy as np
    import soundfile as sf

    from genrecraft.core.audio import load_audio
    from eval.embeddings import embed_file, get_backend
    from genrecraft.synth import SAMPLE_RATE, SongSpec, render_song

    styles = ("synthpop", "lofi")
    keys = ("C", "G", "D", "A", "E", "F", "Bb", "Eb")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i in range(n_clips + 1):  # + 1 warm-up clip
            spec = SongSpec(key=keys[i % len(keys)], mode="major" if i % 2 else "minor", bpm=80.0 + 9 * i,
                            style=styles[i % 2], seed=i)
            path = Path(tmp) / f"clip{i:02d}.wav"
            sf.write(path, render_song(spec, seconds), SAMPLE_RATE, subtype="PCM_16")
            files.append(path)
        for spec in BACKENDS:
            backend = get_backend(spec)
            audio = [load_audio(f, backend.sample_rate) for f in files]
            backend.embed(audio[0])  # warm-up
            t0 = time.perf_counter()
            frames = [backend.embed(a) for a in audio[1:]]
            embed_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            for f in files[1:]:
                embed_file(backend, f, cache=False)
            file_s = time.perf_counter() - t0
            results[spec] = {"name": backend.name, "cache_id": backend.cache_id, "sample_rate": backend.sample_rate,
                             "dim": backend.dim, "frames_per_clip": float(np.mean([len(f) for f in frames])),
                             "embed_s": embed_s, "file_s": file_s}
    import torch

    return {"backends": results, "clips": n_clips, "seconds": seconds, "torch_threads": torch.get_num_threads(),
            "pinned": os.environ.get("GENRECRAFT_BENCH_PINNED") == "1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 clips")
    parser.add_argument("--clips", type=int, default=None, help="timed clips (default 8)")
    parser.add_argument("--seconds", type=float, default=30.0, help="clip length")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    n_clips = args.clips or (2 if args.quick else 8)
    if args.worker:
        print("RESULT " + json.dumps(worker(n_clips, args.seconds)))
        return
    cmd = [sys.executable, __file__, "--worker", "--clips", str(n_clips), "--seconds", str(args.seconds)]
    from bench.common import report, run_worker

    load_before = os.getloadavg()[0]  # shows whether other processes competed for the core
    result = run_worker(cmd, "embedding worker", memory=False, pin=True)
    load_after = os.getloadavg()[0]
    rows = []
    for spec, r in result["backends"].items():
        audio = result["clips"] * result["seconds"]
        rows.append({
            "backend": spec, "rate": r["sample_rate"], "dim": r["dim"], "frames_per_clip": r["frames_per_clip"],
            "embed_clips_per_s": result["clips"] / r["embed_s"], "embed_rtf": audio / r["embed_s"],
            "file_clips_per_s": result["clips"] / r["file_s"], "file_rtf": audio / r["file_s"]})
    report("embed_quick" if args.quick else "embed", rows, params={
        "clips": result["clips"], "seconds_per_clip": result["seconds"], "pinned_to_one_core": result["pinned"],
        "torch_threads_in_worker": result["torch_threads"],
        "loadavg_1min_before_after": [round(load_before, 2), round(load_after, 2)],
        "cache_ids": {spec: r["cache_id"] for spec, r in result["backends"].items()}})


if __name__ == "__main__":
    main()
