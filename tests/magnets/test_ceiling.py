"""The simulator's Bayes ceiling against the Bayes decision where it is known in closed form."""

import numpy as np
import pytest

from physml.magnets.ceiling import (
    bayes_ceiling,
    decision_spreads,
    simulated_decisions,
    true_angle_jacobians,
)
from physml.magnets.hand import ALL_BITS, default_hand
from physml.magnets.heldout import HeldoutConfig, ceiling_values, prepare_seed
from physml.magnets.simulate import SessionConfig, magnet_field_uT, true_state_fields_uT

HAND = default_hand()


def _nearest_template_accuracy(sigma_uT, w, n, rng):
    """Exact-match accuracy of the nearest true template on x ~ N(t_s, sigma²/w I): the Bayes
    decision for equal priors and one isotropic covariance (computed without any kNN)."""
    t = true_state_fields_uT(HAND)
    y = np.repeat(np.arange(32), n)
    x = t[y] + sigma_uT / np.sqrt(w) * rng.standard_normal((len(y), 3))
    pred = np.argmin(((x[:, None] - t[None]) ** 2).sum(-1), axis=1)
    return float(np.mean(pred == y))


@pytest.mark.parametrize("w", [1, 4])
def test_noise_only_ceiling_is_the_nearest_template_rate(w):
    # no jitter, no tremor: readings are Gaussian around the true templates, so the Bayes
    # accuracy is the nearest template's; the kNN estimate must find it, and the averaging of
    # w readings per decision must shrink the noise by sqrt(w)
    sigma = 6.0
    cfg = SessionConfig(finger_jitter_deg=0.0, tremor_deg=0.0, noise_uT=sigma)
    ref = _nearest_template_accuracy(sigma, w, 4000, np.random.default_rng(5))
    got = bayes_ceiling(HAND, cfg, decision_samples=w, n_per_state=800, n_test_per_state=400,
                        k=30, seed=1)["per_state"].mean()
    assert got == pytest.approx(ref, abs=0.025)
    gauss = bayes_ceiling(HAND, cfg, decision_samples=w, n_per_state=800, n_test_per_state=400,
                          k=30, seed=1)["per_state_gaussian"].mean()
    assert gauss == pytest.approx(ref, abs=0.02)  # isotropic: the rule is the nearest template
    other = _nearest_template_accuracy(sigma, 5 - w, 4000, np.random.default_rng(5))
    assert abs(other - ref) > 0.1  # the decision size matters at this noise


def test_hold_offset_is_shared_by_the_readings_of_a_decision():
    # jitter only: averaging readings of one hold cannot remove its pose offset
    cfg = SessionConfig(finger_jitter_deg=8.0, tremor_deg=0.0, noise_uT=0.05)
    one = bayes_ceiling(HAND, cfg, 1, 400, 400, k=20, seed=2)["per_state"].mean()
    six = bayes_ceiling(HAND, cfg, 6, 400, 400, k=20, seed=2)["per_state"].mean()
    assert one < 0.95  # the jitter does confuse states here
    assert six == pytest.approx(one, abs=0.03)
    x, y = simulated_decisions(HAND, cfg, 6, 50, np.random.default_rng(0))
    assert x.shape == (32 * 50, 3) and np.array_equal(y, np.repeat(np.arange(32), 50))


def test_tremor_is_drawn_per_reading():
    # tremor only: averaging 6 readings shrinks it, so the ceiling rises
    cfg = SessionConfig(finger_jitter_deg=0.0, tremor_deg=8.0, noise_uT=0.05)
    one = bayes_ceiling(HAND, cfg, 1, 400, 400, k=20, seed=3)["per_state"].mean()
    six = bayes_ceiling(HAND, cfg, 6, 400, 400, k=20, seed=3)["per_state"].mean()
    assert six > one + 0.05


def test_noise_free_ceiling_is_perfect_and_bad_arguments_are_named():
    for noise in (1e-3, 0.0):  # 0: the Gaussian rule's noise floor keeps its covariance proper
        cfg = SessionConfig(finger_jitter_deg=0.0, tremor_deg=0.0, noise_uT=noise)
        c = bayes_ceiling(HAND, cfg, 1, 40, 20, k=5)
        assert np.all(c["per_state"] == 1.0) and c["per_state"].shape == (len(ALL_BITS),)
        assert np.all(c["per_state_gaussian"] == 1.0)
    with pytest.raises(ValueError, match="n_per_state >= 4 k"):
        bayes_ceiling(HAND, cfg, 1, 40, 20, k=30)
    with pytest.raises(ValueError, match="decision_samples"):
        simulated_decisions(HAND, cfg, 0, 10, np.random.default_rng(0))


def test_ceiling_values_average_each_runs_unseen_states():
    cfg = HeldoutConfig(decision_samples=2, session={"hold_s": 0.5, "repeats": 1})
    train = [0, 5, 9, 17, 31]
    got = ceiling_values([{"seed": 3, "train_states": train}], cfg, n_per_state=40,
                         n_test_per_state=30, k=5)
    hand = prepare_seed(3, cfg.session)["hand"]
    c = bayes_ceiling(hand, SessionConfig(**cfg.session), 2, 40, 30, k=5, seed=3)
    unseen = np.setdiff1d(np.arange(32), train)
    knn, gauss = c["per_state"][unseen].mean(), c["per_state_gaussian"][unseen].mean()
    assert knn != pytest.approx(gauss)  # so that the maximum below is tested
    assert got["knn"][0] == pytest.approx(knn)
    assert got["gaussian"][0] == pytest.approx(gauss)
    assert got["unseen"][0] == pytest.approx(max(knn, gauss))
    assert got["knn_quarter"][0] == pytest.approx(c["per_state_quarter"][unseen].mean())
    best = c["per_state"] if knn >= gauss else c["per_state_gaussian"]
    assert got["all_states"][0] == pytest.approx(best.mean())
    assert got["knn"][0] != pytest.approx(c["per_state"][train].mean())


def test_true_jacobians_predict_small_pose_changes():
    # first-order Taylor check at points the central difference never evaluates: the remainder
    # must be second order (quarter when the step halves) and small against the linear term
    jac = true_angle_jacobians(HAND)
    assert jac.shape == (32, 3, 10)
    rng = np.random.default_rng(11)
    d = np.deg2rad(0.5) * rng.standard_normal((32, 5, 2))
    base = true_state_fields_uT(HAND)
    rem = []
    for h in (1.0, 0.5):
        lin = np.einsum("sik,sk->si", jac, h * d.reshape(32, 10))
        change = magnet_field_uT(HAND, ALL_BITS, h * d) - base
        rem.append(np.linalg.norm(change - lin))
        assert rem[-1] < 0.1 * np.linalg.norm(lin)
    assert 3.0 < rem[0] / rem[1] < 5.0
    # columns 2f, 2f+1 move finger f's magnet only (superposition): they depend on that
    # finger's own state and on no other finger's
    for f in range(5):
        cols = jac[:, :, 2 * f:2 * f + 2]
        for b in (0, 1):
            same = cols[ALL_BITS[:, f] == b]
            assert np.allclose(same, same[0], atol=1e-6 * np.abs(cols).max())
        assert not np.allclose(cols[ALL_BITS[:, f] == 0][0], cols[ALL_BITS[:, f] == 1][0])


def test_decision_spreads_and_the_gaussian_rule_against_the_knn_vote():
    cfg = SessionConfig(finger_jitter_deg=3.0, tremor_deg=2.0, noise_uT=0.2)
    sp = decision_spreads(cfg, 6)
    assert sp["angle_sd_deg"] == pytest.approx(3.1091263510296048)  # sqrt(9 + 4/6)
    assert sp["noise_uT"] == pytest.approx(0.08164965809277261)  # 0.2/sqrt(6)
    with pytest.raises(ValueError, match="decision_samples"):
        decision_spreads(cfg, 0)
    # jitter-dominated: two independent estimates of the Bayes accuracy agree, and both are
    # far from perfect (the test would not notice a wrong Jacobian otherwise)
    cfg = SessionConfig(finger_jitter_deg=8.0, tremor_deg=0.0, noise_uT=0.05)
    c = bayes_ceiling(HAND, cfg, 1, 800, 400, k=20, seed=6)
    assert c["per_state"].mean() < 0.9
    assert c["per_state_gaussian"].mean() == pytest.approx(c["per_state"].mean(), abs=0.03)


def test_quarter_estimate_uses_the_first_quarter_of_every_state():
    from sklearn.neighbors import KNeighborsClassifier

    cfg = SessionConfig(finger_jitter_deg=6.0, tremor_deg=1.0, noise_uT=0.5)
    got = bayes_ceiling(HAND, cfg, 2, 80, 40, k=5, seed=4)
    rng = np.random.default_rng([4, 31])  # the draws bayes_ceiling makes, in its order
    x, y = simulated_decisions(HAND, cfg, 2, 80, rng)
    xt, yt = simulated_decisions(HAND, cfg, 2, 40, rng)
    first = np.concatenate([np.flatnonzero(y == s)[:20] for s in range(32)])
    pred = KNeighborsClassifier(5).fit(x[first], y[first]).predict(xt)
    ref = np.array([np.mean(pred[yt == s] == s) for s in range(32)])
    assert np.allclose(got["per_state_quarter"], ref)
    assert not np.allclose(got["per_state_quarter"], got["per_state"])


@pytest.mark.parametrize("part", ["finger_jitter_deg", "tremor_deg", "noise_uT"])
def test_each_spread_has_the_size_it_is_given(part):
    """Decisions (one reading each) spread around the true template as the linearised field
    says: J (σ_θ² I) Jᵀ for a 0.4° angle spread (true Jacobians by central differences), σ² I
    for 0.3 µT of sensor noise."""
    cfg = SessionConfig(**{"finger_jitter_deg": 0.0, "tremor_deg": 0.0, "noise_uT": 0.0,
                           part: 0.3 if part == "noise_uT" else 0.4})
    x, y = simulated_decisions(HAND, cfg, 1, 3000, np.random.default_rng(7))
    jac = true_angle_jacobians(HAND)
    for s in (0, 13, 31):
        cov = np.cov(x[y == s].T)
        if part == "noise_uT":
            want = 0.09 * np.eye(3)
        else:
            want = np.deg2rad(0.4) ** 2 * jac[s] @ jac[s].T
        assert np.trace(cov) == pytest.approx(np.trace(want), rel=0.1), (s, part)
