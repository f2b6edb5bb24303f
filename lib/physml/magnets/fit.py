"""Physics fits of the finger-state fields: free dipole, constrained dipole, hybrid.

All three predict the calibrated reading (µT) of a finger state as an offset (Earth's field plus
residual hard iron, µT) plus the summed point-dipole field of the five magnets at the sensor:

* ``free``: every finger has its own dipole position (m) and moment (A·m²) in each of its two
  states (60 parameters + offset) — the source study's model.
* ``constrained``: positions and directions come from the kinematic hand (joint positions,
  segment lengths, joint angles, mount distance, tilt are fitted inside bounds); each finger's
  moment magnitude is bounded to the physical range of the declared magnet size and grade.
* ``hybrid``: ``constrained`` plus a learned residual, a ridge-penalised linear map from the
  finger bits and their pairwise products to a 3-vector correction (µT).

The loss is the weighted sum of squares of the per-state mean residuals, weights = fraction of
samples in each state (µT²): the within-state noise floor is excluded, so the loss can go to 0.
Given the gyroscope's rotations, Earth's field is first fitted from the within-state orientation
changes (physml.magnets.orientation) and the readings moved to the session's mean orientation, so
the hand's wobble no longer biases the state means; without them the offset is a constant, as in
the source. Optimised with L-BFGS-B (scipy) on exact JAX gradients (float64, jit); the loss is
recorded per iteration with its wall time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from physml.precision import x64

from .field import BR_RANGE_T, cylinder_moment, dipole_field_paired_jit, implied_diameter
from .hand import ALL_BITS, Hand, bits_to_index, default_hand, magnet_pose_jit
from .orientation import EarthFit, fit_earth

MODELS = ("free", "constrained", "hybrid")


@dataclass(frozen=True)
class MagnetSpec:
    """Declared magnet: diameter and height (m), grade, dimensional tolerance (m)."""

    diameter_m: float = 0.006
    height_m: float = 0.003
    grade: str = "N48"
    tolerance_m: float = 0.0001

    def moment_range(self, grades=None):
        """(low, high) physical moment magnitude, A·m², over the grade(s) and tolerance."""
        gs = [self.grade] if grades is None else grades
        for g in gs:
            if g not in BR_RANGE_T:
                raise ValueError(f"unknown magnet grade {g!r}; known: {sorted(BR_RANGE_T)}")
        br_lo = min(BR_RANGE_T[g][0] for g in gs)
        br_hi = max(BR_RANGE_T[g][1] for g in gs)
        t = self.tolerance_m
        lo = cylinder_moment(self.diameter_m - t, self.height_m - t, br_lo)
        hi = cylinder_moment(self.diameter_m + t, self.height_m + t, br_hi)
        return float(lo), float(hi)

    @property
    def plausible_range(self):
        """Moment range of this size over every NdFeB grade N35–N52, A·m²."""
        return self.moment_range(list(BR_RANGE_T))


def state_means(readings_uT, bits):
    """Per-state mean readings padded to all 32 states.

    Args:
        readings_uT: (n, 3) calibrated readings, µT.
        bits: (n, 5) finger states.

    Returns:
        means (32, 3) µT (0 for absent states), weights (32,) sample fractions.
    """
    r = np.asarray(readings_uT, float)
    idx = bits_to_index(bits)
    if len(r) != len(idx) or r.ndim != 2 or r.shape[1] != 3:
        raise ValueError(f"readings must be (n, 3) matching bits (n, 5); got {r.shape}, "
                         f"{np.shape(bits)}")
    if len(r) == 0:
        raise ValueError("no labelled readings to fit")
    counts = np.bincount(idx, minlength=32).astype(float)
    sums = np.zeros((32, 3))
    np.add.at(sums, idx, r)
    means = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], 0.0)
    return means, counts / counts.sum()


# ---------------------------------------------------------------- forward models (JAX)
# NumPy constants: they become float64 inside the x64 context every public entry point opens
_BITS = np.asarray(ALL_BITS, dtype=np.float64)
_ORIGIN = np.zeros(3)


def _pair_features(bits):
    i, j = np.triu_indices(5, 1)
    return jnp.concatenate([bits, bits[:, i] * bits[:, j]], axis=1)  # (S, 15)


@jax.jit
def predict_free(p, bits):
    """Free-dipole prediction (S, 3) µT for bits (S, 5) (float 0/1)."""
    b = bits[..., None]  # (S, 5, 1)
    pos = p["pos"][:, 0] * (1 - b) + p["pos"][:, 1] * b  # (S, 5, 3)
    mom = p["mom"][:, 0] * (1 - b) + p["mom"][:, 1] * b
    return 1e6 * dipole_field_paired_jit(_ORIGIN, pos, mom) + p["offset"]


def _kin_pose(p, fixed, bits):
    b = bits[..., None]
    ang = p["extended"] * (1 - b) + p["flexed"] * b  # (S, 5, 2)
    return magnet_pose_jit(p["base"], fixed["direction"], fixed["flex_axis"], p["lengths"], ang,
                       p["mount"], fixed["surface"], p["tilt"])


@jax.jit
def predict_constrained(p, fixed, bits):
    """Kinematically constrained dipole prediction (S, 3) µT."""
    pos, ax = _kin_pose(p, fixed, bits)
    mom = ax * p["moment"][:, None]
    return 1e6 * dipole_field_paired_jit(_ORIGIN, pos, mom) + p["offset"]


@jax.jit
def predict_hybrid(p, fixed, bits):
    """Constrained prediction plus the learned residual (S, 3) µT."""
    return predict_constrained(p, fixed, bits) + _pair_features(bits) @ p["residual"]


# ---------------------------------------------------------------- results
@dataclass
class FitResult:
    """A fitted model. params: dict of NumPy arrays (SI / µT); history: per-iteration loss."""

    model: str
    params: dict
    fixed: dict
    history: dict
    initial_loss: float
    final_loss: float
    seconds: float
    compile_seconds: float
    spec: MagnetSpec = field(default_factory=MagnetSpec)
    trained_states: np.ndarray | None = None
    earth: EarthFit | None = None
    earth_seconds: float = 0.0

    @property
    def error_reduction(self):
        """Fraction of the initial loss removed by the fit."""
        return 1.0 - self.final_loss / self.initial_loss

    @property
    def total_seconds(self):
        """Wall time of the whole fit after compilation: Earth-field step plus L-BFGS, s."""
        return self.seconds + self.earth_seconds

    def earth_uT(self):
        """Earth's field (3,) µT in the sensor frame at the mean orientation: the fitted vector
        when the fit had the gyroscope's rotations, else the constant offset (which then also
        holds the hard-iron residual)."""
        if self.earth is not None:
            return self.earth.earth_mean_frame_uT
        return np.asarray(self.params["offset"], float)

    @x64
    def predict(self, bits):
        """Predicted calibrated reading (n, 3) µT for states bits (n, 5)."""
        b = jnp.asarray(np.atleast_2d(bits), dtype=jnp.float64)
        p = {k: jnp.asarray(v) for k, v in self.params.items()}
        fx = {k: jnp.asarray(v) for k, v in self.fixed.items()}
        if self.model == "free":
            return np.asarray(predict_free(p, b))
        if self.model == "constrained":
            return np.asarray(predict_constrained(p, fx, b))
        return np.asarray(predict_hybrid(p, fx, b))

    def templates(self):
        """Predicted reading of all 32 states (32, 3) µT, index order of STATE_CODES."""
        return self.predict(ALL_BITS)

    @property
    def residual_rms_uT(self):
        """Weighted RMS of the fitted state means' residuals, µT: sqrt(final loss)."""
        return float(np.sqrt(self.final_loss))

    @x64
    def magnet_positions(self, bits):
        """Fitted dipole positions (n, 5, 3) m relative to the sensor for states bits (n, 5)."""
        b = np.atleast_2d(np.asarray(bits, float))
        if self.model == "free":
            pos = np.asarray(self.params["pos"], float)  # (5, 2, 3)
            return np.where(b[..., None] > 0, pos[None, :, 1], pos[None, :, 0])
        p = {k: jnp.asarray(v) for k, v in self.params.items()}
        fx = {k: jnp.asarray(v) for k, v in self.fixed.items()}
        pos, _ = _kin_pose(p, fx, jnp.asarray(b))
        return np.asarray(pos)

    def moments(self):
        """Fitted moment magnitudes, A·m²: (5, 2) per finger and state (free) or (5,)."""
        if self.model == "free":
            return np.linalg.norm(self.params["mom"], axis=-1)
        return np.abs(self.params["moment"])

    def magnet_report(self, polarization_T=None):
        """Per fitted moment: implied diameter (m) of the declared shape and plausibility.

        Returns:
            list of dicts {finger, state, moment_Am2, implied_diameter_mm, plausible}.
        """
        from .hand import FINGERS

        spec = self.spec
        br = polarization_T or float(np.mean(BR_RANGE_T[spec.grade]))
        lo, hi = spec.plausible_range
        m = self.moments()
        rows = []
        for f, name in enumerate(FINGERS):
            for s, st in ([(0, "extended"), (1, "flexed")] if m.ndim == 2 else [(None, "both")]):
                mm = float(m[f, s] if s is not None else m[f])
                rows.append({"finger": name, "state": st, "moment_Am2": mm,
                             "implied_diameter_mm": 1e3 * float(
                                 implied_diameter(mm, br, spec.height_m / spec.diameter_m)),
                             "plausible": bool(lo <= mm <= hi)})
        return rows


# ---------------------------------------------------------------- initial guesses & bounds
def _fixed_from(hand):
    return {"direction": np.asarray(hand.direction), "flex_axis": np.asarray(hand.flex_axis),
            "surface": np.asarray(hand.surface_m)}


def initial_params(model, hand, spec, means=None, weights=None):
    """Initial parameters from a nominal hand; the offset is set so the weighted mean matches."""
    m_nom = cylinder_moment(spec.diameter_m, spec.height_m, np.mean(BR_RANGE_T[spec.grade]))
    if model == "free":
        from .hand import hand_magnets

        pos0, ax0 = hand_magnets(hand, np.zeros((1, 5), int))
        pos1, ax1 = hand_magnets(hand, np.ones((1, 5), int))
        p = {"pos": np.stack([pos0[0], pos1[0]], 1),
             "mom": m_nom * np.stack([ax0[0], ax1[0]], 1), "offset": np.zeros(3)}
    else:
        p = {"base": np.asarray(hand.base_m, float), "lengths": np.asarray(hand.lengths_m, float),
             "flexed": np.asarray(hand.flexed_rad, float),
             "extended": np.asarray(hand.extended_rad, float),
             "mount": np.asarray(hand.mount_m, float), "tilt": np.asarray(hand.tilt_rad, float),
             "moment": np.full(5, m_nom), "offset": np.zeros(3)}
        if model == "hybrid":
            p["residual"] = np.zeros((15, 3))
    if means is not None:
        res = FitResult(model, p, _fixed_from(hand), {}, 0, 0, 0, 0, spec)
        pred = res.predict(ALL_BITS)
        p["offset"] = np.sum(weights[:, None] * (means - pred), 0)
    return p


_SCALE = {"pos": 0.01, "mom": 0.01, "offset": 10.0, "base": 0.005, "lengths": 0.005,
          "flexed": 0.2, "extended": 0.1, "mount": 0.005, "tilt": 0.1, "moment": 0.01,
          "residual": 1.0}


def _bounds(model, p0, spec, hand):
    inf = np.inf
    lo = {k: np.full(np.shape(v), -inf) for k, v in p0.items()}
    hi = {k: np.full(np.shape(v), inf) for k, v in p0.items()}
    if model != "free":
        mlo, mhi = spec.moment_range()
        lo["moment"][:], hi["moment"][:] = mlo, mhi
        lo["base"], hi["base"] = hand.base_m - 0.015, hand.base_m + 0.015
        lo["lengths"], hi["lengths"] = 0.7 * hand.lengths_m, 1.3 * hand.lengths_m
        lo["flexed"], hi["flexed"] = hand.flexed_rad - 0.7, hand.flexed_rad + 0.7
        lo["extended"], hi["extended"] = hand.extended_rad - 0.35, hand.extended_rad + 0.5
        lo["mount"], hi["mount"] = 0.5 * hand.mount_m, 1.5 * hand.mount_m
        lo["tilt"], hi["tilt"] = hand.tilt_rad - 0.5, hand.tilt_rad + 0.5
    return lo, hi


# ---------------------------------------------------------------- the optimiser
_OBJECTIVES = {}


def _ravel(p, keys):
    """Concatenate the arrays of dict p in `keys` order into one NumPy vector."""
    return np.concatenate([np.ravel(np.asarray(p[k], float)) for k in keys])


class _Unravel:
    """Inverse of `_ravel` for fixed keys and shapes; works on NumPy and traced JAX vectors."""

    def __init__(self, keys, shapes):
        self.keys, self.shapes = keys, shapes
        self.sizes = [int(np.prod(sh)) for sh in shapes]
        self.key = tuple(zip(keys, shapes, strict=True))

    def __call__(self, flat):
        out, i = {}, 0
        for k, sh, n in zip(self.keys, self.shapes, self.sizes, strict=True):
            out[k] = flat[i:i + n].reshape(sh)
            i += n
        return out


def _objective(model, treedef_key, unravel):
    """jit-compiled (value, grad) of the scaled objective; one compilation per model/structure.

    objective(z, means, weights, fixed, prior_params_flat, prior_weight, ridge) with
    p = unravel(z·scale + x0); returns (total, data loss) and the gradient of the total.
    """
    key = (model, treedef_key)
    if key in _OBJECTIVES:
        return _OBJECTIVES[key]

    def objective(z, means, weights, fx, p_prior, prior_w, ridge):
        flat = z * fx["_scale"] + fx["_x0"]
        p = unravel(flat)
        pred = _predict(model, p, fx)
        loss = jnp.sum(weights * jnp.sum((pred - means) ** 2, axis=-1))
        total = loss + prior_w * jnp.sum(((flat - p_prior) / fx["_scale"]) ** 2)
        if model == "hybrid":
            total = total + ridge * jnp.sum(p["residual"] ** 2)
        return total, loss

    vg = jax.jit(jax.value_and_grad(objective, has_aux=True))
    _OBJECTIVES[key] = vg
    return vg


def _earth_step(readings_uT, bits, rotations):
    """(readings at the mean orientation, EarthFit, seconds) — or the readings unchanged."""
    if rotations is None:
        return readings_uT, None, 0.0
    t0 = time.perf_counter()
    earth = fit_earth(readings_uT, rotations, bits)
    return earth.at_mean_orientation(readings_uT, rotations), earth, time.perf_counter() - t0


def _targets(readings_uT, bits, hand, spec, rotations):
    """What every fit starts from: the hand and spec (nominal when None), Earth's field step
    (when rotations are given), the per-state means (32, 3) µT and weights (32,).

    Returns:
        (hand, spec, means, weights, EarthFit or None, Earth-step seconds).
    """
    readings_uT, earth, earth_s = _earth_step(readings_uT, bits, rotations)
    means, weights = state_means(readings_uT, bits)
    return hand or default_hand(), spec or MagnetSpec(), means, weights, earth, earth_s


def _predict(model, p, fixed):
    """Templates (32, 3) µT of `model` at params p (traceable): the one switch over models
    that every objective (L-BFGS, least squares, differential evolution) goes through."""
    if model == "free":
        return predict_free(p, _BITS)
    if model == "constrained":
        return predict_constrained(p, fixed, _BITS)
    return predict_hybrid(p, fixed, _BITS)


@dataclass
class _Problem:
    """A fit set up in scaled coordinates z: params = unravel(z·scale + x0); z = 0 is the start.

    means (32, 3) µT and weights (32,) are the targets; lo/hi the bounds on z; fixed the JAX
    arrays the forward model needs (the hand's fixed geometry, scale, x0).
    """

    model: str
    keys: tuple
    unravel: _Unravel
    x0: np.ndarray
    scale: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    means: np.ndarray
    weights: np.ndarray
    fixed: dict
    hand: Hand
    spec: MagnetSpec

    def params(self, z):
        """Parameter dict (NumPy) at scaled coordinates z."""
        return self.unravel(np.asarray(z) * self.scale + self.x0)


def _start(model, hand, spec, means, weights, init):
    """Starting parameters: `init` when given (residual added/dropped to suit the model),
    else the nominal hand with the best offset."""
    p0 = init if init is not None else initial_params(model, hand, spec, means, weights)
    p0 = {k: np.asarray(v, float) for k, v in p0.items()}
    if model == "hybrid" and "residual" not in p0:
        p0["residual"] = np.zeros((15, 3))
    if model != "hybrid":
        p0.pop("residual", None)
    return p0


def _freeze(lo, hi, p0, fit_only, model):
    """Pin every parameter group not named in fit_only to its start (in place)."""
    if fit_only is None:
        return
    unknown = set(fit_only) - set(p0)
    if unknown:
        raise ValueError(f"fit_only: unknown parameter groups {sorted(unknown)}; "
                         f"{model} has {sorted(p0)}")
    for k in p0:
        if k not in fit_only:
            lo[k], hi[k] = p0[k].copy(), p0[k].copy()


def _problem(model, means, weights, hand, spec, init=None, fit_only=None):
    """Set up the scaled, bounded problem of fitting `model` to state means."""
    p0 = _start(model, hand, spec, means, weights, init)
    keys = tuple(p0)
    unravel = _Unravel(keys, tuple(np.shape(p0[k]) for k in keys))
    x0 = _ravel(p0, keys)
    scale = _ravel({k: np.full(np.shape(v), _SCALE[k]) for k, v in p0.items()}, keys)
    lo, hi = _bounds(model, p0, spec, hand)
    _freeze(lo, hi, p0, fit_only, model)
    fixed = {k: jnp.asarray(v) for k, v in _fixed_from(hand).items()}
    fixed["_scale"], fixed["_x0"] = jnp.asarray(scale), jnp.asarray(x0)
    return _Problem(model, keys, unravel, x0, scale, (_ravel(lo, keys) - x0) / scale,
                    (_ravel(hi, keys) - x0) / scale, means, weights, fixed, hand, spec)


def _lbfgs(problem, maxiter, tol, prior_weight, ridge):
    """Minimise the problem's objective with L-BFGS-B on exact JAX gradients.

    Returns:
        (z, history {"iteration", "loss" (µT², data term), "time_s"}, initial data loss,
        seconds after compilation, compile seconds).
    """
    vg = _objective(problem.model, problem.unravel.key, problem.unravel)
    args = (jnp.asarray(problem.means), jnp.asarray(problem.weights), problem.fixed, problem.x0,
            float(prior_weight), float(ridge))
    t0 = time.perf_counter()
    z0 = np.zeros_like(problem.x0)
    (_, loss0), _ = vg(jnp.asarray(z0), *args)
    jax.block_until_ready(loss0)
    compile_s = time.perf_counter() - t0
    hist = {"iteration": [0], "loss": [float(loss0)], "time_s": [0.0]}
    last = {"loss": float(loss0)}

    def fun(z):
        (tot, loss), g = vg(jnp.asarray(z), *args)
        last["loss"] = float(loss)
        return float(tot), np.asarray(g, dtype=float)

    t1 = time.perf_counter()

    def callback(z):
        hist["iteration"].append(len(hist["iteration"]))
        hist["loss"].append(last["loss"])
        hist["time_s"].append(time.perf_counter() - t1)

    # L-BFGS-B's small BLAS calls only lose time to thread hand-offs next to JAX's own pool
    with threadpool_limits(1, user_api="blas"):
        res = minimize(fun, z0, jac=True, method="L-BFGS-B",
                       bounds=list(zip(problem.lo, problem.hi, strict=True)), callback=callback,
                       options={"maxiter": maxiter, "ftol": tol, "gtol": 1e-10, "maxcor": 20})
    return np.asarray(res.x), hist, float(loss0), time.perf_counter() - t1, compile_s


def _result(problem, z, hist, loss0, seconds, compile_s, earth, earth_s):
    """FitResult at z, with the final data loss evaluated on the fitted templates."""
    out = FitResult(problem.model, problem.params(z), _fixed_from(problem.hand), hist, loss0,
                    float("nan"), seconds, compile_s, problem.spec,
                    trained_states=np.flatnonzero(problem.weights > 0), earth=earth,
                    earth_seconds=earth_s)
    out.final_loss = float(np.sum(problem.weights * np.sum(
        (out.templates() - problem.means) ** 2, -1)))
    return out


@x64
def fit(model, readings_uT, bits, hand=None, spec=None, maxiter=300, init=None, ridge=1.0,
        prior_weight=0.0, tol=1e-12, fit_only=None, rotations=None):
    """Fit one of the three models to labelled readings.

    Args:
        model: 'free', 'constrained' or 'hybrid'.
        readings_uT: (n, 3) calibrated readings, µT.
        bits: (n, 5) finger states (1 = flexed) of those readings.
        hand: nominal Hand used for the initial guess and the kinematic bounds.
        spec: declared MagnetSpec.
        maxiter: L-BFGS iterations (>= 1).
        init: optional params dict to start from (e.g. a population fit); else the nominal hand.
        ridge: penalty (µT² per µT² of residual weight) on the hybrid residual.
        prior_weight: > 0 adds prior_weight·Σ((p - init)/scale)² (regularised refit from init).
        fit_only: optional names of the parameter groups to fit (e.g. ("moment", "offset"));
            the others stay at their initial values.
        rotations: optional (n, 3, 3) sensor → reference rotations of the readings
            (`orientation.gyro_orientation`): Earth's field is fitted first and the readings
            moved to the mean orientation (its time is `earth_seconds`).

    Returns:
        FitResult with history {"iteration", "loss" (µT², data term), "time_s"}.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if maxiter < 1:
        raise ValueError(f"maxiter must be >= 1, got {maxiter}")
    if prior_weight < 0 or ridge < 0:
        raise ValueError(f"prior_weight and ridge must be >= 0, got {prior_weight}, {ridge}")
    hand, spec, means, weights, earth, earth_s = _targets(readings_uT, bits, hand, spec,
                                                          rotations)
    problem = _problem(model, means, weights, hand, spec, init, fit_only)
    z, hist, loss0, seconds, compile_s = _lbfgs(problem, maxiter, tol, prior_weight, ridge)
    return _result(problem, z, hist, loss0, seconds, compile_s, earth, earth_s)


def params_to_hand(result, hand):
    """The Hand implied by a constrained/hybrid fit (moment mapped onto the magnet diameter)."""
    if result.model == "free":
        raise ValueError("a free-dipole fit has no kinematic hand")
    p = result.params
    d = implied_diameter(p["moment"], hand.polarization_T, hand.height_m / hand.diameter_m)
    return Hand(base_m=p["base"], direction=hand.direction, flex_axis=hand.flex_axis,
                lengths_m=p["lengths"], flexed_rad=p["flexed"], extended_rad=p["extended"],
                mount_m=p["mount"], surface_m=hand.surface_m, tilt_rad=p["tilt"],
                diameter_m=d, height_m=d * hand.height_m / hand.diameter_m,
                polarization_T=hand.polarization_T, sensor_m=hand.sensor_m)
