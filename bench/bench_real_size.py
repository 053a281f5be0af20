"""The README's commands at MusicGen-small's real config (stand-in hub, random weights), and the three training
modes at the recipe's batch of 2 x 30 s, on this machine (CPU, fp32).

    python bench/bench_real_size.py                  # every command once, then full / LoRA / QLoRA at 2 x 30 s
    python bench/bench_real_size.py --hub DIR        # reuse a stand-in hub (python -m genrecraft.standin_hub DIR)
    python bench/bench_real_size.py --skip-commands  # only the 2 x 30 s training rows

Writes ``bench/results/real_size.json``: one row per command (``case``, ``ok``, ``seconds``, ``peak_gib``) and one
per training mode at 2 x 30 s (``case``: ``full_2x30``, ``lora_2x30``, ``lora_ckpt_2x30``, ``qlora4_2x30`` with
``ok``, ``s_per_update``, ``peak_gib``). Every case runs in its own process as a user types it; ``peak_gib`` is
that process's peak resident memory (glibc returning freed tensors, so it follows live memory), which on CPU holds
everything a GPU run would keep in GPU memory plus the host-side parts (T5, the codec, the data loader).
The training rows run ``--updates`` updates each (1 by default; 2 puts AdamW's state, created at the first step,
into full fine-tuning's peak) through the real recipes (``genrecraft_small_full``, ``genrecraft_small_lora``), with
only the overrides a CPU needs; each row says its ``updates``. Cases not run keep their last results row.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import typing as tp
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import report, run_dora, run_peak  # noqa: E402

CPU = ["device=cpu", "autocast=false", "dataset.num_workers=0"]
# One update and the smallest end-of-run stages, so each run is mostly its training step.
ONE_UPDATE = ["optim.epochs=1", "optim.updates_per_epoch=1", "schedule.cosine.warmup=0",
              "dataset.valid.num_samples=2", "dataset.evaluate.num_samples=2", "dataset.generate.num_samples=1",
              "generate.lm.gen_duration=1", "generate.lm.prompt_duration=0.5"]
MODES = {  # case -> recipe and overrides (the LoRA recipe checkpoints gradients by default)
    "full_2x30": ("genrecraft_small_full", []),
    "lora_2x30": ("genrecraft_small_lora", ["transformer_lm.checkpointing=none"]),
    "lora_ckpt_2x30": ("genrecraft_small_lora", ["transformer_lm.checkpointing=torch"]),
    "qlora4_2x30": ("genrecraft_small_lora", ["lora.quantize=4bit", "transformer_lm.checkpointing=none"]),
    "qlora4_ckpt_2x30": ("genrecraft_small_lora", ["lora.quantize=4bit", "transformer_lm.checkpointing=torch"]),
}


def environment(hub: Path, work: Path) -> dict:
    """The runs' environment: the stand-in hub, offline, a work dir of their own. This process gets the same work
    dir and hub (it composes the runs' configs to know their signatures)."""
    from genrecraft import standin_hub

    os.environ.pop("AUDIOCRAFT_DORA_DIR", None)
    os.environ.update(standin_hub.env(hub), GENRECRAFT_WORK_DIR=str(work))
    return dict(os.environ, DORA_PACKAGE="genrecraft", TF_CPP_MIN_LOG_LEVEL="3", MALLOC_MMAP_THRESHOLD_="131072")


def write_songs(folder: Path, seconds: float = 31.0, count: int = 5) -> Path:
    """Rendered songs (known key and tempo) and a playlist naming their folder; returns the playlist."""
    import soundfile as sf

    from genrecraft.synth import SongSpec, render_song

    songs = folder / "songs"
    songs.mkdir(parents=True, exist_ok=True)
    keys = [("C", "major", 100), ("A", "minor", 90), ("G", "major", 110), ("E", "minor", 96), ("F", "major", 104)]
    for i, (key, mode, bpm) in enumerate(keys[:count]):
        sf.write(songs / f"song{i}.wav", render_song(SongSpec(key, mode, bpm, "synthpop", seed=i), seconds), 32000)
    playlist = folder / "playlist.txt"
    playlist.write_text(f"{songs}/  genre=synthpop\n")
    return playlist


def command_rows(hub: Path, tmp: Path, env: dict, hub_seconds: tp.Optional[dict]) -> list:
    py = sys.executable
    rows = []
    if hub_seconds:
        rows.append({"case": "standin_hub", **hub_seconds})

    def case(name: str, cmd, **kw):
        print(f"{name} ...", flush=True)
        result = run_peak(cmd, env=env, **kw)
        rows.append({"case": name, "ok": result["ok"], "seconds": round(result["seconds"], 1),
                     "peak_gib": round(result["peak_gib"], 2)})
        if not result["ok"]:
            print(result["log"], file=sys.stderr)
        return result

    data = tmp / "data"
    case("dataset_builder", [py, "-m", "dataset_builder", write_songs(tmp), "--out", data, "--name", "realsize",
                             "--tagger", "none", "--split", "0.4,0.2,0.4"])
    from genrecraft import experiments

    short = ["dset=audio/realsize", *CPU, *ONE_UPDATE, "dataset.segment_duration=5"]
    sigs = {}
    for name, solver, extra in [("train_full", "genrecraft_small_full", []),
                                ("train_lora", "genrecraft_small_lora", []),
                                ("train_qlora4", "genrecraft_small_lora", ["lora.quantize=4bit"])]:
        argv = [f"solver=musicgen/{solver}", *short, *extra]
        sigs[name] = experiments.get_xp(argv).sig
        case(name, [py, "-m", "dora", "-P", "genrecraft", "run", *argv])
    case("resume_full", [py, "-m", "dora", "-P", "genrecraft", "run", "solver=musicgen/genrecraft_small_full",
                         *short])
    case("export", [py, "-m", "genrecraft.export", sigs["train_full"], "--out", tmp / "export_full"])
    adapter = Path(env["GENRECRAFT_WORK_DIR"]) / "dora" / "xps" / sigs["train_lora"] / "adapter"
    case("lora_merge", [py, "-m", "lora", "merge", "--base", "facebook/musicgen-small", "--adapter", adapter,
                        "--out", tmp / "export_lora"])
    case("generate", [py, "-c", "from genrecraft.core import compat; compat.apply()\n"
                                "from audiocraft.models.musicgen import MusicGen\n"
                                f"m = MusicGen.get_pretrained({str(tmp / 'export_full')!r}, device='cpu')\n"
                                "m.set_generation_params(duration=2)\nm.generate(['calm piano'])"])
    models = ["--model", "base=facebook/musicgen-small", "--model", f"full=//sig/{sigs['train_full']}",
              "--model", f"lora=//sig/{sigs['train_lora']}"]
    test = data / "egs" / "test"
    case("eval_compare", [py, "-m", "eval", "compare", *models, "--manifest", test, "--out", tmp / "compare",
                          "--stages", "ce", "--device", "cpu"])
    case("report", [py, "-m", "genrecraft.report", *models, "--manifest", test, "--dataset", data,
                    "--out", tmp / "report", "--num-clips", "2", "--duration", "1", "--listening-prompts", "1",
                    "--listening-duration", "1", "--device", "cpu"])
    return rows


def training_rows(env: dict, device_args: tp.Sequence[str] = CPU, modes=MODES, updates: int = 1) -> list:
    """One row per training mode at batch 2 x 30 s through the real recipes (needs dset=audio/realsize)."""
    rows = []
    for case, (solver, extra) in modes.items():
        print(f"{case} ...", flush=True)
        argv = [f"solver=musicgen/{solver}", "dset=audio/realsize", *device_args, *ONE_UPDATE,
                f"optim.updates_per_epoch={updates}", "dataset.segment_duration=30", "dataset.batch_size=2", *extra]
        try:
            result = run_dora(argv, env)
        except SystemExit as exc:
            print(exc, file=sys.stderr)
            rows.append({"case": case, "ok": False, "s_per_update": None, "peak_gib": None})
            continue
        train = result["train"]
        rows.append({"case": case, "ok": True, "s_per_update": round(train["duration"] / updates, 2),
                     "peak_gib": round(train.get("peak_gpu_gib", result["peak_gib"]), 2), "updates": updates})
    return rows


def kept_rows(rows: list) -> list:
    """``rows`` plus the last results file's rows of the cases not run this time (each row says its updates)."""
    import json

    from bench.common import RESULTS

    path = RESULTS / "real_size.json"
    done = {r["case"] for r in rows}
    old = json.loads(path.read_text())["rows"] if path.exists() else []
    return rows + [r for r in old if r["case"] not in done]


def ratios(rows: list) -> dict:
    by_case = {r["case"]: r for r in rows if r.get("peak_gib")}
    full = by_case.get("full_2x30")
    if not full:
        return {}
    return {f"{case}_peak_vs_full": round(r["peak_gib"] / full["peak_gib"], 3)
            for case, r in by_case.items() if case.endswith("_2x30") and case != "full_2x30"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hub", type=Path, default=None, help="a stand-in hub folder to reuse (built if missing)")
    parser.add_argument("--skip-commands", action="store_true",
                        help="only the 2 x 30 s training rows (the command rows are kept from the last results file)")
    parser.add_argument("--skip-training", action="store_true",
                        help="only the command rows (the training rows are kept from the last results file)")
    parser.add_argument("--modes", default=",".join(MODES),
                        help="training rows to run (comma-separated; the others are kept from the last results file)")
    parser.add_argument("--updates", type=int, default=1,
                        help="updates per training row (1: AdamW's state, created at the first step, is not in "
                             "full fine-tuning's peak; 2 includes it)")
    args = parser.parse_args()
    import time

    from genrecraft import standin_hub

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        hub = args.hub or tmp / "hub"
        hub_row = None
        if not standin_hub.is_built(hub):
            print("stand-in hub ...", flush=True)
            result = run_peak([sys.executable, "-m", "genrecraft.standin_hub", hub])
            if not result["ok"]:
                raise SystemExit(result["log"])
            hub_row = {"ok": True, "seconds": round(result["seconds"], 1), "peak_gib": None}
        env = environment(hub, tmp / "work")
        if args.skip_commands:
            run_peak([sys.executable, "-m", "dataset_builder", write_songs(tmp), "--out", tmp / "data", "--name",
                      "realsize", "--tagger", "none", "--split", "0.4,0.2,0.4"], env=env)
            rows = []
        else:
            rows = command_rows(hub, tmp, env, hub_row)
        started = time.time()
        if not args.skip_training:
            wanted = args.modes.split(",")
            rows += training_rows(env, modes={k: v for k, v in MODES.items() if k in wanted}, updates=args.updates)
        rows = kept_rows(rows)
    report("real_size", rows, params={"device": "cpu", "dtype": "float32", "model": "facebook/musicgen-small "
                                      "(stand-in hub: real config, random weights)", "batch": "2 x 30 s",
                                      "lora": "r 8, alpha 16, self+cross attention q,k,v,out, dropout 0.1",
                                      **({} if args.skip_training else
                                         {"training_wall_s": round(time.time() - started, 1)}), **ratios(rows)})


if __name__ == "__main__":
    main()
