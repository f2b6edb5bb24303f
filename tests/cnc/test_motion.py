"""Motion features (task a): each against an analytic signal, and the input gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from physml.cnc import motion, schema


def _circle(n: int, step: float, ccw: bool, r: float = 2.0, cx: float = 3.0, cy: float = -1.0):
    t = np.arange(n) * step
    return cx + r * np.cos(t), cy + r * (np.sin(t) if ccw else -np.sin(t))


@pytest.mark.parametrize("ccw", [True, False])
def test_rotation_sense_of_a_circle_is_plus_or_minus_sin_step(ccw):
    # 21 samples per turn and a 21-row window (half 10): whole periods in every interior window,
    # so the swept area per sample over (var a + var b) is exactly sin(2 pi / 21)
    step = 2 * np.pi / 21
    a, b = _circle(120, step, ccw)
    r = motion.rotation_sense(a, b, np.array(["f"] * 120), half=10)
    want = np.sin(step) * (1 if ccw else -1)
    np.testing.assert_allclose(r[10:110], want, rtol=1e-9)


def test_rotation_sense_is_zero_for_a_straight_line_and_a_still_signal():
    n = 40
    f = np.array(["f"] * n)
    x = np.linspace(0.0, 5.0, n)
    np.testing.assert_allclose(motion.rotation_sense(x, 2 * x + 1, f, 4), 0.0, atol=1e-12)
    np.testing.assert_array_equal(motion.rotation_sense(np.ones(n), np.ones(n), f, 4), 0.0)


def test_rotation_sense_is_invariant_to_offset_and_scale_but_flips_with_a_mirror():
    rng = np.random.default_rng(1)
    a, b = _circle(60, 0.4, True)
    a, b = a + 0.01 * rng.normal(size=60), b + 0.01 * rng.normal(size=60)
    f = np.array(["f"] * 60)
    r = motion.rotation_sense(a, b, f, 6)
    np.testing.assert_allclose(motion.rotation_sense(5 * a + 100, 5 * b - 7, f, 6), r, rtol=1e-9)
    np.testing.assert_allclose(motion.rotation_sense(a, -b, f, 6), -r, rtol=1e-9)
    assert (r[6:-6] > 0).all()


def test_rotation_sense_windows_never_cross_files():
    # file "a" turns CCW, file "b" CW: no row of either may see the other's sense
    a1, b1 = _circle(30, 0.5, True)
    a2, b2 = _circle(30, 0.5, False)
    f = np.array(["a"] * 30 + ["b"] * 30)
    r = motion.rotation_sense(np.r_[a1, a2], np.r_[b1, b2], f, 5)
    assert (r[:30] > 0).all() and (r[30:] < 0).all()
    alone = motion.rotation_sense(a2, b2, np.array(["b"] * 30), 5)
    np.testing.assert_allclose(r[30:], alone, rtol=1e-12)


def test_centred_stats_by_hand_and_per_file():
    v = np.array([1.0, 2.0, 4.0, 8.0, 100.0, 200.0])[:, None]
    f = np.array(["a"] * 4 + ["b"] * 2)
    s = motion.centred_stats(v, f, half=1)
    # mean over rows i-1..i+1 of the same file (cut at the ends)
    np.testing.assert_allclose(s[:, 0, 0], [1.5, 7 / 3, 14 / 3, 6.0, 150.0, 150.0])
    np.testing.assert_allclose(s[:, 0, 1], [0.5, np.std([1, 2, 4]), np.std([2, 4, 8]), 2.0,
                                            50.0, 50.0])
    # activity: mean squared first difference over the window's consecutive pairs
    np.testing.assert_allclose(s[:, 0, 2], [1.0, (1 + 4) / 2, (4 + 16) / 2, 16.0,
                                            1e4, 1e4])


def test_centred_stats_match_pandas_centred_rolling():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 2))
    s = motion.centred_stats(v, np.array(["f"] * 50), half=3, stats=("mean", "std"))
    ref = pd.DataFrame(v).rolling(7, center=True, min_periods=1)
    np.testing.assert_allclose(s[:, :, 0], ref.mean().to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(s[:, :, 1], ref.std(ddof=0).to_numpy(), rtol=1e-6, atol=1e-9)


def test_motion_features_refuse_controller_fields():
    rows = pd.DataFrame({"file": ["a"] * 5, "posx": np.arange(5.0), "posy": np.arange(5.0),
                         "x_motor": np.ones(5), "y_motor": np.ones(5)})
    with pytest.raises(ValueError, match="posx"):
        motion.motion_features(rows, ["posx", "x_motor"], halves=(1,))
    with pytest.raises(ValueError, match="posy"):
        motion.motion_features(rows, ["x_motor", "y_motor"], halves=(1,),
                               pairs=[("x_motor", "posy")])


def test_default_feature_list_is_free_of_controller_fields():
    from physml.cnc import features

    cols = features.model_input_columns()
    pairs = motion.default_pairs(cols)
    assert ("x_motor", "y_motor") in pairs
    assert all(a in cols and b in cols for a, b in pairs)
    assert not any(schema.is_forbidden_input(c) for p in pairs for c in p)


def test_motion_features_names_shape_and_sign_on_a_synthetic_recording():
    # drive signals tracing a CCW circle in file "a" and a CW one in file "b"
    a1, b1 = _circle(40, 0.3, True)
    a2, b2 = _circle(40, 0.3, False)
    rows = pd.DataFrame({"file": ["a"] * 40 + ["b"] * 40, "x_motor": np.r_[a1, a2],
                         "y_motor": np.r_[b1, b2], "z_motor": np.zeros(80)})
    X, names = motion.motion_features(rows, ["x_motor", "y_motor", "z_motor"], halves=(2, 5))
    assert X.shape == (80, len(names)) == (80, 2 * (3 * 3 + 1))
    j = names.index("rot(x_motor,y_motor)@5")
    assert (X[:40, j] > 0).all() and (X[40:, j] < 0).all()
    # z is constant: no activity, whatever the standardisation
    k = names.index("z_motor:activity@2")
    np.testing.assert_array_equal(X[:, k], 0.0)


def test_a_gap_inside_a_file_is_named_but_a_node_absent_from_a_whole_file_is_a_mask():
    a1, b1 = _circle(20, 0.3, True)
    x = np.r_[a1, a1]
    y = np.r_[b1, np.full(20, np.nan)]  # y absent from the whole of file "b": a mask
    rows = pd.DataFrame({"file": ["a"] * 20 + ["b"] * 20, "x_motor": x, "y_motor": y})
    X, names = motion.motion_features(rows, ["x_motor", "y_motor"], halves=(2,))
    j = names.index("rot(x_motor,y_motor)@2")
    assert np.isfinite(X[:20]).all() and np.isnan(X[20:, j]).all()
    y_gap = np.r_[b1, b1]
    y_gap[26] = np.nan  # one missing cell inside file "b"
    rows["y_motor"] = y_gap
    with pytest.raises(ValueError, match=r"file 'b', column 'y_motor' .* row 6"):
        motion.motion_features(rows, ["x_motor", "y_motor"], halves=(2,))


def test_half_windows_and_shapes_are_refused_each_alone():
    v, files = np.arange(6.0).reshape(3, 2), np.array(["a"] * 3)
    for half in (-1, 1.5):
        with pytest.raises(ValueError, match="half window"):
            motion.centred_stats(v, files, half)
    np.testing.assert_array_equal(motion.centred_stats(v, files, 0, ("mean",))[:, :, 0], v)
    with pytest.raises(ValueError, match="must be"):
        motion.centred_stats(v[:, 0], files, 1)  # 1-D
    with pytest.raises(ValueError, match="must be"):
        motion.centred_stats(v[:2], files, 1)  # another length
    x = np.arange(3.0)
    for a, b in ((x, x[:2]), (v, v), (x[:2], x[:2])):  # shapes differ; 2-D; another length
        with pytest.raises(ValueError, match="must both be"):
            motion.rotation_sense(a, b, files, 1)


def test_per_file_none_keeps_the_raw_level_and_standardise_removes_it():
    rows = pd.DataFrame({"file": ["a"] * 10, "x_motor": 5.0 + np.arange(10) % 2})
    raw, names = motion.motion_features(rows, ["x_motor"], halves=(1,), per_file="none")
    std, _ = motion.motion_features(rows, ["x_motor"], halves=(1,))
    j = names.index("x_motor:mean@1")
    assert np.all((raw[:, j] >= 5.0) & (raw[:, j] <= 6.0))
    assert np.all(np.abs(std[:, j]) <= 1.0)


def test_default_pairs_take_a_node_pair_even_when_it_is_all_there_is():
    assert motion.default_pairs(["frame_l2.Mx", "frame_l2.My"]) == [("frame_l2.Mx", "frame_l2.My")]
    assert motion.default_pairs(["frame_l2.Mx"]) == []
