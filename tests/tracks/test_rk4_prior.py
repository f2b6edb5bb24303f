"""The coarse-RK4 prior and its hybrid: the prior against an independent NumPy RK4 (and scipy's
DOP853 as the steps grow), the residual target and its inverse, predict = prior + scaled
network (sign and per-track |q/p| scale pinned), ONNX of the network part, and the errors
that name a bad value."""

import json

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch

from onnx_export_check import export_silently
from physml import timing
from physml.tracks import benchmark, experiments, models, priors
from physml.tracks.field import GaussianField, GridField
from physml.tracks.propagate import propagate_scipy
from physml.tracks.training import RunConfig
from physml.tracks.tricubic import BSplineField
from track_maps import gaussian_map, numpy_rk4

L_MM = 8500.0
GRID = gaussian_map()


def _tracks(n=64, seed=0, p=(2.0, 50.0)):
    rng = np.random.default_rng(seed)
    mom = np.exp(rng.uniform(*np.log(p), n))
    return np.c_[rng.uniform(-50, 50, (n, 2)), rng.uniform(-0.2, 0.2, (n, 2)),
                 rng.choice([-1.0, 1.0], n) / mom]


# ------------------------------------------------------------------------------------------
# the prior
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field", priors.RK4_FIELDS)
@pytest.mark.parametrize("n_steps", [1, 3, 8])
def test_prior_is_rk4_with_its_steps(field, n_steps):
    s = _tracks()
    prior = priors.RK4Prior.fit(GRID, n_steps, np.full(len(s), L_MM), field)
    ref_field = BSplineField(GRID) if field == "bspline" else GRID
    want = numpy_rk4(s, 0.0, np.full(len(s), L_MM), n_steps, ref_field)
    got = prior(s, np.full(len(s), L_MM))
    np.testing.assert_allclose(got[:, :2], want[:, :2], atol=1e-8)  # mm
    np.testing.assert_allclose(got[:, 2:], want[:, 2:], atol=1e-11)
    # one step fewer is measurably different (the steps are really n_steps)
    fewer = numpy_rk4(s, 0.0, np.full(len(s), L_MM), n_steps + 1, ref_field)
    assert np.abs(got[:, 0] - fewer[:, 0]).max() > 1e-4


def test_prior_with_a_shorter_dz_takes_whole_steps_then_a_partial_one():
    s = _tracks(8)
    prior = priors.RK4Prior.fit(GRID, 4, np.array([L_MM]))
    dz = np.full(len(s), 5000.0)  # nodes at 0, 2125, 4250, 6375: three steps then 750 mm
    got = prior(s, dz)
    a = numpy_rk4(s, 0.0, np.full(len(s), 4250.0), 2, GRID)
    st = np.c_[a, s[:, 4]]
    b = numpy_rk4(st, 4250.0, np.full(len(s), 5000.0), 1, GRID)
    np.testing.assert_allclose(got, b, atol=1e-8)


def test_prior_converges_to_scipy_as_the_steps_grow():
    s = _tracks(16)
    ref = propagate_scipy(s, 0.0, L_MM, GRID)[:, :2]
    errs = [np.abs(priors.RK4Prior.fit(GRID, n, np.array([L_MM]))(s, np.full(16, L_MM))[:, :2]
                   - ref).max() for n in (2, 8, 85)]
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 0.05  # mm, steps of 100 mm on the map's nodes


def test_prior_rejects_distances_beyond_its_nodes_and_bad_fields():
    s = _tracks(4)
    prior = priors.RK4Prior.fit(GRID, 4, np.array([L_MM]))
    with pytest.raises(ValueError, match="dz"):
        prior(s, np.full(4, L_MM + 10))
    with pytest.raises(ValueError, match="steps = 0"):
        priors.RK4Prior(0, L_MM, "abc")
    with pytest.raises(ValueError, match="'cubic'"):
        priors.RK4Prior(4, L_MM, "abc", field="cubic")
    with pytest.raises(TypeError, match="GridField"):
        priors.RK4Prior.fit(GaussianField(), 4, np.array([L_MM]))


def test_prior_refuses_misshapen_inputs_and_a_zero_length():
    prior = priors.RK4Prior.fit(GRID, 4, np.array([L_MM]))
    s = _tracks(4)
    for ini, dz in ((s[:, :4], np.full(4, L_MM)), (s, np.full(5, L_MM)), (s[0], np.full(1, L_MM)),
                    (s, np.full((4, 1), L_MM))):
        with pytest.raises(ValueError, match=r"expected initial \(n, 5\) and dz \(n,\)"):
            prior(ini, dz)
    assert prior(s[:0], np.zeros(0)).shape == (0, 4)
    with pytest.raises(ValueError, match=r"dz in \[0.0, 8500.0\] mm"):
        prior(s, np.array([0.0, L_MM, L_MM, L_MM]))  # a track that goes nowhere
    with pytest.raises(ValueError, match="length_mm = 0.0, expected > 0"):
        priors.RK4Prior(4, 0.0, "abc")


def test_fit_records_the_magnet_its_map_was_built_from_or_none():
    g = gaussian_map()
    assert priors.RK4Prior.fit(g, 4, np.array([L_MM])).magnet is None
    model = {"design": "iron_yoke", "b0_tesla": 1.1}
    with_model = GridField(g.origin_mm, g.spacing_mm, g.b_tesla, meta={"model": model})
    assert priors.RK4Prior.fit(with_model, 4, np.array([L_MM])).magnet == model


def test_prior_runs_on_one_numba_thread_only_below_serial_below(monkeypatch):
    import numba

    import physml.tracks.rk4_compiled as kernels

    if numba.get_num_threads() < 2:
        pytest.skip("numba has one thread here: nothing to tell apart")
    seen = []
    real = kernels.rk4_compiled

    def probe(*args):
        seen.append(numba.get_num_threads())
        return real(*args)

    monkeypatch.setattr(kernels, "rk4_compiled", probe)
    prior = priors.RK4Prior.fit(GRID, 2, np.array([L_MM]))
    before = numba.get_num_threads()
    for n in (priors.SERIAL_BELOW - 1, priors.SERIAL_BELOW):
        prior(_tracks(n), np.full(n, L_MM))
    assert seen == [1, before] and numba.get_num_threads() == before


def test_prior_rebuilds_its_map_only_if_the_hash_matches():
    p = priors.RK4Prior(4, L_MM, "000000000000", magnet=None)
    with pytest.raises(ValueError, match="000000000000"):
        p(_tracks(2), np.full(2, L_MM))


def _noisy(grid, rel, seed=0):
    """A copy of ``grid`` with every node value multiplied by 1 + rel * N(0, 1)."""
    b = grid.b_tesla * (1 + rel * np.random.default_rng(seed).standard_normal(grid.b_tesla.shape))
    return GridField(grid.origin_mm, grid.spacing_mm, b)


def test_map_digest_ignores_floating_point_noise_and_sees_a_change_at_one_node():
    g = gaussian_map()
    d = priors.map_digest(g)
    assert len(d) == 2 * g.b_tesla.shape[2]
    noisy = _noisy(g, 1e-15)  # last-bit noise, as from another BLAS kernel: another hash
    assert priors.map_sha1(noisy) != priors.map_sha1(g)
    assert priors.digest_deviation(noisy, d) < 1e-3 * priors.MAP_DIGEST_ATOL
    b = g.b_tesla.copy()
    b[3, 2, 40, 1] += 2 * priors.MAP_DIGEST_ATOL  # one node's By
    changed = GridField(g.origin_mm, g.spacing_mm, b)
    assert priors.digest_deviation(changed, d) > priors.MAP_DIGEST_ATOL
    b = g.b_tesla.copy()
    b[3, 2, 40, 0] += 1e-3  # Bx only enters the |B|^2 sums
    bx_changed = GridField(g.origin_mm, g.spacing_mm, b)
    assert priors.digest_deviation(bx_changed, d) > priors.MAP_DIGEST_ATOL
    assert priors.digest_deviation(GridField(g.origin_mm, g.spacing_mm, g.b_tesla[:, :, :-1]),
                                   d) == np.inf


def test_prior_accepts_a_rebuilt_map_with_another_hash_only_within_the_digest(monkeypatch):
    # a map rebuilt on another machine differs in the last bits: its hash differs, its digest
    # does not; a map that really differs is refused, naming both hashes
    import physml.tracks.magnet as magnet_module

    g = gaussian_map()
    fitted = priors.RK4Prior.fit(g, 4, np.array([L_MM]))
    assert fitted.map_digest == priors.map_digest(g)
    s, dz = _tracks(5), np.full(5, L_MM)
    want = fitted(s, dz)
    for rebuilt, ok in ((_noisy(g, 1e-15, 1), True), (_noisy(g, 1e-6, 2), False)):
        monkeypatch.setattr(priors, "_MAPS", {})
        monkeypatch.setattr(priors, "_REPRESENTATIONS", {})
        monkeypatch.setattr(magnet_module, "default_field", lambda magnet, r=rebuilt: r)
        p = priors.RK4Prior(4, L_MM, "9f0853efe5c3", magnet={"design": "iron_yoke"},
                            map_digest=list(fitted.map_digest))  # a list, as read from JSON
        assert p.map_digest == fitted.map_digest  # the JSON list made the tuple fit records
        if ok:
            np.testing.assert_allclose(p(s, dz), want, rtol=0, atol=1e-9)
            assert priors._MAPS["9f0853efe5c3"] is rebuilt  # registered under the recorded hash
        else:
            with pytest.raises(ValueError, match=r"hash \w{12}\) differs from map 9f0853efe5c3"):
                p(s, dz)
    # without a digest the hash alone decides, as before
    monkeypatch.setattr(priors, "_MAPS", {})
    with pytest.raises(ValueError, match="records no map digest"):
        priors.RK4Prior(4, L_MM, "9f0853efe5c3", magnet={"design": "iron_yoke"})(s, dz)
    # a registered map within the digest is used without rebuilding
    monkeypatch.setattr(priors, "_MAPS", {})
    monkeypatch.setattr(priors, "_REPRESENTATIONS", {})
    local = _noisy(g, 1e-15, 3)
    priors.register_map(local)
    monkeypatch.setattr(magnet_module, "default_field", lambda magnet: pytest.fail("rebuilt"))
    p = priors.RK4Prior(4, L_MM, "0123456789ab", magnet={"design": "iron_yoke"},
                        map_digest=fitted.map_digest)
    np.testing.assert_allclose(p(s, dz), want, rtol=0, atol=1e-9)


def test_a_digest_off_by_exactly_the_tolerance_is_the_same_map(monkeypatch):
    """The tolerance is inclusive, for a registered map and for a rebuilt one alike; the
    next float below it refuses the rebuilt map."""
    import physml.tracks.magnet as magnet_module

    g = gaussian_map()
    digest = priors.map_digest(g)
    other = _noisy(g, 1e-9, 4)  # another hash, off by far less than a real change
    dev = priors.digest_deviation(other, digest)
    assert dev > 0 and priors.map_sha1(other) != priors.map_sha1(g)
    s, dz = _tracks(3), np.full(3, L_MM)
    for registered in (True, False):
        monkeypatch.setattr(priors, "_MAPS", {})
        monkeypatch.setattr(priors, "_REPRESENTATIONS", {})
        monkeypatch.setattr(priors, "MAP_DIGEST_ATOL", dev)
        if registered:  # found among the maps this process has seen, not rebuilt
            priors.register_map(other)
        monkeypatch.setattr(magnet_module, "default_field", (
            lambda magnet: pytest.fail("rebuilt")) if registered else (lambda magnet: other))
        p = priors.RK4Prior(4, L_MM, "00000000abcd", magnet={"design": "iron_yoke"},
                            map_digest=digest)
        assert p(s, dz).shape == (3, 4) and priors._MAPS["00000000abcd"] is other
    monkeypatch.setattr(priors, "_MAPS", {})
    monkeypatch.setattr(priors, "_REPRESENTATIONS", {})
    monkeypatch.setattr(priors, "MAP_DIGEST_ATOL", np.nextafter(dev, 0.0))
    with pytest.raises(ValueError, match="differs from map 00000000abcd"):
        priors.RK4Prior(4, L_MM, "00000000abcd", magnet={"design": "iron_yoke"},
                        map_digest=digest)(s, dz)


def test_the_prior_runs_to_its_last_node_within_a_relative_1e9_and_no_further():
    prior = priors.RK4Prior.fit(GRID, 3, np.array([L_MM]))
    s = _tracks(2)
    edge = L_MM * (1 + 1e-9)
    assert prior(s, np.full(2, edge)).shape == (2, 4)
    with pytest.raises(ValueError, match=r"expected in \(0, 8500.0\]"):
        prior(s, np.full(2, np.nextafter(edge, np.inf)))
    with pytest.raises(ValueError, match="expected in"):
        prior(s, np.array([L_MM, 0.0]))


# ------------------------------------------------------------------------------------------
# the hybrid
# ------------------------------------------------------------------------------------------
def _rk4_norm(qop_scale, n=200, seed=0):
    s = _tracks(n, seed)
    dz = np.full(n, L_MM)
    rng = np.random.default_rng(seed + 1)
    fin = np.c_[numpy_rk4(s, 0.0, dz, 40, GRID), s[:, 4]] + rng.normal(0, 0.01, (n, 5))
    prior = priors.RK4Prior.fit(GRID, 3, dz)
    return models.Normalization.fit(s, dz, fin, "rk4", qop_scale, rk4=prior), s, dz, fin


@pytest.mark.parametrize("qop_scale", [False, True])
def test_residual_target_and_its_inverse_round_trip(qop_scale):
    norm, s, dz, fin = _rk4_norm(qop_scale)
    prior = numpy_rk4(s, 0.0, dz, 3, GRID)  # the prior, independently
    scale = np.asarray(norm.out_std) * (np.abs(s[:, 4:5]) if qop_scale else 1.0)
    target = (fin[:, :4] - prior) / scale  # what the network must output
    # the fitted scale makes that target unit-variance per component
    np.testing.assert_allclose(target.std(0), 1.0, rtol=1e-6)
    m = models.build("mlp", "tiny", norm)
    u = torch.tensor(np.c_[s, dz])
    m.net = _Lookup(u, torch.tensor(target))
    m.double()
    np.testing.assert_allclose(m.predict(u).detach().numpy(), fin[:, :4], atol=1e-9)


class _Lookup(torch.nn.Module):
    """A 'network' that returns a fixed output per input row (matched on the encoded input)."""

    def __init__(self, u, out):
        super().__init__()
        self.u, self.out = u, out

    def forward(self, x):
        return self.out[: x.shape[0]]


@pytest.mark.parametrize("qop_scale", [False, True])
def test_predict_is_prior_plus_the_scaled_network_output(qop_scale):
    norm, s, dz, _ = _rk4_norm(qop_scale)
    m = models.build("mlp", "tiny", norm).double()
    bias = torch.tensor([0.3, -0.7, 0.2, 0.5], dtype=torch.float64)
    with torch.no_grad():
        m.net[-1].weight.zero_()
        m.net[-1].bias.copy_(bias)
    u = torch.tensor(np.c_[s, dz])
    got = m.predict(u).detach().numpy()
    per_track = np.abs(s[:, 4:5]) if qop_scale else np.ones((len(s), 1))
    want = (numpy_rk4(s, 0.0, dz, 3, GRID)
            + per_track * np.asarray(norm.out_std) * bias.numpy())
    np.testing.assert_allclose(got, want, atol=1e-8)


@pytest.mark.parametrize("dynamo", [False, True])
def test_onnx_graph_is_the_network_part_and_matches_torch(tmp_path, dynamo, caplog):
    norm, s, dz, _ = _rk4_norm(True)
    m = models.build("mlp", "tiny", norm)
    path = export_silently(m, tmp_path / "m.onnx", dynamo, caplog)  # two inputs, one n
    sess = ort.InferenceSession(str(path))
    assert [i.name for i in sess.get_inputs()] == ["u", "prior"]
    u = np.c_[s, dz].astype(np.float32)
    got = sess.run(None, models.onnx_inputs(m, u))[0]
    want = m.predict(torch.tensor(u)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)


def test_normalization_with_the_rk4_prior_round_trips_through_json(tmp_path):
    norm, *_ = _rk4_norm(True)
    norm.save(tmp_path / "n.json")
    back = models.Normalization.load(tmp_path / "n.json")
    assert back == norm and back.rk4_prior() == norm.rk4_prior()


def test_rk4_prior_is_refused_by_the_z_conditioned_models():
    norm, *_ = _rk4_norm(False)
    for arch in ("pinn", "rk_pinn"):
        with pytest.raises(ValueError, match="'rk4'"):
            models.build(arch, "tiny", norm)
    with pytest.raises(ValueError, match="needs an RK4Prior"):
        models.Normalization.fit(*_tracks(4)[None], np.full(4, L_MM), np.zeros((4, 5)), "rk4")


# ------------------------------------------------------------------------------------------
# configs and params
# ------------------------------------------------------------------------------------------
def test_run_config_validates_the_rk4_fields_and_names_the_bad_value():
    with pytest.raises(ValueError, match="'pinn'"):
        RunConfig(arch="pinn", prior="rk4", rk4_steps=4)
    with pytest.raises(ValueError, match="rk4_steps = 0"):
        RunConfig(prior="rk4", rk4_steps=0)
    with pytest.raises(ValueError, match="rk4_steps = 4 given with prior 'kick'"):
        RunConfig(prior="kick", rk4_steps=4)
    with pytest.raises(ValueError, match="'spline'"):
        RunConfig(prior="rk4", rk4_steps=4, rk4_field="spline")
    assert RunConfig(prior="rk4", rk4_steps=8, qop_scale=True).model == "mlp-tiny+rk4x8/qp"
    assert RunConfig(prior="rk4", rk4_steps=6, rk4_field="bspline").model == "mlp-tiny+rk4x6bs"


def test_runs_without_the_rk4_prior_keep_their_cache_keys():
    import hashlib
    from dataclasses import asdict

    cfg = RunConfig(prior="kick", qop_scale=True)
    d = asdict(cfg)
    for k in ("onnx_dynamo", "rk4_steps", "rk4_field"):
        d.pop(k)
    blob = json.dumps({"cfg": d, "data": "k"}, sort_keys=True)
    assert cfg.key("k") == hashlib.sha1(blob.encode()).hexdigest()[:10]
    a, b = RunConfig(prior="rk4", rk4_steps=4), RunConfig(prior="rk4", rk4_steps=8)
    assert a.key("k") != b.key("k")


def test_hybrid_variant_names():
    assert experiments.hybrid_spec("kick/qp") == {"prior": "kick", "qop_scale": True}
    assert experiments.hybrid_spec("rk4x8/qp") == {"prior": "rk4", "qop_scale": True,
                                                   "rk4_steps": 8, "rk4_field": "trilinear"}
    assert experiments.hybrid_spec("rk4x12bs")["rk4_field"] == "bspline"
    for bad in ("rk4x0", "rk4", "rk4x4/q", "kick/qq"):
        with pytest.raises(ValueError, match=f"'{bad}'"):
            experiments.hybrid_spec(bad)
    cfgs = experiments.matrix_configs(["mlp"], ["tiny"], [0], {"mlp": 10, "pinn": 10},
                                      hybrid_archs=["mlp", "pinn"], hybrids=["kick", "rk4x4"])
    assert [c.model for c in cfgs] == ["mlp-tiny", "mlp-tiny+kick", "mlp-tiny+rk4x4",
                                       "pinn-tiny+kick"]
    with pytest.raises(ValueError, match="matrix_configs.*'rk4x'"):
        experiments.matrix_configs(["mlp"], ["tiny"], [0], {"mlp": 1}, hybrid_archs=["mlp"],
                                   hybrids=["rk4x"])


def test_best_models_counts_rk4_hybrids_as_hybrids():
    t = pd.DataFrame({"model": ["mlp-tiny", "mlp-tiny+kick", "mlp-tiny+rk4x8/qp"],
                      "val_pos_mean_mm": [3.0, 2.0, 0.05]})
    picks = experiments.best_models(t)
    assert picks["hybrid"]["model"] == "mlp-tiny+rk4x8/qp"
    assert picks["ml"]["model"] == "mlp-tiny"


def _hybrid_vs_coarse_inputs(**table_cols):
    table = pd.DataFrame({"model": ["mlp-tiny+rk4x4/qp", "mlp-tiny+kick"],
                          "pos_mean_mm": [0.05, 2.0], "pos_95_mm": [0.1, 5.0],
                          "slope_mean": [1e-5, 1e-3], **table_cols})
    # on validation rk4x8 is as accurate as the hybrid's 0.03 mm; on test only rk4x12 is as
    # accurate as its 0.05 mm: the two matchings pick different step counts
    coarse = pd.DataFrame({"model": [f"rk4x{n} (no network)" for n in (4, 8, 12, 16)],
                           "rk4_steps": [4, 8, 12, 16], "pos_mean_mm": [1.0, 0.06, 0.02, 0.01],
                           "val_pos_mean_mm": [1.0, 0.028, 0.02, 0.01]})
    tp = pd.DataFrame({"model": ["mlp-tiny+rk4x4/qp"] * 2, "batch": [256, 4096],
                       "tracks_per_s": [1e5, 4e5]})
    ctp = pd.DataFrame({"model": coarse["model"], "batch": 4096,
                        "tracks_per_s": [8e5, 4e5, 2e5, 1e5]})
    return table, coarse, tp, ctp


def test_hybrid_vs_coarse_matches_the_fewest_steps_on_validation_tracks():
    table, coarse, tp, ctp = _hybrid_vs_coarse_inputs(val_pos_mean_mm=[0.03, 1.5])
    out = benchmark.hybrid_vs_coarse(table, coarse, tp, ctp, 4096)
    assert len(out) == 1
    r = out.iloc[0]
    assert r["same_rk4"] == "rk4x4 (no network)" and r["same_rk4_tracks_per_s"] == 8e5
    assert r["matched_on"] == "validation" and r["hybrid_matched_error_mm"] == 0.03
    assert r["matched_rk4"] == "rk4x8 (no network)" and r["matched_rk4_tracks_per_s"] == 4e5
    assert r["matched_rk4_matched_error_mm"] == 0.028 and r["matched_rk4_pos_mean_mm"] == 0.06
    assert r["hybrid_tracks_per_s"] == 4e5
    text = benchmark.hybrid_vs_coarse_markdown(out, 2)
    assert "Matched on validation tracks, the 1 hybrid with a plain RK4 at least as accurate " \
        "runs at **1x** its speed" in text and "(2 threads;" in text
    tab = benchmark.hybrid_vs_coarse_table(out).iloc[0]
    assert tab["matched plain RK4"] == "rk4x8 (no network)"
    assert (tab["hybrid mm there"], tab["RK4 mm there"], tab["RK4 mm (test)"]) == (0.03, 0.028,
                                                                                  0.06)
    assert tab["hybrid / RK4 speed"] == 1.0 and tab["matched on"] == "validation tracks"
    # an equal validation error is matched (<=)
    table, coarse, tp, ctp = _hybrid_vs_coarse_inputs(val_pos_mean_mm=[0.028, 1.5])
    assert benchmark.hybrid_vs_coarse(table, coarse, tp, ctp, 4096).iloc[0]["matched_rk4"] == \
        "rk4x8 (no network)"


def test_hybrid_vs_coarse_matches_a_shipped_hybrid_on_its_recorded_validation_error():
    # shipped rows beside a summary table: no validation error on this run's tracks (NaN)
    table, coarse, tp, ctp = _hybrid_vs_coarse_inputs(val_pos_mean_mm=[np.nan, 1.5],
                                                      recorded_val_pos_mean_mm=[0.03, np.nan])
    r = benchmark.hybrid_vs_coarse(table, coarse, tp, ctp, 4096).iloc[0]
    assert r["matched_on"] == "recorded validation" and r["matched_rk4"] == "rk4x8 (no network)"
    assert "a shipped hybrid: the validation error recorded" in benchmark.hybrid_vs_coarse_markdown(
        pd.DataFrame([r]), 2)
    # this run's validation error first, when a row has both
    table, coarse, tp, ctp = _hybrid_vs_coarse_inputs(val_pos_mean_mm=[0.015, 1.5],
                                                      recorded_val_pos_mean_mm=[0.03, np.nan])
    r = benchmark.hybrid_vs_coarse(table, coarse, tp, ctp, 4096).iloc[0]
    assert r["matched_on"] == "validation" and r["matched_rk4"] == "rk4x16 (no network)"


def test_hybrid_vs_coarse_without_a_validation_error_matches_on_test_and_says_so():
    table, coarse, tp, ctp = _hybrid_vs_coarse_inputs()
    out = benchmark.hybrid_vs_coarse(table, coarse, tp, ctp, 4096)
    r = out.iloc[0]
    assert r["matched_on"] == "test" and r["hybrid_matched_error_mm"] == 0.05
    assert r["matched_rk4"] == "rk4x12 (no network)" and r["matched_rk4_tracks_per_s"] == 2e5
    text = benchmark.hybrid_vs_coarse_markdown(out, 2)
    assert "**2x** its speed: each is faster than its plain RK4" in text
    assert "Matched on test tracks where there were no validation errors, the 1" in text
    # a coarse table without validation errors: matched on test as well
    table, coarse, tp, ctp = _hybrid_vs_coarse_inputs(val_pos_mean_mm=[0.03, 1.5])
    r = benchmark.hybrid_vs_coarse(table, coarse.drop(columns="val_pos_mean_mm"), tp, ctp,
                                   4096).iloc[0]
    assert r["matched_on"] == "test" and r["matched_rk4"] == "rk4x12 (no network)"
    # nothing scanned as accurate: said, with where it was matched
    table, coarse, tp, ctp = _hybrid_vs_coarse_inputs(val_pos_mean_mm=[0.001, 1.5])
    out = benchmark.hybrid_vs_coarse(table, coarse, tp, ctp, 4096)
    assert out.iloc[0]["matched_rk4"] is None
    text = benchmark.hybrid_vs_coarse_markdown(out, 2)
    assert "No plain coarse RK4 scanned is as accurate as mlp-tiny+rk4x4/qp." in text
    assert "Matched on" not in text
    tab = benchmark.hybrid_vs_coarse_table(out).iloc[0]
    assert tab["matched plain RK4"] == "none as accurate" and np.isnan(tab["hybrid / RK4 speed"])


def test_hybrid_vs_coarse_markdown_gives_the_range_of_speed_ratios_and_which_side():
    cmp = pd.DataFrame({"hybrid": ["a", "b", "c"], "hybrid_tracks_per_s": [0.9, 1.2, 1.0],
                        "matched_rk4": ["x", "y", None], "matched_rk4_tracks_per_s": [1.0, 1.0,
                                                                                      1.0],
                        "matched_on": ["validation", "recorded validation", "validation"]})
    text = benchmark.hybrid_vs_coarse_markdown(cmp, 2)
    assert ("Matched on validation tracks (a shipped hybrid: the validation error recorded "
            "when it was trained), the 2 hybrids with a plain RK4 at least as accurate run "
            "at") in text
    assert "**0.9x to 1.2x** its speed: they are not all slower, nor all faster" in text
    assert text.endswith("No plain coarse RK4 scanned is as accurate as c.")
    assert "each is slower than its plain RK4" in benchmark.hybrid_vs_coarse_markdown(
        cmp.iloc[[0]], 2)
    # a ratio of exactly 1 is neither slower nor faster
    for rates in ([0.9, 1.0, 1.0], [1.0, 1.2, 1.0]):
        assert "they are not all slower, nor all faster" in benchmark.hybrid_vs_coarse_markdown(
            cmp.assign(hybrid_tracks_per_s=rates), 2)
    mixed = cmp.assign(matched_on=["validation", "test", "validation"])
    assert ("Matched on validation tracks and test tracks where there were no validation "
            "errors, the 2") in benchmark.hybrid_vs_coarse_markdown(mixed, 2)


def test_selection_error_prefers_this_runs_validation_error():
    row = pd.Series({"val_pos_mean_mm": 0.02, "recorded_val_pos_mean_mm": 0.03})
    assert benchmark.selection_error(row) == (0.02, "validation")
    row = pd.Series({"val_pos_mean_mm": np.nan, "recorded_val_pos_mean_mm": 0.03})
    assert benchmark.selection_error(row) == (0.03, "recorded validation")
    e, what = benchmark.selection_error(pd.Series({"pos_mean_mm": 0.1}))
    assert np.isnan(e) and what == ""


def test_matched_rk4_is_the_fewest_steps_at_least_as_accurate_else_the_1um_schedule():
    from physml.timing import Timing

    coarse = pd.DataFrame({"model": [f"rk4x{n} (no network)" for n in (16, 4, 12, 8)],
                           "rk4_steps": [16, 4, 12, 8], "pos_mean_mm": [0.007, 1.8, 0.021, 0.056]})
    times = {4: 1.0, 8: 2.0, 12: 3.0, 16: 4.0}  # seconds per call of 1000 tracks
    ctp = pd.DataFrame([{"model": f"rk4x{n} (no network)", "batch": b,
                         "timing": Timing(np.array([t, t * 1.1]), 1000)}
                        for n, t in times.items() for b in (256, 4096)])
    rk4 = {"timing": Timing(np.array([50.0, 55.0]), 1000), "schedule": "100 mm"}
    rates, name = benchmark.matched_rk4(coarse, ctp, rk4, 0.0226, 4096)
    np.testing.assert_allclose(rates, [1000 / 3.0, 1000 / 3.3])  # 12 steps, not 16 or 8
    assert name.startswith("plain RK4, 12 steps")
    rates, name = benchmark.matched_rk4(coarse, ctp, rk4, 0.056, 4096)  # equal error counts
    np.testing.assert_allclose(rates, [500.0, 1000 / 2.2])
    rates, name = benchmark.matched_rk4(coarse, ctp, rk4, 0.001, 4096)  # none is as accurate
    np.testing.assert_allclose(rates, [20.0, 1000 / 55.0])
    assert "100 mm" in name and "no coarser schedule" in name and "test tracks" in name
    # matched on the validation tracks: 8 steps there, though only 12 are on the test tracks
    val = coarse.assign(val_pos_mean_mm=[0.006, 1.7, 0.02, 0.022])
    rates, name = benchmark.matched_rk4(val, ctp, rk4, 0.0226, 4096, on="val_pos_mean_mm")
    np.testing.assert_allclose(rates, [500.0, 1000 / 2.2])
    assert name == ("plain RK4, 8 steps (numba; 0.056 mm on the test tracks; 0.022 mm on the "
                    "validation tracks, at least as accurate as the surrogate's 0.0226 mm on the "
                    "validation tracks)")


def test_speed_sides_at_matched_accuracy_are_those_as_accurate_as_the_best_surrogate():
    picks = {"ml": pd.Series({"model": "mlp-tiny", "pos_mean_mm": 9.6}),
             "hybrid": pd.Series({"model": "mlp-small+rk4x8", "pos_mean_mm": 0.012}),
             "other": None}
    kept, text = benchmark.matched_sides(picks, 0.012)  # an equal error is matched
    assert list(kept) == ["hybrid"]
    assert "ml, mlp-tiny: 9.6 mm, 800x the error" in text and "0.012 mm" in text
    kept, text = benchmark.matched_sides(picks, 10.0)
    assert list(kept) == ["ml", "hybrid"] and text == ""
    kept, _ = benchmark.matched_sides(picks, 0.0119)
    assert kept == {}
    with pytest.raises(ValueError, match="err_mm must be > 0"):
        benchmark.matched_sides(picks, 0.0)


def test_fastest_meeting_targets_is_the_fastest_of_those_that_meet_them_at_that_batch():
    table = pd.DataFrame({"model": ["mlp-tiny", "mlp-tiny+rk4x8"], "pos_mean_mm": [9.0, 0.02],
                          "meets_targets": [False, True]})
    coarse = pd.DataFrame({"model": ["rk4x8 (no network)", "rk4x12 (no network)"],
                           "pos_mean_mm": [0.056, 0.021], "meets_targets": [False, True]})
    tp = pd.DataFrame({"model": ["mlp-tiny", "mlp-tiny", "mlp-tiny+rk4x8", "mlp-tiny+rk4x8"],
                       "batch": [4096, 4096, 4096, 256], "tracks_per_s": [3e6, 2e6, 5e5, 9e5]})
    ctp = pd.DataFrame({"model": coarse["model"], "batch": 4096, "tracks_per_s": [1e6, 6e5]})
    # mlp-tiny (fastest) and rk4x8 (next) miss the targets; of the two that meet them, plain
    # RK4 with 12 steps is faster at batch 4096 (the hybrid's 9e5 is at batch 256)
    got = benchmark.fastest_meeting_targets(table, coarse, tp, ctp, 4096)
    assert got == {"method": "rk4x12 (no network)", "tracks_per_s": 6e5, "pos_mean_mm": 0.021}
    assert benchmark.fastest_meeting_targets(table, coarse, tp, ctp, 256)["method"] == \
        "mlp-tiny+rk4x8"
    none = coarse.assign(meets_targets=False)
    assert benchmark.fastest_meeting_targets(table.assign(meets_targets=False), none, tp, ctp,
                                             4096) is None


def test_training_loss_with_the_precomputed_prior_equals_the_loss_of_predict():
    from physml.tracks.training import make_loss_terms

    norm, s, dz, fin = _rk4_norm(True)
    m = models.build("mlp", "tiny", norm)
    cfg = RunConfig(prior="rk4", rk4_steps=3, qop_scale=True)
    terms = make_loss_terms(cfg, GRID)
    u = torch.tensor(np.c_[s, dz], dtype=torch.float32)
    y = torch.tensor(fin[:, :4], dtype=torch.float32)
    pre = norm.rk4_prior().torch(u)  # what run() carries
    a = terms(m, (u, y, pre))["loss"].item()
    b = terms(m, (u, y))["loss"].item()  # through model.predict (numba prior inside)
    assert a == pytest.approx(b, rel=1e-5)
    assert a > 0.1  # an untrained network: the comparison is not 0 == 0


def test_small_batches_run_serially_with_the_same_result_and_restore_the_threads():
    import numba

    s = _tracks(100, seed=3)
    prior = priors.RK4Prior.fit(GRID, 5, np.array([L_MM]))
    before = numba.get_num_threads()
    big = prior(s, np.full(100, L_MM))  # >= SERIAL_BELOW: parallel, locality-ordered
    small = prior(s[:priors.SERIAL_BELOW - 1], np.full(priors.SERIAL_BELOW - 1, L_MM))
    np.testing.assert_array_equal(small, big[:priors.SERIAL_BELOW - 1])
    assert numba.get_num_threads() == before


def test_timed_integrators_run_on_one_numba_thread_only_below_the_threshold():
    import numba

    seen = []

    def probe():
        seen.append(numba.get_num_threads())

    before = numba.get_num_threads()
    benchmark._serial_below(1, probe)()
    assert seen == [1] and numba.get_num_threads() == before
    fn = benchmark._serial_below(priors.SERIAL_BELOW, probe)
    assert fn is probe


def test_interleaved_ratio_takes_coarse_rk4_by_name_and_a_surrogate_by_its_fastest_backend():
    ratios = pd.DataFrame({"method": ["rk4x12 (no network)", "h-s0 (torch)", "h-s0 (onnx)",
                                      "rk4x12 (no network)"],
                           "batch": [4096, 4096, 4096, 256], "ratio": [5.0, 3.0, 2.0, 9.0],
                           "ratio_low": [4.5, 2.5, 1.5, 8.0], "ratio_high": [5.5, 3.5, 2.5, 10.0],
                           "timing": [timing.Timing(np.ones(k), 1) for k in (5, 7, 7, 5)]})
    tp = pd.DataFrame({"model": ["mlp+rk4x8", "mlp+rk4x8"], "run": ["h-s0", "h-s0"],
                       "backend": ["torch", "onnx"], "batch": [4096, 4096],
                       "tracks_per_s": [8e5, 7e5]})
    got = benchmark.interleaved_ratio(ratios, "rk4x12 (no network)", tp, 4096)
    assert got == {"timed_as": "rk4x12 (no network)", "ratio": 5.0, "ratio_low": 4.5,
                   "ratio_high": 5.5, "n": 5}
    got = benchmark.interleaved_ratio(ratios, "mlp+rk4x8", tp, 4096)  # torch is its faster
    assert got["timed_as"] == "h-s0 (torch)" and got["ratio"] == 3.0
    faster_onnx = tp.assign(tracks_per_s=[7e5, 8e5])
    assert benchmark.interleaved_ratio(ratios, "mlp+rk4x8", faster_onnx, 4096)["ratio"] == 2.0
    with pytest.raises(ValueError, match="no timing at batch 256"):
        benchmark.interleaved_ratio(ratios, "mlp+rk4x8", tp, 256)
    with pytest.raises(ValueError, match="not timed against RK4"):
        benchmark.interleaved_ratio(ratios[ratios["method"] != "h-s0 (torch)"], "mlp+rk4x8",
                                    tp, 4096)


def test_coarse_caller_runs_the_rows_coarse_rk4_on_the_timing_inputs():
    row = pd.DataFrame({"model": ["rk4x4 (no network)"], "rk4_steps": [4],
                        "rk4_field": ["trilinear"], "rk4_length_mm": [L_MM],
                        "pos_mean_mm": [1.0]}).iloc[0]
    out = benchmark.coarse_caller(row, GRID, dz_mm=L_MM)(8, 3)()
    assert len(out) == 3  # calls
    u = benchmark.timing_inputs(4096, 0, L_MM).double().numpy()
    s, d = np.ascontiguousarray(u[:8, :5]), u[:8, 5].copy()
    np.testing.assert_array_equal(out[0], priors.RK4Prior.fit(GRID, 4, np.array([L_MM]))(s, d))
    row8 = row.copy()
    row8["rk4_steps"] = 8
    eight = benchmark.coarse_caller(row8, GRID, dz_mm=L_MM)(8, 1)()
    assert np.abs(eight[0] - out[0]).max() > 1e-6  # the row's step count is the one used


def _split(dz, seed):
    """Tracks on GRID with these dz and their 'truth', RK4 in 90 steps of 100 mm (scores are
    then coarse-vs-fine RK4)."""
    s = _tracks(len(dz), seed=seed)
    fine = priors.RK4Prior.fit(GRID, 90, np.array([9000.0]))(s, dz)
    return {"initial": s, "dz": np.asarray(dz, float), "final": np.c_[fine, s[:, 4]]}


def _variable_dz_ds(dz, dz_range=(500.0, 9000.0)):
    """A variable-dz dataset dict on GRID: test tracks with these dz (no validation tracks)."""
    from physml.tracks.data import DatasetSpec

    return {"spec": DatasetSpec(dz_range_mm=dz_range), "field": GRID, "test": _split(dz, 3)}


def test_coarse_rk4_at_variable_dz_lays_its_steps_over_the_top_of_the_dz_range():
    from physml.tracks.data import DatasetSpec

    dz = np.array([3000.0, 3250.0, 6000.0, 6000.0])
    ds = _variable_dz_ds(dz)
    assert experiments.rk4_length_mm(ds) == 9000.0  # not the test tracks' longest dz, 6000
    assert experiments.rk4_length_mm({"spec": DatasetSpec(planes_mm=(8500.0,))}) == 8500.0
    got = experiments.coarse_prediction(ds, 18)  # 500 mm steps: 6 and 12 whole steps
    whole = dz != 3250.0
    for i in np.flatnonzero(whole):
        ref = numpy_rk4(ds["test"]["initial"][i:i + 1], 0.0, dz[i:i + 1], int(dz[i] // 500),
                         GRID)
        np.testing.assert_allclose(got[i], ref[0], atol=1e-8)
    rows = experiments.coarse_rk4(ds, [18, 9], p_min=0.0)
    assert list(rows["model"]) == ["rk4x18 (no network)", "rk4x9 (no network)"]
    assert list(rows["rk4_length_mm"]) == [9000.0, 9000.0]
    # 500 mm steps: 6, 7 (six and a partial), 12, 12; 1000 mm: 3, 4, 6, 6
    assert list(rows["mean_steps"]) == [9.25, 4.75]
    err = np.hypot(*(got[:, :2] - ds["test"]["final"][:, :2]).T).mean()
    assert rows["pos_mean_mm"].iloc[0] == pytest.approx(err)
    assert rows["pos_mean_mm"].iloc[1] > rows["pos_mean_mm"].iloc[0]  # longer steps, worse
    assert experiments.SELECT_ON not in rows  # no validation tracks, no validation error
    ds["val"] = _split(np.array([2000.0, 7000.0, 8000.0]), 4)
    rows = experiments.coarse_rk4(ds, [18, 9], p_min=0.0)
    val = experiments.coarse_prediction(ds, 9, split="val")
    np.testing.assert_array_equal(val, priors.RK4Prior.fit(GRID, 9, np.array([9000.0]))(
        ds["val"]["initial"], ds["val"]["dz"]))
    want = np.hypot(*(val[:, :2] - ds["val"]["final"][:, :2]).T).mean()
    assert rows[experiments.SELECT_ON].iloc[1] == pytest.approx(want)
    assert rows["pos_mean_mm"].iloc[0] == pytest.approx(err)  # the test scores unchanged


def test_coarse_caller_at_variable_dz_runs_the_rows_length_on_dz_drawn_per_track():
    row = pd.DataFrame({"model": ["rk4x4 (no network)"], "rk4_steps": [4],
                        "rk4_field": ["trilinear"], "rk4_length_mm": [12000.0]}).iloc[0]
    grid = gaussian_map(z_max_mm=12100.0)  # the default timing dz reach 12 m
    out = benchmark.coarse_caller(row, grid, dz_mm=None)(8, 1)()[0]
    u = benchmark.timing_inputs(4096, 0, None).double().numpy()
    s, d = np.ascontiguousarray(u[:8, :5]), u[:8, 5].copy()
    assert d.std() > 100  # drawn per track
    np.testing.assert_array_equal(out, priors.RK4Prior.fit(grid, 4, np.array([12000.0]))(s, d))


def test_cheapest_coarse_is_the_fewest_steps_at_least_as_accurate_or_none():
    coarse = pd.DataFrame({"model": ["a", "b", "c"], "rk4_steps": [24, 16, 20],
                           "pos_mean_mm": [0.003, 0.012, 0.005]})
    assert benchmark.cheapest_coarse(coarse, 0.005)["model"] == "c"  # equal counts
    assert benchmark.cheapest_coarse(coarse, 0.0049)["model"] == "a"
    assert benchmark.cheapest_coarse(coarse, 0.02)["model"] == "b"
    assert benchmark.cheapest_coarse(coarse, 0.001) is None
    val = coarse.assign(val_pos_mean_mm=[0.004, 0.003, 0.006])  # matched on validation
    assert benchmark.cheapest_coarse(val, 0.005, on="val_pos_mean_mm")["model"] == "b"
