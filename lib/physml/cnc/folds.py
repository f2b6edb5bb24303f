"""Training runs of one model kind (one per cross-validation fold), serially or on a Dask
client.

The fold loop of :func:`physml.cnc.classifier.cross_validate`,
:func:`physml.cnc.encoder_decoder.cross_validate` and the leak ladder of
:func:`physml.cnc.leaky.run_ladder`, written once. Each run trains with its own seed in its own
output folder. With a client (:func:`physml.parallel.start_client`) the runs are independent
tasks, the datasets sent to each worker once; each task then limits torch and BLAS to
``threads`` (1: one run per single-threaded worker, two runs at once on two cores). A run's
result does not depend on where it ran, beyond the floating-point rounding of the thread count.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from physml import timing
from physml import train as _train
from physml.parallel import map_tasks


@dataclass
class Run:
    """One training run: ``run_fold(datasets[dataset], train_rows, test_rows, cfg, train_cfg
    with seed, out_dir, **fold_kw, **kwargs)``."""

    dataset: str
    seed: int
    train_rows: np.ndarray
    test_rows: np.ndarray
    out_dir: Path
    kwargs: dict = field(default_factory=dict)


def _run_task(shared, run: Run):
    run_fold, datasets, cfg, train_cfg, fold_kw, threads = shared
    tc = _train.TrainConfig(**{**asdict(train_cfg), "seed": int(run.seed)})
    with timing.threads(threads) if threads else contextlib.nullcontext():
        return run_fold(datasets[run.dataset], run.train_rows, run.test_rows, cfg, tc,
                        run.out_dir, **fold_kw, **run.kwargs)


def run_all(run_fold, datasets: dict, runs: list[Run], cfg, train_cfg: _train.TrainConfig,
            *, client=None, threads: int = 1, **fold_kw) -> list:
    """The result of every :class:`Run`, in order. ``run_fold`` must be a module-level
    function (the workers import it). ``client``: run them on it, each task under
    :func:`physml.timing.threads` (``threads``); None: in this process under the caller's
    thread limits."""
    shared = (run_fold, datasets, cfg, train_cfg, fold_kw,
              threads if client is not None else None)
    return map_tasks(_run_task, runs, client=client, shared=shared)


def run_folds(run_fold, ds, split_list, cfg, train_cfg: _train.TrainConfig,
              out_root: str | Path, *, client=None, threads: int = 1, **fold_kw) -> list:
    """:func:`run_all` of one run per ``(seed, sp)`` of ``split_list`` (training rows
    ``sp.train``, test rows ``sp.test``, the split's seed, folder ``out_root /
    "seed<seed>_fold<fold>"``), in that order."""
    runs = [Run("ds", int(seed), sp.train, sp.test, Path(out_root) / f"seed{seed}_fold{sp.fold}")
            for seed, sp in split_list]
    return run_all(run_fold, {"ds": ds}, runs, cfg, train_cfg, client=client, threads=threads,
                   **fold_kw)
