"""Track extrapolation through a dipole magnet: field maps, RK4 ground truth, neural surrogates."""

import jax

jax.config.update("jax_enable_x64", True)

from physml.tracks.field import (  # noqa: E402
    DipoleMagnet,
    GaussianField,
    GridField,
    UniformField,
    default_field,
    field_integral,
    load_text_map,
)
from physml.tracks.propagate import (  # noqa: E402
    KAPPA,
    derivatives,
    propagate,
    propagate_scipy,
    propagate_to,
    rk4_schedule,
    straight_line,
    transport_jacobian,
)

__all__ = [
    "KAPPA", "DipoleMagnet", "GaussianField", "GridField", "UniformField", "default_field",
    "derivatives", "field_integral", "load_text_map", "propagate", "propagate_scipy",
    "propagate_to", "rk4_schedule", "straight_line", "transport_jacobian",
]
