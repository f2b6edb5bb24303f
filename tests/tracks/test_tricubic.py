"""The C¹ tricubic map: exact on cubic polynomials, C¹ across cell faces, divergence of an
interpolated vacuum field, and the compiled RK4 / Dormand-Prince integrators on it vs
independent references (scipy DOP853, the analytic helix)."""

import re

import numpy as np
import pytest

from physml.tracks.field import GridField, default_field
from physml.tracks.propagate import KAPPA, propagate, propagate_scipy
from physml.tracks.tricubic import TricubicField, axis_derivative

from .test_propagate import _helix, _tracks


def _grid_of(fn, lo=(-300.0, -200.0, 0.0), hi=(300.0, 200.0, 500.0), spacing=(100.0, 100.0, 50.0)):
    axes = [np.arange(a, b + 1e-9, s) for a, b, s in zip(lo, hi, spacing, strict=True)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    return GridField(np.array(lo), np.array(spacing),
                     fn(pts).reshape(*[a.size for a in axes], 3))


def _cubic(p):
    """Cubic in each coordinate separately (degree 3 per axis, mixed terms up to x³y³z³)."""
    x, y, z = p[:, 0] / 100, p[:, 1] / 100, p[:, 2] / 100
    return np.stack([x**3 * y**2 * z**3 - 2 * x * z + 1, y**3 - x**2 * z + x**3 * y**3,
                     x * y * z + z**3 * y - 0.5 * x**3], 1)


def _harmonic(p, k=1 / 800.0):
    """B = grad(phi), phi = exp(kz) cos(kx) + cosh(ky) cos(kz) (T mm): div B = curl B = 0."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    return np.stack([-np.exp(k * z) * np.sin(k * x),
                     np.sinh(k * y) * np.cos(k * z),
                     np.exp(k * z) * np.cos(k * x) - np.cosh(k * y) * np.sin(k * z)], 1)


def test_five_point_derivative_is_exact_for_quartics_at_every_node():
    t = np.arange(9.0)
    f = 3 * t**4 - t**3 + 2 * t - 7
    np.testing.assert_allclose(axis_derivative(f, 0), 12 * t**3 - 3 * t**2 + 2, atol=1e-9)
    with pytest.raises(ValueError, match="need >= 5"):
        axis_derivative(np.zeros(4), 0)


def test_a_cubic_polynomial_field_is_reproduced_everywhere_inside():
    tc = TricubicField(_grid_of(_cubic))
    pts = np.random.default_rng(0).uniform([-300, -200, 0], [300, 200, 500], size=(2000, 3))
    scale = np.abs(_cubic(pts)).max()
    np.testing.assert_allclose(tc(pts), _cubic(pts), atol=1e-12 * scale)
    np.testing.assert_allclose(np.array([tc.at(*q) for q in pts[:50]]), _cubic(pts[:50]),
                               atol=1e-12 * scale)
    # the trilinear map of the same nodes is not exact (the test can tell them apart)
    assert np.abs(_grid_of(_cubic)(pts) - _cubic(pts)).max() > 1e-3 * scale


def test_field_and_first_derivatives_are_continuous_across_cell_faces():
    g = _grid_of(_harmonic)
    tc = TricubicField(g)
    rng = np.random.default_rng(1)
    eps = 1e-6  # mm, on either side of the face
    h = 1e-3  # mm, one-sided difference inside each cell
    for axis, face in ((0, 0.0), (1, 100.0), (2, 250.0)):
        p = rng.uniform([-250, -150, 60], [250, 150, 440], size=(20, 3))
        p[:, axis] = face
        e = np.zeros(3)
        e[axis] = 1.0
        left, right = p - eps * e, p + eps * e
        np.testing.assert_allclose(tc(left), tc(right), atol=1e-8)  # |grad B| 2 eps ~ 3e-9
        for fld, must_match in ((tc, True), (g, False)):
            d_left = (fld(left) - fld(left - h * e)) / h
            d_right = (fld(right + h * e) - fld(right)) / h
            jump = np.abs(d_left - d_right).max()
            if must_match:
                assert jump < 1e-6, (axis, jump)
            else:  # trilinear: the slope jumps at the face (so the check above can fail)
                assert jump > 1e-5, (axis, jump)


def test_interpolated_vacuum_field_is_nearly_divergence_and_curl_free():
    g = _grid_of(_harmonic, lo=(-800.0, -800.0, -800.0), hi=(800.0, 800.0, 800.0),
                 spacing=(100.0, 100.0, 100.0))
    tc = TricubicField(g)
    p = np.random.default_rng(2).uniform(-600, 600, size=(300, 3))
    h = 0.5
    jac = {f: np.stack([(f(p + h * e) - f(p - h * e)) / (2 * h) for e in np.eye(3)], 1)
           for f in (tc, g)}  # [n, d/d axis, component]
    grad_scale = np.abs(jac[tc]).max()
    div = {f: np.abs(np.trace(j, axis1=1, axis2=2)).max() for f, j in jac.items()}
    curl = {f: np.abs(j[:, 1, 0] - j[:, 0, 1]).max() for f, j in jac.items()}
    assert div[tc] < 1e-3 * grad_scale and curl[tc] < 1e-3 * grad_scale
    assert div[tc] < 0.1 * div[g]  # far below the trilinear map's
    np.testing.assert_allclose(tc(p), _harmonic(p), atol=1e-4)


def test_zero_outside_the_grid():
    tc = TricubicField(_grid_of(_cubic))
    pts = np.array([[-301.0, 0, 100], [0, 201, 100], [0, 0, -0.1], [0, 0, 500.1]])
    assert np.all(tc(pts) == 0)
    # on the upper faces and corner (the last cell, not one past it): the node values
    face = np.array([[300.0, 100.0, 250.0], [-100.0, 200.0, 250.0], [0.0, 0.0, 500.0],
                     [300.0, 200.0, 500.0]])
    np.testing.assert_allclose(tc(face), _cubic(face), rtol=1e-12, atol=1e-12)


def test_rejects_a_non_grid_field():
    with pytest.raises(TypeError, match="GridField"):
        TricubicField(np.zeros((5, 5, 5, 3)))


@pytest.mark.parametrize("method", ["rk4", "dopri5"])
def test_compiled_integrators_match_the_helix_in_a_uniform_map(method):
    b = np.zeros((6, 6, 40, 3))
    b[..., 1] = 1.0
    tc = TricubicField(GridField(np.array([-5000.0, -5000.0, -100.0]),
                                 np.array([2000.0, 2000.0, 100.0]), b))
    s = _tracks(6, seed=1)
    out = propagate(s, 0.0, 3000.0, tc, method=method, step_mm=20.0, tol_mm=1e-5)
    exact = np.array([_helix(t, 0.0, 3000.0, 1.0) for t in s])
    np.testing.assert_allclose(out[:, :2], exact[:, :2], atol=1e-3)
    np.testing.assert_allclose(out[:, 2:4], exact[:, 2:4], atol=1e-7)
    # sign: a positive track in +By bends towards -x (dtx/dz = -KAPPA q/p By at tx = 0)
    pos = propagate(np.array([[0.0, 0, 0, 0, 0.1]]), 0.0, 100.0, tc, method=method)
    assert pos[0, 2] == pytest.approx(-KAPPA * 0.1 * 100.0, rel=1e-3)
    # no distance: the states come back unchanged (RK4 takes one step of length 0, the
    # adaptive integrator none)
    same, info = propagate(s, 500.0, 500.0, tc, method=method, return_info=True)
    np.testing.assert_array_equal(same, s)
    assert info["steps"] == (1 if method == "rk4" else 0)


def test_rk4_and_dopri5_on_the_smooth_default_map_match_dop853():
    tc = TricubicField(default_field())
    s = _tracks(10, seed=3, p_range=(2.0, 50.0))
    ref = propagate_scipy(s, 0.0, 8500.0, tc)
    inside = np.all(np.abs(ref[:, :2]) < 3900, axis=1)  # the acceptance: tracks that stay in
    s, ref = s[inside], ref[inside]  # the map (leaving it is a jump of B to zero)
    assert len(s) >= 8
    out = propagate(s, 0.0, 8500.0, tc)  # default 200 mm steps
    assert np.abs(out[:, :2] - ref[:, :2]).max() < 1e-3  # mm
    ad, info = propagate(s, 0.0, 8500.0, tc, method="dopri5", tol_mm=1e-4, max_step_mm=2000.0,
                         initial_step_mm=100.0, return_info=True)
    assert np.abs(ad[:, :2] - ref[:, :2]).max() < 1e-3
    assert info["mean_steps"] < 60  # adaptive: far fewer steps than the 340 of 25 mm


def test_bspline_tables_refuse_arrays_that_are_not_maps_by_shape():
    from physml.tracks.tricubic import bspline_coefficients, bspline_planes

    for bad in (np.zeros((5, 5, 5)), np.zeros((5, 5, 5, 2)), np.zeros((5, 3, 5, 3)),
                np.zeros((1, 5, 5, 5, 3))):
        with pytest.raises(ValueError, match=r"bspline_coefficients: need b of shape \(nx>=4, "
                                             rf".*got {re.escape(str(bad.shape))}"):
            bspline_coefficients(bad)
    assert bspline_coefficients(np.zeros((4, 4, 4, 3))).shape == (6, 6, 6, 3)
    for bad in (np.zeros((6, 6, 6)), np.zeros((6, 6, 6, 2)), np.zeros((6, 6, 5, 3))):
        with pytest.raises(ValueError, match=r"bspline_planes: need coefficients"):
            bspline_planes(bad)
    assert bspline_planes(np.zeros((6, 6, 6, 3))).shape == (6, 6, 7, 3)
