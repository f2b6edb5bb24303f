"""Where in a known program is the machine? Left-to-right Viterbi alignment (notebook 05, begun).

The program's lines are the hidden states, visited in order; each row either stays on its
line or advances by 1..``max_skip`` lines (status reports at ~4 Hz skip short lines). Staying
has probability ``1 - 1/d_s`` for an expected duration of ``d_s`` rows (geometric durations;
the kinematic model of each line supplies ``d_s``), and skipping ``k`` lines costs
``k - 1`` times ``log_skip``. Emissions are any per-row, per-line log-scores (e.g. a sensor
classifier's log-probabilities of each line's command class).

Why our own few lines and not hmmlearn: hmmlearn's models need a parametric emission family
(Gaussian, categorical...) and cannot take a classifier's per-row scores directly; the
left-to-right band makes the recursion O(T·S·max_skip) in NumPy.
"""

from __future__ import annotations

import numpy as np


def viterbi_left_to_right(log_emit: np.ndarray, expected_rows: np.ndarray, max_skip: int = 4,
                          log_skip: float = -2.0, start_states: int = 1) -> np.ndarray:
    """Most likely line index for each row.

    ``log_emit``: ``(T, S)`` log-scores of row t on line s. ``expected_rows``: ``(S,)``
    expected rows per line (>= 1). ``start_states``: the first rows may begin on any of the
    first ``start_states`` lines (a recording can start after the program's first lines).
    Returns ``(T,)`` int, non-decreasing.
    """
    log_emit = np.asarray(log_emit, dtype=float)
    d = np.asarray(expected_rows, dtype=float)
    T, S = log_emit.shape
    if d.shape != (S,) or np.any(d < 1) or not np.all(np.isfinite(d)):
        raise ValueError(f"expected_rows must have shape ({S},) with values >= 1")
    if max_skip < 1:
        raise ValueError(f"max_skip must be >= 1, got {max_skip}")
    stay = np.log1p(-1.0 / np.maximum(d, 1.0 + 1e-9))
    move = np.log(1.0 / np.maximum(d, 1.0 + 1e-9))
    score = np.full(S, -np.inf)
    score[:start_states] = log_emit[0, :start_states]
    back = np.zeros((T, S), dtype=np.int32)
    idx = np.arange(S)
    for t in range(1, T):
        best = score + stay
        arg = idx.copy()
        for k in range(1, max_skip + 1):
            cand = np.full(S, -np.inf)
            cand[k:] = score[:-k] + move[:-k] + (k - 1) * log_skip
            better = cand > best
            best = np.where(better, cand, best)
            arg = np.where(better, idx - k, arg)
        back[t] = arg
        score = best + log_emit[t]
    path = np.empty(T, dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for t in range(T - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path
