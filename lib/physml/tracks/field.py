"""Magnetic fields of the tracks study (the public façade of the field modules).

Every field is callable on points ``(n, 3)`` in mm and returns B ``(n, 3)`` in tesla (NumPy).
Each also has ``.jax(points)`` and ``.torch(points)`` twins (differentiable with respect to the
points) and ``jax_params()`` / ``jax_point`` / ``jax_plane`` used by the batched propagators.

- :class:`~physml.tracks.grid.GridField` — a map on a regular grid, trilinear, zero outside
  (:mod:`physml.tracks.trilinear`); read/written by :mod:`physml.tracks.mapio`.
- :class:`~physml.tracks.tricubic.TricubicField` — the same map, C¹ tricubic (numba kernels);
  :class:`~physml.tracks.tricubic.BSplineField` — C² cubic B-spline through the nodes.
- :class:`~physml.tracks.analytic.GaussianField`, :class:`~physml.tracks.analytic.UniformField`.
- :class:`~physml.tracks.magnet.DipoleMagnet` — the magpylib dipoles (default: the
  iron-yoke-like design; ``"air_core"`` and ``"iron_poles"`` by name) and
  :func:`~physml.tracks.magnet.default_field`, the cached map.

Checks of a magnet made here (notebook 01, ``tests/tracks/test_magnet.py``):
:func:`box_uniformity` (By / By(0, 0, z_c) over an aperture box, plane by plane) and
:func:`aperture_clearance` (how close the study's tracks come to the iron-yoke pole faces).
"""

from __future__ import annotations

import numpy as np

from physml.tracks.analytic import GaussianField, UniformField
from physml.tracks.grid import GridField
from physml.tracks.magnet import DESIGNS, MU0, DipoleMagnet, default_field
from physml.tracks.mapio import FIELD_UNITS_T, LENGTH_UNITS_MM, load_text_map
from physml.tracks.tricubic import BSplineField, TricubicField

__all__ = ["BSplineField", "DESIGNS", "FIELD_UNITS_T", "LENGTH_UNITS_MM", "MU0", "DipoleMagnet",
           "GaussianField", "GridField", "TricubicField", "UniformField", "aperture_clearance",
           "box_uniformity", "default_field", "field_integral", "interpolation_error_in_gap",
           "load_text_map", "magnet_uniformity"]


def field_integral(field, x_mm: float = 0.0, y_mm: float = 0.0, z_range_mm=(0.0, 14500.0),
                   n: int = 14501) -> np.ndarray:
    """Integral of B along the straight line (x, y) = const over z_range: (3,) in T mm."""
    z = np.linspace(*z_range_mm, n)
    pts = np.stack([np.full(n, x_mm), np.full(n, y_mm), z], 1)
    return np.trapezoid(field(pts), z, axis=0)


def box_uniformity(field, z_center_mm: float = 5000.0, half_mm: float = 1500.0,
                   z_half_mm: float = 1500.0, n: int = 31, dz_mm: float = 250.0,
                   goal: float = 0.05) -> dict:
    """How uniform By is over the box |x|, |y| <= half_mm around the centre plane z_center_mm.

    ``field``: callable points (m, 3) mm -> B (m, 3) T (a map or a magnet's ``exact``). On
    planes z = z_center_mm + k dz_mm, |k dz_mm| <= z_half_mm, over an n x n grid (n odd):
    ``dev_centre`` (planes,) max |By(x, y, z) / B0 - 1| with B0 = By(0, 0, z_center_mm) (one
    normalisation for the whole box) and ``dev_own_axis`` (planes,) max |By / By(0, 0, z) - 1|.
    ``max_dev_centre_plane``: the first at z_center_mm. ``z_within_goal_mm``: (lo, hi) of the
    contiguous run of planes around the centre whose ``dev_centre`` <= goal (None if the centre
    plane itself misses it). ``b0_tesla``: B0.
    """
    if not (half_mm > 0 and n >= 3 and n % 2 and dz_mm > 0 and z_half_mm >= 0):
        raise ValueError(f"box_uniformity: need half_mm > 0, odd n >= 3, dz_mm > 0, "
                         f"z_half_mm >= 0; got {half_mm}, {n}, {dz_mm}, {z_half_mm}")
    k = int(np.floor(z_half_mm / dz_mm + 1e-9))
    zs = z_center_mm + dz_mm * np.arange(-k, k + 1)
    g = np.linspace(-half_mm, half_mm, n)
    xx, yy, zz = np.meshgrid(g, g, zs, indexing="ij")
    by = np.asarray(field(np.stack([xx.ravel(), yy.ravel(), zz.ravel()], 1)))[:, 1]
    by = by.reshape(n, n, zs.size)
    b0 = by[n // 2, n // 2, k]
    if b0 == 0:
        raise ValueError(f"box_uniformity: By = 0 on the axis at z = {z_center_mm} mm")
    dev_c = np.abs(by / b0 - 1).max(axis=(0, 1))
    dev_o = np.abs(by / by[n // 2, n // 2] - 1).max(axis=(0, 1))
    within = None
    if dev_c[k] <= goal:
        lo = hi = k
        while lo > 0 and dev_c[lo - 1] <= goal:
            lo -= 1
        while hi < zs.size - 1 and dev_c[hi + 1] <= goal:
            hi += 1
        within = (float(zs[lo]), float(zs[hi]))
    return {"z_mm": zs, "dev_centre": dev_c, "dev_own_axis": dev_o, "b0_tesla": float(b0),
            "max_dev_centre_plane": float(dev_c[k]), "deviation_centre_plane": by[:, :, k] / b0 - 1,
            "axis_mm": g, "half_mm": float(half_mm), "z_center_mm": float(z_center_mm),
            "goal": float(goal), "z_within_goal_mm": within}


def aperture_clearance(magnet: DipoleMagnet, field, n_tracks: int, rng: np.random.Generator,
                       spec=None, dz_mm: float = 100.0) -> dict:
    """How close the study's tracks come to the iron-yoke pole faces.

    Draws ``n_tracks`` initial states at z = spec.z_start_mm from ``spec`` (default
    :class:`~physml.tracks.data.DatasetSpec`, the study's acceptance: |x|, |y| <= 50 mm,
    |tx|, |ty| <= 0.3, p 0.5-100 GeV), propagates them with RK4 through ``field`` to planes
    every ``dz_mm`` over the poles' z range, and compares |y| with the face half-height there
    (:meth:`DipoleMagnet.gap_half_mm_at`). Tracks count from when they leave the grid or turn
    back (non-finite or |tx| > 1) no longer. Returns ``min_clearance_mm`` (min over tracks and
    planes of gap - |y|), ``z_min_clearance_mm``, ``max_abs_y_mm`` (n_planes,),
    ``gap_half_mm`` (n_planes,), ``z_mm`` (n_planes,), ``max_abs_x_mm`` (over all planes) and
    ``pole_half_width_mm``.
    """
    from physml.tracks.data import DatasetSpec, sample_initial_states
    from physml.tracks.propagate import propagate

    spec = spec or DatasetSpec()
    seg = magnet.pole_segments()
    z0 = spec.z_start_mm
    zs = np.arange(max(seg[0, 0], z0 + dz_mm), seg[-1, 1] + 0.5 * dz_mm, dz_mm)
    states, _ = sample_initial_states(n_tracks, rng, spec)
    cur, z_cur = states, z0
    alive = np.ones(n_tracks, bool)
    ys, xs = [], []
    for z in zs:
        cur = propagate(cur, z_cur, float(z), field)
        z_cur = float(z)
        with np.errstate(invalid="ignore"):
            alive &= np.all(np.isfinite(cur), axis=1) & (np.abs(cur[:, 2]) <= 1.0)
            alive &= np.all(np.abs(cur[:, :2]) < magnet.half_width_mm, axis=1)
        ys.append(np.abs(cur[alive, 1]).max() if alive.any() else 0.0)
        xs.append(np.abs(cur[alive, 0]).max() if alive.any() else 0.0)
    ys = np.array(ys)
    gap = magnet.gap_half_mm_at(zs)
    clear = gap - ys
    i = int(np.argmin(clear))
    return {"min_clearance_mm": float(clear[i]), "z_min_clearance_mm": float(zs[i]),
            "max_abs_y_mm": ys, "gap_half_mm": gap, "z_mm": zs,
            "max_abs_x_mm": float(np.max(xs)), "pole_half_width_mm": magnet.pole_width_x_mm / 2,
            "n_tracks": int(n_tracks)}


def magnet_uniformity(magnets: dict, half_mm: float = 1500.0, goal: float = 0.05,
                      z_half_mm: float = 1500.0, n: int = 31, n_lines: int = 7) -> dict:
    """Uniformity of each magnet's exact magpylib model: name -> {"box": :func:`box_uniformity`
    around its ``z_center_mm`` (``half_mm``, ``z_half_mm``, ``n``, ``goal``), "integral":
    :func:`~physml.tracks.ground_truth.integral_uniformity` over ``n_lines`` x ``n_lines``
    straight lines parallel to z (|x|, |y| <= half_mm, z over the map range)}."""
    from physml.tracks.ground_truth import integral_uniformity

    return {name: {"box": box_uniformity(m.exact, z_center_mm=m.z_center_mm, half_mm=half_mm,
                                         z_half_mm=z_half_mm, n=n, goal=goal),
                   "integral": integral_uniformity(m.exact, half_mm=half_mm, n=n_lines,
                                                   z_range_mm=(m.z_min_mm, m.z_max_mm))}
            for name, m in magnets.items()}


def interpolation_error_in_gap(magnet: DipoleMagnet, field, n: int, rng: np.random.Generator,
                               margin_mm: float = 200.0, half_mm: float = 2000.0,
                               z_range_mm=(1000.0, 9000.0)) -> dict:
    """Map vs the exact magpylib model at n random points of the gap: |x| < half_mm,
    z in z_range_mm, |y| < half_mm and (iron yoke) at least margin_mm from every pole block
    (its face and its ends). Near the pole faces' edges and steps the field varies over
    less than a grid cell, so the trilinear map is poor there; the margin keeps to where the
    study's tracks fly (:func:`aperture_clearance`). Returns max and mean |dB| (T) and the
    margin used."""
    z = rng.uniform(*z_range_mm, n)
    lim = np.full(n, half_mm)
    if magnet.design == "iron_yoke":  # at least margin_mm from every pole block (faces, ends)
        for z0, z1, g in magnet.pole_segments():
            near = (z > z0 - margin_mm) & (z < z1 + margin_mm)
            lim = np.where(near, np.minimum(lim, g - margin_mm), lim)
    pts = np.stack([rng.uniform(-half_mm, half_mm, n), rng.uniform(-1.0, 1.0, n) * lim, z], 1)
    d = np.linalg.norm(field(pts) - magnet.exact(pts), axis=1)
    return {"max_abs_dB_tesla": float(d.max()), "mean_abs_dB_tesla": float(d.mean()),
            "margin_mm": float(margin_mm)}
