"""A new user arrives: calibrate the physics model with k labelled readings (refit from the
population fit), generate user-specific synthetic data, retrain; and an active-learning loop that
asks for labels where the deployed model is least confident.

The new user's session is split in time: the first repetition of every state is the calibration
pool (labels asked from there), the second repetition is the test set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .classify import FingerClassifier, exact_match
from .fit import fit
from .hand import default_hand
from .simulate import SessionConfig, simulate_user_sessions
from .synthetic import estimate_noise_model, generate


@dataclass(frozen=True)
class CalibrationConfig:
    """population_users: seeds of the users in the population fit; k_values: calibration sizes;
    prior_weight: pull of the refit towards the population parameters; al_rounds × al_batch:
    labels asked by the active-learning loop."""

    population_users: tuple = (100, 101, 102, 103)
    k_values: tuple = (0, 10, 25, 50, 100)
    synthetic_per_state: int = 100
    n_estimators: int = 50
    prior_weight: float = 0.5
    maxiter: int = 200
    user_weight: float = 5.0
    al_rounds: int = 6
    al_batch: int = 5
    session: dict = field(default_factory=dict)


_POPULATION_CACHE = {}


def population(cfg):
    """Pooled labelled readings of the population users and the constrained fit to them
    (cached in-process per population and session settings).

    Returns:
        dict {"readings" (n, 3) µT, "bits" (n, 5), "fit" FitResult, "noise" noise model}.
    """
    key = (tuple(cfg.population_users), tuple(sorted(cfg.session.items())), cfg.maxiter)
    if key not in _POPULATION_CACHE:
        _POPULATION_CACHE[key] = _population(cfg)
    return _POPULATION_CACHE[key]


def _population(cfg):
    scfg = SessionConfig(**cfg.session)
    rs, bs = [], []
    for u in cfg.population_users:  # a few users; each session is simulated vectorised
        _, (s,) = simulate_user_sessions(u, 1, config=scfg)
        r, b, _ = s.labelled()
        rs.append(r)
        bs.append(b)
    r, b = np.vstack(rs), np.vstack(bs)
    res = fit("constrained", r, b, hand=default_hand(), maxiter=cfg.maxiter)
    # within-state spread per user (pooling users would count their differences as noise)
    per_user = [estimate_noise_model(ru, bu, res.params["offset"]) for ru, bu in zip(rs, bs,
                                                                                     strict=True)]
    noise = {k: float(np.mean([n[k] for n in per_user])) for k in ("orientation_deg", "noise_uT")}
    return {"readings": r, "bits": b, "fit": res, "noise": noise}


def new_user_split(seed, cfg):
    """The new user's (seed + 20_000) session split in time into calibration pool and test.

    Returns:
        (pool_x (m, 3), pool_bits (m, 5), test_x, test_bits, all_pool_readings_unlabelled).
    """
    scfg = SessionConfig(**cfg.session)
    if scfg.repeats < 2:
        raise ValueError(f"calibration needs session repeats >= 2, got {scfg.repeats}")
    _, (s,) = simulate_user_sessions(seed + 20_000, 1, config=scfg)
    cut = s.labels[32].start  # first sample of the second repetition
    r, b, idx = s.labelled()
    pool, test = idx < cut, idx >= cut
    return r[pool], b[pool], r[test], b[test], s.calibrated_uT()[:cut]


def user_physics_model(pop, x, bits, unlabelled, cfg, rng):
    """Refit from the population fit with the k labelled readings (k = 0: the population model
    with its offset re-centred on the user's unlabelled readings), then train a classifier on
    user-specific synthetic data plus the k real readings.

    Returns:
        (FingerClassifier, FitResult or None).
    """
    p0 = {k: v.copy() for k, v in pop["fit"].params.items()}
    templ = pop["fit"].templates()
    # unlabelled re-centring: the session visits every state about equally often
    p0["offset"] = p0["offset"] + unlabelled.mean(0) - templ.mean(0)
    if len(x):
        res = fit("constrained", x, bits, hand=default_hand(), init=p0, maxiter=cfg.maxiter,
                  prior_weight=cfg.prior_weight)
        templ, earth = res.templates(), res.params["offset"]
    else:
        res = None
        from .fit import FitResult

        tmp = FitResult("constrained", p0, pop["fit"].fixed, {}, 0, 0, 0, 0)
        templ, earth = tmp.templates(), p0["offset"]
    xs, bs = generate(templ, np.arange(32), cfg.synthetic_per_state, rng, earth_uT=earth,
                      orientation_deg=pop["noise"]["orientation_deg"],
                      noise_uT=pop["noise"]["noise_uT"])
    w = np.concatenate([np.ones(len(xs)), np.full(len(x), cfg.user_weight)])
    clf = FingerClassifier("rf", 0, cfg.n_estimators).fit(
        np.vstack([xs, x]) if len(x) else xs, np.vstack([bs, bits]) if len(x) else bs,
        sample_weight=w)
    return clf, res


def no_physics_model(pop, x, bits, cfg):
    """Random Forest on the population's real readings plus the user's k (up-weighted)."""
    w = np.concatenate([np.ones(len(pop["readings"])), np.full(len(x), cfg.user_weight)])
    xx = np.vstack([pop["readings"], x]) if len(x) else pop["readings"]
    bb = np.vstack([pop["bits"], bits]) if len(x) else pop["bits"]
    return FingerClassifier("rf", 0, cfg.n_estimators).fit(xx, bb, sample_weight=w)


def run_calibration_seed(args):
    """Accuracy on new user `seed` vs k, with and without physics (args = (seed, cfg dict)).

    Returns:
        dict {"physics": {k: acc}, "no_physics": {k: acc}, "seed"}.
    """
    seed, cfgd = args
    cfg = CalibrationConfig(**cfgd)
    rng = np.random.default_rng([seed, 5])
    pop = population(cfg)
    px, pb, tx, tb, unl = new_user_split(seed, cfg)
    out = {"physics": {}, "no_physics": {}, "seed": seed}
    for k in cfg.k_values:  # a handful of calibration sizes
        if k < 0 or k > len(px):
            raise ValueError(f"k={k} outside [0, {len(px)}] (calibration pool size)")
        sel = rng.choice(len(px), k, replace=False)
        clf, _ = user_physics_model(pop, px[sel], pb[sel], unl, cfg, rng)
        out["physics"][k] = exact_match(clf.predict_bits(tx), tb)
        out["no_physics"][k] = exact_match(no_physics_model(pop, px[sel], pb[sel],
                                                            cfg).predict_bits(tx), tb)
    return out


def run_active_learning_seed(args):
    """Accuracy vs labels asked: least-confident sampling (one reading per predicted state per
    batch) vs random (args = (seed, cfg dict)).

    Each round asks al_batch labels from the calibration pool, refits the physics model with all
    labels so far and retrains the classifier.

    Returns:
        dict {"labels": [..], "confidence": [acc..], "random": [acc..], "seed"}.
    """
    seed, cfgd = args
    cfg = CalibrationConfig(**cfgd)
    pop = population(cfg)
    px, pb, tx, tb, unl = new_user_split(seed, cfg)
    out = {"labels": [0], "seed": seed}
    for strategy in ("confidence", "random"):
        rng = np.random.default_rng([seed, 6])
        asked = np.zeros(len(px), bool)
        clf, _ = user_physics_model(pop, px[:0], pb[:0], unl, cfg, rng)
        accs = [exact_match(clf.predict_bits(tx), tb)]
        for r in range(cfg.al_rounds):  # rounds of the loop; each round is vectorised
            free = np.flatnonzero(~asked)
            if strategy == "confidence":
                pick = _least_confident_diverse(clf, px[free], free, cfg.al_batch)
            else:
                pick = rng.choice(free, cfg.al_batch, replace=False)
            asked[pick] = True
            clf, _ = user_physics_model(pop, px[asked], pb[asked], unl, cfg, rng)
            accs.append(exact_match(clf.predict_bits(tx), tb))
            if strategy == "confidence":
                out["labels"].append((r + 1) * cfg.al_batch)
        out[strategy] = accs
    return out


def _least_confident_diverse(clf, x, rows, n):
    """The n least-confident readings, at most one per predicted state (so one batch does not
    spend its labels on n near-identical readings of one ambiguous pose)."""
    from .hand import bits_to_index

    order = np.argsort(clf.confidence(x))
    pred = bits_to_index(clf.predict_bits(x[order]))
    _, first = np.unique(pred, return_index=True)
    chosen = order[np.sort(first)][:n]
    if len(chosen) < n:  # fewer distinct predicted states than labels to ask
        rest = order[~np.isin(order, chosen)]
        chosen = np.concatenate([chosen, rest[:n - len(chosen)]])
    return rows[chosen]


def run_calibration(seeds, config=None, workers=None):
    """Calibration and active-learning runs for every seed (physml.parallel.map_tasks)."""
    from physml.parallel import map_tasks

    cfg = asdict(config or CalibrationConfig())
    cal = map_tasks(run_calibration_seed, [(int(s), cfg) for s in seeds], workers=workers)
    al = map_tasks(run_active_learning_seed, [(int(s), cfg) for s in seeds], workers=workers)
    return {"calibration": cal, "active_learning": al}


def calibration_groups(result):
    """{"physics": (len(k), seeds), "no physics": (len(k), seeds)} and the k values."""
    cal = result["calibration"]
    ks = list(cal[0]["physics"])
    return ks, {"physics (refit + synthetic)": np.array([[r["physics"][k] for r in cal]
                                                         for k in ks]),
                "no physics (population RF + k)": np.array([[r["no_physics"][k] for r in cal]
                                                            for k in ks])}


def active_learning_groups(result):
    """Labels asked and {"least confident": (rounds+1, seeds), "random": ...}."""
    al = result["active_learning"]
    return al[0]["labels"], {"least confident": np.array([r["confidence"] for r in al]).T,
                             "random": np.array([r["random"] for r in al]).T}
