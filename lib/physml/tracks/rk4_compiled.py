"""Fixed-step RK4 through a field map, compiled with numba and parallel over tracks.

The throughput path of :func:`physml.tracks.propagate.propagate` and
:func:`~physml.tracks.propagate.propagate_to` on a :class:`~physml.tracks.grid.GridField`
(ground-truth generation, the RK4 anchor of the benchmark). Each track is integrated on its own
(track-major), so its field look-ups stay in the few map cells it crosses and the cores run
independent tracks. The trilinear interpolation is the map's (zero field outside the grid), so
the result equals the JAX RK4 (:func:`physml.tracks.propagate.rk4_jax`, which stays the
differentiable version) to rounding. The equations of motion are
:func:`physml.tracks.eom.derivatives` compiled (one source).
"""

from __future__ import annotations

import numba
import numpy as np

from physml.tracks.eom import derivatives_compiled


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
