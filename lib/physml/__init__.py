"""physml: physics versus machine learning, one notebook-first study at a time."""

import os as _os
import sys as _sys

__version__ = "0.1.0"

# OpenBLAS's worker threads busy-wait for about 2^28 cycles (0.1-0.2 s here) after each call.
# In an interleaved benchmark the function timed next -- a numba-threaded anchor -- then runs
# against spinning threads on the same cores: on a 2-core machine a 2-thread numba loop ran
# 1.7x slower right after a numpy matmul, which inflated the speed ratio of a numpy method to
# a numba anchor. 2^4 cycles puts them to sleep at once. OpenBLAS reads the variable when it
# loads, so it is set on import (a value already set is kept); `physml render` passes it on to
# every notebook, and physml.timing warns where numpy was loaded before physml set it.
_preset = "OPENBLAS_THREAD_TIMEOUT" in _os.environ
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
#: Whether the environment's OPENBLAS_THREAD_TIMEOUT was in place when OpenBLAS loaded (set
#: before Python started, or numpy not yet imported when physml was).
BLAS_TIMEOUT_IN_EFFECT = _preset or "numpy" not in _sys.modules
