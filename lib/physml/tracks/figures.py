"""Plotly figures of the tracks study; titles carry the conclusion, computed from the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from physml import plots
from physml.results import count_noun


def field_map(field, summary: dict) -> go.Figure:
    """By in the y = 0 plane (x-z heat map) and By, Bz along the axis."""
    xs, _, zs = field.axes()
    X, Z = np.meshgrid(xs, zs, indexing="ij")
    b = field(np.stack([X.ravel(), np.zeros(X.size), Z.ravel()], 1)).reshape(*X.shape, 3)
    z = np.arange(zs[0], zs[-1] + 1, 10.0)
    ax = field(np.stack([0 * z, 0 * z, z], 1))
    # the gap leaves room for the map's colour bar left of the second panel's axis title
    fig = make_subplots(rows=1, cols=2, subplot_titles=("By (T) in the plane y = 0",
                                                        "on the axis x = y = 0"),
                        horizontal_spacing=0.2)
    fig.add_trace(go.Heatmap(x=zs / 1000, y=xs / 1000, z=b[:, :, 1], colorscale="RdBu_r",
                             zmid=0, colorbar=dict(title="By (T)", x=0.42)), 1, 1)
    fig.add_trace(go.Scatter(x=z / 1000, y=ax[:, 1], name="By"), 1, 2)
    fig.add_trace(go.Scatter(x=z / 1000, y=ax[:, 2], name="Bz"), 1, 2)
    fig.update_xaxes(title_text="z (m)")
    fig.update_yaxes(title_text="x (m)", row=1, col=1)
    fig.update_yaxes(title_text="B (T)", row=1, col=2)
    fig.update_layout(title=f"The field peaks at {summary['peak_by_tesla']:.2f} T near "
                      f"z = {summary['z_peak_mm'] / 1000:.1f} m with ∫By dz = "
                      f"{summary['integral_by_tesla_m']:.2f} T·m on axis")
    return fig


def step_scan(scan: pd.DataFrame, tol_um: float = 1.0) -> go.Figure:
    """Max position error vs throughput for each RK4 step (and Cash-Karp)."""
    rk = scan[scan["method"] == "rk4"]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=rk["tracks_per_s"], y=rk["max_err_um"], mode="lines+markers+text",
                             text=[f"{h:g} mm" for h in rk["step_mm"]], textposition="top right",
                             name="RK4 (max over tracks)"))
    fig.add_trace(go.Scatter(x=rk["tracks_per_s"], y=rk["p99_err_um"], mode="lines+markers",
                             name="RK4 (99th percentile)"))
    ck = scan[scan["method"] != "rk4"]
    fig.add_trace(go.Scatter(x=ck["tracks_per_s"], y=ck["max_err_um"], mode="markers",
                             marker=dict(symbol="diamond", size=11), name="Cash-Karp"))
    plots.reference_line(fig, tol_um, f"{tol_um:g} µm", log_y=True, line_dash="dot")
    ok = rk[rk["max_err_um"] <= tol_um]
    best = (f"the fastest RK4 step within {tol_um:g} µm is {ok['step_mm'].max():g} mm at "
            f"{ok.loc[ok['step_mm'].idxmax(), 'tracks_per_s']:,.0f} tracks/s" if len(ok)
            else f"no RK4 step tried stays within {tol_um:g} µm")
    fig.update_layout(title=f"Step size trades accuracy for speed: {best}",
                      xaxis_title="tracks / s", yaxis_title="position error vs DOP853 (µm)",
                      xaxis_type="log", yaxis_type="log",
                      xaxis_exponentformat="power", yaxis_exponentformat="power")
    return plots.tidy_log_axes(fig)


def convergence_order(conv: dict) -> go.Figure:
    """Log-log RK4 error vs step with the fitted slope."""
    h = np.array(conv["steps_mm"])
    e = np.array(conv["max_err_mm"]) * 1000
    fig = go.Figure(go.Scatter(x=h, y=e, mode="lines+markers", name="RK4 max |Δx, Δy|"))
    fig.add_trace(go.Scatter(x=h, y=e[-1] * (h / h[-1]) ** 4, mode="lines", name="∝ h⁴",
                             line=dict(dash="dot")))
    fig.update_layout(title=f"RK4 converges with order {conv['order']:.2f} on the smooth "
                      "Gaussian field", xaxis_title="step (mm)", yaxis_title="error (µm)",
                      xaxis_type="log", yaxis_type="log",
                      xaxis_exponentformat="power", yaxis_exponentformat="power")
    return plots.tidy_log_axes(fig)


def metric_by_model(table: pd.DataFrame, metric: str, label: str, target: float | None = None,
                    title: str = "") -> go.Figure:
    """One metric per model (rows of a summary table with a ``model`` column), as points on a
    log axis (:func:`physml.plots.means_on_log_axis`)."""
    fig = plots.means_on_log_axis(table["model"], table[metric])
    if target is not None:  # named in the legend: a label on the line could sit on a point
        fig.add_hline(y=target, line_dash="dot", line_color="black")
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=f"target {target:g}",
                                 line=dict(dash="dot", color="black")))
    fig.update_layout(title=title, yaxis_title=label, yaxis_type="log",
                      yaxis_exponentformat="power")
    return plots.tidy_log_axes(fig)


def size_vs_speed(conv: pd.DataFrame) -> go.Figure:
    """Parameters vs epochs to 90% of the final accuracy, one series per model family (the
    ``model`` without its size: architecture and prior, e.g. ``mlp``, ``mlp+kick``).

    Each family's legend entry gives Spearman's ρ within it when it was run at two or more
    sizes (across families the parameter count is confounded with the architecture, the prior
    and the step budget, so no pooled ρ is given); ρ is "undefined" when every run of the
    family took the same number of epochs."""
    fig = go.Figure()
    ranked = False
    family = [m.replace(f"-{s}", "", 1) for m, s in zip(conv["model"], conv["size"], strict=True)]
    for i, (name, g) in enumerate(conv.groupby(np.array(family), sort=False)):
        label = name
        if g["params"].nunique() >= 2 and len(g) >= 3:
            ranked = True
            rho = (g[["params", "epochs_to_90pct"]].corr(method="spearman").iloc[0, 1]
                   if g["epochs_to_90pct"].nunique() > 1 else np.nan)
            label += (f" (ρ = {rho:.2f}, {len(g)} runs)" if np.isfinite(rho) else
                      f" (ρ undefined: all {len(g)} runs equal)")
        fig.add_trace(go.Scatter(x=g["params"], y=g["epochs_to_90pct"], mode="markers",
                                 name=label, marker=plots.series_style(i) | {"size": 10}))
    what = ("Spearman's ρ within each model family in the legend" if ranked else
            "one size per model family: parameters differ only by family, no size effect to "
            "measure")
    fig.update_layout(title=f"Model size vs convergence speed ({what})",
                      xaxis_title="parameters", xaxis_type="log", xaxis_exponentformat="power",
                      yaxis_title="epochs to 90% of final accuracy")
    return plots.tidy_log_axes(fig)


def sweep(df: pd.DataFrame, x: str, metric: str, group: str, title: str,
          x_title: str, log_x: bool = True, y_title: str | None = None) -> go.Figure:
    """Mean of ``metric`` over seeds vs column ``x``, one line per ``group``, bars = min/max;
    the y axis titled ``y_title`` (default: the column name)."""
    fig = go.Figure()
    for name, g in df.groupby(group, sort=False):
        agg = g.groupby(x)[metric].agg(["mean", "min", "max"]).reset_index()
        fig.add_trace(go.Scatter(
            x=agg[x], y=agg["mean"], mode="lines+markers", name=str(name),
            error_y=dict(type="data", symmetric=False, array=agg["max"] - agg["mean"],
                         arrayminus=agg["mean"] - agg["min"])))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title or metric,
                      yaxis_type="log", yaxis_exponentformat="power",
                      xaxis_type="log" if log_x else "linear",
                      xaxis_exponentformat="power" if log_x else "B")
    if log_x:
        plots.ticks_at_points(fig, df[x])
    return plots.tidy_log_axes(fig)


def throughput_lines(tp: pd.DataFrame, rk4_tracks_per_s: float, threads: int) -> go.Figure:
    """Tracks/s vs batch size per model and backend, with RK4's figure on the same threads;
    the title names the fastest at the largest batch, whatever its accuracy. A model keeps one
    colour and marker over its backends (:func:`plots.series_style`), the backend is the line's
    dash (torch solid, ONNX Runtime dotted, numba dash-dotted), and a click on a model's legend
    entry hides all its backends: a research render benchmarks dozens of model × backend
    lines, which the palette's eight colours alone could not tell apart."""
    dash = {"torch": "solid", "onnx": "dot", "numba": "dashdot"}
    index = {m: i for i, m in enumerate(pd.unique(tp["model"]))}
    fig = go.Figure()
    for (model, backend), g in tp.groupby(["model", "backend"], sort=False):
        style = plots.series_style(index[model])
        fig.add_trace(go.Scatter(x=g["batch"], y=g["tracks_per_s"], mode="lines+markers",
                                 name=f"{model} ({backend})", legendgroup=model, marker=style,
                                 line=dict(color=style["color"], dash=dash.get(backend, "dash"))))
    plots.reference_line(fig, rk4_tracks_per_s, "RK4 (numba)", log_y=True, line_dash="dash")
    best = tp[tp["batch"] == tp["batch"].max()].sort_values("tracks_per_s").iloc[-1]
    fig.update_layout(
        title=f"On {count_noun(threads, 'thread')}, at batch {int(best['batch'])} the fastest "
              f"surrogate, at any accuracy ({best['model']}, {best['backend']}), runs "
              f"{best['tracks_per_s'] / rk4_tracks_per_s:.2g}x RK4",
        xaxis_title="batch size", yaxis_title="tracks / s", xaxis_type="log",
        xaxis_exponentformat="power", yaxis_type="log", yaxis_exponentformat="power")
    return plots.tidy_log_axes(plots.ticks_at_points(fig, tp["batch"]))


METRIC_TITLES = {"pos_mean_mm": "mean position error (mm)",
                 "pos_95_mm": "95th percentile position error (mm)",
                 "slope_mean": "mean slope error"}
"""Axis titles of the test metrics (a metric not here is titled by its column name)."""


def learning_curve(curve: pd.DataFrame, by_steps: dict, by_data: dict,
                   metric: str = "pos_mean_mm") -> go.Figure:
    """Error vs training tracks, one line per optimiser-step budget (mean over seeds)."""
    fig = go.Figure()
    for k, g in curve.groupby("steps"):
        m = g.groupby("n_train")[metric].mean()
        fig.add_trace(go.Scatter(x=m.index, y=m.values, mode="lines+markers",
                                 name=f"{int(k):,} steps"))
    best = min(by_data["values"].values())
    flat = ("still falling at the largest set and budget"
            if by_data["flattens_after"] is None and by_steps["flattens_after"] is None
            else "flattening within the range tried")
    fig.update_layout(title=f"Hybrid learning curve: best {best:.3g} mm, {flat}",
                      xaxis_title="training tracks",
                      yaxis_title=METRIC_TITLES.get(metric, metric), xaxis_type="log",
                      xaxis_exponentformat="power",
                      yaxis_type="log", yaxis_exponentformat="power")
    return plots.tidy_log_axes(plots.ticks_at_points(fig, curve["n_train"]))


def stage_losses(history: dict, label: str) -> go.Figure:
    """The four per-stage ODE residual losses of one RK-PINN run, per epoch (train)."""
    fig = go.Figure()
    rows = history["train"]
    for k in range(1, 5):
        key = f"pde_stage{k}"
        if rows and key in rows[0]:
            fig.add_trace(go.Scatter(x=[r["epoch"] for r in rows], y=[r[key] for r in rows],
                                     mode=plots.line_mode(len(rows)),
                                     name=f"stage {k} (ζ = {k / 4:g})"))
    last = rows[-1] if rows else {}
    vals = {k: last.get(f"pde_stage{k}", np.nan) for k in range(1, 5)}
    worst = max(vals, key=lambda k: vals[k])
    fig.update_layout(title=f"{label}: stage {worst} (ζ = {worst / 4:g}) keeps the largest "
                      f"ODE residual at the last epoch", xaxis_title="epoch",
                      yaxis_title="stage residual loss", yaxis_type="log",
                      yaxis_exponentformat="power")
    return plots.tidy_log_axes(plots.whole_number_ticks(fig, [r["epoch"] for r in rows]))


MAGNET_LABELS = {"iron_yoke": "iron yoke (default)", "air_core": "air-core coils (option)",
                 "iron_poles": "short iron poles (option)"}


def _label(name: str) -> str:
    return MAGNET_LABELS.get(name, name)


def uniformity_maps(results: dict, goal: float) -> go.Figure:
    """Side-by-side heat maps of By / By(0, 0, z_c) - 1 (%) at each magnet's centre plane
    (``results``: name -> :func:`~physml.tracks.field.box_uniformity` dict), each on its own
    colour scale (clipped at 5 x ``goal``); the title says which stay within ``goal``."""
    names = list(results)
    titles = [f"{_label(k)}: max {results[k]['max_dev_centre_plane']:.1%}" for k in names]
    spacing = 0.2
    width = (1 - spacing * (len(names) - 1)) / len(names)  # of each panel, in paper units
    fig = make_subplots(rows=1, cols=len(names), horizontal_spacing=spacing,
                        subplot_titles=titles)
    for c, k in enumerate(names, start=1):
        r = results[k]
        g = r["axis_mm"] / 1000
        lim = 100 * min(r["max_dev_centre_plane"], 5 * goal)  # each panel its own scale
        x_bar = (c - 1) * (width + spacing) + width + 0.01  # just right of its panel
        fig.add_trace(go.Heatmap(x=g, y=g, z=100 * r["deviation_centre_plane"].T,
                                 colorscale="RdBu_r", zmin=-lim, zmax=lim,
                                 colorbar=dict(title="ΔBy/B0 (%)", x=x_bar, len=0.8)),
                      row=1, col=c)
        fig.update_xaxes(title_text="x (m)", row=1, col=c)
        fig.update_yaxes(title_text="y (m)", row=1, col=c)
    meet = [_label(k) for k in names if results[k]["max_dev_centre_plane"] <= goal]
    half = results[names[0]]["half_mm"] / 1000
    fig.update_layout(
        width=980, height=500, margin=dict(t=120),
        title=(f"By at the centre plane within ±{goal:.0%} of its axis value over |x|, |y| ≤ "
               f"{half:g} m: {', '.join(meet) if meet else 'neither magnet'}"))
    return fig


def uniformity_along_z(results: dict, goal: float) -> go.Figure:
    """Max |By / B0 - 1| over the box |x|, |y| <= half at each plane z, one line per magnet
    (``results``: name -> :func:`~physml.tracks.field.box_uniformity` dict)."""
    fig = go.Figure()
    for k, r in results.items():
        fig.add_trace(go.Scatter(x=r["z_mm"] / 1000, y=100 * r["dev_centre"],
                                 mode="lines+markers", name=_label(k)))
    plots.reference_line(fig, 100 * goal, f"±{goal:.0%}", log_y=True, line_dash="dot")
    spans = [f"{_label(k)} from z = {r['z_within_goal_mm'][0] / 1000:.2f} to "
             f"{r['z_within_goal_mm'][1] / 1000:.2f} m" for k, r in results.items()
             if r["z_within_goal_mm"] is not None]
    half = next(iter(results.values()))["half_mm"] / 1000
    devs = np.concatenate([100 * r["dev_centre"] for r in results.values()] + [[100 * goal]])
    devs = devs[devs > 0]
    fig.update_layout(
        title=(f"Within ±{goal:.0%} of B0 = By(0, 0, z_c) over |x|, |y| ≤ {half:g} m: "
               f"{'; '.join(spans) if spans else 'no magnet at its centre plane'}"),
        xaxis_title="z (m)", yaxis_title="max |By / B0 − 1| over the square (%)",
        yaxis_type="log", yaxis_exponentformat="power",
        # explicit range: 0.2 decades beyond the lines and the goal
        yaxis_range=[np.log10(devs.min()) - 0.2, np.log10(devs.max()) + 0.2])
    return plots.tidy_log_axes(fig)


def aperture(clear: dict) -> go.Figure:
    """Pole-face half-height and the study's tracks' max |y| along z
    (:func:`~physml.tracks.field.aperture_clearance`)."""
    z = clear["z_mm"] / 1000
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=z, y=clear["gap_half_mm"] / 1000, mode="lines", name="pole face",
                             line=dict(width=3)))
    fig.add_trace(go.Scatter(x=z, y=clear["max_abs_y_mm"] / 1000, mode="lines",
                             name=f"max |y| of {clear['n_tracks']} tracks"))
    fig.update_layout(
        title=(f"The study's tracks clear the pole faces by at least "
               f"{clear['min_clearance_mm']:.0f} mm (at z = "
               f"{clear['z_min_clearance_mm'] / 1000:.1f} m); max |x| "
               f"{clear['max_abs_x_mm'] / 1000:.2f} m vs pole half-width "
               f"{clear['pole_half_width_mm'] / 1000:g} m"),
        xaxis_title="z (m)", yaxis_title="|y| (m)")
    return fig


def integral_uniformity(results: dict, goal: float) -> go.Figure:
    """Side-by-side heat maps of I(x, y) / I(0, 0) - 1 (%) (``results``: name ->
    :func:`~.ground_truth.integral_uniformity` dict), on one colour scale; the title says
    which meet ``goal``."""
    names = list(results)
    lim = 100 * max(r["max_dev"] for r in results.values())
    titles = [f"{_label(k)}: max {results[k]['max_dev']:.1%}" for k in names]
    fig = make_subplots(rows=1, cols=len(names), horizontal_spacing=0.12, subplot_titles=titles)
    for c, k in enumerate(names, start=1):
        r = results[k]
        g = r["axis_mm"] / 1000
        fig.add_trace(go.Heatmap(x=g, y=g, z=100 * r["deviation"].T, colorscale="RdBu_r",
                                 zmin=-lim, zmax=lim, showscale=c == len(names),
                                 colorbar=dict(title="ΔI / I (%)")), row=1, col=c)
        fig.update_xaxes(title_text="x (m)", row=1, col=c)
        fig.update_yaxes(title_text="y (m)", row=1, col=c)
    meet = [_label(k) for k in names if results[k]["max_dev"] <= goal]
    fig.update_layout(
        width=980, height=500, margin=dict(t=120),
        title=(f"Field integral ∫By dz within ±{goal:.0%} over |x|, |y| ≤ "
               f"{results[names[0]]['half_mm'] / 1000:g} m: "
               f"{', '.join(meet) if meet else 'neither magnet'}"))
    return fig


def error_vs_dz(test: dict, predictions: dict, p_min: float, n_bins: int = 12,
                fixed: tuple[float, float, str] | None = None) -> go.Figure:
    """Mean position error (mm, 95% CI over the tracks of each bin) vs dz, one line per model
    of ``predictions`` (label -> end states (n, 4) for the tracks of ``test``), tracks with
    p >= ``p_min``, ``n_bins`` equal dz bins; ``fixed`` = (dz mm, error mm, label) marks a
    fixed-plane model's test error. The title names the most accurate model's best and worst
    bins."""
    from physml.plots import curves_with_ci

    keep = 1 / np.abs(test["initial"][:, 4]) >= p_min
    dz = test["dz"][keep]
    edges = np.linspace(dz.min(), dz.max(), n_bins + 1)
    b = np.clip(np.digitize(dz, edges) - 1, 0, n_bins - 1)
    centres = (edges[:-1] + edges[1:]) / 2000
    groups = {}
    for label, out in predictions.items():
        err = np.hypot(*(out[keep, :2] - test["final"][keep, :2]).T)
        groups[label] = [err[b == k] for k in range(n_bins)]
    best = min(groups, key=lambda k: np.concatenate(groups[k]).mean())
    means = np.array([g.mean() for g in groups[best]])
    fig = curves_with_ci(
        centres, groups, f"{best}: mean error {means.min():.2g}–{means.max():.2g} mm over the "
        f"dz bins, worst near dz = {centres[means.argmax()]:.2g} m (tracks with p ≥ {p_min:g} "
        "GeV, 95% CI over each bin's tracks)", "dz (m)", "mean position error (mm)", log_y=True)
    if fixed is not None:
        fig.add_trace(go.Scatter(x=[fixed[0] / 1000], y=[fixed[1]], mode="markers",
                                 marker=dict(symbol="star", size=12), name=fixed[2]))
    return fig


def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``points`` (pos_mean_mm, tracks_per_s) that no other row beats on both:
    each is faster than every row at least as accurate. Sorted from most accurate."""
    p = points.sort_values(["pos_mean_mm", "tracks_per_s"], ascending=[True, False])
    best = np.maximum.accumulate(p["tracks_per_s"].to_numpy())
    keep = np.r_[True, p["tracks_per_s"].to_numpy()[1:] > best[:-1]]
    return p[keep]


def accuracy_vs_speed(points: pd.DataFrame, threads: int, batch: int, where: str) -> go.Figure:
    """Tracks/s against mean position error, one trace per family of ``points`` (columns model,
    family, pos_mean_mm, tracks_per_s; a family with a ``rk4_steps`` column value is drawn as a
    line in step order, the others as markers), the :func:`pareto_front` circled. The title
    names the front from the most accurate end, family by family (three to a line)."""
    fig = go.Figure()
    for fam, g in points.groupby("family", sort=False):
        line = "rk4_steps" in g and g["rk4_steps"].notna().all()
        g = g.sort_values("rk4_steps") if line else g
        fig.add_trace(go.Scatter(x=g["pos_mean_mm"], y=g["tracks_per_s"], name=fam,
                                 mode="lines+markers" if line else "markers",
                                 marker=dict(size=7 if line else 10), text=g["model"],
                                 hovertemplate="%{text}: %{x:.3g} mm, %{y:,.0f} tracks/s"))
    front = pareto_front(points)
    fig.add_trace(go.Scatter(x=front["pos_mean_mm"], y=front["tracks_per_s"], mode="markers",
                             name="fastest at its accuracy (Pareto front)", hoverinfo="skip",
                             marker=dict(size=16, color="rgba(0,0,0,0)",
                                         line=dict(width=1.5, color="black"))))
    runs, prev = [], None
    for r in front.itertuples():
        if r.family != prev:
            runs.append([r.family, r.pos_mean_mm, r.pos_mean_mm])
            prev = r.family
        runs[-1][2] = r.pos_mean_mm
    parts = [f"{fam} ({lo:.2g} mm)" if lo == hi else f"{fam} ({lo:.2g}–{hi:.2g} mm)"
             for fam, lo, hi in runs]
    lines = [" → ".join(parts[i:i + 3]) for i in range(0, len(parts), 3)]
    fig.update_layout(
        title=f"{where}, {count_noun(threads, 'thread')}, batch {batch}: the fastest at each "
              "accuracy (circled), from the most accurate:<br>" + " →<br>".join(lines),
        margin=dict(t=60 + 22 * len(lines)),
        xaxis_title="mean position error, test tracks p ≥ 2 GeV (mm)", yaxis_title="tracks / s",
        xaxis_type="log", yaxis_type="log",
        xaxis_exponentformat="power", yaxis_exponentformat="power")
    return plots.tidy_log_axes(fig)


def schedule_scan(table: pd.DataFrame, err_mm: float, what: str) -> go.Figure:
    """Validation error against steps per track, one line per schedule family of ``table``
    (:func:`physml.tracks.coarse_schedules.scan`: family, setting, steps, val_pos_mean_mm),
    with the error to reach (``err_mm``, ``what``'s) as a dotted line. The title names each
    family's fewest steps at or below it."""
    from physml.tracks.coarse_schedules import picks
    from physml.tracks.experiments import SELECT_ON

    fig = go.Figure()
    for fam, g in table.groupby("family", sort=False):
        g = g.sort_values("steps", kind="stable")
        fig.add_trace(go.Scatter(x=g["steps"], y=g[SELECT_ON], name=fam, mode="lines+markers",
                                 text=g["setting"],
                                 hovertemplate="%{text}: %{x} steps, %{y:.3g} mm"))
    plots.reference_line(fig, err_mm, f"{what}: {err_mm:.3g} mm", log_y=True, line_dash="dot")
    fewest = [f"{fam}: {r['steps']}" if r is not None else f"{fam}: not reached"
              for fam, r in picks(table, err_mm).items()]
    fig.update_layout(
        title="Coarse RK4 schedules: fewest steps at the matched validation error —<br>"
              + "; ".join(fewest),
        margin=dict(t=90), xaxis_title="RK4 steps per track",
        yaxis_title="validation mean error, p ≥ 2 GeV (mm)", yaxis_type="log",
        yaxis_exponentformat="power")
    return plots.tidy_log_axes(fig)
