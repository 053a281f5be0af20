"""dataset_builder end to end: real yt-dlp against a loopback server, local files, bad input, resume, splits,
manifests read back by audiocraft's MusicDataset."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dataset_builder import BuildConfig, build, merge
from dataset_builder.playlist import read_playlist
from genrecraft.core.serve import FolderServer
from genrecraft.synth import SongSpec, render_song

pytestmark = pytest.mark.slow

SONGS = [("C", "major", 120, "synthpop"), ("A", "minor", 84, "lofi"), ("F#", "major", 132, "synthpop"),
         ("D", "minor", 92, "lofi"), ("G", "major", 108, "synthpop"), ("E", "minor", 76, "lofi")]


def _encode(wav: Path, target: Path, *args: str) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), *args, str(target)], check=True)
    return target


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Synthetic songs (70 s: two chunks each) as files in several formats, and a loopback HTTP server."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "www" / "a").mkdir(parents=True)
    (root / "www" / "b").mkdir()
    (root / "local").mkdir()
    wavs = []
    for i, (key, mode, bpm, style) in enumerate(SONGS):
        wav = root / f"song{i}.wav"
        sf.write(wav, render_song(SongSpec(key, mode, bpm, style, seed=i), 70.0), 32000)
        wavs.append(wav)
    _encode(wavs[0], root / "www" / "song0.mp3", "-b:a", "128k")
    _encode(wavs[1], root / "www" / "song1.opus", "-b:a", "96k")  # Opus: essentia cannot decode it
    _encode(wavs[2], root / "www" / "a" / "song.mp3")  # two URLs with the same basename
    _encode(wavs[3], root / "www" / "b" / "song.mp3")
    _encode(wavs[0], root / "www" / "song0-reupload.ogg")  # the same recording again: a near-duplicate
    (root / "www" / "index.html").write_text("<html><a href='song0.mp3'>a song</a></html>")
    (root / "www" / "not-audio.mp3").write_bytes(b"this is not audio at all" * 100)
    _encode(wavs[4], root / "local" / "song4.flac")
    sf.write(root / "local" / "song5.wav", sf.read(wavs[5])[0], 32000)
    sf.write(root / "local" / "short.wav", np.zeros(32000 * 5, np.float32) + 0.1, 32000)
    sf.write(root / "local" / "silence.wav", np.zeros(32000 * 40, np.float32), 32000)

    with FolderServer(root / "www") as server:
        yield root, server.url


def _playlist(root: Path, base: str) -> Path:
    path = root / "playlist.txt"
    path.write_text(f"""# a J-pop-ish test playlist
{base}/song0.mp3   artist="Band A" title="アイドル / Idol .."
{base}/song1.opus  artist="Band B" genre=j-pop
{base}/a/song.mp3  artist="Band C"
{base}/b/song.mp3  artist="Band D"
{base}/song0-reupload.ogg  artist="Band A"
{base}/missing.mp3
{base}/index.html
{base}/not-audio.mp3
local/song4.flac   artist=Local
local/song5.wav    artist=Local
local/short.wav
local/silence.wav
local/nope.wav
{base}/song0.mp3
file:///etc/passwd
https://example.com/x.mp3  colour=red
""")
    return path


@pytest.fixture(scope="module")
def built(corpus, work_dir):
    root, base = corpus
    playlist = _playlist(root, base)
    out = root / "out"
    result = build(playlist, out, BuildConfig(name="jpop_test", tagger="none"), progress=False)
    return root, base, playlist, out, result


def test_a_misspelt_tag_is_a_warning_with_a_suggestion_and_the_song_is_kept(tmp_path):
    song = tmp_path / "song.wav"
    song.touch()
    playlist = tmp_path / "playlist.txt"
    playlist.write_text(f"{song}  genra=synthwave artist=A\n")
    sources, failures = read_playlist(playlist)
    assert len(sources) == 1 and sources[0].tags == {"artist": "A"}
    assert [f.kind for f in failures] == ["warning"] and not failures[0].skipped
    assert "did you mean genre=?" in failures[0].reason and "the song kept" in failures[0].reason


def test_playlist_parsing(corpus):
    root, base = corpus
    sources, failures = read_playlist(_playlist(root, base))
    reasons = " | ".join(f.reason for f in failures)
    assert "file:// URLs are off by default" in reasons
    assert "unknown tag 'colour'" in reasons
    assert "no such file or folder" in reasons and "duplicate of line 2" in reasons
    def kinds(text):
        return [f.kind for f in failures if text in f.reason]
    assert kinds("unknown tag") == ["warning"] and kinds("duplicate of line") == ["warning"]  # the songs are kept
    assert kinds("no such file") == ["skip"] and kinds("file:// URLs") == ["skip"]
    song0 = next(s for s in sources if s.location.endswith("/song0.mp3"))
    assert song0.tags == {"artist": "Band A", "title": "アイドル / Idol .."}
    m3u = root / "list.m3u"
    m3u.write_text(f"#EXTM3U\n#EXTINF:70,Band X - Song X\n{base}/song0.mp3\nlocal/song4.flac\n")
    sources, failures = read_playlist(m3u)
    assert not failures and len(sources) == 2
    assert sources[0].tags == {"artist": "Band X", "title": "Song X"} and sources[1].kind == "file"


def test_build_reports_every_bad_input(built):
    *_, result = built
    reasons = {f.source.rsplit("/", 1)[-1]: f.reason for f in result.failures}
    assert "404" in reasons["missing.mp3"]
    assert "Unsupported URL" in reasons["index.html"]
    assert "not audio" in reasons["not-audio.mp3"]
    assert "shorter than one chunk" in reasons["short.wav"]
    assert "silent" in reasons["silence.wav"]
    assert any("duplicate" in f.reason and f.stage == "dedupe" for f in result.failures)
    card = result.card.read_text()
    assert "missing.mp3" in card and "Unsupported URL" in card and "アイドル" in card


def test_songs_ids_and_chunks(built):
    root, base, playlist, out, result = built
    items = [json.loads(p.read_text()) for p in (out / "items").glob("*.json")]
    by_url = {i["source_url"]: i for i in items}
    a, b = by_url[f"{base}/a/song.mp3"], by_url[f"{base}/b/song.mp3"]
    assert a["item_id"] != b["item_id"]  # same basename, different songs
    assert by_url[f"{base}/song1.opus"]["audio"].endswith(".flac")  # Opus converted
    assert result.songs == 7  # 4 remote + reupload + 2 local
    chunks = sorted((out / "chunks").glob("*/*.wav"))
    assert len(chunks) == 14  # 70 s -> two 30 s chunks; the 10 s remainder is < 0.8 x 30 s
    for chunk in chunks:
        info = sf.info(chunk)
        assert info.samplerate == 32000 and info.channels == 1 and info.frames == 30 * 32000
        assert chunk.resolve().is_relative_to(out.resolve())  # nothing written outside --out


def test_chunks_are_sample_exact(built, corpus):
    _, _, _, out, _ = built
    item = next(json.loads(p.read_text()) for p in (out / "items").glob("*.json")
                if p.read_text().count("song5.wav"))
    source, _ = sf.read(corpus[0] / "local" / "song5.wav", dtype="float32")
    second, _ = sf.read(out / "chunks" / item["item_id"] / f"{item['item_id']}-00030000.wav", dtype="float32")
    np.testing.assert_allclose(second, source[30 * 32000:60 * 32000], atol=1.0 / 32767)


def test_no_song_in_two_splits_and_duplicates_together(built):
    _, _, _, out, result = built
    split_of = {}
    for split in ("train", "valid", "test"):
        for line in (out / "egs" / split / "data.jsonl").read_text().splitlines():
            meta = json.loads(line)
            song = json.loads(Path(meta["path"]).with_suffix(".json").read_text())["song_id"]
            assert split_of.setdefault(song, split) == split
    assert set(split_of.values()) == {"train", "valid", "test"}
    dupes = [f for f in result.failures if f.stage == "dedupe"]
    for dup in dupes:
        original = dup.reason.split("song ")[1].split()[0]
        assert split_of[dup.item_id] == split_of[original]


def test_manifests_load_in_audiocraft_with_every_field(built):
    from genrecraft.core import compat

    compat.apply()
    from audiocraft.data.music_dataset import MusicDataset

    _, _, _, out, result = built
    genres = set()
    for split in ("train", "valid", "test"):
        dataset = MusicDataset.from_meta(str(out / "egs" / split), segment_duration=None, sample_rate=32000,
                                         channels=1, return_info=True, shuffle=False, num_samples=None,
                                         sample_on_duration=False, sample_on_weight=False)
        assert len(dataset) == result.counts[split]
        for index in range(len(dataset)):
            wav, info = dataset[index]
            sidecar = json.loads(Path(info.meta.path).with_suffix(".json").read_text())
            assert wav.shape == (1, 30 * 32000)
            assert info.title == sidecar["title"] and info.artist == sidecar["artist"]
            assert info.key == sidecar["key"] and " " in info.key  # e.g. "f# major", kept (no comma)
            assert info.bpm == pytest.approx(sidecar["bpm"])
            assert info.description == sidecar["description"] and info.name == sidecar["name"]
            assert info.genre == sidecar["genre"]
            genres.add(info.genre)
    assert "j-pop" in genres  # the genre=j-pop tag of song1 arrives through audiocraft's loader


def test_dset_is_registered_for_dora(built):
    from genrecraft.models import compose

    _, _, _, out, result = built
    assert result.dset == "audio/jpop_test"
    cfg = compose(["solver=musicgen/genrecraft_tiny", "dset=audio/jpop_test"])
    assert cfg.datasource.train == str((out / "egs" / "train").resolve())


def test_rerun_does_nothing_and_changes_nothing(built):
    _, _, playlist, out, first = built
    before = {p: p.read_bytes() for p in (out / "egs").rglob("data.jsonl")}
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "chunks").rglob("*.wav")}
    t0 = time.time()
    again = build(playlist, out, BuildConfig(name="jpop_test", tagger="none"), progress=False)
    assert {p: p.read_bytes() for p in (out / "egs").rglob("data.jsonl")} == before
    assert {p: p.stat().st_mtime_ns for p in (out / "chunks").rglob("*.wav")} == mtimes
    assert again.counts == first.counts
    assert time.time() - t0 < 30


def test_kill_and_resume_gives_the_same_manifests(built, tmp_path):
    root, base, playlist, reference_out, _ = built
    out = tmp_path / "resumed"
    cmd = [sys.executable, "-m", "dataset_builder", str(playlist), "--out", str(out), "--name", "jpop_test2",
           "--tagger", "none", "--quiet"]
    for delay in (3.0, 6.0):  # kill it twice, at different stages
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert subprocess.run(cmd, capture_output=True).returncode == 0

    def manifest(folder):
        out_lines = {}
        for split in ("train", "valid", "test"):
            lines = (folder / "egs" / split / "data.jsonl").read_text().splitlines()
            out_lines[split] = sorted(Path(json.loads(line)["path"]).name for line in lines)
        return out_lines

    assert manifest(out) == manifest(reference_out)
    assert not list(out.rglob("*.tmp-*"))  # no half-written file left behind


def test_shards_merge_into_the_same_dataset(built, tmp_path):
    root, base, playlist, reference_out, reference = built
    shard_outs = []
    for i in range(2):
        shard_out = tmp_path / f"shard{i}"
        result = build(playlist, shard_out, BuildConfig(name="jpop_test", tagger="none", shard=(i, 2)),
                       progress=False)
        assert result.card is None
        shard_outs.append(shard_out)
    merged = merge(shard_outs, tmp_path / "merged")
    assert merged.songs == reference.songs and merged.counts == reference.counts


def test_bad_config_values_are_named():
    with pytest.raises(ValueError, match="^--split 0.5,0.1,0.1: "):
        BuildConfig(split=(0.5, 0.1, 0.1))
    with pytest.raises(ValueError, match="^--tagger magic: "):
        BuildConfig(tagger="magic")
    with pytest.raises(ValueError, match="^--shard 3/2: "):
        BuildConfig(shard=(3, 2))


def test_cli_help_and_errors(tmp_path):
    out = subprocess.run([sys.executable, "-m", "dataset_builder", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--allow-file-urls" in out.stdout and "playlist format" in out.stdout
    out = subprocess.run([sys.executable, "-m", "dataset_builder", str(tmp_path / "none.txt"), "--out",
                          str(tmp_path / "o")], capture_output=True, text=True)
    assert out.returncode == 2 and "does not exist" in out.stderr


def test_the_summary_counts_warnings_apart_and_names_an_empty_split(tmp_path, work_dir):
    for i, (key, bpm) in enumerate((("C", 120.0), ("A", 90.0))):
        sf.write(tmp_path / f"s{i}.wav", render_song(SongSpec(key, "major", bpm, "synthpop", seed=i), 8.0), 32000)
    playlist = tmp_path / "playlist.txt"
    playlist.write_text("s0.wav  genra=synthwave\ns1.wav\n")
    proc = subprocess.run([sys.executable, "-m", "dataset_builder", str(playlist), "--out", str(tmp_path / "out"),
                           "--tagger", "none", "--chunk-seconds", "3", "--name", "summary_test", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "0 skipped, 1 playlist warning(s) (songs kept)" in proc.stdout
    card = (tmp_path / "out" / "dataset_card.md").read_text()
    assert "## Playlist warnings (1): the songs are kept" in card and "## Skipped (0)" in card
    assert "did you mean genre=?" in card
    # two songs cannot fill three splits (each takes whole songs): the empty one is named
    assert "warning: no chunk in " in proc.stderr and "error:" not in proc.stderr
