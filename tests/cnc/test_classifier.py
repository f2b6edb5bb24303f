"""The 1-D CNN command classifier: class weights by hand, the NaN guard, learning a known
relation on held-out files, and its feature list passing the input gate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from physml import splits
from physml.cnc import classifier, features, schema, sequences, synthetic
from physml.train import NonFiniteLossError, TrainConfig


def test_class_weights_by_hand():
    y = np.array([0, 0, 0, 1, sequences.NO_CLASS, 3])
    # n = 5 counted rows, 3 classes present: weight = 5 / (3 * count); class 2 absent -> 0
    np.testing.assert_allclose(classifier.class_weights(y).numpy(),
                               [5 / 9, 5 / 3, 0.0, 5 / 3], rtol=1e-6)


def test_output_shape():
    m = classifier.CommandCNN(7, channels=8)
    assert m(torch.zeros(5, 6, 7)).shape == (5, 4)


def test_feature_list_passes_the_gate():
    cols = features.model_input_columns(features.COMMON_SOURCES, ("accelerometer",))
    ds = sequences.prepare(synthetic.recordings(2), cols, 3)
    assert ds.inputs.columns == cols
    assert not any(schema.is_forbidden_input(c) for c in ds.inputs.columns)


def test_nan_in_training_stops_with_the_epoch_named(tmp_path):
    ds = sequences.prepare(synthetic.recordings(3),
                           features.model_input_columns(features.COMMON_SOURCES), 3)
    table = ds.inputs.table(sequences.Scaler.fit(ds.inputs.values, ds.inputs.columns))
    table[:, 0] = float("nan")
    rows = np.arange(len(table))
    with pytest.raises(NonFiniteLossError, match="epoch 1"):
        classifier.fit_classifier(table, ds.inputs.window_index, ds.targets.command, rows,
                                  rows, classifier.ClassifierConfig(channels=8),
                                  TrainConfig(epochs=2, batch_size=16), tmp_path)


def test_learns_command_classes_on_held_out_files(tmp_path):
    # the signal node and a 4-channel noise source (more noise channels need more files)
    ds = sequences.prepare(synthetic.recordings(8, seed=2),
                           features.model_input_columns(("frame_l2", "motor")), 3)
    sp = splits.group_kfold(ds.files, 4, seed=0, what="file")[0]
    s = classifier.run_fold(ds, sp.train, sp.test, classifier.ClassifierConfig(channels=16,
                            dropout=0.0, gamma=2.0),
                            TrainConfig(epochs=40, batch_size=32, lr=5e-3, patience=None),
                            tmp_path, n_inner=3)
    assert s["command_balanced_accuracy"] > 0.85, s


def test_the_head_reads_the_labelled_last_row_beside_the_window_mean():
    # with the head's weights on the window mean set to zero, the output sees only the last
    # row's features: two kernel-3 convolutions reach back 2 rows, so rows 0..3 of a window of
    # 8 cannot move it, and the last row does
    torch.manual_seed(0)
    m = classifier.CommandCNN(3, channels=4, dropout=0.0).eval()
    with torch.no_grad():
        m.head.weight[:, 4:] = 0.0
    x = torch.randn(2, 8, 3)
    early, last = x.clone(), x.clone()
    early[:, :4] += 5.0
    last[:, -1] += 5.0
    with torch.no_grad():
        torch.testing.assert_close(m(early), m(x))
        assert not torch.allclose(m(last), m(x))
        m.head.weight[:, :4] = 0.0  # and the mean part sees the whole window
        m.head.weight[:, 4:] = 1.0
        assert not torch.allclose(m(early), m(x))


def _tiny(n_files=3):
    ds = sequences.prepare(synthetic.recordings(n_files),
                           features.model_input_columns(features.COMMON_SOURCES), 3)
    table = ds.inputs.table(sequences.Scaler.fit(ds.inputs.values, ds.inputs.columns))
    return ds, table


def test_training_refuses_rows_without_a_class_on_either_side_alone(tmp_path):
    ds, table = _tiny()
    y = ds.targets.command.copy()
    rows = np.arange(len(y))
    none = rows[:10]
    y[none] = sequences.NO_CLASS
    args = (classifier.ClassifierConfig(channels=4), TrainConfig(epochs=1, batch_size=16))
    for fit, val in ((none, rows[10:]), (rows[10:], none)):
        with pytest.raises(ValueError, match="no training or validation row"):
            classifier.fit_classifier(table, ds.inputs.window_index, y, fit, val, *args,
                                      tmp_path)


def test_class_weights_by_default_and_none_when_not_balanced(tmp_path, monkeypatch):
    ds, table = _tiny()
    y, rows = ds.targets.command, np.arange(len(ds.targets.command))
    seen = []
    real = classifier.focal_loss

    def spy(logits, target, gamma, weight=None):
        seen.append(weight)
        return real(logits, target, gamma, weight=weight)

    monkeypatch.setattr(classifier, "focal_loss", spy)
    cfg = TrainConfig(epochs=1, batch_size=len(rows))
    classifier.fit_classifier(table, ds.inputs.window_index, y, rows, rows,
                              classifier.ClassifierConfig(channels=4), cfg, tmp_path / "a")
    want = classifier.class_weights(y[rows])
    assert seen and all(torch.equal(w, want) for w in seen)
    seen.clear()
    classifier.fit_classifier(table, ds.inputs.window_index, y, rows, rows,
                              classifier.ClassifierConfig(channels=4, balanced=False), cfg,
                              tmp_path / "b")
    assert seen and all(w is None for w in seen)


def test_recorded_validation_accuracy_is_the_models_on_the_validation_rows(tmp_path):
    ds, table = _tiny(4)
    y = ds.targets.command
    files = ds.files
    val = np.flatnonzero((files == np.unique(files)[0]) & (y != sequences.NO_CLASS))
    fit = np.flatnonzero(files != np.unique(files)[0])
    model, hist = classifier.fit_classifier(
        table, ds.inputs.window_index, y, fit, val, classifier.ClassifierConfig(channels=8),
        TrainConfig(epochs=3, batch_size=32, patience=None), tmp_path)
    best = next(r for r in hist["val"] if r["epoch"] == hist["best_epoch"])
    pred = classifier.predict_classes(model, table, ds.inputs.window_index, val)
    assert best["accuracy"] == pytest.approx(float(np.mean(pred == y[val])))


# ----------------------------------------------------------------- ablation bookkeeping

def test_every_ablation_setting_passes_the_gate_and_drops_what_it_names():
    from physml.cnc import ablation

    srcs = ("frame_l2", "frame_r2", "motor")
    drops = list(schema.MODALITIES) + ["motor", "frame_r2"]
    settings = ablation.modality_settings(srcs, drops)
    assert set(settings) == {"all"} | {f"-{d}" for d in drops}
    for name, cols in settings.items():
        assert cols and not any(schema.is_forbidden_input(c) for c in cols), name
    assert not any(c.endswith((".Gx", ".Gy", ".Gz")) for c in settings["-gyro"])
    assert not set(settings["-motor"]) & set(schema.MOTOR_SIGNALS)
    assert not any(c.startswith("frame_r2.") for c in settings["-frame_r2"])
    assert len(settings["-rms"]) == len(settings["all"]) - 2  # one RMS channel per node
    with pytest.raises(ValueError, match="spindle1"):
        ablation.modality_settings(srcs, ["spindle1"])


def _scores(col, values):
    import pandas as pd

    rows = [{"seed": 0, "fold": f, col: k, "command_balanced_accuracy": v}
            for k, vs in values.items() for f, v in enumerate(vs)]
    return pd.DataFrame(rows)


def test_paired_drops_are_reference_minus_setting_by_hand():
    from physml.cnc import ablation

    s = _scores("setting", {"all": [0.60, 0.70, 0.80], "-gyro": [0.50, 0.55, 0.75]})
    c = ablation.paired_drops(s, "command_balanced_accuracy", by="setting", reference="all")
    assert c["-gyro"].diff.mean == pytest.approx((0.10 + 0.15 + 0.05) / 3)
    assert c["-gyro"].diff.samples == pytest.approx((0.10, 0.15, 0.05))


def test_focal_verdict_says_better_only_for_the_higher_side():
    from physml.cnc import ablation

    s = _scores("gamma", {0.0: [0.50, 0.52, 0.51, 0.49, 0.50],
                          2.0: [0.60, 0.63, 0.61, 0.60, 0.62],
                          3.0: [0.40, 0.41, 0.42, 0.40, 0.39]})
    v = ablation.focal_verdicts(s, "command_balanced_accuracy", margin=0.01)
    assert v[2.0].outcome == "a" and v[2.0].diff.mean > 0  # focal better
    assert v[3.0].outcome == "b" and v[3.0].diff.mean < 0  # focal worse


def test_modality_sweep_reuses_known_settings_without_training():
    from physml.cnc import ablation

    settings = {"all": ["frame_l2.Ax", "x_motor"], "-motor": ["frame_l2.Ax"]}
    known = {k: _scores("x", {0: [0.5, 0.6]}).drop(columns="x") for k in settings}
    # nothing to train: no data, data set or configuration is needed (training would fail)
    out = ablation.modality_sweep(None, None, settings, [], 2, "none", None, None, "unused",
                                  known=known)
    assert out["setting"].tolist() == ["all", "all", "-motor", "-motor"]
    assert out["n_columns"].tolist() == [2, 2, 1, 1] and list(out.index) == [0, 1, 2, 3]
