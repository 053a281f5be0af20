"""Fréchet distance, FAD-inf, KAD and per-clip FD against closed forms and independent references."""

import logging

import numpy as np
import pytest
import scipy.linalg

from eval import frechet
from eval.frechet import GaussianStats, fad_inf, frechet_distance, frechet_distance_details, kad, per_clip_fd


def _random_cov(rng, d, scale=1.0):
    a = rng.standard_normal((d, d)) * scale
    return a @ a.T / d + 0.1 * np.eye(d)


def _sqrtm_reference(a: GaussianStats, b: GaussianStats) -> float:
    """The textbook formula with scipy.linalg.sqrtm on the non-symmetric product (what fadtk and others do)."""
    covmean = scipy.linalg.sqrtm(a.sigma @ b.sigma)
    covmean = np.real(covmean)
    diff = a.mu - b.mu
    return float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2.0 * np.trace(covmean))


def _svd_reference(x: np.ndarray, y: np.ndarray) -> float:
    """FD of two sets of frames computed without any D x D square root.

    With S1 = U1 U1^T, U1 = centred(x)^T / sqrt(n1 - 1) (and U2 alike), the non-zero eigenvalues of S1 S2 are those
    of (U1^T U2)(U1^T U2)^T, so tr((S1 S2)^1/2) is the nuclear norm of the small [n1, n2] matrix U1^T U2. Exact
    for rank-deficient covariances too (N < D), where sqrtm of S1 S2 is ill-posed.
    """
    xc, yc = x - x.mean(0), y - y.mean(0)
    u1, u2 = xc.T / np.sqrt(len(x) - 1), yc.T / np.sqrt(len(y) - 1)
    tr_sqrt = np.linalg.svd(u1.T @ u2, compute_uv=False).sum()
    diff = x.mean(0) - y.mean(0)
    return float(diff @ diff + (u1 * u1).sum() + (u2 * u2).sum() - 2.0 * tr_sqrt)


# --- closed forms --------------------------------------------------------------------------------------------


def test_one_dimensional_gaussians():
    # FD(N(m1, s1^2), N(m2, s2^2)) = (m1 - m2)^2 + (s1 - s2)^2
    a = GaussianStats(np.array([1.5]), np.array([[4.0]]), 100)
    b = GaussianStats(np.array([-0.5]), np.array([[0.25]]), 100)
    assert frechet_distance(a, b) == pytest.approx(2.0 ** 2 + (2.0 - 0.5) ** 2, rel=1e-14)
    assert frechet_distance(b, a) == pytest.approx(frechet_distance(a, b), rel=1e-14)


def test_diagonal_covariances():
    rng = np.random.default_rng(0)
    d = 50
    va, vb = rng.uniform(0.1, 5.0, d), rng.uniform(0.1, 5.0, d)
    mu_a, mu_b = rng.standard_normal(d), rng.standard_normal(d)
    expected = float(((mu_a - mu_b) ** 2).sum() + ((np.sqrt(va) - np.sqrt(vb)) ** 2).sum())
    result = frechet_distance_details(GaussianStats(mu_a, np.diag(va), 10), GaussianStats(mu_b, np.diag(vb), 10))
    assert result.value == pytest.approx(expected, rel=1e-12)
    assert result.mean_term == pytest.approx(float(((mu_a - mu_b) ** 2).sum()), rel=1e-14)
    assert result.tr_sqrt == pytest.approx(float(np.sqrt(va * vb).sum()), rel=1e-12)
    assert result.tr_sqrt_check == pytest.approx(result.tr_sqrt, rel=1e-12)
    assert result.discrepancy < 1e-12


def test_commuting_covariances():
    # S1 = Q diag(a) Q^T, S2 = Q diag(b) Q^T commute: tr((S1 S2)^1/2) = sum(sqrt(a * b)).
    rng = np.random.default_rng(1)
    d = 64
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    ea, eb = rng.uniform(0.01, 10.0, d), rng.uniform(0.01, 10.0, d)
    s1, s2 = (q * ea) @ q.T, (q * eb) @ q.T
    mu = rng.standard_normal(d)
    expected = float(((np.sqrt(ea) - np.sqrt(eb)) ** 2).sum())
    got = frechet_distance(GaussianStats(mu, s1, 10), GaussianStats(mu, s2, 10))
    assert got == pytest.approx(expected, rel=1e-10)


def test_scaled_covariance():
    # S2 = c^2 S1: FD = (1 - c)^2 tr(S1), whatever S1 is.
    rng = np.random.default_rng(2)
    s = _random_cov(rng, 40)
    mu = rng.standard_normal(40)
    got = frechet_distance(GaussianStats(mu, s, 10), GaussianStats(mu, 9.0 * s, 10))
    assert got == pytest.approx(4.0 * np.trace(s), rel=1e-11)


# --- references on random data ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("d,n", [(16, 200), (128, 400)])
def test_matches_scipy_sqrtm_on_random_data(d, n):
    rng = np.random.default_rng(d)
    x = rng.multivariate_normal(rng.standard_normal(d), _random_cov(rng, d), size=n)
    y = rng.multivariate_normal(rng.standard_normal(d) * 0.5, _random_cov(rng, d, scale=2.0), size=n)
    a, b = GaussianStats.from_embeddings(x), GaussianStats.from_embeddings(y)
    ours = frechet_distance_details(a, b)
    reference = _sqrtm_reference(a, b)
    assert ours.value == pytest.approx(reference, rel=1e-8)
    assert ours.value == pytest.approx(_svd_reference(x, y), rel=1e-8)
    assert ours.discrepancy < frechet.CHECK_RTOL
    assert frechet_distance(a, b, check=False) == ours.value  # the check does not change the value


def test_mean_and_trace_terms_add_up():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((300, 10)), rng.standard_normal((300, 10)) * 2 + 1
    r = frechet_distance_details(GaussianStats.from_embeddings(x), GaussianStats.from_embeddings(y))
    assert r.value == pytest.approx(r.mean_term + r.trace_term, rel=1e-15)
    assert r.mean_term == pytest.approx(float(((x.mean(0) - y.mean(0)) ** 2).sum()), rel=1e-14)


def test_frames_and_stats_inputs_agree():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((100, 8)), rng.standard_normal((120, 8)) + 0.3
    assert frechet_distance(x, y) == frechet_distance(GaussianStats.from_embeddings(x),
                                                      GaussianStats.from_embeddings(y))
    assert frechet_distance(x.tolist(), y) == frechet_distance(x, y)


# --- zero, clamping, singular covariances ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("d,n", [(8, 500), (200, 1000), (256, 50), (1024, 2000)])
def test_a_set_against_itself_is_exactly_zero(d, n):
    # (1024, 2000): condition number ~1e7; square roots of eigenvalues of S^2 used to give FD ~ 6e-3 here.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + 3.0
    a = GaussianStats.from_embeddings(x)
    r = frechet_distance_details(a, GaussianStats(a.mu.copy(), a.sigma.copy(), a.n))
    assert r.value == 0.0
    # ... and the unclamped computation really was at round-off level, not hiding a real difference
    assert abs(r.trace_term) < 1e-13 * d * np.trace(a.sigma)
    assert r.discrepancy < frechet.CHECK_RTOL
    if d <= 256:
        assert frechet_distance(x, x) == 0.0


def test_never_negative_near_zero():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((400, 32))
    a = GaussianStats.from_embeddings(x)
    for i in range(20):
        noise = rng.standard_normal(a.sigma.shape) * 1e-13
        b = GaussianStats(a.mu + rng.standard_normal(32) * 1e-13, a.sigma + noise @ noise.T, a.n)
        r = frechet_distance_details(a, b)
        assert r.value >= 0.0 and r.value < 1e-9, (i, r)


def test_singular_covariances_are_finite_and_cross_checked():
    # N < D: both covariances are rank-deficient (rank 19 and 29 in 128 dimensions).
    rng = np.random.default_rng(7)
    d = 128
    x = rng.standard_normal((20, d)) @ rng.standard_normal((d, d)) * 0.1
    y = rng.standard_normal((30, d)) @ rng.standard_normal((d, d)) * 0.1 + 0.2
    a, b = GaussianStats.from_embeddings(x), GaussianStats.from_embeddings(y)
    r = frechet_distance_details(a, b)
    assert np.isfinite([r.value, r.tr_sqrt, r.tr_sqrt_check, r.discrepancy]).all()
    assert r.value > 0
    assert r.discrepancy < 1e-8
    assert r.value == pytest.approx(_svd_reference(x, y), rel=1e-8)
    # a rank-1 covariance against a full one, and against a zero covariance
    one = GaussianStats(np.zeros(4), np.outer([1.0, 2.0, 0.0, 0.0], [1.0, 2.0, 0.0, 0.0]), 2)
    full = GaussianStats(np.zeros(4), np.eye(4), 100)
    zero = GaussianStats(np.zeros(4), np.zeros((4, 4)), 2)
    # tr((vv^T I)^1/2) = |v|; FD = |v|^2 + 4 - 2|v|
    assert frechet_distance(one, full) == pytest.approx(5.0 + 4.0 - 2.0 * np.sqrt(5.0), rel=1e-12)
    assert frechet_distance(zero, full) == pytest.approx(4.0, rel=1e-14)
    assert frechet_distance(zero, zero) == 0.0


def test_cross_check_flags_a_non_psd_covariance(caplog):
    # Not a covariance (negative eigenvalue): the two computations disagree and a warning says so.
    a = GaussianStats(np.zeros(2), np.array([[2.0, 1.5], [1.5, -1.0]]), 10)
    b = GaussianStats(np.zeros(2), np.array([[1.0, 0.0], [0.0, 4.0]]), 10)
    with caplog.at_level(logging.WARNING, logger="eval.frechet"):
        r = frechet_distance_details(a, b)
    assert r.discrepancy > frechet.CHECK_RTOL
    assert "cross-check" in caplog.text


# --- GaussianStats --------------------------------------------------------------------------------------------


def test_gaussian_stats_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(8)
    a = GaussianStats.from_embeddings(rng.standard_normal((50, 12)))
    path = a.save(tmp_path / "sub" / "ref.npz")
    assert path.is_file() and not list(path.parent.glob("*.tmp*"))
    b = GaussianStats.load(path)
    assert b.n == 50 and b.dim == 12
    np.testing.assert_array_equal(b.mu, a.mu)
    np.testing.assert_array_equal(b.sigma, a.sigma)
    assert frechet_distance(a, b) == 0.0


def test_gaussian_stats_fit():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((40, 3)).astype(np.float32)
    a = GaussianStats.from_embeddings(x)
    assert a.mu.dtype == np.float64 and a.sigma.dtype == np.float64 and a.n == 40
    np.testing.assert_allclose(a.sigma, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-12)


# --- bad input ------------------------------------------------------------------------------------------------


def test_bad_input_is_a_clear_error():
    rng = np.random.default_rng(10)
    with pytest.raises(ValueError, match="dimensions differ: 8 vs 9"):
        frechet_distance(rng.standard_normal((10, 8)), rng.standard_normal((10, 9)))
    nan = rng.standard_normal((10, 4))
    nan[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(nan, rng.standard_normal((10, 4)))
    with pytest.raises(ValueError, match="NaN"):
        GaussianStats(np.array([np.inf, 0.0]), np.eye(2), 3)
    with pytest.raises(ValueError, match=r"N >= 2"):
        GaussianStats.from_embeddings(rng.standard_normal((1, 4)))
    with pytest.raises(ValueError, match=r"N >= 2"):
        GaussianStats.from_embeddings(rng.standard_normal(4))
    with pytest.raises(ValueError, match="mu must be"):
        GaussianStats(np.zeros(3), np.eye(4), 3)
    with pytest.raises(ValueError, match="kad needs"):
        kad(rng.standard_normal((10, 3)), rng.standard_normal((10, 4)))


# --- KAD, FAD-inf, per-clip FD --------------------------------------------------------------------------------


def test_kad_same_distribution_near_zero_and_grows_with_shift():
    rng = np.random.default_rng(11)
    ref = rng.standard_normal((600, 8))
    same = rng.standard_normal((600, 8))
    values = [kad(ref, same)] + [kad(ref, rng.standard_normal((600, 8)) + shift) for shift in (0.25, 0.5, 1.0)]
    assert abs(values[0]) < 0.1 * values[1]
    assert values[1] < values[2] < values[3]
    # the kernel comes from the reference set: one bandwidth for every evaluated set
    bw = frechet.median_pairwise_distance(ref)
    assert kad(ref, same, bandwidth=bw) == values[0]
    with pytest.raises(ValueError, match="bandwidth"):
        kad(np.ones((5, 2)), same[:, :2])


def test_kad_matches_a_direct_unbiased_mmd():
    rng = np.random.default_rng(12)
    x, y = rng.standard_normal((30, 3)), rng.standard_normal((25, 3)) + 0.5
    bw = 1.7
    k = lambda p, q: np.exp(-((p[:, None] - q[None]) ** 2).sum(-1) / (2 * bw ** 2))  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    mmd = ((kxx.sum() - np.trace(kxx)) / (30 * 29) + (kyy.sum() - np.trace(kyy)) / (25 * 24) - 2 * kxy.mean())
    assert kad(x, y, bandwidth=bw) == pytest.approx(100.0 * mmd, rel=1e-12)


def test_fad_inf_removes_the_small_set_bias():
    rng = np.random.default_rng(13)
    d = 8
    reference = GaussianStats.from_embeddings(rng.standard_normal((20000, d)))
    frames = rng.standard_normal((800, d))
    result = fad_inf(reference, frames, steps=10, seed=0)
    assert isinstance(result, frechet.InfResult)
    assert len(result.points) == 10 and result.points[0][0] == 200 and result.points[-1][0] == 800
    small = frechet_distance(reference, frames[:200])
    full = frechet_distance(reference, frames)
    assert abs(result.score) < 0.5 * small and result.score < small - 0.05
    assert abs(result.score) < 0.1 and full < small
    assert result.slope > 0  # FD falls as the set grows
    assert result.r2 > 0.5
    # deterministic for a seed
    assert fad_inf(reference, frames, steps=10, seed=0) == result
    with pytest.raises(ValueError, match="min_n"):
        fad_inf(reference, frames, min_n=800)
    with pytest.raises(ValueError, match="steps"):
        fad_inf(reference, frames, steps=1)


def test_per_clip_fd_puts_the_outlier_first(caplog):
    rng = np.random.default_rng(14)
    reference = GaussianStats.from_embeddings(rng.standard_normal((2000, 6)))
    clips = {f"clip{i}": rng.standard_normal((30, 6)) for i in range(8)}
    clips["noise"] = rng.standard_normal((30, 6)) * 3 + 2
    clips["short"] = rng.standard_normal((1, 6))
    with caplog.at_level(logging.WARNING, logger="eval.frechet"):
        ranked = per_clip_fd(reference, clips)
    assert ranked[0][0] == "noise"
    assert [v for _, v in ranked] == sorted((v for _, v in ranked), reverse=True)
    assert "short" not in dict(ranked) and len(ranked) == 9
    assert "short" in caplog.text
