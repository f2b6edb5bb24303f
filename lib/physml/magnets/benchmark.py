"""Timings for the benchmark notebook, all through `physml.timing`: each returns absolute
seconds and the speed-up against the anchor measured in the same run, interleaved (magpylib,
scikit-learn, a one-at-a-time loop), as a ratio with its CI; the source study's figures are
quoted separately, never as a same-run ratio."""

from __future__ import annotations

import os

import numpy as np

from physml import timing

SOURCE = {"fit_seconds": 3.7, "fit_error_reduction": 1 - 585 / 11707,
          "synthetic_samples_per_second": 6400 / 0.3}


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
    r = timing.against_anchor(ours, ref, items=n_observers, repeats=repeat)
    b1, b2 = np.asarray(ours()), ref()
    rel = np.max(np.linalg.norm(b1 - b2, axis=1) / np.linalg.norm(b2, axis=1))
    return {"ours_s": r.ours.median_s, "magpylib_s": r.anchor.median_s, "speedup": r.speedup,
            "max_rel_err": float(rel), "n_observers": n_observers, "n_sources": n_sources}


def bench_fit_anchor(seeds, session=None, generations=100, popsize=5, lbfgs_runs=None,
                     n_train_states=10):
    """The constrained fit by L-BFGS on JAX gradients against the source's optimiser,
    differential evolution, at its best honest configuration: the same constrained model in the
    same physical box (`refit.fit_de_box`: joint positions ±15 mm, segment lengths ±30%,
    anatomical angles, moments within the declared magnet's grade and tolerance, offset ±30 µT;
    first population around the nominal hand) for `generations` generations of `popsize` per
    parameter, on the same data of every seed (Earth's field from the gyroscope for both; times
    after compilation, Earth step included).

    Args:
        seeds: >= 2 simulated users (`heldout.fit_seed`).
        session: SessionConfig overrides of the recordings.
        generations, popsize: DE's budget (the source ran 100 generations).
        lbfgs_runs: optional L-BFGS runs of the same seeds, settings and model already made
            (e.g. `heldout.fit_summary(...)["runs"]["constrained"]`), reused instead of refitted.
        n_train_states: states in each fitted recording.

    Returns:
        dict {"lbfgs"|"de_box": {"error_reduction", "seconds", "residual_rms_uT": CI},
        "speedup": Comparison (paired DE time / L-BFGS time, geometric mean), "reduction_gain":
        Comparison (paired L-BFGS − DE error reduction), "runs" {optimiser: [fit_seed dict]},
        "generations", "popsize"}.
    """
    from physml.stats import paired_difference, ratio_ci, summarize

    from .heldout import FIT_METRIC_BOUNDS, fit_seed

    if len(seeds) < 2:
        raise ValueError(f"need >= 2 seeds for a confidence interval, got {len(seeds)}")
    if lbfgs_runs is None:
        lbfgs_runs = [fit_seed(s, "constrained", n_train_states, session) for s in seeds]
    if len(lbfgs_runs) != len(seeds) or any(r["fit"].model != "constrained" for r in lbfgs_runs):
        raise ValueError(f"lbfgs_runs must be one constrained fit per seed {list(seeds)}, got "
                         f"{[r['fit'].model for r in lbfgs_runs]}")
    runs = {"lbfgs": list(lbfgs_runs),
            "de_box": [fit_seed(s, "constrained", n_train_states, session, maxiter=generations,
                                optimiser="de_box", de_popsize=popsize) for s in seeds]}
    fits = {o: [r["fit"] for r in v] for o, v in runs.items()}
    sec = {o: [f.total_seconds for f in v] for o, v in fits.items()}
    red = {o: [f.error_reduction for f in v] for o, v in fits.items()}
    res = {o: [f.residual_rms_uT for f in v] for o, v in fits.items()}
    cis = {k: summarize(v, bounds=FIT_METRIC_BOUNDS[b])
           for k, b, v in (("error_reduction", "error_reduction", red),
                           ("seconds", "fit_seconds", sec),
                           ("residual_rms_uT", "residual_rms_uT", res))}
    out = {o: {k: cis[k][o] for k in cis} for o in fits}
    out["speedup"] = ratio_ci(sec["de_box"], sec["lbfgs"])
    out["reduction_gain"] = paired_difference(red["lbfgs"], red["de_box"])
    return {**out, "runs": runs, "generations": generations, "popsize": popsize}


def fit_anchor_figures(anchor):
    """Flat figures of `bench_fit_anchor`: {"<optimiser>_<metric>": CI}."""
    return {f"{o}_{k}": c for o in ("lbfgs", "de_box") for k, c in anchor[o].items()}


def bench_synthetic(n_samples=1_000_000, repeat=3, seed=0):
    """Synthetic readings per second (32 states, noise + orientation + quantisation), with the
    source's 6,400 readings in 0.3 s (its machine) as the quoted reference."""
    from .synthetic import generate

    rng = np.random.default_rng(seed)
    templ = 50 * rng.standard_normal((32, 3))
    per = max(1, n_samples // 32)
    t = timing.measure(lambda: generate(templ, np.arange(32), per, rng,
                                        earth_uT=[25.0, 0.0, -43.0]), items=32 * per,
                       repeats=repeat)
    rate = t.per_second
    return {"seconds": t.median_s, "samples": 32 * per, "samples_per_second": rate,
            "ratio_vs_source": rate.mean / SOURCE["synthetic_samples_per_second"]}


def bench_predict(clf, readings_uT, path, n_single=300, repeat=3):
    """Single-reading latency (ms) of clf.predict against scikit-learn's own predict (the
    anchor, on a tenth of the readings), interleaved; and the size (MB) of the joblib file
    written to `path`. "speedup" is sklearn's time per reading / ours (a Comparison)."""
    x = np.asarray(readings_uT, float)
    idx = np.arange(n_single) % len(x)
    n_sk = max(10, n_single // 10)

    def ours():
        for i in idx:  # one reading at a time, as deployed
            clf.predict(x[i])

    def sk():
        for i in idx[:n_sk]:  # one reading at a time through scikit-learn
            clf.model.predict(x[i:i + 1])

    r = timing.against_anchor(ours, sk, items=len(idx), anchor_items=n_sk, repeats=repeat)
    clf.save(path)
    return {"latency_ms": 1e3 * r.ours.median_s / len(idx),
            "sklearn_latency_ms": 1e3 * r.anchor.median_s / n_sk,
            "speedup": r.speedup, "model_size_mb": os.path.getsize(path) / 1e6}


def speed_word(speedup):
    """"faster" / "slower" / "not distinguishable in speed from" for a speed-up Comparison
    (anchor time / ours): computed from its CI, never typed."""
    return {"greater": "faster than", "less": "slower than"}.get(
        speedup.verdict, "not distinguishable in speed from")


def bench_placement(hand, n=5000, n_anchor=5, seed=0, noise_uT=3.0, repeat=3):
    """Placements scored per second (vectorised dipole kernel) against scoring them one by one
    with magpylib's finite cylinders (the anchor, n_anchor placements per call)."""
    from .field import cylinder_field
    from .hand import ALL_BITS, hand_magnets
    from .placement import sample_placements, separability

    rng = np.random.default_rng(seed)
    p = sample_placements(hand, n, rng)

    def anchor():
        for i in range(n_anchor):  # the slow per-placement reference loop
            h = hand.replace(mount_m=p.mount_m[i], tilt_rad=p.tilt_rad[i],
                             diameter_m=p.diameter_m[i], height_m=p.diameter_m[i] / 2)
            pos, ax = hand_magnets(h, ALL_BITS)
            obs = np.broadcast_to(h.sensor_m + p.sensor_offset_m[i], (32, 3))
            f = 1e6 * cylinder_field(obs, pos, ax, h.diameter_m, h.height_m, h.polarization_T)
            d = np.linalg.norm(f[:, None] - f[None], axis=-1)
            np.min(d[~np.eye(32, dtype=bool)])

    r = timing.against_anchor(lambda: separability(hand, p, noise_uT), anchor, items=n,
                              anchor_items=n_anchor, repeats=repeat)
    return {"placements_per_second": r.ours.per_second,
            "magpylib_loop_per_second": r.anchor.per_second, "speedup": r.speedup}
