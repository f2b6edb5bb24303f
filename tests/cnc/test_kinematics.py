"""Kinematic model of G-code lines against hand-computed moves (issue 11, notebook 05)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from physml.cnc import kinematics as K
from physml.cnc import tokens


def _one(lines, rapid=50.0, **kw):
    return K.line_motions(lines, rapid_rate=rapid, **kw)


def test_a_straight_feed_move_lasts_length_over_feed():
    # 3-4-5 triangle: 5 in at 10 in/min = 30 s
    m = _one([(1, "G1 X3. Y4. F10.")])
    assert m.loc[0, "length"] == pytest.approx(5.0)
    assert m.loc[0, "seconds"] == pytest.approx(30.0)
    assert m.loc[0, "mode"] == "G1"


def test_a_rapid_uses_the_rapid_rate_not_the_feed():
    m = _one([(1, "G1 X1. F1."), (2, "G0 X3.")], rapid=60.0)
    assert m.loc[1, "seconds"] == pytest.approx(2.0)  # 2 in at 60 in/min = 2 s
    assert m.loc[1, "mode"] == "G0"


def test_a_quarter_arc_via_r_and_via_ij_have_length_pi_r_over_2():
    r = 2.0
    via_r = _one([(1, "G1 X2. Y0. F5."), (2, "G3 X0. Y2. R2.")])
    via_ij = _one([(1, "G1 X2. Y0. F5."), (2, "G3 X0. Y2. I-2. J0.")])
    want = math.pi * r / 2
    assert via_r.loc[1, "length"] == pytest.approx(want)
    assert via_ij.loc[1, "length"] == pytest.approx(want)
    assert via_r.loc[1, "seconds"] == pytest.approx(60 * want / 5.0)


def test_clockwise_and_counter_clockwise_ij_arcs_sweep_complementary_angles():
    # from (2,0) to (0,2) about the origin: CCW is a quarter, CW three quarters
    ccw = K.arc_length((2, 0, 0), (0, 2, 0), clockwise=False, centre_offset=(-2, 0))
    cw = K.arc_length((2, 0, 0), (0, 2, 0), clockwise=True, centre_offset=(-2, 0))
    assert ccw == pytest.approx(math.pi)
    assert cw == pytest.approx(3 * math.pi)


def test_negative_r_takes_the_long_arc():
    short = K.arc_length((2, 0, 0), (0, 2, 0), clockwise=False, radius=2.0)
    long_ = K.arc_length((2, 0, 0), (0, 2, 0), clockwise=False, radius=-2.0)
    assert short + long_ == pytest.approx(2 * math.pi * 2.0)


def test_full_circle_with_ij_and_helix():
    full = K.arc_length((1, 0, 0), (1, 0, 0), clockwise=True, centre_offset=(-1, 0))
    assert full == pytest.approx(2 * math.pi)
    helix = K.arc_length((1, 0, 0), (1, 0, 3), clockwise=True, centre_offset=(-1, 0))
    assert helix == pytest.approx(math.hypot(2 * math.pi, 3))


def test_modal_state_carries_mode_feed_and_position():
    m = _one([(1, "G1 X1. F6."), (2, "Y1."), (3, "X0. Y0.")])
    assert list(m["mode"]) == ["G1", "G1", "G1"]
    assert m.loc[1, "seconds"] == pytest.approx(10.0)  # 1 in at 6 in/min
    assert m.loc[2, "length"] == pytest.approx(math.sqrt(2))


def test_lines_without_axis_words_take_no_time():
    m = _one([(1, "G90 G94 G17"), (2, "M3 S12000"), (3, "G0 X1.")])
    assert list(m["mode"][:2]) == ["none", "none"]
    assert list(m["seconds"][:2]) == [0.0, 0.0]


def test_errors_name_the_line():
    with pytest.raises(ValueError, match="line 1"):
        _one([(1, "G1 X1.")])  # no feed
    with pytest.raises(ValueError, match="line 2"):
        _one([(1, "G1 X0. F1."), (2, "G2 X5. R1.")])  # radius too small for the chord
    with pytest.raises(ValueError, match="rapid_rate"):
        _one([(1, "G0 X1.")], rapid=0.0)


def test_reported_feeds_and_modes_fill_unreported_words_but_text_wins():
    rows = pd.DataFrame({"gcode_line": [2, 2, 3], "feed": [254.0, 254.0, 508.0],
                         "momo": [1.0, 1.0, 1.0]})
    feeds = K.feeds_from_reports(rows)
    assert feeds == {2: pytest.approx(10.0), 3: pytest.approx(20.0)}  # mm/min -> in/min
    modes = tokens.reported_modes(rows)
    m = _one([(1, "G0 X1."), (2, "X2."), (3, "X3. F5.")], feeds=feeds, modes=modes)
    assert list(m["mode"]) == ["G0", "G1", "G1"]
    assert m.loc[1, "seconds"] == pytest.approx(6.0)  # 1 in at 10 in/min
    assert m.loc[2, "seconds"] == pytest.approx(12.0)  # the text's F5 wins over 20


def test_expected_rows_scale_with_the_sampling_rate():
    assert np.allclose(K.expected_rows(np.array([1.0, 2.5]), 4.0), [4.0, 10.0])
    with pytest.raises(ValueError):
        K.expected_rows(np.array([1.0]), 0.0)


def test_an_arc_after_unreported_lines_uses_its_chord_and_is_flagged():
    m = _one([(1, "G1 X0. Y0. F5."), (5, "G2 X5. R1.")])  # lines 2-4 unknown
    assert bool(m.loc[1, "approximate"]) and m.loc[1, "length"] == pytest.approx(5.0)
    assert not bool(m.loc[0, "approximate"])


def test_uncertainty_after_a_gap_lasts_until_every_axis_is_restated():
    # after the gap only X is restated, so Y may be wrong: the impossible arc is flagged
    m = _one([(1, "G1 X0. Y0. F5."), (5, "X1."), (6, "G2 X5. R1.")])
    assert bool(m.loc[2, "approximate"])
    # once X, Y and Z are restated the position is known again, and an impossible arc raises
    with pytest.raises(ValueError, match="line 7"):
        _one([(1, "G1 X0. Y0. F5."), (5, "X1. Y1. Z0."), (6, "X0."), (7, "G2 X5. R1.")])


def test_an_off_centre_helical_arc_against_hand_computed_lengths():
    # centre (2, 3) = start (3, 1) + (I, J) = (-1, 2), radius √5; the end (4, 4) is the start
    # turned a quarter counter-clockwise about it; z climbs from 0.5 to 1.5 on the way
    r, start, end = math.sqrt(5.0), (3.0, 1.0, 0.5), (4.0, 4.0, 1.5)
    ccw = K.arc_length(start, end, clockwise=False, centre_offset=(-1.0, 2.0))
    cw = K.arc_length(start, end, clockwise=True, centre_offset=(-1.0, 2.0))
    assert ccw == pytest.approx(math.hypot(r * math.pi / 2, 1.0))
    assert cw == pytest.approx(math.hypot(r * 3 * math.pi / 2, 1.0))
    # the same arc by its radius: chord √10 = 2r sin(45°); R < 0 takes the other three quarters
    assert K.arc_length(start, end, clockwise=False, radius=r) == pytest.approx(ccw)
    assert K.arc_length(start, end, clockwise=False, radius=-r) == pytest.approx(cw)


def test_a_half_circle_by_its_radius_is_accepted_at_chord_2r():
    assert K.arc_length((0, 0, 0), (2, 0, 0), clockwise=True, radius=1.0) == pytest.approx(math.pi)
    with pytest.raises(ValueError, match="cannot join"):
        K.arc_length((0, 0, 0), (2.001, 0, 0), clockwise=True, radius=1.0)


def test_arcs_outside_the_xy_plane_are_refused_each_alone():
    for plane in ("G18", "G19"):
        with pytest.raises(ValueError, match=f"line 2 '{plane}"):
            _one([(1, "G1 X0. F5."), (2, f"{plane} G2 X1. Z1. R1.")])


def test_a_move_of_all_three_axes_and_a_line_that_moves_nothing_in_a_motion_mode():
    m = _one([(1, "G1 X1. Y2. Z2. F6."), (2, "M9")])
    assert m.loc[0, "length"] == pytest.approx(3.0) and m.loc[0, "seconds"] == pytest.approx(30.0)
    assert m.loc[1, "mode"] == "none" and m.loc[1, "seconds"] == 0.0


def test_an_arc_mode_line_without_r_i_j_is_a_straight_feed_move():
    m = _one([(1, "G1 X0. Y0. F5."), (2, "G2 X2. R1."), (3, "X3.")])
    assert m.loc[2, "mode"] == "G1" and m.loc[2, "length"] == pytest.approx(1.0)


def test_a_machine_coordinate_move_takes_the_stated_time_and_moves_nothing():
    m = _one([(1, "G1 X1. F5."), (2, "G53 G0 Z0."), (3, "G1 X2.")], machine_move_s=2.5)
    assert m.loc[1, "seconds"] == 2.5 and m.loc[1, "length"] == 0.0
    assert m.loc[2, "length"] == pytest.approx(1.0)  # from where the line before left off


def test_the_chord_stand_in_starts_at_the_last_known_point():
    m = _one([(1, "G1 X1. Y1. F5."), (5, "G2 X4. Y5. R1.")])  # lines 2-4 unknown
    assert bool(m.loc[1, "approximate"]) and m.loc[1, "length"] == pytest.approx(5.0)


def test_reported_feeds_ignore_rows_at_zero_feed():
    rows = pd.DataFrame({"gcode_line": [2, 2], "feed": [0.0, 254.0], "momo": [1.0, 1.0]})
    assert K.feeds_from_reports(rows) == {2: pytest.approx(10.0)}
