"""Every cnc summary of an accuracy keeps its 95% CI inside [0, 1]: values near 1 with a spread
make an unclipped t-interval run past 1, so dropping ``bounds=UNIT_INTERVAL`` at any of these
call sites fails here."""

import numpy as np
import pandas as pd
import pytest

from physml.cnc import ablation, baselines, leaky

NEAR_ONE = [1.0, 1.0, 1.0, 1.0, 0.9]  # mean 0.98, unclipped t-interval high ≈ 1.035


def _scores(group: str, names) -> pd.DataFrame:
    rows = []
    for name in names:
        for fold, v in enumerate(NEAR_ONE):
            rows.append({group: name, "seed": 0, "fold": fold, "value": v,
                         "line_exact_accuracy": v, "command_balanced_accuracy": 1 - v})
    return pd.DataFrame(rows)


def _parse(cell: str) -> tuple[float, float, float]:
    mean, rest = cell.split(" [")
    low, high = rest.rstrip("]").split(", ")
    return float(mean), float(low), float(high)


def test_the_unclipped_interval_would_leave_the_unit_interval():
    from physml import stats
    assert stats.mean_ci(np.array(NEAR_ONE)).high > 1.0


def test_baseline_summaries_are_bounded():
    s = _scores("method", ["clock", "nn1"])
    t = baselines.summarize_scores(s, ["line_exact_accuracy", "command_balanced_accuracy"])
    assert t["ci_high"].max() == pytest.approx(1.0) and t["ci_low"].min() == pytest.approx(0.0)
    for cell in baselines.wide_table(s, ["line_exact_accuracy"])["line_exact_accuracy"]:
        assert _parse(cell)[2] <= 1.0


def test_ablation_summaries_are_bounded():
    s = _scores("variant", ["all", "no_motor"])
    assert max(c.high for c in ablation.cis(s, "line_exact_accuracy", "variant").values()) <= 1.0
    for cell in ablation.ci_table(s, ["line_exact_accuracy"], "variant")["line_exact_accuracy"]:
        assert _parse(cell)[2] <= 1.0
    cis = ablation.metric_cis(s[s["variant"] == "all"], ["line_exact_accuracy",
                                                           "command_balanced_accuracy"])
    assert cis["line_exact_accuracy"].high <= 1.0
    assert cis["command_balanced_accuracy"].low >= 0.0


def test_leak_ladder_table_is_bounded():
    s = _scores("step", ["file_split"])
    t = leaky.ladder_table(s)
    for cell in t["line_exact_accuracy"]:
        assert _parse(cell)[2] <= 1.0
