"""The batched trust-region Newton kernel step by step: its step cap, its stop at the kink of
|φ_i|_δ, its damping on an indefinite Hessian, and padded coordinates that change nothing.
Each test is written against a quadratic (or double-well) potential whose Newton step is known
by hand, so the kernel is checked against arithmetic, not against itself."""

import time

import numpy as np
import pytest

from physml.vacua.potential import make_potential, sample_mixture, stack_potentials
from physml.vacua.solvers import (
    KINK_WIDTH,
    _tr_newton_block,
    newton_padded,
    solve,
    starting_points,
)


def _tilted_quadratic(M, phi_star):
    # Σ M² φ² + c·φ (no kink term, A = 0): the vacuum is φ* = −c / (2M²) exactly
    M = np.asarray(M, float)
    return make_potential(M, None, 0.0, -2 * M**2 * np.asarray(phi_star, float), 0.0, 1.0,
                          0.0, 1.0, 0.0)


def _one_step(pot, phi0, max_step, n_pad=None):
    P = stack_potentials([pot], n_pad or pot.n)
    phi = np.zeros((1, n_pad or pot.n))
    phi[0, : pot.n] = phi0
    out = _tr_newton_block(P, phi, np.array([-1.0]), np.zeros(1, np.int64), 1, 200, 1e-12,
                           100.0, max_step)
    return np.asarray(out[0])[0]


def _double_well():
    # (M² + s) φ² + γ φ⁴ per coordinate with M² + s = −μ < 0: a maximum at 0, saddles on the
    # axes and minima at |φ_i| = √(μ_i / 2γ)
    M = np.array([1.0, 1.2])
    s, gamma = -2.0, 0.25
    pot = make_potential(M, None, s, None, 0.0, 1.0, 0.0, 1.0, gamma)
    return pot, np.sqrt(-(M**2 + s) / (2 * gamma))


@pytest.mark.parametrize("n_pad", [2, 5])
def test_a_long_newton_step_is_cut_to_max_step_along_its_direction(n_pad):
    # minimum 9.5 away: the (nearly undamped) Newton step points at it and is cut to length
    # max_step·√n with n = 2 real moduli, however many padded ones the row carries
    pot = _tilted_quadratic([1.0, 1.0], [10.0, 0.5])
    phi0 = np.array([0.5, 0.5])
    phi1 = _one_step(pot, phi0, max_step=1.0, n_pad=n_pad)
    step = phi1[:2] - phi0
    assert np.linalg.norm(step) == pytest.approx(np.sqrt(2.0), rel=1e-9)
    np.testing.assert_allclose(step / np.sqrt(2.0), [1.0, 0.0], atol=1e-3)  # λ0 bends it little
    np.testing.assert_array_equal(phi1[2:], 0.0)
    # with room for the whole step it lands on the minimum (up to the λ0 damping: 1e-3 of it)
    np.testing.assert_allclose(_one_step(pot, phi0, max_step=100.0), [10.0, 0.5], atol=1e-2)


def test_a_step_across_the_kink_of_a_coordinate_stops_at_zero():
    # φ_x = 0.5 (outside the kink's width) would cross to −0.5: it stops at exactly 0, while
    # φ_y, which does not cross, takes its Newton step
    assert 0.5 > KINK_WIDTH
    pot = _tilted_quadratic([1.0, 1.0], [-0.5, 0.1])
    phi1 = _one_step(pot, np.array([0.5, 0.3]), max_step=10.0)
    assert phi1[0] == 0.0
    assert phi1[1] == pytest.approx(0.1, abs=1e-3)
    # inside the kink's width the same crossing step is taken
    small = _tilted_quadratic([1.0, 1.0], [-0.5 * KINK_WIDTH, 0.1])
    phi1 = _one_step(small, np.array([0.5 * KINK_WIDTH, 0.3]), max_step=10.0)
    assert phi1[0] == pytest.approx(-0.5 * KINK_WIDTH, rel=1e-2)


@pytest.mark.parametrize("M", [[1.0, 1.4, 2.1], [0.3, 0.4, 0.2]])
def test_padded_coordinates_change_neither_the_path_nor_the_iterations(M):
    # the same potential alone (n = 3) and padded to 4 and to 6 moduli: identical solves. The
    # second has every curvature below the padded coordinates' unit diagonal, which must not
    # set the damping; neither may the padded count widen the step cap.
    rng = np.random.default_rng(3)
    pot = make_potential(M, None, -0.05, [0.3, -0.2, 0.1], 0.2, 1.1, 0.1, 1.5, 0.05)
    starts = rng.normal(0.0, 1.5, (4, 3))
    runs = {}
    for n_pad in (3, 4, 6):
        phi0 = np.zeros((1, 4, n_pad))
        phi0[0, :, :3] = starts
        runs[n_pad] = newton_padded(stack_potentials([pot], n_pad), phi0)
    for n_pad in (4, 6):
        assert runs[n_pad]["converged"][0]
        assert runs[n_pad]["n_iter"][0] == runs[3]["n_iter"][0]
        np.testing.assert_allclose(runs[n_pad]["phi"][0, :3], runs[3]["phi"][0], atol=1e-12)
        np.testing.assert_array_equal(runs[n_pad]["phi"][0, 3:], 0.0)


def test_starting_on_the_maximum_of_a_double_well_still_reaches_a_minimum():
    # (M² + s) φ² + γ φ⁴ with M² + s = −μ < 0: the Hessian at φ ≈ 0 is negative definite, so
    # Newton's step needs λ > μ-ish damping; every start near the top must reach |φ_i| = √(μ/2γ)
    pot, star = _double_well()
    starts = np.array([[[0.01, 0.02], [-0.02, 0.01], [0.015, -0.01]]])
    r = newton_padded(stack_potentials([pot], 2), starts, max_iter=100)
    assert r["converged"][0]
    np.testing.assert_allclose(np.abs(r["phi"][0]), star, atol=1e-8)
    assert r["n_iter"][0] < 3 * 40  # three starts, each well inside the iteration budget


def test_one_start_is_enough_and_zero_is_refused():
    rng = np.random.default_rng(0)
    pot = _tilted_quadratic([1.0, 2.0], [0.3, -0.2])
    (st,) = starting_points([pot], 1, rng)
    assert st.shape == (1, 2)
    with pytest.raises(ValueError, match="n_starts"):
        starting_points([pot], 0, rng)


@pytest.mark.parametrize("method", ["bfgs", "jax_newton"])
def test_wall_time_is_the_time_the_solve_took(method):
    pot = _tilted_quadratic([1.0, 2.0], [0.3, -0.2])
    starts = starting_points([pot], 2, np.random.default_rng(1))
    solve([pot], method, starts)  # compile (JAX) outside the timed call
    t0 = time.perf_counter()
    res = solve([pot], method, starts)
    elapsed = time.perf_counter() - t0
    assert 0.0 < res.wall_s <= elapsed


def test_minimising_keeps_the_lowest_minimum_even_when_most_starts_stop_on_a_saddle():
    # double well in each coordinate: a start on the φ_y = 0 axis never leaves it (∂V/∂φ_y = 0
    # there) and converges to the saddle (x*, 0); the one start off the axis reaches the
    # minimum (x*, ±y*), lower in V. Minimisation keeps it, not the majority's saddle.
    pot, star = _double_well()
    starts = np.array([[[0.5, 0.0], [1.5, 0.0], [0.7, 0.4]]])
    r = newton_padded(stack_potentials([pot], 2), starts)
    assert r["converged"][0]
    np.testing.assert_allclose(r["phi"][0], star, atol=1e-8)
    assert np.all(r["eigvals"][0] > 0)


def test_every_start_counts_its_own_iterations():
    # a quadratic: each of three starts converges within a few iterations (the first block of
    # 8), so the summed count stays small; a start's result is its own, not a padding slot's
    pot = _tilted_quadratic([1.0, 2.0], [0.3, -0.2])
    starts = np.array([[[0.5, 0.5], [-1.0, 2.0], [3.0, -1.0]]])
    r = newton_padded(stack_potentials([pot], 2), starts)
    assert r["converged"][0]
    np.testing.assert_allclose(r["phi"][0], [0.3, -0.2], atol=1e-10)
    assert 3 <= r["n_iter"][0] <= 3 * 6


def _lambda_rule_cases(critical):
    """Twelve single trust-region steps on 200 (potential, start) rows. For every step a row
    takes: (ρ recomputed in NumPy from the potential's own value, gradient and Hessian, λ
    before, λ after, max|H_ii| before, whether φ moved, whether H + λI (H² + λI) is positive
    definite). Steps within round-off of the model's tolerance, or of a branch boundary, are
    left out (there the float64 kernel and this recomputation may round differently)."""
    rng = np.random.default_rng(17 if critical else 7)
    R = 200
    pots = sample_mixture(rng.integers(1, 5, R), rng)
    P = stack_potentials(pots, 4)
    phi = rng.normal(0.0, 1.5, (R, 4)) * np.asarray(P.mask)
    lam, nit = np.full(R, -1.0), np.zeros(R, np.int64)
    rows = []
    for _ in range(12):
        out = _tr_newton_block(P, phi, lam, nit, 1, 200, 1e-14, 100.0, 2.0, critical)
        phi1, lam1, nit1 = (np.asarray(x) for x in out[:3])
        for k, pot in enumerate(pots):
            if nit1[k] == nit[k]:  # stopped: converged or out of bounds
                continue
            x0, x1 = phi[k, : pot.n], phi1[k, : pot.n]
            g, H = pot.grad(x0), pot.hess(x0)
            h = np.max(np.abs(np.diag(H)))
            h = h**2 if critical else h
            lam0 = 1e-3 * h if lam[k] < 0 else lam[k]
            A = H @ H if critical else H
            ev = np.linalg.eigvalsh(A + lam0 * np.eye(pot.n)).min()
            p = x1 - x0
            if critical:
                m = 0.5 * g @ g
                pred = m - 0.5 * np.sum((g + H @ p) ** 2)
                actual = m - 0.5 * np.sum(pot.grad(x1) ** 2)
                scale = 1e-10 * (1 + m)
            else:
                pred = -(g @ p + 0.5 * p @ H @ p)
                actual = pot.value(x0) - pot.value(x1)
                scale = 1e-10 * (1 + abs(pot.value(x0)))
            moved = bool(np.any(p != 0))
            rho = actual / pred if moved and pred > scale else np.nan
            edge = moved and (np.isnan(rho) or min(abs(rho - t) for t in (1e-4, 0.25, 0.75)) < 1e-6)
            if abs(ev) > 1e-9 * (1 + h) and not edge:
                rows.append((rho, lam0, lam1[k], h, moved, ev > 0))
        phi, lam, nit = phi1, lam1, nit1
    return rows


@pytest.mark.parametrize("critical", [False, True])
def test_damping_follows_the_ratio_of_actual_to_predicted_decrease(critical):
    # λ0 = 1e-3 max|H_ii| (its square when seeking critical points of ½|∇V|²); after a step,
    # ρ > 0.75: λ/4; ρ < 0.25: max(4λ, floor); else λ; below the floor 1e-8 max|H_ii|: 0.
    # A step is taken only when ρ > 1e-4. Where H + λI (H² + λI) is not positive definite no
    # step is taken and λ becomes max(10λ, 1e-3 max|H_ii|). ρ is recomputed here with NumPy.
    seen = {"expand": 0, "keep": 0, "shrink": 0, "reject": 0, "indefinite": 0}
    for rho, lam0, lam1, h, moved, pd in _lambda_rule_cases(critical):
        floor = 1e-8 * h
        if not pd:
            assert not moved
            seen["indefinite"] += 1
            expect = max(10 * lam0, 1e-3 * h)
        elif not moved:
            seen["reject"] += 1
            expect = max(4 * lam0, floor)
        elif rho > 0.75:
            seen["expand"] += 1
            expect = lam0 / 4
        elif rho < 0.25:
            seen["shrink"] += 1
            assert rho > 1e-4
            expect = max(4 * lam0, floor)
        else:
            seen["keep"] += 1
            expect = lam0
        expect = 0.0 if expect < floor else expect
        assert lam1 == pytest.approx(expect, rel=1e-6, abs=1e-300), (rho, lam0, lam1, moved, pd)
    # every branch of the rule is exercised: H² + λI is never indefinite, and in minimisation
    # an accepted step with ρ < 0.25 is rare (the shrink branch is the same code in both modes)
    need = ("expand", "keep", "shrink", "reject") if critical else (
        "expand", "keep", "reject", "indefinite")
    assert min(seen[k] for k in need) >= 3, seen


def test_the_work_queue_gives_every_row_the_answer_it_gets_alone():
    # 360 rows in a 256-slot queue: finished rows are written out and their slots refilled,
    # then the live tail moves to 64 and 16 slots. Every potential's answer, start by start
    # and iteration by iteration, must be what it gets when solved on its own (no queue).
    rng = np.random.default_rng(21)
    pots = sample_mixture(rng.integers(2, 7, 120), rng)
    P = stack_potentials(pots, 6)
    phi0 = rng.normal(0.0, 1.0, (120, 3, 6)) * np.asarray(P.mask)[:, None, :]
    together = newton_padded(P, phi0, rows=256)
    for k in range(0, 120, 7):
        alone = newton_padded(stack_potentials([pots[k]], 6), phi0[k:k + 1], rows=256)
        assert alone["n_iter"][0] == together["n_iter"][k]
        np.testing.assert_array_equal(alone["phi"][0], together["phi"][k])
        assert alone["converged"][0] == together["converged"][k]


def test_critical_mode_keeps_the_label_most_starts_agree_on():
    # two starts on the φ_y = 0 axis converge to the saddle (x*, 0), one off it to the minimum
    # (x*, y*): the critical-point search keeps the majority's saddle, not the lower minimum
    pot, star = _double_well()
    starts = np.array([[[1.4, 0.0], [1.5, 0.0], [1.45, 1.1]]])
    crit = newton_padded(stack_potentials([pot], 2), starts, mode="critical")
    assert crit["converged"][0]
    np.testing.assert_allclose(crit["phi"][0], [star[0], 0.0], atol=1e-8)
    ev = crit["eigvals"][0]
    assert ev.min() < 0 < ev.max()


@pytest.mark.parametrize("method, counter", [("bfgs", "n_gev"), ("trust_exact", "n_hev")])
def test_scipy_solvers_count_their_gradient_and_hessian_calls(method, counter):
    pot = _tilted_quadratic([1.0, 2.0], [0.3, -0.2])
    res = solve([pot], method, starting_points([pot], 2, np.random.default_rng(2)))
    assert res.converged[0] and getattr(res, counter)[0] >= res.n_iter[0] > 0


def test_a_start_stopped_by_max_iter_is_labelled_so():
    from physml.vacua.labels import MAX_ITER

    pot, _ = _double_well()
    res = solve([pot], "bfgs", [np.array([[0.3, 0.2]])], max_iter=2)
    assert not res.converged[0] and res.reason[0] == MAX_ITER
