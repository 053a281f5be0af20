"""Embedding backends for FAD and KAD, and a cache of embeddings keyed by file content.

A backend is a small class (as fadtk's ``ModelLoader``)::

    class MyBackend(EmbeddingBackend):
        name = "my-model"          # shown in reports; part of the cache key
        sample_rate = 16000        # the rate embed() expects
        dim = 128                  # embedding size
        def embed(self, audio):    # audio: mono float32 [samples] at sample_rate
            return frames          # float32 [frames, dim]

Register it with :func:`register` and it is usable everywhere (``--backend my-model``). The built-in ones:

=====================  =====  ======  =================================================================
spec                   rate   dim     weights
=====================  =====  ======  =================================================================
``musicnn`` (default)  16 k   200     the MSD musicnn tagger's penultimate layer, through essentia; its
                                      weights ship in the ``musicnn`` PyPI wheel: works offline
``vggish[:FILE]``      16 k   128     essentia's ``audioset-vggish-3.pb`` (downloaded once into the cache)
``clap[:ID_OR_DIR]``   48 k   512     LAION CLAP for music (``laion/larger_clap_music``), via transformers
``encodec[:CKPT]``     codec  codec   the continuous latent of an audiocraft compression model before
                                      quantisation: ``//pretrained/facebook/encodec_32khz`` (default),
                                      ``//pretrained/debug_compression_model`` (offline), ``//sig/<SIG>``
=====================  =====  ======  =================================================================

Missing weights raise :class:`EmbeddingUnavailableError` naming the file and where to put it.

Embeddings are cached under ``<cache dir>/embeddings/<backend cache id>/`` keyed by the sha256 of the audio
file's bytes, so renaming or moving a file costs nothing and editing it invalidates its entry.
"""

from __future__ import annotations

import abc
import hashlib
import logging
import os
import re
import typing as tp
from pathlib import Path

import numpy as np

from dataset_builder.label.musicnn import MUSICNN_WHEEL_SHA256, MusicnnModel
from genrecraft.core import compat, download, paths
from genrecraft.core.atomic import atomic_path
from genrecraft.core.audio import file_digest, load_audio
from genrecraft.core.errors import ModelFilesError, UserError

logger = logging.getLogger(__name__)


class EmbeddingUnavailableError(UserError, RuntimeError):
    """The weights of an embedding model are not on this machine and cannot be downloaded."""


class EmbeddingBackend(abc.ABC):
    """An audio embedding model: ``embed(audio [samples] at sample_rate) -> [frames, dim]`` (float32)."""

    name: str = ""
    sample_rate: int = 0
    dim: int = 0

    @abc.abstractmethod
    def embed(self, audio: np.ndarray) -> np.ndarray:
        """Embedding frames [frames, dim] of mono float32 ``audio`` [samples] at :attr:`sample_rate`."""

    @property
    def cache_id(self) -> str:
        """Identity of the model (name + weights) for the embedding cache; override when weights can differ."""
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, sample_rate={self.sample_rate}, dim={self.dim})"


def _check_frames(backend: EmbeddingBackend, frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 2 or frames.shape[1] != backend.dim:
        raise RuntimeError(f"backend {backend.name!r} returned embeddings of shape {frames.shape}, expected "
                           f"[frames, {backend.dim}]")
    return frames


def _fingerprint_file(path: Path) -> str:
    return file_digest(path)[:16]


def _fingerprint_module(module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu").contiguous().float().numpy().tobytes())
    return h.hexdigest()[:16]


def models_dir() -> Path:
    """Where downloaded or hand-placed embedding weights live: ``<cache dir>/models``."""
    return paths.cache_dir() / "models"


def _download(url: str, target: Path, what: str, help_text: str) -> Path:
    """Fetch ``url`` to ``target`` once (:func:`genrecraft.core.download.fetch`); a clear error when it cannot."""
    existed = target.is_file()
    try:
        download.fetch(url, target, what, timeout=30)
    except ModelFilesError as exc:
        raise EmbeddingUnavailableError(
            f"{what} is not on this machine: expected the file {target} ({exc}). Download {url} on a machine "
            f"with internet access and put it at {target}. {help_text}") from exc
    if not existed:
        logger.info("Downloaded %s to %s", what, target)
    return target


# --- musicnn (offline default) -------------------------------------------------------------------------------


class MusicnnBackend(EmbeddingBackend):
    """The 200-d embedding (penultimate layer) of the MSD musicnn tagger on 16 kHz audio (essentia mel, onnxruntime).

    The weights ship in the ``musicnn`` PyPI wheel (ISC licence); the dataset builder's
    ``dataset_builder.label.musicnn.MusicnnModel`` converts them once into a model that onnxruntime runs, offline.
    One frame per 3-second patch; ``patch_hop`` 93 (of 187 mel frames) overlaps patches by half, which gives
    FAD twice the frames of the tagger's default.
    """

    name = "musicnn"
    sample_rate = 16000
    dim = 200

    def __init__(self, model: str = "MSD_musicnn", patch_hop: int = 93):
        try:
            self.model = MusicnnModel(name=model, patch_hop=patch_hop)
        except ModelFilesError as exc:
            raise EmbeddingUnavailableError(f"the musicnn model {model!r} is not available: {exc}") from exc
        self.model_name = model
        self.patch_hop = patch_hop
        self.sample_rate = int(self.model.sample_rate)
        # the weights are those of the (checksummed) musicnn wheel; the converted graph is verified against them
        self._fingerprint = MUSICNN_WHEEL_SHA256[:12]

    @property
    def cache_id(self) -> str:
        return f"musicnn-{self.model_name}-hop{self.patch_hop}-{self._fingerprint}"

    def embed(self, audio: np.ndarray) -> np.ndarray:
        return _check_frames(self, self.model.embed(np.asarray(audio, dtype=np.float32)))


# --- VGGish (essentia graph) --------------------------------------------------------------------------------

VGGISH_URL = "https://essentia.upf.edu/models/feature-extractors/vggish/audioset-vggish-3.pb"
VGGISH_FILE = "audioset-vggish-3.pb"


class VGGishBackend(EmbeddingBackend):
    """VGGish (AudioSet), the embedding of the original FAD, run by essentia: 128-d per 0.96 s, 16 kHz.

    ``graph``: path of essentia's ``audioset-vggish-3.pb``; default ``<cache dir>/models/vggish/`` (downloaded
    there on first use from essentia.upf.edu), or ``$GENRECRAFT_VGGISH_GRAPH``. Frames do not overlap (patch hop
    = patch size = 96 mel frames), as in Google's FAD tool. ``output`` names the graph's embedding node.
    """

    name = "vggish"
    sample_rate = 16000
    dim = 128

    def __init__(self, graph: tp.Optional[tp.Union[str, Path]] = None, output: str = "model/vggish/embeddings"):
        graph = graph or os.environ.get("GENRECRAFT_VGGISH_GRAPH")
        if graph:
            path = Path(graph)
            if not path.is_file():
                raise EmbeddingUnavailableError(
                    f"VGGish graph {path} does not exist. Download {VGGISH_URL} and pass its path "
                    f"(--backend vggish:/path/to/{VGGISH_FILE}).")
        else:
            path = _download(VGGISH_URL, models_dir() / "vggish" / VGGISH_FILE, "essentia's VGGish graph",
                             "Or pass another path with --backend vggish:/path/to/audioset-vggish-3.pb.")
        import essentia.standard as es

        self.graph = path
        self._fingerprint = _fingerprint_file(path)
        self.model = es.TensorflowPredictVGGish(graphFilename=str(path), output=output, patchHopSize=96)

    @property
    def cache_id(self) -> str:
        return f"vggish-{self._fingerprint}"

    def embed(self, audio: np.ndarray) -> np.ndarray:
        return _check_frames(self, self.model(np.asarray(audio, dtype=np.float32)))


# --- CLAP (LAION, music) -------------------------------------------------------------------------------------

CLAP_MUSIC = "laion/larger_clap_music"


class ClapBackend(EmbeddingBackend):
    """LAION CLAP trained on music (``laion/larger_clap_music``) via transformers: one 512-d audio embedding per
    10 s window (48 kHz), the last partial window kept if at least 1 s long.

    ``model``: a Hugging Face id or a local folder (``config.json`` + weights); or an already built
    ``transformers.ClapModel`` (with ``processor``), e.g. a small one in tests.
    """

    name = "clap"
    sample_rate = 48000
    window_seconds = 10.0

    def __init__(self, model: tp.Union[str, tp.Any] = CLAP_MUSIC, processor: tp.Any = None, device: str = "cpu"):
        from transformers import ClapFeatureExtractor, ClapModel

        if isinstance(model, str):
            try:
                self.model = ClapModel.from_pretrained(model)
                self.processor = ClapFeatureExtractor.from_pretrained(model)
            except (OSError, ValueError) as exc:
                raise EmbeddingUnavailableError(
                    f"CLAP weights {model!r} are not on this machine: {exc}. With internet access they are "
                    "downloaded once into the Hugging Face cache (~/.cache/huggingface, or $HF_HOME); offline, "
                    f"copy the folder of {model} (config.json, model.safetensors, preprocessor_config.json) to this "
                    "machine and pass its path: --backend clap:/path/to/larger_clap_music.") from exc
            self.model_id = model
        else:
            self.model = model
            fusion = bool(getattr(model.config.audio_config, "enable_fusion", False))
            self.processor = processor or ClapFeatureExtractor(
                feature_size=int(model.config.audio_config.num_mel_bins),
                truncation="fusion" if fusion else "rand_trunc")
            self.model_id = f"custom-{_fingerprint_module(model)}"
        self.model = self.model.to(device).eval()
        self.device = device
        self.sample_rate = int(self.processor.sampling_rate)
        self.dim = int(self.model.config.projection_dim)

    @property
    def cache_id(self) -> str:
        return "clap-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", self.model_id)

    def embed(self, audio: np.ndarray) -> np.ndarray:
        import torch

        audio = np.asarray(audio, dtype=np.float32)
        hop = int(self.window_seconds * self.sample_rate)
        windows = [audio[i:i + hop] for i in range(0, max(len(audio), 1), hop)]
        windows = [w for w in windows if len(w) >= self.sample_rate] or [audio]
        inputs = self.processor(windows, sampling_rate=self.sample_rate, return_tensors="pt")
        with torch.no_grad():
            features = self.model.get_audio_features(
                **{k: v.to(self.device) for k, v in inputs.items() if k in ("input_features", "is_longer")})
        if not isinstance(features, torch.Tensor):  # newer transformers return a model output
            features = features.pooler_output
        return _check_frames(self, features.float().cpu().numpy())


# --- EnCodec / any audiocraft compression model --------------------------------------------------------------

ENCODEC_32K = "//pretrained/facebook/encodec_32khz"


class EncodecBackend(EmbeddingBackend):
    """The continuous latent of an audiocraft EnCodec model before quantisation: one frame per codec step.

    ``checkpoint``: what audiocraft's ``CompressionSolver.model_from_checkpoint`` accepts:
    ``//pretrained/facebook/encodec_32khz`` (MusicGen's codec, 128-d at 50 Hz, from the Hugging Face hub),
    ``//pretrained/debug_compression_model`` (random weights from a fixed seed, offline), ``//sig/<SIG>`` or a
    checkpoint path of a trained compression model. Or an already built compression model.
    """

    name = "encodec"

    def __init__(self, checkpoint: tp.Union[str, tp.Any] = ENCODEC_32K, device: str = "cpu"):
        compat.apply()
        if isinstance(checkpoint, str):
            from audiocraft.solvers.compression import CompressionSolver

            try:
                model = CompressionSolver.model_from_checkpoint(checkpoint, device=device)
            except (OSError, ValueError, RuntimeError, AssertionError) as exc:
                raise EmbeddingUnavailableError(
                    f"compression model {checkpoint!r} could not be loaded: {exc}. A //pretrained/<id> model is "
                    "downloaded once from the Hugging Face hub into ~/.cache/huggingface (internet needed the "
                    "first time, or HF_HUB_OFFLINE=1 with the files already there); "
                    "//pretrained/debug_compression_model works offline.") from exc
            self.checkpoint = checkpoint
        else:
            model = checkpoint
            self.checkpoint = "custom"
        model = getattr(model, "model", model)  # unwrap audiocraft's wrapped models
        if not (hasattr(model, "encoder") and hasattr(model, "preprocess")):
            raise ValueError(f"compression model {self.checkpoint!r} ({type(model).__name__}) has no EnCodec encoder "
                             "(DAC models are not supported by this backend)")
        self.model = model.to(device).eval()
        self.device = device
        self.sample_rate = int(model.sample_rate)
        self.channels = int(model.channels)
        self.dim = int(model.encoder.dimension)
        self._fingerprint = _fingerprint_module(model)

    @property
    def cache_id(self) -> str:
        return f"encodec-{self._fingerprint}"

    def embed(self, audio: np.ndarray) -> np.ndarray:
        import torch

        x = torch.as_tensor(np.asarray(audio, dtype=np.float32), device=self.device)[None, None]
        x = x.expand(1, self.channels, -1)
        with torch.no_grad():
            x, _ = self.model.preprocess(x)
            latent = self.model.encoder(x)  # [1, dim, frames]
        return _check_frames(self, latent[0].T.float().cpu().numpy())


# --- registry -------------------------------------------------------------------------------------------------

_REGISTRY: tp.Dict[str, tp.Callable[..., EmbeddingBackend]] = {
    "musicnn": lambda arg=None: MusicnnBackend(arg or "MSD_musicnn"),
    "vggish": lambda arg=None: VGGishBackend(arg),
    "clap": lambda arg=None: ClapBackend(arg or CLAP_MUSIC),
    "encodec": lambda arg=None: EncodecBackend(arg or ENCODEC_32K),
}
DEFAULT_BACKEND = "musicnn"


def register(name: str, factory: tp.Callable[..., EmbeddingBackend]) -> None:
    """Make ``factory(arg or None)`` available as backend spec ``name[:arg]``."""
    if not re.fullmatch(r"[a-z0-9_-]+", name):
        raise ValueError(f"backend name {name!r}: use lower-case letters, digits, '-' and '_'")
    _REGISTRY[name] = factory


def available_backends() -> tp.List[str]:
    return sorted(_REGISTRY)


def get_backend(spec: tp.Union[str, EmbeddingBackend] = DEFAULT_BACKEND) -> EmbeddingBackend:
    """A backend from its spec ``name[:arg]`` (see the module docstring), or the backend itself."""
    if isinstance(spec, EmbeddingBackend):
        return spec
    name, _, arg = spec.partition(":")
    if name not in _REGISTRY:
        raise ValueError(f"backend={spec!r}: unknown embedding backend; use one of {', '.join(available_backends())} "
                         "(optionally name:argument, e.g. encodec://pretrained/debug_compression_model)")
    return _REGISTRY[name](arg or None)


# --- cache ----------------------------------------------------------------------------------------------------


def cache_path(backend: EmbeddingBackend, digest: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", backend.cache_id)
    return paths.cache_dir() / "embeddings" / safe / digest[:2] / f"{digest}.npy"


def embed_file(backend: EmbeddingBackend, path: tp.Union[str, Path], cache: bool = True) -> np.ndarray:
    """Embedding frames [frames, dim] of one audio file, from the cache when this content was seen before."""
    target = cache_path(backend, file_digest(path)) if cache else None
    if target is not None and target.is_file():
        try:
            return np.load(target)
        except (OSError, ValueError):
            logger.warning("Ignoring unreadable cached embedding %s", target)
    frames = _check_frames(backend, backend.embed(load_audio(path, backend.sample_rate)))
    if target is not None:
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, frames)
    return frames


def embed_files(backend: EmbeddingBackend, files: tp.Sequence[tp.Union[str, Path]], cache: bool = True,
                progress: bool = True, desc: tp.Optional[str] = None) -> tp.List[np.ndarray]:
    """Embedding frames of each file (see :func:`embed_file`), with a progress bar."""
    from tqdm import tqdm

    return [embed_file(backend, f, cache=cache)
            for f in tqdm(list(files), desc=desc or f"embedding ({backend.name})", disable=not progress,
                          unit="clip")]
