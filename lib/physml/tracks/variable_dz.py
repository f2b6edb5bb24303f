"""Variable dz in notebook 05: the polynomial whose coefficients are cubic B-splines in dz
(:class:`~physml.tracks.polynomial_dz.DzSplinePolynomial`) beside plain RK4 on the same tracks.

:func:`compare` fits the polynomial for each basis on the training tracks, chooses one on the
validation tracks, scores every candidate and plain RK4 with N equal steps (each track stopping
at its own plane, :func:`~physml.tracks.experiments.coarse_rk4`) on the test tracks, matches
the cheapest RK4 at least as accurate as the chosen polynomial *on the validation tracks*, and
times the two interleaved (:func:`~physml.tracks.benchmark.batch_ratios`). Networks trained at
variable dz (the shipped ones, scored on the same test tracks) stand beside them: the most
accurate hybrid on validation tracks, polynomial or network, is the headline's hybrid side, and
the pure network enters it only when it is at least that accurate. The rest turns the result into
the report's record, figure inputs, sentences and scoreboard headline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from physml.results import Headline, count_noun, headline, record
from physml.stats import interval_parts
from physml.tracks import benchmark, experiments
from physml.tracks.experiments import P_MIN_GEV, SELECT_ON
from physml.tracks.training import load_model, predict, to_inputs

TIMED_BATCHES = 16
"""Batches per timed call: the polynomial and RK4 both run over a million tracks/s here, so a
call of one batch is too short to time against the timer's noise."""


@dataclass
class Comparison:
    """What :func:`compare` measured. ``poly``: rows of
    :func:`~physml.tracks.experiments.polynomial_baselines` (with :data:`SELECT_ON`),
    ``models`` their fitted models by name, ``kick`` the prior alone
    (:func:`~physml.tracks.experiments.kick_alone`), ``coarse`` the plain-RK4 rows; ``poly_tp``
    / ``coarse_tp`` their timings at ``batch``; ``best`` the polynomial chosen on validation
    tracks; ``networks`` the networks' rows (:func:`physml.tracks.shipped.runs_table`, maybe
    empty) and ``net_tp`` their timings; ``sides`` the headline's candidates
    (:func:`sides`): ``hybrid`` and, when at least as accurate, ``ml``; ``match`` the cheapest
    RK4 at least as accurate as the hybrid side on validation tracks (None if none is),
    ``ratio`` each side's :func:`~physml.tracks.benchmark.batch_ratios` row against it (None
    likewise), from ``ratio_repeats`` interleaved repeats."""

    ds: dict
    poly: pd.DataFrame
    models: dict
    kick: dict
    coarse: pd.DataFrame
    poly_tp: pd.DataFrame
    coarse_tp: pd.DataFrame
    best: pd.Series
    match: pd.Series | None
    ratio: pd.DataFrame | None
    batch: int
    threads: int
    repeats: int
    ratio_repeats: int
    networks: pd.DataFrame = field(default_factory=pd.DataFrame)
    net_tp: pd.DataFrame = field(default_factory=pd.DataFrame)
    sides: dict = field(default_factory=dict)
    left_out: str = ""


def candidates(best: pd.Series, networks: pd.DataFrame, net_tp: pd.DataFrame,
               batch: int) -> pd.DataFrame:
    """The models that may stand in the variable-dz headline: the polynomial ``best`` (its
    validation error) and each network of ``networks`` (its
    :func:`~physml.tracks.benchmark.selection_error`: for a shipped one the validation error it
    recorded) with its fastest backend in ``net_tp`` at ``batch``. Columns model, side
    ("hybrid" or "ml", :func:`~physml.tracks.experiments.side_of`; the polynomial is a hybrid),
    kind ("polynomial" or "network"), val_mm, matched_on, pos_mean_mm, run_dir, backend.
    ValueError naming a network with no validation error or no timing at ``batch``."""
    rows = [{"model": best["model"], "side": "hybrid", "kind": "polynomial",
             "val_mm": float(best[SELECT_ON]), "matched_on": "validation",
             "pos_mean_mm": float(best["pos_mean_mm"]), "run_dir": "", "backend": "numba"}]
    for r in networks.itertuples():
        val, what = benchmark.selection_error(r)
        if not np.isfinite(val):
            raise ValueError(f"variable dz: network {r.model!r} has no validation error to be "
                             "matched on")
        t = net_tp[(net_tp["model"] == r.model) & (net_tp["batch"] == batch)]
        if t.empty:
            raise ValueError(f"variable dz: network {r.model!r} has no timing at batch {batch}")
        rows.append({"model": r.model, "side": experiments.side_of(r.model), "kind": "network",
                     "val_mm": val, "matched_on": what, "pos_mean_mm": float(r.pos_mean_mm),
                     "run_dir": r.run_dir,
                     "backend": t.loc[t["tracks_per_s"].idxmax(), "backend"]})
    return pd.DataFrame(rows)


def sides(cands: pd.DataFrame) -> tuple[dict, str]:
    """The headline's sides from :func:`candidates`: ``hybrid`` the hybrid with the lowest
    validation error (a tie keeps the earlier row, the polynomial); ``ml`` the pure network
    with the lowest, only when it is at most the hybrid's (a speed verdict between models
    whose accuracies differ by orders of magnitude would compare different products). Also one
    sentence naming the pure network left out, with its error ("" when none is)."""
    hyb = cands[cands["side"] == "hybrid"]
    if hyb.empty:
        raise ValueError("variable dz: no hybrid candidate")
    out = {"hybrid": hyb.loc[hyb["val_mm"].idxmin()]}
    ml = cands[cands["side"] == "ml"]
    if ml.empty:
        return out, ""
    m = ml.loc[ml["val_mm"].idxmin()]
    h = out["hybrid"]
    if m["val_mm"] <= h["val_mm"]:
        return out | {"ml": m}, ""
    return out, (f"The pure network {m['model']} ({m['val_mm']:.3g} mm on its "
                 f"{m['matched_on']} tracks, {m['val_mm'] / h['val_mm']:.3g}x the error of "
                 f"{h['model']}) is left out of the speed comparison at matched accuracy.")


def side_caller(row: pd.Series, models: dict, threads: int):
    """``make(batch, calls)`` of one :func:`candidates` row at variable dz: the polynomial's
    numba kernel, or the network on its fastest backend."""
    if row["kind"] == "polynomial":
        return benchmark.polynomial_caller(models[row["model"]], dz_mm=None)
    return benchmark.model_caller(row["run_dir"], row["backend"], threads, dz_mm=None)


def compare(ds: dict, degrees, intervals: int, coarse_steps, batch: int, threads: int,
            repeats: int = 5, networks: pd.DataFrame | None = None,
            ratio_repeats: int | None = None) -> Comparison:
    """The variable-dz comparison on ``ds`` (a variable-dz dataset of
    :func:`~physml.tracks.experiments.prepare` with validation tracks): the polynomial for each
    basis of ``degrees`` with ``intervals`` B-spline intervals over the dataset's dz range,
    ``networks`` trained at variable dz (rows of :func:`physml.tracks.shipped.runs_table` on
    ``ds["test"]``; None: none) and plain RK4 for each N of ``coarse_steps``, timed at
    ``batch`` on ``threads`` threads (``repeats`` each, :data:`TIMED_BATCHES` batches per call,
    dz drawn per track); each side of :func:`sides` then timed interleaved with the cheapest
    RK4 at least as accurate as the hybrid side on validation tracks, ``ratio_repeats`` times
    (default ``repeats``: the headline's verdict rests on these, so a run whose ratio sits near
    1x wants more)."""
    ratio_repeats = repeats if ratio_repeats is None else int(ratio_repeats)
    items = TIMED_BATCHES * batch
    networks = pd.DataFrame() if networks is None else networks
    poly, models = experiments.polynomial_baselines(ds, degrees, val=ds["val"],
                                                    dz_intervals=intervals)
    poly_tp = benchmark.polynomial_timings(models, poly, [batch], threads, repeats=repeats,
                                           min_items=items, dz_mm=None)
    net_tp = (benchmark.model_timings(networks, [batch], threads, repeats=repeats,
                                      min_items=items, dz_mm=None)
              if len(networks) else pd.DataFrame())
    coarse = experiments.coarse_rk4(ds, coarse_steps)
    coarse_tp = benchmark.coarse_rk4_timings(coarse, ds["field"], [batch], threads,
                                             repeats=repeats, min_items=items, dz_mm=None)
    best = poly.loc[poly[SELECT_ON].idxmin()]
    chosen, left_out = sides(candidates(best, networks, net_tp, batch))
    match = benchmark.cheapest_coarse(coarse, chosen["hybrid"]["val_mm"], on=SELECT_ON)
    ratio = None if match is None else benchmark.batch_ratios(
        {r["model"]: side_caller(r, models, threads) for r in chosen.values()},
        benchmark.coarse_caller(match, ds["field"], dz_mm=None), [batch], threads,
        repeats=ratio_repeats, min_items=items)
    return Comparison(ds, poly, models, experiments.kick_alone(ds), coarse, poly_tp, coarse_tp,
                      best, match, ratio, int(batch), int(threads), int(repeats), ratio_repeats,
                      networks, net_tp, chosen, left_out)


def record_results(c: Comparison) -> None:
    """Record ``variable_dz``: per polynomial, per network, the kick alone and per plain RK4
    their test scores (below p_min too, when the test tracks go there), validation error and
    tracks/s, and each side's interleaved ratio to the matched RK4 (``hybrid_over_matched_rk4``,
    ``ml_over_matched_rk4``)."""
    poly_rate = benchmark.rates_at(c.batch, c.poly_tp)
    rk4_rate = benchmark.rates_at(c.batch, c.coarse_tp)
    keys = ("pos_mean_mm", "pos_95_mm", "slope_mean")
    low = ("low_p_pos_mean_mm",) if "low_p_pos_mean_mm" in c.poly else ()  # tracks below p_min
    out = {r.model: {k: getattr(r, k) for k in (*keys, *low, "n_features", "fit_s",
                                                  "meets_targets", SELECT_ON)}
           | {"tracks_per_s": poly_rate[r.model]} for r in c.poly.itertuples()}
    if len(c.networks):
        net_rate = benchmark.rates_at(c.batch, c.net_tp)
        out |= {r.model: {k: getattr(r, k) for k in (*keys, *low, "meets_targets",
                                                      "optimizer_steps", "n_train")}
                | {"validation_pos_mean_mm": benchmark.selection_error(r)[0],
                   "tracks_per_s": net_rate[r.model]} for r in c.networks.itertuples()}
    out[c.kick["model"]] = {k: c.kick[k] for k in keys}
    out |= {r.model: {k: getattr(r, k) for k in (*keys, *low, "mean_steps", SELECT_ON)}
            | {"tracks_per_s": rk4_rate[r.model]} for r in c.coarse.itertuples()}
    if c.ratio is not None:
        for side, row in c.sides.items():
            r = _ratio_row(c, row["model"])
            out[f"{side}_over_matched_rk4"] = {
                "model": row["model"], "rk4": c.match["model"], "ratio": r["ratio"],
                "ratio_low": r["ratio_low"], "ratio_high": r["ratio_high"]}
    record("variable_dz", out,
           note=f"dz drawn per track in {c.ds['spec'].dz_range_mm} mm; test set, p >= "
                f"{P_MIN_GEV:g} GeV ({SELECT_ON}: validation set; a shipped network's "
                f"validation_pos_mean_mm: its own recorded one); tracks/s at batch {c.batch}, "
                f"{count_noun(c.threads, 'thread')}, numba (networks: fastest of torch and onnx)")


def _ratio_row(c: Comparison, model: str) -> pd.Series:
    """The row of ``c.ratio`` of ``model``; ValueError if it has none."""
    rows = c.ratio[c.ratio["method"] == model]
    if len(rows) != 1:
        raise ValueError(f"variable dz: {len(rows)} interleaved timings of {model!r}")
    return rows.iloc[0]


def predictions(c: Comparison) -> dict:
    """End states (n, 4) of the test tracks: the kick alone, the matched RK4 (when there is
    one), each polynomial and each network, by label
    (:func:`physml.tracks.figures.error_vs_dz`)."""
    test = c.ds["test"]
    out = {c.kick["model"]: experiments.kick_prediction(c.ds)}
    if c.match is not None:
        out[c.match["model"]] = experiments.coarse_prediction(c.ds, c.match["rk4_steps"])
    out |= {r.model: c.models[r.model].predict(test["initial"], test["dz"])
            for r in c.poly.itertuples()}
    u = to_inputs(test)[0]
    return out | {r.model: predict(load_model(r.run_dir), u) for r in c.networks.itertuples()}


def coarse_table(c: Comparison) -> pd.DataFrame:
    """The plain-RK4 rows as the report shows them (the columns present), with their
    tracks/s."""
    cols = ["model", "mean_steps", "pos_mean_mm", "pos_95_mm", "slope_mean",
            "low_p_pos_mean_mm", SELECT_ON]
    rate = c.coarse["model"].map(benchmark.rates_at(c.batch, c.coarse_tp))
    return c.coarse[[k for k in cols if k in c.coarse]].assign(tracks_per_s=rate)


def speed_points(c: Comparison) -> pd.DataFrame:
    """Points of :func:`physml.tracks.figures.accuracy_vs_speed` for the families."""
    fams = {"plain RK4, N equal steps": c.coarse_tp,
            "kick + polynomial, B-splines in dz": c.poly_tp}
    if len(c.networks):
        fams["network (shipped)"] = c.net_tp
    return benchmark.accuracy_speed_points(c.batch, fams, steps=c.coarse)


def _side_name(row: pd.Series) -> str:
    """A headline side's label: model, where it runs, its test error and how it was chosen."""
    where = "numba" if row["kind"] == "polynomial" else row["backend"]
    return (f"{row['model']} ({where}; mean position error {row['pos_mean_mm']:.3g} mm, "
            f"{row['val_mm']:.3g} mm on its {row['matched_on']} tracks)")


def speed_headline(c: Comparison, margin: float) -> Headline | None:
    """The scoreboard's variable-dz row: tracks/s of the matched RK4 (physics), of the hybrid
    side and, when it is as accurate, of the pure network (:func:`sides`), from their
    interleaved timings (repeat k of a side beside repeat k of RK4). Paired when only the
    hybrid stands beside RK4; with the network too, each side has its own RK4 repeats, so the
    sides are compared unpaired. None when no RK4 scanned is as accurate."""
    if c.ratio is None:
        return None
    h = _ratio_row(c, c.sides["hybrid"]["model"])
    ml = c.sides.get("ml")
    lo, hi = (v / 1000 for v in c.ds["spec"].dz_range_mm)
    extra = ({} if ml is None else
             {"ml": np.asarray(_ratio_row(c, ml["model"])["timing"].rates)})
    names = {"physics": f"plain RK4, {int(c.match['rk4_steps'])} equal steps over "
                        f"{c.match['rk4_length_mm'] / 1000:g} m (numba; mean position error "
                        f"{c.match['pos_mean_mm']:.3g} mm)",
             "hybrid": _side_name(c.sides["hybrid"])}
    if ml is not None:
        names["ml"] = _side_name(ml)
    nets = ("No network is trained at variable dz." if c.networks.empty else
            c.left_out or "The pure network is as accurate and stands as ML.")
    return headline(
        "tracks_per_second_variable_dz", f"Which extrapolates more tracks per second on "
        f"{count_noun(c.threads, 'thread')} at variable dz ({lo:g}–{hi:g} m), at the best "
        "variable-dz hybrid's accuracy?", "tracks per second", "tracks/s", "higher",
        physics=np.asarray(h["anchor_timing"].rates), hybrid=np.asarray(h["timing"].rates),
        **extra, names=names, margin=margin, paired=ml is None, scale="log",
        note=f"{c.ratio_repeats} timing repeats, each side interleaved with the RK4, batch "
             f"{c.batch}, dz drawn per track; hybrid: the polynomial or hybrid network with the "
             "lowest validation error; physics: the plain RK4 with the fewest steps scanned at "
             f"least as accurate on the validation tracks. {nets}")


def polynomial_markdown(vdz: pd.DataFrame, kick: dict, vdz_tp: pd.DataFrame, batch: int,
                        n_train: int, dz_range_mm, fixed: pd.Series) -> str:
    """The variable-dz report beside the fixed plane: ``vdz`` the rows of
    :func:`physml.tracks.experiments.polynomial_baselines` with ``dz_intervals`` (timed in
    ``vdz_tp`` at ``batch``), ``kick`` the prior alone
    (:func:`physml.tracks.experiments.kick_alone`), ``fixed`` the fixed-plane model's row it is
    set beside. Every number from the tables; ValueError if ``vdz`` is empty."""
    if vdz.empty:
        raise ValueError("polynomial_markdown: no variable-dz model")
    rate = benchmark.rates_at(batch, vdz_tp)
    parts = [benchmark.fit_scores(r, "coefficients per output",
                                  f"; p < {P_MIN_GEV:g} GeV {r.low_p_pos_mean_mm:.3g} mm")
             + (", meeting" if r.meets_targets else ", not meeting")
             + f" all three accuracy targets, at {rate[r.model]:,.0f} tracks/s"
             for r in vdz.itertuples()]
    return (f"**Variable dz, beside the fixed plane.** With dz drawn per track in "
            f"[{dz_range_mm[0]:g}, {dz_range_mm[1]:g}] mm ({n_train:,} training tracks of "
            f"their own, same seeds; test tracks p ≥ {P_MIN_GEV:g} GeV), the kick alone is "
            f"off by {kick['pos_mean_mm']:.3g} mm on average. The same polynomial with each "
            f"coefficient a cubic B-spline in dz (dzK: K intervals), fitted in closed form "
            f"and run as a compiled kernel (batch {batch}): " + "; ".join(parts)
            + ". These means are over every dz; the figure above gives them per dz bin. At the "
            f"fixed plane, {fixed['basis']} reaches {fixed['pos_mean_mm']:.3g} mm.")


def networks_markdown(c: Comparison) -> str:
    """The networks trained at variable dz beside the polynomial (:attr:`Comparison.networks`,
    shipped, scored on the same test tracks): budget, scores, tracks/s, whether each is as
    accurate as the chosen polynomial on validation tracks, and the plain RK4 with the fewest
    steps at least as accurate there (its tracks/s from the table, not interleaved). Every
    number from the tables."""
    if c.networks.empty:
        return ("No network trained at variable dz is evaluated in this run (parameter "
                "vdz_shipped_models): the networks above are trained at the fixed plane only.")
    rate = benchmark.rates_at(c.batch, c.net_tp)
    rk4_rate = benchmark.rates_at(c.batch, c.coarse_tp)
    best_val = float(c.best[SELECT_ON])
    parts = []
    for r in c.networks.itertuples():
        val, what = benchmark.selection_error(r)
        rel = (f"{val / best_val:.3g}x the polynomial's error" if val > best_val else
               "at most the polynomial's error")
        m = benchmark.cheapest_coarse(c.coarse, val, on=SELECT_ON)
        rk4 = ("; no plain RK4 scanned is as accurate on the validation tracks" if m is None
               else f"; plain RK4 as accurate on the validation tracks needs {m['rk4_steps']} "
                    f"steps ({m[SELECT_ON]:.3g} mm) and runs {rk4_rate[m['model']]:,.0f} "
                    f"tracks/s ({rk4_rate[m['model']] / rate[r.model]:.2g}x)")
        parts.append(
            f"{r.model}, {r.optimizer_steps:,.0f} optimiser steps at batch {r.batch_size:.0f} "
            f"on {r.n_train:,.0f} tracks: {r.pos_mean_mm:.3g} mm mean (95th percentile "
            f"{r.pos_95_mm:.3g} mm, slope {r.slope_mean:.2g}; p < {P_MIN_GEV:g} GeV "
            f"{r.low_p_pos_mean_mm:.3g} mm), {val:.3g} mm on its {what} tracks ({rel}), "
            + ("meeting" if r.meets_targets else "not meeting")
            + f" all three accuracy targets, at {rate[r.model]:,.0f} tracks/s" + rk4)
    return (f"**Networks at variable dz.** Trained on tracks with dz drawn per track, at a "
            f"research budget, and shipped (`data/tracks/models`); scored on the same test "
            f"tracks, timed at batch {c.batch} on {count_noun(c.threads, 'thread')}, fastest of "
            f"PyTorch and ONNX Runtime: " + "; ".join(parts) + f". The polynomial chosen here, "
            f"{c.best['model']}: {c.best['pos_mean_mm']:.3g} mm, {best_val:.3g} mm on the "
            "validation tracks." + (f" {c.left_out}" if c.left_out else ""))


def rk4_markdown(coarse: pd.DataFrame, hybrid: pd.Series, ratio: pd.Series | None,
                 batch: int, threads: int) -> str:
    """Plain RK4 at variable dz beside ``hybrid``, the headline's hybrid side (a row of
    :func:`candidates` chosen by :func:`sides`: the polynomial or a hybrid network with the
    lowest validation error): ``coarse`` the rows of
    :func:`physml.tracks.experiments.coarse_rk4` on the same tracks; ``ratio`` the
    :func:`~physml.tracks.benchmark.batch_ratios` row of the hybrid timed interleaved with the
    cheapest of them at least as accurate on the validation tracks
    (:func:`~physml.tracks.benchmark.cheapest_coarse` on
    :data:`~physml.tracks.experiments.SELECT_ON`; None when none is), so neither side's choice
    sees the test tracks. Every number from the tables; ValueError if ``coarse`` is empty, or
    if a row matches and there is no ``ratio``."""
    if coarse.empty:
        raise ValueError("rk4_markdown: no coarse RK4 rows")
    length = coarse["rk4_length_mm"].iloc[0]
    top = coarse.loc[coarse["pos_mean_mm"].idxmin()]
    txt = (f"**Physics at variable dz**, on the same test tracks (table above): plain RK4 "
           f"(numba) on the map with N equal steps laid over {length / 1000:g} m, each track "
           f"stopping at its own plane with one partial step, for N from "
           f"{coarse['rk4_steps'].min()} to {coarse['rk4_steps'].max()}; the most accurate, "
           f"N = {int(top['rk4_steps'])} ({top['mean_steps']:.1f} steps per track on average), "
           f"is off by {top['pos_mean_mm']:.3g} mm on average. ")
    m = benchmark.cheapest_coarse(coarse, hybrid["val_mm"], on=SELECT_ON)
    if m is None:
        return txt + (f"No step count scanned is as accurate on the validation tracks as "
                      f"{hybrid['model']} ({hybrid['val_mm']:.3g} mm on its "
                      f"{hybrid['matched_on']} tracks).")
    if ratio is None:
        raise ValueError(f"rk4_markdown: {m['model']} matches {hybrid['model']} but there is "
                         "no interleaved timing of the two")
    r, lo, hi = interval_parts(ratio["ratio"], ratio["ratio_low"], ratio["ratio_high"], ".2g")
    faster = ratio["ratio_low"] > 1
    slower = ratio["ratio_high"] < 1
    verdict = ("faster than" if faster else "slower than" if slower else
               "not distinguishable in speed from")
    return txt + (
        f"The fewest steps scanned at least as accurate as {hybrid['model']} (the hybrid "
        f"chosen on validation tracks) on the validation tracks, {m[SELECT_ON]:.3g} mm against "
        f"{hybrid['val_mm']:.3g} mm on its {hybrid['matched_on']} tracks: "
        f"**{int(m['rk4_steps'])}** ({m['mean_steps']:.1f} per track). On the test tracks: "
        f"RK4 {m['pos_mean_mm']:.3g} mm (95th percentile {m['pos_95_mm']:.3g} mm, slope "
        f"{m['slope_mean']:.2g}), the hybrid {hybrid['pos_mean_mm']:.3g} mm. Timed interleaved "
        f"with it on the same tracks and {count_noun(threads, 'thread')} at batch {batch}, the "
        f"hybrid runs **{r}x** [{lo}, {hi}] its "
        f"tracks/s: {verdict} physics at matched accuracy.")


def hybrid_ratio(c: Comparison) -> pd.Series | None:
    """The hybrid side's interleaved ratio row to the matched RK4 (None when none matched)."""
    return None if c.ratio is None else _ratio_row(c, c.sides["hybrid"]["model"])
