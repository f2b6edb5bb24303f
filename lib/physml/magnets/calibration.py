"""A new user arrives: calibrate with k labelled readings, with and without physics, and an
active-learning loop that chooses which readings to label.

Every method is re-centred on the new user by the same rule before it classifies
(`physml.magnets.recentre`): the offset between the user's readings and the method's own
templates (physics: the population fit's 32 templates; no physics: the population's per-state
mean readings) is estimated and taken out of the user's readings — with k >= 1 labels through
the templates of the labelled states (`labelled_offset`, robust to unbalanced labels), with no
label from the mean of the unlabelled calibration recording (`mean_offset`, which assumes that
the recording visits every state about equally).

Methods at each k (labels drawn at random from the calibration pool):

* ``templates`` (physics): the population fit refitted to the k labels (regularised towards
  the population), nearest-template classifier;
* ``rf`` (ML): a Random Forest on the population's real readings plus the user's k (up-weighted);
* ``hybrid``: a Random Forest on synthetic readings of all 32 states from the refitted physics
  model plus the k real ones.

The new user's session is split in time: the first repetition of every state is the calibration
pool (labels asked from there; its readings unlabelled give the offset), the second repetition
is the test set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .active import STRATEGIES, label_spread, select
from .classify import FingerClassifier, TemplateClassifier, exact_match
from .fit import FitResult, fit, state_means
from .hand import bits_to_index, default_hand
from .heldout import subsample_per_state
from .recentre import labelled_offset, mean_offset, recentred
from .simulate import SessionConfig, simulate_user_sessions
from .synthetic import estimate_noise_model, generate

METHODS = ("templates", "rf", "hybrid")
RECENTRE = ("robust", "mean")


@dataclass(frozen=True)
class CalibrationConfig:
    """population_users: seeds of the users in the population fit; k_values: calibration sizes;
    prior_weight: pull of the refit towards the population parameters; population_per_state:
    readings per state and population user kept for the population Random Forest (more only
    repeat the same poses and slow the forest down); al_rounds × al_batch:
    labels asked by the active-learning loop, for each of al_strategies; recentre: the offset
    rule with labels ("robust": `recentre.labelled_offset`, "mean": `recentre.mean_offset` of
    the labelled readings); unbalanced_states / unbalanced_k: states and labels of the
    unbalanced calibration sample in the robustness check."""

    population_users: tuple = (100, 101, 102, 103)
    k_values: tuple = (0, 10, 25, 50, 100)
    synthetic_per_state: int = 100
    n_estimators: int = 50
    prior_weight: float = 0.5
    maxiter: int = 200
    user_weight: float = 5.0
    al_rounds: int = 6
    al_batch: int = 5
    al_strategies: tuple = ("coverage", "least_confident", "random")
    recentre: str = "robust"
    population_per_state: int = 40
    unbalanced_states: int = 3
    unbalanced_k: int = 15
    session: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.recentre not in RECENTRE:
            raise ValueError(f"CalibrationConfig.recentre must be one of {RECENTRE}, "
                             f"got {self.recentre!r}")
        bad = set(self.al_strategies) - set(STRATEGIES)
        if bad:
            raise ValueError(f"CalibrationConfig.al_strategies: unknown {sorted(bad)}; "
                             f"known {STRATEGIES}")
        if not 1 <= self.unbalanced_states <= 32:
            raise ValueError(f"CalibrationConfig.unbalanced_states must be in [1, 32], "
                             f"got {self.unbalanced_states}")


_POPULATION_CACHE = {}


def population(cfg):
    """Pooled labelled readings of the population users and the constrained fit to them
    (cached in-process per population and session settings).

    Returns:
        dict {"readings" (n, 3) µT, "bits" (n, 5) (subsampled, `population_per_state`),
        "fit" FitResult (all readings), "noise" noise model,
        "state_means" (32, 3) µT: the pooled per-state mean readings (the no-physics
        templates)}.
    """
    key = (tuple(cfg.population_users), tuple(sorted(cfg.session.items())), cfg.maxiter,
           cfg.population_per_state)
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
    means, _ = state_means(r, b)
    keep = np.concatenate([  # population RF: at most population_per_state per user and state
        np.flatnonzero(subsample_per_state(bu, np.ones(len(bu), bool), cfg.population_per_state,
                                           np.random.default_rng([u, 11]))) + off
        for u, bu, off in zip(cfg.population_users, bs,
                              np.cumsum([0] + [len(x) for x in bs])[:-1], strict=True)])
    return {"readings": r[keep], "bits": b[keep], "fit": res, "noise": noise,
            "state_means": means}


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


def offset(rule, templates_uT, x, bits, unlabelled_uT):
    """The user's offset (3,) µT against a method's templates (32, 3): with labelled readings
    x (k, 3) / bits (k, 5), by `rule` ("robust": `labelled_offset`; "mean": `mean_offset` of
    x); with k = 0, `mean_offset` of the unlabelled recording (m, 3) (a whole session)."""
    if rule not in RECENTRE:
        raise ValueError(f"re-centring rule must be one of {RECENTRE}, got {rule!r}")
    if len(x) == 0:
        return mean_offset(unlabelled_uT, templates_uT)
    if rule == "mean":
        return mean_offset(x, templates_uT)
    return labelled_offset(x, bits, templates_uT)


def _shifted(params, d):
    p = {k: np.array(v, copy=True) for k, v in params.items()}
    p["offset"] = p["offset"] + d
    return p


def user_physics(pop, x, bits, d, cfg):
    """The population fit moved by the user's offset d (3,) µT and, with k >= 1 labels (x, bits),
    refitted from there (pulled towards it by cfg.prior_weight). Returns a FitResult."""
    p0 = _shifted(pop["fit"].params, d)
    if len(x):
        return fit("constrained", x, bits, hand=default_hand(), init=p0, maxiter=cfg.maxiter,
                   prior_weight=cfg.prior_weight)
    return FitResult("constrained", p0, pop["fit"].fixed, {}, 0, 0, 0, 0)


def hybrid_classifier(pop, res, x, bits, cfg, rng):
    """Random Forest on synthetic readings of all 32 states from the user's physics model
    `res` plus the k real readings (up-weighted by cfg.user_weight)."""
    xs, bs = generate(res.templates(), np.arange(32), cfg.synthetic_per_state, rng,
                      earth_uT=res.params["offset"],
                      orientation_deg=pop["noise"]["orientation_deg"],
                      noise_uT=pop["noise"]["noise_uT"])
    w = np.concatenate([np.ones(len(xs)), np.full(len(x), cfg.user_weight)])
    return FingerClassifier("rf", 0, cfg.n_estimators).fit(
        np.vstack([xs, x]) if len(x) else xs, np.vstack([bs, bits]) if len(x) else bs,
        sample_weight=w)


def rf_classifier(pop, x, bits, cfg):
    """Random Forest on the population's real readings plus the user's k (up-weighted); x must
    already be re-centred into the population's frame."""
    w = np.concatenate([np.ones(len(pop["readings"])), np.full(len(x), cfg.user_weight)])
    xx = np.vstack([pop["readings"], x]) if len(x) else pop["readings"]
    bb = np.vstack([pop["bits"], bits]) if len(x) else pop["bits"]
    return FingerClassifier("rf", 0, cfg.n_estimators).fit(xx, bb, sample_weight=w)


def evaluate_k(pop, px, pb, tx, tb, unl, sel, cfg, rng):
    """Exact-match accuracy of the three methods after labelling pool readings `sel`.

    Every method is re-centred by `cfg.recentre` against its own templates; the physics model
    starts from the re-centred population fit.

    Returns:
        {method: accuracy} for METHODS.
    """
    x, b = px[sel], pb[sel]
    d_phys = offset(cfg.recentre, pop["fit"].templates(), x, b, unl)
    d_rf = offset(cfg.recentre, pop["state_means"], x, b, unl)
    res = user_physics(pop, x, b, d_phys, cfg)
    templ = TemplateClassifier(res.templates(), noise_uT=max(pop["noise"]["noise_uT"], 0.5))
    hyb = hybrid_classifier(pop, res, x, b, cfg, rng)
    rf = rf_classifier(pop, recentred(x, d_rf), b, cfg)
    return {"templates": exact_match(templ.predict_bits(tx), tb),
            "hybrid": exact_match(hyb.predict_bits(tx), tb),
            "rf": exact_match(rf.predict_bits(recentred(tx, d_rf)), tb)}


def check_k_values(k_values, pool_size):
    """Raises ValueError naming the first calibration size k outside [0, pool_size]."""
    for k in k_values:
        if k < 0 or k > pool_size:
            raise ValueError(f"k={k} outside [0, {pool_size}] (calibration pool size)")


def run_calibration_seed(args):
    """Accuracy on new user `seed` vs k for every method (args = (seed, cfg dict)), and the
    re-centring rules on a balanced and an unbalanced unlabelled recording at k = 0.

    Returns:
        dict {"accuracy": {method: {k: acc}}, "unbalanced": {rule: {"balanced"|"unbalanced":
        template accuracy at k = 0}}, "seed"}.
    """
    seed, cfgd = args
    cfg = CalibrationConfig(**cfgd)
    rng = np.random.default_rng([seed, 5])
    px, pb, tx, tb, unl = new_user_split(seed, cfg)
    check_k_values(cfg.k_values, len(px))
    pop = population(cfg)
    acc = {m: {} for m in METHODS}
    for k in cfg.k_values:  # a handful of calibration sizes
        sel = rng.choice(len(px), k, replace=False)
        for m, a in evaluate_k(pop, px, pb, tx, tb, unl, sel, cfg, rng).items():
            acc[m][int(k)] = a
    return {"accuracy": acc, "unbalanced": recentring_check(pop, px, pb, tx, tb, unl, cfg, rng),
            "seed": seed}


def unbalanced_sample(pool_bits, n_states, k, rng):
    """Indices of k calibration readings drawn from only n_states random states of the pool
    (a user who labels a few poses many times)."""
    idx = bits_to_index(pool_bits)
    keep = rng.choice(np.unique(idx), n_states, replace=False)
    rows = np.flatnonzero(np.isin(idx, keep))
    return rng.choice(rows, min(k, len(rows)), replace=False)


def recentring_check(pop, px, pb, tx, tb, unl, cfg, rng):
    """Template accuracy after re-centring the population fit with each rule, from k random
    calibration labels (balanced) and from k labels of `unbalanced_states` states (no refit,
    so only the offset differs). Returns {rule: {"balanced"|"unbalanced": accuracy}}."""
    k = cfg.unbalanced_k
    samples = {"balanced": rng.choice(len(px), k, replace=False),
               "unbalanced": unbalanced_sample(pb, cfg.unbalanced_states, k, rng)}
    templ = pop["fit"].templates()
    out = {}
    for rule in RECENTRE:
        out[rule] = {}
        for name, sel in samples.items():
            clf = TemplateClassifier(templ + offset(rule, templ, px[sel], pb[sel], unl))
            out[rule][name] = exact_match(clf.predict_bits(tx), tb)
    return out


def run_active_learning_seed(args):
    """Accuracy vs labels asked for each selection rule in cfg.al_strategies (args = (seed,
    cfg dict)). Each round asks al_batch labels from the calibration pool, refits the physics
    model with all labels so far and retrains the hybrid classifier, which also chooses the
    next batch. The same random stream (seed) drives every strategy's synthetic data.

    Returns:
        dict {"labels": [0, b, 2b, ..], strategy: [accuracy per round], "spread": {strategy:
        `active.label_spread` of its final labels}, "seed"}.
    """
    seed, cfgd = args
    cfg = CalibrationConfig(**cfgd)
    pop = population(cfg)
    px, pb, tx, tb, unl = new_user_split(seed, cfg)
    templ = pop["fit"].templates()
    out = {"labels": [r * cfg.al_batch for r in range(cfg.al_rounds + 1)], "seed": seed,
           "spread": {}}
    for strategy in cfg.al_strategies:
        rng = np.random.default_rng([seed, 6])
        asked = np.zeros(len(px), bool)
        d = offset(cfg.recentre, templ, px[:0], pb[:0], unl)
        clf = hybrid_classifier(pop, user_physics(pop, px[:0], pb[:0], d, cfg), px[:0], pb[:0],
                                cfg, rng)
        accs = [exact_match(clf.predict_bits(tx), tb)]
        for _ in range(cfg.al_rounds):  # rounds of the loop; each round is vectorised
            free = np.flatnonzero(~asked)
            asked[free[select(strategy, clf, px[free], cfg.al_batch, rng, pb[asked])]] = True
            d = offset(cfg.recentre, templ, px[asked], pb[asked], unl)
            res = user_physics(pop, px[asked], pb[asked], d, cfg)
            clf = hybrid_classifier(pop, res, px[asked], pb[asked], cfg, rng)
            accs.append(exact_match(clf.predict_bits(tx), tb))
        out[strategy] = accs
        out["spread"][strategy] = label_spread(pb[asked])
    return out


def run_calibration(seeds, config=None, workers=None):
    """Calibration and active-learning runs for every seed (physml.parallel.map_tasks)."""
    from physml.parallel import map_tasks

    cfg = asdict(config or CalibrationConfig())
    cal = map_tasks(run_calibration_seed, [(int(s), cfg) for s in seeds], workers=workers)
    al = map_tasks(run_active_learning_seed, [(int(s), cfg) for s in seeds], workers=workers)
    return {"calibration": cal, "active_learning": al}


def accuracy_groups(result):
    """k values and {method: (len(k), seeds) accuracies} for curves with CIs."""
    cal = result["calibration"]
    ks = list(cal[0]["accuracy"]["templates"])
    return ks, {m: np.array([[r["accuracy"][m][k] for r in cal] for k in ks]) for m in METHODS}


def recentring_groups(result):
    """{"rule, pool": (seeds,) template accuracies at k = 0} from the re-centring check."""
    cal = result["calibration"]
    return {f"{rule}, {pool}": np.array([r["unbalanced"][rule][pool] for r in cal])
            for rule in RECENTRE for pool in ("balanced", "unbalanced")}


def active_learning_groups(result):
    """Labels asked and {strategy: (rounds+1, seeds) accuracies}."""
    al = result["active_learning"]
    strategies = [s for s in STRATEGIES if s in al[0]]
    return al[0]["labels"], {s: np.array([r[s] for r in al]).T for s in strategies}


def active_learning_spread(result):
    """{"<strategy>_distinct_states" | "<strategy>_top_state_share": mean over seeds} of the
    final labels of every strategy (`active.label_spread`)."""
    al = result["active_learning"]
    return {f"{s}_{k}": float(np.mean([r["spread"][s][k] for r in al]))
            for s in al[0]["spread"] for k in ("distinct_states", "top_state_share")}


def accuracy_cis(result):
    """{"<method>_k<k>": CI over seeds} of the calibration runs (the results-JSON shape)."""
    from physml.stats import UNIT_INTERVAL, summarize

    ks, groups = accuracy_groups(result)
    return summarize({f"{m}_k{k}": groups[m][i] for m in groups for i, k in enumerate(ks)},
                     bounds=UNIT_INTERVAL)


def at_k(result, method, k):
    """Per-seed accuracies (seeds,) of `method` after k calibration labels."""
    ks, groups = accuracy_groups(result)
    if k not in ks:
        raise ValueError(f"k={k} was not run; k_values are {ks}")
    return groups[method][ks.index(k)]


def al_final(result, strategy):
    """Per-seed accuracies (seeds,) of an active-learning strategy after the last round."""
    _, groups = active_learning_groups(result)
    if strategy not in groups:
        raise ValueError(f"strategy {strategy!r} was not run; ran {sorted(groups)}")
    return groups[strategy][-1]
