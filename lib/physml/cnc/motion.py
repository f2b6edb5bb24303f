"""Motion features of the sensor and drive signals for the command class (task a).

The physics behind each feature, and what it is meant to separate:

- a rapid (G0) runs at the machine's rapid rate with the tool in the air, a feed move (G1)
  runs at the programmed feed, usually cutting: how much a channel varies around its local
  level (:func:`centred_stats`, ``std``) and how fast it changes (``activity``, mean squared
  first difference) over windows of several rows;
- an arc (G2/G3) needs two planar axes driven in quadrature; the *sense* of rotation of a
  pair of signals ``(a, b)``, the signed area they sweep about their local centroid per sample,
  ``sum (a - ā) db - (b - b̄) da`` over a window divided by the window's ``var a + var b``
  (:func:`rotation_sense`), is ``+ sin Δφ`` for a counter-clockwise circle advancing ``Δφ``
  radians per sample and ``- sin Δφ`` for a clockwise one. A signal linear in the tool position
  (a drive's position signal; a magnetometer near a moving steel mass) keeps the sense up to the
  sign of its determinant, which is fixed by the mounting, so a classifier can learn it.

Windows are **centred** on the labelled row (``h`` rows before and after it, cut at the file's
ends, never crossing into another file): a recording's own unlabelled signal is available when
it is classified offline; no label and no other recording is used. Channels are standardised
within their own file first (:func:`physml.cnc.features.per_file_standardise`), so offsets that
only identify the session are removed.

Inputs pass the one gate: every column must be an allowed model input
(:func:`physml.cnc.features.check_inputs`); controller fields raise ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import schema
from .features import check_inputs, file_bounds, per_file_standardise

#: Statistics of :func:`centred_stats`.
CENTRED_STATS: tuple[str, ...] = ("mean", "std", "activity")
#: Channel pairs whose rotation sense is computed by default: the x/y drive signals and, per
#: node, the planar magnetometer, accelerometer and gyro axes.
DEFAULT_PAIR_CHANNELS: tuple[tuple[str, str], ...] = (("Mx", "My"), ("Ax", "Ay"), ("Gx", "Gy"))


def _check_half(half: int) -> None:
    if int(half) != half or half < 0:
        raise ValueError(f"half window must be an integer >= 0 rows, got {half!r}")


def _window_sums(v: np.ndarray, half: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums of ``v`` ``(m, c)`` over the centred window ``i-half .. i+half`` cut at the ends,
    and the number of rows in each window ``(m, 1)``."""
    m = v.shape[0]
    cs = np.concatenate([np.zeros((1,) + v.shape[1:]), np.cumsum(v, axis=0)])
    i = np.arange(m)
    lo, hi = np.maximum(i - half, 0), np.minimum(i + half + 1, m)
    return cs[hi] - cs[lo], (hi - lo).astype(np.float64)[:, None]


def centred_stats(values: np.ndarray, files: np.ndarray, half: int,
                  stats: Sequence[str] = CENTRED_STATS) -> np.ndarray:
    """Statistics of each column over the centred window of ``2 half + 1`` rows of its file.

    ``values``: ``(n, c)`` (each file's rows contiguous, in time order); ``files``: ``(n,)``.
    ``mean``: window mean; ``std``: population standard deviation in the window; ``activity``:
    mean of the squared first difference ``(v[t] - v[t-1])**2`` over the window's consecutive
    pairs (0 for a one-row window). Returns ``(n, c, len(stats))`` float64.
    """
    _check_half(half)
    unknown = [s for s in stats if s not in CENTRED_STATS]
    if unknown:
        raise ValueError(f"unknown statistics {unknown}; known: {CENTRED_STATS}")
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or len(v) != len(files):
        raise ValueError(f"values {v.shape} must be (n, c) with n = len(files) = {len(files)}")
    out = np.empty(v.shape + (len(stats),))
    for a, b in file_bounds(np.asarray(files)):
        w = v[a:b]
        s1, cnt = _window_sums(w, half)
        mean = s1 / cnt
        for k, s in enumerate(stats):
            if s == "mean":
                out[a:b, :, k] = mean
            elif s == "std":
                s2, _ = _window_sums(w * w, half)
                out[a:b, :, k] = np.sqrt(np.maximum(s2 / cnt - mean * mean, 0.0))
            else:
                d2 = np.zeros_like(w)
                d2[1:] = np.diff(w, axis=0) ** 2  # pair (t-1, t) stored at t
                m = len(w)
                i = np.arange(m)
                lo, hi = np.maximum(i - half, 0), np.minimum(i + half + 1, m)
                cs = np.concatenate([np.zeros((1, w.shape[1])), np.cumsum(d2, axis=0)])
                pairs = (hi - lo - 1).astype(np.float64)[:, None]  # pairs inside the window
                tot = cs[hi] - cs[lo + 1]
                out[a:b, :, k] = np.where(pairs > 0, tot / np.maximum(pairs, 1), 0.0)
    return out


def rotation_sense(a: np.ndarray, b: np.ndarray, files: np.ndarray, half: int,
                   eps: float = 1e-12) -> np.ndarray:
    """Signed rotation per sample of the planar signal ``(a, b)`` over centred windows.

    ``sum_t (a_t - ā) db_t - (b_t - b̄) da_t`` over the window's rows, divided by the window's
    row count times ``var a + var b`` (ā, b̄, var: the window's own mean and variance;
    ``da``, ``db``: central differences within the file, one-sided at its ends). Positive is
    counter-clockwise (a→b), e.g. G3 when ``(a, b)`` follows the tool's ``(x, y)``; a circle
    advancing ``Δφ`` rad per sample over whole periods gives exactly ``± sin Δφ``.
    ``a``, ``b``, ``files``: ``(n,)``; returns ``(n,)`` float64 (0 where the window does not
    move, ``var < eps``).
    """
    _check_half(half)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) != len(files):
        raise ValueError(f"a {a.shape} and b {b.shape} must both be (n,) with n = {len(files)}")
    out = np.zeros(len(a))
    for lo, hi in file_bounds(np.asarray(files)):
        x, y = a[lo:hi], b[lo:hi]
        if len(x) < 2:
            continue
        dx, dy = np.gradient(x), np.gradient(y)
        cols = np.stack([x, y, dx, dy, x * dy - y * dx, x * x + y * y], axis=1)
        s, cnt = _window_sums(cols, half)
        mx, my = s[:, 0] / cnt[:, 0], s[:, 1] / cnt[:, 0]
        # sum (x - mx) dy - (y - my) dx = sum (x dy - y dx) - mx sum dy + my sum dx
        area = s[:, 4] - mx * s[:, 3] + my * s[:, 2]
        var = s[:, 5] / cnt[:, 0] - mx * mx - my * my
        out[lo:hi] = np.where(var > eps, area / (cnt[:, 0] * np.maximum(var, eps)), 0.0)
    return out


def default_pairs(columns: Sequence[str]) -> list[tuple[str, str]]:
    """Planar pairs among ``columns``: ``(x_motor, y_motor)`` and, per node, the pairs of
    :data:`DEFAULT_PAIR_CHANNELS` whose both columns are present."""
    cols = set(columns)
    out = [("x_motor", "y_motor")] if {"x_motor", "y_motor"} <= cols else []
    for node in schema.NODES:
        for ca, cb in DEFAULT_PAIR_CHANNELS:
            p = (f"{node}.{ca}", f"{node}.{cb}")
            if set(p) <= cols:
                out.append(p)
    return out


def _check_whole_files(v: np.ndarray, files: np.ndarray, cols: Sequence[str]) -> None:
    """A channel must be present in every row of a file or absent from all of it (a missing
    node is a whole-file mask): a gap inside a file would spread NaN through the running sums
    of every later window of that file. ValueError naming the file, column and first row."""
    fin = np.isfinite(v)
    for a, b in file_bounds(files):
        f = fin[a:b]
        part = f.any(axis=0) & ~f.all(axis=0)
        if part.any():
            j = int(np.flatnonzero(part)[0])
            row = int(np.flatnonzero(~f[:, j])[0])
            raise ValueError(f"motion features: file {files[a]!r}, column {cols[j]!r} is missing "
                             f"(NaN) at row {row} of the file but present elsewhere in it; a "
                             "channel must be present throughout a file or absent from it")


def motion_features(rows: pd.DataFrame, columns: Sequence[str],
                    halves: Sequence[int] = (2, 8, 24),
                    pairs: Sequence[tuple[str, str]] | None = None,
                    stats: Sequence[str] = CENTRED_STATS, per_file: str = "standardise"
                    ) -> tuple[np.ndarray, list[str]]:
    """Per row: :func:`centred_stats` of every column and :func:`rotation_sense` of every
    pair, for each half window in ``halves`` (rows; e.g. 8 rows ≈ 2 s at ~4 rows/s).

    ``rows``: frame with ``file`` and the columns, each file contiguous in time order (as
    :func:`physml.cnc.data.load` gives). ``pairs``: ``None`` uses :func:`default_pairs`.
    ``per_file``: ``"standardise"`` (each channel within its own file) or ``"none"``.
    Returns ``X`` ``(n_rows, n_features)`` float32 (NaN where a source is absent) and names
    ``"<column>:<stat>@<half>"`` and ``"rot(<a>,<b>)@<half>"``. Raises ``ValueError`` if a
    column or pair member is not an allowed model input, or if a column is missing in only
    some rows of a file (named with the file and row).
    """
    cols = list(columns)
    pairs = default_pairs(cols) if pairs is None else [tuple(p) for p in pairs]
    check_inputs(cols + [c for p in pairs for c in p])
    missing = [c for p in pairs for c in p if c not in cols]
    if missing:
        raise ValueError(f"pair members {missing} are not among the columns")
    if per_file not in ("none", "standardise"):
        raise ValueError(f"per_file must be 'none' or 'standardise', got {per_file!r}")
    if not halves:
        raise ValueError("halves must name at least one half window")
    files = rows["file"].to_numpy()
    v = rows[cols].to_numpy(dtype=np.float64)
    _check_whole_files(v, files, cols)
    if per_file == "standardise":
        v = per_file_standardise(v, files)
    pos = {c: j for j, c in enumerate(cols)}
    blocks, names = [], []
    for h in halves:
        st = centred_stats(v, files, h, stats)
        blocks.append(st.reshape(len(v), -1))
        names += [f"{c}:{s}@{h}" for c in cols for s in stats]
        for ca, cb in pairs:
            with np.errstate(invalid="ignore"):
                r = rotation_sense(v[:, pos[ca]], v[:, pos[cb]], files, h)
            r[~(np.isfinite(v[:, pos[ca]]) & np.isfinite(v[:, pos[cb]]))] = np.nan
            blocks.append(r[:, None])
            names.append(f"rot({ca},{cb})@{h}")
    return np.concatenate(blocks, axis=1).astype(np.float32), names
