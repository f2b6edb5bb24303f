"""Plotly figures of the vacua study; titles state what the figure shows, from the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from physml import plots, stats
from physml.plots import PALETTE

from .labels import LABELS

AXIS_NAMES = {"n_moduli": "number of moduli n"}
"""Axis titles of table columns (others: the key with spaces for underscores)."""
SHORT_NAMES = {"n_moduli": "n"}
"""What a title calls a column once its axis has named it."""


def _words(key: str, short: bool = False) -> str:
    """A column or label key as words: ``n_moduli`` -> "number of moduli n" (``short``: "n"),
    ``stable_minimum`` -> "stable minimum"."""
    return (SHORT_NAMES if short else AXIS_NAMES).get(key, key.replace("_", " "))


def fd_error_vs_step(curves: dict[str, pd.DataFrame]) -> go.Figure:
    """Relative error of central finite differences vs the step h, one pair of curves (gradient,
    Hessian) per point kind; ``curves``: {point name: output of derivatives.fd_error_vs_step}."""
    fig = go.Figure()
    for k, (name, df) in enumerate(curves.items()):
        c = PALETTE[k % len(PALETTE)]
        fig.add_trace(go.Scatter(x=df.h, y=df.grad_rel_err, name=f"gradient, {name}",
                                 line=dict(color=c)))
        fig.add_trace(go.Scatter(x=df.h, y=df.hess_rel_err, name=f"Hessian, {name}",
                                 line=dict(color=c, dash="dash")))
    best = {n: df.loc[df.grad_rel_err.idxmin()] for n, df in curves.items()}
    txt = ", ".join(f"{n}: {b.grad_rel_err:.1e} (h = {b.h:.0e})" for n, b in best.items())
    fig.update_layout(title=f"Central differences against the analytic derivatives, smallest "
                            f"gradient error {txt}", xaxis_title="step h",
                      yaxis_title="relative error")
    fig.update_xaxes(type="log", exponentformat="power")
    fig.update_yaxes(type="log", exponentformat="power")
    return plots.tidy_log_axes(fig)


def source_defect(df: pd.DataFrame) -> go.Figure:
    """Box plot of Hessian relative error vs autodiff: ours and the source's δ² version, by point
    kind (output of derivatives.source_defect)."""
    fig = go.Figure()
    for k, (col, name) in enumerate([("ours_rel_err", "analytic (δ)"),
                                     ("source_rel_err", "source (δ²)")]):
        fig.add_trace(go.Box(x=df.point, y=np.maximum(df[col], 1e-17), name=name,
                             marker_color=PALETTE[k]))
    kink = df[df.point == "near_kink"].source_rel_err.median()
    fig.update_layout(boxmode="group", yaxis_title="max |H − H_autodiff| / max |H_autodiff|",
                      title=f"Hessian against autodiff: the source's δ² version is off by a "
                            f"median {kink:.2g} near the kinks, ours by at most "
                            f"{df.ours_rel_err.max():.1e} anywhere")
    fig.update_yaxes(type="log", exponentformat="power")
    return plots.tidy_log_axes(fig)


def solver_cost_by_n(summary_n: pd.DataFrame, column: str = "wall_ms_per_potential",
                     y_title: str = "wall time per potential (ms)") -> go.Figure:
    """One line per method of ``column`` vs n (output of race.cost_by_n, by
    (method, n)); the title says for which methods the cost grew from the smallest n to the
    largest, and names the cheapest at the largest n."""
    fig = go.Figure()
    grows, methods = [], []
    for k, (m, d) in enumerate(summary_n.groupby("method")):
        d = d.sort_values("n")
        fig.add_trace(go.Scatter(x=d.n, y=d[column], name=m, mode="lines+markers",
                                 line=dict(color=PALETTE[k % len(PALETTE)])))
        methods.append(m)
        if len(d) >= 2 and d[column].iloc[-1] > d[column].iloc[0]:
            grows.append(m)
    n_max = summary_n.n.max()
    last = summary_n[summary_n.n == n_max].set_index("method")[column]
    what = y_title.split(" (")[0].capitalize()
    if summary_n.n.nunique() < 2:
        trend = f"{what} at one n only"
    elif len(grows) == len(methods):
        trend = f"{what} grows with n for every method"
    elif not grows:
        trend = f"{what} does not grow with n for any method"
    else:
        trend = f"{what} grows with n for {', '.join(grows)} only"
    fig.update_layout(title=f"{trend}; at n = {n_max} the cheapest is {last.idxmin()}",
                      xaxis_title=_words("n_moduli"), yaxis_title=y_title)
    fig.update_yaxes(type="log", exponentformat="power")
    return plots.tidy_log_axes(fig)


def label_distribution(dist: pd.DataFrame, by: str, prefix: str = "") -> go.Figure:
    """Stacked bars of label fractions per value of ``by`` (output of scan.label_distribution);
    the title (after ``prefix``) names the most common label and the range of its share."""
    key = dist.mean().idxmax()
    top, lo, hi = _words(key), float(dist[key].min()), float(dist[key].max())
    n, over = dist.shape[0], _words(by, short=True)
    if lo == 1.0:
        title = f"{prefix}every potential is labelled {top}, at each of {n} values of {over}"
    elif f"{lo:.1%}" == f"{hi:.1%}":
        title = f"{prefix}{top} is the most common label, {lo:.1%} at each of {n} values of {over}"
    else:
        title = (f"{prefix}{top} is the most common label; its share ranges {lo:.1%}–{hi:.1%} "
                 f"across {n} values of {over}")
    fig = go.Figure()
    for k, lab in enumerate([c for c in LABELS if c in dist.columns]):
        fig.add_trace(go.Bar(x=dist.index.astype(str), y=dist[lab], name=_words(lab),
                             marker_color=PALETTE[k % len(PALETTE)]))
    fig.update_layout(barmode="stack", title=title, xaxis_title=_words(by),
                      yaxis_title="fraction")
    return fig


def throughput_by_n(timing: pd.DataFrame, target: float = 3000.0, title: str | None = None
                    ) -> go.Figure:
    """Labelled potentials per second per n_moduli, with the target line (``title`` replaces
    the default title, which describes how the rate changes with n)."""
    fig = go.Figure(go.Bar(x=timing.n_moduli, y=timing.labels_per_s, marker_color=PALETTE[0],
                           hovertext=[f"{p} potentials" for p in timing.potentials]))
    fig.add_hline(y=target, line_dash="dot", line_color=PALETTE[1],
                  annotation_text=f"target {target:,.0f}/s")
    ordered = timing.sort_values("n_moduli")
    meets = (ordered.labels_per_s >= target).to_numpy()
    above = ordered.n_moduli[meets]
    if not len(above):
        msg = f"below {target:,.0f}/s at every n"
    elif meets[:len(above)].all():  # every n up to the largest that meets it
        msg = f"≥ {target:,.0f}/s up to n = {above.max()}"
    else:
        msg = f"≥ {target:,.0f}/s at n = {', '.join(str(n) for n in above)} only"
    rate = ordered.labels_per_s
    trend = ("at one n" if len(rate) < 2 else
             "falls with n" if rate.iloc[-1] < rate.iloc[0] else "does not fall with n")
    fig.update_layout(title=title or f"Batched Newton throughput {trend}: {msg}",
                      xaxis_title=_words("n_moduli"), yaxis_title="labelled potentials / s")
    return fig


def geometry_counts(counts: dict[int, int]) -> go.Figure:
    """Number of smooth complete toric surfaces (D² >= −12) per number of rays (log y)."""
    r = np.array(list(counts))
    c = np.array(list(counts.values()))
    step = (f": ×{c[-1] / c[-2]:.1f} from {r[-2]} to {r[-1]} rays" if len(c) > 1 else
            f": {c[-1]:,} at {r[-1]} rays")
    fig = go.Figure(go.Bar(x=r, y=c, marker_color=PALETTE[0]))
    fig.update_layout(title=f"Toric surfaces with every D² ≥ −12 per number of rays{step}",
                      xaxis_title="number of rays (h¹¹ + 2)", yaxis_title="surfaces")
    fig.update_yaxes(type="log", exponentformat="power")
    return plots.tidy_log_axes(fig)


def learning_curves(curves: pd.DataFrame) -> go.Figure:
    """Mean test accuracy vs labels bought per strategy, with a 95% CI band over seeds."""
    wide = curves.pivot_table(index=["strategy", "n_labels"], columns="seed", values="accuracy")
    xs = sorted(curves.n_labels.unique())
    groups = {s: wide.loc[s].reindex(xs).to_numpy() for s in sorted(curves.strategy.unique())}
    finals = {s: float(np.mean(v[-1])) for s, v in groups.items()}
    best = max(finals, key=finals.get)
    return plots.curves_with_ci(
        xs, groups, title=f"Learning curves (mean, 95% CI over seeds): {best} ends highest "
                          f"({finals[best]:.3f}) — see the paired comparison for noise",
        x_title="labels bought", y_title="test accuracy (held-out geometries)")


def accuracy_bars(table: pd.DataFrame, key: str, title: str) -> go.Figure:
    """Bars of mean accuracy with 95% CI per ``table[key]`` (output of
    active_learning.accuracy_table)."""
    cis = {r[key]: stats.CI(r["mean"], r["ci_low"], r["ci_high"], int(r["n"]))
           for _, r in table.iterrows()}
    return plots.ablation_bars(cis, title=title, y_title="test accuracy (held-out geometries)")


def time_to_eps_curves(at_eps: pd.DataFrame, title_prefix: str = "") -> go.Figure:
    """ms per vacuum located to ε (oracle stop) vs ε, one line per solver: geometric mean over
    seeds with a 95% CI band (t on the logs, so it stays positive on the log axis; output of
    race.ms_per_vacuum_at_eps). A solver's line stops at the first ε that some seed never
    reaches. The title names the solvers that reach every ε and the fastest at the smallest ε."""
    fig = go.Figure()
    eps_all = sorted(at_eps.eps.unique(), reverse=True)
    reach_all, at_min = [], {}
    for k, (m, d) in enumerate(at_eps.groupby("method")):
        wide = d.pivot_table(index="eps", columns="seed", values="ms_per_vacuum")
        wide = wide.reindex(eps_all)
        ok = np.isfinite(wide.to_numpy()).all(1)
        stop = int(np.argmin(ok)) if not ok.all() else len(ok)
        xs = eps_all[:stop]
        if not xs:
            continue
        cis = [stats.geometric_mean_ci(wide.loc[e].to_numpy()) for e in xs]
        c = PALETTE[k % len(PALETTE)]
        fig.add_trace(plots.ci_band([ci.low for ci in cis], [ci.high for ci in cis], xs, c))
        fig.add_trace(go.Scatter(x=xs, y=[ci.mean for ci in cis], name=m, mode="lines+markers",
                                 line=dict(color=c)))
        if stop == len(eps_all):
            reach_all.append(m)
            at_min[m] = cis[-1].mean
    if at_min:
        fastest = min(at_min, key=at_min.get)
        msg = (f"{len(reach_all)} of {at_eps.method.nunique()} solvers reach ε = "
               f"{min(eps_all):.0e} on every seed; fastest there: {fastest} "
               f"({at_min[fastest]:.3g} ms per vacuum)")
    else:
        msg = f"no solver reaches ε = {min(eps_all):.0e} on every seed"
    fig.update_layout(title=title_prefix + msg, xaxis_title="ε (max-norm distance to the true "
                      "vacuum)",
                      yaxis_title="ms per vacuum to ε (geometric mean)")
    fig.update_xaxes(type="log", exponentformat="power", autorange="reversed")
    fig.update_yaxes(type="log", exponentformat="power")
    return plots.tidy_log_axes(fig)


def census_by_t(by_t: pd.DataFrame, summary: dict) -> go.Figure:
    """Good toric bases per T = h¹¹ − 1 (log y), with those that need non-toric blow-ups of
    (4, 6) points beside them; the title states the total against the published census."""
    fig = go.Figure()
    fig.add_trace(go.Bar(x=by_t["T"], y=by_t.bases, name="good bases",
                         marker_color=PALETTE[0]))
    fig.add_trace(go.Scatter(x=by_t["T"], y=by_t.non_toric,
                             name="of which with non-toric (4,6) points blown up",
                             mode="markers", marker=dict(color=PALETTE[1], size=4)))
    d = summary["difference"]
    verdict = "reproduces" if d == 0 else f"differs by {d:+,d} from"
    fig.update_layout(
        title=f"{summary['toric_bases_count']:,} toric bases with T = {summary['T_min']}…"
              f"{summary['T_max']}: {verdict} Morrison & Taylor's {summary['published_count']:,} "
              f"(T = 0…{summary['published_T_max']})",
        xaxis_title="T = h¹¹(B) − 1 (tensor multiplets)", yaxis_title="bases")
    fig.update_yaxes(type="log", exponentformat="power")
    return plots.tidy_log_axes(fig)
