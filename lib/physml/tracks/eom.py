"""Equations of motion of a charged track in a static magnetic field, written once.

State at plane z: ``(x, y, tx, ty, q/p)`` — x, y in mm, slopes tx = dx/dz, ty = dy/dz, q/p in
1/GeV. With N = sqrt(1 + tx^2 + ty^2) and B in tesla (LHCb's Runge-Kutta extrapolator)::

    dx/dz = tx      dtx/dz = KAPPA (q/p) N [ ty (tx Bx + Bz) - (1 + tx^2) By ]
    dy/dz = ty      dty/dz = KAPPA (q/p) N [ -tx (ty By + Bz) + (1 + ty^2) Bx ]

``KAPPA`` is the speed of light in GeV / (T mm); q/p must be in 1/GeV (the known trap is q/p in
1/MeV, which makes tracks 1000x too stiff). :func:`derivatives` works on any array backend
(NumPy, JAX, torch) and on Python floats; :data:`derivatives_compiled` is the same function
compiled by numba for the compiled kernels (:mod:`physml.tracks.rk4_compiled`).

This module imports nothing else of the study (but the numba cache helper
:mod:`physml.tracks.jitcache`), so every integrator and loss imports it without a circle.

>>> dtx, dty = derivatives(0.0, 0.0, 0.1, 0.0, 1.0, 0.0)  # 10 GeV, q = +1, on axis in By = 1 T
>>> round(dtx / KAPPA, 12), dty
(-0.1, 0.0)
"""

from __future__ import annotations

import numba

from physml.precision import x64  # noqa: F401  (re-exported: the study's JAX kernels use it)
from physml.tracks.jitcache import stable

KAPPA = 2.99792458e-4  # GeV / (T mm): c in these units; the one place this constant is written


def derivatives(tx, ty, qop, bx, by, bz):
    """(dtx/dz, dty/dz) in 1/mm for slopes tx, ty, q/p (1/GeV) and B (T); any array backend."""
    n = (1.0 + tx * tx + ty * ty) ** 0.5
    c = KAPPA * qop * n
    dtx = c * (ty * (tx * bx + bz) - (1.0 + tx * tx) * by)
    dty = c * (-tx * (ty * by + bz) + (1.0 + ty * ty) * bx)
    return dtx, dty


derivatives_compiled = stable(numba.njit(inline="always", fastmath=True, cache=True)(derivatives),
                              "eom.derivatives_compiled")
"""numba-compiled :func:`derivatives` on scalars (the same source, compiled)."""
