"""Data-audit helpers (notebook 01): command classes against the controller's motion mode."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from physml.cnc import audit


def test_momo_agreement_compares_moving_rows_with_a_reported_mode_by_hand():
    # momo 0..3 = G0..G3; 4 and NaN report no motion mode; "none" rows move nothing
    data = SimpleNamespace(rows=pd.DataFrame({"momo": [0.0, 1.0, 1.0, 3.0, 4.0, np.nan, 2.0,
                                                       2.0]}))
    classes = np.array(["G0", "G1", "G0", "G2", "G1", "G1", "none", "G2"], dtype=object)
    a = audit.momo_agreement(data, classes)
    assert a["n"] == 5 and a["n_differ"] == 2  # rows 2 (G0 vs G1) and 3 (G2 vs G3)
    assert a["share"] == pytest.approx(0.6)
    t = audit.command_agreement(data, classes)
    assert t.loc["G0", "G1"] == 1 and t.loc["G2", "G3"] == 1 and t.loc["G1", "momo=4"] == 1


def test_label_changes_counts_the_moving_rows_two_rules_label_differently_per_program():
    from physml.cnc.tokens import Program

    rows = pd.DataFrame({"file": ["a", "a", "a", "b", "b", "b"]})
    data = SimpleNamespace(rows=rows)
    progs = [Program("P1", {}, ("a",)), Program("P2", {}, ("b",))]
    before = np.array(["G0", "G0", "G1", "G0", "G1", "G0"], dtype=object)
    after = np.array(["G1", "G1", "G1", "G1", "none", "G0"], dtype=object)
    out = audit.label_changes(data, progs, before, after)
    assert out.to_dict() == {("P1", "G0", "G1"): 2, ("P2", "G0", "G1"): 1}  # "none" left out
    assert list(out.index.names) == ["program", "before", "after"]


def _data(files, lines, t, kinds=None):
    from physml.cnc import schema
    from physml.cnc.data import CNCData

    names = list(dict.fromkeys(files))
    rows = pd.DataFrame({"file": files, "gcode_line": lines, "t_s": t})
    for c in ("frame_l2.RMS", "x_motor"):
        rows[c] = np.arange(len(files), dtype=float)
    meta = pd.DataFrame({"file": names, "kind": kinds or ["face"] * len(names),
                         **{f"has_{s}": [i % 2 == 0 or s == "motor" for i in range(len(names))]
                            for s in schema.SOURCES}})
    return CNCData(rows, meta)


def test_rows_per_line_counts_each_visit_and_splits_at_a_file_boundary():
    d = _data(["a"] * 4 + ["b"] * 2, [1, 1, 2, 1, 1, 1], [0.0, 0.25, 0.5, 0.75, 0.0, 0.5])
    v = audit.rows_per_line(d)
    assert v[["file", "gcode_line", "rows"]].values.tolist() == [
        ["a", 1, 2], ["a", 2, 1], ["a", 1, 1], ["b", 1, 2]]  # line 1 again: a second visit
    assert v["seconds"].tolist() == [0.25, 0.0, 0.0, 0.5]


def test_sampling_per_file_in_file_order_by_hand():
    d = _data(["b"] * 3 + ["a"] * 4, [1] * 7, [0.0, 0.5, 1.0, 0.0, 0.25, 0.5, 1.5])
    s = audit.sampling(d)
    assert s["file"].tolist() == ["b", "a"]
    assert s["median_interval_s"].tolist() == [0.5, 0.25]
    assert s["rows_per_s"].tolist() == [2.0, 4.0] and s["duration_s"].tolist() == [1.0, 1.5]


def test_availability_is_the_share_of_files_per_kind_with_each_source():
    d = _data(["a", "b", "c"], [1, 1, 1], [0.0, 0.0, 0.0], kinds=["face", "face", "pocket"])
    av = audit.availability(d)
    assert av.loc["face", "frame_l2"] == 0.5 and av.loc["pocket", "frame_l2"] == 1.0
    assert av.loc["face", "motor"] == 1.0
    fig = audit.availability_figure(d)
    assert fig.data[0].showscale is False and fig.layout.yaxis.showticklabels is False


def test_signal_examples_colour_each_class_on_its_own_rows_of_the_named_file():
    d = _data(["a"] * 3 + ["b"] * 2, [1, 2, 2, 1, 1], [0.0, 0.25, 0.5, 0.0, 0.25])
    classes = np.array(["G0", "G1", "G1", "G0", "G0"], dtype=object)
    fig = audit.signal_examples(d, classes, "a", columns=("frame_l2.RMS", "x_motor"))
    g1 = [tr for tr in fig.data if tr.name == "G1"]
    assert len(g1) == 2  # one per channel
    np.testing.assert_array_equal(g1[1].y, [np.nan, 1.0, 2.0])  # x_motor of file a, G1 rows
    assert [tr.showlegend for tr in fig.data if tr.name == "G0"] == [True, False]
    assert fig.layout.height == 160 * 2 + 80
    with pytest.raises(KeyError, match="no file 'c'"):
        audit.signal_examples(d, classes, "c", columns=("x_motor",))
    with pytest.raises(ValueError, match="controller fields"):
        audit.signal_examples(d, classes, "a", columns=("posx",))
