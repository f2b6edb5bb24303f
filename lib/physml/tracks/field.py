"""Magnetic fields of the tracks study (the public façade of the field modules).

Every field is callable on points ``(n, 3)`` in mm and returns B ``(n, 3)`` in tesla (NumPy).
Each also has ``.jax(points)`` and ``.torch(points)`` twins (differentiable with respect to the
points) and ``jax_params()`` / ``jax_point`` / ``jax_plane`` used by the batched propagators.

- :class:`~physml.tracks.grid.GridField` — a map on a regular grid, trilinear, zero outside
  (:mod:`physml.tracks.trilinear`); read/written by :mod:`physml.tracks.mapio`.
- :class:`~physml.tracks.tricubic.TricubicField` — the same map, C¹ tricubic (numba kernels).
- :class:`~physml.tracks.analytic.GaussianField`, :class:`~physml.tracks.analytic.UniformField`.
- :class:`~physml.tracks.magnet.DipoleMagnet` — the air-core magpylib dipole and
  :func:`~physml.tracks.magnet.default_field`, its cached map.
"""

from __future__ import annotations

import numpy as np

from physml.tracks.analytic import GaussianField, UniformField
from physml.tracks.grid import GridField
from physml.tracks.magnet import MU0, DipoleMagnet, default_field
from physml.tracks.mapio import FIELD_UNITS_T, LENGTH_UNITS_MM, load_text_map
from physml.tracks.tricubic import TricubicField

__all__ = ["FIELD_UNITS_T", "LENGTH_UNITS_MM", "MU0", "DipoleMagnet", "GaussianField", "GridField",
           "TricubicField", "UniformField", "default_field", "field_integral", "load_text_map"]


def field_integral(field, x_mm: float = 0.0, y_mm: float = 0.0, z_range_mm=(0.0, 14500.0),
                   n: int = 14501) -> np.ndarray:
    """Integral of B along the straight line (x, y) = const over z_range: (3,) in T mm."""
    z = np.linspace(*z_range_mm, n)
    pts = np.stack([np.full(n, x_mm), np.full(n, y_mm), z], 1)
    return np.trapezoid(field(pts), z, axis=0)
