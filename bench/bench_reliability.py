"""Faults and bad input, tried as a user meets them: does each end cleanly?

    python bench/bench_reliability.py            # every case (about 5 minutes on 2 cores)
    python bench/bench_reliability.py --quick    # the dataset builder cases without kill -9 series

A case is ``clean`` when it ended with a clear message (the expected exit code, one ``error:`` line, no
traceback) or a clean skip, nothing was lost (after the rerun the manifests equal those of an uninterrupted build)
and nothing was written outside ``--out`` (besides the one dset config in the work dir). Builder runs go through
the command line (``python -m dataset_builder``) on three synthetic 8 s songs cut into 3 s chunks with
``--tagger none``; a few faults that cannot be produced from outside (permission denied as root, a network
time-out) are injected by a wrapper that patches one function before calling the same ``main``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import typing as tp
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genrecraft.core.procs import alive, children, wait_for_workers, wait_gone  # noqa: E402
from genrecraft.core.serve import FolderServer  # noqa: E402

BUILD = ["--tagger", "none", "--chunk-seconds", "3", "--name", "rel_bench", "--quiet"]
PATCHED_MAIN = """
import errno, sys, builtins
from dataset_builder import __main__ as m, chunk, download
kind = sys.argv.pop(1)
if kind == "eacces":
    def denied(p, *a, **k):
        if str(p).endswith("song1.wav"):
            raise PermissionError(errno.EACCES, "Permission denied", str(p))
        return builtins.open(p, *a, **k)
    chunk.open = denied
elif kind == "enospc":
    import soundfile, itertools
    real, calls = soundfile.write, itertools.count()
    def full(*a, **k):
        if next(calls) >= 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*a, **k)
    soundfile.write = full
elif kind == "timeout":
    real_fetch = download.fetch
    def slow(entry, out, config):
        if entry.location.endswith("song1.wav"):
            import yt_dlp
            raise yt_dlp.utils.DownloadError("ERROR: Unable to download webpage: The read operation timed out")
        return real_fetch(entry, out, config)
    download.fetch = slow
sys.exit(m.main(sys.argv[1:]))
"""


class Sandbox:
    """Songs, a playlist, and a snapshot to tell what a run wrote outside ``--out``."""

    def __init__(self, root: Path, songs: Path):
        self.root = root
        self.songs = songs
        self.playlist = root / "playlist.txt"
        self.playlist.write_text("".join(f"{songs / f'song{i}.wav'}  artist=A{i}\n" for i in range(3)))

    def files(self, skip: tp.Sequence[Path]) -> tp.Set[Path]:
        return {p for p in self.root.rglob("*") if p.is_file() and not any(p.is_relative_to(s) for s in skip)}


def _builder(*args: tp.Any, patch: str = "", timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", PATCHED_MAIN, patch] if patch else [sys.executable, "-m", "dataset_builder"]
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def _message(proc: subprocess.CompletedProcess, code: int, *needles: str) -> tp.Tuple[bool, str]:
    """Whether ``proc`` exited with ``code`` and one error line holding every needle, without a traceback."""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    line = errors[0] if errors else (proc.stderr.strip().splitlines() or [""])[-1]
    ok = (proc.returncode == code and "Traceback" not in proc.stderr and len(errors) == (1 if code else 0)
          and all(n in proc.stderr for n in needles))
    return ok, f"exit {proc.returncode}: {line[:150]}"


def _manifest(out: Path) -> tp.Optional[tp.Dict[str, tp.List[str]]]:
    try:
        return {s: sorted(Path(json.loads(line)["path"]).name
                          for line in (out / "egs" / s / "data.jsonl").read_text().splitlines())
                for s in ("train", "valid", "test")}
    except OSError:
        return None


def _start(box: Sandbox, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dataset_builder", str(box.playlist), "--out", str(out), *BUILD,
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            start_new_session=True)


# -- the cases ---------------------------------------------------------------------------------------------------

Case = tp.Callable[[Sandbox, Path, dict], tp.Tuple[bool, str]]


def _recovered(box: Sandbox, out: Path, ref: dict, before: tp.Set[Path], *extra: str) -> tp.Tuple[bool, str]:
    """Rerun the plain command: exit 0, the reference manifests, nothing new outside --out."""
    proc = _builder(box.playlist, "--out", out, *BUILD, *extra)
    same = _manifest(out) == ref
    outside = box.files([out]) - before
    ok = proc.returncode == 0 and same and not outside
    return ok, (f"rerun exit {proc.returncode}, manifests {'equal' if same else 'DIFFER'}"
                + (f", wrote outside --out: {sorted(map(str, outside))[:2]}" if outside else ""))


def disk_full_tmpfs(box, tmp, ref):
    mount = tmp / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        return disk_full_patched(box, tmp, ref, note="tmpfs not mountable here; patched write: ")
    try:
        out = mount / "out"
        before = box.files([mount])
        ok, detail = _message(_builder(box.playlist, "--out", out, *BUILD), 1, "No space left on device", "rerun")
        remembered = list(out.rglob("_failed.json")) + list(out.rglob("skips/*.json"))
        subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)
        ok2, detail2 = _recovered(box, out, ref, before)
        return ok and ok2 and not remembered, f"{detail}; nothing remembered: {not remembered}; {detail2}"
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def disk_full_patched(box, tmp, ref, note=""):
    out = tmp / "out"
    before = box.files([out])
    ok, detail = _message(_builder(box.playlist, "--out", out, *BUILD, patch="enospc"), 1, "No space left")
    remembered = list(out.rglob("_failed.json"))
    ok2, detail2 = _recovered(box, out, ref, before)
    return ok and ok2 and not remembered, f"{note}{detail}; {detail2}"


def permission_denied(box, tmp, ref):
    out = tmp / "out"
    before = box.files([out])
    ok, detail = _message(_builder(box.playlist, "--out", out, *BUILD, patch="eacces"), 1, "Permission denied")
    ok2, detail2 = _recovered(box, out, ref, before)
    return ok and ok2 and not list(out.rglob("_failed.json")), f"{detail}; {detail2}"


def killed_worker(box, tmp, ref):
    out = tmp / "out"
    before = box.files([out])
    proc = _start(box, out, "--workers", "2")
    workers = wait_for_workers(proc, 2)
    if len(workers) < 2:
        proc.kill()
        return False, "the workers did not start"
    os.kill(sorted(workers)[0], signal.SIGKILL)
    proc.wait(timeout=300)
    proc = subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.read(), proc.stderr.read())
    # While songs are still being cut, the builder labels the dead worker's chunks afterwards (exit 0, a warning);
    # once the cut is over, it reports them and the rerun labels them (exit 1).
    ok, detail = max(_message(proc, 0, "worker died"), _message(proc, 1, "worker died"))
    ok2, detail2 = _recovered(box, out, ref, before, "--workers", "2")
    return ok and ok2, f"{detail}; {detail2}"


def _kill9_series(box, tmp, ref, workers: int, times: int):
    out = tmp / "out"
    before = box.files([out])
    rng = random.Random(workers)
    orphans = 0
    for attempt in range(times):
        proc = _start(box, out, "--workers", str(workers))
        if attempt == 0 and workers > 1:
            wait_for_workers(proc, workers)  # once while the workers run for sure, then at random moments
        else:
            time.sleep(rng.uniform(0.5, 6.0))
        kids = children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        wait_gone(kids, 10)
        orphans += sum(alive(k) for k in kids)
    ok2, detail2 = _recovered(box, out, ref, before, "--workers", str(workers))
    tmp_left = list(out.rglob("*.tmp-*"))
    return ok2 and not orphans and not tmp_left, (f"{times} kills at random moments, {orphans} orphaned worker(s), "
                                                  f"{len(tmp_left)} temp file(s) left; {detail2}")


def kill9_one_worker(box, tmp, ref, times=3):
    return _kill9_series(box, tmp, ref, 1, times)


def kill9_two_workers(box, tmp, ref, times=3):
    return _kill9_series(box, tmp, ref, 2, times)


def ctrl_c(box, tmp, ref):
    out = tmp / "out"
    before = box.files([out])
    proc = _start(box, out, "--workers", "2")
    workers = wait_for_workers(proc, 2)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    left = [w for w in workers if alive(w)]
    ok = proc.returncode == 130 and len(lines) == 1 and "Traceback" not in err and not left
    ok2, detail2 = _recovered(box, out, ref, before)
    return ok and ok2, f"exit {proc.returncode}: {lines[-1][:100] if lines else ''} ({len(lines)} line(s)); {detail2}"


def two_builders(box, tmp, ref):
    out = tmp / "out"
    first = _start(box, out, "--workers", "2")
    deadline = time.time() + 60
    while time.time() < deadline and not (out / ".lock").exists():
        time.sleep(0.05)
    time.sleep(0.5)
    second = _builder(box.playlist, "--out", out, *BUILD)
    first.wait(timeout=300)
    ok, detail = _message(second, 2, "another dataset builder", f"pid {first.pid}")
    return ok and first.returncode == 0 and _manifest(out) == ref, f"second: {detail}; first exit {first.returncode}"


def foreign_folder(box, tmp, ref):
    out = tmp / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    ok, detail = _message(_builder(box.playlist, "--out", out, *BUILD), 2, "--force")
    untouched = sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    forced = _builder(box.playlist, "--out", out, *BUILD, "--force")
    kept = (out / "notes.txt").read_text() == "mine"
    return (ok and untouched and forced.returncode == 0 and kept and _manifest(out) == ref,
            f"{detail}; with --force exit {forced.returncode}, the user's file kept: {kept}")


def out_inside_input(box, tmp, ref):
    folder = tmp / "music"
    shutil.copytree(box.songs, folder)
    playlist = tmp / "folder.txt"
    playlist.write_text(f"{folder}\n")
    before = box.files([])
    ok, detail = _message(_builder(playlist, "--out", folder / "dataset", *BUILD), 2, "inside the input folder")
    return ok and box.files([]) == before, detail


def moved_dataset(box, tmp, ref):
    out, moved = tmp / "out", tmp / "moved"
    _builder(box.playlist, "--out", out, *BUILD)
    out.rename(moved)
    before = box.files([moved])
    ok, detail = _recovered(box, moved, ref, before)
    paths = [json.loads(line)["path"] for s in ("train", "valid", "test")
             for line in (moved / "egs" / s / "data.jsonl").read_text().splitlines()]
    inside = all(Path(p).is_relative_to(moved.resolve()) and Path(p).exists() for p in paths)
    return ok and inside and not out.exists(), f"{detail}; every manifest path under the new folder: {inside}"


def _changed(option: str, value: str, rate: int = 32000):
    def case(box, tmp, ref):
        import soundfile as sf

        out = tmp / "out"
        _builder(box.playlist, "--out", out, *BUILD)
        before = box.files([out])
        proc = _builder(box.playlist, "--out", out, *BUILD, option, value)
        wavs = sorted((out / "chunks").rglob("*.wav"))
        saved = json.loads((out / "build_config.json").read_text())
        metas = [json.loads(line) for s in ("train", "valid", "test")
                 for line in (out / "egs" / s / "data.jsonl").read_text().splitlines()]
        key = option.lstrip("-").replace("-", "_")
        consistent = (str(saved[key]) == value or float(saved[key]) == float(value)) if key != "remainder" else \
            saved[key] == value
        rates = {sf.info(w).samplerate for w in wavs}
        named = {Path(m["path"]).stem for m in metas} == {w.stem for w in wavs}
        ok = (proc.returncode == 0 and consistent and rates == {rate} and named
              and {m["sample_rate"] for m in metas} == {rate} and box.files([out]) == before)
        return ok, (f"exit {proc.returncode}; {len(wavs)} chunk files at {sorted(rates)} Hz, build_config "
                    f"{key}={saved[key]}, manifests name exactly the files on disk: {named}")
    return case


def _serve(root: Path):
    server = FolderServer(root)
    return server, server.url, server.hits


def dead_links(box, tmp, ref, links=200):
    www = tmp / "www"
    www.mkdir()
    shutil.copy(box.songs / "song0.wav", www / "song0.wav")
    server, base, hits = _serve(www)
    try:
        playlist = tmp / "dead.txt"
        playlist.write_text(f"{base}/song0.wav\n" + "".join(f"{base}/dead{i}.mp3\n" for i in range(links)))
        out = tmp / "out"
        first = _builder(playlist, "--out", out, *BUILD)
        saved = len(list((out / "skips").glob("*.json")))
        hits.clear()
        t0 = time.time()
        second = _builder(playlist, "--out", out, *BUILD)
        rerun_s, rechecked = time.time() - t0, sum("dead" in h for h in hits)
        (www / "dead0.mp3").write_bytes((box.songs / "song1.wav").read_bytes())
        third = _builder(playlist, "--out", out, *BUILD, "--retry-failed")
        songs = len(list((out / "items").glob("*.json")))
        ok = (first.returncode == second.returncode == third.returncode == 0 and saved == links
              and rechecked == 0 and songs == 2)
        return ok, (f"{links} dead links saved as skips: {saved}; rerun re-checked {rechecked} ({rerun_s:.1f} s); "
                    f"--retry-failed found the revived one: {songs == 2}")
    finally:
        server.close()


def network_timeout(box, tmp, ref):
    www = tmp / "www"
    www.mkdir()
    for i in (0, 1):
        shutil.copy(box.songs / f"song{i}.wav", www / f"song{i}.wav")
    server, base, _ = _serve(www)
    try:
        playlist = tmp / "net.txt"
        playlist.write_text(f"{base}/song0.wav\n{base}/song1.wav\n")
        out = tmp / "out"
        ok, detail = _message(_builder(playlist, "--out", out, *BUILD, patch="timeout"), 1, "timed out", "rerun")
        remembered = list((out / "skips").glob("*.json")) if (out / "skips").exists() else []
        again = _builder(playlist, "--out", out, *BUILD)
        songs = len(list((out / "items").glob("*.json")))
        return (ok and not remembered and again.returncode == 0 and songs == 2,
                f"{detail}; rerun exit {again.returncode}, {songs} of 2 songs")
    finally:
        server.close()


def descriptions(box, tmp, ref):
    import itertools

    from dataset_builder.label.describe import _TEMPLATES, FIELDS, render

    values = {"mood": "dark", "genre": "electronic", "with_instruments": " with piano", "key_part": ", in E minor",
              "bpm_part": ", 140 BPM", "bpm_paren": " (140 bpm)", "tempo_word": "fast"}
    bad = []
    n = 0
    for template in _TEMPLATES:
        for k in range(len(FIELDS) + 1):
            for missing in itertools.combinations(FIELDS, k):
                text = render(template, **{f: ("" if f in missing else v) for f, v in values.items()})
                n += 1
                if any(b in text for b in (",,", ", ,", " ,", "()", "  ")) or text != text.strip(" ,"):
                    bad.append(text)
    return not bad, f"{n} renderings (every template, every subset of fields empty): {len(bad)} with stray punctuation"


def genre_tag(box, tmp, ref):
    out = tmp / "out"
    playlist = tmp / "tagged.txt"
    playlist.write_text("".join(f"{box.songs / f'song{i}.wav'}  genre=J-Pop\n" for i in range(3)))
    proc = _builder(playlist, "--out", out, *BUILD)
    sidecars = [json.loads(p.read_text()) for p in (out / "chunks").rglob("*.json") if not p.name.startswith("_")]
    ok = proc.returncode == 0 and sidecars and all("j-pop" in s["description"] for s in sidecars)
    named = sum("j-pop" in s["description"] for s in sidecars)
    return bool(ok), f"{named} of {len(sidecars)} descriptions name the tag"


# -- other command lines -----------------------------------------------------------------------------------------

def _module(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=300, cwd=ROOT)


@functools.lru_cache(maxsize=1)
def _adapter(folder: str) -> Path:
    import lora
    from genrecraft.models import tiny_musicgen

    model = tiny_musicgen(seed=0)
    lora.inject(model, lora.LoraConfig(r=4))
    return lora.save_adapter(model, Path(folder) / "adapter", base_model_id="tiny:0")


def _adapter_case(damage: tp.Callable[[Path], None], command: str, needle: str):
    def case(box, tmp, ref):
        good = _adapter(str(box.root))
        folder = Path(shutil.copytree(good, tmp / "ad"))
        damage(folder)
        args = ["lora", "info", str(folder)] if command == "info" else \
            ["lora", "merge", "--base", "tiny:0", "--adapter", str(folder), "--out", str(tmp / "merged")]
        return _message(_module(*args), 2, needle)
    return case


def _rank(folder: Path) -> None:
    config = json.loads((folder / "adapter_config.json").read_text())
    config["lora"]["r"] = 8
    (folder / "adapter_config.json").write_text(json.dumps(config))


def _missing_key(folder: Path) -> None:
    config = json.loads((folder / "adapter_config.json").read_text())
    del config["lm_shape"]
    (folder / "adapter_config.json").write_text(json.dumps(config))


def _ce_case(text: str, needle: str):
    def case(box, tmp, ref):
        folder = tmp / "egs" / "test"
        folder.mkdir(parents=True)
        (folder / "data.jsonl").write_text(text)
        return _message(_module("eval", "ce", "tiny:0", "--manifest", str(folder), "--device", "cpu"), 2, needle)
    return case


def fad_one_clip(box, tmp, ref):
    import numpy as np

    from eval.fad import fad_from_embeddings

    rng = np.random.default_rng(0)
    records: tp.List[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[assignment]
    logger = logging.getLogger("eval.fad")
    logger.addHandler(handler)
    try:
        result = fad_from_embeddings([rng.normal(size=(50, 8))], [rng.normal(size=(50, 8)) for _ in range(3)],
                                     bootstrap=20)
    finally:
        logger.removeHandler(handler)
    warned = any("at least 2 clips" in r for r in records)
    return warned and np.isfinite(result.fad), f"FAD {result.fad:.3f}, interval {result.fad_interval}; warned: {warned}"


def fad_one_frame(box, tmp, ref):
    import numpy as np

    from eval.fad import fad_from_embeddings

    rng = np.random.default_rng(0)
    try:
        fad_from_embeddings([rng.normal(size=(1, 8))], [rng.normal(size=(50, 8))], bootstrap=0)
    except ValueError as exc:
        return "at least 2" in str(exc), str(exc)[:120]
    return False, "no error"


@contextlib.contextmanager
def _rating_server(tmp: Path):
    import torch

    from genrecraft.models import tiny_musicgen
    from scripts.listening import pairs, server

    torch.set_num_threads(1)
    folder = tmp / "listening"
    if not folder.exists():
        pairs.make_pairs({"base": tiny_musicgen(seed=0), "full": tiny_musicgen(seed=1)}, ["synth-pop"], folder,
                         pairs.PairsConfig(generation=pairs.GenerationSettings(duration=1.0, top_k=50),
                                           blind_seed=1))
    srv = server.make_server(folder, db_path=tmp / f"ratings-{time.time_ns()}.sqlite", port=0)
    srv.RequestHandlerClass.timeout = 2.0
    server.serve_in_thread(srv)
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def _raw(srv, data: bytes) -> str:
    with socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        with contextlib.suppress(socket.timeout):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def _post(srv, body: bytes, length: tp.Optional[str] = None) -> str:
    length = str(len(body)) if length is None else length
    head = f"POST /api/answer HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"
    return _raw(srv, head.encode() + body)


def _server_case(kind: str):
    def case(box, tmp, ref):
        import io

        stderr, sys.stderr = sys.stderr, io.StringIO()
        try:
            with _rating_server(box.root) as srv:
                pair = srv.app.store.pair_ids[0]
                srv.app.store.start("ann")
                t0 = time.time()
                if kind == "ended_false":
                    reply = _post(srv, json.dumps({"rater": "ann", "pair_id": pair, "kind": "listen", "side": "A",
                                                   "value": {"played_s": 1.0, "ended": "false"}}).encode())
                    stored = srv.app.store.session("ann")["answers"][pair]["listened"]
                    ok, detail = " 400 " in reply.split("\r\n")[0] and not stored, f"stored: {stored}"
                elif kind == "bad_length":
                    reply = _post(srv, b"{}", length="abc")
                    ok, detail = " 400 " in reply.split("\r\n")[0], ""
                elif kind == "big_body":
                    reply = _post(srv, b"{}", length=str(10 ** 9))
                    ok, detail = " 413 " in reply.split("\r\n")[0], ""
                else:  # a Content-Length larger than the body: the client goes quiet
                    reply = _post(srv, b'{"rater": "ann"}', length="500")
                    ok, detail = time.time() - t0 < 10, f"closed after {time.time() - t0:.1f} s"
                answering = " 200 " in _raw(srv, b"GET /api/test HTTP/1.0\r\n\r\n").split("\r\n")[0]
        finally:
            printed, sys.stderr = sys.stderr.getvalue(), stderr
        ok = ok and answering and "Traceback" not in printed
        status = reply.split("\r\n")[0]
        return ok, f"{status} {detail}; server still answers: {answering}; traceback: {'Traceback' in printed}"
    return case


CASES: tp.List[tp.Tuple[str, Case, bool]] = [  # (name, case, part of --quick)
    ("disk full (1 MiB tmpfs as --out)", disk_full_tmpfs, True),
    ("disk full (patched write raising ENOSPC)", disk_full_patched, True),
    ("permission denied reading a song", permission_denied, True),
    ("labelling worker killed (kill -9)", killed_worker, True),
    ("builder kill -9 at random moments, 1 worker", kill9_one_worker, False),
    ("builder kill -9 at random moments, 2 workers", kill9_two_workers, False),
    ("Ctrl-C during labelling", ctrl_c, True),
    ("two builders on one --out", two_builders, True),
    ("--out a non-empty foreign folder", foreign_folder, True),
    ("--out inside an input folder", out_inside_input, True),
    ("dataset moved, then rerun", moved_dataset, True),
    ("rerun with --sample-rate 16000", _changed("--sample-rate", "16000", 16000), True),
    ("rerun with --chunk-seconds 4", _changed("--chunk-seconds", "4"), True),
    ("rerun with --remainder keep", _changed("--remainder", "keep"), True),
    ("200 dead links, rerun, --retry-failed", dead_links, True),
    ("network time-out on one song", network_timeout, True),
    ("descriptions with fields missing", descriptions, True),
    ("playlist genre= tag in the description", genre_tag, True),
    ("adapter safetensors truncated", _adapter_case(
        lambda f: (f / "adapter_model.safetensors").write_bytes((f / "adapter_model.safetensors").read_bytes()[:99]),
        "merge", "cannot be read as safetensors"), False),
    ("adapter config with another rank", _adapter_case(_rank, "merge", "r=8"), False),
    ("adapter config missing a key", _adapter_case(_missing_key, "info", "missing 'lm_shape'"), False),
    ("eval ce on an empty manifest", _ce_case("", "is empty"), False),
    ("eval ce on a malformed manifest", _ce_case('{"path": "x.wav", "duration": 1.0}\n', "data.jsonl:1"), False),
    ("FAD/KAD with one clip", fad_one_clip, False),
    ("FAD with one frame", fad_one_frame, False),
    ('rating server: "ended": "false"', _server_case("ended_false"), False),
    ("rating server: Content-Length abc", _server_case("bad_length"), False),
    ("rating server: 1 GB Content-Length", _server_case("big_body"), False),
    ("rating server: Content-Length > body", _server_case("short_body"), False),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # A shell starts a background job (`... &`) with Ctrl-C ignored, and the builders started here would inherit
    # that and never see the Ctrl-C case's SIGINT: take it back as a terminal would have it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import soundfile as sf

    from genrecraft.synth import SongSpec, render_song

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-reliability-") as tmp:
        root = Path(tmp)
        os.environ["GENRECRAFT_WORK_DIR"] = str(root / "work")
        songs = root / "songs"
        songs.mkdir()
        for i, (key, mode, bpm, style) in enumerate([("C", "major", 120, "synthpop"), ("A", "minor", 84, "lofi"),
                                                     ("F#", "major", 132, "synthpop")]):
            sf.write(songs / f"song{i}.wav", render_song(SongSpec(key, mode, bpm, style, seed=i), 8.0), 32000)
        box = Sandbox(root, songs)
        reference_out = root / "reference"
        assert _builder(box.playlist, "--out", reference_out, *BUILD).returncode == 0
        ref = _manifest(reference_out)
        for n, (name, case, quick) in enumerate(CASES):
            if args.quick and not quick:
                continue
            case_dir = root / f"case{n}"
            case_dir.mkdir()
            t0 = time.perf_counter()
            try:
                clean, detail = case(box, case_dir, ref)
            except Exception as exc:  # a case that crashes the bench is not clean; say how
                clean, detail = False, f"bench error: {type(exc).__name__}: {exc}"[:200]
            print(f"{'clean' if clean else 'NOT CLEAN':9s} {time.perf_counter() - t0:5.1f} s  {name}: {detail}",
                  flush=True)
            rows.append({"case": name, "clean": bool(clean), "detail": detail})
            work_files = [p for p in (root / "work").rglob("*") if p.is_file()]
            if any(p.suffix != ".yaml" or "dset" not in p.parts for p in work_files):
                rows[-1]["clean"] = False
                rows[-1]["detail"] += f"; wrote into the work dir: {work_files[:2]}"
    from bench.common import report

    print(f"\n{sum(r['clean'] for r in rows)} of {len(rows)} cases ended cleanly\n")
    report("reliability_quick" if args.quick else "reliability", rows,
           params={"songs": 3, "song_seconds": 8.0, "chunk_seconds": 3.0, "tagger": "none",
                   "clean": "expected exit code and one error line (no traceback) or a clean skip; after the rerun "
                            "the manifests equal an uninterrupted build's; nothing written outside --out"})


if __name__ == "__main__":
    main()
