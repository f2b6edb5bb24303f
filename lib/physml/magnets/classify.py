"""Finger-state classifiers on a single calibrated reading (µT): Random Forest, gradient boosting,
and the physics-only nearest-template classifier. Each finger is a binary output, so a model
trained on some states can still compose states it never saw.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .hand import ALL_BITS, bits_to_code

KINDS = ("rf", "hgb")
#: batches larger than this go through scikit-learn's tree traversal instead of `FastForest`
FAST_MAX_ROWS = 256


def _check_x(x):
    x = np.asarray(x, float)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] != 3:
        raise ValueError(f"readings must be (n, 3) µT, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("readings contain non-finite values")
    return x


class FastForest:
    """A fitted multi-output RandomForestClassifier as flat arrays, evaluated for all trees at
    once with NumPy (same decisions as scikit-learn, sub-millisecond for one reading)."""

    def __init__(self, forest):
        trees = [e.tree_ for e in forest.estimators_]
        n_nodes = max(t.node_count for t in trees)
        n_out = forest.n_outputs_
        T = len(trees)
        self.feature = np.zeros((T, n_nodes), np.int64)
        self.threshold = np.zeros((T, n_nodes))
        self.left = np.zeros((T, n_nodes), np.int64)
        self.right = np.zeros((T, n_nodes), np.int64)
        self.p_flex = np.zeros((T, n_nodes, n_out))
        classes = forest.classes_ if n_out > 1 else [forest.classes_]
        for i, t in enumerate(trees):
            c = t.node_count
            leaf = t.children_left[:c] < 0
            self.feature[i, :c] = np.where(leaf, 0, t.feature[:c])
            self.threshold[i, :c] = t.threshold[:c]
            self.left[i, :c] = np.where(leaf, np.arange(c), t.children_left[:c])
            self.right[i, :c] = np.where(leaf, np.arange(c), t.children_right[:c])
            v = t.value[:c] / t.value[:c].sum(axis=-1, keepdims=True)
            for o in range(n_out):
                cls = list(classes[o])
                if 1 in cls:
                    self.p_flex[i, :c, o] = v[:, o, cls.index(1)]
        self.depth = max(e.get_depth() for e in forest.estimators_)
        self._rows = np.arange(T)

    def proba(self, x):
        """P(flexed) (n, 5) averaged over trees for readings x (n, 3). The readings are
        rounded to float32 first, as scikit-learn's trees do: a reading within a float32 step
        above a split threshold then goes left, as there."""
        x = np.asarray(x, np.float32)
        n = len(x)
        node = np.zeros((n, len(self._rows)), np.int64)
        rows = self._rows[None, :]
        for _ in range(self.depth):
            f = self.feature[rows, node]
            go_left = np.take_along_axis(x, f, axis=1) <= self.threshold[rows, node]
            node = np.where(go_left, self.left[rows, node], self.right[rows, node])
        return self.p_flex[rows, node].mean(axis=1)


def _one_thread(kind):
    """Gradient boosting's OpenMP threads limited to one: on a few thousand 3-feature readings
    its per-histogram thread start-up outweighs the work, and on a shared 2-core machine the
    threads oversubscribe (a 30-iteration fit took 26 s instead of ~2 s). The forest runs with
    n_jobs=1 already."""
    from contextlib import nullcontext

    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="openmp") if kind == "hgb" else nullcontext()


class FingerClassifier:
    """Per-finger classifier of the 5 finger states from one calibrated reading (µT).

    kind: 'rf' (RandomForest, multi-output) or 'hgb' (HistGradientBoosting per finger).
    """

    def __init__(self, kind="rf", seed=0, n_estimators=100, min_samples_leaf=2, max_depth=14):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        # scikit-learn is imported here, not with the study: importing it costs seconds that a
        # notebook without a classifier (field model, placement what-if, fits) need not pay
        from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
        from sklearn.multioutput import MultiOutputClassifier

        self.kind, self.seed = kind, seed
        if kind == "rf":
            self.model = RandomForestClassifier(
                n_estimators=n_estimators, min_samples_leaf=min_samples_leaf,
                max_depth=max_depth, random_state=seed, n_jobs=1)
        else:
            self.model = MultiOutputClassifier(HistGradientBoostingClassifier(
                max_iter=max(10, n_estimators // 2), learning_rate=0.15, max_leaf_nodes=15,
                early_stopping=False, random_state=seed))
        self._fast = None

    def fit(self, readings_uT, bits, sample_weight=None):
        """Train on readings (n, 3) µT with finger states bits (n, 5). Returns self."""
        x = _check_x(readings_uT)
        y = np.asarray(bits, dtype=np.int64)
        if y.shape != (len(x), 5):
            raise ValueError(f"bits must be ({len(x)}, 5), got {y.shape}")
        if self.kind == "hgb":
            for f in range(5):
                if len(np.unique(y[:, f])) < 2:
                    raise ValueError(f"finger {f} has one class only; gradient boosting needs both")
        with _one_thread(self.kind):
            self.model.fit(x, y, sample_weight=sample_weight)
        self._fast = FastForest(self.model) if self.kind == "rf" else None
        return self

    def proba(self, readings_uT):
        """P(flexed) per finger (n, 5). A Random Forest answers a few readings from its flat
        NumPy copy (`FastForest`, no per-call overhead) and a batch through scikit-learn's
        compiled tree traversal, which is faster above `FAST_MAX_ROWS` readings."""
        x = _check_x(readings_uT)
        if self._fast is not None and len(x) <= FAST_MAX_ROWS:
            return self._fast.proba(x)
        out = np.zeros((len(x), 5))
        classes = (self.model.classes_ if self.kind == "rf"
                   else [e.classes_ for e in self.model.estimators_])
        with _one_thread(self.kind):
            probas = self.model.predict_proba(x)
        for f, p in enumerate(probas):
            cls = list(classes[f])
            out[:, f] = p[:, cls.index(1)] if 1 in cls else 0.0
        return out

    def predict_bits(self, readings_uT):
        """Finger states (n, 5), 1 = flexed."""
        return (self.proba(readings_uT) > 0.5).astype(np.int64)

    def confidence(self, readings_uT):
        """Probability of the predicted 5-finger state (n,), product over fingers."""
        p = self.proba(readings_uT)
        return np.prod(np.maximum(p, 1 - p), axis=1)

    def predict(self, reading_uT):
        """State code(s) ('eefef'): a str for one reading (3,), a list for (n, 3)."""
        codes = bits_to_code(self.predict_bits(reading_uT))
        return codes[0] if np.ndim(reading_uT) == 1 else codes

    def save(self, path):
        """joblib-dump to path; returns the Path."""
        import joblib

        path = Path(path)
        joblib.dump(self, path, compress=3)
        return path

    @staticmethod
    def load(path):
        """Load a classifier saved with `save`."""
        import joblib

        obj = joblib.load(path)
        if not isinstance(obj, FingerClassifier):
            raise TypeError(f"{path}: expected a FingerClassifier, got {type(obj).__name__}")
        return obj


class TemplateClassifier:
    """Physics-only classifier: the state whose predicted reading (template) is nearest."""

    def __init__(self, templates_uT, noise_uT=2.0):
        t = np.asarray(templates_uT, float)
        if t.shape != (32, 3):
            raise ValueError(f"templates_uT must be (32, 3), got {t.shape}")
        self.templates, self.noise_uT = t, float(noise_uT)

    def _d2(self, x):
        return np.sum((x[:, None, :] - self.templates[None]) ** 2, axis=-1)

    def predict_bits(self, readings_uT):
        return ALL_BITS[np.argmin(self._d2(_check_x(readings_uT)), axis=1)]

    def proba(self, readings_uT):
        """P(flexed) per finger (n, 5) from a Gaussian likelihood with noise_uT per axis."""
        d2 = self._d2(_check_x(readings_uT))
        w = np.exp(-(d2 - d2.min(1, keepdims=True)) / (2 * self.noise_uT**2))
        w /= w.sum(1, keepdims=True)
        return w @ ALL_BITS

    def predict(self, reading_uT):
        codes = bits_to_code(self.predict_bits(reading_uT))
        return codes[0] if np.ndim(reading_uT) == 1 else codes


def exact_match(pred_bits, true_bits):
    """Fraction of samples with all five fingers right."""
    return float(np.mean(np.all(np.asarray(pred_bits) == np.asarray(true_bits), axis=1)))


def per_finger_accuracy(pred_bits, true_bits):
    """(5,) accuracy of each finger."""
    return np.mean(np.asarray(pred_bits) == np.asarray(true_bits), axis=0)


def per_state_accuracy(pred_bits, true_bits):
    """(32,) exact-match accuracy of the samples of each true state (index order of
    `hand.ALL_BITS`); NaN for states without samples."""
    from .hand import bits_to_index

    ok = np.all(np.asarray(pred_bits) == np.asarray(true_bits), axis=1)
    idx = bits_to_index(true_bits)
    n = np.bincount(idx, minlength=32).astype(float)
    hits = np.bincount(idx, weights=ok, minlength=32)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, hits / np.maximum(n, 1), np.nan)
