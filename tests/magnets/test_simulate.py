"""Session simulator: physics against magpylib objects, format round trip, determinism."""

import magpylib as magpy
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from physml.magnets.hand import code_to_bits, default_hand, hand_magnets
from physml.magnets.session import MAG_UT_PER_LSB, load_session, write_session
from physml.magnets.simulate import SessionConfig, simulate_session, simulate_user_sessions

QUIET = dict(session_yaw_deg=0, session_tilt_deg=0, wobble_deg=0, tremor_deg=0,
             hard_iron_uT=0, soft_iron=0, noise_uT=0, cal_error_uT=0, hold_s=0.5,
             repeats=1, transition_s=0.2, iron_drift_uT_per_sqrt_s=0, iron_nonlinearity=0,
             finger_jitter_deg=0)


def test_quiet_session_reads_magpylib_cylinders_plus_earth_field():
    hand = default_hand()
    cfg = SessionConfig(**QUIET)
    s = simulate_session(hand, ["eefef", "ffffe"], seed=0, config=cfg)
    r, bits, _ = s.labelled()
    earth = 50.0 * np.array([np.cos(np.deg2rad(60)), 0, -np.sin(np.deg2rad(60))])
    for code in ("eefef", "ffffe"):
        pos, ax = hand_magnets(hand, code_to_bits(code))
        mags = []
        for p, a in zip(pos[0], ax[0], strict=True):
            rot, _ = Rotation.align_vectors([a], [[0, 0, 1.0]])
            mags.append(magpy.magnet.Cylinder(position=p, orientation=rot,
                                              dimension=(0.006, 0.003),
                                              polarization=(0, 0, 1.4)))
        expect = 1e6 * magpy.getB(mags, hand.sensor_m, sumup=True) + earth
        rows = r[(bits == code_to_bits(code)).all(1)]
        assert len(rows) == 13  # 0.5 s at 26 Hz
        np.testing.assert_allclose(rows, np.tile(expect, (len(rows), 1)),
                                   atol=MAG_UT_PER_LSB / 2 + 1e-9)


@pytest.mark.parametrize("label_shape", ["startIndex", "start_sample"])
def test_simulated_session_survives_write_and_load(tmp_path, label_shape):
    _, (s,) = simulate_user_sessions(3, 1, codes=["eeeee", "fffff", "efefe"],
                                     config=SessionConfig(hold_s=0.5))
    path = write_session(s, tmp_path / "sim.json", label_shape)
    back = load_session(path)
    np.testing.assert_allclose(back.mag_raw_uT, s.mag_raw_uT, atol=1e-9)
    np.testing.assert_allclose(back.calibrated_uT(), s.calibrated_uT(), atol=1e-9)
    np.testing.assert_array_equal(back.states, s.states)
    assert back.version.startswith("2") and back.metadata["user"] == 3
    assert len(back.labels) == 6


def test_same_seed_same_session_and_users_differ():
    cfg = SessionConfig(hold_s=0.3, repeats=1)
    h1, (a,) = simulate_user_sessions(1, 1, ["eeeee", "fffff"], cfg)
    _, (b,) = simulate_user_sessions(1, 1, ["eeeee", "fffff"], cfg)
    h2, _ = simulate_user_sessions(2, 1, ["eeeee"], cfg)
    np.testing.assert_array_equal(a.mag_raw_uT, b.mag_raw_uT)
    assert not np.allclose(h1.lengths_m, h2.lengths_m)


def test_bad_config_raises():
    with pytest.raises(ValueError, match="rate_hz"):
        SessionConfig(rate_hz=0)
    with pytest.raises(ValueError, match="noise_uT"):
        SessionConfig(noise_uT=-1)


def test_orientation_wobble_has_the_ou_variance_and_correlation_time():
    from physml.magnets.simulate import _ou

    x = _ou(np.random.default_rng(0), 200_000, 2, 2.0, 50.0)
    np.testing.assert_allclose(x.std(0), 2.0, rtol=0.03)
    assert np.corrcoef(x[:-50, 0], x[50:, 0])[0, 1] == pytest.approx(np.exp(-1), abs=0.03)


@pytest.mark.parametrize("n", [1, 2, 7, 64, 1000])
def test_ar1_scan_equals_scipy_lfilter(n):
    """The scan against scipy's direct-form filter (the independent reference)."""
    from scipy.signal import lfilter

    from physml.magnets.simulate import ar1_filter

    eps = np.random.default_rng(n).standard_normal((n, 3))
    for a in (0.0, 0.5, 0.98, 1.0):
        np.testing.assert_allclose(ar1_filter(eps, a), lfilter([1.0], [1.0, -a], eps, axis=0),
                                   rtol=1e-12, atol=1e-12)


def test_hands_differ_in_magnet_strength_within_the_tolerance():
    from physml.magnets.hand import sample_hand

    nominal = default_hand().moment_Am2
    m = np.array([sample_hand(np.random.default_rng(i)).moment_Am2 / nominal for i in range(50)])
    assert m.min() >= 0.9 - 1e-12 and m.max() <= 1.1 + 1e-12
    assert m.std() > 0.04  # uniform on ±10 % has sd 0.058
    flat = sample_hand(np.random.default_rng(0), scale=0.0, moment_tolerance=0.0)
    np.testing.assert_array_equal(flat.moment_Am2, nominal)


def test_gyroscope_carries_the_configured_bias():
    cfg = SessionConfig(hold_s=0.5, repeats=1, gyro_bias_dps=0.3, gyro_walk_dps_per_sqrt_s=0,
                        wobble_deg=0, session_tilt_deg=0, session_yaw_deg=0, gyro_noise_dps=0.05)
    _, (s,) = simulate_user_sessions(4, 1, config=cfg)
    # a hand that does not turn: the gyroscope reads its bias plus white noise
    np.testing.assert_allclose(s.gyro_dps.mean(0), s.metadata["true_gyro_bias_dps"], atol=0.01)
    assert 0.0 < np.abs(s.metadata["true_gyro_bias_dps"]).max() < 1.5
