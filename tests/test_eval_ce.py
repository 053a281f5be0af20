"""Cross-entropy as audiocraft computes it: the loss on hand-made logits, sums, bootstrap, paired differences, and
the valid CE of a real tiny Dora run reproduced from its checkpoint."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from eval.ce import (CEConfig, CEResult, bootstrap_intervals, cross_entropy, evaluate_ce, metrics_from_sums,
                     paired_difference, token_nll)

B, K, T, CARD = 3, 4, 11, 9


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, K, T, CARD, generator=g) * 2
    targets = torch.randint(0, CARD, (B, K, T), generator=g)
    mask = torch.rand(B, K, T, generator=g) > 0.3
    # invalid positions as the delay pattern leaves them: NaN logits and the special token (= card) as target
    logits[~mask] = float("nan")
    targets[~mask] = CARD
    return logits, targets, mask


def test_cross_entropy_equals_torch_on_valid_positions():
    logits, targets, mask = _batch()
    ce, ce_q = cross_entropy(logits, targets, mask)
    assert len(ce_q) == K
    for k in range(K):
        m = mask[:, k]
        expected = F.cross_entropy(logits[:, k][m], targets[:, k][m])
        manual = -torch.log_softmax(logits[:, k][m], dim=-1).gather(1, targets[:, k][m][:, None]).mean()
        assert torch.allclose(ce_q[k], expected, atol=0, rtol=1e-6)
        assert torch.allclose(ce_q[k], manual, rtol=1e-5)
    assert torch.isfinite(ce) and torch.allclose(ce, torch.stack(ce_q).mean())
    with pytest.raises(ValueError, match="shapes disagree"):
        cross_entropy(logits[:, :2], targets, mask)


def test_token_nll_sums_are_consistent_with_cross_entropy():
    logits, targets, mask = _batch(1)
    nll, tokens = token_nll(logits, targets, mask)
    assert nll.shape == (B, K) and tokens.shape == (B, K) and nll.dtype == torch.float64
    assert torch.isfinite(nll).all()
    assert torch.equal(tokens, mask.sum(-1).double())
    _, ce_q = cross_entropy(logits, targets, mask)
    per_codebook = nll.sum(0) / tokens.sum(0)
    for k in range(K):
        assert per_codebook[k].item() == pytest.approx(ce_q[k].item(), rel=1e-6)
    metrics = metrics_from_sums(nll.numpy(), tokens.numpy())
    ce, _ = cross_entropy(logits, targets, mask)
    assert metrics["ce"] == pytest.approx(ce.item(), rel=1e-6)


def test_metrics_from_sums():
    nll = np.array([[10.0, 20.0], [30.0, 20.0]])
    tokens = np.array([[10.0, 10.0], [10.0, 30.0]])
    m = metrics_from_sums(nll, tokens)
    # summed first: ce_q1 = 40/20, ce_q2 = 40/40 (not the mean of per-unit ratios, 2.0 and 1.33)
    assert m["ce_q1"] == pytest.approx(2.0) and m["ce_q2"] == pytest.approx(1.0)
    assert m["ce"] == pytest.approx(1.5) and m["ppl"] == pytest.approx(math.exp(1.5))
    assert m["ppl_q1"] == pytest.approx(math.exp(2.0))
    assert metrics_from_sums(nll.sum(0), tokens.sum(0)) == m
    with pytest.raises(ValueError, match="no valid tokens"):
        metrics_from_sums(np.array([1.0, 2.0]), np.array([3.0, 0.0]))


def test_bootstrap_intervals_contain_the_estimate():
    rng = np.random.default_rng(0)
    tokens = rng.integers(50, 200, size=(40, 4)).astype(float)
    nll = tokens * rng.uniform(2.0, 4.0, size=(40, 1))
    point = metrics_from_sums(nll, tokens)
    intervals = bootstrap_intervals(nll, tokens, n_boot=500, confidence=0.95)
    assert set(intervals) == set(point)
    for key, (lo, hi) in intervals.items():
        assert lo < point[key] < hi, key
    # resampling whole songs (4 units each) gives a wider interval than pretending the units are independent
    songs = [f"song{i // 4}" for i in range(40)]
    nll_songs = nll + np.repeat(rng.normal(0, 40, size=(10, 1)), 4, axis=0)
    lo_u, hi_u = bootstrap_intervals(nll_songs, tokens, 500, 0.95)["ce"]
    lo_s, hi_s = bootstrap_intervals(nll_songs, tokens, 500, 0.95, clusters=songs)["ce"]
    assert lo_s <= metrics_from_sums(nll_songs, tokens)["ce"] <= hi_s
    assert hi_s - lo_s > hi_u - lo_u
    assert bootstrap_intervals(nll, tokens, n_boot=0, confidence=0.95) == {}
    # deterministic for a seed
    assert bootstrap_intervals(nll, tokens, 100, 0.9, seed=3) == bootstrap_intervals(nll, tokens, 100, 0.9, seed=3)


def _result(name, nll, tokens, ids=None):
    ids = ids or [f"clip{i}" for i in range(len(nll))]
    units = [{"id": i, "nll": list(n), "tokens": list(t)} for i, n, t in zip(ids, nll, tokens)]
    return CEResult(model=name, manifest="m", sampling="windows", metrics=metrics_from_sums(nll, tokens),
                    intervals={}, groups={}, units=units, n_tokens=int(np.sum(tokens)), config={})


def test_paired_difference_sign():
    rng = np.random.default_rng(1)
    tokens = rng.integers(100, 200, size=(30, 4)).astype(float)
    nll_a = tokens * rng.uniform(3.0, 5.0, size=(30, 1))
    nll_b = nll_a - 0.1 * tokens  # b is better on every clip by 0.1 nats
    a, b = _result("a", nll_a, tokens), _result("b", nll_b, tokens)
    d = paired_difference(a, b, n_boot=300)
    assert d["ce_diff"] == pytest.approx(-0.1, abs=1e-9)
    lo, hi = d["ce_diff_interval"]
    assert lo <= -0.1 + 1e-9 and hi >= -0.1 - 1e-9 and hi < 0
    assert d["p_b_better"] == 1.0
    reverse = paired_difference(b, a, n_boot=300)
    assert reverse["ce_diff"] == pytest.approx(0.1, abs=1e-9) and reverse["p_b_better"] == 0.0
    with pytest.raises(ValueError, match="different clips"):
        paired_difference(a, _result("c", nll_b, tokens, ids=[f"other{i}" for i in range(30)]))
    # a round trip through JSON-like dicts keeps what pairing needs
    assert paired_difference(CEResult.from_dict(a.to_dict()), b, n_boot=0)["ce_diff"] == d["ce_diff"]


def test_ce_config_validation():
    with pytest.raises(ValueError, match="sampling="):
        CEConfig(sampling="random")
    with pytest.raises(ValueError, match="batch_size=0"):
        CEConfig(batch_size=0)
    with pytest.raises(ValueError, match="min_segment_ratio"):
        CEConfig(min_segment_ratio=1.5)
    with pytest.raises(ValueError, match="bootstrap=-1"):
        CEConfig(bootstrap=-1)


# --- on a real (tiny) Dora run ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(work_dir, tmp_path_factory):
    """A one-epoch tiny Dora run (2 updates) on 6 synthetic songs of two styles; its valid set is ``egs``."""
    from genrecraft.core import paths
    from genrecraft import experiments
    from genrecraft.synth import SongSpec, write_dataset

    specs = [SongSpec(key=k, mode=m, bpm=b, style=s, seed=i) for i, (k, m, b, s) in enumerate(
        [("C", "major", 120, "synthpop"), ("G", "major", 124, "synthpop"), ("A", "minor", 84, "lofi"),
         ("F", "major", 122, "synthpop"), ("D", "minor", 80, "lofi"), ("E", "minor", 88, "lofi")])]
    egs = write_dataset(tmp_path_factory.mktemp("ce-data"), "eval_ce", specs, config_dir=paths.user_config_dir())
    xp = experiments.run(["solver=musicgen/genrecraft_tiny", "dset=audio/eval_ce", "optim.epochs=1",
                          "optim.updates_per_epoch=2"], quiet=True)
    return xp, egs


@pytest.fixture(scope="module")
def tiny_model(tiny_run):
    from genrecraft.models import load_model

    xp, _ = tiny_run
    return load_model(f"//sig/{xp.sig}")


@pytest.mark.slow
def test_solver_sampling_reproduces_the_runs_valid_ce(tiny_run, tiny_model):
    from genrecraft import experiments

    xp, egs = tiny_run
    [epoch] = experiments.history(xp)
    result = evaluate_ce(tiny_model, egs, CEConfig(sampling="solver", bootstrap=100, progress=False),
                         model_name=f"//sig/{xp.sig}")
    assert result.sampling == "solver" and result.config["num_samples"] == 8 and len(result.units) == 8
    for key in ("ce", "ppl", "ce_q1", "ce_q2", "ce_q3", "ce_q4"):
        assert result.metrics[key] == pytest.approx(epoch["valid"][key], abs=1e-4, rel=1e-5), key
    # the per-segment sums pool to (nearly) the same CE: equal batches of equal length, so only the order of
    # averaging differs
    nll, tokens = result.arrays()
    assert metrics_from_sums(nll, tokens)["ce"] == pytest.approx(result.metrics["ce"], rel=1e-3)
    lo, hi = result.intervals["ce"]
    assert lo <= result.metrics["ce"] <= hi

    # resampling whole songs: the segments carry their song's title, and the interval is still there
    by_title = evaluate_ce(tiny_model, egs, CEConfig(sampling="solver", bootstrap=100, bootstrap_unit="title",
                                                     progress=False))
    assert by_title.metrics == result.metrics
    assert {u["title"] for u in by_title.units} <= {f"song {i}" for i in range(6)}
    lo, hi = by_title.intervals["ce"]
    assert lo <= by_title.metrics["ce"] <= hi


@pytest.mark.slow
def test_windows_sampling_per_codebook_and_groups(tiny_run, tiny_model):
    _, egs = tiny_run
    config = CEConfig(bootstrap=200, group_by=("genre", "key"), progress=False)
    result = evaluate_ce(tiny_model, egs, config, model_name="tiny")
    assert result.sampling == "windows" and result.config["segment_duration"] == 5.0
    assert len(result.units) == 6 and all(u["windows"] == 1 for u in result.units)  # 6 s clips, 5 s windows
    assert {f"ce_q{k}" for k in range(1, 5)} <= set(result.metrics)
    assert result.metrics["ce"] == pytest.approx(np.mean([result.metrics[f"ce_q{k}"] for k in range(1, 5)]))
    assert math.log(2) < result.metrics["ce"] < math.log(400) + 1  # card 400: between a coin flip and uniform
    for key, (lo, hi) in result.intervals.items():
        assert lo <= result.metrics[key] <= hi, key
    genres = result.groups["genre"]
    assert set(genres) == {"synthpop", "lofi"}
    assert genres["synthpop"]["n_clips"] == genres["lofi"]["n_clips"] == 3
    assert genres["synthpop"]["n_tokens"] + genres["lofi"]["n_tokens"] == result.n_tokens
    assert len(result.groups["key"]) == 6
    # pooled over groups = overall (ratios of sums)
    nll, tokens = result.arrays()
    assert metrics_from_sums(nll, tokens) == result.metrics

    # a lower min_segment_ratio keeps each clip's 1 s remainder as a second window: more tokens
    more = evaluate_ce(tiny_model, egs, CEConfig(bootstrap=0, min_segment_ratio=0.2, group_by=(),
                                                 progress=False))
    assert all(u["windows"] == 2 for u in more.units) and more.n_tokens > result.n_tokens
    assert more.intervals == {} and more.groups == {}

    # whole songs as the bootstrap unit, by a sidecar field
    by_title = evaluate_ce(tiny_model, egs, CEConfig(bootstrap=50, bootstrap_unit="title", group_by=(),
                                                     max_clips=4, progress=False))
    assert len(by_title.units) == 4 and all("title" in u for u in by_title.units)
    with pytest.raises(ValueError, match="not MusicInfo fields"):
        evaluate_ce(tiny_model, egs, CEConfig(group_by=("colour",), progress=False))
