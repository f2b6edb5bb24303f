"""The ablation: every bias variant × seeds, on held-out terrains and a held-out Froude range.

One seed = one freshly drawn data set (terrains, winds, tracers), one split and one weight
initialisation shared by every variant, so variants are compared *paired* over seeds. Splits:

- ``terrain``: a quarter of the terrains held out (:func:`physml.splits.group_kfold` on terrain
  ids); test error reported per Froude bin.
- ``froude``: the same held-out terrains, and in addition every sample whose Froude number lies
  in ``froude_holdout`` is removed from training (:func:`physml.splits.holdout` on the regime
  label); test = held-out terrains × held-out Froude range.

Validation (early stopping) uses a further eighth of the *training* terrains. Baselines
(persistence, advection-only) are scored on the same test samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import splits, stats
from .. import train as _train
from . import model as M
from .dataset import (
    BLOCKED,
    PASSING,
    DataSpec,
    TransportData,
    advection_only,
    froude_bin_labels,
    make_dataset,
    mse_per_sample,
)

SPLITS = ("terrain", "froude")
PURE_ML = "none_pure_ml"
BASELINES = ("persistence", "advection")
ALL_BINS = "all"
MSE_BOUNDS = stats.NON_NEGATIVE
"""Range of a mean squared error: its CIs are clipped at zero (``physml.stats.mean_ci``)."""


@dataclass(frozen=True)
class AblationConfig:
    """Everything one ablation run needs; seeds drive data, split and initialisation.

    Every variant corrects the ``base`` forecast. With ``pure_ml`` an extra no-bias model on
    the persistence base (it must learn the transport itself) is trained as model
    :data:`PURE_ML` — the pure-ML side of the headline.
    """

    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    data: DataSpec = field(default_factory=DataSpec)
    model: M.ModelSpec = field(default_factory=M.ModelSpec)
    epochs: int = 6
    batch_size: int = 8
    lr: float = 3e-3
    base: str = "persistence"
    test_fraction: float = 0.25
    val_fraction: float = 0.125
    froude_holdout: tuple[float, float] = (0.5, 1.0)
    splits: tuple[str, ...] = SPLITS
    pure_ml: bool = True

    def __post_init__(self) -> None:
        from .bias import VARIANTS

        bad = [v for v in self.variants if v not in VARIANTS]
        if bad:
            raise ValueError(f"AblationConfig.variants: unknown {bad}; known {VARIANTS}")
        if "none" not in self.variants:
            raise ValueError("AblationConfig.variants must include 'none' (the reference)")
        if len(self.seeds) < 2:
            raise ValueError(f"AblationConfig.seeds: need >= 2 seeds for CIs, got {self.seeds}")
        if not set(self.splits) <= set(SPLITS):
            raise ValueError(f"AblationConfig.splits must be within {SPLITS}, got {self.splits}")
        if self.base not in M.BASES:
            raise ValueError(f"AblationConfig.base must be one of {M.BASES}, got {self.base!r}")
        lo, hi = self.froude_holdout
        if not 0 <= lo < hi:
            raise ValueError(f"AblationConfig.froude_holdout must be (lo, hi) with 0 <= lo < hi, "
                             f"got {self.froude_holdout}")
        if not 0 < self.test_fraction < 1 or not 0 < self.val_fraction < 1:
            raise ValueError("AblationConfig: test_fraction and val_fraction must be in (0, 1)")

    def train_config(self, seed: int) -> _train.TrainConfig:
        return _train.TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                                  warmup_epochs=0.5, patience=None, seed=seed, progress=False)


def pure_ml_name(cfg: AblationConfig) -> str:
    """Model name of the pure-ML reference: ``none`` on the persistence base, else PURE_ML."""
    return PURE_ML if cfg.pure_ml and cfg.base != "persistence" else "none"


def _one_fold(groups: np.ndarray, fraction: float, seed: int, what: str) -> splits.Split:
    n_groups = len(np.unique(groups))
    k = min(max(2, int(round(1 / fraction))), n_groups)
    return splits.group_kfold(groups, k, seed=seed, what=what)[0]


def split_by_terrain(data: TransportData, test_fraction: float, seed: int) -> splits.Split:
    """Hold out about ``test_fraction`` of the terrains (whole terrains)."""
    return _one_fold(data.terrain_id, test_fraction, seed, "terrain")


def froude_regime(data: TransportData, froude_range: tuple[float, float]) -> np.ndarray:
    """``(S,)`` labels "held-out Fr" for samples with lo <= Fr < hi, "trained Fr" otherwise."""
    lo, hi = froude_range
    inside = (data.froude >= lo) & (data.froude < hi)
    return np.where(inside, "held-out Fr", "trained Fr")


def split_by_froude(data: TransportData, froude_range: tuple[float, float],
                    test_fraction: float, seed: int) -> splits.Split:
    """Held-out terrains *and* a held-out Froude range: train on training terrains outside the
    range, test on held-out terrains inside it. Both groupings are leak-checked."""
    regime = froude_regime(data, froude_range)
    by_fr = splits.holdout(regime, ["held-out Fr"], what="Froude range")
    by_t = split_by_terrain(data, test_fraction, seed)
    train = np.intersect1d(by_fr.train, by_t.train)
    test = np.intersect1d(by_fr.test, by_t.test)
    if train.size == 0 or test.size == 0:
        raise ValueError(f"split_by_froude: the range {froude_range} leaves {train.size} training "
                         f"and {test.size} test samples")
    splits.check_no_leak(data.terrain_id[train], data.terrain_id[test], what="terrain")
    splits.check_no_leak(regime[train], regime[test], what="Froude range")
    return splits.Split(0, train, test, by_t.test_groups)


def make_split(cfg: AblationConfig, data: TransportData, kind: str, seed: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) sample indices for split ``kind``; val = whole training terrains."""
    if kind == "terrain":
        s = split_by_terrain(data, cfg.test_fraction, seed)
    elif kind == "froude":
        s = split_by_froude(data, cfg.froude_holdout, cfg.test_fraction, seed)
    else:
        raise ValueError(f"split kind must be one of {SPLITS}, got {kind!r}")
    inner = _one_fold(data.terrain_id[s.train], cfg.val_fraction, seed + 1, "terrain")
    return s.train[inner.train], s.train[inner.test], s.test


def _rows(err: np.ndarray, data: TransportData, **keys) -> list[dict]:
    fb = data.froude_bin()
    groups = [(ALL_BINS, np.ones(err.size, bool)), (BLOCKED, data.froude < 1.0),
              (PASSING, data.froude >= 1.0)]
    groups += [(lab, fb == k) for k, lab in enumerate(froude_bin_labels())]
    return [{**keys, "froude_bin": lab, "mse": float(err[m].mean()), "n": int(m.sum())}
            for lab, m in groups if m.any()]


def run_seed(cfg: AblationConfig, seed: int, out_dir: str | Path) -> pd.DataFrame:
    """All variants and baselines for one seed; one row per (split, model, Froude bin).

    Columns: seed, split, model, froude_bin (``"all"``, the regimes ``"Fr<1"`` / ``"Fr>=1"``,
    and the bins of :func:`.dataset.froude_bin_labels`), mse (mean squared error over test
    samples and cells, tracer units²), n (test samples), best_epoch, alpha (the trained bias
    strength, mean over heads; NaN for baselines and variants without one).
    """
    data = make_dataset(np.random.default_rng([seed, 2024]), cfg.data)
    adv = advection_only(data)
    base_all = data.q0 if cfg.base == "persistence" else adv
    rows: list[dict] = []
    for kind in cfg.splits:
        tr, va, te = make_split(cfg, data, kind, seed)
        tokens = M.terrain_tokens(data.terrain_m, cfg.data.patch,
                                  np.unique(data.terrain_id[tr]))
        test = data.subset(te)
        for name, pred in (("persistence", data.q0[te]), ("advection", adv[te])):
            rows += _rows(mse_per_sample(pred, test), test, seed=seed, split=kind, model=name,
                          best_epoch=-1)
        runs = [(v, v, cfg.base, base_all) for v in cfg.variants]
        if pure_ml_name(cfg) == PURE_ML:
            runs.append((PURE_ML, "none", "persistence", data.q0))
        for name, v, base_name, base in runs:
            model = M.build(v, data, np.unique(data.terrain_id[tr]), seed, cfg.model, tokens)
            hist = M.fit(model, data.subset(tr), data.subset(va), base_name,
                         cfg.train_config(seed), Path(out_dir) / f"seed{seed}" / kind / name,
                         bases=(base[tr], base[va]))
            pred = M.predict(model, test, base[te])
            rows += _rows(mse_per_sample(pred, test), test, seed=seed, split=kind, model=name,
                          best_epoch=int(hist["best_epoch"]), alpha=model.bias.learned_alpha())
    return pd.DataFrame(rows)


def run(cfg: AblationConfig, out_dir: str | Path, workers: int | None = None) -> pd.DataFrame:
    """:func:`run_seed` for every seed (serially, or on ``workers`` Dask processes)."""
    from ..parallel import map_tasks

    frames = map_tasks(_SeedTask(cfg, str(out_dir)), list(cfg.seeds), workers=workers)
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class _SeedTask:
    cfg: AblationConfig
    out_dir: str

    def __call__(self, seed: int) -> pd.DataFrame:
        from ..timing import threads

        with threads(1):  # one thread per worker process: no oversubscription of the cores
            return run_seed(self.cfg, seed, self.out_dir)


def verdict(model_mse: np.ndarray, reference_mse: np.ndarray, min_gain: float,
            tie_margin: float) -> tuple[str, stats.Verdict]:
    """Verdict of a variant against the reference (no bias), paired over seeds.

    Compares the per-seed MSE ratio on the log scale (:func:`physml.stats.compare`):
    "gain" if the ratio's CI is below 1 and the mean gain 1 − ratio is >= ``min_gain``;
    "smaller gain" if below 1 but the gain is under ``min_gain``; "worse" if above 1;
    "no effect" if TOST shows the ratio within ×(1 ± ``tie_margin``); else "inconclusive".
    """
    v = stats.compare(model_mse, reference_mse, better="lower", margin=tie_margin, scale="log")
    if v.outcome == "a":
        label = "gain" if 1 - v.diff.mean >= min_gain else "smaller gain"
    elif v.outcome == "b":
        label = "worse"
    elif v.outcome == "tie":
        label = "no effect"
    else:
        label = "inconclusive"
    return label, v


TABLE_CI = {"test_mse": ("mse_low", "mse_high"), "rel_gain": ("gain_low", "gain_high")}
""":func:`gain_table`'s estimates and their CI columns (``plots.comparison_table(ci=...)``)."""
TABLE_FORMATS = {"test_mse": "{:.4g}", "rel_gain": "{:+z.1%}", "tost_p": "{:.2g}"}
"""How :func:`gain_table`'s columns read in a report."""


def gain_table(frame: pd.DataFrame, split: str, froude_bin: str, min_gain: float,
               tie_margin: float, reference: str = "none") -> pd.DataFrame:
    """Per model: test MSE (mean, CI), relative gain vs ``reference`` (1 − MSE ratio, paired CI)
    and the verdict, for one split and Froude bin. Baselines are included as models."""
    sub = frame[(frame["split"] == split) & (frame["froude_bin"] == froude_bin)]
    wide = _wide(frame, split, froude_bin)
    if len(wide) < 2:
        raise ValueError(f"gain_table: fewer than 2 seeds with test samples for split={split!r}, "
                         f"froude_bin={froude_bin!r}")
    sub = sub[sub["seed"].isin(wide.index)]
    if reference not in wide:
        raise ValueError(f"gain_table: reference {reference!r} not among {list(wide.columns)}")
    ref = wide[reference].to_numpy()
    summary = stats.summarize(sub, value="mse", by="model", bounds=MSE_BOUNDS).set_index("model")
    out = []
    for name in wide.columns:
        x = wide[name].to_numpy()
        row = {"model": name, "test_mse": float(summary.loc[name, "mean"]),
               "mse_low": float(summary.loc[name, "ci_low"]),
               "mse_high": float(summary.loc[name, "ci_high"]), "n_seeds": len(x)}
        if name != reference:
            label, v = verdict(x, ref, min_gain, tie_margin)
            row |= {"rel_gain": 1 - v.diff.mean, "gain_low": 1 - v.diff.high,
                    "gain_high": 1 - v.diff.low, "tost_p": v.tost_p, "verdict": label}
        out.append(row)
    return pd.DataFrame(out)


def gain_sentence(row) -> str:
    """How a `gain_table` row's model changes the test MSE, in words with its paired 95% CI,
    e.g. "reduces the test MSE by 4.4% [2.5, 6.2]" (``rel_gain`` > 0 is a reduction) or
    "increases the test MSE by 3.0% [1.0, 5.0]"; the CI is oriented like the number."""
    gain, low, high = 100 * row["rel_gain"], 100 * row["gain_low"], 100 * row["gain_high"]
    if not low <= gain <= high:
        raise ValueError(f"gain_sentence: gain {gain:.3g}% outside its CI [{low:.3g}, {high:.3g}]")
    if gain >= 0:
        g, lo, hi = stats.interval_parts(gain, low, high, "z.1f")  # z: 0.0, never -0.0
        return f"reduces the test MSE by {g}% [{lo}, {hi}]"
    g, lo, hi = stats.interval_parts(-gain, -high, -low, "z.1f")
    return f"increases the test MSE by {g}% [{lo}, {hi}]"


def bin_key(label: str) -> str:
    """ASCII key of a Froude-bin label for results JSON (``"Fr<1"`` → ``"blocked"``)."""
    from .dataset import FROUDE_BIN_KEYS

    keys = {ALL_BINS: "all", BLOCKED: "blocked", PASSING: "passing",
            **dict(zip(froude_bin_labels(), FROUDE_BIN_KEYS, strict=True))}
    if label not in keys:
        raise ValueError(f"bin_key: unknown Froude bin {label!r}; known {list(keys)}")
    return keys[label]


def _wide(frame: pd.DataFrame, split: str, froude_bin: str) -> pd.DataFrame:
    sub = frame[(frame["split"] == split) & (frame["froude_bin"] == froude_bin)]
    return sub.pivot(index="seed", columns="model", values="mse").dropna()


def mse_cis(frame: pd.DataFrame, split: str, froude_bin: str) -> dict[str, stats.CI]:
    """``{model: CI of test MSE over seeds}`` for one split and bin (seeds where every model
    has test samples in the bin; empty if fewer than 2)."""
    w = _wide(frame, split, froude_bin)
    if len(w) < 2:
        return {}
    return {m: stats.mean_ci(w[m].to_numpy(), bounds=MSE_BOUNDS) for m in w.columns}


def gain_cis(frame: pd.DataFrame, split: str, froude_bin: str, reference: str = "none"
             ) -> dict[str, stats.CI]:
    """``{model: CI of 1 − MSE/MSE_reference}`` (paired over seeds, log-ratio interval)."""
    w = _wide(frame, split, froude_bin)
    if len(w) < 2:
        return {}
    out = {}
    for m in w.columns:
        if m == reference:
            continue
        r = stats.ratio_ci(w[m].to_numpy(), w[reference].to_numpy()).diff
        samples = tuple(float(v) for v in 1 - w[m].to_numpy() / w[reference].to_numpy())
        out[m] = stats.CI(1 - r.mean, 1 - r.high, 1 - r.low, r.n, r.confidence,
                          "paired log ratio", samples)
    return out


def record_ablation(frame: pd.DataFrame, min_gain: float, tie_margin: float) -> list[str]:
    """Record every split × Froude bin into the notebook's results (:func:`physml.results.record`).

    Keys: ``test_mse.<split>.<bin>.<model>`` (CI over seeds, tracer units²),
    ``rel_gain_vs_no_bias.<split>.<bin>.<variant>`` (paired CI of 1 − MSE/MSE_none) and
    ``verdict.<split>.<bin>.<variant>`` (:func:`verdict`), with ``<bin>`` from :func:`bin_key`.
    Returns the (split, bin) pairs recorded ("split.bin"); bins with < 2 seeds are skipped.
    """
    from ..results import record

    done = []
    for split in frame["split"].unique():
        for fb in frame.loc[frame["split"] == split, "froude_bin"].unique():
            mses = mse_cis(frame, split, fb)
            if not mses or "none" not in mses:
                continue
            key = f"{split}.{bin_key(fb)}"
            record(f"test_mse.{key}", mses, unit="tracer²",
                   note="test MSE on held-out terrains, 95% CI over seeds")
            record(f"rel_gain_vs_no_bias.{key}", gain_cis(frame, split, fb),
                   note="1 - MSE/MSE(no bias), paired over seeds (log-ratio CI)")
            w = _wide(frame, split, fb)
            record(f"verdict.{key}", {
                m: verdict(w[m].to_numpy(), w["none"].to_numpy(), min_gain, tie_margin)[0]
                for m in w.columns if m != "none"})
            done.append(key)
    return done


def why_no_gain(frame: pd.DataFrame, split: str, froude_bin: str, variant: str,
                ml: str = "none") -> dict[str, object]:
    """Two measured reasons a bias can fail to help, for one split and Froude bin.

    ``ml_over_advection``: CI over seeds of MSE(``ml``) / MSE(advection-only) (paired, on the
    log scale: a geometric mean) — above 1 the no-bias transformer has not yet learned even the
    terrain-blind transport that a bias could steer. ``alpha_trained``: CI over seeds of the
    variant's trained bias strength, beside ``alpha_initial`` (:data:`.bias.RELEASED_ALPHA`) —
    unchanged means training did not use it.
    """
    from .bias import RELEASED_ALPHA

    w = _wide(frame, split, froude_bin)
    if len(w) < 2 or not {ml, "advection", variant} <= set(w.columns):
        raise ValueError(f"why_no_gain: need >= 2 seeds with {ml!r}, 'advection' and "
                         f"{variant!r} in split {split!r}, bin {froude_bin!r}")
    ratio = stats.ratio_ci(w[ml].to_numpy(), w["advection"].to_numpy()).diff
    sub = frame[(frame["split"] == split) & (frame["model"] == variant)
                & (frame["froude_bin"] == froude_bin)]
    alpha = sub.sort_values("seed")["alpha"].to_numpy(dtype=float)
    if not np.all(np.isfinite(alpha)):
        raise ValueError(f"why_no_gain: variant {variant!r} has no learned bias strength")
    return {"ml_over_advection": ratio, "alpha_trained": stats.mean_ci(alpha),
            "alpha_initial": RELEASED_ALPHA}


def histories(out_dir: str | Path, seed: int, split: str, variants: list[str]) -> dict:
    """``{variant: history}`` of one seed and split (for :func:`physml.plots.convergence`)."""
    return {v: _train.load_history(Path(out_dir) / f"seed{seed}" / split / v) for v in variants}
