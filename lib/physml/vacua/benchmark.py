"""Solver comparison on the same potentials and starts: iterations, evaluations, wall time,
success and label agreement per solver and n_moduli; the trust-ncg vs FD-BFGS speed-up."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .labels import LABELS, label_points
from .potential import sample_mixture
from .solvers import METHODS, solve, starting_points

SOURCE_SPEEDUP_CLAIM = {"low": 10.0, "typical": 20.0, "high": 50.0}
REFERENCE = "trust_exact"


def compare_solvers(n_values, per_n: int, seed: int, methods=METHODS, n_starts: int = 3,
                    max_iter: int = 200) -> pd.DataFrame:
    """Run every method on the same potentials (``per_n`` per n in ``n_values``, regimes from the
    mixture) and the same ``n_starts`` starts, one n at a time (so wall times are per n; the
    JAX kernel gets one batch of ``per_n`` potentials per n, compilation excluded and reported
    in ``compile_s``). Rows per (method, potential): method, seed, n, regime, wall_s (per
    potential, averaged over its n group), n_iter, n_fev, n_gev, n_hev, converged, label, value,
    same_minimum (|V − V_ref| <= 1e-8(1 + |V_ref|), ref = trust_exact), label_agrees, compile_s.
    """
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"method {m!r} not in {METHODS}")
    rng = np.random.default_rng(seed)
    rows = []
    for n in n_values:
        pots = sample_mixture(np.full(per_n, int(n)), rng)
        starts = starting_points(pots, n_starts, rng)
        results = {m: solve(pots, m, starts, max_iter=max_iter) for m in methods}
        ref = results.get(REFERENCE) or solve(pots, REFERENCE, starts, max_iter=max_iter)
        ref_lab = label_points(ref.eigvals, ref.converged, ref.reason, ref.phi_norm)
        for m, r in results.items():
            lab = label_points(r.eigvals, r.converged, r.reason, r.phi_norm)
            same = np.abs(r.value - ref.value) <= 1e-8 * (1 + np.abs(ref.value))
            rows.append(pd.DataFrame(dict(
                method=m, seed=seed, n=int(n), regime=[p.regime for p in pots],
                wall_s=(r.wall_s - r.compile_s) / per_n, n_iter=r.n_iter, n_fev=r.n_fev,
                n_gev=r.n_gev, n_hev=r.n_hev, converged=r.converged,
                label=np.asarray(LABELS)[lab], value=r.value, same_minimum=same,
                label_agrees=lab == ref_lab, compile_s=r.compile_s)))
    return pd.concat(rows, ignore_index=True)


def summary_by_method(df: pd.DataFrame, by=("method",)) -> pd.DataFrame:
    """Mean per group: success_rate, same_minimum_rate, label_agreement, iterations, function /
    gradient / Hessian evaluations per potential, wall ms per potential."""
    g = df.groupby(list(by))
    return pd.DataFrame(dict(
        success_rate=g.converged.mean(), same_minimum_rate=g.same_minimum.mean(),
        label_agreement=g.label_agrees.mean(), iterations=g.n_iter.mean(),
        f_evals=g.n_fev.mean(), grad_evals=g.n_gev.mean(), hess_evals=g.n_hev.mean(),
        wall_ms_per_potential=1e3 * g.wall_s.mean())).reset_index()


def wall_per_seed(df: pd.DataFrame) -> pd.DataFrame:
    """Mean wall time per potential, one row per seed, one column per method."""
    return df.groupby(["seed", "method"]).wall_s.mean().unstack()


def compare_solvers_seeds(n_values, per_n: int, seeds, methods=METHODS, n_starts: int = 3,
                          max_iter: int = 200) -> pd.DataFrame:
    """:func:`compare_solvers` for every seed in ``seeds`` (fresh potentials per seed), stacked."""
    return pd.concat([compare_solvers(n_values, per_n, int(s), methods, n_starts, max_iter)
                      for s in seeds], ignore_index=True)


def speedup_cis(df: pd.DataFrame, methods, slow: str = "bfgs_fd") -> dict:
    """{method: geometric-mean CI of the per-seed wall-time ratio slow/method}.

    Ratios are paired per seed (same potentials and starts) and compared on the log scale
    (:func:`physml.stats.ratio_ci`), so an interval is never negative.
    """
    from physml import stats

    w = wall_per_seed(df)
    return {m: stats.ratio_ci(w[slow].to_numpy(), w[m].to_numpy()).diff for m in methods}
