"""The program-alignment hybrid (notebook 05): timelines, program choice, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from physml.cnc import data, schema, tokens
from physml.cnc import hybrid as H

#: one xdist worker runs this module, so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group("cnc_test_hybrid")

HELD_OUT = ("face_001", "pocket_001")


def test_restart_row_finds_the_stale_status_prefix():
    run = np.repeat(np.arange(16, 116), 3)  # 300 rows of the program, in order
    assert H.restart_row(np.r_[[20, 50, 81, 109, 109], run]) == 5
    # a backward jump late in the file is not the restart
    assert H.restart_row(np.r_[run, [20], run]) == 0
    assert H.restart_row(np.arange(16, 60)) == 0


def _program_rows():
    """Two files of a 4-line program: 5 in at 10 in/min = 30 s, then a 2 s line."""
    prog = [(1, "G90"), (2, "G1 X5. F10."), (3, "X5.5"), (4, "M30")]
    rows = []
    for f in ("a", "b"):
        lines = [1] * 2 + [2] * 120 + [3] * 8 + [4] * 3
        rows.append(pd.DataFrame({"file": f, "gcode_line": lines,
                                  "gcode_string": [dict(prog)[x] for x in lines],
                                  "feed": 254.0, "momo": 1.0}))
    return tokens.Program("P1", dict(prog), ("a", "b")), pd.concat(rows, ignore_index=True)


def test_kinematic_timeline_gives_each_line_its_duration_in_bins():
    prog, rows = _program_rows()
    tl = H.build_timeline(prog, rows, rapid_rate=50.0, machine_move_s=0.0, rows_per_second=4.0,
                          bins_per_row=2)
    counts = np.bincount(tl.bin_line, minlength=len(tl.lines))
    # 30 s x 4 rows/s x 2 bins/row = 240 bins; 0.5 in at 10 in/min = 3 s = 24 bins; none: 0
    assert dict(zip(tl.lines, counts, strict=True)) == {1: 0, 2: 240, 3: 24, 4: 0}
    assert tl.modes == ["none", "G1", "G1", "none"]


def test_kinematic_timeline_scales_every_duration_by_the_time_scale():
    prog, rows = _program_rows()
    tl = H.build_timeline(prog, rows, rapid_rate=50.0, machine_move_s=0.0, rows_per_second=4.0,
                          bins_per_row=2, time_scale=0.5)
    counts = np.bincount(tl.bin_line, minlength=len(tl.lines))
    assert dict(zip(tl.lines, counts, strict=True)) == {1: 0, 2: 120, 3: 12, 4: 0}


def test_time_scale_is_observed_rows_after_the_stale_head_over_kinematic_rows():
    prog, rows = _program_rows()
    # file a opens with one stale status row (line 9, then the run restarts at line 1)
    head = pd.DataFrame({"file": ["a"], "gcode_line": [9], "gcode_string": ["M5"],
                         "feed": 254.0, "momo": 1.0})
    rows = pd.concat([head, rows], ignore_index=True)
    assert H.restart_row(rows.loc[rows["file"] == "a", "gcode_line"].to_numpy()) == 1
    tl = H.build_timeline(prog, rows, rapid_rate=50.0, machine_move_s=0.0, rows_per_second=4.0,
                          bins_per_row=1)
    assert sum(tl.seconds) == pytest.approx(33.0)  # 30 s + 3 s
    # 133 rows of the run in each file, against 33 s x 4 rows/s = 132 kinematic rows each
    scale = H.fit_time_scale(rows, {"P1": tl}, {"a": "P1", "b": "P1"}, 4.0)
    assert scale == pytest.approx(266 / 264)
    still = H.Timeline("P1", tl.lines, tl.texts, tl.modes, [0.0] * len(tl.lines), tl.bin_line)
    with pytest.raises(ValueError, match="no kinematic duration"):
        H.fit_time_scale(rows, {"P1": still}, {"a": "P1", "b": "P1"}, 4.0)


def test_the_stale_head_takes_each_position_s_most_frequent_line_the_smaller_of_a_tie():
    prog, rows = _program_rows()
    head = pd.DataFrame({"file": ["a", "b"], "gcode_line": [4, 3],
                         "gcode_string": ["M30", "X5.5"], "feed": 254.0, "momo": 1.0})
    rows = pd.concat([head, rows], ignore_index=True).sort_values("file", kind="stable")
    tl = H.build_timeline(prog, rows, rapid_rate=50.0, machine_move_s=0.0, rows_per_second=4.0,
                          bins_per_row=1, durations="observed")
    assert tl.lines[0] == 3 and tl.lines[1:] == [1, 2, 3, 4]


def test_observed_timeline_uses_the_median_rows_per_line():
    prog, rows = _program_rows()
    tl = H.build_timeline(prog, rows, rapid_rate=50.0, machine_move_s=0.0, rows_per_second=4.0,
                          bins_per_row=1, durations="observed")
    counts = np.bincount(tl.bin_line, minlength=len(tl.lines))
    assert dict(zip(tl.lines, counts, strict=True)) == {1: 2, 2: 120, 3: 8, 4: 3}
    with pytest.raises(ValueError, match="durations"):
        H.build_timeline(prog, rows, rapid_rate=50.0, machine_move_s=0.0, rows_per_second=4.0,
                         bins_per_row=1, durations="psychic")


@pytest.fixture(scope="module")
def small():
    return data.first_per_kind(data.load_shipped(), 3)


@pytest.fixture(scope="module")
def fitted(small):
    train = small.rows[~small.rows["file"].isin(HELD_OUT)].reset_index(drop=True)
    test = small.rows[small.rows["file"].isin(HELD_OUT)].reset_index(drop=True)
    cfg = H.AlignmentConfig(gbm_iter=3, train_stride=8, weight=0.1, durations="observed")
    return H.AlignmentModel.fit(train, cfg), test


def test_alignment_names_the_program_and_beats_the_majority_line(fitted, small):
    model, test = fitted
    pred = model.predict_rows(test)
    truth = tokens.program_of_file(tokens.recover_programs(small.rows))
    members = model.info["programs"]
    for f, g in pred.groupby("file"):
        assert {truth[x] for x in members[g["program"].iloc[0]]} == {truth[f]}, f
    exact = float(np.mean(pred["line"].to_numpy() == test["gcode_string"].to_numpy()))
    # independent reference: the most frequent training line, the majority baseline
    train = small.rows[~small.rows["file"].isin(HELD_OUT)]
    majority = float(np.mean(test["gcode_string"] == train["gcode_string"].mode()[0]))
    assert exact > max(0.5, majority + 0.3), (exact, majority)


def test_a_recording_that_runs_its_program_twice_is_aligned_to_two_runs(fitted):
    model, test = fitted
    one = test[test["file"] == HELD_OUT[0]].reset_index(drop=True)
    X = H.features(one, model.config)
    truth = one["gcode_string"].to_numpy()
    twice, truth2 = np.vstack([X, X]), np.r_[truth, truth]
    tl = model.timelines[model.align(X)["program"]]
    m1, m2 = model.with_decoding(max_runs=1), model.with_decoding(max_runs=2)
    # the run count comes from the length: one run for the recording, two for it doubled
    assert m2.runs(tl, len(X)) == 1 and m2.runs(tl, len(twice)) == 2
    assert m1.runs(tl, len(twice)) == 1
    assert len(m2.bin_lines(tl, len(twice))) == 2 * tl.n_bins
    assert (m2.bin_lines(tl, len(twice))[tl.n_bins:] == tl.bin_line).all()
    # a recording of ordinary length is aligned exactly as before
    assert (m2.align(X)["texts"] == m1.align(X)["texts"]).all()
    acc1 = float(np.mean(m1.align(twice)["texts"] == truth2))
    acc2 = float(np.mean(m2.align(twice)["texts"] == truth2))
    acc_single = float(np.mean(m1.align(X)["texts"] == truth))
    assert acc2 > acc1 + 0.2 and acc2 > acc_single - 0.05, (acc1, acc2, acc_single)
    with pytest.raises(ValueError, match="max_runs"):
        H.AlignmentConfig(max_runs=0)


def test_the_model_reads_only_allowed_inputs(fitted):
    model, _ = fitted
    assert model.feature_columns
    assert not any(schema.is_forbidden_input(c) for c in model.feature_columns)


def test_save_and_load_give_identical_predictions(fitted, tmp_path):
    model, test = fitted
    again = H.AlignmentModel.load(model.save(tmp_path / "m"))
    a, b = model.predict_rows(test), again.predict_rows(test)
    assert a.equals(b)
    (tmp_path / "m" / "manifest.json").write_text('{"kind": "encoder_decoder"}')
    with pytest.raises(ValueError, match="alignment"):
        H.AlignmentModel.load(tmp_path / "m")


# ---------------------------------------------------------------- decoding parameters chosen
# on inner validation files (never on the fold they are scored on)

def test_best_decoding_takes_the_highest_inner_mean_and_the_first_of_a_tie():
    table = pd.DataFrame({"inner_fold": [0, 0, 0, 1, 1, 1],
                          "weight": [0.1, 0.2, 0.4] * 2,
                          "line_exact_accuracy": [0.5, 0.9, 0.7, 0.7, 0.8, 0.9]})
    # means: 0.1 -> 0.6, 0.2 -> 0.85, 0.4 -> 0.8 (a flipped argmax would pick 0.1)
    assert H.best_decoding(table, ["weight"]) == ({"weight": 0.2}, pytest.approx(0.85))
    tie = pd.DataFrame({"inner_fold": [0, 0], "pace_sigma": [0.8, 0.4], "max_advance": [4, 4],
                        "line_exact_accuracy": [0.6, 0.6]})
    assert H.best_decoding(tie, ["pace_sigma", "max_advance"])[0] == {"pace_sigma": 0.8,
                                                                       "max_advance": 4}


def test_decoding_grid_rejects_fitted_parameters_and_empty_lists():
    assert H.decoding_grid(None) == [{}]
    assert len(H.decoding_grid({"weight": [0, 1], "pace_sigma": [1, 2, 3]})) == 6
    with pytest.raises(ValueError, match="bins_per_row"):
        H.decoding_grid({"bins_per_row": [1, 2]})
    with pytest.raises(ValueError, match="pace_sigma"):
        H.decoding_grid({"pace_sigma": []})


def test_with_decoding_changes_only_the_search(fitted):
    model, _ = fitted
    m = model.with_decoding(weight=0.3, pace_sigma=2.0)
    assert (m.config.weight, m.config.pace_sigma) == (0.3, 2.0)
    assert m.classifier is model.classifier and model.config.weight == 0.1
    with pytest.raises(ValueError, match="gbm_iter"):
        model.with_decoding(gbm_iter=5)
    with pytest.raises(ValueError, match="weight"):
        model.with_decoding(weight=-1.0)


def test_a_model_without_a_sensor_part_decodes_by_the_clock_alone(fitted, small):
    model, _ = fitted
    train = small.rows[~small.rows["file"].isin(HELD_OUT)].reset_index(drop=True)
    clock = H.AlignmentModel.fit(train, H.replace(model.config, weight=0.0))
    assert clock.classifier is None
    assert clock.with_decoding(weight=0.0).config.weight == 0.0
    with pytest.raises(ValueError, match="weight > 0 needs a model fitted with a sensor"):
        clock.with_decoding(weight=0.1)
    assert np.all(clock.class_log_scores(np.zeros((4, 2))) == 0.0)


def test_a_class_the_classifier_never_saw_scores_minus_infinity(fitted):
    model, _ = fitted
    ratio = np.array([[0.5, np.nan, -1.0, 2.0, 0.0]])  # one row, a column per class
    got = model.class_log_scores(ratio=ratio)
    assert got[0, 1] == -np.inf
    keep = ~np.isnan(ratio[0])
    np.testing.assert_allclose(got[0, keep], model.config.weight * ratio[0, keep])
    # at weight 0 the sensor part is off altogether, unseen class included
    assert np.all(model.with_decoding(weight=0.0).class_log_scores(ratio=ratio) == 0.0)


def test_kinematic_timelines_are_rescaled_by_the_fitted_time_scale(small):
    train = small.rows[~small.rows["file"].isin(HELD_OUT)].reset_index(drop=True)
    cfg = H.AlignmentConfig(weight=0.0, durations="kinematic")
    model = H.AlignmentModel.fit(train, cfg)
    assert model.time_scale != 1.0  # 1.03 here: the recordings run a little slower
    programs = tokens.recover_programs(train)
    prog_of = tokens.program_of_file(programs)
    kw = dict(rapid_rate=cfg.rapid_rate, machine_move_s=cfg.machine_move_s,
              rows_per_second=cfg.rows_per_second, bins_per_row=cfg.bins_per_row)
    for p in programs:
        rows = train[train["file"].map(prog_of) == p.name]
        want = H.build_timeline(p, rows, time_scale=model.time_scale, **kw)
        assert model.timelines[p.name].bin_line == want.bin_line
        assert H.build_timeline(p, rows, **kw).n_bins < want.n_bins  # the scale shows


def test_the_first_program_wins_a_tie(fitted):
    model, _ = fitted
    tl = next(iter(model.timelines.values()))
    twins = H.replace(model, timelines={"PA": tl, "PB": tl})
    got = twins.align(ratio=np.zeros((40, len(H.CLASSES))))
    assert got["scores"]["PA"] == got["scores"]["PB"] and got["program"] == "PA"


def test_run_folds_computes_the_features_it_is_not_given(small):
    from physml import splits

    sp = splits.group_kfold(small.rows["file"].to_numpy(), 2, seed=0, what="file")[0]
    cfg = H.AlignmentConfig(gbm_iter=2, train_stride=16, weight=0.1, durations="observed")
    scores, _, _ = H.run_folds(small, [(0, sp)], {"hyb": cfg}, X=None)
    X = H.features(small.rows, cfg)
    again, _, _ = H.run_folds(small, [(0, sp)], {"hyb": cfg}, X=X)
    assert scores.equals(again)


def test_threads_give_the_same_alignment(fitted):
    model, test = fitted
    a = model.predict_rows(test)
    b = H.replace(model, config=H.replace(model.config, threads=2)).predict_rows(test)
    assert a.equals(b)


def test_selection_sees_only_the_training_files_of_each_outer_fold(small, monkeypatch):
    """The selection function is handed the outer fold's training rows only: no test-file row
    reaches it, and it chooses from its own inner table."""
    from physml import splits

    seen = []
    real = H.select_decoding

    def spy(train_rows, X_train, config, grid, n_inner, seed):
        cfg, table = real(train_rows, X_train, config, grid, n_inner, seed)
        seen.append((set(train_rows["file"]), cfg, table))
        return cfg, table

    monkeypatch.setattr(H, "select_decoding", spy)
    rows = small.rows
    outer = splits.group_kfold(rows["file"].to_numpy(), 2, seed=0, what="file")
    cfg = H.AlignmentConfig(gbm_iter=2, train_stride=16, weight=0.1, durations="observed",
                            bins_per_row=1, max_advance=2)
    grid = {"weight": [0.0, 0.1], "pace_sigma": [0.4, 1.0]}
    X = np.zeros((len(rows), 1), dtype=np.float32) + rows["row"].to_numpy()[:, None] % 7
    preds = []
    scores, _, chosen = H.run_folds(small, [(0, sp) for sp in outer], {"hyb": cfg}, X=X,
                                    grids={"hyb": grid}, n_inner=2, predictions=preds)
    assert len(seen) == len(outer) == len(chosen)
    for (files, cfg_k, table), sp, (_, row) in zip(seen, outer, chosen.iterrows(), strict=True):
        test_files = set(rows["file"].to_numpy()[sp.test])
        assert files == set(rows["file"].to_numpy()[sp.train])
        assert not files & test_files
        want, inner = H.best_decoding(table, list(grid))
        assert {k: getattr(cfg_k, k) for k in grid} == want
        assert (row["weight"], row["pace_sigma"]) == (want["weight"], want["pace_sigma"])
        assert row["inner_line_exact_accuracy"] == pytest.approx(inner)
        assert set(table["inner_fold"]) == {0, 1} and len(table) == 2 * 4
    assert set(scores["method"]) == {"hyb"}
    # the kept predictions are the scored ones: one frame per fold, every test row, and
    # their "correct" share is the fold's exact-line accuracy
    assert [len(p) for p in preds] == [len(sp.test) for sp in outer]
    for p in preds:  # each row's position in its file, from 0 up to (n - 1) / n
        for _, g in p.groupby("file"):
            np.testing.assert_allclose(g["position"], np.arange(len(g)) / len(g))
    for p, (_, sc) in zip(preds, scores.iterrows(), strict=True):
        share = float(np.mean(H.error_kind(p) == "correct"))
        assert share == pytest.approx(sc["line_exact_accuracy"])
        per_file = p.groupby("file")["program_ok"].first()
        assert sc["program_accuracy"] == pytest.approx(per_file.mean())
        # most files are aligned to their own program here (0.71 and 0.92 when written): a
        # flipped comparison in program_ok would score the wrong ones instead
        assert sc["program_accuracy"] > 0.5


def test_selection_fits_a_sensor_part_when_only_the_grid_asks_for_one(small):
    # config.weight = 0 (a clock) but the grid tries a weight > 0: the inner models must be
    # fitted with their classifier, or decoding with that weight would be refused
    rows = small.rows
    cfg = H.AlignmentConfig(gbm_iter=2, train_stride=16, weight=0.0, durations="observed",
                            bins_per_row=1, max_advance=2)
    X = np.zeros((len(rows), 1), dtype=np.float32) + rows["row"].to_numpy()[:, None] % 7
    chosen, table = H.select_decoding(rows, X, cfg, {"weight": [0.1]}, 2, 0)
    assert chosen.weight == 0.1 and len(table) == 2
    assert table["line_exact_accuracy"].between(0.05, 1.0).all()  # a share of the rows
    # and a sensor config whose grid leaves its weight alone keeps its sensor part
    chosen, _ = H.select_decoding(rows, X, H.replace(cfg, weight=0.1), {"pace_sigma": [0.5]},
                                  2, 0)
    assert (chosen.weight, chosen.pace_sigma) == (0.1, 0.5)


def test_modal_choice_is_the_most_frequent_combination():
    chosen = pd.DataFrame({"method": ["h", "h", "h", "p"], "weight": [0.1, 0.2, 0.2, 0.0],
                           "pace_sigma": [0.4, 0.8, 0.8, 0.4]})
    assert H.modal_choice(chosen, "h", ["weight", "pace_sigma"]) == {"weight": 0.2,
                                                                      "pace_sigma": 0.8}
    with pytest.raises(ValueError, match="nope"):
        H.modal_choice(chosen, "nope", ["weight"])
    assert H.modal_choice(chosen, "h", ["weight"]) == {"weight": 0.2}  # one key: a scalar
    tie = pd.DataFrame({"method": ["h", "h"], "weight": [0.3, 0.1]})
    assert H.modal_choice(tie, "h", ["weight"]) == {"weight": 0.3}  # the first chosen


def test_best_sensor_model_takes_the_most_accurate_k_and_the_smallest_of_a_tie():
    # two well-separated clusters of 30 rows in each of 6 files: every k scores 1.0
    rng = np.random.default_rng(0)
    y = np.tile(np.repeat([10, 20], 30), 6)
    X = (y[:, None] + 0.01 * rng.standard_normal((len(y), 2))).astype(np.float32)
    groups = np.repeat([f"f{i}" for i in range(6)], 60)
    k = H.best_sensor_model(X, y, groups, np.arange(len(y)), [5, 1, 3], 3, 0)
    assert k == 1
    # classes alternating along one feature: the nearest neighbour is right, 25 neighbours
    # reach across the other class's points
    pos = np.tile(np.arange(20), 6).astype(float)
    X = (pos[:, None] + 0.01 * rng.standard_normal((len(pos), 1))).astype(np.float32)
    groups = np.repeat([f"f{i}" for i in range(6)], 20)
    assert H.best_sensor_model(X, (pos % 2).astype(int), groups, np.arange(len(pos)), [25, 1],
                               3, 0) == 1


def _pred_frame():
    """Six hand-made predicted rows of one method: 2 correct, 1 in a wrong-program file,
    then off by 1, 3 and 7 line numbers in the right program."""
    return pd.DataFrame({
        "method": "m", "seed": 0, "fold": 0,
        "file": ["a", "a", "b", "a", "a", "a"],
        "position": [0.05, 0.15, 0.5, 0.95, 0.95, 0.95],
        "true_program": ["P1", "P1", "P2", "P1", "P1", "P1"],
        "program_ok": [True, True, False, True, True, True],
        "true_line": [10, 11, 5, 20, 20, 20],
        "pred_line": [10, 11, 5, 21, 23, 13],
        "true_text": ["G1 X1.", "G1 X2.", "G0 Z1.", "G1 Y1.", "G1 Y1.", "G1 Y1."],
        "pred_text": ["G1 X1.", "G1 X2.", "G1 X9.", "G1 Y2.", "G2 X1. Y1. R1.", "G1 Y3."],
        "true_mode": ["G1", "G1", None, "G1", "G1", "G1"],
        "pred_mode": ["G1", "G1", "G1", "G1", "G2", "G1"]})


def test_error_kind_names_each_outcome():
    kinds = H.error_kind(_pred_frame())
    # the wrong-program row keeps its kind even though its line number matches
    assert kinds.tolist() == ["correct", "correct", "wrong program", "line off by 1",
                              "line off by 2-4", "line off by 5 or more"]
    edges = _pred_frame().iloc[3:].assign(pred_line=[22, 24, 25])  # off by 2, 4 and 5
    assert H.error_kind(edges).tolist() == ["line off by 2-4", "line off by 2-4",
                                            "line off by 5 or more"]


def test_error_breakdown_shares_programs_positions_and_modes():
    eb = H.error_breakdown(_pred_frame())
    share = eb["kinds"]["share of rows"]
    assert share["correct"] == pytest.approx(2 / 6)
    assert share["wrong program"] == pytest.approx(1 / 6)
    assert share.sum() == pytest.approx(1.0)
    bp = eb["by_program"]
    assert bp.loc["P1", "accuracy"] == pytest.approx(2 / 5) and bp.loc["P1", "files"] == 1
    assert bp.loc["P2", "accuracy"] == 0.0 and bp.loc["P2", "wrong program"] == 1.0
    acc = eb["by_position"]["accuracy"]
    assert acc[0] == 1.0 and acc[1] == 1.0 and acc[5] == 0.0 and acc[9] == 0.0
    # wrong lines in the right program: off-by-1 and off-by-7 share G1, off-by-3 is a G2
    assert eb["same_mode"].iloc[0, 0] == pytest.approx(2 / 3)
    assert eb["same_mode"].iloc[1, 0] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="one method"):
        H.error_breakdown(pd.concat([_pred_frame(), _pred_frame().assign(method="n")]))


def test_uninformative_sensors_give_emissions_near_the_training_frequencies(small):
    """The emission is the likelihood ratio log p(c|x) - log p(c), which needs posteriors
    calibrated to the training class frequencies: on pure-noise features the classifier's mean
    posterior of each class is that class's frequency (a class-balanced fit would flatten
    every class towards 1/5 and the ratio would favour the rare classes everywhere)."""
    train = small.rows[~small.rows["file"].isin(HELD_OUT)].reset_index(drop=True)
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(len(train), 6)).astype(np.float32)
    cfg = H.AlignmentConfig(gbm_iter=3, train_stride=8, weight=0.1, durations="observed")
    model = H.AlignmentModel.fit(train, cfg, X=noise)
    proba = model.classifier.predict_proba(rng.normal(size=(4000, 6)).astype(np.float32))
    freq = {c: np.exp(model.class_log_prior[c]) for c in H.CLASSES}
    assert max(freq.values()) > 0.4  # the classes are far from balanced here
    for j, c in enumerate(str(k) for k in model.classifier.classes_):
        assert proba[:, j].mean() == pytest.approx(freq[c], abs=0.05), c


def _band_model(start_rows, end_rows):
    """A hand-made model: six lines of four rows each at two bins per row, motion classes
    G0 G1 G2 G3 G0 G1, decoded from given emission ratios (no classifier is called)."""
    modes = ["G0", "G1", "G2", "G3", "G0", "G1"]
    tl = H.Timeline("P", [1, 2, 3, 4, 5, 6], [f"L{i}" for i in range(1, 7)], modes,
                    [1.0] * 6, list(np.repeat(np.arange(6), 8)))
    cfg = H.AlignmentConfig(bins_per_row=2, max_advance=6, pace_sigma=0.5, weight=5.0,
                            start_rows=start_rows, end_rows=end_rows)
    prior = {c: np.log(0.2) for c in H.CLASSES}
    return H.AlignmentModel(cfg, {"P": tl}, object(), prior, [], 1.0)


def _ratio(modes):
    """Emission ratios (T, 5) that name each row's class clearly."""
    r = np.full((len(modes), len(H.CLASSES)), -3.0)
    r[np.arange(len(modes)), [H.CLASSES.index(m) for m in modes]] = 3.0
    return r


def test_the_start_and_end_bands_are_counted_in_rows_of_bins_per_row_bins():
    # the recording starts 1.5 lines (6 rows, 12 bins) into the program and ends 1.5 lines
    # before its end: rows of L2 (second half), L3, L4, L5 (first half)
    truth = [2] * 2 + [3] * 4 + [4] * 4 + [5] * 2
    modes = ["G1"] * 2 + ["G2"] * 4 + ["G3"] * 4 + ["G0"] * 2
    wide = _band_model(start_rows=7, end_rows=7).align(ratio=_ratio(modes))  # 14-bin bands
    assert list(wide["lines"]) == truth
    # bands of 1 row (2 bins): the path must start in L1 and end in L6, so the first and last
    # rows cannot be named right (with bands of rows / bins_per_row, 7 rows would be 4 bins)
    narrow = _band_model(start_rows=1, end_rows=1).align(ratio=_ratio(modes))
    assert narrow["lines"][0] == 1 and narrow["lines"][-1] == 6
    half = _band_model(start_rows=3, end_rows=3).align(ratio=_ratio(modes))  # 6 bins < 12
    assert half["lines"][0] == 1 and half["lines"][-1] == 6


def test_the_inner_accuracy_aligns_each_validation_file_on_its_own(small):
    """Recomputed independently of select_decoding: fit on each inner fold's training files,
    align every validation file separately (predict_rows), score exact lines over the fold."""
    from physml import splits

    rows = small.rows
    cfg = H.AlignmentConfig(gbm_iter=2, train_stride=16, weight=0.0, durations="observed",
                            bins_per_row=1, max_advance=2)
    X = np.zeros((len(rows), 1), dtype=np.float32)
    _, table = H.select_decoding(rows, X, cfg, {"pace_sigma": [0.5]}, 2, 0)
    files = rows["file"].to_numpy()
    for sp in splits.group_kfold(files, 2, seed=0, what="file"):
        tr, va = (rows.iloc[i].reset_index(drop=True) for i in (sp.train, sp.test))
        model = H.AlignmentModel.fit(tr, H.replace(cfg, pace_sigma=0.5))
        pred = model.predict_rows(va, X[sp.test])
        want = float(np.mean(pred["line"].to_numpy() == va["gcode_string"].to_numpy()))
        got = table.loc[table["inner_fold"] == sp.fold, "line_exact_accuracy"].item()
        assert got == pytest.approx(want)


def _runs_of(lengths_of_line_2):
    """One file per entry: the 4-line program of _program_rows with line 2 lasting that many
    rows (lines 1, 3, 4: 2, 5 and 3 rows)."""
    prog, _ = _program_rows()
    rows = []
    for i, n2 in enumerate(lengths_of_line_2):
        lines = [1] * 2 + [2] * n2 + [3] * 5 + [4] * 3
        rows.append(pd.DataFrame({"file": f"f{i}", "gcode_line": lines,
                                  "gcode_string": [prog.lines[x] for x in lines],
                                  "feed": 254.0, "momo": 1.0}))
    files = tuple(f"f{i}" for i in range(len(lengths_of_line_2)))
    return tokens.Program("P1", prog.lines, files), pd.concat(rows, ignore_index=True)


def test_observed_durations_keep_runs_within_25_percent_of_the_median_boundary_included():
    # runs of 100, 100, 100, 125 (exactly 25% over the median 100) and 200 rows (the program
    # run twice): the 200 is left out, the 125 kept, so line 2 lasts (3 x 90 + 115) / 4 rows
    prog, rows = _runs_of([90, 90, 90, 115, 190])
    tl = H.build_timeline(prog, rows, rapid_rate=50.0, machine_move_s=0.0, rows_per_second=4.0,
                          bins_per_row=1, durations="observed")
    counts = np.bincount(tl.bin_line, minlength=len(tl.lines))
    assert dict(zip(tl.lines, counts, strict=True)) == {1: 2, 2: 96, 3: 5, 4: 3}
    # the perfect clock of the phase check takes the same typical runs
    pc = H.phase_check(rows).iloc[0]
    assert (pc["files"], pc["run_rows"], pc["scored_rows"]) == (4, 100.0, 425)


def test_a_timeline_whose_bins_round_up_past_its_end_gives_the_last_bin_to_the_last_line():
    # line 2 lasts (91 + 92) / 2 = 91.5 rows: 101.5 rows in all, rounded to 102 bins, and the
    # last bin's centre (101.5) is not before the end of the last line
    prog, rows = _runs_of([91, 92])
    tl = H.build_timeline(prog, rows, rapid_rate=50.0, machine_move_s=0.0, rows_per_second=4.0,
                          bins_per_row=1, durations="observed")
    assert tl.n_bins == 102
    assert max(tl.bin_line) == len(tl.lines) - 1 and tl.bin_line[-1] == len(tl.lines) - 1
    counts = np.bincount(tl.bin_line, minlength=len(tl.lines))
    assert dict(zip(tl.lines, counts, strict=True)) == {1: 2, 2: 91, 3: 5, 4: 4}


def test_command_scores_read_the_aligned_modes_against_each_fold_s_labels():
    from physml.splits import Split

    labels = np.array(["G0", "G1", "none", "G1", "G3", "G1"], dtype=object)
    splits = [(0, Split(0, np.array([3, 4, 5]), np.array([0, 1, 2]), ("a",))),
              (0, Split(1, np.array([0, 1, 2]), np.array([3, 4, 5]), ("b",)))]
    preds = [pd.DataFrame({"method": "m", "seed": 0, "fold": 0,
                           "pred_mode": ["G0", "G0", "G2"]}),  # G0 right, G1 wrong, none left out
             pd.DataFrame({"method": "m", "seed": 0, "fold": 1,
                           "pred_mode": ["G1", "G3", "G3"]})]  # G1 1/2, G3 1/1
    t = H.command_scores(preds, labels, splits)
    assert t["command_balanced_accuracy"].tolist() == [0.5, 0.75]
    assert t[["seed", "fold"]].values.tolist() == [[0, 0], [0, 1]]
    with pytest.raises(ValueError, match="fold 1 has 2 predicted rows"):
        H.command_scores([preds[1].iloc[:2]], labels, splits)
    with pytest.raises(ValueError, match="fold 7 is not in the splits"):
        H.command_scores([preds[0].assign(fold=7)], labels, splits)


def test_against_neural_pairs_notebook_04s_figures_by_the_folds_held_out_files(tmp_path,
                                                                              monkeypatch):
    import json

    from physml import paths, results, scoreboard, splits

    files = np.repeat([f"f{i}" for i in range(6)], 3)
    sl = [(0, sp) for sp in splits.group_kfold(files, 3, seed=0)]
    keys = [splits.fold_key(0, sp) for _, sp in sl]
    ours_line, ours_cmd = [0.80, 0.70, 0.90], [0.60, 0.65, 0.70]
    scores = pd.DataFrame({"method": ["hyb"] * 3 + ["other"] * 3, "seed": 0,
                           "fold": [2, 0, 1] * 2,  # rows in another order than the folds
                           "line_exact_accuracy": [ours_line[2], ours_line[0], ours_line[1],
                                                   0, 0, 0],
                           "command_balanced_accuracy": [ours_cmd[2], ours_cmd[0], ours_cmd[1],
                                                         0, 0, 0]})
    ed, cnn = [0.20, 0.10, 0.30], [0.50, 0.70, 0.60]
    line_name, cmd_name = (H.NEURAL_FIGURES[m][0] for m in ("encoder_decoder", "cnn"))
    rev = zip(keys[::-1], ed[::-1], strict=True)  # stored in the opposite order
    figures = {**{f"{line_name}.{k}": {"value": v} for k, v in rev},
               **{f"{cmd_name}.{k}": {"value": v} for k, v in zip(keys, cnn, strict=True)}}
    nb = paths.notebooks_dir() / f"{H.NEURAL_REPORT}.ipynb"
    report = tmp_path / f"{H.NEURAL_REPORT}.json"
    report.parent.mkdir(parents=True)
    report.write_text(json.dumps({"status": "ok", "params": {}, "figures": figures,
                                  "inputs": scoreboard.inputs_fingerprint(nb, {})}))
    monkeypatch.setenv(results.REPORTS_ENV_VAR, str(tmp_path))
    out = H.against_neural(scores, sl, "hyb", margin=0.02)
    d = out["encoder_decoder"]["verdict"].diff
    assert d.mean == pytest.approx(np.mean(np.subtract(ours_line, ed)))
    np.testing.assert_allclose(d.samples, np.subtract(ours_line, ed))  # fold by fold
    assert out["encoder_decoder"]["neural"].mean == pytest.approx(0.2)
    assert out["encoder_decoder"]["verdict"].outcome == "a" and out["encoder_decoder"]["at_least"]
    # the CNN beats the hybrid on one fold: not separated, not equivalent
    assert out["cnn"]["verdict"].outcome == "inconclusive" and not out["cnn"]["at_least"]
    below = scores.copy()  # 0.05, 0.06, 0.04 below the encoder-decoder on folds 0, 1, 2
    below.loc[below["method"] == "hyb", "line_exact_accuracy"] = [0.26, 0.15, 0.04]
    worse = H.against_neural(below, sl, "hyb", margin=0.02)
    assert worse["encoder_decoder"]["verdict"].outcome == "b"
    assert not worse["encoder_decoder"]["at_least"]
    np.testing.assert_allclose(out["cnn"]["verdict"].diff.samples, np.subtract(ours_cmd, cnn))
    other = [(1, sp) for _, sp in sl]  # another seed: other folds, nothing to pair
    with pytest.raises(LookupError, match="other folds"):
        H.against_neural(scores.assign(seed=1), other, "hyb", margin=0.02)
