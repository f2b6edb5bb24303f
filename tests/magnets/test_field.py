"""Field kernels against magpylib (an independent implementation) and physics consistency."""

import magpylib as magpy
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from physml.magnets.field import (
    cylinder_field,
    cylinder_moment,
    dipole_field,
    dipole_field_paired,
    dipole_field_per_source,
    implied_diameter,
)


def _sources(rng, k):
    return rng.uniform(-0.05, 0.05, (k, 3)), 0.1 * rng.standard_normal((k, 3))


def _observers(rng, n, pos):
    obs = rng.uniform(-0.2, 0.2, (n, 3))
    d = np.min(np.linalg.norm(obs[:, None] - pos[None], axis=-1), axis=1)
    return obs[d > 0.005]


@pytest.mark.parametrize("k", [1, 5, 40])  # 40 takes the broadcast path, the others unrolled
def test_dipole_field_equals_magpylib_dipole(k):
    rng = np.random.default_rng(k)
    pos, mom = _sources(rng, k)
    obs = _observers(rng, 2000, pos)
    src = [magpy.misc.Dipole(position=p, moment=m) for p, m in zip(pos, mom, strict=True)]
    ref = magpy.getB(src, obs, sumup=True)
    ours = np.asarray(dipole_field(obs, pos, mom))
    rel = np.linalg.norm(ours - ref, axis=1) / np.linalg.norm(ref, axis=1)
    assert rel.max() < 1e-10


def test_dipole_per_source_equals_magpylib_per_source():
    rng = np.random.default_rng(1)
    pos, mom = _sources(rng, 3)
    obs = _observers(rng, 500, pos)
    src = [magpy.misc.Dipole(position=p, moment=m) for p, m in zip(pos, mom, strict=True)]
    ref = np.stack([magpy.getB(s, obs) for s in src], axis=1)  # (n, k, 3)
    ours = np.asarray(dipole_field_per_source(obs, pos, mom))
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=0)


def test_dipole_paired_equals_magpylib_for_batched_configurations():
    rng = np.random.default_rng(2)
    pos = rng.uniform(-0.05, 0.05, (4, 5, 3))
    mom = 0.1 * rng.standard_normal((4, 5, 3))
    obs = rng.uniform(0.1, 0.2, (4, 3))
    ours = np.asarray(dipole_field_paired(obs, pos, mom))
    for i in range(4):
        src = [magpy.misc.Dipole(position=p, moment=m) for p, m in zip(pos[i], mom[i],
                                                                          strict=True)]
        np.testing.assert_allclose(ours[i], magpy.getB(src, obs[i], sumup=True), rtol=1e-10)


def test_cylinder_field_equals_magpylib_cylinder_objects():
    rng = np.random.default_rng(3)
    pos = rng.uniform(-0.02, 0.02, (3, 3))
    axes = np.array([[0, 0, 1.0], [1.0, 0, 0], [0.3, -0.5, 0.8]])
    d, h, j = np.array([0.006, 0.008, 0.004]), np.array([0.003, 0.004, 0.004]), 1.3
    obs = rng.uniform(0.05, 0.1, (50, 3))
    src = []
    for p, a, dd, hh in zip(pos, axes, d, h, strict=True):
        rot, _ = Rotation.align_vectors([a / np.linalg.norm(a)], [[0, 0, 1.0]])
        src.append(magpy.magnet.Cylinder(position=p, orientation=rot, dimension=(dd, hh),
                                         polarization=(0, 0, j)))
    ref = magpy.getB(src, obs, sumup=True)
    np.testing.assert_allclose(cylinder_field(obs, pos, axes, d, h, j), ref, rtol=1e-9)


def _finite_magnets(size):
    """Every finite magnet type of magpylib, unit polarization along z, and its moment."""
    j = 1.0
    mu0 = magpy.mu_0
    return {
        "cylinder": (magpy.magnet.Cylinder(dimension=(size, size / 2), polarization=(0, 0, j)),
                     j * np.pi * size**2 / 4 * size / 2 / mu0),
        "cuboid": (magpy.magnet.Cuboid(dimension=(size, size, size / 2), polarization=(0, 0, j)),
                   j * size**3 / 2 / mu0),
        "sphere": (magpy.magnet.Sphere(diameter=size, polarization=(0, 0, j)),
                   j * np.pi / 6 * size**3 / mu0),
    }


@pytest.mark.parametrize("kind", ["cylinder", "cuboid", "sphere"])
def test_every_finite_magnet_converges_to_the_dipole_far_away(kind):
    size = 0.006
    magnet, m = _finite_magnets(size)[kind]
    rng = np.random.default_rng(4)
    u = rng.standard_normal((100, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    errs = []
    for dist in (5, 20, 100):  # in magnet sizes
        obs = dist * size * u
        ref = magnet.getB(obs)
        dip = np.asarray(dipole_field(obs, np.zeros((1, 3)), np.array([[0, 0, m]])))
        errs.append(np.max(np.linalg.norm(dip - ref, axis=1) / np.linalg.norm(ref, axis=1)))
    assert errs[0] > errs[1] > errs[2] or kind == "sphere"
    assert errs[2] < 1e-3
    if kind == "sphere":  # a uniformly magnetised sphere's outside field is exactly a dipole
        assert max(errs) < 1e-10


def test_cylinder_moment_of_a_6x3_N48_disc_is_about_0p09():
    m = cylinder_moment(0.006, 0.003, 1.4)
    assert m == pytest.approx(1.4 * np.pi * 0.003**2 * 0.003 / (4e-7 * np.pi), rel=1e-6)
    assert 0.08 < m < 0.1


def test_implied_diameter_inverts_the_moment_of_the_declared_shape():
    d = np.array([0.004, 0.006, 0.008])
    np.testing.assert_allclose(implied_diameter(cylinder_moment(d, d / 2, 1.4), 1.4, 0.5), d)


def test_bad_magnet_dimensions_raise():
    with pytest.raises(ValueError, match="dimensions"):
        cylinder_moment(-0.006, 0.003, 1.4)
    with pytest.raises(ValueError, match="dimensions"):
        cylinder_field(np.zeros((1, 3)) + 0.1, np.zeros((1, 3)), [[0, 0, 1.0]], [0.0], [0.003], 1)


@pytest.mark.parametrize("d, h", [(0.0, 0.003), (0.006, 0.0), (0.006, -0.003)])
def test_a_magnet_without_volume_is_refused(d, h):
    # a zero (or negative) diameter or height is not a magnet, in either function
    with pytest.raises(ValueError, match="dimensions"):
        cylinder_moment(d, h, 1.4)
    with pytest.raises(ValueError, match="dimensions"):
        cylinder_field(np.zeros((1, 3)) + 0.1, np.zeros((1, 3)), [[0, 0, 1.0]], [d], [h], 1.4)


@pytest.mark.parametrize("positions, axes", [
    (np.zeros((2, 3)), np.ones((3, 3))),         # axes for three magnets, positions for two
    (np.zeros((2, 2)), np.ones((2, 2))),         # 2-D coordinates
    (np.zeros((5, 2, 3)), np.ones((5, 2, 3))),   # per-observer centres for 5 observers, not 4
])
def test_cylinder_field_refuses_positions_and_axes_that_do_not_fit(positions, axes):
    with pytest.raises(ValueError, match="positions/axes"):
        cylinder_field(np.zeros((4, 3)) + 0.1, positions, axes, 0.006, 0.003, 1.4)
