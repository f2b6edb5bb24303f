"""JAX settings of the vacua study, applied explicitly — nothing here runs at import.

* Float64: every JAX entry point of the study (:func:`physml.vacua.solvers.newton_padded`, the
  autodiff checks of :mod:`physml.vacua.derivatives`, :meth:`Potential.value_jax`) runs inside
  ``jax.enable_x64(True)`` through the :func:`x64` decorator, so importing ``physml.vacua``
  leaves JAX's global precision alone and the kernels are float64 all the same.
* Persistent compilation cache: the batched Newton kernel takes seconds to compile per size
  bucket. :func:`enable_compilation_cache` points JAX's persistent cache at
  ``artifacts/vacua/jax_cache`` (a global JAX setting, so it is an explicit call that notebooks
  make, never an import side effect).
"""

from __future__ import annotations

import jax

from physml.precision import x64  # noqa: F401  (re-exported: the study's kernels use it)


def enable_compilation_cache(min_compile_time_s: float = 0.2) -> str:
    """Point JAX's persistent compilation cache at ``artifacts/vacua/jax_cache`` (unless a cache
    directory is already configured) and return the directory in use. Changes JAX's global
    configuration for this process: call it once, explicitly (the vacua notebooks do)."""
    from physml.paths import artifacts_dir

    if jax.config.jax_compilation_cache_dir is None:
        jax.config.update("jax_compilation_cache_dir", str(artifacts_dir("vacua", "jax_cache")))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_time_s)
    return str(jax.config.jax_compilation_cache_dir)
