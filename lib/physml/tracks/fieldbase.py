"""What every field of the study shares: point validation and the JAX evaluation wrapper.

A field is callable on points ``(n, 3)`` in mm and returns B ``(n, 3)`` in tesla (NumPy); it
has ``at(x, y, z)`` (one point, Python floats), ``jax_params()`` with static ``jax_point`` /
``jax_plane`` kernels used by the JAX propagators, ``jax(points)`` and ``torch(points)``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from physml.tracks.eom import x64


def as_points(points, what: str = "points") -> np.ndarray:
    """``points`` as a float64 array (n, 3) in mm; raises ValueError naming the shape."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"{what}: expected an array of shape (n, 3) in mm, got {p.shape}")
    return p


class PointwiseJax:
    """``jax(points)`` for fields defining ``jax_point(params, x, y, z)`` and ``jax_params()``."""

    @x64
    def jax(self, points):
        """JAX version of ``__call__``: points (n, 3) mm -> B (n, 3) T (float64), differentiable."""
        p = jnp.asarray(points, dtype=jnp.float64)
        bx, by, bz = self.jax_point(self.jax_params(), p[:, 0], p[:, 1], p[:, 2])
        return jnp.stack([bx, by, bz], -1)
