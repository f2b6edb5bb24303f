"""What is in the recordings: tables and figures for notebook 01 (data audit).

Every function takes a :class:`~physml.cnc.data.CNCData` (and the recovered programs) and
returns a pandas frame or a Plotly figure; nothing here fits a model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import schema, tokens
from .data import CNCData


def files_table(data: CNCData, programs: Sequence[tokens.Program]) -> pd.DataFrame:
    """One row per (program, kind): files, rows, program lines seen, rows per file."""
    prog = tokens.program_of_file(programs)
    f = data.files.assign(program=data.files["file"].map(prog))
    lines = {p.name: len(p.lines) for p in programs}
    t = f.groupby(["program", "operation", "campaign", "kind"]).agg(
        files=("file", "size"), rows=("n_rows", "sum"), rows_per_file_min=("n_rows", "min"),
        rows_per_file_max=("n_rows", "max")).reset_index()
    t["program_lines_seen"] = t["program"].map(lines)
    return t


def rows_per_line(data: CNCData) -> pd.DataFrame:
    """For every (file, line) visit: consecutive rows the controller reported on that line.

    Returns columns ``file gcode_line rows seconds``; a line visited twice counts twice.
    """
    r = data.rows
    new = (r["file"] != r["file"].shift()) | (r["gcode_line"] != r["gcode_line"].shift())
    run = new.cumsum()
    g = r.groupby(run)
    return pd.DataFrame({"file": g["file"].first().to_numpy(),
                         "gcode_line": g["gcode_line"].first().to_numpy(),
                         "rows": g.size().to_numpy(),
                         "seconds": (g["t_s"].max() - g["t_s"].min()).to_numpy()})


def sampling(data: CNCData) -> pd.DataFrame:
    """Per file: median row interval (s), rows per second, duration (s)."""
    r = data.rows
    dt = r.groupby("file", sort=False)["t_s"].apply(lambda s: float(np.median(np.diff(s))))
    dur = r.groupby("file", sort=False)["t_s"].max()
    return pd.DataFrame({"median_interval_s": dt, "rows_per_s": 1.0 / dt,
                         "duration_s": dur}).reset_index()


def availability(data: CNCData) -> pd.DataFrame:
    """Fraction of files (per kind) in which each source is present: ``(n_kinds, n_sources)``."""
    m = data.mask()
    m.index = data.files.set_index("file").loc[m.index, "kind"].to_numpy()
    return m.groupby(level=0).mean()


def availability_figure(data: CNCData) -> go.Figure:
    """Heat map of the missing-source mask, one row per file (sorted by kind)."""
    m = data.mask()
    kinds = data.files.set_index("file")["kind"]
    order = kinds.loc[m.index].sort_values(kind="stable").index
    m = m.loc[order]
    always = int(m.all(axis=0).sum())
    fig = go.Figure(go.Heatmap(z=m.to_numpy(dtype=int), x=list(m.columns), y=list(m.index),
                               colorscale=[[0, "#f4f4f4"], [1, "#1b6ca8"]], showscale=False))
    fig.update_layout(height=900, title=f"Only {always} of {m.shape[1]} sources are in all "
                      f"{m.shape[0]} files; the rest are masked per file, never zero-filled")
    fig.update_yaxes(showticklabels=False, title="file (grouped by kind)")
    return fig


def _momo_modes(data: CNCData, other) -> np.ndarray:
    """The controller's ``momo`` of every row as "G0".."G3"; ``other(code)`` names any other
    code, "" stands for a missing one. Shape ``(n_rows,)`` object."""
    return np.array([tokens.MOMO_MODES.get(float(v), other(v)) if np.isfinite(v) else ""
                     for v in data.rows["momo"].to_numpy()], dtype=object)


def command_agreement(data: CNCData, classes: np.ndarray) -> pd.DataFrame:
    """Cross-table of a command class per row (``classes``) against the controller's ``momo``."""
    ref = _momo_modes(data, lambda v: f"momo={int(v)}")
    ref[ref == ""] = "nan"
    return pd.crosstab(pd.Series(classes, name="class per row"),
                       pd.Series(ref, name="controller momo"))


def momo_agreement(data: CNCData, classes: np.ndarray) -> dict:
    """How often a command class per row (``classes``) equals the controller's ``momo`` (codes
    0-3) over the moving rows where ``momo`` reports a motion mode: ``share``, ``n_differ``,
    ``n`` (rows compared)."""
    ref = _momo_modes(data, lambda v: "")
    c = np.asarray(classes, dtype=object)
    ok = (c != "none") & (ref != "")
    n_differ = int((c[ok] != ref[ok]).sum())
    return {"share": 1.0 - n_differ / ok.sum() if ok.any() else float("nan"),
            "n_differ": n_differ, "n": int(ok.sum())}


def label_changes(data: CNCData, programs: Sequence[tokens.Program], before: np.ndarray,
                  after: np.ndarray) -> pd.Series:
    """Rows whose command class ``after`` (moving rows only) differs from ``before``, counted
    per ``(program, before, after)``, largest first: where two labelling rules part (e.g. the
    G-code text alone against text + reported modes)."""
    b, a = np.asarray(before, dtype=object), np.asarray(after, dtype=object)
    differ = (b != a) & (a != "none")
    prog = data.rows["file"].map(tokens.program_of_file(programs)).to_numpy()
    return pd.DataFrame({"program": prog[differ], "before": b[differ],
                         "after": a[differ]}).value_counts()


def signal_examples(data: CNCData, classes: np.ndarray, file: str,
                    columns: Sequence[str] = ("frame_l2.RMS", "y_bed__3.Az", "spindle",
                                              "x_motor", "y_motor", "z_motor")) -> go.Figure:
    """Time series of a few allowed channels of one file, background coloured by command."""
    bad = [c for c in columns if schema.is_forbidden_input(c)]
    if bad:
        raise ValueError(f"{bad} are controller fields, not signals")
    r = data.rows
    sel = (r["file"] == file).to_numpy()
    if not sel.any():
        raise KeyError(f"no file {file!r}")
    t = r.loc[sel, "t_s"].to_numpy()
    c = classes[sel]
    fig = make_subplots(rows=len(columns), cols=1, shared_xaxes=True, vertical_spacing=0.02)
    colours = {"G0": "#d1495b", "G1": "#2e8b57", "G2": "#edae49", "G3": "#6a4c93",
               "none": "#bbbbbb"}
    for i, col in enumerate(columns, start=1):
        y = r.loc[sel, col].to_numpy()
        for k, colour in colours.items():
            yk = np.where(c == k, y, np.nan)
            fig.add_trace(go.Scatter(x=t, y=yk, mode="markers", marker=dict(size=3, color=colour),
                                     name=k, legendgroup=k, showlegend=(i == 1)), row=i, col=1)
        fig.update_yaxes(title_text=col, row=i, col=1)
    fig.update_xaxes(title_text="time since start of file (s)", row=len(columns), col=1)
    fig.update_layout(height=160 * len(columns) + 80, title=f"{file}: signals coloured by the "
                      "command class being executed")
    return fig


def class_means(data: CNCData, classes: np.ndarray, columns: Sequence[str]) -> pd.DataFrame:
    """Mean and standard deviation of each allowed channel per command class."""
    r = data.rows[list(columns)].assign(command=classes)
    t = r.groupby("command").agg(["mean", "std"])
    t.columns = [f"{c} {s}" for c, s in t.columns]
    return t
