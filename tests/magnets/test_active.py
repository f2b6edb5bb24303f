"""Active-learning selection rules: which readings each rule asks to label (order pinned)."""

import numpy as np
import pytest

from physml.magnets.active import coverage, label_spread, least_confident, select
from physml.magnets.hand import ALL_BITS

# eight readings: predicted state and the model's confidence in it
PRED = np.array([3, 3, 7, 7, 7, 9, 12, 12])
CONF = np.array([0.90, 0.20, 0.55, 0.10, 0.80, 0.50, 0.30, 0.95])


def test_least_confident_asks_the_least_confident_reading_of_each_predicted_state():
    # per state the least confident reading: 3 -> #1 (0.20), 7 -> #3 (0.10), 9 -> #5 (0.50),
    # 12 -> #6 (0.30); ordered least confident first: #3, #1, #6, #5
    assert least_confident(CONF, PRED, 4).tolist() == [3, 1, 6, 5]
    assert least_confident(CONF, PRED, 2).tolist() == [3, 1]


def test_least_confident_fills_with_the_next_least_confident_when_states_run_out():
    # 4 distinct states, 6 labels: then the least confident remaining, #2 (0.55), #4 (0.80)
    assert least_confident(CONF, PRED, 6).tolist() == [3, 1, 6, 5, 2, 4]


def test_coverage_asks_the_most_confident_reading_of_each_unlabelled_state_most_visited_first():
    # visits: state 7 x3, states 3 and 12 x2, state 9 x1; most confident reading per state:
    # 7 -> #4 (0.80), 3 -> #0 (0.90), 12 -> #7 (0.95), 9 -> #5
    # ties in visits (3 and 12) keep state order: 3 before 12
    assert coverage(CONF, PRED, 4).tolist() == [4, 0, 7, 5]


def test_coverage_puts_states_already_labelled_last():
    # state 7 labelled twice and 3 once: unlabelled 12 and 9 first, then 3, then 7
    assert coverage(CONF, PRED, 4, labelled_states=[7, 7, 3]).tolist() == [7, 5, 0, 4]


def test_selection_rejects_a_batch_larger_than_the_pool():
    with pytest.raises(ValueError, match="batch size"):
        least_confident(CONF, PRED, 9)
    with pytest.raises(ValueError, match="strategy"):
        select("greedy", None, np.zeros((3, 3)), 1, np.random.default_rng(0))


class _Fake:
    """A classifier whose predictions and confidences are fixed per reading (x[:, 0] = row)."""

    def confidence(self, x):
        return CONF[x[:, 0].astype(int)]

    def predict_bits(self, x):
        return ALL_BITS[PRED[x[:, 0].astype(int)]]


def test_select_routes_each_strategy_to_its_rule():
    x = np.column_stack([np.arange(8), np.zeros(8), np.zeros(8)])
    rng = np.random.default_rng(0)
    assert select("least_confident", _Fake(), x, 2, rng).tolist() == [3, 1]
    assert select("coverage", _Fake(), x, 2, rng).tolist() == [4, 0]
    r = select("random", _Fake(), x, 5, np.random.default_rng(1))
    assert len(set(r.tolist())) == 5 and r.max() < 8


def test_label_spread_counts_states_and_the_largest_share():
    bits = ALL_BITS[[3, 3, 3, 7]]
    assert label_spread(bits) == {"distinct_states": 2, "top_state_share": 0.75}


def test_coverage_fills_with_the_next_most_confident_when_states_run_out():
    # 4 predicted states, 6 labels: then the most confident readings not chosen, #2 (0.55), #6
    assert coverage(CONF, PRED, 6).tolist() == [4, 0, 7, 5, 2, 6]


def test_batch_sizes_from_one_to_the_whole_pool_are_allowed():
    for rule in (least_confident, coverage):
        assert len(rule(CONF, PRED, 1)) == 1 and sorted(rule(CONF, PRED, 8).tolist()) == list(
            range(8))
        with pytest.raises(ValueError, match=r"batch size must be in \[1, 8\]"):
            rule(CONF, PRED, 0)


def test_select_passes_the_labels_so_far_to_coverage_and_random_never_repeats():
    x = np.column_stack([np.arange(8), np.zeros(8), np.zeros(8)])
    rng = np.random.default_rng(0)
    done = ALL_BITS[[7, 7, 3]]
    assert select("coverage", _Fake(), x, 4, rng, labelled_bits=done).tolist() == [7, 5, 0, 4]
    assert select("coverage", _Fake(), x, 4, rng, labelled_bits=ALL_BITS[:0]).tolist() == [
        4, 0, 7, 5]
    r = select("random", _Fake(), x, 8, np.random.default_rng(1))
    assert sorted(r.tolist()) == list(range(8))
