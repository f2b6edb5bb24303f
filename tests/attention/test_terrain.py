"""Terrain generator: shapes, ranges, determinism under rng, and parameter validation."""

import numpy as np
import pytest

from physml.attention import terrain as tr


def test_random_terrains_shape_range_and_determinism():
    spec = tr.TerrainSpec(n_cells=32, margin_cells=6, height_m=(500.0, 800.0))
    a = tr.random_terrains(np.random.default_rng(3), 5, spec)
    b = tr.random_terrains(np.random.default_rng(3), 5, spec)
    assert a.shape == (5, 32, 32)
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 0
    peaks = a.max(axis=(1, 2))
    assert np.all(peaks >= 500.0 * 0.99) and np.all(peaks <= 800.0 * 3)  # ridges may overlap


def test_ridge_is_long_along_its_angle():
    # crest along 45°: the point (20, 20) lies on it, (10, 20) off it
    h = tr.ridge(32, (15, 15), np.pi / 4, 1.0, 20.0, 2.0)
    assert h[20, 20] > 0.8 and h[20, 10] < 0.01


def test_gradient_matches_analytic_slope():
    n, dx = 64, 500.0
    x = (np.arange(n) * dx)[None, :].repeat(n, 0)
    gx, gy = tr.gradient(0.02 * x + 3.0, dx)
    assert np.allclose(gx, 0.02) and np.allclose(gy, 0.0)


@pytest.mark.parametrize(("field", "value"), [("height_m", (5.0, 1.0)),
                                              ("width_cells", (-1.0, 2.0)),
                                              ("n_cells", 2), ("margin_cells", 40.0)])
def test_bad_spec_rejected_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        tr.TerrainSpec(**{field: value})


def test_ridge_is_the_rotated_gaussian_computed_with_complex_numbers():
    n, centre, angle = 24, (11.3, 9.7), np.deg2rad(30.0)
    h = tr.ridge(n, centre, angle, 700.0, 8.0, 2.5)
    y, x = np.mgrid[0:n, 0:n]
    z = ((x - centre[0]) + 1j * (y - centre[1])) * np.exp(-1j * angle)  # into the ridge frame
    ref = 700.0 * np.exp(-0.5 * (z.real / 8.0) ** 2 - 0.5 * (z.imag / 2.5) ** 2)
    np.testing.assert_allclose(h, ref, rtol=1e-12, atol=1e-300)
    assert h.max() <= 700.0


def test_random_terrains_draw_each_ridge_inside_the_spec(monkeypatch):
    calls = []

    def spy(n_cells, centre, angle_rad, height_m, length_cells, width_cells):
        calls.append((centre, angle_rad, height_m, length_cells, width_cells))
        return np.zeros((n_cells, n_cells))

    monkeypatch.setattr(tr, "ridge", spy)
    spec = tr.TerrainSpec(n_cells=40, ridges=(1, 3), height_m=(300.0, 900.0),
                          width_cells=(1.5, 2.0), length_cells=(10.0, 12.0), margin_cells=8.0)
    rng = np.random.default_rng(0)
    counts = []
    for _ in range(200):  # one terrain at a time, so the ridges of each are known
        before = len(calls)
        tr.random_terrains(rng, 1, spec)
        counts.append(len(calls) - before)
    assert set(counts) == {1, 2, 3}  # both ends of the inclusive range occur
    start = 0
    for k in counts:
        ridges = calls[start:start + k]
        start += k
        top = ridges[0][2]
        assert 300.0 <= top <= 900.0
        assert all(0.4 * top <= r[2] <= top for r in ridges[1:])  # the others: 40-100% of it
    for centre, angle, _, length, width in calls:
        assert all(8.0 <= c <= 40 - 1 - 8.0 for c in centre)
        assert 0 <= angle < np.pi and 10.0 <= length <= 12.0 and 1.5 <= width <= 2.0
    tr.random_terrains(rng, 1, spec)  # one terrain is allowed
    with pytest.raises(ValueError, match="count"):
        tr.random_terrains(rng, 0, spec)


def test_spec_edges_allowed_and_just_past_them_refused():
    tr.TerrainSpec(n_cells=4, margin_cells=0.0, ridges=(2, 2), height_m=(500.0, 500.0))
    tr.TerrainSpec(n_cells=64, margin_cells=31.9)
    for kwargs, field in (({"n_cells": 3, "margin_cells": 0.0}, "n_cells"),
                          ({"margin_cells": 32.0}, "margin_cells"),
                          ({"margin_cells": -0.1}, "margin_cells"),
                          ({"height_m": (0.0, 10.0)}, "height_m"),
                          ({"ridges": (3, 2)}, "ridges")):
        with pytest.raises(ValueError, match=field):
            tr.TerrainSpec(**kwargs)
