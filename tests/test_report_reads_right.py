"""The report's explanations (issue 18, point 5): paired vs unpaired CE, valid CE that rose, the epoch used,
higher-is-better adherence columns, prompts shown once, a plot axis that shows the differences."""

import json

from genrecraft import report as rp


def _ce(value, interval, diff=None):
    entry = {"ce": {"metrics": {"ce": value}, "intervals": {"ce": interval}}}
    if diff:
        entry["ce"]["vs_baseline"] = {"ce_diff": diff[0], "ce_diff_interval": diff[1]}
    return entry


def test_paired_note_only_when_the_paired_change_is_clear_and_intervals_overlap():
    report = {"baseline": "base", "results": {
        "base": _ce(5.0, [4.6, 5.4]),
        "full": _ce(4.9, [4.5, 5.3], (-0.1, [-0.15, -0.05])),  # overlapping, paired clear: explained
        "lora": _ce(4.95, [4.55, 5.35], (-0.05, [-0.12, 0.02])),  # paired not clear: nothing to explain
    }}
    lines = rp.paired_note(report)
    assert len(lines) == 1 and lines[0].startswith("full fine-tuning") and "same clips" in lines[0]
    report["results"]["full"] = _ce(3.0, [2.9, 3.1], (-2.0, [-2.1, -1.9]))  # clearly apart: no note
    assert rp.paired_note(report) == []


def _history(folder, valid):
    folder.mkdir(parents=True)
    (folder / "history.json").write_text(json.dumps([{"train": {"ce": 6.0}, "valid": {"ce": v}} for v in valid]))
    return folder


def test_training_lines_name_the_epoch_used_and_say_when_valid_ce_rose(tmp_path):
    runs = {"full": _history(tmp_path / "full", [6.0, 5.8, 5.9]), "lora": _history(tmp_path / "lora", [6.0, 6.1])}
    full, lora = rp.training_lines(runs)
    assert "best 5.800 at epoch 2 of 3" in full and "uses epoch 2's checkpoint" in full
    assert "rose again afterwards (to 5.900" in full
    assert "uses epoch 1's checkpoint" in lora and "Valid CE rose after the first epoch" in lora


def test_clear_best_knows_higher_is_better():
    from eval.report import higher_is_better

    results = {"base": {"v": (0.2, [0.1, 0.3])}, "full": {"v": (0.8, [0.7, 0.9])}}
    getter = lambda r: r["v"]  # noqa: E731
    assert rp.clear_best(results, getter) == "base"
    assert rp.clear_best(results, getter, higher=True) == "full"
    assert higher_is_better("key_adherence") and higher_is_better("tempo_adherence")
    assert not higher_is_better("fad") and not higher_is_better("tag_distance")


def test_audio_rows_show_each_prompt_once(tmp_path):
    generated = tmp_path / "eval" / "generated"
    (generated / "base" / "text").mkdir(parents=True)
    prompts = [{"index": i, "source": "", "description": f"song {i % 2}"} for i in range(4)]  # 2 prompts cycled
    (generated / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
    for i in range(4):
        (generated / "base" / "text" / f"{i:04d}.wav").write_bytes(b"")
    rows = rp._audio_rows(tmp_path / "eval", ["base"], limit=10)
    assert [r["description"] for r in rows] == ["song 0", "song 1"]


def test_plot_axis_spans_the_values_not_zero(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eval.report import plot_report

    captured = []
    original = plt.subplots

    def spy(*args, **kwargs):
        fig, axes = original(*args, **kwargs)
        captured.append(axes)
        return fig, axes

    plt.subplots = spy
    try:
        report = {"settings": {"ce": {"group_by": ()}}, "results": {
            "base": {"ce": {"metrics": {"ce": 5.90}, "intervals": {"ce": [5.88, 5.92]}}},
            "full": {"ce": {"metrics": {"ce": 5.80}, "intervals": {"ce": [5.78, 5.82]}}}}}
        plot_report(report, tmp_path)
    finally:
        plt.subplots = original
    low, high = captured[0][0][0].get_ylim()
    assert 5.5 < low < 5.78 and 5.92 < high < 6.2  # 0..6 would hide a 0.1 nat difference
