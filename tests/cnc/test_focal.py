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
