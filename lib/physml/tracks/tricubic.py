"""Smooth representations of any field map, compiled with numba: C¹ tricubic Hermite
(:class:`TricubicField`) and the C² interpolating cubic B-spline (:class:`BSplineField`).

The map's node values are kept and, at every node, the derivatives ∂B/∂x, ∂B/∂y, ∂B/∂z,
∂²B/∂x∂y, ∂²B/∂x∂z, ∂²B/∂y∂z and ∂³B/∂x∂y∂z are estimated with 5-point finite differences
along each axis (central inside, one-sided at the two nodes nearest an edge; each is exact for
polynomials of degree <= 4 along its axis). Inside a cell the field is the tricubic Hermite
interpolant of the 8 values at each of the 8 corners (the 64-coefficient tricubic of Lekien &
Marsden, Int. J. Numer. Meth. Eng. 63 (2005) 455, written in Hermite form instead of through its
64 x 64 matrix). Value and first derivatives are shared by neighbouring cells, so the field is
C¹ across cell faces (trilinear: C⁰), and a field that is a cubic polynomial along each axis is
reproduced exactly. Outside the grid the field is zero (the rule of the trilinear map).

The B-spline (:func:`bspline_coefficients`, :func:`bspline_point`) also takes the node values
exactly, and is C² everywhere inside the box: the tensor-product cubic B-spline whose
coefficients solve the interpolation conditions (the map extended beyond its faces by odd
reflection, so the edge cells keep the field's slope). It needs 3 coefficients per node (the
map's own size) where the Hermite table needs 24, and 64 multiply-adds per component.

Why: the RK4 error on a C⁰ map floors and falls only linearly with the step (every kink is a
local loss of order); on a smooth map RK4 keeps most of its order, so far fewer steps meet a
given accuracy (measured in notebook 05). On the C¹ tricubic the second derivative still jumps
at every cell face; on the C² B-spline only the third does, and with steps on the map's
z-nodes RK4's Simpson-like stages integrate each cubic piece along z almost exactly (on the
iron-yoke map of this study, 100 mm steps: 0.07 um max over 1,000 tracks vs DOP853 on the
B-spline; notebook 05 measures every representation against DOP853 on itself). Those stages
all lie on z-node or half-node planes, where the B-spline is a bicubic in (x, y) over
precomputed plane coefficients (:func:`bspline_planes`, :func:`bspline_plane_point`): a quarter
of the multiply-adds of a general evaluation.
"""

from __future__ import annotations

import numba
import numpy as np

from physml.tracks.fieldbase import as_points
from physml.tracks.grid import GridField
from physml.tracks.jitcache import stable

# one-sided 5-point first-derivative stencils in units of the node spacing, for the nodes at
# offset 0 and 1 from the low edge (the interior's central one is written out in
# axis_derivative). Exact for polynomials of degree <= 4.
_EDGE0 = np.array([-25.0, 48.0, -36.0, 16.0, -3.0]) / 12.0
_EDGE1 = np.array([-3.0, -10.0, 18.0, -6.0, 1.0]) / 12.0


def axis_derivative(values: np.ndarray, axis: int) -> np.ndarray:
    """d values / d(node index) along ``axis`` (same shape), 5-point stencils (>= 5 nodes).

    Interior nodes: central (f[i-2] - 8 f[i-1] + 8 f[i+1] - f[i+2]) / 12; the two nodes at each
    edge: one-sided 5-point formulas. Exact for a polynomial of degree <= 4 along ``axis``.
    """
    v = np.moveaxis(np.asarray(values, dtype=np.float64), axis, 0)
    n = v.shape[0]
    if n < 5:
        raise ValueError(f"axis_derivative: axis {axis} has {n} nodes, the stencils need >= 5")
    out = np.empty_like(v)
    out[2:-2] = (v[:-4] - 8 * v[1:-3] + 8 * v[3:-1] - v[4:]) / 12.0
    out[0] = np.tensordot(_EDGE0, v[:5], axes=1)
    out[1] = np.tensordot(_EDGE1, v[:5], axes=1)
    out[-1] = -np.tensordot(_EDGE0, v[::-1][:5], axes=1)
    out[-2] = -np.tensordot(_EDGE1, v[::-1][:5], axes=1)
    return np.moveaxis(out, 0, axis)


def hermite_table(b: np.ndarray) -> np.ndarray:
    """Node data of the tricubic Hermite interpolant: (nx, ny, nz, 8, 3) from b (nx, ny, nz, 3).

    Entry ``4 dx + 2 dy + dz`` holds ∂^(dx+dy+dz) B / ∂i^dx ∂j^dy ∂k^dz in units of the node
    index (i.e. already multiplied by the spacings): the derivative orders dx, dy, dz in {0, 1}.
    """
    out = np.empty((*b.shape[:3], 8, 3))
    dx_vals = [b, axis_derivative(b, 0)]
    for dx in (0, 1):
        dy_vals = [dx_vals[dx], axis_derivative(dx_vals[dx], 1)]
        for dy in (0, 1):
            out[:, :, :, 4 * dx + 2 * dy] = dy_vals[dy]
            out[:, :, :, 4 * dx + 2 * dy + 1] = axis_derivative(dy_vals[dy], 2)
    return out


@numba.njit(inline="always", fastmath=True, cache=True)
def _basis(t):
    """Cubic Hermite basis at t in [0, 1]: (h00, h10, h01, h11)."""
    t2 = t * t
    t3 = t2 * t
    return 2 * t3 - 3 * t2 + 1.0, t3 - 2 * t2 + t, -2 * t3 + 3 * t2, t3 - t2


stable(_basis, "tricubic._basis")  # reached by the pickle of the RK4 kernels' cache key


@numba.njit(inline="always", fastmath=True, cache=True)
def _column(d, i, j, k, z0, z1, z2, z3, w0, w1, w2, w3):
    """Contribution of the corner column (i, j, k..k+1) to (Bx, By, Bz): z-weights z0..z3
    (corner k: value, slope; corner k+1: value, slope) and weights w0..w3 of the (x, y)
    derivative orders (0,0), (0,1), (1,0), (1,1)."""
    lo = d[i, j, k]
    hi = d[i, j, k + 1]
    out0 = out1 = out2 = 0.0
    for c in range(3):
        acc = (w0 * (z0 * lo[c] + z1 * lo[3 + c] + z2 * hi[c] + z3 * hi[3 + c])
               + w1 * (z0 * lo[6 + c] + z1 * lo[9 + c] + z2 * hi[6 + c] + z3 * hi[9 + c])
               + w2 * (z0 * lo[12 + c] + z1 * lo[15 + c] + z2 * hi[12 + c] + z3 * hi[15 + c])
               + w3 * (z0 * lo[18 + c] + z1 * lo[21 + c] + z2 * hi[18 + c] + z3 * hi[21 + c]))
        if c == 0:
            out0 = acc
        elif c == 1:
            out1 = acc
        else:
            out2 = acc
    return out0, out1, out2


stable(_column, "tricubic._column")


@numba.njit(fastmath=True, cache=True)
def point(d, o, inv_s, x, y, z):
    """(Bx, By, Bz) in T at one point (mm) from a flat table ``d`` (nx, ny, nz, 24)
    (:meth:`TricubicField.kernel_arrays`: 8 derivative orders x 3 components); 0 outside."""
    nx, ny, nz = d.shape[0], d.shape[1], d.shape[2]
    fx, fy, fz = (x - o[0]) * inv_s[0], (y - o[1]) * inv_s[1], (z - o[2]) * inv_s[2]
    if not (0.0 <= fx <= nx - 1 and 0.0 <= fy <= ny - 1 and 0.0 <= fz <= nz - 1):
        return 0.0, 0.0, 0.0
    ix, iy, iz = min(int(fx), nx - 2), min(int(fy), ny - 2), min(int(fz), nz - 2)
    x0, x1, x2, x3 = _basis(fx - ix)  # corner 0 (value, slope), corner 1 (value, slope)
    y0, y1, y2, y3 = _basis(fy - iy)
    z0, z1, z2, z3 = _basis(fz - iz)
    a = _column(d, ix, iy, iz, z0, z1, z2, z3, x0 * y0, x0 * y1, x1 * y0, x1 * y1)
    b = _column(d, ix, iy + 1, iz, z0, z1, z2, z3, x0 * y2, x0 * y3, x1 * y2, x1 * y3)
    c = _column(d, ix + 1, iy, iz, z0, z1, z2, z3, x2 * y0, x2 * y1, x3 * y0, x3 * y1)
    e = _column(d, ix + 1, iy + 1, iz, z0, z1, z2, z3, x2 * y2, x2 * y3, x3 * y2, x3 * y3)
    return a[0] + b[0] + c[0] + e[0], a[1] + b[1] + c[1] + e[1], a[2] + b[2] + c[2] + e[2]


stable(point, "tricubic.point")  # captured by the kernels of physml.tracks.rk4_compiled


@numba.njit(parallel=True, fastmath=True, cache=True)
def _points(d, o, inv_s, p):
    out = np.empty_like(p)
    for i in numba.prange(p.shape[0]):
        out[i, 0], out[i, 1], out[i, 2] = point(d, o, inv_s, p[i, 0], p[i, 1], p[i, 2])
    return out


class SmoothMap:
    """Base of the smooth representations of a map (:class:`TricubicField`, C¹;
    :class:`BSplineField`, C²): attributes ``grid`` (the source
    :class:`~physml.tracks.grid.GridField`), ``table``, ``origin_mm``, ``spacing_mm``,
    ``inv_spacing``, ``meta``; integrated by the compiled kernels of
    :mod:`physml.tracks.rk4_compiled` (no JAX / torch twin)."""

    table: np.ndarray
    origin_mm: np.ndarray
    inv_spacing: np.ndarray

    def __init__(self, grid: GridField, table: np.ndarray, interpolation: str):
        self.grid = grid
        self.table = table
        self.origin_mm = grid.origin_mm
        self.spacing_mm = grid.spacing_mm
        self.inv_spacing = 1.0 / grid.spacing_mm
        self.meta = {**grid.meta, "interpolation": interpolation}

    def kernel_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(table, origin (3,) mm, 1 / spacing (3,) 1/mm): the arguments of the compiled
        point evaluation."""
        return self.table, self.origin_mm, self.inv_spacing

    def jax(self, points):
        raise NotImplementedError(f"{type(self).__name__} has no JAX twin; use the GridField "
                                  "(trilinear) for differentiable propagation")

    def torch(self, points):
        raise NotImplementedError(f"{type(self).__name__} has no torch twin; use the GridField "
                                  "(trilinear) for physics losses")


class TricubicField(SmoothMap):
    """C¹ tricubic Hermite interpolation of a :class:`~physml.tracks.grid.GridField`.

    Callable on points (n, 3) mm -> B (n, 3) T; ``at(x, y, z)`` for one point; zero outside
    the grid. ``grid`` is the source map; ``table`` the node data of :func:`hermite_table`
    flattened to (nx, ny, nz, 24); ``origin_mm``, ``spacing_mm`` (3,) those of the map. Each
    axis needs >= 5 nodes. Integrated by the compiled RK4 and Dormand-Prince kernels of
    :mod:`physml.tracks.rk4_compiled` (no JAX / torch twin).
    """

    def __init__(self, grid: GridField):
        if not isinstance(grid, GridField):
            raise TypeError(f"TricubicField: expected a GridField, got {type(grid).__name__}")
        super().__init__(grid, np.ascontiguousarray(
            hermite_table(grid.b_tesla).reshape(*grid.shape, 24)), "tricubic Hermite (C1)")

    def __call__(self, points) -> np.ndarray:
        """B (n, 3) in T at points (n, 3) in mm (tricubic; zero outside the grid)."""
        return _points(*self.kernel_arrays(), np.ascontiguousarray(as_points(points)))

    def at(self, x: float, y: float, z: float) -> tuple[float, float, float]:
        """B (T) at one point (mm) as three floats."""
        return point(self.table, self.origin_mm, self.inv_spacing, x, y, z)



# --------------------------------------------------------------------------------------------
# C² representation: the interpolating cubic B-spline of the map
# --------------------------------------------------------------------------------------------
def bspline_coefficients(b: np.ndarray) -> np.ndarray:
    """Coefficients (nx + 2, ny + 2, nz + 2, 3) of the cubic B-spline that interpolates the
    node values b (nx, ny, nz, 3) (T) of a map.

    The map is first extended by ``_PAD`` nodes on every side by point reflection through
    each edge node (b[-m] = 2 b[0] - b[m], ``np.pad(mode="reflect", reflect_type="odd")``),
    which continues the field with its value and slope at the edge; along each axis the
    coefficients then solve the interpolation conditions of the extended data
    (``scipy.ndimage.spline_filter1d(order=3, mode="mirror")``, the prefilter of
    ``scipy.ndimage.map_coordinates(order=3, mode="mirror")``), and the coefficients of the
    map's nodes plus one on each side are kept, so every cell, edge cells included, reads its
    4 x 4 x 4 neighbours without a branch: map node (i, j, k) is coefficient (i + 1, j + 1,
    k + 1). (Without the extension the mirror condition forces dB/dn = 0 at the edges: tracks
    start on the map's z = 0 face, and on the air-core map that bend took RK4 at 150 mm steps
    from 0.8 to 12.6 um max over 1,000 tracks, each vs DOP853 on its own spline.)
    """
    from scipy import ndimage

    c = np.asarray(b, dtype=np.float64)
    if c.ndim != 4 or c.shape[3] != 3 or min(c.shape[:3]) < 4:
        raise ValueError(f"bspline_coefficients: need b of shape (nx>=4, ny>=4, nz>=4, 3), got "
                         f"{c.shape}")
    pad = ((_PAD, _PAD),) * 3 + ((0, 0),)
    c = np.pad(c, pad, mode="reflect", reflect_type="odd")
    for axis in range(3):
        c = ndimage.spline_filter1d(c, 3, axis=axis, mode="mirror")
    keep = slice(_PAD - 1, -(_PAD - 1))
    return np.ascontiguousarray(c[keep, keep, keep])


_PAD = 12
"""Nodes of odd extension per side before the B-spline prefilter (the mirror condition at the
far end of the extension decays by 0.268 per node: 12 nodes leave < 2e-7 of it at the map's
faces)."""


@numba.njit(inline="always", fastmath=True, cache=True)
def _bweights(t):
    """Uniform cubic B-spline weights of the 4 coefficients around t in [0, 1]."""
    s = 1.0 - t
    t2 = t * t
    t3 = t2 * t
    return (s * s * s / 6.0, (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0,
            (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0, t3 / 6.0)


stable(_bweights, "tricubic._bweights")


@numba.njit(inline="always", fastmath=True, cache=True)
def _bcolumn(c, i, j, k, w, z0, z1, z2, z3):
    """w x (z-weighted sum of coefficients c[i, j, k..k+3]): three floats (Bx, By, Bz parts)."""
    a0, a1, a2, a3 = w * z0, w * z1, w * z2, w * z3
    return (a0 * c[i, j, k, 0] + a1 * c[i, j, k + 1, 0] + a2 * c[i, j, k + 2, 0]
            + a3 * c[i, j, k + 3, 0],
            a0 * c[i, j, k, 1] + a1 * c[i, j, k + 1, 1] + a2 * c[i, j, k + 2, 1]
            + a3 * c[i, j, k + 3, 1],
            a0 * c[i, j, k, 2] + a1 * c[i, j, k + 1, 2] + a2 * c[i, j, k + 2, 2]
            + a3 * c[i, j, k + 3, 2])


stable(_bcolumn, "tricubic._bcolumn")


@numba.njit(inline="always", fastmath=True, cache=True)
def _bicubic(v, tx, ty):
    """sum over a, b of w_x[a] w_y[b] v[a, b] for a (4, 4, 3) block ``v`` of z-contracted
    coefficients and the B-spline weights w at tx, ty in [0, 1]: (Bx, By, Bz), the x-y half
    of an evaluation shared by :func:`bspline_point_cached` and :func:`bspline_plane_point`."""
    x0, x1, x2, x3 = _bweights(tx)
    y0, y1, y2, y3 = _bweights(ty)
    bx = by = bz = 0.0
    for a in range(4):
        wa = x0 if a == 0 else (x1 if a == 1 else (x2 if a == 2 else x3))
        for b in range(4):
            w = wa * (y0 if b == 0 else (y1 if b == 1 else (y2 if b == 2 else y3)))
            bx += w * v[a, b, 0]
            by += w * v[a, b, 1]
            bz += w * v[a, b, 2]
    return bx, by, bz


stable(_bicubic, "tricubic._bicubic")


@numba.njit(inline="always", fastmath=True, cache=True)
def bspline_point(c, o, inv_s, x, y, z):
    """(Bx, By, Bz) in T at one point (mm) of the cubic B-spline with padded coefficients ``c``
    (nx + 2, ny + 2, nz + 2, 3) (:func:`bspline_coefficients`); 0 outside the map's box.

    64 coefficients per component (4 per axis), weights of the uniform cubic B-spline."""
    nx, ny, nz = c.shape[0] - 2, c.shape[1] - 2, c.shape[2] - 2
    fx, fy, fz = (x - o[0]) * inv_s[0], (y - o[1]) * inv_s[1], (z - o[2]) * inv_s[2]
    if not (0.0 <= fx <= nx - 1 and 0.0 <= fy <= ny - 1 and 0.0 <= fz <= nz - 1):
        return 0.0, 0.0, 0.0
    i, j, k = min(int(fx), nx - 2), min(int(fy), ny - 2), min(int(fz), nz - 2)
    x0, x1, x2, x3 = _bweights(fx - i)
    y0, y1, y2, y3 = _bweights(fy - j)
    z0, z1, z2, z3 = _bweights(fz - k)
    bx = by = bz = 0.0
    for a in range(4):
        wa = x0 if a == 0 else (x1 if a == 1 else (x2 if a == 2 else x3))
        for b in range(4):
            wb = y0 if b == 0 else (y1 if b == 1 else (y2 if b == 2 else y3))
            r = _bcolumn(c, i + a, j + b, k, wa * wb, z0, z1, z2, z3)
            bx += r[0]
            by += r[1]
            bz += r[2]
    return bx, by, bz


stable(bspline_point, "tricubic.bspline_point")  # captured by the kernels of rk4_compiled

SCRATCH = (5, 4, 3)
"""Shape of the per-track scratch array of :func:`bspline_point_cached`."""


@numba.njit(inline="always", fastmath=True, cache=True)
def bspline_point_cached(c, o, inv_s, x, y, z, scratch):
    """:func:`bspline_point` that keeps the z-contraction of its 4 x 4 coefficient columns in
    ``scratch`` (SCRATCH) (caller sets scratch[0] = -1 before a track's first call) and reuses
    it while the point stays in the same (x, y) cell at the same z.

    That is the common case inside an RK4 step: its 2nd and 3rd stages are at the same z, and
    the 1st stage of the next step at the z of the 4th; the z-contraction is 192 of the 240
    multiply-adds of an evaluation. Same value as :func:`bspline_point` up to rounding order.
    Layout: scratch[0, 0, :] = (i, j, k) and scratch[0, 1, 0] = z of the cached contraction,
    scratch[1 + a, b, m] = sum_c w_z[c] coef[i + a, j + b, k + c, m]."""
    nx, ny, nz = c.shape[0] - 2, c.shape[1] - 2, c.shape[2] - 2
    fx, fy, fz = (x - o[0]) * inv_s[0], (y - o[1]) * inv_s[1], (z - o[2]) * inv_s[2]
    if not (0.0 <= fx <= nx - 1 and 0.0 <= fy <= ny - 1 and 0.0 <= fz <= nz - 1):
        return 0.0, 0.0, 0.0
    i, j, k = min(int(fx), nx - 2), min(int(fy), ny - 2), min(int(fz), nz - 2)
    if not (scratch[0, 0, 0] == i and scratch[0, 0, 1] == j and scratch[0, 0, 2] == k
            and scratch[0, 1, 0] == z):
        z0, z1, z2, z3 = _bweights(fz - k)
        for a in range(4):
            for b in range(4):
                r = _bcolumn(c, i + a, j + b, k, 1.0, z0, z1, z2, z3)
                scratch[1 + a, b, 0], scratch[1 + a, b, 1], scratch[1 + a, b, 2] = r[0], r[1], r[2]
        scratch[0, 0, 0], scratch[0, 0, 1], scratch[0, 0, 2], scratch[0, 1, 0] = i, j, k, z
    return _bicubic(scratch[1:], fx - i, fy - j)


stable(bspline_point_cached, "tricubic.bspline_point_cached")


def bspline_planes(c: np.ndarray) -> np.ndarray:
    """The z-contraction of B-spline coefficients ``c`` (nx + 2, ny + 2, nz + 2, 3)
    (:func:`bspline_coefficients`) on every z-node plane of the map and every plane halfway
    between two: array (nx + 2, ny + 2, 2 nz - 1, 3) (planes third, so a track stepping in z
    reads consecutive memory); plane 2 k is node k, plane 2 k + 1 is
    halfway between nodes k and k + 1.

    On such a plane the B-spline is a bicubic in (x, y) over these 2-D coefficients
    (:func:`bspline_plane_point`): 16 multiply-adds per component instead of 64. The weights
    are the uniform cubic B-spline's at t = 0, (1, 4, 1, 0) / 6, and at t = 1/2,
    (1, 23, 23, 1) / 48. Every stage of an RK4 step from one z-node to another lies on such a
    plane (start, midpoint, end), which is what :func:`physml.tracks.rk4_compiled.rk4_compiled`
    uses them for.
    """
    c = np.asarray(c, dtype=np.float64)
    if c.ndim != 4 or c.shape[3] != 3 or c.shape[2] < 6:
        raise ValueError(f"bspline_planes: need coefficients (nx + 2, ny + 2, nz + 2 >= 6, 3), "
                         f"got {c.shape}")
    nz = c.shape[2] - 2
    out = np.empty((c.shape[0], c.shape[1], 2 * nz - 1, 3))
    out[:, :, 0::2] = (c[:, :, :-2] + 4.0 * c[:, :, 1:-1] + c[:, :, 2:]) / 6.0
    out[:, :, 1::2] = (c[:, :, :-3] + 23.0 * c[:, :, 1:-2] + 23.0 * c[:, :, 2:-1]
                       + c[:, :, 3:]) / 48.0
    return out


@numba.njit(inline="always", fastmath=True, cache=True)
def bspline_plane_point(planes, o, inv_s, x, y, z, scratch):
    """(Bx, By, Bz) in T at a point (mm) whose z lies on a plane of ``planes``
    (:func:`bspline_planes`): the B-spline's bicubic on that plane; 0 outside the map's box.

    ``o`` (3,) is the map's origin (mm); ``inv_s`` (3,) = (1 / s_x, 1 / s_y, 2 / s_z) in 1/mm
    (the planes are half a node apart). z is rounded to the nearest plane: the caller makes
    sure it is on one (:func:`physml.tracks.rk4_compiled.rk4_compiled` checks the nodes); the
    same value as :func:`bspline_point` there, up to rounding order. ``scratch`` is unused (the
    signature of :func:`physml.tracks.rk4_compiled.make_kernels`)."""
    nx, ny, npl = planes.shape[0] - 2, planes.shape[1] - 2, planes.shape[2]
    fx, fy, fz = (x - o[0]) * inv_s[0], (y - o[1]) * inv_s[1], (z - o[2]) * inv_s[2]
    if not (0.0 <= fx <= nx - 1 and 0.0 <= fy <= ny - 1 and -0.5 < fz < npl - 0.5):
        return 0.0, 0.0, 0.0
    p = int(fz + 0.5)
    i, j = min(int(fx), nx - 2), min(int(fy), ny - 2)
    return _bicubic(planes[i:i + 4, j:j + 4, p], fx - i, fy - j)


stable(bspline_plane_point, "tricubic.bspline_plane_point")


@numba.njit(parallel=True, fastmath=True, cache=True)
def _bspline_points(c, o, inv_s, p):
    out = np.empty_like(p)
    for i in numba.prange(p.shape[0]):
        out[i, 0], out[i, 1], out[i, 2] = bspline_point(c, o, inv_s, p[i, 0], p[i, 1], p[i, 2])
    return out


class BSplineField(SmoothMap):
    """C² interpolating cubic B-spline of a :class:`~physml.tracks.grid.GridField`.

    Takes the node values exactly (as the trilinear and tricubic maps do); between nodes it
    is the tensor-product cubic B-spline (``scipy.ndimage.map_coordinates(order=3,
    mode="mirror")``, which the tests use as the independent reference), C² everywhere inside
    the box, zero outside it. Against :class:`TricubicField` (C¹): second derivatives are
    continuous too, and the table holds 3 coefficients per node instead of 24 (the map's own
    size, 23 MB for 81 x 81 x 146 nodes, against 184 MB), so an RK4 track finds its cells in
    cache far more often. Callable on points (n, 3) mm -> B (n, 3) T; ``at(x, y, z)``;
    ``kernel_arrays()`` -> (coefficients (nx + 2, ny + 2, nz + 2, 3), origin (3,) mm,
    1 / spacing (3,) 1/mm), the arguments of :func:`bspline_point`. Each axis needs >= 4 nodes.
    """

    def __init__(self, grid: GridField):
        if not isinstance(grid, GridField):
            raise TypeError(f"BSplineField: expected a GridField, got {type(grid).__name__}")
        super().__init__(grid, bspline_coefficients(grid.b_tesla), "cubic B-spline (C2)")

    def __call__(self, points) -> np.ndarray:
        """B (n, 3) in T at points (n, 3) in mm (cubic B-spline; zero outside the grid)."""
        return _bspline_points(*self.kernel_arrays(), np.ascontiguousarray(as_points(points)))

    def at(self, x: float, y: float, z: float) -> tuple[float, float, float]:
        """B (T) at one point (mm) as three floats."""
        return bspline_point(self.table, self.origin_mm, self.inv_spacing, x, y, z)

    def plane_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(planes (nx + 2, ny + 2, 2 nz - 1, 3), origin (3,) mm, (1 / s_x, 1 / s_y, 2 / s_z)
        1/mm): the arguments of :func:`bspline_plane_point` (built on first use, then kept:
        48 MB for 81 x 81 x 146 nodes)."""
        if getattr(self, "_planes", None) is None:
            inv = self.inv_spacing * np.array([1.0, 1.0, 2.0])
            self._planes = (bspline_planes(self.table), self.origin_mm, inv)
        return self._planes

    def on_planes(self, nodes: np.ndarray) -> bool:
        """Whether every RK4 stage along ``nodes`` (mm) lies on a plane of
        :meth:`plane_arrays`: all nodes on z-node planes, or all halfway between z-nodes (so
        that each step's midpoint is on a plane too), to 1e-9 of a node spacing."""
        f = (np.asarray(nodes, dtype=np.float64) - self.origin_mm[2]) * (2 * self.inv_spacing[2])
        k = np.round(f)
        if not np.all(np.abs(f - k) <= 2e-9 * np.maximum(1.0, np.abs(f))):
            return False
        parity = k.astype(np.int64) % 2
        return bool(np.all(parity == parity[0]))
