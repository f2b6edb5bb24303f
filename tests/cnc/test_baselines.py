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
    # a longer program: every row position looked up in order, past the end the last one
    train = pd.DataFrame({"program": ["A"] * 5, "row": [0, 1, 2, 3, 4]})
    y = np.array([f"r{i}" for i in range(5)], dtype=object)
    test = pd.DataFrame({"program": ["A"] * 7, "row": [3, 0, 4, 1, 2, 9, 6]})
    assert B.clock_predict(train, test, y, key="program").tolist() == [
        "r3", "r0", "r4", "r1", "r2", "r4", "r4"]
    # a tie between two labels goes to the smaller one, whatever their order in training
    for labels in (["G2", "G1"], ["G1", "G2"]):
        tie = pd.DataFrame({"program": ["A", "A"], "row": [0, 0]})
        out = B.clock_predict(tie, tie.iloc[:1], np.array(labels, dtype=object), key="program")
        assert out.tolist() == ["G1"]


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
    assert t["G3 recall"].startswith("0.50 [") and t["G3 recall"].endswith("(n=2)")  # an interval


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
    # a rapid is mostly a z move or a wait: 61% of G0 rows here do not move in the plane
    # (1.4% of G1 rows), yet the planar rapids are fast, so the window activity barely ranks
    # the two (AUC near 0.5 on the positions themselves)
    assert 0.4 < chk["G0_vs_G1_auc"].iloc[0] < 0.65
    shares = B.axis_motion_shares(d, prep).set_index("command")
    # with P2's unreported G0 -> G1 switch labelled from the text alone, 3,584 cutting rows
    # were "G0" and G0's still-in-plane share fell under a third
    assert shares.loc["G0", "still_in_plane"] > 0.5 > 0.05 > shares.loc["G1", "still_in_plane"]
    assert len(chk) == 2 + 3 * len(B.tokens_nodes(prep.feature_columns))


def test_nn1_standardises_on_the_training_rows_by_default():
    # column 0 spans 400 units, column 1 spans 1: the raw distance sees only column 0
    # (a is 100 away, b 300); standardised, (100, 1) is (-0.5, 1): 2.06 from a, 1.5 from b
    Xtr = np.array([[0.0, 0.0], [400.0, 1.0]])
    ytr = np.array(["a", "b"])
    Xte = np.array([[100.0, 1.0]])
    assert B.nn1_predict(Xtr, ytr, Xte, standardise=False).tolist() == ["a"]
    assert B.nn1_predict(Xtr, ytr, Xte).tolist() == ["b"]
    for bad in ((np.nan, Xte), (0.0, np.array([[np.nan, 1.0]]))):
        xtr = Xtr.copy()
        xtr[0, 0] = bad[0]
        with pytest.raises(ValueError, match="1-NN features contain NaN"):
            B.nn1_predict(xtr, ytr, bad[1], standardise=False)


def test_the_scaler_uses_training_statistics_and_leaves_constant_columns_unscaled():
    Xtr = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, 6.0]])
    Xte = np.array([[2.0, 7.0, 10.0]])
    a, b = B._standardise(Xtr, Xte)
    np.testing.assert_allclose(a, [[-1.0, 0.0, -1.0], [1.0, 0.0, 1.0]])
    np.testing.assert_allclose(b, [[0.0, 2.0, 3.0]])  # constant column: centred, not scaled


def test_classifiers_weight_classes_by_default():
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = np.array(["a"] * 30 + ["b"] * 10)
    assert B.fit_classifier("logreg", X, y, 0)[-1].class_weight == "balanced"
    assert B.fit_classifier("gbm", X, y, 0, gbm_iter=2).class_weight == "balanced"
    # no early stopping (it would hold out a tenth of the training rows): on labels that are
    # noise an early-stopped fit stops after ~15 of 50 iterations, this one runs all 50
    noise = np.random.default_rng(1).integers(0, 2, 200)
    X200 = np.random.default_rng(0).normal(size=(200, 3))
    assert B.fit_classifier("gbm", X200, noise, 0, gbm_iter=50).n_iter_ == 50
    assert B.fit_classifier("gbm", X, y, 0, gbm_iter=2, balanced=False).class_weight is None


def test_train_stride_thins_only_the_fitted_methods(prep):
    sp = B.program_splits(prep)[0][1]
    for m in ("majority", "clock"):
        np.testing.assert_array_equal(
            B.predict(m, prep, sp.train, sp.test, "command", 0, train_stride=50,
                      clock_key="operation"),
            B.predict(m, prep, sp.train, sp.test, "command", 0, clock_key="operation"))
    thin = sp.train[::50]
    np.testing.assert_array_equal(
        B.predict("nn1", prep, sp.train, sp.test, "command", 0, train_stride=50),
        B.nn1_predict(prep.X[thin], prep.labels["command"].to_numpy()[thin], prep.X[sp.test]))


def test_motion_logreg_is_logistic_regression_and_motion_gbm_the_prior_shift_rule(prep_motion):
    _, prep = prep_motion
    sp = B.program_splits(prep)[0][1]
    tr, te = sp.train[::8], sp.test
    y = prep.labels["command"].to_numpy()
    M = prep.motion
    np.testing.assert_array_equal(
        B.predict("motion_logreg", prep, sp.train, te, "command", 0, train_stride=8),
        B.classifier_predict("logreg", M[tr], y[tr], M[te], 0))
    np.testing.assert_array_equal(
        B.predict("motion_gbm", prep, sp.train, te, "command", 0, train_stride=8, gbm_iter=3),
        B.prior_shift_gbm_predict(M[tr], y[tr], M[te], 0, gbm_iter=3))


def test_by_method_names_a_missing_column():
    s = pd.DataFrame({"method": ["b", "a", "a"], "acc": [0.3, 0.1, 0.2]})
    got = B.by_method(s, "acc")
    assert list(got) == ["b", "a"]  # methods in the order the scores list them
    assert {k: v.tolist() for k, v in got.items()} == {"a": [0.1, 0.2], "b": [0.3]}
    for metric, by in (("f1", "method"), ("acc", "model")):
        with pytest.raises(KeyError, match="scores lack column"):
            B.by_method(s, metric, by)


def test_file_task_scores_each_method_on_held_out_files():
    n = 12
    lab = pd.DataFrame({"file": [f"f{i}" for i in range(n)],
                        "kind": ["a", "b"] * (n // 2),
                        "n_rows": [100 + i if i % 2 == 0 else 300 + i for i in range(n)]})
    F = np.random.default_rng(0).normal(size=(n, 4))
    r = B.run_file_task(lab, F, "kind", 3, seeds=[0, 1], methods=["majority", "duration"])
    assert len(r) == 2 * 3 * 2 and set(r["target"]) == {"kind"}
    acc = B.by_method(r, "balanced_accuracy")
    np.testing.assert_allclose(acc["duration"], 1.0)  # the length separates the kinds
    np.testing.assert_allclose(acc["majority"], 0.5)  # one class predicted, two present
    # a subset keeps only its files: with only kind a, any rule is right
    only_a = (lab["kind"] == "a").to_numpy()
    r_a = B.run_file_task(lab, F, "kind", 3, seeds=[0], methods=["majority"], subset=only_a)
    np.testing.assert_allclose(r_a["balanced_accuracy"], 1.0)
    with pytest.raises(ValueError, match="unknown file method 'knn'"):
        B.run_file_task(lab, F, "kind", 3, seeds=[0], methods=["knn"])


def test_file_table_has_one_row_per_file_with_its_program_and_length(prep_motion):
    d, _ = prep_motion
    lab, F = B.file_table(d)
    assert len(lab) == len(d.files) and set(lab["file"]) == set(d.files["file"])
    assert F.shape[0] == len(lab) and np.isfinite(F).all()
    rows = d.rows.groupby("file").size()
    assert (lab.set_index("file")["n_rows"] == rows.loc[lab["file"]]).all()


def test_physics_check_needs_both_class_groups(prep_motion):
    import dataclasses

    d, prep = prep_motion
    for only in ("G1", "G2"):
        p = dataclasses.replace(prep, labels=prep.labels.assign(command=only))
        with pytest.raises(ValueError, match="needs rows of G0, G1 and of G2 or G3"):
            B.physics_check(d, p)


def test_token_accuracy_per_type_by_hand():
    true = ["G1 X1. Y2.", "X3.", "G1 Z0.6"]
    pred = ["G1 X1. Y3.", "X3.", "G0 Z0.6"]
    s = B.score_lines(pred, true)
    # tokens G1|X|1.|Y|2., X|3., G1|Z|0.6: commands 1 of 2 right, axes 4 of 4, values 3 of 4
    assert s["token_accuracy"] == pytest.approx(8 / 10)
    assert s["token_accuracy_command"] == 0.5 and s["token_accuracy_axis"] == 1.0
    assert s["token_accuracy_value"] == 0.75 and s["line_exact_accuracy"] == pytest.approx(1 / 3)
    assert np.isnan(B.score_lines(["X3."], ["X3."])["token_accuracy_command"])  # none to score


def test_per_fold_orders_one_methods_scores_by_seed_and_fold():
    s = pd.DataFrame({"method": ["a", "b", "a", "a"], "seed": [1, 0, 0, 0],
                      "fold": [0, 0, 1, 0], "acc": [0.4, 0.9, 0.2, 0.1]})
    assert B.per_fold(s, "acc", "a").tolist() == [0.1, 0.2, 0.4]
    with pytest.raises(KeyError, match="no scores for method 'c'"):
        B.per_fold(s, "acc", "c")


def test_prior_shift_gbm_is_an_unweighted_fit_divided_by_the_training_shares():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2))
    y = np.where(X[:, 0] + 0.8 * rng.normal(size=120) > 0.9, "b", "a")  # b is the rare class
    Xte = rng.normal(size=(60, 2))
    clf = B.fit_classifier("gbm", X, y, 0, gbm_iter=20, balanced=False)
    want = B.prior_shift(clf.predict_proba(Xte), clf.classes_, y)
    np.testing.assert_array_equal(B.prior_shift_gbm_predict(X, y, Xte, 0, gbm_iter=20), want)
    weighted = B.fit_classifier("gbm", X, y, 0, gbm_iter=20)
    assert not np.array_equal(B.prior_shift(weighted.predict_proba(Xte), clf.classes_, y), want)


def test_the_leaky_kinematics_reference_is_1nn_on_raw_positions(prep):
    sp = B.program_splits(prep)[0][1]
    y = prep.labels["command"].to_numpy()
    tr = sp.train[::20]
    np.testing.assert_array_equal(
        B.predict("kinematics_leaky", prep, sp.train, sp.test, "command", 0, train_stride=20),
        B.nn1_predict(prep.kinematics[tr], y[tr], prep.kinematics[sp.test], standardise=False))


@pytest.mark.filterwarnings("error")  # no median of an empty selection
def test_axis_motion_shares_by_hand():
    from types import SimpleNamespace

    # file a: still, +x, +z, +z; file b starts where a ended (no step across files), then +y
    # and a still row
    rows = pd.DataFrame({"file": ["a"] * 4 + ["b"] * 3,
                         "posx": [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
                         "posy": [0.0, 0.0, 0.0, 0.0, 5.0, 6.0, 6.0],
                         "posz": [0.0, 0.0, 1.0, 2.0, 9.0, 9.0, 9.0]})
    labels = pd.DataFrame({"command": ["G1", "G1", "G0", "G0", "G0", "G1", "G1"]})
    t = B.axis_motion_shares(SimpleNamespace(rows=rows), SimpleNamespace(labels=labels))
    t = t.set_index("command")
    assert t.index.tolist() == ["G0", "G1"] and t["n"].tolist() == [3, 4]
    assert t.loc["G0", "moves_z"] == pytest.approx(2 / 3)  # b's first row does not move
    assert t.loc["G0", "still_in_plane"] == 1.0
    assert t.loc["G1", "moves_z"] == 0.0 and t.loc["G1", "still_in_plane"] == 0.5
    assert t["median_planar_step"].tolist() == [0.0, 0.5]  # G0: 0, 0, 0; G1: 0, 1, 1, 0
    # over the rows that moved in the plane: G0 none, G1 steps 1 and 1
    assert np.isnan(t.loc["G0", "median_moving_planar_step"])
    assert t.loc["G1", "median_moving_planar_step"] == 1.0


def test_separability_sees_the_distinction_the_features_carry_and_no_other(monkeypatch):
    from types import SimpleNamespace

    # three programs; feature 0 marks G0 (plus noise), feature 1 is noise: G0 vs G1 is
    # separable, arcs vs G1 and the arc sense are not; program C has no G2 row
    rng = np.random.default_rng(0)
    cmd, prog = [], []
    for p, classes in (("A", "G0 G1 G2 G3"), ("B", "G0 G1 G2 G3"), ("C", "G0 G1 G3")):
        for c in classes.split():
            cmd += [c] * 150
            prog += [p] * 150
    cmd = np.array(cmd, dtype=object)
    M = np.c_[(cmd == "G0") + 0.3 * rng.normal(size=len(cmd)), rng.normal(size=len(cmd))]
    prep = SimpleNamespace(labels=pd.DataFrame({"command": cmd, "program": prog}),
                           motion=M.astype(np.float32))
    fits, real = [], B.fit_classifier

    def spy(*args, **kwargs):
        fits.append(kwargs.get("balanced"))
        return real(*args, **kwargs)

    monkeypatch.setattr(B, "fit_classifier", spy)
    t = B.separability(prep, B.program_splits(prep), train_stride=1, gbm_iter=20)
    assert fits == [False] * 3  # one fit per fold, no class weights (as documented)
    auc = t.set_index(["held_out", "pair"])["auc"]
    assert (auc.xs("G0 vs G1", level="pair") > 0.95).all()  # a swapped pair gives ~0
    assert auc.xs("arc vs G1", level="pair").between(0.3, 0.7).all()
    assert auc[("A", "G3 vs G2")] == pytest.approx(0.5, abs=0.2)
    assert np.isnan(auc[("C", "G3 vs G2")])  # C has no G2 row
    assert t.loc[(t["held_out"] == "A") & (t["pair"] == "arc vs G1"), "n_pos"].item() == 300
    with pytest.raises(ValueError, match="motion"):
        B.separability(SimpleNamespace(labels=prep.labels, motion=None), [])


def test_bound_if_indistinguishable_by_hand():
    from physml.splits import Split

    labels = pd.DataFrame({"command": ["G0", "G1", "G2", "G3", "none",  # fold 0: 4 classes
                                       "G0", "G1", "G3", "G1"]})  # fold 1: 3 classes
    splits = [(0, Split(0, np.arange(5, 9), np.arange(0, 5), ("a",))),
              (0, Split(1, np.arange(0, 5), np.arange(5, 9), ("b",)))]
    bound, ks = B.bound_if_indistinguishable(labels, splits)
    assert ks == [4, 3]
    assert bound == pytest.approx(((1 + 1) / 4 + (1 + 1) / 3) / 2)  # 0.583
    # with nothing alike, every class can be perfect
    assert B.bound_if_indistinguishable(labels, splits, alike=())[0] == 1.0
    with pytest.raises(ValueError, match="fold 0 has no moving row"):
        B.bound_if_indistinguishable(pd.DataFrame({"command": ["none"] * 9}), splits)

