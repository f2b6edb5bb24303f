"""Fixed-step RK4 and adaptive Dormand-Prince 5(4) through a field map, compiled with numba and
parallel over tracks.

The throughput path of :func:`physml.tracks.propagate.propagate` and
:func:`~physml.tracks.propagate.propagate_to` on a :class:`~physml.tracks.grid.GridField`
(ground-truth generation, the RK4 anchor of the benchmark) and on its smooth twins
(:class:`~physml.tracks.tricubic.TricubicField`, C¹; :class:`~physml.tracks.tricubic.BSplineField`,
C²). Each track is integrated on its own
(track-major), so its field look-ups stay in the few map cells it crosses and the cores run
independent tracks.

The integrators are written once, in :func:`make_kernels`: a factory that takes a compiled
field evaluation ``field_at(table, origin, inv_spacing, x, y, z, scratch) -> (Bx, By, Bz)`` and
returns the jitted steppers for that representation (:data:`TRILINEAR`: the map's trilinear
interpolation, zero outside the grid, so the result equals the JAX RK4
:func:`physml.tracks.propagate.rk4_jax` to rounding; :data:`TRICUBIC`:
:func:`physml.tracks.tricubic.point`; :data:`BSPLINE`:
:func:`physml.tracks.tricubic.bspline_point_cached`; :data:`BSPLINE_PLANES`: the same B-spline
on its z-node and half-node planes only, :func:`physml.tracks.tricubic.bspline_plane_point`,
which :func:`rk4_compiled` takes when every RK4 stage lies on one). The equations of motion are
:func:`physml.tracks.eom.derivatives` compiled (one source).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from physml.tracks.eom import derivatives_compiled
from physml.tracks.jitcache import stable
from physml.tracks.tricubic import SCRATCH as _SCRATCH
from physml.tracks.tricubic import bspline_plane_point as _bspline_plane_point
from physml.tracks.tricubic import bspline_point_cached as _bspline_point_cached
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


_C = np.array(_DP_C + (1.0,))
_E = np.array(_DP_E)
_A = np.zeros((6, 6))
for _r, _row in enumerate(_DP_A + (_DP_B5,)):
    _A[_r, :len(_row)] = _row
"""Row s - 1 builds the state of stage s = 1..6; row 5 is b5 (the pair is FSAL: the 7th stage is
the slope at the 5th-order solution, and the 1st stage of the next step)."""


BLOCK = 8
"""Tracks integrated together, step by step, by the ``rk4_nodes`` kernels (measured on the
B-spline's planes, 100 mm steps, 2 threads: 1 track at a time 0.55x, 4: 0.83x, 16 and 32:
0.9x the tracks/s of 8)."""


class Kernels(NamedTuple):
    """The compiled integrators of one field representation (see :func:`make_kernels`).

    ``step(tab, o, inv_s, x, y, tx, ty, qop, z0, h) -> (x, y, tx, ty)``: one RK4 step (mm);
    ``rk4_to(states (n, 5), nodes (m + 1,), z_end (n,), even (n,) int64, tab, o, inv_s) ->
    (n, 5)``: RK4 along monotone nodes, each track to its own plane (all at nodes[-1]: RK4 along
    all nodes), or, for a track with even[i] > 0, in even[i] equal steps from nodes[0] to
    z_end[i]. One compiled kernel serves every fixed-step RK4 (and each kernel inlines the step,
    with its four field evaluations, at one call site): with a B-spline map each inlined copy
    costs about 40 s of compilation on this machine's cores, at every fresh install;
    ``dopri(states, z0, z1, tol, h0, h_min, h_max, lever, tab, o, inv_s) -> (out, steps,
    rejected)``;
    ``rk4_scaled(states, z0, z1, h_ref, exponent, h_max, tab, o, inv_s) -> (out, steps)``: RK4
    with a step per track set by its momentum (:func:`rk4_momentum_scaled`); plain Python
    around ``rk4_to``;
    ``rk4_nodes(states, nodes, tab, o, inv_s) -> (n, 5)``: RK4 along the same nodes for every
    track, :data:`BLOCK` tracks at a time (compiled on first use; :func:`rk4_compiled` uses it
    on the B-spline's planes, :data:`BSPLINE_PLANES`).
    """

    step: object
    rk4_to: object
    dopri: object
    rk4_scaled: object
    rk4_nodes: object


def make_kernels(field_at, name: str) -> Kernels:
    """Compile RK4 and Dormand-Prince 5(4) for one field representation.

    ``field_at`` is a numba-compiled function ``(tab, o, inv_s, x, y, z, scratch) -> (Bx, By,
    Bz)``: B in T at one point in mm from the representation's arrays (``tab``: map data, ``o``
    (3,) origin in mm, ``inv_s`` (3,) inverse spacing in 1/mm); ``scratch``
    (shape :data:`~physml.tracks.tricubic.SCRATCH`) is a per-track array it may use to carry work
    from one evaluation to the next (scratch[0] = -1 at a track's start). The returned kernels
    take those three arrays as their last arguments. They are cached on disk by numba per
    ``field_at``, which must be made :func:`~physml.tracks.jitcache.stable` (as must the
    compiled functions it calls, if it is not importable by its name); ``name`` names the
    kernels in that cache.
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
    def slopes(tab, o, inv_s, x, y, tx, ty, qop, z, sc):
        bx, by, bz = field_at(tab, o, inv_s, x, y, z, sc)
        return derivatives_compiled(tx, ty, qop, bx, by, bz)

    @jit(inline="always")
    def step(tab, o, inv_s, x, y, tx, ty, qop, z0, h, sc):
        """One classic RK4 step of length h (mm) from z0: new (x, y, tx, ty)."""
        hh = 0.5 * h
        zm = z0 + hh
        a1, b1 = slopes(tab, o, inv_s, x, y, tx, ty, qop, z0, sc)
        tx2, ty2 = tx + hh * a1, ty + hh * b1
        a2, b2 = slopes(tab, o, inv_s, x + hh * tx, y + hh * ty, tx2, ty2, qop, zm, sc)
        tx3, ty3 = tx + hh * a2, ty + hh * b2
        a3, b3 = slopes(tab, o, inv_s, x + hh * tx2, y + hh * ty2, tx3, ty3, qop, zm, sc)
        tx4, ty4 = tx + h * a3, ty + h * b3
        a4, b4 = slopes(tab, o, inv_s, x + h * tx3, y + h * ty3, tx4, ty4, qop, z0 + h, sc)
        return (x + h / 6.0 * (tx + 2.0 * tx2 + 2.0 * tx3 + tx4),
                y + h / 6.0 * (ty + 2.0 * ty2 + 2.0 * ty3 + ty4),
                tx + h / 6.0 * (a1 + 2.0 * a2 + 2.0 * a3 + a4),
                ty + h / 6.0 * (b1 + 2.0 * b2 + 2.0 * b3 + b4))

    @jit(parallel=True)
    def rk4_to(states, nodes, z_end, even, tab, o, inv_s):
        """Nodes monotone (either direction); track i stops at z_end[i] (between nodes[0]
        and nodes[-1]) with a partial step (none when z_end[i] is a node: z_end = nodes[-1]
        is plain RK4 along the nodes); even[i] > 0: even[i] equal steps from nodes[0]."""
        out = np.empty_like(states)
        last = nodes.shape[0] - 1
        d = 1.0 if nodes[last] >= nodes[0] else -1.0
        for i in numba.prange(states.shape[0]):
            x, y, tx, ty, qop = states[i, 0], states[i, 1], states[i, 2], states[i, 3], states[i, 4]
            ze = z_end[i]
            m = even[i]
            dz = (ze - nodes[0]) / max(m, 1)
            sc = np.empty(_SCRATCH)
            sc[0] = -1.0
            k = 0
            z = nodes[0]
            while True:  # one call site of the inlined step (see Kernels)
                if m > 0:
                    if k >= m:
                        break
                    zs, h = nodes[0] + k * dz, dz
                else:  # node to node while the next node is not past z_end, then to z_end
                    if not d * (ze - z) > 1e-9:
                        break
                    z1 = nodes[k + 1] if k < last and d * (nodes[k + 1] - ze) <= 1e-9 else ze
                    zs, h = z, z1 - z
                    z = z1
                x, y, tx, ty = step(tab, o, inv_s, x, y, tx, ty, qop, zs, h, sc)
                k += 1
            out[i, 0], out[i, 1], out[i, 2], out[i, 3], out[i, 4] = x, y, tx, ty, qop
        return out

    @jit(parallel=True)
    def rk4_nodes(states, nodes, tab, o, inv_s):
        """RK4 along nodes for every track, BLOCK tracks at a time, step-major inside a block:
        the block's tracks take step k one after another, so the core overlaps their
        independent arithmetic (a single track is a chain of dependent operations)."""
        n = states.shape[0]
        m = nodes.shape[0] - 1
        out = np.empty_like(states)
        for blk in numba.prange((n + BLOCK - 1) // BLOCK):
            lo = blk * BLOCK
            w = min(n, lo + BLOCK) - lo
            x, y = states[lo:lo + w, 0].copy(), states[lo:lo + w, 1].copy()
            tx, ty = states[lo:lo + w, 2].copy(), states[lo:lo + w, 3].copy()
            qop = states[lo:lo + w, 4]
            sc = np.empty((w, _SCRATCH[0], _SCRATCH[1], _SCRATCH[2]))
            sc[:, 0] = -1.0
            for k in range(m):
                z0, h = nodes[k], nodes[k + 1] - nodes[k]
                for t in range(w):  # one call site of the inlined step (see Kernels)
                    x[t], y[t], tx[t], ty[t] = step(tab, o, inv_s, x[t], y[t], tx[t], ty[t],
                                                    qop[t], z0, h, sc[t])
            out[lo:lo + w, 0], out[lo:lo + w, 1] = x, y
            out[lo:lo + w, 2], out[lo:lo + w, 3], out[lo:lo + w, 4] = tx, ty, qop
        return out

    @jit(parallel=True)
    def dopri(states, z0, z1, tol, h0, h_min, h_max, lever, tab, o, inv_s):
        n = states.shape[0]
        out = np.empty_like(states)
        steps = np.zeros(n, np.int64)
        rejected = np.zeros(n, np.int64)
        for i in numba.prange(n):
            x, y, tx, ty, qop = states[i, 0], states[i, 1], states[i, 2], states[i, 3], states[i, 4]
            z = z0
            h = h0
            sc = np.empty(_SCRATCH)
            sc[0] = -1.0
            ka = np.empty(7)  # dtx/dz per stage
            kb = np.empty(7)  # dty/dz per stage
            kx = np.empty(7)  # dx/dz = tx per stage
            ky = np.empty(7)
            first = 1  # stage 0, the slope at the start, only before the first step (later
            # it is the FSAL stage 6 of the step accepted): one call site of the inlined slopes
            xs, ys, txs, tys = x, y, tx, ty
            while z1 - z > 1e-9:
                if h > z1 - z:
                    h = z1 - z
                for s in range(1 - first, 7):
                    xs, ys, txs, tys = x, y, tx, ty
                    for j in range(s):
                        w = h * _A[s - 1, j]
                        xs += w * kx[j]
                        ys += w * ky[j]
                        txs += w * ka[j]
                        tys += w * kb[j]
                    kx[s], ky[s] = txs, tys
                    ka[s], kb[s] = slopes(tab, o, inv_s, xs, ys, txs, tys, qop, z + _C[s] * h,
                                          sc)
                first = 0
                xn, yn, txn, tyn = xs, ys, txs, tys  # stage 6's state: the 5th-order solution
                ex = ey = etx = ety = 0.0
                for j in range(7):
                    ex += h * _E[j] * kx[j]
                    ey += h * _E[j] * ky[j]
                    etx += h * _E[j] * ka[j]
                    ety += h * _E[j] * kb[j]
                # position error now, and (lever) the one the slope error makes at z1
                arm = lever * (z1 - z - h)
                err = max(abs(ex), abs(ey), arm * abs(etx), arm * abs(ety))
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

    def rk4_scaled(states, z0, z1, h_ref, exponent, h_max, tab, o, inv_s):
        """Each track its own even steps from z0 to z1: h = min(h_max, h_ref |q/p|^-exponent)
        (q/p in 1/GeV), rounded down to split z1 - z0 evenly; returns (out, steps (n,))."""
        a = np.abs(states[:, 4])
        with np.errstate(divide="ignore"):
            h = np.where(a == 0.0, h_max, np.minimum(h_max, h_ref * a ** (-exponent)))
        m = np.maximum(1, np.ceil(abs(z1 - z0) / h - 1e-9)).astype(np.int64)
        out = rk4_to(states, np.array([z0, z1]), np.full(len(states), float(z1)), m, tab, o,
                     inv_s)
        return out, m

    return Kernels(step, rk4_to, dopri, rk4_scaled, rk4_nodes)


@numba.njit(inline="always", fastmath=True, cache=True)
def _trilinear_at(b, o, inv_s, x, y, z, scratch):
    """:func:`_trilinear` in the signature of :func:`make_kernels` (no scratch use)."""
    return _trilinear(b, o, inv_s, x, y, z)


@numba.njit(inline="always", fastmath=True, cache=True)
def _tricubic_at(d, o, inv_s, x, y, z, scratch):
    """:func:`physml.tracks.tricubic.point` in the signature of :func:`make_kernels`."""
    return _tricubic_point(d, o, inv_s, x, y, z)


stable(_trilinear_at, "rk4_compiled._trilinear_at")
stable(_tricubic_at, "rk4_compiled._tricubic_at")

TRILINEAR = make_kernels(_trilinear_at, "trilinear")
"""Kernels on the trilinear (C⁰) map of a GridField (arrays: b (nx, ny, nz, 3), origin,
1 / spacing)."""
TRICUBIC = make_kernels(_tricubic_at, "tricubic")
"""Kernels on the C¹ tricubic map (arrays: :meth:`TricubicField.kernel_arrays`)."""
BSPLINE = make_kernels(_bspline_point_cached, "bspline")
"""Kernels on the C² cubic B-spline of a map (arrays: :meth:`BSplineField.kernel_arrays`)."""
BSPLINE_PLANES = make_kernels(_bspline_plane_point, "bspline_planes")
"""The same B-spline, evaluated on its z-node and half-node planes only
(:func:`physml.tracks.tricubic.bspline_plane_point`; arrays: :meth:`BSplineField.plane_arrays`):
RK4 from z-node to z-node. :func:`rk4_compiled` uses it where :meth:`BSplineField.on_planes`
holds for the nodes."""


def _c(a) -> np.ndarray:
    """float64, C-contiguous and writable (a copy only if needed): numba compiles one kernel
    per array layout and per read-only flag, so every call passes the same kind of array (a
    read-only view, e.g. from np.broadcast_to, would compile the kernel a second time)."""
    return np.require(a, dtype=np.float64, requirements=["C", "W"])


def _grid_arrays(field):
    return (_c(field.b_tesla), _c(field.origin_mm), _c(1.0 / np.asarray(field.spacing_mm)))


def _kernels_and_arrays(field, caller: str) -> tuple[Kernels, tuple]:
    """The kernels and arrays of a GridField (trilinear), TricubicField or BSplineField;
    TypeError otherwise."""
    from physml.tracks.grid import GridField
    from physml.tracks.tricubic import BSplineField, TricubicField

    if type(field) is GridField:
        return TRILINEAR, _grid_arrays(field)
    if type(field) is TricubicField:
        return TRICUBIC, tuple(map(_c, field.kernel_arrays()))
    if type(field) is BSplineField:
        return BSPLINE, tuple(map(_c, field.kernel_arrays()))
    raise TypeError(f"{caller}: field must be a GridField, TricubicField or BSplineField, got "
                    f"{type(field).__name__}")


LOCALITY_MIN_TRACKS = 64
"""Batches of at least this many tracks are integrated in :func:`locality_order`."""


def locality_order(states: np.ndarray) -> np.ndarray:
    """A permutation (n,) of states (n, 5) that puts tracks crossing the same map cells next
    to each other: sorted by the straight-line x at z = 5 m in 200 mm bands, then by y there.

    Tracks are independent, so the order changes no result (bit for bit: same code per track);
    it only lets consecutive tracks find their field cells in cache (measured: RK4 on the
    B-spline map of the iron-yoke field, 100 mm steps, 1.2x tracks/s per core)."""
    xm = states[:, 0] + 5000.0 * states[:, 2]
    ym = states[:, 1] + 5000.0 * states[:, 3]
    return np.lexsort((ym, np.floor(xm / 200.0)))


def _in_locality_order(kernel, states: np.ndarray, *args):
    """kernel(states, *args) -> out (n, 5) or (out, per-track (n,)), run on the tracks in
    :func:`locality_order` and returned in the callers' order."""
    if len(states) < LOCALITY_MIN_TRACKS:
        return kernel(states, *args)
    order = locality_order(states)
    res = kernel(np.ascontiguousarray(states[order]), *args)
    outs = res if isinstance(res, tuple) else (res,)
    back = []
    for r in outs:
        b = np.empty_like(r)
        b[order] = r
        back.append(b)
    return tuple(back) if isinstance(res, tuple) else back[0]


def _rk4_in_order(states: np.ndarray, nodes: np.ndarray, field) -> np.ndarray:
    """RK4 of C-contiguous float64 ``states`` along ``nodes`` in the order given (no locality
    sort): on a B-spline's planes when every stage lies on one, else along the nodes."""
    k, arrays = _kernels_and_arrays(field, "rk4_compiled")
    if k is BSPLINE and field.on_planes(nodes):
        return BSPLINE_PLANES.rk4_nodes(states, nodes, *map(_c, field.plane_arrays()))
    return k.rk4_to(states, nodes, np.full(len(states), nodes[-1]),
                    np.zeros(len(states), np.int64), *arrays)


def rk4_compiled(states: np.ndarray, nodes: np.ndarray, field) -> np.ndarray:
    """RK4 along ``nodes`` (m + 1,) mm through a GridField, TricubicField or BSplineField:
    (n, 5) -> (n, 5) (tracks run in :func:`locality_order`).

    On a BSplineField whose z-node (or half-node) planes hold every stage of every step
    (:meth:`~physml.tracks.tricubic.BSplineField.on_planes`: e.g. steps from node to node) the
    field is evaluated as a bicubic on those planes (:data:`BSPLINE_PLANES`; the same B-spline
    values up to rounding, 16 multiply-adds per component instead of 64) and the tracks run
    :data:`BLOCK` at a time (``rk4_nodes``)."""
    _kernels_and_arrays(field, "rk4_compiled")  # a field it cannot take, before any work
    return _in_locality_order(_rk4_in_order, _c(states), _c(nodes), field)


def rk4_compiled_grouped(states: np.ndarray, schedules, groups: np.ndarray,
                         field) -> np.ndarray:
    """RK4 of each track i along ``schedules[groups[i]]`` (each a node array for
    :func:`rk4_compiled`): (n, 5) -> (n, 5) in input order, the same end states as
    :func:`rk4_compiled` on each group's tracks.

    One :func:`locality_order` of the whole batch, stably sorted by group, so that each group
    is one contiguous slice: one sort and one scatter per batch instead of one per group
    (measured on the B-spline planes, 12 momentum groups, 16,384 tracks, 2 threads: 1.04x the
    tracks/s of a separate :func:`rk4_compiled` call per group). ``groups`` (n,) int, each in
    [0, len(schedules)) (the caller checks)."""
    _kernels_and_arrays(field, "rk4_compiled_grouped")
    s, g = _c(states), np.asarray(groups)
    order = (locality_order(s) if len(s) >= LOCALITY_MIN_TRACKS
             else np.arange(len(s)))
    order = order[np.argsort(g[order], kind="stable")]
    s_sorted = s[order]
    bounds = np.searchsorted(g[order], np.arange(len(schedules) + 1))
    done = np.empty_like(s_sorted)
    for j, nodes in enumerate(schedules):
        lo, hi = bounds[j], bounds[j + 1]
        if hi > lo:
            done[lo:hi] = _rk4_in_order(s_sorted[lo:hi], _c(nodes), field)
    out = np.empty_like(done)
    out[order] = done
    return out


def rk4_compiled_to(states: np.ndarray, nodes: np.ndarray, z_end: np.ndarray, field) -> np.ndarray:
    """RK4 from nodes[0] to a per-track plane z_end (n,) mm: (n, 5) -> (n, 5), through a
    GridField or TricubicField.

    ``nodes`` (m + 1,) ascending, nodes[-1] >= max(z_end); each track takes the nodes up to its
    z_end and one RK4 step of the remainder (the rule of
    :func:`physml.tracks.propagate.propagate_to`).
    """
    k, arrays = _kernels_and_arrays(field, "rk4_compiled_to")
    return k.rk4_to(_c(states), _c(nodes), _c(z_end), np.zeros(len(states), np.int64), *arrays)


def dopri5(states: np.ndarray, z_start: float, z_end: float, field, tol_mm: float = 1e-3,
           initial_step_mm: float = 100.0, min_step_mm: float = 1e-2,
           max_step_mm: float = 2000.0,
           slope_lever: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adaptive Dormand-Prince 5(4) per track (local extrapolation, FSAL), compiled, parallel
    over tracks, forward only (z_end > z_start, mm), on a C¹ :class:`TricubicField` (an
    embedded error estimate is meaningful only on a smooth field: on the C⁰ trilinear map it
    steps over kinks unseen).

    The step is accepted when the embedded error estimate (mm) is <= ``tol_mm`` (or the step
    is at ``min_step_mm``): the max of the local position errors |dx|, |dy| and, with
    ``slope_lever``, of the position errors the local slope errors |dtx|, |dty| make at z_end,
    (z_end - z_after_step) * |dtx|. A slope error made early is carried over the rest of the
    track (at 1 m it is multiplied by 7.5 m at z_end = 8.5 m), and a position-only estimate
    missed it: measured on the iron-yoke B-spline map, 40 um max error at tol 1e-4 mm. The next
    step is
    h * clip(0.9 (tol / err)^(1/5), 0.2, 5) within [min_step_mm, max_step_mm].
    Returns (end states (n, 5), accepted steps (n,), rejected steps (n,)).
    """
    if not z_end > z_start:
        raise ValueError(f"dopri5: need z_end > z_start, got {z_start} -> {z_end}")
    if not (tol_mm > 0 and 0 < min_step_mm <= initial_step_mm and min_step_mm <= max_step_mm):
        raise ValueError(f"dopri5: need tol_mm > 0 and 0 < min_step_mm <= initial_step_mm, "
                         f"max_step_mm; got {tol_mm}, {min_step_mm}, {initial_step_mm}, "
                         f"{max_step_mm}")
    from physml.tracks.tricubic import SmoothMap

    if not isinstance(field, SmoothMap):
        raise TypeError(f"dopri5: field must be a TricubicField or BSplineField (smooth map), "
                        f"got {type(field).__name__}")
    k, arrays = _kernels_and_arrays(field, "dopri5")
    return k.dopri(_c(states), float(z_start), float(z_end), float(tol_mm),
                   float(initial_step_mm), float(min_step_mm), float(max_step_mm),
                   1.0 if slope_lever else 0.0, *arrays)


def rk4_momentum_scaled(states: np.ndarray, z_start: float, z_end: float, field,
                        step_mm_at_1gev: float, exponent: float,
                        max_step_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """RK4 from z_start to z_end (mm) with a fixed step of each track's own, set by its
    momentum: h = min(max_step_mm, step_mm_at_1gev * |q/p [1/GeV]|^-exponent), then shortened
    so that whole steps split z_end - z_start evenly (a stiff track bends less, and RK4's error
    per step grows with the curvature, so it can take longer steps at the same error).
    Compiled, parallel over tracks, on a GridField, TricubicField or BSplineField; either
    direction. exponent 0 is plain fixed-step RK4 (steps not aligned to the map's nodes).
    Tracks run in :func:`locality_order`. Returns (end states (n, 5), steps per track (n,)).
    """
    if not (step_mm_at_1gev > 0 and max_step_mm > 0 and exponent >= 0):
        raise ValueError(f"rk4_momentum_scaled: need step_mm_at_1gev > 0, max_step_mm > 0, "
                         f"exponent >= 0; got {step_mm_at_1gev}, {max_step_mm}, {exponent}")
    k, arrays = _kernels_and_arrays(field, "rk4_momentum_scaled")
    return _in_locality_order(k.rk4_scaled, _c(states), float(z_start), float(z_end),
                              float(step_mm_at_1gev), float(exponent), float(max_step_mm),
                              *arrays)
