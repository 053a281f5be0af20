"""Generation speed as a user meets it: time to the first clip and clips per minute, base and with LoRA at run time.

    python bench/bench_generate.py                 # the tiny model on CPU, 5 s clips
    python bench/bench_generate.py --real-shape    # MusicGen-small's LM shape, random weights (GPU when there is one)
    python bench/bench_generate.py --quick         # a smoke run

Rows, per model and mode:

- ``cli_first_clip_s`` (tiny only): wall time of ``python -m genrecraft.generate "..." --model tiny:0`` in a fresh
  process, imports included: what a user waits for one clip;
- ``load_s``: building or loading the model (and its adapters) in-process; ``first_clip_s``: load plus the first
  batch; ``clips_per_min`` and ``audio_x_realtime`` (seconds of audio per wall second) over the timed batches
  after it.

Modes: ``base``; ``lora`` (one r=8 adapter on attention and FFN at strength 0.8, applied at run time, not merged);
``stacked`` (two adapters at their own strengths); ``merged`` (the two folded in with ``--merge``); ``scale0``
(the adapters at strength 0: the base's cost should come back). Adapters have random weights. The real-shape LM is
built from audiocraft's ``model_scale=small`` config (dim 1024, 24 layers, 2048-entry codebooks, 420 M parameters)
with a lookup-table text conditioner and the debug codec in place of T5 and EnCodec (neither can be downloaded
here); both run once per step, so the LM dominates as it does with the real ones.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

PROMPT = "mellow lo-fi hip hop with a warm piano"


def _real_shape_musicgen(device: str):
    from audiocraft.models import builders
    from audiocraft.models.musicgen import MusicGen

    from genrecraft.models import _debug_codec_config, build_lm, compose

    cfg = compose(["solver=musicgen/genrecraft_tiny", "model/lm/model_scale=small", "transformer_lm.card=2048",
                   "conditioners.description.lut.dim=1024", f"device={device}"])
    lm = build_lm(cfg, seed=0)
    codec_cfg = _debug_codec_config(32000)  # audiocraft's debug codec architecture, with EnCodec's 2048 codes
    codec_cfg.rvq.bins, codec_cfg.device = 2048, device
    codec = builders.get_compression_model(codec_cfg).to(device).eval()
    return MusicGen(name="musicgen-small-shape", compression_model=codec, lm=lm, max_duration=30.0)


def _adapter(model, folder: Path, targets, r: int, seed: int) -> Path:
    """A random adapter for ``model`` saved to ``folder`` (injected, saved, removed: no copy of the model)."""
    import torch

    import lora

    lora.inject(model.lm, lora.LoraConfig(r=r, alpha=2.0 * r, targets=targets))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in lora.lora_parameters(model.lm):
            p.copy_((torch.randn(p.shape, generator=g) * 0.02).to(p.device))
    out = lora.save_adapter(model.lm, folder, base_model_id="bench")
    lora.remove(model.lm)
    model.lm.requires_grad_(False)
    return out


def _timed_generation(model, config, batches: int):
    """(seconds of the first batch, seconds per later batch)."""
    from genrecraft.generate import generate

    prompts = [PROMPT] * config.batch_size
    t0 = time.perf_counter()
    list(generate(model, prompts, config))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(batches):
        list(generate(model, prompts, config))
    return first, (time.perf_counter() - t0) / batches


def bench_model(name: str, build, device: str, seconds: float, batch_size: int, batches: int, workdir: Path):
    import torch

    import lora
    from eval.generate import GenerateConfig
    from lora.runtime import add_adapter, set_scale

    config = GenerateConfig(n=batch_size, duration=seconds, prompt_duration=0.0, batch_size=batch_size, seed=0,
                            progress=False)
    t0 = time.perf_counter()
    model = build()
    load = time.perf_counter() - t0
    a1 = _adapter(model, workdir / f"{name}-a1", lora.ATTENTION_TARGETS + lora.FFN_TARGETS, 8, 1)
    a2 = _adapter(model, workdir / f"{name}-a2", lora.ATTENTION_TARGETS, 4, 2)
    rows = []

    def row(mode, load_s):
        first, per_batch = _timed_generation(model, config, batches)
        if device == "cuda":
            torch.cuda.synchronize()
        rows.append({"model": name, "mode": mode, "device": device, "clip_s": seconds, "batch": batch_size,
                     "load_s": round(load_s, 3), "first_clip_s": round(load_s + first, 3),
                     "clips_per_min": round(60.0 * batch_size / per_batch, 2),
                     "audio_x_realtime": round(seconds * batch_size / per_batch, 3)})
        print(rows[-1], flush=True)

    row("base", load)
    t0 = time.perf_counter()
    add_adapter(model.lm, a1, name="a1", scale=0.8, check_base=False)
    row("lora", load + time.perf_counter() - t0)
    t0 = time.perf_counter()
    add_adapter(model.lm, a2, name="a2", scale=0.5, check_base=False)
    row("stacked", load + time.perf_counter() - t0)
    set_scale(model.lm, 0.0)
    row("scale0", load)
    set_scale(model.lm, 0.8, "a1")
    set_scale(model.lm, 0.5, "a2")
    t0 = time.perf_counter()
    lora.merge(model.lm)
    row("merged", load + time.perf_counter() - t0)
    del model
    return rows


def cli_first_clip(seconds: float, workdir: Path) -> float:
    out = workdir / "cli.wav"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "genrecraft.generate", PROMPT, "--model", "tiny:0", "--duration",
                    str(seconds), "--device", "cpu", "--out", str(out)], check=True, capture_output=True,
                   cwd=Path(__file__).resolve().parents[1])
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real-shape", action="store_true", help="also MusicGen-small's LM shape (random weights)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per clip (default 5)")
    parser.add_argument("--batch-size", type=int, default=4, help="clips per batch (default 4)")
    parser.add_argument("--batches", type=int, default=2, help="timed batches after the first (default 2)")
    parser.add_argument("--quick", action="store_true", help="1 s clips, batch 2, 1 timed batch")
    args = parser.parse_args()
    import torch
    from common import report

    from genrecraft.core import compat
    from genrecraft.models import tiny_musicgen

    compat.apply()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.quick:
        args.seconds, args.batch_size, args.batches = 1.0, 2, 1
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        workdir = Path(tmp)
        cli = cli_first_clip(args.seconds, workdir)
        rows.append({"model": "tiny", "mode": "cli_first_clip", "device": "cpu", "clip_s": args.seconds, "batch": 1,
                     "load_s": None, "first_clip_s": round(cli, 3), "clips_per_min": None, "audio_x_realtime": None})
        print(rows[-1], flush=True)
        rows += bench_model("tiny", lambda: tiny_musicgen(seed=0, device=device), device, args.seconds,
                            args.batch_size, args.batches, workdir)
        if args.real_shape:
            rows += bench_model("musicgen-small-shape", lambda: _real_shape_musicgen(device), device, args.seconds,
                                args.batch_size, args.batches, workdir)
    report("generate", rows, params={"seconds": args.seconds, "batch_size": args.batch_size,
                                     "timed_batches": args.batches, "real_shape": args.real_shape,
                                     "torch_threads": torch.get_num_threads(),
                                     "load_average_at_end": os.getloadavg()[0]})


if __name__ == "__main__":
    main()
