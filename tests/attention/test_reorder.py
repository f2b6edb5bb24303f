"""Equivariance check on real samples: every bias is equivariant when reordered with the tokens;
the un-reordered (released) bias is not, unless it is constant."""

import numpy as np

from physml.attention import bias as B
from physml.attention import dataset as D
from physml.attention import reorder
from physml.attention.terrain import TerrainSpec


def test_equivariance_errors_on_wind_scan_permutations():
    spec = D.DataSpec(terrain=TerrainSpec(n_cells=32, margin_cells=6), n_terrains=3,
                      samples_per_terrain=2)
    data = D.make_dataset(np.random.default_rng(5), spec)
    eq = reorder.equivariance_errors(data, list(B.VARIANTS), seed=0, n_samples=3).set_index(
        "variant")
    assert (eq["aligned_max_abs_error"] < 1e-10).all()
    assert eq.loc["none", "unpermuted_max_abs_error"] < 1e-10  # a zero bias cannot misalign
    for v in ("alibi2d", "relpos", "barrier", "barrier_wind"):
        assert eq.loc[v, "unpermuted_max_abs_error"] > 1e-3, v
    assert eq.loc["misaligned", "as_used_max_abs_error"] > 1e-3
    # the released bias is too small for its misalignment to matter much
    assert eq.loc["elev_released_fixed", "unpermuted_max_abs_error"] < 0.05
