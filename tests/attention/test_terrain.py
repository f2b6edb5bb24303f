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
