"""A learning task that needs the geometry: fields coupled through the base's intersection form.

One real field φ_i per toric curve D_i of a base B (r curves, cycle of self-intersections
s_i = D_i²). The potential is the study's potential (:mod:`physml.vacua.potential`) with the
kink and rational terms switched off (A = D = 0, c = 0) and the couplings Λ = κ I_B taken from
the intersection matrix I_B (I_ii = s_i, I_ij = 1 for adjacent curves, 0 otherwise):

    V(φ) = Σ_i (M_i² + s₀) φ_i² + κ φᵀ I_B φ + γ Σ_i φ_i⁴        (dimensionless)

φ = 0 is always a critical point; its Hessian is H = 2 diag(M_i² + s₀ + κ s_i) + 2κ A_B with
A_B the adjacency of the cycle. The label is the number of unstable directions of that vacuum
(its Morse index: negative eigenvalues of H, computed by the study's exact Hessian,
:func:`physml.vacua.potential.hess_xp`), capped at ``MAX_INDEX`` — "0" = a stable vacuum.
Two bases with the same number of curves but different self-intersections give different
labels for the same M, s₀, κ.

The closed-form, Hessian-free rule counts the negative diagonal entries, #{i : M_i² + s₀ + κ s_i
< 0} (the uncoupled index); it ignores the κ A_B coupling between neighbouring curves, which
is exactly what the geometry adds. The exact index has no closed form beyond diagonalising
(or factorising) H. The simplest learned baseline is a multinomial logistic regression on
per-node aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from physml import splits

from .geometry import Geometry
from .potential import PotentialParams, hess_xp

MAX_INDEX = 3
CLASSES = tuple(str(k) for k in range(MAX_INDEX)) + (f">={MAX_INDEX}",)
#: sampling ranges: M_i² ~ U(0, M2_MAX), s₀ ~ U(S0_RANGE), κ ~ U(KAPPA_RANGE), γ ~ U(0.1, 1)
M2_MAX = 1.0
S0_RANGE = (0.0, 0.8)
KAPPA_RANGE = (0.1, 0.4)


def base_geometries(max_rays: int) -> list[Geometry]:
    """The good toric bases of the census (:mod:`physml.vacua.census`) with at most
    ``max_rays`` rays (3 … 16), as geometries with ids 0 … N−1 sorted by (rays, cycle)."""
    from .census import enumerate_bases

    if not 3 <= max_rays <= 16:
        raise ValueError(f"max_rays={max_rays} outside [3, 16]")
    _, extra = enumerate_bases(max_rays, keep_cycles=True)
    cycles = sorted(set(extra["cycles"]), key=lambda c: (len(c), c))
    return [Geometry(gid=k, self_int=c) for k, c in enumerate(cycles)]


def intersection_matrix(self_int) -> np.ndarray:
    """Intersection matrix ``(r, r)`` of the toric curves of a cycle ``(r,)``: D_i² on the
    diagonal, 1 between neighbours (r >= 3).

    >>> intersection_matrix((1, 1, 1)).tolist()
    [[1, 1, 1], [1, 1, 1], [1, 1, 1]]
    """
    s = np.asarray(self_int, np.int64)
    r = len(s)
    if r < 3:
        raise ValueError(f"a toric cycle has at least 3 curves, got {tuple(s)}")
    out = np.diag(s)
    for i in range(r):
        out[i, (i + 1) % r] = out[(i + 1) % r, i] = 1
    return out


@dataclass
class CoupledPool:
    """Potentials on bases: params padded to N = max rays ``(B, ...)``, geometry id ``(B,)``,
    κ ``(B,)``, s₀ ``(B,)``, node features ``(B, N, 3)`` = (s_i, M_i², diagonal
    d_i = M_i² + s₀ + κ s_i), mask ``(B, N)``."""

    params: PotentialParams
    gid: np.ndarray
    kappa: np.ndarray
    s0: np.ndarray
    nodes: np.ndarray
    mask: np.ndarray

    def __len__(self) -> int:
        return len(self.gid)


def sample_pool(geometries: list[Geometry], samples_per_geometry: int,
                rng: np.random.Generator) -> CoupledPool:
    """``samples_per_geometry`` potentials on every base (ranges :data:`M2_MAX`,
    :data:`S0_RANGE`, :data:`KAPPA_RANGE`)."""
    if samples_per_geometry < 1:
        raise ValueError(f"samples_per_geometry={samples_per_geometry} must be >= 1")
    if not geometries:
        raise ValueError("no geometries given")
    geo = [g for g in geometries for _ in range(samples_per_geometry)]
    B = len(geo)
    N = max(g.n_rays for g in geometries)
    mask = np.zeros((B, N))
    svals = np.zeros((B, N))
    Lam_geo = np.zeros((B, N, N))
    for k, g in enumerate(geo):
        r = g.n_rays
        mask[k, :r] = 1.0
        svals[k, :r] = g.self_int
        Lam_geo[k, :r, :r] = intersection_matrix(g.self_int)
    M2 = rng.uniform(0.0, M2_MAX, (B, N)) * mask
    s0 = rng.uniform(*S0_RANGE, B)
    kappa = rng.uniform(*KAPPA_RANGE, B)
    gamma = rng.uniform(0.1, 1.0, B)
    z = np.zeros(B)
    P = PotentialParams(M=np.sqrt(M2), Lam=kappa[:, None, None] * Lam_geo, s=s0,
                        c=np.zeros((B, N)), A=z, a=np.ones(B), D=z, p=np.ones(B),
                        gamma=gamma, mask=mask)
    diag = (M2 + s0[:, None] + kappa[:, None] * svals) * mask
    nodes = np.stack([svals, M2, diag], -1) * mask[..., None]
    return CoupledPool(P, np.array([g.gid for g in geo]), kappa, s0, nodes, mask)


def morse_index(P: PotentialParams) -> np.ndarray:
    """Negative eigenvalues ``(B,)`` of the exact Hessian of V at φ = 0 (padding excluded)."""
    H = hess_xp(np.zeros(np.shape(P.mask)), P, xp=np)
    ev = np.linalg.eigvalsh(H)
    # padded rows/columns are zero: their eigenvalues are exactly 0, never negative
    return (ev < 0).sum(1)


def labels(pool: CoupledPool) -> np.ndarray:
    """Class codes ``(B,)`` into :data:`CLASSES`: the Morse index of φ = 0, capped."""
    return np.minimum(morse_index(pool.params), MAX_INDEX)


def diagonal_rule(pool: CoupledPool) -> np.ndarray:
    """The Hessian-free rule: negative diagonal entries #{i : M_i² + s₀ + κ s_i < 0}, capped
    (the Morse index when the curves are not coupled), codes ``(B,)``."""
    return np.minimum(((pool.nodes[..., 2] < 0) & (pool.mask > 0)).sum(1), MAX_INDEX)


def aggregate_features(pool: CoupledPool) -> pd.DataFrame:
    """Per-potential aggregates of the node features ``(B, 9)`` for the linear baseline:
    number of curves, κ, s₀, negative-diagonal count, min / mean diagonal, min / sum of
    s_i, number of negative curves."""
    m = pool.mask > 0
    d = pool.nodes[..., 2]
    s = pool.nodes[..., 0]
    return pd.DataFrame(dict(
        n=m.sum(1), kappa=pool.kappa, s0=pool.s0, neg_diag=((d < 0) & m).sum(1),
        min_diag=np.where(m, d, np.inf).min(1), mean_diag=d.sum(1) / m.sum(1),
        min_s=np.where(m, s, np.inf).min(1), sum_s=s.sum(1), neg_curves=((s < 0) & m).sum(1)))


def geometry_splits(gid, seed: int, n_test_folds: int = 4, n_val_folds: int = 5):
    """(fit, validation, test) row indices for one seed, every side holding whole bases:
    the test bases are fold 0 of a :func:`physml.splits.group_kfold` over ``gid`` ``(B,)``;
    validation bases are fold 0 of a second group k-fold inside the rest. Raises
    :class:`physml.splits.LeakError` if a base appears on two sides."""
    gid = np.asarray(gid)
    outer = splits.group_kfold(gid, n_test_folds, seed=seed, what="base")[0]
    inner = splits.group_kfold(gid[outer.train], n_val_folds, seed=seed, what="base")[0]
    fit, val = outer.train[inner.train], outer.train[inner.test]
    splits.check_no_leak(gid[fit], gid[outer.test], "base")
    splits.check_no_leak(gid[val], gid[outer.test], "base")
    splits.check_no_leak(gid[fit], gid[val], "base")
    return fit, val, outer.test


LEARNED = ("tabular MLP", "graph model", "graph + rule feature")
BASELINES = ("diagonal rule", "linear (logistic) on aggregates", "majority class")


def compare_models(pool: CoupledPool, y, seeds, epochs: int = 40,
                   out_dir: str | Path | None = None, hidden: int = 32) -> pd.DataFrame:
    """Test and validation accuracy per model and seed on base-held-out splits
    (:func:`geometry_splits`). Models: the diagonal rule, majority class, logistic regression
    on :func:`aggregate_features`, a tabular MLP on the padded node features in cycle order,
    the cycle-graph network (:class:`physml.vacua.graph.FanGNN`) on the node features, and the
    same network given the diagonal rule's count as a scalar ("graph + rule feature").
    Returns rows (model, seed, split in {"validation", "test"}, accuracy)."""
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from physml.paths import artifacts_dir
    from physml.train import TrainConfig, seeded

    from .graph import FanGNN, TabularMLP, _fit_eval, _run_dir, cycle_links

    base = Path(out_dir) if out_dir else artifacts_dir("vacua", "coupled")
    y_np = np.asarray(y, np.int64)
    if len(y_np) != len(pool):
        raise ValueError(f"{len(y_np)} labels for {len(pool)} potentials")
    rule = diagonal_rule(pool)
    agg = aggregate_features(pool).to_numpy(float)
    B, N, _ = pool.nodes.shape
    nodes = pool.nodes.copy()
    nodes[..., 0] /= 12.0  # s_i in units of the largest |D²| of a base
    X = torch.as_tensor(np.concatenate([nodes, pool.mask[..., None]], -1), dtype=torch.float32)
    Mk = torch.as_tensor(pool.mask, dtype=torch.float32)
    n = pool.mask.sum(1).astype(int)
    P_, N_ = (torch.as_tensor(a) for a in cycle_links(n, N))
    rows = []
    for seed in seeds:
        seed = int(seed)
        fit, val, te = geometry_splits(pool.gid, seed)
        sides = {"validation": val, "test": te}
        for name, pred in (("diagonal rule", rule),):
            for side, ix in sides.items():
                rows.append(dict(model=name, seed=seed, split=side,
                                 accuracy=float((pred[ix] == y_np[ix]).mean())))
        vals, cnt = np.unique(y_np[fit], return_counts=True)
        for side, ix in sides.items():
            rows.append(dict(model="majority class", seed=seed, split=side,
                             accuracy=float((y_np[ix] == vals[cnt.argmax()]).mean())))
        sc = StandardScaler().fit(agg[fit])
        lr = LogisticRegression(max_iter=2000).fit(sc.transform(agg[fit]), y_np[fit])
        for side, ix in sides.items():
            rows.append(dict(model="linear (logistic) on aggregates", seed=seed, split=side,
                             accuracy=float((lr.predict(sc.transform(agg[ix])) == y_np[ix])
                                            .mean())))
        scal = np.stack([pool.kappa, pool.s0, n / N], 1)
        scal = np.concatenate([scal, X.numpy().reshape(B, -1)], 1)
        rule_col = rule[:, None].astype(float)
        cfg = TrainConfig(epochs=epochs, batch_size=128, lr=3e-3, weight_decay=1e-4,
                          warmup_epochs=1, patience=10, seed=seed, progress=False)
        nc = len(CLASSES)
        for name in LEARNED:
            S = np.concatenate([scal, rule_col], 1) if name == "graph + rule feature" else scal
            if name != "tabular MLP":
                S = S[:, :3] if name == "graph model" else np.concatenate([S[:, :3], rule_col], 1)
            mu, sd = S[fit].mean(0), S[fit].std(0) + 1e-9
            St = torch.as_tensor((S - mu) / sd, dtype=torch.float32)
            data = (X, Mk, P_, N_, St, torch.as_tensor(y_np))
            with seeded(seed):
                model = (TabularMLP(St.shape[1], nc, hidden=2 * hidden) if name == "tabular MLP"
                         else FanGNN(X.shape[-1], St.shape[1], nc, hidden=hidden))
            acc = _fit_eval(model, data, fit, val, {"validation": val, "test": te}, cfg,
                            _run_dir(base, seed, name))
            for side in sides:
                rows.append(dict(model=name, seed=seed, split=side, accuracy=acc[side]))
    return pd.DataFrame(rows)


def selected_learned(res: pd.DataFrame, models=LEARNED) -> pd.DataFrame:
    """Per seed, the test accuracy of the learned model with the best *validation* accuracy
    among ``models`` (selection never looks at the test bases): rows (seed, model, accuracy)."""
    v = res[(res.split == "validation") & res.model.isin(models)]
    t = res[res.split == "test"].set_index(["seed", "model"]).accuracy
    best = v.loc[v.groupby("seed").accuracy.idxmax()]
    return pd.DataFrame(dict(seed=best.seed.to_numpy(), model=best.model.to_numpy(),
                             accuracy=[t[(s, m)] for s, m in zip(best.seed, best.model,
                                                                  strict=True)]))


def training_histories(seed: int, out_dir: str | Path | None = None) -> dict:
    """{learned model name: history} written by :func:`compare_models` for ``seed``."""
    from physml.paths import artifacts_dir
    from physml.train import load_history

    from .graph import _run_dir

    base = Path(out_dir) if out_dir else artifacts_dir("vacua", "coupled")
    return {m: load_history(_run_dir(base, int(seed), m)) for m in LEARNED}
