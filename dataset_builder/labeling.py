"""Stage 3: label every chunk (key, tempo, loudness, genres, moods, instruments), in parallel, resumable.

Each chunk's labels are written to ``labels/<chunk id>.json`` as soon as they are computed; a rerun labels only
what is missing. Workers are separate processes (``spawn``), each loading the models once; at most two tasks per
worker are in flight, so memory stays bounded whatever the number of chunks.

Workers die with the builder: on Linux each asks the kernel for SIGKILL when its parent dies
(``PR_SET_PDEATHSIG``), so a kill -9 of the builder (what the OOM killer sends) leaves no worker behind, and they
ignore Ctrl-C (the builder stops them). A worker that dies (killed, out of memory) is reported as a fault of the
machine: its chunks stay unlabelled, the run exits non-zero and the next run labels them.
"""

from __future__ import annotations

import concurrent.futures as cf
import concurrent.futures.process
import contextlib
import json
import multiprocessing
import os
import signal
import sys
import typing as tp
from pathlib import Path

import soundfile as sf

from genrecraft.core.atomic import write_json

from .chunk import Chunk
from .faults import EnvironmentFault, classify, writing
from .label import LabelConfig, Labeler, Labels
from .playlist import Failure

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
    it. The builder loses nothing: a SIGINT that arrives meanwhile waits, or goes to another thread, and still
    raises KeyboardInterrupt here."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _stop(pool: cf.ProcessPoolExecutor) -> None:
    """Stop a pool now: cancel what is queued and kill the workers (used on Ctrl-C and on a fatal fault)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.kill()
    for process in processes:
        process.join(timeout=5)


def label_chunks(chunks: tp.Sequence[Chunk], out: Path, config, progress: bool = True
                 ) -> tp.Tuple[tp.Dict[str, Labels], tp.List[Failure]]:
    """Labels of every chunk (computed or read back). ``config`` is the BuildConfig (tagger, bpm_method,
    tempo_octave, workers); chunks labelled with another tagger or tempo method are labelled again.

    Raises :class:`.faults.EnvironmentFault` (fatal) when nothing more can be written (disk full)."""
    from tqdm import tqdm

    folder = out / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    label_config = LabelConfig(tagger=config.tagger, bpm_method=config.bpm_method, tempo_octave=config.tempo_octave)

    def read(chunk: Chunk) -> tp.Optional[tp.Dict[str, tp.Any]]:
        path = folder / f"{chunk.chunk_id}.json"
        try:
            return json.loads(path.read_text()) if path.exists() else None
        except ValueError:
            return None  # half-written by a crash of an old version: label again

    stored = {}  # chunks labelled, and by the tagger and tempo method asked for now
    for chunk in chunks:
        data = read(chunk)
        if (data and data.get("tagger") == config.tagger and data.get("tempo_method") == label_config.tempo_method
                and data.get("tempo_confidence") is not None):  # labels before confidences and raw scores: again
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
            try:
                pending: tp.Dict[cf.Future, Chunk] = {}
                queue = list(todo)
                while queue or pending:
                    while queue and len(pending) < 2 * config.workers:
                        chunk = queue.pop(0)
                        with _sigint_blocked():  # submit starts the workers
                            future = pool.submit(_label_file, chunk.path, str(folder / f"{chunk.chunk_id}.json"))
                        pending[future] = chunk
                    finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                    for future in finished:
                        chunk = pending.pop(future)
                        try:
                            error = future.result()
                        except concurrent.futures.process.BrokenProcessPool:
                            # A worker died (kill -9, the OOM killer): the pool is gone; nothing it held is a
                            # verdict on the chunks, which the next run labels.
                            lost = [chunk, *pending.values(), *queue]
                            failures += [environment(c, "a labelling worker died (killed, or out of memory); "
                                                        "rerun to label this chunk") for c in lost]
                            pending, queue = {}, []
                            bar.update(len(lost))
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
    bar.close()
    labels = {}
    for chunk in chunks:  # what was stored before, else what this run wrote (or the old file if labelling failed)
        data = stored.get(chunk.chunk_id) or read(chunk)
        if data is not None:
            labels[chunk.chunk_id] = Labels.from_dict(data)
    return labels, failures
