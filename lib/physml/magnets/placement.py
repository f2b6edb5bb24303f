"""Magnet placement: separability of the 32 finger states for batches of placements (JAX, jit),
and a cross-entropy optimiser that searches for a better placement than the default.

A placement is, per finger, the magnet's distance along the finger from the base joint (m), its
tilt about the finger segment (rad; π reverses polarity) and its diameter (m, height = ½·diameter,
fixed grade), plus the sensor's offset from its nominal position (m). All batch arrays carry a
leading placement axis P.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.stats import norm

from physml.precision import x64

from .field import MU0, dipole_field_paired_jit
from .hand import ALL_BITS, magnet_pose_jit

_BITS = np.asarray(ALL_BITS, dtype=np.float64)  # float64 inside the x64 entry points


@dataclass
class Placements:
    """A batch of P placements: mount_m (P, 5), tilt_rad (P, 5), diameter_m (P, 5),
    sensor_offset_m (P, 3)."""

    mount_m: np.ndarray
    tilt_rad: np.ndarray
    diameter_m: np.ndarray
    sensor_offset_m: np.ndarray

    @property
    def n(self):
        return len(self.mount_m)

    def take(self, i):
        """The placements at index/indices i (kept 2-D)."""
        i = np.atleast_1d(i)
        return Placements(self.mount_m[i], self.tilt_rad[i], self.diameter_m[i],
                          self.sensor_offset_m[i])

    def as_flat_dict(self, i=0):
        """Placement i as flat figures {"<field>_<finger>": value} (mm, deg) for records."""
        from .hand import FINGERS

        d = self.as_dict(i)
        out = {f"{k}_{f}": v for k in ("mount_mm", "tilt_deg", "diameter_mm")
               for f, v in zip(FINGERS, d[k], strict=True)}
        out.update({f"sensor_offset_mm_{a}": v for a, v in zip("xyz", d["sensor_offset_mm"],
                                                               strict=True)})
        return out

    def as_dict(self, i=0):
        """Placement i as plain lists (for records)."""
        return {"mount_mm": (1e3 * self.mount_m[i]).round(2).tolist(),
                "tilt_deg": np.rad2deg(self.tilt_rad[i]).round(1).tolist(),
                "diameter_mm": (1e3 * self.diameter_m[i]).round(2).tolist(),
                "sensor_offset_mm": (1e3 * self.sensor_offset_m[i]).round(2).tolist()}


def finger_table(placements: dict, i: int = 0):
    """One row per finger (thumb→pinky): each named placement's magnet mount (mm along the
    finger), tilt (deg) and diameter (mm), placement ``i`` of each batch (pandas DataFrame;
    columns ``mount_mm <name>``, ``tilt_deg <name>``, ``diameter_mm <name>``)."""
    import pandas as pd

    from .hand import FINGERS

    out = pd.DataFrame({"finger": list(FINGERS)})
    for key in ("mount_mm", "tilt_deg", "diameter_mm"):
        for name, p in placements.items():
            out[f"{key} {name}"] = p.as_dict(i)[key]
    return out


def default_placement(hand, n=1):
    """The hand's own placement repeated n times."""
    return Placements(np.tile(hand.mount_m, (n, 1)), np.tile(hand.tilt_rad, (n, 1)),
                      np.tile(hand.diameter_m, (n, 1)), np.zeros((n, 3)))


@jax.jit
def _fields(mount, tilt, diam, offset, base, direction, axis, lengths, flexed, extended,
            surface, pol, sensor):
    b = _BITS[None, :, :, None]  # (1, 32, 5, 1)
    ang = extended[None, None] * (1 - b) + flexed[None, None] * b  # (1, 32, 5, 2)
    pos, ax = magnet_pose_jit(base, direction, axis, lengths[None, None], ang, mount[:, None],
                          surface[None, None], tilt[:, None])  # (P, 32, 5, 3)
    m = pol * jnp.pi * diam**2 / 4 * (0.5 * diam) / MU0  # (P, 5)
    obs = (sensor + offset)[:, None, :]  # (P, 1, 3)
    return 1e6 * dipole_field_paired_jit(jnp.broadcast_to(obs, pos.shape[:2] + (3,)), pos,
                                     ax * m[:, None, :, None])


def _placement_args(hand, p):
    if np.any(p.diameter_m <= 0):
        raise ValueError(f"magnet diameters must be > 0 m, got min {p.diameter_m.min()}")
    return (jnp.asarray(p.mount_m), jnp.asarray(p.tilt_rad), jnp.asarray(p.diameter_m),
            jnp.asarray(p.sensor_offset_m), hand.base_m, hand.direction, hand.flex_axis,
            hand.lengths_m, hand.flexed_rad, hand.extended_rad, hand.surface_m,
            jnp.asarray(hand.polarization_T), hand.sensor_m)


@jax.jit
def _scores(fields, noise_uT):
    d = jnp.sqrt(jnp.sum((fields[:, :, None] - fields[:, None]) ** 2, -1) + 1e-30)  # (P,32,32)
    eye = jnp.eye(32, dtype=bool)
    dmin = jnp.min(jnp.where(eye, jnp.inf, d), axis=(1, 2))
    # nearest-template accuracy under isotropic Gaussian noise, pairwise-independence approx.
    logp = jnp.where(eye, 0.0, norm.logcdf(d / (2 * noise_uT)))
    acc = jnp.mean(jnp.exp(jnp.sum(logp, axis=2)), axis=1)
    return dmin / noise_uT, acc


@x64
def separability(hand, placements, noise_uT=2.0):
    """Score placements.

    Args:
        hand: Hand (geometry and magnet grade).
        placements: Placements (P).
        noise_uT: per-axis reading noise σ, µT (> 0).

    Returns:
        dict: "min_distance_sigma" (P,) smallest distance between two states' fields in units
        of σ; "expected_accuracy" (P,) nearest-template exact-match accuracy under the noise
        (each state's error taken as independent pairwise confusions: within 0.01 of Monte
        Carlo above ~0.9, a lower bound below); "fields_uT" (P, 32, 3).
    """
    if noise_uT <= 0:
        raise ValueError(f"noise_uT must be > 0, got {noise_uT}")
    f = _fields(*_placement_args(hand, placements))
    s, a = _scores(f, noise_uT)
    return {"min_distance_sigma": np.asarray(s), "expected_accuracy": np.asarray(a),
            "fields_uT": np.asarray(f)}


def monte_carlo_accuracy(fields_uT, noise_uT, n, rng):
    """Nearest-template exact-match accuracy by simulation: fields (32, 3) µT, n draws per state."""
    x = np.repeat(fields_uT, n, 0) + noise_uT * rng.standard_normal((32 * n, 3))
    d = np.sum((x[:, None] - fields_uT[None]) ** 2, -1)
    return float(np.mean(np.argmin(d, 1) == np.repeat(np.arange(32), n)))


@dataclass(frozen=True)
class PlacementBounds:
    """Search box: mount as a fraction of the finger length, tilt (rad), diameter (m), sensor
    offset (m) per axis as (low, high) — z >= 0 keeps the sensor on the back of the hand."""

    mount_frac: tuple = (0.15, 0.95)
    tilt_rad: tuple = (-np.pi, np.pi)
    diameter_m: tuple = (0.006, 0.006)
    sensor_offset_m: tuple = ((-0.015, 0.015), (-0.015, 0.015), (0.0, 0.015))


def sample_placements(hand, n, rng, bounds=None):
    """n placements drawn uniformly inside the bounds."""
    b = bounds or PlacementBounds()
    total = hand.lengths_m.sum(1)
    return Placements(
        mount_m=rng.uniform(*b.mount_frac, (n, 5)) * total,
        tilt_rad=rng.uniform(*b.tilt_rad, (n, 5)),
        diameter_m=rng.uniform(*b.diameter_m, (n, 5)),
        sensor_offset_m=rng.uniform(*np.asarray(b.sensor_offset_m, float).T, (n, 3)))


def optimise_placement(hand, rng, noise_uT=2.0, n_candidates=2000, n_iter=10, elite_frac=0.05,
                       bounds=None):
    """Cross-entropy search for the placement with the highest expected accuracy.

    Starts from a Gaussian centred on the default placement; each iteration scores
    n_candidates placements (vectorised) and refits the Gaussian to the elite.

    Returns:
        dict: "best" Placements (1), "best_accuracy", "best_min_distance_sigma",
        "history" {"iteration", "best_accuracy", "mean_elite_accuracy"}, "n_scored",
        "seconds".
    """
    import time

    if n_candidates < 10 or n_iter < 1 or not 0 < elite_frac < 1:
        raise ValueError(f"need n_candidates >= 10, n_iter >= 1, 0 < elite_frac < 1; got "
                         f"{n_candidates}, {n_iter}, {elite_frac}")
    b = bounds or PlacementBounds()
    total = hand.lengths_m.sum(1)
    so = np.asarray(b.sensor_offset_m, float)
    lo = np.concatenate([b.mount_frac[0] * total, np.full(5, b.tilt_rad[0]),
                         np.full(5, b.diameter_m[0]), so[:, 0]])
    hi = np.concatenate([b.mount_frac[1] * total, np.full(5, b.tilt_rad[1]),
                         np.full(5, b.diameter_m[1]), so[:, 1]])
    d0 = default_placement(hand)
    mu = np.clip(np.concatenate([d0.mount_m[0], d0.tilt_rad[0], d0.diameter_m[0], np.zeros(3)]),
                 lo, hi)
    sd = (hi - lo) / 4
    n_elite = max(2, int(elite_frac * n_candidates))

    def unpack(x):
        return Placements(x[:, :5], x[:, 5:10], x[:, 10:15], x[:, 15:18])

    best_x, best_acc, best_s = mu[None], -1.0, 0.0
    hist = {"iteration": [], "best_accuracy": [], "mean_elite_accuracy": []}
    t0 = time.perf_counter()
    for it in range(n_iter):  # iterations of the optimiser, each one vectorised over candidates
        x = np.clip(mu + sd * rng.standard_normal((n_candidates, 18)), lo, hi)
        x[0] = best_x[0]
        sc = separability(hand, unpack(x), noise_uT)
        key = -np.log10(1.0 - sc["expected_accuracy"] + 1e-15) + 0.01 * sc["min_distance_sigma"]
        order = np.argsort(-key)
        elite = x[order[:n_elite]]
        if sc["expected_accuracy"][order[0]] >= best_acc:
            best_x = x[order[:1]]
            best_acc = float(sc["expected_accuracy"][order[0]])
            best_s = float(sc["min_distance_sigma"][order[0]])
        mu, sd = elite.mean(0), elite.std(0) + 1e-6 * (hi - lo)
        hist["iteration"].append(it)
        hist["best_accuracy"].append(best_acc)
        hist["mean_elite_accuracy"].append(float(sc["expected_accuracy"][order[:n_elite]].mean()))
    return {"best": unpack(best_x), "best_accuracy": best_acc, "best_min_distance_sigma": best_s,
            "history": hist, "n_scored": n_candidates * n_iter,
            "seconds": time.perf_counter() - t0}
