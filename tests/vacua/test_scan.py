"""Labelling at scale keeps every potential (failures counted) and the rate arithmetic is right."""

import numpy as np
import pandas as pd
import pytest

from physml.vacua.geometry import enumerate_toric_surfaces
from physml.vacua.labels import LABELS
from physml.vacua.scan import failure_accounting, label_geometries, throughput_summary


def test_every_potential_gets_a_row_and_a_label():
    geoms = enumerate_toric_surfaces(5)
    table, timing = label_geometries(geoms, 3, np.random.default_rng(0), max_iter=50)
    assert len(table) == 3 * len(geoms)
    assert set(table.label) <= set(LABELS)
    assert failure_accounting(table)["count"].sum() == len(table)
    assert timing.potentials.sum() == len(table)
    # n_moduli follows the geometry: clip(h11, 2, 32)
    assert (table.n_moduli == np.clip(table.n_rays - 2, 2, 32)).all()


def test_hours_for_source_dataset_is_270659_times_5_over_rate():
    timing = pd.DataFrame(dict(n_moduli=[2, 3], potentials=[1000, 3000], wall_s=[1.0, 2.0],
                               compile_s=[0.5, 0.5]))
    s = throughput_summary(timing)
    assert s["labels_per_second"] == pytest.approx(4000 / 2.0)
    assert s["hours_for_source_dataset"] == pytest.approx(270_659 * 5 / 2000 / 3600)


def test_label_geometries_demands_multistart():
    with pytest.raises(ValueError, match="n_starts"):
        label_geometries(enumerate_toric_surfaces(4), 1, np.random.default_rng(0), n_starts=2)
