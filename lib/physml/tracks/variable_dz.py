"""Variable dz in notebook 05: the polynomial whose coefficients are cubic B-splines in dz
(:class:`~physml.tracks.polynomial_dz.DzSplinePolynomial`) beside plain RK4 on the same tracks.

:func:`compare` fits the polynomial for each basis on the training tracks, chooses one on the
validation tracks, scores every candidate and plain RK4 with N equal steps (each track stopping
at its own plane, :func:`~physml.tracks.experiments.coarse_rk4`) on the test tracks, matches
the cheapest RK4 at least as accurate as the chosen polynomial *on the validation tracks*, and
times the two interleaved (:func:`~physml.tracks.benchmark.batch_ratios`). The rest turns the
result into the report's record, figure inputs, sentences and scoreboard headline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from physml.results import Headline, headline, record
from physml.tracks import benchmark, experiments
from physml.tracks.experiments import P_MIN_GEV, SELECT_ON

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
    tracks, ``match`` the cheapest RK4 at least as accurate there (None if none is), ``ratio``
    the polynomial's :func:`~physml.tracks.benchmark.batch_ratios` row against it (None
    likewise)."""

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


def compare(ds: dict, degrees, intervals: int, coarse_steps, batch: int, threads: int,
            repeats: int = 5) -> Comparison:
    """The variable-dz comparison on ``ds`` (a variable-dz dataset of
    :func:`~physml.tracks.experiments.prepare` with validation tracks): the polynomial for each
    basis of ``degrees`` with ``intervals`` B-spline intervals over the dataset's dz range, and
    plain RK4 for each N of ``coarse_steps``, timed at ``batch`` on ``threads`` threads
    (``repeats`` each, :data:`TIMED_BATCHES` batches per call, dz drawn per track)."""
    items = TIMED_BATCHES * batch
    poly, models = experiments.polynomial_baselines(ds, degrees, val=ds["val"],
                                                    dz_intervals=intervals)
    poly_tp = benchmark.polynomial_timings(models, poly, [batch], threads, repeats=repeats,
                                           min_items=items, dz_mm=None)
    coarse = experiments.coarse_rk4(ds, coarse_steps)
    coarse_tp = benchmark.coarse_rk4_timings(coarse, ds["field"], [batch], threads,
                                             repeats=repeats, min_items=items, dz_mm=None)
    best = poly.loc[poly[SELECT_ON].idxmin()]
    match = benchmark.cheapest_coarse(coarse, best[SELECT_ON], on=SELECT_ON)
    ratio = None if match is None else benchmark.batch_ratios(
        {best["model"]: benchmark.polynomial_caller(models[best["model"]], dz_mm=None)},
        benchmark.coarse_caller(match, ds["field"], dz_mm=None), [batch], threads,
        repeats=repeats, min_items=items)
    return Comparison(ds, poly, models, experiments.kick_alone(ds), coarse, poly_tp, coarse_tp,
                      best, match, ratio, int(batch), int(threads), int(repeats))


def record_results(c: Comparison) -> None:
    """Record ``variable_dz``: per polynomial, the kick alone and per plain RK4 their test
    scores (below p_min too, when the test tracks go there), validation error and tracks/s,
    and the polynomial's interleaved ratio to the matched RK4."""
    poly_rate = benchmark.rates_at(c.batch, c.poly_tp)
    rk4_rate = benchmark.rates_at(c.batch, c.coarse_tp)
    keys = ("pos_mean_mm", "pos_95_mm", "slope_mean")
    low = ("low_p_pos_mean_mm",) if "low_p_pos_mean_mm" in c.poly else ()  # tracks below p_min
    out = {r.model: {k: getattr(r, k) for k in (*keys, *low, "n_features", "fit_s",
                                                  "meets_targets", SELECT_ON)}
           | {"tracks_per_s": poly_rate[r.model]} for r in c.poly.itertuples()}
    out[c.kick["model"]] = {k: c.kick[k] for k in keys}
    out |= {r.model: {k: getattr(r, k) for k in (*keys, *low, "mean_steps", SELECT_ON)}
            | {"tracks_per_s": rk4_rate[r.model]} for r in c.coarse.itertuples()}
    if c.ratio is not None:
        r = c.ratio.iloc[0]
        out["polynomial_over_matched_rk4"] = {"polynomial": c.best["model"],
                                              "rk4": c.match["model"], "ratio": r["ratio"],
                                              "ratio_low": r["ratio_low"],
                                              "ratio_high": r["ratio_high"]}
    record("variable_dz", out,
           note=f"dz drawn per track in {c.ds['spec'].dz_range_mm} mm; test set, p >= "
                f"{P_MIN_GEV:g} GeV ({SELECT_ON}: validation set); tracks/s at batch "
                f"{c.batch}, {c.threads} thread(s), numba")


def predictions(c: Comparison) -> dict:
    """End states (n, 4) of the test tracks: the kick alone, the matched RK4 (when there is
    one) and each polynomial, by label (:func:`physml.tracks.figures.error_vs_dz`)."""
    test = c.ds["test"]
    out = {c.kick["model"]: experiments.kick_prediction(c.ds)}
    if c.match is not None:
        out[c.match["model"]] = experiments.coarse_prediction(c.ds, c.match["rk4_steps"])
    return out | {r.model: c.models[r.model].predict(test["initial"], test["dz"])
                  for r in c.poly.itertuples()}


def coarse_table(c: Comparison) -> pd.DataFrame:
    """The plain-RK4 rows as the report shows them (the columns present), with their
    tracks/s."""
    cols = ["model", "mean_steps", "pos_mean_mm", "pos_95_mm", "slope_mean",
            "low_p_pos_mean_mm", SELECT_ON]
    rate = c.coarse["model"].map(benchmark.rates_at(c.batch, c.coarse_tp))
    return c.coarse[[k for k in cols if k in c.coarse]].assign(tracks_per_s=rate)


def speed_points(c: Comparison) -> pd.DataFrame:
    """Points of :func:`physml.tracks.figures.accuracy_vs_speed` for the two families."""
    return benchmark.accuracy_speed_points(
        c.batch, {"plain RK4, N equal steps": c.coarse_tp,
                  "kick + polynomial, B-splines in dz": c.poly_tp}, steps=c.coarse)


def speed_headline(c: Comparison, margin: float) -> Headline | None:
    """The scoreboard's variable-dz row: tracks/s of the matched RK4 (physics) and of the
    chosen polynomial (hybrid), from their interleaved timing (repeat k of one beside repeat
    k of the other, so paired). None when no RK4 scanned is as accurate."""
    if c.ratio is None:
        return None
    r = c.ratio.iloc[0]
    lo, hi = (v / 1000 for v in c.ds["spec"].dz_range_mm)
    return headline(
        "tracks_per_second_variable_dz", f"Which extrapolates more tracks per second on "
        f"{c.threads} thread(s) at variable dz ({lo:g}–{hi:g} m), at the variable-dz "
        "polynomial's accuracy?", "tracks per second", "tracks/s", "higher",
        physics=np.asarray(r["anchor_timing"].rates), hybrid=np.asarray(r["timing"].rates),
        names={"physics": f"plain RK4, {int(c.match['rk4_steps'])} equal steps over "
                          f"{c.match['rk4_length_mm'] / 1000:g} m (numba; mean position error "
                          f"{c.match['pos_mean_mm']:.3g} mm)",
               "hybrid": f"{c.best['model']} (numba; mean position error "
                         f"{c.best['pos_mean_mm']:.3g} mm, chosen on validation tracks)"},
        margin=margin, paired=True, scale="log",
        note=f"{c.repeats} timing repeats, the two interleaved, batch {c.batch}, dz drawn per "
             "track; physics is the plain RK4 with the fewest steps scanned at least as "
             "accurate as the polynomial on the validation tracks; no network is trained at "
             "variable dz.")


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
            f"fixed plane, {fixed['basis']} reaches {fixed['pos_mean_mm']:.3g} mm. The networks "
            "here are trained at the fixed plane only.")


def rk4_markdown(coarse: pd.DataFrame, best: pd.Series, ratio: pd.DataFrame | None,
                 batch: int, threads: int) -> str:
    """Plain RK4 at variable dz beside the variable-dz polynomial ``best`` (the row of
    :func:`physml.tracks.experiments.polynomial_baselines` chosen on validation tracks):
    ``coarse`` the rows of :func:`physml.tracks.experiments.coarse_rk4` on the same tracks;
    ``ratio`` the :func:`~physml.tracks.benchmark.batch_ratios` row of the polynomial timed
    interleaved with the cheapest of them at least as accurate on the validation tracks
    (:func:`~physml.tracks.benchmark.cheapest_coarse` on
    :data:`~physml.tracks.experiments.SELECT_ON`; None when none is), so neither side's choice
    sees the test tracks. Every number from the tables; ValueError if ``coarse`` is empty, or
    if a row matches and ``ratio`` is not its one row."""
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
    m = benchmark.cheapest_coarse(coarse, best[SELECT_ON], on=SELECT_ON)
    if m is None:
        return txt + (f"No step count scanned is as accurate on the validation tracks as "
                      f"{best['basis']} ({best[SELECT_ON]:.3g} mm).")
    if ratio is None or len(ratio) != 1:
        raise ValueError(f"rk4_markdown: {m['model']} matches {best['basis']} but "
                         "the polynomial's interleaved timing against it is not one row")
    r = ratio.iloc[0]
    faster = r["ratio_low"] > 1
    slower = r["ratio_high"] < 1
    verdict = ("faster than" if faster else "slower than" if slower else
               "not distinguishable in speed from")
    return txt + (
        f"The fewest steps scanned at least as accurate as {best['basis']} (the polynomial "
        f"chosen on validation tracks) on the validation tracks, {m[SELECT_ON]:.3g} mm against "
        f"{best[SELECT_ON]:.3g} mm: **{int(m['rk4_steps'])}** ({m['mean_steps']:.1f} per "
        f"track). On the test tracks: RK4 {m['pos_mean_mm']:.3g} mm (95th percentile "
        f"{m['pos_95_mm']:.3g} mm, slope {m['slope_mean']:.2g}), the polynomial "
        f"{best['pos_mean_mm']:.3g} mm. Timed interleaved with it on the same tracks and "
        f"{threads} thread(s) at batch {batch}, the polynomial runs **{r['ratio']:.2g}x** "
        f"[{r['ratio_low']:.2g}, {r['ratio_high']:.2g}] its tracks/s: {verdict} physics at "
        "matched accuracy.")
