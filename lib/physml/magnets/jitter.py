"""Finger jitter seen through the physics model: a per-state covariance classifier.

A finger never returns to exactly the same pose: each hold has its own small joint-angle offset
and every sample its tremor. Through the field model a joint-angle change δθ moves the reading
by J_s δθ, with J_s (3, 10) the Jacobian of the state's field with respect to its ten joint
angles (JAX autodiff of the fitted dipole model). So the readings of state s scatter as

    x ~ N(t_s, Σ_s),   Σ_s = σ_θ² J_s J_sᵀ + σ_n² I,

elongated along the directions that state's pose can move the field: a flexed finger near the
sensor spreads its readings far more than an extended one. σ_θ (rad) and σ_n (µT) are fitted
to the training readings' residuals from their templates (`fit_jitter`); the classifier picks
the state of highest Gaussian likelihood (`JitterClassifier`), not the nearest template.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import nnls

from physml.precision import x64

from .classify import _check_x
from .field import dipole_field_paired_jit
from .hand import ALL_BITS, bits_to_index, magnet_pose_jit


@jax.jit
def _state_jacobians(p, fixed, bits):
    """(S, 3, 10) d(field, µT)/d(joint angles, rad) of states bits (S, 5) (float)."""
    def field(ang, b):  # one state: ang (5, 2)
        pos, ax = magnet_pose_jit(p["base"], fixed["direction"], fixed["flex_axis"],
                                  p["lengths"], ang, p["mount"], fixed["surface"], p["tilt"])
        return 1e6 * dipole_field_paired_jit(jnp.zeros(3), pos, ax * p["moment"][:, None])

    b = bits[..., None]
    ang = p["extended"] * (1 - b) + p["flexed"] * b  # (S, 5, 2)
    jac = jax.vmap(jax.jacfwd(field), in_axes=(0, 0))(ang, bits)  # (S, 3, 5, 2)
    return jac.reshape(jac.shape[0], 3, 10)


@x64
def angle_jacobians(result):
    """Jacobians (32, 3, 10) µT/rad of every state's reading with respect to its joint angles
    (thumb→pinky × base/second joint) for a constrained or hybrid `FitResult`."""
    if result.model == "free":
        raise ValueError("angle_jacobians needs a constrained or hybrid fit (the free dipole "
                         "has no joints)")
    p = {k: jnp.asarray(v) for k, v in result.params.items()}
    fx = {k: jnp.asarray(v) for k, v in result.fixed.items()}
    return np.asarray(_state_jacobians(p, fx, jnp.asarray(ALL_BITS, dtype=jnp.float64)))


def fit_jitter(readings_uT, bits, templates_uT, jacobians):
    """σ_θ (rad) and σ_n (µT) of Σ_s = σ_θ² J_s J_sᵀ + σ_n² I from labelled readings.

    Moment matching: the outer products of the residuals r = x − t_s, averaged, against the
    two basis matrices J_s J_sᵀ and I (non-negative least squares over the 9 entries of each
    residual's outer product).

    Args:
        readings_uT: (n, 3). bits: (n, 5). templates_uT: (32, 3). jacobians: (32, 3, 10).

    Returns:
        dict {"angle_sd_deg", "noise_uT"}.
    """
    x = _check_x(readings_uT)
    idx = bits_to_index(bits)
    if len(idx) != len(x):
        raise ValueError(f"bits must be ({len(x)}, 5), got {np.shape(bits)}")
    t = np.asarray(templates_uT, float)
    jac = np.asarray(jacobians, float)
    if t.shape != (32, 3) or jac.shape != (32, 3, 10):
        raise ValueError(f"templates (32, 3) and jacobians (32, 3, 10) expected, got {t.shape}, "
                         f"{jac.shape}")
    r = x - t[idx]
    outer = (r[:, :, None] * r[:, None, :]).reshape(len(r), 9)
    jj = np.einsum("nik,njk->nij", jac[idx], jac[idx]).reshape(len(r), 9)
    eye = np.broadcast_to(np.eye(3).reshape(1, 9), (len(r), 9))
    design = np.stack([jj.ravel(), eye.ravel()], axis=1)
    coef, _ = nnls(design, outer.ravel())
    return {"angle_sd_deg": float(np.rad2deg(np.sqrt(coef[0]))),
            "noise_uT": float(np.sqrt(coef[1]))}


class JitterClassifier:
    """Maximum-likelihood state under x ~ N(t_s, σ_θ² J_s J_sᵀ + σ_n² I) (see module doc).

    Args:
        templates_uT: (32, 3) state templates, µT. jacobians: (32, 3, 10) µT/rad.
        angle_sd_deg: σ_θ, degrees (>= 0). noise_uT: σ_n, µT (> 0).
    """

    def __init__(self, templates_uT, jacobians, angle_sd_deg, noise_uT):
        t = np.asarray(templates_uT, float)
        jac = np.asarray(jacobians, float)
        if t.shape != (32, 3) or jac.shape != (32, 3, 10):
            raise ValueError(f"templates (32, 3) and jacobians (32, 3, 10) expected, got "
                             f"{t.shape}, {jac.shape}")
        if not (angle_sd_deg >= 0 and noise_uT > 0):
            raise ValueError(f"angle_sd_deg must be >= 0 and noise_uT > 0, got {angle_sd_deg}, "
                             f"{noise_uT}")
        s2 = np.deg2rad(angle_sd_deg) ** 2
        cov = s2 * np.einsum("sik,sjk->sij", jac, jac) + noise_uT ** 2 * np.eye(3)
        self.templates = t
        self.precision = np.linalg.inv(cov)  # (32, 3, 3)
        self.logdet = np.linalg.slogdet(cov)[1]  # (32,)

    def log_likelihood(self, readings_uT):
        """(n, 32) Gaussian log-likelihood of each reading under each state (up to a constant)."""
        x = _check_x(readings_uT)
        d = x[:, None, :] - self.templates[None]  # (n, 32, 3)
        m = np.einsum("nsi,sij,nsj->ns", d, self.precision, d)
        return -0.5 * (m + self.logdet[None])

    def predict_bits(self, readings_uT):
        """Finger states (n, 5) of the most likely state."""
        return ALL_BITS[np.argmax(self.log_likelihood(readings_uT), axis=1)]
