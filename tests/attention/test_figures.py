"""attention figures: the bias maps share one colour scale."""

from __future__ import annotations

import numpy as np

from physml.attention import figures as attention_figures


def test_bias_maps_share_one_colour_scale_so_a_faint_bias_looks_faint():
    terrain = np.array([[0.0, 1000.0], [0.0, 0.0]])
    maps = {"loud": np.array([[-2.0, 1.0], [0.0, 0.0]]), "faint": np.full((2, 2), 0.02),
            "none": np.zeros((2, 2))}
    fig = attention_figures.bias_maps(maps, terrain, query=3, title="t")
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert [(t.zmin, t.zmax) for t in heat[1:]] == [(-2.0, 2.0)] * 3  # the largest |bias|
    assert [t.showscale for t in heat] == [False, True, False, False]  # one colour bar
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["terrain (patch mean)<br>0 to 1000 m", "loud<br>max |bias| 2",
                      "faint<br>max |bias| 0.02", "none<br>max |bias| 0"]
    zero = attention_figures.bias_maps({"none": np.zeros((2, 2))}, terrain, 0, "t")
    assert (zero.data[2].zmin, zero.data[2].zmax) == (-1.0, 1.0)  # all zero: a proper scale


def test_tracer_movie_puts_its_controls_below_the_axis_title():
    frames = np.zeros((3, 4, 4))
    fig = attention_figures.tracer_movie(frames, np.zeros((4, 4)), np.array([0.0, 60, 120]), "t")
    menu, slider = fig.layout.updatemenus[0], fig.layout.sliders[0]
    assert (menu.y, menu.yanchor) == (0.0, "top") and menu.pad.t >= 60 and slider.pad.t >= 60
    assert [s.label for s in slider.steps] == ["0 min", "1 min", "2 min"] and len(fig.frames) == 3


def test_bias_scale_puts_a_point_per_variant_and_names_a_zero_bias_instead_of_hiding_it():
    import pandas as pd

    df = pd.DataFrame({"variant": ["alibi2d", "relpos", "elev_released_fixed"],
                       "max_abs_bias": [2.5, 0.0, 0.0113], "logit_std": [0.076] * 3})
    fig = attention_figures.bias_scale(df, "t")
    pts = fig.data[0]
    assert pts.type == "scatter" and pts.mode == "markers" and fig.layout.yaxis.type == "log"
    assert list(pts.x) == ["alibi2d", "relpos (0)", "elev_released_fixed"]
    assert pts.y[0] == 2.5 and np.isnan(pts.y[1]) and pts.y[2] == 0.0113
    assert [s.y0 for s in fig.layout.shapes] == [0.076]


def test_convergence_ticks_the_cell_sizes_run_and_draws_first_order_through_the_last_row():
    import pandas as pd

    df = pd.DataFrame({"dx_m": [250.0, 500.0, 1000.0, 2000.0],
                       "rel_error": [0.031, 0.064, 0.12, 0.21]})
    fig = attention_figures.convergence(df, 0.9, "t")
    assert list(fig.layout.xaxis.tickvals) == [250.0, 500.0, 1000.0, 2000.0]
    assert list(fig.layout.xaxis.ticktext) == ["250", "500", "1,000", "2,000"]
    np.testing.assert_allclose(fig.data[1].y, 0.21 * df["dx_m"] / 2000.0)
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.tickvals is not None
