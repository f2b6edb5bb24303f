"""Analytic fields: a Gaussian By profile (a published fit to LHCb's map) and a uniform field."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax.numpy as jnp
import numpy as np

from physml.tracks.eom import x64
from physml.tracks.fieldbase import PointwiseJax, as_points

if TYPE_CHECKING:  # torch is imported where a field is evaluated in torch (~5 s)
    import torch


# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GaussianField(PointwiseJax):
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
        p = as_points(points)
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
        import torch

        by = self.b0_tesla * torch.exp(-0.5 * ((points[:, 2] - self.z0_mm) / self.sigma_mm) ** 2)
        zero = torch.zeros_like(by)
        return torch.stack([zero, by, zero], 1)


@dataclass(frozen=True)
class UniformField:
    """A uniform field B (T) everywhere — the analytic-helix test case."""

    b_tesla: tuple[float, float, float] = (0.0, 1.0, 0.0)

    def __call__(self, points) -> np.ndarray:
        p = as_points(points)
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

    @x64
    def jax(self, points):
        """points (n, 3) mm -> B (n, 3) T (JAX, float64)."""
        p = jnp.asarray(points, dtype=jnp.float64)
        return jnp.broadcast_to(jnp.asarray(self.b_tesla, dtype=p.dtype), p.shape)

    def torch(self, points: torch.Tensor) -> torch.Tensor:
        import torch

        return torch.as_tensor(self.b_tesla, dtype=points.dtype).expand(points.shape[0], 3)
