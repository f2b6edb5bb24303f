"""The kick + least-squares polynomial surrogate: the bases it can have, exact on a residual its
basis spans (and not on one it does not), close to the analytic helix in a uniform field, the
compiled prediction equal to the design matrix's, and errors that name the bad value."""

import dataclasses
import functools
import math
import re

import numpy as np
import pandas as pd
import pytest

from physml.tracks import polynomial as P
from physml.tracks.field import GaussianField, UniformField
from physml.tracks.ground_truth import helix_exact
from physml.tracks.priors import KickTable, kick_numpy

DZ = 8500.0
TABLE = KickTable.from_field(GaussianField(), z_max_mm=10000.0, step_mm=20.0)


def _tracks(n, seed=0, p=(2.0, 50.0)):
    rng = np.random.default_rng(seed)
    mom = np.exp(rng.uniform(*np.log(p), n))
    return np.c_[rng.uniform(-50, 50, (n, 2)), rng.uniform(-0.3, 0.3, (n, 2)),
                 rng.choice([-1.0, 1.0], n) / mom]


def _residual(s):
    """A residual (n, 4) per unit q/p, in plain powers: total degree 3 in (x, y, tx, ty) and
    degree 2 in q/p, so inside the span of degree = 3, qop_degree = 2."""
    x, y, tx, ty, q = (s[:, i] for i in range(5))
    return np.stack([3.0 + x * y / 2500 - 40 * tx**2 * ty + 7 * q**2 * tx,
                     -1.0 + y / 50 + 5 * ty**3 + 2 * q * x / 50,
                     1e-3 * (tx + ty * x / 50 + q),
                     -2e-3 * tx * ty * y / 50 + 1e-3 * q**2], 1)


def _final(s, residual):
    return kick_numpy(s, np.full(len(s), DZ), TABLE) + s[:, 4:5] * residual(s)


def B(*args):
    return P.Basis(*args)


def test_exponents_are_every_monomial_up_to_the_degree_once():
    for d in (0, 1, 3, 6):
        e = B(d, 0).exponents()
        assert len(e) == math.comb(d + 4, 4)
        assert e.sum(1).max() == d and len({tuple(r) for r in e}) == len(e)
        assert B(d, 3).n_features == math.comb(d + 4, 4) * 4
    for args, msg in [((-1, 0), "degree = -1, expected >= 0"),
                      ((2, -1), "qop_degree = -1, expected >= 0"),
                      ((2, 2, 0), "xy_weight = 0, expected >= 1"),
                      ((2, 2, 1, -1), "total_degree = -1, expected >= 0 or None")]:
        with pytest.raises(ValueError, match=re.escape(msg)):
            B(*args)


def test_a_weighted_and_capped_basis_counts_as_hand_counted():
    """degree 2, xy weight 2: the slopes' 6 monomials of degree <= 2 with x^0 y^0, and x, y
    alone (2 * 1 = 2); no x tx, no x^2. Capped at total 3 with q/p degree <= 2: a geometric
    degree g carries 3 - g + 1 q/p degrees, at most 3."""
    e = {tuple(r) for r in B(2, 0, 2).exponents()}
    assert e == {(0, 0, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1), (0, 0, 2, 0), (0, 0, 1, 1),
                 (0, 0, 0, 2), (1, 0, 0, 0), (0, 1, 0, 0)}
    capped = B(2, 2, 2, 3)
    g = {tuple(r): 2 * (r[0] + r[1]) + r[2] + r[3] for r in capped.exponents()}
    got = dict(zip(g, capped.qop_counts(), strict=True))
    assert got == {k: min(3, 4 - v) for k, v in g.items()}
    assert capped.n_features == 3 + 2 * 3 + 3 * 2 + 2 * 2  # g = 0, 1, 2 (slopes), 2 (x, y)
    # monomials with the most q/p degrees first: each degree's carriers are a prefix
    assert list(capped.qop_counts()) == sorted(capped.qop_counts(), reverse=True)
    # the edges: cap 0 keeps the constant alone; weight 1, degree 0 and q/p degree 0 are valid
    assert B(2, 2, 1, 0).n_features == 1 and B(0, 0, 1).n_features == 1
    # a cap below the geometric degree drops the monomials above it
    assert B(4, 1, 1, 2).exponents().sum(1).max() == 2
    assert [B(*a).label for a in [(8, 8), (10, 10, 4, 12), (6, 3, 1, 7), (6, 3, 2)]] == [
        "d8/q8", "d10/q10 xy4 t12", "d6/q3 t7", "d6/q3 xy2"]


def test_a_residual_in_the_span_is_recovered_to_rounding_on_new_tracks():
    s, new = _tracks(600, 0), _tracks(300, 1)
    m = P.PolynomialSurrogate.fit(s, np.full(len(s), DZ), _final(s, _residual), TABLE, B(3, 2))
    assert m.n_features == math.comb(7, 4) * 3 == m.coef.shape[0]
    got = m.predict(new, np.full(len(new), DZ))
    np.testing.assert_allclose(got, _final(new, _residual), rtol=0, atol=1e-9)


@pytest.mark.parametrize("degree,qop_degree", [(2, 2), (3, 1)])
def test_a_basis_one_degree_short_cannot_fit_it(degree, qop_degree):
    s, new = _tracks(600, 0), _tracks(300, 1)
    m = P.PolynomialSurrogate.fit(s, np.full(len(s), DZ), _final(s, _residual), TABLE,
                                  B(degree, qop_degree))
    err = np.abs(m.predict(new, np.full(len(new), DZ)) - _final(new, _residual)).max()
    assert err > 1e-4


def test_the_residual_is_per_unit_q_over_p():
    """The same residual *not* scaled by q/p (final = kick + r) is outside the span: were the
    target divided the other way, or not at all, the first test would fail instead."""
    s, new = _tracks(600, 0), _tracks(300, 1)

    def unscaled(t):
        return kick_numpy(t, np.full(len(t), DZ), TABLE) + _residual(t)

    m = P.PolynomialSurrogate.fit(s, np.full(len(s), DZ), unscaled(s), TABLE, B(3, 2))
    assert np.abs(m.predict(new, np.full(len(new), DZ)) - unscaled(new)).max() > 1e-3


def test_uniform_field_end_states_match_the_analytic_helix():
    """An independent reference: tracks in a uniform 0.5 T field, end states from the closed-form
    helix. The kick alone is off by millimetres; the polynomial's error falls with its degree,
    to a mean under 0.05 um at degree 6 (measured 0.025 um; 0.93 um at degree 4)."""
    by, dz = 0.5, 2000.0
    table = KickTable.from_field(UniformField((0.0, by, 0.0)), z_max_mm=dz, step_mm=10.0)
    s, new = _tracks(2000, 2, p=(2.0, 100.0)), _tracks(400, 3, p=(2.0, 100.0))
    truth = np.array([helix_exact(t, 0.0, dz, by) for t in s])
    want = np.array([helix_exact(t, 0.0, dz, by) for t in new])[:, :4]
    kick = kick_numpy(new, np.full(len(new), dz), table)
    assert np.hypot(*(kick - want)[:, :2].T).max() > 1.0
    err, slope = {}, {}
    for d in (4, 6):
        m = P.PolynomialSurrogate.fit(s, np.full(len(s), dz), truth, table, B(d, d))
        got = m.predict(new, np.full(len(new), dz))
        err[d] = np.hypot(*(got - want)[:, :2].T)
        slope[d] = np.abs(got - want)[:, 2:].max()
    assert err[6].mean() < 5e-5 and err[6].max() < 5e-3 and slope[6] < 1e-5
    assert err[6].mean() < err[4].mean() / 10


@pytest.mark.parametrize("basis", [(4, 3), (5, 4, 2, 6), (3, 0)])
def test_compiled_prediction_equals_the_design_matrix_product(basis):
    """Every track of a batch: several kernel blocks, a last group of eight cut short, and the
    single-thread path (below SERIAL_BELOW) down to one track."""
    s = _tracks(1200, 0)
    m = P.PolynomialSurrogate.fit(s, np.full(len(s), DZ), _final(s, _residual), TABLE,
                                  B(*basis))
    for n in (2 * P.BLOCK + 37, 63, 9, 1):
        new = _tracks(n, 5)
        want = (kick_numpy(new, np.full(n, DZ), TABLE)
                + (m.features(new) @ m.coef) * new[:, 4:5])
        np.testing.assert_allclose(m.predict(new, np.full(n, DZ)), want, rtol=1e-11, atol=1e-11)


def test_a_weighted_basis_fits_what_it_spans_and_not_a_square_of_x():
    """With xy weight 2, degree 3: x * tx (2 + 1) is in the basis, x^2 (4) is not."""
    s, new = _tracks(800, 0), _tracks(300, 1)

    def res(t, sq):
        x, tx, ty, q = t[:, 0] / 50, t[:, 2] / 0.3, t[:, 3] / 0.3, t[:, 4]
        r = 2.0 + 3 * x * tx - ty**3 + q * tx + (5 * x * x if sq else 0)
        return np.stack([r, -r, 1e-3 * r, 2e-3 * r], 1)

    for sq, ok in ((False, True), (True, False)):
        r = functools.partial(res, sq=sq)
        m = P.PolynomialSurrogate.fit(s, np.full(len(s), DZ), _final(s, r), TABLE, B(3, 1, 2))
        err = np.abs(m.predict(new, np.full(len(new), DZ)) - _final(new, r))
        assert (err.max() < 1e-9) == ok, err.max()


def test_a_joint_cap_drops_exactly_the_products_above_it():
    """q/p^2 ty^2 (total 4) is fitted under a cap of 4 and not under a cap of 3; both bases
    hold q/p^2 and ty^2 alone."""
    s, new = _tracks(800, 0), _tracks(300, 1)

    def res(t):
        r = 1.0 + (t[:, 4] * 2) ** 2 * (t[:, 3] / 0.3) ** 2 + (t[:, 3] / 0.3) ** 2
        return np.stack([r, r, 1e-3 * r, 1e-3 * r], 1)

    errs = []
    for cap in (4, 3):
        m = P.PolynomialSurrogate.fit(s, np.full(len(s), DZ), _final(s, res), TABLE,
                                      B(2, 2, 1, cap))
        errs.append(np.abs(m.predict(new, np.full(len(new), DZ)) - _final(new, res)).max())
    assert errs[0] < 1e-9 < 1e-4 < errs[1]


def test_a_model_refuses_coefficients_of_another_basis():
    with pytest.raises(ValueError, match=r"coef has shape \(5, 4\), the basis d2/q1 needs "
                                         r"\(30, 4\)"):
        P.PolynomialSurrogate(B(2, 1), np.ones(5), np.zeros((5, 4)), DZ, TABLE)


def test_a_fitted_model_cannot_be_changed_under_its_kernel():
    # the kernel's copy of the coefficients and the plane's field integrals are made once, in
    # __post_init__: a model whose coef or dz could be reassigned would predict with stale ones
    m = P.PolynomialSurrogate(B(2, 1), np.ones(5), np.zeros((30, 4)), DZ, TABLE)
    for name, value in (("coef", np.ones((30, 4))), ("dz_mm", 1.0)):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(m, name, value)


def test_bad_inputs_are_refused_naming_what_and_where():
    s = _tracks(400, 0)
    dz = np.full(len(s), DZ)
    fit = P.PolynomialSurrogate.fit
    with pytest.raises(ValueError, match="one end plane only, got dz from 8000 to 8500"):
        fit(s, np.where(np.arange(len(s)) == 3, 8000.0, DZ), _final(s, _residual), TABLE, B(2, 1))
    with pytest.raises(ValueError, match="30 tracks for 210 features"):
        fit(s[:30], dz[:30], _final(s[:30], _residual), TABLE, B(4, 2))
    with pytest.raises(ValueError, match="0 tracks for 5 features"):
        fit(s[:0], dz[:0], _final(s[:0], _residual), TABLE, B(1, 0))
    bad = s.copy()
    bad[7, 2] = np.nan
    with pytest.raises(ValueError, match="track 7 has a non-finite input"):
        fit(bad, dz, _final(s, _residual), TABLE, B(2, 1))
    fin = _final(s, _residual)
    fin[9, 1] = np.inf
    with pytest.raises(ValueError, match="final state of track 9 is not finite"):
        fit(s, dz, fin, TABLE, B(2, 1))
    zero = s.copy()
    zero[4, 4] = 0.0
    with pytest.raises(ValueError, match="track 4 has q/p = 0"):
        fit(zero, dz, _final(s, _residual), TABLE, B(2, 1))
    with pytest.raises(ValueError, match=r"need initial \(n, 5\) and dz \(n,\)"):
        fit(s[:, :4], dz, _final(s, _residual), TABLE, B(2, 1))
    m = fit(s, dz, _final(s, _residual), TABLE, B(2, 1))
    with pytest.raises(ValueError, match="fitted at dz = 8500 mm, track 2 asks dz = 9000 mm"):
        m.predict(s[:5], np.array([DZ, DZ, 9000.0, DZ, DZ]))
    m.predict(s[:5], np.full(5, DZ))  # the fitted plane itself is accepted


# ---- the baseline in notebook 05 ------------------------------------------------------------
def test_polynomial_baselines_score_each_degree_on_the_test_tracks_above_2_gev(tmp_path,
                                                                               monkeypatch):
    from physml.tracks import experiments
    from physml.tracks.training import TARGETS, metrics

    monkeypatch.setenv("PHYSML_ARTIFACTS", str(tmp_path))
    ds = experiments.prepare(1200, 400, field_model="gaussian", z_end_mm=4000.0)
    rows, fitted = experiments.polynomial_baselines(ds, [[2, 1], [4, 4]])
    assert list(rows["model"]) == ["kick+poly d2/q1 (least squares)",
                                   "kick+poly d4/q4 (least squares)"] == list(fitted)
    assert list(rows["n_features"]) == [math.comb(6, 4) * 2, math.comb(8, 4) * 5]
    test = ds["test"]
    p = 1 / np.abs(test["initial"][:, 4])
    assert (p < 2).any() and (p >= 2).any()
    for r in rows.to_dict("records"):
        out = fitted[r["model"]].predict(test["initial"], test["dz"])
        want = metrics(out[p >= 2], test["final"][p >= 2, :4])
        assert r["pos_mean_mm"] == pytest.approx(want["pos_mean_mm"])
        assert r["slope_mean"] == pytest.approx(want["slope_mean"])
        assert r["low_p_pos_mean_mm"] == pytest.approx(
            metrics(out[p < 2], test["final"][p < 2, :4])["pos_mean_mm"])
        assert r["meets_targets"] == all(r[k] < v for k, v in TARGETS.items())
        assert r["fit_s"] > 0
    assert rows["pos_mean_mm"].iloc[1] < rows["pos_mean_mm"].iloc[0] / 3
    # fitted on the tracks it is given, scored on ds's test tracks
    _, other = experiments.polynomial_baselines(ds, [[2, 1]], train=ds["val"])
    want = P.PolynomialSurrogate.fit(ds["val"]["initial"], ds["val"]["dz"], ds["val"]["final"],
                                     fitted["kick+poly d2/q1 (least squares)"].table, B(2, 1))
    np.testing.assert_array_equal(other["kick+poly d2/q1 (least squares)"].coef, want.coef)
    # with validation tracks, their error above 2 GeV is the selection column
    sel, models = experiments.polynomial_baselines(ds, [[2, 1]], val=ds["val"])
    pv = 1 / np.abs(ds["val"]["initial"][:, 4]) >= 2
    m = models["kick+poly d2/q1 (least squares)"]
    want = metrics(m.predict(ds["val"]["initial"][pv], ds["val"]["dz"][pv]),
                   ds["val"]["final"][pv, :4])["pos_mean_mm"]
    assert sel[experiments.SELECT_ON].item() == pytest.approx(want)
    assert sel["n_train"].item() == len(ds["train"]["dz"]) and sel["polynomial"].item()
    assert experiments.SELECT_ON not in rows
    # its side of a headline: per-fold test errors above 2 GeV
    from physml.tracks import shipped

    vals, names = shipped.side_errors(pd.DataFrame(), {"ml": None, "hybrid": sel.iloc[0]}, test,
                                      4, polynomials=models)
    pred = m.predict(test["initial"][p >= 2], test["dz"][p >= 2])
    err = np.hypot(*(pred[:, :2] - test["final"][p >= 2, :2]).T)
    np.testing.assert_allclose(vals["hybrid"], [e.mean() for e in np.array_split(err, 4)])
    assert list(vals) == ["hybrid"]
    assert names["hybrid"].startswith(f"kick+poly d2/q1 (least squares): fitted on "
                                      f"{len(ds['train']['dz']):,} tracks, 4 folds")
    with pytest.raises(ValueError, match="polynomial baseline missing from polynomials"):
        shipped.side_errors(pd.DataFrame(), {"hybrid": sel.iloc[0]}, test, 4, polynomials={})
    # a weighted, capped basis by its four numbers; an entry of another length is refused
    four, _ = experiments.polynomial_baselines(ds, [[4, 2, 2, 5]])
    assert four["model"].item() == "kick+poly d4/q2 xy2 t5 (least squares)"
    assert four["n_features"].item() == P.Basis(4, 2, 2, 5).n_features < P.Basis(4, 2).n_features
    with pytest.raises(ValueError, match=r"\[2, 1, 2\] is not \[degree, qop_degree\]"):
        experiments.polynomial_baselines(ds, [[2, 1, 2]])
    var = experiments.prepare(1200, 400, field_model="gaussian", z_end_mm=0.0)
    with pytest.raises(ValueError, match="one end plane only"):
        experiments.polynomial_baselines(var, [[2, 1]])


def test_polynomial_timings_time_every_model_at_every_batch():
    from physml.tracks import benchmark

    s = _tracks(400, 0)
    m = P.PolynomialSurrogate.fit(s, np.full(len(s), DZ), _final(s, _residual), TABLE, B(2, 1))
    poly = pd.DataFrame({"model": ["a", "b"], "pos_mean_mm": [0.5, 0.25]})
    tp = benchmark.polynomial_timings({"a": m, "b": m}, poly, [1, 64], threads=1, repeats=2,
                                      min_items=64, dz_mm=DZ)
    assert list(zip(tp["model"], tp["batch"], strict=True)) == [("a", 1), ("a", 64), ("b", 1),
                                                                ("b", 64)]
    assert set(tp["backend"]) == {"numba"} and (tp["run"] == tp["model"]).all()
    assert list(tp["pos_mean_mm"]) == [0.5, 0.5, 0.25, 0.25]
    assert (tp["tracks_per_s"] > 0).all()
    # the caller runs the model on the batch it is given, at the fitted plane
    calls = benchmark.polynomial_caller(m, dz_mm=DZ)(3, 2)()
    assert len(calls) == 2 and calls[0].shape == (3, 4)
    with pytest.raises(ValueError, match="fitted at dz = 8500 mm"):
        benchmark.polynomial_caller(m, dz_mm=4000.0)(3, 1)()


def _poly_rows(meets=(False, False)):
    return pd.DataFrame({"model": ["kick+poly d4/q4 (least squares)",
                                   "kick+poly d6/q6 (least squares)"],
                         "basis": ["d4/q4", "d6/q6"],
                         "n_features": [350, 1470], "fit_s": [0.9, 4.1],
                         "pos_mean_mm": [0.37, 0.051], "pos_95_mm": [1.8, 0.25],
                         "slope_mean": [4e-4, 6.6e-5], "meets_targets": list(meets)})


def _poly_tp():
    return pd.DataFrame({"model": ["kick+poly d4/q4 (least squares)",
                                   "kick+poly d6/q6 (least squares)"] * 2,
                         "batch": [4096, 4096, 256, 256],
                         "tracks_per_s": [1.8e6, 7.1e5, 1e5, 2e5]})


def test_polynomial_markdown_reports_each_degree_and_compares_with_the_kick_networks():
    from physml.tracks import benchmark

    table = pd.DataFrame({"model": ["mlp-tiny+kick", "mlp-small+kick-qp (shipped)",
                                    "mlp-small+rk4x8"], "pos_mean_mm": [1.2, 0.085, 0.012]})
    txt = benchmark.polynomial_markdown(_poly_rows(), table, _poly_tp(), 4096, 36000)
    assert "36,000 training tracks" in txt
    assert ("d4/q4 (350 features, fitted in 0.9 s): 0.37 mm mean (95th percentile 1.8 mm, "
            "slope 0.0004) at 1,800,000 tracks/s") in txt
    assert "d6/q6 (1,470 features, fitted in 4.1 s): 0.051 mm mean" in txt
    assert "at 710,000 tracks/s" in txt  # the rate at the asked batch, not at 256
    assert "No basis scanned meets all three accuracy targets." in txt
    # the best kick network, never the rk4 hybrid, and which is more accurate
    assert ("mlp-small+kick-qp (shipped), reaches 0.085 mm: the best polynomial (0.051 mm) is "
            "more accurate") in txt
    worse = table.assign(pos_mean_mm=[1.2, 0.03, 0.012])
    assert "(0.051 mm) is less accurate" in benchmark.polynomial_markdown(
        _poly_rows(), worse, _poly_tp(), 4096, 36000)
    assert "Meeting all three accuracy targets: d6/q6." in benchmark.polynomial_markdown(
        _poly_rows((False, True)), table, _poly_tp(), 4096, 36000)
    assert "kick-prior network" not in benchmark.polynomial_markdown(
        _poly_rows(), table.iloc[2:], _poly_tp(), 4096, 36000)
    with pytest.raises(ValueError, match="no polynomial baseline"):
        benchmark.polynomial_markdown(_poly_rows().iloc[:0], table, _poly_tp(), 4096, 36000)


def test_a_polynomial_meeting_the_targets_can_be_the_fastest_method():
    from physml.tracks import benchmark

    table = pd.DataFrame({"model": ["net"], "pos_mean_mm": [0.05], "meets_targets": [True]})
    tp = pd.DataFrame({"model": ["net"], "batch": [4096], "tracks_per_s": [1e6]})
    coarse = pd.DataFrame({"model": ["rk4x12"], "pos_mean_mm": [0.02], "meets_targets": [True]})
    coarse_tp = pd.DataFrame({"model": ["rk4x12"], "batch": [4096], "tracks_per_s": [1.4e6]})
    both = pd.concat([coarse, _poly_rows((False, True))], ignore_index=True)
    both_tp = pd.concat([coarse_tp, _poly_tp()], ignore_index=True)
    assert benchmark.fastest_meeting_targets(table, both, tp, both_tp, 4096)["method"] == "rk4x12"
    fast_tp = both_tp.assign(tracks_per_s=np.where(both_tp["model"].str.contains("d6"), 5e6,
                                                   both_tp["tracks_per_s"]))
    got = benchmark.fastest_meeting_targets(table, both, tp, fast_tp, 4096)
    assert got == {"method": "kick+poly d6/q6 (least squares)", "tracks_per_s": 5e6,
                   "pos_mean_mm": 0.051}


def test_the_edges_of_the_refusals_are_accepted():
    """Exactly as many tracks as features, q/p degree 0, and dz a rounding error (1e-6 mm at
    8.5 m) off the plane, in the fit and in prediction."""
    n = math.comb(6, 4)  # degree 2, qop_degree 0
    s = _tracks(n, 0)
    m = P.PolynomialSurrogate.fit(s, np.full(n, DZ), _final(s, _residual), TABLE, B(2, 0))
    assert m.n_features == n
    wobble = DZ + np.where(np.arange(n) % 2, 1e-6, 0.0)
    P.PolynomialSurrogate.fit(s, wobble, _final(s, _residual), TABLE, B(2, 0))
    assert np.isfinite(m.predict(s, wobble)).all()


def test_pick_polynomial_takes_the_hybrid_side_only_with_a_lower_validation_error():
    from physml.tracks import experiments

    sel = experiments.SELECT_ON
    net = pd.Series({"model": "mlp+kick", sel: 0.02})
    poly = pd.DataFrame({"model": ["d4", "d8"], sel: [0.3, 0.01], "polynomial": True})
    picks = {"ml": pd.Series({"model": "mlp", sel: 9.0}), "hybrid": net}
    got = experiments.pick_polynomial(picks, poly)
    assert got["hybrid"]["model"] == "d8" and got["ml"] is picks["ml"]
    assert picks["hybrid"] is net  # the input is not changed
    assert experiments.pick_polynomial(picks, poly.assign(**{sel: [0.3, 0.02]}))["hybrid"] is net
    none = experiments.pick_polynomial({"ml": None, "hybrid": None}, poly)
    assert none["hybrid"]["model"] == "d8"
    assert experiments.pick_polynomial(picks, poly.iloc[:0])["hybrid"] is net
    with pytest.raises(ValueError, match="pass val= to polynomial_baselines"):
        experiments.pick_polynomial(picks, poly.drop(columns=sel))
