"""The model-input gate (no controller field is ever a model input, issue 11), file blocks,
per-file standardisation and trailing-window statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from physml.cnc import baselines, features, schema

CONTROLLER = ["line", "posx", "posy", "posz", "mpox", "mpoy", "mpoz", "feed", "dist", "momo",
              "stat", "raw_json", "coor", "unit", "vel", "plane", "t_console",
              "gcode_line", "gcode_string"]


@pytest.mark.parametrize("col", CONTROLLER)
def test_every_controller_field_is_forbidden(col):
    assert schema.is_forbidden_input(col)
    assert col not in schema.INPUT_COLUMNS


def test_allowed_inputs_are_node_channels_and_motor_signals_only():
    assert len(schema.INPUT_COLUMNS) == 16 * 17 + 8
    assert not any(schema.is_forbidden_input(c) for c in schema.INPUT_COLUMNS)


@pytest.mark.parametrize("sources", [features.COMMON_SOURCES, schema.SOURCES, ("spindle2",)])
@pytest.mark.parametrize("drop", [(), ("accelerometer",), ("motor", "rms")])
def test_every_feature_list_is_free_of_controller_fields(sources, drop):
    cols = features.model_input_columns(sources, drop)
    assert cols and not any(schema.is_forbidden_input(c) for c in cols)
    assert not set(cols) & set(CONTROLLER)
    if "accelerometer" in drop:
        assert not any(c.endswith((".Ax", ".Ay", ".Az")) for c in cols)
    if "motor" in drop:
        assert not set(cols) & set(schema.MOTOR_SIGNALS + schema.MOTOR_CURRENTS)


def test_window_features_refuse_controller_columns():
    rows = pd.DataFrame({"file": ["a"] * 3, "posx": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="posx"):
        features.window_features(rows, ["posx"], 2)


def test_window_statistics_are_trailing_and_per_file():
    rows = pd.DataFrame({"file": ["a"] * 4 + ["b"] * 2,
                         "frame_l2.RMS": [1.0, 2.0, 3.0, 4.0, 10.0, 20.0]})
    X, names = features.window_features(rows, ["frame_l2.RMS"], 2, stats=("mean", "max"))
    assert names == ["frame_l2.RMS:mean", "frame_l2.RMS:max"]
    # file b's first row must not see file a's last row
    np.testing.assert_allclose(X[:, 0], [1.0, 1.5, 2.5, 3.5, 10.0, 15.0])
    np.testing.assert_allclose(X[:, 1], [1.0, 2.0, 3.0, 4.0, 10.0, 20.0])


def test_window_std_matches_pandas_rolling():
    rng = np.random.default_rng(0)
    v = rng.normal(size=50)
    rows = pd.DataFrame({"file": ["a"] * 50, "frame_r2.Gx": v})
    X, _ = features.window_features(rows, ["frame_r2.Gx"], 5, stats=("std",))
    ref = pd.Series(v).rolling(5, min_periods=1).std(ddof=0).to_numpy()
    np.testing.assert_allclose(X[:, 0], ref, rtol=1e-5, atol=1e-6)


def test_baseline_feature_columns_pass_the_gate():
    # the columns every fitted baseline uses come from the gate (KINEMATIC_COLUMNS are only
    # used by the method labelled leaky, and are forbidden by the gate)
    assert all(schema.is_forbidden_input(c) for c in baselines.KINEMATIC_COLUMNS)
    assert baselines.LEAKY_METHODS == {"kinematics_leaky"}


def test_check_inputs_refuses_controller_fields_and_unknown_columns_each_alone():
    features.check_inputs(["frame_l2.Ax", "x_motor"])
    for bad in ("line", "posx", "feed", "momo", "not_a_column"):
        with pytest.raises(ValueError, match=bad):
            features.check_inputs(["frame_l2.Ax", bad])


def test_file_bounds_of_contiguous_files():
    files = np.array(["a", "a", "a", "a", "b", "c", "c"])
    assert features.file_bounds(files) == [(0, 4), (4, 5), (5, 7)]
    assert features.file_bounds(np.array([])) == []
    with pytest.raises(ValueError, match="contiguous"):
        features.file_bounds(np.array(["a", "b", "a"]))


def test_per_file_standardise_matches_a_pandas_groupby_and_keeps_nan():
    rng = np.random.default_rng(0)
    files = np.repeat(["a", "b", "c"], [5, 7, 4])
    v = rng.normal([3.0, -2.0, 10.0], [1.0, 5.0, 0.1], (16, 3))
    v[files == "b", 1] = np.nan  # a source absent from file b
    v[files == "c", 2] = 4.0  # constant within file c
    v[2, 0] = np.nan  # one missing reading
    got = features.per_file_standardise(v, files)
    df = pd.DataFrame(v).assign(f=files)
    want = df.groupby("f").transform(lambda s: (s - s.mean()) / s.std(ddof=0)).to_numpy()
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=1e-12)
    assert np.isnan(got[files == "b", 1]).all() and np.isnan(got[2, 0])
    np.testing.assert_array_equal(got[files == "c", 2], 0.0)  # constant → 0, not NaN or inf
    assert np.isfinite(v[0, 0]) and v[0, 0] != got[0, 0]  # the input is not modified


def test_window_features_standardise_per_file_and_refuse_unknown_columns_and_windows():
    rows = pd.DataFrame({"file": ["a"] * 3 + ["b"] * 2,
                         "frame_l2.RMS": [1.0, 2.0, 3.0, 10.0, 30.0]})
    X, _ = features.window_features(rows, ["frame_l2.RMS"], 1, stats=("mean",),
                                    per_file="standardise")  # a one-row window is allowed
    np.testing.assert_allclose(X[:, 0], [-np.sqrt(1.5), 0.0, np.sqrt(1.5), -1.0, 1.0], rtol=1e-6)
    with pytest.raises(ValueError, match="banana"):  # not forbidden, but no input either
        features.window_features(rows.assign(banana=1.0), ["banana"], 2)
    with pytest.raises(ValueError, match="window"):
        features.window_features(rows, ["frame_l2.RMS"], 0)


def test_file_features_keep_the_files_in_data_order():
    rows = pd.DataFrame({"file": ["b", "b", "a"], "x_motor": [1.0, 3.0, 5.0]})
    F, names = features.file_features(rows, ["x_motor"])
    assert list(F.index) == ["b", "a"] and names == ["x_motor:mean", "x_motor:std"]
    assert F.loc["b", "x_motor:mean"] == 2.0


@pytest.mark.parametrize("col", ["gcode_line", "posx", "banana"])
def test_file_features_pass_the_input_gate(col):
    rows = pd.DataFrame({"file": ["a", "a"], "x_motor": [1.0, 3.0], col: [0.0, 1.0]})
    with pytest.raises(ValueError, match=col):
        features.file_features(rows, ["x_motor", col])
