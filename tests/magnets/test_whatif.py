"""What-if: precomputed slider steps and the live widget update the figure data."""

import numpy as np

from physml.magnets.hand import default_hand
from physml.magnets.whatif import static_whatif, whatif_widget


def test_static_slider_steps_hold_different_precomputed_fields():
    fig, sweep = static_whatif(default_hand(), values_mm=[0, 10, 20])
    steps = fig.layout.sliders[0].steps
    assert len(steps) == 3
    x0, x2 = np.asarray(steps[0].args[0]["x"][0]), np.asarray(steps[2].args[0]["x"][0])
    assert x0.shape == (32,) and not np.allclose(x0, x2)
    assert sweep["min_distance_sigma"][0] > sweep["min_distance_sigma"][2]


def test_moving_a_widget_slider_changes_the_figure_data():
    w = whatif_widget(default_hand())
    before = np.array(w.figure.data[0].x)
    title = w.figure.layout.title.text
    w.sensor[2].value = 15.0
    assert not np.allclose(before, np.array(w.figure.data[0].x))
    assert w.figure.layout.title.text != title
    w.finger.value = "ring"
    w.mount.value = 60.0
    assert abs(w.placement.mount_m[0, 3] - 0.060) < 1e-12
