"""Synthetic terrain: sums of oriented Gaussian ridges on a regular square grid.

A ridge is an anisotropic Gaussian bump

    h_k(x, y) = A_k · exp(-ξ² / (2 ℓ_k²) - η² / (2 w_k²)),

with (ξ, η) the coordinates relative to its centre rotated by its orientation φ_k (ξ along the
ridge, η across it), length scale ℓ_k and width w_k (ℓ_k > w_k: long, narrow ridges). A terrain
is the sum of a few ridges; the valleys are what lies between them. Heights are in metres,
positions in cells (the caller converts with the cell size).

Arrays are ``(..., n, n)`` with axis -2 = y (rows) and axis -1 = x (columns).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TerrainSpec:
    """Ranges the ridge generator draws from (uniformly unless stated).

    n_cells: grid side (cells). ridges: (min, max) number of ridges per terrain (inclusive).
    height_m: (min, max) peak height of a terrain's highest ridge, metres; the other ridges are
    drawn between 40% and 100% of it. width_cells: (min, max) across-ridge Gaussian width w.
    length_cells: (min, max) along-ridge Gaussian length ℓ. margin_cells: ridge centres keep
    this distance from the edges.
    """

    n_cells: int = 64
    ridges: tuple[int, int] = (1, 3)
    height_m: tuple[float, float] = (300.0, 1500.0)
    width_cells: tuple[float, float] = (1.5, 3.5)
    length_cells: tuple[float, float] = (12.0, 40.0)
    margin_cells: float = 12.0

    def __post_init__(self) -> None:
        def bad_range(name: str, lo: float, hi: float, positive: bool = True) -> None:
            if not (lo <= hi) or (positive and lo <= 0):
                raise ValueError(
                    f"TerrainSpec.{name} must be an increasing (min, max) pair"
                    f"{' of positive values' if positive else ''}, got {(lo, hi)}"
                )

        if self.n_cells < 4:
            raise ValueError(f"TerrainSpec.n_cells must be >= 4, got {self.n_cells}")
        bad_range("ridges", *self.ridges)
        bad_range("height_m", *self.height_m)
        bad_range("width_cells", *self.width_cells)
        bad_range("length_cells", *self.length_cells)
        if not 0 <= self.margin_cells < self.n_cells / 2:
            raise ValueError(
                f"TerrainSpec.margin_cells must be in [0, n_cells/2), got {self.margin_cells}"
            )


def ridge(
    n_cells: int, centre: tuple[float, float], angle_rad: float, height_m: float,
    length_cells: float, width_cells: float,
) -> np.ndarray:
    """One oriented Gaussian ridge on an ``(n_cells, n_cells)`` grid, metres.

    ``centre`` is (x, y) in cells (cell i has its centre at i); ``angle_rad`` is the direction of
    the ridge crest measured from the x axis.

    >>> h = ridge(32, (16, 16), 0.0, 1000.0, 10.0, 2.0)
    >>> h.shape, float(h.max()), float(h[16, 0]) > float(h[0, 16])
    ((32, 32), 1000.0, True)
    """
    y, x = np.mgrid[0:n_cells, 0:n_cells].astype(float)
    dx, dy = x - centre[0], y - centre[1]
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    xi = c * dx + s * dy
    eta = -s * dx + c * dy
    return height_m * np.exp(-0.5 * (xi / length_cells) ** 2 - 0.5 * (eta / width_cells) ** 2)


def random_terrains(rng: np.random.Generator, count: int, spec: TerrainSpec | None = None
                    ) -> np.ndarray:
    """``count`` random terrains, shape ``(count, n, n)``, metres (>= 0).

    Each terrain: k ~ U{ridges} ridges; the first has peak height H ~ U(height_m), the others
    U(0.4, 1)·H; orientation φ ~ U(0, π); centre uniform inside ``margin_cells``; width and
    length uniform in their ranges. Overlapping ridges add.
    """
    spec = spec or TerrainSpec()
    if count < 1:
        raise ValueError(f"random_terrains: count must be >= 1, got {count}")
    n = spec.n_cells
    out = np.zeros((count, n, n))
    for t in range(count):
        k = int(rng.integers(spec.ridges[0], spec.ridges[1] + 1))
        top = rng.uniform(*spec.height_m)
        heights = np.concatenate([[top], rng.uniform(0.4, 1.0, size=k - 1) * top])
        for h in heights:
            centre = tuple(rng.uniform(spec.margin_cells, n - 1 - spec.margin_cells, size=2))
            out[t] += ridge(n, centre, rng.uniform(0, np.pi), h,
                            rng.uniform(*spec.length_cells), rng.uniform(*spec.width_cells))
    return out


def gradient(terrain: np.ndarray, dx_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Terrain slope (∂h/∂x, ∂h/∂y), dimensionless, each shaped like ``terrain`` ``(..., n, n)``.

    Central differences inside, one-sided at the edges (``numpy.gradient``).
    """
    gy, gx = np.gradient(terrain, dx_m, axis=(-2, -1))
    return gx, gy
