"""physml.train: convergence, history schema, determinism, early stopping, resume, NaN guard."""

import json
import math

import pytest
import torch

from physml.train import NonFiniteLossError, TrainConfig, load_history, lr_factor, seeded, train


def linear_problem(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, generator=g) * 2 - 1
    y = 2.0 * x + 1.0 + 0.01 * torch.randn(n, 1, generator=g)
    return x, y


def make_model(seed=0):
    with seeded(seed):
        return torch.nn.Linear(1, 1)


def mse_terms(model, batch):
    x, y = batch
    data = torch.mean((model(x) - y) ** 2)
    return {"loss": data, "data_loss": data}


def val_fn(x, y):
    def validate(model):
        err = (model(x) - y).abs()
        return {"loss": float(torch.mean(err**2)), "mae": float(err.mean())}
    return validate


CFG = dict(epochs=40, batch_size=32, lr=0.05, weight_decay=0.0, warmup_epochs=1, patience=None)


def test_learns_a_linear_map_and_writes_history_schema(tmp_path):
    x, y = linear_problem()
    model = make_model()
    hist = train(model, mse_terms, (x, y), val_fn(x, y), TrainConfig(**CFG), tmp_path,
                 extra_config={"arch": "linear"})
    assert model.weight.item() == pytest.approx(2.0, abs=0.02)
    assert model.bias.item() == pytest.approx(1.0, abs=0.02)
    on_disk = load_history(tmp_path)
    assert on_disk == json.loads(json.dumps(hist))
    assert set(on_disk) >= {"train", "val", "best_epoch", "best_val_loss", "training_time"}
    assert set(on_disk["train"][0]) == {"epoch", "loss", "data_loss", "lr"}
    assert set(on_disk["val"][0]) == {"epoch", "loss", "mae"}
    assert on_disk["best_val_loss"] == min(r["loss"] for r in on_disk["val"])
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["extra"] == {"arch": "linear"} and cfg["train"]["lr"] == 0.05
    assert (tmp_path / "best_model.pt").exists() and (tmp_path / "last.pt").exists()


def test_same_seed_same_run_different_seed_different_run(tmp_path):
    x, y = linear_problem()
    runs = []
    for i, seed in enumerate([3, 3, 4]):
        model = make_model(0)
        cfg = TrainConfig(**{**CFG, "epochs": 3, "seed": seed})
        train(model, mse_terms, (x, y), val_fn(x, y), cfg, tmp_path / str(i))
        runs.append(load_history(tmp_path / str(i))["train"])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_nan_loss_stops_naming_epoch_and_term(tmp_path):
    x, y = linear_problem()
    calls = {"n": 0}
    steps_per_epoch = math.ceil(len(x) / 32)

    def terms(model, batch):
        calls["n"] += 1
        out = mse_terms(model, batch)
        bad = calls["n"] > 2 * steps_per_epoch + 1  # second batch of epoch 3
        out["pde_loss"] = torch.tensor(float("nan")) if bad else torch.tensor(0.0)
        return out

    with pytest.raises(NonFiniteLossError, match=r"epoch 3, batch 1: loss term 'pde_loss' is nan"):
        train(make_model(), terms, (x, y), val_fn(x, y), TrainConfig(**CFG), tmp_path)
    assert [r["epoch"] for r in load_history(tmp_path)["train"]] == [1, 2]


def test_early_stopping_and_best_checkpoint(tmp_path):
    x, y = linear_problem()
    losses = iter([3.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0])
    snapshots = []

    def validate(model):
        snapshots.append(model.weight.detach().clone())
        return {"loss": next(losses)}

    model = make_model()
    cfg = TrainConfig(**{**CFG, "patience": 3})
    hist = train(model, mse_terms, (x, y), validate, cfg, tmp_path)
    assert hist["best_epoch"] == 2 and len(hist["val"]) == 5
    assert hist["stopped"] == "early stopping at epoch 5"
    assert torch.equal(model.weight, snapshots[1])  # best weights restored
    assert torch.equal(torch.load(tmp_path / "best_model.pt")["weight"], snapshots[1])


def test_resume_continues_exactly_where_it_stopped(tmp_path):
    x, y = linear_problem()
    cfg = TrainConfig(**{**CFG, "epochs": 6})
    full = make_model()
    train(full, mse_terms, (x, y), val_fn(x, y), cfg, tmp_path / "full")

    calls = {"n": 0}

    def interrupted(model, batch):
        calls["n"] += 1
        if calls["n"] == 3 * math.ceil(len(x) / 32) + 2:  # inside epoch 4
            raise KeyboardInterrupt
        return mse_terms(model, batch)

    with pytest.raises(KeyboardInterrupt):
        train(make_model(), interrupted, (x, y), val_fn(x, y), cfg, tmp_path / "part")
    assert len(load_history(tmp_path / "part")["train"]) == 3
    resumed = make_model(seed=99)  # weights come from the checkpoint, not from here
    hist = train(resumed, mse_terms, (x, y), val_fn(x, y), cfg, tmp_path / "part", resume=True)
    assert [r["epoch"] for r in hist["train"]] == [1, 2, 3, 4, 5, 6]
    assert load_history(tmp_path / "part")["train"] == load_history(tmp_path / "full")["train"]
    assert torch.equal(resumed.weight, full.weight)


def test_resume_refuses_a_different_config(tmp_path):
    x, y = linear_problem()
    train(make_model(), mse_terms, (x, y), val_fn(x, y), TrainConfig(**{**CFG, "epochs": 2}),
          tmp_path)
    with pytest.raises(ValueError, match="config differs"):
        train(make_model(), mse_terms, (x, y), val_fn(x, y),
              TrainConfig(**{**CFG, "epochs": 2, "lr": 0.01}), tmp_path, resume=True)


def test_warmup_then_cosine_schedule_closed_form():
    assert lr_factor(0, 100, 10, 0.0) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10, 0.0) == pytest.approx(1.0)
    assert lr_factor(10, 100, 10, 0.0) == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, 0.0) == pytest.approx(0.5)  # halfway through the cosine
    assert lr_factor(100, 100, 10, 0.1) == pytest.approx(0.1)
    assert lr_factor(55, 100, 10, 0.2) == pytest.approx(0.6)


def test_logged_lr_follows_the_schedule(tmp_path):
    x, y = linear_problem(n=64)
    cfg = TrainConfig(**{**CFG, "epochs": 4, "batch_size": 64, "warmup_epochs": 0, "lr": 0.1})
    hist = train(make_model(), mse_terms, (x, y), val_fn(x, y), cfg, tmp_path)
    expected = [0.1 * lr_factor(s, 4, 0, 0.0) for s in range(4)]
    assert [r["lr"] for r in hist["train"]] == pytest.approx(expected)


@pytest.mark.parametrize("bad", [{"epochs": 0}, {"lr": -1.0}, {"min_lr": 1.0, "lr": 0.1},
                                 {"patience": 0}])
def test_invalid_config_is_rejected(bad):
    with pytest.raises(ValueError, match="TrainConfig: invalid"):
        TrainConfig(**bad)


def test_mismatched_data_rows_are_rejected(tmp_path):
    x, y = linear_problem()
    with pytest.raises(ValueError, match=r"train_data\[1\] has 10 rows"):
        train(make_model(), mse_terms, (x, y[:10]), val_fn(x, y), TrainConfig(**CFG), tmp_path)


def test_nonfinite_loss_error_survives_pickling_with_its_fields():
    # a run on a Dask worker sends its exception back pickled (physml.parallel)
    import pickle

    e = pickle.loads(pickle.dumps(NonFiniteLossError(2, "loss", float("inf"), batch=5)))
    assert isinstance(e, NonFiniteLossError)
    assert (e.epoch, e.term, e.value, e.batch) == (2, "loss", float("inf"), 5)
    assert str(e) == "training stopped at epoch 2, batch 5: loss term 'loss' is inf"


def test_ended_by_budget_counts_runs_whose_best_epoch_is_the_last(tmp_path):
    from physml.train import ended_by_budget

    x, y = linear_problem()
    # lr small enough that the validation loss still falls at epoch 3: best epoch = the last
    still = train(make_model(), mse_terms, (x, y), val_fn(x, y),
                  TrainConfig(**{**CFG, "epochs": 3, "lr": 0.01}), tmp_path / "a")
    # a converged run stopped early by patience: best epoch before the last allowed
    done = train(make_model(), mse_terms, (x, y), val_fn(x, y),
                 TrainConfig(**{**CFG, "epochs": 200, "patience": 2, "min_delta": 1e-3}),
                 tmp_path / "b")
    assert still["best_epoch"] == 3 and done["best_epoch"] < 200
    assert ended_by_budget([still["best_epoch"]], 3) == 1
    assert ended_by_budget([done["best_epoch"]], 200) == 0
    assert ended_by_budget([still["best_epoch"], 2, 3], 3) == 2  # epoch 2 of 3 is not the last


def test_every_config_limit_is_accepted_and_each_step_past_it_refused():
    TrainConfig(epochs=1, batch_size=1, lr=0.1, weight_decay=0.0, warmup_epochs=0.0,
                min_lr=0.0, patience=1, min_delta=0.0, grad_clip=None)
    TrainConfig(lr=0.1, min_lr=0.1, grad_clip=1e-6)
    for bad in ({"batch_size": 0}, {"weight_decay": -1e-9}, {"warmup_epochs": -1e-9},
                {"min_lr": -1e-9}, {"min_delta": -1e-9}, {"grad_clip": 0.0}, {"lr": 0.0}):
        with pytest.raises(ValueError, match=f"invalid {next(iter(bad))}="):
            TrainConfig(**bad)


def test_train_data_must_be_a_non_empty_tuple_of_tensors(tmp_path):
    x, y = linear_problem()
    cfg = TrainConfig(**CFG)
    for bad in ((), [x, y]):
        with pytest.raises(TypeError, match="non-empty tuple of tensors"):
            train(make_model(), mse_terms, bad, val_fn(x, y), cfg, tmp_path)
    with pytest.raises(TypeError, match=r"train_data\[1\] is ndarray"):
        train(make_model(), mse_terms, (x, y.numpy()), val_fn(x, y), cfg, tmp_path)
    with pytest.raises(ValueError, match="train_data is empty"):
        train(make_model(), mse_terms, (x[:0], y[:0]), val_fn(x, y), cfg, tmp_path)


def test_epoch_loss_is_the_row_weighted_mean_over_uneven_batches(tmp_path):
    # the loss is the batch's mean of a fixed column (the model only adds zero), so an epoch's
    # logged loss must be the column's mean over all rows, whatever the shuffle: batches of
    # 4, 4 and 2 rows, weighted by their sizes
    col = torch.arange(10, dtype=torch.float32).reshape(10, 1) ** 2
    model = make_model()

    def terms(m, batch):
        (c,) = batch
        return {"loss": c.mean() + 0.0 * m.weight.sum()}

    cfg = TrainConfig(**{**CFG, "epochs": 2, "batch_size": 4})
    hist = train(model, terms, (col,), lambda m: {"loss": 1.0}, cfg, tmp_path)
    assert [r["loss"] for r in hist["train"]] == pytest.approx([float(col.mean())] * 2)


def test_an_equal_validation_loss_is_no_improvement(tmp_path):
    # min_delta = 0: a loss that merely repeats the best does not reset the patience
    x, y = linear_problem()
    cfg = TrainConfig(**{**CFG, "patience": 2, "min_delta": 0.0})
    hist = train(make_model(), mse_terms, (x, y), lambda m: {"loss": 1.0}, cfg, tmp_path)
    assert hist["best_epoch"] == 1 and hist["stopped"] == "early stopping at epoch 3"
    # and an improvement smaller than min_delta is none either
    losses = iter([1.0, 0.95, 0.9, 0.85])
    cfg = TrainConfig(**{**CFG, "patience": 2, "min_delta": 0.1})
    hist = train(make_model(), mse_terms, (x, y), lambda m: {"loss": next(losses)}, cfg,
                 tmp_path / "delta")
    assert hist["best_epoch"] == 1 and len(hist["val"]) == 3


def test_without_resume_a_second_run_starts_afresh_and_resume_needs_no_checkpoint(tmp_path):
    x, y = linear_problem()
    cfg = TrainConfig(**{**CFG, "epochs": 3})
    train(make_model(), mse_terms, (x, y), val_fn(x, y), cfg, tmp_path / "a")
    calls = []

    def counted(model, batch):
        calls.append(1)
        return mse_terms(model, batch)

    again = train(make_model(), counted, (x, y), val_fn(x, y), cfg, tmp_path / "a")
    # trained again from the start, not taken as complete from the first run's checkpoint
    assert len(calls) == 3 * math.ceil(len(x) / CFG["batch_size"])
    assert [r["epoch"] for r in again["train"]] == [1, 2, 3]
    fresh = train(make_model(), mse_terms, (x, y), val_fn(x, y), cfg, tmp_path / "new" / "b",
                  resume=True)  # nothing to resume from: an ordinary run, its folders made
    assert [r["epoch"] for r in fresh["train"]] == [1, 2, 3]
    assert load_history(tmp_path / "new" / "b")["train"] == load_history(tmp_path / "a")["train"]


def test_progress_bar_follows_the_flag_else_shows_only_on_a_terminal_outside_render(monkeypatch):
    from physml import train as train_module

    assert train_module._show_progress(True) is True
    assert train_module._show_progress(False) is False
    monkeypatch.setattr(train_module.sys.stderr, "isatty", lambda: True)
    monkeypatch.delenv("PHYSML_RENDER", raising=False)
    assert train_module._show_progress(None) is True
    monkeypatch.setenv("PHYSML_RENDER", "1")
    assert train_module._show_progress(None) is False
    monkeypatch.setattr(train_module.sys.stderr, "isatty", lambda: False)
    monkeypatch.delenv("PHYSML_RENDER")
    assert train_module._show_progress(None) is False


def test_logged_lr_warms_up_over_whole_epochs_and_decays_to_min_lr(tmp_path):
    # 64 rows at batch 32: 2 steps per epoch, so 2 warm-up epochs are 4 steps; min_lr 0.02 of
    # a 0.1 peak is a floor ratio of 0.2
    x, y = linear_problem(n=64)
    cfg = TrainConfig(**{**CFG, "epochs": 5, "batch_size": 32, "warmup_epochs": 2, "lr": 0.1,
                         "min_lr": 0.02})
    hist = train(make_model(), mse_terms, (x, y), val_fn(x, y), cfg, tmp_path)
    expected = [0.1 * lr_factor(2 * e, 10, 4, 0.2) for e in range(5)]
    assert [r["lr"] for r in hist["train"]] == pytest.approx(expected)
    assert expected[:2] == pytest.approx([0.025, 0.075])


def test_resuming_a_finished_run_trains_nothing_and_returns_its_history(tmp_path):
    x, y = linear_problem()
    cfg = TrainConfig(**{**CFG, "epochs": 3})
    first = train(make_model(), mse_terms, (x, y), val_fn(x, y), cfg, tmp_path)
    assert first["stopped"] == "completed 3 epochs"
    calls = []

    def counted(model, batch):
        calls.append(1)
        return mse_terms(model, batch)

    again = train(make_model(seed=5), counted, (x, y), val_fn(x, y), cfg, tmp_path, resume=True)
    assert calls == [] and again == json.loads(json.dumps(first))


def test_training_time_is_the_time_spent_in_the_epochs(tmp_path):
    import time

    x, y = linear_problem()
    t0 = time.perf_counter()
    hist = train(make_model(), mse_terms, (x, y), val_fn(x, y),
                 TrainConfig(**{**CFG, "epochs": 3}), tmp_path)
    assert 0 < hist["training_time"] <= time.perf_counter() - t0


def test_progress_flag_decides_whether_the_bar_is_drawn(tmp_path, capsys):
    x, y = linear_problem(n=64)
    for flag, drawn in ((False, False), (True, True)):
        train(make_model(), mse_terms, (x, y), val_fn(x, y),
              TrainConfig(**{**CFG, "epochs": 2, "progress": flag}), tmp_path / str(flag))
        err = capsys.readouterr().err
        assert ("train " + str(flag) in err) is drawn, err
