"""Tool damage from sensors, and whether it survives the session confound (notebook 06).

The 12 damaged runs (``damage*`` files) were recorded in their own campaign, on the programs of
campaign ``c2``; no campaign holds both damaged and healthy runs. So a file-level classifier
that separates damaged from healthy files may be recognising the session (sensor offsets,
temperature, mounting) instead of the damage. This module measures:

- :func:`confound_table`: files per program × campaign × damaged, and sources present;
- :func:`file_level_features`: per-file mean and standard deviation of each allowed channel
  (session offsets included: the naive features);
- :func:`cutting_ratio_features`: per file and vibration channel, ``log(std while cutting /
  std while not cutting)`` — a ratio within one recording, so a session's gain or offset on a
  channel cancels. Which rows cut is read from the known program (the row's modal command:
  G1/G2/G3 cut, G0 and no-motion lines do not); at deployment the alignment of notebook 05
  gives it;
- :func:`cv_balanced_accuracy` and :func:`permutation_test`: leave-file-out logistic
  regression, and its p-value under label permutations within each program.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from physml import splits as _splits

from . import tokens
from .data import CNCData
from .features import COMMON_SOURCES, file_features, model_input_columns

VIBRATION_CHANNELS: tuple[str, ...] = ("Ax", "Ay", "Az", "Gx", "Gy", "Gz", "RMS")
CUTTING: frozenset[str] = frozenset({"G1", "G2", "G3"})


def file_labels(data: CNCData) -> pd.DataFrame:
    """One row per file: ``file program operation campaign damaged number n_sources``."""
    programs = tokens.recover_programs(data.rows)
    prog = tokens.program_of_file(programs)
    f = data.files.copy()
    f["program"] = f["file"].map(prog)
    has = [c for c in f.columns if c.startswith("has_")]
    f["n_sources"] = f[has].sum(axis=1)
    f["damaged"] = f["damaged"].astype(bool)
    return f[["file", "program", "operation", "campaign", "damaged", "number", "n_sources"]]


def early_late(labels: pd.DataFrame, campaign: str) -> pd.Series:
    """Placebo labels inside one healthy campaign: ``True`` for a program's later half of runs
    (file number above that program's median), ``False`` for the earlier half; files of other
    campaigns get NaN. Same programs and session, no damage: a detector that separates these
    reacts to drift within a session, not to damage."""
    out = pd.Series(np.nan, index=labels.index, dtype=object)
    m = (labels["campaign"] == campaign) & ~labels["damaged"]
    if not m.any():
        raise ValueError(f"no healthy files in campaign {campaign!r}")
    for _, g in labels[m].groupby("program"):
        med = g["number"].median()
        out[g.index] = (g["number"] > med).to_numpy()
    return out


def confound_table(labels: pd.DataFrame) -> pd.DataFrame:
    """Files per (program, operation) × campaign; ``damaged`` files counted separately, and
    the mean number of sources present per campaign as the last row."""
    t = pd.crosstab([labels["program"], labels["operation"]],
                    [labels["campaign"], labels["damaged"].map({True: "damaged",
                                                                False: "healthy"})])
    t.columns = [f"{a} / {b}" for a, b in t.columns]
    t = t.reset_index()
    src = labels.groupby("campaign")["n_sources"].mean()
    row = {"program": "sources present (mean)", "operation": ""}
    for c in t.columns[2:]:
        row[c] = round(float(src[c.split(" / ")[0]]), 1)
    return pd.concat([t, pd.DataFrame([row])], ignore_index=True)


def campaigns_with_both(labels: pd.DataFrame) -> list[str]:
    """Campaigns holding both damaged and healthy files (empty: damage ≡ session)."""
    g = labels.groupby("campaign")["damaged"].agg(["any", "all"])
    return [str(c) for c, r in g.iterrows() if r["any"] and not r["all"]]


def file_level_features(data: CNCData, labels: pd.DataFrame,
                        sources: Sequence[str] = COMMON_SOURCES) -> np.ndarray:
    """``(n_files, 2 c)`` mean and standard deviation of each allowed channel, rows in the
    order of ``labels['file']``."""
    F, _ = file_features(data.rows, model_input_columns(sources))
    return F.loc[labels["file"]].to_numpy(dtype=float)


def cutting_ratio_features(data: CNCData, labels: pd.DataFrame,
                           sources: Sequence[str] = COMMON_SOURCES,
                           channels: Sequence[str] = VIBRATION_CHANNELS
                           ) -> tuple[np.ndarray, list[str]]:
    """Per file and channel: ``log(std of the channel on cutting rows / std on the other
    rows)``. Shape ``(n_files, n_kept)``, rows in ``labels['file']`` order, and the kept
    feature names: a channel constant on one kind of row in some file (a stuck sensor; the
    ratio is undefined) is dropped for all files and left out of the names. Raises
    ``ValueError`` naming a file with fewer than 3 rows of either kind."""
    cols = [c for c in model_input_columns(sources)
            if "." in c and c.split(".", 1)[1] in channels]
    if not cols:
        raise ValueError(f"no channel of {list(channels)} in sources {list(sources)}")
    programs = tokens.recover_programs(data.rows)
    cmd = tokens.command_classes(data.rows, programs)
    cut = np.isin(cmd, list(CUTTING))
    vals = data.rows[cols].to_numpy(dtype=float)
    files = data.rows["file"].to_numpy()
    out = np.empty((len(labels), len(cols)))
    for i, f in enumerate(labels["file"]):
        m = files == f
        a, b = vals[m & cut], vals[m & ~cut]
        if len(a) < 3 or len(b) < 3:
            raise ValueError(f"file {f}: {len(a)} cutting and {len(b)} other rows; need >= 3")
        with np.errstate(divide="ignore", invalid="ignore"):
            out[i] = np.log(a.std(axis=0) / b.std(axis=0))
    keep = np.isfinite(out).all(axis=0)
    if not keep.any():
        raise ValueError("every channel is constant on one kind of row in some file")
    return out[:, keep], [f"{c}:cut/other" for c, k in zip(cols, keep, strict=True) if k]


def _cv_predict(X: np.ndarray, y: np.ndarray, groups: np.ndarray, n_splits: int,
                seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from .baselines import classifier_predict

    out = []
    for sp in _splits.group_kfold(groups, n_splits, seed=seed, what="file"):
        if len(np.unique(y[sp.train])) < 2:
            raise ValueError(f"fold {sp.fold}: training files hold one class only")
        out.append((y[sp.test], classifier_predict("logreg", X[sp.train], y[sp.train],
                                                   X[sp.test], seed)))
    return out


def cv_balanced_accuracy(X: np.ndarray, y: np.ndarray, files: np.ndarray, n_splits: int,
                         seeds: Sequence[int]) -> np.ndarray:
    """Leave-file-out logistic regression (training-fold scaler, balanced classes): balanced
    accuracy per seed (test predictions of all folds pooled). Shape ``(len(seeds),)``."""
    from .baselines import balanced_accuracy_score

    y = np.asarray(y).astype(str)
    out = []
    for s in seeds:
        parts = _cv_predict(X, y, np.asarray(files), n_splits, s)
        yt = np.concatenate([p[0] for p in parts])
        yp = np.concatenate([p[1] for p in parts])
        out.append(balanced_accuracy_score(yt, yp))
    return np.asarray(out)


def permutation_test(X: np.ndarray, y: np.ndarray, files: np.ndarray, strata: np.ndarray,
                     n_splits: int, n_perm: int, seed: int) -> tuple[float, float, np.ndarray]:
    """Observed leave-file-out balanced accuracy (seed ``seed``), its permutation p-value
    ``(1 + #{null >= observed}) / (1 + n_perm)`` with labels shuffled within each stratum
    (e.g. program, so the null keeps the program mix), and the null values ``(n_perm,)``."""
    if n_perm < 1:
        raise ValueError(f"n_perm must be >= 1, got {n_perm}")
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    strata = np.asarray(strata)
    obs = float(cv_balanced_accuracy(X, y, files, n_splits, [seed])[0])
    null = np.empty(n_perm)
    for k in range(n_perm):
        yp = y.copy()
        for s in np.unique(strata):
            idx = np.flatnonzero(strata == s)
            yp[idx] = y[rng.permutation(idx)]
        null[k] = cv_balanced_accuracy(X, yp, files, n_splits, [seed])[0]
    p = (1 + int(np.sum(null >= obs))) / (1 + n_perm)
    return obs, float(p), null
