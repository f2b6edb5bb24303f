"""Costs (notebook 05): bias precomputation, forward throughput per variant, model vs simulator.

Every figure is a ratio measured in the same run against a named anchor
(:func:`physml.timing.against_anchor`): the no-bias model for bias overheads, the simulator for
the learned model's speed. Models are untrained (cost does not depend on the weights).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from .. import timing
from . import bias as B
from . import model as M
from . import transport
from .dataset import TransportData, advection_only


def forward_fn(model: M.PatchTransformer, data: TransportData, base: str
               ) -> Callable[[], torch.Tensor]:
    """A call running the model on all of ``data`` (inference, no grad), base forecast included
    (the advection forecast is computed inside the call when ``base="advection"``)."""

    @torch.no_grad()
    def run() -> torch.Tensor:
        model.eval()
        b = data.q0 if base == "persistence" else advection_only(data)
        bs, q0, _, tid, wind = M.tensors(data, b)
        return model(bs, q0, tid, wind)

    return run


def simulator_fn(data: TransportData) -> Callable[[], np.ndarray]:
    """A call running the simulator on all of ``data``: deflected wind + advection–diffusion to
    each sample's horizon (what the learned model replaces)."""
    spec = data.spec

    def run() -> np.ndarray:
        w = transport.deflected_wind(data.terrain_m[data.terrain_id], data.wind_ms,
                                     spec.brunt_vaisala_s, spec.dx_m).astype(np.float32)
        return transport.simulate(data.q0, w, data.horizon_s, spec.dx_m, spec.diffusivity_m2s,
                                  boundary=spec.boundary)

    return run


def barrier_fn(terrain_m: np.ndarray, patch: int) -> Callable[[], np.ndarray]:
    """A call computing the path-barrier matrix of every terrain in ``terrain_m`` ``(k, n, n)``."""
    centres = B.token_centres(terrain_m.shape[-1], patch)

    def run() -> np.ndarray:
        return np.stack([B.path_barrier(h, centres) for h in terrain_m])

    return run


def bias_overheads(data: TransportData, variants: list[str], base: str, repeats: int,
                   seed: int = 0) -> pd.DataFrame:
    """Per variant: tokens/s of inference and its speed relative to the no-bias model
    (``speedup`` < 1: slower), interleaved repeats. Columns: variant, tokens_per_s,
    none_tokens_per_s (the no-bias model in the same interleaved run: how much the machine
    drifted between rows), speed_vs_none, speed_vs_none_low, speed_vs_none_high (its 95%
    CI)."""
    tokens_per_call = len(data) * data.spec.n_tokens
    train_t = np.unique(data.terrain_id)
    tok = M.terrain_tokens(data.terrain_m, data.spec.patch, train_t)
    anchor = forward_fn(M.build("none", data, train_t, seed, tokens=tok), data, base)
    rows = []
    for v in variants:
        fn = forward_fn(M.build(v, data, train_t, seed, tokens=tok), data, base)
        r = timing.against_anchor(fn, anchor, items=tokens_per_call, repeats=repeats)
        rows.append({"variant": v, "tokens_per_s": r.ours.per_second.mean,
                     "none_tokens_per_s": r.anchor.per_second.mean,
                     "speed_vs_none": r.speedup.diff.mean,
                     "speed_vs_none_low": r.speedup.diff.low,
                     "speed_vs_none_high": r.speedup.diff.high})
    return pd.DataFrame(rows)
