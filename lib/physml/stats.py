"""Honest statistics over seeds and folds: CIs, paired differences, ratios, equivalence, verdicts.

A result quoted in a report is a mean over independent seeds (or folds) with its 95% confidence
interval. Two methods scored on the same seeds or folds are compared through the paired
difference. A difference is called for one side only when its interval excludes zero; a *tie*
needs an equivalence test (two one-sided tests, TOST, within a margin the study declares); a
difference that is neither is *inconclusive* — a wide interval that covers zero is not a tie.
A stated target (">= 85%") is *met* only by the whole interval (:func:`against_target`).

Intervals come from ``scipy.stats`` (Student t, bootstrap); equivalence tests from
``statsmodels`` (:func:`statsmodels.stats.weightstats.ttost_paired` / ``ttost_ind``).

>>> ci = mean_ci([0.70, 0.74, 0.72, 0.75])
>>> round(ci.mean, 4), ci.n
(0.7275, 4)
>>> ci.samples
(0.7, 0.74, 0.72, 0.75)
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

METHODS = ("t", "bootstrap")
ALPHA = 0.05


@dataclass(frozen=True)
class CI:
    """A mean and its two-sided confidence interval over ``n`` values.

    ``samples`` keeps the per-seed / per-fold values the interval was computed from (empty when
    it came from elsewhere); paired comparisons and equivalence tests need them.
    """

    mean: float
    low: float
    high: float
    n: int
    confidence: float = 0.95
    method: str = "t"
    samples: tuple[float, ...] = field(default=(), compare=False, repr=False)

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def covers(self, x: float) -> bool:
        return self.low <= x <= self.high

    def as_dict(self) -> dict:
        d = asdict(self)
        d["samples"] = list(self.samples)
        return d

    def format(self, fmt: str = ".3g") -> str:
        """``mean [low, high]`` in one number format (:func:`format_interval`)."""
        return format_interval(self.mean, self.low, self.high, fmt)

    def __str__(self) -> str:
        return self.format()


_SIGNIFICANT = re.compile(r"([+ -]?)\.(\d+)g")


def format_value(v: Any, fmt: str = ".3g") -> str:
    """One number as :func:`interval_parts` writes each of its three.

    A significant-digits spec (``".Ng"``, optionally with a sign flag) keeps the trailing zeros
    that ``g`` drops (6 at 3 digits reads ``6.00``, 100 reads ``100``), and from 1e3 up to 1e9
    writes no exponent and thousands separators (``1,230``, ``48,200``: the same notation as
    an integer, so that ``9,870 [8,760, 11,000]`` reads as one kind of number); an integer
    stays exact (``340``, ``123,456``). Any other spec is applied as given; a non-finite
    number reads ``nan`` / ``inf``.

    >>> [format_value(x, ".4g") for x in (0.304, 44512.3, 340, 1.5e-7)]
    ['0.3040', '44,510', '340', '1.500e-07']
    """
    m = _SIGNIFICANT.fullmatch(fmt)
    if m is None:
        return f"{v:{fmt}}"
    sign, digits = m.group(1), max(1, int(m.group(2)))
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        return f"{int(v):{sign},}"
    v = float(v)
    if not math.isfinite(v):
        return f"{v}"
    rounded = float(f"{v:.{digits - 1}e}")  # 99,995 at 4 digits is 100,000
    if 1e3 <= abs(rounded) < 1e9:
        decimals = max(0, digits - 1 - math.floor(math.log10(abs(rounded))))
        return f"{rounded:{sign},.{decimals}f}"
    text = f"{v:{sign}#.{digits}g}"  # '#' keeps trailing zeros: 6 reads 6.00, not 6
    return text.replace(".e", "e").removesuffix(".")  # but no bare point: 100, not 100.


def interval_parts(mean: float, low: float, high: float, fmt: str = ".3g") -> tuple[str, str, str]:
    """The three numbers of ``mean [low, high]`` as text, each by :func:`format_value`.

    A significant-digits spec (``".Ng"``) writes each number with N significant digits and
    keeps the trailing zeros that ``g`` drops, so that a bound never looks less precise than
    the mean: ``4.64 [3.59, 6]`` reads ``4.64 [3.59, 6.00]``. Any other spec (``".3f"``,
    ``"+.1%"``, ``",.0f"``) is applied to each number as given.

    >>> interval_parts(17.0, 13.7, 21.1)
    ('17.0', '13.7', '21.1')
    >>> interval_parts(48197.0, 45012.0, 51388.0)
    ('48,200', '45,000', '51,400')
    """
    return tuple(format_value(v, fmt) for v in (mean, low, high))


def format_interval(mean: float, low: float, high: float, fmt: str = ".3g") -> str:
    """``mean [low, high]``, the three numbers formatted by :func:`interval_parts`.

    >>> format_interval(0.8059, 0.6999, 0.912, ".4g")
    '0.8059 [0.6999, 0.9120]'
    >>> format_interval(0.1234, 0.0, 369412.0, ".4g")
    '0.1234 [0.000, 369,400]'
    >>> format_interval(-0.047, -0.0031, 0.098, "+.3f")
    '-0.047 [-0.003, +0.098]'
    """
    m, lo, hi = interval_parts(mean, low, high, fmt)
    return f"{m} [{lo}, {hi}]"


@dataclass(frozen=True)
class Comparison:
    """Paired difference ``a - b`` (or ratio ``a / b``) with its CI and a verdict.

    ``verdict`` is "greater" or "less" when the interval excludes zero (one for a ratio),
    otherwise "inconclusive"; a tie is only ever declared by an equivalence test (:func:`compare`).
    """

    diff: CI
    verdict: str
    null: float = 0.0
    """The value of no effect the verdict was taken against (1 for a ratio)."""

    def as_dict(self) -> dict:
        return {"diff": self.diff.as_dict(), "verdict": self.verdict}

    def words(self) -> str:
        """Where the interval lies, for a report: "95% CI above 0", "95% CI below 1",
        "95% CI covers 0" (the verdict, which alone reads "greater" without saying than what)."""
        where = {"greater": "above", "less": "below", "inconclusive": "covers"}[self.verdict]
        return f"{self.diff.confidence:.0%} CI {where} {self.null:g}"

    @property
    def answer(self) -> str:
        """The verdict as the answer to "is the first greater?": "yes" (the interval lies above
        the null), "no" (below) or "inconclusive" (it covers the null)."""
        return {"greater": "yes", "less": "no", "inconclusive": "inconclusive"}[self.verdict]

    def __str__(self) -> str:
        return f"{self.diff} ({self.words()})"


@dataclass(frozen=True)
class Equivalence:
    """Result of two one-sided tests: equivalent when the larger one-sided p-value < alpha."""

    p_value: float
    equivalent: bool
    margin: float
    alpha: float = ALPHA

    def as_dict(self) -> dict:
        return asdict(self)


#: How a :func:`compare` outcome reads, of "a" against "b" (the one place every study takes its
#: verdict words from): a word for tables and running text ...
OUTCOME_WORDS = {"a": "better", "b": "worse", "tie": "equivalent",
                 "inconclusive": "inconclusive"}
#: ... and a sentence that names the rule which decided it, for a headline.
OUTCOME_SENTENCES = {"a": "the first is better (CI of the difference excludes 0)",
                     "b": "the second is better (CI of the difference excludes 0)",
                     "tie": "equivalent within the margin (TOST)",
                     "inconclusive": "neither separated nor shown equivalent: inconclusive"}


@dataclass(frozen=True)
class Verdict:
    """Outcome of :func:`compare`: "a", "b", "tie" or "inconclusive", with the evidence.
    :attr:`word` and :attr:`sentence` say it in words (:data:`OUTCOME_WORDS`,
    :data:`OUTCOME_SENTENCES`)."""

    outcome: str
    diff: CI
    tost_p: float
    margin: float
    better: str
    scale: str

    @property
    def word(self) -> str:
        """"better" / "worse" (a against b), "equivalent" (TOST) or "inconclusive"."""
        return OUTCOME_WORDS[self.outcome]

    @property
    def sentence(self) -> str:
        """The outcome as a sentence naming the rule (first = a, second = b)."""
        return OUTCOME_SENTENCES[self.outcome]

    def as_dict(self) -> dict:
        return {"outcome": self.outcome, "diff": self.diff.as_dict(), "tost_p": self.tost_p,
                "margin": self.margin, "better": self.better, "scale": self.scale}


def _as_values(values: Sequence[float] | np.ndarray | CI, what: str) -> np.ndarray:
    if isinstance(values, CI):
        if not values.samples:
            raise ValueError(f"{what}: this CI carries no samples; pass the per-seed values")
        values = values.samples
    x = np.asarray(values, dtype=float).ravel()
    if x.size < 2:
        raise ValueError(f"{what}: a confidence interval needs at least 2 values, got {x.size}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what}: values contain NaN or inf: {x.tolist()}")
    return x


Bounds = tuple[float | None, float | None]
"""A metric's range ``(low, high)``, either end ``None`` for unbounded: ``(0, 1)`` for an
accuracy, ``(0, None)`` for a squared error or a time."""

UNIT_INTERVAL: Bounds = (0.0, 1.0)
"""The range of an accuracy, a rate or any other fraction."""

NON_NEGATIVE: Bounds = (0.0, None)
"""The range of an error, a squared error, a time or a rate of work: CIs are clipped at zero."""


def _check_bounds(x: np.ndarray, bounds: Bounds | None, what: str) -> tuple[float, float]:
    """``bounds`` as two floats (±inf for None); values outside them are an error, not clipped."""
    if bounds is None:
        return -np.inf, np.inf
    if len(bounds) != 2:
        raise ValueError(f"{what}: bounds must be (low, high), got {bounds!r}")
    lo = -np.inf if bounds[0] is None else float(bounds[0])
    hi = np.inf if bounds[1] is None else float(bounds[1])
    if not lo < hi:
        raise ValueError(f"{what}: bounds must have low < high, got {bounds!r}")
    bad = x[(x < lo) | (x > hi)]
    if bad.size:
        raise ValueError(f"{what}: values {bad.tolist()} lie outside the metric's range {bounds!r}")
    return lo, hi


def _bounded(ci: CI, lo: float, hi: float) -> CI:
    """``ci`` with its interval clipped to ``[lo, hi]`` (method says so when it was)."""
    low, high = max(ci.low, lo), min(ci.high, hi)
    if (low, high) == (ci.low, ci.high):
        return ci
    return CI(ci.mean, low, high, ci.n, ci.confidence,
              f"{ci.method}, clipped to [{lo:g}, {hi:g}]", ci.samples)


def mean_ci(
    values: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    method: str = "t",
    n_boot: int = 10_000,
    rng: np.random.Generator | None = None,
    bounds: Bounds | None = None,
) -> CI:
    """Mean of ``values`` (shape ``(n,)``, n >= 2) with a two-sided confidence interval.

    ``method="t"``: Student-t interval, mean ± t_{(1+c)/2, n-1} · s / sqrt(n).
    ``method="bootstrap"``: percentile bootstrap with ``n_boot`` resamples drawn from ``rng``
    (required, so results are reproducible).

    ``bounds``: the metric's range, e.g. ``(0, 1)`` for an accuracy or ``(0, None)`` for a
    mean squared error. A value outside it raises ``ValueError``; the interval is clipped to
    it. Clipping keeps the coverage: the true mean lies inside the range, so it is inside the
    clipped interval exactly when it is inside the unclipped one.

    >>> mean_ci([0.9, 1.0, 1.0]).high > 1
    True
    >>> mean_ci([0.9, 1.0, 1.0], bounds=(0, 1)).high
    1.0
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x = _as_values(values, "mean_ci")
    lo, hi = _check_bounds(x, bounds, "mean_ci")
    return _bounded(_mean_ci(x, confidence, method, n_boot, rng), lo, hi)


def geometric_mean_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95,
                      bounds: Bounds | None = None) -> CI:
    """Geometric mean of positive ``values`` (shape ``(n,)``) with the t-interval of their logs,
    mapped back (for times, speeds and other quantities compared as ratios). ``bounds`` as in
    :func:`mean_ci`. The CI keeps the original values as samples.

    >>> ci = geometric_mean_ci([1.0, 10.0, 100.0])
    >>> round(ci.mean, 6), ci.low > 0
    (10.0, True)
    """
    x = _as_values(values, "geometric_mean_ci")
    if np.any(x <= 0):
        raise ValueError(f"geometric_mean_ci: values must be positive, got {x.tolist()}")
    lo, hi = _check_bounds(x, bounds, "geometric_mean_ci")
    lc = mean_ci(np.log(x), confidence=confidence)
    geo = CI(float(np.exp(lc.mean)), float(np.exp(lc.low)), float(np.exp(lc.high)), lc.n,
             lc.confidence, "t on log (geometric mean)", tuple(float(v) for v in x))
    return _bounded(geo, lo, hi)


def _mean_ci(x: np.ndarray, confidence: float, method: str, n_boot: int,
             rng: np.random.Generator | None) -> CI:
    """The unbounded interval of :func:`mean_ci` (``x`` already checked)."""
    m = float(x.mean())
    samples = tuple(float(v) for v in x)
    if method == "t":
        sem = float(x.std(ddof=1) / np.sqrt(x.size))
        if sem == 0.0:
            return CI(m, m, m, x.size, confidence, method, samples)
        from scipy import stats as _st  # imported here: 1–2 s that `physml render` need not pay

        t = float(_st.t.ppf((1 + confidence) / 2, x.size - 1))
        return CI(m, m - t * sem, m + t * sem, x.size, confidence, method, samples)
    if method == "bootstrap":
        if rng is None:
            raise ValueError("mean_ci(method='bootstrap') needs rng (a numpy Generator)")
        idx = rng.integers(0, x.size, size=(n_boot, x.size))
        boots = x[idx].mean(axis=1)
        alpha = (1 - confidence) / 2
        lo, hi = np.quantile(boots, [alpha, 1 - alpha])
        return CI(m, float(lo), float(hi), x.size, confidence, method, samples)
    raise ValueError(f"mean_ci: method must be one of {METHODS}, got {method!r}")


def verdict(ci: CI, null: float = 0.0) -> str:
    """"greater" when the whole interval is above ``null``, "less" when below, else "inconclusive".

    A covered null is *not* a tie: use :func:`tost_paired` / :func:`compare` for that.
    """
    if ci.low > null:
        return "greater"
    if ci.high < null:
        return "less"
    return "inconclusive"


def _pair(a, b, what: str) -> tuple[np.ndarray, np.ndarray]:
    xa, xb = _as_values(a, f"{what} (a)"), _as_values(b, f"{what} (b)")
    if xa.shape != xb.shape:
        raise ValueError(f"{what}: a and b must pair up, got {xa.size} and {xb.size} values")
    return xa, xb


def paired_difference(
    a: Sequence[float] | np.ndarray | CI,
    b: Sequence[float] | np.ndarray | CI,
    confidence: float = 0.95,
    method: str = "t",
    rng: np.random.Generator | None = None,
) -> Comparison:
    """CI of the mean paired difference ``a_i - b_i`` (same seeds / folds), and its verdict."""
    xa, xb = _pair(a, b, "paired_difference")
    ci = mean_ci(xa - xb, confidence=confidence, method=method, rng=rng)
    return Comparison(ci, verdict(ci))


def welch_difference(a, b, confidence: float = 0.95) -> Comparison:
    """CI of ``mean(a) - mean(b)`` for independent samples (Welch t), and its verdict."""
    xa, xb = _as_values(a, "welch_difference (a)"), _as_values(b, "welch_difference (b)")
    from scipy import stats as _st

    d = float(xa.mean() - xb.mean())
    if np.ptp(xa) == 0 and np.ptp(xb) == 0:  # both constant: the difference is exact (scipy
        lo = hi = d  # would warn of precision loss and return nan)
    else:
        with warnings.catch_warnings():  # scipy's check fires on any constant sample, whose
            # variance 0 is exact, not a precision loss
            warnings.filterwarnings("ignore", message="Precision loss occurred in moment",
                                    category=RuntimeWarning)
            lo, hi = _st.ttest_ind(xa, xb, equal_var=False).confidence_interval(confidence)
    ci = CI(d, float(lo), float(hi), int(min(xa.size, xb.size)), confidence, "welch")
    return Comparison(ci, verdict(ci))


def ratio_ci(
    a: Sequence[float] | np.ndarray | CI,
    b: Sequence[float] | np.ndarray | CI,
    confidence: float = 0.95,
) -> Comparison:
    """Paired ratio ``a_i / b_i`` (e.g. a speed-up): geometric mean with a CI, and a verdict.

    Ratios are compared on the log scale, where they are symmetric: the t-interval of
    ``log(a_i / b_i)`` is exponentiated, so the interval is never negative. The verdict is
    "greater" when the whole interval is above 1, "less" when below, otherwise "inconclusive".
    """
    xa, xb = _pair(a, b, "ratio_ci")
    if np.any(xa <= 0) or np.any(xb <= 0):
        raise ValueError("ratio_ci: values must be positive (times, throughputs, errors)")
    log_ci = mean_ci(np.log(xa / xb), confidence=confidence, method="t")
    ci = CI(float(np.exp(log_ci.mean)), float(np.exp(log_ci.low)), float(np.exp(log_ci.high)),
            log_ci.n, confidence, "t on log ratio", tuple(float(v) for v in xa / xb))
    return Comparison(ci, verdict(log_ci), null=1.0)


def tost_paired(a, b, margin: float, alpha: float = ALPHA) -> Equivalence:
    """Paired equivalence test: is ``|mean(a - b)| < margin``? (statsmodels ``ttost_paired``).

    Values identical in every pair are equivalent (p = 0) for any positive margin.
    """
    from statsmodels.stats.weightstats import ttost_paired

    if not margin > 0:
        raise ValueError(f"tost_paired: margin must be > 0, got {margin}")
    xa, xb = _pair(a, b, "tost_paired")
    d = xa - xb
    if np.ptp(d) == 0.0:  # no spread: the test statistic is undefined, the answer is exact
        p = 0.0 if abs(d[0]) < margin else 1.0
    else:
        p = float(ttost_paired(xa, xb, -margin, margin)[0])
    return Equivalence(p, p < alpha, float(margin), alpha)


def tost_ind(a, b, margin: float, alpha: float = ALPHA) -> Equivalence:
    """Equivalence test for independent samples, Welch variances (statsmodels ``ttost_ind``)."""
    from statsmodels.stats.weightstats import ttost_ind

    if not margin > 0:
        raise ValueError(f"tost_ind: margin must be > 0, got {margin}")
    xa, xb = _as_values(a, "tost_ind (a)"), _as_values(b, "tost_ind (b)")
    if np.ptp(xa) == 0.0 and np.ptp(xb) == 0.0:
        p = 0.0 if abs(xa[0] - xb[0]) < margin else 1.0
    else:
        p = float(ttost_ind(xa, xb, -margin, margin, usevar="unequal")[0])
    return Equivalence(p, p < alpha, float(margin), alpha)


BETTER = ("higher", "lower")
SCALES = ("linear", "log")


def compare(a, b, *, better: str, margin: float, paired: bool = True,
            scale: str = "linear") -> Verdict:
    """Which of ``a`` and ``b`` (per-seed / per-fold values, or CIs with samples) is better?

    ``better``: "higher" or "lower" values are better. ``scale="linear"`` compares ``a - b`` and
    ``margin`` is in the metric's unit; ``scale="log"`` compares ``log(a / b)`` (speeds, errors
    spanning decades) and ``margin`` is a fraction: 0.1 means "within a factor 1.1".
    The outcome is "a" or "b" when the 95% CI of the difference excludes zero in that side's
    favour, "tie" when TOST at alpha 0.05 shows the difference is within ``margin``, and
    "inconclusive" otherwise. ``diff`` is the CI of ``a - b`` (linear) or of ``a / b`` (log).

    >>> compare([1.0, 1.1, 0.9, 1.0], [2.0, 2.1, 1.9, 2.2], better="lower", margin=0.1).outcome
    'a'
    """
    if better not in BETTER:
        raise ValueError(f"compare: better must be one of {BETTER}, got {better!r}")
    if scale not in SCALES:
        raise ValueError(f"compare: scale must be one of {SCALES}, got {scale!r}")
    if not (isinstance(margin, (int, float)) and margin > 0):
        raise ValueError(f"compare: margin must be a positive number, got {margin!r}")
    xa, xb = _as_values(a, "compare (a)"), _as_values(b, "compare (b)")
    if scale == "log":
        if np.any(xa <= 0) or np.any(xb <= 0):
            raise ValueError("compare(scale='log'): values must be positive")
        la, lb, m = np.log(xa), np.log(xb), float(np.log1p(margin))
    else:
        la, lb, m = xa, xb, float(margin)
    if paired:
        cmp = paired_difference(*_pair(la, lb, "compare"))
        eq = tost_paired(la, lb, m)
    else:
        cmp = welch_difference(la, lb)
        eq = tost_ind(la, lb, m)
    d = cmp.diff
    if d.low > 0 or d.high < 0:  # the interval excludes zero: the better side wins
        a_larger = d.low > 0
        outcome = "a" if a_larger == (better == "higher") else "b"
    elif eq.equivalent:
        outcome = "tie"
    else:
        outcome = "inconclusive"
    if scale == "log":
        d = CI(float(np.exp(d.mean)), float(np.exp(d.low)), float(np.exp(d.high)), d.n,
               d.confidence, f"{d.method} on log ratio",
               tuple(float(v) for v in np.exp(la - lb)) if paired else ())
    return Verdict(outcome, d, eq.p_value, float(margin), better, scale)


#: How :func:`against_target` reads: "met" only when the whole interval is on the target's good
#: side, "missed" when the whole interval is on its bad side, "undecided" when it contains it.
TARGET_OUTCOMES = ("met", "missed", "undecided")


@dataclass(frozen=True)
class TargetCheck:
    """Outcome of :func:`against_target`: is a stated target (">= 0.85", "<= 0.1 mm") met?"""

    outcome: str
    ci: CI
    target: float
    better: str

    def phrase(self, fmt: str = ".3g") -> str:
        """The outcome with the rule that decided it, e.g. "met (the whole 95% CI is at or above
        0.85)" or "undecided (the 95% CI [0.79, 0.87] contains 0.85, the mean is below it)";
        numbers in ``fmt``."""
        t = format(self.target, fmt)
        conf = f"{self.ci.confidence:.0%} CI"
        good, bad = (("at or above", "below") if self.better == "higher"
                     else ("at or below", "above"))
        if self.outcome == "met":
            return f"met (the whole {conf} is {good} {t})"
        if self.outcome == "missed":
            return f"missed (the whole {conf} is {bad} {t})"
        lo, hi = format(self.ci.low, fmt), format(self.ci.high, fmt)
        side = "above" if self.ci.mean > self.target else (
            "below" if self.ci.mean < self.target else "at")
        return f"undecided (the {conf} [{lo}, {hi}] contains {t}, the mean is {side} it)"

    def as_dict(self) -> dict:
        return {"outcome": self.outcome, "target": self.target, "better": self.better,
                "ci": self.ci.as_dict()}


def against_target(ci: CI, target: float, *, better: str) -> TargetCheck:
    """Whether ``ci`` meets a target: ``better="higher"`` for "at least ``target``", "lower" for
    "at most". "met" when the whole interval is on the good side (the bound nearest the target
    may equal it), "missed" when the whole interval is strictly on the bad side, "undecided"
    otherwise: a mean past the target with an interval that straddles it is not a target met.

    >>> against_target(CI(0.81, 0.79, 0.83, 5), 0.85, better="higher").outcome
    'missed'
    """
    if better not in BETTER:
        raise ValueError(f"against_target: better must be one of {BETTER}, got {better!r}")
    if not isinstance(ci, CI):
        raise TypeError(f"against_target: ci must be a CI, got {type(ci).__name__}")
    target = float(target)
    if not math.isfinite(target):
        raise ValueError(f"against_target: target must be finite, got {target!r}")
    if better == "higher":
        outcome = ("met" if ci.low >= target else "missed" if ci.high < target
                   else "undecided")
    else:
        outcome = ("met" if ci.high <= target else "missed" if ci.low > target
                   else "undecided")
    return TargetCheck(outcome, ci, target, better)


def summarize(
    data: Mapping[str, Sequence[float]] | Any,
    value: str | None = None,
    by: str | Sequence[str] | None = None,
    confidence: float = 0.95,
    bounds: Bounds | None = None,
):
    """Grouped per-seed / per-fold scores -> mean and 95% t-interval per group.

    ``bounds`` is the metric's range (see :func:`mean_ci`); each interval is clipped to it.

    Two forms:

    - ``summarize({label: values})`` -> ``{label: CI}``;
    - ``summarize(frame, value="accuracy", by=["method"])`` -> a DataFrame with one row per
      group: the ``by`` columns, ``mean``, ``ci_low``, ``ci_high``, ``n`` (groups in order of
      first appearance). Each row of ``frame`` is one seed / fold.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"m": ["a", "a", "b", "b"], "acc": [0.5, 0.7, 0.8, 0.8]})
    >>> summarize(df, value="acc", by="m")[["m", "mean", "n"]].to_dict("records")
    [{'m': 'a', 'mean': 0.6, 'n': 2}, {'m': 'b', 'mean': 0.8, 'n': 2}]
    """
    if isinstance(data, Mapping):
        if value is not None or by is not None:
            raise ValueError("summarize(dict) takes no value=/by=; pass a DataFrame for those")
        return {k: mean_ci(v, confidence=confidence, method="t", bounds=bounds)
                for k, v in data.items()}
    import pandas as pd

    if not isinstance(data, pd.DataFrame) or value is None or by is None:
        raise TypeError("summarize: pass {label: values}, or a DataFrame with value= and by=")
    keys = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [value, *keys] if c not in data.columns]
    if missing:
        raise KeyError(f"summarize: columns {missing} not in the frame ({list(data.columns)})")
    rows = []
    for group, g in data.groupby(keys, sort=False):
        group = group if isinstance(group, tuple) else (group,)
        ci = mean_ci(g[value].to_numpy(), confidence=confidence, method="t", bounds=bounds)
        rows.append({**dict(zip(keys, group, strict=True)), "mean": ci.mean, "ci_low": ci.low,
                     "ci_high": ci.high, "n": ci.n})
    return pd.DataFrame(rows)
