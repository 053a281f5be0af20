"""Cut songs into fixed-length chunks at the training sample rate, streaming, sample-exact.

Audio is decoded block by block (soundfile, resampled with soxr's streaming resampler; formats libsndfile
cannot read go through an ``ffmpeg`` pipe instead), so a two-hour file never sits in memory. Each chunk is a
16-bit mono WAV named ``{song id}-{start in ms:08d}.wav``; silent chunks are skipped. While streaming, a song
fingerprint is computed for duplicate detection (:mod:`.dedupe`). A song is done when its ``_done.json``
exists; a song that cannot be decoded gets ``_failed.json`` with the reason. Both make reruns skip it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import typing as tp
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from genrecraft.atomic import atomic_path, write_json

from .dedupe import ChromaAccumulator
from .download import Item
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


def rms_db(x: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
    return 20.0 * np.log10(rms) if rms > 0 else -float("inf")


def chunk_item(item: Item, out: Path, config) -> tp.Tuple[tp.List[Chunk], tp.Dict[str, tp.Any]]:
    """Cut one song; returns its chunks and its fingerprint record. Idempotent: finished songs are read back."""
    folder = out / "chunks" / item.item_id
    done = folder / "_done.json"
    if done.exists():
        record = json.loads(done.read_text())
        return [Chunk(**c) for c in record["chunks"]], record
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
            with atomic_path(path) as tmp:
                sf.write(tmp, samples, sr, subtype="PCM_16", format="WAV")
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
        reason = str(exc) if isinstance(exc, DecodeError) else f"cannot decode: {exc}"
        write_json(folder / "_failed.json", {"reason": reason})
        raise DecodeError(reason) from exc
    total = position + len(pending)
    if len(pending):
        ratio = len(pending) / length
        if config.remainder == "keep" or (config.remainder == "drop-short" and ratio >= config.min_segment_ratio):
            emit(pending, position)
    record = {"item_id": item.item_id, "duration": total / sr, "pcm_sha1": digest.hexdigest(),
              "chroma": chroma.signature().round(4).tolist(), "silent_chunks": skipped_silent,
              "chunks": [c.to_dict() for c in chunks]}
    if total < config.min_segment_ratio * length and not chunks:
        record["reason"] = (f"shorter than one chunk ({total / sr:.1f} s < {config.min_segment_ratio:.0%} of "
                            f"{config.chunk_seconds:g} s)")
    elif not chunks:
        record["reason"] = f"silent (every chunk below {config.silence_db:g} dBFS)"
    write_json(done, record)
    return chunks, record


def chunk_all(items: tp.Sequence[Item], out: Path, config, progress: bool = True
              ) -> tp.Tuple[tp.List[Chunk], tp.Dict[str, dict], tp.List[Failure]]:
    """Stage 2: chunk every song. Returns chunks, fingerprint records by song id, and failures."""
    from tqdm import tqdm

    chunks: tp.List[Chunk] = []
    records: tp.Dict[str, dict] = {}
    failures: tp.List[Failure] = []
    for item in tqdm(items, desc="Chunking", unit="song", disable=not progress):
        failed = out / "chunks" / item.item_id / "_failed.json"
        if failed.exists():
            failures.append(Failure("chunk", json.loads(failed.read_text())["reason"], item.origin, item.line,
                                    item.item_id))
            continue
        try:
            found, record = chunk_item(item, out, config)
        except DecodeError as exc:
            failures.append(Failure("chunk", str(exc), item.origin, item.line, item.item_id))
            continue
        if record.get("reason"):
            failures.append(Failure("chunk", record["reason"], item.origin, item.line, item.item_id))
        chunks += found
        records[item.item_id] = record
    return chunks, records, failures
