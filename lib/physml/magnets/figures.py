"""Plotly figures of the magnets study; every title states what the figure shows."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from physml import plots
from physml.plots import PALETTE
from physml.results import count_noun
from physml.stats import UNIT_INTERVAL, summarize

from .hand import FINGERS, STATE_CODES


def field_error_figure(curve, breakdown_1pct):
    """Dipole-vs-cylinder relative error against distance (log-log)."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=curve["distance_diam"], y=curve["max_rel_err"], name="max",
                             mode="lines+markers"))
    fig.add_trace(go.Scatter(x=curve["distance_diam"], y=curve["median_rel_err"], name="median",
                             mode="lines+markers"))
    plots.reference_line(fig, 0.01, "1%", log_y=True, line_dash="dot")
    dist, worst = np.asarray(curve["distance_diam"]), np.asarray(curve["max_rel_err"])
    near = int(np.argmin(dist))
    fig.update_layout(
        title=f"The dipole approximation is within 1% beyond {breakdown_1pct:.1f} magnet "
              f"diameters; at {dist[near]:.2g} diameter{'' if dist[near] == 1 else 's'} it is "
              f"off by up to {worst[near]:.0%}",
        xaxis_title="distance from magnet centre (diameters)",
        yaxis_title="|B_dipole − B_cylinder| / |B_cylinder|")
    fig.update_xaxes(type="log", exponentformat="power")
    fig.update_yaxes(type="log", exponentformat="power")
    return plots.tidy_log_axes(fig)


def fit_convergence_figure(results):
    """Loss vs iteration and vs wall time for {model: FitResult}."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss vs iteration", "loss vs time"))
    for i, (name, r) in enumerate(results.items()):
        c = PALETTE[i % len(PALETTE)]
        h = r.history
        fig.add_trace(go.Scatter(x=h["iteration"], y=h["loss"], name=name, line_color=c,
                                 legendgroup=name), 1, 1)
        fig.add_trace(go.Scatter(x=h["time_s"], y=h["loss"], name=name, line_color=c,
                                 legendgroup=name, showlegend=False), 1, 2)
    best = min(results, key=lambda k: results[k].final_loss)
    slowest = max(r.history["time_s"][-1] for r in results.values())
    fig.update_layout(title=f"All fits finish within {slowest:.2f} s after compilation; lowest "
                            f"loss: {best} ({results[best].final_loss:.3g} µT²)")
    fig.update_yaxes(type="log",
                     exponentformat="power", title_text="weighted SSE of state means (µT²)")
    fig.update_xaxes(title_text="L-BFGS iteration", row=1, col=1)
    fig.update_xaxes(title_text="seconds (after compilation)", row=1, col=2)
    return plots.tidy_log_axes(fig)


def moments_figure(results, true_moment, plausible):
    """Fitted moment magnitudes per finger for each model vs truth and the plausible band."""
    fig = go.Figure()
    x = list(FINGERS)
    band = "#2e8b57"
    fig.add_hrect(y0=plausible[0], y1=plausible[1], fillcolor=band, opacity=0.15, line_width=0,
                  layer="below")
    n_bad = 0
    for i, (name, r) in enumerate(results.items()):
        m = r.moments()
        m = m.mean(axis=1) if m.ndim == 2 else m
        n_bad += int(np.sum([not row["plausible"] for row in r.magnet_report()]))
        fig.add_trace(go.Bar(x=x, y=m, name=name, marker_color=PALETTE[i % len(PALETTE)]))
    fig.add_trace(go.Scatter(x=x, y=true_moment, mode="markers", name="true (simulator)",
                             marker=dict(symbol="x", size=12, color="black")))
    # the band is named in the legend: a label inside it would sit on the bars and markers
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="physically plausible "
                             "(Ø6×3 mm, N35–N52)", marker=dict(symbol="square", size=14,
                                                              color=band, opacity=0.3)))
    fig.update_layout(barmode="group", yaxis_title="moment |m| (A·m²)",
                      title=f"Fitted moments vs truth: "
                            f"{count_noun(n_bad, 'implausible fitted magnet')} across all models")
    return fig


def residual_figure(fit_runs):
    """Per-state field error (µT) of each model's templates vs the true finite-magnet fields."""
    fig = go.Figure()
    for i, (name, run) in enumerate(fit_runs.items()):
        seen = np.isin(np.arange(32), run["train_states"])
        fig.add_trace(go.Bar(x=list(STATE_CODES), y=run["residual_uT"], name=name,
                             marker_color=PALETTE[i % len(PALETTE)],
                             marker_pattern_shape=np.where(seen, "", "/").tolist()))
    worst = max(fit_runs, key=lambda k: fit_runs[k]["unseen_rmse_uT"])
    fig.update_layout(
        barmode="group", xaxis_title="state (hatched: never seen in the fit)",
        yaxis_title="|template − true field| (µT)",
        title=f"Per-state template error; unseen-state RMSE up to "
              f"{fit_runs[worst]['unseen_rmse_uT']:.2g} µT ({worst})")
    return fig


def per_finger_figure(runs, names):
    """Per-finger accuracy on held-out states (mean and CI over seeds)."""
    fig = go.Figure()
    for i, n in enumerate(names):
        v = np.array([r["per_finger"][n] for r in runs])  # (seeds, 5)
        cis = list(summarize(dict(zip(FINGERS, v.T, strict=True)), bounds=UNIT_INTERVAL).values())
        fig.add_trace(go.Bar(x=list(FINGERS), y=[c.mean for c in cis], name=n,
                             marker_color=PALETTE[i % len(PALETTE)],
                             error_y=dict(type="data", symmetric=False,
                                          array=[c.high - c.mean for c in cis],
                                          arrayminus=[c.mean - c.low for c in cis])))
    worst = min(range(5), key=lambda f: np.mean([r["per_finger"][names[0]][f] for r in runs]))
    fig.update_layout(barmode="group", yaxis_title="accuracy on held-out states",
                      title=f"Per-finger accuracy on states never seen; hardest finger for "
                            f"{names[0]}: {FINGERS[worst]}")
    return fig


def state_field_points(fields_uT, size=4):
    """The 32 state fields (32, 3) µT as labelled 3-D points (a hover names state and field)."""
    f = np.asarray(fields_uT, float)
    return go.Scatter3d(x=f[:, 0], y=f[:, 1], z=f[:, 2], mode="markers+text",
                        text=list(STATE_CODES), textfont_size=8,
                        marker=dict(size=size, color=np.arange(32), colorscale="Viridis"),
                        name="32 states", hovertemplate="%{text}<br>(%{x:.1f}, %{y:.1f}, "
                                                         "%{z:.1f}) µT<extra></extra>")


FIELD_SCENE = dict(xaxis=dict(title="Bx (µT)", nticks=5), yaxis=dict(title="By (µT)", nticks=5),
                   zaxis=dict(title="Bz (µT)", nticks=5),
                   camera=dict(eye=dict(x=1.6, y=1.6, z=1.2)))
"""Axes of a 3-D scene of field readings: named with units, five ticks each (more crowd the
short axis of a scene drawn at half the page's width), seen from a little farther than
Plotly's default camera so that the axis names stay inside the scene."""


def placement_figure(fields_default, fields_best, acc_default, acc_best):
    """32 state fields (µT) for the default and the optimised placement, side by side."""
    fig = make_subplots(rows=1, cols=2, specs=[[{"type": "scene"}, {"type": "scene"}]],
                        subplot_titles=(f"default: expected accuracy {acc_default:.3f}",
                                        f"optimised: expected accuracy {acc_best:.3f}"))
    for col, f in ((1, fields_default), (2, fields_best)):
        fig.add_trace(state_field_points(f, size=3), 1, col)
    verb = "raises" if acc_best > acc_default else "does not raise"
    fig.update_layout(height=550, showlegend=False, scene=FIELD_SCENE, scene2=FIELD_SCENE,
                      margin=dict(l=60),  # room for the left scene's Bz name
                      title=f"The optimised placement {verb} the expected accuracy "
                            f"({acc_default:.3f} → {acc_best:.3f})")
    return fig
