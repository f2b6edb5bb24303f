"""Fits: recovery of known parameters from noise-free data, for every model × problem."""

import numpy as np
import pytest

from physml.magnets.fit import MODELS, FitResult, MagnetSpec, fit, initial_params
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
