"""Kinematic hand: where each finger's magnet sits, and how it points, for any finger state.

Hand frame (m): x points distally along the fingers, y towards the thumb side, z out of the back
of the hand. Each finger is a two-segment chain (proximal, middle+distal) hinged at a base joint
and a second joint; flexion rotates the chain about the finger's flex axis towards the palm (-z).
A disc magnet sits on the dorsal surface of the chain at a given distance from the base joint,
magnetised through its thickness (along the dorsal surface normal, optionally tilted about the
segment direction). The magnetometer sits at `sensor_m` and shares the hand frame's axes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import jax
import jax.numpy as jnp
import numpy as np

from physml.precision import x64

from .field import cylinder_moment

FINGERS = ("thumb", "index", "middle", "ring", "pinky")
#: All 32 states as 5-letter codes thumb→pinky, 'e' extended, 'f' flexed; index i ↔ bits of i.
STATE_CODES = tuple("".join(s) for s in itertools.product("ef", repeat=5))


def code_to_bits(codes):
    """State codes ('eefef', ...) → (n, 5) int array, 1 = flexed."""
    codes = [codes] if isinstance(codes, str) else list(codes)
    out = np.zeros((len(codes), 5), dtype=np.int64)
    for i, c in enumerate(codes):
        if len(c) != 5 or set(c) - {"e", "f"}:
            raise ValueError(f"state code #{i} {c!r}: expected 5 letters from 'e'/'f'")
        out[i] = [ch == "f" for ch in c]
    return out


def bits_to_code(bits):
    """(n, 5) 0/1 array → list of state codes."""
    b = np.atleast_2d(np.asarray(bits))
    return ["".join("f" if x else "e" for x in row) for row in b]


def bits_to_index(bits):
    """(n, 5) 0/1 → (n,) state index 0..31 (thumb is the most significant bit)."""
    b = np.atleast_2d(np.asarray(bits, dtype=np.int64))
    return b @ (1 << np.arange(4, -1, -1))


def index_to_bits(idx):
    """(n,) state index 0..31 → (n, 5) 0/1 array."""
    i = np.asarray(idx, dtype=np.int64)
    if np.any((i < 0) | (i > 31)):
        raise ValueError(f"state index must be in [0, 31], got {i[(i < 0) | (i > 31)]}")
    return (i[..., None] >> np.arange(4, -1, -1)) & 1


ALL_BITS = index_to_bits(np.arange(32))


@dataclass(frozen=True)
class Hand:
    """Geometry of one hand with its magnets (all arrays NumPy, SI units).

    Attributes:
        base_m: (5, 3) base-joint positions, m.
        direction: (5, 3) unit direction of each extended finger.
        flex_axis: (5, 3) unit axis each finger flexes about (right-hand rule, + flexes to palm).
        lengths_m: (5, 2) proximal and distal chain segment lengths, m.
        flexed_rad: (5, 2) joint angles (base, second) of a flexed finger, rad.
        extended_rad: (5, 2) joint angles of an extended finger, rad.
        mount_m: (5,) magnet distance along the chain from the base joint, m.
        surface_m: (5,) height of the magnet centre above the bone axis (dorsal), m.
        tilt_rad: (5,) magnet axis tilt about the segment direction, rad (π flips polarity).
        diameter_m, height_m: (5,) magnet dimensions, m.
        polarization_T: (5,) magnet remanence, T.
        sensor_m: (3,) magnetometer position, m.
    """

    base_m: np.ndarray
    direction: np.ndarray
    flex_axis: np.ndarray
    lengths_m: np.ndarray
    flexed_rad: np.ndarray
    extended_rad: np.ndarray
    mount_m: np.ndarray
    surface_m: np.ndarray
    tilt_rad: np.ndarray
    diameter_m: np.ndarray
    height_m: np.ndarray
    polarization_T: np.ndarray
    sensor_m: np.ndarray = field(default_factory=lambda: np.zeros(3))

    @property
    def moment_Am2(self):
        """(5,) dipole moment magnitude of each magnet, A·m²."""
        return cylinder_moment(self.diameter_m, self.height_m, self.polarization_T)

    def replace(self, **kw):
        """Copy with some fields replaced (arrays converted to float)."""
        return replace(self, **{k: np.asarray(v, float) for k, v in kw.items()})


def _unit(v):
    v = np.asarray(v, float)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def default_hand(diameter_m=0.006, height_m=0.003, polarization_T=1.40):
    """Nominal adult hand with Ø6×3 mm N48 disc magnets on the proximal phalanges."""
    thumb_dir = _unit([0.6, 0.8, -0.3])
    thumb_axis = _unit(np.cross(thumb_dir, [0.2, -0.3, 1.0]))  # flexes across the palm
    base = np.array([[0.000, 0.035, -0.025],
                     [0.060, 0.030, -0.012], [0.062, 0.010, -0.012],
                     [0.058, -0.008, -0.012], [0.052, -0.025, -0.014]])
    direction = np.vstack([thumb_dir, np.tile([1.0, 0.0, 0.0], (4, 1))])
    axis = np.vstack([thumb_axis, np.tile([0.0, 1.0, 0.0], (4, 1))])
    lengths = np.array([[0.035, 0.030], [0.045, 0.045], [0.050, 0.050],
                        [0.047, 0.047], [0.038, 0.038]])
    flexed = np.deg2rad([[40.0, 50.0], [75.0, 90.0], [75.0, 90.0], [75.0, 90.0], [75.0, 90.0]])
    extended = np.deg2rad(np.tile([5.0, 5.0], (5, 1)))
    ones = np.ones(5)
    return Hand(base_m=base, direction=direction, flex_axis=axis, lengths_m=lengths,
                flexed_rad=flexed, extended_rad=extended, mount_m=0.6 * lengths[:, 0],
                surface_m=0.008 * ones, tilt_rad=np.zeros(5),
                diameter_m=diameter_m * ones, height_m=height_m * ones,
                polarization_T=polarization_T * ones, sensor_m=np.zeros(3))


def sample_hand(rng, base=None, scale=1.0, moment_tolerance=0.10):
    """A random user's hand: size (7% SD), segment lengths, joint positions, flex angles,
    mounts, and each magnet's strength varied.

    Args:
        rng: numpy Generator.
        base: Hand to perturb (default `default_hand()`).
        scale: multiplies every geometric perturbation size (0 with moment_tolerance 0 returns
            `base` unchanged).
        moment_tolerance: each magnet's remanence (hence moment) is drawn uniformly within
            ±moment_tolerance of the nominal (vendors sell NdFeB discs at ±10%), independent of
            `scale`.

    Returns:
        Hand.
    """
    h = default_hand() if base is None else base
    size = 1.0 + scale * 0.07 * rng.standard_normal()  # overall hand size
    lengths = h.lengths_m * size * (1.0 + scale * 0.04 * rng.standard_normal((5, 2)))
    return h.replace(
        base_m=h.base_m * size + scale * 0.003 * rng.standard_normal((5, 3)),
        lengths_m=lengths,
        flexed_rad=h.flexed_rad + scale * np.deg2rad(8.0) * rng.standard_normal((5, 2)),
        extended_rad=h.extended_rad + scale * np.deg2rad(4.0) * rng.standard_normal((5, 2)),
        mount_m=h.mount_m * size + scale * 0.003 * rng.standard_normal(5),
        tilt_rad=h.tilt_rad + scale * np.deg2rad(5.0) * rng.standard_normal(5),
        sensor_m=h.sensor_m + scale * 0.002 * rng.standard_normal(3),
        polarization_T=h.polarization_T * (1.0 + moment_tolerance * rng.uniform(-1, 1, 5)),
    )


def _rotate(v, axis, angle):
    """Rodrigues rotation of v (..., 3) about unit axis (..., 3) by angle (...), JAX."""
    c = jnp.cos(angle)[..., None]
    s = jnp.sin(angle)[..., None]
    return v * c + jnp.cross(axis, v) * s + axis * jnp.sum(axis * v, -1, keepdims=True) * (1 - c)


@jax.jit
def magnet_pose_jit(base_m, direction, flex_axis, lengths_m, angles_rad, mount_m, surface_m,
                    tilt_rad):
    """Magnet centre and magnetisation direction for given joint angles (JAX, differentiable).

    Args:
        base_m, direction, flex_axis: (5, 3) (or broadcastable (..., 5, 3)).
        lengths_m: (..., 5, 2) segment lengths, m.
        angles_rad: (..., 5, 2) joint angles, rad.
        mount_m, surface_m, tilt_rad: (..., 5).

    Returns:
        positions (..., 5, 3) m and unit axes (..., 5, 3).
    """
    base_m, direction, flex_axis = (jnp.asarray(a) for a in (base_m, direction, flex_axis))
    th1 = angles_rad[..., 0]
    th12 = angles_rad[..., 0] + angles_rad[..., 1]
    u1 = _rotate(direction, flex_axis, th1)
    u2 = _rotate(direction, flex_axis, th12)
    n0 = jnp.cross(direction, flex_axis)
    l1 = lengths_m[..., 0]
    on_first = (mount_m <= l1)[..., None]
    along = jnp.where(on_first, mount_m[..., None] * u1,
                      l1[..., None] * u1 + (mount_m - l1)[..., None] * u2)
    useg = jnp.where(on_first, u1, u2)
    nseg = jnp.where(on_first, _rotate(n0, flex_axis, th1), _rotate(n0, flex_axis, th12))
    pos = base_m + along + surface_m[..., None] * nseg
    ax = _rotate(nseg, useg, tilt_rad)
    return pos, ax


#: `magnet_pose_jit` in float64 whatever JAX's global setting (`physml.precision.x64`)
magnet_pose = x64(magnet_pose_jit)


def state_angles(hand, bits):
    """Joint angles (n, 5, 2) rad for states bits (n, 5) (1 = flexed)."""
    b = np.asarray(bits)[..., None].astype(bool)
    return np.where(b, hand.flexed_rad, hand.extended_rad)


@x64
def hand_magnets(hand, bits, angle_jitter_rad=None):
    """Magnet positions (n, 5, 3) m and unit axes (n, 5, 3) for states bits (n, 5).

    angle_jitter_rad: optional (n, 5, 2) added to the joint angles (tremor).
    """
    ang = state_angles(hand, bits)
    if angle_jitter_rad is not None:
        ang = ang + angle_jitter_rad
    n = ang.shape[0]
    pos, ax = magnet_pose_jit(hand.base_m, hand.direction, hand.flex_axis,
                          np.broadcast_to(hand.lengths_m, (n, 5, 2)), ang,
                          np.broadcast_to(hand.mount_m, (n, 5)),
                          np.broadcast_to(hand.surface_m, (n, 5)),
                          np.broadcast_to(hand.tilt_rad, (n, 5)))
    return np.asarray(pos), np.asarray(ax)
