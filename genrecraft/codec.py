"""An offline audio codec for the demo and tests: audiocraft's debug EnCodec with codebooks fitted to real audio.

MusicGen's language model predicts the tokens of a compression model (EnCodec). The real one
(``facebook/encodec_32khz``) cannot be downloaded offline, and audiocraft's offline stand-in,
``//pretrained/debug_compression_model``, initialises its residual-VQ codebooks by k-means on Gaussian noise: on
real music its encoder's latents then fall on about 2 codes of 400 per codebook, so the tokens say almost nothing
about the audio and a language model trained on them learns next to nothing about style.

:func:`fit_debug_codec` keeps the debug codec's (seeded, random) encoder and decoder and refits its codebooks with
audiocraft's own k-means on the encoder latents of real audio, layer by layer on the residuals, as EnCodec's
k-means initialisation does at the start of training. The tokens then carry the audio's structure (hundreds of
codes in use), and cross-entropy differences between models mean something. The decoder stays random: decoded
audio is noise-like, so listen to this codec's generations only to check the pipeline, never to judge music.

The result is written as an audiocraft compression checkpoint, so any solver takes it as
``compression_model_checkpoint=/path/to/checkpoint.th`` and ``python -m genrecraft.export`` packages it.
"""

from __future__ import annotations

import logging
import typing as tp
from pathlib import Path

import numpy as np

from genrecraft.core.audio import load_audio

from .builders import debug_codec_config
from .core import compat
from .core.atomic import atomic_path

logger = logging.getLogger(__name__)


def fit_debug_codec(files: tp.Sequence[tp.Union[str, Path]], out_file: tp.Union[str, Path],
                    sample_rate: int = 32000, seconds_per_file: float = 15.0, kmeans_iters: int = 10,
                    max_frames: int = 8000, progress: bool = True) -> tp.Dict[str, tp.Any]:
    """Fit the debug codec's codebooks to ``files`` and write it to ``out_file`` (audiocraft checkpoint format).

    The k-means sees at most ``max_frames`` latent frames (25 per second of audio), drawn at random (seeded):
    audiocraft's k-means holds a [frames, codes, dim] array. Returns ``{"path", "frames", "codes_used"}``: the
    latent frames and, per codebook, how many distinct codes all of them use afterwards (audiocraft's own
    debug codec uses about 2 per codebook on music).
    """
    compat.apply()
    import torch
    from audiocraft.models import builders
    from tqdm import tqdm


    if not files:
        raise ValueError("fit_debug_codec needs audio files to fit the codebooks to")
    codec = builders.get_debug_compression_model(sample_rate=sample_rate)
    latents = []
    with torch.no_grad():
        for path in tqdm(list(files), desc="      codec latents", unit="clip", disable=not progress):
            audio = load_audio(path, sample_rate, duration=seconds_per_file)
            x, scale = codec.preprocess(torch.from_numpy(audio)[None, None])
            latents.append(codec.encoder(x)[0].T)  # [frames, dim]
    data = torch.cat(latents)
    bins = codec.quantizer.bins
    if data.shape[0] < bins:
        raise ValueError(f"only {data.shape[0]} latent frames from {len(files)} file(s); the codec has {bins} codes "
                         f"per codebook: give at least {bins / codec.frame_rate:.0f} s of audio")
    rng_state = torch.random.get_rng_state()
    torch.manual_seed(0)  # k-means draws its initial centroids at random
    try:
        residual = data
        if data.shape[0] > max_frames:
            residual = data[torch.randperm(data.shape[0])[:max_frames]]
        with torch.no_grad():
            for layer in codec.quantizer.vq.layers:
                book = layer._codebook
                book.kmeans_iters = kmeans_iters
                book.inited.fill_(0)
                book.init_embed_(residual)
                indices = book.encode(residual)
                residual = residual - book.decode(indices)
    finally:
        torch.random.set_rng_state(rng_state)
    codec.eval()
    with torch.no_grad():
        codes = codec.quantizer.vq.encode(data.T[None])  # [n_q, 1, frames]
    used = [int(torch.unique(c).numel()) for c in codes[:, 0]]
    cfg = debug_codec_config(sample_rate)
    out_file = Path(out_file)
    with atomic_path(out_file) as tmp:
        torch.save({"xp.cfg": cfg, "best_state": {"model": codec.state_dict()},
                    "genrecraft": {"kind": "debug codec with fitted codebooks", "files": len(files),
                                   "frames": int(data.shape[0]), "codes_used": used}}, tmp)
    logger.info("Fitted codec written to %s (%d frames; codes in use per codebook: %s)", out_file, data.shape[0],
                used)
    return {"path": out_file, "frames": int(data.shape[0]), "codes_used": used}


def codes_in_use(checkpoint: tp.Union[str, Path], files: tp.Sequence[tp.Union[str, Path]],
                 seconds_per_file: float = 15.0) -> tp.List[int]:
    """Distinct codes per codebook that a compression checkpoint gives ``files`` (a quick check of a codec)."""
    compat.apply()
    import torch
    from audiocraft.solvers.compression import CompressionSolver

    codec = CompressionSolver.model_from_checkpoint(str(checkpoint))
    seen: tp.List[set] = []
    with torch.no_grad():
        for path in files:
            audio = load_audio(path, codec.sample_rate, duration=seconds_per_file)
            codes, _ = codec.encode(torch.from_numpy(np.ascontiguousarray(audio))[None, None])
            for k, row in enumerate(codes[0]):
                if k == len(seen):
                    seen.append(set())
                seen[k].update(row.tolist())
    return [len(s) for s in seen]
