"""QLoRA (frozen base kept in 8 or 4 bit) availability checks.

Quantising the frozen base needs bitsandbytes and a CUDA device. On any other machine :func:`inject` stops with
:class:`QuantizationUnavailable` before touching the model. The quantised path itself is not implemented yet
(it could not be tested on the machines this project is built on), and says so rather than training in full
precision behind the user's back.
"""

from __future__ import annotations

import importlib.util


class QuantizationUnavailable(RuntimeError):
    """QLoRA was asked for where it cannot run."""


def check_quantization_available(mode: str) -> None:
    import torch

    if not torch.cuda.is_available():
        raise QuantizationUnavailable(
            f"LoraConfig.quantize={mode!r} needs a CUDA GPU (bitsandbytes' {mode} kernels run on CUDA only); this "
            "machine has none. Use quantize=None (plain LoRA: the frozen base stays in fp32/bf16).")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise QuantizationUnavailable(
            f"LoraConfig.quantize={mode!r} needs bitsandbytes: `pip install bitsandbytes` on the CUDA machine.")
    raise QuantizationUnavailable(
        f"LoraConfig.quantize={mode!r}: QLoRA on audiocraft's packed attention is not implemented in this version "
        "of genrecraft. Use quantize=None; LoRA r=8 on MusicGen-small trains in about 8 GB of GPU memory.")
