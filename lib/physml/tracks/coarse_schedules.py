"""Is N equal steps the fastest coarse RK4? Other schedules at a surrogate's accuracy.

The speed comparison at matched accuracy (notebook 05) puts the best surrogate beside plain
RK4 at least as accurate on the validation tracks. N equal steps on the trilinear map
(:func:`physml.tracks.experiments.coarse_rk4`) is one way to lay those steps; two others might
reach the same error faster, and without them the physics side could be a straw man:

- equal steps on the map's C² cubic B-spline (RK4's error falls as h⁴ on a smooth field; but a
  B-spline step costs more than a map step, and the B-spline is not the map the ground truth was
  integrated through, so it adds a field-model error of its own);
- map-node schedules from a local error estimate (:func:`physml.tracks.propagate.node_schedule`,
  the machinery of the ≤ 1 µm schedule, at looser tolerances): long steps where the field is
  weak, one map-node spacing where it is not.

:func:`scan` scores each family on the validation and test tracks of a fixed-plane dataset,
:func:`picks` takes each family's fewest steps at a given validation error, :func:`timings`
times those picks in one run, and :func:`fastest` is the physics side of the speed headline:
the fastest pick. :func:`markdown` says what the check found.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from physml.tracks import experiments as X
from physml.tracks.propagate import node_schedule
from physml.tracks.rk4_compiled import rk4_compiled

EQUAL_MAP = "N equal steps, trilinear map"
EQUAL_BSPLINE = "N equal steps, C² B-spline of the map"
NODES = "map-node schedule by local error"
FAMILIES = (EQUAL_MAP, EQUAL_BSPLINE, NODES)


def fixed_plane_mm(ds: dict) -> float:
    """The one end plane (mm) of the validation and test tracks of ``ds``; ValueError if dz
    varies (node schedules and equal steps over one length need a fixed plane)."""
    dz = np.concatenate([ds[k]["dz"] for k in ("test", "val")])
    if not np.all(dz == dz[0]):
        raise ValueError("coarse_schedules: the tracks must end at one plane (fixed dz); got dz "
                         f"in [{dz.min()}, {dz.max()}] mm")
    return float(dz[0])


def _row(family: str, setting: str, field: str, nodes: np.ndarray, ds: dict, fld,
         p_min: float) -> dict:
    score = {k: X.scores_on_test(rk4_compiled(ds[k]["initial"], nodes, fld)[:, :4], ds[k], p_min)
             for k in ("val", "test")}
    return {"family": family, "setting": setting, "field": field, "steps": len(nodes) - 1,
            "nodes": tuple(float(z) for z in nodes), X.SELECT_ON: score["val"]["pos_mean_mm"],
            **{k: score["test"][k] for k in ("pos_mean_mm", "pos_95_mm", "slope_mean")}}


def scan(ds: dict, steps: Sequence[int], tols_um: Sequence[float], smooth=None,
         n_probes: int = 300, seed: int = 0, p_min: float = X.P_MIN_GEV) -> pd.DataFrame:
    """Every family on the tracks of a fixed-plane dataset ``ds`` (``field``, ``val``,
    ``test``; tracks start at z = 0): equal steps on the map and on ``smooth`` (its
    :class:`~physml.tracks.tricubic.BSplineField`, built when None) for each N of ``steps``;
    the map-node schedule for each local tolerance of ``tols_um`` (probes: ``n_probes``
    validation tracks at p >= p_min drawn with ``seed``). One row per setting: family,
    setting, field ("trilinear" / "bspline"), steps, nodes (tuple, mm), ``val_pos_mean_mm``
    (:data:`~physml.tracks.experiments.SELECT_ON`) and the test pos_mean_mm, pos_95_mm,
    slope_mean at p >= p_min. ValueError if dz varies."""
    z_end, grid = fixed_plane_mm(ds), ds["field"]
    if smooth is None:
        from physml.tracks.tricubic import BSplineField

        smooth = BSplineField(grid)
    rows = []
    for family, field, fld in ((EQUAL_MAP, "trilinear", grid),
                               (EQUAL_BSPLINE, "bspline", smooth)):
        for n in steps:
            rows.append(_row(family, f"N = {int(n)}", field,
                             np.linspace(0.0, z_end, int(n) + 1), ds, fld, p_min))
    val = ds["val"]
    fast = np.flatnonzero(1 / np.abs(val["initial"][:, 4]) >= p_min)
    pick = np.random.default_rng(seed).choice(fast, min(n_probes, len(fast)), replace=False)
    for tol in tols_um:
        nodes = node_schedule(0.0, z_end, grid, val["initial"][pick], float(tol))
        rows.append(_row(NODES, f"local tolerance {tol:g} µm", "trilinear", nodes, ds, grid,
                         p_min))
    return pd.DataFrame(rows)


def picks(table: pd.DataFrame, err_mm: float) -> dict[str, pd.Series | None]:
    """Per family of ``table`` (:func:`scan`), the row with the fewest steps whose validation
    error is at most ``err_mm`` (None where no setting tried is that accurate)."""
    out = {}
    for family in FAMILIES:
        ok = table[(table["family"] == family) & (table[X.SELECT_ON] <= err_mm)]
        out[family] = ok.sort_values("steps", kind="stable").iloc[0] if len(ok) else None
    return out


def label(row: pd.Series) -> str:
    """A pick's name in tables and headlines: family, setting and steps."""
    return f"RK4, {row['family']} ({row['setting']}, {row['steps']} steps)"


def timings(chosen: dict, fields: dict, batch: int, threads: int, repeats: int = 5,
            min_items: int = 4096, dz_mm: float = 8500.0) -> pd.DataFrame:
    """Tracks/s of each pick of ``chosen`` (:func:`picks`; None entries skipped) at ``batch``
    on ``threads`` threads, one after another in one run
    (:func:`physml.tracks.benchmark.caller_timings`: model is :func:`label`, with the pick's
    family, setting, steps and validation error); ``fields``: field name ("trilinear",
    "bspline") -> the field object."""
    from physml.tracks import benchmark

    rows = [r for r in chosen.values() if r is not None]
    makes = {label(r): benchmark.nodes_caller(np.array(r["nodes"]), fields[r["field"]],
                                              dz_mm=dz_mm) for r in rows}
    tp = benchmark.caller_timings(makes, {label(r): r["pos_mean_mm"] for r in rows}, "numba",
                                  [batch], threads, repeats, min_items)
    by = {label(r): r for r in rows}
    return tp.assign(**{c: tp["model"].map(lambda m, c=c: by[m][c])
                        for c in ("family", "setting", "steps", X.SELECT_ON)})


def _fastest_row(tp: pd.DataFrame) -> pd.Series:
    return tp.iloc[int(np.argmax([np.median(t.rates) for t in tp["timing"]]))]


def fastest(tp: pd.DataFrame, err_mm: float) -> tuple[np.ndarray, str] | None:
    """The fastest pick of :func:`timings` by median repeat, as the physics side of a speed
    comparison at the validation error ``err_mm``: (per-repeat tracks/s, a name with its test
    and validation errors), or None when ``tp`` is empty (no schedule reached the error)."""
    if len(tp) == 0:
        return None
    r = _fastest_row(tp)
    return (np.asarray(r["timing"].rates),
            f"{r['model']}, numba; {r['pos_mean_mm']:.3g} mm on the test tracks, "
            f"{r[X.SELECT_ON]:.3g} mm on the validation tracks, at least as accurate there as "
            f"the surrogate's {err_mm:.3g} mm; the fastest of the schedule families reaching it: "
            f"{len(tp)} of {len(FAMILIES)}")


def markdown(table: pd.DataFrame, err_mm: float, what: str, tp: pd.DataFrame) -> str:
    """What the check found: each family's fewest steps reaching the validation error
    ``err_mm`` of ``what`` (e.g. the best surrogate), their speeds (``tp``, :func:`timings`)
    and which is fastest; every number from ``table`` and ``tp``."""
    chosen = picks(table, err_mm)
    rate = dict(zip(tp["family"], tp["tracks_per_s"], strict=True))

    def say(family):
        r = chosen[family]
        if r is None:
            return f"{family}: none of the settings tried"
        return (f"{family}: {r['steps']} steps ({r['setting']}; {r[X.SELECT_ON]:.3g} mm on the "
                f"validation tracks, {r['pos_mean_mm']:.3g} mm on the test tracks) at "
                f"{rate[family]:,.0f} tracks/s")

    head = (f"**Is N equal steps the fastest coarse RK4?** The fewest steps reaching {what}'s "
            f"validation error ({err_mm:.3g} mm), per schedule family, timed one after another "
            f"at the same batch and threads: " + "; ".join(say(f) for f in FAMILIES) + ". ")
    if len(tp) == 0:
        return head + ("No schedule tried reaches it, so the physics side is RK4 at its ≤ 1 µm "
                       "schedule.")
    win = _fastest_row(tp)["family"]
    if win == EQUAL_MAP:
        return head + ("N equal steps on the map is the fastest of them (median repeat) and is "
                       "the physics side of the speed headline below.")
    return head + (f"The {win} is the fastest of them (median repeat), so it, not N equal steps "
                   "on the map, is the physics side of the speed headline below.")
