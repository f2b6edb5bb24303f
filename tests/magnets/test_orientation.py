import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from physml.magnets.fit import fit
from physml.magnets.hand import default_hand
from physml.magnets.orientation import (
    dip_angle_deg,
    fit_earth,
    gyro_orientation,
    quat_to_matrix,
    session_bias,
    session_rotations,
)
from physml.magnets.session import Session
from physml.magnets.simulate import SessionConfig, simulate_user_sessions


def test_constant_rate_is_the_analytic_rotation():
    rate, w_dps, n = 26.0, 15.0, 400
    rot = gyro_orientation(np.tile([0.0, 0.0, w_dps], (n, 1)), rate)
    ang = np.deg2rad(w_dps) * np.arange(n) / rate  # sample 0 is the reference
    c, s = np.cos(ang), np.sin(ang)
    np.testing.assert_allclose(rot[:, 0, 0], c, atol=1e-12)
    np.testing.assert_allclose(rot[:, 1, 0], s, atol=1e-12)
    np.testing.assert_allclose(rot[:, 0, 1], -s, atol=1e-12)
    np.testing.assert_allclose(rot[:, 2, 2], 1.0, atol=1e-12)


def test_random_rates_match_scipy_sequential_composition():
    g = np.random.default_rng(0).normal(scale=40.0, size=(777, 3))
    ours = gyro_orientation(g, 50.0)
    ref = [Rotation.identity()]
    for step in Rotation.from_rotvec(np.deg2rad(g[1:]) / 50.0):
        ref.append(ref[-1] * step)
    np.testing.assert_allclose(ours, Rotation.concatenate(ref).as_matrix(), atol=1e-12)


def test_quaternion_matrix_matches_scipy():
    q = np.random.default_rng(1).normal(size=(50, 4))
    ref = Rotation.from_quat(q[:, [1, 2, 3, 0]]).as_matrix()  # scipy is scalar-last
    np.testing.assert_allclose(quat_to_matrix(q), ref, atol=1e-12)


@pytest.fixture(scope="module")
def wobbly_session():
    # realistic gyro bias, noise and iron drift; no iron nonlinearity (it scales the apparent
    # field by a few per cent, which would blur the check against the simulated 50 µT) and no
    # per-hold finger jitter (a floor of its own that no orientation model removes)
    hand, (s,) = simulate_user_sessions(3, 1, config=SessionConfig(
        hold_s=2.0, repeats=1, iron_nonlinearity=0.0, finger_jitter_deg=0.0))
    r, bits, idx = s.labelled()
    return hand, s, r, bits, idx, session_rotations(s, bias_dps=session_bias(s, idx, bits)
                                                    .bias_dps)[idx]


def test_earth_field_recovered_against_simulated_magnitude_and_dip(wobbly_session):
    _, s, r, bits, idx, rot = wobbly_session
    cfg = SessionConfig()
    ef = fit_earth(r, rot, bits)
    # 5 %: the stored hard iron drifts and the bias estimate is not exact in this simulator
    assert abs(np.linalg.norm(ef.earth_uT) - cfg.earth_uT) < 0.05 * cfg.earth_uT
    # the accelerometer, not the magnetometer, says where "down" is
    assert abs(dip_angle_deg(ef.earth_uT, rot, s.accel_g[idx]) - cfg.inclination_deg) < 2.0


def test_modelling_orientation_removes_the_wobble_floor(wobbly_session):
    _, _, r, bits, _, rot = wobbly_session
    const = fit("free", r, bits, hand=default_hand(), maxiter=200)
    gyro = fit("free", r, bits, hand=default_hand(), maxiter=200, rotations=rot)
    assert gyro.earth is not None and gyro.earth_seconds > 0
    assert gyro.final_loss < 0.1 * const.final_loss
    assert gyro.error_reduction > 0.99 > const.error_reduction
    # the fitted Earth vector (mean frame) is what synthetic data must rotate
    np.testing.assert_allclose(np.linalg.norm(gyro.earth_uT()), 50.0, rtol=0.05)


def test_no_rotation_means_no_earth_estimate(wobbly_session):
    _, _, r, bits, _, _ = wobbly_session
    still = np.broadcast_to(np.eye(3), (len(r), 3, 3))
    with pytest.raises(ValueError, match="not identifiable"):
        fit_earth(r, still, bits)


def test_session_without_gyro_or_rate_is_named():
    s = Session(mag_raw_uT=np.zeros((5, 3)), path="rec.json")
    with pytest.raises(ValueError, match=r"rec\.json: no gyroscope"):
        session_rotations(s)
    s = Session(mag_raw_uT=np.zeros((5, 3)), gyro_dps=np.zeros((5, 3)), path="rec.json")
    with pytest.raises(ValueError, match=r"rec\.json: sample rate unknown"):
        session_rotations(s)
    assert session_rotations(s, rate_hz=26.0).shape == (5, 3, 3)
    with pytest.raises(ValueError, match="sample 2"):
        gyro_orientation(np.array([[0, 0, 0], [0, 0, 0], [np.nan, 0, 0]]), 26.0)


def test_a_session_file_carries_what_the_earth_step_needs(tmp_path, wobbly_session):
    from physml.magnets.session import load_session, write_session

    _, s, r, bits, idx, rot = wobbly_session
    back = load_session(write_session(s, tmp_path / "rec.json", label_shape="start_sample"))
    r2, bits2, idx2 = back.labelled()
    # rate from the file's metadata
    rot2 = session_rotations(back, bias_dps=session_bias(back, idx2, bits2).bias_dps)[idx2]
    # gyro quantised to 1/114.28 °/s per LSB: the integrated orientation drifts by < 0.05°
    drift = np.rad2deg(np.arccos(np.clip((np.trace(rot2.transpose(0, 2, 1) @ rot, axis1=1, axis2=2)
                                          - 1) / 2, -1, 1)))
    assert drift.max() < 0.05
    res = fit("constrained", r2, bits2, hand=default_hand(), maxiter=200, rotations=rot2)
    assert res.error_reduction > 0.99


@pytest.mark.parametrize("seed", [0, 1])
def test_gyro_bias_recovered_to_five_hundredths_of_a_degree_per_second(seed):
    """A known constant bias (0.3 °/s per axis spread) injected by the simulator comes back
    within 0.05 °/s on every axis, from a default-length recording (~3.7 min) alone."""
    cfg = SessionConfig(gyro_bias_dps=0.3, gyro_walk_dps_per_sqrt_s=0.0)
    _, (s,) = simulate_user_sessions(seed, 1, config=cfg)
    r, bits, idx = s.labelled()
    true = np.asarray(s.metadata["true_gyro_bias_dps"])
    est = session_bias(s, idx, bits)
    assert np.abs(est.bias_dps - true).max() < 0.05, (est.bias_dps, true)
    assert np.abs(est.start_dps - true).max() > np.abs(est.bias_dps - true).max()


def test_uncorrected_gyro_bias_spoils_the_earth_field(wobbly_session):
    """Integrating the biased rates drifts the orientation: the Earth fit is then off."""
    _, s, r, bits, idx, rot = wobbly_session
    good = fit_earth(r, rot, bits)
    raw = fit_earth(r, session_rotations(s)[idx], bits)
    assert abs(np.linalg.norm(good.earth_uT) - 50.0) < 2.5
    assert good.residual_rms_uT < raw.residual_rms_uT


def test_linear_gyro_drift_recovered_against_the_injected_drift():
    """A bias that moves linearly by a known amount over the recording (injected into the
    simulated rates, no random walk) comes back within 0.05 °/s at both ends about the
    sensor's x and y axes (near horizontal: the accelerometer's "up" pins them); about z (near
    vertical) only the magnetometer's within-state terms see it and the recovery is looser
    (0.1 °/s) — why the drift model is not the default. The constant estimator cannot follow
    the drift."""
    from dataclasses import replace

    cfg = SessionConfig(gyro_bias_dps=0.0, gyro_walk_dps_per_sqrt_s=0.0)
    _, (s,) = simulate_user_sessions(2, 1, config=cfg)
    r, bits, idx = s.labelled()
    n = len(s.gyro_dps)
    b, d = np.array([0.2, -0.15, 0.1]), np.array([0.1, 0.08, -0.12])
    tau = np.linspace(-1.0, 1.0, n)[:, None]
    true = b + d * tau  # (n, 3) °/s
    drifting = replace(s, gyro_dps=s.gyro_dps + true)
    est = session_bias(drifting, idx, bits, drift=True)
    assert est.profile_dps.shape == (n, 3)
    err = np.abs(est.profile_dps[[0, -1]] - true[[0, -1]])
    assert err[:, :2].max() < 0.05 and err[:, 2].max() < 0.1, est.drift_dps
    assert np.abs(est.drift_dps - d)[:2].max() < 0.05
    const = session_bias(drifting, idx, bits)
    assert np.allclose(const.profile_dps, const.bias_dps) and const.drift_dps is None
    assert np.abs(const.profile_dps[[0, -1]] - true[[0, -1]])[:, :2].max() > 0.05
