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
