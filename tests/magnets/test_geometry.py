"""Held-out geometry: the changed wear, the ML choice on validation data, one end-to-end seed."""

import numpy as np
import pytest

from physml.magnets.geometry import (
    METHODS,
    GeometryConfig,
    GeometryShift,
    choose_ml,
    run_geometry_seed,
    shift_geometry,
)
from physml.magnets.hand import default_hand


def test_zero_shift_keeps_the_geometry():
    h = default_hand()
    g = shift_geometry(h, GeometryShift(0.0, 0.0, 0.0, 0.0), np.random.default_rng(0))
    for k in ("base_m", "lengths_m", "mount_m", "tilt_rad", "sensor_m"):
        np.testing.assert_allclose(getattr(g, k), getattr(h, k), atol=1e-15)


def test_size_scales_the_hand_and_the_moves_have_their_spread():
    h = default_hand()
    g = shift_geometry(h, GeometryShift(0.1, 0.0, 0.0, 0.0), np.random.default_rng(1))
    ratio = g.lengths_m / h.lengths_m
    assert np.allclose(ratio, ratio.flat[0]) and abs(abs(ratio.flat[0] - 1) - 0.1) < 1e-12
    np.testing.assert_allclose(g.base_m, h.base_m * ratio.flat[0])
    rng = np.random.default_rng(2)
    moves = np.array([shift_geometry(h, GeometryShift(0.0, 0.0, 0.0, 4.0), rng).sensor_m
                      for _ in range(400)])
    assert abs(1e3 * moves.std() - 4.0) < 0.4  # mm, per axis


@pytest.mark.parametrize("field,value", [("size_frac", -0.1), ("mount_mm", np.nan),
                                         ("size_frac", 0.6)])
def test_bad_shift_rejected_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        GeometryShift(**{field: value})


def test_bad_config_rejected():
    with pytest.raises(ValueError, match="calib_states"):
        GeometryConfig(calib_states=1)
    with pytest.raises(ValueError, match="prior_weight"):
        GeometryConfig(prior_weight=0.0)


def test_ml_side_is_chosen_on_validation_not_test():
    def run(val_base, val_aug, test_base, test_aug):
        r = {role: dict.fromkeys(METHODS, 0.5) for role in ("validation", "test")}
        r["validation"].update(rf_baseline=val_base, rf_augmented=val_aug)
        r["test"].update(rf_baseline=test_base, rf_augmented=test_aug)
        return r

    runs = [run(0.8, 0.6, 0.4, 0.9), run(0.7, 0.65, 0.5, 0.95)]
    name, means = choose_ml(runs)
    assert name == "rf_baseline"  # the test geometry would have picked rf_augmented
    assert means["rf_baseline"] == pytest.approx(0.75)


def test_one_seed_end_to_end_small():
    cfg = GeometryConfig(calib_states=6, synthetic_per_state=20, n_estimators=10, maxiter=40,
                         max_nfev=20, session={"hold_s": 1.0, "repeats": 1})
    from dataclasses import asdict

    out = run_geometry_seed((0, asdict(cfg)))
    for role in ("validation", "test"):
        assert set(out[role]) == set(METHODS)
        assert all(0.0 <= v <= 1.0 for v in out[role].values())
        assert len(out["calib_states"][role]) == 6
    assert out["refit_residual_uT"]["test"] >= 0
