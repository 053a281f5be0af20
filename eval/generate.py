"""Clips for evaluation: the same prompts, seeds and settings for every model.

For a test manifest and a model, :func:`generate_for_eval` writes

- ``<out>/<label>/text/<i>.wav``: music from clip *i*'s description (text-to-music), for FAD and the feature
  distance against the real test clips;
- ``<out>/<label>/continuation/<i>.wav``: the model's continuation of the first ``prompt_duration`` seconds of
  real clip *i* (with its description), the prompt itself cut off, and once per output folder
  ``<out>/reference/continuation/<i>.wav``: what really followed that prompt, for the paired mel distance;
- ``<out>/prompts.jsonl``: clip *i*'s source, description and seeds.

Clip *i* is manifest entry ``i % len(manifest)``. Batch *b* is generated after ``torch.manual_seed(seed + b)``
(continuations: ``seed + 100003 + b``), so with the same settings every model draws from the same seeds. Files
are float WAVs written atomically at the model's rate, as generated (no normalisation); a rerun skips the clips
already there.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import typing as tp
from pathlib import Path

from genrecraft.core.atomic import write_text
from genrecraft.core.audio import load_audio, read_manifest, write_wav

logger = logging.getLogger(__name__)

REAL_LABEL = "real audio"  # the row of real continuations: what a perfect model would score
CONTINUATION_SEED_OFFSET = 100003


def _field(default: tp.Any, help_text: str) -> tp.Any:
    return dataclasses.field(default=default, metadata={"help": help_text})


@dataclasses.dataclass(frozen=True)
class SamplingSettings:
    """How MusicGen generates: the one settings type of evaluation clips (:class:`GenerateConfig`), listening tests
    (:class:`scripts.listening.pairs.GenerationSettings`) and ``genrecraft generate``; the command-line flags
    (``--duration --seed --gen-batch-size --temperature --top-k --top-p --cfg-coef``) map to these fields."""

    duration: float = _field(10.0, "seconds of generated audio per clip")
    seed: int = _field(0, "seed of the first batch (batch b: seed + b)")
    batch_size: int = _field(4, "clips generated together")
    use_sampling: bool = _field(True, "sample (else argmax)")
    top_k: int = _field(250, "top-k sampling (MusicGen's default)")
    top_p: float = _field(0.0, "nucleus sampling threshold; 0 uses top_k")
    temperature: float = _field(1.0, "softmax temperature")
    cfg_coef: float = _field(3.0, "classifier-free guidance coefficient")

    def __post_init__(self):
        if not self.duration > 0:
            raise ValueError(f"duration={self.duration} must be positive")
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size} must be >= 1")
        if self.top_k < 0 or not 0.0 <= self.top_p <= 1.0 or not self.temperature > 0:
            raise ValueError(f"sampling settings top_k={self.top_k}, top_p={self.top_p}, "
                             f"temperature={self.temperature}: need top_k >= 0, 0 <= top_p <= 1, temperature > 0")

    def apply(self, model, duration: tp.Optional[float] = None) -> None:
        """Set these sampling settings on a MusicGen, generating ``duration`` seconds (default ``self.duration``)."""
        model.set_generation_params(duration=self.duration if duration is None else duration,
                                    use_sampling=self.use_sampling, top_k=self.top_k, top_p=self.top_p,
                                    temperature=self.temperature, cfg_coef=self.cfg_coef)

    def sampling(self) -> tp.Dict[str, tp.Any]:
        """The settings that decide what a model generates from a prompt and seed (for sidecars and caches)."""
        return {k: getattr(self, k) for k in ("duration", "use_sampling", "top_k", "top_p", "temperature",
                                              "cfg_coef")}


@dataclasses.dataclass(frozen=True)
class GenerateConfig(SamplingSettings):
    """How evaluation clips are generated (identical for every compared model): the sampling settings, how many
    clips, and the seconds of real audio that prompt each continuation."""

    n: int = _field(16, "clips per model (cycling over the manifest)")
    prompt_duration: float = _field(3.0, "seconds of real audio that prompt each continuation (0: no continuations)")
    progress: bool = _field(True, "show a progress bar")

    def __post_init__(self):
        super().__post_init__()
        if self.n < 1:
            raise ValueError(f"n={self.n} must be >= 1")
        if self.prompt_duration < 0:
            raise ValueError(f"prompt_duration={self.prompt_duration} must be >= 0 (0: no continuations)")

    @property
    def continuations(self) -> bool:
        return self.prompt_duration > 0


@dataclasses.dataclass
class Prompt:
    """One evaluation prompt: a test clip's description and, for continuations, its opening seconds."""

    index: int
    source: str
    description: tp.Optional[str]
    seed: int
    continuation_seed: int

    @property
    def stem(self) -> str:
        return f"{self.index:04d}"


def prompts_for(manifest: tp.Union[str, Path], config: GenerateConfig) -> tp.List[Prompt]:
    """The ``config.n`` prompts drawn from a test manifest (deterministic)."""
    entries = read_manifest(manifest)
    out = []
    for i in range(config.n):
        entry = entries[i % len(entries)]
        batch = i // config.batch_size
        out.append(Prompt(index=i, source=str(entry["path"]), description=entry["info"].get("description"),
                          seed=config.seed + batch, continuation_seed=config.seed + CONTINUATION_SEED_OFFSET + batch))
    return out


def generate_batch(model, descriptions: tp.Sequence[tp.Optional[str]], seed: int, prompt=None,
                   prompt_sample_rate: tp.Optional[int] = None, progress: bool = False):
    """One batch right after ``torch.manual_seed(seed)``: text-to-music, or the continuation of ``prompt``
    [B, C, T] audio at ``prompt_sample_rate`` (the output then starts with the prompt). Returns [B, C, T] on the
    model's device; the length and sampling are what ``GenerateConfig.apply`` set."""
    import torch

    torch.manual_seed(seed)
    with torch.no_grad():
        if prompt is None:
            return model.generate(list(descriptions), progress=progress)
        return model.generate_continuation(prompt, prompt_sample_rate, list(descriptions), progress=progress)


def generate_for_eval(model, label: str, manifest: tp.Union[str, Path], out_dir: tp.Union[str, Path],
                      config: tp.Optional[GenerateConfig] = None) -> tp.Dict[str, tp.List[Path]]:
    """Generate the evaluation clips of one model (see the module docstring); returns their paths by kind
    (``text``, ``continuation``, ``reference``). ``model`` may be a ``MusicGen`` or a function returning one
    (called only if something is left to generate)."""
    import torch
    from tqdm import tqdm

    config = config or GenerateConfig()
    if not label or "/" in label or label in ("reference", "prompts.jsonl"):
        raise ValueError(f"label={label!r}: use a short name such as 'base' or 'lora' (no '/', not 'reference')")
    out_dir = Path(out_dir)
    prompts = prompts_for(manifest, config)
    write_text(out_dir / "prompts.jsonl", "".join(json.dumps(dataclasses.asdict(p)) + "\n" for p in prompts))
    paths = {"text": [out_dir / label / "text" / f"{p.stem}.wav" for p in prompts]}
    if config.continuations:
        paths["continuation"] = [out_dir / label / "continuation" / f"{p.stem}.wav" for p in prompts]
        paths["reference"] = [out_dir / "reference" / "continuation" / f"{p.stem}.wav" for p in prompts]
    todo = [k for k in paths if k != "reference" and not all(p.exists() for p in paths[k])]
    todo_ref = "reference" in paths and not all(p.exists() for p in paths["reference"])
    if not todo and not todo_ref:
        return paths
    if callable(model) and not hasattr(model, "generate"):
        model = model()
    sr = int(model.sample_rate)
    batches = [prompts[i:i + config.batch_size] for i in range(0, len(prompts), config.batch_size)]
    if "text" in todo:
        config.apply(model)
        for batch in tqdm(batches, desc=f"generating ({label}, text)", disable=not config.progress):
            targets = [paths["text"][p.index] for p in batch]
            if all(t.exists() for t in targets):
                continue
            wav = generate_batch(model, [p.description for p in batch], batch[0].seed).cpu().numpy()
            for target, clip in zip(targets, wav):
                write_wav(target, clip, sr)
    if config.continuations:
        prompt_len = int(round(config.prompt_duration * sr))
        cont_len = int(round(config.duration * sr))
        config.apply(model, config.prompt_duration + config.duration)
        for batch in tqdm(batches, desc=f"generating ({label}, continuation)", disable=not config.progress):
            targets = [paths["continuation"][p.index] for p in batch]
            refs = [paths["reference"][p.index] for p in batch]
            if all(t.exists() for t in targets + refs):
                continue
            real = [load_audio(p.source, sr, duration=config.prompt_duration + config.duration) for p in batch]
            # a real continuation of at least 1 s (or of the whole generated length, when that is shorter)
            needed = prompt_len + min(sr, cont_len)
            short = [p.source for p, r in zip(batch, real) if len(r) < needed]
            if short:
                raise ValueError(f"clip {short[0]} is shorter than the prompt plus {min(sr, cont_len) / sr:g} s of "
                                 f"continuation ({needed / sr:.1f} s): lower prompt_duration")
            for ref, r in zip(refs, real):
                if not ref.exists():
                    write_wav(ref, r[prompt_len:prompt_len + cont_len], sr)
            if all(t.exists() for t in targets):
                continue
            prompt = torch.stack([torch.from_numpy(r[:prompt_len]) for r in real])[:, None]
            prompt = prompt.expand(-1, model.audio_channels, -1)
            wav = generate_batch(model, [p.description for p in batch], batch[0].continuation_seed, prompt,
                                 sr).cpu().numpy()
            for target, clip in zip(targets, wav):
                write_wav(target, clip[..., prompt_len:prompt_len + cont_len], sr)
    return paths
