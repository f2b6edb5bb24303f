"""Experiment bookkeeping: convergence metrics from a hand-written history, summary tables,
verdicts, learning-curve flattening, step budgets."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from physml.tracks import experiments
from physml.tracks.training import RunConfig


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
    runs = pd.DataFrame([{"model": "mlp-tiny", "arch": "mlp", "size": "tiny", "seed": 0,
                          "name": "mlp-tiny-s0", "n_params": 10, "optimizer_steps": 50,
                          "run_dir": str(d)}])
    row = experiments.convergence_table(runs).iloc[0]
    assert row["epochs_to_90pct"] == 4
    assert row["val_over_train"] == pytest.approx(2.0)


def _runs(rows):
    return pd.DataFrame([
        {"model": m, "seed": s, "n_params": 5, "pos_mean_mm": v, "pos_95_mm": 0.2,
         "slope_mean": 5e-6, "training_time_s": 1.0, "optimizer_steps": 100,
         "val_pos_mean_mm": v}
        for m, s, v in rows])


def test_summary_table_keeps_the_order_of_first_appearance_with_each_groups_seed_count():
    t = experiments.summary_table(_runs([("b", 0, 1.0), ("b", 1, 2.0), ("b", 2, 3.0),
                                         ("a", 0, 4.0), ("a", 1, 6.0)]))
    assert list(t["model"]) == ["b", "a"] and list(t["seeds"]) == [3, 2]
    assert list(t["pos_mean_mm"]) == [2.0, 5.0]


def test_summary_table_averages_seeds_and_flags_targets():
    t = experiments.summary_table(_runs([("mlp-tiny", 0, 0.05), ("mlp-tiny", 1, 0.07),
                                         ("mlp-tiny+kick/qp", 0, 0.2),
                                         ("mlp-tiny+kick/qp", 1, 0.1)]))
    row = t.iloc[0]
    assert row["pos_mean_mm"] == pytest.approx(0.06) and row["seeds"] == 2
    assert bool(row["meets_targets"]) and not bool(t.iloc[1]["meets_targets"])  # 0.15 > 0.1
    assert row["pos_mean_ci"].startswith("[")
    # the CI is the t-interval over seeds (independent: mean ± t_{0.975, 2} s / sqrt(3)), and
    # needs two seeds in every group
    three = experiments.summary_table(_runs([("m", 0, 1.0), ("m", 1, 2.0), ("m", 2, 3.0)]))
    half = 4.302652729911275 * 1.0 / np.sqrt(3)
    assert three.iloc[0]["pos_mean_ci"] == "[-0.484, 4.48]"
    assert 2 - half == pytest.approx(-0.484, abs=5e-4) and 2 + half == pytest.approx(4.48, abs=5e-3)
    one = experiments.summary_table(_runs([("m", 0, 1.0), ("m", 1, 2.0), ("n", 0, 3.0)]))
    assert "pos_mean_ci" not in one


def test_best_models_separates_pure_networks_from_hybrids():
    t = experiments.summary_table(_runs([("mlp-tiny", 0, 0.5), ("mlp-tiny", 1, 0.7),
                                         ("pinn-tiny", 0, 0.3), ("pinn-tiny", 1, 0.4),
                                         ("mlp-tiny+kick/qp", 0, 0.9),
                                         ("mlp-tiny+kick/qp", 1, 1.1)]))
    picks = experiments.best_models(t)
    assert picks["ml"]["model"] == "pinn-tiny" and picks["hybrid"]["model"] == "mlp-tiny+kick/qp"
    assert experiments.best_surrogate(picks) == "ml"


def test_best_models_are_selected_on_validation_not_test_tracks():
    # on the test tracks pinn looks best, on the validation tracks mlp does: mlp must be picked
    runs = _runs([("mlp-tiny", 0, 0.5), ("mlp-tiny", 1, 0.7), ("pinn-tiny", 0, 0.3),
                  ("pinn-tiny", 1, 0.4), ("mlp-tiny+kick", 0, 0.35), ("mlp-tiny+kick", 1, 0.35)])
    runs["val_pos_mean_mm"] = [0.2, 0.2, 0.9, 0.9, 0.25, 0.25]
    picks = experiments.best_models(experiments.summary_table(runs))
    assert picks["ml"]["model"] == "mlp-tiny"
    assert experiments.best_surrogate(picks) == "ml"  # 0.2 < 0.25 on validation, not 0.6 > 0.35
    with pytest.raises(ValueError, match="val_pos_mean_mm"):
        experiments.best_models(experiments.summary_table(runs.drop(columns="val_pos_mean_mm")))


def test_ablation_verdict_calls_a_tie_only_with_tost():
    base = np.array([1.0, 1.2, 0.9, 1.1])
    lam = pd.DataFrame({"setting": ["data_only"] * 4 + ["balanced"] * 4, "seed": list(range(4)) * 2,
                        "pos_mean_mm": np.r_[base, base + [0.001, -0.001, 0.0005, 0.0]]})
    assert experiments.ablation_verdict(lam, margin_mm=0.05)["verdict"].outcome == "tie"
    noisy = lam.assign(pos_mean_mm=np.r_[base, base + [0.5, -0.5, 0.4, -0.3]])
    assert experiments.ablation_verdict(noisy, margin_mm=0.05)["verdict"].outcome == "inconclusive"
    worse = lam.assign(pos_mean_mm=np.r_[base, base + [0.5, 0.6, 0.55, 0.52]])
    v = experiments.ablation_verdict(worse, margin_mm=0.05)
    assert v["verdict"].outcome == "b" and v["best"] == "data_only"  # physics (first) is worse
    # one of the two settings not run: no verdict, the best of those run
    alone = worse[worse.setting == "balanced"].assign(setting="strong")
    v = experiments.ablation_verdict(pd.concat([lam[lam.setting == "data_only"], alone]), 0.05)
    assert v["verdict"] is None and v["best"] == "data_only"
    # and with a third setting beside the two, the two are still compared
    v = experiments.ablation_verdict(pd.concat([worse, alone]), 0.05)
    assert v["verdict"].outcome == "b"


def test_flattening_finds_where_more_budget_stops_helping():
    rows = [{"n_train": n, "steps": 100, "seed": 0, "pos_mean_mm": v}
            for n, v in [(1000, 1.0), (2000, 0.5), (4000, 0.45), (8000, 0.44)]]
    f = experiments.flattening(pd.DataFrame(rows), "n_train")
    assert f["flattens_after"] == 2000 and f["values"][1000] == 1.0
    rows = [{**r, "pos_mean_mm": r["pos_mean_mm"] / (1 + i)} for i, r in enumerate(rows)]
    assert experiments.flattening(pd.DataFrame(rows), "n_train")["flattens_after"] is None
    # improving by exactly 1/gain still counts as improving: 1.0 -> 0.8 (gain 0.8), then flat
    rows = [{"n_train": n, "steps": 100, "seed": 0, "pos_mean_mm": v}
            for n, v in [(1000, 1.0), (2000, 0.8), (4000, 0.79)]]
    assert experiments.flattening(pd.DataFrame(rows), "n_train", gain=0.8)["flattens_after"] == 2000


def test_step_budget_sets_the_epochs():
    cfg = RunConfig(steps=1000, batch_size=256)
    assert cfg.epochs_for(25600) == 10  # 100 batches per epoch
    assert cfg.epochs_for(1000) == 250  # 4 batches per epoch
    assert RunConfig(epochs=7).epochs_for(1000) == 7
    with pytest.raises(ValueError, match="prior"):
        RunConfig(arch="pinn", prior="none")


def test_unknown_lambda_setting_raises():
    with pytest.raises(ValueError, match="setting 'huge'"):
        experiments.lambda_ablation({}, ["huge"], [0])


@pytest.mark.slow
def test_runs_trained_on_dask_workers_equal_runs_trained_here(tmp_path, monkeypatch):
    results = {}
    for where, workers in (("here", None), ("dask", 2)):
        monkeypatch.setenv("PHYSML_ARTIFACTS", str(tmp_path / where))
        ds = experiments.prepare(400, 100, field_model="gaussian", z_end_mm=4000.0)
        cfgs = [RunConfig(arch="mlp", steps=4, seed=s, batch_size=64) for s in (0, 1)]
        runs = experiments.run_many(cfgs, ds, workers=workers)
        assert str(tmp_path / where) in runs["run_dir"].iloc[0]
        results[where] = runs["pos_mean_mm"].to_numpy()
    np.testing.assert_allclose(results["dask"], results["here"], rtol=1e-6)


# ---------------------------------------------------------------- edges the mutation sweep found
def test_metrics_split_at_2_gev_by_momentum_not_by_q_over_p(monkeypatch):
    # a "model" that is off by its track's momentum in x: each side's mean error is its own
    monkeypatch.setattr(experiments, "predict",
                        lambda model, u: np.column_stack([u[:, 0].double().numpy()
                                                          + 1 / np.abs(u[:, 4].double().numpy()),
                                                          np.zeros((len(u), 3))]))
    p = np.array([1.0, 1.5, 2.0, 10.0, 50.0])
    initial = np.zeros((5, 5))
    initial[:, 4] = [1 / 1.0, -1 / 1.5, 1 / 2.0, -1 / 10.0, 1 / 50.0]
    test = {"initial": initial, "dz": np.full(5, 100.0), "final": np.zeros((5, 5))}
    out = experiments.metrics_by_p(None, test)
    assert out["n_test"] == 3 and out["low_p_n_test"] == 2  # p = 2 GeV counts as >= 2
    assert out["pos_mean_mm"] == pytest.approx(p[2:].mean())
    assert out["low_p_pos_mean_mm"] == pytest.approx(p[:2].mean())


def test_kick_hybrids_scale_globally_or_per_track():
    assert experiments.hybrid_spec("kick") == {"prior": "kick", "qop_scale": False}
    assert experiments.hybrid_spec("kick/qp") == {"prior": "kick", "qop_scale": True}
    assert experiments.hybrid_spec("rk4x8bs/qp") == {"prior": "rk4", "qop_scale": True,
                                                     "rk4_steps": 8, "rk4_field": "bspline"}
    with pytest.raises(ValueError, match="hybrid variant 'rk4x0'"):
        experiments.hybrid_spec("rk4x0")


def test_prepare_takes_a_fixed_plane_or_variable_dz_and_refuses_a_negative_plane(monkeypatch):
    specs = []

    def fake_get(spec, workers=None, scheduler=None):
        specs.append(spec)
        n = spec.n_tracks
        return {"initial": np.zeros((n, 5)), "dz": np.zeros(n), "final": np.zeros((n, 5))}

    monkeypatch.setattr(experiments.D, "get", fake_get)
    with pytest.raises(ValueError, match=r"z_end_mm = -1.0, expected > 0 \(fixed\) or 0"):
        experiments.prepare(20, 10, z_end_mm=-1.0)
    assert not specs
    fixed = experiments.prepare(20, 10, z_end_mm=8500.0)
    assert [s.planes_mm for s in specs] == [(8500.0,)] * 2
    specs.clear()
    experiments.prepare(20, 10, z_end_mm=0.0)  # variable dz: no fixed plane
    assert [s.planes_mm for s in specs] == [None] * 2
    assert len(fixed["train"]["dz"]) == 18 and len(fixed["val"]["dz"]) == 2
    for bad in (0.0, 1.0):  # no validation set, or no training set
        with pytest.raises(ValueError, match=rf"val_fraction = {bad}, expected in \(0, 1\)"):
            experiments.prepare(20, 10, val_fraction=bad)
    half = experiments.prepare(20, 10, val_fraction=0.5)
    assert len(half["train"]["dz"]) == len(half["val"]["dz"]) == 10


def test_a_side_is_taken_by_a_lower_validation_error_only():
    S = experiments.SELECT_ON
    picks = {"ml": pd.Series({"model": "mlp", S: 1.0}), "hybrid": None}
    cand = pd.Series({"model": "kick+poly", S: 2.0})
    assert experiments.take_side(picks, cand)["hybrid"] is cand  # an empty side takes it
    held = {"ml": picks["ml"], "hybrid": pd.Series({"model": "mlp+kick", S: 2.0})}
    assert experiments.take_side(held, cand)["hybrid"] is held["hybrid"]  # a tie keeps the pick
    better = pd.Series({"model": "kick+poly", S: 1.5})
    out = experiments.take_side(held, better)
    assert out["hybrid"] is better and held["hybrid"]["model"] == "mlp+kick"  # input unchanged
    # the polynomial baseline of the lowest validation error competes for the hybrid side
    poly = pd.DataFrame({"model": ["poly d3", "poly d4"], S: [1.8, 1.2]})
    assert experiments.pick_polynomial(held, poly)["hybrid"]["model"] == "poly d4"
    assert experiments.pick_polynomial(held, poly.iloc[:0]) == held
    assert experiments.pick_polynomial(held, None) == held
    with pytest.raises(ValueError, match="pick_polynomial: no .* column"):
        experiments.pick_polynomial(held, poly.drop(columns=S))
    assert experiments.best_surrogate({"ml": held["ml"], "hybrid": better}) == "ml"
    assert experiments.best_surrogate({"ml": None, "hybrid": better}) == "hybrid"


def test_ablation_and_data_efficiency_runs_are_labelled_by_setting_size_and_seed(monkeypatch):
    seen = []

    def fake_run_many(cfgs, ds, workers=None):
        seen.append(cfgs)
        return pd.DataFrame([{"model": f"{c.arch}-{c.size}", "seed": c.seed, "n_train": c.n_train,
                              "lambda_data": c.lambda_data, "lambda_pde": c.lambda_pde}
                             for c in cfgs])

    monkeypatch.setattr(experiments, "run_many", fake_run_many)
    lam = experiments.lambda_ablation({}, ["balanced", "data_only"], [0, 1], steps=10)
    assert lam["label"].tolist() == ["balanced-s0", "balanced-s1", "data_only-s0", "data_only-s1"]
    weights = lam[["lambda_data", "lambda_pde"]].to_numpy().tolist()
    assert weights == [[1.0, 1.0]] * 2 + [[1.0, 0.0]] * 2
    assert all(c.arch == "pinn" and c.steps == 10 for c in seen[0])
    with pytest.raises(ValueError, match="setting 'balanced2' not in"):
        experiments.lambda_ablation({}, ["balanced2"], [0], steps=10)
    eff = experiments.data_efficiency({}, ["mlp"], [100, 1000], [3], steps=10)
    assert eff["label"].tolist() == ["mlp-tiny-n100-s3", "mlp-tiny-n1000-s3"]


def test_paired_verdict_needs_two_seeds_in_each_group():
    runs = pd.DataFrame({"arch": ["mlp"] * 3 + ["pinn"] * 3, "seed": [0, 1, 2] * 2,
                         "pos_mean_mm": [1.0, 1.1, 0.9, 2.0, 2.2, 1.9], "size": ["tiny"] * 6})
    v = experiments.paired_verdict(runs, "arch", "mlp", "pinn", margin_mm=0.05)
    assert v.outcome == "a"  # mlp lower on every seed
    assert experiments.paired_verdict(runs.iloc[[0, 1, 3, 4]], "arch", "mlp", "pinn",
                                      0.05) is not None  # two seeds each are enough
    for keep in ([0, 3, 4, 5], [0, 1, 2, 3]):  # one group with a single seed
        assert experiments.paired_verdict(runs.iloc[keep], "arch", "mlp", "pinn", 0.05) is None
    assert experiments.paired_verdict(runs, "arch", "mlp", "pinn", 0.05,
                                      where={"size": "wide"}) is None


def test_learning_curve_runs_are_labelled_by_size_steps_and_seed(monkeypatch):
    monkeypatch.setattr(experiments, "run_many", lambda cfgs, ds, workers=None: pd.DataFrame(
        [{"model": "mlp-tiny", "n_train": c.n_train, "steps": c.steps, "seed": c.seed}
         for c in cfgs]))
    runs = experiments.learning_curve({}, [100, 1000], [50], [0], arch="mlp")
    assert runs["label"].tolist() == ["mlp-tiny-n100-k50-s0", "mlp-tiny-n1000-k50-s0"]


def test_targets_are_strict_and_gaps_are_ratios_to_them():
    at = experiments.summary_table(_runs([("mlp-tiny", 0, 0.1), ("mlp-tiny", 1, 0.1)]))
    assert not bool(at.iloc[0]["meets_targets"])  # "< 0.1 mm": exactly 0.1 misses
    # the same rule for a baseline scored on the test tracks: 0.1 mm off in x on every track
    test = {"initial": np.tile([0, 0, 0, 0, 0.2], (4, 1)), "final": np.zeros((4, 5))}
    for off, meets in ((0.1, False), (0.0999, True)):
        out = np.zeros((4, 4))
        out[:, 0] = off
        assert experiments.scores_on_test(out, test)["meets_targets"] is meets
    # a track of exactly 2 GeV is scored with the upper range, not the low-momentum one
    test["initial"][:, 4] = [0.5, 0.5, 0.2, 1.0]  # 2, 2, 5 and 1 GeV
    test["final"][:, 0] = [1.0, 1.0, 0.0, 0.0]
    out = np.zeros((4, 4))
    out[:, 0] = [1.0, 1.0, 3.0, 7.0]
    row = experiments.scores_on_test(out, test)
    assert row["pos_mean_mm"] == 1.0 and row["low_p_pos_mean_mm"] == 7.0
    gaps = experiments.target_gaps(pd.Series({"pos_mean_mm": 0.05, "pos_95_mm": 0.6,
                                              "slope_mean": 1e-5}))
    assert gaps == pytest.approx({"pos_mean_mm": 0.5, "pos_95_mm": 2.0, "slope_mean": 1.0})


def test_convergence_summary_names_the_run_with_the_largest_val_over_train_ratio():
    conv = pd.DataFrame({"model": ["mlp", "mlp", "pinn"], "name": ["a", "b", "c"],
                         "epochs_to_90pct": [3, 5, 10], "val_over_train": [1.5, 4.0, 2.0]})
    s = experiments.convergence_summary(conv)
    assert s == {"epochs_to_90pct": {"mlp": 4.0, "pinn": 10.0}, "worst_run": "b",
                 "worst_val_over_train": 4.0}


def test_sides_without_a_pick_are_left_out_of_the_sentences_and_the_headline():
    row = pd.Series({"model": "mlp-tiny+kick/qp", "pos_mean_mm": 0.2, "pos_95_mm": 0.6,
                     "slope_mean": 2e-5, "optimizer_steps": 1000, "training_time_s": 12.0,
                     "low_p_pos_mean_mm": 0.9})
    picks = {"ml": None, "hybrid": row}
    text = experiments.best_models_markdown(picks)
    assert text.startswith("Best hybrid (physics prior + network) on the validation tracks: "
                           "mlp-tiny+kick/qp") and "pure network" not in text
    assert "mean 0.2 mm (2x target), 95th percentile 0.6 mm (2x), slope 2e-05 (2x)" in text
    runs = pd.DataFrame({"model": ["mlp-tiny+kick/qp"] * 2 + ["mlp-tiny"], "seed": [1, 0, 0],
                         "pos_mean_mm": [0.3, 0.1, 0.5]})
    vals, names = experiments.side_errors(runs, picks)
    assert list(vals) == ["hybrid"] and vals["hybrid"].tolist() == [0.1, 0.3]  # by seed
    assert names == {"hybrid": "mlp-tiny+kick/qp, 2 seeds"}


def test_residual_vs_direct_pairs_the_same_model_on_the_same_seeds(monkeypatch):
    seen = []

    def fake_run_many(cfgs, ds, workers=None):
        seen.extend(cfgs)
        return pd.DataFrame([{"model": f"{c.arch}-{c.size}", "seed": c.seed,
                              "pos_mean_mm": 2.0 + 0.01 * c.seed} for c in cfgs])

    monkeypatch.setattr(experiments, "run_many", fake_run_many)
    runs = pd.DataFrame({"model": ["mlp-tiny"] * 4 + ["mlp-small", "mlp-tiny+kick"],
                         "seed": [0, 1, 2, 3, 0, 0],
                         "pos_mean_mm": [1.0, 1.1, 1.05, 9.0, 5.0, 0.5]})
    both, v = experiments.residual_vs_direct({}, runs, "mlp", "tiny", [0, 1, 2], {"mlp": 100},
                                             0.05)
    assert all(c.prior == "none" and c.steps == 100 for c in seen)
    res = both[both.target == "residual"]
    assert res["model"].tolist() == ["mlp-tiny"] * 3 and res["seed"].tolist() == [0, 1, 2]
    assert v.outcome == "a"  # residual about 1 mm against direct about 2 mm on every seed


def test_by_momentum_scores_each_range_that_has_test_tracks(monkeypatch):
    monkeypatch.setattr(experiments, "load_model", lambda run_dir: None)
    monkeypatch.setattr(experiments, "predict",  # 1 mm off in x for every track
                        lambda model, u: np.column_stack([u[:, 0].double().numpy() + 1.0,
                                                          np.zeros((len(u), 3))]))
    initial = np.zeros((3, 5))
    initial[:, 4] = [1 / 2.0, -1 / 3.0, 1 / 50.0]  # two low, none mid, one high
    ds = {"test": {"initial": initial, "dz": np.full(3, 100.0), "final": np.zeros((3, 5))}}
    runs = pd.DataFrame([{"run_dir": "x", "name": "mlp-tiny-s0", "arch": "mlp", "seed": 0,
                          "model": "mlp-tiny", "setting": "balanced"}])
    mom = experiments.by_momentum(runs, ds)
    assert mom["range"].tolist() == ["low", "high"] and mom["n_test"].tolist() == [2, 1]
    assert mom["pos_mean_mm"].tolist() == [1.0, 1.0] and mom["setting"].tolist() == ["balanced"] * 2


def _history_dir(tmp_path, name, val_metric, train_loss, val_loss):
    d = tmp_path / name
    d.mkdir()
    hist = {"train": [{"epoch": i + 1, "loss": 9.0, "data_loss": v} for i, v in
                      enumerate(train_loss)],
            "val": [{"epoch": i + 1, "loss": v, "pos_mean_mm": m} for i, (m, v) in
                    enumerate(zip(val_metric, val_loss, strict=True))],
            "best_epoch": 1, "best_val_loss": min(val_loss), "training_time": 1.0,
            "stopped": None}
    (d / "history.json").write_text(json.dumps(hist))
    return str(d)


def test_convergence_reads_the_last_epoch_and_the_threshold_is_inclusive(tmp_path):
    # best 1.8 -> threshold 1.8 / 0.9 = 2.0, reached exactly at epoch 2; the final losses are
    # the last epoch's (train data loss 0.5, validation loss 1.5)
    d = _history_dir(tmp_path, "r", [4.0, 2.0, 1.9, 1.8], [3.0, 2.0, 1.0, 0.5],
                     [4.0, 3.0, 2.0, 1.5])
    runs = pd.DataFrame([{"model": "mlp-tiny", "arch": "mlp", "size": "tiny", "seed": 0,
                          "name": "mlp-tiny-s0", "n_params": 10, "optimizer_steps": 50,
                          "run_dir": d}])
    row = experiments.convergence_table(runs).iloc[0]
    assert row["epochs_to_90pct"] == 2
    assert row["final_train_data_loss"] == 0.5 and row["final_val_loss"] == 1.5
    assert row["val_over_train"] == pytest.approx(3.0)
    # a history without a data term falls back to the last epoch's loss; a zero loss gives no
    # ratio
    for name, last in (("no_data_term", 0.5), ("zero", 0.0)):
        d = Path(_history_dir(tmp_path, name, [2.0, 1.0, 1.0], [3.0, 2.0, last], [4.0, 3.0, 2.0]))
        h = json.loads((d / "history.json").read_text())
        for e in h["train"]:
            e["loss"] = e.pop("data_loss")
        (d / "history.json").write_text(json.dumps(h))
        row = experiments.convergence_table(runs.assign(run_dir=str(d))).iloc[0]
        assert row["final_train_data_loss"] == last
        if last:
            assert row["val_over_train"] == pytest.approx(2.0 / last)
        else:
            assert np.isnan(row["val_over_train"])


def test_histories_select_runs_by_architecture(tmp_path):
    runs = pd.DataFrame([{"name": a, "arch": a, "run_dir": _history_dir(tmp_path, a, [1.0],
                                                                       [1.0], [1.0])}
                         for a in ("mlp", "pinn", "rk_pinn")])
    assert list(experiments.histories(runs)) == ["mlp", "pinn", "rk_pinn"]
    assert list(experiments.histories(runs, "physics")) == ["pinn", "rk_pinn"]
    assert list(experiments.histories(runs, "pinn")) == ["pinn"]
    assert list(experiments.histories(runs, "rk_pinn")) == ["rk_pinn"]


def test_scores_on_test_split_at_2_gev_with_2_gev_on_the_upper_side():
    initial = np.zeros((4, 5))
    initial[:, 4] = [1 / 1.0, 1 / 2.0, -1 / 10.0, 1 / 50.0]
    test = {"initial": initial, "final": np.zeros((4, 5))}
    out = np.zeros((4, 4))
    out[:, 0] = [7.0, 0.02, 0.04, 0.06]  # x errors (mm)
    s = experiments.scores_on_test(out, test)
    assert s["pos_mean_mm"] == pytest.approx(0.04) and s["low_p_pos_mean_mm"] == 7.0
    assert s["meets_targets"]  # 0.04 mm, p95 0.06 mm, slopes exact
    assert "low_p_pos_mean_mm" not in experiments.scores_on_test(out[1:], {
        "initial": initial[1:], "final": test["final"][1:]})


def test_rk4_prior_hybrids_are_built_for_the_mlp_only():
    cfgs = experiments.matrix_configs(["mlp", "pinn"], ["tiny"], [0], {"mlp": 10, "pinn": 20},
                                      hybrid_archs=["mlp", "pinn"], hybrids=["kick", "rk4x4"])
    got = [(c.arch, c.prior, c.steps) for c in cfgs]
    assert got == [("mlp", "straight", 10), ("pinn", "straight", 20), ("mlp", "kick", 10),
                   ("mlp", "rk4", 10), ("pinn", "kick", 20)]


def test_run_many_sends_work_to_dask_only_with_workers_or_a_scheduler_and_several_configs(
        monkeypatch):
    import physml.parallel

    sent = []
    monkeypatch.setattr(physml.parallel, "map_tasks",
                        lambda fn, tasks, workers, scheduler: sent.append((len(tasks), workers,
                                                                           scheduler)))
    monkeypatch.setattr(experiments, "run", lambda cfg, tr, va, te, field, key: {
        "config": {"seed": cfg.seed}, "run_dir": f"r{cfg.seed}", "key": key})
    monkeypatch.setattr(experiments, "split_by_p", lambda run_dir, test: {
        "pos_mean_mm": 1.0 if test is ds["test"] else 2.0, "low_p_pos_mean_mm": 3.0})
    ds = {"train": {}, "val": {}, "test": {"dz": np.zeros(3)}, "field": None, "key": "k",
          "args": ()}
    two = [RunConfig(arch="mlp", steps=4, seed=s) for s in (0, 1)]
    cases = [((two, None, None, None), []), ((two, None, 2, None), [(2, 2, None)]),
             ((two, None, None, "tcp://x"), [(2, None, "tcp://x")]),
             ((two[:1], None, 2, None), []),  # one config: nothing to spread
             ((two, {"dz": np.zeros(5)}, 2, None), [])]  # another test set: runs exist already
    for (cfgs, test, workers, scheduler), want in cases:
        sent.clear()
        runs = experiments.run_many(cfgs, ds, test=test, workers=workers, scheduler=scheduler)
        assert sent == want, (workers, scheduler, len(cfgs), test is None)
        assert list(runs["seed"]) == [c.seed for c in cfgs]
        assert set(runs["key"]) == {"k" if test is None else "k+test5"}
        # validation scores beside the test scores, without a low-momentum validation column
        assert set(runs["val_pos_mean_mm"]) == {2.0} and set(runs["low_p_pos_mean_mm"]) == {3.0}
        assert "val_low_p_pos_mean_mm" not in runs


def test_throughput_inputs_take_one_plane_or_dz_per_track(monkeypatch):
    seen = []

    def fake_throughput(model, u, batches, min_time_s):
        seen.append(u[:, 5].numpy())
        return {batches[0]: 1e6 * model}

    monkeypatch.setattr(experiments, "load_model", lambda d: {"a": 1.0, "b": 2.0}[d])
    monkeypatch.setattr(experiments, "throughput", fake_throughput)
    runs = pd.DataFrame({"run_dir": ["a", "b"]})
    out = experiments.add_throughput(runs, batch=64, dz_mm=500.0)
    assert list(out["tracks_per_s_64"]) == [1e6, 2e6] and "tracks_per_s_64" not in runs
    assert all(np.all(dz == 500.0) for dz in seen)
    seen.clear()
    experiments.add_throughput(runs, batch=64)
    assert all(np.ptp(dz) > 0 for dz in seen)  # the default distribution's dz, drawn per track


def _tracks(n, dz, p_gev, rng):
    initial = np.zeros((n, 5))
    initial[:, 4] = 1 / np.asarray(p_gev, dtype=float)
    final = rng.normal(size=(n, 5))
    return {"initial": initial, "dz": np.asarray(dz, dtype=float), "final": final}


def test_coarse_rk4_rows_count_the_steps_a_track_takes_and_score_validation_when_there(
        monkeypatch):
    from physml.tracks.data import DatasetSpec

    rng = np.random.default_rng(0)
    fitted = []

    def fake_prior(ds, n, field):
        fitted.append((int(n), field))
        return lambda initial, dz: np.zeros((len(dz), 4))  # every end state at the origin

    monkeypatch.setattr(experiments, "_coarse_prior", fake_prior)
    # variable dz up to 8000 mm: 8 steps of 1000 mm; a 2500 mm track takes 3, an 8000 mm one 8
    ds = {"spec": DatasetSpec(dz_range_mm=(1000.0, 8000.0)),
          "test": _tracks(3, [2500.0, 8000.0, 1000.0], [5.0, 5.0, 1.0], rng),
          "val": _tracks(2, [3000.0, 4000.0], [5.0, 5.0], rng)}
    t = experiments.coarse_rk4(ds, [8, 4], field="bspline")
    assert list(t["model"]) == ["rk4x8bs (no network)", "rk4x4bs (no network)"]
    assert fitted == [(8, "bspline"), (4, "bspline")]
    assert list(t["mean_steps"]) == pytest.approx([(3 + 8 + 1) / 3, (2 + 4 + 1) / 3])
    want = np.hypot(ds["test"]["final"][:2, 0], ds["test"]["final"][:2, 1]).mean()
    assert t["pos_mean_mm"].iloc[0] == pytest.approx(want)  # the 5 GeV tracks only
    low = np.hypot(*ds["test"]["final"][2, :2])
    assert t["low_p_pos_mean_mm"].iloc[0] == pytest.approx(low)
    val = np.hypot(ds["val"]["final"][:, 0], ds["val"]["final"][:, 1]).mean()
    assert t[experiments.SELECT_ON].iloc[0] == pytest.approx(val)
    del ds["val"]
    assert experiments.SELECT_ON not in experiments.coarse_rk4(ds, [8])


def test_polynomial_baselines_take_2_or_4_entries_and_time_the_fit(monkeypatch):
    import physml.tracks.polynomial as P
    import physml.tracks.priors as priors

    class Fake:
        n_features = 7

        @classmethod
        def fit(cls, initial, dz, final, table, basis):
            m = cls()
            m.basis, m.label = basis, f"d{basis.degree}/q{basis.qop_degree}"
            return m

        def predict(self, initial, dz):
            return np.zeros((len(dz), 4))

    monkeypatch.setattr(P, "PolynomialSurrogate", Fake)
    monkeypatch.setattr(priors.KickTable, "from_field", staticmethod(lambda field: None))
    rng = np.random.default_rng(1)
    ds = {"field": None, "train": _tracks(4, [8000.0] * 4, [5.0] * 4, rng),
          "test": _tracks(2, [8000.0] * 2, [5.0] * 2, rng)}
    with pytest.raises(ValueError, match=r"\[3, 2, 1\] is not \[degree, qop_degree\]"):
        experiments.polynomial_baselines(ds, [[3, 2, 1]])
    rows, fitted = experiments.polynomial_baselines(ds, [[3, 2], [4, 4, 6, None]])
    assert [m.basis for m in fitted.values()] == [P.Basis(3, 2), P.Basis(4, 4, 6, None)]
    assert list(rows["model"]) == ["kick+poly d3/q2 (least squares)",
                                   "kick+poly d4/q4 (least squares)"]
    assert list(rows["n_train"]) == [4, 4] and rows["polynomial"].all()
    assert ((rows["fit_s"] >= 0) & (rows["fit_s"] < 60)).all()  # seconds the fit took
    assert experiments.SELECT_ON not in rows
    val = _tracks(3, [8000.0] * 3, [5.0] * 3, rng)
    rows, _ = experiments.polynomial_baselines(ds, [[3, 2]], val=val)
    want = np.hypot(val["final"][:, 0], val["final"][:, 1]).mean()
    assert rows[experiments.SELECT_ON].iloc[0] == pytest.approx(want)


def test_coarse_rk4_text_sets_each_rk4_hybrid_beside_its_own_prior():
    coarse = pd.DataFrame({"rk4_steps": [4, 8], "pos_mean_mm": [0.8, 0.05],
                           "pos_95_mm": [2.0, 0.1], "slope_mean": [1e-4, 5e-6],
                           "meets_targets": [False, True]})
    table = pd.DataFrame({"model": ["mlp-small+rk4x4", "mlp-small+rk4x8", "mlp-small"],
                          "pos_mean_mm": [0.2, 0.1, 0.3], "meets_targets": [False, False, False]})
    txt = experiments.coarse_rk4_markdown(coarse, table)
    assert "meet all three targets: **8**" in txt
    # x4: its prior 0.8 mm / 0.2 mm = 4; x8 against the 8-step prior (0.05 mm), not the 4-step
    assert "mlp-small+rk4x4: 0.2 mm against 0.8 mm for its prior alone — the network divides " \
           "its prior's error by 4;" in txt
    assert "mlp-small+rk4x8: 0.1 mm against 0.05 mm for its prior alone — no better than its " \
           "prior alone (error ratio 0.5)" in txt
    assert "mlp-small:" not in txt
    even = experiments.coarse_rk4_markdown(coarse, table.iloc[:1].assign(pos_mean_mm=0.8))
    assert "no better than its prior alone (error ratio 1)" in even  # equal errors: no gain
    none = experiments.coarse_rk4_markdown(coarse.assign(meets_targets=False), table.iloc[2:])
    assert "No step count scanned meets all three targets." in none and "prior alone" not in none


def test_dataset_summary_names_a_single_fixed_plane_only(tmp_path, monkeypatch):
    from physml.tracks.data import DatasetSpec

    monkeypatch.setattr(experiments.D, "dataset_dir", lambda spec: tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"acceptance": 0.75}))
    import physml.tracks.ground_truth as gt

    monkeypatch.setattr(gt, "field_summary", lambda field: {"integral_by_tesla_m": 4.0,
                                                            "peak_by_tesla": 1.0})
    split = {"dz": np.zeros(3)}
    ds = {"train": split, "val": {"dz": np.zeros(1)}, "test": {"dz": np.zeros(2)}, "field": None}
    for planes, want in (((8500.0,), "fixed z_end = 8.5 m"), (None, "variable dz"),
                         ((2000.0, 8500.0), "variable dz")):
        out = experiments.dataset_summary({**ds, "spec": DatasetSpec(planes_mm=planes)})
        assert out["end_plane"] == want
    assert (out["n_train"], out["n_val"], out["n_test"], out["acceptance"]) == (3, 1, 2, 0.75)


def test_record_runs_records_each_runs_metrics_that_it_has(monkeypatch):
    from physml import results

    monkeypatch.setattr(results, "_memory", {})
    runs = pd.DataFrame({"name": ["mlp-s0"], "pos_mean_mm": [0.5], "pos_95_mm": [1.0],
                         "slope_mean": [1e-4], "optimizer_steps": [100], "n_params": [7]})
    experiments.record_runs(runs, prefix="m.", extra=("n_params", "training_time_s"))
    assert set(results.recorded()) == {"m.mlp-s0.pos_mean_mm", "m.mlp-s0.pos_95_mm",
                                       "m.mlp-s0.slope_mean", "m.mlp-s0.optimizer_steps",
                                       "m.mlp-s0.n_params"}
    assert results.recorded()["m.mlp-s0.pos_mean_mm"]["value"] == 0.5


@pytest.mark.slow
def test_training_matrix_refuses_one_seed_with_the_residual_comparison_before_training(
        tmp_path):
    # the residual-vs-direct CI is over seeds: with one seed it used to fail at the end, after
    # every run of the matrix had trained (minutes, hours in the research profile)
    import os
    import subprocess
    import sys

    from physml.paths import repo_root

    nb = repo_root() / "notebooks/tracks/02_training_matrix.ipynb"
    env = dict(os.environ, PHYSML_ARTIFACTS=str(tmp_path / "artifacts"))
    res = subprocess.run([sys.executable, "-m", "physml.cli", "render", str(nb), "-p",
                          "seeds=[0]", "--out", str(tmp_path / "reports")],
                         capture_output=True, text=True, timeout=600, env=env)
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "compare_residual needs at least 2 seeds" in out, out[-2000:]
    assert not (tmp_path / "artifacts").exists() or not any((tmp_path / "artifacts").rglob("*.pt"))
