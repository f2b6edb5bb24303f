"""A fair solver race: every solver judged by its distance to the same true vacuum.

Every solver minimises the same potentials from the same starting points. Its answer for a
potential is its lowest-V end point over the starts. Each end point of every solver is then
*polished* by the same float64 Newton iteration on ∇V = 0 (:func:`polish`), which lands on the
critical point the end point belongs to, to rounding level. The potential's **true vacuum** is
the lowest-V polished point that is a minimum (no Hessian eigenvalue below −1e-8 · max|λ|),
inside |φ|₂ <= 100, over all solvers and starts — one reference, the same for every solver.

Per solver and potential the outcome is:
  ``correct``      its answer lies within ``eps_success`` (max-norm) of the true vacuum;
  ``wrong_point``  its polished answer is a converged critical point other than the true vacuum
                   (farther than ``eps_same`` from it): a different minimum, a saddle, ...;
  ``imprecise``    anything else (the polish lands on the true vacuum, but the answer was not
                   within ``eps_success``; or the polish does not converge).

Time-to-ε: the scipy solvers record every iterate with its time stamp (a callback costing the
same for every solver). For the starts run one after the other, ``t_eps`` is the elapsed time
until the first iterate within ε of the true vacuum (an oracle stop, the same for every solver);
a potential whose vacuum is never reached to ε costs its whole run.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from .potential import Potential, sample_mixture
from .solvers import PHI_BOUND, solve, starting_points

#: scipy solvers of the race: name -> (scipy method, derivatives passed)
SCIPY_RACE = {
    "trust_exact": ("trust-exact", ("jac", "hess")),
    "trust_krylov": ("trust-krylov", ("jac", "hessp")),
    "newton_cg": ("Newton-CG", ("jac", "hessp")),
    "lbfgs": ("L-BFGS-B", ("jac",)),
    "bfgs": ("BFGS", ("jac",)),
    "bfgs_fd": ("BFGS", ()),
}
RACE_METHODS = (*SCIPY_RACE, "jax_newton")
ANALYTIC_ONE_AT_A_TIME = ("trust_exact", "trust_krylov", "newton_cg", "lbfgs", "bfgs")
FD_BASELINE = "bfgs_fd"
EPS_GRID = tuple(10.0 ** -k for k in range(3, 11))
POLISH_GTOL = 1e-9


@dataclass
class Polished:
    """Result of :func:`polish`: the point ``(n,)``, |∇V|_∞ there, iterations, converged."""

    x: np.ndarray
    grad_inf: float
    n_iter: int
    converged: bool


def polish(pot: Potential, x0, max_iter: int = 100, gtol: float = POLISH_GTOL) -> Polished:
    """Newton's method on ∇V(φ) = 0 in float64 from ``x0`` ``(n,)``, to rounding level.

    Step p = −H⁻¹∇V (least squares when H is singular), halved until |∇V|² decreases by the
    Armijo factor (a merit function that any critical point minimises, so the iteration stays
    with the critical point the start belongs to instead of descending to another minimum).
    Stops when |∇V|_∞ cannot be lowered further; ``converged`` when |∇V|_∞ <= ``gtol``.
    """
    x = np.asarray(x0, dtype=float).copy()
    if not np.all(np.isfinite(x)):
        return Polished(x, float("inf"), 0, False)
    g = pot.grad(x)
    m = float(g @ g)
    k = 0
    while k < max_iter:
        k += 1
        if not np.isfinite(m):
            break
        H = pot.hess(x)
        try:
            p = np.linalg.solve(H, -g)
        except np.linalg.LinAlgError:
            p = np.linalg.lstsq(H, -g, rcond=None)[0]
        t, moved = 1.0, False
        while t > 1e-12:
            xn = x + t * p
            gn = pot.grad(xn)
            mn = float(gn @ gn)
            if np.isfinite(mn) and mn <= (1.0 - 1e-4 * t) * m:
                moved = True
                break
            t *= 0.5
        if not moved:
            break
        x, g, m = xn, gn, mn
        if m == 0.0:
            break
    ginf = float(np.max(np.abs(g))) if np.isfinite(m) else float("inf")
    return Polished(x, ginf, k, bool(ginf <= gtol))


def min_eig_ratio(pot: Potential, x) -> float:
    """Smallest Hessian eigenvalue at ``x`` divided by the largest |eigenvalue|."""
    ev = np.linalg.eigvalsh(pot.hess(x))
    return float(ev.min() / max(np.abs(ev).max(), 1e-300))


def run_scipy(pot: Potential, method: str, starts, gtol: float, max_iter: int) -> dict:
    """One race entry: ``method`` (a key of :data:`SCIPY_RACE`) from every start ``(S, n)``.

    Returns a dict: ``ends`` ``(S, n)`` end points, ``values`` ``(S,)``, ``traj`` list of
    (times ``(k,)`` seconds since the start's launch, iterates ``(k, n)``) per start,
    ``durations`` ``(S,)`` seconds, and nfev, ngev, nhev, nit summed over the starts.
    """
    scipy_method, derivs = SCIPY_RACE[method]
    kw = {"method": scipy_method}
    if "jac" in derivs:
        kw["jac"] = pot.grad
    if "hess" in derivs:
        kw["hess"] = pot.hess
    if "hessp" in derivs:
        kw["hessp"] = pot.hessp
    opts = {"maxiter": max_iter}
    if scipy_method == "Newton-CG":
        opts["xtol"] = gtol  # Newton-CG has no gradient tolerance; it stops on the step size
    else:
        opts["gtol"] = gtol
    ends, values, traj, durations = [], [], [], []
    counts = dict(nfev=0, ngev=0, nhev=0, nit=0)
    for x0 in starts:
        ts, xs = [0.0], [np.array(x0, float)]
        t0 = time.perf_counter()

        def callback(xk, ts=ts, xs=xs, t0=t0):
            ts.append(time.perf_counter() - t0)
            xs.append(np.array(xk, float))

        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            res = minimize(pot.value, x0, callback=callback, options=opts, **kw)
        dt = time.perf_counter() - t0
        x = np.asarray(res.x, float)
        ts.append(dt)
        xs.append(x)
        ends.append(x)
        values.append(float(pot.value(x)) if np.all(np.isfinite(x)) else np.inf)
        traj.append((np.asarray(ts), np.asarray(xs)))
        durations.append(dt)
        counts["nfev"] += int(res.nfev)
        counts["ngev"] += int(getattr(res, "njev", 0) or 0)
        counts["nhev"] += int(getattr(res, "nhev", 0) or 0)
        counts["nit"] += int(getattr(res, "nit", 0) or 0)
    return dict(ends=np.asarray(ends), values=np.asarray(values), traj=traj,
                durations=np.asarray(durations), **counts)


def true_vacuum(pot: Potential, candidates) -> tuple[np.ndarray | None, float]:
    """Polish every candidate end point ``(K, n)``; return the lowest-V polished minimum inside
    |φ|₂ <= 100 (None when there is none) and its value."""
    best, best_v = None, np.inf
    for x in candidates:
        p = polish(pot, x)
        if not p.converged or np.linalg.norm(p.x) > PHI_BOUND:
            continue
        if min_eig_ratio(pot, p.x) < -1e-8:
            continue
        v = float(pot.value(p.x))
        if v < best_v:
            best, best_v = p.x, v
    return best, best_v


def judge(pot: Potential, answer, x_true, eps_success: float = 1e-6,
          eps_same: float = 1e-6) -> tuple[float, str]:
    """Max-norm distance of ``answer`` ``(n,)`` to the true vacuum ``x_true`` ``(n,)`` and the
    outcome: "correct" (distance <= ``eps_success``), "wrong_point" (the polished answer is a
    converged critical point farther than ``eps_same`` from the true vacuum) or "imprecise"."""
    answer = np.asarray(answer, float)
    if not np.all(np.isfinite(answer)):
        return float("inf"), "imprecise"
    dist = float(np.max(np.abs(answer - x_true)))
    if dist <= eps_success:
        return dist, "correct"
    p = polish(pot, answer)
    far = float(np.max(np.abs(p.x - x_true))) > eps_same
    return dist, "wrong_point" if (p.converged and far) else "imprecise"


def time_to_eps(traj, x_true, eps_grid=EPS_GRID) -> np.ndarray:
    """Seconds ``(len(eps_grid),)`` until the first iterate within ε (max-norm) of ``x_true``,
    starts run one after the other; a start that never gets there costs its whole duration and
    ``inf`` is returned when no start gets there."""
    out = np.full(len(eps_grid), np.inf)
    elapsed = 0.0
    for ts, xs in traj:
        d = np.max(np.abs(xs - x_true), axis=1)
        for j, eps in enumerate(eps_grid):
            if np.isfinite(out[j]):
                continue
            hit = np.flatnonzero(d <= eps)
            if hit.size:
                out[j] = elapsed + ts[hit[0]]
        elapsed += ts[-1]
    return out


def race(n_values, per_n: int, seed: int, methods=RACE_METHODS, n_starts: int = 3,
         gtol: float = 1e-8, max_iter: int = 200, eps_success: float = 1e-6,
         eps_same: float = 1e-6, eps_grid=EPS_GRID) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Race ``methods`` on ``per_n`` mixture potentials per n in ``n_values`` (seed ``seed``).

    Every method gets the same potentials and the same ``n_starts`` starts per potential and its
    own tolerance ``gtol`` (|∇V|_∞ for the gradient methods; the step size for Newton-CG).
    The batched JAX Newton solves each n's potentials in one padded batch (compiled beforehand on
    the same shapes, so its time excludes compilation); it records no iterates, so it has no
    time-to-ε row. Solvers run in an order rotated per n so that load drift hits all alike.
    The scipy solvers run with one BLAS/OpenMP thread (:func:`physml.timing.threads`): their
    matrices are at most n × n, where extra BLAS threads only add synchronisation and make a
    solver's time depend on how its threads compete with other load on the machine.

    Returns ``(per_potential, time_to_eps)``: one row per (method, potential) with seed, n,
    regime, wall_s, nfev, ngev, nhev, nit, dist (max-norm distance of the answer to the true
    vacuum), outcome (correct / wrong_point / imprecise); and one row per (method, potential, ε)
    with t_eps_s (inf when never reached) and wall_s. Potentials without a true vacuum (every
    polished point a runaway or a non-minimum) are dropped and counted in ``attrs["dropped"]``.
    """
    unknown = set(methods) - set(RACE_METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}, expected some of {RACE_METHODS}")
    if not 0 < eps_success < 1 or not 0 < eps_same < 1:
        raise ValueError(f"eps_success={eps_success}, eps_same={eps_same} must lie in (0, 1)")
    from physml import timing

    with timing.threads(1):  # one BLAS thread for every solver (see above)
        return _race(n_values, per_n, seed, methods, n_starts, gtol, max_iter, eps_success,
                     eps_same, eps_grid)


def _race(n_values, per_n, seed, methods, n_starts, gtol, max_iter, eps_success, eps_same,
          eps_grid) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    rows, trows, dropped = [], [], 0
    methods = list(methods)
    for k_n, n in enumerate(n_values):
        pots = sample_mixture(np.full(per_n, int(n)), rng)
        starts = starting_points(pots, n_starts, rng)
        order = methods[k_n % len(methods):] + methods[: k_n % len(methods)]
        runs: dict[str, list] = {}
        for m in order:
            if m == "jax_newton":
                solve(pots, m, starts, gtol=gtol, max_iter=max_iter)  # compile these shapes
                t0 = time.perf_counter()
                r = solve(pots, m, starts, gtol=gtol, max_iter=max_iter)
                wall = (time.perf_counter() - t0 - r.compile_s) / len(pots)
                runs[m] = [dict(answer=np.asarray(r.phi[b]), wall_s=wall, nfev=int(r.n_fev[b]),
                                ngev=int(r.n_gev[b]), nhev=int(r.n_hev[b]),
                                nit=int(r.n_iter[b]), ends=np.asarray(r.phi[b])[None],
                                traj=None) for b in range(len(pots))]
            else:
                out = []
                for b, pot in enumerate(pots):
                    r = run_scipy(pot, m, starts[b], gtol, max_iter)
                    out.append(dict(answer=r["ends"][np.argmin(r["values"])],
                                    wall_s=float(r["durations"].sum()), nfev=r["nfev"],
                                    ngev=r["ngev"], nhev=r["nhev"], nit=r["nit"],
                                    ends=r["ends"], traj=r["traj"]))
                runs[m] = out
        for b, pot in enumerate(pots):
            cands = np.concatenate([runs[m][b]["ends"] for m in methods])
            x_true, _ = true_vacuum(pot, cands)
            if x_true is None:
                dropped += 1
                continue
            for m in methods:
                e = runs[m][b]
                ans = e["answer"]
                dist, outcome = judge(pot, ans, x_true, eps_success, eps_same)
                rows.append(dict(method=m, seed=seed, n=int(n), regime=pot.regime,
                                 wall_s=e["wall_s"], nfev=e["nfev"], ngev=e["ngev"],
                                 nhev=e["nhev"], nit=e["nit"], dist=dist, outcome=outcome))
                if e["traj"] is not None:
                    tt = time_to_eps(e["traj"], x_true, eps_grid)
                    for eps, t in zip(eps_grid, tt, strict=True):
                        trows.append(dict(method=m, seed=seed, n=int(n), eps=eps, t_eps_s=t,
                                          wall_s=e["wall_s"]))
    per = pd.DataFrame(rows)
    per.attrs["dropped"] = dropped
    return per, pd.DataFrame(trows)


def race_seeds(n_values, per_n: int, seeds, **kw) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`race` for every seed (fresh potentials per seed), stacked; ``attrs["dropped"]``
    sums the potentials without a true vacuum."""
    parts = [race(n_values, per_n, int(s), **kw) for s in seeds]
    per = pd.concat([p for p, _ in parts], ignore_index=True)
    per.attrs["dropped"] = sum(p.attrs["dropped"] for p, _ in parts)
    return per, pd.concat([t for _, t in parts], ignore_index=True)


def per_seed(per: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, seed): success_rate, wrong_point_rate, imprecise_rate,
    ms_per_correct_vacuum (total wall time / correct answers; inf when none is correct),
    nfev, ngev, nhev, nit (means per potential)."""
    g = per.groupby(["method", "seed"])
    out = pd.DataFrame(dict(
        success_rate=g.outcome.apply(lambda s: float((s == "correct").mean())),
        wrong_point_rate=g.outcome.apply(lambda s: float((s == "wrong_point").mean())),
        imprecise_rate=g.outcome.apply(lambda s: float((s == "imprecise").mean())),
        n_correct=g.outcome.apply(lambda s: int((s == "correct").sum())),
        wall_s=g.wall_s.sum(), nfev=g.nfev.mean(), ngev=g.ngev.mean(), nhev=g.nhev.mean(),
        nit=g.nit.mean())).reset_index()
    out["ms_per_correct_vacuum"] = np.where(out.n_correct > 0,
                                            1e3 * out.wall_s / out.n_correct.clip(lower=1),
                                            np.inf)
    return out


def ms_per_vacuum_at_eps(tte: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, seed, eps): ms per vacuum located to ε with the oracle stop
    (Σ min(t_ε, whole run) / number located), and the fraction located."""
    t = tte.assign(cost=np.where(np.isfinite(tte.t_eps_s), tte.t_eps_s, tte.wall_s),
                   located=np.isfinite(tte.t_eps_s))
    g = t.groupby(["method", "seed", "eps"])
    out = pd.DataFrame(dict(cost=g.cost.sum(), located=g.located.sum(),
                            fraction_located=g.located.mean())).reset_index()
    out["ms_per_vacuum"] = np.where(out.located > 0, 1e3 * out.cost / out.located.clip(lower=1),
                                    np.inf)
    return out


def best_analytic(seeds_table: pd.DataFrame, candidates=ANALYTIC_ONE_AT_A_TIME) -> str:
    """The one-problem-at-a-time analytic solver with the lowest mean ms per correct vacuum
    among those with a success rate at least FD-BFGS's (mean over seeds)."""
    m = seeds_table.groupby("method")[["ms_per_correct_vacuum", "success_rate"]].mean()
    fd_rate = m.loc[FD_BASELINE, "success_rate"]
    ok = [c for c in candidates if c in m.index and m.loc[c, "success_rate"] >= fd_rate]
    if not ok:
        ok = [c for c in candidates if c in m.index]
    return min(ok, key=lambda c: m.loc[c, "ms_per_correct_vacuum"])


#: cited anchors of the race (issue 15): the audit's trust-exact / FD-BFGS ratio per correct
#: vacuum, and the target for the best one-problem-at-a-time analytic solver
AUDIT_TRUST_EXACT_SPEEDUP = 3.7
TARGET_SPEEDUP = 5.0


def cis(seeds_table: pd.DataFrame, metric: str, methods=None, log: bool = False) -> dict:
    """``{method: stats.CI}`` of ``metric`` over seeds (a column of :func:`per_seed`); with
    ``log=True`` the geometric mean and its CI (t-interval of the logs, for times, never
    negative). A method with a non-finite value in some seed (e.g. no correct vacuum at all) is
    left out."""
    from physml import stats

    methods = list(methods) if methods is not None else list(seeds_table.method.unique())
    out = {}
    for m in methods:
        v = seeds_table.loc[seeds_table.method == m, metric].to_numpy(float)
        if v.size < 2 or not np.all(np.isfinite(v)) or (log and np.any(v <= 0)):
            continue
        if log:
            out[m] = stats.geometric_mean_ci(v)
        else:
            out[m] = stats.mean_ci(v)
    return out


def per_seed_values(seeds_table: pd.DataFrame, method: str, metric: str) -> np.ndarray:
    """Values ``(n_seeds,)`` of ``metric`` for ``method``, ordered by seed (for paired tests)."""
    t = seeds_table[seeds_table.method == method].sort_values("seed")
    if t.empty:
        raise ValueError(f"no rows for method {method!r}")
    return t[metric].to_numpy(float)


def speedups_vs_fd(seeds_table: pd.DataFrame, methods) -> dict:
    """``{method: stats.CI}``: paired per-seed ratio FD-BFGS ms / method ms per correct vacuum
    (geometric mean, CI on the log scale; :func:`physml.stats.ratio_ci`)."""
    from physml import stats

    fd = per_seed_values(seeds_table, FD_BASELINE, "ms_per_correct_vacuum")
    out = {}
    for m in methods:
        v = per_seed_values(seeds_table, m, "ms_per_correct_vacuum")
        if np.all(np.isfinite(v)) and np.all(np.isfinite(fd)):
            out[m] = stats.ratio_ci(fd, v).diff
    return out


def summary_table(seeds_table: pd.DataFrame) -> pd.DataFrame:
    """Per method: success, wrong-point and imprecise rates, ms per correct vacuum (means over
    seeds) and mean evaluation counts per potential (all starts)."""
    cols = ["success_rate", "wrong_point_rate", "imprecise_rate", "ms_per_correct_vacuum",
            "nfev", "ngev", "nhev", "nit"]
    return seeds_table.groupby("method")[cols].mean().reset_index()


def cost_by_n(per: pd.DataFrame) -> pd.DataFrame:
    """Per (method, n): mean wall ms per potential (all starts) and iterations per potential."""
    return (per.assign(ms=1e3 * per.wall_s).groupby(["method", "n"])
            .agg(wall_ms_per_potential=("ms", "mean"), nit=("nit", "mean")).reset_index())


def located_table(at_eps: pd.DataFrame) -> pd.DataFrame:
    """Fraction of potentials located to ε (mean over seeds): one row per method, one column
    per ε (largest first), from :func:`ms_per_vacuum_at_eps`."""
    frac = at_eps.pivot_table(index="method", columns="eps", values="fraction_located")
    frac = frac.sort_index(axis=1, ascending=False)
    frac.columns = [f"{e:.0e}" for e in frac.columns]
    return frac.reset_index()
