"""Physics priors the surrogates add their network output to: straight line, single kick and
coarse RK4.

A prior maps the physical inputs u = (x, y, tx, ty, q/p, dz) (n, 6) and a fraction zeta of dz
to a physical state (x, y, tx, ty) (n, 4) at z0 + zeta dz, in torch (so it is part of the
model, its ONNX export and autograd).

- ``straight``: field-free line (x + tx d, y + ty d, tx, ty), d = zeta dz.
- ``kick``: the first-order (thin-lens, on-axis) solution of the equations of motion of
  :mod:`physml.tracks.eom`, with the slopes frozen at their initial values::

      c = -KAPPA (q/p) N,  N = sqrt(1 + tx^2 + ty^2)
      tx(z) = tx + c (1 + tx^2) I0(z),        x(z) = x + tx d + c (1 + tx^2) I1(z)
      ty(z) = ty + c  tx ty     I0(z),        y(z) = y + ty d + c  tx ty     I1(z)

  with I0(z) = int_{z0}^{z} By(0, 0, z') dz' (T mm) and I1(z) = int_{z0}^{z} (z - z') By dz'
  (T mm^2): the slope kick of the field integral, applied at the By centroid. Both integrals
  are tabulated once on a regular z grid (:class:`KickTable`) and interpolated linearly.
- ``rk4``: classic RK4 with a few (``steps``) equal steps through the study's field map
  (:class:`RK4Prior`), compiled with numba (:mod:`physml.tracks.rk4_compiled`) and run **outside
  torch** (NumPy in, NumPy out; no autograd, no ONNX graph): the model adds its network output to
  it (MLP only, endpoint only). Its error is set by how coarsely the steps sample the field, and
  is close to proportional to q/p (measured on the iron-yoke map, 4-8 steps: the rms x residual
  per momentum range divided by |q/p| is flat within 1.5x from 0.5 to 100 GeV).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from physml.tracks.eom import KAPPA

PRIORS = ("none", "straight", "kick", "rk4")
RK4_FIELDS = ("trilinear", "bspline")
"""Representations of the map the ``rk4`` prior integrates through: the map itself (trilinear,
:class:`~physml.tracks.grid.GridField`) or its C² cubic B-spline
(:class:`~physml.tracks.tricubic.BSplineField`)."""


@dataclass(frozen=True)
class KickTable:
    """On-axis field integrals from z0_mm on a regular grid: z_mm (m,), i0 (m,) T mm, i1 (m,)
    T mm^2. Beyond the last node the integrals are extrapolated as a field-free drift."""

    z_mm: np.ndarray
    i0: np.ndarray
    i1: np.ndarray

    @classmethod
    def from_field(cls, field, z0_mm: float = 0.0, z_max_mm: float = 14500.0,
                   step_mm: float = 5.0) -> KickTable:
        """Tabulate ``field`` (callable (n, 3) mm -> (n, 3) T) on the axis x = y = 0."""
        if not z_max_mm > z0_mm or not step_mm > 0:
            raise ValueError(f"KickTable: need z_max_mm > z0_mm and step_mm > 0, got "
                             f"{z0_mm}, {z_max_mm}, {step_mm}")
        m = int(np.ceil((z_max_mm - z0_mm) / step_mm)) + 1
        z = z0_mm + step_mm * np.arange(m)
        by = field(np.stack([np.zeros(m), np.zeros(m), z], 1))[:, 1]
        seg = 0.5 * (by[1:] + by[:-1]) * step_mm  # trapezoid
        i0 = np.concatenate([[0.0], np.cumsum(seg)])
        # I1(z) = int (z - z') By dz' = int_{z0}^{z} I0(z'') dz''
        i1 = np.concatenate([[0.0], np.cumsum(0.5 * (i0[1:] + i0[:-1]) * step_mm)])
        return cls(z, i0, i1)

    def at(self, z_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(I0, I1) at z (NumPy), linear between nodes, drift beyond the last node."""
        z = np.asarray(z_mm, dtype=np.float64)
        zc = np.clip(z, self.z_mm[0], self.z_mm[-1])
        i0 = np.interp(zc, self.z_mm, self.i0)
        i1 = np.interp(zc, self.z_mm, self.i1) + i0 * (z - zc)
        return i0, i1


def straight(u: torch.Tensor, zeta) -> torch.Tensor:
    """Field-free state (n, 4) at fraction zeta (scalar or (n,)) of dz."""
    d = u[:, 5] * zeta
    return torch.stack([u[:, 0] + u[:, 2] * d, u[:, 1] + u[:, 3] * d, u[:, 2], u[:, 3]], 1)


def interp_table(z: torch.Tensor, z0: float, step: float, values: torch.Tensor,
                 last: int) -> torch.Tensor:
    """Linear interpolation of ``values`` (last + 1,) on the regular grid z0 + step * k at z
    (n,), clamped to the end nodes (ONNX-exportable: floor, clamp, gather)."""
    f = torch.clamp((z - z0) / step, 0.0, float(last))
    i = torch.clamp(torch.floor(f.detach()), 0, last - 1).long()
    w = f - i
    return values[i] * (1 - w) + values[i + 1] * w


def kick(u: torch.Tensor, zeta, table: tuple[torch.Tensor, torch.Tensor], z0_mm: float,
         step_mm: float, z_last_mm: float) -> torch.Tensor:
    """Single-kick state (n, 4) at fraction zeta of dz; ``table`` = (i0, i1) tensors (m,)."""
    i0t, i1t = table
    last = int(round((z_last_mm - z0_mm) / step_mm))
    d = u[:, 5] * zeta
    z = z0_mm + d
    i0 = interp_table(z, z0_mm, step_mm, i0t, last)
    i1 = interp_table(z, z0_mm, step_mm, i1t, last) + i0 * torch.clamp(z - z_last_mm, min=0.0)
    tx, ty, qop = u[:, 2], u[:, 3], u[:, 4]
    c = -KAPPA * qop * torch.sqrt(1 + tx * tx + ty * ty)
    ax, ay = c * (1 + tx * tx), c * tx * ty
    return torch.stack([u[:, 0] + tx * d + ax * i1, u[:, 1] + ty * d + ay * i1,
                        tx + ax * i0, ty + ay * i0], 1)


def kick_numpy(initial: np.ndarray, dz: np.ndarray, table: KickTable, z0_mm: float = 0.0):
    """The ``kick`` prior in NumPy: initial (n, 5), dz (n,) mm -> (n, 4)."""
    x, y, tx, ty, qop = initial.T
    i0, i1 = table.at(z0_mm + dz)
    c = -KAPPA * qop * np.sqrt(1 + tx * tx + ty * ty)
    ax, ay = c * (1 + tx * tx), c * tx * ty
    return np.stack([x + tx * dz + ax * i1, y + ty * dz + ay * i1, tx + ax * i0, ty + ay * i0], 1)


# ---- coarse RK4 --------------------------------------------------------------------------
def map_sha1(grid) -> str:
    """Short SHA-1 of a GridField's node values (identifies the map a prior was fitted on)."""
    return hashlib.sha1(np.ascontiguousarray(grid.b_tesla).tobytes()).hexdigest()[:12]


MAP_DIGEST_ATOL = 1e-7
"""Largest difference between entries of :func:`map_digest` (sums over a z-plane of ~6,600
nodes, in T and T²) of a rebuilt map and of the recorded one that still counts as the same map.
Floating-point noise stays far below it: the iron-yoke map rebuilt with OpenBLAS's SkylakeX,
Haswell and Sandybridge kernels had three different :func:`map_sha1` hashes, its node values
within 3.6e-15 T of each other. A change of 2e-7 T in a single node's By exceeds it."""


def map_digest(grid) -> tuple[float, ...]:
    """A GridField's node values summarised per z-plane: the sum of By over each plane, then
    the sum of |B|² over each plane (2 nz floats). Identifies a map up to floating-point noise,
    where :func:`map_sha1` changes with the last bit of any node (e.g. with the BLAS kernel
    that ran the magnet's fit): compared within :data:`MAP_DIGEST_ATOL`."""
    b = np.asarray(grid.b_tesla, dtype=np.float64)
    return tuple(float(v) for v in np.concatenate([b[..., 1].sum(axis=(0, 1)),
                                                   (b * b).sum(axis=(0, 1, 3))]))


def digest_deviation(grid, digest) -> float:
    """Largest |difference| between :func:`map_digest` of ``grid`` and ``digest`` (inf if
    their lengths differ: another number of z-planes)."""
    got, want = np.asarray(map_digest(grid)), np.asarray(digest, dtype=np.float64)
    return float(np.max(np.abs(got - want))) if got.shape == want.shape else float("inf")


SERIAL_BELOW = 64
"""Batches of fewer tracks run the prior on one numba thread: a parallel launch costs more than
a few tracks' steps (measured on 2 shared cores under load, 1 track, 8 steps: 16.6 ms per call
on 2 threads, 0.23 ms on 1)."""

_MAPS: dict[str, object] = {}
"""GridFields this process has seen, by :func:`map_sha1` (so a prior finds its map without
re-reading it)."""
_REPRESENTATIONS: dict[tuple[str, str], object] = {}


def register_map(grid) -> str:
    """Remember ``grid`` (a GridField) under its :func:`map_sha1`; returns the hash."""
    from physml.tracks.grid import GridField

    if type(grid) is not GridField:
        raise TypeError(f"rk4 prior: the field must be a GridField (a map), got "
                        f"{type(grid).__name__}")
    key = map_sha1(grid)
    _MAPS.setdefault(key, grid)
    return key


def _map_for(sha1: str, magnet: dict, digest=None):
    """The GridField the prior was fitted on: the one with node hash ``sha1`` in this
    process's registry; else, given the recorded ``digest`` (:func:`map_digest`), a registered
    map within :data:`MAP_DIGEST_ATOL` of it; else the map rebuilt from the magnet parameters
    ``magnet`` (:func:`physml.tracks.magnet.default_field`, cached map), which must have hash
    ``sha1`` or, with a digest, match it within the tolerance (a map rebuilt on another machine
    differs in the last bits). A map accepted by its digest is registered under ``sha1`` too.
    ValueError if the rebuilt map is not the one the prior was fitted on."""
    if sha1 in _MAPS:
        return _MAPS[sha1]
    if digest is not None:
        for grid in list(_MAPS.values()):
            if digest_deviation(grid, digest) <= MAP_DIGEST_ATOL:
                _MAPS[sha1] = grid
                return grid
    if not magnet:
        raise ValueError(f"rk4 prior: map {sha1} is not loaded in this process and the prior "
                         "records no magnet to rebuild it from; pass the field explicitly")
    from physml.tracks.magnet import DipoleMagnet, default_field

    grid = default_field(DipoleMagnet(**magnet))
    got = register_map(grid)
    if got != sha1:
        if digest is None:
            raise ValueError(f"rk4 prior: the map rebuilt from magnet {magnet} has hash {got}, "
                             f"the prior was fitted on map {sha1} and records no map digest to "
                             "compare them within floating-point noise")
        dev = digest_deviation(grid, digest)
        if not dev <= MAP_DIGEST_ATOL:
            raise ValueError(f"rk4 prior: the map rebuilt from magnet {magnet} (hash {got}) "
                             f"differs from map {sha1}, which the prior was fitted on: its "
                             f"per-plane digest is off by {dev:.3g} (tolerance "
                             f"{MAP_DIGEST_ATOL:g})")
        _MAPS[sha1] = grid
    return grid


@dataclass(frozen=True)
class RK4Prior:
    """Coarse RK4 as a prior: each track from z0_mm to z0_mm + dz in ``steps`` equal steps
    of length_mm / steps on the nodes z0 + k length_mm / steps (a track whose dz is shorter
    than length_mm stops at its own plane with one partial step; at a fixed end plane,
    dz = length_mm, every track takes exactly ``steps`` steps), through the map with node hash
    ``map_sha1`` in representation ``field`` (:data:`RK4_FIELDS`). ``magnet``: the
    :class:`~physml.tracks.magnet.DipoleMagnet` parameters the map is rebuilt from in a
    process that has not seen it (``GridField.meta["model"]`` of the study's maps);
    ``map_digest``: :func:`map_digest` of the map, which a rebuilt map with another hash must
    match (:func:`_map_for`; None: the hash must match)."""

    steps: int
    length_mm: float
    map_sha1: str
    field: str = "trilinear"
    z0_mm: float = 0.0
    magnet: dict | None = None
    map_digest: tuple | None = None

    def __post_init__(self) -> None:
        if self.map_digest is not None:  # a list from JSON: the tuple fit() records (equal priors)
            object.__setattr__(self, "map_digest", tuple(float(v) for v in self.map_digest))
        if not (isinstance(self.steps, int | np.integer) and self.steps >= 1):
            raise ValueError(f"RK4Prior: steps = {self.steps!r}, expected an integer >= 1")
        if not self.length_mm > 0:
            raise ValueError(f"RK4Prior: length_mm = {self.length_mm}, expected > 0")
        if self.field not in RK4_FIELDS:
            raise ValueError(f"RK4Prior: field = {self.field!r}, expected one of {RK4_FIELDS}")

    @classmethod
    def fit(cls, grid, steps: int, dz_mm: np.ndarray, field: str = "trilinear",
            z0_mm: float = 0.0) -> RK4Prior:
        """The prior on map ``grid`` (a GridField) with ``steps`` steps over the longest
        distance of ``dz_mm`` (n,) mm, rounded up to a whole mm."""
        sha = register_map(grid)
        length = float(np.ceil(np.max(dz_mm) - 1e-6))  # whole mm: 8500 stays 8500
        return cls(int(steps), length, sha, field, float(z0_mm),
                   dict(grid.meta.get("model", {})) or None, map_digest(grid))

    def nodes(self) -> np.ndarray:
        """Step boundaries (steps + 1,) mm."""
        return self.z0_mm + np.linspace(0.0, self.length_mm, self.steps + 1)

    def representation(self):
        """The field the steps integrate through (the map or its B-spline), cached."""
        key = (self.map_sha1, self.field)
        if key not in _REPRESENTATIONS:
            grid = _map_for(self.map_sha1, self.magnet or {}, self.map_digest)
            if self.field == "bspline":
                from physml.tracks.tricubic import BSplineField

                _REPRESENTATIONS[key] = BSplineField(grid)
            else:
                _REPRESENTATIONS[key] = grid
        return _REPRESENTATIONS[key]

    def __call__(self, initial: np.ndarray, dz: np.ndarray) -> np.ndarray:
        """End states (n, 4) = (x, y, tx, ty) of initial (n, 5) after dz (n,) mm (numba, on
        numba's threads; one thread below :data:`SERIAL_BELOW` tracks). ValueError if a dz is
        not in (0, length_mm]."""
        from physml.tracks.rk4_compiled import rk4_compiled, rk4_compiled_to

        s = np.ascontiguousarray(initial, dtype=np.float64)
        d = np.asarray(dz, dtype=np.float64)
        if s.ndim != 2 or s.shape[1] != 5 or d.shape != (s.shape[0],):
            raise ValueError(f"RK4Prior: expected initial (n, 5) and dz (n,), got {s.shape}, "
                             f"{d.shape}")
        if len(d) == 0:
            return np.zeros((0, 4))
        if not (d.min() > 0 and d.max() <= self.length_mm * (1 + 1e-9)):
            raise ValueError(f"RK4Prior: dz in [{d.min()}, {d.max()}] mm, expected in (0, "
                             f"{self.length_mm}] (the prior's nodes end there)")
        fld, nodes = self.representation(), self.nodes()
        import numba

        threads = numba.get_num_threads()
        if len(s) < SERIAL_BELOW:
            numba.set_num_threads(1)
        try:
            if np.all(d == self.length_mm):
                out = rk4_compiled(s, nodes, fld)
            else:
                out = rk4_compiled_to(s, nodes, self.z0_mm + d, fld)
        finally:
            numba.set_num_threads(threads)
        return out[:, :4]

    def torch(self, u: torch.Tensor) -> torch.Tensor:
        """The prior of physical inputs u (n, 6) as a tensor (n, 4) of u's dtype (computed in
        float64 by numba, outside autograd)."""
        x = u.detach().double().cpu().numpy()
        return torch.from_numpy(self(x[:, :5], x[:, 5])).to(u.dtype)
