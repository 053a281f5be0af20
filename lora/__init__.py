"""LoRA for audiocraft's MusicGen, including its packed q/k/v and cross-attention.

>>> from lora import LoraConfig, inject, save_adapter, load_adapter, merge, remove
>>> report = inject(musicgen.lm, LoraConfig(r=8, alpha=16))       # doctest: +SKIP
>>> save_adapter(musicgen, "adapters/jpop", base_model_id="facebook/musicgen-small")   # doctest: +SKIP

See :mod:`lora.layers` for how the packed ``in_proj_weight`` is reached.
"""

from .config import ALL_TARGETS, ATTENTION_TARGETS, DEFAULT_TARGETS, FFN_TARGETS, LM_TARGETS, LoraConfig
from .inject import (InjectionReport, adapter_state_dict, base_state_dict, fingerprint, get_config, get_lm, has_lora,
                     inject, is_merged, lora_parameters, merge, remove, same_base, unmerge)
from .io import AdapterMismatchError, load_adapter, merged_state_dict, read_adapter_config, save_adapter
from .peft_format import export_peft, import_peft, read_peft_adapter
from .quantize import QuantizationUnavailable
from .runtime import add_adapter, adapter_names, get_scale, merge_adapters, set_scale

__all__ = [
    "LoraConfig", "ALL_TARGETS", "ATTENTION_TARGETS", "DEFAULT_TARGETS", "FFN_TARGETS", "LM_TARGETS",
    "InjectionReport", "get_lm", "inject", "merge", "unmerge", "remove", "is_merged", "has_lora", "get_config",
    "adapter_state_dict", "base_state_dict", "lora_parameters", "fingerprint", "same_base",
    "save_adapter", "load_adapter", "read_adapter_config", "merged_state_dict",
    "AdapterMismatchError", "QuantizationUnavailable", "export_peft", "import_peft", "read_peft_adapter",
    "add_adapter", "adapter_names", "get_scale", "set_scale", "merge_adapters",
]
