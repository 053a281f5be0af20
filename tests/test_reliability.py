"""Fault injection for the dataset builder: disk full, permission denied, killed workers and builders, network
time-outs, two builders on one folder, a moved dataset, changed options, bad descriptions. Each test checks the
message, that nothing was lost and that nothing was written outside --out.

Songs are 8 s long, cut into 3 s chunks (two per song), labelled with ``--tagger none``: seconds per build.
"""

import concurrent.futures as cf
import concurrent.futures.process
import dataclasses
import errno
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from dataset_builder import BuildConfig, build
from dataset_builder.faults import EnvironmentFault
from genrecraft.core.procs import children, spawned_workers, wait_for_workers, wait_gone
from genrecraft.core.serve import FolderServer
from genrecraft.synth import SongSpec, render_song

SONGS = [("C", "major", 120, "synthpop"), ("A", "minor", 84, "lofi"), ("F#", "major", 132, "synthpop")]
CONFIG = dict(tagger="none", chunk_seconds=3.0, name="rel_test")


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    root = tmp_path_factory.mktemp("songs")
    for i, (key, mode, bpm, style) in enumerate(SONGS):
        sf.write(root / f"song{i}.wav", render_song(SongSpec(key, mode, bpm, style, seed=i), 8.0), 32000)
    return root


@pytest.fixture
def case(songs, tmp_path, work_dir):
    """A playlist of the three songs (by path) and an output folder, both under ``tmp_path``."""
    playlist = tmp_path / "playlist.txt"
    playlist.write_text("".join(f"{songs / f'song{i}.wav'}  artist=A{i}\n" for i in range(len(SONGS))))
    return playlist, tmp_path / "out"


def _files(root: Path, skip: Path) -> set:
    return {p for p in root.rglob("*") if p.is_file() and not p.is_relative_to(skip)}


def _manifest(out: Path) -> dict:
    lines = {}
    for split in ("train", "valid", "test"):
        path = out / "egs" / split / "data.jsonl"
        lines[split] = sorted(Path(json.loads(line)["path"]).name for line in path.read_text().splitlines())
    return lines


def _cli(*args, **kwargs) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "dataset_builder", *map(str, args), "--quiet"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)


def _no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def reference(songs, tmp_path_factory, work_dir):
    """An uninterrupted build of the three songs: what every recovered build must equal."""
    root = tmp_path_factory.mktemp("reference")
    playlist = root / "playlist.txt"
    playlist.write_text("".join(f"{songs / f'song{i}.wav'}  artist=A{i}\n" for i in range(len(SONGS))))
    result = build(playlist, root / "out", BuildConfig(**CONFIG), progress=False)
    assert result.counts and sum(result.counts.values()) == 6 and not result.environment_failures
    return _manifest(root / "out")


# 4. Environmental failures are not verdicts on the song

@pytest.mark.slow
def test_disk_full_stops_the_run_and_forgets_nothing(case, reference, monkeypatch):
    playlist, out = case
    real_write = sf.write
    calls = itertools.count()

    def full(*args, **kwargs):
        if next(calls) >= 3:  # the fourth chunk: second song
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(sf, "write", full)
    with pytest.raises(EnvironmentFault, match="No space left on device") as info:
        build(playlist, out, BuildConfig(**CONFIG), progress=False)
    assert info.value.fatal
    assert not list(out.rglob("_failed.json")) and not list(out.rglob("*.tmp-*"))
    monkeypatch.setattr(sf, "write", real_write)
    again = build(playlist, out, BuildConfig(**CONFIG), progress=False)
    assert not again.environment_failures and _manifest(out) == reference


@pytest.mark.slow
def test_disk_full_cli_exits_1_with_one_line(case, monkeypatch, tmp_path):
    """A real full disk: --out on a 1 MiB tmpfs (needs root; skipped where mount is not allowed)."""
    playlist, _ = case
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        proc = _cli(playlist, "--out", mount / "out", "--tagger", "none", "--chunk-seconds", "3")
        assert proc.returncode == 1, proc.stderr
        _no_traceback(proc)
        assert "No space left on device" in proc.stderr and "rerun" in proc.stderr
        assert not list((mount / "out").rglob("_failed.json")) and not list((mount / "out").rglob("skips/*"))
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.slow
def test_permission_denied_is_retried_not_remembered(case, reference, monkeypatch):
    from dataset_builder import chunk

    playlist, out = case

    def denied(path, *args, **kwargs):
        if str(path).endswith("song1.wav"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(chunk, "open", denied, raising=False)
    result = build(playlist, out, BuildConfig(**CONFIG), progress=False)
    machine = result.environment_failures
    assert len(machine) == 1 and "Permission denied" in machine[0].reason and "song1.wav" in machine[0].reason
    assert not list(out.rglob("_failed.json"))
    assert '"kind": "environment"' in (out / "failures.jsonl").read_text()
    assert "fault of the machine" in (out / "dataset_card.md").read_text()
    monkeypatch.undo()
    again = build(playlist, out, BuildConfig(**CONFIG), progress=False)
    assert not again.environment_failures and _manifest(out) == reference


def _kill_worker(path: str, target: str):
    """A labelling task that kills its own worker, as the OOM killer would."""
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.slow
def test_killed_worker_is_reported_and_retried(case, reference, monkeypatch):
    from dataset_builder import labeling

    playlist, out = case
    build(playlist, out, BuildConfig(**CONFIG), progress=False)
    victim = sorted((out / "labels").glob("*.json"))[2]
    victim.unlink()  # one chunk to label again, in a worker that dies
    monkeypatch.setattr(labeling, "_label_file", _kill_worker)
    result = build(playlist, out, BuildConfig(workers=2, **CONFIG), progress=False)
    machine = result.environment_failures
    assert [f.item_id for f in machine] == [victim.stem] and "worker died" in machine[0].reason
    assert not victim.exists()
    monkeypatch.undo()
    again = build(playlist, out, BuildConfig(workers=2, **CONFIG), progress=False)
    assert not again.environment_failures and victim.exists() and _manifest(out) == reference


def _kill_worker_once(path: str, target: str):
    """Kill this worker if the marker file named by ``GENRECRAFT_TEST_KILL_ONCE`` is there (and take it); label
    otherwise."""
    from dataset_builder import labeling

    try:
        Path(os.environ["GENRECRAFT_TEST_KILL_ONCE"]).unlink()
    except FileNotFoundError:
        return labeling._label_file(path, target)  # the worker's own module: the real labeller
    os.kill(os.getpid(), signal.SIGKILL)


def _built_chunks(out: Path):
    from dataset_builder.chunk import read_done

    return [c for done in sorted((out / "chunks").glob("*/_done.json")) for c in read_done(done, out)[0]]


@pytest.mark.slow
def test_a_worker_dead_while_songs_are_cut_costs_only_a_warning(case, reference, monkeypatch, caplog, tmp_path):
    """Labelling overlaps the cut; a worker that dies then breaks the pool before the next song's chunks are handed
    over. The builder goes on, and labels them after the cut with new workers."""
    from dataset_builder import labeling

    playlist, out = case
    build(playlist, out, BuildConfig(**CONFIG), progress=False)
    chunks = _built_chunks(out)
    for label in (out / "labels").glob("*.json"):
        label.unlink()
    marker = tmp_path / "kill-once"
    marker.touch()
    monkeypatch.setenv("GENRECRAFT_TEST_KILL_ONCE", str(marker))
    monkeypatch.setattr(labeling, "_label_file", _kill_worker_once)
    with labeling.LabelAhead(out, BuildConfig(workers=2, **CONFIG)) as ahead:
        ahead.submit(chunks[:1])
        assert isinstance(ahead._futures[0].exception(timeout=120), cf.process.BrokenProcessPool)
        ahead.submit(chunks[1:])  # the pool is broken: this used to raise
        ahead.close(progress=False)
    assert "labelling worker died" in caplog.text and not marker.exists()
    labels, failures = labeling.label_chunks(chunks, out, BuildConfig(workers=2, **CONFIG), progress=False)
    assert not failures and sorted(labels) == sorted(c.chunk_id for c in chunks)
    assert _manifest(out) == reference


class _BreaksAtSecondSubmit(cf.ProcessPoolExecutor):
    """A pool whose workers die between the first chunk and the handing over of the second."""

    def submit(self, *args, **kwargs):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 2:
            raise cf.process.BrokenProcessPool("a child process terminated abruptly")
        return super().submit(*args, **kwargs)


@pytest.mark.slow
def test_a_worker_dead_before_a_chunk_is_handed_over_is_reported(case, monkeypatch):
    from dataset_builder import labeling

    playlist, out = case
    build(playlist, out, BuildConfig(**CONFIG), progress=False)
    chunks = _built_chunks(out)
    for label in (out / "labels").glob("*.json"):
        label.unlink()
    monkeypatch.setattr(labeling.cf, "ProcessPoolExecutor", _BreaksAtSecondSubmit)
    labels, failures = labeling.label_chunks(chunks, out, BuildConfig(workers=2, **CONFIG), progress=False)
    assert len(labels) == 1 and len(failures) == len(chunks) - 1
    assert all(f.kind == "environment" and "worker died" in f.reason for f in failures)
    monkeypatch.undo()
    labels, failures = labeling.label_chunks(chunks, out, BuildConfig(workers=2, **CONFIG), progress=False)
    assert not failures and len(labels) == len(chunks)


def _serve(root: Path):
    server = FolderServer(root)
    return server, server.url, server.hits


@pytest.mark.slow
def test_dead_link_is_saved_at_once_and_retry_failed_tries_again(songs, tmp_path, work_dir):
    www = tmp_path / "www"
    www.mkdir()
    shutil.copy(songs / "song0.wav", www / "song0.wav")
    server, base, hits = _serve(www)
    try:
        playlist = tmp_path / "playlist.txt"
        playlist.write_text(f"{base}/song0.wav\n{base}/dead.wav\n")
        out = tmp_path / "out"
        first = build(playlist, out, BuildConfig(**CONFIG), progress=False)
        assert any("404" in f.reason and f.kind == "skip" for f in first.failures)
        assert len(list((out / "skips").glob("*.json"))) == 1  # saved as it happened
        hits.clear()
        second = build(playlist, out, BuildConfig(**CONFIG), progress=False)
        assert not any("dead.wav" in h for h in hits)  # remembered: not checked again
        assert [f.reason for f in second.failures] == [f.reason for f in first.failures]
        (www / "dead.wav").write_bytes((songs / "song1.wav").read_bytes())  # the link came back to life
        third = build(playlist, out, BuildConfig(**CONFIG), progress=False, retry_failed=True)
        assert any("dead.wav" in h for h in hits) and third.songs == 2 and not third.failures
    finally:
        server.close()


@pytest.mark.slow
def test_network_timeout_is_not_remembered(songs, tmp_path, work_dir, monkeypatch):
    from dataset_builder import download

    www = tmp_path / "www"
    www.mkdir()
    shutil.copy(songs / "song0.wav", www / "song0.wav")
    shutil.copy(songs / "song1.wav", www / "song1.wav")
    server, base, _ = _serve(www)
    real_fetch = download.fetch

    def slow(entry, out, config):
        if entry.location.endswith("song1.wav"):
            import yt_dlp

            raise yt_dlp.utils.DownloadError("ERROR: Unable to download webpage: The read operation timed out")
        return real_fetch(entry, out, config)

    try:
        playlist = tmp_path / "playlist.txt"
        playlist.write_text(f"{base}/song0.wav\n{base}/song1.wav\n")
        out = tmp_path / "out"
        monkeypatch.setattr(download, "fetch", slow)
        first = build(playlist, out, BuildConfig(**CONFIG), progress=False)
        assert [f.kind for f in first.failures] == ["environment"] and "timed out" in first.failures[0].reason
        assert not (out / "skips").exists() or not list((out / "skips").glob("*.json"))
        proc = _cli(playlist, "--out", out, "--tagger", "none", "--chunk-seconds", "3", "--name", "rel_test")
        assert proc.returncode == 0, proc.stderr  # the next run downloads it
        assert len(list((out / "items").glob("*.json"))) == 2
    finally:
        server.close()


@pytest.mark.slow
def test_cli_exits_1_when_the_machine_failed(case, tmp_path):
    """An unreadable input (as a non-root user) is the machine's fault: exit 1, one line, nothing remembered."""
    playlist, out = case
    code = ("import errno, sys, builtins; from dataset_builder import chunk, __main__ as m\n"
            "def denied(p, *a, **k):\n"
            "    if str(p).endswith('song2.wav'): raise PermissionError(errno.EACCES, 'Permission denied', str(p))\n"
            "    return builtins.open(p, *a, **k)\n"
            "chunk.open = denied\n"
            "sys.exit(m.main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(playlist), "--out", str(out), "--tagger", "none",
                           "--chunk-seconds", "3", "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Permission denied" in proc.stderr and "rerun" in proc.stderr
    _no_traceback(proc)
    assert _cli(playlist, "--out", out, "--tagger", "none", "--chunk-seconds", "3").returncode == 0


# 1. The output folder is the builder's own

def test_second_builder_on_one_folder_is_refused(case):
    from dataset_builder.outdir import claim

    playlist, out = case
    with claim(out):
        proc = _cli(playlist, "--out", out, "--tagger", "none")
    assert proc.returncode == 2 and f"pid {os.getpid()}" in proc.stderr and "another dataset builder" in proc.stderr
    _no_traceback(proc)
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (out / "items").exists()  # the second one wrote nothing


def test_a_killed_runs_half_written_files_are_removed_on_rerun(tmp_path):
    from dataset_builder.outdir import claim

    out = tmp_path / "out"
    with claim(out):
        pass
    stale = out / "chunks" / "song" / ".song-00000000.wav.tmp-4242"  # what kill -9 during a write leaves
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"RIFF half")
    other = out / "chunks" / "song" / ".notes.tmp-draft"  # not our pattern: kept
    other.write_text("mine")
    with claim(out):
        assert not stale.exists() and other.read_text() == "mine"


@pytest.mark.slow
def test_foreign_folder_needs_force_and_keeps_its_files(case, reference):
    playlist, out = case
    out.mkdir()
    (out / "my notes.txt").write_text("mine")
    (out / "items").mkdir()
    (out / "items" / "keep.txt").write_text("mine too")
    (out / "items" / "mine.json").write_text('{"not": "a song record"}')
    proc = _cli(playlist, "--out", out, "--tagger", "none", "--chunk-seconds", "3")
    assert proc.returncode == 2 and "--force" in proc.stderr and "not empty" in proc.stderr
    _no_traceback(proc)
    assert sorted(p.name for p in out.rglob("*")) == ["items", "keep.txt", "mine.json", "my notes.txt"]
    proc = _cli(playlist, "--out", out, "--tagger", "none", "--chunk-seconds", "3", "--name", "rel_test", "--force")
    assert proc.returncode == 0, proc.stderr
    assert (out / "my notes.txt").read_text() == "mine" and (out / "items" / "keep.txt").read_text() == "mine too"
    assert (out / "items" / "mine.json").is_file()
    assert (out / ".genrecraft-dataset").is_file() and _manifest(out) == reference
    assert _cli(playlist, "--out", out, "--tagger", "none", "--chunk-seconds", "3").returncode == 0  # now ours


def test_out_inside_an_input_folder_is_refused(songs, tmp_path):
    folder = tmp_path / "music"
    shutil.copytree(songs, folder)
    playlist = tmp_path / "playlist.txt"
    playlist.write_text(f"{folder}\n")
    before = _files(tmp_path, tmp_path / "nothing")
    proc = _cli(playlist, "--out", folder / "dataset", "--tagger", "none")
    assert proc.returncode == 2 and "inside the input folder" in proc.stderr and "line 1" in proc.stderr
    _no_traceback(proc)
    assert _files(tmp_path, tmp_path / "nothing") == before and not (folder / "dataset").exists()


# 3. Options that change the chunks change the chunks

@pytest.mark.slow
def test_changed_chunk_options_cut_again_and_the_config_says_so(case):
    playlist, out = case
    build(playlist, out, BuildConfig(**CONFIG), progress=False)
    labels_before = {p.name: p.stat().st_mtime_ns for p in (out / "labels").glob("*.json")}
    for options, chunks, rate in (({"sample_rate": 16000}, 6, 16000), ({"chunk_seconds": 4.0}, 6, 32000),
                                  ({"remainder": "keep"}, 9, 32000), ({"chunk_seconds": 2.5}, 9, 32000)):
        config = BuildConfig(**{**CONFIG, **options})
        result = build(playlist, out, config, progress=False)
        wavs = sorted((out / "chunks").rglob("*.wav"))
        assert len(wavs) == chunks == sum(result.counts.values()), options
        assert {sf.info(w).samplerate for w in wavs} == {rate}
        assert {round(sf.info(w).duration, 3) for w in wavs} <= {config.chunk_seconds, 2.0, 1.0, 0.5}
        saved = json.loads((out / "build_config.json").read_text())
        assert {k: saved[k] for k in options} == options
        metas = [json.loads(line) for s in ("train", "valid", "test")
                 for line in (out / "egs" / s / "data.jsonl").read_text().splitlines()]
        assert {m["sample_rate"] for m in metas} == {rate} and all(Path(m["path"]).exists() for m in metas)
        assert {Path(m["path"]).stem for m in metas} == {w.stem for w in wavs}
        assert {p.stem for p in (out / "labels").glob("*.json")} == {w.stem for w in wavs}
        assert f"max_sample_rate: {rate}" in (out / "dset_rel_test.yaml").read_text()
    # labels of chunks that were cut again are new (a chunk id can come back with other audio)
    relabelled = {p.name: p.stat().st_mtime_ns for p in (out / "labels").glob("*.json")}
    assert all(relabelled[n] != t for n, t in labels_before.items() if n in relabelled)


# 2. Paths that survive a move

@pytest.mark.slow
def test_moved_dataset_is_rewritten_under_its_new_place(case, reference):
    playlist, out = case
    build(playlist, out, BuildConfig(**CONFIG), progress=False)
    moved = out.parent / "moved"
    out.rename(moved)
    root = out.parent
    before = _files(root, moved)
    again = build(playlist, moved, BuildConfig(**CONFIG), progress=False)
    assert not out.exists()  # the old tree is not created again
    assert _files(root, moved) == before  # nothing written outside --out
    assert _manifest(moved) == reference and not again.environment_failures
    for split in ("train", "valid", "test"):
        for line in (moved / "egs" / split / "data.jsonl").read_text().splitlines():
            assert Path(json.loads(line)["path"]).resolve().is_relative_to(moved.resolve())
    assert str(moved.resolve() / "egs") in (moved / "dset_rel_test.yaml").read_text()
    for done in (moved / "chunks").glob("*/_done.json"):
        assert all(not Path(c["path"]).is_absolute() for c in json.loads(done.read_text())["chunks"])


# 5. Workers die with their parent; Ctrl-C prints one line

def _signal_state(pid: int) -> str:
    """How process ``pid`` treats signals (/proc: blocked, ignored and caught masks), for failure messages."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return f"process {pid} has ended"
    return ", ".join(line.replace("\t", " ") for line in lines if line.startswith(("SigBlk", "SigIgn", "SigCgt")))


def _start_labelling(playlist: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "dataset_builder", str(playlist), "--out", str(out), "--tagger", "none",
           "--chunk-seconds", "3", "--workers", "2", "--quiet", "--name", "rel_test", *extra]
    # A child inherits an ignored SIGINT and the signal mask of the thread that starts it: start the builder as a
    # terminal would, whatever earlier tests or libraries did to this process's own handling of Ctrl-C.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    blocked = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        signal.signal(signal.SIGINT, previous)
    wait_for_workers(proc, 2)
    return proc


@pytest.mark.slow
def test_kill9_of_the_builder_leaves_no_worker(case, reference):
    playlist, out = case
    proc = _start_labelling(playlist, out)
    workers = children(proc.pid)  # the workers and multiprocessing's resource tracker
    assert len(spawned_workers(proc.pid)) == 2, "the labelling workers did not start"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert wait_gone(workers), "workers outlived the builder"
    assert _cli(playlist, "--out", out, "--tagger", "none", "--chunk-seconds", "3", "--workers", "2",
                "--name", "rel_test").returncode == 0
    assert _manifest(out) == reference and not list(out.rglob("*.tmp-*"))


@pytest.mark.slow
def test_ctrl_c_prints_one_line(case, reference):
    playlist, out = case
    # Labelling overlaps download and chunking, so the workers can start with the build nearly done. One CI run
    # (2 loaded cores) saw the build finish with exit 0 after the Ctrl-C; not reproduced since, nor explained. A
    # build that finished is tried again in a fresh folder (twice at most): the checks below need a Ctrl-C taken.
    for attempt in range(3):
        target = out if attempt == 0 else out.with_name(f"{out.name}-{attempt}")
        proc = _start_labelling(playlist, target)
        workers = children(proc.pid)  # the workers and multiprocessing's resource tracker
        assert len(spawned_workers(proc.pid)) == 2, "the labelling workers did not start"
        state = _signal_state(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends: the whole group
        _, err = proc.communicate(timeout=60)
        if proc.returncode != 0:
            break
    out = target
    assert proc.returncode == 130, f"{err}\nthe builder's signal masks when the Ctrl-C was sent: {state}"
    assert "Traceback" not in err and "interrupted" in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    assert wait_gone(workers), "workers outlived the builder"
    assert _cli(playlist, "--out", out, "--tagger", "none", "--chunk-seconds", "3",
                "--name", "rel_test").returncode == 0
    assert _manifest(out) == reference


def test_a_ctrl_c_while_a_worker_starts_waits_for_the_start():
    """The kernel hands a SIGINT to any thread that does not block it; Python then runs the handler in the main
    thread at once, even inside the block that starts a worker, which would leave the worker half-started (it dies
    printing a traceback). The interrupt must come when the block ends."""
    import threading
    import time

    from dataset_builder.labeling import _sigint_blocked

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    idle = threading.Event()
    other = threading.Thread(target=idle.wait, daemon=True)  # a thread with SIGINT unblocked
    other.start()
    time.sleep(0.2)  # until it waits (a thread still starting was not handed the signal in trials)
    reached_end = False
    try:
        with pytest.raises(KeyboardInterrupt):
            with _sigint_blocked():
                os.kill(os.getpid(), signal.SIGINT)
                deadline = time.monotonic() + 0.5
                while time.monotonic() < deadline:  # bytecode runs: a handler run now would raise here
                    pass
                reached_end = True
        assert reached_end, "the Ctrl-C was raised inside the block"
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        idle.set()
        signal.signal(signal.SIGINT, previous)


# 7. Descriptions say what the labels and tags say

def test_every_template_with_every_field_missing_is_clean():
    from dataset_builder.label.describe import _TEMPLATES, FIELDS, render

    values = {"mood": "dark", "genre": "electronic", "with_instruments": " with piano and drums",
              "key_part": ", in E minor", "bpm_part": ", 140 BPM", "bpm_paren": " (140 bpm)", "tempo_word": "fast"}
    for template in _TEMPLATES:
        for n in range(len(FIELDS) + 1):
            for missing in itertools.combinations(FIELDS, n):
                text = render(template, **{k: ("" if k in missing else v) for k, v in values.items()})
                bad = [",,", ", ,", " ,", "()", "( ", " )", "  "]
                assert not any(b in text for b in bad), (template, missing, text)
                assert text == text.strip(" ,") and not text.startswith("a e"), (template, missing, text)


def test_playlist_tags_override_the_labels_in_the_description():
    from dataset_builder.chunk import Chunk
    from dataset_builder.download import Item
    from dataset_builder.label import Labels
    from dataset_builder.manifest import music_info

    labels = Labels("E", "minor", 0.9, 140.0, -12.0, genres=[("rock", 0.8)], moods=[("happy", 0.5)],
                    instruments=[("guitar", 0.6)], tagger="musicnn")
    chunk = Chunk("s-00000000", "s", "/x/s-00000000.wav", 0.0, 30.0, -20.0)
    tags = {"genre": "J-Pop", "moods": "bittersweet", "instrument": "koto"}
    item = Item("s", "/x/s.wav", "t", "a", 30.0, "u", "l", tags, "o", 1)
    for seed in range(40):
        info = music_info(chunk, item, labels, "train", seed)
        assert "rock" not in info["description"] and "happy" not in info["description"]
        assert "guitar" not in info["description"]
        assert info["genre"] == "j-pop" and "j-pop" in info["description"]
    none = Labels("E", "minor", 0.9, 140.0, -12.0, tagger="none")
    lofi = dataclasses.replace(item, tags={"genre": "lofi"})
    descriptions = {music_info(chunk, lofi, none, "train", s)["description"] for s in range(40)}
    assert all("lofi" in d and ",," not in d for d in descriptions)
