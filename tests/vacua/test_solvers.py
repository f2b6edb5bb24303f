"""Every solver × every potential with a closed-form critical point (optimistix-style table)."""

import numpy as np
import pytest

from physml.vacua.labels import RUNAWAY, SADDLE, STABLE, label_points
from physml.vacua.potential import make_potential, sample_mixture, stack_potentials
from physml.vacua.solvers import METHODS, newton_padded, solve, starting_points


def _cubic_root(M2, gamma, c):
    # d/dφ (M² φ² + γ φ⁴ + c φ) = 4γ φ³ + 2 M² φ + c = 0: one real root (monotone derivative)
    roots = np.roots([4 * gamma, 0.0, 2 * M2, c])
    return float(roots[np.argmin(np.abs(roots.imag))].real)


def quadratic_quartic_tilt():
    M = np.array([1.0, 1.5, 2.0])
    c = np.array([0.7, -1.2, 0.3])
    gamma = 0.3
    pot = make_potential(M, None, 0.0, c, 0.0, 1.0, 0.0, 1.0, gamma)
    phi = np.array([_cubic_root(m**2, gamma, ci) for m, ci in zip(M, c, strict=True)])
    return pot, phi


def tachyonic_double_well():
    # (M² + s) φ² + γ φ⁴ with M² + s = −μ: minima at |φ_i| = sqrt(μ / 2γ), V = −n μ² / 4γ
    M = np.array([1.0, 1.2])
    s = -2.0
    gamma = 0.25
    pot = make_potential(M, None, s, None, 0.0, 1.0, 0.0, 1.0, gamma)
    mu = -(M**2 + s)
    return pot, np.sqrt(mu / (2 * gamma))  # known up to signs


def coupled_quadratic():
    # φᵀ(diag M² + Λ)φ + c·φ: φ* = −½ (diag M² + Λ)⁻¹ c
    M = np.array([1.0, 1.3, 1.7, 2.2])
    Lam = np.array([[0, .2, -.1, 0], [.2, 0, .25, .1], [-.1, .25, 0, -.2], [0, .1, -.2, 0]])
    c = np.array([0.5, -0.4, 0.9, -0.2])
    pot = make_potential(M, Lam, 0.0, c, 0.0, 1.0, 0.0, 1.0, 0.0)
    phi = -0.5 * np.linalg.solve(np.diag(M**2) + Lam, c)
    return pot, phi


def kink_at_origin():
    # Σ M² φ² − A exp(−a Σ|φ_i|_δ): V-shaped kink in every coordinate, minimum at φ = 0
    M = np.array([1.0, 2.0, 1.5])
    pot = make_potential(M, None, 0.0, None, 1.5, 1.2, 0.0, 1.0, 0.2)
    return pot, np.zeros(3)


PROBLEMS = {"quadratic+quartic+tilt": quadratic_quartic_tilt,
            "tachyonic double well": tachyonic_double_well,
            "coupled quadratic": coupled_quadratic, "kink at origin": kink_at_origin}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("problem", PROBLEMS)
def test_every_solver_finds_the_closed_form_minimum(method, problem):
    pot, phi_star = PROBLEMS[problem]()
    rng = np.random.default_rng(0)
    starts = starting_points([pot], 3, rng)
    res = solve([pot], method, starts)
    phi = res.phi[0]
    if problem == "tachyonic double well":
        np.testing.assert_allclose(np.abs(phi), phi_star, atol=1e-5)
    else:
        np.testing.assert_allclose(phi, phi_star, atol=1e-5)
    assert res.value[0] == pytest.approx(pot.value(phi_star if problem != "tachyonic double well"
                                                   else phi_star), abs=1e-8)
    lab = label_points(res.eigvals, res.converged, res.reason, res.phi_norm)
    if method == "bfgs_fd" and problem == "kink at origin":
        # a finite-difference gradient cannot resolve the kink of width sqrt(δ) = 1e-4: the
        # source's baseline lands at the minimum but never certifies |∇V| <= 1e-5 there
        assert not res.converged[0]
    else:
        assert res.converged[0]
        assert lab[0] == STABLE


def test_batched_jax_newton_matches_scipy_trust_exact_on_mixed_sizes():
    rng = np.random.default_rng(4)
    pots = sample_mixture(rng.integers(2, 9, 40), rng)
    starts = starting_points(pots, 3, rng)
    ref = solve(pots, "trust_exact", starts)
    res = solve(pots, "jax_newton", starts)
    assert res.converged.all() and ref.converged.all()
    # both keep their lowest minimum; with the same starts they agree on the value
    np.testing.assert_allclose(res.value, ref.value, atol=1e-8)


def test_critical_mode_finds_the_saddle_that_minimisation_avoids():
    # V = φ1² + 9 φ2² + 2/(1 + |φ|²) + 0.1 Σφ⁴ (no kink term): Hessian at 0 = diag(2−4, 18−4)
    pot = make_potential([1.0, 3.0], None, 0.0, None, 0.0, 1.0, 2.0, 1.0, 0.1)
    P = stack_potentials([pot], 2)
    phi0 = np.array([[[0.05, 0.05], [-0.03, 0.02], [0.02, -0.04]]])
    crit = newton_padded(P, phi0, mode="critical")
    mini = newton_padded(P, phi0, mode="minimize")
    np.testing.assert_allclose(crit["phi"][0], 0.0, atol=1e-6)
    lab_c = label_points(crit["eigvals"], crit["converged"], crit["reason"], crit["phi_norm"])
    lab_m = label_points(mini["eigvals"], mini["converged"], mini["reason"], mini["phi_norm"])
    assert lab_c[0] == SADDLE and lab_m[0] == STABLE
    assert abs(mini["phi"][0][0]) > 0.1


def test_runaway_is_labelled_not_dropped():
    # nearly flat quadratic with a tilt: the minimum −c/(2M²) lies far beyond |φ| = 100
    pot = make_potential([0.01, 0.01], None, 0.0, [1.0, -1.0], 0.0, 1.0, 0.0, 1.0, 0.0)
    res = solve([pot], "jax_newton", [np.zeros((3, 2)) + [[0.1, 0.1]]])
    lab = label_points(res.eigvals, res.converged, res.reason, res.phi_norm)
    assert lab[0] == RUNAWAY


def test_solve_rejects_bad_input():
    pot, _ = kink_at_origin()
    with pytest.raises(ValueError, match="method"):
        solve([pot], "newton_raphson", [np.zeros((3, 3))])
    with pytest.raises(ValueError, match="starts"):
        solve([pot], "bfgs", [np.zeros((3, 2))])
    # one starts array per potential: neither fewer nor more, and at least one potential
    with pytest.raises(ValueError, match="one starts array per potential"):
        solve([pot], "bfgs", [np.zeros((3, 3)), np.zeros((3, 3))])
    with pytest.raises(ValueError, match="one starts array per potential"):
        solve([pot, pot], "bfgs", [np.zeros((3, 3))])
    with pytest.raises(ValueError, match="one starts array per potential"):
        solve([], "bfgs", [])
