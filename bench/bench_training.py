"""Training speed and memory through the real Dora solvers: full fine-tuning vs LoRA at MusicGen-small shape.

    python bench/bench_training.py           # 24 layers, dim 1024, batch 2 x 20 s, 4 timed updates per solver
    python bench/bench_training.py --quick   # 4 layers, 5 s segments

The LM has MusicGen-small's transformer (dim 1024, 24 layers, 16 heads, packed q/k/v, cross-attention) with random
weights (none can be downloaded here). The codec is audiocraft's debug model (25 Hz, 4 x 400 codes), so 20 s
segments give 500 frames, as 10 s do at MusicGen's 50 Hz, and the output heads are 400 wide instead of 2048.
Each run is ``dora -P genrecraft run`` in its own process: updates per second come from the solver's train
summary, peak memory is the process's peak RSS (VmHWM; glibc returning freed tensors to the OS).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    layers, segment, updates = (4, 5.0, 2) if args.quick else (24, 20.0, 4)
    from bench.common import run_dora
    from genrecraft.synth import SongSpec, write_dataset

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, GENRECRAFT_WORK_DIR=str(Path(tmp) / "work"), TF_CPP_MIN_LOG_LEVEL="3",
                   MALLOC_MMAP_THRESHOLD_="131072", DORA_PACKAGE="genrecraft")
        os.environ["GENRECRAFT_WORK_DIR"] = env["GENRECRAFT_WORK_DIR"]
        from genrecraft.core import paths

        specs = [SongSpec(k, "major", 100 + 5 * i, "synthpop", seed=i) for i, k in enumerate("CDEFGA")]
        write_dataset(Path(tmp) / "data", "bench_train", specs, seconds=segment + 1,
                      config_dir=paths.user_config_dir())
        shape = ["model/lm/model_scale=small", "conditioners.description.lut.dim=1024", "dset=audio/bench_train",
                 f"dataset.segment_duration={segment}", "dataset.batch_size=2", f"optim.updates_per_epoch={updates}",
                 "optim.epochs=1", "schedule.lr_scheduler=null", "dataset.valid.num_samples=2", "dataset.generate.num_samples=1",
                 "generate.lm.gen_duration=0.2", "generate.lm.prompt_duration=0.1"]
        if layers != 24:
            shape.append(f"transformer_lm.num_layers={layers}")
        results = {}
        print("full fine-tuning ...", flush=True)
        base = ["solver=musicgen/genrecraft_tiny_full", *shape]
        results["full"] = run_dora(base, env)
        print("LoRA ...", flush=True)
        lora = ["solver=musicgen/genrecraft_tiny_lora", *shape, "lora.r=8", "lora.alpha=16",
                "lora.targets=[self_attn.q,self_attn.k,self_attn.v,self_attn.out,cross_attention.q,"
                "cross_attention.k,cross_attention.v,cross_attention.out]"]
        results["lora"] = run_dora(lora, env)
    rows = []
    for name, r in results.items():
        rows.append({"solver": "musicgen_ft (full)" if name == "full" else "musicgen_lora (r 8, attention)",
                     "layers": layers, "batch": "2 x %gs" % segment, "updates": updates,
                     "updates_per_s": updates / r["train"]["duration"],
                     "s_per_update": r["train"]["duration"] / updates, "peak_rss_gib": r["peak_gib"]})
    rows.append({"solver": "LoRA / full", "layers": layers, "batch": "", "updates": "",
                 "updates_per_s": rows[1]["updates_per_s"] / rows[0]["updates_per_s"],
                 "s_per_update": rows[1]["s_per_update"] / rows[0]["s_per_update"],
                 "peak_rss_gib": rows[1]["peak_rss_gib"] / rows[0]["peak_rss_gib"]})
    from bench.common import report

    report("training_quick" if args.quick else "training", rows,
           params={"device": "cpu", "codec": "debug (25 Hz, 4 x 400)", "raw": {name: {k: v for k, v in r.items() if k not in ("log", "history")}
                                                                     for name, r in results.items()}})


if __name__ == "__main__":
    main()
