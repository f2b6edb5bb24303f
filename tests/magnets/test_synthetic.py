"""Synthetic generation: rotations against scipy, statistics, noise-model recovery."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from physml.magnets.hand import ALL_BITS
from physml.magnets.synthetic import estimate_noise_model, generate, rotate_small


def test_rotate_small_equals_scipy_rotation():
    rng = np.random.default_rng(0)
    v, rv = rng.standard_normal((100, 3)), 0.5 * rng.standard_normal((100, 3))
    np.testing.assert_allclose(rotate_small(v, rv), Rotation.from_rotvec(rv).apply(v),
                               atol=1e-12)


def test_generated_readings_centre_on_templates_with_requested_noise():
    rng = np.random.default_rng(1)
    templ = 40 * rng.standard_normal((32, 3))
    x, b = generate(templ, [3, 17], 20000, rng, noise_uT=2.0, quantise=False)
    assert x.shape == (40000, 3) and (b[:20000] == ALL_BITS[3]).all()
    np.testing.assert_allclose(x[:20000].mean(0), templ[3], atol=0.05)
    np.testing.assert_allclose(x[20000:].std(0), 2.0, rtol=0.03)


def test_orientation_variation_keeps_earth_field_magnitude():
    rng = np.random.default_rng(2)
    earth = np.array([25.0, 0.0, -43.3])
    templ = np.tile(earth, (32, 1))  # templates = Earth's field only
    x, _ = generate(templ, [0], 5000, rng, earth_uT=earth, orientation_deg=10, noise_uT=0,
                    quantise=False)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), np.linalg.norm(earth), rtol=1e-12)
    assert x.std(0).max() > 3.0


def test_quantisation_to_lsb():
    rng = np.random.default_rng(3)
    x, _ = generate(np.zeros((32, 3)) + 1.234, [0], 10, rng, noise_uT=1.0)
    np.testing.assert_allclose(x * 10.24, np.rint(x * 10.24), atol=1e-9)


def test_noise_model_recovers_injected_orientation_and_noise():
    rng = np.random.default_rng(4)
    earth = np.array([25.0, 5.0, -43.0])
    x, b = generate(np.zeros((32, 3)) + earth, np.arange(32), 2000, rng, earth_uT=earth,
                    orientation_deg=3.0, noise_uT=0.7, quantise=False)
    est = estimate_noise_model(x, b, earth)
    assert est["orientation_deg"] == pytest.approx(3.0, rel=0.05)
    assert est["noise_uT"] == pytest.approx(0.7, rel=0.1)


def test_bad_arguments_raise():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="templates_uT"):
        generate(np.zeros((31, 3)), [0], 1, rng)
    with pytest.raises(ValueError, match="states"):
        generate(np.zeros((32, 3)), [32], 1, rng)
    with pytest.raises(ValueError, match="n_per_state"):
        generate(np.zeros((32, 3)), [0], 0, rng)


def test_rotate_small_leaves_a_vector_alone_under_a_zero_rotation():
    v = np.array([[1.0, -2.0, 3.0], [0.5, 0.0, 4.0]])
    rv = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, np.pi / 2]])
    np.testing.assert_allclose(rotate_small(v, rv), [[1.0, -2.0, 3.0], [0.0, 0.5, 4.0]],
                               atol=1e-12)


def test_quantisation_rounds_to_the_nearest_step():
    from physml.magnets.session import MAG_UT_PER_LSB

    templ = 40 * np.random.default_rng(5).standard_normal((32, 3))
    raw, _ = generate(templ, [0, 9], 50, np.random.default_rng(6), quantise=False)
    q, _ = generate(templ, [0, 9], 50, np.random.default_rng(6), quantise=True)
    assert np.all(np.abs(q - raw) <= MAG_UT_PER_LSB / 2 + 1e-12)
    assert not np.allclose(q, raw)  # it did round


def test_generate_edges_and_each_refusal_alone():
    rng = np.random.default_rng(0)
    t = np.zeros((32, 3))
    x, _ = generate(t, [0], 1, rng, orientation_deg=0.0, noise_uT=0.0, earth_uT=[20.0, 0, 40])
    np.testing.assert_array_equal(x, [[0.0, 0.0, 0.0]])  # one sample, nothing added
    for bad in ({"orientation_deg": -1.0}, {"noise_uT": -1.0}):
        with pytest.raises(ValueError, match="orientation_deg and noise_uT"):
            generate(t, [0], 1, rng, **bad)


def test_noise_model_pools_the_within_state_covariance_on_a_hand_built_case():
    x = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [5, 4, 5], [5, 6, 5]])
    bits = ALL_BITS[[0, 0, 0, 1, 1]]
    # deviations from each state's mean: x ±1 (and 0) in state 0, y ±1 in state 1;
    # 5 readings of 2 states: 3 degrees of freedom, the fewest allowed
    est = estimate_noise_model(x, bits, np.array([25.0, 0.0, -43.0]))
    np.testing.assert_allclose(est["pooled_cov_uT2"], np.diag([2 / 3, 2 / 3, 0.0]), atol=1e-12)
    with pytest.raises(ValueError, match="dof=2"):
        estimate_noise_model(x[1:], bits[1:], np.array([25.0, 0.0, -43.0]))
