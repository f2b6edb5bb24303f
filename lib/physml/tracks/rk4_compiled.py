"""Fixed-step RK4 through a field map, compiled with numba and parallel over tracks.

The throughput path of :func:`physml.tracks.propagate` on a :class:`~physml.tracks.field.GridField`
(ground-truth generation, the RK4 anchor of the benchmark). Each track is integrated on its own
(track-major), so its field look-ups stay in the few map cells it crosses and the two cores run
independent tracks. The trilinear interpolation is the map's (zero field outside the grid), so
the result equals the JAX RK4 (:func:`physml.tracks.propagate.rk4_jax`, which stays the
differentiable version) to rounding; the equations and ``KAPPA`` come from
:mod:`physml.tracks.propagate`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from physml.tracks.propagate import KAPPA


@numba.njit(inline="always", fastmath=True, cache=True)
def _slopes(b, o, inv_s, x, y, tx, ty, qop, z):
    """(dtx/dz, dty/dz) at one point: trilinear B from map ``b`` (nx, ny, nz, 3), T."""
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
    c = KAPPA * qop * math.sqrt(1.0 + tx * tx + ty * ty)
    return (c * (ty * (tx * bx + bz) - (1.0 + tx * tx) * by),
            c * (-tx * (ty * by + bz) + (1.0 + ty * ty) * bx))


@numba.njit(parallel=True, fastmath=True, cache=True)
def _rk4_tracks(states, nodes, b, o, inv_s):
    out = np.empty_like(states)
    for i in numba.prange(states.shape[0]):
        x, y, tx, ty, qop = states[i, 0], states[i, 1], states[i, 2], states[i, 3], states[i, 4]
        for k in range(nodes.shape[0] - 1):
            z0 = nodes[k]
            h = nodes[k + 1] - z0
            hh = 0.5 * h
            a1, b1 = _slopes(b, o, inv_s, x, y, tx, ty, qop, z0)
            tx2, ty2 = tx + hh * a1, ty + hh * b1
            a2, b2 = _slopes(b, o, inv_s, x + hh * tx, y + hh * ty, tx2, ty2, qop, z0 + hh)
            tx3, ty3 = tx + hh * a2, ty + hh * b2
            a3, b3 = _slopes(b, o, inv_s, x + hh * tx2, y + hh * ty2, tx3, ty3, qop, z0 + hh)
            tx4, ty4 = tx + h * a3, ty + h * b3
            a4, b4 = _slopes(b, o, inv_s, x + h * tx3, y + h * ty3, tx4, ty4, qop, z0 + h)
            x += h / 6.0 * (tx + 2.0 * tx2 + 2.0 * tx3 + tx4)
            y += h / 6.0 * (ty + 2.0 * ty2 + 2.0 * ty3 + ty4)
            tx += h / 6.0 * (a1 + 2.0 * a2 + 2.0 * a3 + a4)
            ty += h / 6.0 * (b1 + 2.0 * b2 + 2.0 * b3 + b4)
        out[i, 0], out[i, 1], out[i, 2], out[i, 3], out[i, 4] = x, y, tx, ty, qop
    return out


def rk4_grid(states: np.ndarray, nodes: np.ndarray, field) -> np.ndarray:
    """RK4 along the z nodes ``nodes`` (m + 1,) mm through map ``field``: (n, 5) -> (n, 5).

    ``field`` is a :class:`~physml.tracks.field.GridField` (B in T on a regular grid in mm).
    """
    b = np.ascontiguousarray(field.b_tesla, dtype=np.float64)
    o = np.asarray(field.origin_mm, dtype=np.float64)
    inv_s = 1.0 / np.asarray(field.spacing_mm, dtype=np.float64)
    return _rk4_tracks(np.ascontiguousarray(states, dtype=np.float64),
                       np.asarray(nodes, dtype=np.float64), b, o, inv_s)
