"""Classifiers: the fast forest against scikit-learn, predict API, persistence, templates."""

import numpy as np
import pytest

from physml.magnets.classify import FingerClassifier, TemplateClassifier, exact_match
from physml.magnets.hand import STATE_CODES
from physml.magnets.synthetic import generate


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    templ = 15 * rng.standard_normal((32, 3))
    x, b = generate(templ, np.arange(32), 60, rng, noise_uT=2.0)
    xt, bt = generate(templ, np.arange(32), 20, rng, noise_uT=2.0)
    return templ, x, b, xt, bt


def test_fast_forest_reproduces_sklearn_predictions(data):
    _, x, b, xt, _ = data
    clf = FingerClassifier("rf", seed=1, n_estimators=30).fit(x, b)
    ref = np.column_stack(clf.model.predict(xt).T)
    np.testing.assert_array_equal(clf.predict_bits(xt), ref)
    p_ref = np.column_stack([p[:, 1] for p in clf.model.predict_proba(xt)])
    np.testing.assert_allclose(clf.proba(xt), p_ref, atol=1e-12)


@pytest.mark.parametrize("kind", ["rf", "hgb"])
def test_predict_returns_state_codes_and_learns(data, kind):
    _, x, b, xt, bt = data
    clf = FingerClassifier(kind, seed=0, n_estimators=30).fit(x, b)
    assert clf.predict(xt[0]) in STATE_CODES
    assert len(clf.predict(xt[:4])) == 4
    assert exact_match(clf.predict_bits(xt), bt) > 0.5  # chance is 1/32


def test_saved_classifier_loads_and_predicts_the_same(data, tmp_path):
    _, x, b, xt, _ = data
    clf = FingerClassifier("rf", n_estimators=10).fit(x, b)
    back = FingerClassifier.load(clf.save(tmp_path / "m.joblib"))
    np.testing.assert_array_equal(back.predict_bits(xt), clf.predict_bits(xt))


def test_template_classifier_is_exact_on_noise_free_templates(data):
    templ = data[0]
    tc = TemplateClassifier(templ)
    assert tc.predict(templ[5]) == STATE_CODES[5]
    assert tc.predict(list(templ)) == list(STATE_CODES)
    np.testing.assert_allclose(tc.proba(templ).sum(1) > 0, True)


def test_bad_readings_raise(data):
    clf = FingerClassifier("rf", n_estimators=5).fit(data[1], data[2])
    with pytest.raises(ValueError, match=r"readings must be \(n, 3\)"):
        clf.predict(np.zeros(4))
    with pytest.raises(ValueError, match="non-finite"):
        clf.predict(np.array([np.nan, 0, 0]))
    with pytest.raises(ValueError, match="kind"):
        FingerClassifier("svm")
