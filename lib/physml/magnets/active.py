"""Which readings should a new user label? Selection rules for the active-learning loop.

* `least_confident` — the classic uncertainty rule: the readings whose predicted 5-finger
  state has the lowest probability (at most one per predicted state per batch).
* `coverage` — a diversity rule made for a *parametric* calibration: the labels refit a
  physics model (offset, geometry, moments), whose parameters are pinned by seeing many
  different states, not by many ambiguous readings of one. Each batch takes, for predicted
  states not yet labelled (most-visited first), the reading the model is *most* sure of.
* `random` — uniform over the unlabelled pool (the control).

Why least-confident loses here (measured in notebooks/magnets/05): the least confident readings
of a badly calibrated model cluster on a few true states whose readings fall between
templates; a batch spends most of its labels on one or two states, and a refit from labelled
state means of two states moves the model in a biased direction. Random sampling spreads its
labels over ~all states by chance. See `label_spread` for the diagnostic.
"""

from __future__ import annotations

import numpy as np

from .hand import bits_to_index

STRATEGIES = ("coverage", "least_confident", "random")


def _check(n, pool_size):
    if not 1 <= n <= pool_size:
        raise ValueError(f"batch size must be in [1, {pool_size}] (unlabelled pool), got {n}")


def least_confident(confidence, predicted_states, n):
    """Indices of the n least-confident readings, at most one per predicted state first.

    Args:
        confidence: (m,) probability of each reading's predicted state.
        predicted_states: (m,) predicted state index 0..31.
        n: labels to ask.

    Returns:
        (n,) indices into the m readings, least confident first.
    """
    c = np.asarray(confidence, float)
    p = np.asarray(predicted_states)
    _check(n, len(c))
    order = np.argsort(c, kind="stable")  # ascending: least confident first
    _, first = np.unique(p[order], return_index=True)
    chosen = order[np.sort(first)][:n]
    if len(chosen) < n:  # fewer distinct predicted states than labels to ask
        rest = order[~np.isin(order, chosen)]
        chosen = np.concatenate([chosen, rest[:n - len(chosen)]])
    return chosen


def coverage(confidence, predicted_states, n, labelled_states=()):
    """Indices of n readings spreading the labels over states: the most confident reading of
    each predicted state that has no label yet, most-visited predicted states first; when
    every predicted state is labelled, states with the fewest labels come first.

    Args:
        confidence: (m,) probability of each reading's predicted state.
        predicted_states: (m,) predicted state index 0..31.
        n: labels to ask.
        labelled_states: state indices of the labels asked so far (repeats count).

    Returns:
        (n,) indices into the m readings.
    """
    c = np.asarray(confidence, float)
    p = np.asarray(predicted_states, dtype=np.int64)
    _check(n, len(c))
    have = np.bincount(np.asarray(labelled_states, dtype=np.int64), minlength=32)
    visits = np.bincount(p, minlength=32)
    # states ranked: fewest labels first, then most pool readings (lexsort: last key primary)
    states = np.lexsort((-visits, have))
    states = states[visits[states] > 0]
    order = np.argsort(-c, kind="stable")  # descending: most confident first
    first = {}
    for i in order[np.isin(p[order], states)]:  # m readings once; keeps the first per state
        first.setdefault(int(p[i]), int(i))
    chosen = [first[int(s)] for s in states if int(s) in first][:n]
    if len(chosen) < n:  # fewer predicted states than labels: next most confident readings
        rest = order[~np.isin(order, chosen)]
        chosen = chosen + rest[:n - len(chosen)].tolist()
    return np.asarray(chosen, dtype=np.int64)


def select(strategy, clf, readings_uT, n, rng, labelled_bits=None):
    """Pick n of the unlabelled readings (m, 3) µT with `strategy` for classifier clf.

    Returns:
        (n,) indices into readings_uT.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    x = np.asarray(readings_uT, float)
    _check(n, len(x))
    if strategy == "random":
        return rng.choice(len(x), n, replace=False)
    conf = clf.confidence(x)
    pred = bits_to_index(clf.predict_bits(x))
    if strategy == "least_confident":
        return least_confident(conf, pred, n)
    done = () if labelled_bits is None or len(labelled_bits) == 0 else bits_to_index(
        labelled_bits)
    return coverage(conf, pred, n, done)


def label_spread(bits):
    """Distinct states among labelled readings bits (k, 5), and the largest share of one state."""
    idx = bits_to_index(bits)
    if len(idx) == 0:
        return {"distinct_states": 0, "top_state_share": 0.0}
    counts = np.bincount(idx, minlength=32)
    return {"distinct_states": int(np.count_nonzero(counts)),
            "top_state_share": float(counts.max() / len(idx))}
