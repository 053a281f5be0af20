"""Reading audio for evaluation: any file to mono float32 at a given rate, and finding the files of a set.

A "set" of clips (for FAD, spectral distances, generation prompts) is named by one path: a folder (searched
recursively for audio files), an audiocraft manifest (``data.jsonl`` or a folder holding one, as written by
``python -m dataset_builder``), or a text file with one audio path per line.
"""

from __future__ import annotations

import json
import typing as tp
from pathlib import Path

import numpy as np

from .atomic import atomic_path, write_text

AUDIO_EXTS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac")


def load_audio(path: tp.Union[str, Path], sample_rate: int, offset: float = 0.0,
               duration: tp.Optional[float] = None) -> np.ndarray:
    """Audio of ``path`` as mono float32 [samples] at ``sample_rate`` (channels averaged, soxr resampling).

    ``offset`` and ``duration`` (seconds) read a part. Formats soundfile cannot read (mp3 on old libsndfile, m4a,
    opus) go through audiocraft's ffmpeg-based reader.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        info = sf.info(str(path))
        start = int(round(offset * info.samplerate))
        frames = -1 if duration is None else int(round(duration * info.samplerate))
        audio, sr = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
        audio = audio.mean(axis=1)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        from audiocraft.data.audio import audio_read

        wav, sr = audio_read(path, seek_time=offset, duration=-1 if duration is None else duration)
        audio = wav.mean(dim=0).numpy().astype(np.float32)
    return resample(audio, sr, sample_rate)


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample mono ``audio`` [samples] from ``sr_in`` to ``sr_out`` (soxr, high quality); float32."""
    audio = np.asarray(audio, dtype=np.float32)
    if sr_in == sr_out:
        return audio
    import soxr

    return soxr.resample(audio, sr_in, sr_out, quality="HQ").astype(np.float32)


def _manifest_file(path: Path) -> tp.Optional[Path]:
    if path.is_dir():
        for name in ("data.jsonl", "data.jsonl.gz"):
            if (path / name).is_file():
                return path / name
        return None
    if path.name.endswith((".jsonl", ".jsonl.gz")):
        return path
    return None


def read_manifest(path: tp.Union[str, Path]) -> tp.List[tp.Dict[str, tp.Any]]:
    """Entries of an audiocraft manifest (``data.jsonl[.gz]`` or its folder), each with its MusicInfo sidecar
    (``<clip>.json`` next to the audio, as audiocraft's MusicDataset reads it) under ``"info"`` ({} if none)."""
    import gzip

    file = _manifest_file(Path(path))
    if file is None:
        raise ValueError(f"manifest={str(path)!r}: expected a data.jsonl file or a folder holding one (e.g. "
                         "<dataset>/egs/test as written by python -m dataset_builder)")
    opener = gzip.open if file.name.endswith(".gz") else open
    entries = []
    with opener(file, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{file}:{n}: not valid JSON ({exc})") from exc
            if not isinstance(entry, dict):
                raise ValueError(f"{file}:{n}: each line must be a JSON object (an AudioMeta), got "
                                 f"{type(entry).__name__}")
            for field, kinds in (("path", (str,)), ("duration", (int, float)), ("sample_rate", (int,))):
                if field not in entry:
                    raise ValueError(f"{file}:{n}: entry has no {field!r} field (audiocraft's AudioMeta needs path, "
                                     "duration and sample_rate)")
                if not isinstance(entry[field], kinds) or isinstance(entry[field], bool):
                    raise ValueError(f"{file}:{n}: {field!r} is {entry[field]!r}, not a "
                                     f"{' or '.join(k.__name__ for k in kinds)}")
            sidecar = Path(entry["path"]).with_suffix(".json")
            try:
                entry["info"] = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.is_file() else {}
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(f"{sidecar} (sidecar of {file}:{n}) is not valid JSON ({exc})") from exc
            entries.append(entry)
    if not entries:
        raise ValueError(f"manifest {file} is empty")
    return entries


def audio_meta(path: tp.Union[str, Path], duration: float, sample_rate: int) -> tp.Dict[str, tp.Any]:
    """One manifest line as audiocraft's ``AudioMeta`` reads it (absolute path, no amplitude, weight or info path)."""
    return {"path": str(Path(path).resolve()), "duration": round(float(duration), 6), "sample_rate": int(sample_rate),
            "amplitude": None, "weight": None, "info_path": None}


def write_manifest(path: tp.Union[str, Path], entries: tp.Iterable[tp.Mapping[str, tp.Any]]) -> Path:
    """Write an audiocraft manifest (``data.jsonl``: one :func:`audio_meta` per line), atomically; the one writer
    of what :func:`read_manifest` reads."""
    write_text(path, "".join(json.dumps(dict(e), ensure_ascii=False) + "\n" for e in entries))
    return Path(path)


def dset_yaml(splits: tp.Mapping[str, tp.Union[str, Path]], sample_rate: int, comment: str = "") -> str:
    """A Dora dataset config (``dset=audio/<name>``) pointing audiocraft's ``train``, ``valid``, ``evaluate``
    and ``generate`` datasources at manifest folders."""
    lines = ["# @package __global__"] + ([f"# {comment}"] if comment else [])
    lines += ["datasource:", f"  max_sample_rate: {sample_rate}", "  max_channels: 1"]
    lines += [f"  {split}: {Path(splits[split]).resolve()}" for split in ("train", "valid", "evaluate", "generate")]
    return "\n".join(lines) + "\n"


def list_audio(source: tp.Union[str, Path]) -> tp.List[Path]:
    """The audio files of a set: a folder (recursive, sorted), a manifest, or a text file of paths."""
    source = Path(source)
    manifest = _manifest_file(source)
    if manifest is not None:
        return [Path(e["path"]) for e in read_manifest(manifest)]
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in AUDIO_EXTS and p.is_file())
        if not files:
            raise ValueError(f"{source}: no audio files ({', '.join(AUDIO_EXTS)}) in this folder")
        return files
    if source.is_file() and source.suffix.lower() in (".txt", ".lst"):
        lines = [line.strip() for line in source.read_text(encoding="utf-8").splitlines()]
        return [Path(line) for line in lines if line and not line.startswith("#")]
    if source.is_file() and source.suffix.lower() in AUDIO_EXTS:
        return [source]
    raise ValueError(f"{str(source)!r} is not a folder of audio, a manifest (data.jsonl) or a list of paths")


def file_digest(path: tp.Union[str, Path], chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes (hex)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def write_wav(path: tp.Union[str, Path], audio: np.ndarray, sample_rate: int, subtype: str = "FLOAT") -> Path:
    """Write mono [T] or [C, T] audio as a WAV (``subtype``: ``FLOAT``, ``PCM_16``, ...), atomically; returns
    ``path``. The one WAV writer of evaluation clips and listening-test clips."""
    import soundfile as sf

    audio = np.asarray(audio, dtype=np.float32)
    data = audio.T if audio.ndim == 2 else audio
    with atomic_path(path) as tmp:
        sf.write(str(tmp), data, sample_rate, subtype=subtype, format="WAV")
    return Path(path)
