"""Transport simulator against independent references: conservation, the analytic puff,
first-order convergence, the CFL guard, and the Froude blocking rule on a hand-built ridge."""

import numpy as np
import pytest

from physml.attention import terrain as tr
from physml.attention import transport as T

L_M = 64_000.0
K = 20.0
WIND = (6.0, 3.0)
CENTRE = (20_000.0, 20_000.0)
SIGMA = 6_000.0
T_END = 2_000.0


def _uniform(n, wind):
    w = np.zeros((2, n, n))
    w[0], w[1] = wind
    return w


def _puff_error(n):
    dx = L_M / n
    q0 = T.gaussian_puff(n, dx, CENTRE, SIGMA)
    q = T.simulate(q0, _uniform(n, WIND), T_END, dx, K, cfl=0.5)
    exact = T.puff_solution(n, dx, CENTRE, SIGMA, WIND, K, T_END)
    return np.linalg.norm(q - exact) / np.linalg.norm(exact)


def test_puff_matches_analytic_solution():
    # analytic: centre moves by U t, variance grows by 2 K t
    assert _puff_error(256) < 0.05


def test_wrong_wind_sign_breaks_puff_match():
    n, dx = 128, L_M / 128
    q0 = T.gaussian_puff(n, dx, CENTRE, SIGMA)
    q = T.simulate(q0, _uniform(n, (-WIND[0], -WIND[1])), T_END, dx, K, cfl=0.5)
    exact = T.puff_solution(n, dx, CENTRE, SIGMA, WIND, K, T_END)
    assert np.linalg.norm(q - exact) / np.linalg.norm(exact) > 0.5


def test_upwind_scheme_converges_first_order():
    ns = np.array([32, 64, 128, 256])
    errs = np.array([_puff_error(int(n)) for n in ns])
    order = np.polyfit(np.log(L_M / ns), np.log(errs), 1)[0]  # err ∝ dx^order
    assert 0.75 < order < 1.25, (errs, order)


@pytest.mark.parametrize("boundary", ["closed"])
def test_mass_conserved_with_closed_boundaries(boundary):
    rng = np.random.default_rng(0)
    n, dx = 48, 1000.0
    h = tr.random_terrains(rng, 3, tr.TerrainSpec(n_cells=n, margin_cells=8))
    wind = T.deflected_wind(h, rng.normal(0, 8, size=(3, 2)), 0.01, dx)
    q0 = rng.uniform(0, 1, size=(3, n, n))
    q = T.simulate(q0, wind, 40_000.0, dx, K, boundary=boundary)  # many crossings of the domain
    drift = np.abs(q.sum(axis=(1, 2)) - q0.sum(axis=(1, 2))) / q0.sum(axis=(1, 2))
    assert drift.max() < 1e-12
    assert q.min() >= -1e-12  # explicit upwind under CFL stays positive


def test_open_boundary_loses_mass_downwind_only():
    n, dx = 32, 1000.0
    q0 = T.gaussian_puff(n, dx, (24_000.0, 16_000.0), 2_000.0)
    q = T.simulate(q0, _uniform(n, (10.0, 0.0)), 1_500.0, dx, 0.0, boundary="open")
    assert q.sum() < 0.9 * q0.sum()
    q_up = T.simulate(q0, _uniform(n, (-10.0, 0.0)), 300.0, dx, 0.0, boundary="open")
    assert q_up.sum() == pytest.approx(q0.sum(), rel=1e-12)  # puff far from the left edge


def test_cfl_violation_raises():
    n, dx = 16, 1000.0
    w = _uniform(n, (10.0, 0.0))[None]
    q = np.ones((1, n, n))
    limit = T.max_stable_dt(w, dx, K)[0]
    assert limit == pytest.approx(1.0 / (10.0 / dx + 4 * K / dx**2))
    T.step(q, w, 0.99 * limit, dx, K)
    with pytest.raises(T.CFLError, match="dt_s"):
        T.step(q, w, 1.01 * limit, dx, K)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"diffusivity_m2s": -1.0}, "diffusivity_m2s"), ({"dx_m": 0.0}, "dx_m"),
     ({"boundary": "periodic"}, "boundary")],
)
def test_bad_params_rejected_by_name(kwargs, field):
    n = 8
    args = {"dx_m": 1000.0, "diffusivity_m2s": K, "boundary": "closed"} | kwargs
    with pytest.raises(ValueError, match=field):
        T.simulate(np.ones((n, n)), _uniform(n, (1.0, 0.0)), 10.0, **args)


def test_blocking_rule_on_a_straight_ridge():
    # ridge along y at x = 32 cells, height 1000 m, N = 0.01 /s: critical speed U = N h = 10 m/s
    n, dx, N = 64, 1000.0, 0.01
    h = tr.ridge(n, (32, 32), np.pi / 2, 1000.0, 1e6, 4.0)
    windward = (32, 28)  # (row, col): on the upwind flank, h ≈ 600 m
    for speed, blocked in [(2.0, True), (40.0, False)]:
        w = T.deflected_wind(h, np.array([speed, 0.0]), N, dx)
        u = w[0][windward]
        if blocked:  # Fr(local) = 2 / (0.01 · 607) ≈ 0.33: upslope flow nearly removed
            assert u < 0.05 * speed
        else:  # Fr ≈ 6.6: flow passes
            assert u > 0.99 * speed
    # lee side (downslope) is never modified
    w = T.deflected_wind(h, np.array([2.0, 0.0]), N, dx)
    assert w[0][32, 36] == pytest.approx(2.0)


def test_flat_terrain_leaves_wind_unchanged():
    w = T.deflected_wind(np.zeros((2, 8, 8)), np.array([[3.0, -1.0], [0.5, 2.0]]), 0.01, 1000.0)
    assert np.allclose(w[:, 0], np.array([3.0, 0.5])[:, None, None])
    assert np.allclose(w[:, 1], np.array([-1.0, 2.0])[:, None, None])


def test_froude_number():
    assert T.froude(10.0, 0.01, 1000.0) == pytest.approx(1.0)
    assert T.blocking_weight(np.array(1.0)) == pytest.approx(0.5)
    assert np.isinf(T.froude(1.0, 0.01, 0.0))


def test_blocking_demo_weak_wind_keeps_tracer_upwind():
    from physml.attention.checks import blocking_demo

    weak = blocking_demo(64, 3.0, 1000.0, 1)  # Fr = 0.3
    strong = blocking_demo(64, 25.0, 1000.0, 1)  # Fr = 2.5
    assert weak["east_fraction"] < 0.1 < 0.5 < strong["east_fraction"]
    assert weak["upslope_cut"] > 0.8 and strong["upslope_cut"] < 0.1


def test_froude_of_a_vanishing_ridge_is_infinite_without_a_warning():
    import warnings

    from physml.attention.transport import froude

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fr = froude(np.array([10.0, 10.0, 10.0]), 0.01, np.array([0.0, 1e-310, 500.0]))
    assert np.isinf(fr[0]) and np.isinf(fr[1]) and fr[2] == pytest.approx(10.0 / (0.01 * 500.0))
