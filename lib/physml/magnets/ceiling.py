"""The simulator's Bayes ceiling: the exact-match accuracy the best possible classifier could
reach on the magnets' field alone.

A decision is the mean of ``decision_samples`` readings of one hold. Each hold draws its own
joint-angle offset (``finger_jitter_deg``, shared by every reading of the hold), each reading
its own tremor (``tremor_deg``) and white sensor noise (``noise_uT``), exactly as
:func:`physml.magnets.simulate.simulate_session` does, through the same finite-cylinder field
(:func:`~physml.magnets.simulate.magnet_field_uT`) of the user's true hand. Nothing else is
simulated: no Earth field, no hard or soft iron, no gyroscope, no quantisation (the
magnetometer's 0.1 µT step adds 0.03 µT rms, a seventh of the 0.2 µT sensor noise). Removing a
nuisance cannot lower the Bayes accuracy, so the ceiling bounds from above what any classifier
reaches on the realistic readings of that hand, even one given unlimited labelled readings of
every state.

The Bayes accuracy is estimated by a k-nearest-neighbour vote over ``n_per_state`` simulated
decisions of every state, scored on ``n_test_per_state`` fresh ones: with balanced classes and
many samples per class the kNN vote approaches the Bayes decision (the readings live in 3-D, so
a few thousand per state suffice; :func:`bayes_ceiling` also returns the estimate on a quarter
of the samples, so a report can show it has converged). A second, independent estimate scores
the Gaussian plug-in rule of :class:`~physml.magnets.jitter.JitterClassifier` built from the
truth: the true templates, the true joint-angle Jacobians (:func:`true_angle_jacobians`) and the
simulator's own spreads (:func:`decision_spreads`). Both are real classifiers scored on the same
fresh decisions, so each estimates an accuracy some classifier attains, at most the Bayes
accuracy; the ceiling is the better of the two. Where the Gaussian rule matches the kNN vote,
the linearised Gaussian form of the jitter classifier costs nothing on clean decisions.
"""

from __future__ import annotations

import numpy as np

from .classify import per_state_accuracy
from .hand import ALL_BITS
from .jitter import JitterClassifier
from .simulate import SessionConfig, magnet_field_uT, true_state_fields_uT


def simulated_decisions(hand, config, decision_samples, n_per_state, rng):
    """Simulated decisions of every state: ((32 n, 3) µT mean readings, (32 n,) state index).

    Args:
        hand: the user's Hand. config: SessionConfig (finger_jitter_deg, tremor_deg, noise_uT
        are used). decision_samples: readings averaged per decision (>= 1). n_per_state: >= 1.
        rng: numpy Generator.
    """
    w, n = int(decision_samples), int(n_per_state)
    if w != decision_samples or w < 1 or n != n_per_state or n < 1:
        raise ValueError(f"decision_samples and n_per_state must be integers >= 1, got "
                         f"{decision_samples}, {n_per_state}")
    s = len(ALL_BITS)
    bits = np.repeat(ALL_BITS, n * w, axis=0)
    hold = np.deg2rad(config.finger_jitter_deg) * rng.standard_normal((s * n, 5, 2))
    angles = (np.repeat(hold, w, axis=0)
              + np.deg2rad(config.tremor_deg) * rng.standard_normal((len(bits), 5, 2)))
    readings = (magnet_field_uT(hand, bits, angles)
                + config.noise_uT * rng.standard_normal((len(bits), 3)))
    return readings.reshape(s * n, w, 3).mean(axis=1), np.repeat(np.arange(s), n)


def true_angle_jacobians(hand, step_rad=1e-5):
    """(32, 3, 10) µT/rad: derivative of every state's true finite-magnet field with respect to
    its ten joint angles (thumb→pinky × base/second joint, the order of `magnet_field_uT`'s
    angle perturbations), by central differences of the exact field."""
    if not step_rad > 0:
        raise ValueError(f"step_rad must be > 0, got {step_rad}")
    s = len(ALL_BITS)
    jac = np.empty((s, 3, 10))
    for k in range(10):  # ten joint angles, each two field evaluations of all 32 states
        d = np.zeros((s, 10))
        d[:, k] = step_rad
        d = d.reshape(s, 5, 2)
        jac[:, :, k] = (magnet_field_uT(hand, ALL_BITS, d)
                        - magnet_field_uT(hand, ALL_BITS, -d)) / (2 * step_rad)
    return jac


def decision_spreads(config, decision_samples):
    """The simulator's spreads of a decision (mean of `decision_samples` readings of one hold):
    {"angle_sd_deg": sqrt(jitter² + tremor²/w), "noise_uT": noise/sqrt(w)} — the hold's pose
    offset is shared by the readings, tremor and sensor noise are drawn per reading."""
    w = int(decision_samples)
    if w != decision_samples or w < 1:
        raise ValueError(f"decision_samples must be an integer >= 1, got {decision_samples}")
    angle = np.hypot(config.finger_jitter_deg, config.tremor_deg / np.sqrt(w))
    return {"angle_sd_deg": float(angle), "noise_uT": float(config.noise_uT / np.sqrt(w))}


def bayes_ceiling(hand, config=None, decision_samples=1, n_per_state=2000,
                  n_test_per_state=500, k=30, seed=0):
    """Per-state Bayes accuracy (see module doc) of `hand` under `config`.

    Args:
        hand: the user's Hand. config: SessionConfig (default: the realistic one).
        decision_samples: readings averaged per decision. n_per_state: simulated training
        decisions per state (>= 4 k, so the quarter-size check still has k per state).
        n_test_per_state: scored decisions per state. k: neighbours voted. seed: of the draws.

    Returns:
        dict of (32,) exact match of each state (index order of STATE_CODES), on the same
        scored decisions: "per_state" (the kNN vote), "per_state_quarter" (the vote with the
        first quarter of the training decisions), "per_state_gaussian" (the Gaussian plug-in
        rule from the truth, see module doc; its sensor noise is floored at 1e-3 µT so that
        a noise-free configuration still has a proper covariance).
    """
    from sklearn.neighbors import KNeighborsClassifier

    cfg = config or SessionConfig()
    if int(k) != k or k < 1 or n_per_state < 4 * k:
        raise ValueError(f"bayes_ceiling: need an integer k >= 1 and n_per_state >= 4 k, got "
                         f"k = {k}, n_per_state = {n_per_state}")
    rng = np.random.default_rng([int(seed), 31])
    x, y = simulated_decisions(hand, cfg, decision_samples, n_per_state, rng)
    xt, yt = simulated_decisions(hand, cfg, decision_samples, n_test_per_state, rng)
    out = {}
    for key, n in (("per_state", n_per_state), ("per_state_quarter", n_per_state // 4)):
        keep = np.arange(len(y)) % n_per_state < n  # the first n decisions of every state
        pred = KNeighborsClassifier(int(k)).fit(x[keep], y[keep]).predict(xt)
        out[key] = per_state_accuracy(ALL_BITS[pred], ALL_BITS[yt])
    spread = decision_spreads(cfg, decision_samples)
    rule = JitterClassifier(true_state_fields_uT(hand), true_angle_jacobians(hand),
                            spread["angle_sd_deg"], max(spread["noise_uT"], 1e-3))
    out["per_state_gaussian"] = per_state_accuracy(rule.predict_bits(xt), ALL_BITS[yt])
    return out
