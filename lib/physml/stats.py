"""Honest statistics over seeds: mean with a 95% confidence interval, paired differences, ties.

A result quoted in a report is a mean over independent seeds with its confidence interval;
two methods compared on the same seeds are compared through the paired difference, and a
difference whose interval covers zero is a tie.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as _st

METHODS = ("t", "bootstrap")


@dataclass(frozen=True)
class CI:
    """A mean and its two-sided confidence interval over ``n`` values."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float = 0.95
    method: str = "t"

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def covers(self, x: float) -> bool:
        return self.low <= x <= self.high

    def as_dict(self) -> dict:
        return asdict(self)

    def format(self, fmt: str = ".3g") -> str:
        return f"{self.mean:{fmt}} [{self.low:{fmt}}, {self.high:{fmt}}]"

    def __str__(self) -> str:
        return self.format()


@dataclass(frozen=True)
class Comparison:
    """Paired difference ``a - b`` with its CI and a verdict: "greater", "less" or "tie"."""

    diff: CI
    verdict: str

    def as_dict(self) -> dict:
        return {"diff": self.diff.as_dict(), "verdict": self.verdict}

    def __str__(self) -> str:
        return f"{self.diff} ({self.verdict})"


def _as_values(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    if x.size < 2:
        raise ValueError(f"{what}: a confidence interval needs at least 2 values, got {x.size}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what}: values contain NaN or inf: {x.tolist()}")
    return x


def mean_ci(
    values: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    method: str = "t",
    n_boot: int = 10_000,
    rng: np.random.Generator | None = None,
) -> CI:
    """Mean of ``values`` (shape ``(n,)``, n >= 2) with a two-sided confidence interval.

    ``method="t"``: Student-t interval, mean ± t_{(1+c)/2, n-1} · s / sqrt(n).
    ``method="bootstrap"``: percentile bootstrap with ``n_boot`` resamples drawn from ``rng``
    (required, so results are reproducible).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x = _as_values(values, "mean_ci")
    m = float(x.mean())
    if method == "t":
        sem = float(x.std(ddof=1) / np.sqrt(x.size))
        if sem == 0.0:
            return CI(m, m, m, x.size, confidence, method)
        t = float(_st.t.ppf((1 + confidence) / 2, x.size - 1))
        return CI(m, m - t * sem, m + t * sem, x.size, confidence, method)
    if method == "bootstrap":
        if rng is None:
            raise ValueError("mean_ci(method='bootstrap') needs rng (a numpy Generator)")
        idx = rng.integers(0, x.size, size=(n_boot, x.size))
        boots = x[idx].mean(axis=1)
        alpha = (1 - confidence) / 2
        lo, hi = np.quantile(boots, [alpha, 1 - alpha])
        return CI(m, float(lo), float(hi), x.size, confidence, method)
    raise ValueError(f"mean_ci: method must be one of {METHODS}, got {method!r}")


def verdict(ci: CI) -> str:
    """"tie" when ``ci`` covers zero, otherwise "greater" (above zero) or "less"."""
    if ci.covers(0.0):
        return "tie"
    return "greater" if ci.low > 0 else "less"


def paired_difference(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    method: str = "t",
    rng: np.random.Generator | None = None,
) -> Comparison:
    """CI of the mean paired difference ``a_i - b_i`` (same seeds / folds), and its verdict."""
    xa, xb = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if xa.shape != xb.shape:
        raise ValueError(
            f"paired_difference: a and b must pair up, got {xa.size} and {xb.size} values"
        )
    ci = mean_ci(xa - xb, confidence=confidence, method=method, rng=rng)
    return Comparison(ci, verdict(ci))


def summarize(groups: dict[str, Sequence[float]], confidence: float = 0.95) -> dict[str, CI]:
    """``{label: mean_ci(values)}`` for each group (t-interval)."""
    return {k: mean_ci(v, confidence=confidence, method="t") for k, v in groups.items()}


def ratio_ci(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
) -> Comparison:
    """Paired ratio ``a_i / b_i`` (e.g. a speed-up): geometric mean with a CI, and a verdict.

    Ratios are compared on the log scale, where they are symmetric: the t-interval of
    ``log(a_i / b_i)`` is exponentiated, so the interval is never negative. The verdict is
    "greater" when the whole interval is above 1, "less" when below, otherwise "tie".
    """
    xa, xb = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if xa.shape != xb.shape:
        raise ValueError(f"ratio_ci: a and b must pair up, got {xa.size} and {xb.size} values")
    if np.any(xa <= 0) or np.any(xb <= 0):
        raise ValueError("ratio_ci: values must be positive (times, throughputs, errors)")
    log_ci = mean_ci(np.log(xa / xb), confidence=confidence, method="t")
    ci = CI(float(np.exp(log_ci.mean)), float(np.exp(log_ci.low)), float(np.exp(log_ci.high)),
            log_ci.n, confidence, "t on log ratio")
    return Comparison(ci, verdict(log_ci))
