"""The source's random window split leaks; a file split does not (issue 11)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from physml import splits
from physml.cnc import leakage


def _rows(n_files=20, n=775):
    return pd.DataFrame({"file": np.repeat([f"f{i}" for i in range(n_files)], n),
                         "row": np.tile(np.arange(n), n_files)})


def test_random_window_split_shares_rows_with_training_almost_always():
    w = leakage.windows(_rows(), window=64, stride=16)
    tr, te = leakage.random_window_split(len(w), 0.15, seed=0)
    # a test window overlaps its 3 neighbours on each side; it escapes only when all six are
    # outside training: probability 0.15**6 — so the shared fraction is ~1 (issue: 99.8%)
    assert leakage.shared_row_fraction(w, tr, te) > 0.99


def test_file_split_shares_no_rows():
    w = leakage.windows(_rows(), window=64, stride=16)
    sp = splits.group_kfold(w["file"].to_numpy(), 5, seed=0, what="file")[0]
    assert leakage.shared_row_fraction(w, sp.train, sp.test) == 0.0


def test_shared_fraction_on_a_hand_checked_case():
    w = pd.DataFrame({"file": ["a"] * 3, "start": [0, 2, 10], "stop": [4, 6, 14]})
    assert leakage.shared_row_fraction(w, np.array([0]), np.array([1, 2])) == 0.5


def test_windows_on_a_hand_checked_case_and_refusals():
    import pytest

    rows = pd.DataFrame({"file": ["a"] * 5 + ["b"] * 3, "row": [*range(5), *range(3)]})
    w = leakage.windows(rows, window=2, stride=2)
    assert w.values.tolist() == [["a", 0, 2], ["a", 2, 4], ["b", 5, 7]]  # global row indices
    for window, stride in ((0, 1), (1, 0)):  # either one alone is refused
        with pytest.raises(ValueError, match="window and stride"):
            leakage.windows(rows, window, stride)
    assert len(leakage.windows(rows, 1, 1)) == 8  # one-row windows every row are allowed


def test_random_splits_refuse_a_test_fraction_outside_0_to_1():
    import pytest

    for split in (lambda f: leakage.random_window_split(10, f, seed=0),
                  lambda f: leakage.stratified_window_split(np.arange(10) % 2, f, seed=0)):
        for f in (0.0, 1.0):
            with pytest.raises(ValueError, match="test_fraction"):
                split(f)
        tr, te = split(0.2)
        assert len(te) == 2 and sorted([*tr, *te]) == list(range(10))
