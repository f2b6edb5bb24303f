"""Baselines for the CNC tasks, scored on leak-free splits from :mod:`physml.splits`.

Methods (each is fitted on the training rows of a split only):

- ``majority``: the most frequent training label.
- ``clock`` (*named baseline; no sensor*): the most frequent training label among files of the
  same kind at the same row position. ``clock_key="kind"`` (default) is the operation as the
  file name states it (``face``, ``face150025``, ``damageface``: operation and campaign, as the
  source names its operations); ``"program"`` uses the recovered program; ``"operation"`` only
  face/pocket/adaptive. It knows what was run and the time since the start, nothing else: this
  is the bar a sensor model must clear.
- ``logreg``: standardised trailing-window statistics of the allowed sensor/motor channels →
  multinomial logistic regression (class-balanced weights).
- ``gbm``: the same features → scikit-learn histogram gradient boosting (class-balanced).
- ``nn1``: 1-nearest neighbour on the standardised window statistics.
- ``motion_logreg`` / ``motion_gbm``: the physics-motivated motion features of
  :mod:`physml.cnc.motion` (centred multi-scale level, spread and activity of each allowed
  channel, and the rotation sense of planar pairs: the x/y drive signals and each node's
  magnetometer, accelerometer and gyro) → logistic regression (class-balanced weights) or
  gradient boosting (fitted unweighted, its posteriors divided by the training class
  frequencies: the prior-shift rule for balanced accuracy, without scikit-learn's slow weighted
  binning). Task (a) only; computed when :func:`prepare` is given ``motion_halves``.
- ``kinematics_leaky`` (*leaky reference, labelled as such*): 1-nearest neighbour on the
  controller's reported position ``posx posy posz``. Positions are the kinematics themselves, so
  this is a ceiling that uses forbidden inputs, never a competitor.

Scores per fold: token accuracy (free-running, per line, EOS excluded; see
:func:`physml.cnc.tokens.token_accuracy`), exact-line accuracy (predicted text equals the
true text), per-token-type accuracy, and balanced accuracy for classes.

Fits run with one BLAS/OpenMP thread (``threadpoolctl``): on a shared 2-core machine a
multi-threaded BLAS spinning against other processes made a logistic regression 25x slower.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score as _sk_balanced_accuracy
from threadpoolctl import threadpool_limits

from physml import splits as _splits
from physml.parallel import map_tasks

from . import tokens
from .data import CNCData
from .features import COMMON_SOURCES, model_input_columns, window_features

LINE_METHODS: tuple[str, ...] = ("majority", "clock", "nn1", "kinematics_leaky")
COMMAND_METHODS: tuple[str, ...] = ("majority", "clock", "logreg", "gbm", "nn1")
#: Task-(a) methods on the motion features (:mod:`physml.cnc.motion`).
MOTION_METHODS: tuple[str, ...] = ("motion_logreg", "motion_gbm")
LEAKY_METHODS: frozenset[str] = frozenset({"kinematics_leaky"})
KINEMATIC_COLUMNS: tuple[str, ...] = ("posx", "posy", "posz")


@dataclass
class Prepared:
    """Rows with their labels and features, computed once.

    ``labels``: frame with ``file row operation campaign program command gcode_string``.
    ``X``: ``(n_rows, n_features)`` float32 window statistics of ``feature_columns`` only.
    ``kinematics``: ``(n_rows, 3)`` controller positions, used by ``kinematics_leaky`` only.
    ``motion`` / ``motion_names``: ``(n_rows, n_motion)`` float32 motion features of
    ``feature_columns`` (:func:`physml.cnc.motion.motion_features`), or ``None`` when not
    computed.
    """

    labels: pd.DataFrame
    X: np.ndarray
    feature_names: list[str]
    feature_columns: list[str]
    kinematics: np.ndarray
    programs: list[tokens.Program]
    motion: np.ndarray | None = None
    motion_names: list[str] | None = None


def prepare(data: CNCData, window: int, sources: Sequence[str] = COMMON_SOURCES,
            stats: Sequence[str] = ("mean", "std", "min", "max"),
            per_file: str = "standardise",
            motion_halves: Sequence[int] | None = None) -> Prepared:
    """Labels (program, modal command class) and trailing-window features of ``data``
    (see :func:`physml.cnc.features.window_features` for ``stats`` and ``per_file``).
    ``motion_halves``: half windows (rows) of the motion features of the ``motion_*``
    methods (:func:`physml.cnc.motion.motion_features`, same columns and ``per_file``);
    ``None`` skips them."""
    rows = data.rows
    programs = tokens.recover_programs(rows)
    prog = tokens.program_of_file(programs)
    meta = data.files.set_index("file")
    cols = model_input_columns(sources)
    X, names = window_features(rows, cols, window, stats=stats, per_file=per_file)
    labels = pd.DataFrame({
        "file": rows["file"].to_numpy(),
        "row": rows["row"].to_numpy(),
        "operation": meta.loc[rows["file"], "operation"].to_numpy(),
        "campaign": meta.loc[rows["file"], "campaign"].to_numpy(),
        "kind": meta.loc[rows["file"], "kind"].to_numpy(),
        "program": rows["file"].map(prog).to_numpy(),
        "command": tokens.command_classes(rows, programs),
        "gcode_string": rows["gcode_string"].to_numpy(),
    })
    kin = rows[list(KINEMATIC_COLUMNS)].to_numpy(dtype=np.float64)
    motion_X = motion_names = None
    if motion_halves is not None:
        from .motion import motion_features

        motion_X, motion_names = motion_features(rows, cols, halves=motion_halves,
                                                 per_file=per_file)
    return Prepared(labels, X, names, cols, kin, programs, motion_X, motion_names)


def file_splits(prep: Prepared, n_splits: int, seeds: Sequence[int]) -> list[tuple[int, object]]:
    """Leave-file-out grouped K-fold for each seed: ``[(seed, Split), ...]``."""
    g = prep.labels["file"].to_numpy()
    return [(s, sp) for s in seeds for sp in _splits.group_kfold(g, n_splits, seed=s, what="file")]


def program_splits(prep: Prepared) -> list[tuple[int, object]]:
    """Leave-one-program-out: ``[(0, Split), ...]`` (deterministic, seed 0)."""
    g = prep.labels["program"].to_numpy()
    return [(0, sp) for sp in _splits.leave_one_group_out(g, what="program")]


def balanced_accuracy_score(y_true, y_pred) -> float:
    """scikit-learn's balanced accuracy (mean recall over the classes present in ``y_true``);
    a predicted class absent from ``y_true`` simply scores as wrong, without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return float(_sk_balanced_accuracy(y_true, y_pred))


def _mode_table(keys: pd.DataFrame, y: np.ndarray) -> pd.DataFrame:
    """The most frequent label ``y`` of each distinct row of ``keys`` (ties: the smallest
    label, so the rule is deterministic), sorted by the keys."""
    t = keys.assign(y=y).groupby(list(keys.columns) + ["y"]).size().reset_index(name="n")
    t = t.sort_values(list(keys.columns) + ["n", "y"],
                      ascending=[True] * len(keys.columns) + [False, True])
    return t.drop_duplicates(list(keys.columns)).drop(columns="n")


CLOCK_KEYS: tuple[str, ...] = ("kind", "program", "operation")


def clock_predict(train: pd.DataFrame, test: pd.DataFrame, y_train: np.ndarray,
                  key: str = "kind") -> np.ndarray:
    """The clock rule: most frequent training label at (``key``, row). A row position that no
    training file of that ``key`` reached uses the nearest earlier one. ``train``/``test``
    hold ``key`` and ``row``; shapes ``(n_train,)`` labels, ``(n_test,)`` result."""
    if key not in CLOCK_KEYS:
        raise ValueError(f"clock key must be one of {CLOCK_KEYS}, got {key!r}")
    table = _mode_table(train[[key, "row"]], y_train)
    missing = set(test[key]) - set(table[key])
    if missing:
        raise ValueError(f"clock rule: {key} {sorted(missing)} has no training file")
    q = test[[key, "row"]].reset_index(drop=True)
    out = np.empty(len(q), dtype=object)
    for k, g in table.groupby(key):
        idx = np.flatnonzero((q[key] == k).to_numpy())
        pos = np.searchsorted(g["row"].to_numpy(), q["row"].to_numpy()[idx], "right") - 1
        out[idx] = g["y"].to_numpy()[np.maximum(pos, 0)]
    return out


def _standardise(Xtr: np.ndarray, Xte: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scaler fitted on the training rows only; zero-variance columns left unscaled."""
    mu = Xtr.mean(axis=0)
    sd = Xtr.std(axis=0)
    sd[sd == 0] = 1.0
    return ((Xtr - mu) / sd).astype(np.float32), ((Xte - mu) / sd).astype(np.float32)


def nn1_predict(Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray,
                standardise: bool = True) -> np.ndarray:
    """1-nearest-neighbour labels (Euclidean, brute force, scikit-learn)."""
    from sklearn.neighbors import KNeighborsClassifier

    if standardise:
        Xtr, Xte = _standardise(Xtr, Xte)
    if not (np.isfinite(Xtr).all() and np.isfinite(Xte).all()):
        raise ValueError("1-NN features contain NaN: choose sources present in every file")
    with threadpool_limits(limits=1), warnings.catch_warnings():
        # scikit-learn warns when most labels are unique (lines): irrelevant for 1-NN
        warnings.simplefilter("ignore", UserWarning)
        knn = KNeighborsClassifier(n_neighbors=1, algorithm="brute").fit(Xtr, ytr)
        return knn.predict(Xte)


def fit_classifier(method: str, Xtr, ytr, seed: int, gbm_iter: int = 100,
                   logreg_c: float = 1.0, gbm_min_leaf: int = 20, balanced: bool = True):
    """Fit ``logreg`` (training-set scaler + multinomial logistic regression) or ``gbm``
    (histogram gradient boosting, NaN-tolerant) with class-balanced weights; returns the
    fitted scikit-learn estimator (``predict``/``predict_proba``).

    Cost note: with ``class_weight="balanced"`` scikit-learn (1.9) bins each feature with
    weighted percentiles, ~2-10 s per fit on the 220 window features whatever the row count.
    ``gbm_min_leaf``: minimum samples per leaf (scikit-learn's default 20 leaves a tree with
    no split on the ~90 training files of a per-file task; those use 3).
    ``balanced=False``: no class weights (calibrated posteriors, and much faster binning)."""
    cw = "balanced" if balanced else None
    if method == "logreg":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        clf = make_pipeline(StandardScaler(),
                            LogisticRegression(C=logreg_c, max_iter=300, class_weight=cw))
    elif method == "gbm":
        from sklearn.ensemble import HistGradientBoostingClassifier

        clf = HistGradientBoostingClassifier(max_iter=gbm_iter, class_weight=cw,
                                             max_bins=63, random_state=seed,
                                             min_samples_leaf=gbm_min_leaf,
                                             early_stopping=False)
    else:
        raise ValueError(f"unknown classifier {method!r}; use 'logreg' or 'gbm'")
    from joblib import parallel_config
    from sklearn.exceptions import ConvergenceWarning

    with threadpool_limits(limits=1), parallel_config(backend="sequential"), \
            warnings.catch_warnings():
        # logistic regression stops at max_iter=300 on some folds (lbfgs tolerance not met);
        # the scores are what that fit gives, the warning would only flood the report
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clf.fit(Xtr, ytr)


def prior_shift_gbm_predict(Xtr, ytr, Xte, seed: int, gbm_iter: int = 100) -> np.ndarray:
    """Gradient boosting fitted without class weights; each test row gets the class that
    maximises ``p(class | x) / p_train(class)`` (the prior-shift rule: under balanced test
    priors it is the Bayes rule, the target of balanced accuracy). Shapes ``(n_train, f)``,
    ``(n_train,)``, ``(n_test, f)`` → ``(n_test,)``."""
    clf = fit_classifier("gbm", Xtr, ytr, seed, gbm_iter, balanced=False)
    with threadpool_limits(limits=1):
        P = clf.predict_proba(Xte)
    return prior_shift(P, clf.classes_, ytr)


def prior_shift(P: np.ndarray, classes: np.ndarray, ytr: np.ndarray) -> np.ndarray:
    """``classes[argmax_k P[:, k] / freq_k]`` with ``freq_k`` the share of class ``k`` in
    ``ytr``. ``P``: ``(n, k)`` posteriors in the order of ``classes``."""
    ytr = np.asarray(ytr)
    freq = np.array([np.mean(ytr == c) for c in classes])
    if P.shape[1] != len(classes) or np.any(freq == 0):
        raise ValueError(f"prior_shift: {P.shape[1]} posterior columns for classes "
                         f"{list(classes)} with training shares {freq.tolist()}")
    return np.asarray(classes)[np.argmax(P / freq, axis=1)]


def classifier_predict(method: str, Xtr, ytr, Xte, seed: int, gbm_iter: int = 100,
                       logreg_c: float = 1.0, gbm_min_leaf: int = 20) -> np.ndarray:
    """Fit ``logreg`` or ``gbm`` on the training rows (:func:`fit_classifier`) and predict
    the test rows."""
    clf = fit_classifier(method, Xtr, ytr, seed, gbm_iter, logreg_c, gbm_min_leaf)
    with threadpool_limits(limits=1):
        return clf.predict(Xte)


def predict(method: str, prep: Prepared, train: np.ndarray, test: np.ndarray, target: str,
            seed: int, train_stride: int = 1, gbm_iter: int = 100,
            clock_key: str = "kind") -> np.ndarray:
    """Predictions of ``method`` for ``target`` (a column of ``prep.labels``) on ``test`` rows
    after fitting on ``train`` rows (index arrays; ``train_stride`` thins training rows for
    the fitted models: rows of overlapping windows are near-duplicates)."""
    lab = prep.labels
    y = lab[target].to_numpy()
    fitted = ("logreg", "gbm", "nn1", "kinematics_leaky") + MOTION_METHODS
    tr = train[::train_stride] if method in fitted else train
    if method == "majority":
        vals, counts = np.unique(y[train].astype(str), return_counts=True)
        return np.full(len(test), vals[np.argmax(counts)], dtype=object)
    if method == "clock":
        return clock_predict(lab.iloc[train], lab.iloc[test], y[train], clock_key)
    if method == "nn1":
        return nn1_predict(prep.X[tr], y[tr], prep.X[test])
    if method == "kinematics_leaky":
        return nn1_predict(prep.kinematics[tr], y[tr], prep.kinematics[test], standardise=False)
    if method in ("logreg", "gbm"):
        return classifier_predict(method, prep.X[tr], y[tr], prep.X[test], seed, gbm_iter)
    if method in MOTION_METHODS:
        if prep.motion is None:
            raise ValueError(f"method {method!r} needs motion features: call "
                             "prepare(..., motion_halves=[...])")
        M = prep.motion
        if method == "motion_logreg":
            return classifier_predict("logreg", M[tr], y[tr], M[test], seed)
        return prior_shift_gbm_predict(M[tr], y[tr], M[test], seed, gbm_iter)
    raise ValueError(f"unknown method {method!r}")


#: Distinctions :func:`separability` measures: ``name: (positive classes, negative classes)``.
SEPARABILITY_PAIRS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "G0 vs G1": (("G0",), ("G1",)),
    "arc vs G1": (("G2", "G3"), ("G1",)),
    "G3 vs G2": (("G3",), ("G2",)),
}


def separability(prep: Prepared, split_list, seed: int = 0, train_stride: int = 4,
                 gbm_iter: int = 100) -> pd.DataFrame:
    """Which distinctions between command classes the sensors carry on unseen data: per fold,
    the ``motion_gbm`` fit (gradient boosting on the motion features, no class weights) and,
    for each pair of :data:`SEPARABILITY_PAIRS`, the ROC AUC over the fold's test rows of those
    classes of the posterior share ``P(pos) / (P(pos) + P(neg))`` (0.5: no information; 1: the
    positive classes always rank above). A threshold-free measure: it does not depend on how the
    classes' shares differ between programs. Returns ``held_out pair auc n_pos n_neg`` (``auc``
    NaN where the fold lacks rows of either side)."""
    from sklearn.metrics import roc_auc_score

    if prep.motion is None:
        raise ValueError("separability needs motion features: call prepare(..., "
                         "motion_halves=[...])")
    y = prep.labels["command"].to_numpy()
    moving = np.flatnonzero(y != "none")
    out = []
    for _, sp in split_list:
        tr = np.intersect1d(sp.train, moving)[::train_stride]
        te = np.intersect1d(sp.test, moving)
        clf = fit_classifier("gbm", prep.motion[tr], y[tr], seed, gbm_iter, balanced=False)
        with threadpool_limits(limits=1):
            P = clf.predict_proba(prep.motion[te])
        known = [str(c) for c in clf.classes_]

        def share(classes, P=P, known=known):
            cols = [known.index(c) for c in classes if c in known]
            return P[:, cols].sum(axis=1) if cols else np.zeros(len(P))

        held = " ".join(sorted(set(prep.labels["program"].to_numpy()[te].tolist())))
        for name, (pos, neg) in SEPARABILITY_PAIRS.items():
            is_pos, is_neg = np.isin(y[te], pos), np.isin(y[te], neg)
            m = is_pos | is_neg
            a, b = share(pos)[m], share(neg)[m]
            auc = (float(roc_auc_score(is_pos[m], a / np.maximum(a + b, 1e-12)))
                   if is_pos.any() and is_neg.any() else float("nan"))
            out.append({"held_out": held, "pair": name, "auc": auc,
                        "n_pos": int(is_pos.sum()), "n_neg": int(is_neg.sum())})
    return pd.DataFrame(out)


def bound_if_indistinguishable(labels: pd.DataFrame, split_list,
                               alike: Sequence[str] = ("G1", "G2", "G3")
                               ) -> tuple[float, list[int]]:
    """Best balanced accuracy any rule could reach if the classes ``alike`` could not be told
    apart and every other class were recognised perfectly: each test row of those classes gets
    one label whatever its class, so their recalls sum to at most 1, and on a fold with ``k``
    classes the bound is ``(others present + [any of alike present]) / k``. Returns the mean
    over the folds of ``split_list`` and each fold's number of classes (``labels["command"]``,
    rows of class "none" left out)."""
    y = labels["command"].to_numpy()
    bounds, ks = [], []
    for _, sp in split_list:
        present = set(y[sp.test].tolist()) - {"none"}
        if not present:
            raise ValueError(f"bound_if_indistinguishable: fold {sp.fold} has no moving row")
        bounds.append((len(present - set(alike)) + bool(present & set(alike))) / len(present))
        ks.append(len(present))
    return float(np.mean(bounds)), ks


def score_lines(pred: Sequence[str], true: Sequence[str]) -> dict[str, float]:
    """Token accuracy (all, and per type), and exact-line accuracy over rows."""
    s = tokens.line_token_scores(list(pred), list(true))
    out = {"token_accuracy": s["hit"].sum() / s["n"].sum(),
           "line_exact_accuracy": float(s["exact"].mean())}
    for k in ("command", "axis", "value"):
        n = s[f"n_{k}"].sum()
        out[f"token_accuracy_{k}"] = float(s[f"hit_{k}"].sum() / n) if n else float("nan")
    return out


def line_scores(prep: Prepared, task: tuple) -> dict:
    """One task of :func:`run_line_task`: ``task = (method, seed, split, train_stride,
    clock_key)`` -> its row (method, seed, fold, token / exact-line / per-type accuracy)."""
    m, seed, sp, train_stride, clock_key = task
    true = prep.labels["gcode_string"].to_numpy()[sp.test]
    pred = predict(m, prep, sp.train, sp.test, "gcode_string", seed, train_stride,
                   clock_key=clock_key)
    return {"method": m, "seed": seed, "fold": sp.fold, **score_lines(pred, true)}


def run_line_task(prep: Prepared, split_list, methods: Sequence[str] = LINE_METHODS,
                  train_stride: int = 1, clock_key: str = "kind", client=None) -> pd.DataFrame:
    """Task (b) per method × seed × fold: token, exact-line and per-type accuracy.

    Each (seed, fold, method) is one task (:func:`line_scores`), run here one after another
    or, with a Dask ``client`` (:func:`physml.parallel.start_client`), on its workers (``prep``
    sent to each once); rows in the same order either way."""
    tasks = [(m, seed, sp, train_stride, clock_key) for seed, sp in split_list for m in methods]
    return pd.DataFrame(map_tasks(line_scores, tasks, client=client, shared=prep))


def command_scores(prep: Prepared, task: tuple) -> dict:
    """One task of :func:`run_command_task`: ``task = (method, seed, split, train_stride,
    gbm_iter, clock_key)`` -> its row."""
    m, seed, sp, train_stride, gbm_iter, clock_key = task
    moving = np.flatnonzero(prep.labels["command"].to_numpy() != "none")
    tr, te = np.intersect1d(sp.train, moving), np.intersect1d(sp.test, moving)
    y = prep.labels["command"].to_numpy()[te]
    held = " ".join(sorted(set(prep.labels["program"].to_numpy()[te].tolist())))
    pred = predict(m, prep, tr, te, "command", seed, train_stride, gbm_iter, clock_key)
    return {"method": m, "seed": seed, "fold": sp.fold, "held_out": held,
            "command_balanced_accuracy": balanced_accuracy_score(y, pred),
            **class_recalls(y, pred)}


def run_command_task(prep: Prepared, split_list, methods: Sequence[str] = COMMAND_METHODS,
                     train_stride: int = 1, gbm_iter: int = 100,
                     clock_key: str = "kind", client=None) -> pd.DataFrame:
    """Task (a) per method × seed × fold: balanced accuracy of G0/G1/G2/G3 per row (rows
    whose line moves nothing, class "none", are left out of training and scoring), the
    held-out program(s), and the recall of each class ``recall_G0 .. recall_G3`` (NaN where
    the fold's test rows lack that class). One task per (seed, fold, method)
    (:func:`command_scores`), on ``client``'s workers if given, as :func:`run_line_task`."""
    tasks = [(m, seed, sp, train_stride, gbm_iter, clock_key)
             for seed, sp in split_list for m in methods]
    return pd.DataFrame(map_tasks(command_scores, tasks, client=client, shared=prep))


def class_recalls(y_true, y_pred, classes: Sequence[str] = tokens.MOTION_CLASSES
                  ) -> dict[str, float]:
    """``{"recall_<class>": share of the rows of that class predicted as it}`` (NaN when
    ``y_true`` has no row of the class). Their mean over present classes is the balanced
    accuracy."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    out = {}
    for c in classes:
        m = y_true == c
        out[f"recall_{c}"] = float(np.mean(y_pred[m] == c)) if m.any() else float("nan")
    return out


def recall_table(scores: pd.DataFrame, methods: Sequence[str] | None = None,
                 classes: Sequence[str] = tokens.MOTION_CLASSES, fmt: str = ".2f"
                 ) -> pd.DataFrame:
    """Per method, each class's recall as ``mean [low, high]`` over the folds that hold the
    class (:func:`physml.stats.summarize`, unit interval; the bare value when one fold holds
    it, "—" when none does), with the number of those folds ``(n=…)``."""
    from physml import stats

    methods = list(dict.fromkeys(scores["method"])) if methods is None else list(methods)
    out = []
    for m in methods:
        g = scores[scores["method"] == m]
        row = {"method": m}
        for c in classes:
            v = g[f"recall_{c}"].dropna().to_numpy()
            if len(v) >= 2:
                txt = stats.summarize({c: v}, bounds=stats.UNIT_INTERVAL)[c].format(fmt)
            else:  # one fold holds the class: no interval
                txt = format(v[0], fmt) if len(v) else "—"
            row[f"{c} recall"] = f"{txt} (n={len(v)})" if len(v) else txt
        out.append(row)
    return pd.DataFrame(out)


def summarize_scores(scores: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Mean and 95% CI over seeds × folds per method (via :func:`physml.stats.summarize`)."""
    from physml import stats

    parts = []
    for m in metrics:
        s = stats.summarize(scores, value=m, by="method", bounds=stats.UNIT_INTERVAL)
        parts.append(s.assign(metric=m))
    return pd.concat(parts, ignore_index=True)


def by_method(scores: pd.DataFrame, metric: str, by: str = "method") -> dict[str, np.ndarray]:
    """``{method: per-fold values of metric}`` (rows of each method in their order), the input
    :func:`physml.stats.summarize` turns into ``{method: CI}``."""
    if metric not in scores.columns or by not in scores.columns:
        raise KeyError(f"scores lack column {metric!r} or {by!r}; have {list(scores.columns)}")
    return {str(k): g[metric].to_numpy() for k, g in scores.groupby(by, sort=False)}


def per_fold(scores: pd.DataFrame, metric: str, method: str) -> np.ndarray:
    """``metric`` of one method ordered by (seed, fold), for paired comparisons."""
    s = scores[scores["method"] == method].sort_values(["seed", "fold"])
    if s.empty:
        raise KeyError(f"no scores for method {method!r}")
    return s[metric].to_numpy()


# ---------------------------------------------------------------- per-file tasks (c), (d)

FILE_METHODS: tuple[str, ...] = ("majority", "duration", "logreg", "gbm")


def file_table(data: CNCData, sources: Sequence[str] = COMMON_SOURCES
               ) -> tuple[pd.DataFrame, np.ndarray]:
    """Per-file labels (``operation campaign damaged program n_rows``) and features
    ``(n_files, 2 c)``: mean and standard deviation of each allowed raw channel."""
    from .features import file_features

    programs = tokens.recover_programs(data.rows)
    prog = tokens.program_of_file(programs)
    cols = model_input_columns(sources)
    F, _ = file_features(data.rows, cols)
    meta = data.files.set_index("file").loc[F.index]
    lab = pd.DataFrame({"file": F.index, "operation": meta["operation"].to_numpy(),
                        "campaign": meta["campaign"].to_numpy(),
                        "damaged": meta["damaged"].astype(str).to_numpy(),
                        "program": [prog[f] for f in F.index],
                        "n_rows": meta["n_rows"].to_numpy()})
    return lab, F.to_numpy(dtype=np.float64)


def run_file_task(labels: pd.DataFrame, F: np.ndarray, target: str, n_splits: int,
                  seeds: Sequence[int], methods: Sequence[str] = FILE_METHODS,
                  gbm_iter: int = 100, subset: np.ndarray | None = None) -> pd.DataFrame:
    """Per-file classification of ``target`` (a column of ``labels``), leave-file-out K-fold.

    ``duration`` (*named baseline; no sensor*) is 1-NN on the file's number of rows.
    ``subset``: boolean mask of files to use (e.g. only the programs that had damaged runs).
    """
    idx = np.arange(len(labels)) if subset is None else np.flatnonzero(subset)
    lab = labels.iloc[idx].reset_index(drop=True)
    X = F[idx]
    y = lab[target].astype(str).to_numpy()
    recs = []
    for seed in seeds:
        for sp in _splits.group_kfold(lab["file"].to_numpy(), n_splits, seed=seed, what="file"):
            tr, te = sp.train, sp.test
            for m in methods:
                if m == "majority":
                    vals, counts = np.unique(y[tr], return_counts=True)
                    pred = np.full(len(te), vals[np.argmax(counts)], dtype=object)
                elif m == "duration":
                    n = lab["n_rows"].to_numpy(dtype=float)[:, None]
                    pred = nn1_predict(n[tr], y[tr], n[te], standardise=False)
                elif m in ("logreg", "gbm"):
                    pred = classifier_predict(m, X[tr], y[tr], X[te], seed, gbm_iter,
                                              gbm_min_leaf=3)
                else:
                    raise ValueError(f"unknown file method {m!r}; use {FILE_METHODS}")
                recs.append({"method": m, "seed": seed, "fold": sp.fold, "target": target,
                             "balanced_accuracy": balanced_accuracy_score(y[te], pred)})
    return pd.DataFrame(recs)


def wide_table(scores: pd.DataFrame, metrics: Sequence[str], fmt: str = ".3f") -> pd.DataFrame:
    """One row per method, one column per metric: ``mean [low, high]`` over seeds × folds."""
    from physml import stats

    out = {}
    for m in metrics:
        cis = stats.summarize(by_method(scores, m), bounds=stats.UNIT_INTERVAL)
        out[m] = {k: v.format(fmt) for k, v in cis.items()}
    t = pd.DataFrame(out)
    t.index.name = "method"
    return t.reset_index()


# ---------------------------------------------------------------- physics check, task (a)

def physics_check(data: CNCData, prep: Prepared, half: int = 2,
                  nodes: Sequence[str] | None = None) -> pd.DataFrame:
    """Does a signal carry the motion the command class needs? Per planar signal pair, the
    ROC AUC (0.5: no information; far from 0.5 either way: information, the sign being the
    mounting's) of two motion features over the moving rows of every file:

    - ``G3 vs G2``: :func:`physml.cnc.motion.rotation_sense` (half window ``half`` rows);
    - ``G0 vs G1``: the pair's mean squared first difference (its "speed") over the window.

    Pairs: the controller's reported positions ``posx posy`` (*leaky, diagnosis only*: a
    forbidden input, shown as the check that the features see the motion when the signal
    holds it), the x/y drive signals, and each node's magnetometer, accelerometer and gyro
    pairs (``nodes``: default those in ``prep.feature_columns``), each within its own file
    (per-file standardisation does not change either AUC's ranking within a file, but the
    pooled AUC is over files, so the raw values are standardised per file first).
    Returns a frame ``signal, G3_vs_G2_auc, G0_vs_G1_auc``.
    """
    from sklearn.metrics import roc_auc_score

    from .features import per_file_standardise
    from .motion import DEFAULT_PAIR_CHANNELS, centred_stats, rotation_sense

    rows = data.rows
    y = prep.labels["command"].to_numpy()
    files = rows["file"].to_numpy()
    m23, m01 = np.isin(y, ["G2", "G3"]), np.isin(y, ["G0", "G1"])
    if not (m23.any() and m01.any()):
        raise ValueError("physics_check needs rows of G0, G1 and of G2 or G3")
    pairs = [("controller positions posx/posy (leaky, diagnosis only)", ("posx", "posy")),
             ("drive signals x_motor/y_motor", ("x_motor", "y_motor"))]
    if nodes is None:
        nodes = tokens_nodes(prep.feature_columns)
    for n in nodes:
        for ca, cb in DEFAULT_PAIR_CHANNELS:
            kind = {"M": "magnetometer", "A": "accelerometer", "G": "gyro"}[ca[0]]
            pairs.append((f"{n} {kind} {ca}/{cb}", (f"{n}.{ca}", f"{n}.{cb}")))
    out = []
    for name, (ca, cb) in pairs:
        v = per_file_standardise(rows[[ca, cb]].to_numpy(dtype=np.float64), files)
        if not np.isfinite(v).all():
            continue  # a node absent from some file: not in every recording
        rot = rotation_sense(v[:, 0], v[:, 1], files, half)
        act = centred_stats(v, files, half, stats=("activity",))[:, :, 0].sum(axis=1)
        out.append({"signal": name,
                    "G3_vs_G2_auc": float(roc_auc_score(y[m23] == "G3", rot[m23])),
                    "G0_vs_G1_auc": float(roc_auc_score(y[m01] == "G0", act[m01]))})
    return pd.DataFrame(out)


def axis_motion_shares(data: CNCData, prep: Prepared) -> pd.DataFrame:
    """How each command class moves, from the controller's positions (*leaky, diagnosis
    only*): per class in ``prep.labels["command"]``, its rows ``n``, the share ``moves_z``
    whose ``posz`` changed since the previous row of the same file, the share
    ``still_in_plane`` whose ``posx`` and ``posy`` did not, the median planar step
    ``median_planar_step`` (``hypot`` of the x and y changes, position units; a file's first
    row counts as not moving) and ``median_moving_planar_step``, the same over the rows that
    moved in the plane (NaN if none did). Explains :func:`physics_check`'s planar-activity
    AUC."""
    pos = data.rows[["file", *KINEMATIC_COLUMNS]]
    step = pos.groupby("file", sort=False)[list(KINEMATIC_COLUMNS)].diff().fillna(0.0)
    step = step.to_numpy(dtype=np.float64)
    y = prep.labels["command"].to_numpy()
    out = []
    for c in tokens.MOTION_CLASSES:
        m = y == c
        if m.any():
            planar = np.hypot(step[m, 0], step[m, 1])
            out.append({"command": c, "n": int(m.sum()),
                        "moves_z": float(np.mean(step[m, 2] != 0)),
                        "still_in_plane": float(np.mean((step[m, 0] == 0) & (step[m, 1] == 0))),
                        "median_planar_step": float(np.median(planar)),
                        "median_moving_planar_step": (float(np.median(planar[planar > 0]))
                                                      if (planar > 0).any() else float("nan"))})
    return pd.DataFrame(out)


def tokens_nodes(columns: Sequence[str]) -> list[str]:
    """Sensor nodes among ``columns`` (``<node>.<channel>``), in order of appearance."""
    return list(dict.fromkeys(c.split(".", 1)[0] for c in columns if "." in c))
