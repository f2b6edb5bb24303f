"""User calibration: time split without leakage, and a refit that moves towards the new user."""

import numpy as np

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
