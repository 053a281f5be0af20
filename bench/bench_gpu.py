"""GPU figures at MusicGen-small's real config: memory and speed of full fine-tuning, LoRA and QLoRA at the recipe's
batch of 2 x 30 s, and generation speed of base, merged and unmerged LoRA. One command for a lent GPU machine:

    python bench/bench_gpu.py              # on a CUDA machine, no network needed: ~5-8 minutes
    python bench/bench_gpu.py --dry-run    # anywhere: builds the stand-in hub and data, composes every run, no GPU

It builds what it needs (the stand-in hub of :mod:`genrecraft.standin_hub`: real config, random weights; a small
dataset of rendered songs), then runs each training mode through the real recipes with Dora (3 updates each;
the first one's warm-up is in the average) and reads the peak allocated GPU memory that genrecraft's solvers add
to the train summary (``peak_gpu_gib``), and times 10 s of generation in one process per model. Writes
``bench/results/gpu.json``. Targets: LoRA step <= 0.8x full, LoRA peak memory <= 0.5x full, unmerged LoRA
generation <= 1.15x the base.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_real_size import environment, training_rows, write_songs  # noqa: E402
from bench.common import report, run_peak  # noqa: E402

GPU = ["device=cuda", "dataset.num_workers=2"]
MODES = {
    "full_fp16": ("genrecraft_small_full", ["autocast=true", "autocast_dtype=float16"]),
    "full_bf16": ("genrecraft_small_full", ["autocast=true", "autocast_dtype=bfloat16"]),
    "lora_r8": ("genrecraft_small_lora", ["transformer_lm.checkpointing=none"]),
    "lora_r8_ckpt": ("genrecraft_small_lora", []),  # the recipe's default: gradient checkpointing
    "qlora_4bit": ("genrecraft_small_lora", ["lora.quantize=4bit"]),
}
UPDATES = 3
FRAMES = 1500  # 30 s at 50 Hz
GENERATE = """
import json, time, torch
from genrecraft.core import compat; compat.apply()
import lora
from audiocraft.models.musicgen import MusicGen
model = MusicGen.get_pretrained("facebook/musicgen-small", device="cuda")
model.set_generation_params(duration=10)
def timed(name):
    torch.manual_seed(0); torch.cuda.synchronize(); start = time.time()
    model.generate(["calm piano with strings"] * 2)
    torch.cuda.synchronize(); return {"model": name, "seconds": time.time() - start}
timed("warm-up")
rows = [timed("base")]
lora.inject(model, lora.LoraConfig(r=8, alpha=16))
with torch.no_grad():
    for p in lora.lora_parameters(model): p.normal_(0, 0.01)
rows.append(timed("lora_unmerged"))
lora.merge(model)
rows.append(timed("lora_merged"))
print("RESULT " + json.dumps(rows))
"""


def generation_rows(env: dict) -> list:
    result = run_peak([sys.executable, "-c", GENERATE], env=env)
    if not result["ok"]:
        print(result["log"], file=sys.stderr)
        return [{"case": "generate_10s", "ok": False}]
    line = next(l for l in result["log"].splitlines() if l.startswith("RESULT "))
    timed = json.loads(line[len("RESULT "):])
    base = timed[0]["seconds"]
    return [{"case": f"generate_10s_{t['model']}", "ok": True, "seconds": round(t["seconds"], 2),
             "vs_base": round(t["seconds"] / base, 3)} for t in timed]


def dry_run(env: dict) -> list:
    """Compose every run the GPU benchmark makes (its configs and overrides), run nothing on a GPU."""
    from genrecraft import experiments

    rows = []
    for case, (solver, extra) in MODES.items():
        argv = [f"solver=musicgen/{solver}", "dset=audio/realsize", *GPU, "optim.epochs=1",
                f"optim.updates_per_epoch={UPDATES}", "dataset.segment_duration=30", "dataset.batch_size=2", *extra]
        xp = experiments.get_xp(argv)
        rows.append({"case": case, "ok": True, "sig": xp.sig, "solver": str(xp.cfg.solver),
                     "segment": float(xp.cfg.dataset.segment_duration), "batch": int(xp.cfg.dataset.batch_size)})
    compile(GENERATE, "generate", "exec")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="build and compose everything, run no GPU code")
    parser.add_argument("--hub", type=Path, default=None, help="a stand-in hub folder to reuse")
    args = parser.parse_args()
    from genrecraft import standin_hub

    started = time.time()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        hub = standin_hub.build(args.hub or tmp / "hub")
        env = environment(hub, tmp / "work")
        data = run_peak([sys.executable, "-m", "dataset_builder", write_songs(tmp), "--out", tmp / "data",
                         "--name", "realsize", "--tagger", "none", "--split", "0.4,0.2,0.4"], env=env)
        if not data["ok"]:
            raise SystemExit(data["log"])
        if args.dry_run:
            rows = dry_run(env)
            print(json.dumps(rows, indent=1))
            print(f"dry run ok in {time.time() - started:.0f} s: every GPU run composes; nothing was measured")
            return
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device: run with --dry-run, or on a GPU machine")
        rows = training_rows(env, device_args=GPU, modes=MODES, updates=UPDATES)
        for row in rows:
            if row.get("s_per_update"):
                row["tokens_per_s"] = round(2 * FRAMES * 4 / row["s_per_update"])
        rows += generation_rows(env)
    by_case = {r["case"]: r for r in rows}
    params = {"device": torch.cuda.get_device_name(0), "batch": "2 x 30 s", "updates": UPDATES,
              "wall_s": round(time.time() - started, 1)}
    full = by_case.get("full_fp16", {})
    for name in ("lora_r8", "lora_r8_ckpt", "qlora_4bit"):
        lora = by_case.get(name, {})
        if full.get("peak_gib") and lora.get("peak_gib"):
            params[f"{name}_peak_vs_full"] = round(lora["peak_gib"] / full["peak_gib"], 3)
            params[f"{name}_step_vs_full"] = round(lora["s_per_update"] / full["s_per_update"], 3)
    report("gpu", rows, params=params)


if __name__ == "__main__":
    main()
