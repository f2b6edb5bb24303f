"""Variable dz in notebook 05 (physml.tracks.variable_dz): the comparison on a small map, its
record, headline and sentences."""

import numpy as np
import pandas as pd
import pytest

from physml.results import recorded
from physml.tracks import priors, training, variable_dz
from physml.tracks.data import DatasetSpec
from physml.tracks.experiments import SELECT_ON
from track_maps import gaussian_map


def _split(grid, n, seed):
    rng = np.random.default_rng(seed)
    p = np.exp(rng.uniform(np.log(2.0), np.log(50.0), n))
    s = np.c_[rng.uniform(-50, 50, (n, 2)), rng.uniform(-0.2, 0.2, (n, 2)),
              rng.choice([-1.0, 1.0], n) / p]
    dz = rng.uniform(500.0, 12000.0, n)
    fine = priors.RK4Prior.fit(grid, 240, np.array([12000.0]))(s, dz)  # 50 mm steps: 'truth'
    return {"initial": s, "dz": dz, "final": np.c_[fine, s[:, 4]]}


def _ds():
    grid = gaussian_map(z_max_mm=12100.0)
    return {"spec": DatasetSpec(), "field": grid, "train": _split(grid, 3000, 0),
            "val": _split(grid, 400, 1), "test": _split(grid, 400, 2)}


def test_compare_matches_rk4_on_validation_tracks_and_times_the_pair_interleaved():
    ds = _ds()
    c = variable_dz.compare(ds, [[1, 1], [2, 2]], 4, [4, 8, 16, 32], 64, threads=1, repeats=2,
                            ratio_repeats=3)
    assert c.best["model"] == c.poly.loc[c.poly[SELECT_ON].idxmin()]["model"]
    assert list(c.sides) == ["hybrid"] and c.sides["hybrid"]["model"] == c.best["model"]
    ok = c.coarse[c.coarse[SELECT_ON] <= c.best[SELECT_ON]]
    assert len(ok) and c.match["rk4_steps"] == ok["rk4_steps"].min()
    r = c.ratio.iloc[0]
    assert len(c.ratio) == 1 and r["method"] == c.best["model"]
    # the headline's pair gets its own repeats; the scans keep ``repeats``
    assert len(r["anchor_timing"].rates) == 3 and len(r["timing"].rates) == 3
    assert {t.seconds.size for t in pd.concat([c.poly_tp, c.coarse_tp])["timing"]} == {2}
    # the record, the figure's predictions, the table and the headline come from it
    variable_dz.record_results(c)
    rec = recorded()
    assert rec[f"variable_dz.{c.match['model']}.{SELECT_ON}"]["value"] == c.match[SELECT_ON]
    assert rec["variable_dz.hybrid_over_matched_rk4.rk4"]["value"] == c.match["model"]
    assert rec["variable_dz.hybrid_over_matched_rk4.model"]["value"] == c.best["model"]
    assert "variable_dz.ml_over_matched_rk4.rk4" not in rec
    pred = variable_dz.predictions(c)
    assert list(pred) == ["kick (no fit)", c.match["model"], *c.poly["model"]]
    err = np.hypot(*(pred[c.match["model"]][:, :2] - ds["test"]["final"][:, :2]).T).mean()
    assert err == pytest.approx(c.match["pos_mean_mm"])  # test tracks all have p >= 2 GeV
    assert list(variable_dz.coarse_table(c)["tracks_per_s"] > 0) == [True] * 4
    h = variable_dz.speed_headline(c, 0.1)
    assert h.paired and list(h.sides["physics"].samples) == list(r["anchor_timing"].rates)
    assert "at variable dz (0.5–12 m)" in h.question
    assert h.names["physics"].startswith(f"plain RK4, {c.match['rk4_steps']} equal steps over 12 m")
    assert list(h.sides["hybrid"].samples) == list(r["timing"].rates)
    assert h.names["hybrid"].startswith(f"{c.best['model']} (numba; mean position error")
    assert "ml" not in h.sides
    assert h.note.startswith("3 timing repeats, each side interleaved")
    assert h.note.endswith("validation tracks. No network is trained at variable dz.")
    assert variable_dz.hybrid_ratio(c) is not None
    none = variable_dz.Comparison(**{**c.__dict__, "ratio": None, "match": None})
    assert variable_dz.speed_headline(none, 0.1) is None and variable_dz.hybrid_ratio(none) is None
    assert "No network trained at variable dz" in variable_dz.networks_markdown(c)


def _net_row(summary: dict, model: str, val: float) -> dict:
    return {"model": model, "name": model, "run_dir": summary["run_dir"],
            "pos_mean_mm": summary["pos_mean_mm"], "pos_95_mm": summary["pos_95_mm"],
            "slope_mean": summary["slope_mean"], "low_p_pos_mean_mm": 1.5,
            "meets_targets": False, "optimizer_steps": 12, "n_train": 3000, "batch_size": 256,
            "recorded_val_pos_mean_mm": val}


def test_compare_sets_networks_beside_the_polynomial_and_rk4(tmp_path):
    ds = _ds()
    cfg = training.RunConfig(arch="mlp", size="tiny", steps=12, batch_size=256)
    net = training.run(cfg, ds["train"], ds["val"], ds["test"], ds["field"], "vdz", root=tmp_path)
    # the pure network claims (as a shipped one would record) a validation error below every
    # polynomial's, so it enters the headline beside the hybrid; a second one does not
    nets = pd.DataFrame([_net_row(net, "mlp-tiny (shipped)", 1e-6),
                         _net_row(net, "mlp-tiny copy (shipped)", 50.0)])
    c = variable_dz.compare(ds, [[1, 1], [2, 2]], 4, [4, 8, 16, 32], 64, threads=1, repeats=2,
                            networks=nets)
    assert c.sides["hybrid"]["model"] == c.best["model"]
    assert c.sides["ml"]["model"] == "mlp-tiny (shipped)" and c.left_out == ""
    assert sorted(c.ratio["method"]) == sorted([c.best["model"], "mlp-tiny (shipped)"])
    assert set(c.net_tp["backend"]) == {"torch", "onnx"}
    pred = variable_dz.predictions(c)
    err = np.hypot(*(pred["mlp-tiny (shipped)"][:, :2] - ds["test"]["final"][:, :2]).T).mean()
    assert err == pytest.approx(net["pos_mean_mm"], rel=1e-4)
    variable_dz.record_results(c)
    rec = recorded()
    assert rec["variable_dz.ml_over_matched_rk4.model"]["value"] == "mlp-tiny (shipped)"
    assert rec["variable_dz.mlp-tiny (shipped).validation_pos_mean_mm"]["value"] == 1e-6
    h = variable_dz.speed_headline(c, 0.1)
    ml = c.ratio[c.ratio["method"] == "mlp-tiny (shipped)"].iloc[0]
    assert not h.paired and list(h.sides["ml"].samples) == list(ml["timing"].rates)
    assert h.names["ml"].startswith(f"mlp-tiny (shipped) ({c.sides['ml']['backend']}; mean")
    assert h.note.endswith("validation tracks. The pure network is as accurate and stands as ML.")
    assert "1e-06 mm on its recorded validation tracks" in h.names["ml"]
    out = variable_dz.Comparison(**{**c.__dict__, "sides": {"hybrid": c.sides["hybrid"]},
                                    "left_out": "The pure network X is left out."})
    left = variable_dz.speed_headline(out, 0.1)
    assert "ml" not in left.sides and left.note.endswith("tracks. The pure network X is left out.")
    fams = set(variable_dz.speed_points(c)["family"])
    assert "network (shipped)" in fams
    txt = variable_dz.networks_markdown(c)
    assert "mlp-tiny (shipped), 12 optimiser steps at batch 256 on 3,000 tracks" in txt
    assert "(at most the polynomial's error)" in txt and "50 mm on its recorded validation" in txt
    assert "1e-06 mm on its recorded validation tracks (at most the polynomial's error), not " \
           "meeting all three accuracy targets, at " in txt
    assert "tracks/s; no plain RK4 scanned is as accurate on the validation tracks;" in txt
    assert f"({50 / c.best[SELECT_ON]:.3g}x the polynomial's error)" in txt
    tie = variable_dz.Comparison(**{**c.__dict__, "networks": nets.assign(
        recorded_val_pos_mean_mm=c.best[SELECT_ON])})  # exactly the polynomial's error
    assert variable_dz.networks_markdown(tie).count("(at most the polynomial's error)") == 2
    cheap = c.coarse.sort_values("rk4_steps").iloc[0]  # every RK4 is within 50 mm
    rate = variable_dz.coarse_table(c).set_index("model")["tracks_per_s"][cheap["model"]]
    assert (f"plain RK4 as accurate on the validation tracks needs {cheap['rk4_steps']} steps "
            f"({cheap[SELECT_ON]:.3g} mm) and runs {rate:,.0f} tracks/s") in txt
    net_rate = variable_dz.speed_points(c).set_index("model")["tracks_per_s"]
    assert f"tracks/s ({rate / net_rate['mlp-tiny copy (shipped)']:.2g}x)" in txt


def test_candidates_and_sides_pick_the_hybrid_on_validation_and_leave_out_a_worse_ml():
    best = pd.Series({"model": "poly", SELECT_ON: 0.004, "pos_mean_mm": 0.0045})
    nets = pd.DataFrame({"model": ["mlp-small+kick/qp (shipped)", "mlp-small (shipped)"],
                         "run_dir": ["a", "b"], "pos_mean_mm": [0.05, 0.4],
                         "recorded_val_pos_mean_mm": [0.04, 0.3]})
    tp = pd.DataFrame({"model": [*nets["model"]] * 2, "batch": [64] * 4,
                       "backend": ["torch", "torch", "onnx", "onnx"],
                       "tracks_per_s": [1.0, 5.0, 2.0, 3.0]})
    cands = variable_dz.candidates(best, nets, tp, 64)
    assert list(cands["side"]) == ["hybrid", "hybrid", "ml"]
    assert list(cands["backend"]) == ["numba", "onnx", "torch"]  # each network's fastest
    assert list(cands["matched_on"]) == ["validation", "recorded validation", "recorded validation"]
    chosen, left = variable_dz.sides(cands)
    assert chosen["hybrid"]["model"] == "poly" and "ml" not in chosen
    assert left == ("The pure network mlp-small (shipped) (0.3 mm on its recorded validation "
                    "tracks, 75x the error of poly) is left out of the speed comparison at "
                    "matched accuracy.")
    # a hybrid network more accurate on validation than the polynomial is the hybrid side; an
    # ML network exactly as accurate enters
    better = cands.assign(val_mm=[0.004, 0.003, 0.003])
    chosen, left = variable_dz.sides(better)
    assert chosen["hybrid"]["model"] == "mlp-small+kick/qp (shipped)"
    assert chosen["ml"]["model"] == "mlp-small (shipped)" and left == ""
    tie = cands.assign(val_mm=[0.004, 0.004, 1.0])
    assert variable_dz.sides(tie)[0]["hybrid"]["model"] == "poly"  # a tie keeps the polynomial
    with pytest.raises(ValueError, match="'mlp-small \\(shipped\\)' has no timing at batch 64"):
        variable_dz.candidates(best, nets, tp[tp["model"] != "mlp-small (shipped)"], 64)
    with pytest.raises(ValueError, match="has no validation error"):
        variable_dz.candidates(best, nets.assign(recorded_val_pos_mean_mm=np.nan), tp, 64)
    with pytest.raises(ValueError, match="no hybrid candidate"):
        variable_dz.sides(cands[cands["side"] == "ml"])


def test_polynomial_markdown_reports_each_model_beside_the_kick_and_the_fixed_plane():
    vdz = pd.DataFrame({"model": ["kick+poly d4/q4 dz8 (least squares)"], "basis": ["d4/q4 dz8"],
                        "n_features": [3850], "fit_s": [12.3], "pos_mean_mm": [0.0041],
                        "pos_95_mm": [0.018], "slope_mean": [3.3e-6], "low_p_pos_mean_mm": [0.03],
                        "meets_targets": [True]})
    tp = pd.DataFrame({"model": list(vdz["model"]) * 2, "batch": [4096, 16],
                       "tracks_per_s": [86000.0, 1.0]})
    fixed = pd.Series({"basis": "d10/q10 xy4 t12", "pos_mean_mm": 0.00597})
    txt = variable_dz.polynomial_markdown(vdz, {"pos_mean_mm": 0.61}, tp, 4096, 270000,
                                         (500.0, 12000.0), fixed)
    assert "dz drawn per track in [500, 12000] mm (270,000 training tracks" in txt
    assert "the kick alone is off by 0.61 mm on average" in txt
    assert ("d4/q4 dz8 (3,850 coefficients per output, fitted in 12 s): 0.0041 mm mean "
            "(95th percentile 0.018 mm, slope 3.3e-06; p < 2 GeV 0.03 mm), meeting all three "
            "accuracy targets, at 86,000 tracks/s") in txt
    assert "At the fixed plane, d10/q10 xy4 t12 reaches 0.00597 mm." in txt
    assert "not meeting all three" in variable_dz.polynomial_markdown(
        vdz.assign(meets_targets=[False]), {"pos_mean_mm": 0.61}, tp, 4096, 270000,
        (500.0, 12000.0), fixed)
    with pytest.raises(ValueError, match="no variable-dz model"):
        variable_dz.polynomial_markdown(vdz.iloc[:0], {}, tp, 4096, 1, (500.0, 12000.0), fixed)


def test_rk4_markdown_matches_on_validation_tracks_and_gives_the_verdict():
    # on the test tracks 22 steps would match the polynomial (0.0046 <= 0.0048); on the
    # validation tracks, where the match is made, only 24 does (0.0052 > 0.005 >= 0.0035)
    coarse = pd.DataFrame({"model": ["rk4x16 (no network)", "rk4x22 (no network)",
                                     "rk4x24 (no network)"], "rk4_steps": [16, 22, 24],
                           "rk4_length_mm": [12000.0] * 3, "mean_steps": [8.5, 11.5, 12.1],
                           "pos_mean_mm": [0.012, 0.0046, 0.0033], "pos_95_mm": [0.05, 0.02, 0.013],
                           "slope_mean": [3e-5, 4e-6, 3e-6],
                           "val_pos_mean_mm": [0.011, 0.0052, 0.0035]})
    best = pd.Series({"model": "d10/q10 xy4 t12 dz24", "pos_mean_mm": 0.0048, "val_mm": 0.005,
                      "matched_on": "validation"})
    ratio = pd.Series({"ratio": 0.62, "ratio_low": 0.58, "ratio_high": 0.66})
    txt = variable_dz.rk4_markdown(coarse, best, ratio, 4096, 2)
    assert "N equal steps laid over 12 m" in txt and "for N from 16 to 24" in txt
    assert "the most accurate, N = 24 (12.1 steps per track on average), is off by 0.0033" in txt
    assert ("as accurate as d10/q10 xy4 t12 dz24 (the hybrid chosen on validation tracks) "
            "on the validation tracks, 0.0035 mm against 0.005 mm on its validation tracks: "
            "**24** (12.1 per track). On the test tracks: RK4 0.0033 mm (95th percentile "
            "0.013 mm, slope 3e-06), the hybrid 0.0048 mm.") in txt
    assert "2 threads at batch 4096, the hybrid runs **0.62x** [0.58, 0.66]" in txt
    assert txt.endswith("slower than physics at matched accuracy.")
    same = "not distinguishable in speed from"
    for lo, hi, word in ((1.01, 1.2, "faster than"), (0.9, 1.1, same), (0.8, 0.999, "slower than"),
                         (1.0, 1.2, same), (0.8, 1.0, same)):  # a CI touching 1 includes it
        r = pd.Series({"ratio": 0.62, "ratio_low": lo, "ratio_high": hi})
        assert variable_dz.rk4_markdown(coarse, best, r, 4096, 2).endswith(
            f"{word} physics at matched accuracy.")
    worse = best.copy()
    worse["val_mm"] = 0.003  # its test error alone would still be matched
    worse["matched_on"] = "recorded validation"
    assert variable_dz.rk4_markdown(coarse, worse, None, 4096, 2).endswith(
        "No step count scanned is as accurate on the validation tracks as d10/q10 xy4 t12 dz24 "
        "(0.003 mm on its recorded validation tracks).")
    with pytest.raises(ValueError, match=r"rk4x24 \(no network\) matches .* no interleaved timing"):
        variable_dz.rk4_markdown(coarse, best, None, 4096, 2)
    with pytest.raises(ValueError, match="no coarse RK4 rows"):
        variable_dz.rk4_markdown(coarse.iloc[:0], best, ratio, 4096, 2)
