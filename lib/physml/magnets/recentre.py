"""Per-user (per-session) offset: how far a new recording sits from a model's state templates.

A new session moves every reading by about the same vector — a new Earth-field direction at the
mean orientation and a new hard-iron residual — so a classifier built for one frame is moved to
another by one 3-vector, the *offset* d (µT)::

    reading ≈ template[state] + d.

Every method in the calibration study is re-centred by the same rule: estimate d against its
own templates (physics: the fitted model's 32 templates; no physics: the population's per-state
mean readings), then classify ``reading − d``.

Two estimators:

* `mean_offset` — mean reading minus mean template. Correct only when the readings visit every
  state equally often (a whole unlabelled session does); with unbalanced calibration samples it
  is off by the mean of the missing states' templates.
* `labelled_offset` — median of ``reading − template[true state]`` over labelled readings:
  the offset fitted through the model, unbiased whatever states were labelled and robust to a
  few outliers.
"""

from __future__ import annotations

import numpy as np

from .hand import bits_to_index


def _check(readings_uT, templates_uT):
    r = np.asarray(readings_uT, float)
    t = np.asarray(templates_uT, float)
    if r.ndim != 2 or r.shape[1] != 3 or len(r) == 0:
        raise ValueError(f"readings_uT must be (n, 3) with n >= 1, got shape {r.shape}")
    if t.shape != (32, 3):
        raise ValueError(f"templates_uT must be (32, 3), got shape {t.shape}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(t))):
        raise ValueError("readings_uT / templates_uT contain non-finite values")
    return r, t


def mean_offset(readings_uT, templates_uT):
    """d = mean(readings) − mean(templates), µT (3,): assumes every state equally often."""
    r, t = _check(readings_uT, templates_uT)
    return r.mean(0) - t.mean(0)


def labelled_offset(readings_uT, bits, templates_uT):
    """d = componentwise median of reading − template[state] over labelled readings, µT (3,).

    Args:
        readings_uT: (k, 3) labelled readings, µT.
        bits: (k, 5) their finger states.
        templates_uT: (32, 3) the model's templates, µT.
    """
    r, t = _check(readings_uT, templates_uT)
    idx = bits_to_index(bits)
    if len(idx) != len(r):
        raise ValueError(f"bits must be ({len(r)}, 5), got {np.shape(bits)}")
    return np.median(r - t[idx], axis=0)


def recentred(readings_uT, offset_uT):
    """Readings moved into the model's frame: reading − d (n, 3) µT."""
    return np.asarray(readings_uT, float) - np.asarray(offset_uT, float)
