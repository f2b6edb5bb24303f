"""Vacuum labels from the Hessian spectrum at a critical point, with failures kept and named.

Label codes (integers, index into :data:`LABELS`):
  stable_minimum — no eigenvalue below −thr (and fewer than half within ±thr);
  saddle         — eigenvalues of both signs beyond ±thr;
  maximum        — no eigenvalue above +thr;
  flat           — at least half the eigenvalues within ±thr (flat/marginal);
  runaway        — the solver left the box |φ|₂ <= phi_bound. (With γ >= 0.1 the quartic term
                   bounds V below, so "V still decreasing" cannot happen at a finite point: a
                   solver that stops while still descending is labelled failed/max_iterations.)
  failed         — no critical point: the reason is kept separately (:data:`FAIL_REASONS`).
The threshold is either fixed (thr = 1e-3, the source's choice) or scale-aware
(thr = 1e-3 · max_i |λ_i|, relative to the largest curvature of that Hessian).
"""

from __future__ import annotations

import numpy as np

LABELS = ("stable_minimum", "saddle", "maximum", "flat", "runaway", "failed")
STABLE, SADDLE, MAXIMUM, FLAT, RUNAWAY, FAILED = range(6)
FAIL_REASONS = ("none", "max_iterations", "nonfinite", "not_converged")
OK, MAX_ITER, NONFINITE, NOT_CONVERGED = range(4)
DEFAULT_THRESHOLD = 1e-3
DISPLACED = 1e-3  # |φ_i*| above which a modulus counts as displaced from its |φ_i|_δ kink at 0


def count_displaced(phi, mask) -> np.ndarray:
    """Moduli displaced from their kink, ``(B,)``: #{i real : |φ_i*| > DISPLACED = 1e-3} for
    vacua ``phi`` ``(B, N)`` with ``mask`` ``(B, N)`` (1 = real modulus, 0 = padding)."""
    return ((np.abs(np.asarray(phi)) > DISPLACED) & (np.asarray(mask) > 0)).sum(1)


def classify_eigenvalues(eigvals, threshold: float = DEFAULT_THRESHOLD,
                         scale_aware: bool = False) -> np.ndarray:
    """Label codes ``(B,)`` from Hessian eigenvalues ``(B, N)``; NaN entries are padding.

    ``threshold`` > 0 is absolute (fixed) or, with ``scale_aware=True``, relative to
    max_i |λ_i| of each row. Rows with no finite eigenvalue raise ValueError.
    """
    ev = np.atleast_2d(np.asarray(eigvals, dtype=float))
    if threshold <= 0:
        raise ValueError(f"threshold={threshold} must be > 0")
    valid = np.isfinite(ev)
    n = valid.sum(axis=1)
    if np.any(n == 0):
        raise ValueError(f"rows {np.flatnonzero(n == 0)[:5].tolist()} have no finite eigenvalue")
    absev = np.where(valid, np.abs(ev), 0.0)
    thr = threshold * absev.max(axis=1) if scale_aware else np.full(len(ev), threshold)
    t = thr[:, None]
    evz = np.where(valid, ev, 0.0)
    n_small = (valid & (absev <= t)).sum(axis=1)
    n_pos = (valid & (evz > t)).sum(axis=1)
    n_neg = (valid & (evz < -t)).sum(axis=1)
    out = np.full(len(ev), SADDLE, dtype=np.int64)
    out[(n_neg == 0) & (n_pos > 0)] = STABLE
    out[(n_pos == 0) & (n_neg > 0)] = MAXIMUM
    out[2 * n_small >= n] = FLAT
    return out


def label_points(eigvals, converged, reason, phi_norm, phi_bound: float = 100.0,
                 threshold: float = DEFAULT_THRESHOLD, scale_aware: bool = False) -> np.ndarray:
    """Final label codes ``(B,)``: runaway and failure override the spectrum label.

    eigvals ``(B, N)`` (NaN = padding or not computed), converged ``(B,)`` bool, reason ``(B,)``
    codes from :data:`FAIL_REASONS`, phi_norm ``(B,)`` = |φ|₂ at exit.
    """
    converged = np.asarray(converged, bool)
    reason = np.asarray(reason, dtype=np.int64)
    phi_norm = np.asarray(phi_norm, float)
    out = np.full(len(converged), FAILED, dtype=np.int64)
    runaway = np.isfinite(phi_norm) & (phi_norm > phi_bound)
    ok = converged & ~runaway
    if ok.any():
        out[ok] = classify_eigenvalues(np.asarray(eigvals)[ok], threshold, scale_aware)
    out[runaway] = RUNAWAY
    bad = ~ok & ~runaway & (reason == OK)
    if bad.any():
        raise ValueError(f"{bad.sum()} points neither converged nor given a failure reason")
    return out


def label_names(codes) -> np.ndarray:
    """Map label codes ``(B,)`` to names."""
    return np.asarray(LABELS, dtype=object)[np.asarray(codes, dtype=np.int64)]


def reason_names(codes) -> np.ndarray:
    """Map failure-reason codes ``(B,)`` to names."""
    return np.asarray(FAIL_REASONS, dtype=object)[np.asarray(codes, dtype=np.int64)]


def threshold_disagreement(eigvals, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Contingency table ``(6, 6)`` of fixed-threshold labels (rows) vs scale-aware (columns)."""
    a = classify_eigenvalues(eigvals, threshold, scale_aware=False)
    b = classify_eigenvalues(eigvals, threshold, scale_aware=True)
    table = np.zeros((len(LABELS), len(LABELS)), dtype=np.int64)
    np.add.at(table, (a, b), 1)
    return table
