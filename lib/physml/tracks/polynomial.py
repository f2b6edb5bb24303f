"""The simplest fitted surrogate: the kick prior plus a linear least-squares model on polynomial
features — the baseline a network has to beat.

A linear model on polynomial features is the simplest fitted model that could work, so the
benchmark carries one. At a fixed end plane the end state is

    state = kick(u) + (q/p) * sum_k c_k phi_k(u)

with ``kick`` the single-kick prior (:func:`physml.tracks.priors.kick_numpy`), the residual
scaled per track by q/p (as the ``/qp`` hybrids), and ``phi_k`` products of Legendre
polynomials of the five inputs, each mapped to [-1, 1] by the half-range seen in training:
``P_i(x) P_j(y) P_k(tx) P_l(ty) P_m(q/p)``. The basis (:class:`Basis`) keeps a product when its
geometric degree ``g = w (i + j) + k + l`` is at most ``degree``, ``m <= qop_degree`` and, when
``total_degree`` is set, ``g + m <= total_degree``. ``w`` (``xy_weight``, default 1: the plain
total degree) makes a power of the start position cost ``w`` powers of the slopes: over the
+-50 mm start window the end state depends far more on the slopes than on x, y, and the high
q/p powers matter only with the low geometric ones — so a weighted, jointly capped basis of 760
features (d10/q10, w = 4, total 12) fits the test tracks better than the 4,455 of the plain
d8/q8 tensor basis (notebook 05 measures both). The coefficients ``c`` (features x 4 outputs)
solve the least-squares normal equations of the training tracks, accumulated in chunks (a
million tracks fit in the memory of the features squared) — no iteration, no seed.

Only the end plane it was fitted at: :meth:`PolynomialSurrogate.predict` refuses another dz
(:mod:`physml.tracks.polynomial_dz` fits a range of planes).
The fit builds the design matrix in NumPy (:meth:`PolynomialSurrogate.features`). Prediction
is a numba kernel, parallel over tracks like the compiled RK4 it is timed against: it builds
each track's Legendre values by their recurrence and accumulates the coefficients, eight tracks
per pass over them (each coefficient loaded once for eight tracks) — the same sum as
``features @ coef``, without the design matrix (tests/tracks/test_polynomial.py checks it).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field

import numba
import numpy as np
from numpy.polynomial import legendre
from scipy import linalg

from physml.tracks.eom import KAPPA
from physml.tracks.priors import SERIAL_BELOW, KickTable, kick_numpy

FIT_CHUNK = 20_000  # tracks per block of the normal equations in :meth:`PolynomialSurrogate.fit`
BLOCK = 256  # tracks per work item of the prediction kernel (its scratch is allocated per block)
RIDGE = 1e-14
"""Added to the unit diagonal of the Jacobi-scaled normal equations (:func:`jacobi_solve`).
High-degree products of the five inputs are nearly collinear over the tracks' domain (the
acceptance cut makes it no box; each input's Legendre columns alone are well conditioned), so
the scaled matrix has eigenvalues near 1e-16 and Cholesky fails without it (measured: the
variable-dz fit of d8/q8 xy4 t10 dz16 on 270,000 tracks fails at 1e-16). It was chosen on
those tracks' validation error: 1e-12 0.0121 mm, 1e-14 0.0098, 1e-15 0.0096. At the fixed
plane, d10/q10 xy4 t12 scores as with a minimum-norm least-squares solve (0.00601 mm on fresh
tracks), d12/q12 xy4 t14 better (0.00353 against 0.00367 mm: the least-squares cut-off drops
directions the data determine)."""


@dataclass(frozen=True)
class Basis:
    """Which Legendre products are features: geometric degree ``w (i + j) + k + l <= degree``
    (``w`` = ``xy_weight``), q/p degree ``m <= qop_degree`` and, unless ``total_degree`` is
    None, their sum ``<= total_degree``."""

    degree: int
    qop_degree: int
    xy_weight: int = 1
    total_degree: int | None = None

    def __post_init__(self) -> None:
        bad = [f"{k} = {v}, expected >= {lo}" for k, v, lo in
               (("degree", self.degree, 0), ("qop_degree", self.qop_degree, 0),
                ("xy_weight", self.xy_weight, 1))
               if v < lo]
        if self.total_degree is not None and self.total_degree < 0:
            bad.append(f"total_degree = {self.total_degree}, expected >= 0 or None")
        if bad:
            raise ValueError("Basis: " + "; ".join(bad))

    @property
    def label(self) -> str:
        """``d<degree>/q<qop_degree>``, then ``xy<w>`` and ``t<total>`` where set."""
        return (f"d{self.degree}/q{self.qop_degree}"
                + (f" xy{self.xy_weight}" if self.xy_weight != 1 else "")
                + (f" t{self.total_degree}" if self.total_degree is not None else ""))

    @property
    def xy_degree(self) -> int:
        """The highest power of x or y any feature has."""
        return self.degree // self.xy_weight

    def exponents(self) -> np.ndarray:
        """``(n_base, 4)``: the geometric exponents ``(i, j, k, l)`` that have at least one q/p
        degree, those with the most q/p degrees first (a fixed order)."""
        return _exponents(self)[0]

    def qop_counts(self) -> np.ndarray:
        """``(n_base,)``: how many q/p degrees (0, 1, ...) each geometric monomial carries."""
        return _exponents(self)[1]

    @property
    def n_features(self) -> int:
        return int(self.qop_counts().sum())


@functools.cache
def _exponents(basis: Basis) -> tuple[np.ndarray, np.ndarray]:
    w, cap = basis.xy_weight, basis.total_degree
    rows, counts = [], []
    for e in itertools.product(range(basis.degree + 1), repeat=4):
        g = w * (e[0] + e[1]) + e[2] + e[3]
        top = basis.qop_degree if cap is None else min(basis.qop_degree, cap - g)
        if g <= basis.degree and top >= 0:
            rows.append(e)
            counts.append(top + 1)
    # most q/p degrees first: the monomials carrying degree m are then a prefix (the kernel's
    # dot products over monomials stop at its end)
    order = np.argsort(-np.array(counts, dtype=np.int64), kind="stable")
    return (np.array(rows, dtype=np.int64).reshape(-1, 4)[order],
            np.array(counts, dtype=np.int64)[order])


@functools.cache
def _layout(basis: Basis) -> tuple[np.ndarray, ...]:
    """Index arrays of the monomial build: ``xy`` (n_xy, 2) the degree pairs ``(i, j)`` of
    x, y up to ``xy_degree``, ``t`` (n_t, 2) those ``(k, l)`` of tx, ty up to ``degree``;
    ``ia, ib`` the pair of each geometric monomial in each; ``start`` (n_base + 1,) where each
    monomial's features begin in the feature order (geometric major, q/p degree minor);
    ``prefix`` (qop_degree + 1,) how many monomials (the first ones) carry each q/p degree."""
    def pairs(d):
        return [(i, j) for i in range(d + 1) for j in range(d + 1 - i)]

    xy, t = pairs(basis.xy_degree), pairs(basis.degree)
    at_xy, at_t = {p: k for k, p in enumerate(xy)}, {p: k for k, p in enumerate(t)}
    e = basis.exponents()
    return (np.array(xy, dtype=np.int64).reshape(-1, 2), np.array(t, dtype=np.int64),
            np.array([at_xy[(a, b)] for a, b, _, _ in e], dtype=np.int64),
            np.array([at_t[(c, d)] for _, _, c, d in e], dtype=np.int64),
            np.concatenate([[0], np.cumsum(basis.qop_counts())]).astype(np.int64),
            np.array([(basis.qop_counts() > m).sum() for m in range(basis.qop_degree + 1)],
                     dtype=np.int64))


def _legendre_columns(v: np.ndarray, degree: int) -> np.ndarray:
    """``(n, degree + 1)``: P_0(v) .. P_degree(v)."""
    return legendre.legvander(v, degree)


@dataclass(frozen=True)
class PolynomialSurrogate:
    """A fitted kick + polynomial model. ``scale`` (5,) half-ranges of the inputs, ``coef``
    ``(n_features, 4)`` (feature order: geometric monomial major, q/p degree minor),
    ``dz_mm`` the end-plane distance it was fitted at, ``table`` the kick table. Frozen: the
    kernel's copy of the coefficients and the end plane's field integrals are made once."""

    basis: Basis
    scale: np.ndarray
    coef: np.ndarray
    dz_mm: float
    table: KickTable
    z0_mm: float = 0.0
    _kernel: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        b = self.basis
        if self.coef.shape != (b.n_features, 4):
            raise ValueError(f"PolynomialSurrogate: coef has shape {self.coef.shape}, the "
                             f"basis {b.label} needs ({b.n_features}, 4)")
        i0, i1 = (float(v[0]) for v in self.table.at(np.array([self.z0_mm + self.dz_mm])))
        object.__setattr__(self, "_kernel", (1.0 / np.asarray(self.scale, float), self.dz_mm,
                                             i0, i1, KAPPA, *kernel_layout(b),
                                             kernel_rows(b, self.coef)))

    @property
    def n_features(self) -> int:
        return self.basis.n_features

    @property
    def label(self) -> str:
        return self.basis.label

    @classmethod
    def fit(cls, initial: np.ndarray, dz: np.ndarray, final: np.ndarray, table: KickTable,
            basis: Basis, z0_mm: float = 0.0) -> PolynomialSurrogate:
        """Least squares on training tracks: ``initial`` (n, 5) ``(x, y, tx, ty, q/p)``,
        ``dz`` (n,) mm, all equal, ``final`` (n, >= 4). Raises ``ValueError`` naming the
        problem for unequal dz, non-finite values, q/p = 0, or fewer tracks than features."""
        initial, final = np.asarray(initial, float), np.asarray(final, float)
        dz = np.asarray(dz, float)
        n_feat = basis.n_features
        check_inputs(initial, dz, "PolynomialSurrogate.fit")
        if not np.all(np.isfinite(final[:, :4])):
            bad = int(np.flatnonzero(~np.isfinite(final[:, :4]).all(1))[0])
            raise ValueError(f"PolynomialSurrogate.fit: final state of track {bad} is not finite")
        if len(initial) < n_feat:
            raise ValueError(f"PolynomialSurrogate.fit: {len(initial)} tracks for {n_feat} "
                             f"features ({basis.label})")
        if np.ptp(dz) > 1e-9 * max(1.0, abs(dz[0])):
            raise ValueError(f"PolynomialSurrogate.fit: one end plane only, got dz from "
                             f"{dz.min():g} to {dz.max():g} mm")
        scale = np.abs(initial).max(0)
        scale[scale == 0] = 1.0
        target = (final[:, :4] - kick_numpy(initial, dz, table, z0_mm)) / initial[:, 4:5]
        # normal equations accumulated over chunks (memory O(features^2) whatever the number
        # of tracks); the Legendre basis keeps them well conditioned on the near-uniform inputs
        gram, rhs = np.zeros((n_feat, n_feat)), np.zeros((n_feat, 4))
        for s in range(0, len(initial), FIT_CHUNK):
            A = design_matrix(basis, scale, initial[s:s + FIT_CHUNK])
            gram += A.T @ A
            rhs += A.T @ target[s:s + FIT_CHUNK]
        return cls(basis, scale, jacobi_solve(gram, rhs), float(dz[0]), table, z0_mm)

    def features(self, initial: np.ndarray) -> np.ndarray:
        """The design matrix ``(n, n_features)`` of ``initial`` (n, 5): :func:`design_matrix`."""
        return design_matrix(self.basis, self.scale, initial)

    def predict(self, initial: np.ndarray, dz: np.ndarray) -> np.ndarray:
        """End states ``(n, 4)`` for ``initial`` (n, 5) at ``dz`` (n,) mm, which must be the
        fitted plane's distance (``ValueError`` otherwise, naming it). Inputs outside the
        training tracks' ranges (``scale``) are extrapolated by the polynomial, unchecked.
        Compiled, parallel over numba's threads (one thread below ``SERIAL_BELOW`` tracks,
        where a parallel launch costs more than the work)."""
        initial, dz = np.asarray(initial, float), np.asarray(dz, float)
        check_inputs(initial, dz, "PolynomialSurrogate.predict")
        off = np.abs(dz - self.dz_mm) > 1e-9 * max(1.0, abs(self.dz_mm))
        if off.any():
            raise ValueError(f"PolynomialSurrogate.predict: fitted at dz = {self.dz_mm:g} mm, "
                             f"track {int(np.flatnonzero(off)[0])} asks dz = "
                             f"{dz[off][0]:g} mm")
        out = np.empty((len(initial), 4))
        kernel = _predict_serial if len(initial) < SERIAL_BELOW else _predict_parallel
        kernel(np.ascontiguousarray(initial), *self._kernel, out)
        return out


def jacobi_solve(a: np.ndarray, rhs: np.ndarray, banded: bool = False) -> np.ndarray:
    """Solve the normal equations ``a c = rhs`` (``rhs`` (n, k)) by Cholesky after Jacobi
    scaling (unit diagonal) with :data:`RIDGE` added to it. ``a`` symmetric, dense (n, n) or,
    with ``banded``, in LAPACK's upper band storage ``(bandwidth, n)`` (overwritten).
    ``ValueError`` naming the first feature that is zero on every training track, or when
    Cholesky fails (the scaled matrix is not positive definite even with the ridge)."""
    d = a[-1] if banded else np.diag(a)
    if np.any(d <= 0):
        raise ValueError(f"jacobi_solve: feature {int(np.flatnonzero(d <= 0)[0])} is zero on "
                         "every training track")
    inv = 1.0 / np.sqrt(d)
    try:
        if banded:
            n, u = a.shape[1], a.shape[0] - 1
            for k in range(u + 1):  # row k holds a[j - (u - k), j]
                off = u - k
                a[k, off:] *= inv[:n - off] * inv[off:]
            a[-1] += RIDGE
            y = linalg.solveh_banded(a, inv[:, None] * rhs, overwrite_ab=True)
        else:
            s = a * inv[:, None] * inv[None, :]
            s[np.diag_indices_from(s)] += RIDGE
            y = linalg.solve(s, inv[:, None] * rhs, assume_a="pos")
    except np.linalg.LinAlgError as e:
        raise ValueError(f"jacobi_solve: the scaled normal equations are not positive definite "
                         f"even with the ridge {RIDGE:g} ({e}): too many features for these "
                         "tracks, or features collinear over them") from e
    return inv[:, None] * y


def kernel_layout(basis: Basis) -> tuple:
    """The index arrays and degrees the prediction kernels take: ``xy, t, ia, ib, prefix``
    (:func:`_layout`), then the degrees of x/y, of the slopes and of q/p."""
    xy, t, ia, ib, _, prefix = _layout(basis)
    return xy, t, ia, ib, prefix, basis.xy_degree, basis.degree, basis.qop_degree


def kernel_rows(basis: Basis, coef: np.ndarray) -> np.ndarray:
    """``coef`` (n_features, 4) as the kernels read it: one row per (q/p degree m, output o),
    row 4 m + o, over the geometric monomials (zero past the ``prefix[m]`` that carry m)."""
    _, _, ia, _, start, _ = _layout(basis)
    nq = basis.qop_degree + 1
    mono = np.repeat(np.arange(len(ia)), np.diff(start))
    rows = np.zeros((nq, 4, len(ia)))
    rows[np.arange(len(mono)) - start[mono], :, mono] = coef
    return rows.reshape(4 * nq, -1)


def design_matrix(basis: Basis, scale: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """The features ``(n, n_features)`` of ``initial`` (n, 5) scaled by ``scale`` (5,), in
    NumPy: P_i(x) P_j(y) and P_k(tx) P_l(ty) for every pair of :func:`_layout` (rows
    contiguous), one product per geometric monomial, then one per q/p degree it carries."""
    b = basis
    v = np.ascontiguousarray((np.asarray(initial, float) / scale).T)
    P = [np.ascontiguousarray(_legendre_columns(v[a], d).T)
         for a, d in enumerate((b.xy_degree, b.xy_degree, b.degree, b.degree))]
    xy, t, ia, ib, start, _ = _layout(b)
    base = (P[0][xy[:, 0]] * P[1][xy[:, 1]])[ia] * (P[2][t[:, 0]] * P[3][t[:, 1]])[ib]
    q = _legendre_columns(v[4], b.qop_degree).T
    counts = np.diff(start)
    mono = np.repeat(np.arange(len(counts)), counts)
    return (base[mono] * q[np.arange(len(mono)) - start[mono]]).T


def _predict_body(u, inv_scale, dz, i0, i1, kappa, xy, t, ia, ib, prefix, dxy, dt, dq, coef_t,
                  out):
    """Kick prior plus the polynomial residual times q/p for each track of ``u`` (n, 5) into
    ``out`` (n, 4): the sum ``PolynomialSurrogate.features(u) @ coef``. Eight tracks at a time
    (a short last group repeats its last track): their monomials ``f`` (8, n_base)
    (:func:`track_monomials`), then for each (q/p degree m, output) row of ``coef_t`` (4
    (qop_degree + 1), n_base; :func:`kernel_rows`) eight dot products over the ``prefix[m]``
    monomials that carry degree m (:func:`dots8`) — contiguous in both, so they vectorise,
    and each coefficient is loaded once for eight tracks. ``xy``, ``t``, ``ia``, ``ib``,
    ``prefix``: :func:`kernel_layout`."""
    n, nq = u.shape[0], dq + 1
    for blk in numba.prange((n + BLOCK - 1) // BLOCK):
        px, py, ptx, pty, gxy, gt, f, pq, acc = scratch(dxy, dt, xy, t, ia, nq)
        lo, hi = blk * BLOCK, min(n, (blk + 1) * BLOCK)
        for r0 in range(lo, hi, 8):
            m = min(8, hi - r0)
            for j in range(8):
                track_monomials(u[r0 + min(j, m - 1)], inv_scale, xy, t, ia, ib, px, py,
                                ptx, pty, gxy, gt, f[j], pq[j])
            for k in range(4 * nq):
                (acc[0, k], acc[1, k], acc[2, k], acc[3, k], acc[4, k], acc[5, k], acc[6, k],
                 acc[7, k]) = dots8(coef_t[k], f, prefix[k // 4])
            for j in range(m):
                kick_plus(u[r0 + j], dz, i0, i1, kappa, acc[j], pq[j], out[r0 + j])


@numba.njit(inline="always", cache=True)
def _legendre(v, p):
    """P_0(v) .. P_{len(p) - 1}(v) into ``p`` by Bonnet's recurrence."""
    p[0] = 1.0
    if p.shape[0] > 1:
        p[1] = v
    for k in range(2, p.shape[0]):
        p[k] = ((2 * k - 1) * v * p[k - 1] - (k - 1) * p[k - 2]) / k


@numba.njit(inline="always", cache=True)
def scratch(dxy, dt, xy, t, ia, nq):
    """A kernel block's work arrays: the Legendre values of x, y, tx, ty, the x/y and slope
    pair products, the monomials ``f`` (8, n_base), q/p values ``pq`` (8, nq) and row sums
    ``acc`` (8, 4 nq) of eight tracks."""
    return (np.empty(dxy + 1), np.empty(dxy + 1), np.empty(dt + 1), np.empty(dt + 1),
            np.empty(xy.shape[0]), np.empty(t.shape[0]), np.empty((8, ia.shape[0])),
            np.empty((8, nq)), np.empty((8, 4 * nq)))


@numba.njit(inline="always", cache=True)
def track_monomials(ur, inv_scale, xy, t, ia, ib, px, py, ptx, pty, gxy, gt, fr, pqr):
    """One track ``ur`` (5,): its geometric monomials into ``fr`` (n_base,) and its q/p
    Legendre values into ``pqr``; ``px`` .. ``gt`` scratch."""
    _legendre(ur[0] * inv_scale[0], px)
    _legendre(ur[1] * inv_scale[1], py)
    _legendre(ur[2] * inv_scale[2], ptx)
    _legendre(ur[3] * inv_scale[3], pty)
    _legendre(ur[4] * inv_scale[4], pqr)
    for p in range(xy.shape[0]):
        gxy[p] = px[xy[p, 0]] * py[xy[p, 1]]
    for p in range(t.shape[0]):
        gt[p] = ptx[t[p, 0]] * pty[t[p, 1]]
    for b in range(ia.shape[0]):
        fr[b] = gxy[ia[b]] * gt[ib[b]]


@numba.njit(inline="always", cache=True)
def dots8(row, f, count):
    """The eight dot products of ``row[:count]`` with ``f[j, :count]``, j = 0 .. 7."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    for b in range(count):
        c = row[b]
        s0 += c * f[0, b]
        s1 += c * f[1, b]
        s2 += c * f[2, b]
        s3 += c * f[3, b]
        s4 += c * f[4, b]
        s5 += c * f[5, b]
        s6 += c * f[6, b]
        s7 += c * f[7, b]
    return s0, s1, s2, s3, s4, s5, s6, s7


@numba.njit(inline="always", cache=True)
def kick_plus(ur, dz, i0, i1, kappa, accr, pqr, outr):
    """``outr`` (4,) = the kick prior of track ``ur`` at ``dz`` (field integrals ``i0``,
    ``i1``) plus q/p times the residual: ``accr`` (4 (qop_degree + 1),) summed over the q/p
    Legendre values ``pqr``."""
    x, y, tx, ty, qop = ur[0], ur[1], ur[2], ur[3], ur[4]
    c = -kappa * qop * np.sqrt(1.0 + tx * tx + ty * ty)
    ax, ay = c * (1.0 + tx * tx), c * tx * ty
    kick = (x + tx * dz + ax * i1, y + ty * dz + ay * i1, tx + ax * i0, ty + ay * i0)
    for o in range(4):
        s = 0.0
        for mq in range(pqr.shape[0]):
            s += accr[4 * mq + o] * pqr[mq]
        outr[o] = kick[o] + s * qop


_predict_parallel = numba.njit(parallel=True, fastmath=True, cache=True)(_predict_body)
_predict_serial = numba.njit(fastmath=True, cache=True)(_predict_body)


def check_inputs(initial: np.ndarray, dz: np.ndarray, where: str) -> None:
    """``ValueError`` (prefixed ``where``) unless ``initial`` is (n, 5) and ``dz`` (n,), all
    finite, with no q/p = 0 (the residual is scaled by q/p)."""
    if initial.ndim != 2 or initial.shape[1] != 5 or dz.shape != (len(initial),):
        raise ValueError(f"{where}: need initial (n, 5) and dz (n,), got "
                         f"{initial.shape} and {dz.shape}")
    bad = ~np.isfinite(initial).all(1) | ~np.isfinite(dz)
    if bad.any():
        raise ValueError(f"{where}: track {int(np.flatnonzero(bad)[0])} "
                         f"has a non-finite input")
    if np.any(initial[:, 4] == 0):
        raise ValueError(f"{where}: track "
                         f"{int(np.flatnonzero(initial[:, 4] == 0)[0])} has q/p = 0 (the "
                         f"residual is scaled by q/p)")
