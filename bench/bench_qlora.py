"""QLoRA vs LoRA on an LM of MusicGen-small's exact shape: the frozen base in 4 bit (NF4) or 8 bit.

    python bench/bench_qlora.py            # 24 layers, batch 2 x 10 s, gradient checkpointing, 2 timed steps
    python bench/bench_qlora.py --quick    # 4 layers, 2 s

Same model, data and optimizer as ``bench_lora.py`` (LoRA r 8 on self+cross q,k,v,out, AdamW), with gradient
checkpointing on, which is how QLoRA is meant to run: the dequantized matrices then live one layer at a time.
Each configuration runs in its own process. Memory: the resident size of the model after injection (the frozen
base at rest) and the peak resident size while training, both less the process's size before the model was
built; the kernel's peak counter (VmHWM) is reset after the model is built and quantized, so the full-precision
weights that quantization starts from do not count.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_lora import FRAME_RATE, _build, _current_rss_gib  # noqa: E402

MODES = {"lora": None, "qlora-8bit": "8bit", "qlora-4bit": "4bit"}


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as fh:  # "5": reset the peak resident set size (Linux >= 4.0)
        fh.write("5")


def _peak_gib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    raise RuntimeError("no VmHWM in /proc/self/status")


def run(mode: str, layers: int, seconds: float, steps: int) -> dict:
    import gc

    import torch
    from audiocraft.modules.conditioners import ConditioningAttributes

    import lora
    from genrecraft.models import compose

    compose(["solver=musicgen/genrecraft_tiny"])
    process_base = _current_rss_gib()
    torch.manual_seed(0)
    lm = _build(layers, "cpu", checkpointing=True).train()
    report = lora.inject(lm, lora.LoraConfig(r=8, alpha=16, targets=lora.ATTENTION_TARGETS, quantize=MODES[mode]))
    gc.collect()
    at_rest = _current_rss_gib() - process_base
    _reset_peak()
    opt = torch.optim.AdamW(lora.lora_parameters(lm), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.01)
    frames = int(seconds * FRAME_RATE)
    codes = torch.randint(0, lm.card, (2, lm.num_codebooks, frames))
    conditions = [ConditioningAttributes(text={"description": f"song {i}"}) for i in range(2)]
    times, losses = [], []
    for step in range(steps + 1):
        t0 = time.perf_counter()
        out = lm.compute_predictions(codes, conditions)
        loss = torch.nn.functional.cross_entropy(out.logits[out.mask].float(), codes[out.mask])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss))
        if step:
            times.append(time.perf_counter() - t0)
    q = report.quantized or {}
    return {"mode": mode, "model_at_rest_gib": at_rest, "peak_training_gib": _peak_gib() - process_base,
            "step_s": sum(times) / len(times), "quantized_matrices": q.get("weights", 0),
            "quantized_mib": q.get("bytes_after", 0) / 2**20, "unquantized_mib": q.get("bytes_before", 0) / 2**20,
            "losses": losses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 layers, 2 s of audio, 1 timed step")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    layers, seconds, steps = (4, 2.0, 1) if args.quick else (24, 10.0, 2)
    if args.worker:
        print("RESULT " + json.dumps(run(args.worker, layers, seconds, steps)))
        return
    from bench.common import run_worker

    results = {}
    for mode in MODES:
        print(f"running {mode} ...", flush=True)
        cmd = [sys.executable, __file__, "--worker", mode] + (["--quick"] if args.quick else [])
        results[mode] = run_worker(cmd, mode)
    ref = results["lora"]
    rows = [{"mode": mode, "model at rest (GiB)": r["model_at_rest_gib"],
             "peak training (GiB)": r["peak_training_gib"],
             "peak vs LoRA": r["peak_training_gib"] / ref["peak_training_gib"],
             "step (s)": r["step_s"], "step vs LoRA": r["step_s"] / ref["step_s"],
             "first loss": r["losses"][0]} for mode, r in results.items()]
    from bench.common import report

    report("qlora_quick" if args.quick else "qlora", rows,
           params={"layers": layers, "batch": 2, "seconds": seconds, "frames": int(seconds * FRAME_RATE),
                   "timed_steps": steps, "device": "cpu", "gradient_checkpointing": True,
                   "lora": "r=8 alpha=16 self+cross q,k,v,out", "raw": results})


if __name__ == "__main__":
    main()
