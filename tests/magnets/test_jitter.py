"""Joint-angle Jacobians against finite differences of magpylib dipoles; the jitter fit recovers
known spreads; the covariance classifier reduces to nearest-template without jitter and beats
it with jitter."""

import magpylib as magpy
import numpy as np
import pytest

from physml.magnets.classify import TemplateClassifier, exact_match
from physml.magnets.fit import FitResult, MagnetSpec, initial_params
from physml.magnets.hand import ALL_BITS, default_hand, hand_magnets
from physml.magnets.jitter import JitterClassifier, angle_jacobians, fit_jitter


def _fit_of(hand):
    p = initial_params("constrained", hand, MagnetSpec())
    p["moment"] = hand.moment_Am2
    fixed = {"direction": hand.direction, "flex_axis": hand.flex_axis,
             "surface": hand.surface_m}
    return FitResult("constrained", p, fixed, {}, 0.0, 0.0, 0.0, 0.0)


def _magpylib_field(hand, bits, jitter):
    pos, ax = hand_magnets(hand, bits, jitter)
    mom = ax * hand.moment_Am2[None, :, None]
    return np.stack([1e6 * magpy.getB([magpy.misc.Dipole(position=q, moment=m)
                                       for q, m in zip(pos[i], mom[i], strict=True)],
                                      np.zeros(3), sumup=True) for i in range(len(bits))])


def test_angle_jacobians_match_finite_differences_of_magpylib_dipoles():
    hand = default_hand()
    jac = angle_jacobians(_fit_of(hand))
    h = 1e-6
    for s in (0, 13, 31):
        bits = ALL_BITS[[s, s]]
        for f, k in ((0, 0), (1, 1), (3, 0), (4, 1)):
            d = np.zeros((2, 5, 2))
            d[0, f, k], d[1, f, k] = h, -h
            b = _magpylib_field(hand, bits, d)
            fd = (b[0] - b[1]) / (2 * h)
            np.testing.assert_allclose(jac[s, :, 2 * f + k], fd, rtol=1e-5,
                                       atol=1e-6 * np.abs(fd).max())


def _jittered(rng, templates, jac, states, n_per, sd_deg, noise):
    idx = np.repeat(states, n_per)
    dth = np.deg2rad(sd_deg) * rng.standard_normal((len(idx), 10))
    x = templates[idx] + np.einsum("nik,nk->ni", jac[idx], dth) \
        + noise * rng.standard_normal((len(idx), 3))
    return x, ALL_BITS[idx]


def test_fit_jitter_recovers_known_spreads():
    hand = default_hand()
    res = _fit_of(hand)
    t, jac = res.templates(), angle_jacobians(res)
    x, b = _jittered(np.random.default_rng(0), t, jac, np.arange(32), 300, 3.0, 0.5)
    got = fit_jitter(x, b, t, jac)
    assert got["angle_sd_deg"] == pytest.approx(3.0, rel=0.05)
    assert got["noise_uT"] == pytest.approx(0.5, rel=0.2)


def test_without_jitter_it_is_the_nearest_template_and_with_jitter_it_wins():
    hand = default_hand()
    res = _fit_of(hand)
    t, jac = res.templates(), angle_jacobians(res)
    rng = np.random.default_rng(1)
    x, b = _jittered(rng, t, jac, np.arange(32), 200, 3.0, 0.3)
    iso = JitterClassifier(t, jac, 0.0, 1.0).predict_bits(x)
    np.testing.assert_array_equal(iso, TemplateClassifier(t).predict_bits(x))
    acc_cov = exact_match(JitterClassifier(t, jac, 3.0, 0.3).predict_bits(x), b)
    acc_near = exact_match(TemplateClassifier(t).predict_bits(x), b)
    assert acc_cov > acc_near + 0.02, (acc_cov, acc_near)


def test_bad_inputs_raise():
    t = np.zeros((32, 3))
    with pytest.raises(ValueError, match="jacobians"):
        JitterClassifier(t, np.zeros((32, 3, 9)), 1.0, 1.0)
    with pytest.raises(ValueError, match="noise_uT"):
        JitterClassifier(t, np.zeros((32, 3, 10)), 1.0, 0.0)
    free = FitResult("free", initial_params("free", default_hand(), MagnetSpec()), {}, {}, 0.0,
                     0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="free dipole"):
        angle_jacobians(free)


def test_fit_jitter_refuses_either_shape_alone():
    x, bits = np.zeros((4, 3)), np.zeros((4, 5), dtype=int)
    with pytest.raises(ValueError, match="jacobians"):
        fit_jitter(x, bits, np.zeros((32, 3)), np.zeros((32, 3, 9)))
    with pytest.raises(ValueError, match="templates"):
        fit_jitter(x, bits, np.zeros((31, 3)), np.zeros((32, 3, 10)))


def test_log_likelihood_is_the_gaussian_log_density_up_to_one_constant():
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(3)
    t, jac = 20 * rng.standard_normal((32, 3)), 30 * rng.standard_normal((32, 3, 10))
    clf = JitterClassifier(t, jac, 2.5, 0.7)
    x = t[[0, 5, 9]] + rng.standard_normal((3, 3))
    ll = clf.log_likelihood(x)
    s2 = np.deg2rad(2.5) ** 2
    ref = np.array([[multivariate_normal(t[s], s2 * jac[s] @ jac[s].T + 0.49 * np.eye(3)).logpdf(r)
                     for s in range(32)] for r in x])
    # the same up to -1.5 log(2π), the one constant shared by every state and reading
    np.testing.assert_allclose(ll - ref, 1.5 * np.log(2 * np.pi), atol=1e-9)
