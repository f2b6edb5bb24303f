"""Decisions on averaged readings, per-state accuracy, the true-field ceiling and the
mismatch decomposition of the held-out-state experiment."""

import numpy as np
import pytest

from physml.magnets.classify import per_state_accuracy
from physml.magnets.hand import ALL_BITS, default_hand
from physml.magnets.heldout import (
    MISMATCHES,
    HeldoutConfig,
    hold_ids,
    mismatch_decomposition,
    oracle_scores,
    run_heldout,
    scores,
    window_means,
)
from physml.magnets.simulate import true_state_fields_uT


def test_hold_ids_split_at_index_gaps_and_state_changes():
    index = np.array([0, 1, 2, 5, 6, 7, 8, 9])
    bits = ALL_BITS[[3, 3, 3, 3, 3, 4, 4, 3]]
    assert hold_ids(index, bits).tolist() == [0, 0, 0, 1, 1, 2, 2, 3]


def test_window_means_by_hand():
    x = np.arange(24, dtype=float).reshape(8, 3)
    bits = ALL_BITS[[1, 1, 1, 1, 1, 2, 2, 2]]
    holds = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    m, b, h = window_means(x, bits, holds, 2)
    # hold 0: rows (0,1), (2,3), (4); hold 1: rows (5,6), (7)
    want = np.array([x[0:2].mean(0), x[2:4].mean(0), x[4], x[5:7].mean(0), x[7]])
    assert np.allclose(m, want)
    assert (b == ALL_BITS[[1, 1, 1, 2, 2]]).all() and h.tolist() == [0, 0, 0, 1, 1]
    same = window_means(x, bits, holds, 1)
    assert np.array_equal(same[0], x)
    with pytest.raises(ValueError, match="window"):
        window_means(x, bits, holds, 0)


def test_averaging_shrinks_white_noise_by_the_window():
    """Independent reference: the mean of w independent N(0, σ²) readings has variance σ²/w."""
    rng = np.random.default_rng(0)
    w, sigma = 6, 0.5
    x = sigma * rng.standard_normal((60_000, 3))
    holds = np.repeat(np.arange(1000), 60)
    m, _, _ = window_means(x, np.zeros((len(x), 5), int), holds, w)
    assert len(m) == 10_000
    assert abs(m.var() / (sigma ** 2 / w) - 1) < 0.05


def test_per_state_accuracy_by_hand():
    true = ALL_BITS[[0, 0, 5, 5, 5]]
    pred = ALL_BITS[[0, 1, 5, 5, 7]]
    acc = per_state_accuracy(pred, true)
    assert acc[0] == 0.5 and np.isclose(acc[5], 2 / 3) and np.isnan(acc[1])


def test_true_field_ceiling_is_perfect_on_noise_free_readings_of_the_true_hand():
    """The oracle uses the simulated hand's own field: noise-free readings of it (plus an
    unknown constant offset) are all recognised, those of another hand are not."""
    hand = default_hand()
    truth = true_state_fields_uT(hand) + np.array([5.0, -3.0, 2.0])
    train = np.arange(0, 32, 3)
    test = np.setdiff1d(np.arange(32), train)
    jac = np.zeros((32, 3, 10))
    out = oracle_scores(hand, train, truth[train], ALL_BITS[train], truth[test], ALL_BITS[test],
                        jac)
    assert out == {"true_templates": 1.0, "true_jitter": 1.0}
    other = true_state_fields_uT(hand.replace(polarization_T=hand.polarization_T
                                              * np.array([2.0, 0.5, 1.5, 0.6, 1.8])))
    worse = oracle_scores(hand, train, other[train], ALL_BITS[train], other[test],
                          ALL_BITS[test], jac)
    assert worse["true_templates"] < 1.0
    with pytest.raises(ValueError, match="outside train_states"):
        oracle_scores(hand, train[1:], truth[train], ALL_BITS[train], truth[test],
                      ALL_BITS[test], jac)


SMALL = {"hold_s": 0.6, "repeats": 1}


@pytest.fixture(scope="module")
def decomposition():
    cfg = HeldoutConfig(maxiter=50, decision_samples=4, session=SMALL, classifiers=())
    mism = {"finger_jitter": MISMATCHES["finger_jitter"]}
    return cfg, mismatch_decomposition([0, 1], cfg, mism)


def test_decomposition_removes_exactly_one_mismatch_and_signs_the_gain(decomposition):
    """Independent path: the 'without' scores are those of run_heldout with that simulator
    field set to its ideal value; the gain is without − realistic (flip the sign: fails)."""
    from dataclasses import replace

    cfg, d = decomposition
    direct = run_heldout([0, 1], replace(cfg, session={**SMALL, "finger_jitter_deg": 0.0}))
    plain = run_heldout([0, 1], cfg)
    for m in ("physics", "physics_jitter"):
        assert np.allclose(d["scores"]["finger_jitter"][m], scores(direct, "heldout_state", m))
        assert np.allclose(d["scores"]["realistic"][m], scores(plain, "heldout_state", m))
        want = scores(direct, "heldout_state", m) - scores(plain, "heldout_state", m)
        assert np.isclose(d["gain"]["finger_jitter"][m].diff.mean, want.mean())
    assert d["oracle"].shape == (2,)  # the ceiling of the realistic runs, not of a variant
    np.testing.assert_allclose(d["oracle"], [r["oracle_state"]["true_jitter"] for r in plain])


def test_decisions_average_the_readings_of_each_hold(decomposition):
    """With 4 readings per decision a hold of k readings gives ceil(k / 4) decisions."""
    from dataclasses import replace

    from physml.magnets.heldout import prepare_seed, state_split

    cfg, _ = decomposition
    one = run_heldout([0], replace(cfg, decision_samples=1))[0]
    four = run_heldout([0], cfg)[0]
    data = prepare_seed(0, SMALL)
    _, te = state_split(data["A"][1], np.array(four["train_states"]))
    sizes = np.bincount(data["holds"]["A"][te])
    sizes = sizes[sizes > 0]
    assert one["n_test_decisions"] == sizes.sum()
    assert four["n_test_decisions"] == int(np.ceil(sizes / 4).sum())


def test_unknown_mismatch_field_is_named():
    with pytest.raises(ValueError, match="no_such_field"):
        mismatch_decomposition([0, 1], HeldoutConfig(), {"x": ("bad", {"no_such_field": 0})})


def test_accuracy_intervals_stay_within_zero_and_one():
    from physml.magnets import heldout

    runs = [{"s": {"a": 1.0, "b": 0.0}}, {"s": {"a": 0.9, "b": 0.05}}, {"s": {"a": 1.0, "b": 0.0}}]
    ci = heldout.summarise(runs, "s")
    assert ci["a"].high == 1.0 and ci["b"].low == 0.0 and ci["a"].mean == pytest.approx(2.9 / 3)
    eff = heldout.efficiency_cis({3: runs}, "s", ["a"])
    assert eff["a_n3"].high == 1.0


def test_window_chunks_restart_at_every_hold():
    # holds of 5 and 4 readings, window 3: (0,1,2) (3,4) | (5,6,7) (8)
    x = np.arange(27, dtype=float).reshape(9, 3)
    bits = ALL_BITS[[1] * 5 + [2] * 4]
    holds = np.array([0] * 5 + [1] * 4)
    m, b, h = window_means(x, bits, holds, 3)
    want = [x[0:3].mean(0), x[3:5].mean(0), x[5:8].mean(0), x[8]]
    np.testing.assert_allclose(m, want)
    assert h.tolist() == [0, 0, 1, 1] and (b == ALL_BITS[[1, 1, 2, 2]]).all()
    empty = window_means(np.zeros((0, 3)), np.zeros((0, 5), int), np.zeros(0, int), 3)
    assert [a.shape for a in empty] == [(0, 3), (0, 5), (0,)]
    with pytest.raises(ValueError, match="a hold mixes finger states"):
        window_means(x, ALL_BITS[[1] * 4 + [2] * 5], holds, 3)


def test_window_means_and_hold_ids_refuse_mismatched_shapes_each_alone():
    x, bits, holds = np.zeros((4, 3)), np.zeros((4, 5), int), np.zeros(4, int)
    for bad in ((np.zeros(12), bits, holds), (np.zeros((4, 2)), bits, holds),
                (x, np.zeros((3, 5), int), holds), (x, bits, np.zeros(5, int))):
        with pytest.raises(ValueError, match=r"readings \(m, 3\), bits \(m, 5\), holds"):
            window_means(*bad, 2)
    idx = np.arange(4)
    for bad in ((idx[:, None], bits), (idx, np.zeros((4, 4), int)), (idx, bits[:3])):
        with pytest.raises(ValueError, match=r"index \(m,\) and bits \(m, 5\) must match"):
            hold_ids(*bad)
    assert hold_ids(idx[:0], bits[:0]).shape == (0,)
