"""The kick + polynomial surrogate at any end plane: its coefficients are cubic B-splines in dz.

:class:`~physml.tracks.polynomial.PolynomialSurrogate` fits one end plane. Over a range of
planes (the variable-dz task, dz in [500, 12000] mm by default) a polynomial in dz does not
do: the residual of the kick prior changes shape where the tracks cross the magnet, and a
Legendre factor of degree 4 in dz left 1.5 mm (measured on 270,000 tracks at d6/q6). Here
each coefficient of the fixed-plane model becomes a function of dz, a uniform cubic B-spline
with ``n_intervals`` intervals over the fitted range:

    state = kick(u, dz) + (q/p) * sum_s B_s(dz) sum_k c_sk phi_k(u)

``phi_k`` the :class:`~physml.tracks.polynomial.Basis` features, ``B_s`` the n_intervals + 3
splines (four are non-zero at any dz). The least-squares normal equations then couple only
splines that share an interval, so they are banded (bandwidth four blocks of features):
assembled one interval at a time and solved by a banded Cholesky factorisation — memory and
time linear in the number of intervals (a dense solve of the 20,520 unknowns of d10/q10 xy4
t12 dz24, 3.4 GB, crashed SciPy's OpenBLAS on this machine).

Prediction is a numba kernel, parallel over tracks, sharing the fixed-plane kernel's parts
(:mod:`physml.tracks.polynomial`): tracks sorted by dz interval, eight of one interval at a
time, four splines' dot products each — about four times the fixed plane's work per track.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np
from scipy.linalg import blas

from physml.tracks.eom import KAPPA
from physml.tracks.polynomial import (
    BLOCK,
    FIT_CHUNK,
    Basis,
    check_inputs,
    design_matrix,
    dots8,
    jacobi_solve,
    kernel_layout,
    kernel_rows,
    kick_plus,
    scratch,
    track_monomials,
)
from physml.tracks.priors import SERIAL_BELOW, KickTable, kick_numpy


def spline_weights(dz: np.ndarray, lo: float, hi: float,
                   n_intervals: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform cubic B-splines on [lo, hi] cut into ``n_intervals``: for each dz (n,) its
    interval ``i`` (n,) and the values (n, 4) of splines i .. i + 3 there (the only non-zero
    ones; they sum to one). dz = hi belongs to the last interval."""
    s = (np.asarray(dz, float) - lo) / (hi - lo) * n_intervals
    i = np.clip(np.floor(s).astype(np.int64), 0, n_intervals - 1)
    t = s - i
    t2, t3 = t * t, t * t * t
    w = np.stack([(1 - t) ** 3, 3 * t3 - 6 * t2 + 4, -3 * t3 + 3 * t2 + 3 * t + 1, t3], 1) / 6
    return i, w


@dataclass(frozen=True)
class DzSplinePolynomial:
    """A fitted kick + polynomial model over a range of end planes. ``coef`` (n_intervals + 3,
    n_features, 4): per spline, the coefficients of the basis features (the order of
    :func:`~physml.tracks.polynomial.design_matrix`); ``dz_range_mm`` the planes it was fitted
    over (it refuses others); ``scale`` (5,) the inputs' half-ranges; ``table`` the kick table."""

    basis: Basis
    scale: np.ndarray
    coef: np.ndarray
    dz_range_mm: tuple[float, float]
    table: KickTable
    z0_mm: float = 0.0
    _kernel: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        nf = self.basis.n_features
        if self.coef.ndim != 3 or self.coef.shape[0] < 4 or self.coef.shape[1:] != (nf, 4):
            raise ValueError(f"DzSplinePolynomial: coef has shape {self.coef.shape}, the basis "
                             f"{self.basis.label} needs (n_intervals + 3, {nf}, 4)")
        lo, hi = self.dz_range_mm
        if not lo < hi:
            raise ValueError(f"DzSplinePolynomial: dz_range_mm = {self.dz_range_mm}, expected "
                             "low < high")
        object.__setattr__(self, "_kernel", (
            1.0 / np.asarray(self.scale, float), KAPPA, *kernel_layout(self.basis),
            np.stack([kernel_rows(self.basis, c) for c in self.coef])))

    @property
    def n_intervals(self) -> int:
        return self.coef.shape[0] - 3

    @property
    def n_features(self) -> int:
        """Fitted coefficients per output: basis features x splines."""
        return self.basis.n_features * self.coef.shape[0]

    @property
    def label(self) -> str:
        """The basis label, then ``dz<n_intervals>``."""
        return f"{self.basis.label} dz{self.n_intervals}"

    @classmethod
    def fit(cls, initial: np.ndarray, dz: np.ndarray, final: np.ndarray, table: KickTable,
            basis: Basis, n_intervals: int, dz_range_mm: tuple[float, float] | None = None,
            z0_mm: float = 0.0) -> DzSplinePolynomial:
        """Least squares on training tracks ``initial`` (n, 5), ``dz`` (n,) mm, ``final``
        (n, >= 4) over ``dz_range_mm`` (default: the tracks' own dz range). ``ValueError``
        naming the problem for non-finite values, q/p = 0, a dz outside the range, or an
        interval with fewer tracks than its four splines have coefficients (4 x features)."""
        initial, final = np.asarray(initial, float), np.asarray(final, float)
        dz = np.asarray(dz, float)
        check_inputs(initial, dz, "DzSplinePolynomial.fit")
        if not np.all(np.isfinite(final[:, :4])):
            bad = int(np.flatnonzero(~np.isfinite(final[:, :4]).all(1))[0])
            raise ValueError(f"DzSplinePolynomial.fit: final state of track {bad} is not "
                             "finite")
        if n_intervals < 1:
            raise ValueError(f"DzSplinePolynomial.fit: n_intervals = {n_intervals}, "
                             "expected >= 1")
        lo, hi = ((float(dz.min()), float(dz.max())) if dz_range_mm is None
                  else (float(dz_range_mm[0]), float(dz_range_mm[1])))
        if not lo < hi:
            raise ValueError(f"DzSplinePolynomial.fit: dz range {lo:g} to {hi:g} mm is empty "
                             "(one end plane: PolynomialSurrogate)")
        _check_range(dz, lo, hi, "DzSplinePolynomial.fit")
        nf = basis.n_features
        iv, w = spline_weights(dz, lo, hi, n_intervals)
        counts = np.bincount(iv, minlength=n_intervals)
        if counts.min() < 4 * nf:  # the unknowns of the four splines live there
            k = int(np.argmin(counts))
            h = (hi - lo) / n_intervals
            raise ValueError(f"DzSplinePolynomial.fit: {counts[k]} tracks in dz interval {k} "
                             f"({lo + k * h:g} to {lo + (k + 1) * h:g} mm), fewer than the "
                             f"{4 * nf} coefficients of its four splines ({basis.label})")
        scale = np.abs(initial).max(0)
        scale[scale == 0] = 1.0
        target = (final[:, :4] - kick_numpy(initial, dz, table, z0_mm)) / initial[:, 4:5]
        width = 4 * nf
        band = np.zeros((width, (n_intervals + 3) * nf))  # LAPACK upper band storage
        rhs = np.zeros(((n_intervals + 3) * nf, 4))
        order = np.argsort(iv, kind="stable")
        ends = np.cumsum(counts)
        for i in range(n_intervals):
            rows = order[ends[i] - counts[i]:ends[i]]
            gram = np.zeros((width, width), order="F")
            for s in range(0, len(rows), FIT_CHUNK // 4):
                r = rows[s:s + FIT_CHUNK // 4]
                a = design_matrix(basis, scale, initial[r])
                x = (w[r][:, :, None] * a[:, None, :]).reshape(len(r), width)  # spline major
                gram = blas.dsyrk(1.0, x.T, beta=1.0, c=gram, trans=0, lower=0,
                                  overwrite_c=1)  # upper triangle of x.T @ x
                rhs[i * nf:(i + 4) * nf] += x.T @ target[r]
            for d in range(width):  # diagonal d of the interval's block into band row -1 - d
                band[width - 1 - d, i * nf + d:(i + 4) * nf] += np.diagonal(gram, d)
        coef = jacobi_solve(band, rhs, banded=True)
        return cls(basis, scale, coef.reshape(n_intervals + 3, nf, 4), (lo, hi), table, z0_mm)

    def predict(self, initial: np.ndarray, dz: np.ndarray) -> np.ndarray:
        """End states ``(n, 4)`` for ``initial`` (n, 5) at ``dz`` (n,) mm inside the fitted
        range (``ValueError`` otherwise, naming the track). Compiled, parallel over numba's
        threads (one thread below ``SERIAL_BELOW`` tracks)."""
        initial, dz = np.asarray(initial, float), np.asarray(dz, float)
        check_inputs(initial, dz, "DzSplinePolynomial.predict")
        _check_range(dz, *self.dz_range_mm, "DzSplinePolynomial.predict")
        iv, w = spline_weights(dz, *self.dz_range_mm, self.n_intervals)
        i0, i1 = self.table.at(self.z0_mm + dz)
        out = np.empty((len(dz), 4))
        kernel = _predict_dz_serial if len(dz) < SERIAL_BELOW else _predict_dz_parallel
        kernel(np.ascontiguousarray(initial), np.argsort(iv, kind="stable"), iv, w, dz,
               np.ascontiguousarray(i0), np.ascontiguousarray(i1), *self._kernel, out)
        return out


def _check_range(dz: np.ndarray, lo: float, hi: float, where: str) -> None:
    tol = 1e-9 * max(1.0, abs(lo), abs(hi))
    off = (dz < lo - tol) | (dz > hi + tol)
    if off.any():
        k = int(np.flatnonzero(off)[0])
        raise ValueError(f"{where}: track {k} has dz = {dz[k]:g} mm, outside the fitted "
                         f"range {lo:g} to {hi:g} mm")


def _predict_dz_body(u, order, iv, w, dz, i0, i1, inv_scale, kappa, xy, t, ia, ib, prefix, dxy,
                     dt, dq, coef_t, out):
    """Kick prior plus the polynomial residual times q/p, as the fixed-plane kernel
    (:mod:`physml.tracks.polynomial`), at any end plane (:class:`DzSplinePolynomial`): track
    ``r`` at ``dz[r]`` (kick integrals ``i0[r]``, ``i1[r]``) in dz interval ``iv[r]``
    sums the rows of splines ``iv[r]`` .. ``iv[r] + 3`` (``coef_t`` (n_intervals + 3, 4
    (qop_degree + 1), n_base)) weighted by ``w[r]`` (4,). Tracks are taken in the order
    ``order``, which puts each interval's tracks together; a group of up to eight shares one
    interval, so each coefficient is again loaded once for the group."""
    n, nq = u.shape[0], dq + 1
    for blk in numba.prange((n + BLOCK - 1) // BLOCK):
        px, py, ptx, pty, gxy, gt, f, pq, acc = scratch(dxy, dt, xy, t, ia, nq)
        wl = np.empty(8)
        lo, hi = blk * BLOCK, min(n, (blk + 1) * BLOCK)
        r0 = lo
        while r0 < hi:
            i, m = iv[order[r0]], 1
            while m < 8 and r0 + m < hi and iv[order[r0 + m]] == i:
                m += 1
            for j in range(8):
                track_monomials(u[order[r0 + min(j, m - 1)]], inv_scale, xy, t, ia, ib, px,
                                py, ptx, pty, gxy, gt, f[j], pq[j])
            acc[:, :] = 0.0
            for sp in range(4):
                for j in range(8):
                    wl[j] = w[order[r0 + min(j, m - 1)], sp]
                for k in range(4 * nq):
                    s0, s1, s2, s3, s4, s5, s6, s7 = dots8(coef_t[i + sp, k], f, prefix[k // 4])
                    acc[0, k] += wl[0] * s0
                    acc[1, k] += wl[1] * s1
                    acc[2, k] += wl[2] * s2
                    acc[3, k] += wl[3] * s3
                    acc[4, k] += wl[4] * s4
                    acc[5, k] += wl[5] * s5
                    acc[6, k] += wl[6] * s6
                    acc[7, k] += wl[7] * s7
            for j in range(m):
                r = order[r0 + j]
                kick_plus(u[r], dz[r], i0[r], i1[r], kappa, acc[j], pq[j], out[r])
            r0 += m


_predict_dz_parallel = numba.njit(parallel=True, fastmath=True, cache=True)(_predict_dz_body)
_predict_dz_serial = numba.njit(fastmath=True, cache=True)(_predict_dz_body)
