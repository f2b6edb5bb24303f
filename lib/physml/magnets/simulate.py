"""Session simulator: finite magnets (magpylib) on a kinematic hand, Earth's field rotated by the
hand's orientation, hard/soft iron, noise and quantisation of an MMC5603-class magnetometer.

The ground truth is deliberately richer than the dipole model that is later fitted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from .field import cylinder_field
from .hand import ALL_BITS, STATE_CODES, code_to_bits, hand_magnets, sample_hand
from .session import MAG_UT_PER_LSB, Label, Session

FINGER_POSE_REPEATABILITY_DEG = (2.0, 4.0)
"""Published spread of a finger posture repeated by the same person (deg): the test-retest
standard error of measurement of active finger-joint end-range angles by 3-D motion capture,
20 healthy adults on two days, lay between 2 and 4 deg for all joints except MCP1, IP and MCP5
(Reissner et al. 2019, J. Orthop. Surg. Res. 14:173, doi:10.1186/s13018-019-1177-y). It
includes the capture system's own error and a day between the repeats, so a posture re-held
within one session may repeat better. ``SessionConfig.finger_jitter_deg`` defaults to its
middle."""
FINGER_POSE_SOURCE = "Reissner et al. 2019, J. Orthop. Surg. Res. 14:173"


@dataclass(frozen=True)
class SessionConfig:
    """Recording conditions (units in names).

    rate_hz: sample rate. hold_s: seconds each state is held. repeats: times each state recurs.
    transition_s: unlabelled seconds between holds. earth_uT: Earth's field magnitude.
    inclination_deg: Earth's field dip angle. session_yaw_deg / session_tilt_deg: spread of the
    session's mean hand orientation. wobble_deg: spread of the orientation within a session
    (Ornstein–Uhlenbeck, time constant wobble_tau_s). tremor_deg: joint-angle jitter per sample
    (uncited: physiological postural hand tremor alone, 0.0015–0.035 g peak at ~7 Hz in 97
    normal adults, Arch. Neurol. 1982;39:358, doi:10.1001/archneur.1982.00510180036009, is
    0.008–0.18 mm, i.e. ~0.005–0.13° at an 80 mm finger lever by our own conversion; the 2°
    default stands for within-hold finger movement, which no source here measures).
    hard_iron_uT: spread of the hard-iron offset. soft_iron: spread of the soft-iron matrix
    around identity. noise_uT: white sensor noise per axis. cal_error_uT: error of the stored
    hard-iron calibration.

    Model mismatch the fits do not know (defaults: realistic consumer parts; sources below):
    gyro_bias_dps: per-axis spread of the gyroscope's constant rate offset left after the
    turn-on calibration (the LSM6DS3 class, 114.28 LSB/(°/s) as the firmware writes, specifies
    ±10 °/s zero-rate level uncalibrated; 0.3 °/s after a start-up calibration is the audit's
    figure); gyro_walk_dps_per_sqrt_s: random walk of that bias (bias instability);
    gyro_noise_dps: white rate noise per sample (LSM6DS3 rate noise density 7 mdps/√Hz over a
    13 Hz band is ~0.025 °/s; doubled); accel_noise_g: accelerometer noise plus the moving
    hand's own acceleration, g (sensor noise 90 µg/√Hz is ~0.3 mg: the hand dominates);
    noise_uT: magnetometer white noise (MEMSIC MMC5603NJ datasheet: 2 mG = 0.2 µT RMS);
    iron_drift_uT_per_sqrt_s: random walk of the hard-iron offset during the session
    (temperature), not a constant; iron_nonlinearity: fractional gain change at 100 µT,
    B·(1 + k|B|²/(100 µT)²) — soft iron that is not a linear matrix (uncited, like the iron
    drift: no source here measures either; at the default 1 % the gain changes by 4 % at 200 µT,
    a field the strongest simulated hands reach); finger_jitter_deg: joint-
    angle offset drawn anew every time a state is held (the pose is never the same twice; 3°,
    the middle of the 2–4° test–retest spread of :data:`FINGER_POSE_REPEATABILITY_DEG`).
    Magnet moment tolerance and hand-size variation belong to the user's hand
    (`hand.sample_hand`); moment_tolerance (±10%: vendors sell NdFeB discs at ±10%) is the
    fractional spread of each magnet's moment used by `simulate_user_sessions` when it draws
    the hand (0: every magnet exactly nominal; `simulate_session` itself does not use it).
    """

    rate_hz: float = 26.0
    hold_s: float = 3.0
    repeats: int = 2
    transition_s: float = 0.5
    earth_uT: float = 50.0
    inclination_deg: float = 60.0
    session_yaw_deg: float = 20.0
    session_tilt_deg: float = 10.0
    wobble_deg: float = 4.0
    wobble_tau_s: float = 2.0
    tremor_deg: float = 2.0
    hard_iron_uT: float = 20.0
    soft_iron: float = 0.03
    noise_uT: float = 0.2
    cal_error_uT: float = 1.0
    gyro_bias_dps: float = 0.3
    gyro_walk_dps_per_sqrt_s: float = 0.005
    gyro_noise_dps: float = 0.05
    accel_noise_g: float = 0.01
    iron_drift_uT_per_sqrt_s: float = 0.05
    iron_nonlinearity: float = 0.01
    finger_jitter_deg: float = 3.0
    moment_tolerance: float = 0.10

    def __post_init__(self):
        for name in ("rate_hz", "hold_s", "earth_uT", "wobble_tau_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"SessionConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.repeats < 1:
            raise ValueError(f"SessionConfig.repeats must be >= 1, got {self.repeats}")
        for name in ("transition_s", "session_yaw_deg", "session_tilt_deg", "wobble_deg",
                     "tremor_deg", "hard_iron_uT", "soft_iron", "noise_uT", "cal_error_uT",
                     "gyro_bias_dps", "gyro_walk_dps_per_sqrt_s", "gyro_noise_dps",
                     "accel_noise_g", "iron_drift_uT_per_sqrt_s", "iron_nonlinearity",
                     "finger_jitter_deg", "moment_tolerance"):
            if getattr(self, name) < 0:
                raise ValueError(f"SessionConfig.{name} must be >= 0, got {getattr(self, name)}")


def magnet_field_uT(hand, bits, angle_jitter_rad=None):
    """Exact finite-cylinder field of the hand's five magnets at its sensor.

    Args:
        hand: Hand.
        bits: (n, 5) finger states, 1 = flexed.
        angle_jitter_rad: optional (n, 5, 2) joint-angle perturbations.

    Returns:
        (n, 3) field at the sensor, µT.
    """
    pos, ax = hand_magnets(hand, bits, angle_jitter_rad)
    obs = np.broadcast_to(hand.sensor_m, (len(pos), 3))
    return 1e6 * cylinder_field(obs, pos, ax, hand.diameter_m, hand.height_m,
                                hand.polarization_T)


def _ou(rng, n, dim, sd, tau_samples):
    """Ornstein–Uhlenbeck sequence (n, dim) with stationary sd and correlation time (samples)."""
    a = np.exp(-1.0 / tau_samples)
    eps = rng.standard_normal((n, dim)) * sd * np.sqrt(1 - a * a)
    eps[0] = rng.standard_normal(dim) * sd  # stationary start
    return ar1_filter(eps, a)


def ar1_filter(eps, a):
    """x[t] = a·x[t−1] + eps[t] along axis 0 (x[0] = eps[0]), for eps (n, ...) and |a| <= 1.

    A Hillis–Steele scan: after the pass with offset d every x[t] holds the sum of a^(t−k)·eps[k]
    over the last 2d samples; log2(n) vectorised passes, no loop over samples, and no
    scipy.signal (which costs a second to import in every process that simulates).
    """
    x = np.array(eps, float, copy=True)
    d, ad = 1, float(a)
    while d < len(x):
        x[d:] += ad * x[:-d]  # the right-hand side is evaluated before the in-place add
        d, ad = 2 * d, ad * ad
    return x


def simulate_session(hand, codes=None, seed=0, config=None, user=None):
    """Simulate one labelled recording of `hand` holding each state in `codes`.

    Args:
        hand: Hand (the user).
        codes: state codes to record (default all 32), each held config.hold_s, config.repeats
            times, in random order with unlabelled transitions.
        seed: int seed of this session (orientation, iron, noise, order).
        config: SessionConfig.
        user: optional user id stored in the metadata.

    Returns:
        Session with raw values quantised like the firmware writes them (mag 100/1024 µT/LSB).
    """
    cfg = config or SessionConfig()
    codes = list(STATE_CODES if codes is None else codes)
    bits_list = code_to_bits(codes)
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(codes)) for _ in range(cfg.repeats)])
    n_hold = max(1, int(round(cfg.hold_s * cfg.rate_hz)))
    n_tr = int(round(cfg.transition_s * cfg.rate_hz))
    seg_states, seg_pose, labels, t = [], [], [], 0
    prev = np.zeros(5, dtype=np.int64)
    pose = np.deg2rad(cfg.finger_jitter_deg) * rng.standard_normal((len(order), 5, 2))
    for j, o in enumerate(order):
        if n_tr and j > 0:  # transition: fingers move, state unlabelled
            mix = rng.random((n_tr, 5)) < np.linspace(0, 1, n_tr)[:, None]
            seg_states.append(np.where(mix, bits_list[o], prev))
            seg_pose.append(np.repeat(pose[j][None], n_tr, 0))
            t += n_tr
        seg_states.append(np.tile(bits_list[o], (n_hold, 1)))
        seg_pose.append(np.repeat(pose[j][None], n_hold, 0))
        labels.append(Label(t, t + n_hold, bits_list[o].astype(np.int8)))
        t += n_hold
        prev = bits_list[o]
    true_bits = np.concatenate(seg_states)
    n = len(true_bits)
    jitter = np.deg2rad(cfg.tremor_deg) * rng.standard_normal((n, 5, 2)) + np.concatenate(seg_pose)
    b_mag = magnet_field_uT(hand, true_bits, jitter)

    # orientation: session mean (yaw, tilt) plus OU wobble; Earth's field in world frame
    inc = np.deg2rad(cfg.inclination_deg)
    earth_w = cfg.earth_uT * np.array([np.cos(inc), 0.0, -np.sin(inc)])
    mean_rv = np.deg2rad([cfg.session_tilt_deg, cfg.session_tilt_deg,
                          cfg.session_yaw_deg]) * rng.standard_normal(3)
    wobble = _ou(rng, n, 3, np.deg2rad(cfg.wobble_deg), cfg.wobble_tau_s * cfg.rate_hz)
    rot = Rotation.from_rotvec(mean_rv) * Rotation.from_rotvec(wobble)  # sensor → world
    b_earth = rot.inv().apply(earth_w)
    accel_g = rot.inv().apply([0.0, 0.0, 1.0]) + cfg.accel_noise_g * rng.standard_normal((n, 3))
    dr = (rot[:-1].inv() * rot[1:]).as_rotvec()
    gyro = np.vstack([dr[:1], dr]) * np.rad2deg(1.0) * cfg.rate_hz
    bias = cfg.gyro_bias_dps * rng.standard_normal(3) + np.cumsum(
        cfg.gyro_walk_dps_per_sqrt_s / np.sqrt(cfg.rate_hz) * rng.standard_normal((n, 3)), 0)
    gyro_dps = gyro + bias + cfg.gyro_noise_dps * rng.standard_normal((n, 3))

    hard = cfg.hard_iron_uT * rng.standard_normal(3)
    drift = np.cumsum(cfg.iron_drift_uT_per_sqrt_s / np.sqrt(cfg.rate_hz)
                      * rng.standard_normal((n, 3)), 0)
    soft = np.eye(3) + cfg.soft_iron * rng.standard_normal((3, 3))
    b_true = b_mag + b_earth
    b_true = b_true * (1 + cfg.iron_nonlinearity * np.sum(b_true**2, 1, keepdims=True) / 1e4)
    raw = b_true @ soft.T + hard + drift + cfg.noise_uT * rng.standard_normal((n, 3))
    raw = np.rint(raw / MAG_UT_PER_LSB) * MAG_UT_PER_LSB
    cal_hard = hard + cfg.cal_error_uT * rng.standard_normal(3)
    cal_soft = np.linalg.inv(soft)
    states = np.full((n, 5), -1, dtype=np.int8)
    for lab in labels:
        states[lab.start:lab.end] = lab.fingers
    meta = {"simulator": "physml.magnets.simulate", "seed": np.asarray(seed).tolist(), "user": user,
            "rate_hz": cfg.rate_hz, "states": codes,
            "true_gyro_bias_dps": bias.mean(0).tolist(),
            "true_gyro_bias_ends_dps": [bias[0].tolist(), bias[-1].tolist()]}
    return Session(mag_raw_uT=raw, accel_g=accel_g, gyro_dps=gyro_dps, states=states,
                   labels=labels, hard_iron_uT=cal_hard, soft_iron=cal_soft, version="2.1",
                   timestamp="2026-01-01T00:00:00Z",
                   device={"name": "physml-sim", "magnetometer": "MMC5603-class"},
                   metadata=meta)


def simulate_user_sessions(user_seed, n_sessions=1, codes=None, config=None, hand_scale=1.0):
    """A user's hand (drawn from `user_seed`, magnet moments within ±config.moment_tolerance)
    and `n_sessions` recordings of it.

    Returns:
        (Hand, list[Session]); session s uses seed (user_seed, s).
    """
    rng = np.random.default_rng([user_seed, 7919])
    hand = sample_hand(rng, scale=hand_scale,
                       moment_tolerance=(config or SessionConfig()).moment_tolerance)
    sessions = [simulate_session(hand, codes, seed=[user_seed, s], config=config, user=user_seed)
                for s in range(n_sessions)]
    return hand, sessions


def true_state_fields_uT(hand):
    """Noise-free finite-magnet field (32, 3) µT of every state (index order of STATE_CODES)."""
    return magnet_field_uT(hand, ALL_BITS)
