"""Small field maps for the tracks tests (importable: ``pythonpath = ["tests"]``)."""

import numpy as np

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
