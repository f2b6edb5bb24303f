"""Importing physml.vacua changes no global state; the kernels are float64 all the same."""

import os
import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    # a fresh interpreter without the JAX cache settings `make` exports, so the test sees what
    # importing physml.vacua itself changes
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_import_leaves_jax_precision_and_cache_alone_and_kernels_stay_float64():
    out = _run("""
        import jax
        import numpy as np
        import physml.vacua as v
        from physml.vacua.potential import make_potential, stack_potentials
        print(jax.config.jax_enable_x64, jax.config.jax_compilation_cache_dir)
        pot = make_potential([1.0, 2.0], None, 0.0, [0.3, -0.2], 0.0, 1.0, 0.0, 1.0, 0.0)
        r = v.newton_padded(stack_potentials([pot], 2), np.full((1, 3, 2), 0.5), gtol=1e-12)
        # |grad V| <= 1e-12 is beyond float32: the minimum -c/(2M^2) to rounding level
        err = np.max(np.abs(r["phi"][0] - np.array([-0.15, 0.025])))
        print(r["phi"].dtype, err < 1e-12, jax.config.jax_enable_x64)
    """)
    first, second = out.splitlines()[-2:]
    assert first == "False None"
    assert second == "float64 True False"


def test_enable_compilation_cache_is_explicit(tmp_path):
    out = _run(f"""
        import os
        os.environ["PHYSML_ARTIFACTS"] = {str(tmp_path)!r}
        import jax
        import physml.vacua as v
        d = v.enable_compilation_cache()
        print(d == jax.config.jax_compilation_cache_dir, d.endswith("vacua/jax_cache"))
    """)
    assert out.splitlines()[-1] == "True True"
