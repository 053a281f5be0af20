"""The vocal detector: is there a voice in this chunk? A logistic regression on what the musicnn tagger computes
anyway (its 200-d penultimate embeddings and its tag probabilities, pooled over the chunk's 3-second patches), so
it costs a dot product beyond the tagger's run.

>>> detector = VocalDetector()                                    # doctest: +SKIP
>>> patches = msd.patches(audio16k)                               # doctest: +SKIP
>>> detector({"MSD_musicnn": msd.predict(patches), "MTT_musicnn": mtt.predict(patches)})   # doctest: +SKIP
0.93

The weights (``reference/vocal_detector.npz``, a few KB) were fitted by ``python bench/bench_vocals.py --fit`` on
rendered songs with and without a voice made offline (and with lead instruments that are not voices); the file
names the pooled blocks it reads (``blocks``), their standardisation, the coefficients and the threshold chosen on
the training set. bench/RESULTS.md has its accuracy on clips it was not fitted on.
"""

from __future__ import annotations

import typing as tp
from pathlib import Path

import numpy as np

from genrecraft.core.atomic import atomic_path

WEIGHTS = Path(__file__).resolve().parent / "reference" / "vocal_detector.npz"
MODELS = ("MSD_musicnn", "MTT_musicnn")
OUTPUTS = ("tags", "embedding")
POOLS = {"mean": lambda x: x.mean(axis=0), "max": lambda x: x.max(axis=0), "std": lambda x: x.std(axis=0)}


def block_names() -> tp.List[str]:
    """Every pooled block :func:`pooled` makes, ``<model>.<output>.<pool>`` (e.g. ``MTT_musicnn.embedding.mean``)."""
    return [f"{m}.{o}.{p}" for m in MODELS for o in OUTPUTS for p in POOLS]


def pooled(outputs: tp.Mapping[str, tp.Mapping[str, np.ndarray]]) -> tp.Dict[str, np.ndarray]:
    """The pooled blocks of the musicnn outputs of one chunk: ``outputs[model]`` is that model's
    :meth:`~.musicnn.MusicnnModel.predict` (``{"tags": [patches, 50], "embedding": [patches, 200]}``)."""
    out = {}
    for model in MODELS:
        for output in OUTPUTS:
            x = np.asarray(outputs[model][output], dtype=np.float64)
            if x.ndim != 2 or not len(x):
                raise ValueError(f"{model} {output}: expected [patches, dim] with patches >= 1, got {x.shape}")
            for name, pool in POOLS.items():
                out[f"{model}.{output}.{name}"] = pool(x)
    return out


class VocalDetector:
    """Probability (0..1) that a chunk holds a voice, from its musicnn outputs; ``threshold``: where a chunk counts as
    vocal (chosen on the training set)."""

    def __init__(self, path: tp.Union[str, Path] = WEIGHTS):
        with np.load(path) as data:
            self.blocks = [str(b) for b in data["blocks"]]
            self.mean, self.scale = data["mean"], data["scale"]
            self.coef, self.intercept = data["coef"], float(data["intercept"])
            self.threshold = float(data["threshold"])
        unknown = set(self.blocks) - set(block_names())
        if unknown or not (self.mean.shape == self.scale.shape == self.coef.shape) or self.coef.ndim != 1:
            raise ValueError(f"{path} is not a vocal detector file (blocks {sorted(unknown)} unknown, or shapes "
                             f"{self.mean.shape} {self.scale.shape} {self.coef.shape} differ)")

    def features(self, outputs: tp.Mapping[str, tp.Mapping[str, np.ndarray]]) -> np.ndarray:
        """The detector's input for one chunk, [dim]."""
        blocks = pooled(outputs)
        return np.concatenate([blocks[b] for b in self.blocks])

    def probability(self, features: np.ndarray) -> np.ndarray:
        """Probabilities of a voice for ``features`` [..., dim]."""
        z = ((np.asarray(features, dtype=np.float64) - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))

    def __call__(self, outputs: tp.Mapping[str, tp.Mapping[str, np.ndarray]]) -> float:
        return float(self.probability(self.features(outputs)))


def save(path: tp.Union[str, Path], blocks: tp.Sequence[str], mean: np.ndarray, scale: np.ndarray, coef: np.ndarray,
         intercept: float, threshold: float, **info: tp.Any) -> Path:
    """Write a detector file (float32 arrays; ``info``: provenance strings or numbers kept alongside)."""
    path = Path(path)
    extra = {k: np.asarray(v) for k, v in info.items()}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, blocks=np.asarray(list(blocks)), mean=np.asarray(mean, np.float32),
                            scale=np.asarray(scale, np.float32), coef=np.asarray(coef, np.float32),
                            intercept=np.float32(intercept), threshold=np.float32(threshold), **extra)
    return path
