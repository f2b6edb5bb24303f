"""Synthetic recordings (the neural models' test data): the layout and the relations they
promise, checked directly rather than through a model's score."""

from __future__ import annotations

import numpy as np

from physml.cnc import schema, synthetic
from physml.cnc.features import COMMON_SOURCES


def test_sources_are_present_as_asked_and_an_absent_one_is_nan_and_masked():
    d = synthetic.recordings(2, seed=1, extra_sources=["spindle2"],
                             absent={"face_002": ["spindle2", "motor"]})
    mask = d.mask()
    assert mask.loc["face_001", "spindle2"] and mask.loc["face_001", "motor"]
    assert not mask.loc["face_002", "spindle2"] and not mask.loc["face_002", "motor"]
    assert mask.loc["face_002", "frame_l2"]
    assert not mask.loc[:, "spindle1"].any()  # never asked for
    assert set(mask.columns[mask.loc["face_001"]]) == set(COMMON_SOURCES) | {"spindle2"}
    rows = d.rows.set_index("file")
    assert rows.loc["face_002", list(schema.source_columns("spindle2"))].isna().all().all()
    assert rows.loc["face_001", list(schema.source_columns("spindle2"))].notna().all().all()


def test_the_signal_node_carries_the_line_index_and_positions_follow_it():
    d = synthetic.recordings(1, seed=2, noise=0.01)
    r = d.rows
    index = np.array([[n for n, _ in synthetic.PROGRAM].index(x) for x in r["gcode_line"]])
    sig = r[list(schema.source_columns(synthetic.SIGNAL_NODE))].to_numpy()
    assert np.abs(sig - index[:, None]).max() < 0.1
    assert np.abs(r[list(schema.source_columns("frame_r2"))].to_numpy()).max() < 0.1  # noise
    np.testing.assert_allclose(r["posx"], index * 0.5)
    np.testing.assert_allclose(r["posy"], index * 0.25)
    np.testing.assert_allclose(r["t_s"], np.arange(len(r)) * 0.25)  # ~4 status rows a second
    texts = dict(synthetic.PROGRAM)
    assert (r["gcode_string"] == r["gcode_line"].map(texts)).all()
