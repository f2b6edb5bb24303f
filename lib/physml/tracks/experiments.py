"""Experiments of notebooks 02-04: training matrix, convergence analysis, physics ablations.

Data: training/validation tracks come from one generated dataset (split by track: every sample is
an independent track, so no track is in two splits), the test tracks from a dataset generated with
a *different seed* — nothing of the test set is ever seen in training or model selection.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from physml import stats
from physml.tracks import data as D
from physml.tracks.training import TARGETS, RunConfig, run
from physml.train import load_history


def prepare(n_tracks: int, n_test: int, seed: int = 0, test_seed: int = 1000,
            val_fraction: float = 0.1, field_model: str = "default",
            workers: int | None = None, scheduler: str | None = None) -> dict:
    """Generate (or reuse) the datasets: dict with train, val, test, key, field, meta.

    ``workers`` / ``scheduler``: generate the shards on a local Dask cluster / an existing one
    (:func:`physml.parallel.map_tasks`); the data do not depend on where they were made."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"prepare: val_fraction = {val_fraction}, expected in (0, 1)")
    spec = D.DatasetSpec(n_tracks=n_tracks, seed=seed, field_model=field_model)
    test_spec = D.DatasetSpec(n_tracks=n_test, seed=test_seed, field_model=field_model)
    full = D.get(spec, workers=workers, scheduler=scheduler)
    test = D.get(test_spec, workers=workers, scheduler=scheduler)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n_tracks)
    n_val = int(val_fraction * n_tracks)
    val = {k: v[perm[:n_val]] for k, v in full.items()}
    train = {k: v[perm[n_val:]] for k, v in full.items()}
    return {"train": train, "val": val, "test": test, "key": f"{spec.key()}+{test_spec.key()}",
            "field": spec.make_field(), "spec": spec, "test_spec": test_spec}


def run_many(configs: list[RunConfig], ds: dict, test: dict | None = None) -> pd.DataFrame:
    """Train (or reuse) every config; one row per run (config columns + test metrics)."""
    rows = []
    for cfg in configs:
        s = run(cfg, ds["train"], ds["val"], test if test is not None else ds["test"],
                ds["field"], ds["key"] + ("" if test is None else f"+test{len(test['dz'])}"))
        rows.append({**{k: v for k, v in s["config"].items()}, **{k: v for k, v in s.items()
                                                                  if k != "config"}})
    return pd.DataFrame(rows)


def matrix_configs(archs, sizes, seeds, epochs: dict, **common) -> list[RunConfig]:
    """The architecture x size x seed grid; ``epochs`` maps arch -> epochs."""
    return [RunConfig(arch=a, size=s, seed=seed, epochs=int(epochs[a]), **common)
            for a, s, seed in itertools.product(archs, sizes, seeds)]


def summary_table(runs: pd.DataFrame, group=("arch", "size")) -> pd.DataFrame:
    """Mean over seeds (and the 95% CI of pos_mean when >= 2 seeds) per group."""
    out = []
    for key, g in runs.groupby(list(group), sort=False):
        row = dict(zip(group, key if isinstance(key, tuple) else (key,), strict=True))
        row.update({"seeds": len(g), "params": int(g["n_params"].iloc[0]),
                    "pos_mean_mm": g["pos_mean_mm"].mean(), "pos_95_mm": g["pos_95_mm"].mean(),
                    "slope_mean": g["slope_mean"].mean(),
                    "training_time_s": g["training_time_s"].mean()})
        if len(g) >= 2:
            row["pos_mean_ci"] = str(stats.mean_ci(g["pos_mean_mm"].to_numpy()))
        if "tracks_per_s_4096" in g:
            row["tracks_per_s_4096"] = g["tracks_per_s_4096"].mean()
        row["meets_targets"] = bool(all(row[k] < v for k, v in TARGETS.items()))
        out.append(row)
    return pd.DataFrame(out)


def add_throughput(runs: pd.DataFrame, batch: int = 4096) -> pd.DataFrame:
    """Add torch tracks/s at ``batch`` (1 thread) for each run (column tracks_per_s_<batch>)."""

    from physml.tracks.training import load_model, throughput, to_inputs, torch_threads

    rng = np.random.default_rng(0)
    spec = D.DatasetSpec()
    s, dz = D.sample_initial_states(batch, rng, spec)
    u, _ = to_inputs({"initial": s, "dz": dz, "final": np.zeros_like(s)})
    vals = []
    with torch_threads(1):
        for d in runs["run_dir"]:
            vals.append(throughput(load_model(d), u, (batch,), min_time_s=0.2)[batch])
    runs = runs.copy()
    runs[f"tracks_per_s_{batch}"] = vals
    return runs


# ---- 03: convergence ----------------------------------------------------------------------
def histories(runs: pd.DataFrame) -> dict[str, dict]:
    """run name -> history dict (history.json of each run)."""
    return {f"{r.arch}-{r.size}-s{r.seed}": load_history(r.run_dir) for r in runs.itertuples()}


def convergence_table(runs: pd.DataFrame, metric: str = "pos_mean_mm") -> pd.DataFrame:
    """Per run: epochs to reach 90% of the final accuracy (the first epoch whose validation
    ``metric`` <= best / 0.9), final train data loss, final val loss and their ratio (> 1:
    validation worse than training = divergence), params."""
    rows = []
    for r in runs.itertuples():
        h = load_history(r.run_dir)
        vals = np.array([v[metric] for v in h["val"]])
        best = vals.min()
        e90 = int(np.argmax(vals <= best / 0.9)) + 1
        tr = h["train"][-1].get("data_loss", h["train"][-1]["loss"])
        va = h["val"][-1]["loss"]
        rows.append({"arch": r.arch, "size": r.size, "seed": r.seed, "params": r.n_params,
                     "epochs": len(vals), "epochs_to_90pct": e90, f"best_val_{metric}": best,
                     "final_train_data_loss": tr, "final_val_loss": va,
                     "val_over_train": va / tr if tr > 0 else np.nan})
    return pd.DataFrame(rows)


# ---- 04: ablations ---------------------------------------------------------------------
LAMBDA_SETTINGS = {"data_only": (1.0, 0.0, 0.0), "weak": (1.0, 0.01, 0.01),
                   "balanced": (1.0, 1.0, 1.0), "strong": (1.0, 10.0, 10.0),
                   "dominant": (0.1, 1.0, 1.0)}


def lambda_ablation(ds: dict, settings: list[str], seeds: list[int], **common) -> pd.DataFrame:
    """PINN runs for each (lambda_data, lambda_ic, lambda_pde) setting and seed."""
    cfgs, names = [], []
    for name in settings:
        if name not in LAMBDA_SETTINGS:
            raise ValueError(f"lambda_ablation: setting {name!r} not in {sorted(LAMBDA_SETTINGS)}")
        ld, li, lp = LAMBDA_SETTINGS[name]
        for seed in seeds:
            cfgs.append(RunConfig(arch="pinn", lambda_data=ld, lambda_ic=li, lambda_pde=lp,
                                  seed=seed, **common))
            names.append(name)
    runs = run_many(cfgs, ds)
    runs.insert(0, "setting", names)
    return runs


def by_momentum(runs: pd.DataFrame, ds: dict, ranges=("low", "mid", "high")) -> pd.DataFrame:
    """Test metrics of each run restricted to each momentum range of the test set."""
    from physml.tracks.training import load_model, metrics, predict, to_inputs

    rows = []
    for r in runs.itertuples():
        model = load_model(r.run_dir)
        for name in ranges:
            sub = D.momentum_subset(ds["test"], name)
            if len(sub["dz"]) == 0:
                continue
            u, y = to_inputs(sub)
            m = metrics(predict(model, u), y.double().numpy())
            rows.append({"run": f"{r.arch}-{r.size}-s{r.seed}", "arch": r.arch, "seed": r.seed,
                         "setting": getattr(r, "setting", r.arch), "range": name,
                         "n_test": len(sub["dz"]), **m})
    return pd.DataFrame(rows)


def data_efficiency(ds: dict, archs: list[str], n_trains: list[int], seeds: list[int],
                    **common) -> pd.DataFrame:
    """Test accuracy vs number of training tracks for each architecture (same epochs budget in
    optimizer steps is *not* equalised: each run sees its n_train tracks ``epochs`` times)."""
    cfgs = [RunConfig(arch=a, n_train=n, seed=s, **common)
            for a, n, s in itertools.product(archs, n_trains, seeds)]
    return run_many(cfgs, ds)


def extrapolation(ds: dict, archs: list[str], seeds: list[int], train_p=(5.0, 100.0),
                  test_p=(2.0, 5.0), **common) -> pd.DataFrame:
    """Train on p in train_p only, test on tracks with p in test_p (never seen in training)."""
    test = D.momentum_subset(ds["test"], test_p)
    cfgs = [RunConfig(arch=a, seed=s, train_p_range=tuple(train_p), **common)
            for a, s in itertools.product(archs, seeds)]
    return run_many(cfgs, ds, test=test)


def compare(runs: pd.DataFrame, by: str, metric: str = "pos_mean_mm") -> dict:
    """Mean and 95% CI of ``metric`` per value of column ``by`` (needs >= 2 seeds each)."""
    return {str(k): stats.mean_ci(g[metric].to_numpy()) for k, g in runs.groupby(by, sort=False)}


def paired(runs: pd.DataFrame, by: str, a: str, b: str, metric: str = "pos_mean_mm"):
    """Paired difference (same seeds) of ``metric`` between groups a and b of column ``by``."""
    ga = runs[runs[by] == a].sort_values("seed")[metric].to_numpy()
    gb = runs[runs[by] == b].sort_values("seed")[metric].to_numpy()
    return stats.paired_difference(ga, gb)


def record_runs(runs: pd.DataFrame, prefix: str = "",
                extra=("n_params", "training_time_s")) -> dict:
    """Record ``<prefix><arch>-<size>-s<seed>`` -> {pos_mean_mm, pos_95_mm, slope_mean, ...}
    with :func:`physml.results.record`; returns the recorded mapping."""
    from physml.results import record

    out = {}
    for r in runs.to_dict("records"):
        name = f"{prefix}{r['arch']}-{r['size']}-s{r['seed']}"
        if "setting" in r:
            name = f"{prefix}{r['setting']}-s{r['seed']}"
        val = {k: r[k] for k in ("pos_mean_mm", "pos_95_mm", "slope_mean", *extra) if k in r}
        out[name] = record(name, val, note="test-set errors: position mm, slope rad")
    return out


def acceptance(ds: dict) -> float:
    """Fraction of drawn tracks accepted when the training dataset of ``ds`` was generated."""
    import json

    meta = json.loads((D.dataset_dir(ds["spec"]) / "meta.json").read_text())
    return float(meta["acceptance"])


def residual_vs_direct(ds: dict, runs: pd.DataFrame, arch: str, size: str, seeds: list[int],
                       epochs: dict, **common) -> tuple[pd.DataFrame, object]:
    """Train ``arch``-``size`` predicting the state directly (residual=False) for each seed and
    pair it with the residual runs of ``runs``: returns (both runs with a "target" column,
    paired difference residual - direct of pos_mean_mm)."""
    direct = run_many(matrix_configs([arch], [size], seeds, epochs, residual=False, **common), ds)
    resid = runs[(runs["arch"] == arch) & (runs["size"] == size) & runs["seed"].isin(seeds)]
    both = pd.concat([resid.assign(target="residual"), direct.assign(target="direct")])
    return both, paired(both, "target", "residual", "direct")
