"""Magnetic field kernels: point dipoles (JAX, float64) and finite cylinders (magpylib).

Units are SI throughout: positions in m, moments in A·m², polarization in T, fields in T.

Precision: the public dipole kernels run in float64 through `physml.precision.x64` (a per-call
``jax.enable_x64`` context); importing this module leaves JAX's global precision alone. The
``*_jit`` kernels are what other jitted code in the study traces; their callers enter
float64 at their own public boundary.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.constants import mu_0 as MU0  # T·m/A, CODATA 2022 (the value magpylib uses)
from scipy.spatial.transform import Rotation

from physml.precision import x64

_K = MU0 / (4.0 * np.pi)  # µ0/4π, T·m/A

#: Remanence range of sintered NdFeB grades, T (N35 low end to N52 high end).
BR_RANGE_T = {"N35": (1.17, 1.22), "N42": (1.28, 1.32), "N45": (1.32, 1.38),
              "N48": (1.37, 1.42), "N50": (1.40, 1.45), "N52": (1.43, 1.48)}


def _dipole_at(r, moments):
    """B (..., 3) in T of dipoles `moments` (..., 3) A·m² at displacements r (..., 3) m (broadcast):
    µ0/4π · (3 r (m·r)/|r|⁵ − m/|r|³)."""
    r2 = jnp.sum(r * r, axis=-1, keepdims=True)
    rn = jnp.sqrt(r2)
    mdotr = jnp.sum(moments * r, axis=-1, keepdims=True)
    return _K * (3.0 * r * mdotr / (r2 * r2 * rn) - moments / (r2 * rn))


@jax.jit
def dipole_field_per_source_jit(observers, positions, moments):
    """Field of each point dipole at each observer.

    Args:
        observers: (n, 3) observer positions, m.
        positions: (k, 3) dipole positions, m.
        moments: (k, 3) dipole moments, A·m².

    Returns:
        (n, k, 3) flux density B of every source at every observer, T.
    """
    return _dipole_at(observers[:, None, :] - positions[None, :, :], moments[None, :, :])


@jax.jit
def dipole_field_jit(observers, positions, moments):
    """Summed field (n, 3), T, of the k point dipoles of `dipole_field_per_source_jit` (same
    arguments: observers (n, 3) m, positions (k, 3) m, moments (k, 3) A·m²) at n observers."""
    k = positions.shape[0]
    if k > 32:  # many sources: broadcast over (n, k)
        return jnp.sum(dipole_field_per_source_jit(observers, positions, moments), axis=1)
    # few sources (the wearable has five): unrolled per source on component arrays, which XLA
    # fuses into one pass over the observers
    ox, oy, oz = observers[:, 0], observers[:, 1], observers[:, 2]
    bx = by = bz = jnp.zeros_like(ox)
    for j in range(k):
        rx, ry, rz = ox - positions[j, 0], oy - positions[j, 1], oz - positions[j, 2]
        ir = jax.lax.rsqrt(rx * rx + ry * ry + rz * rz)
        ir2 = ir * ir
        ir3 = ir2 * ir
        mx, my, mz = moments[j, 0], moments[j, 1], moments[j, 2]
        s = 3.0 * (mx * rx + my * ry + mz * rz) * ir2
        bx = bx + (s * rx - mx) * ir3
        by = by + (s * ry - my) * ir3
        bz = bz + (s * rz - mz) * ir3
    return _K * jnp.stack([bx, by, bz], axis=1)


@jax.jit
def dipole_field_paired_jit(observer, positions, moments):
    """Summed dipole field for batched source configurations seen by one observer each.

    Args:
        observer: (..., 3) observer position for each configuration, m.
        positions: (..., k, 3) dipole positions, m.
        moments: (..., k, 3) dipole moments, A·m².

    Returns:
        (..., 3) total flux density B, T.
    """
    return jnp.sum(_dipole_at(observer[..., None, :] - positions, moments), axis=-2)


#: float64 entry points (float64 whatever JAX's global setting); docstrings as the jit kernels
dipole_field = x64(dipole_field_jit)
dipole_field_per_source = x64(dipole_field_per_source_jit)
dipole_field_paired = x64(dipole_field_paired_jit)


def cylinder_moment(diameter_m, height_m, polarization_T):
    """Dipole moment magnitude of a uniformly magnetised cylinder, m = J·V/µ0.

    Args:
        diameter_m, height_m: array-like, same shape, m.
        polarization_T: array-like (broadcastable), remanence J = Br, T.

    Returns:
        ndarray, moment magnitude, A·m².
    """
    d = np.asarray(diameter_m, float)
    h = np.asarray(height_m, float)
    if np.any(d <= 0) or np.any(h <= 0):
        raise ValueError(f"magnet dimensions must be > 0 m, got diameter={d}, height={h}")
    return np.asarray(polarization_T, float) * np.pi * d**2 / 4.0 * h / MU0


def implied_diameter(moment_Am2, polarization_T=1.4, aspect=0.5):
    """Diameter of the cylinder (height = aspect·diameter) that has the given moment.

    Args:
        moment_Am2: array-like, moment magnitude, A·m².
        polarization_T: remanence of the declared grade, T.
        aspect: height / diameter of the declared magnet shape.

    Returns:
        ndarray, implied diameter, m.
    """
    v = np.abs(np.asarray(moment_Am2, float)) * MU0 / polarization_T
    return (4.0 * v / (np.pi * aspect)) ** (1.0 / 3.0)


def _rotations_z_to(axes):
    """scipy Rotation (len k) taking local +z onto each unit vector in axes (k, 3)."""
    z = np.array([0.0, 0.0, 1.0])
    a = axes / np.linalg.norm(axes, axis=-1, keepdims=True)
    cross = np.cross(z, a)
    s = np.linalg.norm(cross, axis=-1)
    c = a[:, 2]
    ang = np.arctan2(s, c)
    rv = np.zeros_like(a)
    ok = s > 1e-12
    rv[ok] = cross[ok] / s[ok, None] * ang[ok, None]
    flip = (~ok) & (c < 0)
    rv[flip] = np.array([np.pi, 0.0, 0.0])
    return Rotation.from_rotvec(rv)


def cylinder_field(observers, positions, axes, diameter_m, height_m, polarization_T):
    """Summed field of k axially magnetised finite cylinders (exact, via magpylib).

    Args:
        observers: (n, 3) observer positions, m.
        positions: (k, 3) cylinder centres, or (n, k, 3) per-observer centres, m.
        axes: same shape as positions; magnetisation direction (need not be unit).
        diameter_m, height_m: (k,) cylinder dimensions, m.
        polarization_T: (k,) or scalar polarization magnitude J along the axis, T.

    Returns:
        (n, 3) total flux density B, T.
    """
    from magpylib.func import cylinder_field as _mp_cyl

    obs = np.atleast_2d(np.asarray(observers, float))
    n = obs.shape[0]
    pos = np.asarray(positions, float)
    ax = np.asarray(axes, float)
    if pos.ndim == 2:
        pos = np.broadcast_to(pos, (n,) + pos.shape)
        ax = np.broadcast_to(ax, (n,) + ax.shape)
    if pos.shape[0] != n or pos.shape != ax.shape or pos.shape[-1] != 3:
        raise ValueError(f"positions/axes must be (k, 3) or ({n}, k, 3), "
                         f"got {pos.shape}, {ax.shape}")
    k = pos.shape[1]
    d = np.broadcast_to(np.asarray(diameter_m, float), (k,))
    h = np.broadcast_to(np.asarray(height_m, float), (k,))
    j = np.broadcast_to(np.asarray(polarization_T, float), (k,))
    if np.any(d <= 0) or np.any(h <= 0):
        raise ValueError(f"cylinder dimensions must be > 0 m, got diameter={d}, height={h}")
    dims = np.broadcast_to(np.stack([d, h], -1), (n, k, 2)).reshape(-1, 2)
    pols = np.zeros((n * k, 3))
    pols[:, 2] = np.broadcast_to(j, (n, k)).reshape(-1)
    rot = _rotations_z_to(ax.reshape(-1, 3))
    b = _mp_cyl("B", np.repeat(obs, k, axis=0), dims, pols, positions=pos.reshape(-1, 3),
                orientations=rot, squeeze=False)
    return np.asarray(b).reshape(n, k, 3).sum(axis=1)
