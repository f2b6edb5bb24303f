"""The source study's toy effective potential for n moduli, with analytic derivatives.

    V(φ) = Σ M_i² φ_i² + φᵀΛφ + s Σ φ_i² + c·φ − A exp(−a Σ_i |φ_i|_δ) + D / (1 + |φ|²)^p
           + γ Σ φ_i⁴,           |x|_δ = sqrt(x² + δ),  δ = 1e-8.

All quantities are dimensionless (φ in units of the moduli's natural scale, V in units of the
potential's scale). The formulas are written once against an array namespace ``xp`` (NumPy or
jax.numpy), batched over any leading dimensions, and a mask ``(..., n)`` lets potentials of
different n share one padded array (padded coordinates must hold φ = 0).

Derivatives of the exponential term, with r_i = sqrt(φ_i² + δ), u_i = φ_i / r_i, E = A e^{−aΣr}:
    ∂_i = a E u_i,     ∂_i∂_j = a E (δ_ij δ / r_i³ − a u_i u_j).
The source wrote δ² / r_i³ in the diagonal term; :func:`hess_source_defect` reproduces that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

DELTA = 1e-8
REGIMES = ("generic", "stabilized", "tachyonic", "runaway")
REGIME_WEIGHTS = (0.55, 0.25, 0.15, 0.05)


class PotentialParams(NamedTuple):
    """Parameters of one potential or a padded batch (a JAX pytree).

    Shapes with batch dims ``...``: M ``(..., n)``, Lam ``(..., n, n)`` symmetric, s ``(...)``,
    c ``(..., n)``, A, a, D, p, gamma ``(...)``, mask ``(..., n)`` (1 = real modulus, 0 = padding).
    """

    M: object
    Lam: object
    s: object
    c: object
    A: object
    a: object
    D: object
    p: object
    gamma: object
    mask: object


def _exp_parts(phi, P: PotentialParams, xp, delta: float):
    r = xp.sqrt(phi * phi + delta)
    S = xp.sum(P.mask * r, axis=-1)
    E = P.A * xp.exp(-P.a * S)
    return r, E


def value_xp(phi, P: PotentialParams, xp=np, delta: float = DELTA):
    """V(φ), shape ``(...)`` for φ ``(..., n)``; ``xp`` is numpy or jax.numpy (traceable)."""
    q = xp.sum(phi * phi, axis=-1)
    quad = xp.sum((P.M * P.M + P.s[..., None]) * phi * phi, axis=-1)
    mix = xp.einsum("...i,...ij,...j->...", phi, P.Lam, phi)
    lin = xp.sum(P.c * phi, axis=-1)
    _, E = _exp_parts(phi, P, xp, delta)
    rat = P.D / (1.0 + q) ** P.p
    quart = P.gamma * xp.sum(phi**4, axis=-1)
    return quad + mix + lin - E + rat + quart


def grad_xp(phi, P: PotentialParams, xp=np, delta: float = DELTA):
    """∇V, shape ``(..., n)`` (masked coordinates get 0)."""
    q = xp.sum(phi * phi, axis=-1)
    r, E = _exp_parts(phi, P, xp, delta)
    g = 2.0 * (P.M * P.M + P.s[..., None]) * phi
    g = g + 2.0 * xp.einsum("...ij,...j->...i", P.Lam, phi) + P.c
    g = g + (P.a * E)[..., None] * (phi / r)
    g = g - (2.0 * P.p * P.D * (1.0 + q) ** (-P.p - 1.0))[..., None] * phi
    g = g + 4.0 * P.gamma[..., None] * phi**3
    return g * P.mask


def _hess_xp(phi, P: PotentialParams, xp, delta: float, delta_diag: float):
    n = phi.shape[-1]
    eye = xp.eye(n)
    q = xp.sum(phi * phi, axis=-1)
    r, E = _exp_parts(phi, P, xp, delta)
    u = phi / r * P.mask
    aE = (P.a * E)[..., None]
    diag = 2.0 * (P.M * P.M + P.s[..., None])
    diag = diag + aE * delta_diag / r**3
    diag = diag - (2.0 * P.p * P.D * (1.0 + q) ** (-P.p - 1.0))[..., None]
    diag = diag + 12.0 * P.gamma[..., None] * phi**2
    H = eye * (diag * P.mask)[..., None, :] + 2.0 * P.Lam
    H = H - (P.a * aE[..., 0])[..., None, None] * u[..., :, None] * u[..., None, :]
    rat2 = 4.0 * P.p * (P.p + 1.0) * P.D * (1.0 + q) ** (-P.p - 2.0)
    H = H + rat2[..., None, None] * phi[..., :, None] * phi[..., None, :]
    m2 = P.mask[..., :, None] * P.mask[..., None, :]
    return H * m2


def hess_xp(phi, P: PotentialParams, xp=np, delta: float = DELTA):
    """Hessian ∇²V, shape ``(..., n, n)``; rows/columns of masked coordinates are 0."""
    return _hess_xp(phi, P, xp, delta, delta)


def hessp_xp(phi, v, P: PotentialParams, xp=np, delta: float = DELTA):
    """Hessian-vector product ∇²V · v without forming the Hessian, shape ``(..., n)``."""
    q = xp.sum(phi * phi, axis=-1)
    r, E = _exp_parts(phi, P, xp, delta)
    v = v * P.mask
    u = phi / r * P.mask
    aE = (P.a * E)[..., None]
    diag = 2.0 * (P.M * P.M + P.s[..., None]) + aE * delta / r**3
    diag = diag - (2.0 * P.p * P.D * (1.0 + q) ** (-P.p - 1.0))[..., None]
    diag = diag + 12.0 * P.gamma[..., None] * phi**2
    out = diag * v + 2.0 * xp.einsum("...ij,...j->...i", P.Lam, v)
    out = out - P.a[..., None] * aE * u * xp.sum(u * v, axis=-1)[..., None]
    rat2 = 4.0 * P.p * (P.p + 1.0) * P.D * (1.0 + q) ** (-P.p - 2.0)
    out = out + rat2[..., None] * phi * xp.sum(phi * v, axis=-1)[..., None]
    return out * P.mask


def hess_source_defect(phi, P: PotentialParams, delta: float = DELTA) -> np.ndarray:
    """The source study's Hessian ``(..., n, n)``: δ² instead of δ in the |φ_i|_δ curvature.

    Kept only to demonstrate the defect (notebook 01); it disagrees with finite differences by
    ≈ aE/sqrt(δ) on the diagonal where φ_i ≈ 0.
    """
    return _hess_xp(np.asarray(phi, float), P, np, delta, delta**2)


@dataclass(frozen=True)
class Potential:
    """One sampled potential on ``n`` moduli (NumPy arrays, float64), with its regime label.

    Methods take φ of shape ``(n,)`` (or ``(..., n)``) and return V ``()``, ∇V ``(n,)``,
    ∇²V ``(n, n)``, ∇²V·v ``(n,)``.
    """

    params: PotentialParams
    regime: str

    @property
    def n(self) -> int:
        return int(np.shape(self.params.M)[-1])

    def _check(self, phi) -> np.ndarray:
        phi = np.asarray(phi, dtype=float)
        if phi.shape[-1] != self.n:
            raise ValueError(f"phi has last dimension {phi.shape[-1]}, expected n={self.n}")
        return phi

    def value(self, phi) -> float:
        return value_xp(self._check(phi), self.params, np)

    def value_jax(self, phi):
        """V(φ) with jax.numpy (differentiable with jax.grad / jax.hessian).

        The caller chooses the precision: wrap the call (and any jax.grad / jax.hessian of it)
        in ``jax.enable_x64(True)`` for float64, as the study's own kernels do."""
        import jax
        import jax.numpy as jnp

        Pj = jax.tree_util.tree_map(jnp.asarray, self.params)
        return value_xp(phi, Pj, jnp)

    def grad(self, phi) -> np.ndarray:
        return grad_xp(self._check(phi), self.params, np)

    def hess(self, phi) -> np.ndarray:
        return hess_xp(self._check(phi), self.params, np)

    def hessp(self, phi, v) -> np.ndarray:
        return hessp_xp(self._check(phi), np.asarray(v, float), self.params, np)


def make_potential(M, Lam, s, c, A, a, D, p, gamma, regime: str = "custom") -> Potential:
    """Build a :class:`Potential` from coefficients: M ``(n,)``, Lam ``(n, n)``, c ``(n,)``.

    Raises ValueError on inconsistent shapes, a non-symmetric Λ, or A, a, D, p, γ outside their
    physical ranges (a, p, γ, A must be >= 0; D >= 0).
    """
    M = np.asarray(M, float)
    n = M.shape[0]
    Lam = np.zeros((n, n)) if Lam is None else np.asarray(Lam, float)
    c = np.zeros(n) if c is None else np.asarray(c, float)
    if M.ndim != 1 or Lam.shape != (n, n) or c.shape != (n,):
        raise ValueError(f"shapes: M {M.shape}, Lam {Lam.shape}, c {c.shape}; "
                         "expected (n,), (n, n), (n,)")
    if not np.allclose(Lam, Lam.T):
        raise ValueError("Lam must be symmetric")
    for name, val in dict(A=A, a=a, D=D, p=p, gamma=gamma).items():
        if not np.isfinite(val) or val < 0:
            raise ValueError(f"{name}={val} must be finite and >= 0")
    P = PotentialParams(M, Lam, np.float64(s), c, np.float64(A), np.float64(a), np.float64(D),
                        np.float64(p), np.float64(gamma), np.ones(n))
    return Potential(P, regime)


def sample_potential(n_moduli: int, regime: str, rng: np.random.Generator) -> Potential:
    """Draw one potential from the source's distribution for the given regime.

    M_i ~ U[1, 3]; Λ = sym(U[−0.3, 0.3]^{n×n}) with probability 0.3 else 0; A ~ U[0.5, 2.5];
    a ~ U[0.8, 2.5]; D ~ U[0, 0.5]; p ~ U[1, 2]; γ ~ U[0.1, 0.5]. Regimes: generic (s = c = 0),
    stabilized (s = U[0.05, 0.2]·√n), tachyonic (s = −U[0.02, 0.12]·√n), runaway
    (c ~ N(0, σ²), σ = U[0.15, 0.35]·√n). ``n_moduli`` in [1, 64].
    """
    if not 1 <= int(n_moduli) <= 64:
        raise ValueError(f"n_moduli={n_moduli} outside [1, 64]")
    if regime not in REGIMES:
        raise ValueError(f"regime={regime!r}, expected one of {REGIMES}")
    n = int(n_moduli)
    M = rng.uniform(1.0, 3.0, n)
    if rng.uniform() < 0.3:
        B = rng.uniform(-0.3, 0.3, (n, n))
        Lam = 0.5 * (B + B.T)
    else:
        Lam = np.zeros((n, n))
    A = rng.uniform(0.5, 2.5)
    a = rng.uniform(0.8, 2.5)
    D = rng.uniform(0.0, 0.5)
    p = rng.uniform(1.0, 2.0)
    gamma = rng.uniform(0.1, 0.5)
    s, c = 0.0, np.zeros(n)
    if regime == "stabilized":
        s = rng.uniform(0.05, 0.2) * np.sqrt(n)
    elif regime == "tachyonic":
        s = -rng.uniform(0.02, 0.12) * np.sqrt(n)
    elif regime == "runaway":
        sigma = rng.uniform(0.15, 0.35) * np.sqrt(n)
        c = rng.normal(0.0, sigma, n)
    return make_potential(M, Lam, s, c, A, a, D, p, gamma, regime)


def sample_regime(rng: np.random.Generator, size: int | None = None):
    """Regime name(s) drawn from the mixture generic/stabilized/tachyonic/runaway =
    0.55/0.25/0.15/0.05."""
    idx = rng.choice(len(REGIMES), size=size, p=REGIME_WEIGHTS)
    return REGIMES[idx] if size is None else [REGIMES[i] for i in np.atleast_1d(idx)]


def sample_mixture(n_moduli, rng: np.random.Generator) -> list[Potential]:
    """One potential per entry of ``n_moduli`` ``(m,)`` with regimes from the mixture."""
    n_moduli = np.atleast_1d(np.asarray(n_moduli, dtype=int))
    regimes = sample_regime(rng, size=len(n_moduli))
    return [sample_potential(int(n), r, rng) for n, r in zip(n_moduli, regimes, strict=True)]


def stack_potentials(potentials: list[Potential], n_pad: int) -> PotentialParams:
    """Pad a list of potentials to ``n_pad`` moduli: arrays with leading batch dim ``(B, ...)``."""
    B = len(potentials)
    ns = np.array([pot.n for pot in potentials])
    if B == 0:
        raise ValueError("stack_potentials: no potentials to stack")
    if ns.max() > n_pad:
        raise ValueError(f"stack_potentials: need 1 <= n <= n_pad={n_pad}, got n up to {ns.max()}")
    M = np.ones((B, n_pad))
    Lam = np.zeros((B, n_pad, n_pad))
    c = np.zeros((B, n_pad))
    mask = np.zeros((B, n_pad))
    for k, pot in enumerate(potentials):
        n = pot.n
        M[k, :n] = pot.params.M
        Lam[k, :n, :n] = pot.params.Lam
        c[k, :n] = pot.params.c
        mask[k, :n] = 1.0
    sc = {f: np.array([float(getattr(pot.params, f)) for pot in potentials])
          for f in ("s", "A", "a", "D", "p", "gamma")}
    return PotentialParams(M, Lam, sc["s"], c, sc["A"], sc["a"], sc["D"], sc["p"], sc["gamma"],
                           mask)


def sample_params(n_moduli, regimes, rng: np.random.Generator, n_pad: int) -> PotentialParams:
    """Vectorised :func:`sample_potential` for a batch, padded to ``n_pad`` moduli.

    n_moduli ``(B,)`` ints in [1, n_pad]; regimes ``(B,)`` names from :data:`REGIMES`.
    Same distributions as :func:`sample_potential` (different random stream). Returns
    :class:`PotentialParams` with batch dim ``(B, ...)``.
    """
    n = np.asarray(n_moduli, dtype=np.int64)
    regimes = np.asarray(regimes)
    B = n.shape[0]
    if regimes.shape != (B,):
        raise ValueError(f"regimes has shape {regimes.shape}, expected ({B},)")
    if B == 0:
        raise ValueError("sample_params: n_moduli must lie in [1, n_pad]; got no entries")
    if n.min() < 1 or n.max() > n_pad:
        raise ValueError(f"n_moduli must lie in [1, n_pad={n_pad}], got [{n.min()}, {n.max()}]")
    unknown = set(np.unique(regimes)) - set(REGIMES)
    if unknown:
        raise ValueError(f"unknown regimes {sorted(unknown)}, expected {REGIMES}")
    mask = (np.arange(n_pad)[None, :] < n[:, None]).astype(float)
    M = np.where(mask > 0, rng.uniform(1.0, 3.0, (B, n_pad)), 1.0)
    U = rng.uniform(-0.3, 0.3, (B, n_pad, n_pad))
    has_lam = rng.uniform(size=B) < 0.3
    Lam = 0.5 * (U + U.transpose(0, 2, 1)) * (mask[:, :, None] * mask[:, None, :])
    Lam *= has_lam[:, None, None]
    A = rng.uniform(0.5, 2.5, B)
    a = rng.uniform(0.8, 2.5, B)
    D = rng.uniform(0.0, 0.5, B)
    p = rng.uniform(1.0, 2.0, B)
    gamma = rng.uniform(0.1, 0.5, B)
    sq = np.sqrt(n)
    s = np.zeros(B)
    st, ta, ru = regimes == "stabilized", regimes == "tachyonic", regimes == "runaway"
    s[st] = rng.uniform(0.05, 0.2, st.sum()) * sq[st]
    s[ta] = -rng.uniform(0.02, 0.12, ta.sum()) * sq[ta]
    sigma = rng.uniform(0.15, 0.35, B) * sq
    c = rng.normal(0.0, 1.0, (B, n_pad)) * sigma[:, None] * mask * ru[:, None]
    return PotentialParams(M, Lam, s, c, A, a, D, p, gamma, mask)
