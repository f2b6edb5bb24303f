"""vacua: toy EFT potentials on toric-surface moduli, critical points, vacuum labels at scale.

Importing this package changes no global state. The JAX kernels run in float64 through the
:func:`physml.vacua.jaxconfig.x64` decorator (a ``jax.enable_x64`` context per call); the
persistent JAX compilation cache is switched on only by an explicit
:func:`enable_compilation_cache` call (the notebooks make it). The names below are imported
lazily on first use (PEP 562), so ``from physml.vacua import census`` does not import JAX.
"""

import importlib

_LAZY = {
    "geometry": ("Geometry", "blow_up_cycle", "blow_up_rays", "count_by_rays", "cycle_graph",
                 "enumerate_toric_surfaces", "hirzebruch_cycle", "p2_cycle",
                 "rays_from_self_intersections", "self_intersections_from_rays"),
    "jaxconfig": ("enable_compilation_cache", "x64"),
    "labels": ("LABELS", "classify_eigenvalues", "label_names", "label_points",
               "threshold_disagreement"),
    "potential": ("REGIMES", "Potential", "PotentialParams", "hess_source_defect",
                  "make_potential", "sample_mixture", "sample_params", "sample_potential"),
    "solvers": ("METHODS", "SolveResult", "newton_padded", "solve", "starting_points"),
}
_WHERE = {name: mod for mod, names in _LAZY.items() for name in names}


__all__ = [
    "LABELS", "METHODS", "REGIMES", "Geometry", "Potential", "PotentialParams", "SolveResult",
    "enable_compilation_cache", "x64",
    "blow_up_cycle", "blow_up_rays", "classify_eigenvalues", "count_by_rays", "cycle_graph",
    "enumerate_toric_surfaces", "hess_source_defect", "hirzebruch_cycle", "label_names",
    "label_points", "make_potential", "newton_padded", "p2_cycle", "rays_from_self_intersections",
    "sample_mixture", "sample_params", "sample_potential", "self_intersections_from_rays", "solve",
    "starting_points", "threshold_disagreement",
]


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
