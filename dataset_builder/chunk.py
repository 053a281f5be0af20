"""Cut songs into fixed-length chunks at the training sample rate, streaming, sample-exact.

Audio is decoded block by block (soundfile, resampled with soxr's streaming resampler; formats libsndfile
cannot read go through an ``ffmpeg`` pipe instead), so a two-hour file never sits in memory. Each chunk is a
16-bit mono WAV named ``{song id}-{start in ms:08d}.wav``; silent chunks are skipped. While streaming, a song
fingerprint is computed for duplicate detection (:mod:`.dedupe`). A song is done when its ``_done.json``
exists; a song that cannot be decoded gets ``_failed.json`` with the reason. Both make reruns skip it
(``--retry-failed`` tries the failed ones again).

``_done.json`` records the options that shaped the chunks (:func:`chunking`: sample rate, chunk length, remainder
rule, minimum last-chunk ratio, silence level) and chunk paths relative to ``--out``. A rerun with other options
cuts the song again and drops the labels of its old chunks. A failure to read the input for a reason of the
machine (permission denied) or to write a chunk (disk full) is an :class:`.faults.EnvironmentFault`: never
recorded as the song's fault.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import subprocess
import typing as tp
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from genrecraft.core.atomic import atomic_path, write_json

from .dedupe import ChromaAccumulator
from .download import Item
from .faults import EnvironmentFault, classify, writing
from .playlist import Failure

BLOCK_SECONDS = 10.0


class DecodeError(RuntimeError):
    """An input file is not audio we can decode."""


def _soundfile_blocks(path: str, sample_rate: int) -> tp.Iterator[np.ndarray]:
    with sf.SoundFile(path) as f:
        if f.frames == 0:
            return
        resampler = None if f.samplerate == sample_rate else soxr.ResampleStream(
            f.samplerate, sample_rate, 1, dtype="float32", quality="HQ")
        block = max(1, int(BLOCK_SECONDS * f.samplerate))
        while True:
            data = f.read(block, dtype="float32", always_2d=True)
            last = len(data) < block
            mono = data.mean(axis=1) if len(data) else np.zeros(0, np.float32)
            out = resampler.resample_chunk(mono, last=last) if resampler else mono
            if len(out):
                yield out.astype(np.float32, copy=False)
            if last:
                return


def _ffmpeg_blocks(path: str, sample_rate: int) -> tp.Iterator[np.ndarray]:
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-vn", "-f", "f32le", "-ac", "1", "-ar",
           str(sample_rate), "-af", "aresample=resampler=soxr", "-"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    block_bytes = int(BLOCK_SECONDS * sample_rate) * 4
    leftover = b""
    try:
        while True:
            data = proc.stdout.read(block_bytes)
            if not data:
                break
            data = leftover + data
            usable = len(data) - len(data) % 4
            leftover = data[usable:]
            yield np.frombuffer(data[:usable], dtype="<f4").astype(np.float32)
    finally:
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace").strip()
        code = proc.wait()
    if code != 0:
        raise DecodeError(f"ffmpeg could not decode it: {err.splitlines()[-1] if err else f'exit {code}'}")


def decode_blocks(path: tp.Union[str, Path], sample_rate: int) -> tp.Iterator[np.ndarray]:
    """Mono float32 blocks of ``path`` at ``sample_rate`` (about 10 s each)."""
    path = str(path)
    try:
        sf.info(path)
    except (RuntimeError, sf.LibsndfileError):
        yield from _ffmpeg_blocks(path, sample_rate)
        return
    yield from _soundfile_blocks(path, sample_rate)


@dataclasses.dataclass
class Chunk:
    chunk_id: str
    item_id: str
    path: str
    start: float  # seconds into the song
    duration: float  # seconds
    rms_db: float

    def to_dict(self):
        return dataclasses.asdict(self)


def chunking(config) -> tp.Dict[str, tp.Any]:
    """The options that decide which chunk files a song gives (recorded in its ``_done.json``)."""
    return {"sample_rate": int(config.sample_rate), "chunk_seconds": float(config.chunk_seconds),
            "remainder": config.remainder, "min_segment_ratio": float(config.min_segment_ratio),
            "silence_db": float(config.silence_db)}


def chunk_path(out: Path, item_id: str, chunk_id: str) -> Path:
    return out / "chunks" / item_id / f"{chunk_id}.wav"


def read_done(done: Path, out: Path) -> tp.Tuple[tp.List[Chunk], tp.Dict[str, tp.Any]]:
    """Chunks and record of a finished song, with paths under ``out`` wherever it is now."""
    record = json.loads(done.read_text())
    chunks = [Chunk(**c) for c in record["chunks"]]
    for chunk in chunks:
        chunk.path = str(chunk_path(out, chunk.item_id, chunk.chunk_id))
    return chunks, record


def _forget(folder: Path, out: Path, item_id: str) -> None:
    """Remove a song's chunks and their labels (before cutting it again with other options)."""
    (folder / "_done.json").unlink(missing_ok=True)
    for path in folder.iterdir():
        if path.suffix in (".wav", ".json"):
            path.unlink()
    pattern = re.compile(re.escape(item_id) + r"-\d{8}")
    labels = out / "labels"
    if labels.is_dir():
        for path in labels.glob(f"{item_id}-*.json"):
            if pattern.fullmatch(path.stem):
                path.unlink()


def rms_db(x: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
    return 20.0 * np.log10(rms) if rms > 0 else -float("inf")


def chunk_item(item: Item, out: Path, config, legacy: tp.Optional[tp.Mapping[str, tp.Any]] = None
               ) -> tp.Tuple[tp.List[Chunk], tp.Dict[str, tp.Any]]:
    """Cut one song; returns its chunks and its fingerprint record. Idempotent: finished songs are read back,
    unless they were cut with other options (then they are cut again). ``legacy``: the options of records written
    before ``_done.json`` recorded them (from the previous ``build_config.json``)."""
    folder = out / "chunks" / item.item_id
    done = folder / "_done.json"
    wanted = chunking(config)
    if done.exists():
        try:
            chunks, record = read_done(done, out)
        except (ValueError, TypeError, KeyError):
            chunks, record = [], {"chunking": None}  # unreadable: cut again
        if record.get("chunking", legacy) == wanted:
            return chunks, record
        _forget(folder, out, item.item_id)
    try:
        with open(item.audio, "rb"):
            pass
    except OSError as exc:
        fault = classify(exc)
        if fault is not None:
            raise EnvironmentFault(f"cannot read {item.audio}: {fault}", fatal=fault.fatal) from exc
    folder.mkdir(parents=True, exist_ok=True)
    sr, length = config.sample_rate, config.chunk_samples
    chunks: tp.List[Chunk] = []
    pending = np.zeros(0, dtype=np.float32)
    position = 0  # samples of the song consumed so far
    digest = hashlib.sha1()
    chroma = ChromaAccumulator(sr)
    skipped_silent = 0

    def emit(samples: np.ndarray, start: int) -> None:
        nonlocal skipped_silent
        level = rms_db(samples)
        if level < config.silence_db:
            skipped_silent += 1
            return
        chunk_id = f"{item.item_id}-{int(round(1000 * start / sr)):08d}"
        path = folder / f"{chunk_id}.wav"
        if not path.exists():
            try:
                with atomic_path(path) as tmp:
                    sf.write(tmp, samples, sr, subtype="PCM_16", format="WAV")
            except Exception as exc:  # writing our own file: the machine's fault whatever the error says
                raise writing(path, exc) from exc
        chunks.append(Chunk(chunk_id, item.item_id, str(path), start / sr, len(samples) / sr, round(level, 2)))

    try:
        for block in decode_blocks(item.audio, sr):
            if not np.all(np.isfinite(block)):
                raise DecodeError("decoded audio holds NaN or infinite samples")
            digest.update(np.clip(block * 32767.0, -32768, 32767).astype("<i2").tobytes())
            chroma.update(block)
            pending = np.concatenate([pending, block])
            while len(pending) >= length:
                emit(pending[:length], position)
                pending = pending[length:]
                position += length
    except (DecodeError, RuntimeError, sf.LibsndfileError, OSError) as exc:
        fault = None if isinstance(exc, DecodeError) else classify(exc)
        if fault is not None:
            raise EnvironmentFault(f"reading {item.audio}: {fault}", fatal=fault.fatal) from exc
        reason = str(exc) if isinstance(exc, DecodeError) else f"cannot decode: {exc}"
        try:
            write_json(folder / "_failed.json", {"reason": reason})
        except OSError as write_exc:
            raise writing(folder / "_failed.json", write_exc) from write_exc
        raise DecodeError(reason) from exc
    total = position + len(pending)
    if len(pending):
        ratio = len(pending) / length
        if config.remainder == "keep" or (config.remainder == "drop-short" and ratio >= config.min_segment_ratio):
            emit(pending, position)
    stored = [dict(c.to_dict(), path=str(Path(c.path).relative_to(out))) for c in chunks]
    record = {"item_id": item.item_id, "duration": total / sr, "pcm_sha1": digest.hexdigest(),
              "chroma": chroma.signature().round(4).tolist(), "silent_chunks": skipped_silent,
              "chunking": wanted, "chunks": stored}
    if total < config.min_segment_ratio * length and not chunks:
        record["reason"] = (f"shorter than one chunk ({total / sr:.1f} s < {config.min_segment_ratio:.0%} of "
                            f"{config.chunk_seconds:g} s)")
    elif not chunks:
        record["reason"] = f"silent (every chunk below {config.silence_db:g} dBFS)"
    try:
        write_json(done, record)
    except OSError as exc:
        raise writing(done, exc) from exc
    return chunks, record


def chunk_one(item: Item, out: Path, config, retry_failed: bool = False,
              legacy: tp.Optional[tp.Mapping[str, tp.Any]] = None
              ) -> tp.Tuple[tp.List[Chunk], tp.Optional[dict], tp.Optional[Failure]]:
    """Chunk one song of stage 2: its chunks, its fingerprint record (None if it failed) and its failure, if any.

    Raises :class:`.faults.EnvironmentFault` (fatal) when nothing more can be written (disk full)."""
    failed = out / "chunks" / item.item_id / "_failed.json"
    if failed.exists() and retry_failed:
        failed.unlink()
    if failed.exists():
        try:
            reason = json.loads(failed.read_text())["reason"]
        except (ValueError, KeyError, TypeError):
            reason = None
        if reason:
            return [], None, Failure("chunk", reason, item.origin, item.line, item.item_id)
    try:
        found, record = chunk_item(item, out, config, legacy)
    except DecodeError as exc:
        return [], None, Failure("chunk", str(exc), item.origin, item.line, item.item_id)
    except EnvironmentFault as exc:
        if exc.fatal:
            raise
        return [], None, Failure("chunk", str(exc), item.origin, item.line, item.item_id, kind="environment")
    failure = Failure("chunk", record["reason"], item.origin, item.line, item.item_id) if record.get("reason") \
        else None
    return found, record, failure


def chunk_all(items: tp.Sequence[Item], out: Path, config, progress: bool = True, retry_failed: bool = False,
              legacy: tp.Optional[tp.Mapping[str, tp.Any]] = None,
              done: tp.Optional[tp.Mapping[str, tp.Tuple[tp.List[Chunk], tp.Optional[dict],
                                                         tp.Optional[Failure]]]] = None
              ) -> tp.Tuple[tp.List[Chunk], tp.Dict[str, dict], tp.List[Failure]]:
    """Stage 2: chunk every song. Returns chunks, fingerprint records by song id, and failures. ``done``:
    :func:`chunk_one`'s results for songs already cut in this run (the builder cuts each song as soon as it is
    downloaded), by song id.

    Raises :class:`.faults.EnvironmentFault` (fatal) when nothing more can be written (disk full)."""
    from tqdm import tqdm

    chunks: tp.List[Chunk] = []
    records: tp.Dict[str, dict] = {}
    failures: tp.List[Failure] = []
    done = done or {}
    todo = [item for item in items if item.item_id not in done]
    for item in tqdm(items, desc="Chunking", unit="song", disable=not progress or not todo):
        if item.item_id in done:
            found, record, failure = done[item.item_id]
        else:
            found, record, failure = chunk_one(item, out, config, retry_failed, legacy)
        if failure is not None:
            failures.append(failure)
        if record is not None:
            chunks += found
            records[item.item_id] = record
    return chunks, records, failures
