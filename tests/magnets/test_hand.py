"""Hand kinematics against hand-computed geometry."""

import numpy as np
import pytest

from physml.magnets.hand import (
    ALL_BITS,
    STATE_CODES,
    bits_to_code,
    bits_to_index,
    code_to_bits,
    default_hand,
    hand_magnets,
    index_to_bits,
)


def test_state_codes_bits_and_indices_agree():
    assert len(set(STATE_CODES)) == 32
    assert bits_to_code(code_to_bits(list(STATE_CODES))) == list(STATE_CODES)
    assert (bits_to_index(ALL_BITS) == np.arange(32)).all()
    assert (index_to_bits([0, 31, 16])[2] == [1, 0, 0, 0, 0]).all()
    assert (code_to_bits("eefef") == [0, 0, 1, 0, 1]).all()
    with pytest.raises(ValueError, match="state code"):
        code_to_bits("eefe")


def _straight_finger_hand(mount, flexed):
    h = default_hand()
    return h.replace(extended_rad=np.zeros((5, 2)), flexed_rad=np.tile(flexed, (5, 1)),
                     mount_m=np.full(5, mount), tilt_rad=np.zeros(5))


def test_extended_finger_magnet_lies_along_the_finger_on_its_back():
    h = _straight_finger_hand(0.03, [np.pi / 2, 0.0])
    pos, ax = hand_magnets(h, np.zeros((1, 5), int))
    f = 2  # middle finger: direction +x, flex axis +y
    np.testing.assert_allclose(pos[0, f], h.base_m[f] + [0.03, 0, 0] + [0, 0, h.surface_m[f]],
                               atol=1e-12)
    np.testing.assert_allclose(ax[0, f], [0, 0, 1], atol=1e-12)


def test_finger_flexed_90_degrees_points_into_the_palm():
    h = _straight_finger_hand(0.03, [np.pi / 2, 0.0])
    pos, ax = hand_magnets(h, np.ones((1, 5), int))
    f = 2
    # x̂ rotated 90° about ŷ is −ẑ; the dorsal normal ẑ becomes +x̂
    np.testing.assert_allclose(pos[0, f], h.base_m[f] + [0, 0, -0.03] + [h.surface_m[f], 0, 0],
                               atol=1e-12)
    np.testing.assert_allclose(ax[0, f], [1, 0, 0], atol=1e-12)


def test_magnet_on_second_segment_follows_both_joints():
    h = _straight_finger_hand(0.0, [np.pi / 2, np.pi / 2])
    L1 = h.lengths_m[2, 0]
    h = h.replace(mount_m=np.full(5, L1 + 0.01))
    pos, ax = hand_magnets(h, np.ones((1, 5), int))
    # first segment points −z, second (180° total) points −x; dorsal normal is −z
    expect = h.base_m[2] + [0, 0, -L1] + [-0.01, 0, 0] + [0, 0, -h.surface_m[2]]
    np.testing.assert_allclose(pos[0, 2], expect, atol=1e-12)
    np.testing.assert_allclose(ax[0, 2], [0, 0, -1], atol=1e-12)
