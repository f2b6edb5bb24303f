"""Baselines and their splits (issue 11): no file or program on both sides; the clock rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from physml import splits
from physml.cnc import baselines as B
from physml.cnc import data, tokens


@pytest.fixture(scope="module")
def prep():
    d = data.first_per_kind(data.load_shipped(), 3)
    return B.prepare(d, window=3)


def test_leave_file_out_never_puts_a_file_on_both_sides(prep):
    files = prep.labels["file"].to_numpy()
    sp = B.file_splits(prep, 3, seeds=[0, 1])
    assert len(sp) == 6
    for _, s in sp:
        assert not set(files[s.train]) & set(files[s.test])
        assert len(s.train) + len(s.test) == len(files)


def test_leave_program_out_never_puts_a_program_on_both_sides(prep):
    progs = prep.labels["program"].to_numpy()
    files = prep.labels["file"].to_numpy()
    sp = B.program_splits(prep)
    assert len(sp) == 6
    for _, s in sp:
        assert not set(progs[s.train]) & set(progs[s.test])
        assert not set(files[s.train]) & set(files[s.test])


def test_the_leak_check_catches_an_overlapping_split(prep):
    files = prep.labels["file"].to_numpy()
    with pytest.raises(splits.LeakError, match="file"):
        splits.check_no_leak(files[:10], files[5:20], what="file")


def test_clock_rule_on_a_constructed_case():
    # two programs; at each row the majority label of training files of that program wins,
    # rows past what training saw use the last row seen
    train = pd.DataFrame({"program": ["A"] * 6 + ["B"] * 2, "row": [0, 1, 0, 1, 0, 1, 0, 1]})
    y = np.array(["a0", "a1", "a0", "x", "b", "a1", "B0", "B1"], dtype=object)
    test = pd.DataFrame({"program": ["A", "A", "A", "B"], "row": [0, 1, 7, 5]})
    out = B.clock_predict(train, test, y, key="program")
    assert out.tolist() == ["a0", "a1", "a1", "B1"]
    with pytest.raises(ValueError, match="no training file"):
        B.clock_predict(train, pd.DataFrame({"program": ["C"], "row": [0]}), y, key="program")


def test_nn1_returns_the_label_of_the_nearest_training_row():
    Xtr = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    out = B.nn1_predict(Xtr, np.array(["o", "x", "y"]), np.array([[9.0, 1.0], [1.0, 8.0]]),
                        standardise=False)
    assert out.tolist() == ["x", "y"]


def test_scores_of_a_perfect_and_a_constant_prediction():
    true = np.array(["G1 X1. Y2.", "X3.", "G0 Z0.6"], dtype=object)
    s = B.score_lines(true, true)
    assert s["token_accuracy"] == 1.0 and s["line_exact_accuracy"] == 1.0
    s = B.score_lines(np.full(3, "X3.", dtype=object), true)
    # "X3." vs "G1 X1. Y2." matches nothing at positions 0-1; vs "X3." all; vs "G0 Z0.6" none
    assert s["line_exact_accuracy"] == pytest.approx(1 / 3)
    assert s["token_accuracy"] == pytest.approx(2 / (5 + 2 + 3))


def test_clock_beats_majority_on_lines(prep):
    # which test fails if the clock's key or the kinematic columns were wired wrongly
    sp = B.file_splits(prep, 3, seeds=[0])
    r = B.run_line_task(prep, sp, methods=["majority", "clock"], clock_key="program")
    m = r.groupby("method")["line_exact_accuracy"].mean()
    assert m["clock"] > m["majority"] + 0.3


def test_command_classes_exclude_rows_that_move_nothing(prep):
    assert "none" in set(prep.labels["command"])
    sp = B.program_splits(prep)[:1]
    r = B.run_command_task(prep, sp, methods=["majority"])
    # majority predicts one class: balanced accuracy is 1 / (classes in the test fold)
    test = prep.labels.iloc[sp[0][1].test]
    k = test.loc[test["command"] != "none", "command"].nunique()
    assert r["command_balanced_accuracy"].iloc[0] == pytest.approx(1 / k)


def test_prepared_features_come_from_the_gate_only(prep):
    from physml.cnc import schema

    assert not any(schema.is_forbidden_input(c) for c in prep.feature_columns)
    assert all(n.split(":")[0] in prep.feature_columns for n in prep.feature_names)
    assert prep.X.shape == (len(prep.labels), len(prep.feature_names))
    assert tokens.MOTION_CLASSES == ("G0", "G1", "G2", "G3")
