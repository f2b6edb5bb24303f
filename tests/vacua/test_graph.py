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


def test_fan_tensors_encode_each_curve_and_point_padding_at_itself():
    import pytest

    g = Geometry(7, (-1, -2, -3, 0, 1))  # a cycle with every kind of curve (not a real fan)
    h = Geometry(8, (0, 0, 0))
    X, M, prev, nxt = fan_tensors([g, h], [8, 7, 8])
    assert X.shape == (3, 5, 3)
    np.testing.assert_allclose(X[1, :, 0].numpy(), np.array(g.self_int) / 12.0)
    assert X[1, :, 1].tolist() == [1, 0, 0, 0, 0]  # D² = −1
    assert X[1, :, 2].tolist() == [0, 1, 1, 0, 0]  # D² <= −2
    assert torch.equal(X[0], X[2]) and X[0, 3:].abs().sum() == 0  # rows of one geometry alike
    assert prev[0].tolist() == [2, 0, 1, 3, 4] and nxt[0].tolist() == [1, 2, 0, 3, 4]
    with pytest.raises(ValueError, match=r"\[9\]"):
        fan_tensors([g, h], [7, 9])


def _reference_forward(model, X, M, prev, nxt, scalars):
    """FanGNN written out with NumPy from the module's weights: ReLU input layer, rounds of
    h ← ReLU(S h + b + N (h[prev] + h[next])) on real nodes, then the mean over real nodes,
    the sum over all slots / slots, the scalars, and the two-layer head."""
    w = {k: v.detach().numpy().astype(np.float64) for k, v in model.state_dict().items()}
    x, m = X.numpy().astype(np.float64), M.numpy()[..., None].astype(np.float64)
    relu = lambda a: np.maximum(a, 0.0)  # noqa: E731
    h = relu(x @ w["inp.weight"].T + w["inp.bias"]) * m
    rows = np.arange(len(x))[:, None]
    for k in range(len(model.self_lin)):
        msg = h[rows, prev.numpy()] + h[rows, nxt.numpy()]
        h = relu(h @ w[f"self_lin.{k}.weight"].T + w[f"self_lin.{k}.bias"]
                 + msg @ w[f"nb_lin.{k}.weight"].T) * m
    pooled = [h.sum(1) / m.sum(1), h.sum(1) / x.shape[1]]
    if model.use_scalars:
        pooled.append(scalars.numpy())
    z = relu(np.concatenate(pooled, -1) @ w["head.0.weight"].T + w["head.0.bias"])
    return z @ w["head.2.weight"].T + w["head.2.bias"]


def test_fan_gnn_against_message_passing_written_out_by_hand():
    gs = [Geometry(0, (-1, -2, -1, -3, 0, 1)), Geometry(1, (1, 1, 1)), Geometry(2, (0, -1, 0, 1))]
    X, M, prev, nxt = fan_tensors(gs, [0, 1, 2, 1])
    scalars = torch.linspace(-1, 1, 8).reshape(4, 2)
    for use_scalars in (True, False):
        torch.manual_seed(1)
        model = FanGNN(3, 2, 4, hidden=8, layers=2, use_scalars=use_scalars).eval()
        with torch.no_grad():
            got = model(X, M, prev, nxt, scalars).numpy()
        np.testing.assert_allclose(got, _reference_forward(model, X, M, prev, nxt, scalars),
                                   rtol=1e-5, atol=1e-6)
    torch.manual_seed(1)
    default = FanGNN(3, 2, 4).eval()  # reads the potential's scalars unless told not to
    with torch.no_grad():
        assert not torch.allclose(default(X, M, prev, nxt, scalars),
                                  default(X, M, prev, nxt, scalars + 1))


def test_compare_graph_tabular_scores_every_model_on_held_out_geometries(tmp_path):
    import pandas as pd

    from physml.vacua.active_learning import COUNT_FEATURES, POTENTIAL_FEATURES
    from physml.vacua.graph import compare_graph_tabular, training_histories

    rng = np.random.default_rng(0)
    gs = [Geometry(i, canonical_cycle(tuple(rng.integers(-2, 2, 3)))) for i in range(12)]
    gid = np.repeat(np.arange(12), 10)
    cols = list(POTENTIAL_FEATURES) + list(COUNT_FEATURES)
    feats = pd.DataFrame(rng.normal(5.0, 3.0, (len(gid), len(cols))), columns=cols)
    labels = np.full(len(gid), 2)  # one class everywhere: every honest model scores 1
    labels[:3] = 0
    rule = labels.copy()
    df = compare_graph_tabular(gs, gid, feats, labels, seeds=[3], epochs=15, out_dir=tmp_path,
                               rule=rule)
    assert df.model.tolist() == ["graph + coefficients", "graph only", "tabular MLP",
                                 "majority class", "closed-form rule"]
    assert set(df.seed) == {3}
    acc = dict(zip(df.model, df.accuracy, strict=True))
    assert acc["closed-form rule"] == 1.0
    assert 0.9 <= acc["majority class"] <= 1.0
    assert min(acc[m] for m in ("graph + coefficients", "graph only", "tabular MLP")) > 0.85
    hist = training_histories(3, tmp_path)  # one history per neural model, by name
    assert set(hist) == {"graph + coefficients", "graph only", "tabular MLP"}
    assert (tmp_path / "seed3" / "graph_and_coefficients" / "history.json").exists()
    no_rule = compare_graph_tabular(gs, gid, feats, labels, seeds=[3], epochs=1,
                                    out_dir=tmp_path / "b")
    assert "closed-form rule" not in set(no_rule.model)


def test_compare_graph_tabular_standardises_on_training_rows_and_holds_out_geometries(
        monkeypatch, tmp_path):
    import pandas as pd

    from physml.vacua import graph
    from physml.vacua.active_learning import COUNT_FEATURES, POTENTIAL_FEATURES

    seen = []

    def spy(model, data, tr, va, te, cfg, out_dir):  # no training: what each model is given
        seen.append((type(model).__name__, data, tr, va, te, cfg))
        return 0.5

    monkeypatch.setattr(graph, "_fit_eval", spy)
    rng = np.random.default_rng(1)
    gs = [Geometry(i, canonical_cycle(tuple(rng.integers(-2, 2, 3)))) for i in range(15)]
    gid = np.repeat(np.arange(15), 4)
    cols = list(POTENTIAL_FEATURES) + list(COUNT_FEATURES)
    feats = pd.DataFrame(rng.normal(1e3, 50.0, (len(gid), len(cols))), columns=cols)
    graph.compare_graph_tabular(gs, gid, feats, np.zeros(len(gid), int), seeds=[0, 5],
                                epochs=7, out_dir=tmp_path)
    assert [s[0] for s in seen] == ["FanGNN", "FanGNN", "TabularMLP"] * 2
    for _, data, tr, va, te, cfg in seen:
        S = data[4].numpy().astype(np.float64)
        np.testing.assert_allclose(S[tr].mean(0), 0.0, atol=1e-4)  # the training rows' scale
        np.testing.assert_allclose(S[tr].std(0), 1.0, rtol=1e-4)
        assert abs(S[te].mean()) < 1.0  # the test rows on that same scale
        sides = [set(gid[ix]) for ix in (tr, va, te)]
        assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
        assert sorted(np.r_[tr, va, te].tolist()) == list(range(len(gid)))
        assert cfg.epochs == 7
    assert {s[5].seed for s in seen} == {0, 5}
    assert not np.array_equal(seen[0][4], seen[3][4])  # each seed its own split


def test_cycle_links_against_brute_force():
    from physml.vacua.graph import cycle_links

    n = np.array([3, 5, 1, 4])
    prev, nxt = cycle_links(n, 6)
    assert prev.shape == nxt.shape == (4, 6) and prev.dtype == np.int64
    for b, k in enumerate(n):
        for i in range(6):
            want_prev = (i - 1) % k if i < k else i  # padding links to itself
            want_next = (i + 1) % k if i < k else i
            assert (prev[b, i], nxt[b, i]) == (want_prev, want_next), (k, i)
