"""The source's leaky protocol (notebook 02): the one named leaky input path, the ladder's
steps, and the leak each split has."""

from __future__ import annotations

import numpy as np
import pytest

from physml.cnc import encoder_decoder as ed
from physml.cnc import features, leakage, leaky, schema, sequences, synthetic
from physml.train import TrainConfig


def test_leaky_fields_are_exactly_forbidden_controller_fields():
    assert leaky.LEAKY_FIELDS and all(schema.is_forbidden_input(f) for f in leaky.LEAKY_FIELDS)
    assert "line" in leaky.LEAKY_FIELDS and "momo" in leaky.LEAKY_FIELDS


def test_only_the_named_leaky_path_takes_controller_fields():
    data = synthetic.recordings(2)
    cols = features.model_input_columns(features.COMMON_SOURCES)
    inp = leaky.leaky_inputs(data, cols, 3)
    assert inp.columns[-len(leaky.LEAKY_FIELDS):] == list(leaky.LEAKY_FIELDS)
    np.testing.assert_array_equal(inp.values[:, cols.__len__() + list(leaky.LEAKY_FIELDS).index(
        "line")], data.rows["line"].to_numpy())
    with pytest.raises(ValueError, match="line"):
        sequences.build_inputs(data, cols + ["line"], 3)
    with pytest.raises(ValueError, match="posx"):  # a leaky model can never be saved
        ed.save_model("unused", None, inputs=inp, params={}, commit=None)


def test_leaky_path_refuses_honest_columns_as_fields():
    data = synthetic.recordings(2)
    with pytest.raises(ValueError, match="not controller fields"):
        leaky.leaky_inputs(data, ["frame_l2.Ax"], 3, fields=["frame_l2.Ay"])


def test_stratified_split_keeps_class_shares():
    y = np.repeat([0, 1, 2, 3], [400, 300, 200, 100])
    tr, te = leakage.stratified_window_split(y, 0.2, seed=0)
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == len(y)
    np.testing.assert_array_equal(np.bincount(y[te]), [80, 60, 40, 20])


def test_window_rows_are_the_last_rows_of_the_source_windows():
    data = synthetic.recordings(2)
    rows, wins = leaky.window_rows(data, 4, 2)
    np.testing.assert_array_equal(rows, wins["stop"].to_numpy() - 1)
    assert (data.rows["file"].to_numpy()[rows] == wins["file"].to_numpy()).all()


@pytest.mark.slow
def test_ladder_runs_every_step_on_paired_folds(tmp_path):
    data = synthetic.recordings(6, seed=3)
    cols = features.model_input_columns(features.COMMON_SOURCES)
    cfg = ed.EDConfig(hidden=8, d_model=8, heads=2, layers=1)
    scores, overlap = leaky.run_ladder(data, cols, 4, 1, cfg,
                                       TrainConfig(epochs=1, batch_size=64), tmp_path,
                                       random_seeds=[0, 1], seeds=[0], n_splits=2)
    assert list(dict.fromkeys(scores["step"])) == list(leaky.STEPS)
    # the source protocol's random windows nearly all share rows with training windows;
    # leave-file-out never does
    rnd = overlap[overlap["split"] == "random windows"]["shared"]
    lfo = overlap[overlap["split"] == "leave-file-out"]["shared"]
    assert (rnd > 0.9).all() and (lfo == 0).all()
    honest = scores[scores["step"] != "source_protocol"]
    keys = honest.groupby("step")[["seed", "fold"]].apply(lambda g: tuple(map(tuple, g.values)))
    assert len(set(keys)) == 1  # every step on the same seeds and folds (paired)
    for step, metric in leaky.STEP_METRIC.items():
        s = scores[scores["step"] == step]
        np.testing.assert_allclose(s["value"], s[metric])
    table = leaky.ladder_table(scores)
    assert list(table["step"]) == list(leaky.STEPS) and (table["n"] == 2).all()


def test_step_changes_by_hand():
    import pandas as pd

    recs = [{"step": "source_protocol", "seed": s, "fold": 0, "value": v}
            for s, v in enumerate([0.90, 0.92, 0.91])]
    for step, vals in (("file_split", [0.50, 0.60]), ("no_eos", [0.40, 0.45])):
        recs += [{"step": step, "seed": 0, "fold": f, "value": v} for f, v in enumerate(vals)]
    ch = leaky.step_changes(pd.DataFrame(recs)).set_index("step")
    assert ch.loc["file_split", "difference"] == pytest.approx(0.55 - 0.91)
    assert ch.loc["file_split", "comparison"].startswith("independent")
    assert ch.loc["no_eos", "difference"] == pytest.approx(-0.125)  # (-0.10 - 0.15) / 2
    assert ch.loc["no_eos", "comparison"] == "paired"


def test_ladder_scores_every_test_stride_th_window_in_every_step(tmp_path, monkeypatch):
    """``test_stride`` (the default profile's cut) reaches every model of the ladder, the
    overlap is still measured on every test window."""
    data = synthetic.recordings(4, seed=5)
    cols = features.model_input_columns(features.COMMON_SOURCES)
    seen = []
    real = ed.run_fold

    def spy(ds, train_rows, test_rows, *a, **kw):
        seen.append(kw.get("test_stride"))
        return real(ds, train_rows, test_rows, *a, **kw)

    monkeypatch.setattr(ed, "run_fold", spy)
    _, overlap = leaky.run_ladder(data, cols, 4, 1, ed.EDConfig(hidden=8, d_model=8, heads=2,
                                  layers=1), TrainConfig(epochs=1, batch_size=64), tmp_path,
                                  random_seeds=[0], seeds=[0], n_splits=2, test_stride=3)
    assert seen == [3] * (1 + 2 * 3)  # one source-protocol model, three models per fold
    assert (overlap[overlap["split"] == "leave-file-out"]["shared"] == 0).all()
