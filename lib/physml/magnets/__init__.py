"""Magnets study: finger-state sensing with magnets on the fingers and a magnetometer on the hand.

Dipole physics model (JAX, float64), finite-magnet session simulator (magpylib), session JSON
I/O, three physics fits, synthetic augmentation, classifiers, placement separability.

Importing the study changes no global state: JAX's float64 mode is entered per call by the
public kernels and fits (`physml.precision.x64`), never flipped for the whole process.
"""

from .classify import (
    FingerClassifier,
    TemplateClassifier,
    exact_match,
    per_finger_accuracy,
)
from .field import (
    cylinder_field,
    cylinder_moment,
    dipole_field,
    dipole_field_per_source,
    implied_diameter,
)
from .fit import MODELS, FitResult, MagnetSpec, fit
from .hand import (
    ALL_BITS,
    FINGERS,
    STATE_CODES,
    Hand,
    bits_to_code,
    code_to_bits,
    default_hand,
    hand_magnets,
    sample_hand,
)
from .placement import (
    Placements,
    default_placement,
    optimise_placement,
    separability,
)
from .session import Session, SessionFormatError, load_session, write_session
from .simulate import SessionConfig, simulate_session, simulate_user_sessions
from .synthetic import estimate_noise_model, generate

__all__ = [
    "ALL_BITS", "FINGERS", "MODELS", "STATE_CODES", "FingerClassifier", "FitResult", "Hand",
    "MagnetSpec", "Placements", "Session", "SessionConfig", "SessionFormatError",
    "TemplateClassifier", "bits_to_code", "code_to_bits", "cylinder_field", "cylinder_moment",
    "default_hand", "default_placement", "dipole_field", "dipole_field_per_source",
    "estimate_noise_model", "exact_match", "fit", "generate", "hand_magnets", "implied_diameter",
    "load_session", "optimise_placement", "per_finger_accuracy", "sample_hand", "separability",
    "simulate_session", "simulate_user_sessions", "write_session",
]
