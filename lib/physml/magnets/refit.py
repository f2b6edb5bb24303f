"""Dipole fits by nonlinear least squares (scipy's trust-region reflective on exact JAX Jacobians)
and by differential evolution over the physical box — both on the same residuals.

The residual vector of a fit to per-state mean readings (µT) is

    r = [ sqrt(w_s) · (pred_s − mean_s)  for every state s with weight w_s > 0,
          sqrt(prior_weight) · (p − p_start) / scale  for every parameter but the offset ]

so ``0.5·|r|²`` is half the weighted loss of `physml.magnets.fit` plus a Tikhonov prior that
pulls the parameters towards the start. The prior is what lets a handful of calibration states
re-fit a 60-parameter geometry: the data move the parameters they constrain, the prior holds
the rest at the previous fit (`refit_geometry`).

The start is physical (the nominal hand, or a previous fit) and the box is physical: joint
positions ±15 mm, segment lengths ±30%, joint angles, magnet mount and tilt within anatomical
ranges, each moment within the declared magnet's grade and size tolerance (`fit._bounds`); the
offset (Earth's field plus hard-iron residual) within ±`offset_box_uT` of its best start value.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import differential_evolution, least_squares
from threadpoolctl import threadpool_limits

from physml.precision import x64

from .fit import (
    _BITS,
    FitResult,
    _fixed_from,
    _predict,
    _problem,
    _result,
    _targets,
)

_RESIDUALS = {}


def _residual_fns(model, unravel):
    """jit-compiled residual r(z, ...) and its Jacobian, one compilation per model/structure."""
    key = (model, unravel.key)
    if key in _RESIDUALS:
        return _RESIDUALS[key]

    def residual(z, means, sqrt_w, fx, sqrt_prior):
        pred = _predict(model, unravel(z * fx["_scale"] + fx["_x0"]), fx)
        data = (sqrt_w[:, None] * (pred - means)).ravel()
        return jnp.concatenate([data, sqrt_prior * fx["_prior_mask"] * z])

    fns = (jax.jit(residual), jax.jit(jax.jacfwd(residual)))
    _RESIDUALS[key] = fns
    return fns


def physical_box(problem, offset_box_uT):
    """The physical box of a fit problem (`fit._problem`): lower/upper bounds (n,) on its
    scaled coordinates z — the kinematic and magnet-grade bounds of `fit._bounds` — with the
    offset boxed to ±offset_box_uT (µT) around its start. Raises ValueError naming the model
    if any other parameter is unbounded (the free dipole, the hybrid's residual)."""
    lo, hi = problem.lo.copy(), problem.hi.copy()
    i = 0
    for k, n in zip(problem.unravel.keys, problem.unravel.sizes, strict=True):
        if k == "offset":
            half = offset_box_uT / problem.scale[i:i + n]
            lo[i:i + n], hi[i:i + n] = np.maximum(lo[i:i + n], -half), np.minimum(hi[i:i + n],
                                                                                  half)
        i += n
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ValueError(f"{problem.model}: parameters without a physical box; differential "
                         f"evolution needs finite bounds (use the constrained model)")
    return lo, hi


def physical_box_summary(offset_box_uT=30.0, hand=None, spec=None):
    """The physical box of the constrained model around `hand` (nominal when None), read off
    the bounds a fit actually gets (`physical_box`), in physical units.

    Returns:
        dict: "joint_mm" (half-width of the joint positions, mm), "length_frac" (segment lengths
        ± this fraction), "moment_Am2" (low, high) A·m², "offset_uT" (half-width, µT), and
        "text", a phrase listing them.
    """
    from .fit import MagnetSpec
    from .hand import default_hand

    hand, spec = hand or default_hand(), spec or MagnetSpec()
    problem = _problem("constrained", np.zeros((32, 3)), np.full(32, 1 / 32), hand, spec)
    lo, hi = (problem.params(z) for z in physical_box(problem, offset_box_uT))
    out = {"joint_mm": 1e3 * float(np.max(hi["base"] - np.asarray(hand.base_m))),
           "length_frac": float(np.max(hi["lengths"] / np.asarray(hand.lengths_m) - 1)),
           "moment_Am2": (float(np.min(lo["moment"])), float(np.max(hi["moment"]))),
           "offset_uT": float(np.max(hi["offset"] - lo["offset"]) / 2)}
    out["text"] = (f"joint positions ±{out['joint_mm']:.0f} mm, segment lengths "
                   f"±{out['length_frac']:.0%}, moments {out['moment_Am2'][0]:.4f}–"
                   f"{out['moment_Am2'][1]:.4f} A·m² (the declared magnet's grade and size "
                   f"tolerance), offset ±{out['offset_uT']:.0f} µT")
    return out


@x64
def fit_least_squares(model, readings_uT, bits, hand=None, spec=None, init=None,
                      prior_weight=0.0, max_nfev=200, rotations=None, fit_only=None,
                      offset_box_uT=None, offset_from_data=False):
    """Fit `model` by `scipy.optimize.least_squares` (trust-region reflective, exact Jacobian).

    Args:
        model: 'free', 'constrained' or 'hybrid' (`physml.magnets.fit.MODELS`).
        readings_uT: (n, 3) calibrated readings, µT. bits: (n, 5) their finger states.
        hand: Hand whose geometry sets the start (unless `init`) and the physical box.
        spec: declared MagnetSpec (moment box).
        init: optional start params dict (e.g. a previous fit): also the prior's centre.
        prior_weight: >= 0, weight of the Tikhonov prior towards the start (µT² per scale²).
        max_nfev: function evaluations (>= 1).
        rotations: optional (n, 3, 3) gyroscope rotations (Earth's field fitted first).
        fit_only: optional parameter groups to fit; the others stay at the start.
        offset_box_uT: optional half-width of the offset's box around its start, µT.
        offset_from_data: move the start's offset (from `init`) to where these readings sit
            (weighted mean of state means minus the start's templates), e.g. for a new session.

    Returns:
        FitResult; history {"iteration" [0, 1], "loss" [start, end] (µT², data term),
        "time_s"}, `seconds` the solver's wall time after compilation.
    """
    if max_nfev < 1 or prior_weight < 0:
        raise ValueError(f"max_nfev must be >= 1 and prior_weight >= 0, got {max_nfev}, "
                         f"{prior_weight}")
    if offset_from_data and init is None:
        raise ValueError("offset_from_data moves the offset of `init`: give init (e.g. a "
                         "previous fit's params)")
    hand, spec, means, weights, earth, earth_s = _targets(readings_uT, bits, hand, spec,
                                                          rotations)
    if offset_from_data:
        start = FitResult(model, dict(init), _fixed_from(hand), {}, 0.0, 0.0, 0.0, 0.0, spec)
        init = {**init, "offset": np.asarray(init["offset"], float) + np.sum(
            weights[:, None] * (means - start.predict(_BITS)), axis=0)}
    problem = _problem(model, means, weights, hand, spec, init, fit_only)
    lo, hi = problem.lo, problem.hi
    if offset_box_uT is not None:
        lo, hi = physical_box(problem, offset_box_uT)
    free = lo < hi
    # the prior holds the geometry, never the offset (a new session has a new Earth field)
    problem.fixed["_prior_mask"] = jnp.asarray(np.concatenate([
        np.full(n, 0.0 if k == "offset" else 1.0)
        for k, n in zip(problem.unravel.keys, problem.unravel.sizes, strict=True)]))
    res_fn, jac_fn = _residual_fns(model, problem.unravel)
    args = (jnp.asarray(means), jnp.sqrt(jnp.asarray(weights)), problem.fixed,
            float(np.sqrt(prior_weight)))
    z_all = np.zeros_like(problem.x0)
    rows = np.repeat(weights > 0, 3)

    def full(zf):
        z = z_all.copy()
        z[free] = zf
        return jnp.asarray(z)

    def fun(zf):
        r = np.asarray(res_fn(full(zf), *args))
        return np.concatenate([r[:96][rows], r[96:][free]])

    def jac(zf):
        j = np.asarray(jac_fn(full(zf), *args))
        return np.concatenate([j[:96][rows], j[96:][free]])[:, free]

    t0 = time.perf_counter()
    r0 = fun(np.zeros(free.sum()))
    jac(np.zeros(free.sum()))
    compile_s = time.perf_counter() - t0
    loss0 = float(np.sum(r0[:rows.sum()] ** 2))
    t1 = time.perf_counter()
    # trust-region steps factor ~(100, 60) matrices: BLAS threads only add hand-off time (and,
    # on a loaded machine, oversubscription that made this ~5× slower), as for `fit`'s L-BFGS
    with threadpool_limits(1, user_api="blas"):
        sol = least_squares(fun, np.zeros(free.sum()), jac=jac, bounds=(lo[free], hi[free]),
                            method="trf", x_scale=1.0, max_nfev=max_nfev, ftol=1e-12,
                            xtol=1e-12, gtol=1e-12)
    seconds = time.perf_counter() - t1
    z = z_all.copy()
    z[free] = sol.x
    hist = {"iteration": [0, 1], "loss": [loss0, float(np.sum(sol.fun[:rows.sum()] ** 2))],
            "time_s": [0.0, seconds]}
    return _result(problem, z, hist, loss0, seconds, compile_s, earth, earth_s)


@x64
def fit_de_box(readings_uT, bits, hand=None, spec=None, maxiter=100, popsize=15, seed=0,
               rotations=None, offset_box_uT=30.0, init_spread=0.3):
    """Differential evolution on the constrained model inside its physical box — the study's
    one differential-evolution fit, and the anchor of `fit_least_squares` (02) and of the L-BFGS
    fit (06 benchmark): the same data, loss (no prior), start and box; scipy's final polish is
    off. The first population is the start plus Gaussian draws of `init_spread` parameter
    scales (5 mm, 0.1–0.2 rad, ...) clipped to the box: DE's best honest set-up here — a
    population drawn uniformly over the whole box lands almost entirely far from any hand and
    never beats the start in a few hundred generations. Each generation's population is
    evaluated in one vectorised JAX call.

    Args:
        readings_uT, bits, hand, spec, rotations: as for `fit_least_squares`.
        maxiter: generations (>= 1). popsize: population per parameter (>= 1). seed: DE's seed.
        offset_box_uT: half-width of the offset's box around its start, µT (> 0).
        init_spread: spread of the first population around the start, parameter scales (> 0).

    Returns:
        FitResult (model "constrained") with history {"iteration", "loss" (µT², best member),
        "time_s"} per generation.
    """
    if maxiter < 1 or popsize < 1 or not offset_box_uT > 0 or not init_spread > 0:
        raise ValueError(f"maxiter, popsize must be >= 1, offset_box_uT and init_spread > 0; "
                         f"got {maxiter}, {popsize}, {offset_box_uT}, {init_spread}")
    hand, spec, means, weights, earth, earth_s = _targets(readings_uT, bits, hand, spec,
                                                          rotations)
    problem = _problem("constrained", means, weights, hand, spec)
    lo, hi = physical_box(problem, offset_box_uT)
    population_loss = _population_loss(problem.unravel)
    args = (jnp.asarray(means), jnp.asarray(weights), problem.fixed)
    t0 = time.perf_counter()
    loss0 = float(population_loss(jnp.zeros((1, len(lo))), *args)[0])
    compile_s = time.perf_counter() - t0
    hist = {"iteration": [0], "loss": [loss0], "time_s": [0.0]}
    t1 = time.perf_counter()

    def callback(intermediate_result):
        hist["iteration"].append(len(hist["iteration"]))
        hist["loss"].append(float(intermediate_result.fun))
        hist["time_s"].append(time.perf_counter() - t1)

    rng = np.random.default_rng(seed)
    free = lo < hi
    pop = np.clip(init_spread * rng.standard_normal((popsize * int(free.sum()), len(lo))), lo, hi)
    pop[0] = 0.0  # the start

    def full(zs):  # DE needs lo < hi: pinned parameters (none in this box) stay at the start
        z = np.zeros((zs.shape[1], len(lo)))
        z[:, free] = zs.T
        return jnp.asarray(z)

    with threadpool_limits(1, user_api="blas"):  # small NumPy steps, as in least squares
        res = differential_evolution(
            lambda zs: np.asarray(population_loss(full(zs), *args)),
            list(zip(lo[free], hi[free], strict=True)), maxiter=maxiter, tol=0, polish=False,
            init=pop[:, free], rng=rng, vectorized=True, updating="deferred",
            callback=callback)
    z = np.zeros(len(lo))
    z[free] = res.x
    seconds = time.perf_counter() - t1
    # final_loss is the data loss recomputed on the fitted templates; DE's own best value
    # (res.fun, the last history entry) is the same number summed in another order
    return _result(problem, z, hist, loss0, seconds, compile_s, earth, earth_s)


_POPULATION_LOSSES = {}


def _population_loss(unravel):
    """jit-compiled loss (p,) µT² of a population z (p, n) of the constrained model, one
    compilation per parameter structure (so repeated DE fits, e.g. timing repeats, reuse it)."""
    if unravel.key not in _POPULATION_LOSSES:
        def loss(z, means, weights, fx):
            pred = _predict("constrained", unravel(z * fx["_scale"] + fx["_x0"]), fx)
            return jnp.sum(weights * jnp.sum((pred - means) ** 2, axis=-1))

        _POPULATION_LOSSES[unravel.key] = jax.jit(jax.vmap(loss, in_axes=(0, None, None, None)))
    return _POPULATION_LOSSES[unravel.key]


def refit_geometry(previous, readings_uT, bits, prior_weight=1.0, max_nfev=100, rotations=None):
    """Re-fit a constrained/hybrid dipole fit's whole geometry and offset to a few labelled
    calibration readings of a changed geometry (new hand size, magnet placement, sensor offset),
    starting from — and regularised towards — the previous fit.

    Args:
        previous: FitResult of the training geometry ('constrained' or 'hybrid').
        readings_uT: (k, 3) calibration readings, µT. bits: (k, 5) their states.
        prior_weight: > 0, Tikhonov weight towards the previous parameters (µT² per scale²).
        max_nfev: least-squares evaluations.
        rotations: optional (k, 3, 3) gyroscope rotations of the calibration readings.

    Returns:
        FitResult of the new geometry.
    """
    from .fit import params_to_hand

    if previous.model == "free":
        raise ValueError("refit_geometry needs a constrained or hybrid fit (the free dipole has "
                         "no geometry to carry over)")
    if not prior_weight > 0:
        raise ValueError(f"prior_weight must be > 0 (a few states cannot fix every parameter), "
                         f"got {prior_weight}")
    from .hand import default_hand as _nominal

    hand = params_to_hand(previous, _nominal())
    return fit_least_squares(previous.model, readings_uT, bits, hand=hand, spec=previous.spec,
                             init=previous.params, prior_weight=prior_weight,
                             max_nfev=max_nfev, rotations=rotations, offset_from_data=True)
