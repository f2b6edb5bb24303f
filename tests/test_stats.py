"""physml.stats against scipy.stats."""

import warnings

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
    assert cmp.words() == "95% CI above 0" and paired_difference(b, a).words() == "95% CI below 0"
    assert paired_difference(a, b, confidence=0.9).words() == "90% CI above 0"
    assert str(cmp).endswith(" (95% CI above 0)")
    assert paired_difference([1.0, 2.0, 3.0], [1.5, 1.5, 3.0]).words() == "95% CI covers 0"


def test_difference_inside_the_noise_is_inconclusive_not_a_tie():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 5)
    b = a + rng.normal(0, 1, 5)
    cmp = paired_difference(a, b)
    assert cmp.diff.low < 0 < cmp.diff.high
    assert cmp.verdict == "inconclusive"


def test_verdict_on_boundaries():
    from physml.stats import CI

    assert verdict(CI(1.0, 0.0, 2.0, 3)) == "inconclusive"
    assert verdict(CI(1.0, 0.5, 2.0, 3)) == "greater"
    assert verdict(CI(-1.0, -2.0, -0.1, 3)) == "less"
    # an interval that ends exactly on the null does not exclude it
    assert verdict(CI(-1.0, -2.0, 0.0, 3)) == "inconclusive"
    assert verdict(CI(1.0, 0.0, 2.0, 3), null=0.0) == "inconclusive"
    assert CI(1.0, 0.5, 2.0, 3).half_width == pytest.approx(0.75)


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
    with pytest.raises(ValueError, match="takes no value=/by="):
        summarize({"a": [1, 2, 3]}, value="acc")
    with pytest.raises(ValueError, match="takes no value=/by="):
        summarize({"a": [1, 2, 3]}, by="m")
    assert str(out["b"]) == "2.00 [2.00, 2.00]"


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
    assert ratio_ci([1.0, 1.1, 0.9], [1.05, 1.0, 0.95]).verdict == "inconclusive"
    assert cmp.words() == "95% CI above 1"  # a ratio's no-effect value is 1, not 0
    assert ratio_ci(fast, slow).words() == "95% CI below 1"
    assert ratio_ci([1.0, 1.1, 0.9], [1.05, 1.0, 0.95]).words() == "95% CI covers 1"
    # "is the first greater?" as notebooks ask it ("is the model faster?")
    unclear = ratio_ci([1.0, 1.1, 0.9], [1.05, 1.0, 0.95])
    assert [c.answer for c in (cmp, ratio_ci(fast, slow), unclear)] == ["yes", "no", "inconclusive"]
    with pytest.raises(ValueError, match="positive"):
        ratio_ci([1.0, -1.0], [1.0, 1.0])
    for bad in (([0.0, 2.0], [1.0, 1.0]), ([1.0, 2.0], [1.0, 0.0])):  # a zero on either side
        with pytest.raises(ValueError, match="positive"):
            ratio_ci(*bad)
    np.testing.assert_allclose(cmp.diff.samples, slow / fast)


# --------------------------------------------------------------------------- equivalence, verdicts


def test_tost_paired_matches_two_one_sided_scipy_t_tests():
    from physml.stats import tost_paired

    rng = np.random.default_rng(3)
    a = rng.normal(1.0, 0.1, 15)
    b = a + rng.normal(0.01, 0.02, 15)
    eq = tost_paired(a, b, margin=0.05)
    d = a - b
    p_low = st.ttest_1samp(d, -0.05, alternative="greater").pvalue
    p_high = st.ttest_1samp(d, 0.05, alternative="less").pvalue
    assert eq.p_value == pytest.approx(max(p_low, p_high), rel=1e-9)
    assert eq.equivalent


def test_tost_ind_matches_welch_one_sided_tests():
    from physml.stats import tost_ind

    rng = np.random.default_rng(4)
    a, b = rng.normal(0.0, 0.05, 20), rng.normal(0.01, 0.08, 25)
    eq = tost_ind(a, b, margin=0.06)
    p1 = st.ttest_ind(a + 0.06, b, equal_var=False, alternative="greater").pvalue
    p2 = st.ttest_ind(a - 0.06, b, equal_var=False, alternative="less").pvalue
    assert eq.p_value == pytest.approx(max(p1, p2), rel=1e-6)
    assert eq.p_value < 0.05 and eq.equivalent
    assert not tost_ind(a, b, margin=0.01).equivalent


def test_welch_difference_is_scipys_welch_interval_and_exact_for_constant_samples():
    from physml.stats import welch_difference

    rng = np.random.default_rng(5)
    a, b = rng.normal(1.0, 0.1, 12), rng.normal(0.9, 0.3, 20)
    res = st.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    cmp = welch_difference(a, b)
    assert (cmp.diff.low, cmp.diff.high) == pytest.approx((res.low, res.high), rel=1e-12)
    assert cmp.diff.mean == pytest.approx(a.mean() - b.mean())
    assert cmp.diff.low < cmp.diff.mean < cmp.diff.high
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # constant samples are ordinary input: no warning
        const = welch_difference([2.0, 2.0, 2.0], [1.5, 1.5])
        one = welch_difference([1.2] * 4, b)
    assert (const.diff.low, const.diff.mean, const.diff.high) == (0.5, 0.5, 0.5)
    assert const.verdict == "greater"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Precision loss", category=RuntimeWarning)
        ref = st.ttest_ind([1.2] * 4, b, equal_var=False).confidence_interval(0.95)
    assert (one.diff.low, one.diff.high) == pytest.approx((ref.low, ref.high), rel=1e-12)
    assert one.diff.low < one.diff.high


def test_tost_without_spread_compares_the_differences_not_the_sums():
    from physml.stats import tost_ind, tost_paired

    a = np.array([1.0, 2.0, 3.0])
    exact = tost_paired(a, a.copy(), margin=0.1)  # every pair identical: no spread in a - b
    assert exact.p_value == 0.0 and exact.equivalent
    assert tost_paired(a, a - 0.5, margin=0.1).p_value == 1.0
    assert tost_paired(a, a - 0.5, margin=0.5).p_value == 1.0  # on the margin is not within it
    # differences with spread (whose sums have none) go through the t-tests
    spread = tost_paired(a, a[::-1], margin=3.0)
    d = a - a[::-1]
    p_ref = max(st.ttest_1samp(d, -3.0, alternative="greater").pvalue,
                st.ttest_1samp(d, 3.0, alternative="less").pvalue)
    assert 0.0 < spread.p_value == pytest.approx(p_ref, rel=1e-9)
    # one constant sample beside one with spread is an ordinary Welch test, not the exact path
    eq = tost_ind([1.0, 1.0, 1.0, 1.0], [0.9, 1.0, 1.1, 1.05], margin=0.2)
    with warnings.catch_warnings():  # scipy warns of precision loss on any constant sample
        warnings.filterwarnings("ignore", message="Precision loss", category=RuntimeWarning)
        p1 = st.ttest_ind(np.ones(4) + 0.2, [0.9, 1.0, 1.1, 1.05], equal_var=False,
                          alternative="greater").pvalue
        p2 = st.ttest_ind(np.ones(4) - 0.2, [0.9, 1.0, 1.1, 1.05], equal_var=False,
                          alternative="less").pvalue
    assert 0.0 < eq.p_value == pytest.approx(max(p1, p2), rel=1e-6)
    assert tost_ind([1.0, 1.0], [1.0, 1.0], margin=0.1).p_value == 0.0
    assert tost_ind([1.0, 1.0], [1.05, 1.05], margin=0.1).equivalent
    assert tost_ind([1.0, 1.0], [1.5, 1.5], margin=0.1).p_value == 1.0
    assert tost_ind([1.0, 1.0], [1.5, 1.5], margin=0.5).p_value == 1.0
    for tost in (tost_paired, tost_ind):
        with pytest.raises(ValueError, match="margin must be > 0"):
            tost(a, a, margin=0.0)


def test_equal_means_with_tight_cis_are_a_tie():
    from physml.stats import compare

    rng = np.random.default_rng(5)
    a = 0.80 + rng.normal(0, 0.002, 8)
    b = a + rng.normal(0, 0.002, 8)
    v = compare(a, b, better="higher", margin=0.01)
    assert v.outcome == "tie" and v.tost_p < 0.05
    assert v.diff.low < 0 < v.diff.high


def test_wide_cis_covering_zero_are_inconclusive_not_a_tie():
    from physml.stats import compare

    rng = np.random.default_rng(0)
    a = 0.80 + rng.normal(0, 0.1, 5)
    b = a + rng.normal(0, 0.1, 5)
    v = compare(a, b, better="higher", margin=0.01)
    assert v.diff.low < 0 < v.diff.high
    assert v.outcome == "inconclusive" and v.tost_p > 0.05


@pytest.mark.parametrize("better,winner", [("higher", "a"), ("lower", "b")])
def test_separated_difference_names_the_better_side(better, winner):
    from physml.stats import compare

    a = [0.90, 0.91, 0.92, 0.905]
    b = [0.70, 0.72, 0.71, 0.69]
    assert compare(a, b, better=better, margin=0.01).outcome == winner
    other = {"a": "b", "b": "a"}[winner]
    assert compare(b, a, better=better, margin=0.01).outcome == other


def test_separated_but_within_margin_still_names_the_winner():
    # a CI-separated difference is a win even when it is small; TOST only decides non-separated
    from physml.stats import compare

    a = np.array([1.0, 1.1, 1.2, 1.3])
    v = compare(a + 0.001, a, better="higher", margin=0.5)
    assert v.outcome == "a"


def test_log_scale_compares_ratios_and_margin_is_a_fraction():
    from physml.stats import compare

    fast = np.array([1000.0, 1100.0, 950.0, 1050.0])
    slow = fast / np.array([9.8, 10.1, 10.0, 10.3])
    v = compare(fast, slow, better="higher", margin=0.1, scale="log")
    assert v.outcome == "a"
    assert v.diff.mean == pytest.approx(np.exp(np.mean(np.log(fast / slow))))
    same = compare(fast, fast * np.array([1.01, 0.99, 1.0, 1.005]), better="higher",
                   margin=0.1, scale="log")
    assert same.outcome == "tie"
    np.testing.assert_allclose(v.diff.samples, fast / slow)  # paired ratios, for later pairing


def test_verdict_words_say_which_side_won_and_a_tie_only_after_tost():
    from physml.stats import OUTCOME_SENTENCES, OUTCOME_WORDS, compare

    low, high = [1.0, 1.1, 0.9, 1.0], [2.0, 2.1, 1.9, 2.2]
    # a = the first argument: "better" when it wins under the given direction, else "worse"
    assert compare(low, high, better="lower", margin=0.1).word == "better"
    assert compare(low, high, better="higher", margin=0.1).word == "worse"
    assert compare(high, low, better="higher", margin=0.1).sentence.startswith("the first")
    assert compare(low, high, better="higher", margin=0.1).sentence.startswith("the second")
    same = compare(low, [1.01, 1.09, 0.91, 1.0], better="lower", margin=0.1)
    assert (same.outcome, same.word) == ("tie", "equivalent")
    assert "TOST" in same.sentence
    wide = compare([1.0, 3.0, 0.0, 2.0], [2.0, 0.0, 3.0, 1.0], better="lower", margin=0.1)
    assert (wide.outcome, wide.word) == ("inconclusive", "inconclusive")
    assert set(OUTCOME_WORDS) == set(OUTCOME_SENTENCES) == {"a", "b", "tie", "inconclusive"}


def test_compare_rejects_bad_arguments():
    from physml.stats import compare

    with pytest.raises(ValueError, match="better"):
        compare([1, 2], [1, 2], better="bigger", margin=0.1)
    with pytest.raises(ValueError, match="compare: margin must be a positive number"):
        compare([1, 2], [1, 2], better="higher", margin=0)
    with pytest.raises(ValueError, match="compare: margin must be a positive number"):
        compare([1, 2], [1, 2], better="higher", margin="0.1")
    for bad in ([1.0, 2.0], [0.0, 2.0]), ([0.0, 2.0], [1.0, 2.0]):  # a zero on either side
        with pytest.raises(ValueError, match="values must be positive"):
            compare(*bad, better="higher", margin=0.1, scale="log")
    with pytest.raises(ValueError, match="scale"):
        compare([1, 2], [1, 2], better="higher", margin=0.1, scale="sqrt")


def test_summarize_frame_matches_mean_ci_per_group():
    import pandas as pd

    df = pd.DataFrame({"method": ["x"] * 4 + ["y"] * 3, "task": ["t"] * 7,
                       "acc": [0.5, 0.6, 0.55, 0.65, 0.9, 0.8, 0.85]})
    with pytest.raises(TypeError, match="value= and by="):
        summarize(df, value="acc")
    with pytest.raises(TypeError, match="value= and by="):
        summarize(df, by="method")
    out = summarize(df, value="acc", by=["method", "task"])
    ref = mean_ci([0.9, 0.8, 0.85])
    row = out[out.method == "y"].iloc[0]
    assert (row["mean"], row.ci_low, row.ci_high, row.n) == pytest.approx(
        (ref.mean, ref.low, ref.high, 3))
    assert list(out.method) == ["x", "y"]
    # groups keep the order in which they first occur (the order of a notebook's table)
    assert list(summarize(df[::-1], value="acc", by="method").method) == ["y", "x"]
    with pytest.raises(KeyError, match="accuracy"):
        summarize(df, value="accuracy", by="method")


def test_ci_keeps_its_samples_for_paired_use():
    a = mean_ci([1.0, 2.0, 3.0])
    b = mean_ci([0.5, 1.5, 2.0])
    assert a.samples == (1.0, 2.0, 3.0)
    assert paired_difference(a, b).diff.mean == pytest.approx(np.mean([0.5, 0.5, 1.0]))


def test_bounds_clip_the_interval_to_the_metric_range_and_keep_the_mean():
    x = np.array([0.9, 1.0, 1.0, 0.98])
    free = mean_ci(x)
    t = st.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    assert free.high == pytest.approx(x.mean() + t) and free.high > 1
    ci = mean_ci(x, bounds=(0, 1))
    assert ci.high == 1.0 and ci.low == pytest.approx(free.low) and ci.mean == free.mean
    assert "clipped to [0, 1]" in ci.method and ci.samples == free.samples
    mse = mean_ci([1e-6, 2e-6, 5e-4], bounds=(0, None))
    assert mse.low == 0.0 and mean_ci([1e-6, 2e-6, 5e-4]).low < 0
    inside = mean_ci([0.4, 0.5, 0.6], bounds=(0, 1))
    assert inside == mean_ci([0.4, 0.5, 0.6]) and inside.method == "t"


def test_bounds_reject_values_outside_the_range_and_malformed_bounds():
    with pytest.raises(ValueError, match=r"values \[1\.2\] lie outside"):
        mean_ci([0.9, 1.2], bounds=(0, 1))
    with pytest.raises(ValueError, match="low < high"):
        mean_ci([0.5, 0.6], bounds=(1, 0))
    with pytest.raises(ValueError, match=r"\(low, high\)"):
        mean_ci([0.5, 0.6], bounds=(0,))
    with pytest.raises(ValueError, match="low < high"):
        mean_ci([1.0, 1.0], bounds=(1, 1))
    edges = mean_ci([0.0, 0.5, 1.0], bounds=(0, 1))  # values on the bounds are in range
    assert edges.low == 0.0 and edges.high == 1.0
    assert mean_ci([-5.0, 0.2, 0.4], bounds=(None, 1)).low < -5.0  # None: no lower bound
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\)"):
            mean_ci([0.5, 0.6], confidence=bad)


def test_summarize_passes_bounds_to_every_group():
    import pandas as pd

    df = pd.DataFrame({"m": ["a"] * 3 + ["b"] * 3, "acc": [0.9, 1.0, 1.0, 0.4, 0.5, 0.6]})
    s = summarize(df, value="acc", by="m", bounds=(0, 1)).set_index("m")
    assert s.loc["a", "ci_high"] == 1.0
    assert s.loc["b", "ci_low"] == pytest.approx(mean_ci([0.4, 0.5, 0.6]).low)
    assert summarize({"a": [0.9, 1.0, 1.0]}, bounds=(0, 1))["a"].high == 1.0


def test_geometric_mean_ci_is_the_t_interval_of_the_logs_mapped_back():
    from physml.stats import geometric_mean_ci

    x = np.array([2.0, 8.0, 4.0, 30.0])
    lx = np.log(x)
    h = st.t.ppf(0.975, 3) * lx.std(ddof=1) / 2
    ci = geometric_mean_ci(x)
    assert ci.mean == pytest.approx(np.exp(lx.mean()))
    assert (ci.low, ci.high) == pytest.approx((np.exp(lx.mean() - h), np.exp(lx.mean() + h)))
    assert ci.samples == tuple(x) and ci.low > 0
    assert geometric_mean_ci(x, bounds=(0, 40)).high == 40.0
    with pytest.raises(ValueError, match="positive"):
        geometric_mean_ci([1.0, 0.0])


def test_ci_covers_its_bounds_and_nothing_outside():
    from physml.stats import CI

    ci = CI(0.83, 0.79, 0.87, 3)
    assert ci.covers(0.79) and ci.covers(0.87) and ci.covers(0.83)
    assert not ci.covers(0.9023) and not ci.covers(0.78)


def test_interval_parts_keep_significant_digits_and_trailing_zeros():
    from physml.stats import CI, format_interval, format_value, interval_parts

    # "g" would drop the zeros that say a bound is as precise as the mean
    assert interval_parts(4.64, 3.59, 6.0) == ("4.64", "3.59", "6.00")
    assert interval_parts(17.0, 13.7, 21.1) == ("17.0", "13.7", "21.1")
    assert interval_parts(0.403, 0.353, 0.46) == ("0.403", "0.353", "0.460")
    assert interval_parts(0.1234, 0.0, 0.5, ".4g") == ("0.1234", "0.000", "0.5000")
    # each number its own significant digits: a wide interval does not erase a small mean
    assert interval_parts(-0.257, -7.05, 6.54) == ("-0.257", "-7.05", "6.54")
    # no bare decimal point, and rounding that carries into a new digit
    assert interval_parts(100.0, 99.0, 101.0) == ("100", "99.0", "101")
    assert interval_parts(9.996, 9.9, 10.02) == ("10.0", "9.90", "10.0")
    # no exponent from 1e3 up to 1e9, thousands separators from 1e3 (as an integer's: 1,234
    # beside 10,000, not 1234), rounded to N digits
    assert interval_parts(1234.0, 999.0, 1400.0) == ("1,230", "999", "1,400")
    assert interval_parts(9870.0, 8760.0, 11000.0) == ("9,870", "8,760", "11,000")
    assert interval_parts(48197.0, 45012.0, 9999.6) == ("48,200", "45,000", "10,000")
    assert interval_parts(12345.6, 1.0, 2.0, ".6g") == ("12,345.6", "1.00000", "2.00000")
    assert interval_parts(9.9e8, 9e8, 9.99e8, ".2g") == ("990,000,000", "900,000,000", "1.0e+09")
    # an exponent below 1e-4 and from 1e9; a sign flag is kept
    assert interval_parts(1.946e-5, 1.871e-5, 2.02e-5) == ("1.95e-05", "1.87e-05", "2.02e-05")
    assert interval_parts(2e9, 1e9, 3e9, "+.2g") == ("+2.0e+09", "+1.0e+09", "+3.0e+09")
    assert interval_parts(0.5, -0.3, 1.25, "+.2g") == ("+0.50", "-0.30", "+1.2")
    assert interval_parts(float("nan"), 1.0, float("inf")) == ("nan", "1.00", "inf")
    # other specs are applied as given
    assert interval_parts(0.5, 0.25, 0.75, ".1%") == ("50.0%", "25.0%", "75.0%")
    assert interval_parts(12345.6, 1.0, 2.0, ",.1f") == ("12,345.6", "1.0", "2.0")
    assert format_interval(-0.047, -0.0031, 0.098, "+.3f") == "-0.047 [-0.003, +0.098]"
    assert CI(17.0, 13.7, 21.1, 3).format() == "17.0 [13.7, 21.1]"
    # integers stay exact (a count of steps is not 340.0 or 3.40e+02); floats that equal them do not
    assert [format_value(v, ".3g") for v in (340, np.int64(123456), -5, 340.0)] == [
        "340", "123,456", "-5", "340"]
    assert format_value(np.int64(12), "+.2g") == "+12" and format_value(12.0, ".4g") == "12.00"
    assert format_value(1000.0, ".3g") == "1,000" and format_value(999.0, ".3g") == "999"
    assert format_value(999.6, ".3g") == "1,000" and format_value(1234, ".3g") == "1,234"
    assert str(CI(0.8059, 0.6999, 0.912, 3)) == "0.806 [0.700, 0.912]"


@pytest.mark.parametrize("better,low,high,outcome", [
    ("higher", 0.85, 0.90, "met"),         # the lower bound may equal the target
    ("higher", 0.849, 0.90, "undecided"),
    ("higher", 0.80, 0.85, "undecided"),   # the upper bound touching it is not a miss
    ("higher", 0.80, 0.849, "missed"),
    ("lower", 0.05, 0.10, "met"),          # "at most 0.10"
    ("lower", 0.05, 0.101, "undecided"),
    ("lower", 0.10, 0.20, "undecided"),
    ("lower", 0.101, 0.20, "missed"),
])
def test_against_target_needs_the_whole_interval(better, low, high, outcome):
    from physml.stats import CI, against_target
    target = 0.85 if better == "higher" else 0.10
    check = against_target(CI((low + high) / 2, low, high, 5), target, better=better)
    assert check.outcome == outcome
    assert check.phrase().startswith(outcome + " (")
    assert check.as_dict()["outcome"] == outcome and check.as_dict()["target"] == target


def test_against_target_phrase_names_the_side_and_the_numbers():
    from physml.stats import CI, against_target
    up = against_target(CI(0.86, 0.851, 0.87, 5), 0.85, better="higher")
    assert up.phrase(".2f") == "met (the whole 95% CI is at or above 0.85)"
    down = against_target(CI(0.12, 0.11, 0.13, 5), 0.10, better="lower")
    assert down.phrase(".2f") == "missed (the whole 95% CI is above 0.10)"
    mixed = against_target(CI(0.8125, 0.7943, 0.8608, 5), 0.85, better="higher")
    assert mixed.phrase(".3f") == ("undecided (the 95% CI [0.794, 0.861] contains 0.850, "
                                   "the mean is below it)")
    mixed_up = against_target(CI(0.09, 0.05, 0.12, 5), 0.10, better="lower")
    assert mixed_up.phrase(".2f").endswith("contains 0.10, the mean is below it)")
    above = against_target(CI(0.9, 0.8, 1.0, 5), 0.85, better="higher")
    assert above.phrase().endswith("the mean is above it)")


def test_against_target_rejects_bad_arguments():
    from physml.stats import CI, against_target
    with pytest.raises(ValueError, match="better"):
        against_target(CI(1, 0, 2, 3), 1.0, better="more")
    with pytest.raises(TypeError, match="CI"):
        against_target(0.9, 1.0, better="higher")
    with pytest.raises(ValueError, match="finite"):
        against_target(CI(1, 0, 2, 3), float("nan"), better="higher")
