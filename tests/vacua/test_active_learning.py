"""Active learning: the labeller is imported for real (a failing import raises), geometry splits
share no geometry, query strategies pick what their definitions say."""

import importlib
import textwrap

import numpy as np
import pytest

from physml.vacua.active_learning import (
    VACUUM_CLASSES,
    geometry_split,
    learning_curves,
    make_pool,
    resolve_labeller,
    run_active_learning,
    select_batch,
    vacuum_class,
)
from physml.vacua.geometry import enumerate_toric_surfaces


def test_failing_labeller_import_raises_instead_of_labelling_at_random():
    with pytest.raises(ImportError, match="no_such_module"):
        resolve_labeller("physml.vacua.no_such_module:label")
    with pytest.raises(ImportError, match="no_such_function"):
        resolve_labeller("physml.vacua.active_learning:no_such_function")
    pool = make_pool(enumerate_toric_surfaces(5), 2, np.random.default_rng(0))
    with pytest.raises(ImportError):
        run_active_learning(pool, "random", 0, 4, 2, 1, labeller="nonexistent_pkg:label")


def test_geometry_split_shares_no_geometry():
    rng = np.random.default_rng(0)
    gid = np.repeat(np.arange(50), 7)
    tr, te = geometry_split(gid, 0.25, rng)
    assert len(tr) + len(te) == len(gid)
    assert set(gid[tr]).isdisjoint(set(gid[te]))
    # fold 0 of a 4-fold group split (physml.splits): 12 or 13 of the 50 geometries
    assert len(set(gid[te])) in (12, 13)
    # the same rng state gives the same split; another seed another one
    tr2, te2 = geometry_split(gid, 0.25, np.random.default_rng(0))
    assert np.array_equal(np.sort(te2), np.sort(te))
    tr3, te3 = geometry_split(gid, 0.25, np.random.default_rng(1))
    assert set(gid[te3]) != set(gid[te])
    with pytest.raises(ValueError, match="test_fraction"):
        geometry_split(gid, 1.0, rng)


def _counting_labeller(tmp_path, monkeypatch, name: str):
    """A labeller module ``name`` importable as ``name:label`` that logs each call's size in
    ``name.calls``."""
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""
        import numpy as np
        calls = []
        def label(P, seed=0):
            calls.append(len(P.A))
            return (np.asarray(P.A) > 1.5).astype(int)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    return importlib.import_module(name)


def test_labeller_is_called_on_every_query(tmp_path, monkeypatch):
    counting = _counting_labeller(tmp_path, monkeypatch, "counting_labeller")
    pool = make_pool(enumerate_toric_surfaces(7), 3, np.random.default_rng(1))
    curve = run_active_learning(pool, "margin", 0, 6, 4, 3, labeller="counting_labeller:label")
    # test set once, initial set once, then one call per query round
    assert len(counting.calls) == 2 + 3
    assert counting.calls[2:] == [4, 4, 4]
    assert curve.n_labels.tolist() == [6, 10, 14, 18]
    assert curve.labeller_calls.iloc[-1] == 5


def test_learning_curves_label_each_seeds_test_set_once_and_match_uncached_curves(
        tmp_path, monkeypatch):
    counting = _counting_labeller(tmp_path, monkeypatch, "counting_labeller2")
    pool = make_pool(enumerate_toric_surfaces(7), 3, np.random.default_rng(1))
    spec = "counting_labeller2:label"
    curves = learning_curves(pool, ("random", "margin"), [0, 1], 6, 4, 2, labeller=spec,
                             n_estimators=10)
    # per seed: the test set once (shared by both strategies); per curve: initial + 2 queries
    assert len(counting.calls) == 2 * 1 + 4 * (1 + 2)
    # the cache changes no number: each curve equals its uncached run, call counts included
    for (strategy, seed), c in curves.groupby(["strategy", "seed"]):
        alone = run_active_learning(pool, strategy, int(seed), 6, 4, 2, labeller=spec,
                                    n_estimators=10)
        assert c.accuracy.tolist() == alone.accuracy.tolist()
        assert c.labeller_calls.tolist() == alone.labeller_calls.tolist()


def test_entropy_and_margin_pick_the_most_uncertain_rows():
    proba = np.array([[0.98, 0.01, 0.01], [0.34, 0.33, 0.33], [0.5, 0.5, 0.0], [0.9, 0.1, 0]])
    X = np.zeros((4, 2))
    rng = np.random.default_rng(0)
    assert select_batch("entropy", proba, X, X, 1, rng).tolist() == [1]
    assert select_batch("margin", proba, X, X, 2, rng).tolist() == [2, 1]


def test_ranked_batch_spreads_queries_over_distant_points():
    rng = np.random.default_rng(0)
    near = rng.normal(0, 0.01, (10, 2))
    far = rng.normal(0, 0.01, (10, 2)) + [5.0, 5.0]
    X_pool = np.vstack([near, far])
    proba = np.full((20, 2), 0.5)  # equal uncertainty: diversity decides
    labelled = np.array([[-5.0, -5.0]])
    pick = select_batch("ranked_batch", proba, X_pool, labelled, 2, rng, alpha=0.9)
    assert len(set(pick.tolist())) == 2
    assert pick[0] >= 10  # the far cluster first
    assert pick[1] < 10   # then the near cluster, not a second far point


def test_vacuum_class_counts_displaced_moduli_and_keeps_failures():
    phi = np.array([[0.0, 1e-5, 0.0], [0.5, 0.0, 0.0], [0.5, -0.3, 0.0], [0.5, 0.5, 0.5]])
    mask = np.array([[1, 1, 1], [1, 1, 1], [1, 1, 0], [1, 1, 1]])
    cls = vacuum_class(phi, mask, [True, True, True, False])
    assert [VACUUM_CLASSES[c] for c in cls] == ["pinned", "partly_displaced", "all_displaced",
                                                "failed"]


def test_accuracy_summaries_stay_inside_the_unit_interval():
    """Accuracies near 1 with a spread: the unclipped t-interval runs past 1; the tables and
    the recorded CIs must not (drop ``bounds`` and this fails)."""
    import pandas as pd

    from physml.vacua import active_learning as al

    df = pd.DataFrame({"strategy": ["random"] * 5, "accuracy": [1.0, 1.0, 1.0, 1.0, 0.9]})
    assert al.accuracy_table(df, "strategy")["ci_high"].iloc[0] == 1.0
    assert al.accuracy_table(df, "strategy", bounds=None)["ci_high"].iloc[0] > 1.0
    assert al.cis_by(df, "strategy")["random"].high == 1.0


def _padded_params():
    """Two potentials padded to N = 3: the first with 3 moduli, the second with 2 (its third
    slot holds junk that every feature must ignore)."""
    from physml.vacua.potential import PotentialParams

    M = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 0.5]])  # 0.5: junk below every real M
    c = np.array([[-3.0, 0.0, 4.0], [0.0, -1.0, 50.0]])
    Lam = np.zeros((2, 3, 3))
    Lam[0, 0, 1] = Lam[0, 1, 0] = 0.3
    one = np.array([1.0, 2.0])
    return PotentialParams(M=M, Lam=Lam, s=np.array([0.1, -0.2]), c=c, A=one, a=one + 1,
                           D=one / 4, p=one + 0.5, gamma=one / 10,
                           mask=np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]))


def test_potential_features_by_hand_ignore_the_padded_slot():
    from physml.vacua.active_learning import potential_features

    f = potential_features(_padded_params())
    assert f.n_moduli.tolist() == [3, 2]
    np.testing.assert_allclose(f.c_rms, [5 / np.sqrt(3), 1 / np.sqrt(2)])  # |c| / √n
    np.testing.assert_allclose(f.c_max, [4.0, 1.0])  # the largest |c_i|: −3 counts as 3
    np.testing.assert_allclose(f.M_mean, [2.0, 3.0])
    np.testing.assert_allclose(f.M_min, [1.0, 2.0])
    np.testing.assert_allclose(f.lam_fro, [np.sqrt(2 * 0.3**2), 0.0])
    np.testing.assert_allclose(f.s, [0.1, -0.2])


def test_labeller_starts_are_zero_on_padded_moduli(monkeypatch):
    from physml.vacua import active_learning, solvers

    seen = {}

    def fake_newton(P, phi0):
        seen["phi0"] = phi0
        return {"phi": np.zeros((2, 3)), "converged": np.array([True, False])}

    monkeypatch.setattr(solvers, "newton_padded", fake_newton)
    codes = active_learning.vacuum_labeller(_padded_params(), seed=3, n_starts=4)
    assert seen["phi0"].shape == (2, 4, 3)
    assert np.all(seen["phi0"][1, :, 2] == 0) and np.all(seen["phi0"][:, :, :2] != 0)
    assert codes.tolist() == [0, 3]  # pinned at 0; not converged → failed


def test_inputs_at_their_smallest_allowed_values_are_accepted():
    from physml.vacua.active_learning import _classifier

    with pytest.raises(ValueError, match="package.module:function"):
        resolve_labeller(123)  # not a string: the spec error, not a TypeError
    with pytest.raises(ValueError, match="package.module:function"):
        resolve_labeller("physml.vacua.active_learning.vacuum_labeller")
    geoms = enumerate_toric_surfaces(5)
    assert len(make_pool(geoms, 1, np.random.default_rng(0))) == len(geoms)
    tr, te = geometry_split(np.array([4, 4, 9, 9, 9]), 0.5, np.random.default_rng(0))
    assert sorted(np.r_[tr, te].tolist()) == [0, 1, 2, 3, 4] and len(tr) and len(te)
    assert _classifier(0, n_estimators=1).n_estimators == 1
    with pytest.raises(ValueError, match="n_estimators"):
        _classifier(0, n_estimators=0)
    with pytest.raises(ValueError, match="samples_per_geometry"):
        make_pool(geoms, 0, np.random.default_rng(0))


def test_scan_table_with_classes_by_hand():
    import pandas as pd

    from physml.vacua.active_learning import scan_table_with_classes
    from physml.vacua.labels import FAILED, LABELS

    t = pd.DataFrame(dict(n_displaced=[0, 2, 1, 3, 0], n_moduli=[4, 2, 3, 3, 2],
                          converged=[True, True, True, True, False],
                          label=["stable_minimum", "stable_minimum", "saddle", LABELS[FAILED],
                                 "stable_minimum"], c_norm=[2.0, 2.0, 3.0, 0.0, 1.0]))
    out = scan_table_with_classes(t)
    assert out.vacuum_class.tolist() == ["pinned", "all_displaced", "partly_displaced",
                                         "failed", "failed"]
    np.testing.assert_allclose(out.c_rms, [1.0, np.sqrt(2), np.sqrt(3), 0.0, 1 / np.sqrt(2)])
    assert "vacuum_class" not in t.columns  # a copy


def test_run_active_learning_refuses_each_bad_size_alone():
    pool = make_pool(enumerate_toric_surfaces(5), 2, np.random.default_rng(0))
    for kw in (dict(n_initial=1), dict(batch_size=0), dict(n_rounds=-1)):
        args = dict(n_initial=4, batch_size=2, n_rounds=1) | kw
        with pytest.raises(ValueError, match=r">= "):
            run_active_learning(pool, "random", 0, args["n_initial"], args["batch_size"],
                                args["n_rounds"])


def test_ranked_batch_by_hand_and_never_the_same_row_twice():
    # α = m / (m + |labelled|) = 4/5; score = α(1 − 1/(1 + d_min)) + (1 − α)(1 − max p):
    # rows 0..3 score 0.10, 0.62, 0.72, 0.50 → row 2; then d_min of row 1 stays 3 (row 2 is
    # 5 away) → row 1 (0.62); then row 3 (0.50) before row 0 (0.10)
    X_pool = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0], [1.0, 0.0]])
    proba = np.array([[0.5, 0.5], [0.9, 0.1], [0.6, 0.4], [0.5, 0.5]])
    rng = np.random.default_rng(0)
    pick = select_batch("ranked_batch", proba, X_pool, np.zeros((1, 2)), 3, rng)
    assert pick.tolist() == [2, 1, 3]
    # uncertainty alone (α = 0): the three most uncertain rows, each once
    only_u = select_batch("ranked_batch", proba, X_pool, np.zeros((1, 2)), 3, rng, alpha=0.0)
    assert sorted(only_u.tolist()) == [0, 2, 3]


def test_paired_against_compares_every_other_group_with_the_baseline_seed_by_seed():
    import pandas as pd

    from physml.vacua.active_learning import paired_against

    df = pd.DataFrame(dict(strategy=["random"] * 4 + ["entropy"] * 4 + ["margin"] * 4,
                           seed=[0, 1, 2, 3] * 3,
                           accuracy=[0.5, 0.6, 0.7, 0.8, 0.6, 0.7, 0.8, 0.9,
                                     0.5, 0.6, 0.7, 0.8]))
    out = paired_against(df, "strategy", "random", margin=0.05).set_index("strategy")
    assert sorted(out.index) == ["entropy", "margin"]
    assert out.loc["entropy", "diff"] == pytest.approx(0.1)
    assert out.loc["entropy", "verdict"] == "better"
    assert out.loc["margin", "verdict"] == "equivalent"
    with pytest.raises(ValueError, match="'clock'"):
        paired_against(df, "strategy", "clock", margin=0.05)
    from physml.vacua.active_learning import verdicts_against

    v = verdicts_against(df, "strategy", "random", margin=0.05)
    assert sorted(v) == ["entropy", "margin"] and v["entropy"].diff.mean == pytest.approx(0.1)
    # random picks are distinct rows
    pick = select_batch("random", None, np.zeros((6, 2)), None, 6, np.random.default_rng(0))
    assert sorted(pick.tolist()) == list(range(6))


def test_leakage_check_scores_each_feature_set_on_held_out_geometries():
    import pandas as pd

    from physml.vacua.active_learning import (
        COUNT_FEATURES,
        POTENTIAL_FEATURES,
        SOLVER_OUTPUTS,
        leakage_check,
    )

    rng = np.random.default_rng(0)
    gid = np.repeat(np.arange(20), 10)
    n_moduli = np.repeat(rng.integers(2, 7, 20), 10)
    target = np.where(n_moduli > 3, "big", "small")
    t = pd.DataFrame(rng.normal(size=(200, len(POTENTIAL_FEATURES) + len(SOLVER_OUTPUTS))),
                     columns=list(POTENTIAL_FEATURES) + list(SOLVER_OUTPUTS))
    t[COUNT_FEATURES[0]] = n_moduli
    t["phi_norm"] = (n_moduli > 3) + 0.01 * rng.normal(size=200)  # the leak: the answer itself
    t["gid"], t["cls"] = gid, target
    out = leakage_check(t, "cls", seeds=[0, 1], n_estimators=20)
    acc = out.groupby("features").accuracy.mean()
    assert len(out) == 10 and set(out.seed) == {0, 1}
    assert acc["n_moduli only"] == 1.0 and acc["coefficients + solver outputs (leaky)"] == 1.0
    assert acc["coefficients + n_moduli"] > 0.9
    assert acc["coefficients"] < 0.85 and acc["majority class"] < 0.85  # noise, the base rate


def test_smallest_curve_and_test_fraction_bounds():
    pool = make_pool(enumerate_toric_surfaces(5), 2, np.random.default_rng(0))
    curve = run_active_learning(pool, "random", 0, n_initial=2, batch_size=1, n_rounds=0)
    assert curve.n_labels.tolist() == [2]
    for tf in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="test_fraction"):
            geometry_split(pool.gid, tf, np.random.default_rng(0))
