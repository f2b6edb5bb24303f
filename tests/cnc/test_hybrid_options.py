"""Options of the alignment hybrid added for issue 11's 85% target: template durations (the
modal run of the training recordings), motion emission features, and their choice on inner
folds only."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from physml.cnc import data, tokens
from physml.cnc import hybrid as H
from physml.cnc.features import COMMON_SOURCES, model_input_columns
from physml.cnc.motion import motion_features

pytestmark = pytest.mark.xdist_group("cnc_test_hybrid_options")

HELD_OUT = ("face_001", "pocket_001")


# ---------------------------------------------------------------- template durations

def test_modal_run_matches_a_per_position_mode_computed_with_pandas():
    rng = np.random.default_rng(3)
    runs = [np.sort(rng.integers(10, 30, size=n)) for n in (40, 43, 41, 38, 44)]
    got = H.modal_run(runs)
    n = int(np.median([len(r) for r in runs]))
    want = []
    for i in range(n):
        vals = pd.Series([int(r[i]) for r in runs if len(r) > i])
        counts = vals.value_counts()
        want.append(min(counts.index[counts == counts.max()]))  # tie: smaller line number
    assert got.tolist() == want


def _three_runs():
    """Program 2 -> 3 -> 4 (line 3 is very short): file "a" reports line 3 once, files "b"
    and "c" (the majority, sampled at another phase) never do. 21 rows each."""
    prog = {1: "G90", 2: "G1 X5. F10.", 3: "X5.1", 4: "X10.", 5: "M30"}
    seqs = {"a": [2] * 10 + [3] + [4] * 10, "b": [2] * 10 + [4] * 11, "c": [2] * 10 + [4] * 11}
    rows = pd.concat([pd.DataFrame({"file": f, "gcode_line": s,
                                    "gcode_string": [prog[x] for x in s],
                                    "feed": 254.0, "momo": 1.0}) for f, s in seqs.items()],
                     ignore_index=True)
    return tokens.Program("P", prog, tuple(seqs)), rows, seqs


def _timeline(durations):
    prog, rows, _ = _three_runs()
    return H.build_timeline(prog, rows, rapid_rate=50.0, machine_move_s=0.0,
                            rows_per_second=4.0, bins_per_row=2, durations=durations)


def test_template_gives_no_rows_to_a_line_most_recordings_skip():
    obs, tpl = _timeline("observed"), _timeline("template")
    c_obs = dict(zip(obs.lines, np.bincount(obs.bin_line, minlength=len(obs.lines)),
                     strict=True))
    c_tpl = dict(zip(tpl.lines, np.bincount(tpl.bin_line, minlength=len(tpl.lines)),
                     strict=True))
    # observed: mean rows 10, 1/3, 32/3 -> bins 20, 1 (of 0.67, rounded by the cut), 21
    assert c_obs == {1: 0, 2: 20, 3: 1, 4: 21, 5: 0}
    # template: the modal run is 10 x line 2 then 11 x line 4
    assert c_tpl == {1: 0, 2: 20, 3: 0, 4: 22, 5: 0}


def _decode(tl, n_rows):
    """Timing-only decoding (no classifier): start in the first row's bins, end in the last."""
    cfg = H.AlignmentConfig(bins_per_row=2, max_advance=4, pace_sigma=0.4, weight=0.0,
                            start_rows=1, end_rows=1)
    model = H.AlignmentModel(cfg, {"P": tl}, None, {c: 0.0 for c in H.CLASSES}, [], 1.0)
    return model.align(ratio=np.zeros((n_rows, len(H.CLASSES))))["lines"]


def test_template_decodes_the_majority_phase_exactly_and_observed_does_not():
    _, _, seqs = _three_runs()
    truth = np.array(seqs["b"])
    acc_obs = float(np.mean(_decode(_timeline("observed"), len(truth)) == truth))
    acc_tpl = float(np.mean(_decode(_timeline("template"), len(truth)) == truth))
    assert acc_tpl == 1.0
    assert acc_obs == pytest.approx(20 / 21)  # row 10 is put on the short line 3
    # the minority recording is the other way round: it did report the short line
    minority = np.array(seqs["a"])
    assert float(np.mean(_decode(_timeline("template"), 21) == minority)) == pytest.approx(20 / 21)


# ---------------------------------------------------------------- motion emission features

@pytest.fixture(scope="module")
def small():
    return data.first_per_kind(data.load_shipped(), 3)


def test_motion_emission_features_are_the_centred_motion_features(small):
    rows = small.rows[small.rows["file"].isin(HELD_OUT)].reset_index(drop=True)
    cfg = H.AlignmentConfig(emission_features="motion", motion_halves=(1, 5))
    X = H.features(rows, cfg)
    ref, names = motion_features(rows, model_input_columns(COMMON_SOURCES), halves=(1, 5))
    np.testing.assert_array_equal(X, ref)
    assert X.shape[1] == len(names) != H.features(rows, H.AlignmentConfig()).shape[1]
    with pytest.raises(ValueError, match="emission_features"):
        H.AlignmentConfig(emission_features="psychic")
    with pytest.raises(ValueError, match="motion_halves"):
        H.AlignmentConfig(motion_halves=())
    with pytest.raises(ValueError, match=r"half windows >= 0 rows, got \(2, -1\)"):
        H.AlignmentConfig(motion_halves=(2, -1))
    assert H.AlignmentConfig(motion_halves=(0, 3)).motion_halves == (0, 3)  # 0: the row alone
    for bad in ({"threads": 0}, {"max_runs": 0}):
        with pytest.raises(ValueError, match=f"{next(iter(bad))} must be >= 1, got 0"):
            H.AlignmentConfig(**bad)
    H.AlignmentConfig(threads=1, max_runs=1)


@pytest.fixture(scope="module")
def motion_model(small):
    train = small.rows[~small.rows["file"].isin(HELD_OUT)].reset_index(drop=True)
    test = small.rows[small.rows["file"].isin(HELD_OUT)].reset_index(drop=True)
    cfg = H.AlignmentConfig(gbm_iter=3, train_stride=8, weight=0.1, durations="template",
                            emission_features="motion", motion_halves=(2, 6))
    return H.AlignmentModel.fit(train, cfg), test


def test_motion_template_model_round_trips_through_the_saved_model(motion_model, tmp_path):
    model, test = motion_model
    again = H.AlignmentModel.load(model.save(tmp_path / "m"))
    assert again.config == model.config
    assert (again.config.emission_features, again.config.motion_halves,
            again.config.durations) == ("motion", (2, 6), "template")
    a, b = model.predict_rows(test), again.predict_rows(test)
    assert a.equals(b)
    # the loaded model computes its own (motion) features: a window-feature model would
    # need another number of columns, so equal predictions prove the option survived
    assert model.classifier.n_features_in_ == H.features(test, model.config).shape[1]


def test_a_model_saved_before_the_options_names_what_is_missing(motion_model, tmp_path):
    model, _ = motion_model
    d = model.save(tmp_path / "old")
    man = json.loads((d / "manifest.json").read_text())
    del man["config"]["emission_features"], man["config"]["motion_halves"]
    (d / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ValueError, match=r"emission_features.*motion_halves|config lacks"):
        H.AlignmentModel.load(d)


# ---------------------------------------------------------------- chosen on inner folds only

def test_decoding_grids_add_the_feature_choice_to_sensor_configs_only():
    cfgs = {"s": H.AlignmentConfig(weight=0.1), "t": H.AlignmentConfig(weight=0.0)}
    g = H.decoding_grids(cfgs, [0.1], [0.4], [4], emission_features=["window", "motion"])
    assert g["s"]["emission_features"] == ["window", "motion"]
    assert "emission_features" not in g["t"]
    assert "emission_features" not in H.decoding_grids(cfgs, [0.1], [0.4], [4], ["motion"])["s"]
    with pytest.raises(ValueError, match="psychic"):
        H.decoding_grids(cfgs, [0.1], [0.4], [4], emission_features=["window", "psychic"])
    # a decoder choice only when there is more than one, for every config
    both = H.decoding_grids(cfgs, [0.1], [0.4], [4], decoders=["viterbi", "posterior"])
    assert both["s"]["decoder"] == both["t"]["decoder"] == ["viterbi", "posterior"]
    assert "decoder" not in H.decoding_grids(cfgs, [0.1], [0.4], [4], decoders=["posterior"])["t"]
    with pytest.raises(ValueError, match=r"decoders \['oracle'\] not in"):
        H.decoding_grids(cfgs, [0.1], [0.4], [4], decoders=["viterbi", "oracle"])
    chosen = pd.DataFrame({"method": ["s"], "seed": [0], "fold": [1], "weight": [0.1],
                           "pace_sigma": [0.4], "max_advance": [4],
                           "emission_features": ["motion"]})
    fig = H.chosen_figures(chosen, g)
    assert fig["s.seed0.fold1.emission_features"] == "motion"
    assert fig["s.seed0.fold1.weight"] == 0.1


@pytest.mark.parametrize("informative", ["window", "motion"])
def test_selection_picks_the_informative_features_and_sees_no_test_file(small, informative,
                                                                        monkeypatch):
    """One kind carries an oracle of the motion class (its one-hot code plus noise), the
    other pure noise (seeded): the inner folds choose the informative one, whichever name it
    has, and the selector is handed the outer training rows (and their feature rows) only."""
    from physml import splits

    rows = small.rows
    cls = tokens.command_classes(rows, tokens.recover_programs(rows))
    rng = np.random.default_rng(0)
    onehot = (cls[:, None] == np.unique(cls)[None, :]).astype(np.float32)
    real = onehot + 0.3 * rng.normal(size=onehot.shape).astype(np.float32)
    noise = rng.normal(size=onehot.shape).astype(np.float32)
    X = {informative: real, ("motion" if informative == "window" else "window"): noise}
    seen = []
    real_select = H.select_decoding

    def spy(train_rows, X_train, config, grid, n_inner, seed):
        assert {len(v) for v in X_train.values()} == {len(train_rows)}
        cfg, table = real_select(train_rows, X_train, config, grid, n_inner, seed)
        seen.append((set(train_rows["file"]), cfg, table))
        return cfg, table

    monkeypatch.setattr(H, "select_decoding", spy)
    outer = splits.group_kfold(rows["file"].to_numpy(), 2, seed=0, what="file")[:1]
    cfg = H.AlignmentConfig(gbm_iter=5, train_stride=4, weight=1.0, durations="observed",
                            bins_per_row=1, max_advance=2)
    grid = {"emission_features": ["window", "motion"], "weight": [1.0], "pace_sigma": [0.6]}
    _, _, chosen = H.run_folds(small, [(0, sp) for sp in outer], {"hyb": cfg}, X=X,
                               grids={"hyb": grid}, n_inner=2)
    (files, cfg_k, table), = seen
    assert not files & set(rows["file"].to_numpy()[outer[0].test])
    assert cfg_k.emission_features == informative == chosen["emission_features"].iloc[0]
    acc = table.groupby("emission_features")["line_exact_accuracy"].mean()
    assert acc[informative] > acc.drop(informative).iloc[0]


def test_phase_check_counts_the_held_out_template_by_hand():
    _, rows, _ = _three_runs()
    pc = H.phase_check(rows).iloc[0]
    # hold out a: template b -> row 10 wrong (3 vs 4); b or c: the template of a and the
    # other ties at row 10 between 3 and 4, the smaller wins -> one row wrong each
    assert pc["template_exact"] == pytest.approx(60 / 63)
    assert pc["template_within_1"] == pytest.approx(1.0)  # line 3 vs 4 is one apart
    assert pc["lines_in_every_run"] == pytest.approx(2 / 3)  # line 3 only in a
    assert pc["rows_per_line"] == pytest.approx((10 + 1 / 3 + 32 / 3) / 3)
    assert (pc["files"], pc["run_rows"], pc["scored_rows"]) == (3, 21.0, 63)


def test_phase_check_holds_one_out_of_two_recordings_and_refuses_one():
    _, rows, _ = _three_runs()
    two = H.phase_check(rows[rows["file"] != "c"]).iloc[0]
    # a against the template b and b against a: row 10 (3 vs 4) wrong once each
    assert (two["files"], two["scored_rows"]) == (2, 42)
    assert two["template_exact"] == pytest.approx(40 / 42)
    with pytest.raises(ValueError, match="program P1 has 1 typical recording"):
        H.phase_check(rows[rows["file"] == "a"])
    # typical: within 25% of the median run (21 rows): 23 rows is, a run twice over is not
    extra = pd.DataFrame({"file": ["d"] * 23 + ["e"] * 42,
                          "gcode_line": [2] * 10 + [4] * 13 + ([2] * 10 + [4] * 11) * 2})
    extra["gcode_string"] = extra["gcode_line"].map({2: "G1 X5. F10.", 4: "X10."})
    more = pd.concat([rows, extra.assign(feed=254.0, momo=1.0)], ignore_index=True)
    assert H.phase_check(more).iloc[0]["files"] == 4


def test_kinematic_check_sets_kinematic_against_recorded_rows_per_program():
    _, rows, _ = _three_runs()
    cfg = H.AlignmentConfig(rows_per_second=4.0, machine_move_s=0.0)
    kc = H.kinematic_check(rows, cfg).iloc[0]
    # the lines the recordings report (2, 3, 4): 5 in at 10 in/min = 30 s, 0.1 in = 0.6 s,
    # 4.9 in = 29.4 s; 60 s x 4 rows/s
    k_rows = np.array([120.0, 2.4, 117.6])
    assert kc["kinematic_rows"] == pytest.approx(k_rows.sum())
    assert kc["recorded_rows_median"] == 21.0
    assert kc["ratio"] == pytest.approx(21.0 / k_rows.sum())
    # the observed timeline's rows per line (mean over a, b, c: 10, 1/3, 32/3) in whole bins
    o_rows = np.array([10.0, 0.0, 11.0])
    assert kc["line_correlation"] == pytest.approx(np.corrcoef(k_rows, o_rows)[0, 1])
    # a stale status row before the run in two of the files is not part of their runs
    head = pd.DataFrame({"file": ["a", "b"], "gcode_line": [9, 9], "gcode_string": ["M5"] * 2,
                         "feed": 254.0, "momo": 1.0})
    kc = H.kinematic_check(pd.concat([head, rows], ignore_index=True), cfg).iloc[0]
    assert kc["recorded_rows_median"] == 21.0


def test_perfect_clock_overall_weights_programs_by_their_scored_rows():
    import pandas as pd

    pc = pd.DataFrame({"template_exact": [0.5, 1.0], "scored_rows": [300, 100]})
    assert H.perfect_clock_overall(pc) == pytest.approx(0.625)  # not the plain mean 0.75
