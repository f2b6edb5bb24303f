"""Every vacua test runs with JAX float64 enabled for its duration only (a context, not a
global flip), like the study's own kernels (:func:`physml.vacua.jaxconfig.x64`)."""

import jax
import pytest


@pytest.fixture(autouse=True)
def _jax_float64():
    with jax.enable_x64(True):
        yield
