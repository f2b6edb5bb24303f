"""The one gate to model inputs, per-file standardisation, and trailing-window statistics.

Every model in :mod:`physml.cnc` gets its features from :func:`model_input_columns` (the
allowed columns) and :func:`window_features`. Controller fields and targets can never pass:
:func:`model_input_columns` asserts that none of its columns is forbidden, and every feature
builder (here, in :mod:`~physml.cnc.sequences`, :mod:`~physml.cnc.motion` and
:mod:`~physml.cnc.leaky`) passes its columns through :func:`check_inputs`, which raises on a
column that :func:`physml.cnc.schema.is_forbidden_input` flags or that is no sensor channel.
The per-file helpers that sequences, motion and the baselines share live here too:
:func:`file_bounds` (the row span of each file) and :func:`per_file_standardise` (each channel
standardised within its own file, no label used). Row position in the file is not a feature;
baselines that use it (the clock rule) are named as such in :mod:`physml.cnc.baselines`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from . import schema

#: Default sources: the ones present in every shipped file (no imputation needed).
COMMON_SOURCES: tuple[str, ...] = schema.ALWAYS_PRESENT_NODES + ("motor",)
STATS: tuple[str, ...] = ("mean", "std", "min", "max")


def model_input_columns(sources: Sequence[str] = COMMON_SOURCES,
                        drop_modalities: Sequence[str] = ()) -> list[str]:
    """Allowed input columns of ``sources`` minus the channels of ``drop_modalities``.

    ``sources``: names from :data:`schema.SOURCES`; ``drop_modalities``: keys of
    :data:`schema.MODALITIES` (and ``"motor"`` to drop the motor signals). Raises
    ``ValueError`` on an unknown name, and ``AssertionError`` if a forbidden column would pass.
    """
    unknown = [s for s in sources if s not in schema.SOURCES]
    if unknown:
        raise ValueError(f"unknown sources {unknown}; known: {', '.join(schema.SOURCES)}")
    bad = [m for m in drop_modalities if m not in schema.MODALITIES and m != "motor"]
    if bad:
        raise ValueError(f"unknown modalities {bad}; known: {', '.join(schema.MODALITIES)}")
    dropped = {c for m in drop_modalities if m != "motor" for c in schema.MODALITIES[m]}
    cols = []
    for s in sources:
        if s in ("motor", "motor_current") and "motor" in drop_modalities:
            continue
        for c in schema.source_columns(s):
            if "." in c and c.split(".", 1)[1] in dropped:
                continue
            cols.append(c)
    leaked = [c for c in cols if schema.is_forbidden_input(c) or c not in schema.INPUT_COLUMNS]
    assert not leaked, f"forbidden model inputs {leaked}"
    if not cols:
        raise ValueError("no input columns left")
    return cols


def check_inputs(columns: Sequence[str]) -> None:
    """Raise ``ValueError`` if any column is not an allowed model input (the gate)."""
    bad = [c for c in columns if schema.is_forbidden_input(c) or c not in schema.INPUT_COLUMNS]
    if bad:
        raise ValueError(f"not allowed model inputs: {bad}")


def file_bounds(files: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of each file's contiguous block; raises if a file is split."""
    files = np.asarray(files)
    if files.size == 0:
        return []
    change = np.flatnonzero(files[1:] != files[:-1]) + 1
    starts, ends = np.r_[0, change], np.r_[change, len(files)]
    if len(set(files[starts].tolist())) != len(starts):
        raise ValueError("rows must be grouped by file (each file contiguous)")
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def per_file_standardise(values: np.ndarray, files: np.ndarray) -> np.ndarray:
    """Standardise each column within each file (subtract the file's mean, divide by its
    standard deviation; a constant column becomes 0). NaN (absent source) stays NaN.
    ``values``: ``(n, c)``; ``files``: ``(n,)``, each file contiguous. Returns float64."""
    out = np.array(values, dtype=np.float64, copy=True)
    for a, b in file_bounds(files):
        v = out[a:b]
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a source absent from the file
            mu = np.nanmean(v, axis=0) if np.isfinite(v).any() else np.zeros(v.shape[1])
            sd = np.nanstd(v, axis=0) if np.isfinite(v).any() else np.ones(v.shape[1])
        sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
        out[a:b] = (v - mu) / sd
    return out


def window_features(rows: pd.DataFrame, columns: Sequence[str], window: int,
                    stats: Sequence[str] = STATS, per_file: str = "none"
                    ) -> tuple[np.ndarray, list[str]]:
    """Statistics of each column over the trailing ``window`` rows of the same file.

    ``per_file="standardise"`` first standardises each channel within its own file (subtract
    the file's mean, divide by its standard deviation; no label is used): offsets that only
    identify the session (temperature, pressure, magnetometer bias) are removed, so a model
    cannot recognise the recording instead of the motion. ``"none"`` keeps raw values.

    Row ``i`` sees rows ``max(start, i - window + 1) .. i`` of its own file (causal; the first
    rows of a file use the rows available). ``rows`` must be ordered by file then row.
    Returns ``X`` of shape ``(n_rows, len(columns) * len(stats))`` float32 and the feature
    names ``"<column>:<stat>"``. Columns are checked by :func:`check_inputs`: a forbidden
    column raises ``ValueError``.
    """
    check_inputs(columns)
    if window < 1:
        raise ValueError(f"window must be >= 1 row, got {window}")
    unknown = [s for s in stats if s not in STATS]
    if unknown:
        raise ValueError(f"unknown statistics {unknown}; known: {STATS}")
    files = rows["file"].to_numpy()
    bounds = file_bounds(files)
    if per_file not in ("none", "standardise"):
        raise ValueError(f"per_file must be 'none' or 'standardise', got {per_file!r}")
    values = rows[list(columns)].to_numpy(dtype=np.float64)
    if per_file == "standardise":
        values = per_file_standardise(values, files)
    out = np.empty((len(rows), len(columns), len(stats)), dtype=np.float32)
    for a, b in bounds:
        v = values[a:b]
        pad = np.concatenate([np.full((window - 1, v.shape[1]), np.nan), v])
        w = sliding_window_view(pad, window, axis=0)  # (n, cols, window)
        with np.errstate(invalid="ignore"), _quiet():
            for k, s in enumerate(stats):
                if s == "mean":
                    out[a:b, :, k] = np.nanmean(w, axis=2)
                elif s == "std":
                    out[a:b, :, k] = np.nanstd(w, axis=2)
                elif s == "min":
                    out[a:b, :, k] = np.nanmin(w, axis=2)
                else:
                    out[a:b, :, k] = np.nanmax(w, axis=2)
    names = [f"{c}:{s}" for c in columns for s in stats]
    return out.reshape(len(rows), -1), names


class _quiet:
    """Silence numpy's all-NaN-slice warnings (absent sources stay NaN on purpose)."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


def file_features(rows: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """Per file: mean and standard deviation of each allowed column. Shape ``(n_files, 2c)``.
    Columns are checked by :func:`check_inputs`: a forbidden column raises ``ValueError``."""
    check_inputs(columns)
    g = rows.groupby("file", sort=False)[list(columns)]
    f = pd.concat([g.mean().add_suffix(":mean"), g.std().add_suffix(":std")], axis=1)
    return f, list(f.columns)
