"""Notebook 05: throughput of batched RK4 (at matched accuracy), scipy, and every surrogate.

All timings are taken in the same run on the same machine; only ratios are compared.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from physml.tracks import data as D
from physml.tracks.ground_truth import dop853, reference_sample
from physml.tracks.propagate import propagate, refined_schedule, rk4_schedule
from physml.tracks.training import load_model, throughput, to_inputs, torch_threads


def rk4_at_matched_accuracy(field, n_ref: int, n_speed: int, steps_mm, rng: np.random.Generator,
                            tol_um: float = 1.0, z_end_mm: float = 8500.0,
                            refined: dict | None = None) -> dict:
    """Fastest RK4 schedule whose max position error vs DOP853 on n_ref accepted tracks is
    <= tol_um, among fixed steps ``steps_mm`` and, if ``refined`` (keyword arguments of
    :func:`~physml.tracks.propagate.refined_schedule`) is given, a field-refined schedule.

    Returns a dict: the chosen schedule's label and step count, its errors and throughput on
    n_speed tracks (best of 3), DOP853's per-track time, the speed-up, and the whole scan.
    """
    states = reference_sample(field, n_ref, rng, z_end_mm)
    ref, scipy_s = dop853(states, field, z_end_mm)
    big = states[rng.integers(0, n_ref, n_speed)]
    candidates = [(f"{h:.3g} mm", rk4_schedule(0.0, z_end_mm, h, field))
                  for h in sorted(steps_mm, reverse=True)]
    if refined:
        label = (f"{refined.get('fine_mm', 25.0):g}/{refined.get('coarse_mm', 50.0):g} mm "
                 f"(fine where |B| >= {refined.get('b_threshold_tesla', 0.4):g} T)")
        candidates.append((label, refined_schedule(0.0, z_end_mm, field, **refined)))
    rows = []
    for label, nodes in candidates:
        out = propagate(states, 0.0, z_end_mm, field, schedule=nodes)
        errs = np.hypot(*(out[:, :2] - ref[:, :2]).T) * 1000
        propagate(big, 0.0, z_end_mm, field, schedule=nodes)
        best = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            propagate(big, 0.0, z_end_mm, field, schedule=nodes)
            best = min(best, time.perf_counter() - t0)
        rows.append({"schedule": label, "steps": len(nodes) - 1, "max_err_um": float(errs.max()),
                     "p99_err_um": float(np.quantile(errs, 0.99)),
                     "tracks_per_s": n_speed / best})
    scan = pd.DataFrame(rows)
    ok = scan[scan["max_err_um"] <= tol_um]
    if ok.empty:
        raise RuntimeError(f"rk4_at_matched_accuracy: no schedule reaches {tol_um} um:\n{scan}")
    pick = ok.sort_values("tracks_per_s", ascending=False).iloc[0]
    return {"schedule": str(pick["schedule"]), "steps": int(pick["steps"]),
            "max_err_um": float(pick["max_err_um"]),
            "rk4_tracks_per_second": float(pick["tracks_per_s"]),
            "scipy_seconds_per_track": float(scipy_s),
            "scipy_tracks_per_second": float(1.0 / scipy_s),
            "rk4_speedup_vs_scipy": float(pick["tracks_per_s"] * scipy_s),
            "n_ref": n_ref, "n_speed": n_speed, "scan": scan}


def model_throughputs(runs: pd.DataFrame, batch_sizes, threads: int = 1,
                      min_time_s: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """Tracks/s of every run's model in PyTorch and ONNX Runtime at each batch size."""
    rng = np.random.default_rng(seed)
    s, dz = D.sample_initial_states(max(batch_sizes), rng, D.DatasetSpec())
    u, _ = to_inputs({"initial": s, "dz": dz, "final": np.zeros_like(s)})
    rows = []
    with torch_threads(threads):
        for r in runs.itertuples():
            model = load_model(r.run_dir)
            for backend in ("torch", "onnx"):
                tp = throughput(model, u, batch_sizes, backend=backend,
                                onnx_path=f"{r.run_dir}/model.onnx", min_time_s=min_time_s)
                for b, v in tp.items():
                    rows.append({"model": f"{r.arch}-{r.size}", "arch": r.arch, "size": r.size,
                                 "backend": backend, "batch": b, "tracks_per_s": v,
                                 "pos_mean_mm": r.pos_mean_mm, "pos_95_mm": r.pos_95_mm,
                                 "slope_mean": r.slope_mean})
    return pd.DataFrame(rows)


def summary(rk4: dict, models_tp: pd.DataFrame, batch: int = 4096) -> pd.DataFrame:
    """One row per method at ``batch``: throughput, ratio to RK4, and accuracy."""
    rows = [{"method": f"RK4 ({rk4['schedule']}, numba)", "tracks_per_s":
             rk4["rk4_tracks_per_second"], "pos_mean_mm": np.nan,
             "max_pos_err_mm": rk4["max_err_um"] / 1000},
            {"method": "scipy DOP853 per track", "tracks_per_s": rk4["scipy_tracks_per_second"],
             "pos_mean_mm": 0.0, "max_pos_err_mm": 0.0}]
    sel = models_tp[models_tp["batch"] == batch]
    for r in sel.itertuples():
        rows.append({"method": f"{r.model} ({r.backend})", "tracks_per_s": r.tracks_per_s,
                     "pos_mean_mm": r.pos_mean_mm, "max_pos_err_mm": np.nan,
                     "pos_95_mm": r.pos_95_mm, "slope_mean": r.slope_mean})
    out = pd.DataFrame(rows)
    out["ratio_to_rk4"] = out["tracks_per_s"] / rk4["rk4_tracks_per_second"]
    return out
