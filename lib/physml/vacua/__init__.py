"""vacua: toy EFT potentials on toric-surface moduli, critical points, vacuum labels at scale.

Importing this package switches JAX to float64 and points JAX's persistent compilation cache at
``artifacts/vacua/jax_cache`` (the batched Newton kernel takes seconds to compile per size
bucket; the cache makes later runs start at once).
"""

import jax

jax.config.update("jax_enable_x64", True)


def _enable_compilation_cache() -> None:
    from physml.paths import artifacts_dir

    if jax.config.jax_compilation_cache_dir is None:
        jax.config.update("jax_compilation_cache_dir", str(artifacts_dir("vacua", "jax_cache")))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


_enable_compilation_cache()

from .geometry import (  # noqa: E402
    Geometry,
    blow_up_cycle,
    blow_up_rays,
    count_by_rays,
    cycle_graph,
    enumerate_toric_surfaces,
    hirzebruch_cycle,
    p2_cycle,
    rays_from_self_intersections,
    self_intersections_from_rays,
)
from .labels import (  # noqa: E402
    LABELS,
    classify_eigenvalues,
    label_names,
    label_points,
    threshold_disagreement,
)
from .potential import (  # noqa: E402
    REGIMES,
    Potential,
    PotentialParams,
    hess_source_defect,
    make_potential,
    sample_mixture,
    sample_params,
    sample_potential,
)
from .solvers import METHODS, SolveResult, newton_padded, solve, starting_points  # noqa: E402

__all__ = [
    "LABELS", "METHODS", "REGIMES", "Geometry", "Potential", "PotentialParams", "SolveResult",
    "blow_up_cycle", "blow_up_rays", "classify_eigenvalues", "count_by_rays", "cycle_graph",
    "enumerate_toric_surfaces", "hess_source_defect", "hirzebruch_cycle", "label_names",
    "label_points", "make_potential", "newton_padded", "p2_cycle", "rays_from_self_intersections",
    "sample_mixture", "sample_params", "sample_potential", "self_intersections_from_rays", "solve",
    "starting_points", "threshold_disagreement",
]
