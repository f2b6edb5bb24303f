"""The kick + polynomial surrogate over a range of end planes: its splines against SciPy's, exact
on a residual cubic in dz, fourth-order convergence on one that is not, the banded fit equal to
a dense least-squares solve, close to the analytic helix at every dz, and errors that name the
bad value."""

import re

import numpy as np
import pytest
from scipy.interpolate import BSpline

from physml.tracks import polynomial as P
from physml.tracks.field import GaussianField, UniformField
from physml.tracks.ground_truth import helix_exact
from physml.tracks.polynomial_dz import DzSplinePolynomial, spline_weights
from physml.tracks.priors import KickTable, kick_numpy

LO, HI = 1000.0, 9000.0
TABLE = KickTable.from_field(GaussianField(), z_max_mm=10000.0, step_mm=20.0)


def _tracks(n, seed=0, p=(2.0, 50.0)):
    rng = np.random.default_rng(seed)
    mom = np.exp(rng.uniform(*np.log(p), n))
    s = np.c_[rng.uniform(-50, 50, (n, 2)), rng.uniform(-0.3, 0.3, (n, 2)),
              rng.choice([-1.0, 1.0], n) / mom]
    return s, rng.uniform(LO, HI, n)


def _residual(s, dz, power=3):
    """Per unit q/p: degree 2 in (x, y, tx, ty), 1 in q/p, and ``power`` in dz."""
    x, y, tx, ty, q = (s[:, i] for i in range(5))
    t = dz / 4000.0
    g = 1.0 + 0.5 * t - 0.2 * t**2 + 0.1 * t**power
    return np.stack([g * (3.0 + x * y / 2500 - 4 * tx * ty) + q * tx * t,
                     -g * (1.0 + y / 50) + 2 * ty**2 * t,
                     1e-3 * g * (tx + q),
                     -2e-3 * t * tx * ty], 1)


def _final(s, dz, power=3):
    return kick_numpy(s, dz, TABLE) + s[:, 4:5] * _residual(s, dz, power)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_spline_weights_are_scipys_uniform_cubic_b_splines(k):
    h = (HI - LO) / k
    spl = BSpline.design_matrix(np.r_[LO, HI, np.linspace(LO, HI, 101)],
                                LO + h * np.arange(-3, k + 4), 3).toarray()
    i, w = spline_weights(np.r_[LO, HI, np.linspace(LO, HI, 101)], LO, HI, k)
    got = np.zeros((len(i), k + 3))
    for j in range(4):
        got[np.arange(len(i)), i + j] = w[:, j]
    np.testing.assert_allclose(got, spl, rtol=0, atol=1e-14)
    assert i[0] == 0 and i[1] == k - 1  # dz = hi is in the last interval


def test_a_residual_cubic_in_dz_is_recovered_to_rounding_on_new_tracks():
    (s, dz), (new, ndz) = _tracks(3000, 0), _tracks(500, 1)
    m = DzSplinePolynomial.fit(s, dz, _final(s, dz), TABLE, P.Basis(2, 1), 3, (LO, HI))
    np.testing.assert_array_equal(m.scale, np.abs(s).max(0))  # the inputs' half-ranges
    assert m.coef.shape == (6, P.Basis(2, 1).n_features, 4) and m.n_intervals == 3
    assert m.n_features == 6 * P.Basis(2, 1).n_features and m.label == "d2/q1 dz3"
    np.testing.assert_allclose(m.predict(new, ndz), _final(new, ndz), rtol=0, atol=1e-9)


def test_a_residual_quartic_in_dz_converges_at_fourth_order_in_the_interval():
    """Mean error 1.0e-3 with one interval, then 1.1e-6 and 7.7e-8 with 8 and 16 (measured):
    halving the interval divides it by 2^4 (third order would give 8, fifth 32)."""
    (s, dz), (new, ndz) = _tracks(4000, 0), _tracks(500, 1)
    err = {}
    for k in (1, 8, 16):
        m = DzSplinePolynomial.fit(s, dz, _final(s, dz, 4), TABLE, P.Basis(2, 1), k, (LO, HI))
        err[k] = np.abs(m.predict(new, ndz) - _final(new, ndz, 4)).mean()
    assert err[1] > 1e-4 and 12 < err[8] / err[16] < 20, err


def test_the_banded_fit_equals_a_dense_least_squares_solve():
    """Noisy targets (no exact fit): the coefficients of the banded normal equations, assembled
    interval by interval, equal NumPy's least squares on the full design matrix."""
    (s, dz), basis, k = _tracks(2500, 3), P.Basis(2, 1), 4
    rng = np.random.default_rng(0)
    final = _final(s, dz, 4) + rng.normal(0, 0.5, (len(s), 4)) * np.array([1, 1, 1e-3, 1e-3])
    m = DzSplinePolynomial.fit(s, dz, final, TABLE, basis, k, (LO, HI))
    a = P.design_matrix(basis, m.scale, s)
    i, w = spline_weights(dz, LO, HI, k)
    full = np.zeros((len(s), k + 3, basis.n_features))
    for j in range(4):
        full[np.arange(len(s)), i + j] = w[:, j:j + 1] * a
    target = (final[:, :4] - kick_numpy(s, dz, TABLE)) / s[:, 4:5]
    want = np.linalg.lstsq(full.reshape(len(s), -1), target, rcond=None)[0]
    np.testing.assert_allclose(m.coef.reshape(-1, 4), want, rtol=1e-6, atol=1e-9)


def test_compiled_prediction_equals_the_spline_sum_of_the_design_matrix():
    """Tracks in every interval, in random order: several kernel blocks, groups of eight cut
    short where the interval changes, and the single-thread path down to one track."""
    (s, dz), basis, k = _tracks(3000, 0), P.Basis(3, 2), 5
    m = DzSplinePolynomial.fit(s, dz, _final(s, dz, 4), TABLE, basis, k, (LO, HI))
    for n in (2 * P.BLOCK + 37, 63, 9, 1):
        new, ndz = _tracks(n, 4)
        i, w = spline_weights(ndz, LO, HI, k)
        a = P.design_matrix(basis, m.scale, new)
        res = sum(w[:, j:j + 1] * np.einsum("nf,nfo->no", a, m.coef[i + j]) for j in range(4))
        np.testing.assert_allclose(m.predict(new, ndz), kick_numpy(new, ndz, TABLE)
                                   + new[:, 4:5] * res, rtol=1e-11, atol=1e-11)


def test_uniform_field_end_states_match_the_analytic_helix_at_every_dz():
    """An independent reference: end states from the closed-form helix in a uniform 0.5 T field,
    dz in [500, 2000] mm. The kick alone is off by 0.18 mm on average (4.3 mm at most); d4/q4
    with 4 intervals by 0.75 um (measured)."""
    by, lo, hi = 0.5, 500.0, 2000.0
    table = KickTable.from_field(UniformField((0.0, by, 0.0)), z_max_mm=hi, step_mm=10.0)
    rng = np.random.default_rng(12)  # not _tracks' seed: dz independent of the momenta
    (s, _), (new, _) = _tracks(8000, 2, p=(2.0, 100.0)), _tracks(400, 3, p=(2.0, 100.0))
    dz, ndz = rng.uniform(lo, hi, len(s)), rng.uniform(lo, hi, len(new))
    truth = np.array([helix_exact(t, 0.0, d, by) for t, d in zip(s, dz, strict=True)])
    want = np.array([helix_exact(t, 0.0, d, by) for t, d in zip(new, ndz, strict=True)])[:, :4]
    kick = kick_numpy(new, ndz, table)
    assert np.hypot(*(kick - want)[:, :2].T).mean() > 0.1
    m = DzSplinePolynomial.fit(s, dz, truth, table, P.Basis(4, 4), 4, (lo, hi))
    got = m.predict(new, ndz)
    err = np.hypot(*(got - want)[:, :2].T)
    assert err.mean() < 2e-3 and err.max() < 0.1 and np.abs(got - want)[:, 2:].max() < 2e-4


def test_errors_name_the_bad_value():
    (s, dz), b = _tracks(600, 0), P.Basis(1, 1)
    f = _final(s, dz)
    fit = DzSplinePolynomial.fit
    with pytest.raises(ValueError, match="n_intervals = 0, expected >= 1"):
        fit(s, dz, f, TABLE, b, 0, (LO, HI))
    with pytest.raises(ValueError, match="dz range 8500 to 8500 mm is empty"):
        fit(s, np.full(len(s), 8500.0), f, TABLE, b, 2)
    with pytest.raises(ValueError, match=re.escape("track 0 has dz = 1000 mm, outside the "
                                                   "fitted range 2000 to 9000 mm")):
        fit(s, np.r_[1000.0, dz[1:]], f, TABLE, b, 2, (2000.0, HI))
    few = np.r_[np.full(5, 8000.0), np.full(len(s) - 5, 1500.0)]
    with pytest.raises(ValueError, match=re.escape("5 tracks in dz interval 1 (5000 to 9000 "
                                                   "mm), fewer than the 40 coefficients of its "
                                                   "four splines (d1/q1)")):
        fit(s, few, f, TABLE, b, 2, (LO, HI))
    bad = f.copy()
    bad[9, 2] = np.nan
    with pytest.raises(ValueError, match="final state of track 9 is not finite"):
        fit(s, dz, bad, TABLE, b, 2, (LO, HI))
    with pytest.raises(ValueError, match=r"DzSplinePolynomial.fit: track 3 has q/p = 0"):
        fit(np.r_[s[:3], s[3:4] * [1, 1, 1, 1, 0], s[4:]], dz, f, TABLE, b, 2, (LO, HI))
    m = fit(s, dz, f, TABLE, b, 2, (LO, HI))
    with pytest.raises(ValueError, match=re.escape("DzSplinePolynomial.predict: track 1 has "
                                                   "dz = 9500 mm, outside the fitted range")):
        m.predict(s[:2], np.array([HI, 9500.0]))
    m.predict(s[:2], np.array([LO, HI]))  # both ends are inside
    with pytest.raises(ValueError, match=r"coef has shape \(3, 10, 4\), the basis d1/q1 needs"):
        DzSplinePolynomial(b, m.scale, m.coef[:3], (LO, HI), TABLE)
    for bad_range in ((HI, LO), (LO, LO)):
        with pytest.raises(ValueError, match=re.escape(f"dz_range_mm = {bad_range}, expected")):
            DzSplinePolynomial(b, m.scale, m.coef, bad_range, TABLE)


def test_jacobi_solve_dense_and_banded_agree_with_numpy():
    rng = np.random.default_rng(5)
    n, u = 12, 3
    a = rng.normal(size=(40, n)) * np.logspace(-3, 3, n)
    g = a.T @ a
    g[np.abs(np.subtract.outer(np.arange(n), np.arange(n))) > u] = 0.0
    g += np.diag(np.abs(g).sum(1))  # diagonally dominant: positive definite
    rhs = rng.normal(size=(n, 2))
    want = np.linalg.solve(g, rhs)
    np.testing.assert_allclose(P.jacobi_solve(g, rhs), want, rtol=1e-9)
    band = np.zeros((u + 1, n))
    for d in range(u + 1):
        band[u - d, d:] = np.diagonal(g, d)
    np.testing.assert_allclose(P.jacobi_solve(band, rhs, banded=True), want, rtol=1e-9)
    indefinite = g.copy()
    indefinite[0, 1] = indefinite[1, 0] = 2 * np.sqrt(g[0, 0] * g[1, 1])  # |correlation| 2
    with pytest.raises(ValueError, match="not positive definite even with the ridge 1e-14"):
        P.jacobi_solve(indefinite, rhs)
    g[4, 4] = 0.0
    with pytest.raises(ValueError, match="feature 4 is zero on every training track"):
        P.jacobi_solve(g, rhs)


# ---- beside the fixed plane in notebook 05 ---------------------------------------------------
def test_polynomial_baselines_fit_the_variable_dz_model_over_the_datasets_dz_range(
        tmp_path, monkeypatch):

    from physml.tracks import benchmark, experiments
    from physml.tracks.training import metrics

    monkeypatch.setenv("PHYSML_ARTIFACTS", str(tmp_path))
    ds = experiments.prepare(4000, 400, field_model="gaussian", z_end_mm=0.0)
    rows, fitted = experiments.polynomial_baselines(ds, [[3, 2]], val=ds["val"], dz_intervals=4)
    name = "kick+poly d3/q2 dz4 (least squares)"
    assert list(rows["model"]) == [name] == list(fitted) and rows["basis"].item() == "d3/q2 dz4"
    m = fitted[name]
    assert m.dz_range_mm == ds["spec"].dz_range_mm == (500.0, 12000.0)
    assert rows["n_features"].item() == 7 * P.Basis(3, 2).n_features
    test = ds["test"]
    hi = 1 / np.abs(test["initial"][:, 4]) >= 2
    want = metrics(m.predict(test["initial"][hi], test["dz"][hi]), test["final"][hi, :4])
    assert rows["pos_mean_mm"].item() == pytest.approx(want["pos_mean_mm"])
    kick = experiments.kick_alone(ds)
    k = kick_numpy(test["initial"], test["dz"], KickTable.from_field(ds["field"]))
    assert kick["model"] == "kick (no fit)"
    want = metrics(k[hi], test["final"][hi, :4])["pos_mean_mm"]
    assert kick["pos_mean_mm"] == pytest.approx(want)
    assert rows["pos_mean_mm"].item() < kick["pos_mean_mm"] / 3  # measured 1.53 against 18.4
    # timed on dz drawn per track
    tp = benchmark.polynomial_timings(fitted, rows, [16], threads=1, repeats=2, min_items=16,
                                      dz_mm=None)
    assert tp["backend"].item() == "numba" and tp["tracks_per_s"].item() > 0
    assert benchmark.polynomial_caller(m, dz_mm=None)(5, 1)()[0].shape == (5, 4)


def test_error_vs_dz_averages_each_bin_and_names_the_best_models_worst_bin():
    from physml.tracks import figures

    n = 40
    dz = np.repeat([1000.0, 3000.0, 5000.0, 7000.0], n // 4)
    initial = np.zeros((n, 5))
    initial[:, 4] = 0.25
    initial[np.arange(n) % 10 == 0, 4] = 1.0  # p = 1 GeV: left out
    initial[np.arange(n) % 10 == 5, 4] = -0.5  # p = 2 GeV exactly: counted
    final = np.ones((n, 5))
    good = np.ones((n, 4))
    good[:, 0] += np.where(dz == 7000.0, 0.3, 0.1)  # 0.1 mm, 0.3 in the last dz
    good[(np.arange(n) % 10 == 5) & (dz < 4000), 0] = 1.4  # 0.4 at 2 GeV in the first bin
    bad = np.ones((n, 4))
    bad[:, 1] += 2.0
    bad[initial[:, 4] == 1.0, 1] = 100.0  # only on tracks below 2 GeV: must not count
    fig = figures.error_vs_dz({"initial": initial, "dz": dz, "final": final},
                              {"kick": bad, "poly": good}, 2.0, n_bins=2,
                              fixed=(8500.0, 0.2, "fixed"))
    lines = {t.name: t for t in fig.data if t.name}
    np.testing.assert_allclose(lines["kick"].y, [2.0, 2.0])
    # bin 1: 16 tracks at 0.1 and 2 at 0.4; bin 2: half 0.1, half 0.3
    np.testing.assert_allclose(lines["poly"].y, [(16 * 0.1 + 2 * 0.4) / 18, 0.2])
    np.testing.assert_allclose(lines["poly"].x, [2.5, 5.5])
    assert fig.layout.title.text.startswith("poly: mean error 0.13–0.2 mm over the dz bins, "
                                            "worst near dz = 5.5 m")
    assert fig.layout.yaxis.type == "log"
    assert list(lines["fixed"].x) == [8.5] and list(lines["fixed"].y) == [0.2]


def test_the_edges_of_the_refusals_are_accepted():
    """Exactly as many tracks in an interval as its four splines have coefficients, and dz a
    rounding error (1e-6 mm) outside the range, in the fit and in prediction; 1e-3 mm is out."""
    b = P.Basis(1, 1)  # 10 features: 40 coefficients per interval
    s, _ = _tracks(120, 0)
    dz = np.r_[np.linspace(LO, 4999.0, 40), np.linspace(5001.0, HI, 80)]
    m = DzSplinePolynomial.fit(s, dz, _final(s, dz), TABLE, b, 2, (LO, HI))
    flat = s * [0, 1, 1, 1, 1]  # x = 0 on every track: its features are zero, and named
    with pytest.raises(ValueError, match="jacobi_solve: feature 8 is zero on every training"):
        DzSplinePolynomial.fit(flat, dz, _final(flat, dz), TABLE, b, 2, (LO, HI))
    edge = np.array([LO - 1e-6, HI + 1e-6])
    DzSplinePolynomial.fit(s, np.r_[edge[0], dz[1:-1], edge[1]], _final(s, dz), TABLE, b, 2,
                           (LO, HI))
    assert np.isfinite(m.predict(s[:2], edge)).all()
    with pytest.raises(ValueError, match="outside the fitted range"):
        m.predict(s[:1], np.array([HI + 1e-3]))


def test_jacobi_solve_fits_a_duplicated_feature_instead_of_failing():
    """Two identical columns make the normal equations singular: the ridge on the diagonal keeps
    Cholesky defined, dense and banded, and the fitted values are the least-squares ones."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(30, 3))
    a[:, 2] = a[:, 1]
    y = rng.normal(size=(30, 1))
    want = a @ np.linalg.lstsq(a, y, rcond=None)[0]
    g, rhs = a.T @ a, a.T @ y
    band = np.zeros((3, 3))
    for d in range(3):
        band[2 - d, d:] = np.diagonal(g, d)
    for got in (P.jacobi_solve(g, rhs), P.jacobi_solve(band, rhs, banded=True)):
        np.testing.assert_allclose(a @ got, want, rtol=1e-6, atol=1e-9)
