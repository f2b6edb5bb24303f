"""numba's on-disk cache for kernels built by a factory (closures over compiled functions).

numba keys the cached machine code of a closure by the pickle of what the closure captures. A
numba dispatcher pickles with an identifier drawn at random in each process, so a closure over
dispatchers (the kernels of :func:`physml.tracks.rk4_compiled.make_kernels`) would miss the
cache and recompile (tens of seconds) in every new process: every notebook render, test worker
and Dask worker. :func:`stable` gives a dispatcher a fixed identifier made from its name, before
anything pickles it, so the key is the same in every process. Every dispatcher the pickle of a
kernel reaches needs one (the captured functions, and the compiled globals of functions that are
pickled by value); ``tests/tracks/test_propagate.py`` checks that a fresh process loads the
kernels from the cache.
"""

from __future__ import annotations

PREFIX = "physml.tracks:"


def stable(dispatcher, name: str):
    """Give the numba ``dispatcher`` the fixed identifier ``PREFIX + name``; returns it.

    Raises RuntimeError if it already has a different one (it was pickled before this call).
    """
    uid = PREFIX + name
    current = dispatcher._MemoMixin__uuid  # numba.core.dispatcher._MemoMixin: None until used
    if current is None:
        dispatcher._set_uuid(uid)
    elif current != uid:
        raise RuntimeError(f"jitcache.stable: {name} already has the identifier {current!r} "
                           f"(pickled before it was made stable)")
    return dispatcher
