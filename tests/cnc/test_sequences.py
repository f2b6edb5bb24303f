"""physml.cnc.sequences' row-level pieces against pandas and brute force, without the data set."""

import numpy as np
import pandas as pd
import pytest
import torch

from physml.cnc import sequences, tokens


def test_the_trailing_window_never_crosses_files():
    files = np.array(["a", "a", "a", "a", "b", "c", "c"])
    idx = sequences.window_index(files, 3)
    for i in range(len(files)):  # brute force: i-2, i-1, i, clamped to the file's first row
        first = int(np.flatnonzero(files == files[i])[0])
        assert idx[i].tolist() == [max(j, first) for j in (i - 2, i - 1, i)], i
    assert sequences.window_index(files, 1).ravel().tolist() == list(range(7))
    with pytest.raises(ValueError, match="window"):
        sequences.window_index(files, 0)


def test_scaler_fits_training_rows_ignoring_absent_readings():
    v = np.array([[1.0, 5.0, np.nan], [3.0, 5.0, 2.0], [5.0, 5.0, 4.0]])
    sc = sequences.Scaler.fit(v, ["x", "y", "z"])
    np.testing.assert_allclose(sc.mean, [3.0, 5.0, 3.0])
    np.testing.assert_allclose(sc.std, [np.sqrt(8 / 3), 1.0, 1.0])  # constant column: 1
    out = sc.transform(np.array([[3.0, 6.0, np.nan], [5.0, 5.0, 5.0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[1], [2 / np.sqrt(8 / 3), 0.0, 2.0], rtol=1e-6)
    assert out[0, 1] == 1.0 and np.isnan(out[0, 2])
    back = sequences.Scaler.from_dict(sc.to_dict())
    assert back.columns == ("x", "y", "z") and np.array_equal(back.std, sc.std)
    with pytest.raises(ValueError, match=r"\['z'\]"):  # named: no training value at all
        sequences.Scaler.fit(np.array([[1.0, 2.0, np.nan]]), ["x", "y", "z"])
    with pytest.raises(ValueError, match="3 columns"):
        sc.transform(np.ones((2, 2)))
    with pytest.raises(ValueError, match="2 columns"):
        sequences.Scaler.fit(np.ones((2, 3)), ["x", "y"])


def test_inputs_table_zeroes_absent_readings_and_appends_the_source_mask():
    files = np.array(["a", "a", "b"])
    values = np.array([[1.0, 2.0], [3.0, 4.0], [np.nan, 6.0]])
    present = np.array([[1, 1], [1, 1], [0, 1]], np.float32)
    inp = sequences.Inputs(["frame_l2.Ax", "x_motor"], ["frame_l2", "motor"], values, present,
                           files, sequences.window_index(files, 2), "none")
    sc = sequences.Scaler(("frame_l2.Ax", "x_motor"), np.array([2.0, 4.0]), np.array([1.0, 2.0]))
    t = inp.table(sc)
    assert inp.n_features == 4 and t.dtype == torch.float32
    np.testing.assert_allclose(t.numpy(), [[-1, -1, 1, 1], [1, 0, 1, 1], [0, 1, 0, 1]])
    w = inp.windows(sc, np.array([1, 2]))
    assert w.shape == (2, 2, 4)
    np.testing.assert_array_equal(w[0].numpy(), t[[0, 1]].numpy())  # rows 0, 1 of file a
    np.testing.assert_array_equal(w[1].numpy(), t[[2, 2]].numpy())  # b's first row repeated


def test_sources_keep_schema_order():
    assert sequences.sources_of(["x_motor", "frame_r2.Ax", "frame_l2.Ay", "y_motor"]) == \
        ["frame_l2", "frame_r2", "motor"]


def test_inner_validation_splits_whole_files_or_random_rows():
    files = np.repeat([f"f{i}" for i in range(6)], 10)
    rows = np.arange(5, 60)  # training rows of some outer fold
    fit, val = sequences.inner_validation(files, rows, 3, seed=1)
    assert sorted(np.r_[fit, val].tolist()) == rows.tolist()
    assert not set(files[fit]) & set(files[val]) and set(files[val])  # no file on both sides
    again = sequences.inner_validation(files, rows, 3, seed=1)
    assert np.array_equal(again[1], val)  # seeded
    fit_r, val_r = sequences.inner_validation(files, rows, 5, seed=1, how="random")
    assert len(val_r) == 55 // 5 and sorted(np.r_[fit_r, val_r].tolist()) == rows.tolist()
    assert np.all(np.diff(val_r) > 0) and np.all(np.diff(fit_r) > 0)
    with pytest.raises(ValueError, match="2 training files"):
        sequences.inner_validation(files, np.arange(10), 3, seed=0)
    with pytest.raises(ValueError, match="'file' or 'random'"):
        sequences.inner_validation(files, rows, 3, seed=0, how="program")


def test_encode_lines_encodes_each_line_as_the_vocabulary_does():
    lines = ["G1 X1.5 Y2", "G0 Z5", "G1 X1.5 Y2", "G2 X0 Y0 I1 J0"]
    vocab = tokens.Vocabulary.build(lines)
    enc = sequences.encode_lines(vocab, lines, 12)
    assert enc.shape == (4, 12) and enc.dtype == np.int64
    for row, line in zip(enc, lines, strict=True):
        np.testing.assert_array_equal(row, vocab.encode(line, 12))
    assert sequences.encode_lines(vocab, [], 12).shape == (0, 12)


def _two_files(n=6):
    """Files a (every source) and b (frame_l2 absent, though its cells hold numbers); lines
    G0 then G1 then a line that moves nothing."""
    from physml.cnc import schema
    from physml.cnc.data import CNCData

    line = np.tile(np.repeat([10, 11, 12], [2, 2, n - 4]), 2)
    text = {10: "G0 X1.", 11: "G1 X2. F10.", 12: "M5"}
    rows = pd.DataFrame({"file": np.repeat(["a", "b"], n), "row": np.tile(np.arange(n), 2),
                         "gcode_line": line, "gcode_string": [text[x] for x in line],
                         "momo": np.where(line == 10, 0.0, 1.0),
                         "frame_l2.Ax": np.r_[np.arange(n) + 1.0, np.full(n, 7.0)],
                         "x_motor": np.r_[np.full(n, 3.0), np.arange(n) * 2.0]})
    files = pd.DataFrame({"file": ["a", "b"], **{f"has_{s}": [True, s != "frame_l2"]
                                                  for s in schema.SOURCES}})
    return CNCData(rows, files)


def test_build_inputs_masks_an_absent_source_by_the_file_mask_never_by_its_values():
    d = _two_files()
    before = d.rows.copy()
    inp = sequences.build_inputs(d, ["frame_l2.Ax", "x_motor"], window=2, per_file="none")
    assert inp.sources == ["frame_l2", "motor"]
    np.testing.assert_array_equal(inp.present, np.repeat([[1, 1], [0, 1]], 6, axis=0))
    np.testing.assert_array_equal(inp.values[:6, 0], np.arange(6) + 1.0)  # a: kept
    assert np.isnan(inp.values[6:, 0]).all()  # b: its 7.0s are not readings
    np.testing.assert_array_equal(inp.values[6:, 1], np.arange(6) * 2.0)
    pd.testing.assert_frame_equal(d.rows, before)  # the data's own rows are left alone
    std = sequences.build_inputs(d, ["frame_l2.Ax", "x_motor"], window=2)  # per file
    np.testing.assert_allclose(std.values[6:, 1], (np.arange(6) - 2.5) / np.arange(6).std())
    assert np.isnan(std.values[6:, 0]).all()
    with pytest.raises(ValueError, match="per_file"):
        sequences.build_inputs(d, ["x_motor"], window=2, per_file="global")


def test_build_targets_gives_no_class_to_lines_that_move_nothing_and_keeps_given_programs():
    d = _two_files()
    assert sequences.NO_CLASS not in range(len(sequences.CLASSES))
    t = sequences.build_targets(d)
    G0, G1 = sequences.CLASSES.index("G0"), sequences.CLASSES.index("G1")
    np.testing.assert_array_equal(t.command[:6], [G0, G0, G1, G1, sequences.NO_CLASS,
                                                  sequences.NO_CLASS])
    renamed = [tokens.Program("PX", p.lines, p.files) for p in t.programs]
    assert set(sequences.build_targets(d, renamed).program) == {"PX"}


def test_inner_validation_takes_two_files_and_the_scaler_shortens_a_long_list():
    files = np.repeat(["f0", "f1"], 5)
    fit, val = sequences.inner_validation(files, np.arange(10), 5, seed=0)
    assert set(files[fit]) and set(files[val]) and not set(files[fit]) & set(files[val])
    cols = [f"c{i}" for i in range(7)]
    with pytest.raises(ValueError, match=r"\['c1', 'c2', 'c3', 'c4', 'c5'\]\.\.\. have"):
        sequences.Scaler.fit(np.c_[np.ones((2, 1)), np.full((2, 6), np.nan)], cols)
    with pytest.raises(ValueError, match=r"\['c1', 'c2', 'c3', 'c4', 'c5'\] have"):  # five: all
        sequences.Scaler.fit(np.c_[np.ones((2, 1)), np.full((2, 5), np.nan)], cols[:6])
