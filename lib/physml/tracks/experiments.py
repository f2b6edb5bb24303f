"""Experiments of notebooks 02-05: training matrix, convergence, physics ablations, learning
curves, and the per-notebook summaries their text is built from.

Data: training/validation tracks come from one generated dataset (split by track: every sample
is an independent track, so no track is in two splits), the test tracks from a dataset
generated with a *different seed* — nothing of the test set is ever seen in training or model
selection. ``z_end_mm`` fixes the end plane (dz = z_end - z_start for every track, the task the
source study's targets refer to); ``z_end_mm = 0`` draws dz per track (variable dz).
"""

from __future__ import annotations

import itertools
import json
import re

import numpy as np
import pandas as pd

from physml import stats
from physml.results import count_noun, record
from physml.tracks import data as D
from physml.tracks.training import (
    TARGETS,
    RunConfig,
    load_model,
    metrics,
    predict,
    run,
    throughput,
    to_inputs,
)
from physml.train import load_history

P_MIN_GEV = 2.0  # the targets apply to p >= 2 GeV; lower momenta are reported beside them


def prepare(n_tracks: int, n_test: int, seed: int = 0, test_seed: int = 1000,
            val_fraction: float = 0.1, field_model: str = "default", z_end_mm: float = 8500.0,
            workers: int | None = None, scheduler: str | None = None) -> dict:
    """Generate (or reuse) the datasets: dict with train, val, test, key, field, spec, test_spec.

    ``z_end_mm`` > 0: every track ends at that plane; 0: dz drawn per track (variable dz).
    ``workers`` / ``scheduler``: generate the shards on a local Dask cluster / an existing one
    (:func:`physml.parallel.map_tasks`); the data do not depend on where they were made."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"prepare: val_fraction = {val_fraction}, expected in (0, 1)")
    if z_end_mm < 0:
        raise ValueError(f"prepare: z_end_mm = {z_end_mm}, expected > 0 (fixed) or 0 (variable)")
    planes = {"planes_mm": (float(z_end_mm),)} if z_end_mm else {}
    spec = D.DatasetSpec(n_tracks=n_tracks, seed=seed, field_model=field_model, **planes)
    test_spec = D.DatasetSpec(n_tracks=n_test, seed=test_seed, field_model=field_model, **planes)
    full = D.get(spec, workers=workers, scheduler=scheduler)
    test = D.get(test_spec, workers=workers, scheduler=scheduler)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n_tracks)
    n_val = int(val_fraction * n_tracks)
    val = {k: v[perm[:n_val]] for k, v in full.items()}
    train = {k: v[perm[n_val:]] for k, v in full.items()}
    args = {"n_tracks": n_tracks, "n_test": n_test, "seed": seed, "test_seed": test_seed,
            "val_fraction": val_fraction, "field_model": field_model, "z_end_mm": z_end_mm}
    return {"train": train, "val": val, "test": test, "key": f"{spec.key()}+{test_spec.key()}",
            "field": spec.make_field(), "spec": spec, "test_spec": test_spec, "args": args}


def dataset_summary(ds: dict) -> dict:
    """Sizes, acceptance, the field's on-axis integral (T m) and the end-plane rule of ``ds``."""
    from physml.tracks.ground_truth import field_summary

    meta = json.loads((D.dataset_dir(ds["spec"]) / "meta.json").read_text())
    fs = field_summary(ds["field"])
    planes = ds["spec"].planes_mm
    return {"n_train": len(ds["train"]["dz"]), "n_val": len(ds["val"]["dz"]),
            "n_test": len(ds["test"]["dz"]), "acceptance": float(meta["acceptance"]),
            "integral_by_tesla_m": fs["integral_by_tesla_m"],
            "peak_by_tesla": fs["peak_by_tesla"],
            "end_plane": (f"fixed z_end = {planes[0] / 1000:g} m" if planes and len(planes) == 1
                          else "variable dz")}


def _train_task(task: tuple[RunConfig, dict]) -> str:
    """Worker side of :func:`run_many`: reload the (cached) datasets and train one config."""
    cfg, args = task
    ds = prepare(**args)
    return run(cfg, ds["train"], ds["val"], ds["test"], ds["field"], ds["key"])["run_dir"]


def run_many(configs: list[RunConfig], ds: dict, test: dict | None = None,
             workers: int | None = None, scheduler: str | None = None) -> pd.DataFrame:
    """Train (or reuse) every config; one row per run (config columns + test metrics), test
    metrics on p >= :data:`P_MIN_GEV` (``pos_mean_mm`` ...) and below (``low_p_pos_mean_mm``),
    and the same on the validation tracks (``val_pos_mean_mm`` ...: what model selection uses,
    :func:`best_models`; the test metrics are only ever reported).

    ``workers`` / ``scheduler``: train the configs as independent tasks on a local Dask cluster
    (single-threaded workers: two runs at once on two cores) or an existing one
    (:func:`physml.parallel.map_tasks`); each worker reloads the cached datasets. The runs do
    not depend on where they were trained (each is seeded by its config)."""
    if (workers or scheduler) and test is None and len(configs) > 1:
        from physml.parallel import map_tasks

        map_tasks(_train_task, [(c, ds["args"]) for c in configs], workers=workers,
                  scheduler=scheduler)
    rows = []
    test = test if test is not None else ds["test"]
    key = ds["key"] + ("" if test is ds["test"] else f"+test{len(test['dz'])}")
    for cfg in configs:
        s = run(cfg, ds["train"], ds["val"], test, ds["field"], key)
        row = {**s["config"], **{k: v for k, v in s.items() if k != "config"}}
        row.update(split_by_p(s["run_dir"], test))
        row.update({f"val_{k}": v for k, v in split_by_p(s["run_dir"], ds["val"]).items()
                    if not k.startswith("low_p_")})
        rows.append(row)
    return pd.DataFrame(rows)


def metrics_by_p(model, test: dict, p_min: float = P_MIN_GEV) -> dict:
    """Test metrics of ``model`` on p >= p_min (unprefixed keys, with n_test) and p < p_min
    (``low_p_``); ``test`` holds initial (n, 5), dz (n,), final (n, 5)."""
    p = 1 / np.abs(test["initial"][:, 4])
    out = {}
    for prefix, m in (("", p >= p_min), ("low_p_", p < p_min)):
        if not m.any():
            continue
        u, y = to_inputs({k: v[m] for k, v in test.items()})
        out.update({f"{prefix}{k}": v for k, v in metrics(predict(model, u), y.double().numpy())
                    .items()})
        out[f"{prefix}n_test"] = int(m.sum())
    return out


def split_by_p(run_dir: str, test: dict, p_min: float = P_MIN_GEV) -> dict:
    """Test metrics of one run on p >= p_min (unprefixed keys) and p < p_min (``low_p_``)."""
    return metrics_by_p(load_model(run_dir), test, p_min)


HYBRIDS = {"kick": False, "kick/qp": True}
"""Hybrid variants of the kick prior: a globally scaled network output, or scaled per track
by |q/p| (value: ``qop_scale``). Besides these, ``rk4x<N>`` (``rk4x<N>/qp``): the coarse-RK4
prior with N steps per track on the map (``rk4x<N>bs``: on its C² B-spline), MLP only
(:func:`hybrid_spec`)."""

_RK4_HYBRID = re.compile(r"rk4x([1-9][0-9]*)(bs)?(/qp)?")


def hybrid_spec(name: str) -> dict:
    """RunConfig fields of a hybrid variant name: "kick", "kick/qp", "rk4x<N>[bs][/qp]".
    ValueError naming the variant otherwise."""
    if name in HYBRIDS:
        return {"prior": "kick", "qop_scale": HYBRIDS[name]}
    m = _RK4_HYBRID.fullmatch(str(name))
    if m is None:
        raise ValueError(f"hybrid variant {name!r} not in {sorted(HYBRIDS)} and not "
                         "'rk4x<N>[bs][/qp]' (N >= 1 RK4 steps)")
    return {"prior": "rk4", "qop_scale": m.group(3) is not None, "rk4_steps": int(m.group(1)),
            "rk4_field": "bspline" if m.group(2) else "trilinear"}


def matrix_configs(archs, sizes, seeds, steps: dict, hybrid_archs=(), hybrids=("kick",),
                   **common) -> list[RunConfig]:
    """The architecture x size x seed grid (straight-line prior, pure ML) plus, for each arch
    of ``hybrid_archs`` and each variant of ``hybrids`` (:func:`hybrid_spec`: kick, kick/qp,
    rk4x<N>[/qp]), the hybrid; the rk4 variants only for arch "mlp" (their prior gives the end
    state only). ``steps`` maps arch -> optimiser steps (a hybrid gets its arch's steps)."""
    specs = {}
    for h in hybrids:
        try:
            specs[h] = hybrid_spec(h)
        except ValueError as e:
            raise ValueError(f"matrix_configs: {e}") from None
    cfgs = [RunConfig(arch=a, size=s, seed=seed, steps=int(steps[a]), **common)
            for a, s, seed in itertools.product(archs, sizes, seeds)]
    cfgs += [RunConfig(arch=a, size=s, seed=seed, steps=int(steps[a]), **specs[h], **common)
             for a, h, s, seed in itertools.product(hybrid_archs, hybrids, sizes, seeds)
             if not (specs[h]["prior"] == "rk4" and a != "mlp")]
    return cfgs


def rk4_length_mm(ds: dict) -> float:
    """Distance (mm) over which plain coarse RK4 lays its equal steps for the tracks of ``ds``:
    its end plane (fixed dz) or the top of its dz range (variable dz), so the nodes do not
    depend on which tracks were drawn."""
    spec = ds["spec"]
    return float(max(spec.planes_mm) if spec.planes_mm else spec.dz_range_mm[1])


def coarse_prediction(ds: dict, steps: int, field: str = "trilinear",
                      split: str = "test") -> np.ndarray:
    """End states (n, 4) of the tracks of ``ds[split]`` by plain RK4 with ``steps`` equal steps
    over :func:`rk4_length_mm` (:class:`~physml.tracks.priors.RK4Prior`: a track ends at its
    own plane with one partial step) on the map (or its B-spline)."""
    tracks = ds[split]
    return _coarse_prior(ds, steps, field)(tracks["initial"], tracks["dz"])


def _coarse_prior(ds: dict, steps: int, field: str):
    """The :class:`~physml.tracks.priors.RK4Prior` of :func:`coarse_prediction`."""
    from physml.tracks.priors import RK4Prior

    return RK4Prior.fit(ds["field"], int(steps), np.array([rk4_length_mm(ds)]), field)


def coarse_rk4(ds: dict, steps_list, field: str = "trilinear",
               p_min: float = P_MIN_GEV) -> pd.DataFrame:
    """The rk4 hybrids' prior alone (no network) — the fair competitor: RK4 with N equal steps
    over :func:`rk4_length_mm` (:func:`coarse_prediction`) on the map (or its B-spline) for each
    N of ``steps_list``, scored like the surrogates on the test tracks against the ground truth:
    one row per N with model "rk4x<N> (no network)", rk4_steps, rk4_field, rk4_length_mm,
    mean_steps (steps a test track takes on average: N at a fixed plane, fewer at variable dz,
    where a track stops at its own plane), the :func:`metrics` at p >= p_min,
    ``low_p_pos_mean_mm`` below and, when ``ds`` has validation tracks, their mean position
    error (:data:`SELECT_ON`), on which a step count can be matched to a model without the
    test tracks (:func:`~physml.tracks.benchmark.cheapest_coarse`)."""
    test, length = ds["test"], rk4_length_mm(ds)
    rows = []
    for n in steps_list:
        h = length / int(n)
        row = {"model": f"rk4x{int(n)}{'bs' if field == 'bspline' else ''} (no network)",
               "rk4_steps": int(n), "rk4_field": field, "rk4_length_mm": length,
               "mean_steps": float(np.mean(np.ceil(test["dz"] / h * (1 - 1e-9))))}
        prior = _coarse_prior(ds, n, field)  # fitted once, run on test and validation tracks
        row |= scores_on_test(prior(test["initial"], test["dz"]), test, p_min)
        if "val" in ds:
            val = ds["val"]
            row[SELECT_ON] = scores_on_test(prior(val["initial"], val["dz"]), val,
                                            p_min)["pos_mean_mm"]
        rows.append(row)
    return pd.DataFrame(rows)


def scores_on_test(out: np.ndarray, test: dict, p_min: float = P_MIN_GEV) -> dict:
    """Scores of end states ``out`` (n, 4) predicted for the tracks of ``test``: the
    :func:`metrics` at p >= p_min, ``low_p_pos_mean_mm`` below (when there are such tracks)
    and ``meets_targets`` (all of :data:`TARGETS`)."""
    p = 1 / np.abs(test["initial"][:, 4])
    row = metrics(out[p >= p_min], test["final"][p >= p_min, :4])
    if (p < p_min).any():
        row["low_p_pos_mean_mm"] = metrics(out[p < p_min],
                                           test["final"][p < p_min, :4])["pos_mean_mm"]
    row["meets_targets"] = bool(all(row[k] < v for k, v in TARGETS.items()))
    return row


def polynomial_baselines(ds: dict, degrees, p_min: float = P_MIN_GEV,
                         train: dict | None = None, val: dict | None = None,
                         dz_intervals: int = 0) -> tuple[pd.DataFrame, dict]:
    """The linear-model baseline: the kick prior plus a least-squares polynomial
    (:class:`~physml.tracks.polynomial.PolynomialSurrogate`) for each entry of ``degrees``,
    ``[degree, qop_degree]`` or ``[degree, qop_degree, xy_weight, total_degree]`` (the
    :class:`~physml.tracks.polynomial.Basis`; ``total_degree`` may be None), fitted on
    ``train`` (default ``ds["train"]``; every basis given is reported) and scored like
    :func:`coarse_rk4` on the test tracks of ``ds``. One end plane only (``ValueError`` from
    the fit on variable dz) unless ``dz_intervals`` > 0: then each coefficient is a cubic
    B-spline in dz with that many intervals over the dataset's dz range
    (:class:`~physml.tracks.polynomial_dz.DzSplinePolynomial`). ``val``: tracks none of
    ``train`` holds, scored for model selection (:data:`SELECT_ON`; :func:`pick_polynomial`).
    Returns rows (model ``"kick+poly <label> (least squares)"``, basis (the model's label),
    n_features (coefficients per output), n_train, fit_s, the :func:`metrics` at p >= p_min,
    ``low_p_pos_mean_mm`` below, meets_targets, ``polynomial`` True, and with ``val`` the
    validation error) and ``{model: fitted surrogate}``. ``ValueError`` naming an entry of the
    wrong length."""
    import time

    from physml.tracks.polynomial import Basis, PolynomialSurrogate
    from physml.tracks.polynomial_dz import DzSplinePolynomial
    from physml.tracks.priors import KickTable

    train, test = (ds["train"] if train is None else train), ds["test"]
    table = KickTable.from_field(ds["field"])
    rows, fitted = [], {}
    for entry in degrees:
        if len(entry) not in (2, 4):
            raise ValueError(f"polynomial_baselines: {list(entry)} is not [degree, qop_degree]"
                             " or [degree, qop_degree, xy_weight, total_degree]")
        basis = Basis(*(None if v is None else int(v) for v in entry))
        t0 = time.perf_counter()
        args = (train["initial"], train["dz"], train["final"], table, basis)
        m = (DzSplinePolynomial.fit(*args, dz_intervals, ds["spec"].dz_range_mm)
             if dz_intervals else PolynomialSurrogate.fit(*args))
        name = f"kick+poly {m.label} (least squares)"
        row = {"model": name, "basis": m.label,
               "n_features": m.n_features, "n_train": len(train["dz"]),
               "fit_s": time.perf_counter() - t0, "polynomial": True}
        row |= scores_on_test(m.predict(test["initial"], test["dz"]), test, p_min)
        if val is not None:
            row[SELECT_ON] = scores_on_test(m.predict(val["initial"], val["dz"]), val,
                                            p_min)["pos_mean_mm"]
        rows.append(row)
        fitted[name] = m
    return pd.DataFrame(rows), fitted


def kick_prediction(ds: dict) -> np.ndarray:
    """End states (n, 4) of the single-kick prior alone for the test tracks of ``ds``."""
    from physml.tracks.priors import KickTable, kick_numpy

    test = ds["test"]
    return kick_numpy(test["initial"], test["dz"], KickTable.from_field(ds["field"]))


def kick_alone(ds: dict, p_min: float = P_MIN_GEV) -> dict:
    """The single-kick prior with no correction (the simplest physics rule), scored like
    :func:`coarse_rk4` on the test tracks of ``ds``: model "kick (no fit)" and the
    :func:`scores_on_test`."""
    return {"model": "kick (no fit)"} | scores_on_test(kick_prediction(ds), ds["test"], p_min)


def coarse_rk4_markdown(coarse: pd.DataFrame, table: pd.DataFrame) -> str:
    """What plain coarse RK4 (:func:`coarse_rk4`) achieves against the targets and against the
    rk4 hybrids of ``table`` (a :func:`summary_table`): all numbers from the two tables."""
    parts = [", ".join(f"{int(r.rk4_steps)} steps {r.pos_mean_mm:.3g} mm (95th percentile "
                       f"{r.pos_95_mm:.3g} mm, slope {r.slope_mean:.2g})"
                       for r in coarse.itertuples())]
    meet = coarse[coarse["meets_targets"]].sort_values("rk4_steps")
    txt = (f"RK4 with N equal steps and no network, on the same test tracks (p ≥ {P_MIN_GEV:g} "
           f"GeV): {parts[0]}. ")
    txt += (f"The fewest steps scanned that meet all three targets: **{int(meet.iloc[0].rk4_steps)}"
            "**. " if len(meet) else "No step count scanned meets all three targets. ")
    hyb = table[table["model"].str.contains(r"\+rk4x")]
    for h in hyb.itertuples():
        n = int(re.search(r"\+rk4x(\d+)", h.model).group(1))
        same = coarse[coarse["rk4_steps"] == n]
        if len(same):
            ratio = same.iloc[0]["pos_mean_mm"] / h.pos_mean_mm
            gain = (f"the network divides its prior's error by {ratio:.2g}" if ratio > 1 else
                    f"no better than its prior alone (error ratio {ratio:.2g})")
            txt += (f"{h.model}: {h.pos_mean_mm:.3g} mm against "
                    f"{same.iloc[0]['pos_mean_mm']:.3g} mm for its prior alone — {gain}; it "
                    f"{'meets' if h.meets_targets else 'misses'} the targets. ")
    return txt


def summary_table(runs: pd.DataFrame, group=("model",)) -> pd.DataFrame:
    """Mean over seeds per group, with the 95% CI of pos_mean_mm (:func:`physml.stats.summarize`)
    and whether the group mean meets every target of :data:`TARGETS`."""
    cols = ["pos_mean_mm", "pos_95_mm", "slope_mean", "training_time_s", "optimizer_steps",
            "n_params"] + [c for c in ("val_pos_mean_mm", "low_p_pos_mean_mm",
                                       "tracks_per_s_4096") if c in runs]
    means = runs.groupby(list(group), sort=False)[cols].mean().reset_index()
    means.insert(len(group), "seeds", runs.groupby(list(group), sort=False).size().to_numpy())
    if runs.groupby(list(group)).size().min() >= 2:
        ci = stats.summarize(runs, value="pos_mean_mm", by=list(group))
        means["pos_mean_ci"] = ["[{1}, {2}]".format(*stats.interval_parts(m, lo, hi))
                                for m, lo, hi in zip(ci["mean"], ci["ci_low"], ci["ci_high"],
                                                     strict=True)]
    means["meets_targets"] = np.all([means[k] < v for k, v in TARGETS.items()], axis=0)
    return means


SELECT_ON = "val_pos_mean_mm"
"""Column models are selected on: the mean position error on the *validation* tracks. The test
tracks score the selected model only (selecting on them would bias its score low)."""


def best_models(table: pd.DataFrame) -> dict:
    """The pure-ML model (straight-line or no prior) and the hybrid (kick or coarse-RK4 prior)
    with the lowest validation error (:data:`SELECT_ON`) among the rows of a
    :func:`summary_table` (None where a side is absent). Raises ValueError if the table has no
    validation column."""
    if SELECT_ON not in table:
        raise ValueError(f"best_models: table has no {SELECT_ON!r} column (model selection uses "
                         "validation tracks, never the test tracks)")
    hybrid = table["model"].map(side_of) == "hybrid"
    pick = {}
    for side, m in (("ml", ~hybrid), ("hybrid", hybrid)):
        sub = table[m]
        pick[side] = sub.sort_values(SELECT_ON).iloc[0] if len(sub) else None
    return pick


def side_of(model: str) -> str:
    """The side of a headline a model is on: "hybrid" with a physics prior (``+kick``,
    ``+rk4``), else "ml" (straight-line or no prior)."""
    return "hybrid" if re.search(r"\+(?:kick|rk4)", model) else "ml"


def take_side(picks: dict, candidate: pd.Series, side: str = "hybrid") -> dict:
    """``picks`` (:func:`best_models`) with ``side`` replaced by ``candidate`` (a row with
    :data:`SELECT_ON`) when the side is empty or its validation error is higher; a tie keeps
    the pick. The input is not changed."""
    cur = picks.get(side)
    out = dict(picks)
    if cur is None or candidate[SELECT_ON] < cur[SELECT_ON]:
        out[side] = candidate
    return out


def pick_polynomial(picks: dict, poly: pd.DataFrame) -> dict:
    """``picks`` with the hybrid side replaced by the polynomial baseline of ``poly``
    (:func:`polynomial_baselines` with ``val``) of the lowest validation error when that is
    lower (:func:`take_side`): the kick prior plus a linear model is a hybrid too. Raises
    ValueError if ``poly`` has no validation error."""
    if poly is None or len(poly) == 0:
        return dict(picks)
    if SELECT_ON not in poly:
        raise ValueError(f"pick_polynomial: no {SELECT_ON!r} column (pass val= to "
                         "polynomial_baselines)")
    return take_side(picks, poly.sort_values(SELECT_ON).iloc[0])


def best_surrogate(picks: dict) -> str:
    """The side ("ml" or "hybrid") of :func:`best_models` with the lower validation error."""
    sides = {k: v for k, v in picks.items() if v is not None}
    if not sides:
        raise ValueError("best_surrogate: no model picked")
    return min(sides, key=lambda k: sides[k][SELECT_ON])


def target_gaps(row: pd.Series) -> dict:
    """Each target metric of ``row`` divided by its target (< 1: met)."""
    return {k: float(row[k] / v) for k, v in TARGETS.items()}


def add_throughput(runs: pd.DataFrame, batch: int = 4096, threads: int = 1,
                   dz_mm: float | None = None) -> pd.DataFrame:
    """Add torch tracks/s at ``batch`` with ``threads`` threads: column tracks_per_s_<batch>
    (the rk4 hybrids' numba prior included). Inputs: initial states of the default
    distribution, dz drawn per track or ``dz_mm`` (mm) for all."""
    from physml.timing import threads as limit_threads

    rng = np.random.default_rng(0)
    s, dz = D.sample_initial_states(batch, rng, D.DatasetSpec())
    if dz_mm is not None:
        dz = np.full(batch, float(dz_mm))
    u, _ = to_inputs({"initial": s, "dz": dz, "final": np.zeros_like(s)})
    with limit_threads(threads):
        vals = [throughput(load_model(d), u, (batch,), min_time_s=0.2)[batch]
                for d in runs["run_dir"]]
    return runs.assign(**{f"tracks_per_s_{batch}": vals})


def record_runs(runs: pd.DataFrame, prefix: str = "", label: str = "name",
                extra=("n_params", "training_time_s")) -> None:
    """Record per run ``<prefix><label>`` -> pos_mean_mm, pos_95_mm, slope_mean,
    optimizer_steps (+ ``extra``) as flat keys ``<prefix><label>.<metric>``."""
    for r in runs.to_dict("records"):
        val = {k: r[k] for k in ("pos_mean_mm", "pos_95_mm", "slope_mean", "optimizer_steps",
                                 "low_p_pos_mean_mm", *extra) if k in r}
        record(f"{prefix}{r[label]}", val,
               note=f"test set, p >= {P_MIN_GEV:g} GeV (low_p_: below): position mm, slope rad")


def record_targets(table: pd.DataFrame) -> int:
    """Record ``meets_targets.<model>`` (bool) per model and ``models_meeting_targets`` (count)."""
    record("meets_targets", {str(m): bool(v) for m, v in
                             zip(table["model"], table["meets_targets"], strict=True)})
    n = int(table["meets_targets"].sum())
    record("models_meeting_targets", n, note=f"targets {TARGETS}")
    return n


def residual_vs_direct(ds: dict, runs: pd.DataFrame, arch: str, size: str, seeds: list[int],
                       steps: dict, margin_mm: float, workers: int | None = None,
                       **common) -> tuple[pd.DataFrame, object]:
    """Train ``arch``-``size`` on absolute targets (prior "none") per seed and compare it with
    the straight-line-residual runs of ``runs`` on the same seeds: (both runs with a "target"
    column, :func:`physml.stats.compare` verdict of residual vs direct pos_mean_mm)."""
    direct = run_many([RunConfig(arch=arch, size=size, seed=s, steps=int(steps[arch]),
                                 prior="none", **common) for s in seeds], ds, workers=workers)
    resid = runs[(runs["model"] == f"{arch}-{size}") & runs["seed"].isin(seeds)]
    both = pd.concat([resid.assign(target="residual"), direct.assign(target="direct")])
    a = resid.sort_values("seed")["pos_mean_mm"].to_numpy()
    b = direct.sort_values("seed")["pos_mean_mm"].to_numpy()
    return both, stats.compare(a, b, better="lower", margin=margin_mm)


# ---- 03: convergence ----------------------------------------------------------------------
def histories(runs: pd.DataFrame, kind: str = "all") -> dict[str, dict]:
    """run name -> history dict. ``kind``: "all", "physics" (runs with an ODE loss: PINN and
    RK-PINN), "pinn", "rk_pinn"."""
    sel = {"all": lambda a: True, "physics": lambda a: a != "mlp",
           "pinn": lambda a: a == "pinn", "rk_pinn": lambda a: a == "rk_pinn"}[kind]
    return {r.name: load_history(r.run_dir) for r in runs.itertuples() if sel(r.arch)}


def convergence_table(runs: pd.DataFrame, metric: str = "pos_mean_mm") -> pd.DataFrame:
    """Per run: epochs to reach 90% of the final accuracy (the first epoch whose validation
    ``metric`` <= best / 0.9), optimiser steps, final train data loss, final val loss and their
    ratio (> 1: validation worse than training), params."""
    rows = []
    for r in runs.itertuples():
        h = load_history(r.run_dir)
        vals = np.array([v[metric] for v in h["val"]])
        best = vals.min()
        e90 = int(np.argmax(vals <= best / 0.9)) + 1
        tr = h["train"][-1].get("data_loss", h["train"][-1]["loss"])
        va = h["val"][-1]["loss"]
        rows.append({"model": r.model, "arch": r.arch, "size": r.size, "seed": r.seed,
                     "name": r.name, "params": r.n_params, "epochs": len(vals),
                     "optimizer_steps": r.optimizer_steps, "epochs_to_90pct": e90,
                     f"best_val_{metric}": best, "final_train_data_loss": tr,
                     "final_val_loss": va, "val_over_train": va / tr if tr > 0 else np.nan})
    return pd.DataFrame(rows)


def convergence_summary(conv: pd.DataFrame) -> dict:
    """Mean epochs to 90% per model and the run with the largest validation/train loss ratio."""
    worst = conv.sort_values("val_over_train").iloc[-1]
    per_model = conv.groupby("model", sort=False)["epochs_to_90pct"].mean()
    return {"epochs_to_90pct": per_model.to_dict(), "worst_run": str(worst["name"]),
            "worst_val_over_train": float(worst["val_over_train"])}


def record_convergence(conv: pd.DataFrame) -> None:
    """Record ``epochs_to_90pct.<run>`` and ``val_over_train.<run>`` (flat keys)."""
    record("epochs_to_90pct", {r.name: int(r.epochs_to_90pct) for r in conv.itertuples()})
    record("val_over_train", {r.name: float(r.val_over_train) for r in conv.itertuples()})


# ---- 04: ablations ---------------------------------------------------------------------
LAMBDA_SETTINGS = {"data_only": (1.0, 0.0), "weak": (1.0, 0.01), "balanced": (1.0, 1.0),
                   "strong": (1.0, 10.0), "dominant": (0.1, 1.0)}
"""(lambda_data, lambda_pde) per setting; the initial condition is built into the PINN."""


def lambda_ablation(ds: dict, settings: list[str], seeds: list[int], workers: int | None = None,
                    **common) -> pd.DataFrame:
    """PINN runs for each (lambda_data, lambda_pde) setting and seed, same optimiser steps."""
    cfgs, names = [], []
    for name in settings:
        if name not in LAMBDA_SETTINGS:
            raise ValueError(f"lambda_ablation: setting {name!r} not in {sorted(LAMBDA_SETTINGS)}")
        ld, lp = LAMBDA_SETTINGS[name]
        for seed in seeds:
            cfgs.append(RunConfig(arch="pinn", lambda_data=ld, lambda_pde=lp, seed=seed, **common))
            names.append(name)
    runs = run_many(cfgs, ds, workers=workers)
    runs.insert(0, "setting", names)
    runs["label"] = runs["setting"] + "-s" + runs["seed"].astype(str)
    return runs


def ablation_verdict(lam: pd.DataFrame, margin_mm: float, physics: str = "balanced",
                     baseline: str = "data_only") -> dict:
    """Best setting (lowest mean pos_mean_mm) with its CI, and the verdict of ``physics`` vs
    ``baseline`` (paired over seeds, :func:`physml.stats.compare`, tie only by TOST within
    ``margin_mm``); ``verdict`` is None when either setting was not run."""
    cis = stats.summarize({k: g.sort_values("seed")["pos_mean_mm"].to_numpy()
                           for k, g in lam.groupby("setting", sort=False)})
    best = min(cis, key=lambda k: cis[k].mean)
    out = {"cis": cis, "best": best, "verdict": None}
    if {physics, baseline} <= set(cis):
        out["verdict"] = stats.compare(cis[physics].samples, cis[baseline].samples,
                                       better="lower", margin=margin_mm)
    return out


def by_momentum(runs: pd.DataFrame, ds: dict, ranges=("low", "mid", "high"),
                label: str = "setting") -> pd.DataFrame:
    """Test metrics of each run restricted to each momentum range of the test set."""
    rows = []
    for r in runs.to_dict("records"):
        model = load_model(r["run_dir"])
        for name in ranges:
            sub = D.momentum_subset(ds["test"], name)
            if len(sub["dz"]) == 0:
                continue
            u, y = to_inputs(sub)
            m = metrics(predict(model, u), y.double().numpy())
            rows.append({"run": r["name"], "arch": r["arch"], "seed": r["seed"],
                         label: r.get(label, r["model"]), "range": name,
                         "n_test": len(sub["dz"]), **m})
    return pd.DataFrame(rows)


def record_by_momentum(mom: pd.DataFrame, name: str, label: str = "setting") -> pd.DataFrame:
    """Mean pos_mean_mm over seeds per (label, range), recorded as ``<name>.<label>.<range>``."""
    agg = mom.groupby([label, "range"], sort=False)[["n_test", "pos_mean_mm", "pos_95_mm",
                                                     "slope_mean"]].mean().reset_index()
    record(name, {f"{r[label]}.{r['range']}": float(r["pos_mean_mm"])
                  for r in agg.to_dict("records")}, unit="mm")
    return agg


def data_efficiency(ds: dict, archs: list[str], n_trains: list[int], seeds: list[int],
                    workers: int | None = None, **common) -> pd.DataFrame:
    """Test accuracy vs number of training tracks per architecture, every run with the same
    optimiser steps (``common['steps']``), so only the data size differs."""
    cfgs = [RunConfig(arch=a, n_train=n, seed=s, **common)
            for a, n, s in itertools.product(archs, n_trains, seeds)]
    runs = run_many(cfgs, ds, workers=workers)
    runs["label"] = (runs["model"] + "-n" + runs["n_train"].astype(str) + "-s"
                     + runs["seed"].astype(str))
    return runs


def paired_verdict(runs: pd.DataFrame, by: str, a: str, b: str, margin_mm: float,
                   where: dict | None = None, metric: str = "pos_mean_mm"):
    """:func:`physml.stats.compare` of ``metric`` between groups a and b of column ``by`` on
    the same seeds (rows filtered by ``where`` {column: value}); None if a group is absent."""
    sub = runs
    for k, v in (where or {}).items():
        sub = sub[sub[k] == v]
    ga = sub[sub[by] == a].sort_values("seed")[metric].to_numpy()
    gb = sub[sub[by] == b].sort_values("seed")[metric].to_numpy()
    if len(ga) < 2 or len(gb) < 2:
        return None
    return stats.compare(ga, gb, better="lower", margin=margin_mm)


#: Momentum ranges (GeV) of :func:`extrapolation`: trained above, tested below, never seen.
EXTRAPOLATION_TRAIN_P: tuple[float, float] = (5.0, 100.0)
EXTRAPOLATION_TEST_P: tuple[float, float] = (2.0, 5.0)


def extrapolation_words(train_p=EXTRAPOLATION_TRAIN_P, test_p=EXTRAPOLATION_TEST_P) -> str:
    """``"Trained on p > 5 GeV and tested on 2–5 GeV"`` for the ranges of :func:`extrapolation`
    (the training range's top is the dataset's)."""
    return f"Trained on p > {train_p[0]:g} GeV and tested on {test_p[0]:g}–{test_p[1]:g} GeV"


def extrapolation(ds: dict, archs: list[str], seeds: list[int],
                  train_p=EXTRAPOLATION_TRAIN_P, test_p=EXTRAPOLATION_TEST_P,
                  **common) -> pd.DataFrame:
    """Train on p in train_p only, test on tracks with p in test_p (never seen in training)."""
    test = D.momentum_subset(ds["test"], test_p)
    cfgs = [RunConfig(arch=a, seed=s, train_p_range=tuple(train_p), **common)
            for a, s in itertools.product(archs, seeds)]
    runs = run_many(cfgs, ds, test=test)
    runs["label"] = runs["name"]
    return runs


# ---- learning curves (steps x data size) ------------------------------------------------
def learning_curve(ds: dict, n_trains: list[int], steps: list[int], seeds: list[int],
                   workers: int | None = None, **common) -> pd.DataFrame:
    """Test error of one configuration (``common``: arch, size, prior, ...) for every
    (training tracks, optimiser steps) pair and seed: where does the error flatten?"""
    cfgs = [RunConfig(n_train=int(n), steps=int(k), seed=s, **common)
            for n, k, s in itertools.product(n_trains, steps, seeds)]
    runs = run_many(cfgs, ds, workers=workers)
    runs["label"] = (runs["model"] + "-n" + runs["n_train"].astype(str) + "-k"
                     + runs["steps"].astype(str) + "-s" + runs["seed"].astype(str))
    return runs


def flattening(curve: pd.DataFrame, x: str, metric: str = "pos_mean_mm",
               gain: float = 0.8) -> dict:
    """Along column ``x`` (the other budget at its largest), the mean error per value and the
    first value after which doubling-or-more of ``x`` improves the error by less than 1/gain
    (``None``: it still improves at the largest ``x`` run)."""
    other = "steps" if x == "n_train" else "n_train"
    sub = curve[curve[other] == curve[other].max()]
    m = sub.groupby(x)[metric].mean().sort_index()
    flat = None
    for (xa, va), (_, vb) in zip(m.items(), list(m.items())[1:], strict=False):
        if vb > gain * va:
            flat = int(xa)
            break
    return {"values": {int(k): float(v) for k, v in m.items()}, "flattens_after": flat,
            "at": int(curve[other].max())}


def best_models_markdown(picks: dict) -> str:
    """One sentence per side of :func:`best_models`: errors, their ratio to each target,
    budget and the p < 2 GeV error (all from the table)."""
    out = []
    for side, row in picks.items():
        if row is None:
            continue
        g = target_gaps(row)
        low = row.get("low_p_pos_mean_mm", float("nan"))
        out.append(
            f"Best {'hybrid (physics prior + network)' if side == 'hybrid' else 'pure network'} "
            f"on the validation tracks: {row['model']} — on the test tracks mean "
            f"{row['pos_mean_mm']:.3g} mm ({g['pos_mean_mm']:.2g}x "
            f"target), 95th percentile {row['pos_95_mm']:.3g} mm ({g['pos_95_mm']:.2g}x), slope "
            f"{row['slope_mean']:.2g} ({g['slope_mean']:.2g}x), after "
            f"{row['optimizer_steps']:,.0f} optimiser steps and {row['training_time_s']:.0f} s of "
            f"training per run; p < {P_MIN_GEV:g} GeV: {low:.3g} mm.")
    return " ".join(out)


def side_errors(runs: pd.DataFrame, picks: dict) -> tuple[dict, dict]:
    """Per-seed pos_mean_mm (seeds,) of each picked model of :func:`best_models`, and a label
    per side (model and number of seeds) — the ML / hybrid sides of a headline."""
    vals, names = {}, {}
    for side, row in picks.items():
        if row is None:
            continue
        sel = runs[runs["model"] == row["model"]].sort_values("seed")
        vals[side] = sel["pos_mean_mm"].to_numpy()
        names[side] = f"{row['model']}, {len(sel)} seeds"
    return vals, names


# ---- the physics-loss questions at a research budget (notebook 04) -------------------------
def research_budget_markdown(rec, own_verdict, own_steps: int, margin_mm: float) -> str:
    """The physics-loss questions answered again on the runs a research render recorded
    (``rec``: a :class:`physml.tracks.recorded.Record` with table ``lambda`` and, if present,
    ``efficiency`` and ``extrapolation``), set beside this run's verdict ``own_verdict``
    (balanced vs data-only, None if not run) at ``own_steps`` optimiser steps per run.

    Every CI and verdict is recomputed from the recorded per-seed values with
    :func:`ablation_verdict` and :func:`paired_verdict`; the text says the research budget
    (median optimiser steps of the recorded PINN runs), where the record came from, and whether
    the verdict on the physics loss is the same at both budgets."""
    lam = rec.tables["lambda"]
    steps = int(np.median(lam["optimizer_steps"]))
    abl = ablation_verdict(lam, margin_mm)
    n_seeds = int(lam["seed"].nunique())
    p = rec.params
    setup = ", ".join(w.format(p[k]) for k, w in (("batch_size", "batch {:,}"),
                                                    ("n_colloc", "{:,} collocation points"))
                      if isinstance(p.get(k), int))
    text = [f"**At the research budget.** The runs above took {own_steps:,} optimiser steps "
            f"each; the research profile's took {steps:,} "
            f"({count_noun(n_seeds, 'seed')} per setting" + (f"; {setup}" if setup else "")
            + f"), {rec.provenance()}. There the best weighting is **{abl['best']}** "
            f"({abl['cis'][abl['best']]} mm)."]
    v = abl["verdict"]
    if v is not None:
        line = (f"Balanced physics (1/1) minus data-only: {v.diff} mm — "
                f"**{v.sentence}**")
        if own_verdict is not None:
            line += ("; the same verdict as at this run's budget" if own_verdict.outcome ==
                     v.outcome else f"; at this run's budget: {own_verdict.sentence}")
        text.append(line + ".")
    eff = rec.tables.get("efficiency")
    if eff is not None and {"arch", "n_train"} <= set(eff.columns):
        parts = []
        for n in sorted({int(eff["n_train"].min()), int(eff["n_train"].max())}):
            c = paired_verdict(eff, "arch", "pinn", "mlp", margin_mm, where={"n_train": n})
            if c is not None:
                parts.append(f"with {n:,} training tracks {c.diff} mm "
                             f"({c.sentence})")
        if parts:
            text.append("PINN − MLP " + "; ".join(parts) + ".")
    ext = rec.tables.get("extrapolation")
    if ext is not None and "arch" in ext.columns:
        e = ablation_verdict(ext.assign(setting=ext["arch"]), margin_mm, physics="pinn",
                             baseline="mlp")
        if e["verdict"] is not None:
            text.append(f"{extrapolation_words()}, PINN − MLP: "
                        f"{e['verdict'].diff} mm ({e['verdict'].sentence}).")
    return " ".join(text)
