"""The musicnn tagger networks: CPU per 30 s clip by runtime, and how labels change with fewer patches.

    python bench/bench_musicnn.py                 # all 30 songs of bench_dataset_builder's real set (~10 min)
    python bench/bench_musicnn.py --songs 8

Clips: each song of the real set decoded at 32 kHz and cut into 30 s chunks (the remainder dropped), resampled to
16 kHz, as the builder's labeller sees them.

1. Runtimes: the CPU seconds (``time.process_time``, this process) of one network (MSD and MTT apart) on the 10
   mel patches of a 30 s clip, essentia's TensorflowPredict on the frozen graph (``tensorflow``, the path until
   2026-11-30) against onnxruntime with one intra-op thread (``onnxruntime``), on the first ``--timing-clips``
   clips, three rounds alternating the runtimes (the median round is kept); and the max abs difference of their
   tag probabilities on every 4th clip (``--compare-every``).
2. Fewer patches: tags are the mean over the 10 non-overlapping 3 s patches of a chunk. From the per-patch
   outputs of every chunk: the labels made from every patch (``all``, today's) against those made from every
   other patch for both models (``even``, a patch hop of 374 frames: half the network work) or MSD on the even
   patches and MTT on the odd ones (``alternate``, half the work too). Per variant: the share of chunks whose
   description is identical (same DSP labels, same seed; after the confidence filter the builder applies), the
   mean agreement of each model's top-5 tags, the max tag-probability difference, and how many chunks change side
   of the vocal threshold.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--songs", type=int, default=0, help="the first N songs of the real set (0: all)")
    parser.add_argument("--timing-clips", type=int, default=12)
    parser.add_argument("--compare-every", type=int, default=4, help="tag differences on every Nth clip")
    parser.add_argument("--patches-only", action="store_true", help="only part 2 (musicnn_runtimes.json is kept)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import soxr
    from tqdm import tqdm

    from bench.bench_dataset_builder import real_files
    from bench.common import report
    from dataset_builder.chunk import decode_blocks
    from dataset_builder.label import Labels, describe
    from dataset_builder.label.confidence import confident
    from dataset_builder.label.dsp import DspLabeler
    from dataset_builder.label.musicnn import MODELS, MusicnnModel
    from dataset_builder.label.taggers import MusicnnTagger
    from dataset_builder.vocals import VOCAL_THRESHOLD, vocal_score

    load_start = os.getloadavg()[0]
    files = [path for _, path in real_files()]
    files = files[:args.songs] if args.songs else files
    chunks32 = []
    for path in tqdm(files, desc="decoding", unit="song"):
        audio = np.concatenate(list(decode_blocks(path, 32000)))
        chunks32 += [audio[i:i + 960000] for i in range(0, len(audio) - 960000 + 1, 960000)]
    clips = [soxr.resample(c, 32000, 16000).astype(np.float32) for c in chunks32]

    models = {runtime: [MusicnnModel(name, runtime=runtime) for name in MODELS]
              for runtime in (("onnxruntime",) if args.patches_only else ("tensorflow", "onnxruntime"))}
    patches = [models["onnxruntime"][0].patches(clip) for clip in clips]
    outputs = {"onnxruntime": [[m.predict(p)["tags"] for m in models["onnxruntime"]]
                               for p in tqdm(patches, desc="onnxruntime", unit="clip")]}
    runtime_rows = [] if args.patches_only else runtimes(args, models, patches, outputs)

    # 2. fewer patches, from the onnxruntime per-patch outputs
    dsp = DspLabeler()
    tagger = MusicnnTagger.__new__(MusicnnTagger)  # only its pick(): no models loaded again
    variants = {"all": (slice(None), slice(None)), "even": (slice(0, None, 2), slice(0, None, 2)),
                "alternate": (slice(0, None, 2), slice(1, None, 2))}
    stats = {v: {"identical": 0, "stated": 0, "top5": [], "max_diff": 0.0, "vocal_flips": 0, "examples": []}
             for v in variants}
    for index, (chunk, (msd_patches, mtt_patches)) in enumerate(tqdm(list(zip(chunks32, outputs["onnxruntime"])),
                                                                     desc="labels", unit="chunk")):
        d = dsp(chunk, 32000)
        made = {}
        for variant, (msd_sel, mtt_sel) in variants.items():
            means = [patches_[sel].mean(axis=0) for patches_, sel in ((msd_patches, msd_sel), (mtt_patches, mtt_sel))]
            msd, mtt = ({label: float(p) for label, p in zip(MODELS[name], mean)}
                        for name, mean in zip(MODELS, means))
            labels = Labels(key=d.key, scale=d.scale, key_strength=d.key_strength, bpm=d.bpm,
                            loudness_lufs=d.loudness_lufs, tagger="musicnn", tempo_confidence=d.tempo_confidence)
            for field, value in tagger.pick(msd, mtt, 0.1, 3).items():
                setattr(labels, field, value)
            sure = confident(labels)
            stated = tuple(tuple(sorted(n for n, _ in getattr(sure, f))) for f in ("genres", "moods", "instruments"))
            made[variant] = (np.concatenate(means), describe(sure, seed=index), vocal_score(labels.scores),
                             stated + (tuple(sorted(sure.keywords)),))
        base_means, base_text, base_vocal, base_stated = made["all"]
        for variant, (means, text, vocal, stated) in made.items():
            s = stats[variant]
            s["identical"] += text == base_text
            s["stated"] += stated == base_stated
            s["max_diff"] = max(s["max_diff"], float(np.abs(means - base_means).max()))
            s["vocal_flips"] += (vocal >= VOCAL_THRESHOLD) != (base_vocal >= VOCAL_THRESHOLD)
            for m in range(len(MODELS)):
                top = [set(np.argsort(-x[50 * m:50 * m + 50])[:5]) for x in (means, base_means)]
                s["top5"].append(len(top[0] & top[1]) / 5)
            if text != base_text and len(s["examples"]) < 5:
                s["examples"].append({"chunk": index, "all": base_text, variant: text})
    patch_rows = [{"variant": v, "network_work": "1" if v == "all" else "1/2", "chunks": len(chunks32),
                   "description_identical": round(s["identical"] / len(chunks32), 4),
                   "stated_tags_identical": round(s["stated"] / len(chunks32), 4),
                   "top5_agreement": round(float(np.mean(s["top5"])), 4), "max_prob_diff": round(s["max_diff"], 4),
                   "vocal_flips": s["vocal_flips"]} for v, s in stats.items()]
    params = {"songs": len(files), "chunks": len(chunks32), "minutes_of_music": round(len(chunks32) * 0.5, 1),
              "timer": "process_time", "onnxruntime_threads": 1, "load_1m_start": load_start,
              "load_1m_end": os.getloadavg()[0]}
    if runtime_rows:
        report("musicnn_runtimes", runtime_rows, params=params)
    report("musicnn_patches", patch_rows, params=dict(params, vocal_threshold=VOCAL_THRESHOLD,
                                                      changed_descriptions={v: s["examples"] for v, s in stats.items()
                                                                            if v != "all"}))


def runtimes(args, models, patches, outputs):
    """Part 1: CPU seconds per clip of each runtime, and their tag differences (see the module's doc)."""
    import numpy as np
    from tqdm import tqdm

    from dataset_builder.label.musicnn import MODELS

    timing = patches[:args.timing_clips]
    rounds = {(r, i): [] for r in models for i in range(len(MODELS))}
    for model_list in models.values():
        for model in model_list:
            model.predict(timing[0])  # warm up (first-run allocations)
    for _ in range(3):
        for runtime, model_list in models.items():
            for i, model in enumerate(model_list):
                t = time.process_time()
                for p in timing:
                    model.predict(p)
                rounds[runtime, i].append((time.process_time() - t) / len(timing))
    compared = range(0, len(patches), args.compare_every)
    outputs["tensorflow"] = [[m.predict(patches[c])["tags"] for m in models["tensorflow"]]
                             for c in tqdm(compared, desc="tensorflow", unit="clip")]
    diff = [max(float(np.abs(a[i] - outputs["onnxruntime"][c][i]).max())
                for c, a in zip(compared, outputs["tensorflow"])) for i in range(len(MODELS))]
    runtime_rows = []
    for i, name in enumerate(MODELS):
        tf_s, ort_s = (statistics.median(rounds[r, i]) for r in ("tensorflow", "onnxruntime"))
        runtime_rows.append({"model": name, "tensorflow_cpu_s_per_clip": round(tf_s, 3),
                             "onnxruntime_cpu_s_per_clip": round(ort_s, 3), "speedup": round(tf_s / ort_s, 2),
                             "max_abs_tag_diff": diff[i], "clips_timed": len(timing), "clips_compared": len(compared)})
    return runtime_rows


if __name__ == "__main__":
    main()
