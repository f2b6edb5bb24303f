"""Windows of sensor rows as model inputs: the scaler, the missing-source mask, the targets.

A neural model sees, for row ``i`` of a recording, the ``window`` rows ``i - window + 1 .. i``
of the same file (trailing, causal; at a file's start the first row is repeated, never a row
of another file). Each row carries:

- the allowed input columns (only from :func:`physml.cnc.features.model_input_columns`),
  optionally standardised within their own file first (``per_file="standardise"``: no label is
  used; offsets that only identify the session are removed), then standardised with a
  :class:`Scaler` fitted on the *training* rows only;
- one mask flag per source (1 = the node is present in this file). A missing source's columns
  are 0 after scaling **and** its flag is 0, so the model is told the reading is absent
  rather than shown a fake zero reading.

The table of scaled rows is built once per fold (``(n_rows, n_columns + n_sources)``), and a
batch gathers its windows through an index ``(n_rows, window)``, so the windows are never
materialised for the whole data set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from physml import splits as _splits

from . import schema, tokens
from .data import CNCData
from .features import check_inputs, file_bounds, model_input_columns, per_file_standardise

#: Command classes predicted by the models (rows whose line moves nothing are not scored).
CLASSES: tuple[str, ...] = tokens.MOTION_CLASSES
#: Target id of a row without a command class (its loss is ignored).
NO_CLASS = -1


def sources_of(columns: Sequence[str]) -> list[str]:
    """The sources (nodes, ``motor``, ``motor_current``) the columns belong to, in order."""
    out: list[str] = []
    for s in schema.SOURCES:
        if any(c in columns for c in schema.source_columns(s)) and s not in out:
            out.append(s)
    return out


def window_index(files: np.ndarray, window: int) -> np.ndarray:
    """``(n, window)`` int64 row indices of each row's trailing window (first row repeated at
    a file's start; never crosses into another file).

    >>> window_index(np.array(["a", "a", "a", "b"]), 2).tolist()
    [[0, 0], [0, 1], [1, 2], [3, 3]]
    """
    if window < 1:
        raise ValueError(f"window must be >= 1 row, got {window}")
    n = len(files)
    out = np.empty((n, window), dtype=np.int64)
    offs = np.arange(-window + 1, 1)
    for a, b in file_bounds(files):
        i = np.arange(a, b)[:, None] + offs[None, :]
        out[a:b] = np.maximum(i, a)
    return out


@dataclass
class Scaler:
    """Per-column mean and standard deviation, fitted on training rows only.

    ``columns``: the input columns; ``mean``/``std``: ``(c,)`` float64. Rows of a file where a
    source is absent (NaN) are left out of the fit; a column with no finite training value
    raises (the model could never learn it).
    """

    columns: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray, columns: Sequence[str]) -> Scaler:
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != len(columns):
            raise ValueError(f"Scaler.fit: values {v.shape} do not match {len(columns)} columns")
        finite = np.isfinite(v).any(axis=0)
        if not finite.all():
            bad = [c for c, ok in zip(columns, finite, strict=True) if not ok]
            raise ValueError(f"Scaler.fit: columns {bad[:5]}{'...' if len(bad) > 5 else ''} "
                             "have no value in the training rows (source absent from every "
                             "training file): drop that source")
        mu = np.nanmean(v, axis=0)
        sd = np.nanstd(v, axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        return cls(tuple(columns), mu, sd)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """``(n, c)`` → standardised float32 (NaN stays NaN)."""
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != len(self.columns):
            raise ValueError(f"Scaler.transform: values {v.shape} do not match "
                             f"{len(self.columns)} columns")
        return ((v - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict:
        return {"columns": list(self.columns), "mean": self.mean.tolist(),
                "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Scaler:
        return cls(tuple(d["columns"]), np.asarray(d["mean"], float), np.asarray(d["std"], float))


@dataclass
class Inputs:
    """Per-row raw inputs of a data set, before the fold's scaler.

    ``values``: ``(n, c)`` float64 of ``columns`` (per-file standardised if asked; NaN where
    the source is absent); ``present``: ``(n, s)`` float32 source mask of ``sources``;
    ``files``: ``(n,)`` file names; ``window_index``: ``(n, window)``.
    """

    columns: list[str]
    sources: list[str]
    values: np.ndarray
    present: np.ndarray
    files: np.ndarray
    window_index: np.ndarray
    per_file: str

    @property
    def n_features(self) -> int:
        """Inputs per time step: columns plus one mask flag per source."""
        return len(self.columns) + len(self.sources)

    def table(self, scaler: Scaler) -> torch.Tensor:
        """``(n, c + s)`` float32 tensor: scaled values (absent → 0) and the source mask."""
        x = scaler.transform(self.values)
        x = np.where(np.isfinite(x), x, 0.0).astype(np.float32)
        return torch.from_numpy(np.concatenate([x, self.present], axis=1))

    def windows(self, scaler: Scaler, rows: np.ndarray) -> torch.Tensor:
        """``(len(rows), window, c + s)`` float32 windows of ``rows`` (e.g. a timing batch)."""
        return self.table(scaler)[torch.from_numpy(self.window_index[np.asarray(rows)])]


def build_inputs(data: CNCData, columns: Sequence[str], window: int,
                 per_file: str = "standardise") -> Inputs:
    """Raw per-row inputs of ``columns`` (they must pass the gate) with the source mask.

    A source listed in ``columns`` but absent from a file is NaN in ``values`` and 0 in
    ``present`` for that file's rows (``data``'s own missing-node mask is used, never the
    values)."""
    check_inputs(columns)
    if per_file not in ("none", "standardise"):
        raise ValueError(f"per_file must be 'none' or 'standardise', got {per_file!r}")
    rows = data.rows
    cols = list(columns)
    srcs = sources_of(cols)
    mask = data.mask()
    present = mask.loc[rows["file"], srcs].to_numpy(dtype=np.float32)
    values = np.array(rows[cols].to_numpy(dtype=np.float64), copy=True)
    col_src = np.array([srcs.index(schema.source_of(c)) for c in cols])
    absent = present[:, col_src] == 0
    values[absent] = np.nan
    files = rows["file"].to_numpy()
    if per_file == "standardise":
        values = per_file_standardise(values, files)
    return Inputs(cols, srcs, values, present, files, window_index(files, window), per_file)


def default_columns(sources: Sequence[str], drop_modalities: Sequence[str] = ()) -> list[str]:
    """The gate: :func:`physml.cnc.features.model_input_columns` (kept as the one entry)."""
    return model_input_columns(sources, drop_modalities)


@dataclass
class Targets:
    """Per-row targets: command class id (``NO_CLASS`` where the line moves nothing), the
    G-code text, and the program of each row (for leave-program-out)."""

    command: np.ndarray
    line: np.ndarray
    program: np.ndarray
    programs: list


def build_targets(data: CNCData, programs: list | None = None) -> Targets:
    """Targets of every row (modal command class filled forward through the program)."""
    programs = tokens.recover_programs(data.rows) if programs is None else programs
    cls = tokens.command_classes(data.rows, programs)
    cid = np.array([CLASSES.index(c) if c in CLASSES else NO_CLASS for c in cls], np.int64)
    prog = data.rows["file"].map(tokens.program_of_file(programs)).to_numpy()
    return Targets(cid, data.rows["gcode_string"].to_numpy(), prog, programs)


def encode_lines(vocab: tokens.Vocabulary, lines: Sequence[str], max_len: int) -> np.ndarray:
    """``(n, max_len)`` int64 token ids ``<bos> ... <eos> <pad>...`` (unique lines encoded once)."""
    # pandas.factorize hashes the strings (np.unique sorted 63k object strings: ~3 s a call)
    inv, uniq = pd.factorize(pd.Series(np.asarray(lines, dtype=object)).astype(str))
    enc = np.stack([vocab.encode(s, max_len) for s in uniq]) if len(uniq) else np.zeros(
        (0, max_len), np.int64)
    return enc[inv]


def inner_validation(files: np.ndarray, rows: np.ndarray, n_inner: int, seed: int,
                     how: str = "file") -> tuple[np.ndarray, np.ndarray]:
    """Split training ``rows`` (indices) into fit / validation rows.

    ``how="file"`` (every honest model): whole files, :func:`physml.splits.group_kfold`'s first
    fold (about ``1/n_inner`` of the files). ``how="random"``: random rows, only to reproduce
    the source's protocol in notebook 02. The model is chosen on these validation rows, never
    on the test fold."""
    rows = np.asarray(rows)
    if how == "random":
        perm = np.random.default_rng(seed).permutation(rows.size)
        k = max(1, rows.size // n_inner)
        return np.sort(rows[perm[k:]]), np.sort(rows[perm[:k]])
    if how != "file":
        raise ValueError(f"inner validation must be 'file' or 'random', got {how!r}")
    g = np.asarray(files)[rows]
    n_files = len(set(g.tolist()))
    if n_files < 2:
        raise ValueError("inner validation needs at least 2 training files")
    sp = _splits.group_kfold(g, min(n_inner, n_files), seed=seed, what="file")[0]
    return rows[sp.train], rows[sp.test]


@dataclass
class Dataset:
    """Inputs and targets of one data set for one choice of input columns."""

    data: CNCData
    inputs: Inputs
    targets: Targets

    @property
    def files(self) -> np.ndarray:
        return self.inputs.files


def prepare(data: CNCData, columns: Sequence[str], window: int, per_file: str = "standardise",
            programs: list | None = None) -> Dataset:
    """:func:`build_inputs` and :func:`build_targets` of ``data`` (see both)."""
    return Dataset(data, build_inputs(data, columns, window, per_file),
                   build_targets(data, programs))


def file_splits(ds: Dataset, n_splits: int, seeds: Sequence[int]) -> list[tuple[int, object]]:
    """Leave-file-out grouped K-fold per seed, ``[(seed, Split), ...]``: the same call on the
    same rows as :func:`physml.cnc.baselines.file_splits`, so notebook 03's folds."""
    return [(int(s), sp) for s in seeds
            for sp in _splits.group_kfold(ds.files, n_splits, seed=s, what="file")]


def program_splits(ds: Dataset) -> list[tuple[int, object]]:
    """Leave-one-program-out, ``[(0, Split), ...]``
    (as :func:`physml.cnc.baselines.program_splits`)."""
    return [(0, sp) for sp in _splits.leave_one_group_out(ds.targets.program, what="program")]
