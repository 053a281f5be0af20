"""LoRA configuration: which projections of MusicGen's LM to adapt, and how."""

from __future__ import annotations

import dataclasses
import typing as tp

ATTENTION_TARGETS = tuple(f"{attn}.{proj}" for attn in ("self_attn", "cross_attention")
                          for proj in ("q", "k", "v", "out"))
FFN_TARGETS = ("linear1", "linear2")
LM_TARGETS = ("emb", "linears")
ALL_TARGETS = ATTENTION_TARGETS + FFN_TARGETS + LM_TARGETS
DEFAULT_TARGETS = ATTENTION_TARGETS
QUANTIZE_CHOICES = (None, "8bit", "4bit")


@dataclasses.dataclass
class LoraConfig:
    """LoRA hyper-parameters and targets, validated on creation.

    Targets name projections inside audiocraft's ``LMModel``:

    - ``self_attn.q|k|v|out`` and ``cross_attention.q|k|v|out``: the attention projections of every transformer
      layer. q, k and v live in ONE packed parameter ``in_proj_weight`` [3*dim, dim] in audiocraft; each is
      adapted separately here.
    - ``linear1``, ``linear2``: the feed-forward block of every layer.
    - ``emb``: the codebook embeddings (one per codebook); ``linears``: the output heads (one per codebook).
    """

    r: int = dataclasses.field(default=8, metadata={"help": "rank of the update B @ A"})
    alpha: float = dataclasses.field(default=16.0, metadata={"help": "scale: alpha / r (alpha / sqrt(r) with rslora)"})
    dropout: float = dataclasses.field(default=0.0, metadata={"help": "dropout on the adapter's input, in [0, 1)"})
    targets: tp.Tuple[str, ...] = dataclasses.field(default=DEFAULT_TARGETS,
                                                    metadata={"help": f"projections to adapt, from {ALL_TARGETS}"})
    layers: tp.Optional[tp.Tuple[int, ...]] = dataclasses.field(
        default=None, metadata={"help": "transformer layer indices to adapt (None: all)"})
    rslora: bool = dataclasses.field(default=False, metadata={"help": "rank-stabilised scaling alpha / sqrt(r)"})
    quantize: tp.Optional[str] = dataclasses.field(
        default=None, metadata={"help": "QLoRA: keep the frozen transformer weights in 4bit (NF4) or 8bit "
                                        "(needs bitsandbytes; CUDA or CPU)"})

    def __post_init__(self):
        if isinstance(self.targets, str):
            self.targets = (self.targets,)
        self.targets = tuple(self.targets)
        if self.layers is not None:
            self.layers = tuple(int(i) for i in self.layers)
        if not isinstance(self.r, int) or self.r < 1:
            raise ValueError(f"LoraConfig.r={self.r!r} must be a positive integer (typical: 4 to 64)")
        if not self.alpha > 0:
            raise ValueError(f"LoraConfig.alpha={self.alpha!r} must be positive (typical: r or 2*r)")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoraConfig.dropout={self.dropout!r} must be in [0, 1)")
        if not self.targets:
            raise ValueError(f"LoraConfig.targets is empty; choose from {', '.join(ALL_TARGETS)}")
        unknown = [t for t in self.targets if t not in ALL_TARGETS]
        if unknown:
            raise ValueError(f"LoraConfig.targets has unknown names {unknown}; available: {', '.join(ALL_TARGETS)}")
        if len(set(self.targets)) != len(self.targets):
            raise ValueError(f"LoraConfig.targets={self.targets} lists a target twice")
        if self.layers is not None and (not self.layers or min(self.layers) < 0):
            raise ValueError(f"LoraConfig.layers={self.layers} must be None or non-negative layer indices")
        if self.quantize not in QUANTIZE_CHOICES:
            raise ValueError(f"LoraConfig.quantize={self.quantize!r}: use one of {QUANTIZE_CHOICES}")

    @property
    def scaling(self) -> float:
        return self.alpha / (self.r ** 0.5) if self.rslora else self.alpha / self.r

    def to_dict(self) -> tp.Dict[str, tp.Any]:
        out = dataclasses.asdict(self)
        out["targets"] = list(self.targets)
        out["layers"] = list(self.layers) if self.layers is not None else None
        return out

    @classmethod
    def from_dict(cls, data: tp.Mapping[str, tp.Any]) -> "LoraConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown LoRA config keys {sorted(unknown)}; known: {sorted(names)}")
        return cls(**data)
