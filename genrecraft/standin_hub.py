"""A stand-in Hugging Face hub cache for the real model's path: MusicGen-small, its EnCodec and T5, random weights.

    python -m genrecraft.standin_hub DIR          # then: export HF_HOME=DIR HF_HUB_OFFLINE=1

No model weights can be downloaded on a machine without internet, yet the commands a user types
(``dora -P genrecraft run solver=musicgen/genrecraft_small_full ...``, export, eval, the report) load
``facebook/musicgen-small`` and ``t5-base`` through huggingface_hub. This module writes, under ``DIR/hub``, the
files those loaders read, in the real formats and the hub cache's layout (``models--<org>--<name>/refs/main`` and
``snapshots/<rev>/``), with random weights:

- ``facebook/musicgen-small`` in audiocraft's export format: ``state_dict.bin`` (``xp.cfg`` yaml + the LM's
  ``best_state``), built with audiocraft's builders from ``solver=musicgen/musicgen_base_32khz`` and
  ``model/lm/model_scale=small`` (420 M parameters: the released checkpoint's names and shapes), and
  ``compression_state_dict.bin``: the 32 kHz EnCodec of ``solver=compression/encodec_musicgen_32khz``
  (4 codebooks of 2048). Random codebooks would send every frame to one code, so each codebook is drawn from
  the encoder's own residuals on rendered music, and tokens vary as they do with the real codec;
- ``t5-base``: its real config (an encoder of 12 layers, d_model 768) with random weights, and a tokenizer built
  offline: a small sentencepiece model (T5's special ids: pad 0, eos 1, unk 2) trained on a few lines of text.

Everything the real code does then runs unchanged with ``HF_HOME=DIR HF_HUB_OFFLINE=1``: nothing in genrecraft
knows it is not the real hub. The outputs are noise, and the figures measured on them are of speed, memory and
plumbing, never of quality. Building takes 1-3 minutes, ~2.5 GB on disk and ~5 GB of memory; :func:`build` runs
it in a child process (huggingface_hub reads ``HF_HOME`` when imported) and skips it when ``DIR`` is complete.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import typing as tp
from pathlib import Path

from .core import compat
from .models import compose
from .synth import SongSpec, render_song

MUSICGEN = "facebook/musicgen-small"
T5 = "t5-base"
FORMAT = 1  # bump when the files written change: an older stand-in is then rebuilt
DONE = "genrecraft-standin.json"

# t5-base's config.json on the hub (the fields a T5EncoderModel reads).
T5_BASE_CONFIG = {
    "architectures": ["T5ForConditionalGeneration"], "model_type": "t5", "d_model": 768, "d_ff": 3072, "d_kv": 64,
    "num_layers": 12, "num_decoder_layers": 12, "num_heads": 12, "vocab_size": 32128,
    "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128, "dropout_rate": 0.1,
    "layer_norm_epsilon": 1e-6, "initializer_factor": 1.0, "feed_forward_proj": "relu", "is_encoder_decoder": True,
    "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0, "n_positions": 512,
}
TOKENIZER_TEXT = [
    "happy upbeat pop song with synthesizers and drums", "sad piano ballad in E minor, 70 bpm",
    "energetic electronic dance music, 128 bpm, in A minor", "lo-fi hip hop beat with warm keys",
    "J-pop with bright guitars and a catchy melody", "ambient drone with slow pads",
    "rock track with distorted guitars, bass and drums, 140 BPM", "calm acoustic folk, in G major",
    "orchestral film score with strings and brass", "jazz trio with walking bass and brushes",
    "music track, synthpop, in C major, 100 bpm", "chiptune video game music, fast arpeggios",
]


def repo_folder(root: tp.Union[str, Path], repo_id: str) -> Path:
    """``<root>/hub/models--org--name``: where huggingface_hub caches a model repository."""
    return Path(root) / "hub" / ("models--" + repo_id.replace("/", "--"))


def _snapshot(root: Path, repo_id: str) -> Path:
    """Create ``refs/main`` and an empty snapshot folder for ``repo_id``; returns the snapshot folder."""
    rev = hashlib.sha1(f"genrecraft-standin/{repo_id}/{FORMAT}".encode()).hexdigest()
    folder = repo_folder(root, repo_id)
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(rev)
    snapshot = folder / "snapshots" / rev
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


def is_built(root: tp.Union[str, Path]) -> bool:
    """Whether ``root`` holds a complete stand-in of this format."""
    try:
        return json.loads((Path(root) / DONE).read_text()).get("format") == FORMAT
    except (OSError, ValueError):
        return False


def env(root: tp.Union[str, Path]) -> tp.Dict[str, str]:
    """The environment variables that point huggingface_hub (and so audiocraft and transformers) at ``root``."""
    return {"HF_HOME": str(Path(root).resolve()), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def build(root: tp.Union[str, Path], force: bool = False) -> Path:
    """Build the stand-in hub in ``root`` (in a child process) unless it is already complete; returns ``root``."""
    root = Path(root).resolve()
    if is_built(root) and not force:
        return root
    child_env = dict(os.environ, **env(root))
    proc = subprocess.run([sys.executable, "-m", "genrecraft.standin_hub", str(root), "--in-process"],
                          env=child_env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"building the stand-in hub in {root} failed:\n{proc.stderr[-4000:]}")
    return root


def _write_t5(root: Path) -> None:
    import sentencepiece as spm
    import torch
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    snapshot = _snapshot(root, T5)
    model_file = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(TOKENIZER_TEXT * 4), model_writer=model_file,
                                   vocab_size=100, hard_vocab_limit=False, model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                   character_coverage=1.0, minloglevel=2)
    (snapshot / "spiece.model").write_bytes(model_file.getvalue())
    tokenizer = T5Tokenizer(vocab_file=str(snapshot / "spiece.model"))
    tokenizer.save_pretrained(str(snapshot))
    torch.manual_seed(0)
    config = T5Config(**{k: v for k, v in T5_BASE_CONFIG.items() if k != "architectures"})
    config.architectures = T5_BASE_CONFIG["architectures"]
    T5EncoderModel(config).save_pretrained(str(snapshot))
    config.save_pretrained(str(snapshot))  # the full model's config, as on the hub


def _fit_codebooks(codec, seconds: float = 60.0) -> None:
    """Draw each RVQ codebook from the residuals the encoder gives on rendered music (see the module docstring)."""
    import numpy as np
    import torch

    clips = [render_song(SongSpec(key, mode, bpm, style, seed=i), seconds / 4, codec.sample_rate)
             for i, (key, mode, bpm, style) in enumerate([("C", "major", 100, "synthpop"), ("A", "minor", 84, "lofi"),
                                                          ("E", "minor", 140, "synthpop"), ("F", "major", 72, "lofi")])]
    audio = torch.from_numpy(np.concatenate(clips)).float()[None, None]
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        residual = codec.encoder(audio)[0].t()  # [frames, dim]
        for layer in codec.quantizer.vq.layers:
            book = layer._codebook
            picks = torch.randint(0, residual.shape[0], (book.embed.shape[0],), generator=generator)
            noise = 0.05 * residual.std() * torch.randn(book.embed.shape, generator=generator)
            book.embed.copy_(residual[picks] + noise)
            book.embed_avg.copy_(book.embed)
            book.cluster_size.fill_(1.0)
            book.inited.fill_(1.0)
            residual = residual - book.embed[book.quantize(residual)]


def _write_musicgen(root: Path) -> None:
    import audiocraft
    import torch
    from audiocraft.models import builders
    from omegaconf import OmegaConf

    snapshot = _snapshot(root, MUSICGEN)
    torch.manual_seed(0)
    codec_cfg = compose(["solver=compression/encodec_musicgen_32khz", "device=cpu"])
    codec = builders.get_compression_model(codec_cfg).eval()
    _fit_codebooks(codec)
    torch.save({"best_state": codec.state_dict(), "xp.cfg": OmegaConf.to_yaml(codec_cfg),
                "version": audiocraft.__version__, "exported": True}, snapshot / "compression_state_dict.bin")
    del codec
    lm_cfg = compose(["solver=musicgen/musicgen_base_32khz", "model/lm/model_scale=small", "device=cpu"])
    lm = builders.get_lm_model(lm_cfg)
    torch.save({"best_state": lm.state_dict(), "xp.cfg": OmegaConf.to_yaml(lm_cfg),
                "version": audiocraft.__version__, "exported": True}, snapshot / "state_dict.bin")


def _build_in_process(root: Path) -> None:
    if os.environ.get("HF_HOME") != str(root) or os.environ.get("HF_HUB_OFFLINE") != "1":
        raise RuntimeError("the stand-in hub must be built with HF_HOME=<its folder> and HF_HUB_OFFLINE=1 (use build())")

    compat.apply()
    root.mkdir(parents=True, exist_ok=True)
    (root / DONE).unlink(missing_ok=True)
    _write_t5(root)  # first: building the LM loads T5 from the stand-in
    _write_musicgen(root)
    (root / DONE).write_text(json.dumps({"format": FORMAT, "repos": [MUSICGEN, T5],
                                         "note": "random weights in the real formats; not a real model"}))


def main(argv: tp.Optional[tp.List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genrecraft.standin_hub", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder to write (used as HF_HOME)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the folder is complete")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    root = args.out.resolve()
    if args.in_process:
        _build_in_process(root)
        return 0
    build(root, force=args.force)
    print(f"stand-in hub ready in {root}\nuse it with: " + " ".join(f"{k}={v}" for k, v in env(root).items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
