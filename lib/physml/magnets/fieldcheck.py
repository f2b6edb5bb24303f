"""Checks of the field model: our dipole kernel against magpylib's dipole, and the dipole
approximation against magpylib's exact finite cylinder as a function of distance."""

from __future__ import annotations

import numpy as np

from .field import cylinder_field, cylinder_moment, dipole_field


def random_sources(rng, n_sources=5, spread_m=0.05, moment_Am2=0.1):
    """Random dipole positions (k, 3) m (cube of side 2·spread_m) and moments (k, 3) A·m²."""
    pos = rng.uniform(-spread_m, spread_m, (n_sources, 3))
    mom = moment_Am2 * rng.standard_normal((n_sources, 3))
    return pos, mom


def magpylib_dipole_field(observers, positions, moments):
    """Summed B (n, 3) T of magpylib Dipole objects (the object-oriented API)."""
    import magpylib as magpy

    src = [magpy.misc.Dipole(position=p, moment=m) for p, m in zip(positions, moments,
                                                                      strict=True)]
    return np.asarray(magpy.getB(src, np.asarray(observers), sumup=True)).reshape(-1, 3)


def dipole_vs_magpylib(rng, n_observers=10000, n_sources=5, min_distance_m=0.005):
    """Max and median relative error |B_ours − B_magpylib| / |B_magpylib| on random observers.

    Observers closer than min_distance_m to a source are redrawn away (the field is singular).

    Returns:
        dict {"max_rel_err", "median_rel_err", "n_observers", "n_sources"}.
    """
    pos, mom = random_sources(rng, n_sources)
    obs = rng.uniform(-0.15, 0.15, (n_observers, 3))
    d = np.min(np.linalg.norm(obs[:, None] - pos[None], axis=-1), axis=1)
    obs = obs[d > min_distance_m]
    ours = np.asarray(dipole_field(obs, pos, mom))
    ref = magpylib_dipole_field(obs, pos, mom)
    rel = np.linalg.norm(ours - ref, axis=1) / np.linalg.norm(ref, axis=1)
    return {"max_rel_err": float(rel.max()), "median_rel_err": float(np.median(rel)),
            "n_observers": int(len(obs)), "n_sources": n_sources}


def dipole_error_vs_distance(distances_diam, diameter_m=0.006, height_m=0.003,
                             polarization_T=1.4, n_directions=200, rng=None):
    """Relative error of the dipole approximation against the exact cylinder (magpylib).

    For each distance (in magnet diameters, from the magnet centre) the error
    |B_dipole − B_cyl| / |B_cyl| is evaluated on n_directions random directions.

    Returns:
        dict {"distance_diam" (m,), "max_rel_err" (m,), "median_rel_err" (m,)}.
    """
    rng = rng or np.random.default_rng(0)
    dist = np.asarray(distances_diam, float)
    if np.any(dist <= 0):
        raise ValueError(f"distances must be > 0 diameters, got {dist}")
    u = rng.standard_normal((n_directions, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    obs = (dist[:, None, None] * diameter_m * u[None]).reshape(-1, 3)
    zero, axis = np.zeros((1, 3)), np.array([[0.0, 0.0, 1.0]])
    m = cylinder_moment(diameter_m, height_m, polarization_T)
    bd = np.asarray(dipole_field(obs, zero, m * axis))
    bc = cylinder_field(obs, zero, axis, [diameter_m], [height_m], [polarization_T])
    rel = (np.linalg.norm(bd - bc, axis=1) / np.linalg.norm(bc, axis=1)).reshape(len(dist), -1)
    return {"distance_diam": dist, "max_rel_err": rel.max(1), "median_rel_err": np.median(rel, 1)}


def breakdown_distance(curve, tolerance=0.01):
    """Smallest tabulated distance (diameters) beyond which the max error stays < tolerance."""
    ok = curve["max_rel_err"] < tolerance
    if not ok[-1]:
        return float("nan")
    bad = np.flatnonzero(~ok)
    return float(curve["distance_diam"][bad[-1] + 1] if bad.size else curve["distance_diam"][0])


def hand_model_error(hand):
    """Dipole vs exact-cylinder field at the sensor for the hand's 32 states.

    Returns:
        dict {"max_abs_err_uT", "max_rel_err", "min_distance_diam"} over the 32 states.
    """
    from .hand import ALL_BITS, hand_magnets

    pos, ax = hand_magnets(hand, ALL_BITS)
    obs = np.broadcast_to(hand.sensor_m, (32, 3))
    exact = cylinder_field(obs, pos, ax, hand.diameter_m, hand.height_m, hand.polarization_T)
    mom = ax * hand.moment_Am2[None, :, None]
    dip = np.stack([np.asarray(dipole_field(obs[:1], pos[i], mom[i]))[0] for i in range(32)])
    err = np.linalg.norm(dip - exact, axis=1)
    dist = np.linalg.norm(pos - hand.sensor_m, axis=-1) / hand.diameter_m[None]
    return {"max_abs_err_uT": float(1e6 * err.max()),
            "max_rel_err": float(np.max(err / np.linalg.norm(exact, axis=1))),
            "min_distance_diam": float(dist.min())}
