"""Track extrapolation through a dipole magnet: field maps, RK4 ground truth, neural surrogates.

The JAX kernels of this study run in float64 inside ``jax.enable_x64`` contexts
(:func:`physml.tracks.eom.x64`); importing the package changes no global JAX setting.
"""

from physml.tracks.eom import KAPPA, derivatives
from physml.tracks.field import (
    BSplineField,
    DipoleMagnet,
    GaussianField,
    GridField,
    TricubicField,
    UniformField,
    default_field,
    field_integral,
    load_text_map,
)
from physml.tracks.propagate import (
    propagate,
    propagate_scipy,
    propagate_to,
    rk4_schedule,
    straight_line,
    transport_jacobian,
)

__all__ = [
    "KAPPA", "BSplineField", "DipoleMagnet", "GaussianField", "GridField", "TricubicField",
    "UniformField", "default_field",
    "derivatives", "field_integral", "load_text_map", "propagate", "propagate_scipy",
    "propagate_to", "rk4_schedule", "straight_line", "transport_jacobian",
]
