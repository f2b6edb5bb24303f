"""Focal loss (Lin et al. 2017) for the CNC classifiers and the token decoder.

For a sample whose true class has predicted probability ``p``, the focal loss is
``-(1 - p)**gamma * log(p)``: ``gamma = 0`` is the cross-entropy, larger ``gamma`` down-weights
samples the model already gets right (the source used it against class imbalance).

>>> import torch
>>> logits = torch.tensor([[2.0, 0.0]])
>>> round(float(focal_loss(logits, torch.tensor([0]), gamma=0.0)), 4)  # == cross-entropy
0.1269
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 0.0,
               ignore_index: int | None = None, weight: torch.Tensor | None = None
               ) -> torch.Tensor:
    """Mean focal loss over the samples whose target is not ``ignore_index``.

    ``logits``: ``(n, k)`` unnormalised scores; ``target``: ``(n,)`` int class ids;
    ``gamma >= 0`` the focusing exponent (0 gives :func:`torch.nn.functional.cross_entropy`);
    ``weight``: optional ``(k,)`` per-class weights (the mean is then weighted like
    ``cross_entropy``'s: divided by the summed weights of the counted samples).
    Returns a scalar tensor; 0 when every target is ignored (nothing to learn from).
    """
    if gamma < 0:
        raise ValueError(f"focal_loss: gamma must be >= 0, got {gamma}")
    if logits.ndim != 2 or target.ndim != 1 or logits.shape[0] != target.shape[0]:
        raise ValueError(f"focal_loss: logits (n, k) and target (n,) expected, got "
                         f"{tuple(logits.shape)} and {tuple(target.shape)}")
    if gamma == 0:  # the fused kernel; identical by definition
        if ignore_index is not None and not bool((target != ignore_index).any()):
            return logits.sum() * 0.0
        return F.cross_entropy(logits, target, weight=weight,
                               ignore_index=-100 if ignore_index is None else ignore_index)
    if ignore_index is not None:
        keep = target != ignore_index
        logits, target = logits[keep], target[keep]
    if target.numel() == 0:
        return logits.sum() * 0.0
    logp = F.log_softmax(logits, dim=-1).gather(1, target[:, None])[:, 0]
    loss = -((1.0 - logp.exp()).clamp_min(0.0) ** gamma) * logp
    if weight is None:
        return loss.mean()
    w = weight[target]
    return (w * loss).sum() / w.sum()
