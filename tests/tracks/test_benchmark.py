"""Benchmark bookkeeping: the matched-accuracy RK4 choice and the per-fold samples."""

import numpy as np
import pytest

from physml.tracks import benchmark
from physml.tracks.field import GaussianField


def test_matched_accuracy_picks_a_schedule_within_tolerance_and_rejects_coarse_ones():
    res = benchmark.rk4_at_matched_accuracy(GaussianField(), n_ref=8, n_speed=256,
                                            steps_mm=[2000.0, 100.0], rng=np.random.default_rng(0),
                                            tol_um=1.0, repeats=2, n_scipy_timed=1)
    scan = res["scan"].set_index("schedule")
    assert scan.loc["2e+03 mm", "max_err_um"] > 1.0  # the coarse step misses 1 um...
    assert res["schedule"] == "100 mm" and res["max_err_um"] <= 1.0  # ...so it is not chosen
    assert res["errors_um"].shape == (8,) and res["errors_um"].max() == res["max_err_um"]
    assert res["rk4_speedup_vs_scipy"] > 1
    with pytest.raises(RuntimeError, match="no schedule reaches"):
        benchmark.rk4_at_matched_accuracy(GaussianField(), n_ref=4, n_speed=64,
                                          steps_mm=[2000.0], rng=np.random.default_rng(0),
                                          tol_um=1.0, repeats=2, n_scipy_timed=1)


def test_fold_means_are_means_of_contiguous_parts():
    v = np.arange(10.0)
    np.testing.assert_allclose(benchmark.fold_means(v, 2), [2.0, 7.0])
    with pytest.raises(ValueError, match="folds"):
        benchmark.fold_means(v, 1)
