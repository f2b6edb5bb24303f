"""Throughput against an anchor measured in the same run: warm-up, repeats, min / median, ratio CI.

Every benchmark notebook times through this module, so a speed claim is always a ratio to a named
anchor (magpylib, scipy, the straightforward baseline) measured on the same machine, the same
thread count and interleaved in time with the code it is compared to. Absolute seconds are
recorded too, but only ratios are compared.

>>> t = measure(lambda: sum(range(1000)), items=1000, repeats=3)
>>> t.seconds.shape, t.per_second.n
((3,), 3)
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from physml import stats


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of ``repeats`` calls (shape ``(repeats,)``), each processing ``items``."""

    seconds: np.ndarray
    items: int

    @property
    def median_s(self) -> float:
        return float(np.median(self.seconds))

    @property
    def min_s(self) -> float:
        return float(np.min(self.seconds))

    @property
    def rates(self) -> np.ndarray:
        """Items per second of each repeat, shape ``(repeats,)``."""
        return self.items / self.seconds

    @property
    def per_second(self) -> stats.CI:
        """Items per second: mean over repeats with its 95% t-interval, clipped at 0 (a rate
        is never negative, though a t-interval over few scattered repeats can reach below)."""
        return stats.mean_ci(self.rates, bounds=stats.NON_NEGATIVE)

    @property
    def best_per_second(self) -> float:
        """Items per second of the fastest repeat (least disturbed by other load)."""
        return self.items / self.min_s

    def as_dict(self) -> dict:
        ci = self.per_second
        return {"items": self.items, "median_s": self.median_s, "min_s": self.min_s,
                "per_second": ci.mean, "per_second_ci_low": ci.low,
                "per_second_ci_high": ci.high, "repeats": int(self.seconds.size)}


@dataclass(frozen=True)
class AnchorRatio:
    """Our timing, the anchor's, and the speed-up (anchor time per item / ours) with its CI."""

    ours: Timing
    anchor: Timing
    speedup: stats.Comparison

    def as_dict(self) -> dict:
        return {"ours": self.ours.as_dict(), "anchor": self.anchor.as_dict(),
                "speedup": self.speedup.diff.mean, "speedup_ci_low": self.speedup.diff.low,
                "speedup_ci_high": self.speedup.diff.high}


def _check(repeats: int, warmup: int, items: int) -> None:
    if repeats < 2:
        raise ValueError(f"timing: repeats must be >= 2 (a CI needs two), got {repeats}")
    if warmup < 0:
        raise ValueError(f"timing: warmup must be >= 0, got {warmup}")
    if items < 1:
        raise ValueError(f"timing: items must be >= 1, got {items}")


def _once(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(fn: Callable[[], object], *, items: int = 1, repeats: int = 7,
            warmup: int = 1) -> Timing:
    """Call ``fn()`` ``warmup`` times untimed, then ``repeats`` times timed."""
    _check(repeats, warmup, items)
    for _ in range(warmup):
        fn()
    return Timing(np.array([_once(fn) for _ in range(repeats)]), int(items))


def against_anchor(fn: Callable[[], object], anchor: Callable[[], object], *, items: int,
                   anchor_items: int | None = None, repeats: int = 7,
                   warmup: int = 1) -> AnchorRatio:
    """Time ``fn`` and ``anchor`` interleaved (anchor, ours, anchor, ours, ...).

    ``items`` is what one call of ``fn`` processes, ``anchor_items`` what one call of
    ``anchor`` does (default: the same; a slow anchor may run a subset). The speed-up is the
    paired ratio of seconds per item, anchor / ours, per repeat, with its CI on the log scale
    (:func:`physml.stats.ratio_ci`).
    """
    anchor_items = items if anchor_items is None else anchor_items
    t = interleaved({"anchor": anchor, "ours": fn},
                    items={"anchor": anchor_items, "ours": items}, repeats=repeats,
                    warmup=warmup)
    ours, anc = t["ours"], t["anchor"]
    return AnchorRatio(ours, anc, stats.ratio_ci(anc.seconds / anc.items,
                                                 ours.seconds / ours.items))


def _warn_if_blas_spins() -> None:
    """Warn when OpenBLAS loaded before physml could stop its threads spinning after a call
    (:data:`physml.BLAS_TIMEOUT_IN_EFFECT`): the function timed next would then share the cores
    with them, and a ratio between a numpy function and a threaded one would be off."""
    import physml

    if not physml.BLAS_TIMEOUT_IN_EFFECT:
        warnings.warn("numpy was imported before physml, so OpenBLAS's threads keep spinning for "
                      "0.1-0.2 s after each call and slow whatever is timed next: import physml "
                      "first, or set OPENBLAS_THREAD_TIMEOUT=4 before starting Python",
                      RuntimeWarning, stacklevel=_outside_this_module())


def _outside_this_module() -> int:
    """The ``stacklevel`` of a warning issued here that points at the first caller outside
    this module (:func:`against_anchor` calls :func:`interleaved`, so a fixed level would point
    into it for one and at the user for the other)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    return level


def interleaved(fns: dict[str, Callable[[], object]], *, items: int | dict[str, int],
                repeats: int = 7, warmup: int = 1) -> dict[str, Timing]:
    """Time several functions round-robin: each round calls every one of ``fns`` once, in
    order, for ``repeats`` rounds (after ``warmup`` untimed rounds), so a burst of other load
    hits them all alike instead of whichever happened to be timed then. ``items``: what one
    call of each processes (one number for all, or per name). Returns ``{name: Timing}``."""
    if not fns:
        raise ValueError("timing.interleaved: no functions to time")
    per = items if isinstance(items, dict) else dict.fromkeys(fns, items)
    if set(per) != set(fns):
        raise ValueError(f"timing.interleaved: items for {sorted(per)}, functions "
                         f"{sorted(fns)}")
    for n in per.values():
        _check(repeats, warmup, n)
    _warn_if_blas_spins()
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sec = {k: np.empty(repeats) for k in fns}
    for r in range(repeats):
        for k, fn in fns.items():
            sec[k][r] = _once(fn)
    return {k: Timing(v, int(per[k])) for k, v in sec.items()}


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """Limit BLAS/OpenMP pools, and torch's and numba's threads, to ``n`` inside the block.

    torch and numba are limited only when the process has already imported them (code that
    never uses them does not pay for importing them here).
    """
    import sys

    from threadpoolctl import threadpool_limits

    if n < 1:
        raise ValueError(f"threads: n must be >= 1, got {n}")
    restore = []
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        old = torch.get_num_threads()
        torch.set_num_threads(n)
        restore.append(lambda: torch.set_num_threads(old))
    if "numba" in sys.modules:
        numba = sys.modules["numba"]
        old_nb = numba.get_num_threads()
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        restore.append(lambda: numba.set_num_threads(old_nb))
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        for undo in restore:
            undo()
