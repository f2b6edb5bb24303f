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


def test_deflection_rule_is_the_same_for_the_ridge_and_wind_turned_by_90_degrees():
    """The rule has no preferred axis: swapping x and y in the terrain and the wind swaps the
    two wind components (a ridge along x blocks a northward wind as a ridge along y blocks an
    eastward one), and an oblique wind loses only its upslope part."""
    n, dx, N = 64, 1000.0, 0.01
    h = tr.ridge(n, (32, 32), np.pi / 2, 1000.0, 1e6, 4.0)  # crest along y
    east = T.deflected_wind(h, np.array([2.0, 0.0]), N, dx)
    north = T.deflected_wind(h.T, np.array([0.0, 2.0]), N, dx)
    np.testing.assert_allclose(north[1], east[0].T, atol=1e-12)
    np.testing.assert_allclose(north[0], east[1].T, atol=1e-12)
    assert north[1][28, 32] < 0.1  # windward of the crest along x: northward flow blocked
    # an oblique wind against the ridge along y keeps its along-crest part where it is blocked
    oblique = T.deflected_wind(h, np.array([2.0, 1.5]), N, dx)
    assert oblique[0][32, 28] < 0.1 and oblique[1][32, 28] == pytest.approx(1.5, rel=1e-3)


def test_one_step_is_upwind_forward_euler_by_hand():
    """A uniform wind (u, v) > 0, no diffusion: q_new = q - dt (u (q - q_left) + v (q - q_below))
    / dx inside; with open edges the mass lost in one step is dt dx (u sum q[:, -1] + v sum
    q[-1, :]) (outflow at the right and top edges, clean air in at the others)."""
    n, dx, u, v, dt = 6, 100.0, 3.0, 2.0, 5.0
    q = np.random.default_rng(4).uniform(0.5, 1.5, size=(1, n, n))
    w = _uniform(n, (u, v))[None]
    new = T.step(q, w, dt, dx, 0.0, boundary="open")[0]
    c = q[0]
    want = c[1:, 1:] - dt * (u * (c[1:, 1:] - c[1:, :-1]) + v * (c[1:, 1:] - c[:-1, 1:])) / dx
    np.testing.assert_allclose(new[1:, 1:], want, rtol=1e-13)
    lost = (c.sum() - new.sum()) * dx**2
    assert lost == pytest.approx(dt * dx * (u * c[:, -1].sum() + v * c[-1, :].sum()), rel=1e-12)
    closed = T.step(q, w, dt, dx, 0.0, boundary="closed")[0]
    assert closed.sum() == pytest.approx(c.sum(), rel=1e-13)


def test_bad_horizon_and_stratification_are_refused():
    n, dx = 8, 1000.0
    for t_end in (-1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="t_end_s must be finite and >= 0"):
            T.simulate(np.ones((n, n)), _uniform(n, (1.0, 0.0)), t_end, dx, K)
    q0 = np.random.default_rng(2).uniform(size=(n, n))  # a zero horizon returns the start
    np.testing.assert_array_equal(T.simulate(q0, _uniform(n, (1.0, 0.0)), 0.0, dx, K), q0)
    for N in (0.0, -0.01):
        with pytest.raises(ValueError, match="brunt_vaisala_s must be > 0"):
            T.deflected_wind(np.zeros((n, n)), np.array([1.0, 0.0]), N, dx)


def _moments(q, dx):
    """Mass, centroid (x, y) and variance about it of a density (n, n) on cell centres."""
    n = q.shape[-1]
    y, x = (np.mgrid[0:n, 0:n] + 0.5) * dx
    m = q.sum() * dx**2
    cx, cy = (q * x).sum() * dx**2 / m, (q * y).sum() * dx**2 / m
    var = (q * ((x - cx) ** 2 + (y - cy) ** 2)).sum() * dx**2 / m / 2
    return m, cx, cy, var


def test_puff_and_its_solution_have_the_stated_mass_centre_and_spread():
    """Independent of the simulator: the sampled puff has mass M, its centre where asked (cell
    i centred at (i + 1/2) dx) and variance sigma^2 per axis; the analytic solution moves the
    centre by U t and adds 2 K t to the variance."""
    n, dx, sigma = 160, 500.0, 4_000.0  # 80 km: every puff here is > 6 sigma from the edges
    m, cx, cy, var = _moments(T.gaussian_puff(n, dx, (30_000.0, 35_000.0), sigma, 2.5), dx)
    assert m == pytest.approx(2.5, rel=1e-9)
    assert (cx, cy) == (pytest.approx(30_000.0, rel=1e-9), pytest.approx(35_000.0, rel=1e-9))
    assert var == pytest.approx(sigma**2, rel=1e-6)
    kt = 400.0 * 10_000.0
    m, cx, cy, var = _moments(T.puff_solution(n, dx, (30_000.0, 35_000.0), sigma, (1.0, -0.5),
                                              400.0, 10_000.0), dx)
    assert (cx, cy) == (pytest.approx(40_000.0, rel=1e-9), pytest.approx(30_000.0, rel=1e-9))
    assert var == pytest.approx(sigma**2 + 2 * kt, rel=1e-6)


def test_pure_diffusion_spreads_the_variance_by_2kt():
    """No wind, closed edges far away: the discrete diffusion keeps the mass and the centre and
    adds exactly 2 K t to the variance per axis (a property of the five-point flux form), with
    2 K t here as large as the starting variance."""
    n, dx, sigma, k = 96, 500.0, 3_000.0, 500.0
    t = sigma**2 / (2 * k)
    q0 = T.gaussian_puff(n, dx, (24_000.0, 24_000.0), sigma)
    q = T.simulate(q0, _uniform(n, (0.0, 0.0)), t, dx, k)
    m0, cx0, cy0, v0 = _moments(q0, dx)
    m, cx, cy, v = _moments(q, dx)
    assert m == pytest.approx(m0, rel=1e-12)
    assert (cx, cy) == (pytest.approx(cx0, rel=1e-9), pytest.approx(cy0, rel=1e-9))
    assert v - v0 == pytest.approx(2 * k * t, rel=1e-6)


def test_frames_are_the_states_at_evenly_spaced_steps():
    n, dx = 32, 1000.0
    q0 = T.gaussian_puff(n, dx, (10_000.0, 16_000.0), 3_000.0)
    w = _uniform(n, (5.0, 0.0))
    last = T.simulate(q0, w, 1_000.0, dx, K)
    assert last.shape == (n, n)
    frames = T.simulate(q0, w, 1_000.0, dx, K, n_frames=4)
    assert frames.shape == (4, n, n)
    # the last frame is the state at t_end (its steps rounded up to a multiple of the frames,
    # it may take a few more, shorter ones than the single-frame run: same centre, same mass)
    assert _moments(frames[-1], dx)[:3] == pytest.approx(_moments(last, dx)[:3], rel=1e-7)
    # the puff's centre moves by u t: a quarter of the way per frame
    xs = [_moments(f, dx)[1] for f in frames]
    np.testing.assert_allclose(np.diff([_moments(q0, dx)[1], *xs]), 5.0 * 250.0, rtol=1e-5)
    batched = T.simulate(q0[None], w[None], 1_000.0, dx, K)
    assert batched.shape == (1, n, n)
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="n_frames must be an integer >= 1"):
            T.simulate(q0, w, 1_000.0, dx, K, n_frames=bad)


def test_cfl_factor_and_a_still_atmosphere():
    n, dx = 8, 1000.0
    for cfl in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match=r"cfl must be in \(0, 1\]"):
            T.simulate(np.ones((n, n)), _uniform(n, (1.0, 0.0)), 10.0, dx, K, cfl=cfl)
    T.simulate(np.ones((n, n)), _uniform(n, (1.0, 0.0)), 10.0, dx, K, cfl=1.0)
    # no wind and no diffusion: any step is stable
    assert np.isinf(T.max_stable_dt(_uniform(n, (0.0, 0.0))[None], dx, 0.0)).all()


def test_a_step_exactly_at_the_stable_limit_is_allowed_and_just_past_it_refused():
    n, dx = 8, 1000.0
    w = _uniform(n, WIND)[None]
    q = np.ones((1, n, n))
    limit = T.max_stable_dt(w, dx, K)
    assert limit[0] == pytest.approx(1.0 / ((6.0 + 3.0) / dx + 4.0 * K / dx**2))
    T.step(q, w, limit, dx, K)  # dt·(max|u| + max|v|)/dx + 4·K·dt/dx² = 1: still stable
    with pytest.raises(T.CFLError, match="sample 0"):
        T.step(q, w, limit * (1 + 1e-9), dx, K)
