"""The README's first command, in its CI setting: `python -m genrecraft.demo --quick` runs every stage offline.

One run (a few minutes on 2 cores); the tests check what each stage left behind and the demo's claim: both
fine-tuned models predict style B better than the base model trained on style A.
"""

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    proc = subprocess.run([sys.executable, "-m", "genrecraft.demo", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=40 * 60)
    assert proc.returncode == 0, f"demo failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return out, proc.stdout


def _lines(path: Path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_stages_report_progress(demo):
    _, stdout = demo
    for n in range(1, 7):
        assert f"[{n}/6]" in stdout
    # served on the fixed port, so the split by song (which follows the URLs) is the same in every run
    assert "is taken" not in stdout
    assert re.search(r"Report: .*report\.html", stdout)


def test_corpus_and_datasets(demo):
    out, _ = demo
    songs = sorted((out / "corpus").glob("*.mp3"))
    assert len(songs) == 12 and {p.name[0] for p in songs} == {"a", "b"}  # DemoConfig.quick: 6 songs per style
    for style in ("a", "b"):
        data = out / "data" / f"style_{style}"
        titles, tempi = {}, []
        for split in ("train", "valid", "test"):
            entries = _lines(data / "egs" / split / "data.jsonl")
            assert entries, f"style {style}: empty {split} split"
            for entry in entries:
                sidecar = json.loads(Path(entry["path"]).with_suffix(".json").read_text())
                assert sidecar["description"] and sidecar["key"]
                tempi.append(sidecar["bpm"])
                titles.setdefault(split, set()).add(sidecar["title"])
        # a tempo whose tracked beats were irregular is left out (label confidence); these songs keep a steady one
        assert sum(bpm is not None for bpm in tempi) >= 0.6 * len(tempi), tempi
        # split by song: no song in two splits
        assert not (titles["train"] & titles["test"]) and not (titles["train"] & titles["valid"])


def test_training_runs_and_curves(demo):
    out, _ = demo
    for name in ("train_base", "train_full", "train_lora"):
        assert (out / "logs" / f"{name}.log").stat().st_size > 0
    assert (out / "plots" / "valid_ce.png").stat().st_size > 10_000


def test_fine_tuned_models_beat_the_base_on_style_b(demo):
    out, _ = demo
    report = json.loads((out / "eval" / "report.json").read_text())
    results = report["results"]
    assert report["baseline"] == "base"
    ce = {label: results[label]["ce"]["metrics"]["ce"] for label in ("base", "full", "lora")}
    assert ce["full"] < ce["base"], ce
    assert ce["lora"] < ce["base"], ce
    for label in ("base", "full", "lora", "real audio"):
        fad = results[label]["fad"]
        assert fad["fad"] >= 0 and fad["n_clips"] == 4
    for label in ("base", "full", "lora"):
        spectral = results[label]["spectral"]
        assert 0 <= spectral["feature_distance"] <= 2 and spectral["mel_distance"] > 0
        assert len(list((out / "eval" / "generated" / label / "text").glob("*.wav"))) == 4


def test_the_demos_claims_in_their_quick_form(demo):
    """The --quick setting's looser version of issue 18's claims (genrecraft.demo_targets): every model's tokens
    decode to audio the labeller reads, and valid CE on style B is no worse at the best epoch than after the first
    for both fine-tunings. FAD is not asserted here: with 4 clips of 3 s after 48 updates it does not separate
    the models (measured 2026-11-30: base 1137, full 1197, LoRA 1131); the default demo's FAD is in
    bench/results/demo.json."""
    out, stdout = demo
    results = json.loads((out / "eval" / "report.json").read_text())["results"]
    for claim in ("decodable", "valid_ce_full", "valid_ce_lora"):
        assert f"[met] {claim}" in stdout, stdout[-3000:]
    for label in ("base", "full", "lora", "real audio"):
        adherence = results[label]["adherence"]
        assert adherence["n_clips"] == 4 and 0 <= adherence["key_adherence"] <= 1
        assert 0 <= adherence["tempo_adherence"] <= 1 and 0 <= adherence["tag_distance"] <= 1
    for label in ("base", "full", "lora"):
        memorisation = results[label]["memorisation"]
        assert len(memorisation["clips"]) == 4 and set(memorisation["thresholds"]) == {"embedding", "chroma"}


def test_report_says_which_checkpoint_it_used(demo):
    out, stdout = demo
    markdown = (out / "report.md").read_text()
    for title in ("full fine-tuning", "LoRA"):
        assert re.search(rf"{title}: valid CE [0-9.]+ after epoch 1, best [0-9.]+ at epoch \d+ of 3; the evaluation "
                         rf"uses epoch \d+'s checkpoint", markdown), markdown
    assert "## Style adherence" in markdown and "## Memorisation" in markdown


def test_listening_pairs(demo):
    out, _ = demo
    pairs = json.loads((out / "listening" / "pairs.json").read_text())
    key = json.loads((out / "listening" / "key.json").read_text())
    assert len(pairs["pairs"]) == 2 * 3  # 2 prompts x 3 pairs of models
    assert set(key["models"]) == {"base", "full", "lora"} and key["complete"]


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources = []
        self.tags = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.sources += [value for name, value in attrs if name == "src"]


def test_report_page_and_markdown(demo):
    out, _ = demo
    page = (out / "report.html").read_text()
    parser = _Collector()
    parser.feed(page)
    assert {"table", "img", "audio"} <= parser.tags
    assert page.count("<audio") == page.count("preload='none'")  # players load on demand
    descriptions = re.findall(r"<tr><td>([^<]*)</td><td><audio", page)
    assert descriptions and all(descriptions.count(d) <= 2 for d in descriptions)  # once per table (text, cont.)
    assert parser.sources and all((out / src).is_file() for src in parser.sources), parser.sources
    assert not any(src.startswith(("http:", "https:", "/")) for src in parser.sources)
    markdown = (out / "report.md").read_text()
    for title in ("base model", "full fine-tuning", "LoRA"):
        assert title in markdown and title in page
    for link in re.findall(r"\]\(([^)]+)\)", markdown):
        assert (out / link).is_file(), link
