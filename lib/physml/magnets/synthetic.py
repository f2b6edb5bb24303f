"""Synthetic readings from a fitted physics model: any subset of the 32 states, with sensor noise,
orientation variation (Earth's field rotated by small random hand rotations) and quantisation.
Fully vectorised (no Python loop over samples).
"""

from __future__ import annotations

import numpy as np

from .hand import ALL_BITS, bits_to_index
from .session import MAG_UT_PER_LSB


def rotate_small(v, rotvec):
    """Rotate vectors v (n, 3) by rotation vectors rotvec (n, 3) rad (Rodrigues, exact)."""
    th = np.sqrt(np.sum(rotvec * rotvec, axis=1, keepdims=True))
    k = rotvec / np.where(th > 0, th, 1.0)
    c, s = np.cos(th), np.sin(th)
    kv = np.sum(k * v, axis=1, keepdims=True)
    return v * c + np.cross(k, v) * s + k * kv * (1.0 - c)


def generate(templates_uT, states, n_per_state, rng, earth_uT=None, orientation_deg=4.0,
             noise_uT=0.5, quantise=True):
    """Synthetic calibrated readings for the given states.

    Args:
        templates_uT: (32, 3) predicted noise-free reading of every state, µT (the Earth's field
            of the mean orientation included), e.g. ``FitResult.templates()``.
        states: (m,) state indices 0..31 to generate.
        n_per_state: samples per state (>= 1).
        rng: numpy Generator.
        earth_uT: (3,) Earth's field in the sensor frame at the mean orientation, µT (rotated
            per sample); None or orientation_deg = 0 disables orientation variation.
        orientation_deg: standard deviation of each rotation-vector component, degrees.
        noise_uT: white noise per axis, µT.
        quantise: round to the magnetometer's 100/1024 µT LSB.

    Returns:
        readings (m·n_per_state, 3) µT, bits (m·n_per_state, 5).
    """
    t = np.asarray(templates_uT, float)
    if t.shape != (32, 3):
        raise ValueError(f"templates_uT must be (32, 3), got {t.shape}")
    s = np.asarray(states, dtype=np.int64).ravel()
    if s.size == 0 or np.any((s < 0) | (s > 31)):
        raise ValueError(f"states must be a non-empty list of indices in [0, 31], got {s}")
    if n_per_state < 1:
        raise ValueError(f"n_per_state must be >= 1, got {n_per_state}")
    if orientation_deg < 0 or noise_uT < 0:
        raise ValueError(f"orientation_deg and noise_uT must be >= 0, got {orientation_deg}, "
                         f"{noise_uT}")
    idx = np.repeat(s, n_per_state)
    n = idx.size
    out = t[idx] + noise_uT * rng.standard_normal((n, 3))
    if earth_uT is not None and orientation_deg > 0:
        e = np.broadcast_to(np.asarray(earth_uT, float), (n, 3))
        rv = np.deg2rad(orientation_deg) * rng.standard_normal((n, 3))
        out += rotate_small(e, rv) - e
    if quantise:
        out = np.rint(out / MAG_UT_PER_LSB) * MAG_UT_PER_LSB
    return out, ALL_BITS[idx]


def estimate_noise_model(readings_uT, bits, earth_uT):
    """Fit (orientation_deg, noise_uT) to the pooled within-state covariance of real readings.

    Small isotropic rotations with per-component sd σ of a field e add covariance
    σ²(|e|²I − eeᵀ); white noise adds ν²I. Both are fitted by non-negative least squares.

    Args:
        readings_uT: (n, 3) labelled calibrated readings, µT.
        bits: (n, 5) their states.
        earth_uT: (3,) Earth's field in the sensor frame, µT.

    Returns:
        dict {"orientation_deg", "noise_uT", "pooled_cov_uT2" (3, 3)}.
    """
    from scipy.optimize import nnls

    r = np.asarray(readings_uT, float)
    idx = bits_to_index(bits)
    counts = np.bincount(idx, minlength=32)
    means = np.zeros((32, 3))
    np.add.at(means, idx, r)
    means /= np.maximum(counts, 1)[:, None]
    d = r - means[idx]
    dof = len(r) - np.count_nonzero(counts)
    if dof < 3:
        raise ValueError(f"need more repeated readings per state to estimate noise (dof={dof})")
    cov = d.T @ d / dof
    e = np.asarray(earth_uT, float)
    a = (e @ e) * np.eye(3) - np.outer(e, e)
    coef, _ = nnls(np.stack([a.ravel(), np.eye(3).ravel()], 1), cov.ravel())
    return {"orientation_deg": float(np.rad2deg(np.sqrt(coef[0]))),
            "noise_uT": float(np.sqrt(coef[1])), "pooled_cov_uT2": cov}
