"""Notebook 05: throughput of RK4 (at matched accuracy), scipy and every surrogate, all timed
with :mod:`physml.timing` in the same run, on the same number of threads.

Only ratios measured in the same run are compared; absolute tracks/s are recorded with the
machine they were measured on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd

from physml import timing
from physml.results import count_noun
from physml.stats import CI, TargetCheck, against_target
from physml.tracks import data as D
from physml.tracks.experiments import P_MIN_GEV, SELECT_ON
from physml.tracks.ground_truth import dop853, reference_sample
from physml.tracks.propagate import (
    grouped_node_schedules,
    momentum_groups,
    node_schedule,
    propagate,
    propagate_scipy,
    refined_schedule,
    rk4_schedule,
    run_grouped,
)
from physml.tracks.rk4_compiled import rk4_momentum_scaled
from physml.tracks.training import load_model, onnx_session, to_inputs


def _schedules(field, z_end_mm: float, steps_mm, refined: dict | None):
    """(label, z nodes) of each fixed step (largest first) and of the refined schedule."""
    out = [(f"{h:.3g} mm", rk4_schedule(0.0, z_end_mm, h, field))
           for h in sorted(steps_mm, reverse=True)]
    if refined:
        label = (f"{refined.get('fine_mm', 25.0):g}/{refined.get('coarse_mm', 50.0):g} mm "
                 f"(fine where |B| >= {refined.get('b_threshold_tesla', 0.4):g} T)")
        out.append((label, refined_schedule(0.0, z_end_mm, field, **refined)))
    return out


class Candidate(NamedTuple):
    """One RK4 schedule of the matched-accuracy scan: ``label``; ``run(states (n, 5)) ->
    (end states (n, 5), steps per track (n,))`` from z = 0 to z_end."""

    label: str
    run: Callable


NODE_SCHEDULE_KEYS = {"n_probes", "probe_seed", "local_tols_um", "max_nodes_per_step",
                      "p_edges_gev", "ungrouped"}
"""Keys of the ``node_schedules`` argument of :func:`candidates`."""


def node_schedule_candidates(field, z_end_mm: float, spec: dict) -> list[Candidate]:
    """Node-aligned variable-step RK4 schedules (every node a map z-node, so on a B-spline
    map they run on the planes kernel): per local tolerance one for all tracks and one per
    momentum grouping.

    ``spec``: {"n_probes": k, "probe_seed": s, "local_tols_um": [...], "max_nodes_per_step":
    m (0 or absent: no limit), "p_edges_gev": [...] (momentum group edges in GeV, or a list of
    such lists, one grouping each: more groups fit the steps closer to each track's momentum
    but each group is a separate kernel pass; empty or absent: no grouped schedules),
    "ungrouped": bool (default true)}. The probes are k accepted
    tracks (:func:`~physml.tracks.ground_truth.reference_sample`) drawn with their own seed s
    (independent of the reference tracks that judge the schedules). Per local tolerance:
    "z-refined" (:func:`~physml.tracks.propagate.node_schedule`, one schedule for all tracks)
    if ``ungrouped``, and "z-refined by p group" (one schedule per momentum group,
    :func:`~physml.tracks.propagate.grouped_node_schedules`; each track runs its group's,
    :func:`~physml.tracks.propagate.run_grouped`; steps counted per track)."""
    from physml.tracks.ground_truth import reference_sample

    unknown = set(spec) - NODE_SCHEDULE_KEYS
    if unknown:
        raise ValueError(f"node_schedule_candidates: unknown keys {sorted(unknown)}; expected "
                         f"{sorted(NODE_SCHEDULE_KEYS)}")
    probes = reference_sample(field, int(spec["n_probes"]),
                              np.random.default_rng(int(spec["probe_seed"])), z_end_mm)
    kmax = int(spec.get("max_nodes_per_step") or 0) or None
    raw = spec.get("p_edges_gev") or []
    groupings = ([[float(e) for e in g] for g in raw] if raw and np.ndim(raw[0]) == 1
                 else [[float(e) for e in raw]] if raw else [])
    out = []
    for tol in sorted(spec["local_tols_um"], reverse=True):
        tol = float(tol)
        if spec.get("ungrouped", True):
            nodes = node_schedule(0.0, z_end_mm, field, probes, tol, kmax)

            def run(s, nodes=nodes):
                return (propagate(s, 0.0, z_end_mm, field, schedule=nodes),
                        np.full(len(s), len(nodes) - 1))
            out.append(Candidate(f"z-refined nodes, local <= {tol:g} um", run))
        for edges in groupings:
            scheds = grouped_node_schedules(0.0, z_end_mm, field, probes, edges, tol, kmax)

            def run(s, scheds=scheds, edges=edges):
                return run_grouped(s, scheds, momentum_groups(s, edges), field)
            k = [len(n) - 1 for n in scheds]
            cuts = (f"edge {edges[0]:g}" if len(edges) == 1
                    else f"edges {edges[0]:g}..{edges[-1]:g}")
            out.append(Candidate(f"z-refined nodes, {len(scheds)} p groups ({cuts} GeV, "
                                 f"{min(k)}-{max(k)} steps), local <= {tol:g} um", run))
    return out


def candidates(field, z_end_mm: float, steps_mm, refined: dict | None = None,
               momentum_scaled: dict | None = None,
               node_schedules: dict | None = None) -> list[Candidate]:
    """The RK4 schedules scanned by :func:`rk4_at_matched_accuracy`.

    Fixed steps ``steps_mm`` (aligned to a map's z-nodes, :func:`rk4_schedule`), the refined
    schedule if ``refined`` (keyword arguments of :func:`refined_schedule`), and, if
    ``momentum_scaled`` = {"exponent": a, "steps_mm_at_1gev": [...], "max_step_mm": m}, one
    schedule per entry of steps_mm_at_1gev: each track its own step min(m, h1 |q/p|^-a)
    (:func:`~physml.tracks.rk4_compiled.rk4_momentum_scaled`; compiled maps only), and the
    node-aligned variable schedules of :func:`node_schedule_candidates` if ``node_schedules``.
    """
    out = []
    for label, nodes in _schedules(field, z_end_mm, steps_mm, refined):
        def run(s, nodes=nodes):
            return (propagate(s, 0.0, z_end_mm, field, schedule=nodes),
                    np.full(len(s), len(nodes) - 1))
        out.append(Candidate(label, run))
    if momentum_scaled:
        unknown = set(momentum_scaled) - {"exponent", "steps_mm_at_1gev", "max_step_mm"}
        if unknown:
            raise ValueError(f"candidates: momentum_scaled has unknown keys {sorted(unknown)}; "
                             "expected exponent, steps_mm_at_1gev, max_step_mm")
        a, hmax = float(momentum_scaled["exponent"]), float(momentum_scaled["max_step_mm"])
        for h in sorted(momentum_scaled["steps_mm_at_1gev"], reverse=True):
            def run(s, h=float(h)):
                return rk4_momentum_scaled(s, 0.0, z_end_mm, field, h, a, hmax)
            out.append(Candidate(f"{h:.3g} mm x (p / 1 GeV)^{a:g}, <= {hmax:g} mm", run))
    if node_schedules:
        out += node_schedule_candidates(field, z_end_mm, node_schedules)
    return out


def _fastest_within(scan: pd.DataFrame, tol_um: float, caller: str, what: str) -> pd.Series:
    """The row of ``scan`` with the most ``tracks_per_s`` among those with ``max_err_um`` <=
    tol_um; RuntimeError naming ``caller`` and showing the scan when none is within."""
    ok = scan[scan["max_err_um"] <= tol_um]
    if ok.empty:
        raise RuntimeError(f"{caller}: no {what} reaches {tol_um} um:\n"
                           f"{scan.drop(columns='timing')}")
    return ok.sort_values("tracks_per_s", ascending=False).iloc[0]


def rk4_at_matched_accuracy(field, n_ref: int, n_speed: int, steps_mm, rng: np.random.Generator,
                            tol_um: float = 1.0, z_end_mm: float = 8500.0,
                            refined: dict | None = None, threads: int = 1, repeats: int = 5,
                            n_scipy_timed: int = 3, momentum_scaled: dict | None = None,
                            node_schedules: dict | None = None, n_check: int = 0,
                            check_seed: int | None = None) -> dict:
    """Fastest RK4 schedule whose **max** position error vs DOP853 over n_ref accepted tracks
    is <= tol_um, among the :func:`candidates` (fixed steps ``steps_mm``, the field-refined
    schedule if ``refined``, momentum-scaled steps if ``momentum_scaled``, node-aligned
    variable schedules if ``node_schedules``, :func:`node_schedule_candidates`).

    Against over-fitting the choice to the reference tracks: with ``n_check`` > 0 a second,
    independent set of n_check accepted tracks (drawn with ``np.random.default_rng(check_seed)``,
    check_seed required) and its DOP853 end states judge every schedule too (scan columns
    ``check_max_err_um``, ``check_p99_err_um``; result keys ``check_max_err_um``,
    ``check_p99_err_um``, ``check_errors_um``); the choice is made on the reference set only.

    The reference is scipy's DOP853 on the stacked system of all n_ref tracks (rtol 1e-10,
    ``propagate_scipy(batched=True)``) on the same ``field`` object (the same representation:
    trilinear map, tricubic or B-spline). Every schedule is timed on n_speed tracks, all of
    them round-robin (:func:`physml.timing.interleaved`, ``repeats`` rounds, the fastest
    repeat ranks them) under :func:`physml.timing.threads` (``threads``); the
    chosen one against scipy's per-track DOP853 (``n_scipy_timed`` tracks per call) with
    :func:`physml.timing.against_anchor`.
    The timed tracks (``speed_states``) are n_speed further accepted tracks drawn from ``rng``,
    not the reference tracks resampled: every timed track is a different one.
    Returns a dict: schedule label and mean steps per track, max/p99 errors (um), per-track
    errors (um, (n_ref,)), the RK4 :class:`~physml.timing.Timing`, the scipy ratio, the scan
    table, ``run`` (states -> end states) of the chosen schedule and ``speed_states``.
    """
    states = reference_sample(field, n_ref, rng, z_end_mm)
    ref, _ = dop853(states, field, z_end_mm, batched=True)
    if n_check > 0:
        if check_seed is None:
            raise ValueError("rk4_at_matched_accuracy: n_check > 0 needs check_seed")
        check = reference_sample(field, n_check, np.random.default_rng(check_seed), z_end_mm)
        check_ref, _ = dop853(check, field, z_end_mm, batched=True)
    # timed on n_speed tracks of their own, all distinct: drawn with replacement from the n_ref
    # reference tracks, each would recur ~n_speed / n_ref times, next to itself in
    # locality_order, and find its field cells in cache (measured on the B-spline planes,
    # 100 mm steps, 16,384 tracks: +3% tracks/s in the fastest repeat, +7% in the median)
    big = reference_sample(field, n_speed, rng, z_end_mm)
    rows, errs_by, check_by = [], {}, {}
    cands = candidates(field, z_end_mm, steps_mm, refined, momentum_scaled, node_schedules)
    with timing.threads(threads):
        if len({c.label for c in cands}) != len(cands):
            raise ValueError("rk4_at_matched_accuracy: two candidate schedules share a label")
        # round-robin, so a burst of other load slows every candidate alike
        tims = timing.interleaved({c.label: (lambda c=c: c.run(big)) for c in cands},
                                  items=n_speed, repeats=repeats)
        for c in cands:
            out, steps = c.run(states)
            errs = np.hypot(*(out[:, :2] - ref[:, :2]).T) * 1000
            errs_by[c.label] = errs
            t = tims[c.label]
            row = {"schedule": c.label, "steps": float(np.mean(steps)),
                   "max_err_um": float(errs.max()),
                   "p99_err_um": float(np.quantile(errs, 0.99)),
                   "mean_err_um": float(errs.mean())}
            if n_check > 0:
                out_c, _ = c.run(check)
                e_c = np.hypot(*(out_c[:, :2] - check_ref[:, :2]).T) * 1000
                check_by[c.label] = e_c
                row |= {"check_max_err_um": float(e_c.max()),
                        "check_p99_err_um": float(np.quantile(e_c, 0.99))}
            rows.append(row | {"tracks_per_s": t.best_per_second, "timing": t})
        scan = pd.DataFrame(rows)
        pick = _fastest_within(scan, tol_um, "rk4_at_matched_accuracy", "schedule")
        chosen = {c.label: c for c in cands}[pick["schedule"]]
        few = states[:n_scipy_timed]
        ratio = timing.against_anchor(
            lambda: chosen.run(big),
            lambda: propagate_scipy(few, 0.0, z_end_mm, field),
            items=n_speed, anchor_items=len(few), repeats=max(2, min(repeats, 3)))
    return {"field": describe_field(field), "field_obj": field, "states": states, "ref": ref,
            "speed_states": big, "schedule": str(pick["schedule"]),
            "run": lambda s: chosen.run(s)[0], "steps": float(pick["steps"]),
            "max_err_um": float(pick["max_err_um"]), "p99_err_um": float(pick["p99_err_um"]),
            "errors_um": errs_by[pick["schedule"]], "timing": pick["timing"],
            "rk4_tracks_per_second": float(pick["tracks_per_s"]),
            "scipy_ratio": ratio,
            "scipy_seconds_per_track": ratio.anchor.min_s / ratio.anchor.items,
            "rk4_speedup_vs_scipy": float(ratio.speedup.diff.mean),
            "n_ref": n_ref, "n_speed": n_speed, "threads": threads, "z_end_mm": z_end_mm,
            "n_check": n_check, "check_seed": check_seed,
            **({"check_max_err_um": float(pick["check_max_err_um"]),
                "check_p99_err_um": float(pick["check_p99_err_um"]),
                "check_errors_um": check_by[pick["schedule"]]} if n_check > 0 else {}),
            "scan": scan.drop(columns="timing")}


def representation_gap(rk4: dict, grid, truth=None, planes_mm=None) -> dict:
    """How far a smooth representation of a map is from the trilinear map (and from the
    magnet it was sampled from): a field-model error, separate from the integrator's.

    ``rk4``: a :func:`rk4_at_matched_accuracy` result on the smooth field (its reference tracks
    and DOP853 end states); ``grid``: the :class:`~physml.tracks.grid.GridField` it was made
    from; ``truth``: optional callable points (n, 3) mm -> B (n, 3) T (the magpylib model).
    Field: at points along the reference tracks (their RK4 positions on the smooth field,
    :func:`~physml.tracks.propagate.propagate_to`, at each plane of ``planes_mm``, default
    every 500 mm to z_end) |B_smooth - B_map| and, with
    ``truth``, |B_smooth - B_true| and |B_map - B_true| (T): max and mean. Tracks: DOP853 on
    the trilinear map from the same initial states vs DOP853 on the smooth field: end position
    difference (um) mean, p99, max. Returns a flat dict of those numbers.
    """
    from physml.tracks.propagate import propagate_to

    smooth, states, ref = rk4["field_obj"], rk4["states"], rk4["ref"]
    z_end = float(rk4["z_end_mm"])
    planes = np.asarray(planes_mm if planes_mm is not None else np.arange(500.0, z_end + 1, 500.0))
    pts = np.concatenate([np.column_stack([propagate_to(states, 0.0, np.full(len(states), z),
                                                        smooth)[:, :2],
                                           np.full(len(states), z)]) for z in planes])
    b_s, b_g = smooth(pts), grid(pts)
    out = {"n_points": int(len(pts))}

    def stats(name, d):
        n = np.linalg.norm(d, axis=1)
        out[f"{name}_max_tesla"], out[f"{name}_mean_tesla"] = float(n.max()), float(n.mean())

    stats("smooth_vs_map", b_s - b_g)
    if truth is not None:
        b_t = np.asarray(truth(pts))
        stats("smooth_vs_truth", b_s - b_t)
        stats("map_vs_truth", b_g - b_t)
    ref_map, _ = dop853(states, grid, z_end, batched=True)
    d_um = np.hypot(*(ref_map[:, :2] - ref[:, :2]).T) * 1000
    out.update({"track_mean_um": float(d_um.mean()), "track_p99_um": float(np.quantile(d_um, 0.99)),
                "track_max_um": float(d_um.max()), "n_tracks": int(len(states))})
    return out


def spans_knot(nodes: np.ndarray, origin_mm: float, spacing_mm: float) -> bool:
    """Whether some step of the z ``nodes`` (mm) has a knot strictly inside it: a plane
    origin_mm + k spacing_mm (a z-node of a map, where its cubic B-spline's third
    z-derivative may jump), to 1e-9 of a spacing."""
    f = (np.asarray(nodes, dtype=np.float64) - origin_mm) / spacing_mm
    lo, hi = np.minimum(f[:-1], f[1:]), np.maximum(f[:-1], f[1:])
    return bool(np.any(np.floor(hi - 1e-9) >= np.ceil(lo + 1e-9)))


KNOT_SCAN_STEPS = ((0.5, 0.0), (1.0, 0.0), (1.0, 0.5), (1.25, 0.0), (1.5, 0.0), (2.0, 0.0))
"""(step / node spacing, shift / node spacing) of :func:`knot_scan`'s uniform schedules."""


def knot_scan(rk4: dict, steps=KNOT_SCAN_STEPS) -> pd.DataFrame:
    """Why RK4's steps on a map's cubic B-spline stay near one node spacing where the field is
    strong: uniform RK4 steps on the reference tracks of ``rk4`` (a
    :func:`rk4_at_matched_accuracy` result on a :class:`~physml.tracks.tricubic.BSplineField`),
    scored against its DOP853 end states.

    The B-spline is a cubic in z between knots (the map's z-nodes), and its third derivative
    jumps at each: a step inside one knot interval integrates a smooth field. ``steps``:
    (factor, shift) pairs; the steps are factor x the map's z spacing (z_end split evenly, the
    nearest count), the first one shortened by shift x spacing, so that with factor 1 and shift
    1/2 every step spans a knot at its midpoint: the same step length as (1, 0), whose steps
    span none. That pair separates what spanning a knot costs from what a longer step costs
    (every step longer than a spacing spans one). Columns: ``factor``, ``shift``, ``step_mm``,
    ``steps``, ``spans_knot`` (:func:`spans_knot`), ``max_err_um``, ``p99_err_um`` and
    ``h4_max_err_um``: the max error of (1, 0) scaled by (step / spacing)^4, what RK4's order
    alone would give. Raises ValueError without (1, 0) or on a field that is not a B-spline."""
    from physml.tracks.tricubic import BSplineField

    field = rk4["field_obj"]
    if not isinstance(field, BSplineField):
        raise ValueError(f"knot_scan: needs a result on a BSplineField, got "
                         f"{type(field).__name__}")
    pairs = [(float(f), float(sh)) for f, sh in steps]
    if (1.0, 0.0) not in pairs:
        raise ValueError(f"knot_scan: steps {pairs} must include (1, 0): one node spacing, "
                         "unshifted")
    z_end, dz, oz = float(rk4["z_end_mm"]), float(field.spacing_mm[2]), float(field.origin_mm[2])
    rows = []
    for f, sh in pairs:
        n = max(1, int(round(z_end / (f * dz))))
        h = z_end / n
        if sh:
            inner = np.arange(sh * dz, z_end - 1e-6, h)
            nodes = np.concatenate([[0.0], inner[inner > 1e-6], [z_end]])
        else:
            nodes = np.linspace(0.0, z_end, n + 1)
        out = propagate(rk4["states"], 0.0, z_end, field, schedule=nodes)
        e = np.hypot(*(out[:, :2] - rk4["ref"][:, :2]).T) * 1000
        rows.append({"factor": f, "shift": sh, "step_mm": h, "steps": len(nodes) - 1,
                     "spans_knot": spans_knot(nodes, oz, dz), "max_err_um": float(e.max()),
                     "p99_err_um": float(np.quantile(e, 0.99))})
    scan = pd.DataFrame(rows)
    one = scan[(scan["factor"] == 1.0) & (scan["shift"] == 0.0)].iloc[0]
    scan["h4_max_err_um"] = one["max_err_um"] * (scan["step_mm"] / one["step_mm"]) ** 4
    return scan


def knot_scan_markdown(scan: pd.DataFrame, tol_um: float) -> str:
    """The finding of :func:`knot_scan` in words, from its numbers: the error of one node
    spacing per step with and without spanning knots, and how much worse than RK4's h^4 the
    longer steps are, and which of them still meet ``tol_um``."""
    one = scan[(scan["factor"] == 1.0) & (scan["shift"] == 0.0)].iloc[0]
    shifted = scan[(scan["factor"] == 1.0) & (scan["shift"] != 0.0) & scan["spans_knot"]]
    short = scan[(scan["factor"] < 1.0) & ~scan["spans_knot"]]
    longer = scan[scan["factor"] > 1.0]
    parts = [f"Uniform RK4 steps on the same reference tracks: one node spacing per step "
             f"({one['step_mm']:.0f} mm, each step inside one knot interval of the B-spline) "
             f"ends within {one['max_err_um']:.2g} µm"
             + (f", half a spacing within {short.iloc[0]['max_err_um']:.2g} µm" if len(short)
                else "") + ". "]
    penalty = None
    if len(shifted):
        penalty = shifted.iloc[0]["max_err_um"] / one["max_err_um"]
        parts.append(f"The same steps shifted by half a spacing, so that each spans a knot "
                     f"(where the spline's third z-derivative jumps): "
                     f"{shifted.iloc[0]['max_err_um']:.2g} µm, {penalty:.1f}x. ")
    if longer.empty:
        return "".join(parts)
    excess = longer["max_err_um"] / longer["h4_max_err_um"]
    listed = ", ".join(f"{r.step_mm:.0f} mm {r.max_err_um:.2g} µm" for r in longer.itertuples())
    ok = longer[longer["max_err_um"] <= tol_um]
    meets = (f"{', '.join(f'{v:.0f} mm' for v in ok['step_mm'])} still meet"
             f"{'s' if len(ok) == 1 else ''} the {tol_um:g} µm goal on these tracks"
             if len(ok) else f"none of them meets the {tol_um:g} µm goal")

    def times(v):
        return f"{v:.2g}" if v < 10 else f"{v:.0f}"

    parts.append(f"Longer steps ({listed}) are {times(excess.min())}–{times(excess.max())}x what "
                 f"RK4's h⁴ scaling from one spacing predicts; {meets}. ")
    if penalty is not None and excess.min() > 2.0 * penalty:
        parts.append(f"That excess is more than twice what spanning a knot costs at one "
                     f"spacing ({penalty:.1f}x): beyond about one node spacing RK4 is no longer "
                     "in its asymptotic h⁴ range on this field.")
    elif penalty is not None and penalty > 2.0:
        parts.append("Spanning a knot costs about as much at one spacing: the knots can "
                     "account for the excess.")
    return "".join(parts)


def describe_field(field) -> str:
    """Short name of a field representation for tables and records."""
    from physml.tracks.grid import GridField
    from physml.tracks.tricubic import BSplineField, TricubicField

    if isinstance(field, BSplineField):
        return "map, cubic B-spline C²"
    if isinstance(field, TricubicField):
        return "map, tricubic C¹"
    if isinstance(field, GridField):
        return "map, trilinear C⁰"
    return type(field).__name__


def adaptive_at_matched_accuracy(field, rk4: dict, tols_mm, n_speed: int, tol_um: float = 1.0,
                                 z_end_mm: float = 8500.0, threads: int = 1,
                                 repeats: int = 5, max_step_mm=2000.0) -> dict:
    """Fastest (per-step tolerance, step cap) of the compiled Dormand-Prince 5(4)
    (``propagate(method="dopri5")``) whose **max** position error over the reference tracks of
    ``rk4`` (a :func:`rk4_at_matched_accuracy` result on the same ``field``) is <= tol_um,
    timed like RK4 (n_speed tracks, :func:`physml.timing.measure`, ``threads`` threads).
    ``max_step_mm``: one cap (mm) or a list of caps, each scanned with every tolerance (on a
    B-spline map the embedded estimate does not see the jumps of the third derivative at the
    knots, so long steps can miss the goal at any tolerance; measured on the iron-yoke map).
    Timed on the first n_speed of ``rk4``'s timed tracks (``speed_states``: distinct tracks,
    the ones RK4 was timed on; n_speed may not exceed their number).
    Returns a dict: tol_mm, max_step_mm, mean steps, max/p99 errors (um), errors_um, timing,
    tracks_per_second and the scan table (one row per tolerance and cap)."""
    states, ref, speed = rk4["states"], rk4["ref"], rk4["speed_states"]
    if n_speed > len(speed):
        raise ValueError(f"adaptive_at_matched_accuracy: n_speed {n_speed} > the {len(speed)} "
                         f"tracks RK4 was timed on (rk4_at_matched_accuracy's n_speed)")
    big = speed[:n_speed]
    caps = [float(max_step_mm)] if np.isscalar(max_step_mm) else [float(c) for c in max_step_mm]
    rows, errs_by = [], {}
    with timing.threads(threads):
        for cap in sorted(caps, reverse=True):
            for tol in sorted(tols_mm, reverse=True):
                out, info = propagate(states, 0.0, z_end_mm, field, method="dopri5", tol_mm=tol,
                                      max_step_mm=cap, return_info=True)
                errs = np.hypot(*(out[:, :2] - ref[:, :2]).T) * 1000
                errs_by[(tol, cap)] = errs
                t = timing.measure(lambda tol=tol, cap=cap: propagate(
                    big, 0.0, z_end_mm, field, method="dopri5", tol_mm=tol, max_step_mm=cap),
                    items=n_speed, repeats=repeats)
                rows.append({"tol_mm": tol, "max_step_mm": cap, "mean_steps": info["mean_steps"],
                             "mean_rejected": info["mean_rejected"],
                             "max_err_um": float(errs.max()),
                             "p99_err_um": float(np.quantile(errs, 0.99)),
                             "tracks_per_s": t.best_per_second, "timing": t})
    scan = pd.DataFrame(rows)
    pick = _fastest_within(scan, tol_um, "adaptive_at_matched_accuracy", "tolerance and cap")
    key = (float(pick["tol_mm"]), float(pick["max_step_mm"]))
    return {"field": describe_field(field), "tol_mm": key[0], "max_step_mm": key[1],
            "mean_steps": float(pick["mean_steps"]), "max_err_um": float(pick["max_err_um"]),
            "p99_err_um": float(pick["p99_err_um"]), "errors_um": errs_by[key],
            "timing": pick["timing"], "tracks_per_second": float(pick["tracks_per_s"]),
            "scan": scan.drop(columns="timing")}


def record_rk4(key: str, rk4: dict) -> None:
    """Record ``<key>.tracks_per_second``, ``.max_err_um``, ``.p99_err_um``, ``.steps`` of a
    :func:`rk4_at_matched_accuracy` result."""
    from physml.results import record

    record(key, {"tracks_per_second": rk4["rk4_tracks_per_second"],
                 "max_err_um": rk4["max_err_um"], "p99_err_um": rk4["p99_err_um"],
                 "steps": rk4["steps"]},
           note=f"{rk4['field']}, {rk4['schedule']}, vs DOP853 on the same map, "
                f"{rk4['n_ref']} tracks, {count_noun(rk4['threads'], 'thread')}")


def faster_rk4(*results: dict) -> dict:
    """The :func:`rk4_at_matched_accuracy` result with the most tracks/s (all within their
    tolerance by construction)."""
    return max(results, key=lambda r: r["rk4_tracks_per_second"])


def _serial_below(batch: int, fn):
    """``fn`` wrapped to run on one numba thread when batch < SERIAL_BELOW (a parallel launch
    costs more than a few tracks' steps: :data:`physml.tracks.priors.SERIAL_BELOW`), so that
    every compiled integrator gets its best setting at small batches."""
    from physml.tracks.priors import SERIAL_BELOW

    if batch >= SERIAL_BELOW:
        return fn
    import numba

    def serial():
        old = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            return fn()
        finally:
            numba.set_num_threads(old)

    return serial


def rk4_caller(rk4: dict, z_end_mm: float = 8500.0):
    """``make(batch, calls)`` -> a zero-argument function that runs the chosen RK4 schedule of
    ``rk4`` (on its field) on the first ``batch`` of its timed tracks (``speed_states``, all
    distinct; repeated only past their number), ``calls`` times (for :func:`batch_ratios`; on
    one numba thread below SERIAL_BELOW tracks, :func:`_serial_below`)."""
    run, states = rk4["run"], rk4["speed_states"]

    def make(batch: int, calls: int):
        s = states[np.arange(batch) % len(states)]
        return _serial_below(batch, lambda: [run(s) for _ in range(calls)])

    return make


def dopri_caller(adaptive: dict, field, states: np.ndarray, z_end_mm: float = 8500.0):
    """``make(batch, calls)`` for the chosen Dormand-Prince tolerance of ``adaptive`` on the
    first ``batch`` of ``states`` (pass distinct tracks, e.g. an RK4 result's
    ``speed_states``; one numba thread below SERIAL_BELOW tracks)."""
    def make(batch: int, calls: int):
        s = states[np.arange(batch) % len(states)]
        return _serial_below(batch, lambda: [propagate(
            s, 0.0, z_end_mm, field, method="dopri5", tol_mm=adaptive["tol_mm"],
            max_step_mm=adaptive["max_step_mm"]) for _ in range(calls)])

    return make


def timing_inputs(n: int, seed: int = 0, dz_mm: float | None = None):
    """Physical inputs (n, 6) float32 tensor for timings: initial states of the study's
    default distribution, dz drawn per track or, with ``dz_mm``, that fixed distance (mm)."""
    s, dz = D.sample_initial_states(n, np.random.default_rng(seed), D.DatasetSpec())
    if dz_mm is not None:
        dz = np.full(n, float(dz_mm))
    return to_inputs({"initial": s, "dz": dz, "final": np.zeros_like(s)})[0]


def model_caller(run_dir: str, backend: str, threads: int, seed: int = 0,
                 dz_mm: float | None = None):
    """``make(batch, calls)`` for one trained surrogate (PyTorch or ONNX Runtime; for the
    rk4 hybrid both include its numba prior); inputs :func:`timing_inputs`."""
    run = _runner(run_dir, backend, threads)
    u = timing_inputs(4096, seed, dz_mm)

    def make(batch: int, calls: int):
        idx = np.arange(batch) % len(u)
        x = u[idx].numpy() if backend == "onnx" else u[idx]
        return lambda: [run(x) for _ in range(calls)]

    return make


def batch_ratios(methods: dict, anchor, batch_sizes, threads: int, repeats: int = 5,
                 min_items: int = 4096) -> pd.DataFrame:
    """Tracks/s of every method and its speed ratio to ``anchor`` at each batch size, from
    :func:`physml.timing.against_anchor` (anchor and method interleaved, same run, same
    ``threads`` under :func:`physml.timing.threads`). ``methods``: name -> ``make(batch,
    calls)``; ``anchor``: the same for the anchor (RK4). One timed call runs
    ceil(min_items / batch) batches. Columns: method, batch, tracks_per_s (fastest repeat),
    anchor_tracks_per_s, ratio, ratio_low, ratio_high (method / anchor, CI), timing and
    anchor_timing (the method's and the anchor's :class:`~physml.timing.Timing`, repeat k of
    one beside repeat k of the other)."""
    rows = []
    with timing.threads(threads):
        for b in batch_sizes:
            calls = -(-min_items // b)
            for name, make in methods.items():
                r = timing.against_anchor(make(b, calls), anchor(b, calls), items=calls * b,
                                          repeats=repeats)
                d = r.speedup.diff
                rows.append({"method": name, "batch": int(b),
                             "tracks_per_s": r.ours.best_per_second,
                             "anchor_tracks_per_s": r.anchor.best_per_second,
                             "ratio": d.mean, "ratio_low": d.low, "ratio_high": d.high,
                             "timing": r.ours, "anchor_timing": r.anchor})
    return pd.DataFrame(rows)


def ratios_by_batch(ratios: pd.DataFrame, anchor: str = "anchor") -> pd.DataFrame:
    """:func:`batch_ratios` with one row per method (first-seen order) and one column group
    per batch size (ascending): ``× {anchor} at batch b`` with its ``_low`` / ``_high`` CI
    bounds, and ``tracks/s at batch b`` (fastest repeat). A method not timed at some batch has
    NaN there. The anchor's own rates stay in ``ratios`` (``anchor_tracks_per_s``)."""
    missing = {"method", "batch", "tracks_per_s", "ratio", "ratio_low", "ratio_high"} - set(ratios)
    if missing:
        raise KeyError(f"ratios_by_batch: no column(s) {sorted(missing)}; columns: "
                       f"{list(ratios.columns)}")
    if ratios.duplicated(["method", "batch"]).any():
        raise ValueError("ratios_by_batch: a method is timed twice at one batch size")
    out = pd.DataFrame({"method": pd.unique(ratios["method"])})
    for b in sorted(ratios["batch"].unique()):
        at = ratios[ratios["batch"] == b].set_index("method")
        name = f"× {anchor} at batch {b}"
        for col, suffix in (("ratio", ""), ("ratio_low", "_low"), ("ratio_high", "_high")):
            out[name + suffix] = out["method"].map(at[col]).astype(float)
        out[f"tracks/s at batch {b}"] = out["method"].map(at["tracks_per_s"]).astype(float)
    return out


def fold_means(values: np.ndarray, folds: int) -> np.ndarray:
    """Means of ``values`` (n,) over ``folds`` contiguous equal parts: per-fold values (folds,)
    for a CI over independent track samples."""
    v = np.asarray(values, dtype=float)
    if folds < 2 or len(v) < folds:
        raise ValueError(f"fold_means: need 2 <= folds <= {len(v)}, got {folds}")
    return np.array([p.mean() for p in np.array_split(v, folds)])


def model_timings(runs: pd.DataFrame, batch_sizes, threads: int, repeats: int = 5,
                  min_items: int = 4096, seed: int = 0, backends=("torch", "onnx"),
                  dz_mm: float | None = None) -> pd.DataFrame:
    """Tracks/s of every run's model (PyTorch and ONNX Runtime; the rk4 hybrid's numba prior
    is inside the timed call in both) at each batch size, with
    :func:`physml.timing.measure` under :func:`physml.timing.threads` (``threads``). One timed
    call runs ceil(min_items / batch) batches: the calls of :func:`model_caller` (its inputs,
    ``dz_mm``: a fixed distance), as in the interleaved ratios of :func:`batch_ratios`.
    Columns: model, run, backend, batch, tracks_per_s (fastest repeat), ci_low/ci_high (mean
    over repeats), timing."""
    rows = []
    with timing.threads(threads):
        for r in runs.itertuples():
            for backend in backends:
                make = model_caller(r.run_dir, backend, threads, seed, dz_mm)
                for b in batch_sizes:
                    k = -(-min_items // b)
                    t = timing.measure(make(b, k), items=k * b, repeats=repeats)
                    ci = t.per_second
                    rows.append({"model": r.model, "run": r.name, "backend": backend,
                                 "batch": int(b), "tracks_per_s": t.best_per_second,
                                 "ci_low": ci.low, "ci_high": ci.high, "timing": t,
                                 "pos_mean_mm": r.pos_mean_mm})
    return pd.DataFrame(rows)


def _runner(run_dir: str, backend: str, threads: int):
    import torch

    if backend == "torch":
        model = load_model(run_dir)

        def run(x):
            with torch.inference_mode():
                return model.predict(x)

        return run
    if backend == "onnx":
        sess = onnx_session(f"{run_dir}/model.onnx", threads)
        model = load_model(run_dir)
        if model.prior == "rk4":  # the graph is the network part; the prior runs in numba
            from physml.tracks.models import onnx_inputs

            return lambda x: sess.run(None, onnx_inputs(model, x))
        return lambda x: sess.run(None, {"u": x})
    raise ValueError(f"model_timings: backend {backend!r} not in ('torch', 'onnx')")


def coarse_rk4_timings(coarse: pd.DataFrame, field, batch_sizes, threads: int,
                       repeats: int = 5, min_items: int = 4096, seed: int = 0,
                       dz_mm: float | None = 8500.0) -> pd.DataFrame:
    """Tracks/s of the rk4 hybrids' prior alone (RK4 with N equal steps, numba) for each row
    of ``coarse`` (:func:`physml.tracks.experiments.coarse_rk4`: rk4_steps, rk4_field,
    pos_mean_mm) at each batch size, timed like :func:`model_timings` (threads, repeats) on
    the calls of :func:`coarse_caller`. Columns as there, backend "numba"."""
    makes = {r.model: coarse_caller(r, field, seed, dz_mm) for r in coarse.itertuples()}
    return caller_timings(makes, dict(zip(coarse["model"], coarse["pos_mean_mm"], strict=True)),
                          "numba", batch_sizes, threads, repeats, min_items)


def caller_timings(makes: dict, pos_mean_mm: dict, backend: str, batch_sizes, threads: int,
                   repeats: int = 5, min_items: int = 4096) -> pd.DataFrame:
    """Tracks/s of each ``make(batch, calls)`` of ``makes`` (name -> maker, as
    :func:`coarse_caller`) at each batch size under ``threads`` threads: one timed call runs
    ceil(min_items / batch) batches, ``repeats`` times. Columns model, run (both the name),
    backend, batch, tracks_per_s (fastest repeat), ci_low, ci_high, timing and pos_mean_mm
    (from ``pos_mean_mm``, name -> mm), the layout of :func:`model_timings`."""
    rows = []
    with timing.threads(threads):
        for name, make in makes.items():
            for b in batch_sizes:
                k = -(-min_items // b)
                t = timing.measure(make(b, k), items=k * b, repeats=repeats)
                ci = t.per_second
                rows.append({"model": name, "run": name, "backend": backend,
                             "batch": int(b), "tracks_per_s": t.best_per_second,
                             "ci_low": ci.low, "ci_high": ci.high, "timing": t,
                             "pos_mean_mm": pos_mean_mm[name]})
    return pd.DataFrame(rows)


def polynomial_caller(model, seed: int = 0, dz_mm: float | None = 8500.0):
    """``make(batch, calls)`` of a fitted polynomial baseline (``model.predict``), as
    :func:`coarse_caller`; ``dz_mm`` None draws dz per track (the variable-dz model)."""
    return _numpy_caller(model.predict, seed, dz_mm)


def _numpy_caller(fn, seed: int, dz_mm: float | None):
    """``make(batch, calls)``: a zero-argument function that runs ``fn(states (b, 5), dz
    (b,))`` ``calls`` times on the first ``batch`` of 4096 :func:`timing_inputs` (float64,
    repeated past 4096, as :func:`model_caller`)."""
    u = timing_inputs(4096, seed, dz_mm).double().numpy()

    def make(batch: int, calls: int):
        idx = np.arange(batch) % len(u)
        s, d = np.ascontiguousarray(u[idx, :5]), u[idx, 5].copy()
        return lambda: [fn(s, d) for _ in range(calls)]

    return make


def coarse_caller(row, field, seed: int = 0, dz_mm: float | None = 8500.0):
    """``make(batch, calls)`` of the plain coarse RK4 of one row of
    :func:`physml.tracks.experiments.coarse_rk4` (rk4_steps, rk4_field, rk4_length_mm): a
    zero-argument function that runs it ``calls`` times on the first ``batch`` of 4096
    :func:`timing_inputs` (repeated past 4096, as :func:`model_caller`; one numba thread below
    the prior's SERIAL_BELOW tracks); ``dz_mm`` None draws dz per track (variable dz). Used by
    :func:`coarse_rk4_timings` and, interleaved with RK4, by :func:`batch_ratios`."""
    from physml.tracks.priors import RK4Prior

    prior = RK4Prior.fit(field, int(row.rk4_steps), np.array([row.rk4_length_mm]),
                         row.rk4_field)
    return _numpy_caller(prior, seed, dz_mm)


def nodes_caller(nodes: np.ndarray, field, seed: int = 0, dz_mm: float = 8500.0):
    """``make(batch, calls)`` (as :func:`coarse_caller`) of RK4 along the z ``nodes`` (mm,
    from 0 to the fixed end plane ``dz_mm``) through ``field`` (a map or its B-spline),
    :func:`~physml.tracks.rk4_compiled.rk4_compiled`; ValueError if the nodes do not end at
    ``dz_mm``."""
    from physml.tracks.rk4_compiled import rk4_compiled

    nodes = np.asarray(nodes, dtype=np.float64)
    if nodes[0] != 0.0 or nodes[-1] != dz_mm:
        raise ValueError(f"nodes_caller: nodes run from {nodes[0]} to {nodes[-1]} mm, expected "
                         f"0 to {dz_mm}")
    return _numpy_caller(lambda s, _d: rk4_compiled(s, nodes, field), seed, dz_mm)


def rates_at(batch: int, *timings: pd.DataFrame) -> pd.Series:
    """Tracks/s per model at ``batch`` across the timing tables ``timings`` (columns model,
    batch, tracks_per_s, as :func:`model_timings`): a model's fastest row (its fastest backend
    where it was timed in several)."""
    tp = pd.concat(timings)
    return tp[tp["batch"] == batch].groupby("model")["tracks_per_s"].max()


def polynomial_timings(models: dict, poly: pd.DataFrame, batch_sizes, threads: int,
                       repeats: int = 5, min_items: int = 4096, seed: int = 0,
                       dz_mm: float | None = 8500.0) -> pd.DataFrame:
    """Tracks/s of each fitted polynomial baseline of ``models`` (name -> surrogate, from
    :func:`physml.tracks.experiments.polynomial_baselines`, whose rows ``poly`` give the
    errors) at each batch size, timed as :func:`coarse_rk4_timings`; backend "numba"."""
    makes = {name: polynomial_caller(m, seed, dz_mm) for name, m in models.items()}
    return caller_timings(makes, dict(zip(poly["model"], poly["pos_mean_mm"], strict=True)),
                          "numba", batch_sizes, threads, repeats, min_items)


def polynomial_markdown(poly: pd.DataFrame, table: pd.DataFrame, poly_tp: pd.DataFrame,
                        batch: int, n_train: int) -> str:
    """What the linear-model baseline (``poly``, from
    :func:`physml.tracks.experiments.polynomial_baselines`, timed in ``poly_tp`` at ``batch``)
    achieves, set beside the most accurate kick-prior network (a model with ``+kick``) and the
    most accurate network of ``table`` (a summary table: model, pos_mean_mm): every number from
    the tables. ValueError if ``poly`` is empty."""
    if poly.empty:
        raise ValueError("polynomial_markdown: no polynomial baseline")
    rate = rates_at(batch, poly_tp)
    parts = [f"{fit_scores(r, 'features')} at {rate[r.model]:,.0f} tracks/s"
             for r in poly.itertuples()]
    best = poly.loc[poly["pos_mean_mm"].idxmin()]
    txt = (f"The linear-model baseline, the kick prior plus a least-squares polynomial "
           f"(products of Legendre polynomials of x, y, tx, ty up to degree d, times q/p up "
           f"to degree q; with xyW each power of x or y counts W toward d, with tT the two "
           f"degrees together are at most T; the residual per unit q/p), fitted in closed "
           f"form on the {n_train:,} training tracks and run as a compiled kernel (test "
           f"tracks, p ≥ {P_MIN_GEV:g} GeV; batch {batch}): " + "; ".join(parts) + ". ")
    meets = [r.basis for r in poly.itertuples() if r.meets_targets]
    txt += (f"Meeting all three accuracy targets: {', '.join(meets)}." if meets else
            "No basis scanned meets all three accuracy targets.")
    kick = table[table["model"].str.contains(r"\+kick", regex=True)]
    for what, rows in (("kick-prior network", kick), ("network surrogate of any prior", table)):
        if len(rows):
            k = rows.loc[rows["pos_mean_mm"].idxmin()]
            better = best["pos_mean_mm"] < k["pos_mean_mm"]
            txt += (f" The most accurate {what} here, {k['model']}, reaches "
                    f"{k['pos_mean_mm']:.3g} mm: the best polynomial ({best['pos_mean_mm']:.3g} "
                    "mm) is " + ("more" if better else "less") + " accurate.")
    return txt


def fit_scores(r, unit: str, extra: str = "") -> str:
    """One fitted polynomial row ``r`` in words: its basis, size (``unit``), fit time and
    scores, ``extra`` inside the parentheses."""
    return (f"{r.basis} ({r.n_features:,} {unit}, fitted in {r.fit_s:.2g} s): "
            f"{r.pos_mean_mm:.3g} mm mean (95th percentile {r.pos_95_mm:.3g} mm, slope "
            f"{r.slope_mean:.2g}{extra})")


def accuracy_speed_points(batch: int, families: dict, steps: pd.DataFrame | None = None,
                          rk4: dict | None = None) -> pd.DataFrame:
    """Points of an accuracy-vs-speed plot (:func:`physml.tracks.figures.accuracy_vs_speed`) at
    ``batch``: for each family of ``families`` (name -> timings with model, batch,
    tracks_per_s, pos_mean_mm, as :func:`caller_timings` / :func:`model_timings`) each model's
    fastest backend; ``steps`` (rows with model, rk4_steps: :func:`physml.tracks.experiments.
    coarse_rk4`) gives the plain-RK4 points their step counts; ``rk4`` (an
    :func:`rk4_at_matched_accuracy` result) adds RK4 at <= 1 um, its mean error against DOP853
    on the map. Columns model, family, pos_mean_mm, tracks_per_s, rk4_steps. ValueError naming
    a family with no timing at ``batch``."""
    parts = []
    for fam, t in families.items():
        at = t[t["batch"] == batch]
        if at.empty:
            raise ValueError(f"accuracy_speed_points: {fam!r} has no timing at batch {batch}")
        best = at.loc[at.groupby("model", sort=False)["tracks_per_s"].idxmax()]
        parts.append(best[["model", "pos_mean_mm", "tracks_per_s"]].assign(family=fam))
    if rk4 is not None:
        parts.append(pd.DataFrame([{
            "model": f"RK4 {rk4['schedule']}", "family": "RK4 at ≤ 1 µm (error vs DOP853)",
            "pos_mean_mm": float(np.mean(rk4["errors_um"])) / 1000,
            "tracks_per_s": rk4["rk4_tracks_per_second"]}]))
    out = pd.concat(parts, ignore_index=True)
    n = {} if steps is None else dict(zip(steps["model"], steps["rk4_steps"], strict=True))
    out["rk4_steps"] = out["model"].map(n).astype(float)
    return out[["model", "family", "pos_mean_mm", "tracks_per_s", "rk4_steps"]]


def interleaved_ratio(ratios: pd.DataFrame, method: str, tp: pd.DataFrame, batch: int) -> dict:
    """Speed ratio to RK4, with its CI, of ``method`` at ``batch`` from the interleaved timing
    ``ratios`` (:func:`batch_ratios`): a plain coarse RK4 by its own name there; a surrogate
    (a model of ``tp``, :func:`model_timings`) by its fastest backend at that batch in ``tp``,
    named ``"<run> (<backend>)"`` in ``ratios``. Returns {timed_as, ratio, ratio_low,
    ratio_high, n (repeats)}; ValueError if the method was not timed against RK4 at that
    batch."""
    at = ratios[ratios["batch"] == batch]
    key = method
    if key not in set(at["method"]):
        sub = tp[(tp["model"] == method) & (tp["batch"] == batch)]
        if sub.empty:
            raise ValueError(f"interleaved_ratio: {method!r} has no timing at batch {batch}")
        best = sub.loc[sub["tracks_per_s"].idxmax()]
        key = f"{best['run']} ({best['backend']})"
    row = at[at["method"] == key]
    if len(row) != 1:
        raise ValueError(f"interleaved_ratio: {key!r} was not timed against RK4 at batch {batch}")
    r = row.iloc[0]
    return {"timed_as": key, "ratio": float(r["ratio"]), "ratio_low": float(r["ratio_low"]),
            "ratio_high": float(r["ratio_high"]), "n": len(r["timing"].rates)}


def selection_error(row) -> tuple[float, str]:
    """The validation error a coarse RK4 is matched on for a surrogate ``row`` (a row of a
    summary table, or a shipped one of :func:`physml.tracks.shipped.runs_table`) and what it
    is: ``(val_pos_mean_mm, "validation")`` for a model trained in this run, else
    ``(recorded_val_pos_mean_mm, "recorded validation")`` for a shipped model (its own
    validation tracks: its training tracks may include this run's, so it is never scored on
    them, as in :func:`physml.tracks.shipped.pick_shipped`); ``(nan, "")`` when the row has
    neither."""
    for col, what in ((SELECT_ON, "validation"), ("recorded_val_pos_mean_mm",
                                                  "recorded validation")):
        v = getattr(row, col, np.nan)
        if v is not None and np.isfinite(v):
            return float(v), what
    return float("nan"), ""


def hybrid_vs_coarse(table: pd.DataFrame, coarse: pd.DataFrame, tp: pd.DataFrame,
                     coarse_tp: pd.DataFrame, batch: int) -> pd.DataFrame:
    """Each rk4 hybrid of ``table`` (a summary table, test metrics at p >= 2 GeV, with shipped
    rows beside it) next to its fair competitors, at ``batch``: the same coarse RK4 without the
    network, and the plain coarse RK4 with the fewest steps (of those in ``coarse``) at least as
    accurate as the hybrid, matched like the speed headline on validation tracks: the hybrid's
    :func:`selection_error` against the coarse RK4's validation error (``matched_on`` says
    which error of the hybrid; a row with none is matched on the test tracks, ``matched_on``
    "test"). None if no coarse RK4 scanned is that accurate. Tracks/s: the fastest backend of
    the hybrid's first-seed run (``tp``, :func:`model_timings`) and ``coarse_tp``
    (:func:`coarse_rk4_timings`). One row per hybrid."""
    rate = rates_at(batch, tp, coarse_tp)
    rows = []
    for h in table[table["model"].str.contains(r"\+rk4x")].itertuples():
        n = int(re.search(r"\+rk4x(\d+)", h.model).group(1))
        same = coarse[coarse["rk4_steps"] == n]
        err, what = selection_error(h)
        if what and SELECT_ON in coarse:
            m = cheapest_coarse(coarse, err, on=SELECT_ON)
        else:
            err, what = h.pos_mean_mm, "test"
            m = cheapest_coarse(coarse, err)
        row = {"hybrid": h.model, "hybrid_pos_mean_mm": h.pos_mean_mm,
               "hybrid_pos_95_mm": h.pos_95_mm, "hybrid_slope_mean": h.slope_mean,
               "hybrid_tracks_per_s": rate.get(h.model, np.nan), "matched_on": what,
               "hybrid_matched_error_mm": err}
        if len(same):
            s = same.iloc[0]
            row.update({"same_rk4": s["model"], "same_rk4_pos_mean_mm": s["pos_mean_mm"],
                        "same_rk4_tracks_per_s": rate.get(s["model"], np.nan)})
        if m is not None:
            row.update({"matched_rk4": m["model"], "matched_rk4_pos_mean_mm": m["pos_mean_mm"],
                        "matched_rk4_matched_error_mm":
                            m[SELECT_ON if what != "test" else "pos_mean_mm"],
                        "matched_rk4_tracks_per_s": rate.get(m["model"], np.nan)})
        else:
            row["matched_rk4"] = None
        rows.append(row)
    return pd.DataFrame(rows, columns=[
        "hybrid", "hybrid_pos_mean_mm", "hybrid_pos_95_mm", "hybrid_slope_mean",
        "hybrid_tracks_per_s", "matched_on", "hybrid_matched_error_mm", "same_rk4",
        "same_rk4_pos_mean_mm", "same_rk4_tracks_per_s", "matched_rk4",
        "matched_rk4_pos_mean_mm", "matched_rk4_matched_error_mm", "matched_rk4_tracks_per_s"])


def onnx_note(runs: pd.DataFrame) -> str:
    """Which runs' ONNX graphs hold the network part only (read from each model.onnx: a
    'prior' input, the rk4 hybrids, whose coarse RK4 runs in numba beside the graph)."""
    import onnx

    def inputs(run_dir):
        return [i.name for i in onnx.load(f"{run_dir}/model.onnx").graph.input]

    split = sorted({r.model for r in runs.itertuples() if "prior" in inputs(r.run_dir)})
    if not split:
        return "Every ONNX graph holds the whole model (prior and network)."
    return (f"The ONNX graphs of {', '.join(split)} hold the network part only (inputs u and "
            "prior): their coarse-RK4 prior is numba, run beside ONNX Runtime (or PyTorch) "
            "inside every timed call; the other models' graphs hold prior and network.")


def fastest_meeting_targets(table: pd.DataFrame, coarse: pd.DataFrame, tp: pd.DataFrame,
                            coarse_tp: pd.DataFrame, batch: int) -> dict | None:
    """The fastest method at ``batch`` (surrogates of ``table`` by their fastest backend; the
    methods without a network of ``coarse``, plain coarse RK4 and the polynomial baselines,
    timed in ``coarse_tp``) among those whose test metrics meet all targets
    (``meets_targets``): {method, tracks_per_s, pos_mean_mm}, or None when none does."""
    rate = rates_at(batch, tp, coarse_tp)
    ok = [(r.model, r.pos_mean_mm) for t in (table, coarse) for r in t.itertuples()
          if r.meets_targets and r.model in rate]
    if not ok:
        return None
    m, e = max(ok, key=lambda x: rate[x[0]])
    return {"method": m, "tracks_per_s": float(rate[m]), "pos_mean_mm": float(e)}


def speed_target_reach(tp: pd.DataFrame, rk4_tracks_per_s: float, batch: int,
                       factor: float = 10.0) -> str:
    """Whether any surrogate timed in ``tp`` (:func:`model_timings`) at ``batch`` could be
    ``factor`` x RK4 (``rk4_tracks_per_s``) at all, whatever its accuracy: one sentence naming
    the rate needed and the fastest model and backend measured. ValueError if ``tp`` has no
    timing at ``batch``."""
    at = tp[tp["batch"] == batch]
    if at.empty:
        raise ValueError(f"speed_target_reach: no timing at batch {batch}")
    need = factor * rk4_tracks_per_s
    best = at.loc[at["tracks_per_s"].idxmax()]
    can = best["tracks_per_s"] >= need
    return (f"At {factor:g}x RK4 a surrogate must run {need:,.0f} tracks/s; the fastest network "
            f"timed here at batch {batch}, {best['model']} in {best['backend']}, runs "
            f"{best['tracks_per_s']:,.0f} tracks/s ({best['tracks_per_s'] / rk4_tracks_per_s:.2g}x "
            f"RK4, at any accuracy), so "
            + ("a fast enough network exists here; whether it is accurate enough is above."
               if can else f"no network timed here reaches {factor:g}x, however accurate."))


def speed_target_check(ratio: dict, factor: float = 10.0) -> TargetCheck:
    """Whether a speed ratio to RK4 with its 95% CI (``ratio``, ``ratio_low``, ``ratio_high``
    over ``n`` repeats, from :func:`interleaved_ratio`) meets issue 13's ``factor`` x, by
    :func:`physml.stats.against_target`: met only when the whole CI is at or above it, missed
    when the whole CI is below it, else undecided."""
    ci = CI(float(ratio["ratio"]), float(ratio["ratio_low"]), float(ratio["ratio_high"]),
            int(ratio["n"]), method="interleaved ratio")
    return against_target(ci, factor, better="higher")


def speed_target_verdict(ratio: dict, factor: float = 10.0) -> str:
    """:func:`speed_target_check` as a phrase: "issue 13's ≥ 10x is met (the whole ...)"."""
    return f"issue 13's ≥ {factor:g}x is {speed_target_check(ratio, factor).phrase('.2g')}"


MATCHED_ON_TEXT = {"validation": "validation tracks",
                   "recorded validation": "validation tracks (the hybrid's, recorded when trained)",
                   "test": "test tracks (no validation errors to match on)"}
"""How :func:`hybrid_vs_coarse`'s ``matched_on`` reads in a table or sentence."""


SHIPPED_NOTE = " (a shipped hybrid: the validation error recorded when it was trained)"


def hybrid_vs_coarse_table(cmp: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`hybrid_vs_coarse` as a report table: the hybrid (test error,
    tracks/s), the same RK4 without the network, the plain RK4 matched to it (where it was
    matched, both errors there, its test error and tracks/s) and the hybrid's speed over the
    matched RK4's (< 1: slower; NaN where nothing scanned is as accurate)."""
    out = pd.DataFrame({
        "hybrid": cmp["hybrid"], "hybrid mm (test)": cmp["hybrid_pos_mean_mm"],
        "hybrid tracks/s": cmp["hybrid_tracks_per_s"],
        "same RK4, no network": cmp["same_rk4"],
        "its mm (test)": cmp["same_rk4_pos_mean_mm"],
        "its tracks/s": cmp["same_rk4_tracks_per_s"],
        "matched plain RK4": cmp["matched_rk4"].fillna("none as accurate"),
        "matched on": cmp["matched_on"].map(MATCHED_ON_TEXT),
        "hybrid mm there": cmp["hybrid_matched_error_mm"],
        "RK4 mm there": cmp["matched_rk4_matched_error_mm"],
        "RK4 mm (test)": cmp["matched_rk4_pos_mean_mm"],
        "RK4 tracks/s": cmp["matched_rk4_tracks_per_s"]})
    out["hybrid / RK4 speed"] = out["hybrid tracks/s"] / out["RK4 tracks/s"]
    return out


def hybrid_vs_coarse_markdown(cmp: pd.DataFrame, threads: int) -> str:
    """The summary of :func:`hybrid_vs_coarse` (shown under :func:`hybrid_vs_coarse_table`):
    the range of the hybrids' speed over the plain RK4 matched to them, where they were matched,
    and the hybrids nothing scanned is as accurate as; all numbers from ``cmp``."""
    ok = cmp[cmp["matched_rk4"].map(lambda m: isinstance(m, str))]
    ratio = ok["hybrid_tracks_per_s"] / ok["matched_rk4_tracks_per_s"]
    txt = (f"**Coarse-RK4 hybrids against plain RK4** ({count_noun(threads, 'thread')}; the "
           "prior runs in numba, the network in PyTorch or ONNX Runtime, both inside the timed "
           "call). ")
    if len(ok):
        kinds = set(ok["matched_on"])
        where = " and ".join(
            ([f"validation tracks{SHIPPED_NOTE if 'recorded validation' in kinds else ''}"]
             if kinds & {"validation", "recorded validation"} else [])
            + (["test tracks where there were no validation errors"] if "test" in kinds
               else []))
        lo, hi = f"{ratio.min():.2g}x", f"{ratio.max():.2g}x"
        side = ("each is slower than its plain RK4" if ratio.max() < 1 else
                "each is faster than its plain RK4" if ratio.min() > 1 else
                "they are not all slower, nor all faster, than their plain RK4")
        txt += (f"Matched on {where}, the {count_noun(len(ok), 'hybrid')} with a plain RK4 at "
                f"least as accurate {'runs' if len(ok) == 1 else 'run'} at "
                f"**{lo if lo == hi else f'{lo} to {hi}'}** its speed: {side}.")
    none = cmp.loc[~cmp.index.isin(ok.index), "hybrid"]
    if len(none):
        txt += (f" No plain coarse RK4 scanned is as accurate as {', '.join(none)}.")
    return txt


def summary(rk4: dict, tp: pd.DataFrame, batch: int,
            coarse: pd.DataFrame | None = None,
            coarse_tp: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per method at ``batch``: tracks/s, ``rate_over_rk4_scan`` (its rate over the RK4
    rate of the schedule scan: same threads and run, but timed at another moment, so only a
    rough guide; :func:`batch_ratios` times each method interleaved with RK4 for the ratio with
    a CI), and accuracy (RK4: mean / max error vs DOP853; surrogates and the methods without
    a network timed in ``coarse_tp``, plain coarse RK4 and the polynomial baselines, each
    labelled with its backend: test mean position error vs the ground truth)."""
    rows = [{"method": f"RK4 ({rk4['schedule']}, numba)", "tracks_per_s":
             rk4["rk4_tracks_per_second"], "pos_mean_mm": float(np.mean(rk4["errors_um"])) / 1000,
             "max_pos_err_mm": rk4["max_err_um"] / 1000},
            {"method": "scipy DOP853 per track", "tracks_per_s": 1 / rk4["scipy_seconds_per_track"],
             "pos_mean_mm": 0.0, "max_pos_err_mm": 0.0}]
    for r in tp[tp["batch"] == batch].itertuples():
        rows.append({"method": f"{r.run} ({r.backend})", "tracks_per_s": r.tracks_per_s,
                     "pos_mean_mm": r.pos_mean_mm, "max_pos_err_mm": np.nan})
    if coarse_tp is not None and len(coarse_tp):
        for r in coarse_tp[coarse_tp["batch"] == batch].itertuples():
            rows.append({"method": f"{r.model} ({r.backend})", "tracks_per_s": r.tracks_per_s,
                         "pos_mean_mm": r.pos_mean_mm, "max_pos_err_mm": np.nan})
    out = pd.DataFrame(rows)
    out["rate_over_rk4_scan"] = out["tracks_per_s"] / rk4["rk4_tracks_per_second"]
    return out


def side_rates(tp: pd.DataFrame, model: str, batch: int) -> tuple[np.ndarray, str]:
    """Per-repeat tracks/s (repeats,) of ``model``'s fastest backend at ``batch``, and a label
    that carries the model's mean position error (``pos_mean_mm`` of ``tp``), so a speed
    headline never shows a rate without the accuracy it was bought at."""
    sub = tp[(tp["model"] == model) & (tp["batch"] == batch)]
    if sub.empty:
        raise ValueError(f"side_rates: no timing of model {model!r} at batch {batch}")
    best = sub.sort_values("tracks_per_s").iloc[-1]
    return best["timing"].rates, (f"{best['run']} ({best['backend']}, batch {batch}; mean "
                                  f"position error {best['pos_mean_mm']:.3g} mm)")


def cheapest_coarse(coarse: pd.DataFrame, err_mm: float,
                    on: str = "pos_mean_mm") -> pd.Series | None:
    """The row of ``coarse`` (:func:`physml.tracks.experiments.coarse_rk4`) with the fewest
    steps whose mean position error (column ``on``: the test tracks', or the validation
    tracks' ``val_pos_mean_mm``) is at most ``err_mm``; None if none is."""
    ok = coarse[coarse[on] <= err_mm].sort_values("rk4_steps")
    return ok.iloc[0] if len(ok) else None


def matched_rk4(coarse: pd.DataFrame, coarse_tp: pd.DataFrame, rk4: dict, err_mm: float,
                batch: int, on: str = "pos_mean_mm") -> tuple[np.ndarray, str]:
    """The physics side of a speed comparison at matched accuracy: per-repeat tracks/s and a
    label of the plain RK4 with the fewest steps in ``coarse``
    (:func:`physml.tracks.experiments.coarse_rk4`, timed in ``coarse_tp`` at ``batch``) whose
    mean position error (column ``on``: test, or :data:`~physml.tracks.experiments.SELECT_ON`
    for the validation tracks) is at most ``err_mm`` (the surrogate's, on the same kind of
    tracks); when none of them is that accurate, RK4 at its <= 1 um schedule (``rk4``, more
    accurate than any surrogate)."""
    m = cheapest_coarse(coarse, err_mm, on)
    where = "on the validation tracks" if on == SELECT_ON else "on the test tracks"
    if m is not None:
        t = coarse_tp[(coarse_tp["model"] == m["model"]) & (coarse_tp["batch"] == batch)]
        if len(t) != 1:
            raise ValueError(f"matched_rk4: no timing of {m['model']} at batch {batch}")
        val = (f"; {m[on]:.3g} mm {where}" if on != "pos_mean_mm" else "")
        return (np.asarray(t.iloc[0]["timing"].rates),
                f"plain RK4, {int(m['rk4_steps'])} steps (numba; {m['pos_mean_mm']:.3g} mm on "
                f"the test tracks{val}, at least as accurate as the surrogate's {err_mm:.3g} mm "
                f"{where})")
    return (np.asarray(rk4["timing"].rates),
            f"RK4 {rk4['schedule']} (numba; no coarser schedule scanned is as accurate as "
            f"{err_mm:.3g} mm {where})")


def matched_sides(picks: dict, err_mm: float) -> tuple[dict, str]:
    """The picked surrogates that enter a speed comparison at matched accuracy: those of
    ``picks`` (side -> its run's row with ``model`` and test ``pos_mean_mm``, or None) whose
    test mean position error is at most ``err_mm`` (the best surrogate's); and one sentence
    naming each side left out with its error ("" when none is). A speed verdict between models
    whose accuracies differ by orders of magnitude would compare different products."""
    if not err_mm > 0:
        raise ValueError(f"matched_sides: err_mm must be > 0, got {err_mm}")
    keep, out = {}, []
    for side, pick in picks.items():
        if pick is None:
            continue
        e = float(pick["pos_mean_mm"])
        if e <= err_mm:
            keep[side] = pick
        else:
            out.append(f"{side}, {pick['model']}: {e:.3g} mm, {e / err_mm:.3g}x the error")
    if not out:
        return keep, ""
    return keep, (f"Left out of this comparison, less accurate than the best surrogate's "
                  f"{err_mm:.3g} mm: " + "; ".join(out) + ".")


def side_timings(tp: pd.DataFrame, picks: dict, batch: int) -> tuple[dict, dict]:
    """Per-repeat tracks/s and labels of each picked model (:func:`side_rates`), per side."""
    out = {k: side_rates(tp, v["model"], batch) for k, v in picks.items() if v is not None}
    return {k: r for k, (r, _) in out.items()}, {k: n for k, (_, n) in out.items()}


def record_model_rates(tp: pd.DataFrame, batch: int, threads: int) -> None:
    """Record ``<model>.<backend>.tracks_per_second`` at ``batch`` (fastest repeat)."""
    from physml.results import record

    for r in tp[tp["batch"] == batch].itertuples():
        record(f"{r.model}.{r.backend}.tracks_per_second", r.tracks_per_s, unit="tracks/s",
               note=f"batch {r.batch}, {count_noun(threads, 'thread')}, run {r.run}")


def rate_target_text(t, target: float) -> str:
    """Whether a throughput ``target`` (items/s) is met by the timing ``t``
    (:class:`physml.timing.Timing`), by :func:`physml.stats.against_target` on the 95% CI of
    the mean rate over repeats: "met", "missed" or "undecided", the rate, and where it is not
    met whether the fastest repeat reaches the target. One phrase, numbers from ``t``."""
    ci, best = t.per_second, t.best_per_second
    check = against_target(ci, target, better="higher")
    where = {"met": "the whole 95% CI at or above it", "missed": "the whole 95% CI below it",
             "undecided": "the 95% CI contains it"}[check.outcome]
    text = f"{check.outcome} (mean over {ci.n} repeats {ci.format(',.0f')} tracks/s: {where}"
    if check.outcome != "met":
        text += ("; the fastest repeat reaches it" if best >= target
                 else "; not even the fastest repeat reaches it")
    return text + ")"


def independent_check_markdown(rk4: dict, tol_um: float) -> str:
    """One sentence: the chosen schedule of ``rk4`` (a :func:`rk4_at_matched_accuracy` result
    with n_check > 0) on its independent track set: max and 99th-percentile error beside the
    reference set's, and whether ``tol_um`` holds there too. ValueError without a check set."""
    if not rk4.get("n_check"):
        raise ValueError("independent_check_markdown: the result has no independent check set "
                         "(rk4_at_matched_accuracy(n_check=0))")
    held = rk4["check_max_err_um"] <= tol_um
    return (f"Over-fitting check ({rk4['field']}): the schedule was chosen on {rk4['n_ref']} "
            f"reference tracks (max {rk4['max_err_um']:.3g} µm, 99th percentile "
            f"{rk4['p99_err_um']:.3g} µm); on {rk4['n_check']} independent tracks (seed "
            f"{rk4['check_seed']}) it is within {rk4['check_max_err_um']:.3g} µm (99th "
            f"percentile {rk4['check_p99_err_um']:.3g} µm): the {tol_um:g} µm goal "
            f"{'holds' if held else '**does not hold**'} there.")
