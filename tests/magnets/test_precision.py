"""No global state at import: physml.magnets must not flip JAX to float64 for the process, and its
float64 kernels must stay float64 (and as accurate against magpylib) with x64 switched off."""

import subprocess
import sys

import jax
import magpylib as magpy
import numpy as np
import pytest

from physml.magnets.field import dipole_field, dipole_field_paired, dipole_field_per_source
from physml.magnets.fit import FitResult, MagnetSpec, fit, initial_params
from physml.magnets.hand import ALL_BITS, default_hand, hand_magnets, magnet_pose
from physml.magnets.placement import default_placement, separability
from physml.magnets.simulate import true_state_fields_uT

_IMPORT_CHECK = """
import jax
before = bool(jax.config.jax_enable_x64)
import physml.magnets
from physml.magnets import (active, benchmark, calibration, classify, field, fieldcheck, fit,
                            hand, heldout, orientation, placement, recentre, session, simulate,
                            synthetic)
import jax.numpy as jnp
after = bool(jax.config.jax_enable_x64)
print(before, after, jnp.ones(1).dtype)
"""


def test_import_leaves_jax_x64_flag_unchanged():
    out = subprocess.run([sys.executable, "-c", _IMPORT_CHECK], capture_output=True, text=True,
                         check=True, timeout=300).stdout.split()
    assert out == ["False", "False", "float32"], out


def _sources(rng, k):
    return rng.uniform(-0.05, 0.05, (k, 3)), 0.1 * rng.standard_normal((k, 3))


@pytest.mark.parametrize("k", [1, 5, 40])
def test_dipole_kernels_float64_and_match_magpylib_with_x64_off(k):
    rng = np.random.default_rng(10 + k)
    pos, mom = _sources(rng, k)
    obs = rng.uniform(0.08, 0.2, (500, 3)) * rng.choice([-1, 1], (500, 3))
    src = [magpy.misc.Dipole(position=p, moment=m) for p, m in zip(pos, mom, strict=True)]
    ref = magpy.getB(src, obs, sumup=True)
    with jax.enable_x64(False):
        b = dipole_field(obs, pos, mom)
        per = dipole_field_per_source(obs, pos, mom)
        paired = dipole_field_paired(obs, np.broadcast_to(pos, (len(obs), k, 3)),
                                     np.broadcast_to(mom, (len(obs), k, 3)))
    for arr in (b, per, paired):
        assert arr.dtype == np.float64
    rel = np.linalg.norm(np.asarray(b) - ref, axis=1) / np.linalg.norm(ref, axis=1)
    assert rel.max() < 1e-10  # the tolerance these kernels had with the global flag on
    np.testing.assert_allclose(np.asarray(per).sum(1), ref, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(paired), ref, rtol=1e-10)


def test_hand_pose_and_placement_float64_with_x64_off():
    hand = default_hand()
    with jax.enable_x64(False):
        pos, ax = hand_magnets(hand, ALL_BITS)
        p2, _ = magnet_pose(hand.base_m, hand.direction, hand.flex_axis, hand.lengths_m,
                            hand.flexed_rad, hand.mount_m, hand.surface_m, hand.tilt_rad)
        sc = separability(hand, default_placement(hand), 2.0)
    assert pos.dtype == np.float64 and p2.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(ax, axis=-1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(p2, pos[-1], rtol=1e-14)  # state 31 = all flexed
    assert sc["fields_uT"].dtype == np.float64


def test_fit_templates_float64_and_match_magpylib_dipoles_with_x64_off():
    """A free-dipole FitResult predicts, with x64 off, the magpylib dipole sum of its own magnets
    to float64 precision; and a fit run with x64 off returns float64 templates."""
    hand = default_hand()
    p = initial_params("free", hand, MagnetSpec())
    p["offset"] = np.array([1.0, -2.0, 3.0])
    res = FitResult("free", p, {}, {}, 0.0, 0.0, 0.0, 0.0)
    with jax.enable_x64(False):
        t = res.templates()
    assert t.dtype == np.float64
    for s, bits in enumerate(ALL_BITS[[0, 7, 19, 31]]):
        sel = np.arange(5), bits
        src = [magpy.misc.Dipole(position=q, moment=m) for q, m in
               zip(p["pos"][sel], p["mom"][sel], strict=True)]
        ref = 1e6 * magpy.getB(src, np.zeros(3), sumup=True) + p["offset"]
        np.testing.assert_allclose(t[[0, 7, 19, 31][s]], ref, rtol=1e-10)
    truth = true_state_fields_uT(hand)
    with jax.enable_x64(False):
        fitted = fit("constrained", truth, ALL_BITS, hand=hand, maxiter=20)
    assert fitted.templates().dtype == np.float64
    assert fitted.final_loss <= fitted.initial_loss
