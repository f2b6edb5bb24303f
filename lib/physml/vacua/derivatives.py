"""Checks of the analytic derivatives: against JAX autodiff, against finite differences as a
function of the step, and the source's δ² Hessian defect near the |φ_i|_δ kinks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .jaxconfig import x64
from .potential import REGIMES, Potential, hess_source_defect, sample_potential, value_xp

_G = jax.jit(jax.grad(lambda x, P: value_xp(x, P, jnp)))
_H = jax.jit(jax.hessian(lambda x, P: value_xp(x, P, jnp)))


def _jparams(pot: Potential):
    return jax.tree_util.tree_map(jnp.asarray, pot.params)


def _rel(a, b) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def test_points(n: int, rng: np.random.Generator, kind: str) -> np.ndarray:
    """A point ``(n,)``: ``"random"`` φ ~ N(0, 1); ``"near_kink"`` half the coordinates within
    1e-6 of 0 (inside the kink of width sqrt(δ) = 1e-4), the rest N(0, 1)."""
    phi = rng.normal(0.0, 1.0, n)
    if kind == "near_kink":
        k = max(1, n // 2)
        phi[:k] = rng.uniform(-1e-6, 1e-6, k)
    elif kind != "random":
        raise ValueError(f"kind={kind!r}, expected 'random' or 'near_kink'")
    return phi


@x64
def autodiff_errors(n_values, n_potentials: int, rng: np.random.Generator) -> pd.DataFrame:
    """Max relative error (max-norm, relative to the autodiff value's max) of the analytic
    gradient, Hessian and Hessian-vector product vs JAX autodiff, for ``n_potentials`` potentials
    per n in ``n_values`` (regimes cycled), at a random point and a near-kink point.
    Rows: n, regime, point, grad_rel_err, hess_rel_err, hessp_rel_err."""
    rows = []
    for n in n_values:
        for k in range(n_potentials):
            regime = REGIMES[k % len(REGIMES)]
            pot = sample_potential(int(n), regime, rng)
            Pj = _jparams(pot)
            for kind in ("random", "near_kink"):
                phi = test_points(int(n), rng, kind)
                g = np.asarray(_G(jnp.asarray(phi), Pj))
                H = np.asarray(_H(jnp.asarray(phi), Pj))
                v = rng.normal(size=int(n))
                rows.append(dict(n=int(n), regime=regime, point=kind,
                                 grad_rel_err=_rel(pot.grad(phi), g),
                                 hess_rel_err=_rel(pot.hess(phi), H),
                                 hessp_rel_err=_rel(pot.hessp(phi, v), H @ v)))
    return pd.DataFrame(rows)


def fd_error_vs_step(pot: Potential, phi, steps) -> pd.DataFrame:
    """Central finite differences vs the analytic derivatives as a function of the step h.

    Gradient: (V(φ + h e_i) − V(φ − h e_i)) / 2h; Hessian: the same applied to the analytic
    gradient. Returns rows (h, grad_rel_err, hess_rel_err) with errors relative to the analytic
    max-norm."""
    phi = np.asarray(phi, float)
    n = phi.size
    g_ref, H_ref = pot.grad(phi), pot.hess(phi)
    rows = []
    for h in steps:
        E = np.eye(n) * h
        g_fd = np.array([(pot.value(phi + e) - pot.value(phi - e)) / (2 * h) for e in E])
        H_fd = np.array([(pot.grad(phi + e) - pot.grad(phi - e)) / (2 * h) for e in E])
        H_fd = 0.5 * (H_fd + H_fd.T)
        rows.append(dict(h=float(h), grad_rel_err=_rel(g_fd, g_ref),
                         hess_rel_err=_rel(H_fd, H_ref)))
    return pd.DataFrame(rows)


@x64
def source_defect(n_potentials: int, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """The source's δ² Hessian vs autodiff, and ours vs autodiff, at near-kink and random
    points. Rows: point, ours_rel_err, source_rel_err, source_missing_curvature (largest
    diagonal error, ≈ aE/sqrt(δ) at a kink)."""
    rows = []
    for k in range(n_potentials):
        pot = sample_potential(n, REGIMES[k % len(REGIMES)], rng)
        Pj = _jparams(pot)
        for kind in ("random", "near_kink"):
            phi = test_points(n, rng, kind)
            H = np.asarray(_H(jnp.asarray(phi), Pj))
            Hs = hess_source_defect(phi, pot.params)
            rows.append(dict(point=kind, ours_rel_err=_rel(pot.hess(phi), H),
                             source_rel_err=_rel(Hs, H),
                             source_missing_curvature=float(np.max(np.abs(np.diag(H - Hs))))))
    return pd.DataFrame(rows)


def fd_best(curves: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Best (smallest) finite-difference errors per point kind: columns point, h_best_grad,
    grad_rel_err, h_best_hess, hess_rel_err."""
    return pd.DataFrame([dict(point=k, h_best_grad=df.loc[df.grad_rel_err.idxmin(), "h"],
                              grad_rel_err=df.grad_rel_err.min(),
                              h_best_hess=df.loc[df.hess_rel_err.idxmin(), "h"],
                              hess_rel_err=df.hess_rel_err.min()) for k, df in curves.items()])
