"""physml.vacua.derivatives (notebook 01's checks) against closed-form finite-difference errors,
JAX autodiff and a planted derivative error."""

import numpy as np
import pandas as pd
import pytest

from physml.vacua import derivatives
from physml.vacua.potential import DELTA, REGIMES


class _Fn:
    """A stand-in potential V(x0, x1) = exp(x0)·sin(x1) with exact derivatives."""

    def value(self, x):
        return np.exp(x[0]) * np.sin(x[1])

    def grad(self, x):
        return np.exp(x[0]) * np.array([np.sin(x[1]), np.cos(x[1])])

    def hess(self, x):
        s, c = np.sin(x[1]), np.cos(x[1])
        return np.exp(x[0]) * np.array([[s, c], [c, -s]])


def test_fd_error_vs_step_is_the_closed_form_error_of_central_differences():
    # at x1 = 0 the only non-zero derivatives are ∂V/∂x1 = e^{x0} and ∂²V/∂x0∂x1 = e^{x0}.
    # Central differences give ∂V/∂x1 · sin(h)/h; the Hessian's cross term comes out as
    # e^{x0}·sin(h)/h one way and e^{x0}·sinh(h)/h the other, and the symmetrised Hessian holds
    # their mean, whose error is O(h⁴), not O(h²)
    steps = [0.3, 0.1, 0.01]
    df = derivatives.fd_error_vs_step(_Fn(), [0.4, 0.0], steps)
    assert list(df.columns) == ["h", "grad_rel_err", "hess_rel_err"] and list(df.h) == steps
    h = np.array(steps)
    np.testing.assert_allclose(df.grad_rel_err, 1 - np.sin(h) / h, rtol=1e-6)
    np.testing.assert_allclose(df.hess_rel_err[:2],
                               np.abs((np.sin(h) / h + np.sinh(h) / h) / 2 - 1)[:2], rtol=1e-4)
    assert df.hess_rel_err[1] < 1e-5 < df.grad_rel_err[1]


def test_relative_error_is_the_max_deviation_over_the_reference_max():
    assert derivatives._rel(np.array([1.0, 2.0]), np.array([1.0, 4.0])) == 0.5
    assert derivatives._rel(np.array([[1.0, -3.0]]), np.array([[1.0, -1.0]])) == 2.0
    assert derivatives._rel(np.zeros(2), np.zeros(2)) == 0.0  # no division by zero


def test_test_points_put_half_the_coordinates_inside_the_kink():
    rng = np.random.default_rng(0)
    phi = derivatives.test_points(8, rng, "near_kink")
    assert phi.shape == (8,) and np.all(np.abs(phi[:4]) <= 1e-6)
    assert np.all(np.abs(phi[:4]) < np.sqrt(DELTA)) and np.all(np.abs(phi[4:]) > 1e-3)
    assert np.abs(derivatives.test_points(1, rng, "near_kink")[0]) <= 1e-6
    inside = derivatives.test_points(40, rng, "near_kink")[:20]
    assert inside.min() < -1e-7 and inside.max() > 1e-7  # both sides of the kink
    far = derivatives.test_points(4000, rng, "random")
    assert abs(far.std() - 1) < 0.05 and np.mean(np.abs(far) < 1e-3) < 0.01
    with pytest.raises(ValueError, match="near_kink"):
        derivatives.test_points(3, rng, "kink")


def test_autodiff_errors_are_tiny_for_the_analytic_derivatives_and_catch_a_planted_one(
        monkeypatch):
    df = derivatives.autodiff_errors([2, 5], 4, np.random.default_rng(1))
    assert len(df) == 2 * 4 * 2  # n values × potentials × point kinds
    assert list(df[df.n == 5].regime[::2]) == list(REGIMES)  # regimes cycled
    assert set(df.point) == {"random", "near_kink"}
    assert df[["grad_rel_err", "hess_rel_err", "hessp_rel_err"]].to_numpy().max() < 1e-10

    real = derivatives.sample_potential

    class Off:  # the analytic Hessian 1% too large, the gradient exact
        def __init__(self, pot):
            self.pot, self.params = pot, pot.params

        def grad(self, phi):
            return self.pot.grad(phi)

        def hess(self, phi):
            return 1.01 * self.pot.hess(phi)

        def hessp(self, phi, v):
            return 1.01 * self.pot.hessp(phi, v)

    monkeypatch.setattr(derivatives, "sample_potential", lambda *a: Off(real(*a)))
    off = derivatives.autodiff_errors([3], 2, np.random.default_rng(1))
    np.testing.assert_allclose(off.hess_rel_err, 0.01, rtol=1e-6)
    np.testing.assert_allclose(off.hessp_rel_err, 0.01, rtol=1e-6)
    assert off.grad_rel_err.max() < 1e-10


def test_source_defect_misses_the_kink_curvature_only_near_the_kink():
    df = derivatives.source_defect(4, 6, np.random.default_rng(2))
    assert len(df) == 8 and list(df.point[:2]) == ["random", "near_kink"]
    assert df.ours_rel_err.max() < 1e-10
    near, far = df[df.point == "near_kink"], df[df.point == "random"]
    # at φ_i = 0 the true curvature of sqrt(φ² + δ) is 1/sqrt(δ) = 1e4; δ² in its place leaves
    # about aE/sqrt(δ) out of the diagonal (a ≈ 1–2.5, E = A·exp(−a·Σ|φ|) up to 2.5)
    assert near.source_rel_err.min() > 0.5 and far.source_rel_err.max() < 1e-6
    assert np.all((near.source_missing_curvature > 1.0) & (near.source_missing_curvature < 1e5))
    assert far.source_missing_curvature.max() < 1e-3


def test_fd_best_picks_each_derivative_at_its_own_best_step():
    a = pd.DataFrame({"h": [1e-2, 1e-4, 1e-6], "grad_rel_err": [1e-5, 1e-9, 1e-7],
                      "hess_rel_err": [1e-4, 1e-6, 1e-3]})
    b = pd.DataFrame({"h": [1e-2, 1e-4], "grad_rel_err": [3e-3, 5e-3],
                      "hess_rel_err": [2e-2, 1e-2]})
    best = derivatives.fd_best({"random": a, "near_kink": b})
    assert best.to_dict("records") == [
        dict(point="random", h_best_grad=1e-4, grad_rel_err=1e-9, h_best_hess=1e-4,
             hess_rel_err=1e-6),
        dict(point="near_kink", h_best_grad=1e-2, grad_rel_err=3e-3, h_best_hess=1e-4,
             hess_rel_err=1e-2)]
