"""Analytic derivatives of the toy potential against JAX autodiff (independent), incl. φ_i ≈ 0."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physml.vacua.potential import (
    DELTA,
    REGIMES,
    grad_xp,
    hess_source_defect,
    hess_xp,
    hessp_xp,
    make_potential,
    sample_params,
    sample_potential,
    stack_potentials,
    value_xp,
)

_V = jax.jit(lambda x, P: value_xp(x, P, jnp))
_G = jax.jit(jax.grad(lambda x, P: value_xp(x, P, jnp)))
_H = jax.jit(jax.hessian(lambda x, P: value_xp(x, P, jnp)))


def _points(n, rng):
    random = rng.normal(0.0, 1.0, n)
    near0 = rng.choice([0.0, 1e-7, -1e-6, 3e-5, -1e-4, 0.7], size=n)
    return [random, near0, np.zeros(n)]


@pytest.mark.parametrize("regime", REGIMES)
@pytest.mark.parametrize("n", [1, 3, 8])
def test_grad_hess_hessp_match_jax_autodiff(regime, n):
    rng = np.random.default_rng(n)
    pot = sample_potential(n, regime, rng)
    for phi in _points(n, rng):
        x = jnp.asarray(phi)
        Pj = jax.tree_util.tree_map(jnp.asarray, pot.params)
        g_ad = np.asarray(_G(x, Pj))
        H_ad = np.asarray(_H(x, Pj))
        v = rng.normal(size=n)
        scale_g = np.abs(g_ad).max() + 1.0
        scale_h = np.abs(H_ad).max()
        np.testing.assert_allclose(pot.grad(phi), g_ad, rtol=0, atol=1e-12 * scale_g)
        np.testing.assert_allclose(pot.hess(phi), H_ad, rtol=0, atol=1e-11 * scale_h)
        np.testing.assert_allclose(pot.hessp(phi, v), H_ad @ v, rtol=0,
                                   atol=1e-11 * scale_h * np.abs(v).max())
        assert float(pot.value(phi)) == pytest.approx(float(_V(x, Pj)), rel=1e-14, abs=1e-14)


def test_value_formula_matches_issue_definition_written_out():
    rng = np.random.default_rng(3)
    pot = sample_potential(4, "runaway", rng)
    P = pot.params
    phi = rng.normal(size=4)
    absd = np.sqrt(phi**2 + DELTA)
    expected = (np.sum(P.M**2 * phi**2) + phi @ P.Lam @ phi + P.s * np.sum(phi**2) + P.c @ phi
                - P.A * np.exp(-P.a * absd.sum()) + P.D / (1 + phi @ phi) ** P.p
                + P.gamma * np.sum(phi**4))
    assert pot.value(phi) == pytest.approx(expected, rel=1e-14)


def test_source_delta_squared_hessian_is_wrong_at_the_kink_and_right_away_from_it():
    rng = np.random.default_rng(0)
    pot = sample_potential(3, "generic", rng)
    H_ad = lambda p: np.asarray(jax.hessian(pot.value_jax)(jnp.asarray(p)))  # noqa: E731
    at_kink = np.array([0.0, 0.5, -0.4])
    err = np.abs(hess_source_defect(at_kink, pot.params) - H_ad(at_kink))
    P = pot.params
    E = P.A * np.exp(-P.a * np.sqrt(at_kink**2 + DELTA).sum())
    # the missing curvature on the kinked diagonal entry is a E (δ − δ²)/δ^{3/2} ≈ a E / sqrt(δ)
    assert err[0, 0] == pytest.approx(P.a * E * (DELTA - DELTA**2) / DELTA**1.5, rel=1e-6)
    away = np.array([0.3, 0.5, -0.4])
    np.testing.assert_allclose(hess_source_defect(away, P), H_ad(away), atol=1e-6)


def _padded_batch(seed, sizes_regimes, n_pad):
    """Potentials of the given (n, regime), stacked to n_pad, and a random φ (0 in padding)."""
    rng = np.random.default_rng(seed)
    pots = [sample_potential(n, r, rng) for n, r in sizes_regimes]
    phi = np.zeros((len(pots), n_pad))
    for k, pot in enumerate(pots):
        phi[k, : pot.n] = rng.normal(size=pot.n)
    return pots, stack_potentials(pots, n_pad), phi, rng


def test_padded_batch_equals_unpadded_potentials():
    pots, P, phi, _ = _padded_batch(5, [(2, "generic"), (5, "runaway"), (3, "tachyonic")], 6)
    vals = value_xp(phi, P, np)
    for k, pot in enumerate(pots):
        x = jnp.asarray(phi[k, : pot.n])
        assert vals[k] == pytest.approx(float(pot.value_jax(x)), rel=1e-13)


@pytest.mark.parametrize("regime", REGIMES)
def test_sampler_ranges_follow_the_source_distribution(regime):
    rng = np.random.default_rng(1)
    n = 9
    pots = [sample_potential(n, regime, rng) for _ in range(200)]
    M = np.concatenate([p.params.M for p in pots])
    assert M.min() >= 1 and M.max() <= 3
    lam_on = np.mean([np.any(p.params.Lam != 0) for p in pots])
    assert 0.2 < lam_on < 0.4
    s = np.array([p.params.s for p in pots])
    c = np.array([np.abs(p.params.c).max() for p in pots])
    sq = np.sqrt(n)
    if regime == "stabilized":
        assert s.min() >= 0.05 * sq and s.max() <= 0.2 * sq
    elif regime == "tachyonic":
        assert s.min() >= -0.12 * sq and s.max() <= -0.02 * sq
    else:
        assert np.all(s == 0)
    assert (c.max() > 0) == (regime == "runaway")
    for f, lo, hi in [("A", 0.5, 2.5), ("a", 0.8, 2.5), ("D", 0, 0.5), ("p", 1, 2),
                      ("gamma", 0.1, 0.5)]:
        v = np.array([getattr(p.params, f) for p in pots])
        assert v.min() >= lo and v.max() <= hi


def test_batched_sampler_has_the_same_ranges_and_masks_padding():
    rng = np.random.default_rng(2)
    n = rng.integers(1, 7, 500)
    P = sample_params(n, np.array(["tachyonic"] * 500), rng, 8)
    assert np.all(P.mask.sum(1) == n)
    assert np.all(P.Lam[P.mask[:, :, None] * P.mask[:, None, :] == 0] == 0)
    assert np.all((P.s <= -0.02 * np.sqrt(n)) & (P.s >= -0.12 * np.sqrt(n)))


def test_sampler_rejects_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="regime"):
        sample_potential(3, "chaotic", rng)
    with pytest.raises(ValueError, match="n_moduli"):
        sample_potential(0, "generic", rng)
    with pytest.raises(ValueError, match="last dimension"):
        sample_potential(3, "generic", rng).value(np.zeros(4))


def test_padded_derivatives_equal_the_unpadded_ones_and_ignore_padded_directions():
    # ∇V, ∇²V and ∇²V·v of a padded batch: the real block is the unpadded potential's, the
    # padded rows/columns are 0, and a padded component of v changes nothing
    pots, P, phi, rng = _padded_batch(6, [(2, "generic"), (4, "runaway"), (3, "stabilized")], 5)
    v = rng.normal(size=(3, 5))  # nonzero in the padded slots too
    g, H, Hv = grad_xp(phi, P, np), hess_xp(phi, P, np), hessp_xp(phi, v, P, np)
    assert np.all(np.isfinite(Hv))
    for k, pot in enumerate(pots):
        n, x = pot.n, phi[k, : pot.n]
        np.testing.assert_allclose(g[k, :n], pot.grad(x), rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(H[k, :n, :n], pot.hess(x), rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(Hv[k, :n], pot.hess(x) @ v[k, :n], rtol=1e-12, atol=1e-12)
        assert np.all(g[k, n:] == 0) and np.all(H[k, n:] == 0) and np.all(H[k, :, n:] == 0)
        assert np.all(Hv[k, n:] == 0)


@pytest.mark.parametrize("regime", ["stabilized", "runaway"])
def test_batched_sampler_scales_with_the_square_root_of_n(regime):
    rng = np.random.default_rng(3)
    n = rng.integers(1, 9, 4000)
    P = sample_params(n, np.array([regime] * 4000), rng, 8)
    sq = np.sqrt(n)
    if regime == "stabilized":
        assert np.all((P.s >= 0.05 * sq) & (P.s <= 0.2 * sq))
        assert np.all(P.c == 0)
    else:  # c ~ N(0, σ²), σ ∈ [0.15, 0.35]·√n: the spread of c / √n is about 0.25
        assert np.all(P.s == 0)
        big = n == 8
        spread = np.std(P.c[big][:, :8]) / np.sqrt(8)
        assert 0.2 < spread < 0.3
    lam_on = np.mean(np.any(P.Lam != 0, axis=(1, 2))[n > 1])
    assert 0.25 < lam_on < 0.35  # Λ ≠ 0 with probability 0.3
    np.testing.assert_array_equal(P.Lam, P.Lam.transpose(0, 2, 1))
    assert 0.25 < np.abs(P.Lam).max() <= 0.3 and P.Lam.min() < -0.25  # the ±0.3 box, filled


def test_shape_and_size_checks_each_refuse_alone():
    M = np.ones(3)
    for bad in [dict(M=np.ones((3, 1))), dict(Lam=np.zeros((2, 2))), dict(c=np.zeros(2))]:
        kw = dict(M=M, Lam=None, s=0.0, c=None, A=0.0, a=1.0, D=0.0, p=1.0, gamma=0.0) | bad
        with pytest.raises(ValueError, match="shapes"):
            make_potential(**kw)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="stack_potentials"):
        stack_potentials([], 4)
    with pytest.raises(ValueError, match="stack_potentials"):
        stack_potentials([sample_potential(5, "generic", rng)], 4)
    assert stack_potentials([sample_potential(4, "generic", rng)], 4).mask.sum() == 4  # n = n_pad
    for n in ([], [0, 2], [3, 9]):
        with pytest.raises(ValueError, match="n_moduli must lie"):
            sample_params(np.array(n, int), np.array(["generic"] * len(n)), rng, 8)


def test_coefficient_checks_refuse_negative_and_non_finite_values_alone():
    kw = dict(M=np.ones(2), Lam=None, s=0.0, c=None, A=1.0, a=1.0, D=0.1, p=1.0, gamma=0.2)
    for name in ("A", "a", "D", "p", "gamma"):
        for bad in (-0.5, np.nan):
            with pytest.raises(ValueError, match=f"{name}="):
                make_potential(**(kw | {name: bad}))
    for name in ("A", "a", "D", "p", "gamma"):  # zero is allowed: that term switched off
        make_potential(**(kw | {name: 0.0}))
    rng = np.random.default_rng(0)
    assert sample_potential(64, "generic", rng).n == 64  # the largest n the sampler takes
    with pytest.raises(ValueError, match="n_moduli"):
        sample_potential(65, "generic", rng)
    P = sample_params(np.array([1, 8]), np.array(["generic"] * 2), rng, 8)  # n = n_pad accepted
    np.testing.assert_array_equal(P.mask.sum(1), [1, 8])


def test_sampled_couplings_are_symmetric_and_inside_the_source_box():
    rng = np.random.default_rng(4)
    lams = [sample_potential(5, "generic", rng).params.Lam for _ in range(300)]
    on = [L for L in lams if np.any(L != 0)]
    assert len(on) > 50
    for L in on:
        np.testing.assert_array_equal(L, L.T)
        assert np.abs(L).max() <= 0.3
    assert max(np.abs(L).max() for L in on) > 0.25  # the box is filled, not shrunk
