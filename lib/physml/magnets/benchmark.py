"""Timings for the benchmark notebook. Each returns absolute seconds and the ratio to the
anchor measured in the same run (magpylib, scikit-learn, the source study's figure)."""

from __future__ import annotations

import os
import time

import numpy as np

SOURCE = {"fit_seconds": 3.7, "fit_error_reduction": 1 - 585 / 11707,
          "synthetic_samples_per_second": 6400 / 0.3}


def median_time(fn, repeat=5):
    """Median wall time (s) of fn() over `repeat` calls (after one warm-up call)."""
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    fn()
    ts = []
    for _ in range(repeat):  # timing repeats
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def bench_dipole(n_observers=100_000, n_sources=5, repeat=5, seed=0):
    """Our jit dipole kernel vs magpylib (object API getB, summed) on the same inputs."""
    import jax

    from .field import dipole_field
    from .fieldcheck import magpylib_dipole_field, random_sources

    rng = np.random.default_rng(seed)
    pos, mom = random_sources(rng, n_sources)
    obs = rng.uniform(0.06, 0.2, (n_observers, 3)) * rng.choice([-1, 1], (n_observers, 3))
    ours = lambda: jax.block_until_ready(dipole_field(obs, pos, mom))  # noqa: E731
    ref = lambda: magpylib_dipole_field(obs, pos, mom)  # noqa: E731
    t_ours, t_ref = median_time(ours, repeat), median_time(ref, repeat)
    b1, b2 = np.asarray(ours()), ref()
    rel = np.max(np.linalg.norm(b1 - b2, axis=1) / np.linalg.norm(b2, axis=1))
    return {"ours_s": t_ours, "magpylib_s": t_ref, "speedup": t_ref / t_ours,
            "max_rel_err": float(rel), "n_observers": n_observers, "n_sources": n_sources}


def bench_fit_anchor(seeds, session=None, generations=100):
    """The free fit by L-BFGS on JAX gradients against the source's optimiser, differential
    evolution for `generations` generations, on the same data of every seed (both with Earth's
    field from the gyroscope; times after compilation, Earth step included).

    Returns:
        dict {"lbfgs"|"de": {"error_reduction": CI, "seconds": CI}, "speedup": Comparison
        (paired DE time / L-BFGS time, geometric mean), "reduction_gain": Comparison (paired
        L-BFGS − DE error reduction)}.
    """
    from physml.stats import mean_ci, paired_difference, ratio_ci

    from .heldout import fit_seed

    if len(seeds) < 2:
        raise ValueError(f"need >= 2 seeds for a confidence interval, got {len(seeds)}")
    fits = {o: [fit_seed(s, "free", session=session, optimiser=o,
                         maxiter=generations if o == "de" else 300)["fit"] for s in seeds]
            for o in ("lbfgs", "de")}  # a few seeds; each fit is one vectorised optimisation
    sec = {o: [f.total_seconds for f in v] for o, v in fits.items()}
    red = {o: [f.error_reduction for f in v] for o, v in fits.items()}
    out = {o: {"error_reduction": mean_ci(red[o]), "seconds": mean_ci(sec[o])} for o in fits}
    out["speedup"] = ratio_ci(sec["de"], sec["lbfgs"])
    out["reduction_gain"] = paired_difference(red["lbfgs"], red["de"])
    out["generations"] = generations
    return out


def bench_synthetic(n_samples=1_000_000, repeat=3, seed=0):
    """Synthetic readings per second (32 states, noise + orientation + quantisation)."""
    from .synthetic import generate

    rng = np.random.default_rng(seed)
    templ = 50 * rng.standard_normal((32, 3))
    per = max(1, n_samples // 32)
    t = median_time(lambda: generate(templ, np.arange(32), per, rng,
                                     earth_uT=[25.0, 0.0, -43.0]), repeat)
    rate = 32 * per / t
    return {"seconds": t, "samples": 32 * per, "samples_per_second": rate,
            "ratio_vs_source": rate / SOURCE["synthetic_samples_per_second"]}


def bench_predict(clf, readings_uT, path, n_single=300):
    """Single-reading latency (ms) of clf.predict vs scikit-learn's own predict, and the size
    (MB) of the joblib file written to `path`."""
    x = np.asarray(readings_uT, float)
    idx = np.arange(n_single) % len(x)

    def ours():
        for i in idx:  # one reading at a time, as deployed
            clf.predict(x[i])

    def sk():
        for i in idx[:max(10, n_single // 10)]:
            clf.model.predict(x[i:i + 1])

    t_ours = median_time(ours, 3) / len(idx)
    t_sk = median_time(sk, 3) / max(10, n_single // 10)
    clf.save(path)
    return {"latency_ms": 1e3 * t_ours, "sklearn_latency_ms": 1e3 * t_sk,
            "speedup_vs_sklearn": t_sk / t_ours, "model_size_mb": os.path.getsize(path) / 1e6}


def bench_placement(hand, n=5000, n_anchor=5, seed=0, noise_uT=3.0):
    """Placements scored per second (vectorised dipole kernel) vs scoring them one by one with
    magpylib's finite cylinders (the anchor)."""
    from .field import cylinder_field
    from .hand import ALL_BITS, hand_magnets
    from .placement import sample_placements, separability

    rng = np.random.default_rng(seed)
    p = sample_placements(hand, n, rng)
    t = median_time(lambda: separability(hand, p, noise_uT), 3)

    def anchor():
        for i in range(n_anchor):  # the slow per-placement reference loop
            h = hand.replace(mount_m=p.mount_m[i], tilt_rad=p.tilt_rad[i],
                             diameter_m=p.diameter_m[i], height_m=p.diameter_m[i] / 2)
            pos, ax = hand_magnets(h, ALL_BITS)
            obs = np.broadcast_to(h.sensor_m + p.sensor_offset_m[i], (32, 3))
            f = 1e6 * cylinder_field(obs, pos, ax, h.diameter_m, h.height_m, h.polarization_T)
            d = np.linalg.norm(f[:, None] - f[None], axis=-1)
            np.min(d[~np.eye(32, dtype=bool)])

    ta = median_time(anchor, 2) / n_anchor
    return {"placements_per_second": n / t, "magpylib_loop_per_second": 1 / ta,
            "speedup": (n / t) * ta}
