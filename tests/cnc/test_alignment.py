"""Alignment recovers a known line sequence from a synthetic stream (issue 11)."""

from __future__ import annotations

import numpy as np
import pytest

from physml.cnc import alignment


def _stream(rng, n_lines=60, n_classes=4, noise=1.0):
    """A program of lines with classes and durations; rows skip some short lines."""
    classes = rng.integers(0, n_classes, n_lines)
    durations = rng.integers(0, 7, n_lines)  # 0 rows: a line the status reports never saw
    durations[0] = 3
    truth = np.repeat(np.arange(n_lines), durations)
    # a noisy classifier: log-probabilities favouring the true class
    logits = rng.normal(0, noise, (len(truth), n_classes))
    logits[np.arange(len(truth)), classes[truth]] += 2.0
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return logp[:, classes], truth, np.maximum(durations, 1).astype(float)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_alignment_recovers_the_line_sequence_of_a_synthetic_stream(seed):
    rng = np.random.default_rng(seed)
    log_emit, truth, d = _stream(rng, n_classes=8)
    path = alignment.viterbi_left_to_right(log_emit, d, max_skip=7)
    assert np.all(np.diff(path) >= 0)
    acc = float(np.mean(path == truth))
    # independent reference: the timing alone (rows mapped to lines by expected durations);
    # a per-row classifier alone cannot name one of 60 lines from 8 classes
    clock = np.minimum((np.cumsum(d)[:, None] <= np.arange(len(truth))[None, :]).sum(0),
                       len(d) - 1)
    assert acc > 0.8, acc
    assert acc > float(np.mean(clock == truth)) + 0.25


def test_alignment_is_exact_with_clean_emissions():
    rng = np.random.default_rng(1)
    S = 30
    durations = rng.integers(1, 5, S)
    truth = np.repeat(np.arange(S), durations)
    log_emit = np.where(np.arange(S)[None, :] == truth[:, None], 0.0, -20.0)
    path = alignment.viterbi_left_to_right(log_emit, durations.astype(float))
    assert np.array_equal(path, truth)


def _warp_stream(rng, n_lines=40, bpr=2, noise=1.0, n_classes=5):
    """A timeline of lines (1-6 rows each) played at a pace that drifts around nominal."""
    rows = rng.integers(1, 7, n_lines)
    bin_line = np.repeat(np.arange(n_lines), rows * bpr)
    classes = rng.integers(0, n_classes, n_lines)
    pace = rng.choice([bpr - 1, bpr, bpr + 1], size=len(bin_line), p=[0.2, 0.6, 0.2])
    pos = np.cumsum(np.r_[0, pace])
    pos = pos[pos < len(bin_line)]
    truth = bin_line[pos]
    logits = rng.normal(0, noise, (len(truth), n_classes))
    logits[np.arange(len(truth)), classes[truth]] += 2.5
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return logp[:, classes[bin_line]], truth, bin_line


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_time_warp_recovers_the_lines_of_a_synthetic_stream(seed):
    rng = np.random.default_rng(seed)
    e, truth, bin_line = _warp_stream(rng)
    adv = alignment.advance_log_probs(2, 4, 1.0)
    path, score = alignment.viterbi_time_warp(e, adv, start_bins=2, end_bins=len(bin_line) // 10)
    assert np.all(np.diff(path) >= 0) and np.isfinite(score)
    acc = float(np.mean(bin_line[path] == truth))
    # independent reference: the nominal clock (row t in bin 2t), no emission
    clock = bin_line[np.minimum(2 * np.arange(len(truth)), len(bin_line) - 1)]
    assert acc > 0.8, acc
    assert acc > float(np.mean(clock == truth)) + 0.1


def test_time_warp_is_exact_with_clean_emissions_and_scores_the_right_program_higher():
    rng = np.random.default_rng(4)
    e, truth, bin_line = _warp_stream(rng, noise=0.0)
    clean = np.where(bin_line[None, :] == truth[:, None], 0.0, -30.0)
    adv = alignment.advance_log_probs(2, 4, 1.0)
    path, good = alignment.viterbi_time_warp(clean, adv, 1, 4)
    assert np.array_equal(bin_line[path], truth)
    # a wrong "program": the same bins in reverse order cannot explain the stream
    _, bad = alignment.viterbi_time_warp(clean[:, ::-1], adv, 1, 4)
    assert good > bad


def test_advance_log_probs_validates_and_peaks_at_the_nominal_pace():
    p = np.exp(alignment.advance_log_probs(3, 6, 0.5))
    assert int(np.argmax(p)) == 3 and p.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        alignment.advance_log_probs(3, 2, 1.0)
    with pytest.raises(ValueError):
        alignment.viterbi_time_warp(np.zeros((3, 4)), p, start_bins=0, end_bins=1)


@pytest.mark.parametrize("seed", range(6))
def test_time_warp_equals_brute_force_enumeration_of_every_monotone_path(seed):
    """Independent reference: enumerate every start bin and advance sequence, keep the best
    path that ends in the last ``end_bins`` (checks the band pruning of the kernel)."""
    import itertools

    rng = np.random.default_rng(seed)
    T, B, K = 6, int(rng.integers(5, 12)), 3
    e = rng.normal(size=(T, B))
    adv = np.log(rng.dirichlet(np.ones(K)))
    start, end = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    best, best_path = -np.inf, None
    for b0 in range(start):
        for steps in itertools.product(range(K), repeat=T - 1):
            path = b0 + np.r_[0, np.cumsum(steps)]
            if path[-1] >= B or path[-1] < B - end:
                continue
            s = e[np.arange(T), path].sum() + adv[list(steps)].sum()
            if s > best:
                best, best_path = s, path
    path, score = alignment.viterbi_time_warp(e, adv, start, end)
    if best_path is None:
        assert score == -np.inf
    else:
        assert score == pytest.approx(best)
        np.testing.assert_array_equal(path, best_path)


@pytest.mark.parametrize("seed", range(6))
def test_posterior_decoding_equals_brute_force_path_marginals(seed):
    """Independent reference: enumerate every valid path, weight it by exp(score), sum the
    weights of the paths putting row t in a bin of each state; the decoder's per-row argmax
    and log Z must match."""
    import itertools

    rng = np.random.default_rng(100 + seed)
    T, B, K = 5, int(rng.integers(5, 10)), 3
    e = rng.normal(size=(T, B))
    adv = np.log(rng.dirichlet(np.ones(K)))
    start, end = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    state = np.sort(rng.integers(0, 4, B))
    state = np.unique(state, return_inverse=True)[1]  # contiguous, non-decreasing states
    n_states = int(state.max()) + 1
    weights, paths = [], []
    for b0 in range(start):
        for steps in itertools.product(range(K), repeat=T - 1):
            path = b0 + np.r_[0, np.cumsum(steps)]
            if path[-1] >= B or path[-1] < B - end:
                continue
            weights.append(e[np.arange(T), path].sum() + adv[list(steps)].sum())
            paths.append(path)
    if not paths:
        with pytest.raises(ValueError, match="no valid path"):
            alignment.posterior_time_warp(e, adv, start, end, state, n_states)
        return
    w = np.exp(np.array(weights) - max(weights))
    marg = np.zeros((T, n_states))
    for wi, path in zip(w, paths, strict=True):
        marg[np.arange(T), state[path]] += wi
    got, logz = alignment.posterior_time_warp(e, adv, start, end, state, n_states)
    assert logz == pytest.approx(max(weights) + np.log(w.sum()))
    np.testing.assert_array_equal(got, np.argmax(marg, axis=1))


def test_posterior_decoding_beats_the_best_path_on_rows_when_the_phase_is_uncertain():
    """A line of one bin between two long ones: the single best path either visits it or
    not; when the paths that skip it carry more total probability than any path that visits
    it, the per-row marginal names the long lines, the best path the short one."""
    # bins 0-3 line 0, bin 4 line 1 (short), bins 5-8 line 2; 6 rows from bin 0 to bin 8,
    # advancing 1 or 2 bins: 10 equally likely paths, 6 visit bin 4 but at rows 2 and 3
    # only 3 each do (7 of 10 are on line 0 at row 2 and on line 2 at row 3)
    state = np.array([0, 0, 0, 0, 1, 2, 2, 2, 2])
    e = np.zeros((6, 9))
    e[:, 4] = 0.5  # the short line is slightly favoured wherever a path visits it
    adv = np.log(np.array([1e-9, 0.5, 0.5]))
    vpath, _ = alignment.viterbi_time_warp(e, adv, 1, 1)
    assert 4 in vpath  # the best path takes the bonus
    post, _ = alignment.posterior_time_warp(e, adv, 1, 1, state, 3)
    assert 1 not in post  # but most probability mass passes it by
    # flipping the emission (the short line penalised) leaves both decoders off it
    post2, _ = alignment.posterior_time_warp(-e, adv, 1, 1, state, 3)
    vpath2, _ = alignment.viterbi_time_warp(-e, adv, 1, 1)
    assert 1 not in post2 and 4 not in vpath2


@pytest.mark.parametrize("seed", range(6))
def test_left_to_right_equals_brute_force_enumeration_of_every_path(seed):
    """Independent reference for :func:`viterbi_left_to_right`: enumerate every start line and
    every sequence of advances (0 = stay, k = skip to k lines on), score each path by the
    documented rule (stay: log(1 - 1/d), advance by k: log(1/d) + (k - 1) log_skip, from the
    line left) and keep the best."""
    import itertools

    rng = np.random.default_rng(200 + seed)
    T, S, skip = 5, 6, int(rng.integers(2, 4))
    e = rng.normal(size=(T, S))
    d = rng.uniform(1.5, 4.0, S)
    log_skip, start = float(rng.uniform(-3.0, -0.5)), int(rng.integers(1, 3))
    best, best_path = -np.inf, None
    for s0 in range(start):
        for steps in itertools.product(range(skip + 1), repeat=T - 1):
            path = s0 + np.r_[0, np.cumsum(steps)]
            if path[-1] >= S:
                continue
            s = e[0, s0]
            for t, k in enumerate(steps, start=1):
                src = path[t - 1]
                s += (np.log1p(-1.0 / d[src]) if k == 0
                      else np.log(1.0 / d[src]) + (k - 1) * log_skip) + e[t, path[t]]
            if s > best:
                best, best_path = s, path
    got = alignment.viterbi_left_to_right(e, d, max_skip=skip, log_skip=log_skip,
                                          start_states=start)
    np.testing.assert_array_equal(got, best_path)


def test_left_to_right_validates_its_durations_and_skip():
    e = np.zeros((3, 4))
    for d in (np.ones(3), [1.0, 0.5, 2.0, 2.0], [1.0, np.inf, 2.0, 2.0]):
        with pytest.raises(ValueError, match=r"expected_rows must have shape \(4,\) with values"):
            alignment.viterbi_left_to_right(e, d)
    with pytest.raises(ValueError, match="max_skip must be >= 1, got 0"):
        alignment.viterbi_left_to_right(e, np.ones(4), max_skip=0)
    clean = np.where(np.arange(4)[None, :] == np.array([0, 1, 2])[:, None], 0.0, -20.0)
    assert alignment.viterbi_left_to_right(clean, np.ones(4), max_skip=1).tolist() == [0, 1, 2]


def test_advance_log_probs_is_the_documented_gaussian_and_mixture():
    k = np.arange(5)
    g = np.exp(-0.5 * ((k - 2) / 0.8) ** 2)
    want = 0.9 * g / g.sum() + 0.1 / 5
    np.testing.assert_allclose(np.exp(alignment.advance_log_probs(2, 4, 0.8, stall=0.1)), want)
    np.testing.assert_allclose(np.exp(alignment.advance_log_probs(1, 1, 1.0, stall=0.0)),
                               [np.exp(-0.5) / (1 + np.exp(-0.5)), 1 / (1 + np.exp(-0.5))])
    for args in ((0, 3, 1.0), (2, 1, 1.0), (2, 4, 0.0), (2, 4, -1.0), (2, 4, 1.0, 1.0),
                 (2, 4, 1.0, -0.1)):
        with pytest.raises(ValueError):
            alignment.advance_log_probs(*args)


def test_start_and_end_bins_may_be_one_or_every_bin_and_states_must_fit():
    rng = np.random.default_rng(7)
    T, B = 4, 6
    e, adv = rng.normal(size=(T, B)), np.log(np.full(3, 1 / 3))
    state = np.repeat([0, 1, 2], 2)
    for start, end in ((1, 1), (B, B), (1, B), (B, 1)):
        path, score = alignment.viterbi_time_warp(e, adv, start, end)
        assert np.isfinite(score) and path[0] < start and path[-1] >= B - end
        got, logz = alignment.posterior_time_warp(e, adv, start, end, state, 3)
        assert np.isfinite(logz) and got.shape == (T,)
    for start, end in ((0, 1), (1, 0), (B + 1, 1), (1, B + 1)):
        with pytest.raises(ValueError, match=rf"must be in 1\.\.{B}"):
            alignment.viterbi_time_warp(e, adv, start, end)
        with pytest.raises(ValueError, match=rf"must be in 1\.\.{B}"):
            alignment.posterior_time_warp(e, adv, start, end, state, 3)
    for bad in (state[:-1], np.r_[state[:-1], 3], np.r_[-1, state[1:]]):
        with pytest.raises(ValueError, match=r"bin_state must have shape \(6,\) with values "
                                             r"in 0\.\.2"):
            alignment.posterior_time_warp(e, adv, 1, 1, bad, 3)
