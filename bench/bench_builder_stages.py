"""Where the dataset builder's time goes: CPU seconds per stage per minute of music, on songs of the real set.

    python bench/bench_builder_stages.py            # 3 songs of bench_dataset_builder's real set (~13 min)
    python bench/bench_builder_stages.py --songs 6

Each stage of one song's way through the builder is run on its own, in this process, one core, and timed in CPU
seconds (``time.process_time``; the FLAC conversion runs in ffmpeg, so its CPU time is the child's): the FLAC
conversion yt-dlp's FFmpegExtractAudio does, decoding and resampling to 32 kHz, writing the chunk WAVs, and per
30 s chunk: reading it back, the DSP labels (resampling to 44.1 kHz, key, tempo, the backbeat octave check,
loudness) and the musicnn taggers (resampling to 16 kHz, the mel patches, the MSD and MTT networks), and the
description. ``before`` is the path until 2026-11-30 (main a9cf11a: the musicnn networks run by essentia's
bundled TensorFlow, TensorflowPredict on the frozen graphs), ``after`` the current one (onnxruntime, one thread);
the other stages are the same code in both; tags agree to ~1e-6 (tests, bench_musicnn.py).
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--songs", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import soundfile as sf
    import soxr

    from bench.bench_dataset_builder import real_files
    from bench.common import report
    from dataset_builder.chunk import decode_blocks
    from dataset_builder.label import LabelConfig, Labeler, describe
    from dataset_builder.label.dsp import ESSENTIA_RATE, backbeat_octave
    from dataset_builder.label.musicnn import MODELS, MusicnnModel

    files = real_files()
    by_package = collections.defaultdict(list)
    for pkg, path in files:
        by_package[pkg].append(path)
    packages = sorted(by_package)  # one song of each package in turn
    picked = [by_package[packages[i % len(packages)]][i // len(packages)] for i in range(args.songs)]
    cpu: collections.Counter = collections.Counter()
    before: collections.Counter = collections.Counter()

    def timed(counter, stage, fn, *a):
        t = time.process_time()
        out = fn(*a)
        counter[stage] += time.process_time() - t
        return out

    t = time.process_time()
    labeler = Labeler(LabelConfig(tagger="musicnn"))
    start_cpu = time.process_time() - t
    msd, mtt = labeler.tagger.models
    old_models = [MusicnnModel(name, runtime="tensorflow") for name in MODELS]

    seconds = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for song in picked:
            flac = Path(tmp) / "song.flac"
            child = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", song, "-vn", "-c:a", "flac", str(flac)], check=True)
            after_child = resource.getrusage(resource.RUSAGE_CHILDREN)
            convert = (after_child.ru_utime + after_child.ru_stime) - (child.ru_utime + child.ru_stime)
            cpu["FLAC conversion (ffmpeg)"] += convert
            before["FLAC conversion (ffmpeg)"] += convert
            audio = timed(cpu, "decode + resample to 32 kHz", lambda: np.concatenate(list(decode_blocks(flac, 32000))))
            seconds += len(audio) / 32000
            chunks = [audio[i:i + 960000] for i in range(0, len(audio) - 960000 + 1, 960000)]
            paths = [Path(tmp) / f"c{i}.wav" for i in range(len(chunks))]
            timed(cpu, "write chunk WAVs", lambda: [sf.write(p, c, 32000, subtype="PCM_16")
                                                    for p, c in zip(paths, chunks)])
            for path in paths:
                x32 = timed(cpu, "read chunk WAV", lambda: sf.read(path, dtype="float32"))[0]
                x = timed(cpu, "resample to 44.1 kHz", lambda: np.ascontiguousarray(
                    soxr.resample(x32, 32000, ESSENTIA_RATE), dtype=np.float32))
                timed(cpu, "key (KeyExtractor)", labeler.dsp._key, x)
                bpm, beats, *_ = timed(cpu, "tempo (RhythmExtractor2013 degara)", labeler.dsp._rhythm, x)
                timed(cpu, "backbeat octave check", backbeat_octave, x, float(bpm), beats)
                timed(cpu, "loudness (BS.1770)", labeler.dsp.loudness, x32, 32000)
                x16 = timed(cpu, "resample to 16 kHz", lambda: soxr.resample(x32, 32000, 16000).astype(np.float32))
                patches = timed(cpu, "musicnn mel patches", msd.patches, x16)
                timed(cpu, "musicnn MSD network", msd.tags_of, patches)
                timed(cpu, "musicnn MTT network", mtt.tags_of, patches)
                for name, model in zip(("MSD", "MTT"), old_models):
                    timed(before, f"musicnn {name} network", model.tags_of, patches)
                labels = timed(cpu, "whole labeller (Labeler)", labeler, x32, 32000)
                timed(cpu, "description", describe, labels)
    minutes = seconds / 60
    shared = ["FLAC conversion (ffmpeg)", "decode + resample to 32 kHz", "write chunk WAVs", "read chunk WAV",
              "resample to 44.1 kHz", "key (KeyExtractor)", "tempo (RhythmExtractor2013 degara)",
              "backbeat octave check", "loudness (BS.1770)", "resample to 16 kHz", "musicnn mel patches",
              "description"]
    for stage in shared:
        before[stage] = cpu[stage]
    order = shared[:-1] + ["musicnn MSD network", "musicnn MTT network", "description"]
    total_after = sum(v for k, v in cpu.items() if k != "whole labeller (Labeler)")
    total_before = sum(before.values())
    rows = [{"stage": s, "before_cpu_s_per_min": round(before.get(s, 0.0) / minutes, 3),
             "after_cpu_s_per_min": round(cpu.get(s, 0.0) / minutes, 3),
             "after_share": f"{100 * cpu.get(s, 0.0) / total_after:.1f} %"} for s in order]
    rows.append({"stage": "total", "before_cpu_s_per_min": round(total_before / minutes, 3),
                 "after_cpu_s_per_min": round(total_after / minutes, 3), "after_share": "100 %"})
    rows.append({"stage": "(check) whole Labeler per minute", "before_cpu_s_per_min": "",
                 "after_cpu_s_per_min": round(cpu["whole labeller (Labeler)"] / minutes, 3), "after_share": ""})
    rows.append({"stage": "(once per worker) start the labeller", "before_cpu_s_per_min": "",
                 "after_cpu_s_per_min": f"{start_cpu:.1f} s", "after_share": ""})
    report("builder_stages", rows, params={"songs": [str(p) for p in picked], "minutes_of_music": round(minutes, 2),
                                           "load_1m": os.getloadavg()[0], "timer": "process_time, one core"})


if __name__ == "__main__":
    main()
