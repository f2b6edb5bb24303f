"""What-if: precomputed slider steps and the live widget update the figure data."""

import re
import time

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


def _magpylib_dipoles(hand, sensor_m):
    """(32, 3) µT: the hand's magnets as magpylib Dipole objects, read at sensor_m."""
    import magpylib as magpy

    from physml.magnets.hand import ALL_BITS, hand_magnets

    pos, ax = hand_magnets(hand, ALL_BITS)
    return np.array([1e6 * np.asarray(magpy.getB(
        [magpy.misc.Dipole(position=pos[s, k], moment=hand.moment_Am2[k] * ax[s, k])
         for k in range(5)], sensor_m, sumup=True)).ravel() for s in range(32)])


def test_static_steps_are_the_dipole_field_with_the_sensor_moved_up_by_each_value():
    from physml.magnets.hand import sample_hand

    hand = sample_hand(np.random.default_rng(3), moment_tolerance=0.0)  # sensor off the origin
    values = [10.0, 0.0, 2.5]  # the nominal 0 mm is not the first step
    fig, sweep = static_whatif(hand, values_mm=values, noise_uT=3.0)
    steps = fig.layout.sliders[0].steps
    for v, step in zip(values, steps, strict=True):
        got = np.stack([np.asarray(step.args[0][c][0]) for c in "xyz"], axis=1)
        want = _magpylib_dipoles(hand, hand.sensor_m + [0.0, 0.0, 1e-3 * v])
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=f"{v} mm")
        assert step.label == {10.0: "+10", 0.0: "+0", 2.5: "+2.5"}[v]  # not rounded to +2
        assert f"sensor z {step.label} mm" in step.args[1]["title.text"]
    # the figure opens at the nominal sensor: slider, drawn points and title of the 0 mm step
    assert fig.layout.sliders[0].active == 1
    np.testing.assert_array_equal(np.asarray(fig.data[0].x), np.asarray(steps[1].args[0]["x"][0]))
    assert fig.layout.title.text == steps[1].args[1]["title.text"]
    assert sweep["offset_mm"] == values
    # distances are in units of the noise: twice the noise, half the distance
    _, noisier = static_whatif(hand, values_mm=values, noise_uT=6.0)
    np.testing.assert_allclose(noisier["min_distance_sigma"],
                               np.array(sweep["min_distance_sigma"]) / 2, rtol=1e-9)
    assert np.all(np.array(noisier["expected_accuracy"]) < np.array(sweep["expected_accuracy"]))


def test_sweep_endpoints_take_the_nominal_step_and_the_last():
    from physml.magnets.whatif import sweep_endpoints

    sweep = {"offset_mm": [5.0, 0.0, 10.0], "min_distance_sigma": [3.0, 4.0, 1.0],
             "expected_accuracy": [0.9, 0.95, 0.5]}
    assert sweep_endpoints(sweep) == {
        "offset_mm_nominal": 0.0, "min_distance_sigma_nominal": 4.0,
        "expected_accuracy_nominal": 0.95, "offset_mm_last": 10.0,
        "min_distance_sigma_last": 1.0, "expected_accuracy_last": 0.5}
    no_zero = dict(sweep, offset_mm=[5.0, 7.0, 10.0])  # no 0 mm step: the first one
    assert sweep_endpoints(no_zero)["min_distance_sigma_nominal"] == 3.0


def test_widget_controls_write_the_selected_finger_in_si_units_and_rescore():
    from physml.magnets.placement import separability

    hand = default_hand()
    w = whatif_widget(hand, noise_uT=3.0)
    w.finger.value = "ring"  # the sliders now show the ring finger's own placement
    assert w.mount.value == 1e3 * hand.mount_m[3] and w.diameter.value == 1e3 * hand.diameter_m[3]
    w.mount.value, w.tilt.value, w.diameter.value = 60.0, 90.0, 8.0
    w.sensor[0].value, w.sensor[2].value = -5.0, 12.0
    p = w.placement
    assert p.mount_m[0, 3] == 0.060 and p.tilt_rad[0, 3] == np.pi / 2
    assert p.diameter_m[0, 3] == 0.008
    np.testing.assert_allclose(p.sensor_offset_m[0], [-0.005, 0.0, 0.012])
    others = [0, 1, 2, 4]  # the other fingers keep the hand's placement
    np.testing.assert_array_equal(p.mount_m[0, others], hand.mount_m[others])
    np.testing.assert_array_equal(p.diameter_m[0, others], hand.diameter_m[others])
    w.finger.value = "index"  # switching shows index's values and writes nothing
    assert w.mount.value == 1e3 * hand.mount_m[1] and p.mount_m[0, 3] == 0.060
    assert w.tilt.value == 0.0 and p.tilt_rad[0, 1] == hand.tilt_rad[1]  # not ring's 90°
    assert w.mount.max == 1e3 * hand.lengths_m.sum(1).max()  # up to the longest finger
    # the drawn fields and the title are the rescored placement's
    want = separability(hand, p, 3.0)
    np.testing.assert_allclose(np.asarray(w.figure.data[0].z), want["fields_uT"][0, :, 2])
    assert f"{want['min_distance_sigma'][0]:.2f} σ" in w.figure.layout.title.text
    t0 = time.perf_counter()
    w.noise.value = 6.0
    took_ms = 1e3 * (time.perf_counter() - t0)
    assert w.noise_uT == 6.0
    shown = float(re.fullmatch(r"rescored in ([0-9.]+) ms", w.status.value).group(1))
    assert 0 <= shown <= took_ms + 0.05  # the rescoring's own time, in ms, within the change
    np.testing.assert_allclose(w.last["min_distance_sigma"], want["min_distance_sigma"] / 2)
