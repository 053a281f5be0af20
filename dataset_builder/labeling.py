"""Stage 3: label every chunk (key, tempo, loudness, genres, moods, instruments), in parallel, resumable.

Each chunk's labels are written to ``labels/<chunk id>.json`` as soon as they are computed; a rerun labels only
what is missing. Workers are separate processes (``spawn``), each loading the models once; at most two tasks per
worker are in flight, so memory stays bounded whatever the number of chunks.

Workers die with the builder: on Linux each asks the kernel for SIGKILL when its parent dies
(``PR_SET_PDEATHSIG``), so a kill -9 of the builder (what the OOM killer sends) leaves no worker behind, and they
ignore Ctrl-C (the builder stops them). A worker that dies (killed, out of memory) while chunks are still being
cut only costs a warning: the chunks it left are labelled after the cut, by new workers. One that dies then is
reported as a fault of the machine: its chunks stay unlabelled, the run exits non-zero and the next run labels them.
"""

from __future__ import annotations

import concurrent.futures as cf
import concurrent.futures.process
import contextlib
import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
import typing as tp
from pathlib import Path

import soundfile as sf

from genrecraft.core.atomic import write_json

from .chunk import Chunk
from .faults import EnvironmentFault, classify, writing
from .label import LabelConfig, Labeler, Labels
from .label.taggers import VOCAL_DETECTOR
from .playlist import Failure

logger = logging.getLogger(__name__)
_worker_labeler: tp.Optional[Labeler] = None


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no-op elsewhere); exit now if it already has."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the line above ran
        os._exit(1)


def _init_worker(config: LabelConfig, parent_pid: tp.Optional[int] = None) -> None:
    global _worker_labeler

    if parent_pid is not None:
        die_with_parent(parent_pid)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the builder stops us
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _worker_labeler = Labeler(config)


def _label_file(path: str, target: str) -> tp.Optional[str]:
    """Label one chunk file into ``target``; returns an error text or None. Raises
    :class:`.faults.EnvironmentFault` when the machine fails (reading or writing a file)."""
    assert _worker_labeler is not None
    try:
        audio, sr = sf.read(path, dtype="float32", always_2d=True)
        labels = _worker_labeler(audio.mean(axis=1), sr)
    except Exception as exc:  # a chunk that cannot be labelled is reported, not fatal
        fault = classify(exc)
        if fault is not None:
            raise fault from exc
        return f"{type(exc).__name__}: {exc}"
    try:
        write_json(target, labels.to_dict())
    except OSError as exc:
        raise writing(target, exc) from exc
    return None


@contextlib.contextmanager
def _sigint_blocked() -> tp.Iterator[None]:
    """Workers started inside this block have Ctrl-C blocked from their first instruction (a child inherits the
    signal mask of the thread that starts it, across exec), so a Ctrl-C while one starts prints no traceback from
    it. A Ctrl-C that arrives meanwhile is raised (as KeyboardInterrupt) when the block ends, not inside it: the
    kernel may hand the signal to another of the builder's threads, whose handler would still interrupt this one,
    mid-way through sending a new worker its start-up data (the worker then dies with a traceback). The builder
    loses nothing."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    caught: tp.List[int] = []
    handler = signal.getsignal(signal.SIGINT)
    deferring = callable(handler) and threading.current_thread() is threading.main_thread()
    if deferring:
        signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        if deferring:
            signal.signal(signal.SIGINT, handler)
            if caught:
                handler(signal.SIGINT, None)  # the builder's own handler: raises KeyboardInterrupt


def _stop(pool: cf.ProcessPoolExecutor) -> None:
    """Stop a pool now: cancel what is queued and kill the workers (used on Ctrl-C and on a fatal fault)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.kill()
    for process in processes:
        process.join(timeout=5)
    if manager is not None:
        # The pool's manager thread closes its wake-up pipe as it ends; Python's exit hook for pools writes to that
        # pipe without a lock, and the two racing printed an OSError traceback after Ctrl-C (one CI run). With the
        # workers dead it ends at once.
        manager.join(timeout=10)


def _label_config(config) -> LabelConfig:
    return LabelConfig(tagger=config.tagger, bpm_method=config.bpm_method, tempo_octave=config.tempo_octave)


def _read_label(folder: Path, chunk: Chunk) -> tp.Optional[tp.Dict[str, tp.Any]]:
    path = folder / f"{chunk.chunk_id}.json"
    try:
        return json.loads(path.read_text()) if path.exists() else None
    except ValueError:
        return None  # half-written by a crash of an old version: label again


def _is_current(data: tp.Optional[tp.Mapping[str, tp.Any]], label_config: LabelConfig) -> bool:
    """Whether stored labels were made by the tagger and tempo method asked for now (labels from before tempo
    confidences, raw scores and the vocal detector are made again)."""
    return bool(data) and data.get("tagger") == label_config.tagger and \
        data.get("tempo_method") == label_config.tempo_method and data.get("tempo_confidence") is not None and \
        (data["tagger"] != "musicnn" or VOCAL_DETECTOR in data.get("scores", {}))


class LabelAhead:
    """Label chunks in worker processes while the builder goes on downloading and cutting the next songs.

    Downloading and chunking run in the builder's own process, one song after another; without this the labelling
    workers would wait for the whole playlist to be cut, and the builder would wait for them, so on 2 cores one
    core idles through each stage. :meth:`submit` hands a song's chunks to the workers as soon as they are cut;
    :meth:`close` waits for them. Only labels are written here: outcomes are not recorded, so :func:`label_chunks`
    (run afterwards, as before) reads the labels back, labels again whatever failed here, and reports it. A no-op
    with one worker (labelling then runs in the builder's process, after chunking). Use as a context manager: on
    an exception (Ctrl-C, a fatal fault) the workers are stopped at once."""

    def __init__(self, out: Path, config):
        self.folder = out / "labels"
        self.workers = config.workers
        self.label_config = _label_config(config)
        self._pool: tp.Optional[cf.ProcessPoolExecutor] = None
        self._futures: tp.List[cf.Future] = []

    def submit(self, chunks: tp.Sequence[Chunk]) -> None:
        if self.workers < 2:
            return
        for chunk in chunks:
            if _is_current(_read_label(self.folder, chunk), self.label_config):
                continue
            if self._pool is None:  # started on the first chunk to label: a rerun with nothing to do starts none
                self.folder.mkdir(parents=True, exist_ok=True)
                self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                    initializer=_init_worker,
                                                    initargs=(self.label_config, os.getpid()))
            try:
                with _sigint_blocked():  # submit starts the workers
                    self._futures.append(self._pool.submit(_label_file, chunk.path,
                                                           str(self.folder / f"{chunk.chunk_id}.json")))
            except concurrent.futures.process.BrokenProcessPool:
                # A worker died (kill -9, the OOM killer). Nothing is lost: label_chunks, after the cut, labels
                # with new workers whatever has no label yet.
                logger.warning("a labelling worker died (killed, or out of memory); the chunks it left are "
                               "labelled after the cut")
                self.workers = 0  # submit no more
                _stop(self._pool)
                self._pool = None
                return

    def close(self, progress: bool = True) -> None:
        """Wait for every submitted chunk (whatever its outcome) and stop the workers."""
        if self._pool is None:
            return
        from tqdm import tqdm

        with tqdm(total=len(self._futures), desc=f"Labelling ({self.label_config.tagger})", unit="chunk",
                  disable=not progress) as bar:
            for future in cf.as_completed(self._futures):
                future.exception()  # read, so nothing is logged as never retrieved; label_chunks reports it
                bar.update()
        self._pool.shutdown(wait=True)
        self._pool = None

    def __enter__(self) -> "LabelAhead":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._pool is not None and exc_type is not None:
            _stop(self._pool)
            self._pool = None


def label_chunks(chunks: tp.Sequence[Chunk], out: Path, config, progress: bool = True
                 ) -> tp.Tuple[tp.Dict[str, Labels], tp.List[Failure]]:
    """Labels of every chunk (computed or read back). ``config`` is the BuildConfig (tagger, bpm_method,
    tempo_octave, workers); chunks labelled with another tagger or tempo method are labelled again.

    Raises :class:`.faults.EnvironmentFault` (fatal) when nothing more can be written (disk full)."""
    from tqdm import tqdm

    folder = out / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    label_config = _label_config(config)

    stored = {}  # chunks labelled, and by the tagger and tempo method asked for now
    for chunk in chunks:
        data = _read_label(folder, chunk)
        if _is_current(data, label_config):
            stored[chunk.chunk_id] = data
    todo = [c for c in chunks if c.chunk_id not in stored]
    failures: tp.List[Failure] = []
    bar = tqdm(total=len(todo), desc=f"Labelling ({config.tagger})", unit="chunk", disable=not progress)

    def environment(chunk: Chunk, reason: str) -> Failure:
        return Failure("label", reason, chunk.path, 0, chunk.chunk_id, kind="environment")

    if todo:
        if config.workers == 1:
            _init_worker(label_config)
            for chunk in todo:
                try:
                    error = _label_file(chunk.path, str(folder / f"{chunk.chunk_id}.json"))
                except EnvironmentFault as exc:
                    if exc.fatal:
                        raise
                    failures.append(environment(chunk, str(exc)))
                    error = None
                if error:
                    failures.append(Failure("label", error, chunk.path, 0, chunk.chunk_id))
                bar.update()
        else:
            context = multiprocessing.get_context("spawn")
            pool = cf.ProcessPoolExecutor(config.workers, mp_context=context, initializer=_init_worker,
                                          initargs=(label_config, os.getpid()))
            lost: tp.List[Chunk] = []  # set when a worker dies
            try:
                pending: tp.Dict[cf.Future, Chunk] = {}
                queue = list(todo)
                while (queue or pending) and not lost:
                    while queue and len(pending) < 2 * config.workers:
                        try:
                            with _sigint_blocked():  # submit starts the workers
                                future = pool.submit(_label_file, queue[0].path,
                                                     str(folder / f"{queue[0].chunk_id}.json"))
                        except concurrent.futures.process.BrokenProcessPool:
                            lost = [*pending.values(), *queue]
                            break
                        pending[future] = queue.pop(0)
                    if lost:
                        break
                    finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                    for future in finished:
                        chunk = pending.pop(future)
                        try:
                            error = future.result()
                        except concurrent.futures.process.BrokenProcessPool:
                            lost = [chunk, *pending.values(), *queue]
                            break
                        except EnvironmentFault as exc:
                            if exc.fatal:
                                raise
                            failures.append(environment(chunk, str(exc)))
                            error = None
                        if error:
                            failures.append(Failure("label", error, chunk.path, 0, chunk.chunk_id))
                        bar.update()
            except BaseException:
                _stop(pool)
                raise
            pool.shutdown(wait=True)
            # A worker died (kill -9, the OOM killer), before a chunk was handed over or while it ran: the pool is
            # gone; nothing it held is a verdict on the chunks, which the next run labels (those that finished in
            # the meantime keep their labels).
            lost = [c for c in lost if not _is_current(_read_label(folder, c), label_config)]
            failures += [environment(c, "a labelling worker died (killed, or out of memory); rerun to label this "
                                        "chunk") for c in lost]
            bar.update(len(lost))
    bar.close()
    labels = {}
    for chunk in chunks:  # what was stored before, else what this run wrote (or the old file if labelling failed)
        data = stored.get(chunk.chunk_id) or _read_label(folder, chunk)
        if data is not None:
            labels[chunk.chunk_id] = Labels.from_dict(data)
    return labels, failures
