"""Coarse RK4 schedules beside N equal steps (physml.tracks.coarse_schedules): the scan against
an independent NumPy RK4, the picks, the timings and which is fastest, and the sentence."""

import numpy as np
import pandas as pd
import pytest

from physml.timing import Timing
from physml.tracks import benchmark, priors
from physml.tracks import coarse_schedules as C
from physml.tracks.experiments import SELECT_ON
from physml.tracks.tricubic import BSplineField
from track_maps import gaussian_map, numpy_rk4_nodes

Z_END = 8500.0
GRID = gaussian_map()


def _split(n, seed, p=(2.0, 50.0), dz=Z_END):
    rng = np.random.default_rng(seed)
    mom = np.exp(rng.uniform(*np.log(p), n))
    s = np.c_[rng.uniform(-50, 50, (n, 2)), rng.uniform(-0.2, 0.2, (n, 2)),
              rng.choice([-1.0, 1.0], n) / mom]
    d = np.full(n, dz) if np.isscalar(dz) else dz
    fine = priors.RK4Prior.fit(GRID, 340, np.array([Z_END]))(s, d)  # 25 mm steps: 'truth'
    return {"initial": s, "dz": d, "final": np.c_[fine, s[:, 4]]}


@pytest.fixture(scope="module")
def ds():
    # validation tracks reach down to 1 GeV: those below p_min are neither probes nor scored
    return {"field": GRID, "val": _split(300, 1, p=(1.0, 50.0)), "test": _split(200, 2)}


@pytest.fixture(scope="module")
def smooth():
    return BSplineField(GRID)


@pytest.fixture(scope="module")
def table(ds, smooth):
    return C.scan(ds, [2, 4, 8], [50.0, 5.0], smooth=smooth, n_probes=40)


def _err(out, split, p_min=2.0):
    keep = 1 / np.abs(split["initial"][:, 4]) >= p_min
    return np.hypot(*(out[keep, :2] - split["final"][keep, :2]).T).mean()


def test_scan_scores_every_family_on_validation_and_test_tracks(ds, smooth, table):
    assert list(table["family"]) == [C.EQUAL_MAP] * 3 + [C.EQUAL_BSPLINE] * 3 + [C.NODES] * 2
    assert list(table["steps"][:6]) == [2, 4, 8] * 2
    for r in table.itertuples():
        fld = smooth if r.field == "bspline" else GRID
        nodes = np.array(r.nodes)
        assert r.steps == len(nodes) - 1 and nodes[0] == 0.0 and nodes[-1] == Z_END
        # the validation column on the validation tracks, the test columns on the test tracks
        assert getattr(r, SELECT_ON) == pytest.approx(
            _err(numpy_rk4_nodes(ds["val"]["initial"], nodes, fld), ds["val"]), rel=1e-6)
        assert r.pos_mean_mm == pytest.approx(
            _err(numpy_rk4_nodes(ds["test"]["initial"], nodes, fld), ds["test"]), rel=1e-6)
    assert (table["field"] == ["trilinear"] * 3 + ["bspline"] * 3 + ["trilinear"] * 2).all()
    eq = table[table["family"] != C.NODES]
    for r in eq.itertuples():
        np.testing.assert_allclose(r.nodes, np.linspace(0, Z_END, r.steps + 1))


def test_node_schedules_step_from_map_node_to_map_node_and_tighten_with_the_tolerance(table):
    nodes = table[table["family"] == C.NODES]
    assert list(nodes["setting"]) == ["local tolerance 50 µm", "local tolerance 5 µm"]
    loose, tight = nodes.iloc[0], nodes.iloc[1]
    for r in (loose, tight):  # the map's z-nodes are every 100 mm from -100 mm
        assert np.all(np.mod(np.array(r["nodes"]), 100.0) == 0.0)
    assert loose["steps"] < tight["steps"] and tight[SELECT_ON] < loose[SELECT_ON]


def test_node_schedule_probes_are_validation_tracks_above_p_min(ds, smooth, monkeypatch):
    seen = []

    def spy(z0, z1, field, probes, tol):
        seen.append(probes)
        return np.array([z0, z1])

    monkeypatch.setattr(C, "node_schedule", spy)
    C.scan(ds, [2], [10.0], smooth=smooth, n_probes=1000)
    probes = seen[0]
    keep = 1 / np.abs(ds["val"]["initial"][:, 4]) >= 2.0
    assert 0 < keep.sum() < len(keep) and len(probes) == keep.sum()
    assert {tuple(p) for p in probes} == {tuple(p) for p in ds["val"]["initial"][keep]}


def test_scan_needs_one_end_plane(smooth):
    d = {"field": GRID, "val": _split(20, 1, dz=np.linspace(4000, Z_END, 20)),
         "test": _split(20, 2)}
    with pytest.raises(ValueError, match="one plane"):
        C.scan(d, [4], [], smooth=smooth)


def _table(rows):
    return pd.DataFrame(rows, columns=["family", "setting", "steps", SELECT_ON, "pos_mean_mm"])


def test_picks_take_each_familys_fewest_steps_at_or_below_the_error():
    t = _table([(C.EQUAL_MAP, "N = 10", 10, 0.02, 0.02), (C.EQUAL_MAP, "N = 12", 12, 0.04, 0.04),
                (C.EQUAL_MAP, "N = 14", 14, 0.01, 0.01), (C.EQUAL_MAP, "N = 20", 20, 0.001, 0.001),
                (C.EQUAL_BSPLINE, "N = 10", 10, 0.2, 0.2),
                (C.NODES, "local tolerance 9 µm", 9, 0.011, 0.01)])
    got = C.picks(t, 0.011)
    # not the lowest error (N = 20), not the first row (N = 10 is too inaccurate): N = 14
    assert got[C.EQUAL_MAP]["setting"] == "N = 14"
    assert got[C.EQUAL_BSPLINE] is None
    assert got[C.NODES]["steps"] == 9  # an equal error is reached (<=)
    assert C.picks(t, 0.0109)[C.NODES] is None


def _tp(rates: dict):
    rows = []
    for fam, r in rates.items():
        t = Timing(4096 / np.asarray(r, dtype=float), 4096)
        rows.append({"model": f"RK4, {fam} (x, 9 steps)", "family": fam, "setting": "x",
                     "steps": 9, SELECT_ON: 0.005, "pos_mean_mm": 0.006, "timing": t,
                     "tracks_per_s": float(np.max(t.rates))})
    return pd.DataFrame(rows)


def test_fastest_is_the_highest_median_rate_and_the_sentence_names_it():
    # the B-spline has the single fastest repeat, the node schedule the highest median
    tp = _tp({C.EQUAL_MAP: [1.0e6, 1.0e6, 1.0e6], C.EQUAL_BSPLINE: [2.0e6, 0.5e6, 0.5e6],
              C.NODES: [1.1e6, 1.1e6, 1.1e6]})
    rates, name = C.fastest(tp, 0.0061)
    np.testing.assert_allclose(rates, [1.1e6] * 3)
    assert name.startswith(f"RK4, {C.NODES} (x, 9 steps), numba; 0.006 mm on the test tracks")
    assert "the surrogate's 0.0061 mm" in name and "reaching it: 3 of 3" in name
    t = _table([(f, "x", 9, 0.005, 0.006) for f in C.FAMILIES])
    txt = C.markdown(t, 0.0061, "the best surrogate", tp)
    assert f"The {C.NODES} is the fastest of them (median repeat), so it, not N equal" in txt
    assert f"{C.EQUAL_BSPLINE}: 9 steps (x; 0.005 mm on the validation tracks" in txt
    assert "at 2,000,000 tracks/s" in txt
    tp = _tp({C.EQUAL_MAP: [1.2e6] * 3, C.NODES: [1.1e6] * 3})
    txt = C.markdown(t.iloc[[0, 2]], 0.0061, "the best surrogate", tp)
    assert "N equal steps on the map is the fastest of them" in txt
    assert f"{C.EQUAL_BSPLINE}: none of the settings tried" in txt
    assert C.fastest(tp.iloc[:0], 0.0061) is None
    assert "No schedule tried reaches it" in C.markdown(t.iloc[:0], 0.0061, "x", tp.iloc[:0])


def test_timings_time_each_pick_along_its_own_nodes(ds, smooth, table):
    chosen = C.picks(table, float(table[SELECT_ON].max()))  # every family reaches it
    chosen[C.EQUAL_BSPLINE] = None
    tp = C.timings(chosen, {"trilinear": GRID, "bspline": smooth}, 64, threads=1, repeats=2,
                   min_items=64, dz_mm=Z_END)
    assert list(tp["family"]) == [C.EQUAL_MAP, C.NODES]
    assert list(tp["steps"]) == [chosen[C.EQUAL_MAP]["steps"], chosen[C.NODES]["steps"]]
    assert list(tp[SELECT_ON]) == [chosen[f][SELECT_ON] for f in (C.EQUAL_MAP, C.NODES)]
    assert (tp["tracks_per_s"] > 0).all() and all(len(t.rates) == 2 for t in tp["timing"])


def test_nodes_caller_runs_rk4_along_its_nodes_to_the_plane():
    nodes = np.array([0.0, 3000.0, 5000.0, Z_END])
    make = benchmark.nodes_caller(nodes, GRID, dz_mm=Z_END)
    assert len(make(8, 2)()) == 2
    u = benchmark.timing_inputs(4096, 0, Z_END).double().numpy()[:8]
    out = make(8, 1)()[0]
    np.testing.assert_allclose(out[:, :4], numpy_rk4_nodes(u[:, :5], nodes, GRID), atol=1e-8)
    with pytest.raises(ValueError, match="from 0.0 to 5000.0 mm, expected 0 to 8500"):
        benchmark.nodes_caller(nodes[:-1], GRID, dz_mm=Z_END)


def test_scan_uses_the_smooth_field_it_is_given(ds):
    # given the map itself as the 'smooth' field, the B-spline rows are the map's rows
    t = C.scan(ds, [4], [], smooth=GRID)
    assert t.iloc[0][SELECT_ON] == t.iloc[1][SELECT_ON]
    assert t.iloc[0]["pos_mean_mm"] == t.iloc[1]["pos_mean_mm"]
