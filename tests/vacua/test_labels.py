"""Labels from hand-built Hessians (eigenvalues by numpy, after a random rotation)."""

import numpy as np
import pytest

from physml.vacua.labels import (
    FAILED,
    FLAT,
    MAX_ITER,
    MAXIMUM,
    NONFINITE,
    OK,
    RUNAWAY,
    SADDLE,
    STABLE,
    classify_eigenvalues,
    label_points,
    threshold_disagreement,
)


def _eig_of_rotated(diag, seed=0):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(len(diag), len(diag))))
    H = Q @ np.diag(diag) @ Q.T
    return np.linalg.eigvalsh(0.5 * (H + H.T))


CASES = [
    ([1.0, 2.0, 3.0], STABLE, STABLE),
    ([-1.0, 2.0, 3.0], SADDLE, SADDLE),
    ([-1.0, -2.0], MAXIMUM, MAXIMUM),
    ([1e-4, -1e-5, 2.0], FLAT, FLAT),        # 2 of 3 within 1e-3: flat
    ([1e-4, 1.0, 2.0, 3.0], STABLE, STABLE),  # 1 of 4 small: still a minimum
    ([1e-4, 1e-4, 1.0, 2.0], FLAT, FLAT),    # exactly half small: flat
    ([2e4, 5.0, 5.0], STABLE, FLAT),         # scale-aware thr = 20 > 5: flat
    ([2e4, 2e4, -5.0], SADDLE, STABLE),      # scale-aware: the −5 direction is "flat"-small
]


@pytest.mark.parametrize("diag,fixed,scaled", CASES)
def test_labels_from_hand_built_hessians(diag, fixed, scaled):
    ev = _eig_of_rotated(np.array(diag))[None, :]
    assert classify_eigenvalues(ev, 1e-3)[0] == fixed
    assert classify_eigenvalues(ev, 1e-3, scale_aware=True)[0] == scaled


def test_nan_padding_is_ignored():
    ev = np.array([[1.0, 2.0, np.nan, np.nan], [-1.0, 2.0, np.nan, np.nan]])
    assert classify_eigenvalues(ev).tolist() == [STABLE, SADDLE]


def test_failures_and_runaways_override_and_are_kept():
    ev = np.array([[1.0, 2.0], [1.0, 2.0], [np.nan, np.nan], [1.0, 1.0]])
    lab = label_points(ev, converged=[True, False, False, True],
                       reason=[OK, MAX_ITER, NONFINITE, OK], phi_norm=[1.0, 1.0, np.nan, 500.0])
    assert lab.tolist() == [STABLE, FAILED, FAILED, RUNAWAY]


def test_unconverged_point_without_a_reason_raises():
    with pytest.raises(ValueError, match="failure reason"):
        label_points(np.ones((1, 2)), [False], [OK], [1.0])


def test_threshold_disagreement_table_counts_every_point():
    ev = np.stack([_eig_of_rotated(np.array(d), k) for k, (d, _, _) in enumerate(CASES[:2])]
                  + [np.array([2e4, 5.0, 5.0]), np.array([2e4, 2e4, -5.0])])
    table = threshold_disagreement(ev)
    assert table.sum() == 4
    assert table[STABLE, FLAT] == 1 and table[SADDLE, STABLE] == 1 and table[SADDLE, SADDLE] == 1
