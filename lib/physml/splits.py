"""Grouped splits that hold out whole groups (files, sessions, programs, geometries, terrains).

One implementation for every study, on top of scikit-learn's ``GroupKFold`` and
``LeaveOneGroupOut``. Each split is checked by :func:`check_no_leak` before it is returned, so a
group can never sit on both sides.

>>> groups = ["f1", "f1", "f2", "f2", "f3", "f3"]
>>> [s.test_groups for s in leave_one_group_out(groups)]
[('f1',), ('f2',), ('f3',)]
>>> check_no_leak(["f1", "f2"], ["f2", "f3"], what="file")
Traceback (most recent call last):
    ...
physml.splits.LeakError: 1 file(s) on both sides of the split: 'f2'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class LeakError(ValueError):
    """A group appears in both the training and the test side of a split."""


@dataclass(frozen=True)
class Split:
    """One fold: row indices of each side (shape ``(n_train,)``, ``(n_test,)``) and the
    groups held out."""

    fold: int
    train: np.ndarray
    test: np.ndarray
    test_groups: tuple

    def __repr__(self) -> str:
        return (f"Split(fold={self.fold}, n_train={self.train.size}, n_test={self.test.size}, "
                f"test_groups={self.test_groups!r})")


def fold_key(seed: int, split: Split) -> str:
    """``"seed<seed>_<16 hex digits>"``: names one fold by its seed and the groups it holds
    out (sorted, so row order does not matter). Two notebooks that record a per-fold figure
    under this key can be paired fold by fold, and a figure from other folds cannot match.
    The key does not see the training side: it is the same fold when both notebooks split the
    same groups (the same recordings, ``n_splits`` and seed give the same held-out groups).

    >>> fold_key(0, holdout(["a", "a", "b"], ["b"])) == fold_key(0, holdout(["b", "a"], ["b"]))
    True
    """
    import hashlib

    names = "\n".join(sorted(str(g) for g in split.test_groups))
    return f"seed{int(seed)}_{hashlib.sha256(names.encode()).hexdigest()[:16]}"


def fold_values(scores, split_list, column: str) -> dict[str, float]:
    """``{fold_key(seed, split): value}`` of a per-fold scores frame (columns ``seed``, ``fold``
    and ``column``, one row per fold of ``split_list``, a list of ``(seed, Split)``).
    Raises ``ValueError`` naming a fold of ``split_list`` the frame lacks or repeats."""
    out = {}
    for seed, sp in split_list:
        hit = scores[(scores["seed"] == seed) & (scores["fold"] == sp.fold)]
        if len(hit) != 1:
            raise ValueError(f"fold_values: {len(hit)} rows for seed {seed}, fold {sp.fold} "
                             f"(need exactly one)")
        out[fold_key(seed, sp)] = float(hit[column].iloc[0])
    return out


def _groups(groups: Sequence | np.ndarray) -> np.ndarray:
    g = np.asarray(groups)
    if g.ndim != 1 or g.size == 0:
        raise ValueError(f"groups must be a non-empty 1-D sequence, got shape {g.shape}")
    return g


def check_no_leak(train_groups, test_groups, what: str = "group") -> None:
    """Raise :class:`LeakError` naming every ``what`` present on both sides."""
    both = sorted(set(np.asarray(train_groups).tolist()) & set(np.asarray(test_groups).tolist()),
                  key=str)
    if both:
        shown = ", ".join(repr(b) for b in both[:10]) + (" ..." if len(both) > 10 else "")
        raise LeakError(f"{len(both)} {what}(s) on both sides of the split: {shown}")


def _make(g: np.ndarray, pairs, what: str) -> list[Split]:
    out = []
    for k, (tr, te) in enumerate(pairs):
        check_no_leak(g[tr], g[te], what)
        test_groups = tuple(dict.fromkeys(g[te].tolist()))
        out.append(Split(k, np.asarray(tr), np.asarray(te), test_groups))
    return out


def group_kfold(groups, n_splits: int, seed: int | None = None, what: str = "group"
                ) -> list[Split]:
    """K folds over whole groups (scikit-learn ``GroupKFold``); ``groups`` has shape ``(n,)``.

    ``seed`` shuffles which groups go together (``GroupKFold(shuffle=True)``); ``None`` keeps
    scikit-learn's deterministic size-balanced assignment.
    """
    from sklearn.model_selection import GroupKFold

    g = _groups(groups)
    n_groups = len(set(g.tolist()))
    if not 2 <= n_splits <= n_groups:
        raise ValueError(f"group_kfold: n_splits must be in [2, {n_groups}] (the number of "
                         f"{what}s), got {n_splits}")
    kw = {"shuffle": True, "random_state": seed} if seed is not None else {}
    cv = GroupKFold(n_splits=n_splits, **kw)
    return _make(g, cv.split(np.zeros(g.size), groups=g), what)


def leave_one_group_out(groups, what: str = "group") -> list[Split]:
    """One fold per group, holding it out (scikit-learn ``LeaveOneGroupOut``)."""
    from sklearn.model_selection import LeaveOneGroupOut

    g = _groups(groups)
    if len(set(g.tolist())) < 2:
        raise ValueError(f"leave_one_group_out: needs at least 2 {what}s")
    return _make(g, LeaveOneGroupOut().split(np.zeros(g.size), groups=g), what)


def holdout(groups, test_groups: Sequence, what: str = "group") -> Split:
    """A single split holding out exactly ``test_groups`` (e.g. a Froude range, a campaign)."""
    g = _groups(groups)
    wanted = set(test_groups)
    missing = wanted - set(g.tolist())
    if missing:
        raise ValueError(f"holdout: {what}(s) {sorted(missing, key=str)} do not occur")
    is_test = np.isin(g, list(wanted))
    if is_test.all():
        raise ValueError(f"holdout: every {what} is held out; nothing left to train on")
    return _make(g, [(np.flatnonzero(~is_test), np.flatnonzero(is_test))], what)[0]
