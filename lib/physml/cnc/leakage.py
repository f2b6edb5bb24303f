"""The source's random window split, kept only to measure its leak (notebook 02).

The source cuts each recording into windows of ``window`` rows every ``stride`` rows and
splits the windows at random. Neighbouring windows share rows, so almost every test window
has rows that a training window also contains. Every model in physml uses
:mod:`physml.splits` instead; nothing here is used for training.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def windows(rows: pd.DataFrame, window: int, stride: int) -> pd.DataFrame:
    """Start/end row (end exclusive) and file of every full window of every file.

    ``rows`` needs ``file`` and ``row``; returns columns ``file start stop`` (global row
    indices into ``rows``, which must be grouped by file).
    """
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got {window}, {stride}")
    files = rows["file"].to_numpy()
    change = np.flatnonzero(files[1:] != files[:-1]) + 1
    starts, ends = np.r_[0, change], np.r_[change, len(rows)]
    out = []
    for a, b in zip(starts, ends, strict=True):
        s = np.arange(a, b - window + 1, stride)
        out.append(pd.DataFrame({"file": files[a], "start": s, "stop": s + window}))
    return pd.concat(out, ignore_index=True)


def random_window_split(n_windows: int, test_fraction: float, seed: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The source's protocol: windows shuffled and split at random (train, test indices)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    perm = np.random.default_rng(seed).permutation(n_windows)
    k = int(round(test_fraction * n_windows))
    return np.sort(perm[k:]), np.sort(perm[:k])


def shared_row_fraction(wins: pd.DataFrame, train: np.ndarray, test: np.ndarray) -> float:
    """Fraction of test windows that contain at least one row of some training window."""
    covered = np.zeros(int(wins["stop"].max()) + 1, dtype=np.int64)
    st, sp = wins["start"].to_numpy(), wins["stop"].to_numpy()
    np.add.at(covered, st[train], 1)
    np.add.at(covered, sp[train], -1)
    in_train = np.cumsum(covered) > 0  # row r is inside some training window
    csum = np.r_[0, np.cumsum(in_train)]
    hits = csum[sp[test]] - csum[st[test]]
    return float(np.mean(hits > 0))


def stratified_window_split(strata: np.ndarray, test_fraction: float, seed: int
                            ) -> tuple[np.ndarray, np.ndarray]:
    """The source's protocol with stratification: windows shuffled and split at random so
    that each stratum (e.g. the command class, shape ``(n_windows,)``) keeps its share in the
    test set (scikit-learn ``StratifiedShuffleSplit``). Returns sorted (train, test) indices."""
    from sklearn.model_selection import StratifiedShuffleSplit

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    strata = np.asarray(strata)
    sss = StratifiedShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed)
    tr, te = next(sss.split(np.zeros(len(strata)), strata))
    return np.sort(tr), np.sort(te)
