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


def test_fast_forest_itself_matches_sklearn_also_on_and_beside_every_split_threshold(data):
    # the batch above is larger than FAST_MAX_ROWS, so the classifier answers it through
    # scikit-learn: here the flat copy is called directly, on points placed exactly on each
    # split threshold (scikit-learn sends them left) and one float64 step above it
    _, x, b, xt, _ = data
    clf = FingerClassifier("rf", seed=1, n_estimators=30).fit(x, b)
    rng = np.random.default_rng(5)
    pts = []
    for e in clf.model.estimators_[:5]:
        t = e.tree_
        for node in np.flatnonzero(t.children_left >= 0):
            for th in (t.threshold[node], np.nextafter(t.threshold[node], np.inf)):
                p = 15 * rng.standard_normal(3)
                p[t.feature[node]] = th
                pts.append(p)
    pts = np.concatenate([np.array(pts), xt])
    ref = np.column_stack([p[:, 1] for p in clf.model.predict_proba(pts)])
    np.testing.assert_allclose(clf._fast.proba(pts), ref, atol=1e-12)


def test_few_readings_go_through_the_fast_forest_and_a_batch_through_sklearn(data):
    from physml.magnets.classify import FAST_MAX_ROWS

    _, x, b, xt, _ = data
    clf = FingerClassifier("rf", seed=1, n_estimators=10).fit(x, b)
    calls = []
    fast = clf._fast

    class Spy:
        def proba(self, r):
            calls.append(len(r))
            return fast.proba(r)

    clf._fast = Spy()
    many = np.concatenate([xt] * (FAST_MAX_ROWS // len(xt) + 1))
    clf.proba(many[:FAST_MAX_ROWS])
    clf.proba(many[:FAST_MAX_ROWS + 1])
    assert calls == [FAST_MAX_ROWS]


def test_a_finger_seen_in_one_state_only(data):
    _, x, b, xt, _ = data
    b = b.copy()
    b[:, 0], b[:, 1] = 1, 0  # thumb always flexed, index always extended in training
    rf = FingerClassifier("rf", seed=0, n_estimators=10).fit(x, b)
    for r in (xt[:5], xt):  # the fast forest and scikit-learn's batch
        p = rf.proba(r)
        assert np.all(p[:, 0] == 1.0) and np.all(p[:, 1] == 0.0)
    with pytest.raises(ValueError, match="finger 0 has one class only"):
        FingerClassifier("hgb", n_estimators=20).fit(x, b)


def test_predicted_state_and_its_confidence_from_the_finger_probabilities(data):
    clf = FingerClassifier("rf", n_estimators=5).fit(data[1], data[2])
    p = np.array([[0.9, 0.2, 0.5, 1.0, 0.0]])
    clf.proba = lambda r: p
    # a tie goes to "extended", as scikit-learn's predict (argmax picks the first class)
    assert clf.predict_bits(np.zeros((1, 3))).tolist() == [[1, 0, 0, 1, 0]]
    assert clf.confidence(np.zeros((1, 3))) == pytest.approx([0.9 * 0.8 * 0.5])


def test_template_probabilities_are_the_gaussian_posterior_over_states(data):
    from scipy.special import softmax

    from physml.magnets.hand import ALL_BITS

    templ = data[0]
    r = templ[[3, 17]] + np.array([[1.5, -2.0, 0.5], [4.0, 1.0, -3.0]])
    d2 = ((r[:, None, :] - templ[None]) ** 2).sum(-1)
    for noise in (2.0, 5.0):
        post = softmax(-d2 / (2 * noise**2), axis=1)  # equal priors over the 32 states
        np.testing.assert_allclose(TemplateClassifier(templ, noise).proba(r), post @ ALL_BITS,
                                   atol=1e-12)
    # far from every template each exp() alone underflows; the posterior is still defined
    far = TemplateClassifier(templ, 2.0).proba(templ[[3]] + 500.0)
    assert np.all(np.isfinite(far)) and np.all((far >= 0) & (far <= 1))


def test_per_finger_and_exact_match_on_a_hand_built_case():
    from physml.magnets.classify import per_finger_accuracy

    pred = np.array([[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 0, 0, 1]])
    true = np.array([[1, 0, 0, 0, 0], [1, 0, 0, 0, 0], [1, 0, 0, 0, 0]])
    np.testing.assert_allclose(per_finger_accuracy(pred, true), [2 / 3, 2 / 3, 1, 1, 2 / 3])
    assert exact_match(pred, true) == pytest.approx(1 / 3)
