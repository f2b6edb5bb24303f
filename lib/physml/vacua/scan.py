"""Labelling at scale: potentials sampled on every geometry, solved in padded JAX batches.

One row per (geometry, sample): the geometry (id, rays, h^{1,1}, n_moduli), the regime, the
potential's scalar coefficients, the solver outcome and both labels (fixed threshold and
scale-aware). Failures stay in the table with their reason.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from .geometry import Geometry
from .labels import LABELS, count_displaced, label_points, reason_names
from .potential import REGIME_WEIGHTS, REGIMES, sample_params
from .solvers import GTOL, PHI_BOUND, bucket_size, newton_padded

SOURCE_GEOMETRIES = 270_659
SOURCE_SAMPLES_PER_GEOMETRY = 5


def label_geometries(geometries: list[Geometry], samples_per_geometry: int,
                     rng: np.random.Generator, n_starts: int = 3, max_iter: int = 200,
                     threshold: float = 1e-3, rows: int = 4096, mode: str = "minimize"
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sample ``samples_per_geometry`` potentials per geometry (regimes from the mixture), find
    their minima (``mode="minimize"``, the source's vacuum) or critical points of any type
    (``mode="critical"``) with the batched JAX Newton kernel (``n_starts`` >= 3 starts each),
    and label them (see :func:`physml.vacua.solvers.newton_padded`).

    Returns ``(table, timing)``: ``table`` has one row per potential (columns gid, n_rays, h11,
    n_moduli, regime, A, a, D, p, gamma, s, c_norm, c_max, lam_fro, M_mean, M_min, value, grad_inf,
    n_iter, phi_norm, converged, reason, n_displaced (moduli with |φ_i*| > 1e-3), label,
    label_scale, eig_min, eig_max); ``timing`` one
    row per n_moduli with potentials, wall_s (sampling + solving + labelling), compile_s and
    labels_per_s (excluding compilation).
    """
    if samples_per_geometry < 1:
        raise ValueError(f"samples_per_geometry={samples_per_geometry} must be >= 1")
    if n_starts < 3:
        raise ValueError(f"n_starts={n_starts}: the study uses multi-start with >= 3 starts")
    if not geometries:
        raise ValueError("no geometries given")
    gid = np.repeat([g.gid for g in geometries], samples_per_geometry)
    n_rays = np.repeat([g.n_rays for g in geometries], samples_per_geometry)
    n_mod = np.repeat([g.n_moduli for g in geometries], samples_per_geometry)
    regimes = np.asarray(REGIMES)[rng.choice(len(REGIMES), size=len(gid), p=REGIME_WEIGHTS)]
    parts, timing = [], []
    for n in np.unique(n_mod):
        t0 = time.perf_counter()
        idx = np.flatnonzero(n_mod == n)
        b = bucket_size(int(n))
        P = sample_params(n_mod[idx], regimes[idx], rng, b)
        phi0 = rng.normal(0.0, 1.0, (len(idx), n_starts, b)) * P.mask[:, None, :]
        r = newton_padded(P, phi0, GTOL, max_iter, rows, mode=mode, threshold=threshold)
        lab = label_points(r["eigvals"], r["converged"], r["reason"], r["phi_norm"], PHI_BOUND,
                           threshold, scale_aware=False)
        lab_s = label_points(r["eigvals"], r["converged"], r["reason"], r["phi_norm"],
                             PHI_BOUND, threshold, scale_aware=True)
        wall = time.perf_counter() - t0
        ev = r["eigvals"]
        parts.append(pd.DataFrame(dict(
            gid=gid[idx], n_rays=n_rays[idx], h11=n_rays[idx] - 2, n_moduli=n_mod[idx],
            regime=regimes[idx], A=P.A, a=P.a, D=P.D, p=P.p, gamma=P.gamma, s=P.s,
            c_norm=np.linalg.norm(P.c, axis=1), c_max=np.abs(P.c).max(1),
            lam_fro=np.linalg.norm(P.Lam, axis=(1, 2)),
            M_mean=(P.M * P.mask).sum(1) / P.mask.sum(1),
            M_min=np.where(P.mask > 0, P.M, np.inf).min(1),
            value=r["value"], grad_inf=r["grad_inf"], n_iter=r["n_iter"], phi_norm=r["phi_norm"],
            converged=r["converged"], reason=reason_names(r["reason"]),
            n_displaced=count_displaced(r["phi"], P.mask),
            label=np.asarray(LABELS)[lab], label_scale=np.asarray(LABELS)[lab_s],
            eig_min=np.nanmin(np.where(np.isfinite(ev), ev, np.inf), axis=1),
            eig_max=np.nanmax(np.where(np.isfinite(ev), ev, -np.inf), axis=1))))
        timing.append(dict(n_moduli=int(n), bucket=b, potentials=len(idx), wall_s=wall,
                           compile_s=r["compile_s"],
                           labels_per_s=len(idx) / max(wall - r["compile_s"], 1e-12)))
    table = pd.concat(parts, ignore_index=True)
    return table, pd.DataFrame(timing)


def throughput_summary(timing: pd.DataFrame) -> dict:
    """Overall rates from the per-n timing table: ``labels_per_second`` (excluding compilation),
    ``labels_per_second_incl_compile``, potentials, wall_s, compile_s, and
    ``hours_for_source_dataset`` = 270,659 × 5 potentials at the steady-state rate."""
    n = int(timing.potentials.sum())
    wall = float(timing.wall_s.sum())
    comp = float(timing.compile_s.sum())
    rate = n / max(wall - comp, 1e-12)
    return dict(potentials=n, wall_s=wall, compile_s=comp, labels_per_second=rate,
                labels_per_second_incl_compile=n / wall,
                hours_for_source_dataset=SOURCE_GEOMETRIES * SOURCE_SAMPLES_PER_GEOMETRY / rate
                / 3600.0)


def label_distribution(table: pd.DataFrame, by: str, label: str = "label") -> pd.DataFrame:
    """Fraction of each label per value of column ``by`` (rows) — shape (n_values, n_labels)."""
    ct = pd.crosstab(table[by], table[label], normalize="index")
    return ct.reindex(columns=[c for c in LABELS if c in ct.columns])


def failure_accounting(table: pd.DataFrame) -> pd.DataFrame:
    """Counts of every label and failure reason (nothing dropped): columns label, reason, count,
    fraction."""
    g = table.groupby(["label", "reason"]).size().rename("count").reset_index()
    g["fraction"] = g["count"] / len(table)
    return g


def cached_scan(max_rays: int, samples_per_geometry: int, seed: int, n_starts: int = 3,
                max_iter: int = 200, threshold: float = 1e-3, refresh: bool = False
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`label_geometries` over every toric surface with <= ``max_rays`` rays, cached in
    ``artifacts/vacua/scan/`` by its configuration (``refresh=True`` recomputes and overwrites,
    e.g. to time it). Returns ``(table, timing)``."""
    import hashlib
    import json

    from physml.paths import artifacts_dir

    from .geometry import enumerate_toric_surfaces

    cfg = dict(max_rays=max_rays, samples=samples_per_geometry, seed=seed, n_starts=n_starts,
               max_iter=max_iter, threshold=threshold, version=1)
    key = hashlib.sha1(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12]
    path = artifacts_dir("vacua", "scan") / f"scan_{key}.pkl"
    if path.exists() and not refresh:
        return pd.read_pickle(path)
    geoms = enumerate_toric_surfaces(max_rays)
    out = label_geometries(geoms, samples_per_geometry, np.random.default_rng(seed), n_starts,
                           max_iter, threshold)
    tmp = path.with_suffix(".tmp")
    pd.to_pickle(out, tmp)
    tmp.replace(path)
    return out


def vacuum_position(table: pd.DataFrame) -> pd.DataFrame:
    """Per regime: potentials, displaced_fraction (any |φ_i*| > 1e-3), median eig_min/eig_max."""
    t = table.assign(displaced=table.n_displaced > 0)
    return t.groupby("regime").agg(
        potentials=("gid", "size"), displaced_fraction=("displaced", "mean"),
        median_eig_min=("eig_min", "median"), median_eig_max=("eig_max", "median")).reset_index()


def throughput_by_n(n_values, per_n: int, rng: np.random.Generator, n_starts: int = 3,
                    max_iter: int = 200, rows: int = 4096) -> pd.DataFrame:
    """Labelling rate per n for ``per_n`` mixture potentials at each n in ``n_values`` (any n up
    to 32, beyond the enumerated geometries): columns n_moduli, bucket, potentials, wall_s,
    compile_s, labels_per_s (excluding compilation), iterations_per_start, failure_rate."""
    out = []
    for n in n_values:
        t0 = time.perf_counter()
        b = bucket_size(int(n))
        regimes = np.asarray(REGIMES)[rng.choice(len(REGIMES), size=per_n, p=REGIME_WEIGHTS)]
        P = sample_params(np.full(per_n, int(n)), regimes, rng, b)
        phi0 = rng.normal(0.0, 1.0, (per_n, n_starts, b)) * P.mask[:, None, :]
        r = newton_padded(P, phi0, GTOL, max_iter, rows)
        lab = label_points(r["eigvals"], r["converged"], r["reason"], r["phi_norm"], PHI_BOUND)
        wall = time.perf_counter() - t0
        out.append(dict(n_moduli=int(n), bucket=b, potentials=per_n, wall_s=wall,
                        compile_s=r["compile_s"],
                        labels_per_s=per_n / max(wall - r["compile_s"], 1e-12),
                        iterations_per_start=float(r["n_iter"].mean() / n_starts),
                        failure_rate=float((lab == LABELS.index("failed")).mean())))
    return pd.DataFrame(out)


def speed_against_scipy(n_moduli: int, batch: int, anchor_batch: int, seed: int,
                        n_starts: int = 3, max_iter: int = 200, repeats: int = 3):
    """Labels per second of the batched JAX Newton against scipy trust-exact one potential at a
    time, measured in the same run (:func:`physml.timing.against_anchor`, interleaved repeats
    after one untimed warm-up that also compiles the kernel).

    ``batch`` mixture potentials with ``n_moduli`` moduli for JAX, the first ``anchor_batch`` of
    them (same starts) for scipy. Returns the :class:`physml.timing.AnchorRatio`: ``.ours`` and
    ``.anchor`` timings (items = potentials), ``.speedup`` the per-potential time ratio
    scipy / JAX with its CI.
    """
    from physml import timing

    from .potential import sample_mixture
    from .solvers import solve, starting_points

    if not 1 <= anchor_batch <= batch:
        raise ValueError(f"anchor_batch={anchor_batch} must lie in [1, batch={batch}]")
    rng = np.random.default_rng(seed)
    pots = sample_mixture(np.full(batch, int(n_moduli)), rng)
    starts = starting_points(pots, n_starts, rng)
    return timing.against_anchor(
        lambda: solve(pots, "jax_newton", starts, max_iter=max_iter),
        lambda: solve(pots[:anchor_batch], "trust_exact", starts[:anchor_batch],
                      max_iter=max_iter),
        items=batch, anchor_items=anchor_batch, repeats=repeats, warmup=1)
