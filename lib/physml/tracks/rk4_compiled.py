"""Fixed-step RK4 and adaptive Dormand-Prince 5(4) through a field map, compiled with numba and
parallel over tracks.

The throughput path of :func:`physml.tracks.propagate.propagate` and
:func:`~physml.tracks.propagate.propagate_to` on a :class:`~physml.tracks.grid.GridField`
(ground-truth generation, the RK4 anchor of the benchmark) and on its C¹ tricubic twin
(:class:`~physml.tracks.tricubic.TricubicField`). Each track is integrated on its own
(track-major), so its field look-ups stay in the few map cells it crosses and the cores run
independent tracks.

The integrators are written once, in :func:`make_kernels`: a factory that takes a compiled
field evaluation ``field_at(table, origin, inv_spacing, x, y, z) -> (Bx, By, Bz)`` and returns
the jitted steppers for that representation (:data:`TRILINEAR`: the map's trilinear
interpolation, zero outside the grid, so the result equals the JAX RK4
:func:`physml.tracks.propagate.rk4_jax` to rounding; :data:`TRICUBIC`:
:func:`physml.tracks.tricubic.point`). The equations of motion are
:func:`physml.tracks.eom.derivatives` compiled (one source).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from physml.tracks.eom import derivatives_compiled
from physml.tracks.jitcache import stable
from physml.tracks.tricubic import point as _tricubic_point


@numba.njit(inline="always", fastmath=True, cache=True)
def _trilinear(b, o, inv_s, x, y, z):
    """(Bx, By, Bz) in T at one point (mm): trilinear in map ``b`` (nx, ny, nz, 3), 0 outside.

    Straight-line code over the 8 corners (no inner loops: with loops, numba took ~2x longer
    to compile the RK4 kernels that inline it)."""
    nx, ny, nz = b.shape[0], b.shape[1], b.shape[2]
    fx, fy, fz = (x - o[0]) * inv_s[0], (y - o[1]) * inv_s[1], (z - o[2]) * inv_s[2]
    if not (0.0 <= fx <= nx - 1 and 0.0 <= fy <= ny - 1 and 0.0 <= fz <= nz - 1):
        return 0.0, 0.0, 0.0
    i, j, k = min(int(fx), nx - 2), min(int(fy), ny - 2), min(int(fz), nz - 2)
    u, v, w = fx - i, fy - j, fz - k
    u0, v0, w0 = 1.0 - u, 1.0 - v, 1.0 - w
    a, c, d, e = u0 * v0, u0 * v, u * v0, u * v  # (x, y) weights of corners 00, 01, 10, 11
    p000, p001, p010, p011 = a * w0, a * w, c * w0, c * w
    p100, p101, p110, p111 = d * w0, d * w, e * w0, e * w
    q000, q001, q010, q011 = b[i, j, k], b[i, j, k + 1], b[i, j + 1, k], b[i, j + 1, k + 1]
    q100, q101 = b[i + 1, j, k], b[i + 1, j, k + 1]
    q110, q111 = b[i + 1, j + 1, k], b[i + 1, j + 1, k + 1]
    bx = (p000 * q000[0] + p001 * q001[0] + p010 * q010[0] + p011 * q011[0]
          + p100 * q100[0] + p101 * q101[0] + p110 * q110[0] + p111 * q111[0])
    by = (p000 * q000[1] + p001 * q001[1] + p010 * q010[1] + p011 * q011[1]
          + p100 * q100[1] + p101 * q101[1] + p110 * q110[1] + p111 * q111[1])
    bz = (p000 * q000[2] + p001 * q001[2] + p010 * q010[2] + p011 * q011[2]
          + p100 * q100[2] + p101 * q101[2] + p110 * q110[2] + p111 * q111[2])
    return bx, by, bz


stable(_trilinear, "rk4_compiled._trilinear")


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


class Kernels(NamedTuple):
    """The compiled integrators of one field representation (see :func:`make_kernels`).

    ``step(tab, o, inv_s, x, y, tx, ty, qop, z0, h) -> (x, y, tx, ty)``: one RK4 step (mm);
    ``rk4_to(states (n, 5), nodes (m + 1,), z_end (n,), tab, o, inv_s) -> (n, 5)``: RK4 along
    monotone nodes, each track to its own plane (all at nodes[-1]: RK4 along all nodes; one kernel
    for both, so each representation compiles one RK4, not two);
    ``dopri(states, z0, z1, tol, h0, h_min, h_max, tab, o, inv_s) -> (out, steps, rejected)``.
    """

    step: object
    rk4_to: object
    dopri: object


def make_kernels(field_at, name: str) -> Kernels:
    """Compile RK4 and Dormand-Prince 5(4) for one field representation.

    ``field_at`` is a numba-compiled function ``(tab, o, inv_s, x, y, z) -> (Bx, By, Bz)``:
    B in T at one point in mm from the representation's arrays (``tab``: map data, ``o`` (3,)
    origin in mm, ``inv_s`` (3,) inverse spacing in 1/mm). The returned kernels take those three
    arrays as their last arguments. They are cached on disk by numba per ``field_at``, which
    must be made :func:`~physml.tracks.jitcache.stable` (as must the compiled functions it
    calls, if it is not importable by its name); ``name`` names the kernels in that cache.
    """

    def jit(**options):
        """numba.njit(fastmath, cache) under a qualified name of this representation's own.

        numba names the cache files and the compiled symbols after ``__qualname__``: with the
        closures' shared name, the kernels of both representations shared one cache index, and
        two processes compiling different ones at once could overwrite each other's entries (a
        kernel then loaded another's code: "NRT_adapt_ndarray_to_python: 'descr' is NULL")."""
        def wrap(fn):
            fn.__qualname__ = f"make_kernels.{name}.{fn.__name__}"
            return stable(numba.njit(fastmath=True, cache=True, **options)(fn),
                          f"rk4_compiled.{name}.{fn.__name__}")
        return wrap

    @jit(inline="always")
    def slopes(tab, o, inv_s, x, y, tx, ty, qop, z):
        bx, by, bz = field_at(tab, o, inv_s, x, y, z)
        return derivatives_compiled(tx, ty, qop, bx, by, bz)

    @jit(inline="always")
    def step(tab, o, inv_s, x, y, tx, ty, qop, z0, h):
        """One classic RK4 step of length h (mm) from z0: new (x, y, tx, ty)."""
        hh = 0.5 * h
        a1, b1 = slopes(tab, o, inv_s, x, y, tx, ty, qop, z0)
        tx2, ty2 = tx + hh * a1, ty + hh * b1
        a2, b2 = slopes(tab, o, inv_s, x + hh * tx, y + hh * ty, tx2, ty2, qop, z0 + hh)
        tx3, ty3 = tx + hh * a2, ty + hh * b2
        a3, b3 = slopes(tab, o, inv_s, x + hh * tx2, y + hh * ty2, tx3, ty3, qop, z0 + hh)
        tx4, ty4 = tx + h * a3, ty + h * b3
        a4, b4 = slopes(tab, o, inv_s, x + h * tx3, y + h * ty3, tx4, ty4, qop, z0 + h)
        return (x + h / 6.0 * (tx + 2.0 * tx2 + 2.0 * tx3 + tx4),
                y + h / 6.0 * (ty + 2.0 * ty2 + 2.0 * ty3 + ty4),
                tx + h / 6.0 * (a1 + 2.0 * a2 + 2.0 * a3 + a4),
                ty + h / 6.0 * (b1 + 2.0 * b2 + 2.0 * b3 + b4))

    @jit(parallel=True)
    def rk4_to(states, nodes, z_end, tab, o, inv_s):
        """Nodes monotone (either direction); track i stops at z_end[i] (between nodes[0]
        and nodes[-1]) with a partial step (none when z_end[i] is a node: z_end = nodes[-1]
        is plain RK4 along the nodes)."""
        out = np.empty_like(states)
        d = 1.0 if nodes[nodes.shape[0] - 1] >= nodes[0] else -1.0
        for i in numba.prange(states.shape[0]):
            x, y, tx, ty, qop = states[i, 0], states[i, 1], states[i, 2], states[i, 3], states[i, 4]
            ze = z_end[i]
            z = nodes[0]
            for k in range(nodes.shape[0] - 1):
                if d * (nodes[k + 1] - ze) > 1e-9:
                    break
                x, y, tx, ty = step(tab, o, inv_s, x, y, tx, ty, qop, nodes[k],
                                    nodes[k + 1] - nodes[k])
                z = nodes[k + 1]
            if d * (ze - z) > 1e-9:
                x, y, tx, ty = step(tab, o, inv_s, x, y, tx, ty, qop, z, ze - z)
            out[i, 0], out[i, 1], out[i, 2], out[i, 3], out[i, 4] = x, y, tx, ty, qop
        return out

    @jit(parallel=True)
    def dopri(states, z0, z1, tol, h0, h_min, h_max, tab, o, inv_s):
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
            ka[0], kb[0] = slopes(tab, o, inv_s, x, y, tx, ty, qop, z)
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
                    ka[s], kb[s] = slopes(tab, o, inv_s, xs, ys, txs, tys, qop, z + _C[s] * h)
                xn, yn, txn, tyn = x, y, tx, ty
                for j in range(6):
                    w = h * _B5[j]
                    xn += w * kx[j]
                    yn += w * ky[j]
                    txn += w * ka[j]
                    tyn += w * kb[j]
                kx[6], ky[6] = txn, tyn
                ka[6], kb[6] = slopes(tab, o, inv_s, xn, yn, txn, tyn, qop, z + h)
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

    return Kernels(step, rk4_to, dopri)


TRILINEAR = make_kernels(_trilinear, "trilinear")
"""Kernels on the trilinear (C⁰) map of a GridField (arrays: b (nx, ny, nz, 3), origin,
1 / spacing)."""
TRICUBIC = make_kernels(_tricubic_point, "tricubic")
"""Kernels on the C¹ tricubic map (arrays: :meth:`TricubicField.kernel_arrays`)."""


def _c(a) -> np.ndarray:
    """float64, C-contiguous and writable (a copy only if needed): numba compiles one kernel
    per array layout and per read-only flag, so every call passes the same kind of array (a
    read-only view, e.g. from np.broadcast_to, would compile the kernel a second time)."""
    return np.require(a, dtype=np.float64, requirements=["C", "W"])


def _grid_arrays(field):
    return (_c(field.b_tesla), _c(field.origin_mm), _c(1.0 / np.asarray(field.spacing_mm)))


def _kernels_and_arrays(field, caller: str) -> tuple[Kernels, tuple]:
    """The kernels and arrays of a GridField (trilinear) or TricubicField; TypeError otherwise."""
    from physml.tracks.grid import GridField
    from physml.tracks.tricubic import TricubicField

    if type(field) is GridField:
        return TRILINEAR, _grid_arrays(field)
    if isinstance(field, TricubicField):
        return TRICUBIC, tuple(map(_c, field.kernel_arrays()))
    raise TypeError(f"{caller}: field must be a GridField or TricubicField, got "
                    f"{type(field).__name__}")


def rk4_compiled(states: np.ndarray, nodes: np.ndarray, field) -> np.ndarray:
    """RK4 along ``nodes`` (m + 1,) mm through a GridField or TricubicField: (n, 5) -> (n, 5)."""
    nodes = _c(nodes)
    k, arrays = _kernels_and_arrays(field, "rk4_compiled")
    return k.rk4_to(_c(states), nodes, np.full(len(states), nodes[-1]), *arrays)


def rk4_compiled_to(states: np.ndarray, nodes: np.ndarray, z_end: np.ndarray, field) -> np.ndarray:
    """RK4 from nodes[0] to a per-track plane z_end (n,) mm: (n, 5) -> (n, 5), through a
    GridField or TricubicField.

    ``nodes`` (m + 1,) ascending, nodes[-1] >= max(z_end); each track takes the nodes up to its
    z_end and one RK4 step of the remainder (the rule of
    :func:`physml.tracks.propagate.propagate_to`).
    """
    k, arrays = _kernels_and_arrays(field, "rk4_compiled_to")
    return k.rk4_to(_c(states), _c(nodes), _c(z_end), *arrays)


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
    return TRICUBIC.dopri(_c(states), float(z_start), float(z_end), float(tol_mm),
                          float(initial_step_mm), float(min_step_mm), float(max_step_mm),
                          *map(_c, field.kernel_arrays()))
