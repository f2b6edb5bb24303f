"""physml.plots: renderer survives into HTML, figure builders show what they are given."""

import math
import re

import pandas as pd
import plotly.io as pio
import pytest

from physml import plots
from physml.stats import CI, UNIT_INTERVAL, mean_ci

HIST = {
    "train": [{"epoch": 1, "loss": 1.0, "pde_loss": 0.5},
              {"epoch": 2, "loss": 0.5, "pde_loss": 0.2}],
    "val": [{"epoch": 1, "loss": 1.2}, {"epoch": 2, "loss": 0.7}],
}


def test_import_sets_an_html_embedding_renderer_and_template():
    assert "notebook" in pio.renderers.default.split("+")
    assert "physml" in pio.templates.default


def test_convergence_draws_train_and_val_per_run_on_log_axis():
    fig = plots.convergence({"a": HIST, "b": HIST})
    names = [t.name for t in fig.data]
    assert names == ["a (train)", "a (val)", "b (train)", "b (val)"]
    assert list(fig.data[1].y) == [1.2, 0.7]
    assert fig.layout.yaxis.type == "log"
    assert fig.layout.xaxis.dtick == 1  # 2 epochs: ticks 1, 2, not 1, 1.5, 2
    assert fig.layout.yaxis.exponentformat == "power"  # 10⁻⁴, not 100µ
    long = {"train": [{"epoch": e, "loss": 1.0 / e} for e in range(1, 13)]}
    assert plots.convergence({"a": long}).layout.xaxis.dtick is None  # 11 epochs: automatic
    assert {t.mode for t in fig.data} == {"lines"}
    # a run shorter than two epochs has one point: a line through it draws nothing
    one = plots.convergence({"a": {"train": [{"epoch": 1, "loss": 0.5}],
                                   "val": [{"epoch": 1, "loss": 0.6}]}})
    assert [t.mode for t in one.data] == ["markers", "markers"]
    # past the palette's eight runs a curve adds markers of another symbol: the ninth run
    # would otherwise be drawn exactly like the first
    many = plots.convergence({f"r{k}": long for k in range(9)})
    assert [t.mode for t in many.data] == ["lines"] * 8 + ["lines+markers"]
    assert many.data[8].line.color == many.data[0].line.color
    assert many.data[8].marker.symbol != many.data[0].marker.symbol


def test_whole_number_ticks_up_to_the_span_and_on_the_axis_asked():
    import plotly.graph_objects as go

    assert plots.whole_number_ticks(go.Figure(), [0, 10]).layout.xaxis.dtick == 1
    assert plots.whole_number_ticks(go.Figure(), [0, 10.5]).layout.xaxis.dtick is None
    assert plots.whole_number_ticks(go.Figure(), []).layout.xaxis.dtick is None
    f = plots.whole_number_ticks(go.Figure(), [3, 4], axis="y", max_span=1)
    assert f.layout.yaxis.dtick == 1 and f.layout.yaxis.tick0 == 0 and f.layout.xaxis.dtick is None


def test_template_caps_y_ticks_so_a_log_axis_does_not_label_every_digit():
    assert plots.TEMPLATE.layout.yaxis.nticks == 6


def test_template_colour_bars_write_powers_of_ten():
    # a tracer at 5e-8 read "50n" on its colour bar with plotly's SI prefixes
    assert plots.TEMPLATE.data.heatmap[0].colorbar.exponentformat == "power"
    assert plots.TEMPLATE.data.contour[0].colorbar.exponentformat == "power"


def test_convergence_of_a_train_only_term_and_missing_metric():
    fig = plots.convergence({"a": HIST}, metric="pde_loss")
    assert [t.name for t in fig.data] == ["a (train)"]
    assert fig.layout.yaxis.title.text == "pde_loss"  # untitled: the metric's key
    named = plots.convergence({"a": HIST}, metric="pde_loss", y_title="squared residual")
    assert named.layout.yaxis.title.text == "squared residual"
    with pytest.raises(KeyError, match="no history has metric 'nope'.*pde_loss"):
        plots.convergence({"a": HIST}, metric="nope")


def test_ablation_bars_error_bars_are_the_ci():
    cis = {"x": mean_ci([1.0, 2.0, 3.0]), "y": CI(5.0, 4.0, 7.0, 3)}
    fig = plots.ablation_bars(cis, title="t", y_title="acc", reference=6.0)
    bar = fig.data[0]
    assert list(bar.y) == [2.0, 5.0]
    assert list(bar.error_y.array) == pytest.approx([cis["x"].high - 2.0, 2.0])
    assert list(bar.error_y.arrayminus) == pytest.approx([2.0 - cis["x"].low, 1.0])
    assert bar.error_y.symmetric is False and fig.layout.yaxis.type != "log"  # linear unless asked
    assert len(fig.layout.shapes) == 1 and fig.layout.shapes[0].y0 == 6.0
    # the reference is named in the legend (a label on the line could sit under a bar)
    assert fig.data[1].name == "target" and fig.layout.showlegend and not fig.data[0].showlegend
    assert not plots.ablation_bars(cis, title="t", y_title="acc").layout.showlegend
    assert bar.type == "bar"
    # on a log axis a bar's length would depend on where the axis starts: points instead,
    # with the same CIs
    log = plots.ablation_bars(cis, title="t", y_title="mm", log_y=True)
    pts = log.data[0]
    assert pts.type == "scatter" and pts.mode == "markers" and log.layout.yaxis.type == "log"
    assert list(pts.x) == ["x", "y"] and list(pts.y) == [2.0, 5.0]
    assert list(pts.error_y.arrayminus) == pytest.approx([2.0 - cis["x"].low, 1.0])
    assert not any(t.type == "bar" for t in log.data)
    assert tuple(log.layout.xaxis.range) == (-0.5, 1.5)  # a bar's half-width of room each side


def bold_cells(html: str) -> set[tuple[int, int]]:
    """(row, column) of the table cells a Styler's CSS sets in bold."""
    cells = set()
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", html):
        if "font-weight: bold" in body:
            cells |= {(int(r), int(c)) for r, c in re.findall(r"_row(\d+)_col(\d+)", selectors)}
    return cells


def test_comparison_table_bolds_the_best():
    rows = [{"method": "RK4", "err_um": 0.5, "tracks_s": 1e5},
            {"method": "MLP", "err_um": 50.0, "tracks_s": 1e6}]
    html = plots.comparison_table(rows, caption="cmp", fmt="{:.3g}", lower_is_better=["err_um"],
                                  higher_is_better=["tracks_s"]).to_html()
    assert "cmp" in html and bold_cells(html) == {(0, 1), (1, 2)}
    with pytest.raises(KeyError, match="no column 'nope'"):
        plots.comparison_table(rows, lower_is_better=["nope"])


def test_curves_with_ci_shows_a_curve_hidden_under_an_identical_one():
    vals = [[0.5, 0.6], [0.7, 0.8], [0.9, 0.9]]
    fig = plots.curves_with_ci([3, 10, 100], {"physics": vals, "ols": [list(r) for r in vals],
                                              "rf": [[0.1, 0.2]] * 3},
                               title="t", x_title="n", y_title="acc", log_x=True)
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["physics", "ols (= physics)", "rf"]
    assert [t.line.dash for t in lines] == ["solid", "dash", "solid"]
    # few points on a log axis: ticks at the points themselves, written plainly
    assert list(fig.layout.xaxis.tickvals) == [3, 10, 100]
    assert list(fig.layout.xaxis.ticktext) == ["3", "10", "100"]
    many = plots.curves_with_ci(list(range(1, 10)), {"a": [[1.0, 2.0]] * 9}, title="t",
                                x_title="n", y_title="v", log_x=True)
    # more points: the 1-2-5 ticks of tidy_log_axes, not one per point
    assert list(many.layout.xaxis.tickvals) == [1, 2, 5, 10] and many.layout.xaxis.type == "log"
    linear = plots.curves_with_ci([3, 10, 100], {"a": vals}, title="t", x_title="n",
                                  y_title="v")
    assert linear.layout.xaxis.tickvals is None


def test_curves_with_ci_band_is_the_t_interval_over_seeds():
    x = [10, 20]
    vals = [[0.5, 0.7, 0.6], [0.8, 0.9, 0.85]]
    fig = plots.curves_with_ci(x, {"margin": vals}, title="t", x_title="labels", y_title="acc")
    band, line = fig.data
    lo0, hi0 = mean_ci(vals[0]).low, mean_ci(vals[0]).high
    assert list(line.y) == pytest.approx([0.6, 0.85])
    assert list(band.y) == pytest.approx([hi0, mean_ci(vals[1]).high, mean_ci(vals[1]).low, lo0])
    assert list(band.x) == [10, 20, 20, 10] and band.fill == "toself"
    # no markers at the band's corners (Plotly's default mode under 20 points draws them),
    # no legend entry, and it toggles with its curve
    assert band.mode == "lines" and band.showlegend is False and band.legendgroup == "margin"
    whole = plots.curves_with_ci([0, 1, 2, 3, 4], {"a": [[0.5, 0.6]] * 5}, title="t",
                                 x_title="deg", y_title="acc")
    assert whole.layout.xaxis.dtick == 1  # no 0.5 ticks between whole-number settings
    half = plots.curves_with_ci([0, 0.5, 1], {"a": [[0.5, 0.6]] * 3}, title="t", x_title="deg",
                                y_title="acc")
    assert half.layout.xaxis.dtick is None
    wide = plots.curves_with_ci([0, 50, 100], {"a": [[0.5, 0.6]] * 3}, title="t", x_title="n",
                                y_title="acc")
    assert wide.layout.xaxis.dtick is None  # over more than 10 units: Plotly's own ticks
    with pytest.raises(ValueError, match="has 1 rows, x has 2"):
        plots.curves_with_ci(x, {"bad": [[1.0, 2.0]]}, title="t", x_title="a", y_title="b")
    # an accuracy's band stays inside [0, 1] when its bounds are given
    wide = [[0.2, 1.0], [0.9, 1.0]]
    band = plots.curves_with_ci(x, {"a": wide}, title="t", x_title="a", y_title="b",
                                bounds=UNIT_INTERVAL).data[0]
    assert max(band.y) == 1.0 and min(band.y) == 0.0
    assert max(plots.curves_with_ci(x, {"a": wide}, title="t", x_title="a",
                                    y_title="b").data[0].y) > 1.0


def test_comparison_table_formats_columns_a_mapping_leaves_out():
    """A ``{column: format}`` mapping formats its columns; the other numeric columns keep 4
    significant digits (not pandas' six decimals), trailing zeros included, large numbers with
    thousands separators rather than an exponent, integers exactly."""
    rows = [{"program": "P1", "rows": 10521, "accuracy": 0.557}]
    html = plots.comparison_table(rows, fmt={"rows": "{:.1f}"}).to_html()
    assert ">10521.0<" in html and ">0.5570<" in html and "0.557000" not in html
    more = [{"rate": 44512.3, "steps": 340, "big": 123456, "err": 1.5e-7}]
    assert list(plots.comparison_table(more).data.columns) == ["rate", "steps", "big", "err"]
    html = plots.comparison_table(more).to_html()
    assert all(f">{t}<" in html for t in ("44,510", "340", "123,456", "1.500e-07")), html
    # any other format string is applied as written, interval columns included
    units = pd.DataFrame({"err": [2.5], "err_low": [2.0], "err_high": [3.25], "d": [0.5]})
    shown = plots.comparison_table(units, fmt={"err": "{:.1f} mm", "d": "~{:.2f}"}).to_html()
    assert ">2.5 mm [2.0 mm,\u00a03.2 mm]<" in shown and ">~0.50<" in shown
    # a missing value is a dash, not "nan"
    html = plots.comparison_table(rows + [{"program": "P2", "rows": None, "accuracy": None}],
                                  fmt={"rows": "{:,}"}).to_html()
    assert html.count(">—<") == 2 and "nan" not in html


def test_comparison_table_shows_a_mean_and_its_ci_as_one_column():
    df = pd.DataFrame({"method": ["a", "b", "c"], "mean": [9.5, 10.25, float("nan")],
                       "ci_low": [9.0, 10.0, float("nan")], "ci_high": [10.0, 10.5, float("nan")],
                       "ratio": [2.0, 3.0, 4.0], "ratio_low": [1.5, 2.5, float("nan")],
                       "ratio_high": [2.5, 3.5, float("nan")], "n": [5, 5, 5]})
    assert plots.ci_columns(df) == {"ratio": ("ratio_low", "ratio_high"),
                                    "mean": ("ci_low", "ci_high")}
    sty = plots.comparison_table(df, fmt={"mean": "{:.2f}", "ratio": "{:.1f}"},
                                 higher_is_better=["mean"], lower_is_better=["ratio"])
    shown = sty.data
    assert list(shown.columns) == ["method", "mean [95% CI]", "ratio [95% CI]", "n"]
    assert list(shown["mean [95% CI]"]) == ["9.50 [9.00,\u00a010.00]",
                                            "10.25 [10.00,\u00a010.50]", "—"]
    assert list(shown["ratio [95% CI]"]) == ["2.0 [1.5,\u00a02.5]", "3.0 [2.5,\u00a03.5]", "4.0"]
    html = sty.to_html()
    assert ">10.25 [10.00,\u00a010.50]<" in html and ">2.0 [1.5,\u00a02.5]<" in html
    # bold by the number: 10.25 (as text '9.50' > '10.25'), and the lowest ratio 2.0
    assert bold_cells(html) == {(1, 1), (0, 2)}


def test_comparison_table_explicit_ci_columns_and_their_errors():
    df = pd.DataFrame({"model": ["x"], "test_mse": [0.01], "mse_low": [0.008], "mse_high": [0.012]})
    shown = plots.comparison_table(df, ci={"test_mse": ("mse_low", "mse_high")}).data
    assert list(shown.columns) == ["model", "test_mse [95% CI]"]
    assert shown.iloc[0, 1] == "0.01000 [0.008000,\u00a00.01200]"  # "g" keeping trailing zeros
    assert list(plots.comparison_table(df).data.columns) == list(df.columns)  # no triple found
    # a triple needs both bounds; a bare ci pair goes with the first estimate column present
    half = pd.DataFrame({"x": [1.0], "x_low": [0.5], "ci_low": [0.1], "diff": [0.2]})
    assert plots.ci_columns(half) == {}
    assert plots.ci_columns(half.assign(ci_high=0.3)) == {"diff": ("ci_low", "ci_high")}
    # a missing bound shows the estimate alone, never "nan" in the interval
    gap = df.assign(mse_low=float("nan"))
    shown = plots.comparison_table(gap, ci={"test_mse": ("mse_low", "mse_high")}).data
    assert shown.iloc[0, 1] == "0.01000"
    with pytest.raises(KeyError, match="no column 'gain_low'"):
        plots.comparison_table(df, ci={"test_mse": ("gain_low", "mse_high")})


def test_folded_puts_the_table_under_its_summary():
    import pandas as pd

    df = pd.DataFrame({"T": [0, 1], "bases": [1, 10]})
    html = plots.folded(plots.comparison_table(df, caption="per T"), "Counts per T <all>").data
    assert html.startswith("<details><summary>Counts per T &lt;all&gt;</summary>")
    assert html.endswith("</details>") and "per T" in html and "<table" in html
    assert html.index("</summary>") < html.index("<table")  # the table is what folds
    assert "<table" in plots.folded(df, "raw frame").data
    with pytest.raises(TypeError, match="Styler or DataFrame"):
        plots.folded("<table></table>", "x")
    with pytest.raises(ValueError, match="summary"):
        plots.folded(df, "  ")


def test_reference_line_labels_a_log_axis_at_the_line_not_at_ten_to_its_value():
    import math

    import plotly.graph_objects as go

    f = plots.reference_line(go.Figure(), 300_000.0, "RK4", log_y=True, line_dash="dash")
    (shape,), (note,) = f.layout.shapes, f.layout.annotations
    assert shape.y0 == shape.y1 == 300_000.0 and shape.line.dash == "dash"
    assert note.y == math.log10(300_000.0) and note.yref == "y" and note.text == "RK4"
    assert (note.x, note.xref, note.xanchor, note.yanchor) == (1, "x domain", "right", "bottom")
    assert note.showarrow is False  # a label on its line, not an arrow pointing at it
    lin = plots.reference_line(go.Figure(), 0.5, "target", log_y=False)
    assert lin.layout.annotations[0].y == 0.5
    assert not plots.reference_line(go.Figure(), 2.0, log_y=True).layout.annotations  # no label
    with pytest.raises(ValueError, match="y > 0"):
        plots.reference_line(go.Figure(), 0.0, "x", log_y=True)


def test_comparison_table_writes_a_column_of_whole_numbers_as_integers():
    import math

    import pandas as pd

    df = pd.DataFrame({"steps": [85.0, 170.0, math.nan], "mean_steps": [22.0, 23.66, 30.0],
                       "gamma": [0.0, 1.0, 2.0], "acc": [1.0, 1.0, 1.0], "acc_low": [1.0] * 3,
                       "acc_high": [1.0] * 3, "big": [12000.0, 3.0, 4.0]})
    html = plots.comparison_table(df).to_html()
    cells = [c.strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", html, flags=re.S)]
    assert cells[:5] == ["85", "22.00", "0", "1.000 [1.000,\u00a01.000]", "12,000"]  # CI: measured
    assert cells[5:10] == ["170", "23.66", "1", "1.000 [1.000,\u00a01.000]", "3"]
    assert cells[10] == "—"
    named = plots.comparison_table(df, fmt={"steps": "{:.3g}"}).to_html()  # asked: as asked
    assert ">85.0<" in named and ">0<" in named
    assert ">85.00<" in plots.comparison_table(df, fmt="{:.4g}").to_html()  # one format for all


def test_comparison_table_headers_may_break_after_underscores_and_are_escaped():
    import re

    df = pd.DataFrame({"model": ["a"], "pos_mean_mm": [1.0], "p < 2 GeV": [2.0]})
    html = plots.comparison_table(df, lower_is_better=["pos_mean_mm"]).to_html()
    heads = re.findall(r"<th[^>]*>(.*?)</th>", html)
    assert heads == ["model", "pos_<wbr>mean_<wbr>mm", "p &lt; 2 GeV"]
    assert "font-weight: bold" in html  # bolding still finds its column


def test_comparison_table_keeps_short_cells_on_one_line_and_lets_long_text_wrap():
    import re

    long = "without gyroscope bias, walk and noise (exact orientation)"
    df = pd.DataFrame({"setting": [long, "mlp-tiny+rk4x8/qp"], "acc": [0.5, 0.25],
                       "acc_low": [0.4, 0.2], "acc_high": [0.6, 0.3]})
    html = plots.comparison_table(df).to_html()
    assert "0.5000 [0.4000,\u00a00.6000]" in html  # one interval, breakable only before "["
    block = re.search(r"([^{}]*)\{\s*white-space: nowrap;", html).group(1)
    cells = {tuple(map(int, m)) for m in re.findall(r"row(\d+)_col(\d+)", block)}
    assert cells == {(1, 0)}, cells  # the long description and the intervals may wrap
    # an interval handed in as text gets the same no-break space; other commas keep theirs
    given = plots.comparison_table(pd.DataFrame({"x": ["1.929 [1.057, 2.801]", "a, b"]})).data
    assert list(given["x"]) == ["1.929 [1.057,\u00a02.801]", "a, b"]


def test_comparison_table_aligns_words_left_and_numbers_right():
    import re

    rows = [{"simulator": "without noise", "acc": "0.842 [0.717, 0.968]", "gain": "—",
             "n": 3, "x": 0.5},
            {"simulator": "realistic", "acc": "0.9 [0.8, 1.0]", "gain": "+0.031", "n": 4,
             "x": -0.25}]
    def left(html):  # columns of the cells styled left-aligned
        cols = set()
        for block in re.findall(r"([^{}]*)\{[^{}]*text-align: left;", html):
            cols |= {int(c) for c in re.findall(r"row\d+_col(\d+)", block)}
        return cols

    # the conditions only: intervals, dashes and numbers stay right
    assert left(plots.comparison_table(rows).to_html()) == {0}
    assert left(plots.comparison_table([{"n": 3, "x": 0.5}]).to_html()) == set()


def test_ticks_at_points_labels_a_few_settings_plainly_and_leaves_many_alone():
    import plotly.graph_objects as go

    fig = plots.ticks_at_points(go.Figure(), [4096, 1, 256, 256])
    assert list(fig.layout.xaxis.tickvals) == [1, 256, 4096]
    assert list(fig.layout.xaxis.ticktext) == ["1", "256", "4,096"]
    y = plots.ticks_at_points(go.Figure(), [0.5, 2.0], axis="y")
    assert list(y.layout.yaxis.ticktext) == ["0.5", "2"] and y.layout.xaxis.tickvals is None
    many = plots.ticks_at_points(go.Figure(), range(1, 10))
    assert many.layout.xaxis.tickvals is None
    assert list(plots.ticks_at_points(go.Figure(), range(1, 9)).layout.xaxis.tickvals) == \
        list(range(1, 9))


def test_tidy_log_axes_writes_1_2_5_ticks_plainly_or_one_per_decade():
    import plotly.graph_objects as go

    def ticks(y, **kw):
        fig = go.Figure(go.Bar(x=["a", "b", "c"], y=y, **kw))
        fig.update_yaxes(type="log")
        return plots.tidy_log_axes(fig).layout.yaxis

    # 36..560 mm: 50, 100, 200, 500 (Plotly wrote "4 5 6 7 8 9 10² 2 3 4 5")
    ax = ticks([47.8, 210.0, 540.0], error_y=dict(type="data", array=[12.0, 10.0, 20.0]))
    assert list(ax.tickvals) == [50, 100, 200, 500]
    assert list(ax.ticktext) == ["50", "100", "200", "500"]
    assert list(ticks([3.5, 4.0, 6.0]).ticktext) == ["3", "5", "7"]  # finer steps when narrow
    assert list(ticks([2e-5, 5e-5, 9e-5]).ticktext) == ["2×10⁻⁵", "5×10⁻⁵", "10⁻⁴"]
    # tracks/05's throughput, 1.04–3.95 M tracks/s: finer steps, each tick its own label
    assert list(ticks([1.04e6, 3.95e6, 2.2e6]).ticktext) == ["10⁶", "1.5×10⁶", "2×10⁶", "3×10⁶"]
    # an end of the data beyond a factor 1.6 of every 1-2-5 tick gets the nearest finer tick
    # (magnets/02's losses, 2.6–28.4, had no tick below 5; ends within the factor get none)
    assert list(ticks([2.6, 28.4, 9.0]).ticktext) == ["3", "5", "10", "20"]
    assert list(ticks([1.1, 35.0]).ticktext) == ["1", "2", "5", "10", "20", "30"]
    assert list(ticks([2.88e5, 7.81e6]).ticktext)[:2] == ["3×10⁵", "5×10⁵"]
    assert list(ticks([3.3, 28.4]).ticktext) == ["5", "10", "20"]
    # under 0.15 decades the 1-2-5 sequence leaves one tick at most: evenly spaced ones
    # (tracks/03's model sizes, 4,870–5,650 parameters, showed only "5,000")
    assert list(ticks([4870.0, 5650.0, 5100.0]).ticktext) == ["5,000", "5,200", "5,400", "5,600"]
    assert list(ticks([0.0121, 0.0139]).tickvals) == [0.0125, 0.013, 0.0135]
    assert ticks([7.0, 7.0]).tickvals is None  # one value, one tick near it: left to Plotly
    wide = ticks([1e-6, 1.0, 1e3])
    assert wide.tickvals is None and wide.dtick == 1  # one tick per decade
    assert list(wide.range) == pytest.approx([-6.1, 3.1])  # ends on decades: a margin only
    # an end more than half a decade past its last decade tick reaches the next decade
    # (tracks/02: 0.0226 mm sat below 10⁻¹ with no tick beneath it)
    assert list(ticks([0.0226, 8.9, 530.0]).range) == pytest.approx([-2.02, 3.02])
    assert list(ticks([0.05, 200.0]).range) == pytest.approx([-1.401, 2.401], abs=1e-3)
    # just past a decade the extension still leaves a marker's margin
    assert ticks([0.0105, 8.9, 530.0]).range[0] == pytest.approx(math.log10(0.0105) - 0.1)
    rev = go.Figure(go.Scatter(x=[1e-8, 1e-2], y=[1.0, 2.0]))
    rev.update_xaxes(type="log", autorange="reversed")
    rev_axis = plots.tidy_log_axes(rev).layout.xaxis
    assert list(rev_axis.range) == pytest.approx([-1.9, -8.1]) and rev_axis.autorange is False
    lin = go.Figure(go.Bar(x=["a"], y=[3.0]))
    assert plots.tidy_log_axes(lin).layout.yaxis.tickvals is None  # linear axes untouched
    set_ = go.Figure(go.Scatter(x=[1, 2], y=[1.0, 50.0]))
    set_.update_yaxes(type="log", tickvals=[1, 50])
    assert list(plots.tidy_log_axes(set_).layout.yaxis.tickvals) == [1, 50]  # kept
    ref = go.Figure(go.Scatter(x=[1, 2], y=[40.0, 90.0]))
    ref.add_hline(y=300.0)  # a target line above the data: the ticks reach it
    ref.update_yaxes(type="log")
    assert list(plots.tidy_log_axes(ref).layout.yaxis.tickvals) == [50, 100, 200]
    # one notation per axis: plain while every tick fits 0.001..999,999, else powers of ten
    assert plots.log_tick_labels([0.001, 20, 5000, 50000, 1e5, 2e5]) == \
        ["0.001", "20", "5,000", "50,000", "100,000", "200,000"]
    assert plots.log_tick_labels([5e5, 1e6, 1.5e6, 2e6, 3e6]) == \
        ["5×10⁵", "10⁶", "1.5×10⁶", "2×10⁶", "3×10⁶"]  # 1.5×10⁶ was written "2×10⁶"
    assert plots.log_tick_labels([3e-4, 1e-3, 0.02]) == ["3×10⁻⁴", "10⁻³", "2×10⁻²"]
    assert plots.log_tick_labels([999999.9999, 1e6]) == ["10⁶", "10⁶"]  # rounds into the decade
    assert plots.log_tick_labels([0.3 * 1e-3]) == ["3×10⁻⁴"]  # 2.9999...×10⁻⁴ in floating point
    assert plots.log_tick_labels([0.0, 1e6]) == ["0", "10⁶"]  # a zero (off a log axis) as is


def test_defaults_convergence_title_and_linear_ci_curves():
    fig = plots.convergence({"a": HIST})
    assert fig.layout.title.text == "loss per epoch (solid: train, dashed: validation)"
    assert plots.convergence({"a": HIST}, title="mine").layout.title.text == "mine"
    curves = plots.curves_with_ci([1, 2], {"a": [[1.0, 2.0], [2.0, 3.0]]}, title="t",
                                  x_title="n", y_title="v")
    assert curves.layout.yaxis.type != "log" and curves.layout.xaxis.type != "log"


def test_narrow_log_ticks_start_at_a_lowest_value_that_is_itself_a_tick():
    import plotly.graph_objects as go

    fig = go.Figure(go.Bar(x=["a", "b"], y=[5000.0, 5600.0]))
    fig.update_yaxes(type="log")
    assert list(plots.tidy_log_axes(fig).layout.yaxis.tickvals) == [5000, 5200, 5400, 5600]


def test_log_ticks_ignore_reference_lines_of_another_axis():
    import plotly.graph_objects as go

    def ticks(extra_shape):
        fig = go.Figure(go.Bar(x=["a", "b", "c"], y=[47.8, 210.0, 540.0]))
        fig.update_yaxes(type="log")
        if extra_shape:  # a horizontal line at 10⁴ on a second y axis
            fig.add_shape(type="line", xref="paper", x0=0, x1=1, yref="y2", y0=1e4, y1=1e4)
        return list(plots.tidy_log_axes(fig).layout.yaxis.tickvals)

    assert ticks(True) == ticks(False) == [50, 100, 200, 500]


def test_ticks_at_points_with_no_value_leaves_the_axis_alone():
    import plotly.graph_objects as go

    assert plots.ticks_at_points(go.Figure(), []).layout.xaxis.tickvals is None


def test_means_on_log_axis_draws_unlabelled_points_with_room_at_the_ends():
    fig = plots.means_on_log_axis(["a", "b", "c"], [1.0, 10.0, 100.0])
    (trace,) = fig.data
    assert trace.mode == "markers" and trace.showlegend is False
    assert list(fig.layout.xaxis.range) == [-0.5, 2.5] and fig.layout.xaxis.type == "category"


def test_log_ticks_cover_error_bars_and_skip_values_a_log_axis_cannot_show():
    import plotly.graph_objects as go

    def ticks(y, **kw):
        fig = go.Figure(go.Scatter(x=[1, 2, 3], y=y, **kw))
        fig.update_yaxes(type="log")
        return list(plots.tidy_log_axes(fig).layout.yaxis.tickvals)

    plain = ticks([47.8, 210.0, 540.0])
    # an error bar up to 1,540 reaches past the data: the ticks follow it
    with_bars = ticks([47.8, 210.0, 540.0], error_y=dict(type="data", array=[1.0, 1.0, 1000.0]))
    assert max(plain) < 1000 and 1000 in with_bars
    # an asymmetric bar down to 7.8 reaches below the data, one up by 1 does not lift the top
    down = ticks([47.8, 210.0, 540.0], error_y=dict(type="data", array=[1.0, 1.0, 1.0],
                                                   arrayminus=[40.0, 1.0, 1.0]))
    assert min(down) <= 10 < min(plain) and max(down) == max(plain)
    # zero (and negatives) are not drawn on a log axis, so they do not set its ticks
    fig = go.Figure(go.Scatter(x=[0, 1, 2, 3], y=[0.0, 47.8, 210.0, 540.0]))
    fig.update_yaxes(type="log")
    assert list(plots.tidy_log_axes(fig).layout.yaxis.tickvals) == plain
