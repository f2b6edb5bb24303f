"""What each bias looks like and how large it is (notebook 02).

Biases are evaluated with their *initial* parameters (α = 2 as in the release, gates at 1,
relpos table at 0), head 0 of a 4-head model (ALiBi's steepest slope, 1/4 per patch), so the
maps show what each variant injects before any training.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from . import bias as B
from . import model as M
from .dataset import TransportData

HEADS = 4


def _inputs(terrain_m: np.ndarray, wind_ms: np.ndarray, patch: int, z_mean_m: float,
            z_std_m: float) -> B.BiasInputs:
    """Bias inputs for terrains ``(k, n, n)`` and winds ``(k, 2)``."""
    n = terrain_m.shape[-1]
    e = B.patch_means(terrain_m, patch)
    bar = np.stack([B.path_barrier(h, B.token_centres(n, patch)) for h in terrain_m])
    f = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    return B.BiasInputs(torch.as_tensor(B.token_coords(n, patch)), f(e),
                        f((e - z_mean_m) / z_std_m), f(bar), f(wind_ms))


@torch.no_grad()
def query_maps(terrain_m: np.ndarray, wind_ms: np.ndarray, patch: int, query: int,
               variants: list[str], z_mean_m: float, z_std_m: float,
               shuffled_terrain_m: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``{variant: (g, g)}`` bias from token ``query`` to every key token, head 0, initial
    parameters. ``terrain_m`` ``(n, n)``, ``wind_ms`` ``(2,)``; ``barrier_shuffled`` uses
    ``shuffled_terrain_m`` (required when it is listed), ``misaligned`` is shown as the bias
    the wind-scanned token order actually receives at the query's scanned position."""
    n = terrain_m.shape[-1]
    g = B.check_patch(n, patch)
    x = _inputs(terrain_m[None], np.asarray(wind_ms)[None], patch, z_mean_m, z_std_m)
    out = {}
    for v in variants:
        xi = x
        if v == "barrier_shuffled":
            if shuffled_terrain_m is None:
                raise ValueError("query_maps: barrier_shuffled needs shuffled_terrain_m")
            xi = _inputs(shuffled_terrain_m[None], np.asarray(wind_ms)[None], patch, z_mean_m,
                         z_std_m)
        b = B.AttentionBias(v, heads=HEADS, grid=g)(xi)[0, 0].numpy()
        if v == "misaligned":
            # token at scanned position k is original token order[k]; it gets bias row k,
            # over keys at scanned positions -> restore to the original key layout
            order = B.wind_scan_order(B.token_coords(n, patch), np.asarray(wind_ms)[None])[0]
            k = int(np.flatnonzero(order == query)[0])
            row = np.empty(g * g)
            row[order] = b[k]
            out[v] = row.reshape(g, g)
        else:
            out[v] = b[query].reshape(g, g)
    return out


@torch.no_grad()
def bias_scales(data: TransportData, variants: list[str], z_mean_m: float, z_std_m: float,
                max_samples: int = 64) -> pd.DataFrame:
    """Per variant: max and mean |bias| (logits, head 0, initial parameters) over the first
    ``max_samples`` samples' token pairs."""
    idx = np.arange(min(max_samples, len(data)))
    terr = data.terrain_m[data.terrain_id[idx]]
    x = _inputs(terr, data.wind_ms[idx], data.spec.patch, z_mean_m, z_std_m)
    g = B.check_patch(data.terrain_m.shape[-1], data.spec.patch)
    rows = []
    for v in variants:
        b = B.AttentionBias(v, heads=HEADS, grid=g)(x)[:, 0].abs()
        rows.append({"variant": v, "max_abs_bias": float(b.max()),
                     "mean_abs_bias": float(b.mean())})
    return pd.DataFrame(rows)


@torch.no_grad()
def attention_logit_std(model: M.PatchTransformer, data: TransportData, base: np.ndarray,
                        max_samples: int = 64) -> float:
    """Standard deviation over keys of the first block's q·k/√d logits (mean over queries,
    heads and samples): the scale a bias competes with."""
    model.eval()
    bs, q0, _, tid, wind = (t[:max_samples] for t in M.tensors(data, base))
    img = torch.stack([bs, q0, model.terrain[tid]], dim=1)
    x = model.embed(model.patchify(img)) + model.pos
    x = x + model.wind_embed(wind / M.WIND_SCALE_MS)[:, None, :]
    blk = model.blocks[0]
    b, t, d = x.shape
    q, k, _ = blk.qkv(blk.norm1(x)).reshape(b, t, 3, blk.heads, d // blk.heads
                                            ).permute(2, 0, 3, 1, 4)
    logits = q @ k.transpose(-2, -1) / np.sqrt(q.shape[-1])
    return float(logits.std(dim=-1).mean())
