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
    scores, _, chosen = H.run_folds(small, [(0, sp) for sp in outer], {"hyb": cfg}, X=X,
                                    grids={"hyb": grid}, n_inner=2)
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


def test_modal_choice_is_the_most_frequent_combination():
    chosen = pd.DataFrame({"method": ["h", "h", "h", "p"], "weight": [0.1, 0.2, 0.2, 0.0],
                           "pace_sigma": [0.4, 0.8, 0.8, 0.4]})
    assert H.modal_choice(chosen, "h", ["weight", "pace_sigma"]) == {"weight": 0.2,
                                                                      "pace_sigma": 0.8}
    with pytest.raises(ValueError, match="nope"):
        H.modal_choice(chosen, "nope", ["weight"])
