"""Simulator checks shown in notebook 01: conservation, the analytic puff, convergence order.

Each returns numbers computed against an independent reference (the initial mass; the analytic
advection–diffusion solution of a Gaussian puff), not against the simulator itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import transport as T
from .terrain import TerrainSpec, random_terrains

PUFF = {"domain_m": 64_000.0, "centre_m": (20_000.0, 20_000.0), "sigma_m": 6_000.0,
        "wind_ms": (6.0, 3.0), "diffusivity_m2s": 20.0, "t_s": 2_000.0}


def mass_drift(rng: np.random.Generator, n_cells: int, n_samples: int, t_end_s: float,
               dx_m: float = 1000.0, brunt_vaisala_s: float = 0.01,
               diffusivity_m2s: float = 20.0) -> np.ndarray:
    """Relative mass change ``|M(t) − M(0)| / M(0)`` per sample, ``(n_samples,)``.

    Random terrains and winds (N(0, 8 m/s) per component), random positive tracer, closed
    boundaries, simulated for ``t_end_s``.
    """
    spec = TerrainSpec(n_cells=n_cells, margin_cells=n_cells / 8)
    h = random_terrains(rng, n_samples, spec)
    w = T.deflected_wind(h, rng.normal(0, 8, size=(n_samples, 2)), brunt_vaisala_s, dx_m)
    q0 = rng.uniform(0, 1, size=(n_samples, n_cells, n_cells))
    q = T.simulate(q0, w, t_end_s, dx_m, diffusivity_m2s, boundary="closed")
    m0 = q0.sum(axis=(1, 2))
    return np.abs(q.sum(axis=(1, 2)) - m0) / m0


def puff(n_cells: int, cfl: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(simulated, analytic) puff fields ``(n, n)`` for the :data:`PUFF` set-up."""
    p = PUFF
    dx = p["domain_m"] / n_cells
    q0 = T.gaussian_puff(n_cells, dx, p["centre_m"], p["sigma_m"])
    w = np.zeros((2, n_cells, n_cells))
    w[0], w[1] = p["wind_ms"]
    sim = T.simulate(q0, w, p["t_s"], dx, p["diffusivity_m2s"], cfl=cfl)
    exact = T.puff_solution(n_cells, dx, p["centre_m"], p["sigma_m"], p["wind_ms"],
                            p["diffusivity_m2s"], p["t_s"])
    return sim, exact


def puff_rel_error(n_cells: int) -> float:
    """Relative L2 error of the simulated puff against the analytic solution."""
    sim, exact = puff(n_cells)
    return float(np.linalg.norm(sim - exact) / np.linalg.norm(exact))


def convergence(n_cells: list[int]) -> tuple[pd.DataFrame, float]:
    """Puff error under refinement: a table (n_cells, dx_m, rel_error) and the fitted order
    p of ``error ∝ dx^p`` (least squares in log–log)."""
    rows = [{"n_cells": n, "dx_m": PUFF["domain_m"] / n, "rel_error": puff_rel_error(n)}
            for n in n_cells]
    df = pd.DataFrame(rows)
    order = float(np.polyfit(np.log(df["dx_m"]), np.log(df["rel_error"]), 1)[0])
    return df, order


def blocking_demo(n_cells: int, wind_speed_ms: float, ridge_height_m: float, n_frames: int,
                  travel_cells: float | None = None, dx_m: float = 1000.0,
                  brunt_vaisala_s: float = 0.01, diffusivity_m2s: float = 20.0) -> dict:
    """A westerly wind and a puff west of a north–south ridge (crest at mid-domain).

    Returns ``{"terrain" (n, n) m, "wind" (2, n, n) m/s, "frames" (F, n, n), "times_s" (F,),
    "froude", "east_fraction", "upslope_cut"}``: east_fraction = share of the final tracer mass
    east of the crest (a blocked flow keeps it west); upslope_cut = fraction of the background
    wind's upslope component removed on the windward flank (cells above 30% of the ridge
    height). ``travel_cells`` (undisturbed displacement) defaults to 0.375 · n_cells.
    """
    from .terrain import gradient, ridge

    travel_cells = 0.375 * n_cells if travel_cells is None else travel_cells
    c = (n_cells - 1) / 2
    h = ridge(n_cells, (c, c), np.pi / 2 + 0.3, ridge_height_m, 3.0 * n_cells, n_cells / 24)
    w = T.deflected_wind(h, np.array([wind_speed_ms, 0.0]), brunt_vaisala_s, dx_m)
    q0 = T.gaussian_puff(n_cells, dx_m, (0.3 * n_cells * dx_m, c * dx_m), 3 * dx_m)
    t_end = travel_cells * dx_m / wind_speed_ms
    frames = T.simulate(q0, w, t_end, dx_m, diffusivity_m2s, boundary="open",
                        n_frames=n_frames)
    frames = np.concatenate([q0[None], frames]) if n_frames > 1 else np.stack([q0, frames])
    times = np.linspace(0, t_end, frames.shape[0])
    east = frames[-1][:, int(c) + n_cells // 8:].sum() / frames[-1].sum()
    gx, gy = gradient(h, dx_m)
    up_bg = wind_speed_ms * gx
    flank = (up_bg > 0) & (h > 0.3 * ridge_height_m)
    cut = 1.0 - (w[0] * gx + w[1] * gy)[flank].sum() / up_bg[flank].sum()
    return {"terrain": h, "wind": w, "frames": frames, "times_s": times,
            "froude": float(wind_speed_ms / (brunt_vaisala_s * ridge_height_m)),
            "east_fraction": float(east), "upslope_cut": float(cut)}
