"""LoRA vs full fine-tuning on an LM of MusicGen-small's exact shape (random weights: none can be downloaded here).

Shape: dim 1024, 24 layers, 16 heads, FFN x4, no biases, 4 codebooks of 2048, cross-attention, packed q/k/v
("memory efficient") attention; a lookup-table text conditioner stands in for T5. Each configuration runs in its
own subprocess so that peak memory is its own: on CUDA, max allocated; on CPU, max RSS less the RSS of the
process before the model was built (interpreter, torch, audiocraft: ~1.2 GB that any run pays), with glibc told
to return freed tensors to the OS (MALLOC_MMAP_THRESHOLD_) so that RSS follows live memory.

    python bench/bench_lora.py            # batch 2 x 10 s (500 frames at 50 Hz), 3 timed steps
    python bench/bench_lora.py --quick    # 4 layers, 2 s: a smoke run

Measures per mode (full fine-tuning, LoRA r=8 on self+cross q,k,v,out): trainable fraction, adapter size on disk,
peak training memory, step time (forward + backward + AdamW), and generation speed of the merged model vs base.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FRAME_RATE = 50  # MusicGen's EnCodec: 32 kHz / 640


def _build(layers: int, device: str, checkpointing: bool = False):
    from genrecraft.models import build_lm, compose

    overrides = ["solver=musicgen/genrecraft_tiny", "model/lm/model_scale=small", "transformer_lm.card=2048",
                 "conditioners.description.lut.dim=1024", f"device={device}",
                 f"transformer_lm.checkpointing={'torch' if checkpointing else 'none'}"]
    if layers != 24:
        overrides.append(f"transformer_lm.num_layers={layers}")
    return build_lm(compose(overrides), seed=0)


def _rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _current_rss_gib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30


def run_train(mode: str, layers: int, seconds: float, batch: int, steps: int, device: str,
              checkpointing: bool = False) -> dict:
    """One configuration: build, (inject), train ``steps`` timed steps after one warm-up step."""
    import torch
    from audiocraft.modules.conditioners import ConditioningAttributes

    import lora

    from genrecraft.models import compose

    compose(["solver=musicgen/genrecraft_tiny"])  # imports done: what is allocated from here on is the model's
    process_base = _current_rss_gib()
    torch.manual_seed(0)
    lm = _build(layers, device, checkpointing).train()
    total = sum(p.numel() for p in lm.parameters())
    result = {"mode": mode, "checkpointing": checkpointing}
    if mode == "lora":
        report = lora.inject(lm, lora.LoraConfig(r=8, alpha=16, targets=lora.ATTENTION_TARGETS))
        params = lora.lora_parameters(lm)
        with tempfile.TemporaryDirectory() as tmp:
            lora.save_adapter(lm, tmp, base_model_id="random-musicgen-small-shape")
            result["adapter_mb"] = (Path(tmp) / "adapter_model.safetensors").stat().st_size / 1e6
        result["trainable"] = report.trainable
    else:
        params = list(lm.parameters())
        result["trainable"] = total
        result["adapter_mb"] = float("nan")
    result["trainable_pct"] = 100.0 * result["trainable"] / total
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.01)
    frames = int(seconds * FRAME_RATE)
    codes = torch.randint(0, lm.card, (batch, lm.num_codebooks, frames), device=device)
    conditions = [ConditioningAttributes(text={"description": f"song {i}"}) for i in range(batch)]
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    base_mem = torch.cuda.memory_allocated() / 2**30 if device == "cuda" else _current_rss_gib()
    times = []
    for step in range(steps + 1):
        t0 = time.perf_counter()
        out = lm.compute_predictions(codes, conditions)
        mask = out.mask
        logits = out.logits[mask]
        loss = torch.nn.functional.cross_entropy(logits.float(), codes[mask])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if step:  # the first step warms up allocators and kernels
            times.append(time.perf_counter() - t0)
    result["step_s"] = sum(times) / len(times)
    if device == "cuda":
        result["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
        result["train_mem_gib"] = result["peak_gib"] - base_mem
    else:  # max RSS, less what the interpreter and libraries held before the model was built
        result["peak_gib"] = _rss_gib() - process_base
        result["train_mem_gib"] = _rss_gib() - base_mem
    return result


def run_generate(layers: int, gen_seconds: float, device: str) -> dict:
    """Generation speed: base model, LoRA unmerged, LoRA merged (same weights, same tokens budget)."""
    import torch
    from audiocraft.modules.conditioners import ConditioningAttributes

    import lora

    lm = _build(layers, device).eval()
    conditions = [ConditioningAttributes(text={"description": "bench"})]
    steps = int(gen_seconds * FRAME_RATE)

    def timed() -> float:
        torch.manual_seed(0)
        best = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            with torch.no_grad():
                lm.generate(None, conditions, num_samples=1, max_gen_len=steps, use_sampling=True, top_k=250,
                            cfg_coef=3.0)
            if device == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
        return best

    base = timed()
    lora.inject(lm, lora.LoraConfig(r=8, targets=lora.ATTENTION_TARGETS))
    with torch.no_grad():
        for p in lora.lora_parameters(lm):
            p.normal_(std=0.01)
    unmerged = timed()
    lora.merge(lm)
    merged = timed()
    return {"gen_base_s": base, "gen_lora_unmerged_s": unmerged, "gen_lora_merged_s": merged,
            "merged_vs_base": merged / base, "unmerged_vs_base": unmerged / base}


def main() -> None:
    """Run the LoRA vs full fine-tuning benchmark and write bench/results/lora.json."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 layers, 2 s of audio, 1 timed step")
    parser.add_argument("--device", default="cuda" if _cuda() else "cpu")
    parser.add_argument("--seconds", type=float, default=None, help="audio per item (default 10, 30 on GPU)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    layers = 4 if args.quick else 24
    seconds = args.seconds or (2.0 if args.quick else (30.0 if args.device == "cuda" else 10.0))
    steps = 1 if args.quick else 3
    if args.worker:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        if args.worker == "generate":
            out = run_generate(layers, 1.0 if args.quick else 4.0, args.device)
        else:
            mode, _, ckpt = args.worker.partition("+")
            out = run_train(mode, layers, seconds, 2, steps, args.device, checkpointing=bool(ckpt))
        print("RESULT " + json.dumps(out))
        return

    from bench.common import run_worker

    results = {}
    for worker in ("full", "lora", "full+ckpt", "lora+ckpt", "generate"):
        cmd = [sys.executable, __file__, "--worker", worker, "--device", args.device, "--seconds", str(seconds)]
        if args.quick:
            cmd.append("--quick")
        print(f"running {worker} ...", flush=True)
        results[worker] = run_worker(cmd, worker)

    gen = results["generate"]
    rows = []
    for suffix, label in (("", ""), ("+ckpt", ", grad. checkpointing")):
        full, lo = results["full" + suffix], results["lora" + suffix]
        if not suffix:
            rows += [
                {"metric": "trainable params (%)", "full": full["trainable_pct"], "lora": lo["trainable_pct"],
                 "lora/full": lo["trainable"] / full["trainable"], "target": "lora <= 1 %"},
                {"metric": "adapter file (MB)", "full": "-", "lora": lo["adapter_mb"], "lora/full": "-",
                 "target": "<= 15 MB"},
            ]
        rows += [
            {"metric": f"peak memory (GiB){label}", "full": full["peak_gib"], "lora": lo["peak_gib"],
             "lora/full": lo["peak_gib"] / full["peak_gib"], "target": "<= 0.5x"},
            {"metric": f"training memory above model (GiB){label}", "full": full["train_mem_gib"],
             "lora": lo["train_mem_gib"], "lora/full": lo["train_mem_gib"] / full["train_mem_gib"], "target": "-"},
            {"metric": f"step time (s){label}", "full": full["step_s"], "lora": lo["step_s"],
             "lora/full": lo["step_s"] / full["step_s"], "target": "<= 0.8x"},
        ]
    rows += [
        {"metric": "generation time (s), merged vs base", "full": gen["gen_base_s"], "lora": gen["gen_lora_merged_s"],
         "lora/full": gen["merged_vs_base"], "target": "within 5 %"},
        {"metric": "generation time (s), unmerged vs base", "full": gen["gen_base_s"],
         "lora": gen["gen_lora_unmerged_s"], "lora/full": gen["unmerged_vs_base"], "target": "-"},
    ]
    from bench.common import report

    report("lora_quick" if args.quick else "lora", rows,
           params={"layers": layers, "batch": 2, "seconds": seconds, "frames": int(seconds * FRAME_RATE),
                   "timed_steps": steps, "device": args.device, "lora": "r=8 alpha=16 self+cross q,k,v,out",
                   "optimizer": "AdamW", "raw": results})


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


if __name__ == "__main__":
    main()
