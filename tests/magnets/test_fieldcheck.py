"""physml.magnets.fieldcheck against magpylib objects and the multipole expansion of a cylinder."""

import numpy as np
import pytest

from physml.magnets import fieldcheck
from physml.magnets.hand import ALL_BITS, hand_magnets, sample_hand


def test_dipole_vs_magpylib_agrees_and_measures_the_relative_error(monkeypatch):
    check = fieldcheck.dipole_vs_magpylib(np.random.default_rng(0), n_observers=2000)
    assert check["max_rel_err"] < 1e-9 and check["median_rel_err"] <= check["max_rel_err"]
    assert check["n_sources"] == 5 and 1900 < check["n_observers"] <= 2000

    # a kernel 0.1% too strong everywhere is 1e-3 off at every observer, no more, no less
    true_field = fieldcheck.dipole_field
    monkeypatch.setattr(fieldcheck, "dipole_field", lambda *a: 1.001 * np.asarray(true_field(*a)))
    off = fieldcheck.dipole_vs_magpylib(np.random.default_rng(0), n_observers=500)
    assert off["max_rel_err"] == pytest.approx(1e-3, rel=1e-6)
    assert off["median_rel_err"] == pytest.approx(1e-3, rel=1e-6)


def test_dipole_vs_magpylib_compares_only_observers_away_from_every_source(monkeypatch):
    seen = {}
    true_field = fieldcheck.dipole_field

    def spy(obs, pos, mom):
        seen["obs"], seen["pos"] = np.asarray(obs), np.asarray(pos)
        return true_field(obs, pos, mom)

    monkeypatch.setattr(fieldcheck, "dipole_field", spy)
    check = fieldcheck.dipole_vs_magpylib(np.random.default_rng(1), n_observers=3000,
                                          min_distance_m=0.04)
    d = np.linalg.norm(seen["obs"][:, None] - seen["pos"][None], axis=-1).min(axis=1)
    assert d.min() > 0.04
    assert check["n_observers"] == len(seen["obs"]) < 3000  # some were too close and left out


def test_dipole_error_falls_as_the_octupole_says_and_vanishes_faster_at_the_ideal_aspect():
    # a cylinder magnetised along its axis has no quadrupole (it is symmetric under z → −z), so
    # the dipole's relative error is the octupole's, ∝ (size / r)²; at height / diameter = √3/2
    # the octupole vanishes too and the error falls as r⁻⁴ (the hexadecapole's order)
    dist = np.array([8.0, 16.0, 32.0])
    for height, order in ((0.003, 2.0), (0.006, 2.0), (0.006 * np.sqrt(3) / 2, 4.0)):
        c = fieldcheck.dipole_error_vs_distance(dist, diameter_m=0.006, height_m=height,
                                                n_directions=60)
        for key in ("median_rel_err", "max_rel_err"):
            slope = np.diff(np.log(c[key])) / np.diff(np.log(dist))
            np.testing.assert_allclose(slope, -order, atol=0.05, err_msg=f"{height} {key}")
    assert list(c["distance_diam"]) == list(dist) and c["max_rel_err"].shape == (3,)


def test_dipole_error_depends_on_distance_in_diameters_only():
    # the same shape twice the size at twice the distance, or at half the remanence: same error
    dist = [1.0, 3.0, 10.0]
    a = fieldcheck.dipole_error_vs_distance(dist, 0.006, 0.003, 1.4, n_directions=40,
                                            rng=np.random.default_rng(2))
    for kw in (dict(diameter_m=0.012, height_m=0.006), dict(polarization_T=0.7)):
        b = fieldcheck.dipole_error_vs_distance(dist, **{"diameter_m": 0.006, "height_m": 0.003,
                                                         **kw}, n_directions=40,
                                                rng=np.random.default_rng(2))
        for key in ("median_rel_err", "max_rel_err"):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-6, err_msg=str(kw))
    assert np.all(np.diff(a["median_rel_err"]) < 0) and a["max_rel_err"][0] > 0.01
    with pytest.raises(ValueError, match="distances"):
        fieldcheck.dipole_error_vs_distance([2.0, 0.0])


def test_breakdown_distance_is_where_the_error_stays_below_tolerance():
    d = np.array([1.0, 2.0, 3.0, 4.0])

    def at(errors, tol=0.01):
        return fieldcheck.breakdown_distance({"distance_diam": d,
                                              "max_rel_err": np.array(errors)}, tol)

    assert at([0.5, 0.2, 0.005, 0.002]) == 3.0
    assert at([0.009, 0.008, 0.005, 0.002]) == 1.0  # good everywhere: the nearest distance
    assert at([0.005, 0.02, 0.005, 0.002]) == 3.0  # a bad distance beyond a good one counts
    assert at([0.5, 0.01, 0.005, 0.002]) == 3.0  # exactly at the tolerance is not below it
    assert at([0.5, 0.2, 0.005, 0.002], tol=0.1) == 3.0 and at([0.5, 0.2, 0.05, 0.02], 0.3) == 2.0
    assert np.isnan(at([0.5, 0.2, 0.005, 0.02]))  # still above at the farthest distance


def test_hand_model_error_against_magpylib_objects_state_by_state():
    import magpylib as magpy
    from scipy.spatial.transform import Rotation

    hand = sample_hand(np.random.default_rng(4))  # unequal moments, sensor off the origin
    assert np.linalg.norm(hand.sensor_m) > 0 and np.ptp(hand.moment_Am2) > 0
    got = fieldcheck.hand_model_error(hand)

    pos, ax = hand_magnets(hand, ALL_BITS)
    abs_err, rel_err = [], []
    for s in range(32):
        cyl, dip = [], []
        for k in range(5):
            rot = Rotation.align_vectors([ax[s, k]], [[0.0, 0.0, 1.0]])[0]
            cyl.append(magpy.magnet.Cylinder(
                dimension=(hand.diameter_m[k], hand.height_m[k]),
                polarization=(0.0, 0.0, hand.polarization_T[k]), position=pos[s, k],
                orientation=rot))
            dip.append(magpy.misc.Dipole(position=pos[s, k],
                                         moment=hand.moment_Am2[k] * ax[s, k]))
        exact = np.asarray(magpy.getB(cyl, hand.sensor_m, sumup=True)).ravel()
        approx = np.asarray(magpy.getB(dip, hand.sensor_m, sumup=True)).ravel()
        abs_err.append(np.linalg.norm(approx - exact))
        rel_err.append(abs_err[-1] / np.linalg.norm(exact))
    nearest = np.linalg.norm(pos - hand.sensor_m, axis=-1) / hand.diameter_m
    assert got["max_abs_err_uT"] == pytest.approx(1e6 * max(abs_err), rel=1e-6)
    assert got["max_rel_err"] == pytest.approx(max(rel_err), rel=1e-6)
    assert got["min_distance_diam"] == pytest.approx(nearest.min(), rel=1e-12)


def test_random_sources_fill_the_cube_around_the_origin_at_the_moment_scale():
    pos, mom = fieldcheck.random_sources(np.random.default_rng(5), n_sources=4000,
                                         spread_m=0.02, moment_Am2=0.3)
    assert pos.shape == mom.shape == (4000, 3)
    assert np.all(np.abs(pos) <= 0.02) and pos.min() < -0.019 and pos.max() > 0.019
    assert np.sqrt(np.mean(mom**2)) == pytest.approx(0.3, rel=0.03)  # per-component scale
