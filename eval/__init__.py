"""Evaluation of MusicGen models: did fine-tuning help, and how much.

- :mod:`eval.ce`: cross-entropy and perplexity on a test manifest, overall, per codebook and per label group,
  exactly as audiocraft's solver computes them, with bootstrap intervals (:func:`evaluate_ce`);
- :mod:`eval.frechet`: a fast, stable float64 Fréchet distance with a cross-check, FAD-inf, KAD, per-clip FD;
- :mod:`eval.embeddings`: embedding backends (musicnn offline by default, VGGish, CLAP, EnCodec) and a
  content-keyed cache; :mod:`eval.fad`: FAD between two sets of audio (:func:`fad`);
- :mod:`eval.spectral`: paired mel-spectrogram distance and the mean-feature cosine distance;
- :mod:`eval.generate`: evaluation clips with the same prompts and seeds for every model;
- :mod:`eval.report`: the full comparison and its JSON / markdown / plot report (:func:`compare`).

Command line: ``python -m eval --help``.
"""

from .ce import CEConfig, CEResult, cross_entropy, evaluate_ce, paired_difference
from .embeddings import (EmbeddingBackend, EmbeddingUnavailableError, available_backends, embed_file, embed_files,
                         get_backend, register)
from .fad import FADResult, fad, fad_from_embeddings
from .frechet import GaussianStats, fad_inf, frechet_distance, frechet_distance_details, kad, per_clip_fd
from .generate import GenerateConfig, generate_for_eval
from .report import CompareConfig, compare
from .spectral import audio_features, feature_distance, mel_distance

__all__ = [
    "CEConfig", "CEResult", "cross_entropy", "evaluate_ce", "paired_difference",
    "EmbeddingBackend", "EmbeddingUnavailableError", "available_backends", "embed_file", "embed_files",
    "get_backend", "register", "FADResult", "fad", "fad_from_embeddings",
    "GaussianStats", "fad_inf", "frechet_distance", "frechet_distance_details", "kad", "per_clip_fd",
    "GenerateConfig", "generate_for_eval", "CompareConfig", "compare",
    "audio_features", "feature_distance", "mel_distance",
]
