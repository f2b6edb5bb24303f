"""Data-audit helpers (notebook 01): command classes against the controller's motion mode."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from physml.cnc import audit


def test_momo_agreement_compares_moving_rows_with_a_reported_mode_by_hand():
    # momo 0..3 = G0..G3; 4 and NaN report no motion mode; "none" rows move nothing
    data = SimpleNamespace(rows=pd.DataFrame({"momo": [0.0, 1.0, 1.0, 3.0, 4.0, np.nan, 2.0]}))
    classes = np.array(["G0", "G1", "G0", "G2", "G1", "G1", "none"], dtype=object)
    a = audit.momo_agreement(data, classes)
    assert a["n"] == 4 and a["n_differ"] == 2  # rows 2 (G0 vs G1) and 3 (G2 vs G3)
    assert a["share"] == pytest.approx(0.5)
    t = audit.command_agreement(data, classes)
    assert t.loc["G0", "G1"] == 1 and t.loc["G2", "G3"] == 1 and t.loc["G1", "momo=4"] == 1


def test_label_changes_counts_the_moving_rows_two_rules_label_differently_per_program():
    from physml.cnc.tokens import Program

    rows = pd.DataFrame({"file": ["a", "a", "a", "b", "b", "b"]})
    data = SimpleNamespace(rows=rows)
    progs = [Program("P1", {}, ("a",)), Program("P2", {}, ("b",))]
    before = np.array(["G0", "G0", "G1", "G0", "G1", "G0"], dtype=object)
    after = np.array(["G1", "G1", "G1", "G1", "none", "G0"], dtype=object)
    out = audit.label_changes(data, progs, before, after)
    assert out.to_dict() == {("P1", "G0", "G1"): 2, ("P2", "G0", "G1"): 1}  # "none" left out
    assert list(out.index.names) == ["program", "before", "after"]
