"""Small field maps for the tracks tests (importable: ``pythonpath = ["tests"]``)."""

import numpy as np

from physml.tracks.eom import derivatives
from physml.tracks.field import GaussianField, GridField


def gaussian_map(xy_half: float = 5000.0, nxy: int = 6, dz: float = 100.0,
                 z_max_mm: float = 9900.0) -> GridField:
    """GaussianField (By profile, peak 1 T at z = 5 m) sampled on a map, z from -100 mm to
    ``z_max_mm`` every ``dz`` mm, x and y over +-``xy_half`` mm on ``nxy`` nodes."""
    xs, zs = np.linspace(-xy_half, xy_half, nxy), np.arange(-100.0, z_max_mm + 1.0, dz)
    pts = np.stack(np.meshgrid(xs, xs, zs, indexing="ij"), -1).reshape(-1, 3)
    b = GaussianField()(pts).reshape(nxy, nxy, zs.size, 3)
    return GridField(np.array([-xy_half, -xy_half, -100.0]),
                     np.array([2 * xy_half / (nxy - 1)] * 2 + [dz]), b)


def numpy_rk4_nodes(states, nodes, field) -> np.ndarray:
    """Classic RK4 in NumPy with the field's own callable (not the compiled kernels), every
    track from nodes[0] along the z ``nodes`` (mm, per-track arrays (m + 1, n) or shared
    (m + 1,)): end states (n, 4)."""
    s = np.array(states, dtype=np.float64)
    zs = np.asarray(nodes, dtype=np.float64)
    zs = np.broadcast_to(zs[:, None] if zs.ndim == 1 else zs, (len(zs), len(s)))

    def f(z, st):
        b = field(np.stack([st[:, 0], st[:, 1], z], 1))
        dtx, dty = derivatives(st[:, 2], st[:, 3], st[:, 4], b[:, 0], b[:, 1], b[:, 2])
        return np.stack([st[:, 2], st[:, 3], dtx, dty, np.zeros(len(st))], 1)

    for z, z1 in zip(zs[:-1], zs[1:], strict=True):
        h = (z1 - z)[:, None]
        k1 = f(z, s)
        k2 = f(z + h[:, 0] / 2, s + h / 2 * k1)
        k3 = f(z + h[:, 0] / 2, s + h / 2 * k2)
        k4 = f(z + h[:, 0], s + h * k3)
        s = s + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return s[:, :4]


def numpy_rk4(states, z0, z_end, n_steps, field) -> np.ndarray:
    """:func:`numpy_rk4_nodes` with n_steps equal steps from z0 to z_end (n,) per track."""
    z_end = np.asarray(z_end, dtype=np.float64)
    return numpy_rk4_nodes(states, z0 + np.linspace(0.0, 1.0, n_steps + 1)[:, None]
                           * (z_end - z0)[None], field)
