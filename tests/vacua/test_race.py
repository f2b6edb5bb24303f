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
