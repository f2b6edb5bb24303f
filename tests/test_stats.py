"""physml.stats against scipy.stats."""

import numpy as np
import pytest
from scipy import stats as st

from physml.stats import mean_ci, paired_difference, summarize, verdict


@pytest.mark.parametrize("n", [2, 5, 30])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_t_interval_matches_scipy(n, confidence):
    x = np.random.default_rng(n).normal(3.0, 2.0, size=n)
    ci = mean_ci(x, confidence=confidence)
    lo, hi = st.t.interval(confidence, n - 1, loc=x.mean(), scale=st.sem(x))
    assert ci.mean == pytest.approx(x.mean())
    assert (ci.low, ci.high) == pytest.approx((lo, hi), rel=1e-12)
    assert ci.n == n


def test_bootstrap_matches_scipy_percentile_bootstrap():
    x = np.random.default_rng(1).exponential(1.0, size=40)
    ci = mean_ci(x, method="bootstrap", n_boot=20_000, rng=np.random.default_rng(2))
    ref = st.bootstrap((x,), np.mean, confidence_level=0.95, method="percentile",
                       n_resamples=20_000, rng=np.random.default_rng(3)).confidence_interval
    # two independent Monte Carlo estimates of the same quantiles
    assert ci.low == pytest.approx(ref.low, abs=0.03)
    assert ci.high == pytest.approx(ref.high, abs=0.03)


def test_bootstrap_needs_rng_and_is_reproducible():
    x = [1.0, 2.0, 4.0, 8.0]
    with pytest.raises(ValueError, match="needs rng"):
        mean_ci(x, method="bootstrap")
    a = mean_ci(x, method="bootstrap", rng=np.random.default_rng(5))
    b = mean_ci(x, method="bootstrap", rng=np.random.default_rng(5))
    assert a == b


def test_paired_difference_matches_scipy_ttest_rel():
    rng = np.random.default_rng(7)
    a = rng.normal(1.0, 1.0, 12)
    b = a - 0.8 + rng.normal(0, 0.2, 12)
    cmp = paired_difference(a, b)
    ref = st.ttest_rel(a, b).confidence_interval(0.95)
    assert (cmp.diff.low, cmp.diff.high) == pytest.approx((ref.low, ref.high), rel=1e-10)
    assert cmp.verdict == "greater"
    assert paired_difference(b, a).verdict == "less"


def test_difference_inside_the_noise_is_a_tie():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 5)
    b = a + rng.normal(0, 1, 5)
    cmp = paired_difference(a, b)
    assert cmp.diff.low < 0 < cmp.diff.high
    assert cmp.verdict == "tie"


def test_verdict_on_boundaries():
    from physml.stats import CI

    assert verdict(CI(1.0, 0.0, 2.0, 3)) == "tie"
    assert verdict(CI(1.0, 0.5, 2.0, 3)) == "greater"
    assert verdict(CI(-1.0, -2.0, -0.1, 3)) == "less"


@pytest.mark.parametrize("bad", [[1.0], [], [1.0, np.nan]])
def test_bad_inputs_raise(bad):
    with pytest.raises(ValueError):
        mean_ci(bad)


def test_constant_values_give_zero_width_interval():
    ci = mean_ci([0.5, 0.5, 0.5])
    assert (ci.low, ci.mean, ci.high) == (0.5, 0.5, 0.5)


def test_unpaired_lengths_raise_and_summarize_groups():
    with pytest.raises(ValueError, match="pair up"):
        paired_difference([1, 2, 3], [1, 2])
    out = summarize({"a": [1, 2, 3], "b": [2, 2, 2]})
    assert set(out) == {"a", "b"} and out["a"].mean == 2.0
    assert str(out["b"]) == "2 [2, 2]"


def test_ratio_ci_is_the_exponentiated_paired_t_interval_of_log_ratios():
    from physml.stats import ratio_ci

    rng = np.random.default_rng(11)
    slow = rng.uniform(1.0, 2.0, 6)
    fast = slow / rng.lognormal(np.log(20.0), 0.8, 6)  # ~20x faster, very noisy
    cmp = ratio_ci(slow, fast)
    ref = st.ttest_rel(np.log(slow), np.log(fast)).confidence_interval(0.95)
    assert (cmp.diff.low, cmp.diff.high) == pytest.approx((np.exp(ref.low), np.exp(ref.high)))
    assert cmp.diff.mean == pytest.approx(np.exp(np.mean(np.log(slow / fast))))
    assert cmp.diff.low > 0 and cmp.verdict == "greater"
    assert ratio_ci([1.0, 1.1, 0.9], [1.05, 1.0, 0.95]).verdict == "tie"
    with pytest.raises(ValueError, match="positive"):
        ratio_ci([1.0, -1.0], [1.0, 1.0])
