"""Checks of the field map and the ground-truth propagators (notebook 01 and 05).

Each function returns plain dicts / pandas DataFrames; figures are in :mod:`figures`.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from physml.tracks.data import DatasetSpec, accepted, sample_initial_states
from physml.tracks.field import GaussianField, field_integral
from physml.tracks.propagate import (
    KAPPA,
    propagate,
    propagate_scipy,
    propagate_to,
    rk4_schedule,
)


def field_summary(field, z_range_mm=(0.0, 14500.0)) -> dict:
    """Peak on-axis By (T), its z (mm), on-axis integral of By (T m) and the grid shape."""
    z = np.arange(z_range_mm[0], z_range_mm[1] + 1, 10.0)
    by = field(np.stack([0 * z, 0 * z, z], 1))[:, 1]
    out = {"peak_by_tesla": float(by.max()), "z_peak_mm": float(z[np.argmax(by)]),
           "integral_by_tesla_m": float(field_integral(field, z_range_mm=z_range_mm)[1] / 1000)}
    if hasattr(field, "shape"):
        out["grid_shape"] = list(field.shape)
        out["grid_spacing_mm"] = field.spacing_mm.tolist()
    return out


def integral_uniformity(field, half_mm: float = 1500.0, n: int = 7,
                        z_range_mm=(0.0, 14500.0), dz_mm: float = 10.0) -> dict:
    """How uniform the field integral I(x, y) = ∫ By dz along straight lines parallel to z is
    across the aperture: what a track's momentum kick depends on (Δtx ≈ -κ q/p I).

    ``field``: callable points (m, 3) mm -> B (m, 3) T (a map, or a magnet's ``exact``).
    Lines on an n x n grid (n odd, so the axis is one of them) over |x|, |y| <= half_mm,
    integrated by the trapezoid rule over
    ``z_range_mm`` with ``dz_mm`` spacing. Returns ``integral_tesla_m`` I(0, 0) (T m),
    ``max_dev`` max |I(x, y) / I(0, 0) - 1|, ``deviation`` (n, n) (x index first), ``axis_mm``
    (n,). For a vacuum field I is harmonic in (x, y) (∫ ∂²By/∂z² dz vanishes when By does at
    both ends), so unlike By at one plane it is not tied to the on-axis profile's curvature:
    it is set by the transverse geometry of the poles or coils.
    """
    if not (half_mm > 0 and n >= 3 and n % 2 and dz_mm > 0 and z_range_mm[1] > z_range_mm[0]):
        raise ValueError(f"integral_uniformity: need half_mm > 0, odd n >= 3, dz_mm > 0 and an "
                         f"increasing z_range_mm; got {half_mm}, {n}, {dz_mm}, {z_range_mm}")
    z = np.arange(z_range_mm[0], z_range_mm[1] + 0.5 * dz_mm, dz_mm)
    g = np.linspace(-half_mm, half_mm, n)
    xx, yy = np.meshgrid(g, g, indexing="ij")
    pts = np.stack(np.broadcast_arrays(xx.ravel()[:, None], yy.ravel()[:, None], z[None, :]),
                   -1).reshape(-1, 3)
    by = np.asarray(field(pts))[:, 1].reshape(n * n, z.size)
    integral = np.trapezoid(by, z, axis=1).reshape(n, n) / 1000.0  # T m
    i0 = integral[n // 2, n // 2]
    if i0 == 0:
        raise ValueError("integral_uniformity: the on-axis field integral is 0")
    dev = integral / i0 - 1
    return {"integral_tesla_m": float(i0), "max_dev": float(np.abs(dev).max()),
            "deviation": dev, "axis_mm": g, "half_mm": float(half_mm)}


def kick_check(field, p_gev: float = 10.0, z_end_mm: float = 14000.0) -> dict:
    """A track on axis (q = +1): its slope change x p, and the prediction -KAPPA int By dz."""
    out = propagate(np.array([[0.0, 0.0, 0.0, 0.0, 1.0 / p_gev]] * 2), 0.0, z_end_mm, field)
    integ = field_integral(field, z_range_mm=(0.0, z_end_mm))[1]
    sin_t = out[0, 2] / np.sqrt(1 + out[0, 2] ** 2 + out[0, 3] ** 2)
    return {"delta_tx": float(out[0, 2]), "delta_tx_times_p": float(abs(out[0, 2]) * p_gev),
            "kappa_int_by": float(KAPPA * integ),
            "delta_sin_theta_times_p": float(abs(sin_t) * p_gev)}


def reference_sample(field, n: int, rng: np.random.Generator, z_end_mm: float = 8500.0,
                     p_range_gev=(0.5, 100.0)) -> np.ndarray:
    """n accepted initial states (n, 5) at z = 0 for a z_end propagation (acceptance of
    :mod:`physml.tracks.data`)."""
    spec = DatasetSpec(p_range_gev=tuple(p_range_gev))
    keep = []
    got = 0
    while got < n:
        s, _ = sample_initial_states(2 * n, rng, spec)
        fin = propagate_to(s, 0.0, np.full(2 * n, z_end_mm), field)
        s = s[accepted(fin, spec)]
        keep.append(s)
        got += len(s)
    return np.concatenate(keep)[:n]


def dop853(states, field, z_end_mm: float = 8500.0,
           batched: bool = False) -> tuple[np.ndarray, float]:
    """scipy DOP853 (rtol 1e-10) end states (n, 5) and seconds per track (``batched``: one
    solve of the stacked system, :func:`~physml.tracks.propagate.propagate_scipy`)."""
    t0 = time.perf_counter()
    ref = propagate_scipy(states, 0.0, z_end_mm, field, batched=batched)
    return ref, (time.perf_counter() - t0) / len(states)


def step_scan(states, ref, field, steps_mm, z_end_mm: float = 8500.0, n_speed: int = 20000,
              rng: np.random.Generator | None = None, repeats: int = 3, threads: int = 1,
              include_default: bool = True) -> pd.DataFrame:
    """RK4 at each step size (plus the default step if ``include_default``) and Cash-Karp:
    position error vs the reference (max, 99th percentile, median in um) and tracks/s on
    n_speed tracks (fastest of ``repeats``, :func:`physml.timing.measure`, ``threads``)."""
    from physml import timing
    from physml.tracks.propagate import default_rk4_step_mm

    if rng is None:
        raise ValueError("step_scan: pass rng")
    steps = set(map(float, steps_mm)) | ({default_rk4_step_mm(field)} if include_default else set())
    big = states[rng.integers(0, len(states), n_speed)]
    rows = []

    def row(method, step, n_steps, out, fn):
        err = np.hypot(*(out[:, :2] - ref[:, :2]).T) * 1000
        t = timing.measure(fn, items=n_speed, repeats=repeats)
        return {"method": method, "step_mm": step, "steps": n_steps, "max_err_um": err.max(),
                "p99_err_um": np.percentile(err, 99), "median_err_um": np.median(err),
                "tracks_per_s": t.best_per_second}

    with timing.threads(threads):
        for h in sorted(steps, reverse=True):
            out = propagate(states, 0.0, z_end_mm, field, step_mm=h)
            n_steps = len(rk4_schedule(0.0, z_end_mm, h, field)) - 1
            rows.append(row("rk4", h, n_steps, out,
                            lambda h=h: propagate(big, 0.0, z_end_mm, field, step_mm=h)))
        out, info = propagate(states, 0.0, z_end_mm, field, method="cash_karp", return_info=True)
        rows.append(row("cash_karp (tol 1 um/step)", np.nan, info["mean_steps"], out,
                        lambda: propagate(big, 0.0, z_end_mm, field, method="cash_karp")))
    return pd.DataFrame(rows)


def helix_exact(state, z0: float, z1: float, by: float) -> np.ndarray:
    """Analytic end state (5,) in a uniform field (0, By, 0): du/ds = KAPPA q/p u x B."""
    x, y, tx, ty, qop = state
    n = np.sqrt(1 + tx**2 + ty**2)
    ux, uy, uz = tx / n, ty / n, 1 / n
    w = KAPPA * qop * by
    c0 = ux + 1j * uz

    def pos(s):
        return x + 1j * z0 + c0 * (np.exp(1j * w * s) - 1) / (1j * w)

    s1 = brentq(lambda s: pos(s).imag - z1, 0, 2 * (z1 - z0), xtol=1e-12, rtol=1e-15)
    c1 = c0 * np.exp(1j * w * s1)
    return np.array([pos(s1).real, y + uy * s1, c1.real / c1.imag, uy / c1.imag, qop])


def helix_check(n: int, rng: np.random.Generator, by: float = 1.0, z_end_mm: float = 3000.0,
                step_mm: float = 20.0) -> dict:
    """Max |position error| (um) of RK4 and Cash-Karp vs the analytic helix (uniform field)."""
    from physml.tracks.field import UniformField

    s, _ = sample_initial_states(n, rng, DatasetSpec(p_range_gev=(2.0, 100.0)))
    exact = np.array([helix_exact(t, 0.0, z_end_mm, by) for t in s])
    out = {}
    for m in ("rk4", "cash_karp"):
        got = propagate(s, 0.0, z_end_mm, UniformField((0.0, by, 0.0)), method=m, step_mm=step_mm)
        out[f"{m}_max_err_um"] = float(np.hypot(*(got[:, :2] - exact[:, :2]).T).max() * 1000)
    return out


def convergence(states, steps_mm, field=None, z_end_mm: float = 8500.0) -> dict:
    """RK4 error vs step on a smooth field (default Gaussian) against DOP853 at rtol 1e-12.

    Returns steps, max |dx| errors (mm) and the order fitted by least squares on log-log.
    """
    field = field or GaussianField()
    ref = propagate_scipy(states, 0.0, z_end_mm, field, rtol=1e-12, atol=1e-12)
    errs = [float(np.abs(propagate(states, 0.0, z_end_mm, field, step_mm=h)[:, :2]
                         - ref[:, :2]).max()) for h in steps_mm]
    order = float(np.polyfit(np.log(steps_mm), np.log(errs), 1)[0])
    return {"steps_mm": list(map(float, steps_mm)), "max_err_mm": errs, "order": order}


def default_row(scan: pd.DataFrame, field) -> pd.Series:
    """The RK4 row of a :func:`step_scan` at the field's default step."""
    from physml.tracks.propagate import default_rk4_step_mm

    rk = scan[(scan["method"] == "rk4") & (scan["step_mm"] == default_rk4_step_mm(field))]
    if rk.empty:
        raise ValueError("default_row: the scan has no row at the default step "
                         "(run step_scan with include_default=True)")
    return rk.iloc[0]


def cash_karp_row(scan: pd.DataFrame) -> pd.Series:
    """The Cash-Karp row of a :func:`step_scan`."""
    return scan[scan["method"] != "rk4"].iloc[0]


def momentum_range(states: np.ndarray) -> tuple[float, float]:
    """(min, max) momentum (GeV) of states (n, 5)."""
    p = 1 / np.abs(states[:, 4])
    return float(p.min()), float(p.max())
