"""physml.cnc.folds: every fold trained with its own seed and folder, in split order; the same
scores on a Dask client as in this process."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from physml import splits, timing
from physml.cnc import classifier, features, folds, sequences, synthetic
from physml.cnc import encoder_decoder as ed
from physml.parallel import start_client
from physml.train import NonFiniteLossError, TrainConfig


def _fake_fold(ds, train_rows, test_rows, cfg, train_cfg, out_dir, **kw):
    return {"seed": train_cfg.seed, "n_train": len(train_rows), "n_test": len(test_rows),
            "dir": out_dir.name, "data": ds, "cfg": cfg, "kw": kw}


def test_run_folds_passes_seed_rows_folder_and_options_in_order(tmp_path):
    sp = [(3, SimpleNamespace(fold=0, train=np.arange(5), test=np.arange(2))),
          (7, SimpleNamespace(fold=1, train=np.arange(4), test=np.arange(3)))]
    out = folds.run_folds(_fake_fold, "D", sp, "C", TrainConfig(seed=0), tmp_path, n_inner=4)
    assert [(o["seed"], o["n_train"], o["n_test"], o["dir"]) for o in out] == [
        (3, 5, 2, "seed3_fold0"), (7, 4, 3, "seed7_fold1")]
    assert all(o["data"] == "D" and o["cfg"] == "C" and o["kw"] == {"n_inner": 4} for o in out)


def test_run_all_picks_each_runs_dataset_and_extra_options(tmp_path):
    runs = [folds.Run("a", 1, np.arange(3), np.arange(1), tmp_path / "x", {"inner": "random"}),
            folds.Run("b", 2, np.arange(2), np.arange(1), tmp_path / "y")]
    out = folds.run_all(_fake_fold, {"a": "A", "b": "B"}, runs, None, TrainConfig(), n_inner=2)
    assert [(o["data"], o["seed"], o["kw"]) for o in out] == [
        ("A", 1, {"n_inner": 2, "inner": "random"}), ("B", 2, {"n_inner": 2})]


def _threads_fold(ds, train_rows, test_rows, cfg, train_cfg, out_dir, **kw):
    import torch

    return torch.get_num_threads()


def test_run_all_in_this_process_keeps_the_callers_thread_limit(tmp_path):
    import torch  # noqa: F401  (imported, so timing.threads limits it)

    runs = [folds.Run("a", 0, np.arange(3), np.arange(1), tmp_path / "x")]
    with timing.threads(2):  # `threads` is for the workers of a client, not for this process
        assert folds.run_all(_threads_fold, {"a": None}, runs, None, TrainConfig(),
                             threads=1) == [2]
    with timing.threads(1):
        assert folds.run_all(_threads_fold, {"a": None}, runs, None, TrainConfig(),
                             threads=2) == [1]


@pytest.mark.slow
def test_client_gives_the_serial_scores(tmp_path):
    ds = sequences.prepare(synthetic.recordings(6, seed=2),
                           features.model_input_columns(("frame_l2", "motor")), 3)
    lfo = [(0, sp) for sp in splits.group_kfold(ds.files, 3, seed=0, what="file")]
    cnn = (classifier.ClassifierConfig(channels=8), TrainConfig(epochs=2, batch_size=32))
    edc = (ed.EDConfig(hidden=8, d_model=8, heads=2, layers=1), TrainConfig(epochs=1,
                                                                             batch_size=64))
    with timing.threads(1):
        c_serial = classifier.cross_validate(ds, lfo, *cnn, tmp_path / "c1", n_inner=3)
        e_serial, _ = ed.cross_validate(ds, lfo, *edc, tmp_path / "e1", n_inner=3)
    client = start_client(2)
    try:
        c_dask = classifier.cross_validate(ds, lfo, *cnn, tmp_path / "c2", client=client,
                                           n_inner=3)
        e_dask, res = ed.cross_validate(ds, lfo, *edc, tmp_path / "e2", client=client,
                                        n_inner=3)
    finally:
        client.close()
    assert list(c_dask["fold"]) == [0, 1, 2]
    np.testing.assert_allclose(c_dask["command_balanced_accuracy"],
                               c_serial["command_balanced_accuracy"], atol=1e-12)
    np.testing.assert_allclose(e_dask["line_exact_accuracy"], e_serial["line_exact_accuracy"],
                               atol=1e-12)
    assert len(res) == 3 and all(r.model is not None for r in res)
    assert (tmp_path / "c2" / "seed0_fold2").is_dir()


@pytest.mark.slow
def test_nan_in_a_fold_on_a_worker_names_the_epoch(tmp_path):
    # lr 1e30: the first AdamW step makes the weights overflow, the next loss is not finite
    ds = sequences.prepare(synthetic.recordings(4, seed=2),
                           features.model_input_columns(("frame_l2", "motor")), 3)
    lfo = [(0, sp) for sp in splits.group_kfold(ds.files, 2, seed=0, what="file")]
    client = start_client(1)
    try:
        with pytest.raises(NonFiniteLossError, match="epoch 1"):
            classifier.cross_validate(ds, lfo, classifier.ClassifierConfig(channels=8),
                                      TrainConfig(epochs=2, batch_size=32, lr=1e30), tmp_path,
                                      client=client, n_inner=2)
    finally:
        client.close()
