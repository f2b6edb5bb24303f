"""A field sampled on a regular grid: the data, its geometry and validation.

Evaluation lives in :mod:`physml.tracks.trilinear` (one kernel per backend), reading and
writing maps in :mod:`physml.tracks.mapio`; :class:`GridField` ties them to one object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import jax.numpy as jnp
import numpy as np

from physml.tracks import trilinear
from physml.tracks.fieldbase import PointwiseJax, as_points

if TYPE_CHECKING:  # torch is imported where a field is evaluated in torch (~5 s)
    import torch


@dataclass(frozen=True, eq=False)
class GridField(PointwiseJax):
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

    def __call__(self, points) -> np.ndarray:
        """B (n, 3) in T at points (n, 3) in mm (trilinear; zero outside the grid)."""
        return trilinear.numpy_points(self._flat, self.shape, self.origin_mm, self.spacing_mm,
                                      as_points(points))

    def at(self, x: float, y: float, z: float) -> tuple[float, float, float]:
        """B (T) at one point (mm) as three Python floats (per-track reference integrators)."""
        o, s = self._scalar_geom
        return trilinear.scalar_point(self._mv, self.shape, o, s, x, y, z)

    def jax_params(self) -> dict:
        """Arrays the JAX kernels need (a pytree passed through ``jit``)."""
        return {"origin": jnp.asarray(self.origin_mm), "spacing": jnp.asarray(self.spacing_mm),
                "b": jnp.asarray(self.b_tesla)}

    jax_point = staticmethod(trilinear.jax_point)
    jax_plane = staticmethod(trilinear.jax_plane)

    def torch(self, points: torch.Tensor) -> torch.Tensor:
        """PyTorch version: points (n, 3) mm tensor -> B (n, 3) T, differentiable in the points."""
        import torch

        key = (points.dtype, points.device)
        if key not in self._torch_cache:
            self._torch_cache[key] = tuple(
                torch.as_tensor(a, dtype=points.dtype, device=points.device)
                for a in (self._flat, self.origin_mm, self.spacing_mm))
        flat, origin, spacing = self._torch_cache[key]
        return trilinear.torch_points(flat, origin, spacing, self.shape, points)

    def save(self, path) -> None:
        """Write the map to ``path`` (.npz) with its metadata (:func:`~.mapio.save_npz`)."""
        from physml.tracks.mapio import save_npz

        save_npz(self, path)

    @classmethod
    def load_npz(cls, path) -> GridField:
        """Read a map written by :meth:`save` (:func:`physml.tracks.mapio.load_npz`)."""
        from physml.tracks.mapio import load_npz

        return load_npz(path)
