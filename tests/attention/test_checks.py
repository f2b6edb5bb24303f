"""physml.attention.checks, the simulator checks notebook 01 reports: each figure against
what it must be by construction (mass, the puff's centre and spread, the ridge's Froude number,
the frames' times), not against the simulator."""

import numpy as np
import pytest

from physml.attention import checks
from physml.attention import transport as T


def _moments(q, dx):
    y, x = (np.mgrid[0:q.shape[0], 0:q.shape[1]] + 0.5) * dx
    m = q.sum()
    return m * dx * dx, (q * x).sum() / m, (q * y).sum() / m


def test_the_puff_is_simulated_and_solved_where_the_setup_says():
    n = 64
    sim, exact = checks.puff(n)
    assert sim.shape == exact.shape == (n, n)
    dx = checks.PUFF["domain_m"] / n
    # the set-up: centre (20, 20) km moved by (6, 3) m/s for 2000 s, unit mass
    for q in (exact, sim):
        m, cx, cy = _moments(q, dx)
        assert m == pytest.approx(1.0, rel=1e-3)
        assert (cx, cy) == (pytest.approx(32_000.0, abs=0.25 * dx),
                            pytest.approx(26_000.0, abs=0.25 * dx))
    err = checks.puff_rel_error(n)
    assert err == pytest.approx(np.linalg.norm(sim - exact) / np.linalg.norm(exact))
    assert 0.01 < err < 0.5


def test_convergence_tabulates_each_grid_and_fits_first_order():
    df, order = checks.convergence([32, 64, 128])
    assert df["n_cells"].tolist() == [32, 64, 128]
    assert df["dx_m"].tolist() == [2000.0, 1000.0, 500.0]
    assert df["rel_error"].tolist() == [checks.puff_rel_error(n) for n in (32, 64, 128)]
    assert df["rel_error"].is_monotonic_decreasing
    assert 0.75 < order < 1.25  # the upwind scheme: error ∝ dx (tests/attention/test_transport)
    halving = np.log2(df["rel_error"].iloc[0] / df["rel_error"].iloc[-1]) / 2
    assert order == pytest.approx(halving, rel=0.15)  # the slope over the two halvings


def test_mass_drift_is_the_relative_change_of_mass_on_closed_boundaries():
    drift = checks.mass_drift(np.random.default_rng(0), 24, 3, 20_000.0)
    assert drift.shape == (3,)
    assert np.all(drift >= 0.0) and np.all(drift < 1e-12)


def test_the_blocking_demo_times_its_frames_and_names_the_ridges_froude_number():
    d = checks.blocking_demo(32, 4.0, 800.0, 3)
    assert d["froude"] == pytest.approx(4.0 / (0.01 * 800.0))
    assert d["frames"].shape == (4, 32, 32) and d["wind"].shape == (2, 32, 32)
    t_end = 0.375 * 32 * 1000.0 / 4.0  # the undisturbed puff travels 3/8 of the domain
    np.testing.assert_allclose(d["times_s"], np.linspace(0.0, t_end, 4))
    start = T.gaussian_puff(32, 1000.0, (0.3 * 32 * 1000.0, 15.5 * 1000.0), 3000.0)
    np.testing.assert_array_equal(d["frames"][0], start)  # west of the crest, on its axis
    assert d["terrain"].max() == pytest.approx(800.0, rel=0.05)
    last = d["frames"][-1]  # the share of the final mass beyond the crest (column 15.5) + n/8
    assert d["east_fraction"] == pytest.approx(last[:, 19:].sum() / last.sum(), rel=1e-12)
    assert 0.0 < d["upslope_cut"] <= 1.0
    one = checks.blocking_demo(32, 4.0, 800.0, 1)
    assert one["frames"].shape == (2, 32, 32) and one["times_s"].tolist() == [0.0, t_end]
    # the same end time: the last frame agrees up to the time steps' split into frames
    np.testing.assert_allclose(one["frames"][-1], d["frames"][-1],
                               atol=0.01 * d["frames"][-1].max())
