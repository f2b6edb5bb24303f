"""The fair solver race: the Newton polish, the judge, time-to-ε and the per-seed rates, checked
on potentials with closed-form critical points and on hand-made trajectories."""

import numpy as np
import pandas as pd
import pytest

from physml.vacua import race
from physml.vacua.potential import make_potential


def tilted_double_well():
    # V = −φ² + ¼ φ⁴ + 0.1 φ (n = 1): minima near ±√2, the tilt makes the negative one lowest
    pot = make_potential([1.0], None, -2.0, [0.1], 0.0, 1.0, 0.0, 1.0, 0.25)
    roots = np.sort(np.roots([1.0, 0.0, -2.0, 0.1]).real)  # V' = φ³ − 2φ + 0.1
    return pot, roots  # (true vacuum, local maximum, other minimum)


def test_polish_reaches_the_closed_form_critical_point_it_starts_next_to():
    pot, (vac, top, other) = tilted_double_well()
    for root in (vac, top, other):  # minimum, maximum and the other minimum alike
        p = race.polish(pot, np.array([root + 1e-3]))
        assert p.converged
        assert p.x[0] == pytest.approx(root, abs=1e-13)


def test_polish_resolves_the_kink_at_the_origin():
    # Σ M² φ² − A exp(−a Σ|φ_i|_δ): minimum at φ = 0 inside a kink of width √δ = 1e-4
    pot = make_potential([1.0, 2.0, 1.5], None, 0.0, None, 1.5, 1.2, 0.0, 1.0, 0.2)
    p = race.polish(pot, np.array([3e-5, -2e-5, 1e-5]))
    assert p.converged and np.max(np.abs(p.x)) < 1e-12


def test_true_vacuum_is_the_lowest_minimum_and_never_a_maximum():
    pot, (vac, top, other) = tilted_double_well()
    x, v = race.true_vacuum(pot, np.array([[other + 0.01], [vac - 0.02], [top + 1e-3]]))
    assert x[0] == pytest.approx(vac, abs=1e-13)
    assert v == pytest.approx(float(pot.value(np.array([vac]))), abs=1e-14)
    x, _ = race.true_vacuum(pot, np.array([[top + 1e-3]]))  # only the maximum on offer
    assert x is None


def test_judge_tells_correct_wrong_point_and_imprecise_apart():
    pot, (vac, top, other) = tilted_double_well()
    x_true = np.array([vac])
    assert race.judge(pot, x_true + 1e-8, x_true)[1] == "correct"
    assert race.judge(pot, np.array([other + 1e-3]), x_true)[1] == "wrong_point"
    assert race.judge(pot, np.array([top]), x_true)[1] == "wrong_point"
    d, out = race.judge(pot, x_true + 1e-3, x_true)
    assert out == "imprecise" and d == pytest.approx(1e-3)
    assert race.judge(pot, x_true + 1e-3, x_true, eps_success=1e-2)[1] == "correct"


def test_time_to_eps_runs_the_starts_one_after_the_other():
    traj = [(np.array([0.0, 1.0, 2.0]), np.array([[1.0], [0.1], [0.01]])),
            (np.array([0.0, 0.5]), np.array([[1e-3], [1e-5]]))]
    eps = (1e-1, 1e-2, 1e-3, 1e-5, 1e-6)
    t = race.time_to_eps(traj, np.array([0.0]), eps)
    np.testing.assert_array_equal(t, [1.0, 2.0, 2.0, 2.5, np.inf])


def test_per_seed_rates_and_time_per_correct_vacuum():
    per = pd.DataFrame(dict(
        method=["a"] * 4 + ["b"] * 4, seed=0, wall_s=[1.0, 1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.1],
        outcome=["correct", "correct", "wrong_point", "imprecise",
                 "correct", "wrong_point", "wrong_point", "wrong_point"],
        nfev=1, ngev=1, nhev=0, nit=1))
    s = race.per_seed(per).set_index("method")
    assert s.loc["a", "success_rate"] == 0.5 and s.loc["a", "wrong_point_rate"] == 0.25
    assert s.loc["a", "ms_per_correct_vacuum"] == pytest.approx(2000.0)  # 4 s / 2 correct
    assert s.loc["b", "ms_per_correct_vacuum"] == pytest.approx(400.0)   # 0.4 s / 1 correct


def test_best_analytic_needs_at_least_the_baseline_success_rate():
    t = pd.DataFrame(dict(method=["bfgs_fd", "trust_exact", "lbfgs"],
                          ms_per_correct_vacuum=[100.0, 20.0, 5.0],
                          success_rate=[1.0, 1.0, 0.9]))
    assert race.best_analytic(t) == "trust_exact"  # lbfgs is faster but succeeds less often


def test_a_small_race_judges_every_solver_against_one_true_vacuum():
    per, tte = race.race([2, 3], 2, seed=3, methods=("trust_exact", "bfgs_fd", "jax_newton"))
    assert set(per.method) == {"trust_exact", "bfgs_fd", "jax_newton"}
    assert len(per) == 3 * 4 - 3 * per.attrs["dropped"]
    assert (per.outcome == "correct").mean() > 0.8
    assert set(tte.method) == {"trust_exact", "bfgs_fd"}  # JAX records no iterates
    assert set(tte.eps) == set(race.EPS_GRID)
    with pytest.raises(ValueError, match="unknown methods"):
        race.race([2], 1, seed=0, methods=("simplex",))


def test_scipy_solvers_race_with_one_blas_thread(monkeypatch):
    from threadpoolctl import threadpool_info, threadpool_limits

    seen = []
    real = race.run_scipy

    def spy(*a, **k):
        seen.append(max((p["num_threads"] for p in threadpool_info()), default=1))
        return real(*a, **k)

    monkeypatch.setattr(race, "run_scipy", spy)
    with threadpool_limits(limits=2):  # as outside `make test`: more than one BLAS thread
        race.race([2], 1, 0, methods=("lbfgs", "bfgs_fd"), n_starts=2)
    assert seen and set(seen) == {1}


class _Stub:
    """A potential given by its pieces: V = g·φ + ½ φᵀHφ (grad and Hessian as given)."""

    def __init__(self, g, H):
        self.g, self.H = np.asarray(g, float), np.asarray(H, float)

    def value(self, x):
        return float(self.g @ x + 0.5 * x @ self.H @ x)

    def grad(self, x):
        return self.g + self.H @ x

    def hess(self, x):
        return self.H

    def hessp(self, x, v):
        return self.H @ v


def test_polish_stops_when_no_step_helps_and_within_its_iteration_budget():
    pot, (vac, _, _) = tilted_double_well()
    done = race.polish(pot, np.array([vac + 1e-3]))
    again = race.polish(pot, done.x)  # already at rounding level: nothing left to gain
    assert again.converged and again.n_iter <= 3
    far = race.polish(pot, np.array([40.0]), max_iter=2)  # needs more than two Newton steps
    assert far.n_iter == 2 and not far.converged
    bad = race.polish(pot, np.array([np.nan]))
    assert not bad.converged and bad.grad_inf == np.inf and bad.n_iter == 0
    flat = race.polish(_Stub([1.0, 0.0], np.zeros((2, 2))), np.zeros(2))  # a slope, no point
    assert not flat.converged and flat.grad_inf == 1.0


def test_min_eig_ratio_and_true_vacuum_refuse_saddles_and_unconverged_points():
    assert race.min_eig_ratio(_Stub([0, 0, 0], np.diag([-1.0, 2.0, 4.0])), np.zeros(3)) == -0.25
    assert race.min_eig_ratio(_Stub([0, 0], np.diag([3.0, 6.0])), np.zeros(2)) == 0.5
    # a constant slope has no critical point: its polished candidate never converges
    assert race.true_vacuum(_Stub([1.0, 0.0], np.zeros((2, 2))), np.zeros((1, 2)))[0] is None
    # a saddle at the origin: converged, but not a minimum
    assert race.true_vacuum(_Stub([0, 0], np.diag([1.0, -1.0])), np.ones((1, 2)))[0] is None
    # a nearly flat but positive direction is still a minimum (only < −1e-8 is a saddle)
    assert race.true_vacuum(_Stub([0, 0], np.diag([1e-10, 1.0])), np.ones((1, 2)))[0] is not None
    x, v = race.true_vacuum(_Stub([1.0, -2.0], np.diag([1.0, 2.0])), np.zeros((1, 2)))
    np.testing.assert_allclose(x, [-1.0, 1.0], atol=1e-12)  # −H⁻¹g
    assert v == pytest.approx(-1.5)


def test_judge_counts_exactly_eps_as_correct_and_race_checks_its_tolerances():
    pot, (vac, _, _) = tilted_double_well()
    x_true = np.array([0.5])
    dist, out = race.judge(pot, np.array([0.5 + 2.0**-20]), x_true, eps_success=2.0**-20)
    assert dist == 2.0**-20 and out == "correct"
    assert race.judge(pot, np.array([np.inf]), x_true) == (np.inf, "imprecise")
    for kw in (dict(eps_success=0.0), dict(eps_success=1.0), dict(eps_same=0.0),
               dict(eps_same=1.0)):
        with pytest.raises(ValueError, match="must lie in"):
            race.race([2], 1, seed=0, methods=("lbfgs",), **kw)


def test_time_to_eps_measures_the_distance_to_the_true_vacuum_wherever_it_is():
    traj = [(np.array([0.0, 1.0, 3.0]), np.array([[5.0, 1.0], [4.5, 1.0], [4.0, 1.0]]))]
    t = race.time_to_eps(traj, np.array([4.0, 1.0]), (0.6, 1e-3))
    np.testing.assert_array_equal(t, [1.0, 3.0])


def test_run_scipy_hands_each_method_its_derivatives_and_sums_the_counts(monkeypatch):
    from scipy.optimize import OptimizeResult

    calls = []

    def fake_minimize(fun, x0, callback=None, options=None, **kw):
        calls.append(dict(kw, options=dict(options)))
        callback(np.asarray(x0) + 1.0)
        return OptimizeResult(x=np.asarray(x0) + 2.0, nfev=3, njev=2, nhev=1, nit=4)

    monkeypatch.setattr(race, "minimize", fake_minimize)
    pot = _Stub([1.0, 0.0], np.eye(2))
    starts = np.array([[0.0, 0.0], [1.0, 1.0]])
    r = race.run_scipy(pot, "newton_cg", starts, gtol=1e-7, max_iter=9)
    assert (r["nfev"], r["ngev"], r["nhev"], r["nit"]) == (6, 4, 2, 8)
    assert set(calls[0]) == {"method", "jac", "hessp", "options"}
    assert calls[0]["method"] == "Newton-CG" and calls[0]["options"] == {"maxiter": 9,
                                                                          "xtol": 1e-7}
    np.testing.assert_array_equal(r["ends"], starts + 2.0)
    np.testing.assert_allclose(r["values"], [pot.value(s + 2.0) for s in starts])
    ts, xs = r["traj"][1]
    np.testing.assert_array_equal(xs, [starts[1], starts[1] + 1, starts[1] + 2])
    assert ts[0] == 0.0 and np.all(np.diff(ts) >= 0) and ts[-1] == r["durations"][1] > 0
    assert r["durations"].max() < 10.0  # seconds of this call, not a clock reading
    # the FD baseline gets no derivative; the others what their scipy method can use, each
    # the potential's own function
    wanted = {"trust_exact": {"jac": pot.grad, "hess": pot.hess},
              "trust_krylov": {"jac": pot.grad, "hessp": pot.hessp},
              "lbfgs": {"jac": pot.grad}, "bfgs": {"jac": pot.grad}, "bfgs_fd": {}}
    for method, derivs in wanted.items():
        calls.clear()
        race.run_scipy(pot, method, starts[:1], gtol=1e-7, max_iter=9)
        assert calls[0]["method"] == race.SCIPY_RACE[method][0]
        assert {k: v for k, v in calls[0].items() if k not in ("method", "options")} == \
            derivs, method
        assert calls[0]["options"] == {"maxiter": 9, "gtol": 1e-7}, method
    monkeypatch.setattr(race, "minimize", lambda *a, **k: OptimizeResult(
        x=np.array([np.nan, 0.0]), nfev=1))  # no njev/nit reported, a non-finite end
    r = race.run_scipy(pot, "bfgs_fd", starts[:1], gtol=1e-7, max_iter=9)
    assert r["values"][0] == np.inf and (r["ngev"], r["nit"]) == (0, 0)


def test_eps_grid_and_per_seed_time_without_a_correct_answer():
    assert race.EPS_GRID == (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10)
    per = pd.DataFrame(dict(method=["a", "a"], seed=0, wall_s=[1.0, 2.0],
                            outcome=["imprecise", "wrong_point"], nfev=1, ngev=1, nhev=0, nit=1))
    s = race.per_seed(per)
    assert s.loc[0, "n_correct"] == 0 and s.loc[0, "ms_per_correct_vacuum"] == np.inf


def test_ms_per_vacuum_at_eps_charges_a_miss_its_whole_run():
    tte = pd.DataFrame(dict(method="a", seed=0, eps=[1e-3, 1e-3, 1e-3, 1e-6, 1e-6],
                            t_eps_s=[0.1, 0.3, np.inf, np.inf, np.inf],
                            wall_s=[1.0, 1.0, 2.0, 1.0, 1.0]))
    out = race.ms_per_vacuum_at_eps(tte).set_index("eps")
    assert out.loc[1e-3, "ms_per_vacuum"] == pytest.approx(1e3 * (0.1 + 0.3 + 2.0) / 2)
    assert out.loc[1e-3, "fraction_located"] == pytest.approx(2 / 3)
    assert out.loc[1e-6, "ms_per_vacuum"] == np.inf and out.loc[1e-6, "located"] == 0
    table = race.located_table(race.ms_per_vacuum_at_eps(tte))
    assert list(table.columns) == ["method", "1e-03", "1e-06"]  # largest ε first


def test_cis_leave_out_methods_without_two_finite_seeds():
    from physml import stats

    t = pd.DataFrame(dict(method=["a", "a", "a", "b", "c", "c", "d", "d", "e", "e"],
                          seed=[0, 1, 2, 0, 0, 1, 0, 1, 0, 1],
                          x=[1.0, 2.0, 4.0, 3.0, 1.0, np.inf, -1.0, 2.0, 0.0, 3.0]))
    got = race.cis(t, "x")
    assert list(got) == ["a", "d", "e"]  # b: one seed; c: a non-finite seed
    assert got["a"].mean == pytest.approx(7 / 3)
    logged = race.cis(t, "x", log=True)
    assert list(logged) == ["a"]  # d and e hold a value <= 0
    assert logged["a"].mean == pytest.approx(stats.geometric_mean_ci(np.array([1.0, 2, 4])).mean)
    assert list(race.cis(t, "x", methods=["e", "a"])) == ["e", "a"]


def test_per_seed_values_speedups_and_best_analytic_read_the_right_rows():
    t = pd.DataFrame(dict(method=["bfgs_fd", "bfgs_fd", "lbfgs", "lbfgs", "bfgs", "bfgs"],
                          seed=[1, 0, 1, 0, 0, 1],
                          ms_per_correct_vacuum=[40.0, 20.0, 10.0, 5.0, np.inf, 2.0],
                          success_rate=1.0))
    np.testing.assert_array_equal(race.per_seed_values(t, "lbfgs", "ms_per_correct_vacuum"),
                                  [5.0, 10.0])  # ordered by seed
    with pytest.raises(ValueError, match="trust_exact"):
        race.per_seed_values(t, "trust_exact", "success_rate")
    sp = race.speedups_vs_fd(t, ["lbfgs", "bfgs"])
    assert list(sp) == ["lbfgs"]  # bfgs found no correct vacuum in seed 0
    assert sp["lbfgs"].mean == pytest.approx(4.0)
    assert race.best_analytic(t) == "lbfgs"  # candidates absent from the table are skipped
    worse = t.assign(success_rate=[1.0, 1.0, 0.5, 0.5, 0.9, 0.9])  # none as reliable as FD
    # then the fastest candidate present (bfgs' mean is inf: no correct vacuum in seed 0)
    assert race.best_analytic(worse) == "lbfgs"


def test_the_batched_newton_is_charged_its_own_time_per_potential():
    import time

    t0 = time.perf_counter()
    per, _ = race.race([2], 3, seed=1, methods=("jax_newton",), n_starts=1)
    elapsed = time.perf_counter() - t0
    assert len(per) > 0 and np.all((per.wall_s > 0) & (per.wall_s < elapsed / len(per)))


def test_race_seeds_stack_the_seeds_and_sum_what_they_dropped():
    per, tte = race.race_seeds([2], 2, [0, 4], methods=("lbfgs",), n_starts=1)
    assert set(per.seed) == {0, 4} and per.index.is_unique and tte.index.is_unique
    assert per.attrs["dropped"] == 4 - len(per)
