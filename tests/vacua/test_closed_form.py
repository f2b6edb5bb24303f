"""The closed-form vacuum-class rule |c_i| > a·A against solved vacua (exact for one modulus
without couplings), and the verdict wording of the paired comparisons."""

import numpy as np
import pandas as pd
import pytest

from physml.vacua.active_learning import (
    VACUUM_CLASSES,
    closed_form_class,
    key_of,
    paired_against,
    vacuum_class,
)
from physml.vacua.potential import make_potential, stack_potentials
from physml.vacua.solvers import newton_padded


@pytest.mark.parametrize("c, expected", [(0.9, "pinned"), (-0.95, "pinned"),
                                         (1.1, "all_displaced"), (-1.2, "all_displaced")])
def test_one_modulus_leaves_its_kink_exactly_when_the_tilt_beats_a_times_A(c, expected):
    # V = φ² + cφ − A e^{−a|φ|}, a·A = 1: V'(0±) = c ± aA, so φ = 0 is the minimum iff |c| < aA
    pot = make_potential([1.0], None, 0.0, [c], 1.0, 1.0, 0.0, 1.0, 0.1)
    P = stack_potentials([pot], 2)
    r = newton_padded(P, np.array([[[0.4, 0.0], [-0.4, 0.0], [0.05, 0.0]]]))
    solved = VACUUM_CLASSES[vacuum_class(r["phi"], P.mask, r["converged"])[0]]
    assert solved == expected
    assert VACUUM_CLASSES[closed_form_class(P)[0]] == expected


def test_rule_counts_only_real_moduli():
    pots = [make_potential([1.0, 1.0], None, 0.0, [2.0, 0.1], 1.0, 1.0, 0.0, 1.0, 0.1),
            make_potential([1.0, 1.0], None, 0.0, [2.0, -3.0], 1.0, 1.0, 0.0, 1.0, 0.1)]
    P = stack_potentials(pots, 4)  # two padded coordinates with c = 0
    assert [VACUUM_CLASSES[k] for k in closed_form_class(P)] == ["partly_displaced",
                                                                "all_displaced"]


def test_paired_against_names_the_better_side_and_needs_tost_for_a_tie():
    df = pd.DataFrame(dict(model=["base"] * 5 + ["good"] * 5 + ["same"] * 5 + ["noisy"] * 5,
                           seed=list(range(5)) * 4,
                           accuracy=[.80, .82, .81, .79, .80, .90, .91, .92, .90, .91,
                                     .801, .821, .809, .791, .80, .70, .95, .60, .99, .82]))
    p = paired_against(df, "model", "base", margin=0.01).set_index("model")
    assert p.loc["good", "verdict"] == "better"
    assert p.loc["same", "verdict"] == "equivalent"
    assert p.loc["noisy", "verdict"] == "inconclusive"
    assert key_of("graph + coefficients") == "graph_coefficients"
