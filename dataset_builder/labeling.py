"""Stage 3: label every chunk (key, tempo, loudness, genres, moods, instruments), in parallel, resumable.

Each chunk's labels are written to ``labels/<chunk id>.json`` as soon as they are computed; a rerun labels only
what is missing. Workers are separate processes (``spawn``), each loading the models once; at most two tasks per
worker are in flight, so memory stays bounded whatever the number of chunks.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import typing as tp
from pathlib import Path

import soundfile as sf

from genrecraft.atomic import write_json

from .chunk import Chunk
from .label import LabelConfig, Labeler, Labels
from .playlist import Failure

_worker_labeler: tp.Optional[Labeler] = None


def _init_worker(config: LabelConfig) -> None:
    global _worker_labeler
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _worker_labeler = Labeler(config)


def _label_file(path: str, target: str) -> tp.Optional[str]:
    """Label one chunk file into ``target``; returns an error text or None."""
    assert _worker_labeler is not None
    try:
        audio, sr = sf.read(path, dtype="float32", always_2d=True)
        labels = _worker_labeler(audio.mean(axis=1), sr)
    except Exception as exc:  # a chunk that cannot be labelled is reported, not fatal
        return f"{type(exc).__name__}: {exc}"
    write_json(target, labels.to_dict())
    return None


def label_chunks(chunks: tp.Sequence[Chunk], out: Path, config, progress: bool = True
                 ) -> tp.Tuple[tp.Dict[str, Labels], tp.List[Failure]]:
    """Labels of every chunk (computed or read back). ``config`` is the BuildConfig (tagger, bpm_method,
    tempo_octave, workers); chunks labelled with another tagger or tempo method are labelled again."""
    from tqdm import tqdm

    folder = out / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    label_config = LabelConfig(tagger=config.tagger, bpm_method=config.bpm_method, tempo_octave=config.tempo_octave)

    def read(chunk: Chunk) -> tp.Optional[tp.Dict[str, tp.Any]]:
        path = folder / f"{chunk.chunk_id}.json"
        return json.loads(path.read_text()) if path.exists() else None

    stored = {}  # chunks labelled, and by the tagger and tempo method asked for now
    for chunk in chunks:
        data = read(chunk)
        if data and data.get("tagger") == config.tagger and data.get("tempo_method") == label_config.tempo_method:
            stored[chunk.chunk_id] = data
    todo = [c for c in chunks if c.chunk_id not in stored]
    failures: tp.List[Failure] = []
    bar = tqdm(total=len(todo), desc=f"Labelling ({config.tagger})", unit="chunk", disable=not progress)
    if todo:
        if config.workers == 1:
            _init_worker(label_config)
            for chunk in todo:
                error = _label_file(chunk.path, str(folder / f"{chunk.chunk_id}.json"))
                if error:
                    failures.append(Failure("label", error, chunk.path, 0, chunk.chunk_id))
                bar.update()
        else:
            context = multiprocessing.get_context("spawn")
            with cf.ProcessPoolExecutor(config.workers, mp_context=context, initializer=_init_worker,
                                        initargs=(label_config,)) as pool:
                pending: tp.Dict[cf.Future, Chunk] = {}
                queue = list(todo)
                while queue or pending:
                    while queue and len(pending) < 2 * config.workers:
                        chunk = queue.pop(0)
                        pending[pool.submit(_label_file, chunk.path, str(folder / f"{chunk.chunk_id}.json"))] = chunk
                    finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                    for future in finished:
                        chunk = pending.pop(future)
                        error = future.result()
                        if error:
                            failures.append(Failure("label", error, chunk.path, 0, chunk.chunk_id))
                        bar.update()
    bar.close()
    labels = {}
    for chunk in chunks:  # what was stored before, else what this run wrote (or the old file if labelling failed)
        data = stored.get(chunk.chunk_id) or read(chunk)
        if data is not None:
            labels[chunk.chunk_id] = Labels.from_dict(data)
    return labels, failures
