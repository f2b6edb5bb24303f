"""Numerical precision of JAX kernels, set per call and never at import.

JAX computes in float32 unless ``jax_enable_x64`` is on. physml's physics kernels need float64,
but flipping the global flag when a study is imported would change every other JAX user in the
process. :func:`x64` instead runs one function inside a ``jax.enable_x64(True)`` context.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def x64(fn: F) -> F:
    """Decorator: run ``fn`` with JAX float64 enabled (a ``jax.enable_x64(True)`` context).

    >>> import jax.numpy as jnp
    >>> x64(lambda: jnp.ones(2).dtype)()
    dtype('float64')
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import jax

        with jax.enable_x64(True):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
