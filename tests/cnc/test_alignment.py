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
