"""Fixed-step RK4 through a field map, compiled with numba and parallel over tracks.

The throughput path of :func:`physml.tracks.propagate.propagate` and
:func:`~physml.tracks.propagate.propagate_to` on a :class:`~physml.tracks.grid.GridField`
(ground-truth generation, the RK4 anchor of the benchmark). Each track is integrated on its own
(track-major), so its field look-ups stay in the few map cells it crosses and the cores run
independent tracks. The trilinear interpolation is the map's (zero field outside the grid), so
the result equals the JAX RK4 (:func:`physml.tracks.propagate.rk4_jax`, which stays the
differentiable version) to rounding. The equations of motion are
:func:`physml.tracks.eom.derivatives` compiled (one source).

The same RK4, and an adaptive Dormand-Prince 5(4), also run on the C¹ tricubic map
(:class:`~physml.tracks.tricubic.TricubicField`): :func:`rk4_compiled`, :func:`rk4_compiled_to`
and :func:`dopri5` dispatch on the field type.
"""

from __future__ import annotations

import numba
import numpy as np

from physml.tracks.eom import derivatives_compiled
from physml.tracks.tricubic import point as _tc_point


@numba.njit(inline="always", fastmath=True, cache=True)
def _trilinear(b, o, inv_s, x, y, z):
    """(Bx, By, Bz) in T at one point (mm): trilinear in map ``b`` (nx, ny, nz, 3), 0 outside."""
    nx, ny, nz = b.shape[0], b.shape[1], b.shape[2]
    fx, fy, fz = (x - o[0]) * inv_s[0], (y - o[1]) * inv_s[1], (z - o[2]) * inv_s[2]
    bx = by = bz = 0.0
    if 0.0 <= fx <= nx - 1 and 0.0 <= fy <= ny - 1 and 0.0 <= fz <= nz - 1:
        ix, iy, iz = min(int(fx), nx - 2), min(int(fy), ny - 2), min(int(fz), nz - 2)
        u, v, w = fx - ix, fy - iy, fz - iz
        for dx in range(2):
            wx = u if dx else 1.0 - u
            for dy in range(2):
                wxy = wx * (v if dy else 1.0 - v)
                w0, w1 = wxy * (1.0 - w), wxy * w
                bx += w0 * b[ix + dx, iy + dy, iz, 0] + w1 * b[ix + dx, iy + dy, iz + 1, 0]
                by += w0 * b[ix + dx, iy + dy, iz, 1] + w1 * b[ix + dx, iy + dy, iz + 1, 1]
                bz += w0 * b[ix + dx, iy + dy, iz, 2] + w1 * b[ix + dx, iy + dy, iz + 1, 2]
    return bx, by, bz


@numba.njit(inline="always", fastmath=True, cache=True)
def _slopes(b, o, inv_s, x, y, tx, ty, qop, z):
    bx, by, bz = _trilinear(b, o, inv_s, x, y, z)
    return derivatives_compiled(tx, ty, qop, bx, by, bz)


@numba.njit(inline="always", fastmath=True, cache=True)
def _step(b, o, inv_s, x, y, tx, ty, qop, z0, h):
    """One classic RK4 step of length h (mm) from z0: new (x, y, tx, ty)."""
    hh = 0.5 * h
    a1, b1 = _slopes(b, o, inv_s, x, y, tx, ty, qop, z0)
    tx2, ty2 = tx + hh * a1, ty + hh * b1
    a2, b2 = _slopes(b, o, inv_s, x + hh * tx, y + hh * ty, tx2, ty2, qop, z0 + hh)
    tx3, ty3 = tx + hh * a2, ty + hh * b2
    a3, b3 = _slopes(b, o, inv_s, x + hh * tx2, y + hh * ty2, tx3, ty3, qop, z0 + hh)
    tx4, ty4 = tx + h * a3, ty + h * b3
    a4, b4 = _slopes(b, o, inv_s, x + h * tx3, y + h * ty3, tx4, ty4, qop, z0 + h)
    return (x + h / 6.0 * (tx + 2.0 * tx2 + 2.0 * tx3 + tx4),
            y + h / 6.0 * (ty + 2.0 * ty2 + 2.0 * ty3 + ty4),
            tx + h / 6.0 * (a1 + 2.0 * a2 + 2.0 * a3 + a4),
            ty + h / 6.0 * (b1 + 2.0 * b2 + 2.0 * b3 + b4))


@numba.njit(parallel=True, fastmath=True, cache=True)
def _rk4_tracks(states, nodes, b, o, inv_s):
    out = np.empty_like(states)
    for i in numba.prange(states.shape[0]):
        x, y, tx, ty, qop = states[i, 0], states[i, 1], states[i, 2], states[i, 3], states[i, 4]
        for k in range(nodes.shape[0] - 1):
            x, y, tx, ty = _step(b, o, inv_s, x, y, tx, ty, qop, nodes[k], nodes[k + 1] - nodes[k])
        out[i, 0], out[i, 1], out[i, 2], out[i, 3], out[i, 4] = x, y, tx, ty, qop
    return out


@numba.njit(parallel=True, fastmath=True, cache=True)
def _rk4_tracks_to(states, nodes, z_end, b, o, inv_s):
    """Forward nodes (ascending); track i stops at z_end[i] (>= nodes[0]) with a partial step."""
    out = np.empty_like(states)
    for i in numba.prange(states.shape[0]):
        x, y, tx, ty, qop = states[i, 0], states[i, 1], states[i, 2], states[i, 3], states[i, 4]
        ze = z_end[i]
        z = nodes[0]
        for k in range(nodes.shape[0] - 1):
            if nodes[k + 1] > ze + 1e-9:
                break
            x, y, tx, ty = _step(b, o, inv_s, x, y, tx, ty, qop, nodes[k], nodes[k + 1] - nodes[k])
            z = nodes[k + 1]
        if ze - z > 1e-9:
            x, y, tx, ty = _step(b, o, inv_s, x, y, tx, ty, qop, z, ze - z)
        out[i, 0], out[i, 1], out[i, 2], out[i, 3], out[i, 4] = x, y, tx, ty, qop
    return out


def _grid_arrays(field):
    return (np.ascontiguousarray(field.b_tesla, dtype=np.float64),
            np.asarray(field.origin_mm, dtype=np.float64),
            1.0 / np.asarray(field.spacing_mm, dtype=np.float64))


def rk4_grid(states: np.ndarray, nodes: np.ndarray, field) -> np.ndarray:
    """RK4 along the z nodes ``nodes`` (m + 1,) mm through map ``field``: (n, 5) -> (n, 5).

    ``field`` is a :class:`~physml.tracks.grid.GridField` (B in T on a regular grid in mm).
    """
    return _rk4_tracks(np.ascontiguousarray(states, dtype=np.float64),
                       np.asarray(nodes, dtype=np.float64), *_grid_arrays(field))


def rk4_grid_to(states: np.ndarray, nodes: np.ndarray, z_end: np.ndarray, field) -> np.ndarray:
    """RK4 from nodes[0] to a per-track plane z_end (n,) mm: (n, 5) -> (n, 5).

    ``nodes`` (m + 1,) ascending, nodes[-1] >= max(z_end); each track takes the nodes up to its
    z_end and one RK4 step of the remainder (the rule of
    :func:`physml.tracks.propagate.propagate_to`).
    """
    return _rk4_tracks_to(np.ascontiguousarray(states, dtype=np.float64),
                          np.asarray(nodes, dtype=np.float64),
                          np.ascontiguousarray(z_end, dtype=np.float64), *_grid_arrays(field))


# --------------------------------------------------------------------------------------------
# Kernels on the C¹ tricubic map (physml.tracks.tricubic): RK4 and adaptive Dormand-Prince 5(4)
# --------------------------------------------------------------------------------------------
# Dormand-Prince 5(4) tableau (J. R. Dormand, P. J. Prince, J. Comp. Appl. Math. 6 (1980) 19)
_DP_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0)
_DP_A = ((1 / 5,),
         (3 / 40, 9 / 40),
         (44 / 45, -56 / 15, 32 / 9),
         (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
         (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656))
_DP_B5 = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)
_DP_E = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)
"""b5 - b4 (7 entries; the 7th stage is the FSAL derivative at the new point)."""


_C, _B5, _E = np.array(_DP_C), np.array(_DP_B5), np.array(_DP_E)
_A = np.zeros((5, 5))
for _r, _row in enumerate(_DP_A):
    _A[_r, :len(_row)] = _row


@numba.njit(inline="always", fastmath=True, cache=True)
def _tc_slopes(d, o, inv_s, x, y, tx, ty, qop, z):
    bx, by, bz = _tc_point(d, o, inv_s, x, y, z)
    return derivatives_compiled(tx, ty, qop, bx, by, bz)

@numba.njit(inline="always", fastmath=True, cache=True)
def _tc_step(d, o, inv_s, x, y, tx, ty, qop, z0, h):
    hh = 0.5 * h
    a1, b1 = _tc_slopes(d, o, inv_s, x, y, tx, ty, qop, z0)
    tx2, ty2 = tx + hh * a1, ty + hh * b1
    a2, b2 = _tc_slopes(d, o, inv_s, x + hh * tx, y + hh * ty, tx2, ty2, qop, z0 + hh)
    tx3, ty3 = tx + hh * a2, ty + hh * b2
    a3, b3 = _tc_slopes(d, o, inv_s, x + hh * tx2, y + hh * ty2, tx3, ty3, qop, z0 + hh)
    tx4, ty4 = tx + h * a3, ty + h * b3
    a4, b4 = _tc_slopes(d, o, inv_s, x + h * tx3, y + h * ty3, tx4, ty4, qop, z0 + h)
    return (x + h / 6.0 * (tx + 2.0 * tx2 + 2.0 * tx3 + tx4),
            y + h / 6.0 * (ty + 2.0 * ty2 + 2.0 * ty3 + ty4),
            tx + h / 6.0 * (a1 + 2.0 * a2 + 2.0 * a3 + a4),
            ty + h / 6.0 * (b1 + 2.0 * b2 + 2.0 * b3 + b4))

@numba.njit(parallel=True, fastmath=True, cache=True)
def _tc_rk4(states, nodes, d, o, inv_s):
    out = np.empty_like(states)
    for i in numba.prange(states.shape[0]):
        x, y, tx, ty, qop = states[i, 0], states[i, 1], states[i, 2], states[i, 3], states[i, 4]
        for k in range(nodes.shape[0] - 1):
            x, y, tx, ty = _tc_step(d, o, inv_s, x, y, tx, ty, qop, nodes[k],
                                nodes[k + 1] - nodes[k])
        out[i, 0], out[i, 1], out[i, 2], out[i, 3], out[i, 4] = x, y, tx, ty, qop
    return out

@numba.njit(parallel=True, fastmath=True, cache=True)
def _tc_rk4_to(states, nodes, z_end, d, o, inv_s):
    out = np.empty_like(states)
    for i in numba.prange(states.shape[0]):
        x, y, tx, ty, qop = states[i, 0], states[i, 1], states[i, 2], states[i, 3], states[i, 4]
        ze = z_end[i]
        z = nodes[0]
        for k in range(nodes.shape[0] - 1):
            if nodes[k + 1] > ze + 1e-9:
                break
            x, y, tx, ty = _tc_step(d, o, inv_s, x, y, tx, ty, qop, nodes[k],
                                nodes[k + 1] - nodes[k])
            z = nodes[k + 1]
        if ze - z > 1e-9:
            x, y, tx, ty = _tc_step(d, o, inv_s, x, y, tx, ty, qop, z, ze - z)
        out[i, 0], out[i, 1], out[i, 2], out[i, 3], out[i, 4] = x, y, tx, ty, qop
    return out


@numba.njit(parallel=True, fastmath=True, cache=True)
def _tc_dopri(states, z0, z1, tol, h0, h_min, h_max, d, o, inv_s):
    n = states.shape[0]
    out = np.empty_like(states)
    steps = np.zeros(n, np.int64)
    rejected = np.zeros(n, np.int64)
    for i in numba.prange(n):
        x, y, tx, ty, qop = states[i, 0], states[i, 1], states[i, 2], states[i, 3], states[i, 4]
        z = z0
        h = h0
        ka = np.empty(7)  # dtx/dz per stage
        kb = np.empty(7)  # dty/dz per stage
        kx = np.empty(7)  # dx/dz = tx per stage
        ky = np.empty(7)
        ka[0], kb[0] = _tc_slopes(d, o, inv_s, x, y, tx, ty, qop, z)
        kx[0], ky[0] = tx, ty
        while z1 - z > 1e-9:
            if h > z1 - z:
                h = z1 - z
            for s in range(1, 6):
                xs, ys, txs, tys = x, y, tx, ty
                for j in range(s):
                    w = h * _A[s - 1, j]
                    xs += w * kx[j]
                    ys += w * ky[j]
                    txs += w * ka[j]
                    tys += w * kb[j]
                kx[s], ky[s] = txs, tys
                ka[s], kb[s] = _tc_slopes(d, o, inv_s, xs, ys, txs, tys, qop, z + _C[s] * h)
            xn, yn, txn, tyn = x, y, tx, ty
            for j in range(6):
                w = h * _B5[j]
                xn += w * kx[j]
                yn += w * ky[j]
                txn += w * ka[j]
                tyn += w * kb[j]
            kx[6], ky[6] = txn, tyn
            ka[6], kb[6] = _tc_slopes(d, o, inv_s, xn, yn, txn, tyn, qop, z + h)
            ex = ey = 0.0
            for j in range(7):
                ex += h * _E[j] * kx[j]
                ey += h * _E[j] * ky[j]
            err = max(abs(ex), abs(ey))
            if err <= tol or h <= h_min:
                x, y, tx, ty = xn, yn, txn, tyn
                z += h
                kx[0], ky[0], ka[0], kb[0] = kx[6], ky[6], ka[6], kb[6]
                steps[i] += 1
            else:
                rejected[i] += 1
            fac = 0.9 * (tol / max(err, 1e-300)) ** 0.2
            h = min(max(h * min(max(fac, 0.2), 5.0), h_min), h_max)
        out[i, 0], out[i, 1], out[i, 2], out[i, 3], out[i, 4] = x, y, tx, ty, qop
    return out, steps, rejected



def rk4_compiled(states: np.ndarray, nodes: np.ndarray, field) -> np.ndarray:
    """RK4 along ``nodes`` (m + 1,) mm through a GridField or TricubicField: (n, 5) -> (n, 5)."""
    from physml.tracks.grid import GridField
    from physml.tracks.tricubic import TricubicField

    if type(field) is GridField:
        return rk4_grid(states, nodes, field)
    if not isinstance(field, TricubicField):
        raise TypeError(f"rk4_compiled: field must be a GridField or TricubicField, got "
                        f"{type(field).__name__}")
    return _tc_rk4(np.ascontiguousarray(states, dtype=np.float64),
                   np.asarray(nodes, dtype=np.float64), *field.kernel_arrays())


def rk4_compiled_to(states: np.ndarray, nodes: np.ndarray, z_end: np.ndarray, field) -> np.ndarray:
    """:func:`rk4_grid_to` for a GridField or TricubicField: (n, 5) -> (n, 5)."""
    from physml.tracks.grid import GridField
    from physml.tracks.tricubic import TricubicField

    if type(field) is GridField:
        return rk4_grid_to(states, nodes, z_end, field)
    if not isinstance(field, TricubicField):
        raise TypeError(f"rk4_compiled_to: field must be a GridField or TricubicField, got "
                        f"{type(field).__name__}")
    return _tc_rk4_to(np.ascontiguousarray(states, dtype=np.float64),
                      np.asarray(nodes, dtype=np.float64),
                      np.ascontiguousarray(z_end, dtype=np.float64), *field.kernel_arrays())


def dopri5(states: np.ndarray, z_start: float, z_end: float, field, tol_mm: float = 1e-3,
           initial_step_mm: float = 100.0, min_step_mm: float = 1e-2,
           max_step_mm: float = 2000.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adaptive Dormand-Prince 5(4) per track (local extrapolation, FSAL), compiled, parallel
    over tracks, forward only (z_end > z_start, mm), on a C¹ :class:`TricubicField` (an
    embedded error estimate is meaningful only on a smooth field: on the C⁰ trilinear map it
    steps over kinks unseen).

    The step is accepted when the embedded estimate of the local position error (max of |dx|,
    |dy|, mm) is <= ``tol_mm`` (or the step is at ``min_step_mm``); the next step is
    h * clip(0.9 (tol / err)^(1/5), 0.2, 5) within [min_step_mm, max_step_mm].
    Returns (end states (n, 5), accepted steps (n,), rejected steps (n,)).
    """
    if not z_end > z_start:
        raise ValueError(f"dopri5: need z_end > z_start, got {z_start} -> {z_end}")
    if not (tol_mm > 0 and 0 < min_step_mm <= initial_step_mm and min_step_mm <= max_step_mm):
        raise ValueError(f"dopri5: need tol_mm > 0 and 0 < min_step_mm <= initial_step_mm, "
                         f"max_step_mm; got {tol_mm}, {min_step_mm}, {initial_step_mm}, "
                         f"{max_step_mm}")
    from physml.tracks.tricubic import TricubicField

    if not isinstance(field, TricubicField):
        raise TypeError(f"dopri5: field must be a TricubicField (C¹ map), got "
                        f"{type(field).__name__}")
    return _tc_dopri(np.ascontiguousarray(states, dtype=np.float64), float(z_start),
                     float(z_end), float(tol_mm), float(initial_step_mm), float(min_step_mm),
                     float(max_step_mm), *field.kernel_arrays())
