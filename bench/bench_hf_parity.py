"""Parity of the transformers bridge (genrecraft.hf, lora.peft_format), tiny and at MusicGen-small's real shape.

Random weights throughout (none can be downloaded here), float32, CPU:

- ``tiny full``: the tiny LM (dim 64, 2 layers, 4 x 1024 codebooks) with a tiny T5 and a tiny EnCodec, exported
  with ``export_transformers`` and loaded back with ``MusicgenForConditionalGeneration.from_pretrained``;
- ``tiny LoRA via peft``: the same with a random LoRA (r 4, every target) exported by ``export_peft`` and applied
  with ``PeftModel.from_pretrained`` on the base export, against audiocraft with the adapter; the round trip is
  ``import_peft`` giving back the same adapter tensors;
- ``real-shape full``: MusicGen-small's LM config (``solver=musicgen/musicgen_base_32khz``,
  ``model/lm/model_scale=small``: dim 1024, 24 layers, 16 heads, 4 x 2048 codebooks), t5-base's config (12
  layers, d_model 768) and encodec_32khz's config (32 kHz, 50 Hz frames), the whole composite model exported.

Per case: ``max_abs_logit_diff`` (teacher-forced logits of audiocraft vs transformers for the same codes and
description), ``greedy_tokens_equal`` (greedy generation with classifier-free guidance 3.0 on both sides),
``roundtrip_state_dict_equal`` (audiocraft -> transformers folder -> ``hf:`` spec -> the same LM state dict,
bit for bit; for the peft case the adapter tensors) and ``seconds`` (the whole case, export and loads included).

    python bench/bench_hf_parity.py            # all three cases (real shape: ~6 GB peak, a few minutes on 2 cores)
    python bench/bench_hf_parity.py --quick    # the tiny cases only
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import report  # noqa: E402

TEXT = "an upbeat pop song with drums and synth"
CFG_COEF = 3.0


def _codes(lm, steps: int, batch: int = 2):
    import torch

    g = torch.Generator().manual_seed(0)
    return torch.randint(0, lm.card, (batch, lm.n_q, steps), generator=g)


def _audiocraft(model, codes, steps: int):
    """Teacher-forced logits [B, K, S, card] and greedy tokens [1, K, steps] of an audiocraft MusicGen."""
    import torch
    from audiocraft.modules.conditioners import ConditioningAttributes

    with torch.no_grad():
        logits = model.lm(codes, [ConditioningAttributes(text={"description": TEXT}) for _ in range(codes.shape[0])])
        tokens = model.lm.generate(None, [ConditioningAttributes(text={"description": TEXT})], max_gen_len=steps,
                                   use_sampling=False, cfg_coef=CFG_COEF)
    return logits, tokens


def _transformers(hf_model, processor, codes, steps: int):
    """The same from a transformers MusicGen (tokens captured where generate hands them to the audio decoder)."""
    import torch

    B, K, S = codes.shape
    captured = {}
    decode = hf_model.audio_encoder.decode

    def capture(audio_codes, *args, **kwargs):
        captured["codes"] = audio_codes[0]
        return decode(audio_codes, *args, **kwargs)

    hf_model.audio_encoder.decode = capture
    with torch.no_grad():
        inputs = processor(text=[TEXT] * B, padding=True, return_tensors="pt")
        logits = hf_model(**inputs, decoder_input_ids=codes.reshape(B * K, S)).logits.reshape(B, K, S, -1)
        hf_model.generate(**processor(text=[TEXT], return_tensors="pt"), do_sample=False, guidance_scale=CFG_COEF,
                          max_new_tokens=steps + K - 1)
    hf_model.audio_encoder.decode = decode
    return logits, captured["codes"]


def _load(folder):
    from transformers import AutoProcessor, MusicgenForConditionalGeneration

    return MusicgenForConditionalGeneration.from_pretrained(folder).eval(), AutoProcessor.from_pretrained(folder)


def _same_state(a, b) -> bool:
    import torch

    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def case_full(name: str, build, work: Path, seq: int, steps: int) -> dict:
    """Export a model, compare logits and greedy tokens, import it back through the ``hf:`` spec."""
    import torch

    from genrecraft import hf
    from genrecraft.models import load_model

    start = time.perf_counter()
    model = build()
    codes = _codes(model.lm, seq)
    ours_logits, ours_tokens = _audiocraft(model, codes, steps)
    reference = work / f"{name}.lm.pt"
    torch.save(model.lm.state_dict(), reference)
    folder = hf.export_transformers(model, work / name.replace(" ", "-"))
    del model
    gc.collect()
    hf_model, processor = _load(folder)
    theirs_logits, theirs_tokens = _transformers(hf_model, processor, codes, steps)
    del hf_model
    gc.collect()
    back = load_model(f"hf:{folder}")
    same = _same_state(torch.load(reference, mmap=True), back.lm.state_dict())
    del back
    gc.collect()
    return {"case": name, "max_abs_logit_diff": float((ours_logits - theirs_logits).abs().max()),
            "greedy_tokens_equal": bool(torch.equal(ours_tokens, theirs_tokens)),
            "roundtrip_state_dict_equal": same, "seconds": round(time.perf_counter() - start, 1)}


def case_peft(work: Path, seq: int, steps: int) -> dict:
    """A genrecraft adapter through peft vs audiocraft with the adapter; import-peft gives it back."""
    import torch
    from peft import PeftModel

    import lora
    from genrecraft import hf
    from tests.fixtures import t5_models

    start = time.perf_counter()
    model = t5_models.tiny_t5_musicgen(seed=0)
    base = hf.export_transformers(model, work / "peft-base")
    lora.inject(model, lora.LoraConfig(r=4, alpha=8, targets=lora.ALL_TARGETS))
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in lora.lora_parameters(model):
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    adapter = lora.save_adapter(model, work / "adapter", base_model_id="tiny")
    codes = _codes(model.lm, seq)
    ours_logits, ours_tokens = _audiocraft(model, codes, steps)
    peft_dir = lora.export_peft(adapter, work / "peft", base_model_name_or_path=str(base))
    hf_model, processor = _load(base)
    with_peft = PeftModel.from_pretrained(hf_model, peft_dir).eval()
    theirs_logits, theirs_tokens = _transformers(with_peft, processor, codes, steps)
    fresh = t5_models.tiny_t5_musicgen(seed=0)
    lora.import_peft(peft_dir, fresh, work / "adapter-back", base_model_id="tiny")
    same = _same_state(lora.adapter_state_dict(model), lora.adapter_state_dict(fresh))
    return {"case": "tiny LoRA via peft", "max_abs_logit_diff": float((ours_logits - theirs_logits).abs().max()),
            "greedy_tokens_equal": bool(torch.equal(ours_tokens, theirs_tokens)),
            "roundtrip_state_dict_equal": same, "seconds": round(time.perf_counter() - start, 1)}


def build_real_shape():
    """MusicGen-small's architecture with random weights: LM, t5-base-shaped T5, encodec_32khz-shaped EnCodec."""
    from transformers import EncodecConfig, T5Config

    from tests.fixtures import t5_models

    t5 = T5Config(vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12,
                  dropout_rate=0.0)  # t5-base
    codec = EncodecConfig(sampling_rate=32000, audio_channels=1, upsampling_ratios=[8, 5, 4, 4],
                          target_bandwidths=[2.2], codebook_size=2048, codebook_dim=128, hidden_size=128,
                          num_filters=64, num_lstm_layers=2, chunk_length_s=None, overlap=None, normalize=False,
                          norm_type="weight_norm")  # facebook/encodec_32khz
    overrides = ["solver=musicgen/musicgen_base_32khz", "model/lm/model_scale=small",
                 "conditioners.description.t5.name=t5-base", "logging.log_tensorboard=false"]
    return t5_models.random_t5_musicgen(overrides, t5, codec, t5_models.tiny_t5_tokenizer(), seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny cases only")
    parser.add_argument("--seq", type=int, default=50, help="teacher-forced steps (batch 2)")
    parser.add_argument("--steps", type=int, default=32, help="greedy generation steps (frames)")
    args = parser.parse_args()
    from tests.fixtures import t5_models

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-hf-") as tmp:
        work = Path(tmp)
        rows.append(case_full("tiny full", lambda: t5_models.tiny_t5_musicgen(seed=0), work, args.seq, args.steps))
        rows.append(case_peft(work, args.seq, args.steps))
        if not args.quick:
            rows.append(case_full("real-shape full", build_real_shape, work, args.seq, args.steps))
    report("hf_parity" + ("_quick" if args.quick else ""), rows,
           params={"dtype": "float32", "device": "cpu", "batch": 2, "teacher_forced_steps": args.seq,
                   "greedy_steps": args.steps, "cfg_coef": CFG_COEF, "text": TEXT, "lora": "r 4, alpha 8, all targets",
                   "real_shape": "musicgen_base_32khz + model_scale=small LM, t5-base and encodec_32khz configs, "
                                 "random weights"})


if __name__ == "__main__":
    main()
