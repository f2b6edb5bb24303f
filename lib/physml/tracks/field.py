"""Magnetic field maps for track extrapolation: regular grids, a magpylib dipole, a Gaussian.

Every field is callable on points ``(n, 3)`` in mm and returns B ``(n, 3)`` in tesla (NumPy).
Each also has ``.jax(points)`` and ``.torch(points)`` twins (differentiable with respect to the
points) and ``jax_params()`` / ``jax_point`` / ``jax_plane`` used by the batched propagators.

Outside-the-grid policy (:class:`GridField`): a point outside the map's box in any coordinate
sees **zero field**. Inside, the value is the trilinear interpolation of the eight surrounding
nodes (exact at nodes, linear along each axis between them).

The default map (:func:`default_field`) is the magnetostatic field of an air-core window-frame
dipole built with magpylib: two flat rectangular coils (racetrack windings) above and below the
aperture, each a uniform current sheet on the side faces of a ``W x t x L`` box. By Ampère's
equivalence such a winding has exactly the B field of a uniformly polarised cuboid (surface
current K = J/mu0), so magpylib's analytic ``Cuboid`` gives it in closed form and the map
satisfies div B = 0 and curl B = mu0 J exactly before interpolation. The polarisation (current)
is scaled so the on-axis By peaks at ``peak_tesla`` (1 T at z = 5 m); the geometry (coils 3 m
long in z, 6 m wide, 1 m thick, inner faces at |y| = 3 m, clear of the +-0.3 slope acceptance)
gives an on-axis integral of 4.34 T m over z in [0, 14.5] m (LHCb: ~4.2 T m, peak ~1 T). Without
an iron yoke the field has return lobes (By < 0 beyond the coil ends) and large Bz near the coil
ends at |y| > 1.5 m.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import torch

from physml.paths import artifacts_dir

MU0 = 4e-7 * np.pi  # T m / A


def _as_points(points, what: str = "points") -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"{what}: expected an array of shape (n, 3) in mm, got {p.shape}")
    return p


# --------------------------------------------------------------------------------------------
# Regular grid with trilinear interpolation
# --------------------------------------------------------------------------------------------
def _trilinear(flat, i, t, ny, nz, out):
    """Trilinear sum over the 8 corners of each point's cell; NumPy arrays or torch tensors.

    flat: (nx·ny·nz, 3) node values; i: (n, 3) integer lower-corner indices; t: (n, 3) fractional
    position in the cell; out: (n, 3) zeros of the backend. Returns out + the interpolated values.
    """
    base = (i[:, 0] * ny + i[:, 1]) * nz + i[:, 2]
    for dx in (0, 1):  # 8 corners, not samples
        wx = t[:, 0] if dx else 1 - t[:, 0]
        for dy in (0, 1):
            wy = t[:, 1] if dy else 1 - t[:, 1]
            for dz in (0, 1):
                wz = t[:, 2] if dz else 1 - t[:, 2]
                out = out + (wx * wy * wz)[:, None] * flat[base + (dx * ny + dy) * nz + dz]
    return out


class _PointwiseJax:
    """``jax(points)`` for fields defining ``jax_point(params, x, y, z)`` and ``jax_params()``."""

    def jax(self, points):
        """JAX version of ``__call__``: points (n, 3) mm -> B (n, 3) T, differentiable."""
        p = jnp.asarray(points)
        bx, by, bz = self.jax_point(self.jax_params(), p[:, 0], p[:, 1], p[:, 2])
        return jnp.stack([bx, by, bz], -1)


@dataclass(frozen=True, eq=False)
class GridField(_PointwiseJax):
    """A field sampled on a regular grid, trilinearly interpolated; zero outside the box.

    origin_mm: (3,) coordinates of node (0, 0, 0); spacing_mm: (3,) node spacing (> 0);
    b_tesla: (nx, ny, nz, 3) field at the nodes (node (i, j, k) sits at origin + (i, j, k) *
    spacing). ``meta``: free-form description (source, units) kept with the map.
    """

    origin_mm: np.ndarray
    spacing_mm: np.ndarray
    b_tesla: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        o = np.asarray(self.origin_mm, dtype=np.float64).reshape(3)
        s = np.asarray(self.spacing_mm, dtype=np.float64).reshape(3)
        b = np.ascontiguousarray(self.b_tesla, dtype=np.float64)
        if b.ndim != 4 or b.shape[3] != 3 or min(b.shape[:3]) < 2:
            raise ValueError(
                f"GridField: b_tesla must have shape (nx>=2, ny>=2, nz>=2, 3), got {b.shape}")
        if not np.all(s > 0):
            raise ValueError(f"GridField: spacing_mm must be > 0, got {s}")
        if not np.all(np.isfinite(b)):
            raise ValueError("GridField: b_tesla contains NaN or inf")
        object.__setattr__(self, "origin_mm", o)
        object.__setattr__(self, "spacing_mm", s)
        object.__setattr__(self, "b_tesla", b)
        object.__setattr__(self, "_flat", b.reshape(-1, 3))
        object.__setattr__(self, "_torch_cache", {})
        object.__setattr__(self, "_mv", memoryview(self._flat.reshape(-1)))
        object.__setattr__(self, "_scalar_geom", (tuple(o.tolist()), tuple(s.tolist())))

    @property
    def shape(self) -> tuple[int, int, int]:
        """(nx, ny, nz) nodes."""
        return tuple(self.b_tesla.shape[:3])

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Node coordinates along x, y, z in mm: three 1-d arrays of lengths nx, ny, nz."""
        return tuple(self.origin_mm[a] + self.spacing_mm[a] * np.arange(self.shape[a])
                     for a in range(3))

    @property
    def upper_mm(self) -> np.ndarray:
        """(3,) coordinates of the last node."""
        return self.origin_mm + self.spacing_mm * (np.array(self.shape) - 1)

    # ---- NumPy ----
    def __call__(self, points) -> np.ndarray:
        """B (n, 3) in T at points (n, 3) in mm (trilinear; zero outside the grid)."""
        p = _as_points(points)
        n = np.array(self.shape)
        f = (p - self.origin_mm) / self.spacing_mm
        inside = np.all((f >= 0) & (f <= n - 1), axis=1)
        i = np.clip(np.floor(f), 0, n - 2).astype(np.int64)
        t = f - i
        nx, ny, nz = self.shape
        out = _trilinear(self._flat, i, t, ny, nz, np.zeros((p.shape[0], 3)))
        out[~inside] = 0.0
        return out

    def at(self, x: float, y: float, z: float) -> tuple[float, float, float]:
        """B (T) at one point (mm) as three Python floats — the fast path for per-track
        reference integrators (scipy); same trilinear rule and zero-outside policy."""
        o, s = self._scalar_geom
        nx, ny, nz = self.shape
        fx, fy, fz = (x - o[0]) / s[0], (y - o[1]) / s[1], (z - o[2]) / s[2]
        if not (0 <= fx <= nx - 1 and 0 <= fy <= ny - 1 and 0 <= fz <= nz - 1):
            return 0.0, 0.0, 0.0
        ix, iy, iz = min(int(fx), nx - 2), min(int(fy), ny - 2), min(int(fz), nz - 2)
        tx, ty, tz = fx - ix, fy - iy, fz - iz
        m = self._mv
        out = [0.0, 0.0, 0.0]
        for dx, wx in ((0, 1 - tx), (1, tx)):
            for dy, wy in ((0, 1 - ty), (1, ty)):
                base = (((ix + dx) * ny + iy + dy) * nz + iz) * 3
                w0, w1 = wx * wy * (1 - tz), wx * wy * tz
                for c in range(3):
                    out[c] += w0 * m[base + c] + w1 * m[base + 3 + c]
        return out[0], out[1], out[2]

    # ---- JAX ----
    def jax_params(self) -> dict:
        """Arrays the JAX kernels need (a pytree passed through ``jit``)."""
        return {
            "origin": jnp.asarray(self.origin_mm),
            "spacing": jnp.asarray(self.spacing_mm),
            "b": jnp.asarray(self.b_tesla),
        }

    @staticmethod
    def jax_point(params: dict, x, y, z):
        """(Bx, By, Bz) in T at arrays x, y, z (same shape, mm); zero outside. Trilinear."""
        b = params["b"]
        nx, ny, nz = b.shape[:3]
        flat = b.reshape(-1, 3)
        n = jnp.array([nx, ny, nz])
        f = (jnp.stack([x, y, z], -1) - params["origin"]) / params["spacing"]
        inside = jnp.all((f >= 0) & (f <= n - 1), axis=-1)
        i = jnp.clip(jnp.floor(f), 0, n - 2).astype(jnp.int32)
        t = f - i
        base = (i[..., 0] * ny + i[..., 1]) * nz + i[..., 2]
        out = 0.0
        for dx in (0, 1):
            wx = t[..., 0] if dx else 1 - t[..., 0]
            for dy in (0, 1):
                wy = t[..., 1] if dy else 1 - t[..., 1]
                for dz in (0, 1):
                    wz = t[..., 2] if dz else 1 - t[..., 2]
                    out = out + (wx * wy * wz)[..., None] * flat[base + (dx * ny + dy) * nz + dz]
        out = jnp.where(inside[..., None], out, 0.0)
        return out[..., 0], out[..., 1], out[..., 2]

    @staticmethod
    def jax_plane(params: dict, z):
        """Field restricted to the plane at scalar z (mm): returns ``fn(x, y) -> (Bx, By, Bz)``.

        Interpolates the two bracketing z-slices once and stores, per (x, y) cell, the bilinear
        coefficients B = a + b u + c v + d u v (u, v in [0, 1] across the cell): every track then
        gathers one contiguous row of 12 numbers. Identical to the trilinear value (zero outside),
        but the z work is shared by every track at this z.
        """
        b = params["b"]
        nx, ny, nz = b.shape[:3]
        fz = (z - params["origin"][2]) / params["spacing"][2]
        z_in = (fz >= 0) & (fz <= nz - 1)
        iz = jnp.clip(jnp.floor(fz), 0, nz - 2).astype(jnp.int32)
        tz = fz - iz
        sl = jax.lax.dynamic_slice_in_dim(b, iz, 2, axis=2)
        p = jnp.where(z_in, (1 - tz) * sl[:, :, 0] + tz * sl[:, :, 1], 0.0)  # (nx, ny, 3)
        c00, c01, c10, c11 = p[:-1, :-1], p[:-1, 1:], p[1:, :-1], p[1:, 1:]
        coef = jnp.concatenate([c00, c10 - c00, c01 - c00, c11 - c10 - c01 + c00], axis=-1)
        coef = coef.reshape((nx - 1) * (ny - 1), 12)
        ox, oy = params["origin"][0], params["origin"][1]
        sx, sy = params["spacing"][0], params["spacing"][1]

        def fn(x, y):
            fx = (x - ox) / sx
            fy = (y - oy) / sy
            inside = (fx >= 0) & (fx <= nx - 1) & (fy >= 0) & (fy <= ny - 1)
            ix = jnp.clip(jnp.floor(fx), 0, nx - 2)
            iy = jnp.clip(jnp.floor(fy), 0, ny - 2)
            u = fx - ix
            v = fy - iy
            k = (ix * (ny - 1) + iy).astype(jnp.int32)
            c = jnp.take(coef, k, axis=0, mode="clip")
            uv = u * v
            w = jnp.where(inside, 1.0, 0.0)
            return tuple(
                w * (c[:, i] + u * c[:, 3 + i] + v * c[:, 6 + i] + uv * c[:, 9 + i])
                for i in range(3)
            )

        return fn

    # ---- PyTorch ----
    def torch(self, points: torch.Tensor) -> torch.Tensor:
        """PyTorch version: points (n, 3) mm tensor -> B (n, 3) T, differentiable in the points."""
        key = (points.dtype, points.device)
        if key not in self._torch_cache:
            self._torch_cache[key] = (
                torch.as_tensor(self._flat, dtype=points.dtype, device=points.device),
                torch.as_tensor(self.origin_mm, dtype=points.dtype, device=points.device),
                torch.as_tensor(self.spacing_mm, dtype=points.dtype, device=points.device),
            )
        flat, origin, spacing = self._torch_cache[key]
        nx, ny, nz = self.shape
        n = torch.tensor([nx, ny, nz], dtype=points.dtype, device=points.device)
        f = (points - origin) / spacing
        inside = ((f >= 0) & (f <= n - 1)).all(dim=1)
        i = torch.minimum(torch.clamp(torch.floor(f.detach()), min=0), n - 2)
        t = f - i
        i = i.long()
        out = _trilinear(flat, i, t, ny, nz, torch.zeros_like(points))
        return torch.where(inside[:, None], out, torch.zeros_like(out))

    # ---- persistence ----
    def save(self, path: str | Path) -> None:
        """Write the map to ``path`` (.npz) with its metadata."""
        np.savez(path, origin_mm=self.origin_mm, spacing_mm=self.spacing_mm,
                 b_tesla=self.b_tesla, meta=json.dumps(self.meta))

    @classmethod
    def load_npz(cls, path: str | Path) -> GridField:
        """Read a map written by :meth:`save`."""
        with np.load(path) as d:
            missing = {"origin_mm", "spacing_mm", "b_tesla"} - set(d.files)
            if missing:
                raise ValueError(f"{path}: not a GridField file, missing arrays {sorted(missing)}")
            meta = json.loads(str(d["meta"])) if "meta" in d.files else {}
            return cls(d["origin_mm"], d["spacing_mm"], d["b_tesla"], meta)


# --------------------------------------------------------------------------------------------
# Analytic Gaussian
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GaussianField(_PointwiseJax):
    """By = B0 exp(-((z - z0) / sigma)^2 / 2), Bx = Bz = 0, uniform in x, y (everywhere).

    Defaults are a published fit to the LHCb map: B0 = 1.0182 T, z0 = 5007 mm, sigma = 1744 mm
    (integral B0 sigma sqrt(2 pi) = 4.45 T m). Divergence-free but not curl-free (dBy/dz != 0
    with Bz = 0), so not a vacuum field: a smooth stand-in for fast tests and for separating
    integrator error from interpolation kinks; the default map is :func:`default_field`.
    """

    b0_tesla: float = 1.0182
    z0_mm: float = 5007.0
    sigma_mm: float = 1744.0

    def __post_init__(self) -> None:
        if not self.sigma_mm > 0:
            raise ValueError(f"GaussianField: sigma_mm = {self.sigma_mm}, expected > 0")

    def integral_tesla_mm(self) -> float:
        """Integral of By over all z in T mm."""
        return float(self.b0_tesla * self.sigma_mm * np.sqrt(2 * np.pi))

    def __call__(self, points) -> np.ndarray:
        """B (n, 3) in T at points (n, 3) in mm."""
        p = _as_points(points)
        out = np.zeros_like(p)
        out[:, 1] = self.b0_tesla * np.exp(-0.5 * ((p[:, 2] - self.z0_mm) / self.sigma_mm) ** 2)
        return out

    def at(self, x: float, y: float, z: float) -> tuple[float, float, float]:
        """B (T) at one point (mm) as three floats."""
        return 0.0, self.b0_tesla * math.exp(-0.5 * ((z - self.z0_mm) / self.sigma_mm) ** 2), 0.0

    def jax_params(self) -> dict:
        return {"b0": jnp.asarray(self.b0_tesla), "z0": jnp.asarray(self.z0_mm),
                "sigma": jnp.asarray(self.sigma_mm)}

    @staticmethod
    def jax_point(params, x, y, z):
        by = params["b0"] * jnp.exp(-0.5 * ((z - params["z0"]) / params["sigma"]) ** 2)
        zero = jnp.zeros_like(x + y + z)
        return zero, by + zero, zero

    @staticmethod
    def jax_plane(params, z):
        by = params["b0"] * jnp.exp(-0.5 * ((z - params["z0"]) / params["sigma"]) ** 2)

        def fn(x, y):
            zero = jnp.zeros_like(x)
            return zero, zero + by, zero

        return fn

    def torch(self, points: torch.Tensor) -> torch.Tensor:
        by = self.b0_tesla * torch.exp(-0.5 * ((points[:, 2] - self.z0_mm) / self.sigma_mm) ** 2)
        zero = torch.zeros_like(by)
        return torch.stack([zero, by, zero], 1)


@dataclass(frozen=True)
class UniformField:
    """A uniform field B (T) everywhere — the analytic-helix test case."""

    b_tesla: tuple[float, float, float] = (0.0, 1.0, 0.0)

    def __call__(self, points) -> np.ndarray:
        p = _as_points(points)
        return np.broadcast_to(np.asarray(self.b_tesla, dtype=np.float64), p.shape).copy()

    def at(self, x: float, y: float, z: float) -> tuple[float, float, float]:
        """B (T) at one point (mm) as three floats."""
        return tuple(float(v) for v in self.b_tesla)

    def jax_params(self) -> dict:
        return {"b": jnp.asarray(self.b_tesla, dtype=jnp.float64)}

    @staticmethod
    def jax_point(params, x, y, z):
        zero = jnp.zeros_like(x + y + z)
        return zero + params["b"][0], zero + params["b"][1], zero + params["b"][2]

    @staticmethod
    def jax_plane(params, z):
        def fn(x, y):
            zero = jnp.zeros_like(x)
            return zero + params["b"][0], zero + params["b"][1], zero + params["b"][2]

        return fn

    def jax(self, points):
        p = jnp.asarray(points)
        return jnp.broadcast_to(jnp.asarray(self.b_tesla, dtype=p.dtype), p.shape)

    def torch(self, points: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.b_tesla, dtype=points.dtype).expand(points.shape[0], 3)


# --------------------------------------------------------------------------------------------
# magpylib dipole model -> default map
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DipoleMagnet:
    """Air-core window-frame dipole: two flat racetrack coils above and below the aperture.

    Lengths in mm. Each coil is a current sheet on the side faces of a box ``coil_width_x_mm``
    (x) by ``coil_thickness_mm`` (y) by ``coil_length_z_mm`` (z), centred at x = 0,
    z = ``z_center_mm``, occupying ``gap_half_mm <= |y| <= gap_half_mm + coil_thickness_mm``;
    both coils carry current in the same sense, so the aperture field is along +y. The current is
    scaled so the on-axis By peaks at ``peak_tesla``. The grid spans ``x, y in +-half_width_mm``,
    ``z in [z_min_mm, z_max_mm]`` with ``spacing_mm`` (LHCb: 81 x 81 x 146 nodes at 100 mm).
    """

    coil_length_z_mm: float = 3000.0
    coil_width_x_mm: float = 6000.0
    coil_thickness_mm: float = 1000.0
    gap_half_mm: float = 3000.0
    z_center_mm: float = 5000.0
    peak_tesla: float = 1.0
    half_width_mm: float = 4000.0
    z_min_mm: float = 0.0
    z_max_mm: float = 14500.0
    spacing_mm: float = 100.0

    def key(self) -> str:
        """Short hash of the parameters (the cache key of the computed map)."""
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    def _collection(self, polarization_tesla: float):
        import magpylib as magpy

        mm = 1e-3
        dim = (self.coil_width_x_mm * mm, self.coil_thickness_mm * mm, self.coil_length_z_mm * mm)
        yc = (self.gap_half_mm + self.coil_thickness_mm / 2) * mm
        coils = [
            magpy.magnet.Cuboid(dimension=dim, polarization=(0, polarization_tesla, 0),
                                position=(0, s * yc, self.z_center_mm * mm))
            for s in (1, -1)
        ]
        return magpy.Collection(*coils)

    def polarization_tesla(self) -> float:
        """Cuboid polarisation J (T) that makes the on-axis By peak at ``peak_tesla``."""
        z = np.linspace(self.z_min_mm, self.z_max_mm, 2901)
        pts = np.stack([np.zeros_like(z), np.zeros_like(z), z], 1)
        by = self._collection(1.0).getB(pts * 1e-3)[:, 1]
        return float(self.peak_tesla / by.max())

    def ampere_turns(self) -> float:
        """Equivalent ampere-turns N I of each coil (A): K t = J t / mu0."""
        return self.polarization_tesla() * self.coil_thickness_mm * 1e-3 / MU0

    def exact(self, points) -> np.ndarray:
        """magpylib's B (n, 3) in T at points (n, 3) in mm (no interpolation)."""
        p = _as_points(points)
        return np.asarray(self._collection(self.polarization_tesla()).getB(p * 1e-3)).reshape(-1, 3)

    def grid(self) -> GridField:
        """Sample the model on its regular grid (a few seconds for 81 x 81 x 146 nodes)."""
        h = self.half_width_mm
        n_xy = int(round(2 * h / self.spacing_mm)) + 1
        n_z = int(round((self.z_max_mm - self.z_min_mm) / self.spacing_mm)) + 1
        xs = -h + self.spacing_mm * np.arange(n_xy)
        zs = self.z_min_mm + self.spacing_mm * np.arange(n_z)
        pts = np.stack(np.meshgrid(xs, xs, zs, indexing="ij"), -1).reshape(-1, 3)
        b = self.exact(pts).reshape(n_xy, n_xy, n_z, 3)
        meta = {"source": "magpylib air-core window-frame dipole (two flat coils)",
                "model": asdict(self), "ampere_turns_per_coil": self.ampere_turns()}
        return GridField(np.array([-h, -h, self.z_min_mm]), np.full(3, self.spacing_mm), b, meta)


def default_field(magnet: DipoleMagnet | None = None, cache: bool = True) -> GridField:
    """The default field map: :class:`DipoleMagnet` sampled on 81 x 81 x 146 nodes (100 mm).

    Computed once with magpylib and cached as ``artifacts/tracks/field/dipole_<key>.npz`` keyed
    by the model parameters. Returns a :class:`GridField` (points (n, 3) mm -> B (n, 3) T).
    """
    magnet = magnet or DipoleMagnet()
    path = artifacts_dir("tracks", "field") / f"dipole_{magnet.key()}.npz"
    if cache and path.is_file():
        return GridField.load_npz(path)
    grid = magnet.grid()
    if cache:
        tmp = path.with_suffix(".tmp.npz")
        grid.save(tmp)
        tmp.replace(path)
    return grid


def field_integral(field, x_mm: float = 0.0, y_mm: float = 0.0, z_range_mm=(0.0, 14500.0),
                   n: int = 14501) -> np.ndarray:
    """Integral of B along the straight line (x, y) = const over z_range: (3,) in T mm."""
    z = np.linspace(*z_range_mm, n)
    pts = np.stack([np.full(n, x_mm), np.full(n, y_mm), z], 1)
    return np.trapezoid(field(pts), z, axis=0)


# --------------------------------------------------------------------------------------------
# Text map loader
# --------------------------------------------------------------------------------------------
LENGTH_UNITS_MM = {"mm": 1.0, "cm": 10.0, "m": 1000.0}
FIELD_UNITS_T = {"T": 1.0, "tesla": 1.0, "gauss": 1e-4, "G": 1e-4, "kG": 0.1, "mT": 1e-3}


def load_text_map(path: str | Path, length_unit: str = "mm", field_unit: str = "gauss",
                  columns: tuple[str, ...] = ("x", "y", "z", "Bx", "By", "Bz"),
                  comments: str = "#", rtol: float = 1e-6) -> GridField:
    """Read a whitespace-separated text map with columns x y z Bx By Bz into a :class:`GridField`.

    ``columns`` names the file's columns in order (extra columns are allowed, named anything
    else); ``length_unit`` in {mm, cm, m}, ``field_unit`` in {T, gauss, kG, mT} (LHCb's maps: mm
    and gauss). The points may come in any order but must fill a complete regular grid; raises
    ``ValueError`` naming the file, the missing column, or the first offending row otherwise.
    """
    path = Path(path)
    if length_unit not in LENGTH_UNITS_MM:
        raise ValueError(
            f"load_text_map: length_unit {length_unit!r} not in {sorted(LENGTH_UNITS_MM)}")
    if field_unit not in FIELD_UNITS_T:
        raise ValueError(f"load_text_map: field_unit {field_unit!r} not in {sorted(FIELD_UNITS_T)}")
    need = ("x", "y", "z", "Bx", "By", "Bz")
    missing = [c for c in need if c not in columns]
    if missing:
        raise ValueError(f"{path}: column names {list(columns)} lack {missing} (need {list(need)})")
    try:
        data = np.loadtxt(path, comments=comments, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{path}: cannot parse as numbers: {exc}") from exc
    if data.shape[0] == 0:
        raise ValueError(f"{path}: no data rows")
    if data.shape[1] < len(columns):
        raise ValueError(
            f"{path}: rows have {data.shape[1]} columns, expected {len(columns)} "
            f"({' '.join(columns)}); column {columns[data.shape[1]]!r} is missing"
        )
    col = {name: data[:, i] for i, name in enumerate(columns)}
    xyz = np.stack([col["x"], col["y"], col["z"]], 1) * LENGTH_UNITS_MM[length_unit]
    b = np.stack([col["Bx"], col["By"], col["Bz"]], 1) * FIELD_UNITS_T[field_unit]
    axes, idx = [], []
    for a, name in enumerate("xyz"):
        vals = np.unique(xyz[:, a])
        if vals.size < 2:
            raise ValueError(
                f"{path}: column {name} has a single value; a grid needs >= 2 per axis")
        step = float(np.median(np.diff(vals)))
        k = np.rint((xyz[:, a] - vals[0]) / step).astype(np.int64)
        off = np.abs(xyz[:, a] - (vals[0] + k * step)) > rtol * step + 1e-9
        if np.any(off):
            bad = int(np.argmax(off))
            raise ValueError(
                f"{path}: data row {bad + 1}: {name} = "
                f"{xyz[bad, a] / LENGTH_UNITS_MM[length_unit]:.9g} "
                f"{length_unit} is not on a regular grid along {name} (spacing "
                f"{step / LENGTH_UNITS_MM[length_unit]:.6g} {length_unit})"
            )
        size = int(k.max()) + 1
        vals = vals[:1].repeat(size)  # only vals[0] and the count are used below
        axes.append((vals[0], step, vals.size))
        idx.append(k)
    shape = tuple(a[2] for a in axes)
    n_expected = int(np.prod(shape))
    flat = (idx[0] * shape[1] + idx[1]) * shape[2] + idx[2]
    counts = np.bincount(flat, minlength=n_expected)
    if data.shape[0] != n_expected or np.any(counts != 1):
        dup = np.flatnonzero(counts > 1)
        hole = np.flatnonzero(counts == 0)
        what = (f"{dup.size} duplicated node(s)" if dup.size else "") + (
            f"{' and ' if dup.size and hole.size else ''}{hole.size} missing node(s)"
            if hole.size else "")
        raise ValueError(
            f"{path}: {data.shape[0]} rows do not fill the {shape[0]} x {shape[1]} x {shape[2]} "
            f"grid ({n_expected} nodes): {what}"
        )
    grid = np.empty((n_expected, 3))
    grid[flat] = b
    return GridField(np.array([a[0] for a in axes]), np.array([a[1] for a in axes]),
                     grid.reshape(*shape, 3),
                     {"source": str(path), "length_unit": length_unit, "field_unit": field_unit})
