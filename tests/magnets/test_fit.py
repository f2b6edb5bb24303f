"""Fits: recovery of known parameters from noise-free data, for every model × problem."""

import numpy as np
import pytest

from physml.magnets.fit import MODELS, FitResult, MagnetSpec, fit, initial_params, state_means
from physml.magnets.hand import ALL_BITS, default_hand, sample_hand
from physml.magnets.simulate import true_state_fields_uT

SPEC = MagnetSpec()


def _truth(seed=0):
    """A perturbed hand, its constrained-model parameters and noise-free state readings."""
    true_hand = sample_hand(np.random.default_rng(seed), scale=0.5)
    p = initial_params("constrained", true_hand, SPEC)
    p["moment"] = np.array([0.088, 0.092, 0.097, 0.101, 0.090])
    p["offset"] = np.array([20.0, -5.0, -40.0])
    fixed = {"direction": true_hand.direction, "flex_axis": true_hand.flex_axis,
             "surface": true_hand.surface_m}
    means = FitResult("constrained", p, fixed, {}, 0, 0, 0, 0, SPEC).templates()
    return true_hand, p, means


def test_constrained_fit_recovers_moments_and_offset_from_noise_free_data():
    true_hand, p, means = _truth()
    init = {k: v.copy() for k, v in p.items()}
    init["moment"][:] = 0.094
    init["offset"][:] = 0.0
    r = fit("constrained", np.repeat(means, 2, 0), np.repeat(ALL_BITS, 2, 0), hand=true_hand,
            init=init, fit_only=("moment", "offset"), maxiter=300)
    np.testing.assert_allclose(r.params["moment"], p["moment"], rtol=1e-5)
    np.testing.assert_allclose(r.params["offset"], p["offset"], atol=1e-4)
    np.testing.assert_array_equal(r.params["base"], p["base"])  # held fixed


def test_constrained_fit_recovers_flex_angles_moments_and_offset():
    true_hand, p, means = _truth(1)
    init = {k: v.copy() for k, v in p.items()}
    # the magnets sit on the first segment, so only the base-joint angle moves them
    assert np.all(p["mount"] < p["lengths"][:, 0])
    init["flexed"][:, 0] += 0.1
    init["moment"][:] = 0.094
    r = fit("constrained", means, ALL_BITS, hand=true_hand, init=init, maxiter=500,
            fit_only=("flexed", "moment", "offset"))
    np.testing.assert_allclose(r.params["flexed"][:, 0], p["flexed"][:, 0], atol=1e-4)
    np.testing.assert_allclose(r.params["moment"], p["moment"], rtol=1e-3)
    assert r.final_loss < 1e-8


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("problem", ["dipole_truth", "finite_magnet_truth"])
def test_every_model_fits_every_canonical_problem(model, problem):
    if problem == "dipole_truth":
        _, _, means = _truth(2)
    else:  # exact finite cylinders (magpylib) of a random hand plus an Earth-like offset
        means = true_state_fields_uT(sample_hand(np.random.default_rng(3))) + [20, 0, -40]
    r = fit(model, means, ALL_BITS, hand=default_hand(), maxiter=300)
    assert r.error_reduction > 0.99
    loss = np.asarray(r.history["loss"])
    assert loss[0] == pytest.approx(r.initial_loss)
    assert loss[-1] < 0.05 * loss[0]
    assert len(r.history["iteration"]) == len(r.history["time_s"]) == len(loss)


def test_free_fit_on_ten_states_predicts_the_unseen_states_of_noise_free_data():
    _, _, means = _truth(4)
    train = np.array([0, 3, 5, 6, 9, 12, 17, 22, 27, 30])
    r = fit("free", means[train], ALL_BITS[train], hand=default_hand(), maxiter=500)
    # the field is additive over fingers, so 10 states that span the finger bits determine all 32
    np.testing.assert_allclose(r.templates(), means, atol=0.05)


def test_implausible_moment_is_flagged_and_implied_size_reported():
    true_hand, p, _ = _truth()
    p = {k: v.copy() for k, v in p.items()}
    p["moment"][1] = 1.0  # the source's kind of fit: ~10x a 6x3 mm N48 disc
    fixed = {"direction": true_hand.direction, "flex_axis": true_hand.flex_axis,
             "surface": true_hand.surface_m}
    rep = FitResult("constrained", p, fixed, {}, 0, 0, 0, 0, SPEC).magnet_report()
    assert [r["plausible"] for r in rep] == [True, False, True, True, True]
    assert rep[1]["implied_diameter_mm"] == pytest.approx(6.0 * (1.0 / 0.0936) ** (1 / 3),
                                                          rel=0.02)


def test_constrained_moments_stay_inside_the_declared_physical_range():
    means = true_state_fields_uT(sample_hand(np.random.default_rng(5))) * 3.0  # 3x too strong
    r = fit("constrained", means, ALL_BITS, hand=default_hand(), maxiter=200)
    lo, hi = SPEC.moment_range()
    assert np.all(r.params["moment"] >= lo - 1e-12) and np.all(r.params["moment"] <= hi + 1e-12)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="model must be one of"):
        fit("magic", np.zeros((1, 3)), np.zeros((1, 5), int))
    with pytest.raises(ValueError, match="fit_only"):
        fit("constrained", np.zeros((1, 3)), np.zeros((1, 5), int), fit_only=("nope",))


def test_fitted_magnet_positions_match_the_truth_and_degrade_smoothly_with_noise():
    """Noise-free state means: the refitted flex angles put the dipoles on the true magnet
    centres (the hand's own kinematics, independent of the fit); white noise on the readings
    moves them by an amount that grows with the noise, without jumps."""
    true_hand, p, means = _truth(1)
    truth = FitResult("constrained", p, {"direction": true_hand.direction,
                                         "flex_axis": true_hand.flex_axis,
                                         "surface": true_hand.surface_m}, {}, 0, 0, 0, 0, SPEC)
    from physml.magnets.hand import hand_magnets

    np.testing.assert_allclose(truth.magnet_positions(ALL_BITS),
                               hand_magnets(true_hand, ALL_BITS)[0], atol=1e-12)
    rng = np.random.default_rng(0)
    errs = []
    for noise in (0.0, 0.3, 1.0, 3.0):  # a few noise levels; each fit is vectorised
        init = {k: v.copy() for k, v in p.items()}
        init["flexed"][:, 0] += 0.1
        x = np.repeat(means, 20, 0) + noise * rng.standard_normal((640, 3))
        r = fit("constrained", x, np.repeat(ALL_BITS, 20, 0), hand=true_hand, init=init,
                maxiter=500, fit_only=("flexed", "moment", "offset"))
        d = r.magnet_positions(ALL_BITS) - hand_magnets(true_hand, ALL_BITS)[0]
        errs.append(1e3 * np.sqrt(np.mean(np.sum(d**2, -1))))  # mm
    assert errs[0] < 1e-3  # noise-free: within a micrometre
    assert errs[0] < errs[2] < errs[3] and errs[3] < 5.0, errs


# ----------------------------------------------------- the forward models against magpylib
def _magpylib_uT(positions, moments):
    """Summed point-dipole field at the sensor (the origin), µT, by magpylib."""
    import magpylib as magpy

    src = [magpy.misc.Dipole(position=p, moment=m) for p, m in zip(positions, moments,
                                                                   strict=True)]
    return 1e6 * magpy.getB(src, np.zeros(3), sumup=True)


def test_free_prediction_is_each_states_dipoles_by_magpylib_plus_the_offset():
    # every finger has its own dipole when extended (index 0) and when flexed (index 1)
    rng = np.random.default_rng(5)
    pos = rng.uniform(0.02, 0.08, (5, 2, 3)) * rng.choice([-1.0, 1.0], (5, 2, 3))
    mom = 0.09 * rng.standard_normal((5, 2, 3))
    offset = np.array([12.0, -30.0, 45.0])
    res = FitResult("free", {"pos": pos, "mom": mom, "offset": offset}, {}, {}, 0, 0, 0, 0, SPEC)
    pred = res.predict(ALL_BITS)
    for s, bits in enumerate(ALL_BITS):
        f = np.arange(5)
        ref = _magpylib_uT(pos[f, bits], mom[f, bits]) + offset
        np.testing.assert_allclose(pred[s], ref, rtol=1e-9, atol=1e-9)


def _constrained(seed):
    from physml.magnets.fit import _fixed_from

    hand = sample_hand(np.random.default_rng(seed), scale=0.5)
    p = initial_params("constrained", hand, SPEC)
    p["moment"] = np.array([0.088, 0.092, 0.097, 0.101, 0.090])
    p["offset"] = np.array([20.0, -5.0, -40.0])
    return hand, p, _fixed_from(hand)


def test_constrained_prediction_is_magpylib_dipoles_at_the_hands_magnet_poses():
    from physml.magnets.hand import hand_magnets

    hand, p, fixed = _constrained(3)
    pred = FitResult("constrained", p, fixed, {}, 0, 0, 0, 0, SPEC).predict(ALL_BITS)
    pos, axes = hand_magnets(hand, ALL_BITS)
    for s in range(len(ALL_BITS)):
        ref = _magpylib_uT(pos[s], p["moment"][:, None] * axes[s]) + p["offset"]
        np.testing.assert_allclose(pred[s], ref, rtol=1e-9, atol=1e-9)


def test_hybrid_prediction_adds_the_residual_of_the_bits_and_their_pairwise_products():
    hand, p, fixed = _constrained(4)
    base = FitResult("constrained", p, fixed, {}, 0, 0, 0, 0, SPEC).predict(ALL_BITS)
    residual = np.random.default_rng(4).standard_normal((15, 3))
    hyb = FitResult("hybrid", {**p, "residual": residual}, fixed, {}, 0, 0, 0, 0, SPEC)
    pred = hyb.predict(ALL_BITS)
    for s, b in enumerate(ALL_BITS):
        pairs = [b[i] * b[j] for i in range(5) for j in range(i + 1, 5)]  # (0,1), (0,2), ...
        feats = np.concatenate([b, pairs]).astype(float)
        np.testing.assert_allclose(pred[s], base[s] + feats @ residual, rtol=1e-12, atol=1e-9)


def test_state_means_refuse_readings_that_do_not_match_their_labels():
    bits = np.zeros((4, 5), int)
    with pytest.raises(ValueError, match="readings must be"):
        state_means(np.zeros((3, 3)), bits)   # one reading short
    with pytest.raises(ValueError, match="readings must be"):
        state_means(np.zeros((4, 2)), bits)   # two components
    with pytest.raises(ValueError, match="readings must be"):
        state_means(np.zeros((4, 3, 1)), bits)  # not a table


def test_a_hybrid_started_from_a_given_residual_keeps_it():
    # init with a residual: the fit starts from it (here it is frozen: fit_only has no residual)
    true_hand, p, means = _truth(1)
    residual = np.full((15, 3), 0.5)
    init = {**p, "residual": residual}
    res = fit("hybrid", means, ALL_BITS, hand=true_hand, spec=SPEC, init=init, maxiter=5,
              fit_only=("offset",))
    np.testing.assert_array_equal(res.params["residual"], residual)


def test_a_hybrid_started_from_a_constrained_fit_starts_its_residual_at_zero():
    # init from a constrained fit (no residual): the hybrid adds one, zero, and can fit it
    true_hand, p, means = _truth(2)
    frozen = fit("hybrid", means, ALL_BITS, hand=true_hand, spec=SPEC, init=p, maxiter=5,
                 fit_only=("offset",))
    np.testing.assert_array_equal(frozen.params["residual"], np.zeros((15, 3)))
    # a shift on every state with finger 0 flexed: the residual's first row, exactly
    shifted = means + ALL_BITS[:, :1] * np.array([1.0, -2.0, 0.5])
    free = fit("hybrid", shifted, ALL_BITS, hand=true_hand, spec=SPEC, init=p, maxiter=200,
               fit_only=("residual",), ridge=0.0)
    np.testing.assert_allclose(free.params["residual"][0], [1.0, -2.0, 0.5], atol=1e-4)
    np.testing.assert_allclose(free.params["residual"][1:], 0.0, atol=1e-4)


def test_state_means_are_per_state_averages_weighted_by_sample_fraction():
    bits = ALL_BITS[[0, 0, 0, 5]]
    r = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [2.0, 2.0, 2.0], [-1.0, 0.0, 4.0]])
    means, weights = state_means(r, bits)
    np.testing.assert_allclose(means[0], [2.0, 2.0, 2.0])
    np.testing.assert_allclose(means[5], [-1.0, 0.0, 4.0])
    assert weights[0] == 0.75 and weights[5] == 0.25 and weights.sum() == 1.0
    np.testing.assert_array_equal(np.delete(means, [0, 5], 0), 0.0)


def _rotated_readings(seed=0, n_per_state=6):
    """Noise-free readings of every state with the hand turned a little between readings:
    the magnets' field (fixed to the sensor) plus Earth's field seen in the sensor frame,
    r = template + Rᵀ e, with R the sensor → reference rotation of that reading."""
    from scipy.spatial.transform import Rotation

    true_hand, p, means = _truth(seed)
    bits = np.repeat(ALL_BITS, n_per_state, 0)
    rng = np.random.default_rng(seed)
    rot = Rotation.from_rotvec(rng.normal(0.0, 0.25, (len(bits), 3))).as_matrix()
    earth = np.array([18.0, 4.0, -44.0])
    r = np.repeat(means, n_per_state, 0) + np.einsum("nji,j->ni", rot, earth)
    return true_hand, p, r, bits, rot


def test_fit_times_are_its_own_and_add_up():
    import time

    true_hand, p, r, bits, rot = _rotated_readings()
    init = {k: v.copy() for k, v in p.items()}
    init["moment"][:] = 0.094  # a start off the truth: the optimiser has work to do
    for rotations in (None, rot):
        t0 = time.perf_counter()
        res = fit("constrained", r, bits, hand=true_hand, init=init, maxiter=20,
                  fit_only=("moment", "offset"), rotations=rotations)
        elapsed = time.perf_counter() - t0
        assert 0.0 < res.seconds and 0.0 < res.compile_seconds
        assert (res.earth_seconds > 0.0) == (rotations is not None)
        assert res.seconds + res.compile_seconds + res.earth_seconds <= elapsed
        assert res.total_seconds == pytest.approx(res.seconds + res.earth_seconds, rel=1e-12)
        t = np.asarray(res.history["time_s"])
        assert len(t) > 2 and t[0] == 0.0 and np.all(np.diff(t) >= 0.0) and t[-1] <= res.seconds
        assert res.initial_loss > 10 * res.final_loss > 0.0
        assert res.error_reduction == pytest.approx(1.0 - res.final_loss / res.initial_loss,
                                                    rel=1e-12)


def test_earth_field_is_the_fitted_vector_with_rotations_and_the_offset_without():
    true_hand, p, r, bits, rot = _rotated_readings(1)
    kw = dict(hand=true_hand, init=p, maxiter=50, fit_only=("offset",))
    with_rot = fit("constrained", r, bits, rotations=rot, **kw)
    np.testing.assert_array_equal(with_rot.earth_uT(), with_rot.earth.earth_mean_frame_uT)
    assert not np.allclose(with_rot.earth_uT(), with_rot.params["offset"], atol=1.0)
    without = fit("constrained", r, bits, **kw)
    assert without.earth is None
    np.testing.assert_array_equal(without.earth_uT(), without.params["offset"])


def test_fit_refuses_each_bad_setting_alone_and_takes_one_iteration():
    _, _, means = _truth(0)
    for kw in ({"maxiter": 0}, {"prior_weight": -1.0}, {"ridge": -1.0}):
        with pytest.raises(ValueError, match="maxiter|prior_weight"):
            fit("hybrid", means, ALL_BITS, **kw)
    r = fit("free", means, ALL_BITS, hand=default_hand(), maxiter=1)
    assert len(r.history["iteration"]) <= 2


def test_a_strong_prior_holds_a_refit_at_its_start():
    # prior_weight·Σ((p − init)/scale)²: with a weight far above the data term the refit stays
    # at init; without it the same refit moves the moments to the data's
    true_hand, p, means = _truth(1)
    init = {k: v.copy() for k, v in p.items()}
    init["moment"][:] = 0.094
    kw = dict(hand=true_hand, init=init, fit_only=("moment",), maxiter=300)
    held = fit("constrained", means, ALL_BITS, prior_weight=1e9, **kw)
    free = fit("constrained", means, ALL_BITS, **kw)
    np.testing.assert_allclose(held.params["moment"], 0.094, atol=1e-6)
    np.testing.assert_allclose(free.params["moment"], p["moment"], rtol=1e-4)


def test_a_free_fit_has_no_hand_and_a_constrained_fit_gives_its_own():
    from physml.magnets.fit import params_to_hand

    true_hand, p, means = _truth(1)
    con = fit("constrained", means, ALL_BITS, hand=true_hand, init=p, maxiter=5,
              fit_only=("offset",))
    h = params_to_hand(con, true_hand)
    np.testing.assert_array_equal(h.base_m, p["base"])
    np.testing.assert_allclose(h.moment_Am2, p["moment"], rtol=1e-9)
    with pytest.raises(ValueError, match="free-dipole"):
        params_to_hand(fit("free", means, ALL_BITS, hand=true_hand, maxiter=2), true_hand)


def test_the_declared_magnet_cannot_be_changed_in_place():
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        SPEC.diameter_m = 0.01


@pytest.mark.parametrize("model", MODELS)
def test_the_start_offset_makes_the_weighted_residual_zero(model):
    # initial_params sets the offset so Σ_s w_s (mean_s − prediction_s) = 0 over the states
    true_hand, _, means = _truth(2)
    weights = np.random.default_rng(0).dirichlet(np.ones(32))
    p = initial_params(model, default_hand(), SPEC, means, weights)
    from physml.magnets.fit import _fixed_from

    pred = FitResult(model, p, _fixed_from(default_hand()), {}, 0, 0, 0, 0, SPEC).templates()
    np.testing.assert_allclose(np.sum(weights[:, None] * (means - pred), 0), 0.0, atol=1e-9)
    assert np.linalg.norm(p["offset"]) > 1.0  # the truth's offset is (20, −5, −40) µT


def test_every_kinematic_bound_brackets_the_nominal_hand():
    # each fitted group of the constrained model may move both ways from the nominal hand
    from physml.magnets.fit import _bounds

    hand = default_hand()
    p0 = initial_params("constrained", hand, SPEC)
    lo, hi = _bounds("constrained", p0, SPEC, hand)
    for k in ("base", "lengths", "flexed", "extended", "mount", "tilt"):
        assert np.all(lo[k] < p0[k]) and np.all(p0[k] < hi[k]), k
    mlo, mhi = SPEC.moment_range()
    assert mlo < 0.09 < mhi and np.all(lo["moment"] == mlo) and np.all(hi["moment"] == mhi)
    assert np.all(np.isinf(lo["offset"])) and np.all(np.isinf(hi["offset"]))


def test_free_fit_reports_each_states_own_positions_and_moments():
    rng = np.random.default_rng(6)
    pos = rng.normal(0.0, 0.05, (5, 2, 3))
    mom = rng.normal(0.0, 0.05, (5, 2, 3))
    res = FitResult("free", {"pos": pos, "mom": mom, "offset": np.zeros(3)}, {}, {}, 0, 0, 0, 0,
                    SPEC)
    bits = np.array([[1, 0, 0, 1, 0], [0, 0, 0, 0, 0]])
    got = res.magnet_positions(bits)
    for i, b in enumerate(bits):
        np.testing.assert_array_equal(got[i], pos[np.arange(5), b])
    np.testing.assert_allclose(res.moments(), np.linalg.norm(mom, axis=2))
    assert res.moments().shape == (5, 2)


def test_trained_states_are_the_states_with_readings():
    true_hand, p, means = _truth(1)
    train = np.array([0, 3, 17, 30])
    r = fit("constrained", means[train], ALL_BITS[train], hand=true_hand, init=p, maxiter=3,
            fit_only=("offset",))
    np.testing.assert_array_equal(r.trained_states, train)
