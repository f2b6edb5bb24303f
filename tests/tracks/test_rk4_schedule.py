"""Node-aligned variable RK4 schedules (physml.tracks.propagate.node_schedule and the momentum
groups): nodes from the map only, long steps where the field is weak or absent (exact straight
lines where B = 0), grouped runs in input order, and the matched-accuracy choice among them
checked against scipy's DOP853 on fresh tracks."""

import numpy as np
import pytest

from physml.tracks import benchmark
from physml.tracks.analytic import GaussianField
from physml.tracks.field import GridField
from physml.tracks.ground_truth import reference_sample
from physml.tracks.propagate import (
    grouped_node_schedules,
    map_z_nodes,
    momentum_groups,
    node_schedule,
    propagate,
    propagate_scipy,
    run_grouped,
    straight_line,
)
from physml.tracks.tricubic import BSplineField

Z_END = 8500.0


def _map(fn, xy_half=5000.0, nxy=6, dz=100.0, z_lo=-100.0, z_hi=9900.0) -> GridField:
    """fn(points (n, 3) mm) -> B (n, 3) T sampled on a map, z z_lo .. z_hi mm."""
    xs, zs = np.linspace(-xy_half, xy_half, nxy), np.arange(z_lo, z_hi + 1e-9, dz)
    pts = np.stack(np.meshgrid(xs, xs, zs, indexing="ij"), -1).reshape(-1, 3)
    return GridField(np.array([-xy_half, -xy_half, z_lo]),
                     np.array([2 * xy_half / (nxy - 1)] * 2 + [dz]),
                     fn(pts).reshape(nxy, nxy, zs.size, 3))


def _narrow():
    """B-spline map (50 mm z-nodes) of a narrow By peak (1 T at z = 4 m, sigma 0.5 m): weak
    far from it. (Uniform node-to-node steps: ~0.2 um max vs DOP853; 100 mm steps: ~3 um.)"""
    return BSplineField(_map(GaussianField(b0_tesla=1.0, z0_mm=4000.0, sigma_mm=500.0),
                             dz=50.0))


def _probes(field, n=48, seed=3):
    return reference_sample(field, n, np.random.default_rng(seed), Z_END)


def _check_nodes(nodes, field, z0=0.0, z1=Z_END):
    allowed = np.concatenate([map_z_nodes(field), [z0, z1]])
    assert nodes[0] == z0 and nodes[-1] == z1
    assert np.all(np.diff(nodes) > 0)  # monotone
    assert np.all(np.min(np.abs(nodes[:, None] - allowed[None, :]), axis=1) < 1e-9)


def test_node_schedule_uses_map_nodes_runs_on_the_planes_and_is_long_where_b_is_weak():
    bs = _narrow()
    nodes = node_schedule(0.0, Z_END, bs, _probes(bs), local_tol_um=0.05)
    _check_nodes(nodes, bs)
    assert bs.on_planes(nodes)
    h = np.diff(nodes)
    at_peak = h[np.searchsorted(nodes, 4000.0, side="right") - 1]
    assert at_peak == 50.0  # one node spacing where the field is strong and curved ...
    assert h.max() >= 1000.0  # ... and long steps in the weak tails (8500 mm: 170 unit steps)
    assert len(nodes) - 1 < 120
    # a tighter local tolerance never takes fewer steps
    assert len(node_schedule(0.0, Z_END, bs, _probes(bs), local_tol_um=0.005)) >= len(nodes)
    # a step cap holds
    capped = node_schedule(0.0, Z_END, bs, _probes(bs), local_tol_um=0.05, max_nodes_per_step=3)
    assert np.diff(capped).max() <= 150.0 + 1e-9


def test_a_field_free_stretch_is_one_step_and_exact():
    # trilinear map, B != 0 only at the z-nodes 3000 .. 5000 mm: exactly zero for z <= 2900
    # and z >= 5100 mm
    def fn(p):
        b = np.zeros_like(p)
        b[:, 1] = np.where((p[:, 2] >= 3000) & (p[:, 2] <= 5000), 1.0, 0.0)
        return b

    g = _map(fn)
    probes = _probes(g)
    nodes = node_schedule(0.0, Z_END, g, probes, local_tol_um=0.01)
    _check_nodes(nodes, g)
    assert nodes[1] == 2900.0 and nodes[-2] == 5100.0  # one step across each field-free end
    assert np.all(np.diff(nodes)[1:-1] == 100.0)  # the field region at one node spacing
    first = propagate(probes, 0.0, 2900.0, g, schedule=nodes[:2])
    np.testing.assert_allclose(first, straight_line(probes, 2900.0), rtol=0, atol=1e-9)
    # no field at all: one step from start to end, the straight line to 1e-9 mm
    zero = _map(lambda p: np.zeros_like(p))
    nodes0 = node_schedule(0.0, Z_END, zero, probes, local_tol_um=1e-6)
    np.testing.assert_array_equal(nodes0, [0.0, Z_END])
    out = propagate(probes, 0.0, Z_END, zero, schedule=nodes0)
    np.testing.assert_allclose(out, straight_line(probes, Z_END), rtol=0, atol=1e-9)


def test_node_schedule_rejects_bad_arguments():
    bs = _narrow()
    p = _probes(bs, 4)
    for z_start in (Z_END, 0.0):  # backwards, and no distance at all
        with pytest.raises(ValueError, match="z_end > z_start"):
            node_schedule(z_start, 0.0, bs, p, 0.1)
    with pytest.raises(ValueError, match="local_tol_um"):
        node_schedule(0.0, Z_END, bs, p, 0.0)
    with pytest.raises(ValueError, match="max_nodes_per_step"):
        node_schedule(0.0, Z_END, bs, p, 0.1, max_nodes_per_step=0)
    # one node per step at most: every map node between the planes
    unit = node_schedule(0.0, 1000.0, bs, p, 1e6, max_nodes_per_step=1)
    nodes = map_z_nodes(bs)
    np.testing.assert_array_equal(unit, np.concatenate([[0.0], nodes[(nodes > 0) & (nodes < 1000)],
                                                        [1000.0]]))
    with pytest.raises(ValueError, match="not a map"):
        node_schedule(0.0, Z_END, GaussianField(), p, 0.1)


def test_momentum_groups_follow_the_edges():
    s = np.zeros((5, 5))
    s[:, 4] = [1 / 1.0, -1 / 3.0, 1 / 2.999, -1 / 10.0, 1 / 50.0]  # p = 1, 3, 2.999, 10, 50 GeV
    np.testing.assert_array_equal(momentum_groups(s, [3.0, 10.0]), [0, 1, 0, 2, 2])
    for bad in ([10.0, 3.0], [3.0, 3.0], [0.0, 3.0], [-1.0, 3.0], [[3.0, 10.0]]):
        with pytest.raises(ValueError, match="positive and ascending"):
            momentum_groups(s, bad)


def test_grouped_schedules_give_stiff_tracks_fewer_steps_and_run_in_input_order():
    bs = _narrow()
    edges = [3.0, 15.0]
    scheds = grouped_node_schedules(0.0, Z_END, bs, _probes(bs), edges, local_tol_um=0.02)
    assert len(scheds) == 3
    for n in scheds:
        _check_nodes(n, bs)
        assert bs.on_planes(n)
    steps = [len(n) - 1 for n in scheds]
    assert steps[0] > steps[1] > steps[2]  # stiffer (higher p) groups take longer steps
    # group g's schedule is set by all the probes with p clipped into [edge_{g-1}, edge_g]
    probes = _probes(bs)
    p = 1.0 / np.abs(probes[:, 4])
    for n, lo, hi in zip(scheds, [0.0, *edges], [*edges, np.inf], strict=True):
        clipped = probes.copy()
        clipped[:, 4] = np.sign(probes[:, 4]) / np.clip(p, lo, hi)
        np.testing.assert_array_equal(n, node_schedule(0.0, Z_END, bs, clipped, 0.02))
    states = reference_sample(bs, 300, np.random.default_rng(11), Z_END)
    g = momentum_groups(states, edges)
    assert set(np.unique(g)) == {0, 1, 2}
    out, per_track = run_grouped(states, scheds, g, bs)
    for j, n in enumerate(scheds):
        idx = np.flatnonzero(g == j)
        np.testing.assert_array_equal(out[idx], propagate(states[idx], 0.0, Z_END, bs,
                                                          schedule=n))
        assert np.all(per_track[idx] == len(n) - 1)  # steps counted per track
    with pytest.raises(ValueError, match="groups must be"):
        run_grouped(states, scheds, np.full(len(states), 3), bs)


@pytest.mark.parametrize("n", [40, 300])  # below and above LOCALITY_MIN_TRACKS
def test_grouped_run_equals_each_groups_own_run_on_every_compiled_path(n):
    """run_grouped sorts the whole batch once (rk4_compiled_grouped): each track must still end
    where rk4_compiled puts it alone, on the planes kernel, on nodes off the planes and on the
    trilinear map, with a group that has no tracks."""
    bs = _narrow()
    states = reference_sample(bs, n, np.random.default_rng(12), Z_END)
    on_planes = np.linspace(0.0, Z_END, 18)  # 500 mm steps: node to node
    off_planes = np.linspace(0.0, Z_END, 23)  # 386 mm steps: stages off the planes
    assert bs.on_planes(on_planes) and not bs.on_planes(off_planes)
    scheds = [on_planes, np.linspace(0.0, Z_END, 6), off_planes]
    g = np.random.default_rng(1).choice([0, 2], n)  # group 1 empty
    for field in (bs, bs.grid):
        out, steps = run_grouped(states, scheds, g, field)
        for j in (0, 2):
            idx = np.flatnonzero(g == j)
            np.testing.assert_array_equal(out[idx], propagate(states[idx], 0.0, Z_END, field,
                                                              schedule=scheds[j]))
            assert np.all(steps[idx] == len(scheds[j]) - 1)
    with pytest.raises(ValueError, match="groups must be"):
        run_grouped(states, scheds, g.astype(float), bs)
    with pytest.raises(ValueError, match="schedule 1 must be 1-D"):
        run_grouped(states, [on_planes, [0.0]], np.zeros(n, np.int64), bs)


def test_matched_accuracy_chooses_a_node_schedule_that_holds_on_fresh_tracks_vs_dop853():
    bs = _narrow()
    spec = {"n_probes": 48, "probe_seed": 5, "local_tols_um": [200.0, 0.05],
            "max_nodes_per_step": 0, "p_edges_gev": [[4.0], [2.0, 8.0]], "ungrouped": True}
    res = benchmark.rk4_at_matched_accuracy(
        bs, n_ref=60, n_speed=256, steps_mm=[], rng=np.random.default_rng(0), tol_um=1.0,
        repeats=2, n_scipy_timed=1, node_schedules=spec, n_check=60, check_seed=99)
    scan = res["scan"].set_index("schedule")
    assert len(scan) == 6  # two local tolerances x (one schedule, two groupings)
    assert sum("2 p groups" in lab for lab in scan.index) == 2
    assert sum("3 p groups" in lab for lab in scan.index) == 2
    loose = [lab for lab in scan.index if "200 um" in lab]
    assert all(scan.loc[lab, "max_err_um"] > 1.0 for lab in loose)  # too loose: rejected
    assert "0.05 um" in res["schedule"] and res["max_err_um"] <= 1.0
    assert res["steps"] < 170  # fewer than uniform node-to-node steps
    # independent reference: fresh tracks (another seed), scipy DOP853 called here
    fresh = reference_sample(bs, 40, np.random.default_rng(1234), Z_END)
    ref = propagate_scipy(fresh, 0.0, Z_END, bs, batched=True)
    err_um = np.hypot(*(res["run"](fresh)[:, :2] - ref[:, :2]).T) * 1000
    assert err_um.max() <= 1.0
    # the check set's numbers are those of the chosen schedule on 60 other tracks
    assert res["check_errors_um"].shape == (60,)
    assert res["check_max_err_um"] == res["check_errors_um"].max()
    assert res["check_max_err_um"] == scan.loc[res["schedule"], "check_max_err_um"]
    text = benchmark.independent_check_markdown(res, 1.0)
    assert "60 independent tracks" in text and "holds" in text
    assert "does not hold" in benchmark.independent_check_markdown(
        res | {"check_max_err_um": 1.5}, 1.0)


def test_node_schedule_spec_and_check_set_are_validated():
    bs = _narrow()
    with pytest.raises(ValueError, match="unknown keys"):
        benchmark.node_schedule_candidates(bs, Z_END, {"n_probes": 4, "probe_seed": 0,
                                                       "local_tols_um": [1.0], "tol": 1})
    with pytest.raises(ValueError, match="needs check_seed"):
        benchmark.rk4_at_matched_accuracy(bs, n_ref=4, n_speed=16, steps_mm=[100.0],
                                          rng=np.random.default_rng(0), repeats=2,
                                          n_scipy_timed=1, n_check=4)
    with pytest.raises(ValueError, match="no independent check set"):
        benchmark.independent_check_markdown({"n_check": 0}, 1.0)


def test_node_schedule_spec_reads_one_grouping_a_list_of_groupings_or_none():
    bs = _narrow()
    base = {"n_probes": 4, "probe_seed": 0, "local_tols_um": [1.0, 2.0]}

    def labels(**kw):
        return [c.label for c in benchmark.node_schedule_candidates(bs, Z_END, base | kw)]

    assert labels() == ["z-refined nodes, local <= 2 um", "z-refined nodes, local <= 1 um"]
    flat = labels(p_edges_gev=[4.0], ungrouped=False)  # one grouping: 2 groups
    assert len(flat) == 2 and all("2 p groups (edge 4 GeV" in x for x in flat)
    nested = labels(p_edges_gev=[[4.0], [2.0, 8.0]])  # two groupings, beside the ungrouped
    assert len(nested) == 6
    assert sum("2 p groups (edge 4 GeV" in x for x in nested) == 2
    assert sum("3 p groups (edges 2..8 GeV" in x for x in nested) == 2
    assert labels(p_edges_gev=[], ungrouped=False) == []
