"""Where in a known program is the machine? Left-to-right Viterbi alignments (notebook 05).

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

import numba
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


def advance_log_probs(bins_per_row: int, max_advance: int, sigma: float,
                      stall: float = 1e-3) -> np.ndarray:
    """Log-probabilities of advancing ``k = 0..max_advance`` program-time bins in one row.

    A discretised Gaussian centred on ``bins_per_row`` (the kinematic clock's pace) with
    standard deviation ``sigma`` bins, mixed with a small uniform ``stall`` mass so that any
    pace in range stays possible. Shape ``(max_advance + 1,)``, sums to 1 in probability.

    >>> p = np.exp(advance_log_probs(2, 5, 1.0)); int(np.argmax(p)), round(float(p.sum()), 6)
    (2, 1.0)
    """
    if bins_per_row < 1 or max_advance < bins_per_row:
        raise ValueError(f"need 1 <= bins_per_row ({bins_per_row}) <= max_advance "
                         f"({max_advance})")
    if not sigma > 0 or not 0 <= stall < 1:
        raise ValueError(f"sigma must be > 0 and stall in [0, 1), got {sigma}, {stall}")
    k = np.arange(max_advance + 1, dtype=float)
    g = np.exp(-0.5 * ((k - bins_per_row) / sigma) ** 2)
    p = (1 - stall) * g / g.sum() + stall / len(k)
    return np.log(p)


def viterbi_time_warp(log_emit: np.ndarray, advance_logp: np.ndarray, start_bins: int,
                      end_bins: int) -> tuple[np.ndarray, float]:
    """Most likely program-time bin of each row, and the path's log-score.

    A hidden semi-Markov model over lines written as an HMM over program time: the program's
    kinematic timeline is cut into ``B`` bins (a line lasting ``d`` bins owns ``d``
    consecutive bins, so its duration is explicit), and each row advances ``k`` bins with
    log-probability ``advance_logp[k]`` (``k = 0`` stalls). ``log_emit``: ``(T, B)`` log-score
    of row ``t`` in bin ``b`` (the emission of the bin's line). The first row lies in one of
    the first ``start_bins`` bins, the last row in one of the last ``end_bins``.
    Returns ``(path (T,) int non-decreasing, score float)``; cost ``O(T B K)``.
    """
    e = np.asarray(log_emit, dtype=float)
    a = np.asarray(advance_logp, dtype=float)
    T, B = e.shape
    if not 1 <= start_bins <= B or not 1 <= end_bins <= B:
        raise ValueError(f"start_bins ({start_bins}) and end_bins ({end_bins}) must be in "
                         f"1..{B}")
    score, back = _warp_forward(e, a, int(start_bins), int(end_bins))
    final = np.full(B, -np.inf)
    final[B - end_bins:] = score[B - end_bins:]
    path = np.empty(T, dtype=np.int64)
    path[-1] = int(np.argmax(final))
    total = float(final[path[-1]])
    for t in range(T - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path, total


@numba.njit(cache=True, nogil=True)
def _warp_forward(e, a, start_bins, end_bins):  # pragma: no cover - compiled
    """Forward pass of :func:`viterbi_time_warp`: final scores ``(B,)`` and back-pointers
    ``(T, B)`` (the bin each row came from). Compiled: O(T B K) without Python overhead; it
    releases the GIL, so several programs can be decoded on threads at once.

    Only the band of bins a valid path can occupy is visited: row ``t`` lies at most
    ``start_bins - 1 + t (K - 1)`` (reachable from the start) and at least
    ``B - end_bins - (T - 1 - t)(K - 1)`` (the end stays reachable); outside it the score is
    ``-inf`` exactly as a full pass would find, and the back-pointer is the bin itself."""
    T, B = e.shape
    K = a.shape[0]
    step = K - 1
    score = np.full(B, -np.inf)
    score[:start_bins] = e[0, :start_bins]
    back = np.empty((T, B), dtype=np.int32)
    for b in range(B):
        back[0, b] = b
    new = np.empty(B)
    hi_prev = start_bins - 1
    for t in range(1, T):
        hi = min(B - 1, hi_prev + step)
        lo = max(0, B - end_bins - (T - 1 - t) * step)
        for b in range(B):
            new[b] = -np.inf
            back[t, b] = b
        for b in range(lo, hi + 1):
            best = -np.inf
            arg = b
            kmin = max(0, b - hi_prev)
            for k in range(kmin, min(K, b + 1)):
                c = score[b - k] + a[k]
                if c > best:
                    best = c
                    arg = b - k
            new[b] = best + e[t, b]
            back[t, b] = arg
        score[:] = new
        hi_prev = hi
    return score, back


def posterior_time_warp(log_emit: np.ndarray, advance_logp: np.ndarray, start_bins: int,
                        end_bins: int, bin_state: np.ndarray,
                        n_states: int) -> tuple[np.ndarray, float]:
    """Most probable *state* of each row under the model of :func:`viterbi_time_warp`, by
    forward-backward (posterior marginal decoding) instead of the single best path.

    The paths, their scores and the start/end constraints are those of
    :func:`viterbi_time_warp` (row ``t`` in bin ``b`` scores ``log_emit[t, b]``; each row
    advances ``k`` bins with ``advance_logp[k]``; scores are read as log-probabilities up to a
    constant). ``bin_state`` ``(B,)`` int in ``0..n_states-1`` maps each bin to its state (the
    line owning it); the posterior probability of a state at row ``t`` is the sum over its
    bins. Exact-line accuracy counts rows, so the per-row argmax of this marginal maximises the
    expected number of rows named right, which the best path does not. Returns
    ``(state (T,) int, log Z float)`` (``log Z``: log-sum over all valid paths); a row's state
    need not be non-decreasing. Cost ``O(T B K)`` time, ``O(T (B + n_states))`` memory.
    """
    e = np.asarray(log_emit, dtype=float)
    a = np.asarray(advance_logp, dtype=float)
    T, B = e.shape
    s = np.asarray(bin_state, dtype=np.int64)
    if s.shape != (B,) or (B and (s.min() < 0 or s.max() >= n_states)):
        raise ValueError(f"bin_state must have shape ({B},) with values in 0..{n_states - 1}")
    if not 1 <= start_bins <= B or not 1 <= end_bins <= B:
        raise ValueError(f"start_bins ({start_bins}) and end_bins ({end_bins}) must be in "
                         f"1..{B}")
    post, logz = _forward_backward(e, a, int(start_bins), int(end_bins), s, int(n_states))
    if not np.isfinite(logz):
        raise ValueError("posterior_time_warp: no valid path (every path scores -inf)")
    return np.argmax(post, axis=1).astype(np.int64), float(logz)


@numba.njit(cache=True, nogil=True)
def _logaddexp(x, y):  # pragma: no cover - compiled
    if x == -np.inf:
        return y
    if y == -np.inf:
        return x
    m = max(x, y)
    return m + np.log(np.exp(x - m) + np.exp(y - m))


@numba.njit(cache=True, nogil=True)
def _forward_backward(e, a, start_bins, end_bins, state, n_states):  # pragma: no cover
    """Posterior state probabilities ``(T, n_states)`` and ``log Z`` of
    :func:`posterior_time_warp` (log-space forward and backward passes, full bin range)."""
    T, B = e.shape
    K = a.shape[0]
    fw = np.full((T, B), -np.inf)
    for b in range(start_bins):
        fw[0, b] = e[0, b]
    for t in range(1, T):
        for b in range(B):
            acc = -np.inf
            for k in range(min(K, b + 1)):
                p = fw[t - 1, b - k]
                if p != -np.inf:
                    acc = _logaddexp(acc, p + a[k])
            if acc != -np.inf:
                fw[t, b] = acc + e[t, b]
    bw = np.full((T, B), -np.inf)
    for b in range(B - end_bins, B):
        bw[T - 1, b] = 0.0
    for t in range(T - 2, -1, -1):
        for b in range(B):
            acc = -np.inf
            for k in range(min(K, B - b)):
                q = bw[t + 1, b + k]
                if q != -np.inf:
                    acc = _logaddexp(acc, a[k] + e[t + 1, b + k] + q)
            bw[t, b] = acc
    logz = -np.inf
    for b in range(B):
        logz = _logaddexp(logz, fw[T - 1, b] + bw[T - 1, b])
    post = np.zeros((T, n_states))
    if logz == -np.inf:
        return post, logz
    for t in range(T):
        for b in range(B):
            g = fw[t, b] + bw[t, b]
            if g != -np.inf:
                post[t, state[b]] += np.exp(g - logz)
    return post, logz
