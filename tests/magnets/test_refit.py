"""Least-squares dipole fits, the boxed differential-evolution anchor and the geometry re-fit,
checked against magpylib dipoles of a known hand (an independent forward model)."""

import magpylib as magpy
import numpy as np
import pytest

from physml.magnets.fit import MagnetSpec, fit
from physml.magnets.hand import ALL_BITS, default_hand, hand_magnets
from physml.magnets.refit import fit_de_box, fit_least_squares, refit_geometry

SPEC = MagnetSpec()


def _true_hand():
    """Nominal hand with magnets re-mounted and of different strength (within the grade)."""
    h = default_hand()
    return h.replace(mount_m=h.mount_m + np.array([0.004, -0.003, 0.002, 0.003, -0.002]),
                     polarization_T=h.polarization_T * np.array([1.03, 0.98, 1.01, 0.99, 1.02]))


def _magpylib_states(hand, offset_uT):
    """Noise-free readings (32, 3) µT: magpylib point dipoles at the hand's magnets + offset."""
    pos, ax = hand_magnets(hand, ALL_BITS)
    mom = ax * hand.moment_Am2[None, :, None]
    out = np.empty((32, 3))
    for s in range(32):
        src = [magpy.misc.Dipole(position=p, moment=m) for p, m in zip(pos[s], mom[s],
                                                                          strict=True)]
        out[s] = 1e6 * magpy.getB(src, hand.sensor_m, sumup=True)
    return out + offset_uT


def _position_error_mm(res, hand):
    return 1e3 * np.sqrt(np.mean(np.sum(
        (res.magnet_positions(ALL_BITS) - hand_magnets(hand, ALL_BITS)[0]) ** 2, -1)))


FIT_ONLY = ("mount", "moment", "offset")


def test_least_squares_recovers_positions_and_moments_on_noise_free_data():
    truth = _true_hand()
    x = _magpylib_states(truth, np.array([12.0, -7.0, 30.0]))
    res = fit_least_squares("constrained", x, ALL_BITS, hand=default_hand(), fit_only=FIT_ONLY)
    assert _position_error_mm(res, truth) < 0.05
    np.testing.assert_allclose(res.params["moment"], truth.moment_Am2, rtol=2e-3)
    np.testing.assert_allclose(res.params["offset"], [12.0, -7.0, 30.0], atol=1e-3)
    assert res.residual_rms_uT < 1e-4
    # the same minimum as L-BFGS on the same data
    lb = fit("constrained", x, ALL_BITS, hand=default_hand(), fit_only=FIT_ONLY)
    assert abs(_position_error_mm(lb, truth) - _position_error_mm(res, truth)) < 0.05


def test_position_error_degrades_smoothly_with_noise():
    """Mean over seeds of the fitted-position error grows with the reading noise (monotone in
    expectation), from ~0 without noise; each state is read 10 times."""
    truth = _true_hand()
    clean = _magpylib_states(truth, np.zeros(3))
    bits = np.repeat(ALL_BITS, 10, axis=0)
    errs = []
    for sigma in (0.0, 0.5, 1.0, 2.0, 4.0):
        e = []
        for seed in range(6):
            rng = np.random.default_rng(seed)
            x = np.repeat(clean, 10, axis=0) + sigma * rng.standard_normal((320, 3))
            res = fit_least_squares("constrained", x, bits, hand=default_hand(),
                                    fit_only=FIT_ONLY)
            e.append(_position_error_mm(res, truth))
        errs.append(np.mean(e))
    assert errs[0] < 0.05
    assert np.all(np.diff(errs) > 0), errs
    assert errs[-1] < 5.0  # 4 µT noise still places the magnets within a few mm


def test_de_in_physical_box_improves_and_stays_physical():
    truth = _true_hand()
    x = _magpylib_states(truth, np.array([5.0, 5.0, -5.0]))
    de = fit_de_box(x, ALL_BITS, hand=default_hand(), maxiter=40, popsize=3, seed=0)
    assert de.final_loss < 0.9 * de.initial_loss
    lo, hi = SPEC.moment_range()
    assert np.all((de.params["moment"] >= lo) & (de.params["moment"] <= hi))
    assert np.all(np.abs(de.params["lengths"] / default_hand().lengths_m - 1) <= 0.3 + 1e-12)


def test_de_minimises_the_loss_it_reports():
    """The population loss DE ranks its members by is the data loss of the result (recomputed
    on the fitted templates), at the start and at the end."""
    x = _magpylib_states(_true_hand(), np.array([5.0, 5.0, -5.0]))
    de = fit_de_box(x, ALL_BITS, hand=default_hand(), maxiter=25, popsize=3, seed=1)
    assert de.history["loss"][-1] == pytest.approx(de.final_loss, rel=1e-6)
    assert de.final_loss < de.history["loss"][0] == de.initial_loss
    start = fit_least_squares("constrained", x, ALL_BITS, hand=default_hand(), max_nfev=1)
    assert de.initial_loss == pytest.approx(start.initial_loss, rel=1e-6)


def test_de_rejects_bad_settings():
    with pytest.raises(ValueError, match="offset_box_uT"):
        fit_de_box(np.zeros((32, 3)), ALL_BITS, offset_box_uT=0.0)
    for bad in ({"maxiter": 0}, {"popsize": 0}, {"init_spread": 0.0}):
        with pytest.raises(ValueError, match="maxiter, popsize"):
            fit_de_box(np.zeros((32, 3)), ALL_BITS, **bad)
    fit_de_box(np.zeros((32, 3)), ALL_BITS, maxiter=1, popsize=1)  # the smallest allowed


def test_refit_geometry_beats_the_old_geometry_on_unseen_states():
    """Train on all 32 states of one wear; re-wear with magnets moved and the sensor offset;
    re-fit on 7 states only: the re-fitted templates predict the other 25 states better than
    the old fit re-centred. The offset carries no prior: adding a constant to the calibration
    readings moves the re-fitted templates by exactly that constant."""
    old_hand = default_hand()
    new_hand = old_hand.replace(mount_m=old_hand.mount_m + 0.004,
                                sensor_m=np.array([0.003, -0.003, 0.002]))
    x_old = _magpylib_states(old_hand, np.zeros(3))
    x_new = _magpylib_states(new_hand, np.array([40.0, 0.0, -20.0]))
    old = fit("constrained", x_old, ALL_BITS, hand=default_hand())
    cal = np.array([0, 31, 5, 10, 17, 22, 12])
    rest = np.setdiff1d(np.arange(32), cal)
    new = refit_geometry(old, x_new[cal], ALL_BITS[cal], prior_weight=1.0)
    t_old = old.templates()
    t_old = t_old + np.median(x_new[cal] - t_old[cal], axis=0)
    err_old = np.sqrt(np.mean(np.sum((t_old[rest] - x_new[rest]) ** 2, -1)))
    err_new = np.sqrt(np.mean(np.sum((new.templates()[rest] - x_new[rest]) ** 2, -1)))
    assert err_new < 0.6 * err_old, (err_new, err_old)
    c = np.array([25.0, -10.0, 5.0])
    moved = refit_geometry(old, x_new[cal] + c, ALL_BITS[cal], prior_weight=1.0)
    np.testing.assert_allclose(moved.templates() - new.templates(), np.tile(c, (32, 1)),
                               atol=1e-3)


def test_refit_geometry_starts_from_the_offset_of_its_calibration_readings():
    """A new wear has a new offset: the re-fit's start moves the old fit's offset to the
    calibration readings, so shifting them by 300 µT leaves its starting loss unchanged (from
    the old offset it would grow by about 300² µT² per reading)."""
    old = fit("constrained", _magpylib_states(default_hand(), np.zeros(3)), ALL_BITS,
              hand=default_hand())
    hand = default_hand().replace(mount_m=default_hand().mount_m + 0.004)
    cal = np.array([0, 31, 5, 10, 17])
    x = _magpylib_states(hand, np.zeros(3))[cal]
    here = refit_geometry(old, x, ALL_BITS[cal], max_nfev=1)
    shifted = refit_geometry(old, x + np.array([300.0, 0.0, 0.0]), ALL_BITS[cal], max_nfev=1)
    assert here.initial_loss > 0.01
    assert shifted.initial_loss == pytest.approx(here.initial_loss, rel=1e-6)


def test_refit_geometry_needs_a_prior_and_a_geometry():
    old = fit("constrained", _magpylib_states(default_hand(), np.zeros(3)), ALL_BITS, maxiter=5)
    with pytest.raises(ValueError, match="prior_weight"):
        refit_geometry(old, np.zeros((1, 3)), ALL_BITS[:1], prior_weight=0.0)
    free = fit("free", _magpylib_states(default_hand(), np.zeros(3)), ALL_BITS, maxiter=5)
    with pytest.raises(ValueError, match="free dipole"):
        refit_geometry(free, np.zeros((1, 3)), ALL_BITS[:1])


def test_least_squares_times_itself_moves_a_previous_offset_to_the_data_and_refuses_bad_settings():
    import time

    truth = _true_hand()
    x = _magpylib_states(truth, np.array([12.0, -7.0, 30.0]))
    t0 = time.perf_counter()
    first = fit_least_squares("constrained", x, ALL_BITS, hand=default_hand(), fit_only=FIT_ONLY)
    wall = time.perf_counter() - t0
    assert 0 <= first.compile_seconds and 0 <= first.seconds  # durations inside the call
    assert first.compile_seconds + first.seconds <= wall
    # a new session: the same magnets, another offset. From the first fit with its offset
    # zeroed, offset_from_data starts where the readings sit, so the start is already exact
    init = {**first.params, "offset": np.zeros(3)}
    y = x + np.array([-20.0, 4.0, 9.0])
    moved = fit_least_squares("constrained", y, ALL_BITS, hand=default_hand(), init=init,
                              fit_only=FIT_ONLY, max_nfev=1, offset_from_data=True)
    kept = fit_least_squares("constrained", y, ALL_BITS, hand=default_hand(), init=init,
                             fit_only=FIT_ONLY, max_nfev=1)
    assert moved.initial_loss < 1e-6 < 1e3 < kept.initial_loss
    np.testing.assert_allclose(moved.params["offset"], [-8.0, -3.0, 39.0], atol=1e-3)
    for bad in ({"max_nfev": 0}, {"prior_weight": -0.1}, {"offset_from_data": True}):
        with pytest.raises(ValueError, match="max_nfev|offset_from_data"):
            fit_least_squares("constrained", x, ALL_BITS, **bad)
    fit_least_squares("constrained", x, ALL_BITS, max_nfev=1, prior_weight=0.0)  # the edges


def test_de_times_itself_inside_the_call():
    import time

    x = _magpylib_states(_true_hand(), np.zeros(3))
    t0 = time.perf_counter()
    de = fit_de_box(x, ALL_BITS, hand=default_hand(), maxiter=2, popsize=2, seed=0)
    wall = time.perf_counter() - t0
    assert 0 <= de.compile_seconds and 0 <= de.seconds
    assert de.compile_seconds + de.seconds <= wall


def test_physical_box_needs_finite_bounds_on_both_sides_and_reads_the_spec():
    from types import SimpleNamespace

    from physml.magnets.refit import physical_box, physical_box_summary

    one = SimpleNamespace(keys=("mount",), sizes=(2,))
    for lo, hi in (([0.0, 0.0], [1.0, np.inf]), ([-np.inf, 0.0], [1.0, 1.0])):
        p = SimpleNamespace(lo=np.array(lo), hi=np.array(hi), unravel=one, scale=np.ones(2),
                            model="free")
        with pytest.raises(ValueError, match="free: parameters without a physical box"):
            physical_box(p, 30.0)
    spec = MagnetSpec(diameter_m=0.008)
    s = physical_box_summary(spec=spec)
    assert s["moment_Am2"] == pytest.approx(spec.moment_range())
    assert s["moment_Am2"] != pytest.approx(MagnetSpec().moment_range())
    assert s["offset_uT"] == pytest.approx(30.0)
    assert 1 < s["joint_mm"] < 50  # millimetres, not metres
