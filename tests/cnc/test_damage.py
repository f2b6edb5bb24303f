"""Tool-damage analysis (notebook 06): confound, session-cancelling ratios, permutation test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from physml.cnc import damage as D
from physml.cnc import schema
from physml.cnc.data import CNCData
from physml.cnc.features import COMMON_SOURCES, model_input_columns


def _synthetic(gains=(1.0, 3.0), cut_sd=2.0, n=60, seed=0):
    """Two files of one program: G0 rows then G1 rows; each file's channels have a session
    gain (``gains``), and cutting rows have ``cut_sd`` times the spread of the others."""
    rng = np.random.default_rng(seed)
    parts, files = [], []
    for k, g in enumerate(gains):
        f = f"face_{k + 1:03d}"
        line = np.r_[np.full(n, 16), np.full(n, 19)]
        text = np.where(line == 16, "G0 X1.", "G1 X2. F10.")
        cols = {c: np.full(2 * n, np.nan, np.float32) for c in schema.INPUT_COLUMNS}
        for c in model_input_columns(COMMON_SOURCES):
            z = rng.normal(0, 1, 2 * n)
            z[n:] *= cut_sd
            cols[c] = (g * z + 5.0 * g).astype(np.float32)
        parts.append(pd.DataFrame({"file": f, "row": np.arange(2 * n), "gcode_line": line,
                                   "gcode_string": text, "momo": np.where(line == 16, 0.0, 1.0),
                                   **cols}))
        files.append({"file": f, "kind": "face", "operation": "face", "campaign": "c1",
                      "damaged": k == 1, "number": k + 1, "n_rows": 2 * n, "dropped_tail": 0,
                      **{f"has_{s}": s in COMMON_SOURCES for s in schema.SOURCES}})
    return CNCData(pd.concat(parts, ignore_index=True), pd.DataFrame(files))


def test_cutting_ratio_is_the_log_spread_ratio_and_cancels_the_session_gain():
    d = _synthetic(gains=(1.0, 3.0), cut_sd=2.0, n=4000)
    lab = D.file_labels(d)
    R, names = D.cutting_ratio_features(d, lab)
    assert names and all(n.endswith(":cut/other") for n in names)
    # independent reference: log(2) whatever the gain (1 or 3) of the file's session
    assert np.allclose(R, np.log(2.0), atol=0.06)
    raw = D.file_level_features(d, lab)
    assert not np.allclose(raw[0], raw[1], rtol=0.2)  # the raw features do see the gain


def test_confound_detection():
    lab = pd.DataFrame({"campaign": ["a", "a", "b", "b"], "damaged": [True, True, False, False]})
    assert D.campaigns_with_both(lab) == []
    lab.loc[1, "damaged"] = False
    assert D.campaigns_with_both(lab) == ["a"]


def test_early_late_splits_each_program_at_its_median_number():
    lab = pd.DataFrame({"program": ["P1"] * 4 + ["P2"] * 2, "number": [1, 2, 3, 4, 7, 9],
                        "campaign": "c2", "damaged": False})
    assert D.early_late(lab, "c2").tolist() == [False, False, True, True, False, True]
    with pytest.raises(ValueError, match="c9"):
        D.early_late(lab, "c9")


def test_permutation_test_separates_signal_from_noise():
    rng = np.random.default_rng(0)
    n = 40
    y = np.r_[np.zeros(n // 2, bool), np.ones(n // 2, bool)]
    files = np.array([f"f{i}" for i in range(n)])
    strata = np.array(["P1", "P2"] * (n // 2))
    signal = (y[:, None] * 3.0 + rng.normal(0, 1, (n, 2)))
    obs, p, null = D.permutation_test(signal, y, files, strata, 4, 19, seed=1)
    assert obs > 0.9 and p == pytest.approx(1 / 20)
    noise = rng.normal(0, 1, (n, 2))
    obs, p, _ = D.permutation_test(noise, y, files, strata, 4, 19, seed=1)
    assert p > 0.05
    with pytest.raises(ValueError):
        D.permutation_test(noise, y, files, strata, 4, 0, seed=1)


def test_cutting_ratio_reads_each_file_on_its_own_rows_and_names_the_kept_channels():
    a = _synthetic(gains=(1.0,), cut_sd=2.0, n=4000, seed=1)
    b = _synthetic(gains=(1.0,), cut_sd=4.0, n=4000, seed=2)
    b.rows["file"] = "face_002"
    b.files["file"], b.files["number"] = "face_002", 2
    d = CNCData(pd.concat([a.rows, b.rows], ignore_index=True),
                pd.concat([a.files, b.files], ignore_index=True))
    R, names = D.cutting_ratio_features(d, D.file_labels(d), channels=("Ax",))
    assert np.allclose(R[0], np.log(2.0), atol=0.06) and np.allclose(R[1], np.log(4.0), atol=0.06)
    assert names and all(n.split(":")[0].endswith(".Ax") for n in names)


def test_cutting_ratio_needs_three_rows_of_each_kind_per_file():
    for n, ok in ((2, False), (3, True)):
        d = _synthetic(gains=(1.0, 1.0), n=n)
        if ok:
            D.cutting_ratio_features(d, D.file_labels(d))
        else:
            with pytest.raises(ValueError, match="face_001: 2 cutting and 2 other"):
                D.cutting_ratio_features(d, D.file_labels(d))
    d = _synthetic(gains=(1.0, 1.0), n=10)  # one kind short alone is refused too
    short = (d.rows["file"] == "face_001") & (d.rows["row"] >= 12)  # 2 of its 10 G1 rows
    d.rows.loc[short, ["gcode_line", "gcode_string"]] = [16, "G0 X1."]
    with pytest.raises(ValueError, match="face_001: 2 cutting and 18 other"):
        D.cutting_ratio_features(d, D.file_labels(d))


def test_confound_table_counts_files_per_campaign_and_health_with_sources_last():
    lab = pd.DataFrame({"program": ["P1", "P1", "P1"], "operation": "face",
                        "campaign": ["c1", "c2", "c2"], "damaged": [False, True, True],
                        "n_sources": [4, 3, 2]})
    t = D.confound_table(lab)
    assert list(t.columns) == ["program", "operation", "c1 / healthy", "c2 / damaged"]
    assert t.iloc[0, 2:].tolist() == [1, 2] and list(t.index) == [0, 1]
    assert t.iloc[1]["program"] == "sources present (mean)"
    assert t.iloc[1, 2:].tolist() == [4.0, 2.5]


def test_early_late_puts_a_file_at_the_median_number_early():
    lab = pd.DataFrame({"program": "P1", "number": [1, 2, 3], "campaign": "c2",
                        "damaged": False})
    assert D.early_late(lab, "c2").tolist() == [False, False, True]


def test_cross_validation_refuses_a_training_fold_of_one_class():
    X = np.arange(4.0).reshape(2, 2)
    with pytest.raises(ValueError, match="training files hold one class only"):
        D.cv_balanced_accuracy(X, np.array([0, 1]), np.array(["f1", "f2"]), 2, [0])


def test_labels_constant_within_each_stratum_cannot_be_permuted_so_p_is_one():
    rng = np.random.default_rng(3)
    n = 36
    strata = np.repeat(["A", "B", "C"], n // 3)
    y = strata == "B"  # each stratum holds one label: shuffling within strata changes nothing
    X = y[:, None] * 3.0 + rng.normal(0, 1, (n, 2))
    files = np.array([f"f{i}" for i in range(n)])
    obs, p, null = D.permutation_test(X, y, files, strata, 3, 5, seed=0)
    assert np.all(null == obs) and p == 1.0
    assert len(D.permutation_test(X, y, files, strata, 3, 1, seed=0)[2]) == 1  # n_perm = 1
