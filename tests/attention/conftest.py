"""A small transport data set (4 terrains of 32 × 32 cells, 5 samples each) shared by the
attention tests that need real simulator output but not many samples."""

import numpy as np
import pytest

from physml.attention import dataset as D
from physml.attention.terrain import TerrainSpec


@pytest.fixture(scope="session")
def small_data():
    spec = D.DataSpec(terrain=TerrainSpec(n_cells=32, margin_cells=6), n_terrains=4,
                      samples_per_terrain=5)
    return D.make_dataset(np.random.default_rng(0), spec)
