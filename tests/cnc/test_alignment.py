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
