"""The musicnn taggers, built offline from the checkpoints the ``musicnn`` PyPI wheel ships.

The wheel (ISC licence; MSD and MTT models by Pons & Serra) holds TF1 checkpoints. On first use they are
converted once into ONNX models that onnxruntime runs (:mod:`.musicnn_onnx`; the default, 2.5x less CPU)
or into frozen graphs that essentia's ``TensorflowPredictMusiCNN`` runs (see :mod:`.tfproto`), cached under
``<genrecraft cache>/models/musicnn/``, and checked against reference outputs of the original TensorFlow model
stored in this package (``reference/musicnn_reference.npz``). The mel front-end is essentia's in both cases.

>>> model = MusicnnModel("MSD_musicnn")          # doctest: +SKIP
>>> model.tags(audio16k)                         # doctest: +SKIP
{'rock': 0.03, 'pop': 0.12, ...}
>>> model.embed(audio16k).shape                  # doctest: +SKIP
(10, 200)

Input is mono float32 audio at 16 kHz; the model sees 3-second patches (187 frames of a 96-band log-mel).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import typing as tp
import zipfile
from pathlib import Path

import numpy as np

from genrecraft.core import paths
from genrecraft.core.atomic import atomic_path, write_json
from genrecraft.core.download import sha256_of
from genrecraft.core.errors import ModelFilesError

from . import musicnn_onnx, tfproto
from .dsp import essentia_standard

SAMPLE_RATE = 16000
PATCH_FRAMES = 187
MUSICNN_WHEEL = "musicnn-0.1.0-py3-none-any.whl"
MUSICNN_WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"
INPUT, TAGS_OUTPUT, EMBEDDING_OUTPUT = "model/Placeholder", "model/Sigmoid", "model/dense/BiasAdd"
IS_TRAINING = "model/Placeholder_2"  # the bool placeholder of batch norm and dropout
RUNTIMES = ("onnxruntime", "tensorflow")  # onnxruntime: 2.5x less CPU per patch (bench/RESULTS.md), same tags
DEFAULT_RUNTIME = "onnxruntime"
REFERENCE = Path(__file__).resolve().parent / "reference" / "musicnn_reference.npz"

MSD_LABELS = ('rock', 'pop', 'alternative', 'indie', 'electronic', 'female vocalists', 'dance', '00s',
              'alternative rock', 'jazz', 'beautiful', 'metal', 'chillout', 'male vocalists', 'classic rock', 'soul',
              'indie rock', 'Mellow', 'electronica', '80s', 'folk', '90s', 'chill', 'instrumental', 'punk', 'oldies',
              'blues', 'hard rock', 'ambient', 'acoustic', 'experimental', 'female vocalist', 'guitar', 'Hip-Hop',
              '70s', 'party', 'country', 'easy listening', 'sexy', 'catchy', 'funk', 'electro', 'heavy metal',
              'Progressive rock', '60s', 'rnb', 'indie pop', 'sad', 'House', 'happy')
MTT_LABELS = ('guitar', 'classical', 'slow', 'techno', 'strings', 'drums', 'electronic', 'rock', 'fast', 'piano',
              'ambient', 'beat', 'violin', 'vocal', 'synth', 'female', 'indian', 'opera', 'male', 'singing', 'vocals',
              'no vocals', 'harpsichord', 'loud', 'quiet', 'flute', 'woman', 'male vocal', 'no vocal', 'pop', 'soft',
              'sitar', 'solo', 'man', 'classic', 'choir', 'voice', 'new age', 'dance', 'male voice', 'female vocal',
              'beats', 'harp', 'cello', 'no voice', 'weird', 'country', 'metal', 'female voice', 'choral')
MODELS = {"MSD_musicnn": MSD_LABELS, "MTT_musicnn": MTT_LABELS}


def _wheel_path(cache: Path) -> Path:
    """The musicnn wheel: ``GENRECRAFT_MUSICNN_WHEEL`` if set, else downloaded from PyPI once (29 MB)."""
    override = os.environ.get("GENRECRAFT_MUSICNN_WHEEL")
    wheel = Path(override) if override else cache / MUSICNN_WHEEL
    if not wheel.exists():
        if override:
            raise ModelFilesError(f"GENRECRAFT_MUSICNN_WHEEL={override} does not exist")
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "musicnn==0.1.0",
                   "-d", tmp, "--quiet"]
            result = subprocess.run(cmd, capture_output=True, text=True)
            got = Path(tmp) / MUSICNN_WHEEL
            if result.returncode != 0 or not got.exists():
                raise ModelFilesError(
                    "could not download the musicnn wheel from PyPI (it ships the tagger checkpoints): "
                    f"{result.stderr.strip()[-400:]}\nFix: on a machine with PyPI access run "
                    f"`pip download --no-deps musicnn==0.1.0 -d DIR`, copy {MUSICNN_WHEEL} here and set "
                    "GENRECRAFT_MUSICNN_WHEEL=/path/to/it (or use --tagger none).")
            os.replace(got, wheel)
    digest = sha256_of(wheel)
    if digest != MUSICNN_WHEEL_SHA256:
        raise ModelFilesError(f"{wheel} has sha256 {digest}, expected {MUSICNN_WHEEL_SHA256} (musicnn 0.1.0): "
                              "delete it to download again")
    return wheel


def checkpoint(name: str, wheel: Path) -> tp.Tuple[tp.Any, tp.Dict[str, np.ndarray]]:
    """The MetaGraphDef and the variables of checkpoint ``name`` (e.g. ``MSD_musicnn``) in the musicnn wheel."""
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.namelist() if m.startswith(f"musicnn/{name}/.")]
        if not members:
            raise ModelFilesError(f"{wheel} has no checkpoint musicnn/{name}/")
        archive.extractall(tmp, members=members)
        prefix = Path(tmp) / "musicnn" / name
        meta = tfproto.MetaGraphDef.FromString((prefix / ".meta").read_bytes())
        return meta, tfproto.read_checkpoint(str(prefix) + "/")


def convert(name: str, wheel: Path, out_file: Path) -> Path:
    """Convert checkpoint ``name`` (e.g. ``MSD_musicnn``) from the musicnn wheel into a frozen graph."""
    meta, variables = checkpoint(name, wheel)
    frozen = tfproto.freeze(meta.graph_def, variables, [TAGS_OUTPUT, EMBEDDING_OUTPUT],
                            constants={IS_TRAINING: np.array(False)})
    with atomic_path(out_file) as tmp_file:
        tmp_file.write_bytes(frozen.SerializeToString())
    return out_file


def convert_onnx(name: str, wheel: Path, out_file: Path) -> Path:
    """Build the ONNX model of checkpoint ``name`` from the musicnn wheel's variables (:mod:`.musicnn_onnx`)."""
    _, variables = checkpoint(name, wheel)
    try:
        model = musicnn_onnx.build(variables, num_classes=len(MODELS[name]))
    except ModelFilesError:  # onnx is not installed: its own one-line message
        raise
    except Exception as exc:  # onnx's checker, a missing variable
        raise ModelFilesError(f"could not build the ONNX model of {name}: {type(exc).__name__}: {exc}; "
                              "use --tagger none, or report it with your onnx version") from exc
    with atomic_path(out_file) as tmp_file:
        tmp_file.write_bytes(model.SerializeToString())
    return out_file


def run_graph(graph: Path, patches: np.ndarray) -> tp.Dict[str, np.ndarray]:
    """Run a frozen musicnn graph on log-mel ``patches`` [batch, 187, 96]: ``{"tags": [batch, 50],
    "embedding": [batch, 200]}`` (essentia's generic TensorflowPredict, no audio front-end)."""
    import essentia

    es = essentia_standard()

    pool = essentia.Pool()
    pool.set(INPUT, patches.astype(np.float32)[:, None])  # essentia tensors are 4-D: [batch, 1, time, freq]
    predict = es.TensorflowPredict(graphFilename=str(graph), inputs=[INPUT],
                                   outputs=[TAGS_OUTPUT, EMBEDDING_OUTPUT], squeeze=True)
    out = predict(pool)
    return {"tags": np.asarray(out[TAGS_OUTPUT]).reshape(len(patches), -1),
            "embedding": np.asarray(out[EMBEDDING_OUTPUT]).reshape(len(patches), -1)}


def verify(name: str, graph: Path, atol: float = 1e-4) -> float:
    """Compare the converted model (a frozen graph ``.pb`` or an ``.onnx`` model) with the original model's stored
    outputs; returns the max abs difference."""
    if not REFERENCE.exists():
        raise ModelFilesError(f"reference outputs {REFERENCE} are missing from the installation")
    reference = np.load(REFERENCE)
    run = musicnn_onnx.OnnxNetwork(str(graph)) if graph.suffix == ".onnx" else lambda x: run_graph(graph, x)
    got = run(reference["input"])
    diff = max(float(np.abs(got["tags"] - reference[f"{name}/tags"]).max()),
               float(np.abs(got["embedding"] - reference[f"{name}/embedding"]).max()))
    if not diff <= atol:
        raise ModelFilesError(f"converted {name} differs from the original model by {diff:.2e} (> {atol}); "
                              f"delete {graph} to convert again")
    return diff


def model_file(name: str, runtime: str = DEFAULT_RUNTIME) -> Path:
    """The verified model file of ``name`` for ``runtime`` (``tensorflow``: a frozen graph ``.pb`` that essentia
    runs; ``onnxruntime``: an ``.onnx`` model), converted from the musicnn wheel on first use (cached)."""
    if name not in MODELS:
        raise ValueError(f"musicnn model {name!r}: use one of {', '.join(MODELS)}")
    if runtime not in RUNTIMES:
        raise ValueError(f"musicnn runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
    cache = paths.cache_dir() / "models" / "musicnn"
    onnx = runtime == "onnxruntime"
    path = cache / (f"{name}.onnx" if onnx else f"{name}.pb")
    stamp = cache / (f"{name}.onnx.verified.json" if onnx else f"{name}.verified.json")
    if path.exists() and stamp.exists():
        return path
    (convert_onnx if onnx else convert)(name, _wheel_path(cache), path)
    diff = verify(name, path)
    write_json(stamp, {"model": name, "source": MUSICNN_WHEEL, "runtime": runtime, "max_abs_diff_vs_original": diff})
    return path


def mel_frames(audio16k: np.ndarray) -> np.ndarray:
    """musicnn's input features of mono 16 kHz audio: log-mel frames [frames, 96] (essentia's
    TensorflowInputMusiCNN on 512-sample frames every 256 samples, cut as TensorflowPredictMusiCNN cuts them)."""
    es = essentia_standard()

    mel = es.TensorflowInputMusiCNN()
    frames = [mel(frame) for frame in es.FrameGenerator(np.asarray(audio16k, dtype=np.float32), frameSize=512,
                                                         hopSize=256)]
    return np.asarray(frames, dtype=np.float32).reshape(len(frames), 96)


def patches_of(frames: np.ndarray, patch_hop: int = PATCH_FRAMES) -> np.ndarray:
    """Full patches of 187 frames every ``patch_hop`` frames, [patches, 187, 96] (a last partial one is dropped,
    as TensorflowPredictMusiCNN's default ``lastPatchMode=discard`` does)."""
    starts = range(0, len(frames) - PATCH_FRAMES + 1, patch_hop or PATCH_FRAMES)
    return np.stack([frames[i:i + PATCH_FRAMES] for i in starts]) if len(starts) else \
        np.zeros((0, PATCH_FRAMES, frames.shape[1]), np.float32)


class MusicnnModel:
    """One musicnn tagger (``MSD_musicnn``: 50 Million Song Dataset tags; ``MTT_musicnn``: 50 MagnaTagATune tags).

    ``patch_hop`` is the hop between 3-second patches in frames (187 = no overlap, the fastest; 93 = 50 %).
    The mel patches (:meth:`patches`) are computed apart from the network (:meth:`predict`), so models that take
    the same input (MSD and MTT) share them, and one network run gives both the tags and the embedding.
    ``runtime``: ``onnxruntime`` (default; the network built as an ONNX model, one thread) or ``tensorflow``
    (essentia's TensorflowPredict on the frozen graph, whose results are those of essentia's
    ``TensorflowPredictMusiCNN`` on the same audio); the two agree to ~1e-6 in tag probability (tests/test_labels.py).
    """

    sample_rate = SAMPLE_RATE
    dim = 200

    def __init__(self, name: str = "MSD_musicnn", patch_hop: int = PATCH_FRAMES, runtime: str = DEFAULT_RUNTIME):
        self.name = name
        self.labels = MODELS[name] if name in MODELS else ()
        self.runtime = runtime
        self.graph = model_file(name, runtime)
        self.patch_hop = patch_hop
        if runtime == "onnxruntime":
            self._network = musicnn_onnx.OnnxNetwork(str(self.graph))
        else:
            self._predict = essentia_standard().TensorflowPredict(
                graphFilename=str(self.graph), inputs=[INPUT], outputs=[TAGS_OUTPUT, EMBEDDING_OUTPUT], squeeze=True)

    @staticmethod
    def _check(audio16k: np.ndarray) -> np.ndarray:
        audio = np.asarray(audio16k, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"musicnn takes mono audio [samples], got shape {audio.shape}")
        if len(audio) < 3 * SAMPLE_RATE:
            audio = np.pad(audio, (0, 3 * SAMPLE_RATE - len(audio)))  # one patch at least
        return audio

    def patches(self, audio16k: np.ndarray) -> np.ndarray:
        """The model's input: log-mel patches of ``audio16k``, [patches, 187, 96]."""
        return patches_of(mel_frames(self._check(audio16k)), self.patch_hop)

    def predict(self, patches: np.ndarray) -> tp.Dict[str, np.ndarray]:
        """``{"tags": [patches, 50], "embedding": [patches, 200]}`` of log-mel ``patches`` [patches, 187, 96]."""
        if self.runtime == "onnxruntime":
            return self._network(patches)
        import essentia

        pool = essentia.Pool()
        pool.set(INPUT, np.ascontiguousarray(patches, dtype=np.float32)[:, None])  # 4-D: [batch, 1, time, freq]
        out = self._predict(pool)
        return {"tags": np.asarray(out[TAGS_OUTPUT]).reshape(len(patches), -1),
                "embedding": np.asarray(out[EMBEDDING_OUTPUT]).reshape(len(patches), -1)}

    def activations(self, audio16k: np.ndarray) -> np.ndarray:
        """Tag probabilities per 3-second patch, [patches, 50]."""
        return self.predict(self.patches(audio16k))["tags"]

    def tags(self, audio16k: np.ndarray) -> tp.Dict[str, float]:
        """Tag probabilities averaged over the clip."""
        return self.tags_of(self.patches(audio16k))

    def tags_of(self, patches: np.ndarray) -> tp.Dict[str, float]:
        """Tag probabilities averaged over ``patches`` (from :meth:`patches`)."""
        return self.mean_tags(self.predict(patches))

    def mean_tags(self, prediction: tp.Mapping[str, np.ndarray]) -> tp.Dict[str, float]:
        """Tag probabilities averaged over the patches of a :meth:`predict` result."""
        return {label: float(p) for label, p in zip(self.labels, prediction["tags"].mean(axis=0))}

    def embed(self, audio16k: np.ndarray) -> np.ndarray:
        """The 200-d penultimate-layer embedding per 3-second patch, [patches, 200]."""
        return self.predict(self.patches(audio16k))["embedding"]
