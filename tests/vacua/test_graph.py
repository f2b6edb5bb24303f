"""Graph baseline: padded cycle graphs and the rotation invariance of cycle message passing."""

import numpy as np
import torch

from physml.vacua.geometry import Geometry, canonical_cycle
from physml.vacua.graph import FanGNN, fan_tensors


def test_fan_tensors_link_neighbours_and_mask_padding():
    g1 = Geometry(0, canonical_cycle((1, 1, 1)))
    g2 = Geometry(1, canonical_cycle((0, -1, 0, 1)))
    X, M, prev, nxt = fan_tensors([g1, g2], [1, 0])
    assert X.shape == (2, 4, 3) and M.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert prev[1, :3].tolist() == [2, 0, 1] and nxt[1, :3].tolist() == [1, 2, 0]
    np.testing.assert_allclose(X[0, :, 0].numpy() * 12, g2.self_int)


def test_message_passing_is_invariant_under_rotating_and_reflecting_the_cycle():
    s = (-1, -2, -1, -3, 0, 1)  # any cycle: the model must not care where it starts
    rot = s[2:] + s[:2]
    ref = s[::-1]
    gs = [Geometry(0, s), Geometry(1, rot), Geometry(2, ref)]
    X, M, prev, nxt = fan_tensors(gs, [0, 1, 2])
    torch.manual_seed(0)
    model = FanGNN(3, 2, 4)
    model.eval()
    with torch.no_grad():
        out = model(X, M, prev, nxt, torch.zeros(3, 2))
    torch.testing.assert_close(out[0], out[1], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[0], out[2], atol=1e-5, rtol=0)
