"""Per-user offsets: a known injected shift is recovered with the right sign, also when the
calibration readings cover only a few states (where the mean rule fails)."""

import numpy as np
import pytest

from physml.magnets.calibration import offset
from physml.magnets.classify import TemplateClassifier, exact_match
from physml.magnets.hand import ALL_BITS
from physml.magnets.recentre import labelled_offset, mean_offset, recentred

SHIFT = np.array([12.0, -7.0, 4.5])  # µT, the injected per-user offset


@pytest.fixture(scope="module")
def templates():
    return 40.0 * np.random.default_rng(0).standard_normal((32, 3))


def _readings(templates, states, n_per, noise, seed=1):
    rng = np.random.default_rng(seed)
    idx = np.repeat(states, n_per)
    return templates[idx] + SHIFT + noise * rng.standard_normal((len(idx), 3)), ALL_BITS[idx]


def test_mean_offset_recovers_the_shift_when_every_state_is_visited_equally(templates):
    x, _ = _readings(templates, np.arange(32), 20, 0.0)
    np.testing.assert_allclose(mean_offset(x, templates), SHIFT, atol=1e-9)


def test_labelled_offset_recovers_the_shift_from_three_states(templates):
    x, bits = _readings(templates, np.array([2, 9, 30]), 5, 0.3)
    d = labelled_offset(x, bits, templates)
    np.testing.assert_allclose(d, SHIFT, atol=0.5)
    # the mean rule is off by the mean of the 29 missing states' templates
    assert np.linalg.norm(mean_offset(x, templates) - SHIFT) > 10.0


def test_recentred_readings_land_on_their_templates(templates):
    x, bits = _readings(templates, np.arange(32), 1, 0.0)
    d = labelled_offset(x, bits, templates)
    np.testing.assert_allclose(recentred(x, d), templates, atol=1e-9)
    # and a template classifier moved by +d classifies the shifted readings perfectly
    assert exact_match(TemplateClassifier(templates + d).predict_bits(x), bits) == 1.0


def test_calibration_offset_rule_is_robust_with_labels_and_uses_the_session_without(templates):
    x, bits = _readings(templates, np.array([5, 6]), 8, 0.2)
    unl, _ = _readings(templates, np.arange(32), 3, 0.0, seed=2)
    np.testing.assert_allclose(offset("robust", templates, x, bits, unl), SHIFT, atol=0.5)
    assert np.linalg.norm(offset("mean", templates, x, bits, unl) - SHIFT) > 10.0
    np.testing.assert_allclose(offset("robust", templates, x[:0], bits[:0], unl), SHIFT,
                               atol=1e-9)
    with pytest.raises(ValueError, match="re-centring rule"):
        offset("median", templates, x, bits, unl)


def test_offsets_reject_bad_shapes(templates):
    with pytest.raises(ValueError, match="templates_uT must be"):
        mean_offset(np.zeros((4, 3)), templates[:10])
    with pytest.raises(ValueError, match="bits must be"):
        labelled_offset(np.zeros((4, 3)), ALL_BITS[:3], templates)
    for bad in (np.zeros((4, 2)), np.zeros((0, 3)), np.zeros(3)):
        with pytest.raises(ValueError, match=r"readings_uT must be \(n, 3\) with n >= 1"):
            mean_offset(bad, templates)
    nan_reading = np.zeros((4, 3))
    nan_reading[2, 1] = np.nan
    nan_template = templates.copy()
    nan_template[5, 0] = np.inf
    for r, t in ((nan_reading, templates), (np.zeros((4, 3)), nan_template)):
        with pytest.raises(ValueError, match="non-finite"):
            mean_offset(r, t)
