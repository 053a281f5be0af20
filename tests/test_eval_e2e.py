"""``python -m eval compare`` end to end on two tiny models and a small generated test split."""

import json
import subprocess
import sys
import time

import pytest

from genrecraft.synth import SongSpec, write_dataset

LABELS = ("base", "other")


def _eval(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "eval", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    specs = [SongSpec(key=k, mode=m, bpm=b, style=s, seed=i) for i, (k, m, b, s) in enumerate(
        [("C", "major", 120, "synthpop"), ("A", "minor", 84, "lofi"), ("G", "major", 124, "synthpop"),
         ("D", "minor", 80, "lofi")])]
    return write_dataset(tmp_path_factory.mktemp("e2e-data"), "eval_e2e", specs, seconds=3.0)


def _compare(manifest, out):
    return _eval("compare", "--model", "base=tiny:0", "--model", "other=tiny:1", "--manifest", str(manifest),
                 "--out", str(out), "--device", "cpu", "--segment-duration", "2", "--num-clips", "4", "--duration", "2",
                 "--prompt-duration", "1", "--gen-batch-size", "4", "--bootstrap", "30")


@pytest.fixture(scope="module")
def first_run(manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e-report")
    t0 = time.perf_counter()
    proc = _compare(manifest, out)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc, elapsed


@pytest.mark.slow
def test_compare_writes_the_report(first_run):
    out, proc, _ = first_run
    report = json.loads((out / "report.json").read_text())
    assert report["baseline"] == "base" and report["models"] == {"base": "tiny:0", "other": "tiny:1"}
    assert set(report["results"]) == {*LABELS, "real audio"}
    for label in LABELS:
        result = report["results"][label]
        ce = result["ce"]
        assert ce["n_clips"] == 4 and ce["segment_duration"] == 2.0
        assert {"ce", "ppl", "ce_q1", "ce_q4"} <= set(ce["metrics"])
        lo, hi = ce["intervals"]["ce"]
        assert lo <= ce["metrics"]["ce"] <= hi
        assert set(ce["groups"]["genre"]) == {"synthpop", "lofi"}
        fad = result["fad"]
        assert fad["n_clips"] == 4 and fad["n_reference_clips"] == 4 and fad["fad"] > 0
        assert fad["backend"].startswith("musicnn-") and fad["kad"] is not None
        spectral = result["spectral"]
        assert spectral["mel_distance"] > 0 and len(spectral["mel_per_clip"]) == 4
        assert 0 <= spectral["feature_distance"] <= 2
    # random tiny models are far from real music; real continuations of the test clips are much closer
    assert report["results"]["real audio"]["fad"]["fad"] < min(report["results"][l]["fad"]["fad"] for l in LABELS)
    diff = report["results"]["other"]["ce"]["vs_baseline"]
    expected = report["results"]["other"]["ce"]["metrics"]["ce"] - report["results"]["base"]["ce"]["metrics"]["ce"]
    assert diff["ce_diff"] == pytest.approx(expected, abs=1e-12)
    assert "vs_baseline" not in report["results"]["base"]["ce"]

    md = (out / "report.md").read_text()
    assert "| base (`tiny:0`) |" in md and "| other (`tiny:1`) |" in md and "*real audio*" in md
    for column in ("CE (nats)", "FAD", "KAD", "mel distance (dB)", "feature distance"):
        assert column in md
    assert "## Cross-entropy per genre" in md and "![metrics](plots/metrics.png)" in md
    assert "every test clip in windows of 2 s (set explicitly)" in md
    png = out / "plots" / "metrics.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert str(png) in report["plots"]
    for label in LABELS:
        assert len(list((out / "generated" / label / "text").glob("*.wav"))) == 4
        assert len(list((out / "generated" / label / "continuation").glob("*.wav"))) == 4
    assert "| model | CE (nats)" in proc.stdout  # the markdown is printed too


@pytest.mark.slow
def test_rerun_reuses_finished_stages(manifest, first_run):
    out, first, elapsed = first_run
    assert "Loading tiny:0" in first.stderr and "Loading tiny:1" in first.stderr
    before = json.loads((out / "report.json").read_text())
    stamps = {p: p.stat().st_mtime_ns for p in [*(out / "ce").glob("*.json"), *(out / "generated").rglob("*.wav")]}
    assert len(stamps) == 2 + 2 * 8 + 4  # CE per model, text + continuations per model, real continuations

    proc = _compare(manifest, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Loading tiny" not in proc.stderr  # neither model was needed: CE and clips came from disk
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert json.loads((out / "report.json").read_text())["results"] == before["results"]

    # other generation settings in the same folder are refused rather than mixed
    proc = _eval("compare", "--model", "base=tiny:0", "--manifest", str(manifest), "--out", str(out), "--device",
                 "cpu", "--segment-duration", "2", "--num-clips", "2", "--duration", "2", "--prompt-duration", "1")
    assert proc.returncode == 2 and "other settings" in proc.stderr


@pytest.mark.slow
def test_help_and_argument_errors():
    proc = _eval("--help")
    assert proc.returncode == 0
    for command in ("ce", "fad", "spectral", "generate", "compare", "backends"):
        assert command in proc.stdout
    assert "tiny[:SEED]" in proc.stdout
    proc = _eval("compare", "--help")
    assert proc.returncode == 0 and "--manifest" in proc.stdout and "--bootstrap" in proc.stdout and "--fad-bootstrap" not in proc.stdout
    proc = _eval("compare", "--model", "tiny:0", "--model", "tiny:0", "--manifest", "m", "--out", "o")
    assert proc.returncode == 2 and "two models are named 'tiny0'" in proc.stderr
    proc = _eval("compare", "base=tiny:0", "--manifest", "m", "--out", "o", "--stages", "ce,listen")
    assert proc.returncode == 2 and "error: --stages " in proc.stderr  # named as the flag
