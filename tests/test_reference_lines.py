"""Every figure with a labelled reference line on a log y axis puts the label at the line
(plotly's add_hline label lands at 10**y there: issue seen in attention/02, where the label of
a line at 0.076 logits sat at 1.19)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from physml.attention import figures as attention_figures
from physml.magnets import figures as magnets_figures
from physml.tracks import figures as tracks_figures


def _step_scan():
    scan = pd.DataFrame({"method": ["rk4", "rk4", "cash_karp"], "step_mm": [50.0, 25.0, np.nan],
                         "tracks_per_s": [2e5, 1e5, 5e4], "max_err_um": [3.0, 0.5, 0.2],
                         "p99_err_um": [2.0, 0.4, 0.1]})
    return tracks_figures.step_scan(scan, tol_um=1.0), 1.0


def _throughput():
    tp = pd.DataFrame({"model": ["m", "m"], "backend": ["torch", "torch"], "batch": [1, 256],
                       "tracks_per_s": [1e4, 1e6]})
    return tracks_figures.throughput_lines(tp, 3e5, threads=2), 3e5


def _schedule_scan():
    from physml.tracks.experiments import SELECT_ON

    t = pd.DataFrame({"family": ["rk4", "rk4"], "steps": [8, 16], "setting": ["a", "b"],
                      SELECT_ON: [0.3, 0.02]})
    return tracks_figures.schedule_scan(t, 0.05, "matched"), 0.05


def _bias_scale():
    df = pd.DataFrame({"variant": ["alibi2d", "barrier"], "max_abs_bias": [2.5, 3.4],
                       "logit_std": [0.076, 0.076]})
    return attention_figures.bias_scale(df, "t"), 0.076


def _field_error():
    curve = pd.DataFrame({"distance_diam": [1.0, 2.0, 4.0], "max_rel_err": [0.2, 0.02, 0.002],
                          "median_rel_err": [0.1, 0.01, 0.001]})
    return magnets_figures.field_error_figure(curve, 2.5), 0.01


def _uniformity():
    r = {"z_mm": np.array([0.0, 1000.0, 2000.0]), "dev_centre": np.array([0.2, 0.005, 0.2]),
         "z_within_goal_mm": (900.0, 1100.0), "half_mm": 200.0}
    return tracks_figures.uniformity_along_z({"iron_yoke": r}, 0.01), 1.0  # 1% in percent


@pytest.mark.parametrize("build", [_step_scan, _throughput, _schedule_scan, _bias_scale,
                                   _field_error, _uniformity])
def test_reference_label_sits_on_its_line(build):
    fig, y = build()
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.exponentformat == "power"
    [line] = [s for s in fig.layout.shapes if s.y0 == s.y1]
    [note] = [a for a in fig.layout.annotations if a.yref == "y"]
    assert line.y0 == pytest.approx(y) and note.y == pytest.approx(math.log10(y))



def test_every_log_axis_in_the_figures_writes_powers_of_ten():
    # plotly's default labels a log axis with SI prefixes: 1e-4 mm reads "100µ", 5e-3 µm "5m"
    import re
    from pathlib import Path

    import physml

    root = Path(physml.__file__).parent
    bare = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        for m in re.finditer(r'type="log"', text):
            call = text[m.start():m.start() + 160]
            if "exponentformat=" not in call.split(")\n")[0]:
                bare.append(f"{path.relative_to(root)}:{text.count(chr(10), 0, m.start()) + 1}")
    assert not bare, bare


def test_every_figure_with_a_log_axis_returns_through_tidy_log_axes():
    # plotly labels a log axis spanning a decade or two with bare minor digits ("5 6 7 8 9 10²
    # 2 3", where 2 means 200): every figure function that makes a log axis hands its figure
    # to plots.tidy_log_axes on the way out
    import ast
    import re
    from pathlib import Path

    import physml

    root = Path(physml.__file__).parent
    missing = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.FunctionDef):
                continue
            body = ast.get_source_segment(text, node)
            if not re.search(r'type="log"|_type="log"', body) or node.name == "tidy_log_axes":
                continue
            last = max((n for n in ast.walk(node) if isinstance(n, ast.Return)),
                       key=lambda n: n.lineno)
            if "tidy_log_axes(" not in ast.get_source_segment(text, last):
                missing.append(f"{path.relative_to(root)}:{node.name}")
    assert not missing, missing
