"""attention.dataset: the sample spec's limits, the tracer puffs and the wind draw."""

import numpy as np
import pytest

from physml.attention import dataset as D
from physml.attention.terrain import TerrainSpec

SMALL = TerrainSpec(n_cells=32, margin_cells=6)


def test_spec_accepts_each_limit_value_alone():
    for kw in ({"patch": 1}, {"samples_per_terrain": 1}, {"n_terrains": 2},
               {"diffusivity_m2s": 0.0}, {"wind_speed_ms": (5.0, 5.0)}, {"puffs": (1, 1)},
               {"puffs": (2, 2)}, {"puff_sigma_cells": (3.0, 3.0)}, {"boundary": "closed"}):
        D.DataSpec(terrain=SMALL, **kw)


@pytest.mark.parametrize("kw", [
    {"patch": 0}, {"samples_per_terrain": 0}, {"n_terrains": 1}, {"dx_m": 0.0},
    {"brunt_vaisala_s": 0.0}, {"diffusivity_m2s": -1e-9}, {"travel_cells": 0.0},
    {"wind_speed_ms": (0.0, 5.0)}, {"wind_speed_ms": (6.0, 5.0)}, {"puffs": (0, 2)},
    {"puffs": (3, 2)}, {"puff_sigma_cells": (0.0, 2.0)}, {"puff_sigma_cells": (3.0, 2.0)},
    {"boundary": "periodic"}])
def test_spec_refuses_each_bad_value_alone_by_name(kw):
    (name,) = kw
    with pytest.raises(ValueError, match=name):
        D.DataSpec(terrain=SMALL, **kw)


def test_tracers_hold_from_the_fewest_to_the_most_puffs_of_peak_one():
    # the mass of a puff of width s well inside the grid is 2π s²: the count of puffs shows
    spec = D.DataSpec(terrain=SMALL, puffs=(1, 3), puff_sigma_cells=(1.5, 1.5))
    q = D.random_tracers(np.random.default_rng(0), 300, spec)
    counts = q.sum(axis=(1, 2)) / (2 * np.pi * 1.5**2)
    assert set(np.round(counts).astype(int)) == {1, 2, 3}
    np.testing.assert_allclose(counts, np.round(counts), atol=0.02)
    assert q.max() <= 3.0 + 1e-12
    two = D.random_tracers(np.random.default_rng(1), 50, D.DataSpec(terrain=SMALL, puffs=(2, 2),
                                                                     puff_sigma_cells=(1.5, 1.5)))
    np.testing.assert_allclose(two.sum(axis=(1, 2)) / (2 * np.pi * 1.5**2), 2.0, atol=0.02)


def test_winds_come_from_every_direction_with_log_uniform_speeds():
    spec = D.DataSpec(terrain=SMALL, wind_speed_ms=(2.0, 32.0))
    w = D.random_winds(np.random.default_rng(0), 4000, spec)
    speed, ang = np.hypot(w[:, 0], w[:, 1]), np.arctan2(w[:, 1], w[:, 0])
    assert speed.min() >= 2.0 and speed.max() <= 32.0
    assert np.median(speed) == pytest.approx(8.0, rel=0.1)  # log-uniform: the geometric mean
    quadrant = np.histogram(ang, bins=4, range=(-np.pi, np.pi))[0]
    assert quadrant.min() > 0.2 * len(w)  # uniform direction: about a quarter each


def _data(q1, froude):
    s = len(froude)
    return D.TransportData(np.zeros_like(q1), q1, np.zeros((1, *q1.shape[1:])),
                           np.zeros(s, dtype=int), np.ones((s, 2)), np.ones(s),
                           np.asarray(froude, dtype=float), D.DataSpec(terrain=SMALL))


def test_froude_bins_put_each_edge_in_the_bin_it_opens_and_read_as_labelled():
    assert D.froude_bin_labels() == ["Fr<0.5", "0.5<=Fr<1", "1<=Fr<2", "Fr>=2"]
    d = _data(np.zeros((7, 2, 2)), [0.1, 0.5, 0.99, 1.0, 1.5, 2.0, 40.0])
    assert d.froude_bin().tolist() == [0, 1, 1, 2, 2, 3, 3]


def test_mse_per_sample_is_the_grid_mean_of_the_squared_error():
    q1 = np.array([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 1.0]]])
    pred = np.array([[[1.0, 2.0], [3.0, 2.0]], [[1.0, 1.0], [1.0, 1.0]]])
    np.testing.assert_allclose(D.mse_per_sample(pred, _data(q1, [1.0, 1.0])), [1.0, 0.75])
