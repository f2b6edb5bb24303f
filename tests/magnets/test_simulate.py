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
    # 13 + a 0.2 s transition (5 samples, unlabelled) + 13; the fingers move during it, so
    # it starts at the first hold's field and ends at the second's
    raw = s.calibrated_uT()
    first, second = (s.labels[0].start, s.labels[0].end), (s.labels[1].start, s.labels[1].end)
    assert len(raw) == 31 and first == (0, 13) and second == (18, 31)
    assert np.all(s.states[13:18] == -1)
    np.testing.assert_allclose(raw[13], raw[0], atol=1e-9)
    np.testing.assert_allclose(raw[17], raw[18], atol=1e-9)


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
    # simulate_user_sessions draws the hand with the session config's tolerance
    exact, _ = simulate_user_sessions(5, 0, config=SessionConfig(moment_tolerance=0.0))
    np.testing.assert_array_equal(exact.moment_Am2, nominal)
    drawn, _ = simulate_user_sessions(5, 0)
    assert not np.allclose(drawn.moment_Am2, nominal)


def test_gyroscope_carries_the_configured_bias():
    cfg = SessionConfig(hold_s=0.5, repeats=1, gyro_bias_dps=0.3, gyro_walk_dps_per_sqrt_s=0,
                        wobble_deg=0, session_tilt_deg=0, session_yaw_deg=0, gyro_noise_dps=0.05)
    _, (s,) = simulate_user_sessions(4, 1, config=cfg)
    # a hand that does not turn: the gyroscope reads its bias plus white noise
    np.testing.assert_allclose(s.gyro_dps.mean(0), s.metadata["true_gyro_bias_dps"], atol=0.01)
    assert 0.0 < np.abs(s.metadata["true_gyro_bias_dps"]).max() < 1.5
    # without noise it reads the bias exactly, which walks from the first to the last sample
    walk = SessionConfig(**{**cfg.__dict__, "gyro_noise_dps": 0.0,
                            "gyro_walk_dps_per_sqrt_s": 0.05})
    _, (w,) = simulate_user_sessions(4, 1, config=walk)
    start, end = w.metadata["true_gyro_bias_ends_dps"]
    np.testing.assert_allclose(w.gyro_dps[0], start, atol=1e-9)
    np.testing.assert_allclose(w.gyro_dps[-1], end, atol=1e-9)
    np.testing.assert_allclose(w.gyro_dps.mean(0), w.metadata["true_gyro_bias_dps"], atol=1e-9)
    assert np.abs(np.subtract(end, start)).max() > 0.01


def test_iron_nonlinearity_scales_the_field_by_one_plus_k_b_squared_per_100_uT():
    codes = ["eefef", "fffff", "eeeee"]
    base = simulate_session(default_hand(), codes, seed=0, config=SessionConfig(**QUIET))
    bent = simulate_session(default_hand(), codes, seed=0,
                            config=SessionConfig(**{**QUIET, "iron_nonlinearity": 0.01}))
    b = base.mag_raw_uT
    gain = 1 + 0.01 * np.sum(b**2, 1, keepdims=True) / 100.0**2
    np.testing.assert_allclose(bent.mag_raw_uT, b * gain, atol=MAG_UT_PER_LSB)
    assert np.abs(bent.mag_raw_uT - b).max() > 10 * MAG_UT_PER_LSB  # the term is not negligible


def test_hard_iron_is_a_constant_offset_stored_with_the_calibration_error():
    quiet_cfg = SessionConfig(**QUIET)
    cfg = SessionConfig(**{**QUIET, "hard_iron_uT": 20.0, "cal_error_uT": 0.5})
    offsets, cal_errors = [], []
    for seed in range(20):
        quiet = simulate_session(default_hand(), ["eeeee"], seed=seed, config=quiet_cfg)
        s = simulate_session(default_hand(), ["eeeee"], seed=seed, config=cfg)
        d = s.mag_raw_uT - quiet.mag_raw_uT
        np.testing.assert_allclose(d, np.tile(d[0], (len(d), 1)), atol=MAG_UT_PER_LSB)
        offsets.append(d[0])
        cal_errors.append(s.hard_iron_uT - d[0])  # the stored calibration misses by this
    assert 15.0 < np.std(offsets) < 26.0  # per-axis sd 20 µT
    assert 0.35 < np.std(cal_errors) < 0.7  # per-axis sd 0.5 µT (quantisation ~0.03 µT)


def test_soft_iron_is_identity_plus_the_configured_spread_and_stored_inverted():
    codes = ["eefef", "fffff", "eeeee", "ffeee"]
    quiet = simulate_session(default_hand(), codes, seed=3, config=SessionConfig(**QUIET))
    dev = []
    for seed in range(15):
        s = simulate_session(default_hand(), codes, seed=seed,
                             config=SessionConfig(**{**QUIET, "soft_iron": 0.03}))
        soft = np.linalg.inv(s.soft_iron)  # the session stores the calibration (its inverse)
        dev.append(soft - np.eye(3))
        if seed == 3:  # the same stream as `quiet`: raw = B · softᵀ
            np.testing.assert_allclose(s.mag_raw_uT, quiet.mag_raw_uT @ soft.T,
                                       atol=2 * MAG_UT_PER_LSB)
            np.testing.assert_allclose(s.calibrated_uT(), quiet.mag_raw_uT,
                                       atol=2 * MAG_UT_PER_LSB)
    assert 0.022 < np.std(dev) < 0.04  # per-entry sd 0.03
