"""The geometry-coupled stability task: intersection form, exact Morse index against
hand-typed matrices and JAX autodiff, the Hessian-free rule, base-held-out splits, and model
selection on validation bases."""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from physml.vacua import coupled
from physml.vacua.geometry import Geometry
from physml.vacua.potential import PotentialParams, value_xp


def _pool_for(cycles, M2, s0, kappa):
    """A pool with fixed parameters on the given cycles (one potential per cycle)."""
    geoms = [Geometry(gid=k, self_int=tuple(c)) for k, c in enumerate(cycles)]
    pool = coupled.sample_pool(geoms, 1, np.random.default_rng(0))
    B, N = pool.mask.shape
    M2a = np.full((B, N), M2) * pool.mask
    s0a, ka = np.full(B, s0), np.full(B, kappa)
    Lam = np.zeros((B, N, N))
    for k, c in enumerate(cycles):
        Lam[k, :len(c), :len(c)] = kappa * coupled.intersection_matrix(c)
    P = pool.params._replace(M=np.sqrt(M2a), s=s0a, Lam=Lam)
    svals = pool.nodes[..., 0]
    diag = (M2a + s0a[:, None] + ka[:, None] * svals) * pool.mask
    return coupled.CoupledPool(P, pool.gid, ka, s0a, np.stack([svals, M2a, diag], -1),
                               pool.mask)


def test_intersection_matrix_of_hirzebruch_surface():
    # F_2: curves (0, 2, 0, −2) in cycle order, each meeting its two neighbours once
    expected = [[0, 1, 0, 1], [1, 2, 1, 0], [0, 1, 0, 1], [1, 0, 1, -2]]
    assert coupled.intersection_matrix((0, 2, 0, -2)).tolist() == expected
    with pytest.raises(ValueError, match="at least 3"):
        coupled.intersection_matrix((1, 1))


def test_coupling_makes_p2_unstable_where_the_diagonal_rule_sees_nothing():
    # P²: H/2 = (M² + s₀) 1 + κ J (J all ones): eigenvalues (M² + s₀) + 3κ once and M² + s₀
    # twice. M² = 0, s₀ = −0.1, κ = 0.2: diagonal −0.1 + 0.2 = +0.1 > 0 (rule: 0), exact
    # index 2 (two eigenvalues −0.1)
    pool = _pool_for([(1, 1, 1)], 0.0, -0.1, 0.2)
    assert coupled.morse_index(pool.params).tolist() == [2]
    assert coupled.diagonal_rule(pool).tolist() == [0]
    assert coupled.labels(pool).tolist() == [2]


def test_same_number_of_curves_different_base_different_label():
    # F_0 and F_2 (4 curves each) with the same M, s₀, κ: indices from hand-typed matrices
    m2, s0, k = 0.5, 0.2, 0.3  # F_0 stable (0.7 ± 0.6), F_2 not
    pool = _pool_for([(0, 0, 0, 0), (0, 2, 0, -2)], m2, s0, k)
    h_f0 = 2 * ((m2 + s0) * np.eye(4) + k * np.array([[0, 1, 0, 1], [1, 0, 1, 0],
                                                      [0, 1, 0, 1], [1, 0, 1, 0]]))
    h_f2 = 2 * ((m2 + s0) * np.eye(4) + k * np.array([[0, 1, 0, 1], [1, 2, 1, 0],
                                                      [0, 1, 0, 1], [1, 0, 1, -2]]))
    want = [int((np.linalg.eigvalsh(h) < 0).sum()) for h in (h_f0, h_f2)]
    assert coupled.morse_index(pool.params).tolist() == want
    assert want == [0, 1]


def test_morse_index_uses_the_autodiff_hessian_of_the_potential():
    g = [Geometry(gid=k, self_int=c) for k, c in
         enumerate([(1, 1, 1), (0, 3, 0, -3), (-1, -1, 0, 1, -1)])]
    pool = coupled.sample_pool(g, 3, np.random.default_rng(1))
    P = pool.params
    idx = coupled.morse_index(P)

    def v(phi, Pb):
        full = jnp.zeros(Pb.mask.shape[0]).at[: phi.shape[0]].set(phi)
        return value_xp(full, Pb, xp=jnp)

    hess = jax.jit(jax.hessian(v))  # autodiff of V itself, independent of hess_xp
    for b in range(len(pool)):
        r = int(pool.mask[b].sum())
        Pb = PotentialParams(*(jnp.asarray(np.asarray(x)[b]) for x in P))
        H = np.asarray(hess(jnp.zeros(r), Pb))
        assert idx[b] == int((np.linalg.eigvalsh(H) < -1e-12).sum())


def test_diagonal_rule_is_exact_when_gershgorin_discs_exclude_zero():
    # every |d_i| > 2κ (each row has two off-diagonal entries κ): no eigenvalue crosses 0,
    # so the uncoupled count is the exact index; flipping the rule's sign breaks this
    geoms = coupled.base_geometries(8)
    pool = coupled.sample_pool(geoms, 20, np.random.default_rng(2))
    d = np.where(pool.mask > 0, np.abs(pool.nodes[..., 2]), np.inf)
    safe = (d > 2 * pool.kappa[:, None] + 1e-12).all(1)
    assert safe.sum() > 50
    y, rule = coupled.labels(pool), coupled.diagonal_rule(pool)
    assert np.array_equal(rule[safe], y[safe])
    assert (rule[~safe] != y[~safe]).any()  # and the coupling matters elsewhere


def test_geometry_splits_hold_out_whole_bases():
    gid = np.repeat(np.arange(40), 5)
    fit, val, te = coupled.geometry_splits(gid, seed=3)
    assert len(fit) + len(val) + len(te) == len(gid)
    sides = [set(gid[ix]) for ix in (fit, val, te)]
    assert sides[0].isdisjoint(sides[1]) and sides[0].isdisjoint(sides[2])
    assert sides[1].isdisjoint(sides[2])
    assert len(sides[2]) == 10  # fold 0 of 4 group folds


def test_selection_uses_validation_not_test():
    res = pd.DataFrame([
        dict(model="tabular MLP", seed=0, split="validation", accuracy=0.9),
        dict(model="tabular MLP", seed=0, split="test", accuracy=0.5),
        dict(model="graph model", seed=0, split="validation", accuracy=0.8),
        dict(model="graph model", seed=0, split="test", accuracy=0.99),
    ])
    sel = coupled.selected_learned(res, models=("tabular MLP", "graph model"))
    assert sel.model.tolist() == ["tabular MLP"] and sel.accuracy.tolist() == [0.5]


def test_compare_models_runs_every_model_on_both_sides(tmp_path):
    geoms = coupled.base_geometries(6)
    pool = coupled.sample_pool(geoms, 4, np.random.default_rng(0))
    res = coupled.compare_models(pool, coupled.labels(pool), [0], epochs=1,
                                 out_dir=tmp_path, hidden=8)
    assert set(res.model) == set(coupled.LEARNED) | set(coupled.BASELINES)
    assert len(res) == 2 * len(set(res.model))
    assert res.accuracy.between(0, 1).all()
    hist = coupled.training_histories(0, out_dir=tmp_path)
    assert set(hist) == set(coupled.LEARNED)
    with pytest.raises(ValueError, match="labels"):
        coupled.compare_models(pool, [0, 1], [0], epochs=1, out_dir=tmp_path)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="max_rays"):
        coupled.base_geometries(40)
    with pytest.raises(ValueError, match="samples_per_geometry"):
        coupled.sample_pool([Geometry(0, (1, 1, 1))], 0, np.random.default_rng(0))


def test_compare_models_gives_each_network_its_inputs(monkeypatch, tmp_path):
    import torch

    from physml.vacua import graph

    seen, spy_rows = {}, {}

    def spy(model, data, tr, va, te, cfg, out_dir):
        seen[type(model).__name__ + str(data[4].shape[1])] = data
        spy_rows["fit"], spy_rows["sides"] = tr, te
        return {k: 0.5 for k in te}

    monkeypatch.setattr(graph, "_fit_eval", spy)
    pool = coupled.sample_pool(coupled.base_geometries(6), 3, np.random.default_rng(1))
    y = coupled.labels(pool)
    res = coupled.compare_models(pool, y, [0], epochs=1, out_dir=tmp_path)
    B, N, _ = pool.nodes.shape
    # the closed-form rows, scored on the same sides the networks were given
    rule, fit = coupled.diagonal_rule(pool), spy_rows["fit"]
    major = np.bincount(y[fit]).argmax()
    for side, ix in spy_rows["sides"].items():
        got = res.set_index(["model", "split"]).accuracy
        assert got["diagonal rule", side] == pytest.approx(np.mean(rule[ix] == y[ix]))
        assert got["majority class", side] == pytest.approx(np.mean(y[ix] == major))
    # negative diagonal entries, from the sampled parameters: M_i² + s₀ + κ s_i on real curves
    P, real = pool.params, pool.mask > 0
    d = np.asarray(P.M) ** 2 + pool.s0[:, None] + pool.kappa[:, None] * pool.nodes[..., 0]
    assert coupled.aggregate_features(pool).neg_diag.tolist() == ((d < 0) & real).sum(1).tolist()
    # tabular MLP: κ, s₀, n/N and every padded node slot (4 values each); the graph model: the
    # three scalars; graph + rule feature: the three and the diagonal rule's count
    assert set(seen) == {f"TabularMLP{3 + 4 * N}", "FanGNN3", "FanGNN4"}
    X, M, prev, nxt, S, _ = seen["FanGNN4"]
    want_prev, want_next = graph.cycle_links(pool.mask.sum(1), N)
    assert np.array_equal(prev.numpy(), want_prev) and np.array_equal(nxt.numpy(), want_next)
    tr = spy_rows["fit"]  # the rows each network is fitted on: its scalars standardised there
    for key in seen:
        S_fit = seen[key][4].numpy()[tr]
        live = S_fit.std(0) > 1e-6
        np.testing.assert_allclose(S_fit.mean(0), 0.0, atol=1e-5)
        np.testing.assert_allclose(S_fit.std(0)[live], 1.0, rtol=1e-4)
    np.testing.assert_allclose(np.corrcoef(S[:, 3].numpy(), rule.astype(float))[0, 1], 1.0,
                               atol=1e-6)
    assert torch.equal(M, torch.as_tensor(pool.mask, dtype=torch.float32))


def test_aggregate_features_by_hand_ignore_padding():
    # P² (3 curves of +1) beside F₁ (cycle 1, 0, −1, 0) padded to 4 slots
    geoms = [Geometry(0, (1, 1, 1)), Geometry(1, (0, 1, 0, -1))]
    pool = coupled.sample_pool(geoms, 1, np.random.default_rng(2))
    f = coupled.aggregate_features(pool)
    d, s, m = pool.nodes[..., 2], pool.nodes[..., 0], pool.mask > 0
    assert f.n.tolist() == [3, 4] and f.neg_curves.tolist() == [0, 1]
    assert f.min_s.tolist() == [1, -1] and f.sum_s.tolist() == [3, 0]
    np.testing.assert_allclose(f.mean_diag, [d[0, :3].mean(), d[1].mean()])
    np.testing.assert_allclose(f.min_diag, [d[0, :3].min(), d[1].min()])
    assert pool.nodes[0, 3].tolist() == [0, 0, 0] and not m[0, 3]
    # the diagonal entry is M_i² + s₀ + κ s_i on every real curve
    np.testing.assert_allclose(d[m], (pool.nodes[..., 1] + pool.s0[:, None]
                                       + pool.kappa[:, None] * s)[m])
    np.testing.assert_allclose(f.kappa, pool.kappa) and np.testing.assert_allclose(f.s0, pool.s0)


def test_base_geometries_from_three_rays_up():
    (p2,) = coupled.base_geometries(3)  # the only base with three curves: P²
    assert p2.self_int == (1, 1, 1) and p2.gid == 0
    for bad in (2, 17):
        with pytest.raises(ValueError, match="max_rays"):
            coupled.base_geometries(bad)
