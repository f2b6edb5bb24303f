"""Focal loss against hand-computed values and against torch's cross-entropy."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from physml.cnc.focal import focal_loss


def test_hand_computed_value():
    # logits (1, 0, -1) -> softmax p = e / (e + 1 + 1/e) for class 0
    logits = torch.tensor([[1.0, 0.0, -1.0]])
    p = math.e / (math.e + 1 + 1 / math.e)
    want = -((1 - p) ** 2) * math.log(p)
    assert float(focal_loss(logits, torch.tensor([0]), gamma=2.0)) == pytest.approx(want, rel=1e-6)


def test_two_samples_mean_by_hand():
    logits = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    p1, p2 = 0.5, 1 / (1 + math.exp(-3.0))
    want = 0.5 * (-(1 - p1) * math.log(p1) - (1 - p2) * math.log(p2))
    assert float(focal_loss(logits, torch.tensor([1, 0]), gamma=1.0)) == pytest.approx(want)


def test_gamma_zero_is_cross_entropy_with_ignore_and_weights():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 5, generator=g)
    y = torch.randint(0, 5, (50,), generator=g)
    y[::7] = -1
    w = torch.tensor([1.0, 2.0, 0.5, 3.0, 1.0])
    ce = F.cross_entropy(logits, y, ignore_index=-1, weight=w)
    assert float(focal_loss(logits, y, 0.0, ignore_index=-1, weight=w)) == pytest.approx(float(ce))


def test_larger_gamma_down_weights_easy_samples():
    logits = torch.tensor([[4.0, 0.0]])  # easy, correct
    y = torch.tensor([0])
    vals = [float(focal_loss(logits, y, g)) for g in (0.0, 1.0, 2.0, 3.0)]
    assert vals == sorted(vals, reverse=True) and vals[-1] < vals[0] / 100


def test_bad_gamma_and_shapes_raise():
    with pytest.raises(ValueError, match="gamma"):
        focal_loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), gamma=-1)
    with pytest.raises(ValueError, match="logits"):
        focal_loss(torch.zeros(2, 3, 4), torch.zeros(2, dtype=torch.long))


def _numpy_focal(logits, y, gamma, weight=None, ignore=None):
    """Independent reference: softmax and the focal term written out with numpy."""
    import numpy as np

    z = logits.numpy().astype(np.float64)
    t = y.numpy()
    keep = np.ones(len(t), bool) if ignore is None else t != ignore
    z, t = z[keep], t[keep]
    p = np.exp(z - z.max(1, keepdims=True))
    p = (p / p.sum(1, keepdims=True))[np.arange(len(t)), t]
    loss = -((1 - p) ** gamma) * np.log(p)
    w = np.ones(len(t)) if weight is None else weight.numpy()[t]
    return float((w * loss).sum() / w.sum())


def test_focal_with_ignored_targets_and_class_weights_against_numpy():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(40, 4, generator=g)
    y = torch.randint(0, 4, (40,), generator=g)
    y[::5] = -1
    w = torch.tensor([1.0, 3.0, 0.5, 2.0])
    got = float(focal_loss(logits, y, 2.0, ignore_index=-1, weight=w))
    assert got == pytest.approx(_numpy_focal(logits, y, 2.0, w, ignore=-1), rel=1e-5)
    got = float(focal_loss(logits, y, 2.0, ignore_index=-1))
    assert got == pytest.approx(_numpy_focal(logits, y, 2.0, ignore=-1), rel=1e-5)


def test_an_ignore_index_that_no_target_hits_changes_nothing():
    logits = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    y = torch.tensor([0, 1])
    assert float(focal_loss(logits, y, 0.0, ignore_index=-1)) == pytest.approx(
        float(F.cross_entropy(logits, y)))


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_every_target_ignored_gives_zero_loss_and_zero_gradient(gamma):
    logits = torch.randn(3, 4, requires_grad=True)
    loss = focal_loss(logits, torch.full((3,), -1), gamma, ignore_index=-1)
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros(3, 4))
