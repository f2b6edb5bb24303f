"""House style for physml figures.

Importing this module registers the ``physml`` Plotly template and sets the Plotly renderer to
``plotly_mimetype+notebook``: JupyterLab shows the interactive mimetype, and the executed
notebook also carries an HTML rendering with plotly.js embedded once, so figures survive into
nbconvert's HTML report and stay interactive offline (Plotly >= 6 figures otherwise vanish from
nbconvert HTML). Shared figure builders:

- :func:`convergence`: loss curves of several runs, train (solid) vs validation (dashed), log y.
- :func:`ablation_bars`: means with 95% CI error bars, one bar per setting.
- :func:`curves_with_ci`: mean curves over seeds with a 95% CI band (learning curves, sweeps).
- :func:`comparison_table`: a physics-vs-ML table as a styled pandas DataFrame.
- :func:`folded`: a long reference table folded under a one-line summary.
- :func:`reference_line`: a labelled horizontal line (a target, a tolerance, an anchor's rate).
- :func:`static_style`: a matplotlib style context where a static figure is better.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from html import escape
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from physml.results import keep_intervals_whole
from physml.stats import CI, format_value, mean_ci

PALETTE = ["#1b6ca8", "#d1495b", "#2e8b57", "#edae49", "#6a4c93", "#00798c", "#8c564b", "#555555"]
SYMBOLS = ["circle", "diamond", "square", "triangle-up", "x"]


def series_style(i: int) -> dict[str, str]:
    """Colour and marker symbol of the i-th series of a figure: the palette's colours with
    circles, then the same colours again with the next symbol (a ninth series drawn like the
    first could not be told from it)."""
    return {"color": PALETTE[i % len(PALETTE)],
            "symbol": SYMBOLS[(i // len(PALETTE)) % len(SYMBOLS)]}


def line_mode(n_points: int, i: int = 0) -> str:
    """Plotly mode of the i-th series of ``n_points`` points: a line, with markers once the
    palette repeats (:func:`series_style`); a single point is a marker (a line through one
    point draws nothing)."""
    if n_points < 2:
        return "markers"
    return "lines" if i < len(PALETTE) else "lines+markers"

TEMPLATE = go.layout.Template(
    layout=go.Layout(
        font=dict(family="Inter, Helvetica, Arial, sans-serif", size=13, color="#222"),
        title=dict(font=dict(size=16), x=0.0, xanchor="left"),
        colorway=PALETTE,
        paper_bgcolor="white",
        plot_bgcolor="white",
        xaxis=dict(showgrid=True, gridcolor="#e6e6e6", zeroline=False, linecolor="#888",
                   ticks="outside", mirror=True),
        # at most 6 y ticks: a log axis over 2-3 decades otherwise labels every digit 2..9
        yaxis=dict(showgrid=True, gridcolor="#e6e6e6", zeroline=False, linecolor="#888",
                   ticks="outside", mirror=True, nticks=6),
        legend=dict(bgcolor="rgba(255,255,255,0.8)", borderwidth=0),
        margin=dict(l=70, r=30, t=60, b=60),
        width=None,
        height=450,
    ),
    # colour bars in powers of ten: a tracer at 5e-8 read "50n" with plotly's SI prefixes
    data=dict(heatmap=[go.Heatmap(colorbar=dict(exponentformat="power"))],
              contour=[go.Contour(colorbar=dict(exponentformat="power"))]),
)

RENDERER = "plotly_mimetype+notebook"


def setup() -> None:
    """Register the house template and the renderer that embeds figures in HTML reports."""
    pio.templates["physml"] = TEMPLATE
    pio.templates.default = "plotly_white+physml"
    pio.renderers.default = RENDERER


setup()


def convergence(
    histories: Mapping[str, Mapping[str, Any]],
    metric: str = "loss",
    log_y: bool = True,
    title: str | None = None,
    show_val: bool = True,
    y_title: str | None = None,
) -> go.Figure:
    """Per-epoch curves of ``metric`` for several runs (histories as written by physml.train),
    the y axis titled ``y_title`` (default: the metric's key).

    Train curves are solid, validation curves dashed in the same colour (runs past the
    palette's eight add markers, :func:`line_mode`; a run of one epoch is a marker). A metric
    missing from
    one side (e.g. ``pde_loss`` exists only in training) is drawn where it exists; a metric
    missing everywhere raises ``KeyError`` naming it and the metrics that exist.
    """
    fig = go.Figure()
    found = False
    for i, (label, h) in enumerate(histories.items()):
        style = series_style(i)
        for side, dash in (("train", "solid"), ("val", "dash")):
            if side == "val" and not show_val:
                continue
            rows = [r for r in h.get(side, []) if metric in r]
            if not rows:
                continue
            found = True
            fig.add_trace(go.Scatter(
                x=[r["epoch"] for r in rows], y=[r[metric] for r in rows],
                mode=line_mode(len(rows), i), name=f"{label} ({side})",
                line=dict(color=style["color"], dash=dash), marker=style, legendgroup=label,
            ))
    if not found:
        have = sorted({k for h in histories.values() for s in ("train", "val")
                       for r in h.get(s, []) for k in r})
        raise KeyError(f"convergence: no history has metric {metric!r}; metrics present: {have}")
    fig.update_layout(
        title=title or f"{metric} per epoch (solid: train, dashed: validation)",
        xaxis_title="epoch", yaxis_title=y_title or metric,
    )
    if log_y:
        fig.update_yaxes(type="log", exponentformat="power")
    return tidy_log_axes(whole_number_ticks(fig, [x for t in fig.data for x in t.x]))


def reference_line(fig: go.Figure, y: float, text: str = "", *, log_y: bool,
                   **line: Any) -> go.Figure:
    """A horizontal line at ``y`` (data units) labelled ``text`` at its right end, above it.

    Plotly's own ``add_hline(annotation_text=...)`` places the label at 10**y on a log y axis
    (a line at 0.076 was labelled at 1.19; one at 300,000 tracks/s fell off the chart), so the
    label is placed here in the axis's coordinates: log10(y) when ``log_y``. ``line``: keyword
    arguments of ``add_hline`` (line_dash, line_color, ...)."""
    if log_y and not y > 0:
        raise ValueError(f"reference_line: a log axis needs y > 0, got {y}")
    fig.add_hline(y=y, **line)
    if text:
        fig.add_annotation(x=1, xref="x domain", y=math.log10(y) if log_y else y, yref="y",
                           text=text, showarrow=False, xanchor="right", yanchor="bottom")
    return fig


def whole_number_ticks(fig: go.Figure, values: Sequence[float], axis: str = "x",
                       max_span: int = 10) -> go.Figure:
    """Ticks every 1 on ``axis`` when ``values`` (epochs, counts) span at most ``max_span``:
    a short run's epoch axis otherwise reads 1, 1.5, 2, 2.5. Longer spans keep the automatic
    ticks, which are whole numbers there already."""
    v = [float(x) for x in values]
    if v and max(v) - min(v) <= max_span:
        getattr(fig, f"update_{axis}axes")(tick0=0, dtick=1)
    return fig


def means_on_log_axis(x: Sequence, y: Sequence[float], **kw) -> go.Figure:
    """A figure of one point per category, for a log y axis, where a bar would mislead: its
    length would depend on where the axis happens to start, not on the value. The categories
    keep a bar's half-width of room at either end (keyword arguments go to ``go.Scatter``,
    e.g. ``error_y``). The caller makes the y axis logarithmic once its reference lines are
    drawn, and returns through :func:`tidy_log_axes`."""
    xs = list(x)
    fig = go.Figure(go.Scatter(x=xs, y=list(y), mode="markers", showlegend=False,
                               marker=dict(color=PALETTE[0], size=11, symbol="diamond"), **kw))
    fig.update_xaxes(type="category", range=[-0.5, len(xs) - 0.5])
    return fig


def ablation_bars(
    cis: Mapping[str, CI],
    title: str,
    y_title: str,
    log_y: bool = False,
    reference: float | None = None,
    reference_label: str = "target",
) -> go.Figure:
    """One bar per setting: the mean with its CI as an asymmetric error bar. With ``log_y`` a
    point instead of a bar (:func:`means_on_log_axis`).

    ``reference`` draws a horizontal line (e.g. an accuracy target or the source's figure),
    named in a legend above the plot rather than on the line, where a bar could hide the name.
    """
    labels = list(cis)
    means = [cis[k].mean for k in labels]
    error = dict(type="data", symmetric=False,
                 array=[cis[k].high - cis[k].mean for k in labels],
                 arrayminus=[cis[k].mean - cis[k].low for k in labels])
    hover = [f"{k}: {cis[k]} (n={cis[k].n})" for k in labels]
    if log_y:
        fig = means_on_log_axis(labels, means, error_y=error, hovertext=hover, hoverinfo="text")
    else:
        fig = go.Figure(go.Bar(x=labels, y=means, marker_color=PALETTE[0], error_y=error,
                               hovertext=hover, hoverinfo="text"))
    fig.data[0].showlegend = False
    if reference is not None:
        fig.add_hline(y=reference, line_dash="dot", line_color=PALETTE[1])
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=reference_label,
                                 line=dict(dash="dot", color=PALETTE[1])))
    fig.update_layout(title=title, yaxis_title=y_title, showlegend=reference is not None,
                      legend=dict(orientation="h", x=1, xanchor="right", y=1.0, yanchor="bottom"))
    if log_y:
        fig.update_yaxes(type="log", exponentformat="power")
    return tidy_log_axes(fig)


def ci_band(low: Sequence[float], high: Sequence[float], x: Sequence[float], color: str,
            legendgroup: str | None = None) -> go.Scatter:
    """The shaded 95% CI band between ``low`` and ``high`` over ``x``: a filled outline without
    a legend entry, hover or corner markers (Plotly's default mode under 20 points would draw
    markers at every corner)."""
    xs = list(x)
    return go.Scatter(x=xs + xs[::-1], y=list(high) + list(low)[::-1], mode="lines",
                      fill="toself", fillcolor=color, opacity=0.18, line_width=0,
                      showlegend=False, hoverinfo="skip", legendgroup=legendgroup)


def curves_with_ci(
    x: Sequence[float],
    groups: Mapping[str, Any],
    title: str,
    x_title: str,
    y_title: str,
    log_x: bool = False,
    log_y: bool = False,
    bounds=None,
) -> go.Figure:
    """One line per group: the mean over seeds at each x, with its 95% CI as a shaded band.

    ``groups``: ``{label: values}`` with values of shape ``(len(x), n_seeds)``, n_seeds >= 2.
    ``bounds``: the quantity's range (e.g. :data:`physml.stats.UNIT_INTERVAL` for an
    accuracy), which the CIs are clipped to (:func:`physml.stats.mean_ci`).

    A group whose means equal an earlier group's at every x is drawn dashed and named
    "label (= earlier)", so a curve hidden under another still shows. On a log x axis with
    at most 8 points the ticks are the points themselves (3, 10, 100 rather than minor digits
    between decades); on a linear x axis of whole numbers over at most 10 units, a tick at every
    whole number (:func:`whole_number_ticks`).
    """
    fig = go.Figure()
    xs = list(x)
    drawn: dict[str, list[float]] = {}
    for i, (label, values) in enumerate(groups.items()):
        rows = [list(r) for r in values]
        if len(rows) != len(xs):
            raise ValueError(f"curves_with_ci: group {label!r} has {len(rows)} rows, "
                             f"x has {len(xs)} points (values must be (len(x), n_seeds))")
        cis = [mean_ci(r, bounds=bounds) for r in rows]
        color = PALETTE[i % len(PALETTE)]
        means = [c.mean for c in cis]
        same = next((k for k, m in drawn.items() if np.allclose(m, means, rtol=1e-9, atol=0)),
                    None)
        drawn[label] = means
        fig.add_trace(ci_band([c.low for c in cis], [c.high for c in cis], xs, color, label))
        fig.add_trace(go.Scatter(
            x=xs, y=means, name=label if same is None else f"{label} (= {same})",
            mode="lines+markers", line_color=color, legendgroup=label,
            line_dash="solid" if same is None else "dash",
            hovertext=[f"{label}: {c} (n={c.n})" for c in cis], hoverinfo="text+x"))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title)
    if log_x:
        fig.update_xaxes(type="log", exponentformat="power")
        ticks_at_points(fig, xs)
    elif all(float(v).is_integer() for v in xs):  # 0, 1, 2 degrees: no 0.5 ticks between
        whole_number_ticks(fig, xs)
    if log_y:
        fig.update_yaxes(type="log", exponentformat="power")
    return tidy_log_axes(fig)


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _power_of_ten_label(v: float) -> str:
    """``v`` > 0 as a power of ten with at most three significant digits in front (10⁻⁴,
    2×10⁻⁴, 1.5×10⁶)."""
    e = math.floor(math.log10(v))
    m = float(f"{v / 10.0 ** e:.3g}")
    if m >= 10:  # 9.9999e5 rounds up into the next decade
        m, e = m / 10, e + 1
    power = "10" + str(e).translate(_SUPERSCRIPT)
    return power if m == 1 else f"{m:g}×{power}"


def log_tick_labels(values: Sequence[float]) -> list[str]:
    """Log-axis ticks written for reading, in one notation for the whole axis: plainly when
    every tick lies from 0.001 to 999,999 (0.002, 20, 5,000, 200,000), else every one in
    powers of ten (10⁻⁴, 2×10⁻⁴, 1.5×10⁶), never "50,000" beside "10⁵"."""
    vals = [float(v) for v in values]
    if all(1e-3 <= v < 1e6 for v in vals):
        return [f"{v:,.10g}" for v in vals]
    return [_power_of_ten_label(v) if v > 0 else f"{v:g}" for v in vals]  # no log of 0


def _axis_values(fig: go.Figure, letter: str, ref: str) -> np.ndarray:
    """The positive finite data (with error bars) of the traces drawn on axis ``ref`` ("x",
    "y2", ...) and the positions of the reference lines across it."""
    vals = []
    for t in fig.data:
        if (getattr(t, f"{letter}axis", None) or letter) != ref:
            continue
        v = getattr(t, letter, None)
        if v is None:
            continue
        try:
            v = np.asarray(v, dtype=float).ravel()
        except (TypeError, ValueError):  # categories
            continue
        vals.append(v)
        err = getattr(t, f"error_{letter}", None)
        if err is not None and err.array is not None:
            up = np.asarray(err.array, dtype=float)
            down = np.asarray(err.arrayminus if err.arrayminus is not None else err.array,
                              dtype=float)
            if up.shape == v.shape == down.shape:
                vals += [v + up, v - down]
    for sh in fig.layout.shapes:  # reference lines across the plot (add_hline / add_vline)
        if getattr(sh, f"{letter}ref", None) == ref and getattr(sh, f"{letter}0") is not None \
                and getattr(sh, f"{letter}0") == getattr(sh, f"{letter}1"):
            vals.append(np.array([float(getattr(sh, f"{letter}0"))]))
    allv = np.concatenate(vals) if vals else np.array([])
    return allv[np.isfinite(allv) & (allv > 0)]


NARROW_LOG_SPAN = 0.15
"""A log axis whose data span less than this many decades (a factor 1.4) gets evenly spaced
ticks: the 1-2-5 sequence would leave at most one tick among its data."""

LOG_END_COVER = 1.6
"""On a 1-2-5 log axis, an end of the data further than this factor from its nearest tick gets
one more tick from the finer 1-1.5-2-3-5-7 sequence (data down to 2.6 with a lowest tick of 5
gains a 3)."""


def _even_ticks(lo: float, hi: float, target: int = 4) -> list[float]:
    """Evenly spaced round ticks (step 1, 2, 2.5 or 5 × 10^k) inside [lo, hi], at least two
    and about ``target`` of them."""
    raw = (hi - lo) / target
    e = 10.0 ** math.floor(math.log10(raw))
    step = next(m * e for m in (1, 2, 2.5, 5, 10) if m * e >= raw)
    first = math.ceil(lo / step - 1e-9)
    return [k * step for k in range(first, math.floor(hi / step + 1e-9) + 1)]


def _decade_ticks(lo: float, hi: float, steps: Sequence[float]) -> list[float]:
    """``m × 10^k`` for every m in ``steps`` and every k, inside [lo, hi]."""
    return [m * 10.0 ** k
            for k in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
            for m in steps if lo <= m * 10.0 ** k <= hi]


DECADE_REACH = 0.5
"""On a log axis with one tick per decade, an end of the data more than this many decades (a
factor 3.2) past the last decade inside the data's range extends the axis to the next decade,
so that the value can be read against a labelled tick on either side (0.0226 mm beside ticks
from 10⁻¹ up)."""


def _decade_range(lo: float, hi: float, reversed_: bool = False) -> list[float]:
    """The log10 range of a one-tick-per-decade axis over data [lo, hi]: a margin of 0.1
    decades (room for a marker and its error bar's cap), widened at an end to the next decade
    where the data reach more than :data:`DECADE_REACH` decades past the last decade tick on
    that side."""
    a, b = math.log10(lo), math.log10(hi)
    low, high = a - 0.1, b + 0.1
    if math.ceil(a) - a > DECADE_REACH:
        low = min(low, math.floor(a) - 0.02)
    if b - math.floor(b) > DECADE_REACH:
        high = max(high, math.ceil(b) + 0.02)
    return [high, low] if reversed_ else [low, high]


def tidy_log_axes(fig: go.Figure, max_decades: float = 2.5) -> go.Figure:
    """Readable ticks on every log axis of ``fig`` that has none set: over at most
    ``max_decades`` decades of data, ticks on the 1-2-5 sequence written plainly (20, 50, 100,
    200) instead of Plotly's minor digits ("5 6 7 8 9 10² 2 3", where "2" means 200); over more,
    one tick per decade (10⁻², 10⁻¹, 1, ...); over less than :data:`NARROW_LOG_SPAN`, evenly
    spaced round ticks. An end of the data far from the 1-2-5 ticks gets one finer tick
    (:data:`LOG_END_COVER`)."""
    refs = {(letter, getattr(t, f"{letter}axis", None) or letter)
            for t in fig.data for letter in ("x", "y")}
    for letter, ref in sorted(refs):
        axis = fig.layout[f"{letter}axis{ref[1:]}"]
        if axis.type != "log" or axis.tickvals is not None:
            continue
        v = _axis_values(fig, letter, ref)
        if len(v) == 0:
            continue
        lo, hi = float(v.min()), float(v.max())
        span = math.log10(hi / lo)
        if span > max_decades:
            axis.update(dtick=1)
            if axis.range is None:  # autorange off, or plotly.js would recompute the range
                axis.update(range=_decade_range(lo, hi, axis.autorange == "reversed"),
                            autorange=False)
            continue
        # about the margin Plotly's autorange leaves around the data on a log axis
        pad = 10.0 ** max(0.1, 0.08 * span)
        if 0 < span < NARROW_LOG_SPAN:  # 4,870–5,650: 5,000 / 5,200 / 5,400 / 5,600
            ticks = _even_ticks(lo, hi)
        else:
            ticks = _decade_ticks(lo / pad, hi * pad, (1, 2, 5))
            fine = _decade_ticks(lo / pad, hi * pad, (1, 1.5, 2, 3, 5, 7))
            if len(ticks) < 3:  # finer steps when narrow
                ticks = fine
            else:  # an end of the data far from every tick: the nearest finer tick beyond it
                if ticks[0] > lo * LOG_END_COVER and fine[0] < ticks[0]:
                    ticks = [max(t for t in fine if t < ticks[0]), *ticks]
                if ticks[-1] < hi / LOG_END_COVER and fine[-1] > ticks[-1]:
                    ticks = [*ticks, min(t for t in fine if t > ticks[-1])]
        if len(ticks) >= 2:
            ticks = [float(f"{t:.6g}") for t in ticks]
            axis.update(tickvals=ticks, ticktext=log_tick_labels(ticks))
    return fig


def ticks_at_points(fig: go.Figure, values: Sequence[float], axis: str = "x",
                    most: int = 8) -> go.Figure:
    """On a log axis that shows a few settings (at most ``most`` distinct ``values``: training
    set sizes, batch sizes), put the ticks at those values, written plainly (3, 10, 100; 1, 256,
    4,096) instead of Plotly's minor digits between decades ("2 3 ... 9 10³ 2 3"). More
    values: the axis is left as it is."""
    ticks = sorted({float(v) for v in values})
    if 0 < len(ticks) <= most:
        update = fig.update_xaxes if axis == "x" else fig.update_yaxes
        update(tickvals=ticks, ticktext=log_tick_labels(ticks))
    return fig


CI_ESTIMATES = ("mean", "diff", "difference", "value", "estimate")
"""Estimate columns a bare ``ci_low`` / ``ci_high`` pair belongs to (the first one present)."""


def ci_columns(df: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """``{estimate: (low, high)}`` of the CI column triples in ``df``: ``X`` with ``X_low`` and
    ``X_high``, and ``ci_low`` / ``ci_high`` with the first of :data:`CI_ESTIMATES` present."""
    cols = list(df.columns)
    out = {c: (f"{c}_low", f"{c}_high") for c in cols
           if f"{c}_low" in cols and f"{c}_high" in cols}
    if "ci_low" in cols and "ci_high" in cols:
        est = next((c for c in CI_ESTIMATES if c in cols and c not in out), None)
        if est is not None:
            out[est] = ("ci_low", "ci_high")
    return out


def _all_whole(col: pd.Series) -> bool:
    """True when the column's numbers (missing values aside) are all whole and exact as a
    float (|x| < 2**53), and there is at least one."""
    v = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
    v = v[~np.isnan(v)]
    return bool(len(v)) and bool(np.all(np.isfinite(v) & (v == np.round(v)) & (np.abs(v) < 2**53)))


NOWRAP_CHARS = 32
"""Table cells up to this many characters (numbers, model names) never wrap."""


_NUMBER_START = re.compile(r"[-+−~]?[0-9.]|—$")
"""A cell that reads as a number, an interval or a missing value (a dash)."""


def comparison_table(
    rows: Sequence[Mapping[str, Any]] | pd.DataFrame,
    caption: str | None = None,
    fmt: Mapping[str, str] | str | None = None,
    lower_is_better: Sequence[str] = (),
    higher_is_better: Sequence[str] = (),
    ci: Mapping[str, tuple[str, str]] | None = None,
) -> Any:
    """A physics-vs-ML table (pandas Styler), best value per column in bold.

    ``fmt``: a format string for every numeric column or a ``{column: format}`` mapping
    (numeric columns it does not name keep the default). The default is 4 significant digits,
    except that a column whose every number is whole (a count, a step, a setting such as
    γ = 2) is written as integers: 85, not 85.00, even where a missing value made it float. A
    ``"{:spec}"`` goes through :func:`physml.stats.format_value`: ``"{:.4g}"`` keeps trailing
    zeros (0.304 reads 0.3040), writes 44,512.3 as 44,510 instead of 4.451e+04, and an integer
    exactly. A missing value (NaN, None) in a formatted column shows as "—".

    A mean and its 95% CI show as one column "X [95% CI]" reading ``m [low, high]``, all three
    in X's format: the triples :func:`ci_columns` finds, and ``ci`` (``{estimate: (low,
    high)}``) for others. The data keep their columns; ``lower_is_better`` /
    ``higher_is_better`` name the estimate column and bold by its number.
    """
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    triples = ci_columns(df) | dict(ci or {})
    for col in [*lower_is_better, *higher_is_better, *triples,
                *(c for pair in triples.values() for c in pair)]:
        if col not in df.columns:
            raise KeyError(f"comparison_table: no column {col!r}; columns: {list(df.columns)}")
    default = "{:.4g}" if fmt is None or isinstance(fmt, Mapping) else fmt
    formats = {c: default for c in df.select_dtypes("number").columns}
    if isinstance(fmt, Mapping):
        formats |= dict(fmt)
    named = set(fmt) if isinstance(fmt, Mapping) else set(formats) if fmt is not None else set()
    whole = {c for c in formats if c not in named and c in df and _all_whole(df[c])}
    best = {}
    for cols, pick in ((lower_is_better, "min"), (higher_is_better, "max")):
        for c in cols:
            v = pd.to_numeric(df[c], errors="coerce")
            best[c] = (v == getattr(v, pick)()).to_numpy()

    def number(f):  # "{:spec}" through format_value ("g" keeping its trailing zeros)
        spec = re.fullmatch(r"\{:([^{}]*)\}", f)
        return (lambda x: format_value(x, spec.group(1))) if spec else f.format

    def cell(f, x):
        return "—" if pd.isna(x) else number(f)(x)

    shown, names = df.copy(), {}
    for est, (lo, hi) in triples.items():
        f = formats.get(est, default)
        names[est] = f"{est} [95% CI]"
        shown[est] = [cell(f, m) if pd.isna(a) or pd.isna(b)
                      else f"{cell(f, m)} [{cell(f, a)}, {cell(f, b)}]"
                      for m, a, b in zip(df[est], df[lo], df[hi], strict=True)]
        shown = shown.drop(columns=[lo, hi])
        formats.pop(est, None)
        formats.pop(lo, None)
        formats.pop(hi, None)
    shown = shown.rename(columns=names)
    # an interval "m [low, high]", built here or handed in as text, may break only before its
    # bracket: a no-break space after the comma inside it
    for c in shown.columns:
        if any(isinstance(v, str) for v in shown[c]):
            shown[c] = [keep_intervals_whole(v) if isinstance(v, str) else v
                        for v in shown[c]]
    sty = shown.style.hide(axis="index").format(
        {c: (lambda x, f=f: number(f)(int(x))) if c in whole else number(f)
         for c, f in formats.items()}, na_rep="—")
    # a long snake_case header may break after each underscore: the column is then as wide as
    # its numbers, not as its name (tables of ten such columns overflowed the page)
    sty = sty.format_index(lambda c: escape(str(c)).replace("_", "_<wbr>"), axis=1)
    # and a number or a short name stays on one line; an interval "m [low, high]" may break
    # only before its bracket (a no-break space inside it), so a table of many intervals
    # still fits the page
    sty = sty.map(lambda v: "" if isinstance(v, str) and (len(v) > NOWRAP_CHARS or " [" in v)
                  else "white-space: nowrap;")
    # words read from the left (a condition, a state, a method); numbers and intervals stay
    # right-aligned, so their digits line up
    words = [c for c in shown.columns if c not in formats and c not in names.values()
             and not any(isinstance(v, str) and _NUMBER_START.match(v) for v in shown[c])
             and any(isinstance(v, str) for v in shown[c])]
    if words:
        sty = sty.set_properties(subset=words, **{"text-align": "left"})
    for c, mask in best.items():
        sty = sty.apply(lambda _, m=mask: ["font-weight: bold" if b else "" for b in m],
                        subset=[names.get(c, c)])
    if caption:
        sty = sty.set_caption(caption)
    return sty.set_table_styles([
        {"selector": "th", "props": "text-align: left; vertical-align: bottom; "
                                    "border-bottom: 1px solid #888;"},
        {"selector": "td", "props": "padding: 2px 10px;"},
        {"selector": "caption", "props": "caption-side: top; font-weight: bold; text-align: left;"},
    ])


def folded(table: Any, summary: str) -> Any:
    """A long reference table (a pandas Styler, e.g. from :func:`comparison_table`, or a
    DataFrame) folded under a one-line ``summary`` the reader clicks to open (HTML
    ``<details>``): the numbers stay in the report without burying what follows them."""
    from IPython.display import HTML
    from pandas.io.formats.style import Styler

    if not isinstance(table, (pd.DataFrame, Styler)):
        raise TypeError(f"folded: expected a pandas Styler or DataFrame, "
                        f"got {type(table).__name__}")
    if not summary.strip():
        raise ValueError("folded: the summary must say what the folded table holds")
    return HTML(f"<details><summary>{escape(summary)}</summary>{table.to_html()}</details>")


@contextlib.contextmanager
def static_style() -> Iterator[None]:
    """Matplotlib rc settings matching the house style, for static figures."""
    import matplotlib as mpl

    with mpl.rc_context({
        "axes.prop_cycle": mpl.cycler(color=PALETTE), "axes.grid": True, "grid.color": "#e6e6e6",
        "axes.spines.top": False, "axes.spines.right": False, "figure.dpi": 110,
        "font.size": 11, "savefig.bbox": "tight",
    }):
        yield
