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


def test_line_and_command_tasks_give_the_same_rows_on_a_dask_client(prep):
    from physml.parallel import start_client

    sp = B.file_splits(prep, 3, seeds=[0])
    kw_line = {"methods": ["majority", "clock", "nn1"], "clock_key": "program"}
    kw_cmd = {"methods": ["majority", "logreg"], "train_stride": 8}
    client = start_client(1)
    try:
        line = B.run_line_task(prep, sp, client=client, **kw_line)
        cmd = B.run_command_task(prep, sp, client=client, **kw_cmd)
    finally:
        client.close()
    pd.testing.assert_frame_equal(line, B.run_line_task(prep, sp, **kw_line))
    pd.testing.assert_frame_equal(cmd, B.run_command_task(prep, sp, **kw_cmd))
    assert list(line["method"]) == kw_line["methods"] * 3  # fold-major, methods in order


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


# ---------------------------------------------------------------- task (a): motion methods

@pytest.fixture(scope="module")
def prep_motion():
    d = data.first_per_kind(data.load_shipped(), 3)
    return d, B.prepare(d, window=3, motion_halves=[1, 4])


def test_prior_shift_divides_the_posterior_by_the_training_share_by_hand():
    # training shares a 0.8, b 0.2: row 0 has ratios 0.6/0.8 = 0.75 < 0.4/0.2 = 2 -> b (the
    # raw argmax, or a product with the shares, would say a); row 1: 1.125 > 0.5 -> a
    P = np.array([[0.6, 0.4], [0.9, 0.1]])
    ytr = np.array(["a"] * 8 + ["b"] * 2)
    assert B.prior_shift(P, np.array(["a", "b"]), ytr).tolist() == ["b", "a"]
    with pytest.raises(ValueError, match="training shares"):
        B.prior_shift(P, np.array(["a", "c"]), ytr)


def test_class_recalls_by_hand_and_their_mean_is_sklearn_balanced_accuracy():
    from sklearn.metrics import balanced_accuracy_score

    y = np.array(["G0", "G0", "G1", "G1", "G1", "G3"])
    p = np.array(["G0", "G1", "G1", "G1", "G0", "G1"])
    r = B.class_recalls(y, p)
    assert r["recall_G0"] == 0.5 and r["recall_G1"] == pytest.approx(2 / 3)
    assert r["recall_G3"] == 0.0 and np.isnan(r["recall_G2"])
    assert np.nanmean(list(r.values())) == pytest.approx(balanced_accuracy_score(y, p))


def test_recall_table_counts_only_the_folds_that_hold_the_class():
    s = pd.DataFrame({"method": ["m", "m", "m"], "recall_G0": [0.2, 0.4, 0.6],
                      "recall_G1": [1.0, np.nan, np.nan], "recall_G2": [np.nan] * 3,
                      "recall_G3": [0.5, 0.5, np.nan]})
    t = B.recall_table(s).iloc[0]
    assert t["G0 recall"].startswith("0.40 [") and t["G0 recall"].endswith("(n=3)")
    assert t["G1 recall"] == "1.00 (n=1)" and t["G2 recall"] == "—"
    assert t["G3 recall"].endswith("(n=2)")


def test_motion_methods_score_leave_program_out_with_recalls(prep_motion):
    _, prep = prep_motion
    assert prep.motion.shape == (len(prep.labels), len(prep.motion_names))
    sp = B.program_splits(prep)[:2]
    r = B.run_command_task(prep, sp, methods=list(B.MOTION_METHODS), train_stride=8,
                           gbm_iter=3)
    assert set(r["method"]) == set(B.MOTION_METHODS)
    progs = prep.labels["program"].to_numpy()
    for (_, s), held in zip(sp, r.drop_duplicates("fold")["held_out"], strict=True):
        # the held-out program is the test fold's only program and absent from training
        assert held == " ".join(sorted(set(progs[s.test]))) and held not in set(progs[s.train])
    rec = r[[f"recall_{c}" for c in tokens.MOTION_CLASSES]].to_numpy()
    np.testing.assert_allclose(np.nanmean(rec, axis=1), r["command_balanced_accuracy"])


def test_motion_methods_need_motion_features(prep):
    sp = B.program_splits(prep)[:1]
    with pytest.raises(ValueError, match="motion_halves"):
        B.run_command_task(prep, sp, methods=["motion_logreg"])


def test_motion_feature_names_come_from_the_gate_only(prep_motion):
    from physml.cnc import schema

    _, prep = prep_motion
    used = {c for n in prep.motion_names
            for c in (n[4:n.index(")")].split(",") if n.startswith("rot(")
                      else [n.split(":")[0]])}
    assert used <= set(prep.feature_columns)
    assert not any(schema.is_forbidden_input(c) for c in used)


def test_physics_check_sees_the_arc_sense_in_the_controller_positions(prep_motion):
    # the positions are the leaky diagnosis: there the rotation sense must separate G3 (CCW,
    # positive) from G2 (CW); a flipped sign would give an AUC near 0
    d, prep = prep_motion
    chk = B.physics_check(d, prep)
    assert chk["signal"].iloc[0].startswith("controller positions")
    assert chk["G3_vs_G2_auc"].iloc[0] > 0.9
    assert chk["signal"].iloc[1].startswith("drive signals")
    assert len(chk) == 2 + 3 * len(B.tokens_nodes(prep.feature_columns))
