"""User calibration: time split without leakage, and a refit that moves towards the new user."""

import numpy as np
import pytest

from physml.magnets.calibration import CalibrationConfig, new_user_split, population


def test_calibration_pool_and_test_set_are_disjoint_in_time_and_cover_all_states():
    cfg = CalibrationConfig(session={"hold_s": 0.4, "repeats": 2})
    px, pb, tx, tb, unl = new_user_split(0, cfg)
    from physml.magnets.hand import bits_to_index

    assert len(np.unique(bits_to_index(pb))) == 32 and len(np.unique(bits_to_index(tb))) == 32
    assert len(unl) >= len(px)
    # the pool is exactly the labelled readings before the cut, the test set those after it
    from physml.magnets.simulate import SessionConfig, simulate_user_sessions

    _, (s,) = simulate_user_sessions(20_000, 1, config=SessionConfig(**cfg.session))
    r, _, idx = s.labelled()
    cut = s.labels[32].start
    np.testing.assert_array_equal(px, r[idx < cut])
    np.testing.assert_array_equal(tx, r[idx >= cut])


def test_population_fit_is_cached_and_physical():
    cfg = CalibrationConfig(population_users=(100, 101), maxiter=100,
                            session={"hold_s": 0.4, "repeats": 1})
    a, b = population(cfg), population(cfg)
    assert a is b
    assert all(r["plausible"] for r in a["fit"].magnet_report())
    assert a["noise"]["noise_uT"] > 0


def test_user_physics_moves_the_population_templates_by_the_offset():
    from physml.magnets.calibration import user_physics
    from physml.magnets.fit import FitResult, MagnetSpec, initial_params
    from physml.magnets.hand import default_hand

    hand = default_hand()
    p = initial_params("constrained", hand, MagnetSpec())
    fixed = {"direction": hand.direction, "flex_axis": hand.flex_axis, "surface": hand.surface_m}
    pop = {"fit": FitResult("constrained", p, fixed, {}, 0, 0, 0, 0)}
    d = np.array([3.0, -2.0, 8.0])
    moved = user_physics(pop, np.zeros((0, 3)), np.zeros((0, 5), int), d, CalibrationConfig())
    np.testing.assert_allclose(moved.templates() - pop["fit"].templates(), np.tile(d, (32, 1)),
                               atol=1e-9)


TINY = dict(population_users=(100, 101, 102), k_values=(0, 200), synthetic_per_state=5,
            n_estimators=5, maxiter=30, al_rounds=2, al_batch=3,
            al_strategies=("coverage", "random"), population_per_state=3, unbalanced_k=6,
            session={"hold_s": 0.4, "repeats": 2})


def test_run_calibration_end_to_end_on_a_tiny_config(monkeypatch):
    from physml.magnets import calibration as C
    from physml.magnets.hand import bits_to_index
    from physml.magnets.simulate import SessionConfig, simulate_user_sessions

    drawn = []
    evaluate = C.evaluate_k
    monkeypatch.setattr(C, "evaluate_k", lambda *a: drawn.append(a[6]) or evaluate(*a))
    cfg = CalibrationConfig(**TINY)
    r = C.run_calibration([0], cfg)
    # 200 of the 320 pool readings, drawn without repeats
    assert [len(s) for s in drawn] == [0, 200] and len(set(drawn[1].tolist())) == 200
    (cal,), (al,) = r["calibration"], r["active_learning"]
    assert cal["seed"] == 0 and set(cal["accuracy"]) == set(C.METHODS)
    assert all(set(v) == {0, 200} for v in cal["accuracy"].values())  # the given k, not defaults
    assert al["labels"] == [0, 3, 6]
    for s in ("coverage", "random"):
        assert len(al[s]) == 3 and all(0.0 <= a <= 1.0 for a in al[s])
        assert 2 <= al["spread"][s]["distinct_states"] <= 6  # six labels were asked
    labels, groups = C.active_learning_groups(r)
    assert labels == [0, 3, 6] and sorted(groups) == ["coverage", "random"]
    np.testing.assert_array_equal(C.al_final(r, "random"), [al["random"][-1]])
    np.testing.assert_array_equal(C.at_k(r, "rf", 200), [cal["accuracy"]["rf"][200]])
    with pytest.raises(ValueError, match="k=7 was not run"):
        C.at_k(r, "rf", 7)
    with pytest.raises(ValueError, match="'least_confident' was not run"):
        C.al_final(r, "least_confident")
    # the population's Random Forest keeps population_per_state readings per state and user,
    # each taken from its own user's session
    pop = C.population(cfg)
    n = 32 * cfg.population_per_state
    assert len(pop["readings"]) == len(pop["bits"]) == 3 * n
    for i, u in enumerate(cfg.population_users):
        _, (s,) = simulate_user_sessions(u, 1, config=SessionConfig(**cfg.session))
        ru, bu, _ = s.labelled()
        rows = {tuple(x) for x in np.round(ru, 9)}
        mine = np.round(pop["readings"][i * n:(i + 1) * n], 9)
        assert all(tuple(x) in rows for x in mine), u
        assert np.all(np.bincount(bits_to_index(pop["bits"][i * n:(i + 1) * n]),
                                  minlength=32) == cfg.population_per_state)


def test_calibration_sizes_and_settings_are_checked():
    from physml.magnets.calibration import check_k_values

    check_k_values((0, 40), 40)
    for bad in ((41,), (-1,), (0, 50)):
        with pytest.raises(ValueError, match=rf"k={bad[-1]} outside \[0, 40\]"):
            check_k_values(bad, 40)
    for ok in (1, 32):
        CalibrationConfig(unbalanced_states=ok)
    for bad in (0, 33):
        with pytest.raises(ValueError, match="unbalanced_states must be in"):
            CalibrationConfig(unbalanced_states=bad)
    with pytest.raises(ValueError, match="repeats >= 2, got 1"):
        new_user_split(0, CalibrationConfig(session={"hold_s": 0.4, "repeats": 1}))


def test_unbalanced_sample_draws_k_distinct_readings_of_n_states():
    from physml.magnets.calibration import unbalanced_sample
    from physml.magnets.hand import ALL_BITS, bits_to_index

    pool = np.repeat(ALL_BITS, 4, axis=0)  # 128 readings, 4 of each state
    for seed in range(5):
        sel = unbalanced_sample(pool, 3, 10, np.random.default_rng(seed))
        assert len(sel) == len(set(sel.tolist())) == 10
        assert len(np.unique(bits_to_index(pool[sel]))) == 3
    assert len(unbalanced_sample(pool, 2, 50, np.random.default_rng(0))) == 8  # all there are
    whole = unbalanced_sample(pool, 16, 128, np.random.default_rng(0))  # 16 distinct states
    assert len(whole) == 64 and len(np.unique(bits_to_index(pool[whole]))) == 16


def test_recentring_check_moves_the_templates_onto_the_user():
    from physml.magnets.calibration import recentring_check
    from physml.magnets.hand import ALL_BITS

    templ = 40.0 * np.random.default_rng(0).standard_normal((32, 3))
    shift = np.array([15.0, -9.0, 6.0])

    class Fit:
        def templates(self):
            return templ

    idx = np.tile(np.arange(32), 2)
    px, pb = templ[idx] + shift, ALL_BITS[idx]
    cfg = CalibrationConfig(unbalanced_states=2, unbalanced_k=8)
    out = recentring_check({"fit": Fit()}, px, pb, px, pb, px, cfg, np.random.default_rng(1))
    assert out["robust"] == {"balanced": 1.0, "unbalanced": 1.0}
    assert out["mean"]["unbalanced"] < 0.5  # the mean of two states' readings is not the offset
