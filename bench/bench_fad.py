"""Fréchet distance: eval.frechet against fadtk's implementation, in the same run, on the same covariances.

    python bench/bench_fad.py            # D = 1024, N = 500 frames per set, median of 5 runs (fadtk: 3)
    python bench/bench_fad.py --quick    # D = 256, N = 200

Two random sets with different covariance structure (each a random linear mix of Gaussian noise, the second also
shifted), fitted once; then timed: ``eval.frechet.frechet_distance_details`` with and without its cross-check,
and ``fadtk.fad.calc_frechet_distance`` (scipy ``sqrtm`` plus a non-symmetric ``eig``, as fadtk computes FAD).
fadtk is not a dependency of this project: install it for this comparison only with
``pip install --no-deps fadtk hypy-utils`` (its FAD function needs nothing else; ``--no-deps`` keeps torch and
the other pinned packages as they are). Without it, a scipy ``sqrtm`` reference (the textbook formula) stands in,
labelled as such.

Accuracy: every value is compared with fadtk's (or the reference's), and with the exact value computed without any
D x D square root: with N < D, ``tr((S1 S2)^1/2)`` is the nuclear norm of the small [N1, N2] matrix
``X1c X2c^T / sqrt((N1 - 1)(N2 - 1))`` (centred frames). BLAS threads: the machine's default (reported).
Targets: >= 10x faster than fadtk, relative agreement <= 1e-6.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _threads() -> dict:
    info = {"cpu_count": os.cpu_count(), "loadavg_1min": round(os.getloadavg()[0], 2)}
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [f"{p['internal_api']} {p.get('version', '')}: {p['num_threads']} threads"
                        for p in threadpool_info()]
    except ImportError:
        info["blas"] = ["threadpoolctl not installed: unknown"]
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        info[var] = os.environ.get(var, "unset")
    return info


def _sets(d: int, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) / np.sqrt(d)
    mix = rng.standard_normal((d, d)) * np.linspace(0.2, 2.0, d)[None, :] / np.sqrt(d)
    y = rng.standard_normal((n, d)) @ mix + 0.5 * rng.standard_normal(d)
    return x, y


def _exact(x: np.ndarray, y: np.ndarray) -> float:
    xc, yc = x - x.mean(0), y - y.mean(0)
    u1, u2 = xc.T / np.sqrt(len(x) - 1), yc.T / np.sqrt(len(y) - 1)
    diff = x.mean(0) - y.mean(0)
    tr_sqrt = np.linalg.svd(u1.T @ u2, compute_uv=False).sum()
    return float(diff @ diff + (u1 * u1).sum() + (u2 * u2).sum() - 2.0 * tr_sqrt)


def _sqrtm_reference(mu1, cov1, mu2, cov2) -> float:
    """The textbook formula with scipy.linalg.sqrtm (pytorch-fid / frechet-audio-distance style)."""
    from scipy import linalg

    covmean = linalg.sqrtm(cov1 @ cov2)
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(covmean))


def _reference():
    """fadtk's FAD function, or the scipy reference when fadtk cannot be imported."""
    try:
        from fadtk.fad import calc_frechet_distance
    except ImportError as exc:
        print(f"fadtk is not importable ({exc}); using a scipy.linalg.sqrtm reference instead. For the real "
              "comparison: .venv/bin/pip install --no-deps fadtk hypy-utils", file=sys.stderr)
        return "scipy sqrtm reference (fadtk not installed)", _sqrtm_reference, None
    import fadtk

    version = getattr(fadtk, "__version__", None)
    if version is None:
        from importlib.metadata import version as dist_version

        version = dist_version("fadtk")
    return f"fadtk {version} calc_frechet_distance", calc_frechet_distance, version


def _timed(fn, repeats: int):
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return value, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="D 256, N 200")
    parser.add_argument("--dim", type=int, default=None, help="embedding dimension (default 1024)")
    parser.add_argument("--frames", type=int, default=None, help="frames per set (default 500)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of eval.frechet (median reported)")
    parser.add_argument("--reference-repeats", type=int, default=3, help="timed runs of fadtk / the reference")
    args = parser.parse_args()
    d = args.dim or (256 if args.quick else 1024)
    n = args.frames or (200 if args.quick else 500)

    from eval.frechet import GaussianStats, frechet_distance_details

    logging.basicConfig(level=logging.WARNING)
    threads_before = _threads()  # the load average shows whether other processes competed for the cores
    x, y = _sets(d, n)
    a, b = GaussianStats.from_embeddings(x), GaussianStats.from_embeddings(y)
    exact = _exact(x, y)
    ref_name, ref_fn, fadtk_version = _reference()

    results = {}
    for label, check in (("eval.frechet (with cross-check)", True), ("eval.frechet (check=False)", False)):
        frechet_distance_details(a, b, check=check)  # warm-up
        res, times = _timed(lambda: frechet_distance_details(a, b, check=check), args.repeats)
        results[label] = (res.value, times, res.discrepancy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value, times = _timed(lambda: float(np.real(ref_fn(a.mu, a.sigma, b.mu, b.sigma))), args.reference_repeats)
    results[ref_name] = (value, times, float("nan"))
    ref_value, ref_times = value, times

    rows = []
    for label, (value, times, discrepancy) in results.items():
        median = statistics.median(times)
        rows.append({
            "implementation": label, "median_s": median, "min_s": min(times), "runs": len(times),
            "speedup_vs_ref": statistics.median(ref_times) / median, "fd": value,
            "rel_diff_vs_ref": abs(value - ref_value) / abs(ref_value),
            "rel_err_vs_exact": abs(value - exact) / abs(exact),
            "check_discrepancy": discrepancy})
    threads = dict(_threads(), loadavg_1min_before=threads_before["loadavg_1min"])
    print(f"D = {d}, N = {n} per set (rank-deficient covariances: N < D), exact FD = {exact:.10g}")
    print(f"threads: {threads}")
    if caught:
        print(f"{ref_name} warnings: {sorted({str(w.message)[:120] for w in caught})}")
    from bench.common import report

    report("fad_quick" if args.quick else "fad", rows, params={
        "dim": d, "frames_per_set": n, "exact_fd": exact, "reference": ref_name, "fadtk_version": fadtk_version,
        "threads": threads, "reference_warnings": sorted({str(w.message)[:200] for w in caught}),
        "targets": {"speedup_vs_fadtk": 10, "rel_agreement": 1e-6}})


if __name__ == "__main__":
    main()
