"""Trilinear interpolation on a regular grid, one kernel per backend (NumPy, scalar, JAX, torch).

Grid convention: node values ``b`` (nx, ny, nz, 3) in T, node (i, j, k) at
``origin + (i, j, k) * spacing`` (mm). Inside the box the value is the trilinear interpolation
of the eight surrounding nodes (exact at nodes, linear along each axis between them); a point
outside the box in any coordinate sees **zero field**.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:  # torch is imported where a field is evaluated in torch (~5 s)
    import torch


def corner_sum(flat, i, t, ny, nz, out):
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


def numpy_points(flat, shape, origin, spacing, p: np.ndarray) -> np.ndarray:
    """B (n, 3) at points p (n, 3) mm; ``flat`` (nx·ny·nz, 3), ``shape`` (nx, ny, nz)."""
    n = np.array(shape)
    f = (p - origin) / spacing
    inside = np.all((f >= 0) & (f <= n - 1), axis=1)
    i = np.clip(np.floor(f), 0, n - 2).astype(np.int64)
    out = corner_sum(flat, i, f - i, shape[1], shape[2], np.zeros((p.shape[0], 3)))
    out[~inside] = 0.0
    return out


def scalar_point(mv, shape, origin, spacing, x: float, y: float, z: float):
    """(Bx, By, Bz) as floats at one point: ``mv`` a flat memoryview of the node values,
    ``origin``/``spacing`` tuples of floats (the fast path of per-track scipy integrators)."""
    nx, ny, nz = shape
    fx, fy = (x - origin[0]) / spacing[0], (y - origin[1]) / spacing[1]
    fz = (z - origin[2]) / spacing[2]
    if not (0 <= fx <= nx - 1 and 0 <= fy <= ny - 1 and 0 <= fz <= nz - 1):
        return 0.0, 0.0, 0.0
    ix, iy, iz = min(int(fx), nx - 2), min(int(fy), ny - 2), min(int(fz), nz - 2)
    tx, ty, tz = fx - ix, fy - iy, fz - iz
    out = [0.0, 0.0, 0.0]
    for dx, wx in ((0, 1 - tx), (1, tx)):
        for dy, wy in ((0, 1 - ty), (1, ty)):
            base = (((ix + dx) * ny + iy + dy) * nz + iz) * 3
            w0, w1 = wx * wy * (1 - tz), wx * wy * tz
            for c in range(3):
                out[c] += w0 * mv[base + c] + w1 * mv[base + 3 + c]
    return out[0], out[1], out[2]


def jax_point(params: dict, x, y, z):
    """(Bx, By, Bz) in T at arrays x, y, z (same shape, mm); params: origin, spacing, b."""
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
        return tuple(w * (c[:, i] + u * c[:, 3 + i] + v * c[:, 6 + i] + uv * c[:, 9 + i])
                     for i in range(3))

    return fn


def torch_points(flat, origin, spacing, shape, points: torch.Tensor) -> torch.Tensor:
    """B (n, 3) at points (n, 3) mm, differentiable in the points; tensors of points' dtype."""
    import torch

    nx, ny, nz = shape
    n = torch.tensor([nx, ny, nz], dtype=points.dtype, device=points.device)
    f = (points - origin) / spacing
    inside = ((f >= 0) & (f <= n - 1)).all(dim=1)
    i = torch.minimum(torch.clamp(torch.floor(f.detach()), min=0), n - 2)
    t = f - i
    out = corner_sum(flat, i.long(), t, ny, nz, torch.zeros_like(points))
    return torch.where(inside[:, None], out, torch.zeros_like(out))
