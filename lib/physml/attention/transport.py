"""Tracer transport over terrain: terrain-deflected wind and finite-volume advection–diffusion.

Wind deflection rule (documented, deliberately simple)
------------------------------------------------------
A stably stratified flow with buoyancy frequency N (s⁻¹) and speed U (m/s) can lift a parcel by
about U/N metres (kinetic energy ½U² against the potential energy ½N²h²). So a ridge of height h
is crossed when the Froude number Fr = U / (N h) is above ~1 and blocked below. Locally we use
Fr(x) = |U| / (N h(x)) and a blocking weight

    β(x) = 1 / (1 + Fr(x)^p)        (p = 6: β = 0.5 at Fr = 1, 0.08 at Fr = 1.5, 0.95 at Fr = 0.6)

and remove that fraction of the *upslope* component of the background wind U:

    u(x) = U − β(x) · max(U · n̂(x), 0) · n̂(x),     n̂ = ∇h / sqrt(|∇h|² + s₀²),

so blocked air is turned along the contours instead of climbing (s₀ = 1e-3 keeps n̂ finite on
flat ground). Where h < U/N (Fr > 1) the flow passes almost unchanged; the whole terrain of a
sample is "blocking" when its global Froude number U / (N · max h) is below 1.

Numerics
--------
Cell-centred finite volumes on a square grid of side ``dx_m``; the tracer ``q`` is a density
(amount per m²), mass = Σ q · dx². Face velocities are the mean of the two neighbouring cell
velocities; advective fluxes are first-order upwind; diffusive fluxes are K · (difference) / dx;
time stepping is forward Euler (unsplit). The explicit update keeps q >= 0 (and is stable) when

    dt · ( max|u| / dx + max|v| / dx + 4 K / dx² ) <= 1,

which :func:`step` checks for every sample; a step that violates it raises :class:`CFLError`.
Boundaries: ``"closed"`` (no flux through the edges: mass is conserved to round-off) or
``"open"`` (outflow leaves with the upwind value, inflow brings clean air, no diffusive flux).

Arrays: tracer ``(B, n, n)``, wind ``(B, 2, n, n)`` with channel 0 = u (along x, axis -1) and
channel 1 = v (along y, axis -2); a single field without the batch axis is accepted too.
"""

from __future__ import annotations

import math

import numpy as np

from .terrain import gradient

BOUNDARIES = ("closed", "open")
BLOCKING_POWER = 6
SLOPE_FLOOR = 1e-3


class CFLError(ValueError):
    """An explicit step would violate the CFL / diffusion stability limit."""


def froude(wind_speed_ms: np.ndarray | float, brunt_vaisala_s: float,
           height_m: np.ndarray | float) -> np.ndarray:
    """Froude number U / (N h) (inf where h <= 0, or where h is so small that U / (N h)
    exceeds the float range), broadcast over the inputs."""
    h = np.asarray(height_m, dtype=float)
    u = np.asarray(wind_speed_ms, dtype=float)
    with np.errstate(divide="ignore", over="ignore"):  # the overflow's inf is the right answer
        return np.where(h > 0, u / (brunt_vaisala_s * np.where(h > 0, h, 1.0)), np.inf)


def blocking_weight(fr: np.ndarray) -> np.ndarray:
    """β = 1 / (1 + Fr^p): 1 for fully blocked (Fr → 0), 0 for free flow (Fr → ∞)."""
    fr = np.asarray(fr, dtype=float)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + fr ** BLOCKING_POWER)


def deflected_wind(terrain_m: np.ndarray, wind_ms: np.ndarray, brunt_vaisala_s: float,
                   dx_m: float) -> np.ndarray:
    """Background wind deflected by terrain (rule in the module docstring).

    Parameters
    ----------
    terrain_m : ``(B, n, n)`` or ``(n, n)``, metres.
    wind_ms : ``(B, 2)`` or ``(2,)``: background (u, v), m/s.
    brunt_vaisala_s : N > 0, s⁻¹.  dx_m : cell size, m.

    Returns ``(B, 2, n, n)`` (or ``(2, n, n)``), m/s.
    """
    if brunt_vaisala_s <= 0:
        raise ValueError(f"deflected_wind: brunt_vaisala_s must be > 0, got {brunt_vaisala_s}")
    single = np.ndim(terrain_m) == 2
    h = np.asarray(terrain_m, dtype=float)[None] if single else np.asarray(terrain_m, float)
    w = np.asarray(wind_ms, dtype=float).reshape(-1, 2)
    if w.shape[0] != h.shape[0]:
        raise ValueError(f"deflected_wind: {h.shape[0]} terrains but {w.shape[0]} winds")
    gx, gy = gradient(h, dx_m)
    norm = np.sqrt(gx**2 + gy**2 + SLOPE_FLOOR**2)
    nx, ny = gx / norm, gy / norm
    U, V = w[:, 0, None, None], w[:, 1, None, None]
    speed = np.hypot(U, V)
    beta = blocking_weight(froude(speed, brunt_vaisala_s, h))
    upslope = np.maximum(U * nx + V * ny, 0.0)
    out = np.stack([U - beta * upslope * nx, V - beta * upslope * ny], axis=1)
    return out[0] if single else out


def max_stable_dt(wind_ms: np.ndarray, dx_m: float, diffusivity_m2s: float) -> np.ndarray:
    """Largest stable explicit step per sample, seconds, shape ``(B,)`` (wind ``(B, 2, n, n)``)."""
    w = np.asarray(wind_ms, dtype=float)
    w = w[None] if w.ndim == 3 else w
    rate = (np.abs(w[:, 0]).max(axis=(-2, -1)) + np.abs(w[:, 1]).max(axis=(-2, -1))) / dx_m
    rate = rate + 4.0 * diffusivity_m2s / dx_m**2
    with np.errstate(divide="ignore"):
        return np.where(rate > 0, 1.0 / np.where(rate > 0, rate, 1.0), np.inf)


def _check(dx_m: float, diffusivity_m2s: float, boundary: str) -> None:
    if not dx_m > 0:
        raise ValueError(f"transport: dx_m must be > 0, got {dx_m}")
    if not diffusivity_m2s >= 0 or not math.isfinite(diffusivity_m2s):
        raise ValueError(f"transport: diffusivity_m2s must be finite and >= 0, got "
                         f"{diffusivity_m2s}")
    if boundary not in BOUNDARIES:
        raise ValueError(f"transport: boundary must be one of {BOUNDARIES}, got {boundary!r}")


def _face_coefficients(vel: np.ndarray, axis: int, dx_m: float, k: float, boundary: str
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Flux coefficients through the n+1 faces along ``axis`` (-1: x, -2: y).

    The flux through face f (between cells f-1 and f, with ghost cells outside) is
    ``a_f · q_{f-1} + b_f · q_f``: upwind advection ``max(v_f, 0) q_{f-1} + min(v_f, 0) q_f``
    plus diffusion ``-K (q_f - q_{f-1}) / dx``. The wind is steady, so these are computed once
    per simulation. Returns ``(a, b)``, each with n+1 entries along ``axis`` (edge faces: see
    the module docstring).
    """
    vm = np.moveaxis(vel, axis, -1)
    vf = 0.5 * (vm[..., :-1] + vm[..., 1:])
    a = np.maximum(vf, 0.0) + k / dx_m
    b = np.minimum(vf, 0.0) - k / dx_m
    zero = np.zeros(vm.shape[:-1] + (1,), dtype=vm.dtype)
    if boundary == "closed":
        a_left = b_left = a_right = b_right = zero
    else:  # open: outflow with the upwind value, clean inflow, no diffusion across the edge
        a_left, b_left = zero, np.minimum(vm[..., :1], 0.0)
        a_right, b_right = np.maximum(vm[..., -1:], 0.0), zero
    a = np.concatenate([a_left, a, a_right], axis=-1)
    b = np.concatenate([b_left, b, b_right], axis=-1)
    return np.moveaxis(a, -1, axis), np.moveaxis(b, -1, axis)


def _divergence(q: np.ndarray, cx: tuple[np.ndarray, np.ndarray],
                cy: tuple[np.ndarray, np.ndarray], dx_m: float) -> np.ndarray:
    """Flux divergence (amount/(m²·s)) from the face coefficients, ``(B, n, n)``."""
    ax, bx = cx
    ay, by = cy
    fx = np.empty(ax.shape, dtype=q.dtype)
    fx[..., 1:-1] = ax[..., 1:-1] * q[..., :-1] + bx[..., 1:-1] * q[..., 1:]
    fx[..., 0] = bx[..., 0] * q[..., 0]
    fx[..., -1] = ax[..., -1] * q[..., -1]
    fy = np.empty(ay.shape, dtype=q.dtype)
    fy[..., 1:-1, :] = ay[..., 1:-1, :] * q[..., :-1, :] + by[..., 1:-1, :] * q[..., 1:, :]
    fy[..., 0, :] = by[..., 0, :] * q[..., 0, :]
    fy[..., -1, :] = ay[..., -1, :] * q[..., -1, :]
    div = fx[..., 1:] - fx[..., :-1]
    div += fy[..., 1:, :] - fy[..., :-1, :]
    div /= dx_m
    return div


def _check_dt(dt: np.ndarray, wind_ms: np.ndarray, dx_m: float, k: float) -> None:
    limit = max_stable_dt(wind_ms, dx_m, k)
    bad = np.flatnonzero(dt > limit * (1 + 1e-12))
    if bad.size:
        b = int(bad[0])
        raise CFLError(
            f"transport.step: dt_s={dt[b]:.6g} s exceeds the stable limit {limit[b]:.6g} s for "
            f"sample {b} (CFL: dt·(max|u|+max|v|)/dx + 4·K·dt/dx² <= 1); {bad.size} samples bad"
        )


def step(q: np.ndarray, wind_ms: np.ndarray, dt_s: np.ndarray | float, dx_m: float,
         diffusivity_m2s: float, boundary: str = "closed") -> np.ndarray:
    """One forward-Euler upwind step. q ``(B, n, n)``, wind ``(B, 2, n, n)``, dt scalar or ``(B,)``.

    Raises :class:`CFLError` (naming the sample, dt and the limit) if any sample's dt exceeds
    :func:`max_stable_dt`.
    """
    _check(dx_m, diffusivity_m2s, boundary)
    dt = np.broadcast_to(np.asarray(dt_s, dtype=float), (q.shape[0],))
    _check_dt(dt, wind_ms, dx_m, diffusivity_m2s)
    cx = _face_coefficients(wind_ms[:, 0], -1, dx_m, diffusivity_m2s, boundary)
    cy = _face_coefficients(wind_ms[:, 1], -2, dx_m, diffusivity_m2s, boundary)
    return q - dt[:, None, None] * _divergence(q, cx, cy, dx_m)


def simulate(q0: np.ndarray, wind_ms: np.ndarray, t_end_s: np.ndarray | float, dx_m: float,
             diffusivity_m2s: float, boundary: str = "closed", cfl: float = 0.9,
             n_frames: int = 1) -> np.ndarray:
    """Advance q0 to ``t_end_s`` (scalar or one per sample) with equal steps per sample.

    Every sample takes the same number of steps, ``ceil(max_b t_end_b / (cfl · dt_max_b))``
    rounded up to a multiple of ``n_frames``, of length ``t_end_b / n_steps`` (so each meets
    the CFL limit with margin ``cfl``, and the frames are evenly spaced in time).

    Parameters
    ----------
    q0 : ``(B, n, n)`` or ``(n, n)`` tracer density.  wind_ms : ``(B, 2, n, n)`` or ``(2, n, n)``.
    t_end_s : horizon, seconds, scalar or ``(B,)``.  cfl : safety factor in (0, 1].
    n_frames : number of snapshots returned (>= 1), at t_end · k / n_frames, k = 1 .. n_frames.

    Computes in float32 when ``q0`` is float32 (data sets), otherwise float64.

    Returns ``(B, n, n)`` at t_end, or ``(n_frames, B, n, n)`` if ``n_frames > 1``
    (batch axis dropped for unbatched input).
    """
    _check(dx_m, diffusivity_m2s, boundary)
    if not 0 < cfl <= 1:
        raise ValueError(f"simulate: cfl must be in (0, 1], got {cfl}")
    if isinstance(n_frames, bool) or not isinstance(n_frames, int | np.integer) or n_frames < 1:
        raise ValueError(f"simulate: n_frames must be an integer >= 1, got {n_frames!r}")
    single = np.ndim(q0) == 2
    dtype = np.float32 if np.asarray(q0).dtype == np.float32 else np.float64
    q = np.asarray(q0, dtype=dtype)[None] if single else np.array(q0, dtype=dtype)
    w = np.asarray(wind_ms, dtype=dtype)
    w = w[None] if single else w
    if w.shape != (q.shape[0], 2) + q.shape[1:]:
        raise ValueError(f"simulate: wind shape {w.shape} does not match tracer {q.shape}")
    t_end = np.broadcast_to(np.asarray(t_end_s, dtype=float), (q.shape[0],))
    if np.any(t_end < 0) or not np.all(np.isfinite(t_end)):
        raise ValueError("simulate: t_end_s must be finite and >= 0")
    limit = max_stable_dt(w, dx_m, diffusivity_m2s)
    n_steps = max(1, int(np.ceil(np.max(t_end / (cfl * limit)))))
    n_steps = -(-n_steps // n_frames) * n_frames  # a whole number of steps per frame
    dt = t_end / n_steps
    _check_dt(dt, w, dx_m, diffusivity_m2s)
    cx = _face_coefficients(w[:, 0], -1, dx_m, diffusivity_m2s, boundary)
    cy = _face_coefficients(w[:, 1], -2, dx_m, diffusivity_m2s, boundary)
    dt_b = dt.astype(q.dtype)[:, None, None]
    keep = {k * n_steps // n_frames for k in range(1, n_frames + 1)}
    frames = []
    for s in range(1, n_steps + 1):
        q = q - dt_b * _divergence(q, cx, cy, dx_m)
        if s in keep:
            frames.append(q)  # each step makes a new array: no copy needed
    out = np.stack(frames) if n_frames > 1 else frames[-1]
    return out[..., 0, :, :] if single else out


def gaussian_puff(n_cells: int, dx_m: float, centre_m: tuple[float, float], sigma_m: float,
                  mass: float = 1.0) -> np.ndarray:
    """Cell-centre samples of M/(2πσ²) exp(-|r - c|²/(2σ²)), ``(n, n)``; cell i centred at (i+½)dx.

    The analytic solution of advection–diffusion with uniform wind U and diffusivity K is the
    same puff centred at c + U t with σ² → σ² + 2 K t (:func:`puff_solution`).
    """
    y, x = (np.mgrid[0:n_cells, 0:n_cells] + 0.5) * dx_m
    r2 = (x - centre_m[0]) ** 2 + (y - centre_m[1]) ** 2
    return mass / (2 * np.pi * sigma_m**2) * np.exp(-r2 / (2 * sigma_m**2))


def puff_solution(n_cells: int, dx_m: float, centre_m: tuple[float, float], sigma_m: float,
                  wind_ms: tuple[float, float], diffusivity_m2s: float, t_s: float,
                  mass: float = 1.0) -> np.ndarray:
    """Analytic advection–diffusion of :func:`gaussian_puff` in an unbounded plane at time t."""
    c = (centre_m[0] + wind_ms[0] * t_s, centre_m[1] + wind_ms[1] * t_s)
    return gaussian_puff(n_cells, dx_m, c, math.sqrt(sigma_m**2 + 2 * diffusivity_m2s * t_s),
                         mass)
