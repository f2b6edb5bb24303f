"""Hand orientation from the gyroscope, and Earth's field taken out of the readings with it.

The magnetometer turns with the hand, so Earth's field (~50 µT) moves through the sensor frame
as the hand wobbles; averaged into a state's mean reading, that wobble is a bias no finger model
can fit. The IMU that every session carries measures the rotation, so the Earth part can be
modelled instead of ignored:

    reading_i = R_iᵀ e + h + B(state_i) + noise,

with R_i the sensor → reference rotation of sample i (reference = the first sample's sensor
frame), e Earth's field in the reference frame (µT), h the constant hard-iron residual (µT) and
B the magnets' field. Within one held state B and h are constant, so the deviations of a state's
readings from their mean are (R_iᵀ − mean_s Rᵀ) e + noise: e follows from a 3-unknown linear
least-squares fit that needs no magnet model at all. The readings are then moved to the
session's mean orientation, which is what every fit and template in this study describes.

Quaternions are scalar-first (w, x, y, z), Hamilton product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .hand import bits_to_index


def quat_multiply(p, q):
    """Hamilton product p ⊗ q of quaternions (..., 4) (w, x, y, z); broadcasts."""
    pw, px, py, pz = np.moveaxis(np.asarray(p, float), -1, 0)
    qw, qx, qy, qz = np.moveaxis(np.asarray(q, float), -1, 0)
    return np.stack([pw * qw - px * qx - py * qy - pz * qz,
                     pw * qx + px * qw + py * qz - pz * qy,
                     pw * qy - px * qz + py * qw + pz * qx,
                     pw * qz + px * qy - py * qx + pz * qw], axis=-1)


def rotvec_to_quat(v):
    """Rotation vectors (..., 3) (axis × angle, rad) → unit quaternions (..., 4)."""
    v = np.asarray(v, float)
    half = 0.5 * np.linalg.norm(v, axis=-1, keepdims=True)
    # sin(half)/(2·half) without dividing by zero: np.sinc(x) = sin(πx)/(πx)
    return np.concatenate([np.cos(half), 0.5 * np.sinc(half / np.pi) * v], axis=-1)


def quat_to_matrix(q):
    """Unit quaternions (..., 4) → rotation matrices (..., 3, 3) (active rotation)."""
    q = np.asarray(q, float)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], axis=-2)


def cumulative_product(q):
    """Running products q_0 ⊗ q_1 ⊗ … ⊗ q_k for every k, quaternions (n, 4) → (n, 4).

    A Hillis–Steele scan: log2(n) vectorised passes instead of a loop over samples (the product
    is associative, not commutative: earlier factors stay on the left).
    """
    out = np.array(q, float, copy=True)
    d = 1
    while d < len(out):  # log2(n) passes, each over the whole array
        out[d:] = quat_multiply(out[:-d], out[d:])
        d *= 2
    return out


def gyro_orientation(gyro_dps, rate_hz=None, time_s=None):
    """Sensor orientation of every sample relative to the first, by integrating the gyroscope.

    Sample k's rate (body frame) is taken as constant over the interval from sample k−1 to k,
    so R_0 = I and R_k = R_{k−1} · exp([ω_k]× · Δt_k), with Δt_k = t_k − t_{k−1} from the
    sample timestamps when given (firmware sampling is not perfectly regular), else 1/rate_hz.

    Args:
        gyro_dps: (n, 3) angular rate in the sensor frame, °/s.
        rate_hz: sample rate, Hz (> 0); used when time_s is None.
        time_s: optional (n,) strictly increasing sample times, s.

    Returns:
        (n, 3, 3) rotation matrices mapping the sensor frame of sample k to that of sample 0.
    """
    g = np.asarray(gyro_dps, float)
    if g.ndim != 2 or g.shape[1] != 3 or len(g) == 0:
        raise ValueError(f"gyro_dps must be (n, 3) with n >= 1, got shape {g.shape}")
    if not np.all(np.isfinite(g)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(g), axis=1))[0])
        raise ValueError(f"gyro_dps: non-finite rate at sample {bad}")
    if time_s is not None:
        t = np.asarray(time_s, float)
        if t.shape != (len(g),):
            raise ValueError(f"time_s must be ({len(g)},), got shape {t.shape}")
        dt = np.diff(t, prepend=t[0])
        if not np.all(np.isfinite(t)):
            bad = int(np.flatnonzero(~np.isfinite(t))[0])
            raise ValueError(f"time_s must be finite and strictly increasing; sample {bad} "
                             f"is {t[bad]}")
        if np.any(dt[1:] <= 0):
            bad = int(np.flatnonzero(dt[1:] <= 0)[0]) + 1
            raise ValueError(f"time_s must be finite and strictly increasing; sample {bad}: "
                             f"{t[bad]} s after {t[bad - 1]} s")
        steps = rotvec_to_quat(np.deg2rad(g) * dt[:, None])
    else:
        if rate_hz is None or not rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0 (or give time_s), got {rate_hz}")
        steps = rotvec_to_quat(np.deg2rad(g) / rate_hz)
    steps[0] = (1.0, 0.0, 0.0, 0.0)
    return quat_to_matrix(cumulative_product(steps))


def session_rotations(session, rate_hz=None, bias_dps=None):
    """`gyro_orientation` of a Session (minus bias_dps (3,) or per sample (n, 3) °/s when given,
    e.g. `session_bias(...).profile_dps`), integrated over the file's sample timestamps
    (`Session.time_s`) when it has them, else at `rate_hz` or the session's metadata rate.

    Raises:
        ValueError naming the session file when it has no gyroscope fields or no known timing.
    """
    where = session.path or "session"
    if session.gyro_dps is None:
        raise ValueError(f"{where}: no gyroscope fields (gx, gy, gz); orientation is unknown")
    g = session.gyro_dps if bias_dps is None else session.gyro_dps - np.asarray(bias_dps, float)
    time_s = getattr(session, "time_s", None)
    if time_s is not None:
        return gyro_orientation(g, time_s=time_s)
    rate = rate_hz if rate_hz is not None else (session.metadata or {}).get("rate_hz")
    if rate is None:
        raise ValueError(f"{where}: sample rate unknown (no timestamps, no metadata.rate_hz); "
                         f"pass rate_hz")
    return gyro_orientation(g, float(rate))


@dataclass(frozen=True)
class EarthFit:
    """Earth's field found from the within-state orientation changes.

    earth_uT: (3,) Earth's field in the reference frame, µT. mean_rt: (3, 3) mean of R_iᵀ over
    the fitted samples (the session's mean orientation). residual_rms_uT: RMS of the
    within-state deviations left after the fit, per axis. rotation_rad: smallest singular value
    of the design per √sample — how much the hand turned, the leverage on e.
    """

    earth_uT: np.ndarray
    mean_rt: np.ndarray
    residual_rms_uT: float
    rotation_rad: float
    n_samples: int

    def at_mean_orientation(self, readings_uT, rotations):
        """Readings (n, 3) µT moved to the mean orientation: r − (R_iᵀ − mean Rᵀ) e."""
        rt = np.swapaxes(np.asarray(rotations, float), -1, -2)
        return np.asarray(readings_uT, float) - (rt - self.mean_rt) @ self.earth_uT

    @property
    def earth_mean_frame_uT(self):
        """Earth's field (3,) µT in the sensor frame at the mean orientation."""
        return self.mean_rt @ self.earth_uT


def fit_earth(readings_uT, rotations, bits, min_rotation_rad=2e-3):
    """Earth's field vector from how each held state's readings move as the hand turns.

    Args:
        readings_uT: (n, 3) calibrated readings, µT.
        rotations: (n, 3, 3) sensor → reference rotations of those readings.
        bits: (n, 5) finger states.
        min_rotation_rad: below this leverage (the hand barely turned) e is not identifiable
            and a ValueError is raised instead of returning a guess.

    Returns:
        EarthFit.
    """
    r = np.asarray(readings_uT, float)
    rot = np.asarray(rotations, float)
    idx = bits_to_index(bits)
    if r.ndim != 2 or r.shape[1] != 3 or rot.shape != (len(r), 3, 3) or len(idx) != len(r):
        raise ValueError(f"readings (n, 3), rotations (n, 3, 3) and bits (n, 5) must match; "
                         f"got {r.shape}, {rot.shape}, {np.shape(bits)}")
    rt = np.swapaxes(rot, -1, -2)
    counts = np.bincount(idx, minlength=32).astype(float)

    def within_state(a):  # deviation of every sample from its state's mean
        sums = np.zeros((32,) + a.shape[1:])
        np.add.at(sums, idx, a)
        return a - (sums / np.maximum(counts, 1).reshape((-1,) + (1,) * (a.ndim - 1)))[idx]

    design = within_state(rt).reshape(-1, 3)
    target = within_state(r).reshape(-1)
    leverage = float(np.linalg.svd(design, compute_uv=False)[-1] / np.sqrt(len(r)))
    if leverage < min_rotation_rad:
        raise ValueError(f"the hand barely turns within the held states (leverage "
                         f"{leverage:.2e} rad < {min_rotation_rad:.0e}): Earth's field is not "
                         f"identifiable from this recording")
    e, *_ = np.linalg.lstsq(design, target, rcond=None)
    resid = target - design @ e
    return EarthFit(earth_uT=e, mean_rt=rt.mean(0), residual_rms_uT=float(np.sqrt(np.mean(
        resid ** 2))), rotation_rad=leverage, n_samples=len(r))


def dip_angle_deg(earth_uT, rotations, accel_g):
    """Inclination of a fitted Earth field below the horizontal, from the accelerometer.

    At rest the accelerometer measures the upward direction in the sensor frame; rotated into
    the reference frame and averaged, it gives "up" there. The dip is asin(−ê·up): an
    independent check of `fit_earth` against the site's known inclination.

    Args:
        earth_uT: (3,) Earth's field in the reference frame.
        rotations: (n, 3, 3) sensor → reference rotations.
        accel_g: (n, 3) accelerometer readings, g, of the same samples.

    Returns:
        dip angle, degrees (positive: the field points below the horizon).
    """
    up = np.einsum("nij,nj->i", np.asarray(rotations, float), np.asarray(accel_g, float))
    up = up / np.linalg.norm(up)
    e = np.asarray(earth_uT, float)
    return float(np.rad2deg(np.arcsin(np.clip(-(e @ up) / np.linalg.norm(e), -1.0, 1.0))))


# ---------------------------------------------------------------- gyroscope bias
@dataclass(frozen=True)
class GyroBias:
    """A gyroscope bias estimate.

    bias_dps: (3,) constant rate offset, °/s (subtract it before integrating). start_dps: the
    stationary-hand start (mean rate over the recording). up: (3,) unit "up" in the reference
    frame. earth_uT: (3,) Earth's field in the reference frame (None without magnetometer
    terms). cost: final least-squares cost. n_samples: samples integrated. drift_dps: (3,)
    change of the bias from the middle of the recording to its end, °/s (a bias that drifts
    linearly in time; None for a constant bias). profile_dps: (n, 3) bias of every sample,
    °/s (subtract it before integrating: `session_rotations(..., bias_dps=profile_dps)`).
    """

    bias_dps: np.ndarray
    start_dps: np.ndarray
    up: np.ndarray
    earth_uT: np.ndarray | None
    cost: float
    n_samples: int
    drift_dps: np.ndarray | None = None
    profile_dps: np.ndarray | None = None


def _within_state(a, idx):
    """Deviation of every row of a (n, k) from the mean of its state (idx (n,) 0..31)."""
    onehot = (idx[:, None] == np.arange(32)[None]).astype(float)  # (n, 32)
    means = (onehot.T @ a) / np.maximum(onehot.sum(0), 1)[:, None]
    return a - onehot @ means


def estimate_gyro_bias(gyro_dps, rate_hz, accel_g, readings_uT=None, bits=None, rows=None,
                       accel_noise_g=0.01, mag_noise_uT=0.3, accel_stride=4, time_s=None,
                       drift=False):
    """Gyroscope bias from the recording itself, no extra calibration step: constant, or with
    ``drift`` a bias that changes linearly over the recording (b(t) = b + d·τ, τ from −1 at
    the first sample to +1 at the last: a first-order model of the bias random walk, which over
    a few minutes moves the bias by as much as the constant estimate's error). The drift about
    the near-vertical axis is seen only through the magnetometer terms and is weakly
    identified; on the realistic simulator the drift model missed the injected bias at the
    recording's ends by more than the constant one, so it is off by default.

    A hand that holds poses does not keep turning, so the mean rate over a recording is the
    bias to within (net rotation)/(duration): that is the start. It is refined by nonlinear
    least squares (scipy ``least_squares``) on what must stay consistent when the gyroscope,
    minus the bias, is integrated (`gyro_orientation`):

    * the accelerometer sees a fixed "up" u of the reference frame: a_i ≈ R_iᵀ u (every
      ``accel_stride``-th sample, weighted by 1/accel_noise_g; the hand's own acceleration
      counts as noise);
    * optionally, the magnetometer's labelled readings (rows: their sample indices, bits: their
      states) move within a held state only by Earth's field turning: within-state deviations
      of r_i ≈ those of R_iᵀ e (weighted by 1/mag_noise_uT). Use training labels only.

    Args:
        gyro_dps: (n, 3) rates, °/s. rate_hz: sample rate (> 0). accel_g: (n, 3), g.
        readings_uT: optional (m, 3) calibrated readings at sample indices rows (m,), with
            their states bits (m, 5).
        accel_noise_g, mag_noise_uT: residual scales (> 0).
        time_s: optional (n,) sample times, s: integrate over them instead of 1/rate_hz.
        drift: also fit the linear drift d (3,) °/s (three more unknowns).

    Returns:
        GyroBias (profile_dps: b + d·τ per sample, or b repeated).
    """
    from scipy.optimize import least_squares

    g = np.asarray(gyro_dps, float)
    acc = np.asarray(accel_g, float)
    if acc.shape != g.shape:
        raise ValueError(f"accel_g {acc.shape} must match gyro_dps {g.shape}")
    if not (accel_noise_g > 0 and mag_noise_uT > 0 and accel_stride >= 1):
        raise ValueError("accel_noise_g, mag_noise_uT must be > 0 and accel_stride >= 1")
    use_mag = readings_uT is not None
    if use_mag:
        r = np.asarray(readings_uT, float)
        rows = np.asarray(rows, dtype=np.int64)
        idx = bits_to_index(bits)
        if r.shape != (len(rows), 3) or len(idx) != len(rows):
            raise ValueError(f"readings_uT (m, 3), rows (m,) and bits (m, 5) must match; got "
                             f"{r.shape}, {rows.shape}, {np.shape(bits)}")
        target = _within_state(r, idx).ravel() / mag_noise_uT
        rows_rt = rows
    b0 = g.mean(0)
    keep = np.arange(0, len(g), accel_stride)
    t = np.arange(len(g), dtype=float) if time_s is None else np.asarray(time_s, float)
    tau = (2 * (t - t[0]) / (t[-1] - t[0]) - 1)[:, None] if len(g) > 1 else np.zeros((1, 1))
    n_base = 9 if use_mag else 6

    def profile(theta):
        return theta[:3] + (theta[n_base:n_base + 3] * tau if drift else 0.0)

    def residual(theta):
        rt = np.swapaxes(gyro_orientation(g - profile(theta), rate_hz, time_s), -1, -2)
        u = theta[3:6] / np.linalg.norm(theta[3:6])
        out = [((acc[keep] - rt[keep] @ u) / accel_noise_g).ravel()]
        if use_mag:
            out.append(target - _within_state(rt[rows_rt] @ theta[6:9], idx).ravel()
                       / mag_noise_uT)
        return np.concatenate(out)

    rt0 = np.swapaxes(gyro_orientation(g - b0, rate_hz, time_s), -1, -2)
    up0 = np.mean(np.einsum("nji,nj->ni", rt0, acc), axis=0)  # R_i a_i averaged
    if not np.linalg.norm(up0) > 0:
        raise ValueError("accel_g: the accelerometer's readings average to zero (or are not "
                         "finite), so there is no gravity to say where up is")
    theta0 = np.concatenate([b0, up0 / np.linalg.norm(up0)])
    if use_mag:
        e0 = fit_earth(r, np.swapaxes(rt0, -1, -2)[rows], bits).earth_uT
        theta0 = np.concatenate([theta0, e0])
    if drift:
        theta0 = np.concatenate([theta0, np.zeros(3)])
    sol = least_squares(residual, theta0, x_scale=np.concatenate(
        [np.full(3, 0.1), np.ones(3)] + ([np.full(3, 10.0)] if use_mag else [])
        + ([np.full(3, 0.1)] if drift else [])), method="lm")
    up = sol.x[3:6] / np.linalg.norm(sol.x[3:6])
    return GyroBias(bias_dps=sol.x[:3], start_dps=b0, up=up,
                    earth_uT=sol.x[6:9] if use_mag else None, cost=float(sol.cost),
                    n_samples=len(g), drift_dps=sol.x[n_base:n_base + 3] if drift else None,
                    profile_dps=np.broadcast_to(profile(sol.x), g.shape).copy())


def session_bias(session, rows=None, bits=None, rate_hz=None, drift=False):
    """`estimate_gyro_bias` of a Session (over its sample timestamps when the file has them);
    with rows (sample indices) and bits, the labelled calibrated readings at those rows add the
    magnetometer terms (pass training rows only); drift: a linearly drifting bias."""
    where = session.path or "session"
    if session.gyro_dps is None or session.accel_g is None:
        raise ValueError(f"{where}: gyro (gx, gy, gz) and accelerometer (ax, ay, az) fields "
                         f"are needed to estimate the gyroscope bias")
    time_s = getattr(session, "time_s", None)
    rate = rate_hz if rate_hz is not None else (session.metadata or {}).get("rate_hz")
    if rate is None and time_s is None:
        raise ValueError(f"{where}: sample rate unknown (no timestamps, no metadata.rate_hz); "
                         f"pass rate_hz")
    r = None if rows is None else session.calibrated_uT()[rows]
    return estimate_gyro_bias(session.gyro_dps, None if rate is None else float(rate),
                              session.accel_g, r, bits, rows, time_s=time_s, drift=drift)
