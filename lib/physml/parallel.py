"""Run independent tasks serially, on a local Dask cluster, or on an existing Dask cluster.

The single mechanism for fan-out in physml (notebook rendering, large data generation):
``workers=None, scheduler=None`` runs in this process with no Dask started; ``workers=N``
starts a ``dask.distributed.LocalCluster`` of N single-threaded worker processes; ``scheduler``
connects to an existing scheduler (e.g. one started by ``dask-jobqueue`` on HTCondor or SLURM).
``fn`` must be importable by the workers (a module-level function of an installed package).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


@contextlib.contextmanager
def _client(workers: int | None, scheduler: str | None) -> Iterator[Any]:
    from dask.distributed import Client, LocalCluster

    if scheduler is not None and workers is not None:
        raise ValueError("give either workers (local cluster) or scheduler (existing), not both")
    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    if workers is None or workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    # silence_logs: the workers' INFO/WARNING chatter (e.g. nanny shutdown) stays out of reports
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        yield client


def as_completed_tasks(
    fn: Callable[[Any], T], items: Iterable[Any], workers: int | None = None,
    scheduler: str | None = None,
) -> Iterator[T]:
    """Yield ``fn(item)`` for every item, in completion order (input order when serial).

    A task's exception is re-raised here, when its result is reached.
    """
    items = list(items)
    if workers is None and scheduler is None:
        for it in items:
            yield fn(it)
        return
    from dask.distributed import as_completed

    with _client(workers, scheduler) as client:
        futures = [client.submit(fn, it, pure=False) for it in items]
        for fut in as_completed(futures):
            yield fut.result()


def map_tasks(
    fn: Callable[[Any], T], items: Iterable[Any], workers: int | None = None,
    scheduler: str | None = None,
) -> list[T]:
    """``[fn(item) for item in items]``, run as described in the module docstring; input order."""
    items = list(items)
    if workers is None and scheduler is None:
        return [fn(it) for it in items]
    with _client(workers, scheduler) as client:
        futures = [client.submit(fn, it, pure=False) for it in items]
        return client.gather(futures)
