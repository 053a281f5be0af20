"""The report page's logic on a hand-made comparison (no models): verdicts, highlighting, relative links."""

import math
from pathlib import Path

import numpy as np
import soundfile as sf

from genrecraft.report import Evaluation, clear_best, summary_lines, write_report


def _ce(value, interval, diff=None):
    entry = {"metrics": {"ce": value, "ppl": math.exp(value)}, "intervals": {"ce": interval,
                                                                            "ppl": [math.exp(v) for v in interval]},
             "groups": {}, "segment_duration": 5.0, "n_clips": 10, "n_tokens": 1000}
    if diff is not None:
        entry["vs_baseline"] = {"ce_diff": diff[0], "ce_diff_interval": diff[1], "p_b_better": 0.9}
    return entry


def _report():
    return {
        "manifest": "data/b/egs/test", "baseline": "base",
        "models": {"base": "tiny:0", "full": "//sig/aaaa1111", "lora": "//sig/bbbb2222"},
        "settings": {"ce": {"confidence": 0.95, "group_by": [], "bootstrap_unit": "clip"},
                     "generate": {"n": 2, "duration": 3.0, "top_k": 250, "cfg_coef": 3.0, "seed": 0,
                                  "prompt_duration": 0.0}, "backend": "musicnn"},
        "results": {
            "base": {"ce": _ce(5.0, [4.9, 5.1]), "fad": {"fad": 10.0, "fad_interval": [9.0, 11.0]}},
            "full": {"ce": _ce(4.0, [3.9, 4.1], (-1.0, [-1.1, -0.9])),
                     "fad": {"fad": 9.5, "fad_interval": [8.5, 10.5]}},
            "lora": {"ce": _ce(4.95, [4.85, 5.05], (-0.05, [-0.1, 0.01])),
                     "fad": {"fad": 9.9, "fad_interval": [9.0, 10.8]}},
            "real audio": {"fad": {"fad": 1.0, "fad_interval": [0.5, 1.5]}},
        },
        "plots": [],
    }


def _getter(metric):
    return lambda r: (r.get(metric, {}).get(metric), r.get(metric, {}).get(f"{metric}_interval"))


def test_clear_best_needs_separated_intervals():
    results = _report()["results"]
    assert clear_best(results, lambda r: (r.get("ce", {}).get("metrics", {}).get("ce"),
                                          r.get("ce", {}).get("intervals", {}).get("ce"))) == "full"
    # FAD: full has the lowest value but overlaps the others; the real-audio row never counts
    assert clear_best(results, _getter("fad")) is None


def test_summary_states_each_verdict():
    lines = summary_lines(_report())
    assert any(l.startswith("full fine-tuning:") and "lower (better)" in l for l in lines)
    assert any(l.startswith("LoRA:") and "not clearly different" in l for l in lines)
    assert "Best CE (nats): full fine-tuning" in " ".join(lines)
    assert any(l.startswith("FAD: no clear difference") for l in lines)


def test_write_report_links_files_relative_to_the_report(tmp_path):
    out = tmp_path / "report"
    clip = out / "eval" / "generated" / "full" / "text" / "0000.wav"
    clip.parent.mkdir(parents=True)
    sf.write(clip, np.zeros(3200, dtype=np.float32), 32000)
    extra = {"title": "t", "note": "a note", "labels": ["base", "full", "lora"], "eval_dir": out / "eval",
             "audio": [{"description": "lo-fi & <jazz>", "text": {"full": clip}, "continuation": {},
                        "reference": None}]}
    written = write_report(Evaluation(out=out, report=_report(), extra=extra))
    page = written["report"].read_text()
    assert "src='eval/generated/full/text/0000.wav'" in page
    assert "lo-fi &amp; &lt;jazz&gt;" in page and "a note" in page
    assert "<td class='best'>4.000" in page and page.count("class='best'") == 2  # CE and perplexity only
    markdown = written["markdown"].read_text()
    assert "(eval/generated/full/text/0000.wav)" in markdown and "> a note" in markdown
    assert Path(written["report"]).parent == out
