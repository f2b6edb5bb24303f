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
of the samples, so a report can show it has converged).
"""

from __future__ import annotations

import numpy as np

from .hand import ALL_BITS
from .simulate import SessionConfig, magnet_field_uT


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


def bayes_ceiling(hand, config=None, decision_samples=1, n_per_state=2000,
                  n_test_per_state=500, k=30, seed=0):
    """Per-state Bayes accuracy (see module doc) of `hand` under `config`.

    Args:
        hand: the user's Hand. config: SessionConfig (default: the realistic one).
        decision_samples: readings averaged per decision. n_per_state: simulated training
        decisions per state (>= 4 k, so the quarter-size check still has k per state).
        n_test_per_state: scored decisions per state. k: neighbours voted. seed: of the draws.

    Returns:
        dict {"per_state": (32,) exact match of each state (index order of STATE_CODES),
        "per_state_quarter": the same with the first quarter of the training decisions}.
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
        out[key] = np.bincount(yt, weights=pred == yt, minlength=len(ALL_BITS)) / n_test_per_state
    return out
