"""Discogs-EffNet genre, mood and instrument labels: the models the best existing fine-tuning tools use.

Files (MTG, CC BY-NC-SA 4.0) are downloaded on first use from essentia.upf.edu into
``<genrecraft cache>/models/effnet/``: the Discogs-EffNet embedding model, and the genre_discogs400,
mtg_jamendo_moodtheme and mtg_jamendo_instrument heads with their label metadata (``.json``). A download is
accepted only with the published size (where known) and a graph (or JSON) that parses; its SHA-256 is then
recorded in ``checksums.json`` and checked on every later load, so a changed or corrupted file is caught. The
publisher lists no checksums, so the first copy is trusted (files placed by hand must parse, size aside).

Offline, place the files by hand in that folder (or in ``$GENRECRAFT_EFFNET_DIR``): the error message lists them.
The embedding model takes 16 kHz audio (at another rate its patches are wrong: MTG/essentia#1395).
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing as tp
from pathlib import Path

import numpy as np

from genrecraft.core import paths
from genrecraft.core.atomic import write_json
from genrecraft.core.download import fetch, sha256_of
from genrecraft.core.errors import ModelFilesError

from . import tfproto
from .dsp import essentia_standard

BASE_URL = "https://essentia.upf.edu/models/"
SAMPLE_RATE = 16000


@dataclasses.dataclass(frozen=True)
class ModelFile:
    name: str
    url_path: str
    size: tp.Optional[int]  # bytes, as published; None where not known


EMBEDDING = ModelFile("discogs-effnet-bs64-1.pb", "feature-extractors/discogs-effnet/", 18366619)
HEADS = {
    # head -> (graph, labels json, input node, output node)
    "genre": (ModelFile("genre_discogs400-discogs-effnet-1.pb", "classification-heads/genre_discogs400/", 2057977),
              ModelFile("genre_discogs400-discogs-effnet-1.json", "classification-heads/genre_discogs400/", 14951),
              "serving_default_model_Placeholder", "PartitionedCall:0"),
    "mood": (ModelFile("mtg_jamendo_moodtheme-discogs-effnet-1.pb", "classification-heads/mtg_jamendo_moodtheme/",
                       2739668),
             ModelFile("mtg_jamendo_moodtheme-discogs-effnet-1.json", "classification-heads/mtg_jamendo_moodtheme/",
                       3646),
             "model/Placeholder", "model/Sigmoid"),
    "instrument": (ModelFile("mtg_jamendo_instrument-discogs-effnet-1.pb",
                             "classification-heads/mtg_jamendo_instrument/", None),
                   ModelFile("mtg_jamendo_instrument-discogs-effnet-1.json",
                             "classification-heads/mtg_jamendo_instrument/", None),
                   "model/Placeholder", "model/Sigmoid"),
}
EMBEDDING_INPUT, EMBEDDING_OUTPUT = "serving_default_melspectrogram", "PartitionedCall:1"
ALL_FILES = [EMBEDDING] + [f for graph, meta, _, _ in HEADS.values() for f in (graph, meta)]


def model_dir() -> Path:
    override = os.environ.get("GENRECRAFT_EFFNET_DIR")
    return Path(override) if override else paths.cache_dir() / "models" / "effnet"


def _manual_instructions(folder: Path) -> str:
    lines = "\n".join(f"  {BASE_URL}{f.url_path}{f.name}" for f in ALL_FILES)
    return (f"Download these files on a machine with internet and put them in {folder} "
            f"(or in a folder named by $GENRECRAFT_EFFNET_DIR):\n{lines}\nor use the offline musicnn tagger "
            "(--tagger musicnn, the default).")


def _check_file(path: Path, spec: ModelFile, downloaded: bool = False) -> None:
    """A downloaded file must have the published size; any file must parse (graph or JSON)."""
    size = path.stat().st_size
    if downloaded and spec.size is not None and size != spec.size:
        raise ModelFilesError(f"{spec.name}: downloaded {size} bytes, the published file has {spec.size}")
    data = path.read_bytes()
    if path.suffix == ".pb":
        try:
            graph = tfproto.GraphDef.FromString(data)
        except Exception as exc:  # protobuf raises DecodeError, which is not re-exported stably
            raise ModelFilesError(f"{path} is not a TensorFlow graph ({exc}): delete it and retry") from exc
        if not len(graph.node):
            raise ModelFilesError(f"{path} is an empty graph: delete it and retry")
    else:
        try:
            json.loads(data)
        except ValueError as exc:
            raise ModelFilesError(f"{path} is not valid JSON: delete it and retry") from exc


def ensure_files(download: bool = True) -> Path:
    """Make sure every model file is present and verified; download what is missing. Returns the folder."""
    folder = model_dir()
    folder.mkdir(parents=True, exist_ok=True)
    sums_file = folder / "checksums.json"
    sums = json.loads(sums_file.read_text()) if sums_file.exists() else {}
    for spec in ALL_FILES:
        path = folder / spec.name
        if not path.exists():
            if not download:
                raise ModelFilesError(f"missing {path}.\n{_manual_instructions(folder)}")
            url = BASE_URL + spec.url_path + spec.name
            try:
                fetch(url, path, f"the Discogs-EffNet file {spec.name}",
                               check=lambda tmp, spec=spec: _check_file(tmp, spec, downloaded=True))
            except ModelFilesError as exc:
                raise ModelFilesError(f"{exc}.\n{_manual_instructions(folder)}") from exc
        digest = sha256_of(path)
        if spec.name in sums and sums[spec.name] != digest:
            raise ModelFilesError(f"{path} changed since it was first verified (sha256 {digest}, recorded "
                                  f"{sums[spec.name]}): delete it and {sums_file.name}'s entry to fetch it again")
        if spec.name not in sums:
            _check_file(path, spec)
            sums[spec.name] = digest
    write_json(sums_file, sums)
    return folder


def _labels(meta_file: Path) -> tp.List[str]:
    meta = json.loads(meta_file.read_text())
    classes = meta.get("classes")
    if not isinstance(classes, list):
        raise ModelFilesError(f"{meta_file} has no 'classes' list")
    return [str(c) for c in classes]


class EffnetTagger:
    """Genre (400 Discogs styles), mood/theme (56) and instrument (40) probabilities, averaged over the clip."""

    sample_rate = SAMPLE_RATE

    def __init__(self, download: bool = True):
        es = essentia_standard()

        folder = ensure_files(download=download)
        self._embed = es.TensorflowPredictEffnetDiscogs(graphFilename=str(folder / EMBEDDING.name),
                                                         input=EMBEDDING_INPUT, output=EMBEDDING_OUTPUT)
        self._heads = {}
        for head, (graph, meta, input_node, output_node) in HEADS.items():
            predictor = es.TensorflowPredict2D(graphFilename=str(folder / graph.name), input=input_node,
                                               output=output_node)
            self._heads[head] = (predictor, _labels(folder / meta.name))

    def embed(self, audio16k: np.ndarray) -> np.ndarray:
        """Discogs-EffNet embeddings, [patches, dim]."""
        audio = np.asarray(audio16k, dtype=np.float32)
        if len(audio) < 3 * SAMPLE_RATE:
            audio = np.pad(audio, (0, 3 * SAMPLE_RATE - len(audio)))
        return np.asarray(self._embed(audio))

    def __call__(self, audio16k: np.ndarray) -> tp.Dict[str, tp.Dict[str, float]]:
        """``{"genre": {label: p}, "mood": {...}, "instrument": {...}}``."""
        embeddings = self.embed(audio16k).astype(np.float32)
        out = {}
        for head, (predictor, labels) in self._heads.items():
            probs = np.asarray(predictor(embeddings)).mean(axis=0)
            if len(probs) != len(labels):
                raise ModelFilesError(f"the {head} head gives {len(probs)} outputs for {len(labels)} labels")
            out[head] = {label: float(p) for label, p in zip(labels, probs)}
        return out


def effnet_label_name(label: str) -> str:
    """Discogs style names are "Genre---Style" (e.g. "Electronic---Synth-pop"): keep the style, lower case.
    MTG-Jamendo names are already plain ("happy", "synthesizer")."""
    return label.split("---")[-1].strip().lower()
