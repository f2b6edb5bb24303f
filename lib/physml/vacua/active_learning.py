"""Active learning of vacuum properties from a potential's coefficients, split by geometry.

The issue's vacuum label turns out to be constant for this potential family (every converged
vacuum is a stable minimum; notebook 03 measures it), so a classifier on it scores 100% whatever
its features: the source's "100%" needs no leak at all, and a majority-class predictor matches
it. The learnable question asked here instead is *where* the vacuum sits: how many moduli leave
their |φ_i|_δ kink at φ_i = 0 (``VACUUM_CLASSES``: pinned / partly displaced / all displaced;
``failed`` kept as a class, never dropped). Labels come from calling the labeller — the batched
JAX Newton solver — on every queried potential.

Features are computed from the potential's coefficients only (never from the solver's output);
:func:`leakage_check` shows what solver-derived or count-derived features would do.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

from physml.stats import UNIT_INTERVAL, format_interval

from .geometry import Geometry
from .labels import FAILED, LABELS, count_displaced
from .potential import PotentialParams, sample_params

VACUUM_CLASSES = ("pinned", "partly_displaced", "all_displaced", "failed")
POTENTIAL_FEATURES = ("A", "a", "D", "p", "gamma", "s", "c_rms", "c_max", "lam_fro", "M_mean",
                      "M_min")
COUNT_FEATURES = ("n_moduli",)
SOLVER_OUTPUTS = ("phi_norm", "n_iter", "value", "eig_min", "eig_max")
STRATEGIES = ("random", "entropy", "margin", "ranked_batch")
DEFAULT_LABELLER = "physml.vacua.active_learning:vacuum_labeller"


def potential_features(P: PotentialParams) -> pd.DataFrame:
    """Features ``(B, 12)`` from coefficients only: A, a, D, p, gamma, s, c_rms = |c|/√n,
    c_max = max|c_i|, lam_fro = |Λ|_F, M_mean, M_min, n_moduli."""
    mask = np.asarray(P.mask)
    n = mask.sum(1)
    c = np.abs(np.asarray(P.c)) * mask
    M = np.asarray(P.M)
    return pd.DataFrame(dict(
        A=P.A, a=P.a, D=P.D, p=P.p, gamma=P.gamma, s=P.s,
        c_rms=np.linalg.norm(c, axis=1) / np.sqrt(n), c_max=c.max(1),
        lam_fro=np.linalg.norm(np.asarray(P.Lam), axis=(1, 2)),
        M_mean=(M * mask).sum(1) / n, M_min=np.where(mask > 0, M, np.inf).min(1),
        n_moduli=n.astype(int)))


def vacuum_class(phi, mask, converged) -> np.ndarray:
    """Class codes ``(B,)`` into :data:`VACUUM_CLASSES` from the vacuum φ* ``(B, N)``."""
    disp = count_displaced(phi, mask)
    n = np.asarray(mask).sum(1)
    out = np.where(disp == 0, 0, np.where(disp >= n, 2, 1))
    return np.where(np.asarray(converged, bool), out, 3)


def vacuum_labeller(P: PotentialParams, seed: int = 0, n_starts: int = 3) -> np.ndarray:
    """The labeller: solve every potential (batched JAX Newton, ``n_starts`` starts drawn from
    ``seed``) and return :data:`VACUUM_CLASSES` codes ``(B,)``."""
    from .solvers import newton_padded  # JAX: imported on first labelling only

    rng = np.random.default_rng(seed)
    mask = np.asarray(P.mask)
    phi0 = rng.normal(0.0, 1.0, (mask.shape[0], n_starts, mask.shape[1])) * mask[:, None, :]
    r = newton_padded(P, phi0)
    return vacuum_class(r["phi"], mask, r["converged"])


def resolve_labeller(spec: str):
    """Import the labeller named ``"package.module:function"``. Raises ImportError (with the
    spec) when the import or the attribute lookup fails — there is no fallback labeller."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"labeller spec {spec!r} must look like 'package.module:function'")
    mod_name, attr = spec.split(":", 1)
    try:
        mod = importlib.import_module(mod_name)
        fn = getattr(mod, attr)
    except (ImportError, AttributeError) as exc:
        raise ImportError(f"cannot import labeller {spec!r}: {exc}") from exc
    if not callable(fn):
        raise ImportError(f"labeller {spec!r} is not callable")
    return fn


@dataclass
class Pool:
    """Unlabelled potentials on geometries: params padded to one N ``(B, ...)``, gid ``(B,)``,
    regimes ``(B,)``, features DataFrame ``(B, 12)``."""

    params: PotentialParams
    gid: np.ndarray
    regimes: np.ndarray
    features: pd.DataFrame

    def take(self, idx) -> PotentialParams:
        return PotentialParams(*(np.asarray(x)[idx] for x in self.params))

    def __len__(self) -> int:
        return len(self.gid)


def make_pool(geometries: list[Geometry], samples_per_geometry: int, rng: np.random.Generator,
              regime: str = "runaway") -> Pool:
    """Sample ``samples_per_geometry`` potentials of one regime on each geometry (n_moduli from
    the geometry). The default regime, runaway (c ≠ 0), is the only one whose vacua leave the
    kinks; in the other regimes every vacuum sits at φ = 0 (notebook 03)."""
    if samples_per_geometry < 1:
        raise ValueError(f"samples_per_geometry={samples_per_geometry} must be >= 1")
    from .solvers import bucket_size

    gid = np.repeat([g.gid for g in geometries], samples_per_geometry)
    n = np.repeat([g.n_moduli for g in geometries], samples_per_geometry)
    regimes = np.full(len(gid), regime)
    P = sample_params(n, regimes, rng, bucket_size(int(n.max())))
    return Pool(P, gid, regimes, potential_features(P))


def geometry_split(gid, test_fraction: float, rng: np.random.Generator):
    """Indices (train ``(m,)``, test ``(k,)``) with whole geometries held out: fold 0 of a
    :func:`physml.splits.group_kfold` over ``gid`` ``(B,)`` with round(1 / test_fraction)
    folds (at least 2, at most the number of geometries), shuffled by a seed drawn from
    ``rng``; :class:`physml.splits.LeakError` if a geometry were on both sides."""
    from physml import splits

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction={test_fraction} outside (0, 1)")
    gid = np.asarray(gid)
    n_groups = len(np.unique(gid))
    if n_groups < 2:
        raise ValueError(f"geometry_split needs at least 2 geometries, got {n_groups}")
    k = int(min(max(2, round(1.0 / test_fraction)), n_groups))
    sp = splits.group_kfold(gid, k, seed=int(rng.integers(2**31 - 1)), what="geometry")[0]
    return sp.train, sp.test


def _classifier(seed: int, n_estimators: int = 100) -> RandomForestClassifier:
    if n_estimators < 1:
        raise ValueError(f"n_estimators={n_estimators} must be >= 1")
    return RandomForestClassifier(n_estimators=n_estimators, min_samples_leaf=2,
                                  random_state=seed, n_jobs=1)


def _proba_full(clf, X, n_classes: int) -> np.ndarray:
    pr = clf.predict_proba(X)
    out = np.zeros((len(X), n_classes))
    out[:, clf.classes_] = pr
    return out


def select_batch(strategy: str, proba, X_pool, X_labelled, k: int, rng: np.random.Generator,
                 alpha: float | None = None) -> np.ndarray:
    """Choose ``k`` indices into the candidate pool ``X_pool`` ``(m, d)``.

    random; entropy (max −Σ p log p); margin (min p₁ − p₂); ranked_batch (uncertainty +
    diversity, Cardoso et al. 2017): repeatedly take argmax of α(1 − 1/(1 + d_min)) + (1 − α)U,
    U = 1 − max p, d_min the distance to the labelled set and to the points already chosen;
    α = m / (m + |labelled|) unless given. Features should be standardised.
    """
    m = len(X_pool)
    k = min(k, m)
    if strategy == "random":
        return rng.choice(m, size=k, replace=False)
    p = np.clip(proba, 1e-12, 1.0)
    if strategy == "entropy":
        entropy = -(p * np.log(p)).sum(1)
        return np.argsort(-entropy, kind="stable")[:k]
    if strategy == "margin":
        ps = np.sort(p, axis=1)
        return np.argsort(ps[:, -1] - ps[:, -2], kind="stable")[:k]
    if strategy == "ranked_batch":
        a = m / (m + len(X_labelled)) if alpha is None else alpha
        U = 1.0 - p.max(1)
        d2 = ((X_pool[:, None, :] - X_labelled[None, :, :]) ** 2).sum(-1)
        dmin = np.sqrt(d2.min(1))
        chosen = []
        avail = np.ones(m, bool)
        for _ in range(k):
            score = a * (1.0 - 1.0 / (1.0 + dmin)) + (1.0 - a) * U
            score[~avail] = -np.inf
            j = int(np.argmax(score))
            chosen.append(j)
            avail[j] = False
            dmin = np.minimum(dmin, np.sqrt(((X_pool - X_pool[j]) ** 2).sum(1)))
        return np.array(chosen)
    raise ValueError(f"strategy={strategy!r}, expected one of {STRATEGIES}")


def run_active_learning(pool: Pool, strategy: str, seed: int, n_initial: int, batch_size: int,
                        n_rounds: int, test_fraction: float = 0.25,
                        labeller: str = DEFAULT_LABELLER, n_estimators: int = 100,
                        test_label_cache: dict | None = None) -> pd.DataFrame:
    """One learning curve: geometry-held-out test set, ``n_initial`` random labels, then
    ``n_rounds`` queries of ``batch_size`` chosen by ``strategy``; the labeller is called on every
    queried batch. Returns rows (strategy, seed, n_labels, accuracy, labeller_calls).

    ``test_label_cache``: a dict shared by the curves of one pool (see :func:`learning_curves`);
    the test set depends only on the seed, so its labels are computed once per (labeller, seed,
    test rows) and reused by every strategy. The labelling still counts as one labeller call
    of each curve, as without the cache."""
    label_fn = resolve_labeller(labeller)
    if n_initial < 2 or batch_size < 1 or n_rounds < 0:
        raise ValueError(f"n_initial={n_initial} (>= 2), batch_size={batch_size} (>= 1), "
                         f"n_rounds={n_rounds} (>= 0)")
    rng = np.random.default_rng(seed)
    tr, te = geometry_split(pool.gid, test_fraction, rng)
    feats = pool.features[list(POTENTIAL_FEATURES) + list(COUNT_FEATURES)].to_numpy(float)
    mu, sd = feats[tr].mean(0), feats[tr].std(0) + 1e-12
    X = (feats - mu) / sd
    calls = 0
    key = (labeller, seed, len(pool), te.tobytes())
    if test_label_cache is not None and key in test_label_cache:
        y_test = test_label_cache[key]
    else:
        y_test = label_fn(pool.take(te), seed=seed)
        if test_label_cache is not None:
            test_label_cache[key] = y_test
    calls += 1
    lab = list(rng.choice(tr, size=min(n_initial, len(tr)), replace=False))
    y_lab = list(label_fn(pool.take(np.array(lab)), seed=seed))
    calls += 1
    rows = []
    nc = len(VACUUM_CLASSES)
    for rnd in range(n_rounds + 1):
        clf = _classifier(seed, n_estimators).fit(X[lab], y_lab)
        acc = float((clf.predict(X[te]) == y_test).mean())
        rows.append(dict(strategy=strategy, seed=seed, round=rnd, n_labels=len(lab),
                         accuracy=acc, labeller_calls=calls))
        if rnd == n_rounds:
            break
        cand = np.setdiff1d(tr, lab)
        if len(cand) == 0:
            break
        pick = cand[select_batch(strategy, _proba_full(clf, X[cand], nc), X[cand], X[lab],
                                 batch_size, rng)]
        y_new = label_fn(pool.take(pick), seed=seed)
        calls += 1
        lab += list(pick)
        y_lab += list(y_new)
    return pd.DataFrame(rows)


def learning_curves(pool: Pool, strategies, seeds, n_initial: int, batch_size: int,
                    n_rounds: int, test_fraction: float = 0.25,
                    labeller: str = DEFAULT_LABELLER, n_estimators: int = 100) -> pd.DataFrame:
    """All (strategy, seed) curves stacked: columns strategy, seed, round, n_labels, accuracy,
    labeller_calls."""
    cache: dict = {}  # test labels per seed, shared by the strategies (the same test rows)
    return pd.concat([run_active_learning(pool, s, int(seed), n_initial, batch_size, n_rounds,
                                          test_fraction, labeller, n_estimators, cache)
                      for s in strategies for seed in seeds], ignore_index=True)


def final_accuracy(curves: pd.DataFrame) -> pd.DataFrame:
    """The last round of every (strategy, seed) curve: columns strategy, seed, n_labels,
    accuracy."""
    last = curves.loc[curves.groupby(["strategy", "seed"])["round"].idxmax()]
    return last[["strategy", "seed", "n_labels", "accuracy"]].reset_index(drop=True)


def leakage_check(table: pd.DataFrame, target: str, seeds, test_fraction: float = 0.25,
                  n_estimators: int = 100) -> pd.DataFrame:
    """Geometry-held-out accuracy of a random forest predicting ``table[target]`` from feature
    sets: majority class, n_moduli only, potential coefficients, coefficients + n_moduli, and
    coefficients + solver outputs (φ*, iterations, V*, eigenvalues: leaks the answer).
    Returns rows (features, seed, accuracy). ``table`` is the output of
    :func:`physml.vacua.scan.label_geometries` plus the feature columns."""
    sets = {"majority class": [], "n_moduli only": list(COUNT_FEATURES),
            "coefficients": list(POTENTIAL_FEATURES),
            "coefficients + n_moduli": list(POTENTIAL_FEATURES) + list(COUNT_FEATURES),
            "coefficients + solver outputs (leaky)": list(POTENTIAL_FEATURES)
            + list(SOLVER_OUTPUTS)}
    y = table[target].astype(str).to_numpy()
    rows = []
    for seed in seeds:
        rng = np.random.default_rng(int(seed))
        tr, te = geometry_split(table.gid.to_numpy(), test_fraction, rng)
        for name, cols in sets.items():
            if not cols:
                vals, cnt = np.unique(y[tr], return_counts=True)
                acc = float((y[te] == vals[cnt.argmax()]).mean())
            else:
                X = table[cols].to_numpy(float)
                clf = _classifier(int(seed), n_estimators).fit(X[tr], y[tr])
                acc = float((clf.predict(X[te]) == y[te]).mean())
            rows.append(dict(features=name, seed=int(seed), accuracy=acc))
    return pd.DataFrame(rows)


def scan_table_with_classes(table: pd.DataFrame) -> pd.DataFrame:
    """Add ``vacuum_class`` (names of :data:`VACUUM_CLASSES`) and the coefficient features
    c_rms, c_max to a scan table (uses n_displaced, n_moduli, converged, c_norm)."""
    t = table.copy()
    code = np.where(t.n_displaced == 0, 0, np.where(t.n_displaced >= t.n_moduli, 2, 1))
    code = np.where(t.converged & (t.label != LABELS[FAILED]), code, 3)
    t["vacuum_class"] = np.asarray(VACUUM_CLASSES)[code]
    t["c_rms"] = t.c_norm / np.sqrt(t.n_moduli)
    return t


def closed_form_class(P: PotentialParams) -> np.ndarray:
    """The closed-form vacuum-class rule, codes ``(B,)`` into :data:`VACUUM_CLASSES`.

    At φ = 0 the kink term −A exp(−a Σ|φ_i|) pulls every modulus back with slope a·A while the
    tilt pushes with |c_i| (every other term is flat there), so modulus i leaves its kink when
    |c_i| > a·A: pinned when none does, all displaced when every real modulus does, partly
    displaced otherwise. Exact for one modulus without Λ; it ignores the couplings Λ and the
    weakening of the kink once other moduli have moved. It never predicts ``failed``.
    """
    mask = np.asarray(P.mask) > 0
    push = np.abs(np.asarray(P.c)) > (np.asarray(P.a) * np.asarray(P.A))[:, None]
    n_disp = (push & mask).sum(1)
    return np.where(n_disp == 0, 0, np.where(n_disp >= mask.sum(1), 2, 1))


def accuracy_table(df: pd.DataFrame, group: str, value: str = "accuracy",
                   bounds=UNIT_INTERVAL) -> pd.DataFrame:
    """Mean and 95% CI over seeds of ``value`` per ``group`` (:func:`physml.stats.summarize`):
    columns group, mean, ci_low, ci_high, n. ``bounds``: the value's range (None: unbounded)."""
    from physml import stats

    return stats.summarize(df, value=value, by=group, bounds=bounds)


def cis_by(df: pd.DataFrame, group: str, value: str = "accuracy",
           bounds=UNIT_INTERVAL) -> dict:
    """``{snake_case(group value): stats.CI}`` over seeds (per-seed samples kept), ready for
    :func:`physml.results.record` (one key per group). ``bounds`` as in :func:`accuracy_table`."""
    from physml import stats

    return stats.summarize({key_of(k): g[value].to_numpy()
                            for k, g in df.groupby(group, sort=False)}, bounds=bounds)


def key_of(name: str) -> str:
    """A results key from a display name: 'graph + coefficients' -> 'graph_coefficients'."""
    out = "".join(ch if ch.isalnum() else "_" for ch in str(name).lower())
    return "_".join(part for part in out.split("_") if part)


def paired_against(df: pd.DataFrame, group: str, baseline: str, margin: float,
                   value: str = "accuracy", pair_on: str = "seed") -> pd.DataFrame:
    """Every other group against ``baseline`` on the same ``pair_on`` values
    (:func:`physml.stats.compare`, higher is better, tie = TOST within ``margin``): columns
    group, diff, ci_low, ci_high, tost_p, verdict (:attr:`physml.stats.Verdict.word`:
    "better" / "worse" than the baseline, "equivalent", "inconclusive")."""
    from physml import stats

    wide = df.pivot_table(index=pair_on, columns=group, values=value)
    if baseline not in wide.columns:
        raise ValueError(f"baseline {baseline!r} not among {list(wide.columns)}")
    rows = []
    for other in wide.columns:
        if other == baseline:
            continue
        v = stats.compare(wide[other].to_numpy(), wide[baseline].to_numpy(), better="higher",
                          margin=margin)
        rows.append({group: other, "diff": v.diff.mean, "ci_low": v.diff.low,
                     "ci_high": v.diff.high, "tost_p": v.tost_p, "verdict": v.word})
    return pd.DataFrame(rows)


def verdicts_against(df: pd.DataFrame, group: str, baseline: str, margin: float,
                     value: str = "accuracy", pair_on: str = "seed") -> dict:
    """``{snake_case(group): stats.Verdict}`` of every other group against ``baseline`` (for
    :func:`physml.results.record`: the difference CI and the verdict per key)."""
    from physml import stats

    wide = df.pivot_table(index=pair_on, columns=group, values=value)
    return {key_of(o): stats.compare(wide[o].to_numpy(), wide[baseline].to_numpy(),
                                     better="higher", margin=margin)
            for o in wide.columns if o != baseline}


def describe_pairs(pairs: pd.DataFrame, key: str) -> str:
    """One sentence fragment per row of :func:`paired_against`: 'name: +d [lo, hi] (verdict)'."""
    return "; ".join(f"{r[key]}: {format_interval(r['diff'], r['ci_low'], r['ci_high'], '+.3f')}"
                     f" ({r['verdict']})" for _, r in pairs.iterrows())
