"""Plotly figures of the attention study (titles are passed in by the notebooks, computed)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import plots
from ..plots import PALETTE


def terrain_wind(terrain_m: np.ndarray, wind_ms: np.ndarray, title: str, every: int = 4,
                 dx_km: float = 1.0) -> go.Figure:
    """Terrain ``(n, n)`` heat map (m) with the deflected wind ``(2, n, n)`` as arrows."""
    n = terrain_m.shape[-1]
    x = np.arange(n) * dx_km
    fig = go.Figure(go.Heatmap(z=terrain_m, x=x, y=x, colorscale="Earth",
                               colorbar_title="height (m)"))
    speed = float(np.hypot(wind_ms[0], wind_ms[1]).max()) or 1.0
    scale = 0.9 * every * dx_km / speed
    xs, ys = [], []
    for j in range(every // 2, n, every):
        for i in range(every // 2, n, every):
            x0, y0 = i * dx_km, j * dx_km
            x1, y1 = x0 + scale * wind_ms[0, j, i], y0 + scale * wind_ms[1, j, i]
            xs += [x0, x1, None]
            ys += [y0, y1, None]
            xs += [x1, None]
            ys += [y1, None]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="white", width=1.5),
                             name="wind", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=xs[3::5], y=ys[3::5], mode="markers", name="arrow heads",
                             marker=dict(color="white", size=4), hoverinfo="skip",
                             showlegend=False))
    fig.update_layout(title=title, xaxis_title="x (km)", yaxis_title="y (km)",
                      width=620, height=560, showlegend=False)
    fig.update_yaxes(scaleanchor="x")
    return fig


def tracer_movie(frames: np.ndarray, terrain_m: np.ndarray, times_s: np.ndarray, title: str,
                 dx_km: float = 1.0) -> go.Figure:
    """Animated tracer ``(F, n, n)`` with terrain contours; a slider over ``times_s``."""
    n = frames.shape[-1]
    x = np.arange(n) * dx_km
    zmax = float(frames.max())
    contour = go.Contour(z=terrain_m, x=x, y=x, contours_coloring="lines", showscale=False,
                         line=dict(width=1), colorscale=[[0, "#555"], [1, "#555"]], ncontours=8,
                         hoverinfo="skip")
    heat = [go.Heatmap(z=f, x=x, y=x, zmin=0, zmax=zmax, colorscale="Viridis",
                       colorbar_title="tracer") for f in frames]
    fig = go.Figure(data=[heat[0], contour],
                    frames=[go.Frame(data=[h, contour], name=f"{t:.0f}")
                            for h, t in zip(heat, times_s, strict=True)])
    steps = [dict(method="animate", label=f"{t / 60:.0f} min",
                  args=[[f"{t:.0f}"], dict(mode="immediate", frame=dict(duration=0))])
             for t in times_s]
    fig.update_layout(
        title=title, width=620, height=650, xaxis_title="x (km)", yaxis_title="y (km)",
        # slider and play button below the x-axis title, side by side (they overlapped the
        # axis title and the top y tick)
        sliders=[dict(steps=steps, currentvalue=dict(prefix="t = "), pad=dict(t=60), x=0.12,
                      len=0.88)],
        updatemenus=[dict(type="buttons", x=0.0, xanchor="left", y=0.0, yanchor="top",
                          pad=dict(t=70), buttons=[dict(
                              label="play", method="animate",
                              args=[None, dict(frame=dict(duration=300), fromcurrent=True)])])])
    fig.update_yaxes(scaleanchor="x")
    return fig


def convergence(df: pd.DataFrame, order: float, title: str) -> go.Figure:
    """Puff error vs cell size (log–log) with a first-order reference line."""
    fig = go.Figure(go.Scatter(x=df["dx_m"], y=df["rel_error"], mode="lines+markers",
                               name=f"upwind FV (fitted order {order:.2f})"))
    ref = df["rel_error"].iloc[-1] * df["dx_m"] / df["dx_m"].iloc[-1]
    fig.add_trace(go.Scatter(x=df["dx_m"], y=ref, mode="lines", name="order 1",
                             line=dict(dash="dot", color=PALETTE[1])))
    fig.update_layout(title=title, xaxis_title="cell size dx (m)",
                      yaxis_title="relative L2 error vs analytic puff")
    fig.update_xaxes(type="log", exponentformat="power")
    fig.update_yaxes(type="log", exponentformat="power")
    plots.ticks_at_points(fig, df["dx_m"])  # the cell sizes run, 250 / 500 / 1,000 / 2,000 m
    return plots.tidy_log_axes(fig)


def bias_maps(maps: Mapping[str, np.ndarray], terrain_patch_m: np.ndarray, query: int,
              title: str) -> go.Figure:
    """Side-by-side ``(g, g)`` maps of each variant's bias from one query token (marked).

    Every bias map shares one symmetric colour scale (the largest |bias| of any variant) and
    its colour bar, so a bias a hundred times smaller than another looks a hundred times
    fainter; each panel's title gives its own largest |bias| and the terrain's its range."""
    peak = {name: float(np.abs(z).max()) for name, z in maps.items()}
    top = max(peak.values(), default=0.0) or 1.0
    lo, hi = float(terrain_patch_m.min()), float(terrain_patch_m.max())
    names = [f"terrain (patch mean)<br>{lo:.0f} to {hi:.0f} m",
             *(f"{n}<br>max |bias| {peak[n]:.2g}" for n in maps)]
    cols = 4
    rows = int(np.ceil(len(names) / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names,
                        horizontal_spacing=0.04, vertical_spacing=0.11)
    g = terrain_patch_m.shape[0]
    qy, qx = divmod(query, g)
    for k, z in enumerate([terrain_patch_m, *maps.values()]):
        r, c = divmod(k, cols)
        if k == 0:
            style = dict(colorscale="Earth", showscale=False)
        else:
            style = dict(colorscale="RdBu", zmin=-top, zmax=top, showscale=k == 1,
                         colorbar=dict(title="bias (logits)", len=0.8))
        fig.add_trace(go.Heatmap(z=z, hovertemplate="x=%{x} y=%{y}: %{z:.3g}<extra></extra>",
                                 **style), row=r + 1, col=c + 1)
        fig.add_trace(go.Scatter(x=[qx], y=[qy], mode="markers", showlegend=False,
                                 marker=dict(symbol="x", color="black", size=9)),
                      row=r + 1, col=c + 1)
    fig.update_layout(title=title, height=280 * rows + 120, width=1060, margin=dict(t=120))
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    return fig


def bias_scale(df: pd.DataFrame, title: str) -> go.Figure:
    """Bias magnitude (max |bias| over key tokens, logits) per variant, one point each on a
    log y axis (:func:`physml.plots.means_on_log_axis`), with the typical spread of the
    attention logits it is added to as a reference line. A variant whose bias is exactly 0
    (no terrain term at its initial parameters) has no place on a log axis: its label says
    "(0)" and it gets no point."""
    zero = df["max_abs_bias"].to_numpy() <= 0
    names = [f"{v} (0)" if z else v for v, z in zip(df["variant"], zero, strict=True)]
    fig = plots.means_on_log_axis(names, df["max_abs_bias"].where(~zero),
                                  hovertemplate="%{x}: %{y:.3g} logits<extra></extra>")
    plots.reference_line(fig, float(df["logit_std"].iloc[0]), "std of q·k/√d logits",
                         log_y=True, line_dash="dot", line_color=PALETTE[1])
    fig.update_layout(title=title, yaxis_title="max |bias| (logits)", showlegend=False)
    fig.update_yaxes(type="log", exponentformat="power")
    return plots.tidy_log_axes(fig)


def gain_bars(table: pd.DataFrame, title: str) -> go.Figure:
    """Relative gain vs no bias per variant with its paired 95% CI; the 10% line."""
    t = table.dropna(subset=["rel_gain"])
    t = t[~t["model"].isin(["persistence", "advection"])]
    fig = go.Figure(go.Bar(
        x=t["model"], y=100 * t["rel_gain"], marker_color=PALETTE[0],
        error_y=dict(type="data", symmetric=False, array=100 * (t["gain_high"] - t["rel_gain"]),
                     arrayminus=100 * (t["rel_gain"] - t["gain_low"])),
        hovertext=[f"{m}: {v}" for m, v in zip(t["model"], t["verdict"], strict=True)]))
    fig.add_hline(y=10, line_dash="dot", line_color=PALETTE[1], annotation_text="10% target")
    fig.add_hline(y=0, line_color="#888")
    fig.update_layout(title=title, yaxis_title="MSE reduction vs no bias (%)")
    return fig


def mse_by_bin(frame: pd.DataFrame, split: str, models: list[str], title: str) -> go.Figure:
    """Test MSE per Froude bin (mean over seeds with t-interval) for ``models``, log y."""
    from ..stats import summarize
    from .ablation import MSE_BOUNDS
    from .dataset import froude_bin_labels

    sub = frame[(frame["split"] == split) & frame["froude_bin"].isin(froude_bin_labels())
                & frame["model"].isin(models)]
    s = summarize(sub, value="mse", by=["model", "froude_bin"], bounds=MSE_BOUNDS)
    fig = go.Figure()
    for i, m in enumerate(models):
        r = s[s["model"] == m]
        fig.add_trace(go.Scatter(
            x=r["froude_bin"], y=r["mean"], name=m, mode="lines+markers",
            line_color=PALETTE[i % len(PALETTE)],
            error_y=dict(type="data", symmetric=False, array=r["ci_high"] - r["mean"],
                         arrayminus=r["mean"] - r["ci_low"])))
    fig.update_layout(title=title, xaxis_title="Froude bin", yaxis_title="test MSE")
    fig.update_yaxes(type="log", exponentformat="power")
    return plots.tidy_log_axes(fig)
