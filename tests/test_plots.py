"""physml.plots: renderer survives into HTML, figure builders show what they are given."""

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


def test_convergence_of_a_train_only_term_and_missing_metric():
    fig = plots.convergence({"a": HIST}, metric="pde_loss")
    assert [t.name for t in fig.data] == ["a (train)"]
    with pytest.raises(KeyError, match="no history has metric 'nope'.*pde_loss"):
        plots.convergence({"a": HIST}, metric="nope")


def test_ablation_bars_error_bars_are_the_ci():
    cis = {"x": mean_ci([1.0, 2.0, 3.0]), "y": CI(5.0, 4.0, 7.0, 3)}
    fig = plots.ablation_bars(cis, title="t", y_title="acc", reference=6.0)
    bar = fig.data[0]
    assert list(bar.y) == [2.0, 5.0]
    assert list(bar.error_y.array) == pytest.approx([cis["x"].high - 2.0, 2.0])
    assert list(bar.error_y.arrayminus) == pytest.approx([2.0 - cis["x"].low, 1.0])
    assert len(fig.layout.shapes) == 1 and fig.layout.shapes[0].y0 == 6.0
    # the reference is named in the legend (a label on the line could sit under a bar)
    assert fig.data[1].name == "target" and fig.layout.showlegend and not fig.data[0].showlegend
    assert not plots.ablation_bars(cis, title="t", y_title="acc").layout.showlegend


def test_comparison_table_bolds_the_best():
    rows = [{"method": "RK4", "err_um": 0.5, "tracks_s": 1e5},
            {"method": "MLP", "err_um": 50.0, "tracks_s": 1e6}]
    html = plots.comparison_table(rows, caption="cmp", fmt="{:.3g}", lower_is_better=["err_um"],
                                  higher_is_better=["tracks_s"]).to_html()
    assert "cmp" in html and html.count("font-weight: bold") == 2
    with pytest.raises(KeyError, match="no column 'nope'"):
        plots.comparison_table(rows, lower_is_better=["nope"])


def test_curves_with_ci_band_is_the_t_interval_over_seeds():
    x = [10, 20]
    vals = [[0.5, 0.7, 0.6], [0.8, 0.9, 0.85]]
    fig = plots.curves_with_ci(x, {"margin": vals}, title="t", x_title="labels", y_title="acc")
    band, line = fig.data
    lo0, hi0 = mean_ci(vals[0]).low, mean_ci(vals[0]).high
    assert list(line.y) == pytest.approx([0.6, 0.85])
    assert list(band.y) == pytest.approx([hi0, mean_ci(vals[1]).high, mean_ci(vals[1]).low, lo0])
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
    significant digits (not pandas' six decimals)."""
    rows = [{"program": "P1", "rows": 10521, "accuracy": 0.557}]
    html = plots.comparison_table(rows, fmt={"rows": "{:,}"}).to_html()
    assert "10,521" in html and ">0.557<" in html and "0.557000" not in html
    # a missing value is a dash, not "nan"
    html = plots.comparison_table(rows + [{"program": "P2", "rows": None, "accuracy": None}],
                                  fmt={"rows": "{:,}"}).to_html()
    assert html.count(">—<") == 2 and "nan" not in html
