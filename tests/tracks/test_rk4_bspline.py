"""The C² B-spline map and the compiled RK4 on it: against scipy.ndimage (the spline), scipy
DOP853 and the analytic helix (the integrators), straight lines where B = 0, the schedule
selector, and thread-count / track-order invariance of the parallel kernels."""

import numba
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from physml.tracks import benchmark
from physml.tracks import rk4_compiled as K
from physml.tracks.field import GaussianField, GridField
from physml.tracks.propagate import propagate, propagate_scipy, straight_line
from physml.tracks.tricubic import BSplineField, TricubicField
from track_maps import gaussian_map

from .test_propagate import _helix, _tracks


def _map_of(fn, lo=(-600.0, -600.0, -200.0), hi=(600.0, 600.0, 3200.0),
            spacing=(100.0, 100.0, 100.0)) -> GridField:
    axes = [np.arange(a, b + 1e-9, s) for a, b, s in zip(lo, hi, spacing, strict=True)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    return GridField(np.array(lo), np.array(spacing), fn(pts).reshape(*[a.size for a in axes], 3))


def _smooth(p):
    """A smooth, non-polynomial field (T) over the map of _map_of."""
    x, y, z = p[:, 0] / 1000, p[:, 1] / 1000, p[:, 2] / 1000
    return np.stack([0.1 * np.sin(x + z) * np.cos(y), 0.8 * np.exp(-((z - 1.5) / 0.7) ** 2)
                     * (1 + 0.1 * x * x), 0.05 * np.cos(2 * z) * y], 1)


# ------------------------------------------------------------------------------------------
# the representation
# ------------------------------------------------------------------------------------------
def test_bspline_equals_scipy_cubic_spline_of_the_map_and_takes_the_node_values():
    g = _map_of(_smooth)
    bs = BSplineField(g)
    rng = np.random.default_rng(0)
    # away from the edges the odd extension no longer matters (its influence decays 0.268x per
    # node), so scipy's mirror-mode spline of the map is the same function there
    p = rng.uniform([-300, -300, 100], [300, 300, 2900], size=(500, 3))
    frac = ((p - g.origin_mm) / g.spacing_mm).T
    ref = np.stack([ndimage.map_coordinates(g.b_tesla[..., c], frac, order=3, mode="mirror")
                    for c in range(3)], 1)
    np.testing.assert_allclose(bs(p), ref, atol=2e-4 * np.abs(ref).max())
    # ... and it interpolates: at every node (edges included) it returns the map's value
    nodes = np.stack(np.meshgrid(*g.axes(), indexing="ij"), -1).reshape(-1, 3)
    np.testing.assert_allclose(bs(nodes), g.b_tesla.reshape(-1, 3), atol=1e-12)
    np.testing.assert_allclose(np.array([bs.at(*q) for q in p[:20]]), bs(p[:20]), atol=1e-15)


def test_bspline_is_closer_to_a_smooth_truth_than_the_trilinear_map():
    g = _map_of(_smooth)
    p = np.random.default_rng(1).uniform([-500, -500, 0], [500, 500, 3000], size=(2000, 3))
    err_bs = np.abs(BSplineField(g)(p) - _smooth(p)).max()
    err_lin = np.abs(g(p) - _smooth(p)).max()
    assert err_bs < 0.05 * err_lin, (err_bs, err_lin)


def test_a_linear_field_is_reproduced_up_to_the_edges():
    """The odd extension continues value and slope at the map's faces; a mirror (zero-slope)
    edge would bend a linear field in the edge cells (tracks start on the z = 0 face)."""
    def lin(p):
        return np.stack([1e-3 * p[:, 0] + 0.2, -2e-4 * p[:, 2] + 1e-4 * p[:, 1],
                         3e-4 * p[:, 2]], 1)

    bs = BSplineField(_map_of(lin))
    p = np.random.default_rng(2).uniform([-600, -600, -200], [600, 600, 3200], size=(3000, 3))
    p[:10, 2] = -200.0  # on the first face
    np.testing.assert_allclose(bs(p), lin(p), atol=1e-7)  # field ~0.6 T; mirror edge: ~1e-2


def test_second_derivative_is_continuous_across_cell_faces_unlike_tricubic():
    g = _map_of(_smooth)
    x, y, face = 50.0, -30.0, 1100.0  # a z face of the map (not the peak: B'' symmetric)
    h = 0.05  # mm, one-sided second differences inside each cell (B'' ~ 1e-6 T/mm²)

    def jump(f):
        p = np.array([[x, y, face + k * h] for k in (-3, -2, -1, 0, 1, 2, 3)])
        b = f(p)[:, 1]
        left = (b[0] - 2 * b[1] + b[2]) / h**2  # centred at face - 2h
        right = (b[4] - 2 * b[5] + b[6]) / h**2  # at face + 2h
        return abs(left - right)

    assert jump(BSplineField(g)) < 1e-8  # C²: only the 4h drift of B'' (measured 1.8e-9)
    assert jump(TricubicField(g)) > 2e-8  # C¹: B'' jumps (4.2e-8), so the check above can fail


def test_bspline_is_zero_outside_the_map_and_rejects_non_maps():
    bs = BSplineField(_map_of(_smooth))
    out = np.array([[-601.0, 0, 100], [0, 601, 100], [0, 0, -200.5], [0, 0, 3200.5]])
    assert np.all(bs(out) == 0)
    with pytest.raises(TypeError, match="GridField"):
        BSplineField(np.zeros((5, 5, 5, 3)))


def test_cached_evaluation_equals_the_plain_one_inside_and_is_zero_outside():
    """bspline_point_cached (the RK4 kernels' evaluation off the planes) gives bspline_point's
    value at points inside the box, reusing its z-contraction while a track stays in a cell,
    and zero just outside each face, whatever its cache holds."""
    from physml.tracks.tricubic import SCRATCH, bspline_point, bspline_point_cached

    bs = BSplineField(_map_of(_smooth))
    c, o, inv = bs.kernel_arrays()
    scratch = np.zeros(SCRATCH)
    scratch[0] = -1.0
    inside = [(12.0, -37.0, 950.0), (31.0, -5.0, 950.0), (-590.0, 590.0, -150.0),
              (599.9, -599.9, 3199.9), (12.0, -37.0, 1010.0)]
    for q in inside:  # the second point reuses the first's z-contraction (same cell, same z)
        np.testing.assert_allclose(bspline_point_cached(c, o, inv, *q, scratch),
                                   bspline_point(c, o, inv, *q), rtol=1e-12, atol=1e-15)
    outside = [(-600.5, 0.0, 950.0), (600.5, 0.0, 950.0), (0.0, -600.5, 950.0),
               (0.0, 600.5, 950.0), (0.0, 0.0, -200.5), (0.0, 0.0, 3200.5)]
    for q in outside:
        assert bspline_point_cached(c, o, inv, *q, scratch) == (0.0, 0.0, 0.0)
        assert bspline_point(c, o, inv, *q) == (0.0, 0.0, 0.0)


# ------------------------------------------------------------------------------------------
# the integrators on it
# ------------------------------------------------------------------------------------------
def test_rk4_on_the_bspline_map_matches_dop853_to_one_micrometre():
    bs = BSplineField(gaussian_map())
    s = _tracks(40, seed=4, p_range=(1.5, 100.0))
    ref = propagate_scipy(s, 0.0, 8500.0, bs, batched=True)
    for out in (propagate(s, 0.0, 8500.0, bs, step_mm=100.0),
                K.rk4_momentum_scaled(s, 0.0, 8500.0, bs, 100.0, 0.25, 1000.0)[0]):
        err = np.hypot(*(out[:, :2] - ref[:, :2]).T)
        assert err.max() < 1e-3, err.max()  # mm
        np.testing.assert_allclose(out[:, 2:4], ref[:, 2:4], atol=1e-7)
    # and the reference is not trivially met: far too long steps miss it
    coarse = K.rk4_momentum_scaled(s, 0.0, 8500.0, bs, 4000.0, 0.0, 4000.0)[0]
    assert np.hypot(*(coarse[:, :2] - ref[:, :2]).T).max() > 1e-2


@pytest.mark.parametrize("exponent", [0.0, 0.5])
def test_momentum_scaled_rk4_matches_the_helix_in_a_uniform_map(exponent):
    b = np.zeros((6, 6, 40, 3))
    b[..., 1] = 1.0
    bs = BSplineField(GridField(np.array([-5000.0, -5000.0, -100.0]),
                                np.array([2000.0, 2000.0, 100.0]), b))
    s = _tracks(6, seed=1)
    out, _ = K.rk4_momentum_scaled(s, 0.0, 3000.0, bs, 20.0, exponent, 200.0)
    exact = np.array([_helix(t, 0.0, 3000.0, 1.0) for t in s])
    np.testing.assert_allclose(out[:, :2], exact[:, :2], atol=1e-3)
    np.testing.assert_allclose(out[:, 2:4], exact[:, 2:4], atol=1e-7)
    back, _ = K.rk4_momentum_scaled(out, 3000.0, 0.0, bs, 20.0, exponent, 200.0)
    np.testing.assert_allclose(back[:, :4], s[:, :4], atol=1e-6)  # either direction


def test_momentum_scaled_steps_follow_the_rule():
    bs = BSplineField(_map_of(_smooth))
    p = np.array([0.5, 1.0, 4.0, 100.0, 1e6])
    s = np.zeros((5, 5))
    s[:, 4] = 1 / p
    s[3, 4] *= -1  # the charge does not matter
    _, steps = K.rk4_momentum_scaled(s, 0.0, 3000.0, bs, 100.0, 0.5, 700.0)
    h = np.minimum(700.0, 100.0 * p**0.5)  # 70.7, 100, 200, 700 (cap), 700 (cap)
    np.testing.assert_array_equal(steps, np.ceil(3000.0 / h - 1e-9).astype(int))
    assert list(steps) == [43, 30, 15, 5, 5]
    with pytest.raises(ValueError, match="exponent"):
        K.rk4_momentum_scaled(s, 0.0, 3000.0, bs, 100.0, -1.0, 700.0)


@pytest.mark.parametrize("rep", ["trilinear", "bspline"])
def test_straight_lines_are_exact_where_the_field_is_zero(rep):
    g = GridField(np.array([-1000.0, -1000.0, 0.0]), np.full(3, 100.0), np.zeros((21, 21, 40, 3)))
    field = g if rep == "trilinear" else BSplineField(g)
    s = _tracks(200, seed=5, p_range=(0.5, 100.0))
    s[:20, 0] += 5000.0  # outside the map: zero field too
    want = straight_line(s, 8500.0)
    np.testing.assert_allclose(propagate(s, 0.0, 8500.0, field, step_mm=700.0), want, atol=1e-9)
    out, steps = K.rk4_momentum_scaled(s, 0.0, 8500.0, field, 1000.0, 0.5, 8500.0)
    np.testing.assert_allclose(out, want, atol=1e-9)
    assert steps.min() >= 1


def test_parallel_kernels_give_the_same_answer_on_one_thread_and_in_any_track_order():
    bs = BSplineField(gaussian_map())
    s = _tracks(500, seed=6, p_range=(1.5, 100.0))  # >= LOCALITY_MIN_TRACKS: reordered
    assert len(s) >= K.LOCALITY_MIN_TRACKS
    nodes = np.linspace(0.0, 8500.0, 86)
    arrays = tuple(map(K._c, bs.kernel_arrays()))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        assert bs.on_planes(nodes)  # so rk4_compiled runs the planes' blocked kernel
        serial = K.BSPLINE_PLANES.rk4_nodes(s, nodes, *map(K._c, bs.plane_arrays()))
        serial_general = K.BSPLINE.rk4_to(s, nodes, np.full(len(s), 8500.0),
                                          np.zeros(len(s), np.int64), *arrays)
        serial_scaled = K.BSPLINE.rk4_scaled(s, 0.0, 8500.0, 100.0, 0.25, 2000.0, *arrays)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        parallel = K.rk4_compiled(s, nodes, bs)  # in locality order, on all threads
        parallel_scaled = K.rk4_momentum_scaled(s, 0.0, 8500.0, bs, 100.0, 0.25, 2000.0)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(parallel, serial)  # bit for bit
    np.testing.assert_allclose(parallel, serial_general, rtol=0, atol=1e-9)  # same spline
    np.testing.assert_array_equal(parallel_scaled[0], serial_scaled[0])
    np.testing.assert_array_equal(parallel_scaled[1], serial_scaled[1])
    order = K.locality_order(s)
    assert not np.array_equal(order, np.arange(len(s)))  # the order did change
    assert sorted(order) == list(range(len(s)))


def test_planes_hold_the_bspline_on_its_node_and_half_node_planes():
    g = _map_of(_smooth)
    bs = BSplineField(g)
    planes, o, inv = bs.plane_arrays()
    assert planes.shape == (g.shape[0] + 2, g.shape[1] + 2, 2 * g.shape[2] - 1, 3)
    rng = np.random.default_rng(3)
    z = -200.0 + 50.0 * rng.integers(6, 63, 400)  # node and half-node planes, 100..2900 mm
    p = np.c_[rng.uniform(-300, 300, (400, 2)), z]
    got = np.array([K._bspline_plane_point(planes, o, inv, *q, None) for q in p])
    frac = ((p - g.origin_mm) / g.spacing_mm).T  # the independent reference: scipy's spline
    ref = np.stack([ndimage.map_coordinates(g.b_tesla[..., c], frac, order=3, mode="mirror")
                    for c in range(3)], 1)
    np.testing.assert_allclose(got, ref, atol=2e-4 * np.abs(ref).max())
    np.testing.assert_allclose(got, bs(p), rtol=0, atol=1e-13)  # and the general evaluation
    edge = np.array([[-601.0, 0, 100], [601.0, 0, 100], [0, -601.0, 100], [0, 601.0, 100],
                     [0, 0, -250.0], [0, 0, 3250.0]])
    assert all(K._bspline_plane_point(planes, o, inv, *q, None) == (0.0, 0.0, 0.0) for q in edge)
    # on the box's upper x and y faces: the node values
    face = np.array([[600.0, 200.0, 1000.0], [-300.0, 600.0, 1000.0], [600.0, 600.0, 1000.0]])
    got = np.array([K._bspline_plane_point(planes, o, inv, *q, None) for q in face])
    np.testing.assert_allclose(got, _smooth(face), atol=1e-12)


def test_on_planes_accepts_node_or_half_node_schedules_only():
    bs = BSplineField(_map_of(_smooth))  # z-nodes at -200, -100, 0, ... mm
    assert bs.on_planes(np.arange(0.0, 3001.0, 100.0))
    assert bs.on_planes(np.arange(0.0, 3001.0, 300.0))  # midpoints on half-node planes
    assert bs.on_planes(np.arange(50.0, 3000.0, 200.0))  # all on half-node planes
    assert not bs.on_planes(np.array([0.0, 50.0, 100.0]))  # a midpoint at 25 mm
    assert not bs.on_planes(np.array([0.0, 100.0, 233.3]))
    assert not bs.on_planes(np.linspace(0.0, 3000.0, 29))


@pytest.mark.parametrize("nodes", [np.arange(0.0, 8501.0, 100.0), np.arange(50.0, 8500.0, 200.0),
                                   np.linspace(0.0, 8500.0, 58)])
def test_rk4_takes_the_planes_only_where_every_stage_is_on_one(nodes):
    bs = BSplineField(gaussian_map())
    s = _tracks(13, seed=7, p_range=(1.0, 100.0))  # not a multiple of BLOCK: a short last block
    general = K.BSPLINE.rk4_to(s, nodes, np.full(len(s), nodes[-1]), np.zeros(len(s), np.int64),
                               *map(K._c, bs.kernel_arrays()))
    out = K.rk4_compiled(s, nodes, bs)
    if bs.on_planes(nodes):
        np.testing.assert_allclose(out, general, rtol=1e-12, atol=1e-9)  # the same spline
        assert not np.array_equal(out, general)  # through the planes (other rounding)
    else:  # the general kernel: rounding a stage to a plane would be a different field
        np.testing.assert_array_equal(out, general)


def test_dopri5_error_control_includes_the_slope_lever_arm():
    bs = BSplineField(gaussian_map())
    s = _tracks(30, seed=7, p_range=(1.5, 20.0))
    ref = propagate_scipy(s, 0.0, 8500.0, bs, batched=True)
    res = {lever: K.dopri5(s, 0.0, 8500.0, bs, 1e-3, 100.0, 1e-2, 2000.0, slope_lever=lever)
           for lever in (True, False)}
    err = {k: np.hypot(*(v[0][:, :2] - ref[:, :2]).T).max() for k, v in res.items()}
    assert res[True][1].mean() > res[False][1].mean()  # the lever asks for more steps ...
    assert err[True] < err[False]  # ... and they buy accuracy


# ------------------------------------------------------------------------------------------
# the selector
# ------------------------------------------------------------------------------------------
def test_the_selector_takes_the_fastest_schedule_within_tolerance_only():
    scan = pd.DataFrame({"schedule": ["coarse", "ok", "exact-tol", "slow"],
                         "max_err_um": [1.5, 0.4, 1.0, 0.01],
                         "tracks_per_s": [9e5, 2e5, 3e5, 1e4], "timing": [None] * 4})
    assert benchmark._fastest_within(scan, 1.0, "t", "schedule")["schedule"] == "exact-tol"
    assert benchmark._fastest_within(scan, 0.5, "t", "schedule")["schedule"] == "ok"
    with pytest.raises(RuntimeError, match="no schedule reaches 0.001"):
        benchmark._fastest_within(scan, 1e-3, "t", "schedule")


def test_matched_accuracy_scans_momentum_scaled_schedules_and_rejects_a_coarse_one():
    bs = BSplineField(gaussian_map())
    res = benchmark.rk4_at_matched_accuracy(
        bs, n_ref=40, n_speed=256, steps_mm=[], rng=np.random.default_rng(0), tol_um=1.0,
        repeats=2, n_scipy_timed=1,
        momentum_scaled={"exponent": 0.25, "steps_mm_at_1gev": [3000.0, 100.0],
                         "max_step_mm": 3000.0})
    scan = res["scan"].set_index("schedule")
    coarse = [lab for lab in scan.index if lab.startswith("3e+03")][0]
    assert scan.loc[coarse, "max_err_um"] > 1.0  # misses 1 um ...
    assert res["schedule"] != coarse and res["max_err_um"] <= 1.0  # ... so it is not chosen
    assert scan.loc[coarse, "steps"] < scan.loc[res["schedule"], "steps"]
    np.testing.assert_allclose(res["run"](res["states"]), propagate_scipy(
        res["states"], 0.0, 8500.0, bs, batched=True), atol=1e-3)
    with pytest.raises(ValueError, match="unknown keys"):
        benchmark.candidates(bs, 8500.0, [], momentum_scaled={"exponent": 0.2, "steps": [1.0],
                                                              "max_step_mm": 1.0})


def test_representation_gap_reports_the_field_model_error_against_the_truth():
    g = gaussian_map(nxy=11, dz=250.0)
    bs = BSplineField(g)
    rk4 = benchmark.rk4_at_matched_accuracy(bs, n_ref=12, n_speed=64, steps_mm=[100.0],
                                            rng=np.random.default_rng(0), tol_um=1.0,
                                            repeats=2, n_scipy_timed=1)
    gap = benchmark.representation_gap(rk4, g, truth=GaussianField())
    assert gap["n_points"] == 12 * 17 and gap["n_tracks"] == 12
    # the smooth representation of a smooth truth is closer to it than the trilinear map
    assert gap["smooth_vs_truth_max_tesla"] < 0.2 * gap["map_vs_truth_max_tesla"]
    assert gap["smooth_vs_map_max_tesla"] > 0  # they are different fields ...
    # ... by a difference no larger than their two errors against the truth together
    assert gap["smooth_vs_map_max_tesla"] <= (gap["smooth_vs_truth_max_tesla"]
                                              + gap["map_vs_truth_max_tesla"])
    assert gap["map_vs_truth_max_tesla"] <= (gap["smooth_vs_truth_max_tesla"]
                                             + gap["smooth_vs_map_max_tesla"])
    assert rk4["scipy_seconds_per_track"] == pytest.approx(
        rk4["scipy_ratio"].anchor.min_s / rk4["scipy_ratio"].anchor.items)
    assert gap["track_max_um"] > 0.01  # ... so the tracks differ by more than RK4 noise


def test_adaptive_scan_covers_every_step_cap_and_keeps_the_chosen_one():
    bs = BSplineField(gaussian_map())
    rk4 = benchmark.rk4_at_matched_accuracy(bs, n_ref=8, n_speed=64, steps_mm=[100.0],
                                            rng=np.random.default_rng(0), tol_um=1.0,
                                            repeats=2, n_scipy_timed=1)
    res = benchmark.adaptive_at_matched_accuracy(bs, rk4, [30.0, 1e-5], 64, tol_um=1.0,
                                                 repeats=2, max_step_mm=[4000.0, 100.0])
    scan = res["scan"]
    assert len(scan) == 4 and set(scan["max_step_mm"]) == {4000.0, 100.0}
    row = scan[(scan["tol_mm"] == res["tol_mm"]) & (scan["max_step_mm"] == res["max_step_mm"])]
    assert len(row) == 1 and row["max_err_um"].iloc[0] <= 1.0
    assert res["max_err_um"] == row["max_err_um"].iloc[0] == res["errors_um"].max()
    capped = scan[scan["max_step_mm"] == 100.0]
    assert np.all(capped["mean_steps"] >= 8500.0 / 100.0 - 1e-9)  # the cap is applied


def test_spans_knot_sees_a_node_strictly_inside_a_step_only():
    assert benchmark.spans_knot(np.array([-200.0, -100.0, 100.0]), -200.0, 100.0)  # 2nd step
    assert not benchmark.spans_knot(np.array([0.0, 50.0, 100.0, 150.0]), -200.0, 100.0)
    assert benchmark.spans_knot(np.array([0.0, 125.0, 250.0]), -200.0, 100.0)
    assert benchmark.spans_knot(np.array([0.0, 200.0]), -200.0, 100.0)
    assert benchmark.spans_knot(np.array([300.0, 100.0]), 0.0, 100.0)  # descending too
    assert not benchmark.spans_knot(np.array([300.0, 200.0]), 0.0, 100.0)
    # knots at origin + k spacing: 30, 130, ... (not at -30 + k spacing)
    assert not benchmark.spans_knot(np.array([40.0, 120.0]), 30.0, 100.0)
    assert benchmark.spans_knot(np.array([120.0, 140.0]), 30.0, 100.0)


def _edges(p):
    """By rising and falling over ~150 mm (a yoke's edges), a slight x slope: structure at the
    map's 100 mm node scale, where the B-spline's third z-derivative jumps at the knots."""
    z = p[:, 2]
    by = 0.5 * (np.tanh((z - 1000) / 150) - np.tanh((z - 2500) / 150)) * (1 + 1e-4 * p[:, 0])
    return np.stack([np.zeros_like(z), by, np.zeros_like(z)], 1)


def test_rk4_steps_longer_than_a_node_spacing_lose_more_than_spanning_a_knot_costs():
    # against DOP853 on a field with structure at the node scale: inside knot intervals RK4
    # keeps its order; one spacing shifted to span knots costs little; longer steps far more
    from physml.tracks.ground_truth import dop853

    bs = BSplineField(_map_of(_edges))
    s = np.array([[0, 0, 0, 0, 1 / 1.0], [10, -20, 0.01, 0.0, -1 / 2.0],
                  [0, 0, -0.01, 0.01, 1 / 5.0]])
    ref, _ = dop853(s, bs, 3000.0, batched=True)
    rk4 = {"field_obj": bs, "states": s, "ref": ref, "z_end_mm": 3000.0}
    scan = benchmark.knot_scan(rk4)
    assert scan["step_mm"].tolist() == [50.0, 100.0, 100.0, 125.0, 150.0, 200.0]
    assert scan["steps"].tolist() == [60, 30, 31, 24, 20, 15]  # shifted: 50, 100 x 29, 50
    assert scan["spans_knot"].tolist() == [False, False, True, True, True, True]
    half, one, shifted = scan.iloc[0], scan.iloc[1], scan.iloc[2]
    assert half["max_err_um"] < 0.15 * one["max_err_um"]  # inside knot intervals: RK4's order
    assert half["h4_max_err_um"] == pytest.approx(one["max_err_um"] / 16)
    assert one["max_err_um"] < shifted["max_err_um"] < 2 * one["max_err_um"]
    longer = scan.iloc[3:]
    assert (longer["max_err_um"] > 5 * longer["h4_max_err_um"]).all()
    text = benchmark.knot_scan_markdown(scan, 1.0)
    assert "none of them meets the 1 µm goal" in text and "asymptotic h⁴ range" in text
    assert "125 mm still meets" in benchmark.knot_scan_markdown(scan, 2.0)
    with pytest.raises(ValueError, match="must include"):
        benchmark.knot_scan(rk4, steps=[(0.5, 0.0), (2.0, 0.0)])
    with pytest.raises(ValueError, match="BSplineField"):
        benchmark.knot_scan(rk4 | {"field_obj": GaussianField()})


def test_knot_scan_text_names_the_knots_only_when_spanning_one_costs_as_much():
    rows = [(1.0, 0.0, 100.0, False, 0.04, 0.04), (1.0, 0.5, 100.0, True, 0.16, 0.04),
            (1.5, 0.0, 150.0, True, 1.0, 0.2), (2.0, 0.0, 200.0, True, 3.8, 0.64)]
    scan = pd.DataFrame(rows, columns=["factor", "shift", "step_mm", "spans_knot",
                                       "max_err_um", "h4_max_err_um"])
    text = benchmark.knot_scan_markdown(scan, 1.0)  # penalty 4x, excess 5-6x
    assert "4.0x" in text and "the knots can account for the excess" in text
    assert "150 mm 1 µm" in text and "150 mm still meets" in text
    scan.loc[1, "max_err_um"] = 0.05  # spanning a knot costs 1.25x: the knots explain nothing
    text = benchmark.knot_scan_markdown(scan, 0.5)
    assert "no longer in its asymptotic h⁴ range" in text and "(1.2x)" in text
    assert "none of them meets the 0.5 µm goal" in text


def test_knot_scan_text_at_exactly_twice_the_knot_cost_and_without_a_shifted_row():
    # penalty 0.375 / 0.25 = 1.5x; the longer step's excess 3.0 / 1.0 = 3.0x, exactly twice:
    # not "more than twice", and 1.5x is no reason to name the knots either
    rows = [(1.0, 0.0, 100.0, False, 0.25, 0.25), (1.0, 0.5, 100.0, True, 0.375, 0.25),
            (2.0, 0.0, 200.0, True, 3.0, 1.0)]
    scan = pd.DataFrame(rows, columns=["factor", "shift", "step_mm", "spans_knot",
                                       "max_err_um", "h4_max_err_um"])
    text = benchmark.knot_scan_markdown(scan, 1.0)
    assert "1.5x" in text and "are 3–3x what" in text
    assert "more than twice" not in text and "the knots can account" not in text
    # a knot cost of exactly 2x is not "more than" 2x
    text = benchmark.knot_scan_markdown(scan.assign(max_err_um=[0.25, 0.5, 3.0]), 1.0)
    assert "2.0x" in text and "the knots can account" not in text
    # without a shifted row there is no knot cost to compare with
    text = benchmark.knot_scan_markdown(scan.drop(index=1), 1.0)
    assert "Longer steps (200 mm 3 µm)" in text
    assert "more than twice" not in text and "the knots can account" not in text
    # half a spacing is a row of its own wherever it is listed; excesses of 10x and more
    # are whole numbers
    more = pd.concat([scan, pd.DataFrame([(0.5, 0.0, 50.0, False, 0.01, 0.0156),
                                          (3.0, 0.0, 300.0, True, 760.0, 5.06)],
                                         columns=scan.columns)], ignore_index=True)
    text = benchmark.knot_scan_markdown(more, 1.0)
    assert "half a spacing within 0.01 µm" in text and "are 3–150x what" in text
