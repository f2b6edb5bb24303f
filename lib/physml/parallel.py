"""Run independent tasks serially, on a local Dask cluster, or on an existing Dask cluster.

The single mechanism for fan-out in physml (notebook rendering, large data generation,
cross-validation folds): ``workers=None, scheduler=None`` runs in this process with no Dask
started; ``workers=N`` starts a ``dask.distributed.LocalCluster`` of N single-threaded worker
processes; ``scheduler`` connects to an existing scheduler (e.g. one started by
``dask-jobqueue`` on HTCondor or SLURM). ``fn`` must be importable by the workers (a
module-level function of an installed package).

A notebook that fans out in several cells starts one client with :func:`start_client` and
passes it to every :func:`map_tasks` call (``client=``): the workers start once and keep their
imports. ``shared=`` sends one large object every task needs (a dataset) to each worker once,
instead of once per task.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_NONE = object()
"""``shared`` not given: tasks are called as fn(item)."""


def _cluster_kwargs(workers: int) -> dict:
    if workers is None or workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    # silence_logs: the workers' INFO/WARNING chatter (e.g. nanny shutdown) stays out of reports.
    # No dashboard; the scheduler's HTTP server (health checks) still starts, on Dask's 8787
    # unless told otherwise, and a second cluster on the machine (another render, a test run)
    # then puts "Port 8787 is already in use" in the report: ":0" takes a free port instead.
    return {"n_workers": workers, "threads_per_worker": 1, "processes": True,
            "dashboard_address": None, "silence_logs": logging.ERROR,
            "scheduler_kwargs": {"dashboard": False, "dashboard_address": ":0"}}


def _worker_environ():
    """dask config for the workers' start: Dask's default environment without
    ``MALLOC_TRIM_THRESHOLD_``.

    Dask sets it to 64 KiB in every worker; setting it turns off glibc's adaptive mmap
    threshold, so every buffer above 128 KiB (torch's activations and gradients of a batch) is
    mapped and unmapped again at each optimiser step. Measured on 2 cores: three 1-D CNN folds
    of cnc notebook 04 took 12.1 s on two workers with it, 7.1 s without, 10.5 s one after
    another in one process."""
    import dask
    import distributed  # noqa: F401  (loads the distributed config)

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    return dask.config.set({"distributed.nanny.pre-spawn-environ": env})


@contextlib.contextmanager
def _client(workers: int | None, scheduler: str | None) -> Iterator[Any]:
    from dask.distributed import Client, LocalCluster

    if scheduler is not None and workers is not None:
        raise ValueError("give either workers (local cluster) or scheduler (existing), not both")
    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    with _worker_environ():
        cluster = LocalCluster(**_cluster_kwargs(workers))
    with cluster, Client(cluster) as client:
        yield client


def start_client(workers: int | None = None, scheduler: str | None = None):
    """A Dask client for several :func:`map_tasks` calls (``client=``), or None (serial) when
    ``workers`` is None or 0 and ``scheduler`` is None or empty. ``workers=N``: a local cluster
    of N single-threaded processes, owned by the client (``client.close()`` stops it);
    ``scheduler``: an existing one."""
    from dask.distributed import Client

    if workers and scheduler:
        raise ValueError("give either workers (local cluster) or scheduler (existing), not both")
    if scheduler:
        return Client(scheduler)
    if not workers:
        return None
    with _worker_environ():
        return Client(**_cluster_kwargs(workers))


def _submit_all(client, fn, items: list, shared) -> list:
    if shared is _NONE:
        return [client.submit(fn, it, pure=False) for it in items]
    [s] = client.scatter([shared], broadcast=True)
    return [client.submit(fn, s, it, pure=False) for it in items]


def _serial(fn, items: list, shared) -> Iterator:
    for it in items:
        yield fn(it) if shared is _NONE else fn(shared, it)


def _check_where(workers, scheduler, client) -> None:
    if client is not None and (workers is not None or scheduler is not None):
        raise ValueError("give client, or workers / scheduler, not both")


def as_completed_tasks(
    fn: Callable[..., T], items: Iterable[Any], workers: int | None = None,
    scheduler: str | None = None, client=None, shared: Any = _NONE,
) -> Iterator[T]:
    """Yield ``fn(item)`` (``fn(shared, item)`` if ``shared`` is given) for every item, in
    completion order (input order when serial).

    A task's exception is re-raised here, when its result is reached.
    """
    items = list(items)
    _check_where(workers, scheduler, client)
    if client is None and workers is None and scheduler is None:
        yield from _serial(fn, items, shared)
        return
    from dask.distributed import as_completed

    with (contextlib.nullcontext(client) if client is not None
          else _client(workers, scheduler)) as c:
        for fut in as_completed(_submit_all(c, fn, items, shared)):
            yield fut.result()


def map_tasks(
    fn: Callable[..., T], items: Iterable[Any], workers: int | None = None,
    scheduler: str | None = None, client=None, shared: Any = _NONE,
) -> list[T]:
    """``[fn(item) for item in items]`` (``fn(shared, item)`` if ``shared`` is given), run as
    described in the module docstring, on ``client`` (:func:`start_client`; left open) if
    given; input order."""
    items = list(items)
    _check_where(workers, scheduler, client)
    if client is None and workers is None and scheduler is None:
        return list(_serial(fn, items, shared))
    with (contextlib.nullcontext(client) if client is not None
          else _client(workers, scheduler)) as c:
        return c.gather(_submit_all(c, fn, items, shared))
