"""Figures whose titles state a computed conclusion: the accuracy-vs-speed Pareto front."""

import numpy as np
import pandas as pd
import pytest

from physml.tracks import benchmark, figures


def _points():
    return pd.DataFrame({
        "model": ["rk4x32", "poly-a", "rk4x24", "poly-b", "rk4x8", "net"],
        "family": ["plain RK4", "polynomial", "plain RK4", "polynomial", "plain RK4", "network"],
        "rk4_steps": [32, None, 24, None, 8, None],
        "pos_mean_mm": [0.001, 0.002, 0.003, 0.002, 0.01, 0.05],
        "tracks_per_s": [1e5, 5e5, 3e5, 4e5, 2e6, 1e6]})


def test_pareto_front_keeps_each_row_faster_than_every_more_accurate_one():
    front = figures.pareto_front(_points())
    # rk4x24 is beaten by poly-a (more accurate and faster), poly-b by poly-a (same error,
    # slower), net by rk4x8 (both)
    assert list(front["model"]) == ["rk4x32", "poly-a", "rk4x8"]
    twin = pd.concat([_points(), _points().iloc[[1]]], ignore_index=True)  # an exact tie
    assert list(figures.pareto_front(twin)["model"]) == ["rk4x32", "poly-a", "rk4x8"]
    just_slower = _points().assign(tracks_per_s=[1e5, 5e5, 3e5, 4e5, 5e5, 1e6])
    assert list(figures.pareto_front(just_slower)["model"]) == ["rk4x32", "poly-a", "net"]


def test_accuracy_vs_speed_draws_rk4_as_a_line_in_step_order_and_names_the_front():
    fig = figures.accuracy_vs_speed(_points(), 2, 4096, "Variable dz")
    assert [t.name for t in fig.data] == ["plain RK4", "polynomial", "network",  # as given
                                          "fastest at its accuracy (Pareto front)"]
    traces = {t.name: t for t in fig.data}
    rk4 = traces["plain RK4"]
    assert rk4.mode == "lines+markers" and list(rk4.text) == ["rk4x8", "rk4x24", "rk4x32"]
    assert traces["polynomial"].mode == "markers"
    assert list(traces["fastest at its accuracy (Pareto front)"].x) == [0.001, 0.002, 0.01]
    assert fig.layout.title.text == (
        "Variable dz, 2 threads, batch 4096: the fastest at each accuracy (circled), from the "
        "most accurate:<br>plain RK4 (0.001 mm) → polynomial (0.002 mm) → plain RK4 (0.01 mm)")
    four = pd.concat([_points(), pd.DataFrame({"model": ["z"], "family": ["network"],
                                               "pos_mean_mm": [0.1], "tracks_per_s": [5e6]})])
    assert figures.accuracy_vs_speed(four, 2, 4096, "x").layout.title.text.endswith(
        "plain RK4 (0.01 mm) →<br>network (0.1 mm)")
    rk4_only = _points()[_points()["family"] == "plain RK4"]
    assert figures.accuracy_vs_speed(rk4_only, 2, 4096, "x").layout.title.text.endswith(
        "plain RK4 (0.001–0.01 mm)")
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"


def test_accuracy_speed_points_take_each_models_fastest_backend_at_the_batch():
    nets = pd.DataFrame({"model": ["m", "m", "m", "k"],
                         "backend": ["torch", "onnx", "onnx", "torch"],
                         "batch": [4096, 4096, 256, 4096], "tracks_per_s": [2e5, 3e5, 9e5, 1e5],
                         "pos_mean_mm": [0.5, 0.5, 0.5, 0.9]})
    coarse_tp = pd.DataFrame({"model": ["rk4x8 (no network)", "rk4x8 (no network)"],
                              "batch": [4096, 256], "tracks_per_s": [2e6, 7e6],
                              "pos_mean_mm": [0.15, 0.15]})
    steps = pd.DataFrame({"model": ["rk4x8 (no network)"], "rk4_steps": [8]})
    rk4 = {"schedule": "50 mm", "errors_um": np.array([0.1, 0.3]), "rk4_tracks_per_second": 3e5}
    pts = benchmark.accuracy_speed_points(4096, {"network": nets, "plain RK4": coarse_tp}, steps,
                                          rk4)
    assert list(pts["model"]) == ["m", "k", "rk4x8 (no network)", "RK4 50 mm"]
    assert list(pts["tracks_per_s"]) == [3e5, 1e5, 2e6, 3e5]  # onnx at 4096, not 256's 9e5
    assert list(pts["family"]) == ["network", "network", "plain RK4",
                                   "RK4 at ≤ 1 µm (error vs DOP853)"]
    assert pts["pos_mean_mm"].iloc[-1] == pytest.approx(0.0002)
    assert pts["rk4_steps"].iloc[2] == 8 and pts["rk4_steps"].drop(index=2).isna().all()
    with pytest.raises(ValueError, match="'plain RK4' has no timing at batch 1"):
        benchmark.accuracy_speed_points(1, {"plain RK4": coarse_tp})


def test_schedule_scan_draws_each_family_in_step_order_and_names_the_fewest_steps():
    from physml.tracks import coarse_schedules as C
    from physml.tracks.experiments import SELECT_ON

    t = pd.DataFrame({"family": [C.EQUAL_MAP] * 3 + [C.NODES] * 2,
                      "setting": ["N = 20", "N = 10", "N = 15", "tol 40", "tol 80"],
                      "steps": [20, 10, 15, 21, 14], SELECT_ON: [0.003, 0.02, 0.005, 0.004, 0.01]})
    fig = figures.schedule_scan(t, 0.006, "best surrogate")
    assert [tr.name for tr in fig.data] == [C.EQUAL_MAP, C.NODES]
    assert list(fig.data[0].x) == [10, 15, 20] and list(fig.data[0].y) == [0.02, 0.005, 0.003]
    assert list(fig.data[1].x) == [14, 21]
    title = fig.layout.title.text
    assert f"{C.EQUAL_MAP}: 15" in title and f"{C.NODES}: 21" in title
    assert f"{C.EQUAL_BSPLINE}: not reached" in title
    assert fig.layout.shapes[0].y0 == 0.006


def test_sweep_means_over_seeds_with_min_max_bars_and_names_its_axes():
    df = pd.DataFrame({"n_train": [10, 10, 100, 100], "err": [1.0, 3.0, 4.0, 4.0],
                       "arch": ["mlp"] * 4})
    fig = figures.sweep(df, "n_train", "err", "arch", title="t", x_title="tracks")
    tr = fig.data[0]
    assert list(tr.y) == [2.0, 4.0] and list(tr.error_y.array) == [1.0, 0.0]
    assert list(tr.error_y.arrayminus) == [1.0, 0.0]
    assert fig.layout.yaxis.title.text == "err" and fig.layout.xaxis.title.text == "tracks"
    named = figures.sweep(df, "n_train", "err", "arch", title="t", x_title="tracks",
                          y_title="mean position error (mm)")
    assert named.layout.yaxis.title.text == "mean position error (mm)"


def test_size_vs_speed_gives_spearman_only_within_a_model_family():
    # one size per family: a pooled ρ would measure the family, not the size
    one = pd.DataFrame({"model": ["mlp-tiny", "mlp-tiny+kick", "pinn-tiny", "pinn-tiny"],
                        "size": ["tiny"] * 4, "params": [10, 10, 20, 20],
                        "epochs_to_90pct": [9, 8, 1, 2]})
    fig = figures.size_vs_speed(one)
    assert "one size per model family" in fig.layout.title.text
    assert "ρ" not in fig.layout.title.text
    assert [t.name for t in fig.data] == ["mlp", "mlp+kick", "pinn"]
    # mlp at three sizes, slower with size; pinn at one size is left out of the ρ
    grown = pd.DataFrame({"model": ["mlp-tiny", "mlp-small", "mlp-wide", "pinn-tiny"],
                          "size": ["tiny", "small", "wide", "tiny"],
                          "params": [10, 100, 1000, 20], "epochs_to_90pct": [3, 5, 9, 1]})
    fig = figures.size_vs_speed(grown)
    # ρ in the legend, not in a title that nine families ran off the figure's edge
    assert [t.name for t in fig.data] == ["mlp (ρ = 1.00, 3 runs)", "pinn"]
    assert "ρ within each model family in the legend" in fig.layout.title.text
    # every run of a family as fast: no ranking to correlate (pandas gives NaN)
    flat = grown.assign(epochs_to_90pct=[2, 2, 2, 1])
    assert figures.size_vs_speed(flat).data[0].name == "mlp (ρ undefined: all 3 runs equal)"
    # a ninth family keeps the first one's colour but not its marker
    nine = pd.DataFrame({"model": [f"m{k}-tiny" for k in range(9)], "size": ["tiny"] * 9,
                         "params": list(range(1, 10)), "epochs_to_90pct": [1] * 9})
    marks = [(t.marker.color, t.marker.symbol) for t in figures.size_vs_speed(nine).data]
    assert len(set(marks)) == 9 and marks[8][0] == marks[0][0]


def test_stage_losses_names_the_stage_with_the_largest_last_residual():
    rows = [{"epoch": e, **{f"pde_stage{k}": v / e for k, v in enumerate((1, 4, 2, 3), 1)}}
            for e in (1, 2, 3)]
    fig = figures.stage_losses({"train": rows}, "rk")
    assert [t.name for t in fig.data] == [f"stage {k} (ζ = {k / 4:g})" for k in range(1, 5)]
    assert fig.layout.title.text.startswith("rk: stage 2 (ζ = 0.5) keeps the largest")
    assert list(fig.data[3].y) == [3.0, 1.5, 1.0]
    assert fig.layout.yaxis.type == "log" and fig.layout.xaxis.dtick == 1  # epochs 1, 2, 3
    assert {t.mode for t in fig.data} == {"lines"}
    one = figures.stage_losses({"train": rows[:1]}, "rk")  # one epoch: markers, not nothing
    assert {t.mode for t in one.data} == {"markers"}


def test_settings_axes_are_ticked_at_the_settings():
    """Training-set sizes and batch sizes on log axes read as the values tried."""
    df = pd.DataFrame({"arch": ["mlp"] * 6, "n_train": [1000, 4000, 16000] * 2,
                       "err": [5.0, 4.0, 3.0, 6.0, 5.0, 4.0], "seed": [0] * 3 + [1] * 3})
    fig = figures.sweep(df, "n_train", "err", "arch", title="t", x_title="tracks")
    assert list(fig.layout.xaxis.ticktext) == ["1,000", "4,000", "16,000"]
    assert figures.sweep(df, "n_train", "err", "arch", title="t", x_title="tracks",
                         log_x=False).layout.xaxis.tickvals is None
    tp = pd.DataFrame({"model": ["m"] * 3, "backend": ["torch"] * 3, "batch": [1, 256, 4096],
                       "tracks_per_s": [1e3, 1e5, 1e6]})
    fig = figures.throughput_lines(tp, 3e5, 2)
    assert list(fig.layout.xaxis.tickvals) == [1, 256, 4096]


def test_throughput_lines_keep_a_models_colour_over_its_backends_and_tell_models_apart():
    """Ten models on two backends: each model one colour and marker on both lines, dashes by
    backend, and no two models drawn alike (a ninth model repeats a colour, not a symbol)."""
    models = [f"m{k}" for k in range(10)]
    tp = pd.DataFrame([{"model": m, "backend": b, "batch": n, "tracks_per_s": 1e3 * (k + 1) * n}
                       for k, m in enumerate(models) for b in ("torch", "onnx")
                       for n in (1, 256)])
    fig = figures.throughput_lines(tp, 3e5, 2)
    lines = [t for t in fig.data if t.name and "(" in t.name and t.name.startswith("m")]
    assert len(lines) == 20
    look = {}
    for t in lines:
        model, backend = t.name.split(" (")
        assert t.legendgroup == model
        assert t.line.dash == {"torch)": "solid", "onnx)": "dot"}[backend]
        look.setdefault(model, set()).add((t.line.color, t.marker.color, t.marker.symbol))
    assert all(len(v) == 1 for v in look.values())  # one look per model, whatever the backend
    assert len({next(iter(v)) for v in look.values()}) == 10  # ten models, ten looks
    assert all(c == m for v in look.values() for c, m, _ in v)


def test_metric_by_model_puts_one_point_per_model_on_a_log_axis_with_the_target_named():
    table = pd.DataFrame({"model": ["mlp-tiny", "mlp-tiny+rk4x8"], "pos_mean_mm": [8.9, 0.0226]})
    fig = figures.metric_by_model(table, "pos_mean_mm", "mean position error (mm)", 0.1, "t")
    pts = fig.data[0]
    assert pts.type == "scatter" and pts.mode == "markers"  # no bar: its length means nothing
    assert list(pts.x) == ["mlp-tiny", "mlp-tiny+rk4x8"] and list(pts.y) == [8.9, 0.0226]
    assert fig.layout.yaxis.type == "log" and fig.layout.shapes[0].y0 == 0.1
    assert fig.data[1].name == "target 0.1"


def test_learning_curve_means_seeds_per_budget_and_titles_its_axis():
    curve = pd.DataFrame({"steps": [100] * 4 + [200] * 4, "n_train": [10, 10, 20, 20] * 2,
                          "seed": [0, 1] * 4,
                          "pos_mean_mm": [4.0, 6.0, 2.0, 4.0, 2.0, 2.0, 1.0, 1.0]})
    falling = {"values": {10: 2.0, 20: 1.0}, "flattens_after": None}
    fig = figures.learning_curve(curve, falling, falling)
    assert [t.name for t in fig.data] == ["100 steps", "200 steps"]
    assert list(fig.data[0].y) == [5.0, 3.0]  # means over the two seeds
    assert fig.layout.yaxis.title.text == "mean position error (mm)"  # not "pos_mean_mm"
    assert fig.layout.title.text == ("Hybrid learning curve: best 1 mm, still falling at the "
                                     "largest set and budget")
    flat = figures.learning_curve(curve, falling, {**falling, "flattens_after": 10})
    assert "flattening within the range tried" in flat.layout.title.text
