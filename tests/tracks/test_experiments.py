"""Experiment bookkeeping: convergence metrics from a hand-written history, summary tables."""

import json

import pandas as pd
import pytest

from physml.tracks import experiments


def _run_dir(tmp_path, vals, train_loss=0.5, val_loss=1.0):
    d = tmp_path / "run"
    d.mkdir()
    hist = {"train": [{"epoch": i + 1, "loss": train_loss, "data_loss": train_loss, "lr": 1e-3}
                      for i in range(len(vals))],
            "val": [{"epoch": i + 1, "loss": val_loss, "pos_mean_mm": v}
                    for i, v in enumerate(vals)],
            "best_epoch": 1, "best_val_loss": val_loss, "training_time": 1.0, "stopped": None}
    (d / "history.json").write_text(json.dumps(hist))
    return d


def test_epochs_to_90pct_is_the_first_epoch_within_best_over_0_9(tmp_path):
    d = _run_dir(tmp_path, [10.0, 5.0, 2.3, 2.1, 2.0])  # best 2.0 -> threshold 2.222
    runs = pd.DataFrame([{"arch": "mlp", "size": "tiny", "seed": 0, "n_params": 10,
                          "run_dir": str(d)}])
    row = experiments.convergence_table(runs).iloc[0]
    assert row["epochs_to_90pct"] == 4
    assert row["val_over_train"] == pytest.approx(2.0)


def test_summary_table_averages_seeds_and_flags_targets():
    runs = pd.DataFrame([
        {"arch": "mlp", "size": "tiny", "seed": s, "n_params": 5, "pos_mean_mm": m,
         "pos_95_mm": 0.2, "slope_mean": 5e-6, "training_time_s": 1.0}
        for s, m in [(0, 0.05), (1, 0.07)]])
    t = experiments.summary_table(runs).iloc[0]
    assert t["pos_mean_mm"] == pytest.approx(0.06) and t["seeds"] == 2
    assert bool(t["meets_targets"])


def test_unknown_lambda_setting_raises():
    with pytest.raises(ValueError, match="setting 'huge'"):
        experiments.lambda_ablation({}, ["huge"], [0])
