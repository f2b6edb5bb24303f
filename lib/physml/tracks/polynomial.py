"""The simplest fitted surrogate: the kick prior plus a linear least-squares model on polynomial
features — the baseline a network has to beat.

A linear model on polynomial features is the simplest fitted model that could work, so the
benchmark carries one. At a fixed end plane the end state is

    state = kick(u) + (q/p) * sum_k c_k phi_k(u)

with ``kick`` the single-kick prior (:func:`physml.tracks.priors.kick_numpy`), the residual
scaled per track by q/p (as the ``/qp`` hybrids), and ``phi_k`` products of Legendre
polynomials of the five inputs, each mapped to [-1, 1] by the half-range seen in training:
``P_i(x) P_j(y) P_k(tx) P_l(ty)`` with ``i + j + k + l <= degree``, times ``P_m(q/p)`` with
``m <= qop_degree``. The coefficients ``c`` (features x 4 outputs) solve the least-squares
normal equations of the training tracks, accumulated in chunks (a million tracks fit in the
memory of the features squared) — no iteration, no seed.

Only the end plane it was fitted at: :meth:`PolynomialSurrogate.predict` refuses another dz.
Prediction builds the monomials chunk by chunk (:data:`CHUNK` tracks, so they stay in cache)
and takes one matrix product with the coefficients per chunk; notebook 05 times it.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import legendre

from physml.tracks.priors import KickTable, kick_numpy

FIT_CHUNK = 20_000  # tracks per block of the normal equations in :meth:`PolynomialSurrogate.fit`
CHUNK = 1024  # tracks per block of :meth:`PolynomialSurrogate.predict` (its monomials fit in L2)


def exponents(degree: int) -> np.ndarray:
    """Exponent tuples ``(i, j, k, l)`` of the geometric monomials, total degree <= ``degree``,
    in a fixed order. Shape ``(n_base, 4)``."""
    if degree < 0:
        raise ValueError(f"degree must be >= 0, got {degree}")
    return np.array([e for e in itertools.product(range(degree + 1), repeat=4)
                     if sum(e) <= degree], dtype=np.int64).reshape(-1, 4)


@functools.cache
def _pair_index(degree: int) -> tuple[np.ndarray, ...]:
    """Index arrays of the row-wise monomial build: ``pi, pj`` the degrees of the pairs
    ``(i, j)``, ``i + j <= degree``; ``ia, ib`` the pair of each :func:`exponents` row's
    ``(i, j)`` and ``(k, l)``."""
    pairs = [(i, j) for i in range(degree + 1) for j in range(degree + 1 - i)]
    at = {p: k for k, p in enumerate(pairs)}
    e = exponents(degree)
    return (np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]),
            np.array([at[(a, b)] for a, b, _, _ in e]), np.array([at[(c, d)] for _, _, c, d in e]))


def _legendre_columns(v: np.ndarray, degree: int) -> np.ndarray:
    """``(n, degree + 1)``: P_0(v) .. P_degree(v)."""
    return legendre.legvander(v, degree)


@dataclass
class PolynomialSurrogate:
    """A fitted kick + polynomial model. ``scale`` (5,) half-ranges of the inputs, ``coef``
    ``(n_base * (qop_degree + 1), 4)`` (feature order: geometric monomial major, q/p degree
    minor), ``dz_mm`` the end-plane distance it was fitted at, ``table`` the kick table."""

    degree: int
    qop_degree: int
    scale: np.ndarray
    coef: np.ndarray
    dz_mm: float
    table: KickTable
    z0_mm: float = 0.0

    @property
    def n_features(self) -> int:
        return len(exponents(self.degree)) * (self.qop_degree + 1)

    @classmethod
    def fit(cls, initial: np.ndarray, dz: np.ndarray, final: np.ndarray, table: KickTable,
            degree: int = 4, qop_degree: int = 4, z0_mm: float = 0.0) -> PolynomialSurrogate:
        """Least squares on training tracks: ``initial`` (n, 5) ``(x, y, tx, ty, q/p)``,
        ``dz`` (n,) mm, all equal, ``final`` (n, >= 4). Raises ``ValueError`` naming the
        problem for unequal dz, non-finite values, q/p = 0, or fewer tracks than features."""
        initial, final = np.asarray(initial, float), np.asarray(final, float)
        dz = np.asarray(dz, float)
        if qop_degree < 0:
            raise ValueError(f"qop_degree must be >= 0, got {qop_degree}")
        n_feat = len(exponents(degree)) * (qop_degree + 1)
        _check(initial, dz, "fit")
        if not np.all(np.isfinite(final[:, :4])):
            bad = int(np.flatnonzero(~np.isfinite(final[:, :4]).all(1))[0])
            raise ValueError(f"PolynomialSurrogate.fit: final state of track {bad} is not finite")
        if len(initial) < n_feat:
            raise ValueError(f"PolynomialSurrogate.fit: {len(initial)} tracks for {n_feat} "
                             f"features (degree {degree}, qop_degree {qop_degree})")
        if np.ptp(dz) > 1e-9 * max(1.0, abs(dz[0])):
            raise ValueError(f"PolynomialSurrogate.fit: one end plane only, got dz from "
                             f"{dz.min():g} to {dz.max():g} mm")
        scale = np.abs(initial).max(0)
        scale[scale == 0] = 1.0
        model = cls(degree, qop_degree, scale, np.zeros((n_feat, 4)), float(dz[0]), table, z0_mm)
        target = (final[:, :4] - kick_numpy(initial, dz, table, z0_mm)) / initial[:, 4:5]
        # normal equations accumulated over chunks (memory O(features^2) whatever the number
        # of tracks); the Legendre basis keeps them well conditioned on the near-uniform inputs
        gram, rhs = np.zeros((n_feat, n_feat)), np.zeros((n_feat, 4))
        for s in range(0, len(initial), FIT_CHUNK):
            A = model.features(initial[s:s + FIT_CHUNK])
            gram += A.T @ A
            rhs += A.T @ target[s:s + FIT_CHUNK]
        model.coef = np.linalg.lstsq(gram, rhs, rcond=None)[0]
        return model

    def features(self, initial: np.ndarray) -> np.ndarray:
        """The design matrix ``(n, n_features)`` of ``initial`` (n, 5)."""
        base, q = self._basis(initial)
        return (base[:, None, :] * q[None, :, :]).reshape(-1, len(initial)).T

    def _basis(self, initial: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Geometric monomials ``(n_base, n)`` and q/p Legendre rows ``(qop_degree + 1, n)``.
        Built row-wise (contiguous rows): P_i(x) P_j(y) and P_k(tx) P_l(ty) for every pair
        of total degree <= degree, then one product per monomial."""
        v = np.ascontiguousarray((np.asarray(initial, float) / self.scale).T)
        P = [np.ascontiguousarray(_legendre_columns(v[a], self.degree).T) for a in range(4)]
        pi, pj, ia, ib = _pair_index(self.degree)
        geo_xy, geo_t = P[0][pi] * P[1][pj], P[2][pi] * P[3][pj]
        return geo_xy[ia] * geo_t[ib], _legendre_columns(v[4], self.qop_degree).T

    def predict(self, initial: np.ndarray, dz: np.ndarray) -> np.ndarray:
        """End states ``(n, 4)`` for ``initial`` (n, 5) at ``dz`` (n,) mm, which must be the
        fitted plane's distance (``ValueError`` otherwise, naming it). Inputs outside the
        training tracks' ranges (``scale``) are extrapolated by the polynomial, unchecked."""
        initial, dz = np.asarray(initial, float), np.asarray(dz, float)
        _check(initial, dz, "predict")
        off = np.abs(dz - self.dz_mm) > 1e-9 * max(1.0, abs(self.dz_mm))
        if off.any():
            raise ValueError(f"PolynomialSurrogate.predict: fitted at dz = {self.dz_mm:g} mm, "
                             f"track {int(np.flatnonzero(off)[0])} asks dz = "
                             f"{dz[off][0]:g} mm")
        nq = self.qop_degree + 1
        # per chunk (its monomials stay in cache): (4 nq, n_base) @ (n_base, chunk), then the
        # q/p Legendre rows weight each block of 4
        coef = self.coef.reshape(-1, nq, 4).transpose(1, 2, 0).reshape(nq * 4, -1)
        corr = np.empty((len(initial), 4))
        for s in range(0, len(initial), CHUNK):
            base, q = self._basis(initial[s:s + CHUNK])
            block = (coef @ base).reshape(nq, 4, -1)
            corr[s:s + CHUNK] = np.einsum("qon,qn->no", block, q)
        return kick_numpy(initial, dz, self.table, self.z0_mm) + corr * initial[:, 4:5]


def _check(initial: np.ndarray, dz: np.ndarray, where: str) -> None:
    if initial.ndim != 2 or initial.shape[1] != 5 or dz.shape != (len(initial),):
        raise ValueError(f"PolynomialSurrogate.{where}: need initial (n, 5) and dz (n,), got "
                         f"{initial.shape} and {dz.shape}")
    bad = ~np.isfinite(initial).all(1) | ~np.isfinite(dz)
    if bad.any():
        raise ValueError(f"PolynomialSurrogate.{where}: track {int(np.flatnonzero(bad)[0])} "
                         f"has a non-finite input")
    if np.any(initial[:, 4] == 0):
        raise ValueError(f"PolynomialSurrogate.{where}: track "
                         f"{int(np.flatnonzero(initial[:, 4] == 0)[0])} has q/p = 0 (the "
                         f"residual is scaled by q/p)")
