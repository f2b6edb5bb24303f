"""Focal-loss and modality ablations of the command classifier, on paired folds and seeds.

Every setting of a sweep is trained and scored on the *same* ``(seed, fold)`` list, so the
difference to the reference setting is a paired difference per ``(seed, fold)``
(:func:`paired_drops`, via :func:`physml.stats.paired_difference`).

Modality settings (:func:`modality_settings`): ``all`` (every column of the chosen sources),
``-<modality>`` (a channel group of :data:`physml.cnc.schema.MODALITIES` or ``motor``
dropped from every node) and ``-<node>`` (one source dropped). Column lists always come from
:func:`physml.cnc.features.model_input_columns`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from physml import stats
from physml import train as _train

from . import classifier, schema
from .data import CNCData
from .features import model_input_columns
from .sequences import Dataset, build_inputs


def focal_sweep(ds: Dataset, split_list, gammas: Sequence[float],
                cfg: classifier.ClassifierConfig, train_cfg: _train.TrainConfig,
                out_root: str | Path, known: dict[float, pd.DataFrame] | None = None,
                client=None, **fold_kw) -> pd.DataFrame:
    """:func:`physml.cnc.classifier.cross_validate` for each focal ``gamma`` (0 =
    cross-entropy). One row per gamma × seed × fold. ``known``: ``{gamma: scores}`` already
    computed with this ``cfg`` and these splits (reused, not retrained). ``client``: train the
    folds on it (:func:`physml.cnc.folds.run_folds`)."""
    parts = []
    known = known or {}
    for g in gammas:
        if float(g) in known:
            parts.append(known[float(g)].assign(gamma=float(g)))
            continue
        c = classifier.ClassifierConfig(**{**cfg.__dict__, "gamma": float(g)})
        f = classifier.cross_validate(ds, split_list, c, train_cfg,
                                      Path(out_root) / f"gamma{g:g}", client=client,
                                      **fold_kw)
        parts.append(f.assign(gamma=float(g)))
    return pd.concat(parts, ignore_index=True)


def modality_settings(sources: Sequence[str], drops: Sequence[str]) -> dict[str, list[str]]:
    """``{"all": columns, "-<name>": columns without it}`` for each name in ``drops`` (a
    modality, ``motor``, or one of ``sources``); unknown names raise ``ValueError``."""
    out = {"all": model_input_columns(sources)}
    for name in drops:
        if name in schema.MODALITIES or name == "motor":
            out[f"-{name}"] = model_input_columns(sources, (name,))
        elif name in sources:
            out[f"-{name}"] = model_input_columns([s for s in sources if s != name])
        else:
            raise ValueError(f"ablation: {name!r} is neither a modality "
                             f"({', '.join(schema.MODALITIES)}, motor) nor one of the sources "
                             f"{list(sources)}")
    return out


def modality_sweep(data: CNCData, base: Dataset, settings: dict[str, list[str]], split_list,
                   window: int, per_file: str, cfg: classifier.ClassifierConfig,
                   train_cfg: _train.TrainConfig, out_root: str | Path,
                   known: dict[str, pd.DataFrame] | None = None, client=None,
                   **fold_kw) -> pd.DataFrame:
    """The classifier for every setting of :func:`modality_settings` on the same splits;
    targets are shared with ``base``. One row per setting × seed × fold. ``known``:
    ``{setting: scores}`` already computed with this ``cfg`` and these splits (reused).
    ``client``: train the folds on it (:func:`physml.cnc.folds.run_folds`)."""
    parts = []
    known = known or {}
    for name, cols in settings.items():
        if name in known:
            parts.append(known[name].assign(setting=name, n_columns=len(cols)))
            continue
        ds = Dataset(data, build_inputs(data, cols, window, per_file), base.targets)
        f = classifier.cross_validate(ds, split_list, cfg, train_cfg,
                                      Path(out_root) / name.replace("-", "drop_"),
                                      client=client, **fold_kw)
        parts.append(f.assign(setting=name, n_columns=len(cols)))
    return pd.concat(parts, ignore_index=True)


def paired_drops(scores: pd.DataFrame, metric: str, by: str, reference) -> dict[str, object]:
    """``{setting: Comparison}``: ``reference`` minus each other setting of column ``by``,
    paired on ``(seed, fold)`` (a positive difference = the setting scores lower)."""
    ref = scores[scores[by] == reference].sort_values(["seed", "fold"])
    out = {}
    for name, g in scores[scores[by] != reference].groupby(by, sort=False):
        g = g.sort_values(["seed", "fold"])
        if list(zip(g["seed"], g["fold"], strict=True)) != list(
                zip(ref["seed"], ref["fold"], strict=True)):
            raise ValueError(f"paired_drops: {by}={name!r} was not run on the reference's "
                             "seeds and folds")
        out[str(name)] = stats.paired_difference(ref[metric].to_numpy(), g[metric].to_numpy())
    return out


def cis(scores: pd.DataFrame, metric: str, by: str) -> dict[str, stats.CI]:
    """``{group: CI}`` of ``metric`` over the rows (seeds × folds) of each ``by`` group
    (:func:`physml.stats.summarize`, dict form: the CIs keep their samples)."""
    return stats.summarize({str(k): g.sort_values(["seed", "fold"])[metric].to_numpy()
                            for k, g in scores.groupby(by, sort=False)},
                           bounds=stats.UNIT_INTERVAL)


def ci_table(scores: pd.DataFrame, metrics: Sequence[str], by: str, fmt: str = ".3f"
             ) -> pd.DataFrame:
    """One row per ``by`` group, one column per metric: ``mean [low, high]`` over seeds ×
    folds (:func:`physml.stats.summarize`), and ``n``."""
    cols = {}
    for m in metrics:
        s = stats.summarize(scores, value=m, by=by, bounds=stats.UNIT_INTERVAL)
        cols[m] = {r[by]: stats.format_interval(r["mean"], r["ci_low"], r["ci_high"], fmt)
                   for _, r in s.iterrows()}
        n = dict(zip(s[by], s["n"], strict=True))
    t = pd.DataFrame(cols)
    t["n"] = pd.Series(n)
    t.index.name = by
    return t.reset_index()


def metric_cis(scores: pd.DataFrame, metrics: Sequence[str]) -> dict[str, stats.CI]:
    """``{metric: CI}`` over all rows (seeds × folds, ordered by seed then fold)."""
    s = scores.sort_values(["seed", "fold"])
    return stats.summarize({m: s[m].to_numpy() for m in metrics}, bounds=stats.UNIT_INTERVAL)


def focal_verdicts(scores: pd.DataFrame, metric: str, margin: float, reference: float = 0.0
                   ) -> dict[float, stats.Verdict]:
    """``{gamma: Verdict}`` of each focal ``gamma`` against ``reference`` (cross-entropy),
    paired on ``(seed, fold)`` with :func:`physml.stats.compare` (higher is better; a tie
    needs TOST within ``margin``). ``Verdict.outcome``: "a" = focal better, "b" = worse."""
    ref = scores[scores["gamma"] == reference].sort_values(["seed", "fold"])
    out = {}
    for g, grp in scores[scores["gamma"] != reference].groupby("gamma", sort=True):
        grp = grp.sort_values(["seed", "fold"])
        if list(zip(grp["seed"], grp["fold"], strict=True)) != list(
                zip(ref["seed"], ref["fold"], strict=True)):
            raise ValueError(f"focal_verdicts: gamma {g} was not run on the reference's folds")
        out[float(g)] = stats.compare(grp[metric].to_numpy(), ref[metric].to_numpy(),
                                      better="higher", margin=margin)
    return out
