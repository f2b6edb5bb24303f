"""Critical-point solvers behind one interface, from the source's baseline to a batched JAX kernel.

Methods (all minimise V from every starting point; the lowest converged start wins):
  ``bfgs_fd``     scipy BFGS, gradient by 2-point finite differences (the source's baseline);
  ``bfgs``        scipy BFGS with the analytic gradient;
  ``trust_ncg``   scipy trust-ncg with analytic gradient and Hessian-vector products;
  ``trust_exact`` scipy trust-exact (Newton with the analytic Hessian in a trust region);
  ``jax_newton``  batched trust-region Newton in JAX: every (potential, start) pair is one row of
                  a padded array; the step is the Levenberg–Marquardt form of the trust-region
                  step, p = −(H + λI)⁻¹g with λ raised until H + λI is positive definite and the
                  actual/predicted reduction ratio acceptable (the damping λ plays the role of the
                  trust radius). A step that would carry φ_i across the kink of |φ_i|_δ from
                  |φ_i| > 10√δ stops at φ_i = 0 (orthant-wise, as OWL-QN does for |x| terms);
                  the ratio test still decides acceptance. Rows run an iteration budget under a
                  convergence mask inside
                  one ``lax.while_loop``; the kernel is compiled once per padded size bucket.

Convergence is judged the same way for every method: |∇V(φ*)|_∞ <= ``gtol_check`` with the
analytic gradient, so success rates are comparable.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import minimize

from .jaxconfig import x64
from .labels import LABELS, MAX_ITER, NONFINITE, NOT_CONVERGED, OK, classify_eigenvalues
from .potential import (
    DELTA,
    Potential,
    PotentialParams,
    grad_xp,
    hess_xp,
    stack_potentials,
    value_xp,
)

METHODS = ("bfgs_fd", "bfgs", "trust_ncg", "trust_exact", "jax_newton")
SCIPY_METHODS = {"bfgs_fd": "BFGS", "bfgs": "BFGS", "trust_ncg": "trust-ncg",
                 "trust_exact": "trust-exact"}
BUCKETS = (2, 4, 6, 8, 10, 12, 16, 20, 24, 32)
GTOL = 1e-6
GTOL_CHECK = 1e-5
PHI_BOUND = 100.0
# |φ_i| beyond which a Newton step may not jump across the kink of |φ_i|_δ at 0 (10 × √δ):
# such a step stops at φ_i = 0 instead (cut iterations per start from ~40 to ~6 at n = 8-10)
KINK_WIDTH = 10.0 * np.sqrt(DELTA)


@dataclass
class SolveResult:
    """Per-potential outcome of one method on B potentials.

    phi: list of ``(n_b,)`` arrays (best start); value, grad_inf ``(B,)``; eigvals ``(B, n_max)``
    Hessian eigenvalues at φ* (NaN-padded); converged ``(B,)`` bool; reason ``(B,)`` failure codes
    (see :mod:`.labels`); n_iter, n_fev, n_gev, n_hev ``(B,)`` summed over starts;
    wall_s total seconds for the B potentials; compile_s seconds spent compiling (JAX only).
    """

    method: str
    phi: list
    value: np.ndarray
    grad_inf: np.ndarray
    eigvals: np.ndarray
    converged: np.ndarray
    reason: np.ndarray
    n_iter: np.ndarray
    n_fev: np.ndarray
    n_gev: np.ndarray
    n_hev: np.ndarray
    wall_s: float
    compile_s: float = 0.0
    messages: list = field(default_factory=list)

    @property
    def phi_norm(self) -> np.ndarray:
        return np.array([np.linalg.norm(p) for p in self.phi])


def starting_points(potentials: list[Potential], n_starts: int,
                    rng: np.random.Generator, scale: float = 1.0) -> list[np.ndarray]:
    """Multi-start points: one ``(n_starts, n_b)`` array per potential, φ ~ N(0, scale²)."""
    if n_starts < 1:
        raise ValueError(f"n_starts={n_starts} must be >= 1")
    return [rng.normal(0.0, scale, (n_starts, pot.n)) for pot in potentials]


def _eigvals_padded(potentials, phis, n_max):
    ev = np.full((len(potentials), n_max), np.nan)
    for k, (pot, phi) in enumerate(zip(potentials, phis, strict=True)):
        if np.all(np.isfinite(phi)):
            H = pot.hess(phi)
            if np.all(np.isfinite(H)):
                ev[k, : pot.n] = np.linalg.eigvalsh(H)
    return ev


def _solve_scipy(potentials, method, starts, gtol, max_iter):
    B = len(potentials)
    out = dict(value=np.full(B, np.nan), grad_inf=np.full(B, np.nan),
               converged=np.zeros(B, bool), reason=np.zeros(B, np.int64),
               n_iter=np.zeros(B, np.int64), n_fev=np.zeros(B, np.int64),
               n_gev=np.zeros(B, np.int64), n_hev=np.zeros(B, np.int64))
    phis, msgs = [], []
    t0 = time.perf_counter()
    for k, pot in enumerate(potentials):
        kw: dict = {"method": SCIPY_METHODS[method]}
        opts: dict = {"gtol": gtol, "maxiter": max_iter}
        if method != "bfgs_fd":
            kw["jac"] = pot.grad
        if method == "trust_ncg":
            kw["hessp"] = pot.hessp
        if method == "trust_exact":
            kw["hess"] = pot.hess
        best = None
        reasons = []
        for x0 in starts[k]:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                res = minimize(pot.value, x0, options=opts, **kw)
            out["n_iter"][k] += res.nit
            out["n_fev"][k] += res.nfev
            out["n_gev"][k] += getattr(res, "njev", 0) or 0
            out["n_hev"][k] += getattr(res, "nhev", 0) or 0
            x = np.asarray(res.x, float)
            g = pot.grad(x) if np.all(np.isfinite(x)) else np.full(pot.n, np.nan)
            ginf = float(np.max(np.abs(g)))
            f = float(pot.value(x)) if np.all(np.isfinite(x)) else np.nan
            ok = np.isfinite(f) and np.isfinite(ginf) and ginf <= GTOL_CHECK
            if not (np.isfinite(f) and np.isfinite(ginf)):
                reasons.append(NONFINITE)
            elif not ok:
                reasons.append(MAX_ITER if res.nit >= max_iter else NOT_CONVERGED)
            else:
                reasons.append(OK)
            msgs.append(str(res.message))
            cand = (0 if ok else 1, f if np.isfinite(f) else np.inf, x, ginf, ok)
            if best is None or cand[:2] < best[:2]:
                best = cand
        _, f, x, ginf, ok = best
        phis.append(x)
        out["value"][k], out["grad_inf"][k], out["converged"][k] = f, ginf, ok
        out["reason"][k] = OK if ok else max(reasons)
    wall = time.perf_counter() - t0
    n_max = max(p.n for p in potentials)
    ev = _eigvals_padded(potentials, phis, n_max)
    return SolveResult(method, phis, eigvals=ev, wall_s=wall, messages=msgs, **out)


# ----------------------------------------------------------------------------- JAX kernel
def _tr_step(P: PotentialParams, phi, f, g, H, lam, active, gtol, phi_bound, max_step,
             critical: bool = False, orthant_clip: bool = True):
    """One Levenberg–Marquardt trust-region Newton step on rows ``(R, N)``.

    ``critical=False`` minimises V: p = −(H + λI)⁻¹ g, model ½pᵀHp + gᵀp.
    ``critical=True`` seeks any critical point: Gauss–Newton on m = ½|∇V|² with Jacobian H,
    p = −(H² + λI)⁻¹ H g, model ½|g + Hp|² (converges to saddles and maxima as well).
    A step is at most ``max_step`` · √n long, n the row's number of real moduli.
    """
    N = phi.shape[-1]
    eye = jnp.eye(N)
    pad_eye = eye * (1.0 - P.mask)[:, None, :]
    if critical:
        A = jnp.einsum("rij,rjk->rik", H, H) + lam[:, None, None] * eye
        rhs = jnp.einsum("rij,rj->ri", H, g)
    else:
        A = H + lam[:, None, None] * eye
        rhs = g
    L = jnp.linalg.cholesky(A)
    pd = jnp.all(jnp.isfinite(L), axis=(-2, -1))
    L = jnp.where(pd[:, None, None], L, eye)
    y = jax.lax.linalg.triangular_solve(L, -rhs[..., None], left_side=True, lower=True)
    p = jax.lax.linalg.triangular_solve(L, y, left_side=True, lower=True,
                                        transpose_a=True)[..., 0]
    pn = jnp.linalg.norm(p, axis=-1)
    cap = max_step * jnp.sqrt(jnp.sum(P.mask, axis=-1))  # per row: padding does not widen it
    p = p * jnp.minimum(1.0, cap / jnp.maximum(pn, 1e-300))[:, None]
    p = jnp.where(pd[:, None], p, 0.0)
    if orthant_clip:
        # a step that carries φ_i across the |φ_i|_δ kink from outside it stops at the kink
        cross = (phi * (phi + p) < 0.0) & (jnp.abs(phi) > KINK_WIDTH)
        p = jnp.where(cross, -phi, p)
    phi_t = phi + p
    f_t = value_xp(phi_t, P, jnp)
    g_t = grad_xp(phi_t, P, jnp)
    H_t = hess_xp(phi_t, P, jnp) + pad_eye
    if critical:
        m, m_t = 0.5 * jnp.sum(g * g, -1), 0.5 * jnp.sum(g_t * g_t, -1)
        lin = g + jnp.einsum("rij,rj->ri", H, p)
        pred = m - 0.5 * jnp.sum(lin * lin, -1)
        actual = m - m_t
        tol = 1e-26 * (1.0 + m)
    else:
        pred = -(jnp.sum(g * p, -1) + 0.5 * jnp.einsum("ri,rij,rj->r", p, H, p))
        actual = f - f_t
        tol = 1e-13 * (1.0 + jnp.abs(f))
    tiny = pred <= tol
    rho = jnp.where(tiny, jnp.where(actual >= -tol, 1.0, -1.0),
                    actual / jnp.where(tiny, 1.0, pred))
    accept = pd & jnp.isfinite(f_t) & (rho > 1e-4) & active
    # curvature scale of the real coordinates (the padded ones carry a unit diagonal that must
    # not set the damping: a potential's path is the same in every bucket)
    hscale = jnp.max(jnp.abs(jnp.diagonal(H, axis1=-2, axis2=-1)) * P.mask, axis=-1)
    hscale = hscale**2 if critical else hscale
    floor = 1e-8 * hscale
    lam_new = jnp.where(rho > 0.75, lam / 4.0,
                        jnp.where(rho < 0.25, jnp.maximum(4.0 * lam, floor), lam))
    lam_new = jnp.where(pd, lam_new, jnp.maximum(10.0 * lam, 1e-3 * hscale))
    lam_new = jnp.where(lam_new < floor, 0.0, lam_new)
    phi = jnp.where(accept[:, None], phi_t, phi)
    f = jnp.where(accept, f_t, f)
    g = jnp.where(accept[:, None], g_t, g)
    H = jnp.where(accept[:, None, None], H_t, H)
    lam = jnp.where(active, lam_new, lam)
    return phi, f, g, H, lam


@partial(jax.jit, static_argnames=("n_steps", "critical"))
def _tr_newton_block(P: PotentialParams, phi, lam, nit, n_steps: int, max_iter: int,
                     gtol: float, phi_bound: float, max_step: float, critical: bool = False):
    """Advance every row ``(R, N)`` by up to ``n_steps`` trust-region Newton iterations.

    A row stops (its state frozen) once |∇V|_∞ <= gtol, |φ|₂ > phi_bound, V or ∇V is
    non-finite, or ``nit`` reaches ``max_iter``. A step is at most ``max_step`` · √n long (n the
    row's real moduli). Returns (φ, λ, nit, V, |∇V|_∞, done).
    """
    N = phi.shape[-1]
    pad_eye = jnp.eye(N) * (1.0 - P.mask)[:, None, :]
    f = value_xp(phi, P, jnp)
    g = grad_xp(phi, P, jnp)
    H = hess_xp(phi, P, jnp) + pad_eye
    h0 = jnp.max(jnp.abs(jnp.diagonal(H, axis1=-2, axis2=-1)) * P.mask, axis=-1)
    lam = jnp.where(lam < 0, 1e-3 * (h0**2 if critical else h0), lam)

    def stopped(phi, f, g, nit):
        ginf = jnp.max(jnp.abs(g), axis=-1)
        bad = ~jnp.isfinite(f) | ~jnp.isfinite(ginf)
        far = jnp.linalg.norm(phi, axis=-1) > phi_bound
        return (ginf <= gtol) | bad | far | (nit >= max_iter)

    def body(_, s):
        phi, f, g, H, lam, nit = s
        active = ~stopped(phi, f, g, nit)
        phi, f, g, H, lam = _tr_step(P, phi, f, g, H, lam, active, gtol, phi_bound, max_step,
                                      critical)
        return phi, f, g, H, lam, nit + active.astype(nit.dtype)

    phi, f, g, H, lam, nit = jax.lax.fori_loop(0, n_steps, body, (phi, f, g, H, lam, nit))
    return phi, lam, nit, f, jnp.max(jnp.abs(g), axis=-1), stopped(phi, f, g, nit)


@jax.jit
def _eigvals_kernel(P: PotentialParams, phi):
    """Eigenvalues ``(R, N)`` of the masked Hessian; padded slots come back as NaN (they are
    given a sentinel curvature larger than any real one and sorted to the end)."""
    N = phi.shape[-1]
    H = hess_xp(phi, P, jnp)
    sentinel = 1e30
    H = H + sentinel * jnp.eye(N) * (1.0 - P.mask)[:, None, :]
    ev = jnp.linalg.eigvalsh(H)
    n = jnp.sum(P.mask, axis=-1).astype(jnp.int32)
    return jnp.where(jnp.arange(N)[None, :] < n[:, None], ev, jnp.nan)


def bucket_size(n: int) -> int:
    """Smallest padded size in :data:`BUCKETS` that holds ``n`` moduli."""
    for b in BUCKETS:
        if n <= b:
            return b
    raise ValueError(f"n_moduli={n} exceeds the largest bucket {BUCKETS[-1]}")


def slots_for_bucket(b: int, rows: int) -> int:
    """Number of concurrent rows for padded size ``b``: ``rows`` for b <= 12, fewer above
    (keeps the (R, b, b) Hessian block near the same memory)."""
    return int(max(256, min(rows, rows * 144 // (b * b))))


_executables: dict = {}


def _aot(name: str, lower, key: tuple):
    """Ahead-of-time compiled executable (``lower()`` returns the lowered computation) for this
    key, and the seconds spent compiling it now (0 when already compiled in this process), so
    compilation is timed separately from running."""
    k = (name, *key)
    if k in _executables:
        return _executables[k], 0.0
    t0 = time.perf_counter()
    exe = lower().compile()
    _executables[k] = exe
    return exe, time.perf_counter() - t0


def _compiled_block(take, phi, lam, nit, n_steps: int, critical: bool):
    key = (phi.shape, n_steps, critical)
    return _aot("block", lambda: _tr_newton_block.lower(
        take, phi, lam, nit, n_steps, 0, 0.0, 0.0, 0.0, critical), key)


def _eigvals(P: PotentialParams, phi) -> tuple[np.ndarray, float]:
    P = PotentialParams(*(np.asarray(x) for x in P))
    exe, cs = _aot("eig", lambda: _eigvals_kernel.lower(P, phi), (np.shape(phi),))
    return np.asarray(exe(P, phi)), cs


def _run_bucket(P_all: PotentialParams, phi0_all, b, R, n_steps, max_iter, gtol, max_step,
                critical=False):
    """Work queue over the rows ``(T, b)`` of one bucket.

    R slots advance ``n_steps`` iterations per kernel call; finished rows are written out and
    their slots refilled from the queue, so no slot waits for the slowest row of a batch. When
    the queue is empty and few rows are still live, they are moved to a smaller slot array
    (R/8, then R/64), so the tail does not cost a full-width call per step. Each slot count
    compiles once per bucket. Returns φ ``(T, b)``, V ``(T,)``, |∇V|_∞ ``(T,)``, iterations
    ``(T,)`` and the seconds spent compiling.
    """
    total = phi0_all.shape[0]
    ladder = [r for r in (R, R // 4, R // 16, R // 64) if r >= 16] or [R]
    res_phi = np.zeros_like(phi0_all)
    res_f = np.full(total, np.nan)
    res_g = np.full(total, np.nan)
    res_nit = np.zeros(total, np.int64)
    compile_s = 0.0
    # start at the widest rung that the queue fills (fixed shapes: compiled once, then cached)
    level = next((k for k, r in enumerate(ladder) if r <= total), len(ladder) - 1)
    R = ladder[level]
    n0 = min(R, total)
    slot_row = np.concatenate([np.arange(n0), np.zeros(R - n0, np.int64)])
    nxt = n0
    take = jax.tree_util.tree_map(lambda x: np.array(x[slot_row]), P_all)
    phi = phi0_all[slot_row].copy()
    lam = np.full(R, -1.0)
    nit = np.zeros(R, np.int64)
    nit[n0:] = max_iter  # padding rows are stopped from the start
    live = np.arange(R) < n0
    while live.any():
        exe, cs = _compiled_block(take, phi, lam, nit, n_steps, critical)
        compile_s += cs
        out = jax.block_until_ready(exe(take, phi, lam, nit, int(max_iter), float(gtol),
                                        float(PHI_BOUND), float(max_step)))
        phi, lam, nit, f, ginf, done = (np.array(x) for x in out)
        fin = np.flatnonzero(done & live)
        rows = slot_row[fin]
        res_phi[rows], res_f[rows], res_g[rows], res_nit[rows] = (
            phi[fin], f[fin], ginf[fin], nit[fin])
        live[fin] = False
        n_new = min(len(fin), total - nxt)
        if n_new:
            sl = fin[:n_new]
            new_rows = np.arange(nxt, nxt + n_new)
            nxt += n_new
            slot_row[sl] = new_rows
            for fld, arr in zip(P_all._fields, take, strict=True):
                arr[sl] = getattr(P_all, fld)[new_rows]
            phi[sl] = phi0_all[new_rows]
            lam[sl] = -1.0
            nit[sl] = 0
            live[sl] = True
        n_live = int(live.sum())
        if nxt == total and level + 1 < len(ladder) and 0 < n_live <= ladder[level + 1]:
            # shrink: keep the live rows, pad with copies of the first live row (frozen: done)
            level += 1
            R = ladder[level]
            keep = np.flatnonzero(live)
            sel = np.concatenate([keep, np.full(R - len(keep), keep[0])])
            slot_row = slot_row[sel]
            take = PotentialParams(*(np.array(x[sel]) for x in take))
            phi, lam, nit = phi[sel].copy(), lam[sel].copy(), nit[sel].copy()
            live = np.zeros(R, bool)
            live[: len(keep)] = True
            nit[len(keep):] = max_iter  # padding rows are stopped from the start
    return res_phi, res_f, res_g, res_nit, compile_s


@x64
def newton_padded(P: PotentialParams, phi0, gtol: float = GTOL, max_iter: int = 200,
                  rows: int = 4096, n_steps: int = 8, mode: str = "minimize",
                  threshold: float = 1e-3) -> dict:
    """Batched multi-start trust-region Newton on padded potentials of one size bucket.

    P: padded params ``(B, ...)`` with ``N`` padded moduli; phi0 ``(B, S, N)`` starting points
    (0 in padded coordinates). Every (potential, start) pair is one row of a work queue
    (:func:`_run_bucket`). ``mode="minimize"`` keeps the lowest-V converged start (the vacuum);
    ``mode="critical"`` searches critical points of any type and keeps a start whose
    fixed-``threshold`` label is the most common among converged starts (ties: lowest V).

    Returns a dict of arrays over potentials: ``phi`` ``(B, N)``, ``value``, ``grad_inf``,
    ``converged`` (bool), ``reason`` (codes of :mod:`.labels`), ``n_iter`` (summed over starts),
    ``phi_norm`` ``(B,)``, ``eigvals`` ``(B, N)`` (NaN-padded), and ``compile_s`` (float).
    """
    if mode not in ("minimize", "critical"):
        raise ValueError(f"mode={mode!r}, expected 'minimize' or 'critical'")
    phi0 = np.asarray(phi0, float)
    B, S, N = phi0.shape
    mask = np.asarray(P.mask)
    if mask.shape != (B, N):
        raise ValueError(f"phi0 {phi0.shape} does not match params mask {mask.shape}")
    if np.any(phi0 * (1 - mask[:, None, :]) != 0):
        raise ValueError("phi0 must be 0 in padded coordinates")
    P_rows = PotentialParams(*(np.repeat(np.asarray(x), S, axis=0) for x in P))
    phi, f, ginf, nit, cs = _run_bucket(P_rows, phi0.reshape(B * S, N), N,
                                        slots_for_bucket(N, rows), n_steps, max_iter, gtol,
                                        1.0, mode == "critical")
    f, ginf, nit = f.reshape(B, S), ginf.reshape(B, S), nit.reshape(B, S)
    phi = phi.reshape(B, S, N)
    far = np.linalg.norm(phi, axis=-1) > PHI_BOUND
    fin = np.isfinite(f) & np.isfinite(ginf)
    ok = fin & (ginf <= GTOL_CHECK) & ~far
    ar = np.arange(B)
    if mode == "critical":
        ev_all, cs_e = _eigvals(P_rows, phi.reshape(B * S, N))
        cs += cs_e
        safe = np.where(ok.reshape(-1)[:, None], ev_all, 1.0)
        lab = classify_eigenvalues(np.where(np.isfinite(ev_all), safe, np.nan),
                                   threshold).reshape(B, S)
        counts = np.stack([((lab == k) & ok).sum(1) for k in range(len(LABELS))], 1)
        top = counts.argmax(1)
        pick = ok & (lab == top[:, None])
        score = np.where(pick, f, np.inf)
    else:
        score = np.where(ok, f, np.inf)
    # best start: chosen converged start; else a runaway start; else the smallest gradient
    score = np.where(ok, score, np.where(far & fin, 1e300, np.inf))
    best = np.where((ok | (far & fin)).any(1), np.argmin(score, 1),
                    np.argmin(np.where(np.isfinite(ginf), ginf, np.inf), 1))
    phib = phi[ar, best]
    okb, finb = ok[ar, best], fin[ar, best]
    ev, cs_e = _eigvals(P, phib)
    cs += cs_e
    reason = np.where(okb | far[ar, best], OK, np.where(finb, MAX_ITER, NONFINITE))
    return dict(phi=phib, value=f[ar, best], grad_inf=ginf[ar, best], converged=okb,
                reason=reason, n_iter=nit.sum(1), phi_norm=np.linalg.norm(phib, axis=-1),
                eigvals=ev, compile_s=cs)


def _solve_jax(potentials, starts, gtol, max_iter, rows, n_steps=8):
    B = len(potentials)
    n_starts = starts[0].shape[0]
    ns = np.array([p.n for p in potentials])
    n_max = int(ns.max())
    phi_out = [None] * B
    out = dict(value=np.full(B, np.nan), grad_inf=np.full(B, np.nan),
               converged=np.zeros(B, bool), reason=np.zeros(B, np.int64),
               n_iter=np.zeros(B, np.int64))
    ev_out = np.full((B, n_max), np.nan)
    compile_s = 0.0
    t0 = time.perf_counter()
    buckets = np.array([bucket_size(int(n)) for n in ns])
    for b in np.unique(buckets):
        b = int(b)
        idx = np.flatnonzero(buckets == b)
        P = stack_potentials([potentials[i] for i in idx], b)
        phi0 = np.zeros((len(idx), n_starts, b))
        for j, i in enumerate(idx):
            phi0[j, :, : ns[i]] = starts[i]
        r = newton_padded(P, phi0, gtol, max_iter, rows, n_steps)
        compile_s += r["compile_s"]
        ev_out[idx, : min(b, n_max)] = r["eigvals"][:, :n_max]
        for k in out:
            out[k][idx] = r[k]
        for j, i in enumerate(idx):
            phi_out[i] = r["phi"][j, : ns[i]]
    wall = time.perf_counter() - t0
    nit = out["n_iter"]
    return SolveResult("jax_newton", phi_out, eigvals=ev_out, wall_s=wall, compile_s=compile_s,
                       n_fev=nit + n_starts, n_gev=nit + n_starts, n_hev=nit + n_starts, **out)


def solve(potentials: list[Potential], method: str, starts: list[np.ndarray],
          gtol: float = GTOL, max_iter: int = 200, rows: int = 4096) -> SolveResult:
    """Minimise each potential from its starting points ``starts[b]`` ``(n_starts, n_b)``.

    ``method`` in :data:`METHODS`; ``gtol`` the solver's own gradient tolerance; ``max_iter``
    iterations per start in [1, 10000]; ``rows`` concurrent (potential, start) rows of the JAX
    work queue for buckets up to 12 moduli (fewer for larger buckets; one compile per bucket).
    Returns a :class:`SolveResult`.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}, expected one of {METHODS}")
    if not 1 <= max_iter <= 10000:
        raise ValueError(f"max_iter={max_iter} outside [1, 10000]")
    if len(potentials) == 0 or len(starts) != len(potentials):
        raise ValueError(f"need one starts array per potential: {len(starts)} vs {len(potentials)}")
    for k, (pot, st) in enumerate(zip(potentials, starts, strict=True)):
        if st.ndim != 2 or st.shape[1] != pot.n:
            raise ValueError(f"starts[{k}] has shape {st.shape}, expected (n_starts, {pot.n})")
    if method == "jax_newton":
        return _solve_jax(potentials, starts, gtol, max_iter, rows)
    return _solve_scipy(potentials, method, starts, gtol, max_iter)
