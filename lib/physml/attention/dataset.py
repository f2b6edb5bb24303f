"""Learning problem: (tracer at t, terrain, background wind) → tracer a fixed travel distance later.

Each sample draws a background wind U (direction uniform, speed log-uniform), one to a few
Gaussian tracer puffs (peak 1), and one of ``n_terrains`` terrains; the target is the simulator
(:mod:`.transport`, terrain-deflected wind, open boundaries) at horizon t = travel / |U|, so every
sample's undisturbed displacement is the same ``travel_cells`` and strong and weak winds differ
only through the physics of blocking (Froude number Fr = |U| / (N · max h)).

The model sees the *background* wind, not the deflected field: blocking is what it must learn.
Splits go through :mod:`physml.splits`: whole terrains are held out, and optionally a whole
Froude range (samples of the held-out range never train, whatever their terrain).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from . import transport
from .terrain import TerrainSpec, random_terrains

FROUDE_BINS = (0.0, 0.5, 1.0, 2.0, np.inf)
FROUDE_BIN_KEYS = ("fr_below_0p5", "fr_0p5_to_1", "fr_1_to_2", "fr_above_2")  # for JSON keys
BLOCKED, PASSING = "Fr<1", "Fr>=1"  # regimes: blocked (weak wind) and passing (strong wind)


@dataclass(frozen=True)
class DataSpec:
    """How samples are drawn. Units in the names; ranges are (min, max).

    patch: token patch side (cells); must divide ``terrain.n_cells``.
    wind_speed_ms: background speed range, log-uniform. travel_cells: undisturbed displacement
    over the horizon (horizon_s = travel_cells · dx_m / |U|). puffs: tracer puffs per sample.
    """

    terrain: TerrainSpec = field(default_factory=TerrainSpec)
    patch: int = 8
    n_terrains: int = 48
    samples_per_terrain: int = 40
    dx_m: float = 1000.0
    brunt_vaisala_s: float = 0.01
    diffusivity_m2s: float = 20.0
    wind_speed_ms: tuple[float, float] = (2.0, 30.0)
    travel_cells: float = 12.0
    puffs: tuple[int, int] = (1, 3)
    puff_sigma_cells: tuple[float, float] = (2.0, 5.0)
    boundary: str = "open"

    def __post_init__(self) -> None:
        n = self.terrain.n_cells
        if self.patch < 1 or n % self.patch:
            raise ValueError(f"DataSpec.patch={self.patch} must divide the grid n_cells={n}")
        checks = {
            "n_terrains": self.n_terrains >= 2,
            "samples_per_terrain": self.samples_per_terrain >= 1,
            "dx_m": self.dx_m > 0, "brunt_vaisala_s": self.brunt_vaisala_s > 0,
            "diffusivity_m2s": self.diffusivity_m2s >= 0, "travel_cells": self.travel_cells > 0,
            "wind_speed_ms": 0 < self.wind_speed_ms[0] <= self.wind_speed_ms[1],
            "puffs": 1 <= self.puffs[0] <= self.puffs[1],
            "puff_sigma_cells": 0 < self.puff_sigma_cells[0] <= self.puff_sigma_cells[1],
            "boundary": self.boundary in transport.BOUNDARIES,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError("DataSpec: invalid " + ", ".join(
                f"{k}={getattr(self, k)!r}" for k in bad))

    @property
    def n_tokens(self) -> int:
        return (self.terrain.n_cells // self.patch) ** 2


@dataclass(frozen=True)
class TransportData:
    """A data set. S samples on a grid of n cells; T terrains.

    q0, q1: ``(S, n, n)`` tracer now and at the horizon (float32, peak ~1).
    terrain_m: ``(T, n, n)`` metres. terrain_id: ``(S,)`` index into terrain_m.
    wind_ms: ``(S, 2)`` background (u, v). horizon_s: ``(S,)``. froude: ``(S,)`` |U|/(N max h).
    """

    q0: np.ndarray
    q1: np.ndarray
    terrain_m: np.ndarray
    terrain_id: np.ndarray
    wind_ms: np.ndarray
    horizon_s: np.ndarray
    froude: np.ndarray
    spec: DataSpec

    def __len__(self) -> int:
        return int(self.q0.shape[0])

    def subset(self, idx: np.ndarray) -> TransportData:
        """The samples ``idx`` (terrains are kept whole, ids unchanged)."""
        idx = np.asarray(idx)
        return replace(self, q0=self.q0[idx], q1=self.q1[idx], terrain_id=self.terrain_id[idx],
                       wind_ms=self.wind_ms[idx], horizon_s=self.horizon_s[idx],
                       froude=self.froude[idx])

    def froude_bin(self) -> np.ndarray:
        """Index of each sample's bin in :data:`FROUDE_BINS`, ``(S,)``."""
        return np.digitize(self.froude, FROUDE_BINS[1:-1])


def froude_bin_labels() -> list[str]:
    """Readable labels of :data:`FROUDE_BINS`, e.g. ``"Fr<0.5"``, ``"0.5<=Fr<1"``."""
    e = FROUDE_BINS
    out = []
    for lo, hi in zip(e[:-1], e[1:], strict=True):
        out.append(f"Fr<{hi:g}" if lo == 0 else f"Fr>={lo:g}" if np.isinf(hi) else
                   f"{lo:g}<=Fr<{hi:g}")
    return out


def random_tracers(rng: np.random.Generator, count: int, spec: DataSpec) -> np.ndarray:
    """``(count, n, n)`` sums of 1..k Gaussian puffs of peak 1 (centres inside the grid)."""
    n = spec.terrain.n_cells
    y, x = np.mgrid[0:n, 0:n].astype(float)
    out = np.zeros((count, n, n))
    k = rng.integers(spec.puffs[0], spec.puffs[1] + 1, size=count)
    for i in range(count):
        for _ in range(int(k[i])):
            cx, cy = rng.uniform(4, n - 5, size=2)
            s = rng.uniform(*spec.puff_sigma_cells)
            out[i] += np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
    return out


def random_winds(rng: np.random.Generator, count: int, spec: DataSpec) -> np.ndarray:
    """``(count, 2)`` background winds, m/s: direction uniform, speed log-uniform."""
    lo, hi = np.log(spec.wind_speed_ms)
    speed = np.exp(rng.uniform(lo, hi, size=count))
    ang = rng.uniform(0, 2 * np.pi, size=count)
    return np.stack([speed * np.cos(ang), speed * np.sin(ang)], axis=1)


def make_dataset(rng: np.random.Generator, spec: DataSpec | None = None,
                 batch: int = 512) -> TransportData:
    """Draw terrains, winds and tracers and run the simulator (batched, ``batch`` at a time)."""
    spec = spec or DataSpec()
    terrain = random_terrains(rng, spec.n_terrains, spec.terrain)
    s = spec.n_terrains * spec.samples_per_terrain
    tid = np.repeat(np.arange(spec.n_terrains), spec.samples_per_terrain)
    wind = random_winds(rng, s, spec)
    q0 = random_tracers(rng, s, spec).astype(np.float32)
    speed = np.hypot(wind[:, 0], wind[:, 1])
    horizon = spec.travel_cells * spec.dx_m / speed
    q1 = np.empty_like(q0)
    for a in range(0, s, batch):
        b = slice(a, a + batch)
        w = transport.deflected_wind(terrain[tid[b]], wind[b], spec.brunt_vaisala_s, spec.dx_m)
        w = w.astype(np.float32)
        q1[b] = transport.simulate(q0[b], w, horizon[b], spec.dx_m, spec.diffusivity_m2s,
                                   boundary=spec.boundary)
    fr = transport.froude(speed, spec.brunt_vaisala_s, terrain.max(axis=(1, 2))[tid])
    return TransportData(q0, q1, terrain, tid, wind,
                         horizon, fr, spec)


def advection_only(data: TransportData) -> np.ndarray:
    """Baseline: the tracer carried by the *undisturbed* background wind (terrain ignored),
    same scheme, diffusivity and horizon as the simulator. ``(S, n, n)`` float32."""
    spec = data.spec
    n = spec.terrain.n_cells
    w = np.broadcast_to(data.wind_ms[:, :, None, None].astype(np.float32), (len(data), 2, n, n))
    return transport.simulate(data.q0, np.ascontiguousarray(w), data.horizon_s, spec.dx_m,
                              spec.diffusivity_m2s, boundary=spec.boundary)


def persistence(data: TransportData) -> np.ndarray:
    """Baseline: the tracer unchanged, ``(S, n, n)``."""
    return data.q0.copy()


def mse_per_sample(pred: np.ndarray, data: TransportData) -> np.ndarray:
    """Mean squared error over the grid, per sample, ``(S,)``."""
    return ((np.asarray(pred, dtype=float) - data.q1) ** 2).mean(axis=(-2, -1))


def sampler(spec: DataSpec, seed: int) -> Callable[[], TransportData]:
    """A call drawing a fresh data set from ``spec`` (seeded anew on every call), for timing."""

    def draw() -> TransportData:
        return make_dataset(np.random.default_rng(seed), spec)

    return draw
