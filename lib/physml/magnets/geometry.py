"""Held-out geometry: train on one hand size / magnet placement / sensor position, test on another.

A wearable is put on again, by the same user with a re-glued magnet or by someone with a larger
hand: every state's field changes, and not by one common offset. Per seed (one simulated user):

* training geometry: the user's hand, one recording of all 32 states (every method trains here);
* two changed geometries (`shift_geometry`), each recorded once: "validation" (used only to pick
  the best pure-ML method) and "test". In each, a short calibration — the labelled readings of
  `calib_states` states — is all a method may learn from the new geometry; accuracy is the exact
  match on the readings of every other state of that recording.

Earth's field is taken out of each recording with its own IMU (gyroscope bias estimated and the
Earth vector fitted on the calibration states only, `orientation.fit_earth`: no magnet model, no
test label), so every method sees the same readings. Methods, each re-centred by one rule (the
median offset of the calibration readings from its own templates, `recentre.labelled_offset`):

* ``physics_refit``: the constrained dipole fit of the training geometry, its whole geometry
  re-fitted to the calibration readings (`refit.refit_geometry`, least squares from the old fit);
* ``physics_fixed``: the same fit without the re-fit (re-centred only) — what the re-fit buys;
* ``ols_templates``: additive OLS templates of the training readings (re-centred);
* ``rf_baseline``: Random Forest on the training readings plus the calibration readings;
* ``rf_augmented``: the same plus synthetic readings of all 32 states from the training fit;
* ``rf_refit_synthetic`` (hybrid): Random Forest on synthetic readings of the *re-fitted*
  geometry plus the calibration readings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from physml.splits import check_no_leak

from .classify import FingerClassifier, TemplateClassifier, exact_match
from .fit import MagnetSpec, fit, state_means
from .hand import Hand, bits_to_index, default_hand
from .heldout import additive_templates, choose_train_states, training_rotations
from .orientation import fit_earth
from .recentre import labelled_offset
from .refit import refit_geometry
from .simulate import SessionConfig, simulate_session, simulate_user_sessions
from .synthetic import estimate_noise_model, generate

METHODS = ("physics_refit", "physics_fixed", "ols_templates", "rf_baseline", "rf_augmented",
           "rf_refit_synthetic")
#: the pure-ML candidates; the headline's ML side is the one best on the validation geometry
ML_CANDIDATES = ("rf_baseline", "rf_augmented")


@dataclass(frozen=True)
class GeometryShift:
    """How much a re-worn device differs from the training one (standard deviations, SI-ish).

    size_frac: relative change of hand size (bases, segment lengths, mounts scale together);
    mount_mm: magnet moved along its finger; tilt_deg: magnet tilted about the finger;
    sensor_mm: magnetometer moved, per axis.
    """

    size_frac: float = 0.08
    mount_mm: float = 4.0
    tilt_deg: float = 10.0
    sensor_mm: float = 4.0

    def __post_init__(self):
        for k, v in asdict(self).items():
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"GeometryShift.{k} must be finite and >= 0, got {v}")
        if self.size_frac >= 0.5:
            raise ValueError(f"GeometryShift.size_frac must be < 0.5, got {self.size_frac}")


def shift_geometry(hand, shift, rng):
    """A changed wear of `hand`: size scaled by 1 ± size_frac (sign drawn), each magnet moved
    along its finger (N(0, mount_mm)) and tilted (N(0, tilt_deg)), the sensor moved
    (N(0, sensor_mm) per axis). Magnets, joint angles and finger directions are unchanged.

    Args:
        hand: Hand. shift: GeometryShift. rng: numpy Generator.

    Returns:
        Hand.
    """
    if not isinstance(hand, Hand):
        raise TypeError(f"hand must be a Hand, got {type(hand).__name__}")
    s = 1.0 + shift.size_frac * rng.choice([-1.0, 1.0])
    mount = hand.mount_m * s + 1e-3 * shift.mount_mm * rng.standard_normal(5)
    total = hand.lengths_m.sum(1) * s
    return hand.replace(base_m=hand.base_m * s, lengths_m=hand.lengths_m * s,
                        mount_m=np.clip(mount, 0.1 * total, 0.95 * total),
                        tilt_rad=hand.tilt_rad
                        + np.deg2rad(shift.tilt_deg) * rng.standard_normal(5),
                        sensor_m=hand.sensor_m + 1e-3 * shift.sensor_mm * rng.standard_normal(3))


@dataclass(frozen=True)
class GeometryConfig:
    """One held-out-geometry experiment. calib_states: states recorded in the new geometry's
    calibration (2..31). prior_weight / max_nfev: the geometry re-fit (`refit_geometry`).
    shift: GeometryShift fields; session: SessionConfig fields (dicts)."""

    calib_states: int = 6
    synthetic_per_state: int = 200
    n_estimators: int = 100
    maxiter: int = 300
    prior_weight: float = 1.0
    max_nfev: int = 100
    shift: dict = field(default_factory=dict)
    session: dict = field(default_factory=dict)

    def __post_init__(self):
        if not 2 <= self.calib_states <= 31:
            raise ValueError(f"calib_states must be in [2, 31], got {self.calib_states}")
        if self.synthetic_per_state < 1 or self.n_estimators < 1 or self.maxiter < 1 \
                or self.max_nfev < 1 or not self.prior_weight > 0:
            raise ValueError("synthetic_per_state, n_estimators, maxiter, max_nfev must be >= 1 "
                             f"and prior_weight > 0; got {self}")


def _readings_without_earth(session, calib, bits, idx):
    """All labelled readings (m, 3) of a recording moved to its mean orientation, with the
    gyroscope bias and Earth's field estimated on the calibration rows `calib` (m,) only;
    and Earth's field (3,) µT in the sensor frame at that orientation."""
    r = session.calibrated_uT()[idx]
    rot = training_rotations(session, idx, calib, bits)
    earth = fit_earth(r[calib], rot[calib], bits[calib])
    return earth.at_mean_orientation(r, rot), earth.earth_mean_frame_uT


def _train(seed, cfg, scfg, rng):
    """Training geometry: (hand, constrained fit, readings at the mean orientation (n, 3),
    bits (n, 5), noise model, synthetic readings and bits of all 32 states)."""
    hand, (a,) = simulate_user_sessions(seed, n_sessions=1, config=scfg)
    r, bits, idx = a.labelled()
    rot = training_rotations(a, idx, np.ones(len(idx), bool), bits)
    res = fit("constrained", r, bits, hand=default_hand(), maxiter=cfg.maxiter, spec=MagnetSpec(),
              rotations=rot)
    x = res.earth.at_mean_orientation(r, rot)
    noise = estimate_noise_model(x, bits, res.earth_uT())
    xs, bs = generate(res.templates(), np.arange(32), cfg.synthetic_per_state, rng,
                      earth_uT=res.earth_uT(), orientation_deg=noise["orientation_deg"],
                      noise_uT=noise["noise_uT"])
    return hand, res, x, bits, noise, xs, bs


def _evaluate(seed, cfg, train, x, bits, calib, earth_uT, rng):
    """Accuracy of every method on one changed geometry: x (m, 3) readings without Earth's
    field, bits (m, 5), calib (m,) mask of the calibration readings, earth_uT (3,) that
    recording's Earth field at its mean orientation. Returns {method: acc} and the re-fit's
    figures."""
    _, res, x_tr, b_tr, noise, xs, bs = train
    xc, bc, xt, bt = x[calib], bits[calib], x[~calib], bits[~calib]
    check_no_leak(bits_to_index(bc), bits_to_index(bt), what="calibration state")
    sigma = max(noise["noise_uT"], 0.5)
    refit = refit_geometry(res, xc, bc, prior_weight=cfg.prior_weight, max_nfev=cfg.max_nfev)
    t_fixed = res.templates()
    t_ols = additive_templates(x_tr, b_tr)
    means, _ = state_means(x_tr, b_tr)  # the training recording covers all 32 states
    out = {}
    for name, t in (("physics_refit", refit.templates()), ("physics_fixed", t_fixed),
                    ("ols_templates", t_ols)):
        d = labelled_offset(xc, bc, t)
        out[name] = exact_match(TemplateClassifier(t + d, sigma).predict_bits(xt), bt)
    d_rf = labelled_offset(xc, bc, means)  # RF: re-centred on the training state means
    base = FingerClassifier("rf", seed, cfg.n_estimators).fit(
        np.vstack([x_tr, xc - d_rf]), np.vstack([b_tr, bc]))
    out["rf_baseline"] = exact_match(base.predict_bits(xt - d_rf), bt)
    aug = FingerClassifier("rf", seed, cfg.n_estimators).fit(
        np.vstack([x_tr, xs, xc - d_rf]), np.vstack([b_tr, bs, bc]))
    out["rf_augmented"] = exact_match(aug.predict_bits(xt - d_rf), bt)
    t_new = refit.templates()
    xn, bn = generate(t_new, np.arange(32), cfg.synthetic_per_state, rng,
                      earth_uT=earth_uT, orientation_deg=noise["orientation_deg"],
                      noise_uT=noise["noise_uT"])
    hyb = FingerClassifier("rf", seed, cfg.n_estimators).fit(np.vstack([xn, xc]),
                                                            np.vstack([bn, bc]))
    out["rf_refit_synthetic"] = exact_match(hyb.predict_bits(xt), bt)
    return out, {"refit_residual_uT": refit.residual_rms_uT,
                 "refit_seconds": refit.total_seconds}


def run_geometry_seed(args):
    """One seed (user) of the held-out-geometry comparison; args = (seed, GeometryConfig dict).

    Returns:
        dict: "validation" and "test" {method: exact-match accuracy}, "calib_states" per role,
        "train_fit_residual_uT", "refit_residual_uT" / "refit_seconds" per role, "seed".
    """
    seed, cfgd = args
    cfg = GeometryConfig(**cfgd)
    shift = GeometryShift(**cfg.shift)
    scfg = SessionConfig(**cfg.session)
    rng = np.random.default_rng([seed, 14])
    train = _train(seed, cfg, scfg, rng)
    out = {"seed": seed, "train_fit_residual_uT": train[1].residual_rms_uT, "calib_states": {},
           "refit_residual_uT": {}, "refit_seconds": {}}
    for k, role in enumerate(("validation", "test")):
        h = shift_geometry(train[0], shift, rng)
        s = simulate_session(h, seed=[seed, 500 + k], config=scfg, user=seed)
        _, bits, idx = s.labelled()
        states = choose_train_states(rng, cfg.calib_states)
        calib = np.isin(bits_to_index(bits), states)
        x, earth = _readings_without_earth(s, calib, bits, idx)
        out[role], fig = _evaluate(seed, cfg, train, x, bits, calib, earth, rng)
        out["calib_states"][role] = states.tolist()
        out["refit_residual_uT"][role] = fig["refit_residual_uT"]
        out["refit_seconds"][role] = fig["refit_seconds"]
    return out


def run_geometry(seeds, config=None, workers=None):
    """`run_geometry_seed` for every seed (physml.parallel.map_tasks). Returns list of dicts."""
    from physml.parallel import map_tasks

    if len(seeds) < 2:
        raise ValueError(f"need at least two seeds for confidence intervals, got {list(seeds)}")
    cfg = asdict(config or GeometryConfig())
    return map_tasks(run_geometry_seed, [(int(s), cfg) for s in seeds], workers=workers)


def accuracy(runs, role="test"):
    """{method: (seeds,) exact-match accuracies} on role "test" or "validation"."""
    if role not in ("test", "validation"):
        raise ValueError(f"role must be 'test' or 'validation', got {role!r}")
    return {m: np.array([r[role][m] for r in runs]) for m in METHODS}


def choose_ml(runs, candidates=ML_CANDIDATES):
    """The pure-ML method with the highest mean accuracy on the *validation* geometry (never the
    test geometry): (name, {candidate: validation mean})."""
    val = accuracy(runs, "validation")
    means = {c: float(val[c].mean()) for c in candidates}
    return max(means, key=means.get), means


__all__ = ["GeometryConfig", "GeometryShift", "METHODS", "ML_CANDIDATES", "accuracy",
           "choose_ml", "run_geometry", "run_geometry_seed", "shift_geometry"]
