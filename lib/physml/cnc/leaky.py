"""The source's leaky evaluation, reproduced on purpose, then dismantled one leak at a time.

**Everything in this module leaks by design** and exists only for notebook 02. It is the one
place where controller fields become model inputs (:func:`leaky_inputs`, named as such);
:func:`physml.cnc.sequences.build_inputs` refuses them, and a test checks both.

The ladder (:func:`run_ladder`), each step removing one leak from the previous one:

1. ``source_protocol``: windows of ``window`` rows every ``stride`` rows, split at random
   (stratified by command class), validation rows at random, the scaler fitted on the test
   windows, controller fields (:data:`LEAKY_FIELDS`) among the inputs, teacher-forced token
   accuracy counting ``<eos>``;
2. ``file_split``: leave-file-out folds instead (:mod:`physml.splits`), validation files;
3. ``no_eos``: the same models, ``<eos>`` no longer counted;
4. ``free_running``: the same models, greedy decoding feeding back their own tokens;
5. ``train_scaler``: the scaler fitted on the training files (retrained);
6. ``sensors_only``: no controller field among the inputs (retrained): the honest figure.

Windows are not standardised per file here (the source did not).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from physml import splits as _splits
from physml import train as _train

from . import encoder_decoder as ed
from . import folds, leakage, schema
from .data import CNCData
from .features import check_inputs
from .sequences import Dataset, Inputs, build_inputs, build_targets, window_index

#: Controller fields the source fed to its model (all forbidden as honest inputs).
LEAKY_FIELDS: tuple[str, ...] = schema.KEPT_CONTROLLER_FIELDS

STEPS: tuple[str, ...] = ("source_protocol", "file_split", "no_eos", "free_running",
                          "train_scaler", "sensors_only")
#: What each step changes, and the token metric it reports.
STEP_TEXT: dict[str, str] = {
    "source_protocol": "source protocol: random stratified window split, scaler fitted on "
                       "the test windows, controller fields as inputs, teacher-forced incl. EOS",
    "file_split": "random windows → leave-file-out folds",
    "no_eos": "EOS no longer counted",
    "free_running": "teacher-forced → free-running (greedy) decoding",
    "train_scaler": "scaler fitted on the training files",
    "sensors_only": "controller fields removed from the inputs (honest)",
}
STEP_METRIC: dict[str, str] = {
    "source_protocol": "token_accuracy_teacher_forced_eos",
    "file_split": "token_accuracy_teacher_forced_eos",
    "no_eos": "token_accuracy_teacher_forced",
    "free_running": "token_accuracy_free_running",
    "train_scaler": "token_accuracy_free_running",
    "sensors_only": "token_accuracy_free_running",
}


def leaky_inputs(data: CNCData, sensor_columns: Sequence[str], window: int,
                 fields: Sequence[str] = LEAKY_FIELDS) -> Inputs:
    """LEAKY: the allowed ``sensor_columns`` *plus* controller ``fields`` as model inputs.

    Only for reproducing the source in notebook 02. ``fields`` must all be controller fields
    (a ``ValueError`` otherwise: this path is not a way to add honest inputs)."""
    check_inputs(sensor_columns)
    not_leaky = [f for f in fields if not schema.is_forbidden_input(f)]
    missing = [f for f in fields if f not in data.rows.columns]
    if not_leaky or missing:
        raise ValueError(f"leaky_inputs: fields {not_leaky} are not controller fields, "
                         f"{missing} are not in the data")
    honest = build_inputs(data, sensor_columns, window, per_file="none")
    ctrl = data.rows[list(fields)].to_numpy(dtype=np.float64)
    return Inputs(list(sensor_columns) + list(fields), honest.sources,
                  np.concatenate([honest.values, ctrl], axis=1), honest.present,
                  honest.files, honest.window_index, "none")


def window_rows(data: CNCData, window: int, stride: int) -> tuple[np.ndarray, pd.DataFrame]:
    """The source's windows (:func:`physml.cnc.leakage.windows`): each window is the sample
    of its last row. Returns those rows ``(n_windows,)`` and the window table."""
    wins = leakage.windows(data.rows[["file", "row"]], window, stride)
    return wins["stop"].to_numpy() - 1, wins


def run_ladder(data: CNCData, sensor_columns: Sequence[str], window: int, stride: int,
               cfg: ed.EDConfig, train_cfg: _train.TrainConfig, out_root: str | Path, *,
               random_seeds: Sequence[int], seeds: Sequence[int], n_splits: int,
               test_fraction: float = 0.2, n_inner: int = 5, val_rows_max: int = 2000,
               train_stride: int = 1, test_stride: int = 1, client=None
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every step of the ladder (module docstring): the source protocol once per
    ``random_seeds`` entry (random split and training seed), the other steps per ``seeds``
    entry × leave-file-out fold (the same folds and seeds for every step: paired).
    Returns ``scores`` (one row per step × seed × fold: ``step``, ``metric``, ``value`` and
    every score of that model) and ``overlap`` (per split: the fraction of test windows
    sharing rows with a training window, computed on every training window: thinning the
    fitted windows with ``train_stride`` keeps the leak while they still cover every row).
    ``test_stride``: score every n-th test window (the same thinning for every step; the
    overlap is always computed on every test window). ``client``: train the models on it
    (:func:`physml.cnc.folds.run_all`)."""
    targets = build_targets(data)
    rows, wins = window_rows(data, window, stride)
    if not np.array_equal(window_index(data.rows["file"].to_numpy(), window)[rows][:, 0],
                          wins["start"].to_numpy()):
        raise AssertionError("window rows do not match the source's windows")
    leaky_ds = Dataset(data, leaky_inputs(data, sensor_columns, window), targets)
    honest_ds = Dataset(data, build_inputs(data, sensor_columns, window, per_file="none"),
                        targets)
    kw = {"n_inner": n_inner, "val_rows_max": val_rows_max, "train_stride": train_stride,
          "test_stride": test_stride}
    recs, overlap = [], []

    def add(step, seed, fold, scores):
        recs.append({"step": step, "seed": int(seed), "fold": int(fold),
                     "metric": STEP_METRIC[step], "value": float(scores[STEP_METRIC[step]]),
                     **scores})

    out = Path(out_root)
    runs, steps = [], []  # steps[i]: (ladder steps, seed, fold) scored by runs[i]
    for seed in random_seeds:
        tr, te = leakage.stratified_window_split(targets.command[rows], test_fraction, seed)
        overlap.append({"split": "random windows", "seed": int(seed), "fold": 0,
                        "shared": leakage.shared_row_fraction(wins, tr, te)})
        runs.append(folds.Run("leaky", seed, rows[tr], rows[te], out / f"s0_seed{seed}",
                              {"inner": "random", "scaler_fit": "test"}))
        steps.append((("source_protocol",), seed, 0))
    for seed in seeds:
        files = data.rows["file"].to_numpy()[rows]
        for sp in _splits.group_kfold(files, n_splits, seed=seed, what="file"):
            overlap.append({"split": "leave-file-out", "seed": int(seed), "fold": sp.fold,
                            "shared": leakage.shared_row_fraction(wins, sp.train, sp.test)})
            trr, ter = rows[sp.train], rows[sp.test]
            name = f"seed{seed}_fold{sp.fold}"
            runs += [folds.Run("leaky", seed, trr, ter, out / f"s1_{name}",
                               {"scaler_fit": "test"}),
                     folds.Run("leaky", seed, trr, ter, out / f"s4_{name}"),
                     folds.Run("honest", seed, trr, ter, out / f"s5_{name}")]
            steps += [(("file_split", "no_eos", "free_running"), seed, sp.fold),
                      (("train_scaler",), seed, sp.fold), (("sensors_only",), seed, sp.fold)]
    results = folds.run_all(ed.run_fold, {"leaky": leaky_ds, "honest": honest_ds}, runs, cfg,
                            train_cfg, client=client, **kw)
    for (names, seed, fold), r in zip(steps, results, strict=True):
        for step in names:
            add(step, seed, fold, r.scores)
    return pd.DataFrame(recs), pd.DataFrame(overlap)


def ladder_table(scores: pd.DataFrame, metrics: Sequence[str] = ("value",
                 "line_exact_accuracy")) -> pd.DataFrame:
    """One row per step (ladder order): what changed, the metric, and mean [95% CI] of each
    of ``metrics`` over seeds (× folds) via :func:`physml.stats.summarize`."""
    from physml import stats

    parts = []
    for m in metrics:
        s = stats.summarize(scores, value=m, by="step", bounds=stats.UNIT_INTERVAL)
        s = s.set_index("step")
        parts.append(s.apply(lambda r: f"{r['mean']:.3f} [{r['ci_low']:.3f}, "
                             f"{r['ci_high']:.3f}]", axis=1).rename(m))
    t = pd.concat(parts, axis=1).reindex([s for s in STEPS if s in set(scores["step"])])
    t.insert(0, "metric", [STEP_METRIC[s] for s in t.index])
    t.insert(0, "change", [STEP_TEXT[s] for s in t.index])
    n = scores.groupby("step").size()
    t["n"] = n.reindex(t.index).to_numpy()
    return t.reset_index()


def step_changes(scores: pd.DataFrame) -> pd.DataFrame:
    """How much each step of the ladder changes the reported figure (``value``): one row per
    step after the first, with the difference to the step before and its 95% CI.

    Steps on the same leave-file-out folds are compared pairwise per ``(seed, fold)``
    (:func:`physml.stats.paired_difference`); the source protocol's random splits and the
    file folds are different splits, compared as independent samples
    (:func:`physml.stats.welch_difference`)."""
    from physml import stats

    steps = [s for s in STEPS if s in set(scores["step"])]
    rows = []
    for prev, cur in zip(steps[:-1], steps[1:], strict=True):
        a = scores[scores["step"] == cur].sort_values(["seed", "fold"])
        b = scores[scores["step"] == prev].sort_values(["seed", "fold"])
        paired = prev != "source_protocol"
        cmp = (stats.paired_difference(a["value"].to_numpy(), b["value"].to_numpy()) if paired
               else stats.welch_difference(a["value"].to_numpy(), b["value"].to_numpy()))
        rows.append({"step": cur, "change": STEP_TEXT[cur], "metric": STEP_METRIC[cur],
                     "difference": cmp.diff.mean, "ci_low": cmp.diff.low,
                     "ci_high": cmp.diff.high, "verdict": cmp.verdict,
                     "comparison": "paired" if paired else "independent (Welch)"})
    return pd.DataFrame(rows)
