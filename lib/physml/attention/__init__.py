"""attention: does a terrain-aware attention bias help a transformer predict transport over terrain?

Modules (import the one you need; this package imports nothing at load time, changes no global
state):

- :mod:`.terrain`: synthetic terrains, sums of oriented Gaussian ridges (``rng``).
- :mod:`.transport`: Froude-number wind deflection and batched finite-volume upwind
  advection–diffusion with a CFL guard (NumPy).
- :mod:`.dataset`: (tracer, terrain, wind) → tracer at a fixed travel distance; baselines
  (persistence, advection-only); Froude bins.
- :mod:`.bias`: every attention-bias variant (none, 2-D ALiBi, learned relative positions, the
  source's released endpoint elevation bias, scaled, wind-gated, path barrier, shuffled control,
  misaligned) and token geometry.
- :mod:`.model`: the patch-token transformer, identical across variants except the bias, trained
  with :func:`physml.train.train`.
- :mod:`.ablation`: variants × seeds on held-out terrains and a held-out Froude range
  (:mod:`physml.splits`), paired verdicts (:func:`physml.stats.compare`).
- :mod:`.checks`, :mod:`.maps`, :mod:`.reorder`, :mod:`.benchmark`, :mod:`.figures`: what the
  notebooks 01–05 show.
"""
