"""physml.splits: whole groups held out, and the leak check that guards every split."""

import numpy as np
import pytest

from physml import splits


def _groups():
    rng = np.random.default_rng(0)
    return rng.choice([f"file{i}" for i in range(9)], size=200)


@pytest.mark.parametrize("make", [
    lambda g: splits.group_kfold(g, 3),
    lambda g: splits.group_kfold(g, 4, seed=1),
    lambda g: splits.leave_one_group_out(g),
])
def test_every_row_is_tested_once_and_no_group_crosses(make):
    g = _groups()
    folds = make(g)
    tested = np.concatenate([s.test for s in folds])
    assert sorted(tested.tolist()) == list(range(g.size))
    for s in folds:
        assert not set(g[s.train]) & set(g[s.test])
        assert set(s.test_groups) == set(g[s.test])
        assert s.train.size + s.test.size == g.size


def test_leak_check_fails_on_an_overlapping_split():
    with pytest.raises(splits.LeakError, match="1 session.*'s2'"):
        splits.check_no_leak(["s1", "s2", "s2"], ["s2", "s3"], what="session")
    splits.check_no_leak(["s1"], ["s2"])  # disjoint: fine


def test_a_random_row_split_would_be_caught():
    g = _groups()
    rng = np.random.default_rng(1)
    idx = rng.permutation(g.size)
    with pytest.raises(splits.LeakError):
        splits.check_no_leak(g[idx[:150]], g[idx[150:]], what="file")


def test_seeded_group_kfold_is_reproducible_and_seed_dependent():
    g = _groups()
    a = [s.test_groups for s in splits.group_kfold(g, 3, seed=5)]
    b = [s.test_groups for s in splits.group_kfold(g, 3, seed=5)]
    c = [s.test_groups for s in splits.group_kfold(g, 3, seed=6)]
    assert a == b
    assert a != c


def test_holdout_and_bad_arguments():
    g = np.array(["a", "a", "b", "c", "c"])
    s = splits.holdout(g, ["c"], what="terrain")
    assert s.test.tolist() == [3, 4] and s.test_groups == ("c",)
    with pytest.raises(ValueError, match="terrain.*'z'"):
        splits.holdout(g, ["z"], what="terrain")
    with pytest.raises(ValueError, match="nothing left"):
        splits.holdout(g, ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"n_splits must be in \[2, 3\]"):
        splits.group_kfold(g, 4)
    with pytest.raises(ValueError, match=r"n_splits must be in \[2, 3\]"):
        splits.group_kfold(g, 1)
    assert len(splits.group_kfold(g, 2)) == 2 and len(splits.group_kfold(g, 3)) == 3  # edges
    assert len(splits.leave_one_group_out(["a", "b"])) == 2
    with pytest.raises(ValueError, match="at least 2 files"):
        splits.leave_one_group_out(["a", "a"], what="file")
    for bad in ([], [["a", "b"], ["c", "d"]]):
        with pytest.raises(ValueError, match="non-empty 1-D"):
            splits.leave_one_group_out(bad)


def test_leak_message_lists_ten_groups_then_an_ellipsis():
    many = [f"f{i:02d}" for i in range(11)]
    with pytest.raises(splits.LeakError, match=r"^11 file\(s\) .*'f09' \.\.\.$"):
        splits.check_no_leak(many, many, what="file")
    with pytest.raises(splits.LeakError, match=r"'f09'$"):
        splits.check_no_leak(many[:10], many[:10], what="file")


def test_fold_key_names_the_held_out_groups_and_the_seed_not_the_row_order():
    a = splits.holdout(["f1", "f1", "f2", "f3"], ["f1", "f3"])
    b = splits.holdout(["f3", "f2", "f1"], ["f3", "f1"])  # same groups, other rows and order
    assert splits.fold_key(0, a) == splits.fold_key(0, b)
    assert splits.fold_key(1, a) != splits.fold_key(0, a)
    assert splits.fold_key(0, splits.holdout(["f1", "f2", "f3"], ["f1", "f2"])) != \
        splits.fold_key(0, a)
    assert splits.fold_key(0, a).startswith("seed0_")


def test_fold_values_keys_each_folds_row_and_refuses_a_missing_or_repeated_fold():
    import pandas as pd

    g = ["a", "a", "b", "b", "c", "c", "d", "d"]
    sl = [(0, sp) for sp in splits.group_kfold(g, 2, seed=0)]
    frame = pd.DataFrame({"seed": [0, 0], "fold": [1, 0], "acc": [0.7, 0.4]})
    out = splits.fold_values(frame, sl, "acc")
    assert out == {splits.fold_key(0, sl[0][1]): 0.4, splits.fold_key(0, sl[1][1]): 0.7}
    with pytest.raises(ValueError, match="0 rows for seed 0, fold 1"):
        splits.fold_values(frame[frame["fold"] == 0], sl, "acc")
    with pytest.raises(ValueError, match="2 rows for seed 0, fold 0"):
        splits.fold_values(pd.concat([frame, frame[frame["fold"] == 0]]), sl, "acc")
