"""Placement separability: physics against magpylib, monotonicity, Monte Carlo, optimiser."""

import magpylib as magpy
import numpy as np
import pytest

from physml.magnets.hand import ALL_BITS, default_hand, hand_magnets
from physml.magnets.placement import (
    PlacementBounds,
    Placements,
    default_placement,
    monte_carlo_accuracy,
    optimise_placement,
    sample_placements,
    separability,
)


def test_state_fields_equal_magpylib_dipoles_for_a_moved_placement():
    hand = default_hand()
    p = default_placement(hand)
    p.mount_m[0, 2] *= 1.3
    p.tilt_rad[0, 4] = 0.7
    p.diameter_m[0, 1] = 0.008
    p.sensor_offset_m[0] = [0.004, -0.002, 0.01]
    f = separability(hand, p)["fields_uT"][0]
    h = hand.replace(mount_m=p.mount_m[0], tilt_rad=p.tilt_rad[0], diameter_m=p.diameter_m[0],
                     height_m=p.diameter_m[0] / 2)
    pos, ax = hand_magnets(h, ALL_BITS)
    for s in (0, 13, 31):
        src = [magpy.misc.Dipole(position=pp, moment=a * m)
               for pp, a, m in zip(pos[s], ax[s], h.moment_Am2, strict=True)]
        ref = 1e6 * magpy.getB(src, hand.sensor_m + p.sensor_offset_m[0], sumup=True)
        np.testing.assert_allclose(f[s], ref, rtol=1e-9)


def test_moving_the_sensor_away_from_the_magnets_lowers_separability():
    hand = default_hand()
    n = 6
    z = np.linspace(0.0, 0.05, n)  # sensor lifted off the back of the hand
    p = default_placement(hand, n)
    p.sensor_offset_m[:, 2] = z
    sc = separability(hand, p, noise_uT=3.0)
    assert np.all(np.diff(sc["min_distance_sigma"]) < 0)
    assert np.all(np.diff(sc["expected_accuracy"]) < 0)


def test_expected_accuracy_matches_monte_carlo_when_accuracy_is_high_and_bounds_it_below():
    hand = default_hand()
    for noise, tol in ((1.0, 0.005), (2.0, 0.015), (3.0, 0.025)):
        sc = separability(hand, default_placement(hand), noise)
        mc = monte_carlo_accuracy(sc["fields_uT"][0], noise, 3000, np.random.default_rng(0))
        assert sc["expected_accuracy"][0] == pytest.approx(mc, abs=tol)
    sc = separability(hand, default_placement(hand), 5.0)  # low accuracy: a lower bound
    mc = monte_carlo_accuracy(sc["fields_uT"][0], 5.0, 3000, np.random.default_rng(0))
    assert sc["expected_accuracy"][0] < mc


def test_optimiser_beats_the_default_placement():
    import time

    hand = default_hand()
    d = separability(hand, default_placement(hand), 5.0)["expected_accuracy"][0]
    t0 = time.perf_counter()
    r = optimise_placement(hand, np.random.default_rng(0), noise_uT=5.0, n_candidates=300,
                           n_iter=4)
    assert 0 < r["seconds"] <= time.perf_counter() - t0
    assert r["n_scored"] == 1200 and r["history"]["iteration"] == [0, 1, 2, 3]
    assert r["best_accuracy"] > d + 0.02
    again = separability(hand, r["best"], 5.0)["expected_accuracy"][0]
    assert again == pytest.approx(r["best_accuracy"])


def test_bad_arguments_raise():
    hand = default_hand()
    with pytest.raises(ValueError, match="noise_uT"):
        separability(hand, default_placement(hand), 0.0)
    bad = Placements(np.full((1, 5), 0.03), np.zeros((1, 5)), np.zeros((1, 5)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="diameters"):
        separability(hand, bad)


def test_finger_table_has_one_row_per_finger_and_each_placement_side_by_side():
    from physml.magnets.placement import finger_table

    a = default_placement(default_hand())
    b = Placements(a.mount_m + 0.001, np.deg2rad(np.array([[10.0, 0, 0, 0, -5.0]])),
                   a.diameter_m, np.array([[0.01, 0.0, 0.0]]))
    t = finger_table({"default": a, "optimised": b})
    assert list(t["finger"]) == ["thumb", "index", "middle", "ring", "pinky"]
    assert list(t.columns[1:]) == [f"{k} {n}" for k in ("mount_mm", "tilt_deg", "diameter_mm")
                                   for n in ("default", "optimised")]
    assert np.allclose(t["mount_mm optimised"] - t["mount_mm default"], 1.0)
    assert list(t["tilt_deg optimised"]) == [10.0, 0.0, 0.0, 0.0, -5.0]
    assert list(t["diameter_mm default"]) == (1e3 * a.diameter_m[0]).round(2).tolist()


def test_min_distance_is_the_closest_pair_of_state_fields_in_noise_units():
    hand = default_hand()
    pl = sample_placements(hand, 3, np.random.default_rng(4))
    sc = separability(hand, pl, noise_uT=2.5)
    for p in range(3):
        f = sc["fields_uT"][p]
        d = np.linalg.norm(f[:, None] - f[None], axis=-1)
        np.fill_diagonal(d, np.inf)
        assert sc["min_distance_sigma"][p] == pytest.approx(d.min() / 2.5, rel=1e-9)


def test_samples_fill_the_default_search_box():
    hand = default_hand()
    pl = sample_placements(hand, 2000, np.random.default_rng(1))
    b = PlacementBounds()
    frac = pl.mount_m / hand.lengths_m.sum(1)
    assert b.mount_frac[0] <= frac.min() < 0.2 and 0.9 < frac.max() <= b.mount_frac[1]
    assert pl.tilt_rad.min() < -3.0 and pl.tilt_rad.max() > 3.0  # the whole turn, both ways
    assert np.all(pl.diameter_m == 0.006)
    off = pl.sensor_offset_m
    assert np.all(off[:, :2].min(0) < -0.014) and np.all(off[:, :2].max(0) > 0.014)
    assert 0.0 <= off[:, 2].min() < 0.001 and off[:, 2].max() > 0.014  # on the back of the hand


@pytest.mark.parametrize("bad", [{"n_candidates": 9}, {"n_iter": 0}, {"elite_frac": 0.0},
                                 {"elite_frac": 1.0}])
def test_optimiser_refuses_each_bad_setting_alone(bad):
    kw = {"n_candidates": 10, "n_iter": 1, "elite_frac": 0.5} | bad
    with pytest.raises(ValueError, match="n_candidates >= 10"):
        optimise_placement(default_hand(), np.random.default_rng(0), **kw)


def test_optimiser_accepts_the_smallest_settings():
    r = optimise_placement(default_hand(), np.random.default_rng(0), n_candidates=10, n_iter=1,
                           elite_frac=0.5)
    assert r["n_scored"] == 10 and 0 < r["best_accuracy"] <= 1
