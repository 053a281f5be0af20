"""Generate music from a text prompt with any MusicGen genrecraft can load, LoRA adapters at any strength.

    python -m genrecraft.generate "lo-fi hip hop, mellow piano" --model facebook/musicgen-small --out clip.wav
    python -m genrecraft.generate "city pop" --model facebook/musicgen-small --adapter adapters/jpop --scale 0.6
    python -m genrecraft.generate "city pop" --model //sig/abc123 --adapter a/jpop:0.8 --adapter a/piano:0.3 --merge
    python -m genrecraft.generate --prompts prompts.txt --model export/jpop --num-clips 2 --out clips/
    python -m genrecraft.generate "keep going" --model //sig/abc123 --prompt-audio intro.wav --duration 8

Clips are generated in batches of ``--gen-batch-size``; batch b is generated right after ``torch.manual_seed(seed + b)``
(as the evaluation's clips are), so the same model, prompts, seed and settings give the same audio. A clip
depends on its batch: compare models with the same prompts, seed and batch size.

Adapters are applied at run time, not merged: ``--adapter DIR`` loads one at ``--scale`` (default 1: as trained;
0: the base model), ``--adapter DIR:S`` at strength S, several ``--adapter`` stack (the model computes the base
plus each adapter's update at its strength). ``--merge`` folds them into the weights first: the same audio up to
float rounding, faster when generating many clips. ``--scale`` also sets the strength of an adapter the model
spec already carries (``BASE@adapter`` or a LoRA run).

Output: ``--out clip.wav`` for one clip; with several clips ``clip-000.wav``, ``clip-001.wav``, ...; an ``--out``
without a suffix is a folder (``clip-000.wav`` inside). ``--format wav|flac|mp3`` (default: the suffix of
``--out``, else wav; WAV and FLAC are 16-bit, MP3 needs the ffmpeg command). Every clip gets a JSON sidecar
(``clip.json``: prompt, model, adapters and strengths, seed, sampling settings) and the same JSON in its
``comment`` tag. With ``--prompt-audio`` the clip is the prompt followed by ``--duration`` seconds of
continuation.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
import typing as tp
from pathlib import Path

import numpy as np

import lora
from eval.generate import GenerateConfig, generate_batch
from genrecraft.core.audio import load_audio
from lora.runtime import adapter_name, adapter_names, add_adapter, describe, set_scale

from . import __version__
from .core import cli
from .core.atomic import atomic_path, write_json
from .models import SPEC_HELP, default_device, load_model, parse_model_spec

logger = logging.getLogger(__name__)

FORMATS = ("wav", "flac", "mp3")


class GenerationError(ValueError):
    """A user error in what was asked to generate (a bad flag value, a missing file)."""


@dataclasses.dataclass(frozen=True)
class AdapterArg:
    """A LoRA adapter folder and the strength to apply it at (``None``: the ``--scale`` default)."""

    folder: Path
    scale: tp.Optional[float] = None

    @classmethod
    def parse(cls, text: str) -> "AdapterArg":
        """``DIR`` or ``DIR:S`` (``adapters/jpop:0.7``); a folder whose own name has a ``:`` is read whole."""
        head, sep, tail = text.rpartition(":")
        if sep and head and not Path(text).exists():
            try:
                return cls(Path(head), float(tail))
            except ValueError:
                pass
        return cls(Path(text))

    def describe(self) -> str:
        return str(self.folder) if self.scale is None else f"{self.folder}:{self.scale:g}"


def load_generator(spec: str, adapters: tp.Sequence[AdapterArg] = (), scale: float = 1.0, device: str = "cpu",
                   merge: bool = False):
    """Load the MusicGen named by ``spec`` (:data:`genrecraft.models.SPEC_HELP`) with ``adapters`` stacked on it.

    ``scale`` is the strength of the spec's own adapter (if it has one) and of every adapter without its own.
    With ``merge`` the adapters are folded into the weights (``lora.merge``). Raises ``ValueError`` (a bad spec),
    ``FileNotFoundError`` (a missing adapter folder), ``lora.AdapterMismatchError`` or
    :class:`genrecraft.models.ModelUnavailableError`.
    """

    parsed = parse_model_spec(spec)  # a bad spec fails here, before anything loads
    for adapter in adapters:
        lora.read_adapter_config(adapter.folder)  # a missing or damaged adapter too
    model = load_model(parsed, device=device)
    if lora.has_lora(model.lm):
        set_scale(model.lm, scale)
    for adapter in adapters:
        add_adapter(model.lm, adapter.folder, name=_unique_name(model.lm, adapter.folder),
                    scale=scale if adapter.scale is None else adapter.scale)
    if merge and lora.has_lora(model.lm):
        lora.merge(model.lm)
    return model


def _unique_name(lm, folder: Path) -> str:
    name, taken, i = adapter_name(folder), set(adapter_names(lm)), 2
    base = name
    while name in taken:
        name, i = f"{base}-{i}", i + 1
    return name


def read_prompts(path: tp.Union[str, Path]) -> tp.List[str]:
    """Prompts from a text file, one per line; blank lines and lines starting with ``#`` are skipped."""
    path = Path(path)
    if not path.is_file():
        raise GenerationError(f"prompts file {path} does not exist (one prompt per line)")
    prompts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    prompts = [p for p in prompts if p and not p.startswith("#")]
    if not prompts:
        raise GenerationError(f"prompts file {path} has no prompts (one per line; '#' starts a comment)")
    return prompts


def load_prompt_audio(path: tp.Union[str, Path], sample_rate: int, channels: int = 1):
    """Audio to continue, as a [1, channels, T] float tensor at ``sample_rate``."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise GenerationError(f"--prompt-audio {path} does not exist")
    audio = load_audio(path, sample_rate)
    if len(audio) < sample_rate // 10:
        raise GenerationError(f"--prompt-audio {path} is shorter than 0.1 s: give a longer opening to continue")
    return torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None, None].expand(-1, channels, -1)


@dataclasses.dataclass
class Clip:
    """One generated clip: ``audio`` is [C, T] float32 at ``sample_rate``."""

    index: int
    prompt: str
    seed: int  # the seed of its batch
    audio: np.ndarray
    sample_rate: int


def generate(model, prompts: tp.Sequence[str], config, prompt_audio=None) -> tp.Iterator[Clip]:
    """Generate one clip per prompt with ``config`` (an :class:`eval.generate.GenerateConfig`: seed, sampling,
    duration, batch size), yielding each :class:`Clip` as its batch finishes. ``prompt_audio`` [1, C, T] (at the
    model's rate) is continued: each clip is that audio followed by ``config.duration`` seconds."""
    sr = int(model.sample_rate)
    prompt_seconds = 0.0 if prompt_audio is None else prompt_audio.shape[-1] / sr
    longest = float(getattr(model, "max_duration", float("inf")))
    if prompt_seconds >= longest:  # audiocraft would stop on an assertion ("Prompt is longer than audio to generate")
        raise GenerationError(f"--prompt-audio is {prompt_seconds:.1f} s; this model continues at most "
                              f"{longest:g} s of audio (its max_duration): trim it, e.g. to its last "
                              f"{longest / 3:.0f} s")
    config.apply(model, prompt_seconds + config.duration)
    for b, start in enumerate(range(0, len(prompts), config.batch_size)):
        batch = list(prompts[start:start + config.batch_size])
        prompt = None if prompt_audio is None else prompt_audio.expand(len(batch), -1, -1).to(model.device)
        wav = generate_batch(model, batch, config.seed + b, prompt, sr, progress=config.progress)
        audio = wav.detach().float().cpu().numpy()
        for row, text in enumerate(batch):
            yield Clip(index=start + row, prompt=text, seed=config.seed + b, audio=audio[row], sample_rate=sr)


def output_paths(out: tp.Union[str, Path], count: int, fmt: str) -> tp.List[Path]:
    """Where ``count`` clips go for ``--out`` (see the module docstring)."""
    out = Path(out)
    if not out.suffix:
        return [out / f"clip-{i:03d}.{fmt}" for i in range(count)]
    if count == 1:
        return [out.with_suffix(f".{fmt}")]
    return [out.with_name(f"{out.stem}-{i:03d}.{fmt}") for i in range(count)]


def write_clip(path: tp.Union[str, Path], audio: np.ndarray, sample_rate: int, metadata: tp.Mapping[str, tp.Any],
               fmt: tp.Optional[str] = None) -> Path:
    """Write ``audio`` [C, T] (or [T]) as 16-bit WAV/FLAC or MP3, atomically, clipped to [-1, 1], with
    ``metadata`` in the file's comment tag and in a JSON sidecar (``path`` with the suffix ``.json``)."""
    import soundfile as sf

    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower() or "wav"
    if fmt not in FORMATS:
        raise GenerationError(f"format {fmt!r}: use one of {', '.join(FORMATS)}")
    data = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    data = data.T if data.ndim == 2 else data
    path.parent.mkdir(parents=True, exist_ok=True)
    comment = json.dumps(metadata, sort_keys=True)
    title = str(metadata.get("prompt", ""))[:200]
    with atomic_path(path) as tmp:
        if fmt == "mp3":
            ffmpeg = shutil.which("ffmpeg")
            if ffmpeg is None:
                raise GenerationError("--format mp3 needs the ffmpeg command (apt-get install ffmpeg); "
                                      "or use --format wav")
            with tempfile.TemporaryDirectory(prefix="genrecraft-mp3-") as scratch:
                wav = Path(scratch) / "clip.wav"
                sf.write(str(wav), data, sample_rate, subtype="PCM_16", format="WAV")
                proc = subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(wav), "-b:a", "192k",
                                       "-metadata", f"title={title}", "-metadata", f"comment={comment}",
                                       "-f", "mp3", str(tmp)], capture_output=True, text=True)
                if proc.returncode != 0:
                    raise RuntimeError(f"ffmpeg could not write {path}: {proc.stderr.strip()[-500:]}")
        else:
            with sf.SoundFile(str(tmp), "w", samplerate=sample_rate, channels=1 if data.ndim == 1 else data.shape[1],
                              subtype="PCM_16", format=fmt.upper()) as f:
                f.title, f.comment, f.software = title, comment, f"genrecraft {metadata.get('genrecraft_version')}"
                f.write(data)
    write_json(path.with_suffix(".json"), dict(metadata))
    return path


def clip_metadata(model, clip: Clip, config, model_spec: str, extra: tp.Optional[tp.Mapping[str, tp.Any]] = None
                  ) -> tp.Dict[str, tp.Any]:
    """What a clip's sidecar records: enough to make the same clip again."""

    info = {"prompt": clip.prompt, "model": model_spec, "seed": clip.seed, "index": clip.index,
            "batch_size": config.batch_size, "sample_rate": clip.sample_rate,
            "seconds": round(clip.audio.shape[-1] / clip.sample_rate, 4), "settings": config.sampling(),
            "adapters": describe(model.lm) if lora.has_lora(model.lm) else [],
            "merged": bool(lora.has_lora(model.lm) and lora.is_merged(model.lm)),
            "genrecraft_version": __version__}
    info.update(extra or {})
    return info


def build_parser(prog: str = "python -m genrecraft.generate") -> argparse.ArgumentParser:
    d = GenerateConfig()
    parser = cli.parser(prog, __doc__, epilog=SPEC_HELP)
    parser.add_argument("prompt", nargs="?", help="the text prompt (or --prompts FILE)")
    parser.add_argument("--prompts", type=Path, help="a text file with one prompt per line, generated in batches")
    cli.add_model(parser, help="the model: [NAME=]SPEC (see the specs below)")
    parser.add_argument("--adapter", action="append", default=[], metavar="DIR[:S]", type=AdapterArg.parse,
                        help="a LoRA adapter folder, optionally with its strength; repeat to stack adapters")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="strength of every adapter without its own :S (0: base, 1: as trained)")
    parser.add_argument("--merge", action="store_true", help="fold the adapters into the weights (faster)")
    cli.add_out(parser, required=False, type=Path, default=Path("clip.wav"),
                help="output file, or a folder when it has no suffix")
    parser.add_argument("--format", choices=FORMATS, default=None, help="audio format (default: from --out, else wav)")
    cli.add_num_clips(parser, 1, help="clips per prompt")
    cli.add_duration(parser, d.duration)
    parser.add_argument("--prompt-audio", type=Path, help="audio to continue (the clip starts with it)")
    cli.add_seed(parser, d.seed, help="seed of the first batch (batch b uses seed + b)")
    parser.add_argument("--gen-batch-size", type=int, default=d.batch_size, help="clips generated together")
    cli.retired(parser, "--batch-size", to="--gen-batch-size", type=int)
    cli.add_sampling(parser, d)
    cli.add_device(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    if (args.prompt is None) == (args.prompts is None):
        raise ValueError("give a prompt or --prompts FILE (one of the two)")
    if args.num_clips < 1:
        raise ValueError(f"--num-clips {args.num_clips} must be at least 1")
    (_, spec), = cli.named([args.model])
    try:
        prompts = [args.prompt] if args.prompt is not None else read_prompts(args.prompts)
        prompts = [p for p in prompts for _ in range(args.num_clips)]
        fmt = args.format or (args.out.suffix.lstrip(".").lower() if args.out.suffix else "wav")
        if fmt not in FORMATS:
            raise GenerationError(f"--out {args.out}: unknown format {fmt!r}; use a .wav, .flac or .mp3 name or "
                                  "--format")
        config = GenerateConfig(n=len(prompts), duration=args.duration, prompt_duration=0.0,
                                batch_size=args.gen_batch_size, seed=args.seed, top_k=args.top_k, top_p=args.top_p,
                                temperature=args.temperature, cfg_coef=args.cfg_coef, progress=False)
        if args.prompt_audio is not None and not args.prompt_audio.is_file():
            raise GenerationError(f"--prompt-audio {args.prompt_audio} does not exist")
        t0 = time.time()
        model = load_generator(spec, args.adapter, scale=args.scale, device=args.device or default_device(),
                               merge=args.merge)
        print(f"loaded {spec} in {time.time() - t0:.1f} s", file=sys.stderr)
        prompt_audio = None if args.prompt_audio is None else load_prompt_audio(
            args.prompt_audio, int(model.sample_rate), model.audio_channels)
        paths = output_paths(args.out, len(prompts), fmt)
        extra = {"prompt_audio": str(args.prompt_audio.resolve()) if args.prompt_audio else None,
                 "adapter_args": [a.describe() for a in args.adapter]}
        for clip in generate(model, prompts, config, prompt_audio):
            meta = clip_metadata(model, clip, config, spec, extra)
            written = write_clip(paths[clip.index], clip.audio, clip.sample_rate, meta, fmt)
            print(written)
    except KeyError as exc:  # an adapter name that is not on the model
        raise ValueError(str(exc).strip("'\"")) from exc
    return 0


def main(argv: tp.Optional[tp.List[str]] = None, prog: str = "python -m genrecraft.generate") -> int:
    """Generate music from a text prompt (see ``--help``)."""
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    return cli.run(run, args)


if __name__ == "__main__":
    sys.exit(main())
