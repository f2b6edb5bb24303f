"""A small patch-token transformer whose variants differ only in their attention bias.

Input per sample: a *base forecast* ``(n, n)``, the terrain ``(n, n)`` (km) and the background
wind ``(2,)`` (units of 10 m/s). The base forecast is either q(t) itself (``base="persistence"``:
the transformer must learn the transport) or the terrain-blind advection forecast
(``base="advection"``, :func:`.dataset.advection_only`: the transformer learns the terrain's
correction). Each ``patch × patch`` patch of (base, q(t), terrain) is a token (linear
embedding) plus a learned position embedding and a wind embedding; ``layers`` pre-norm
transformer blocks share one bias ``(B, H, T, T)`` from :class:`.bias.AttentionBias`; a linear
head, initialised at zero, maps each token back to its patch as an increment on the base (so
the untrained model *is* the base).

Terrain-derived bias inputs (patch elevations, path barriers) are precomputed once per terrain
(:class:`TerrainTokens`) and looked up by terrain id. The ``barrier_shuffled`` control looks them
up through a derangement of the terrain ids; ``misaligned`` reorders its tokens by a wind scan
before the blocks and restores the order after them, but adds the bias in the original order —
the release's bug (which, in addition, also left position embeddings and outputs unrestored; we
keep those aligned so only the bias is misaligned).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import train as _train
from . import bias as B
from .dataset import TransportData, advection_only

BASES = ("persistence", "advection")
TERRAIN_SCALE_M = 1000.0
WIND_SCALE_MS = 10.0


@dataclass(frozen=True)
class ModelSpec:
    """Architecture: token width ``dim``, ``heads``, ``layers`` blocks, MLP hidden ``mlp``."""

    dim: int = 32
    heads: int = 4
    layers: int = 2
    mlp: int = 64

    def __post_init__(self) -> None:
        if min(self.dim, self.heads, self.layers, self.mlp) < 1 or self.dim % self.heads:
            raise ValueError(f"ModelSpec: dim={self.dim} must be a positive multiple of "
                             f"heads={self.heads}; layers={self.layers}, mlp={self.mlp} >= 1")


@dataclass(frozen=True)
class TerrainTokens:
    """Per-terrain bias inputs. nT terrains, T tokens.

    elev_m ``(nT, T)`` patch means (m); elev_z ``(nT, T)`` z-scored with ``z_mean_m``,
    ``z_std_m`` (training terrains, as the release does with its data set's statistics);
    barrier_m ``(nT, T, T)`` :func:`.bias.path_barrier`.
    """

    elev_m: np.ndarray
    elev_z: np.ndarray
    barrier_m: np.ndarray
    z_mean_m: float
    z_std_m: float


def terrain_tokens(terrain_m: np.ndarray, patch: int, train_terrains: np.ndarray
                   ) -> TerrainTokens:
    """Precompute :class:`TerrainTokens` for ``terrain_m`` ``(nT, n, n)``; the z-score statistics
    come from the terrains listed in ``train_terrains`` only."""
    n = terrain_m.shape[-1]
    centres = B.token_centres(n, patch)
    ref = terrain_m[np.asarray(train_terrains)]
    mu, sd = float(ref.mean()), float(ref.std())
    e = B.patch_means(terrain_m, patch)
    bar = np.stack([B.path_barrier(h, centres) for h in terrain_m])
    return TerrainTokens(e, (e - mu) / sd, bar, mu, sd)


def wind_scan_order_torch(coords: torch.Tensor, wind: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`.bias.wind_scan_order`: coords ``(T, 2)``, wind ``(B, 2)`` →
    ``(B, T)``."""
    u = wind / torch.linalg.vector_norm(wind, dim=-1, keepdim=True).clamp_min(1e-12)
    c = coords.to(wind.dtype)
    along = torch.round(c @ u.T).T
    across = (c @ torch.stack([-u[:, 1], u[:, 0]], dim=1).T).T
    span = 4.0 * (c.abs().max() + 1)
    return torch.argsort(along * span + across, dim=-1, stable=True)


class Block(nn.Module):
    """Pre-norm transformer block with an additive attention bias."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.heads = spec.heads
        self.norm1, self.norm2 = nn.LayerNorm(spec.dim), nn.LayerNorm(spec.dim)
        self.qkv = nn.Linear(spec.dim, 3 * spec.dim)
        self.proj = nn.Linear(spec.dim, spec.dim)
        self.mlp = nn.Sequential(nn.Linear(spec.dim, spec.mlp), nn.GELU(),
                                 nn.Linear(spec.mlp, spec.dim))

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, d // self.heads
                                                  ).permute(2, 0, 3, 1, 4)
        a = B.attend(q, k, v, bias).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(a)
        return x + self.mlp(self.norm2(x))


class PatchTransformer(nn.Module):
    """One variant. ``forward(base, q0 (B,n,n), terrain_id (B,), wind_ms (B,2)) -> (B,n,n)``.

    terrain_m ``(nT, n, n)`` and ``tokens`` are registered as buffers (not trained);
    ``bias_terrain`` ``(nT,)`` maps a terrain id to the terrain whose features feed the bias
    (identity, or a derangement for the shuffled control).
    """

    def __init__(self, variant: str, terrain_m: np.ndarray, tokens: TerrainTokens, patch: int,
                 spec: ModelSpec | None = None, bias_terrain: np.ndarray | None = None):
        super().__init__()
        spec = spec or ModelSpec()
        n = terrain_m.shape[-1]
        g = B.check_patch(n, patch)
        self.variant, self.patch, self.n, self.spec = variant, patch, n, spec
        f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
        self.register_buffer("terrain", f32(terrain_m / TERRAIN_SCALE_M))
        self.register_buffer("elev_m", f32(tokens.elev_m))
        self.register_buffer("elev_z", f32(tokens.elev_z))
        self.register_buffer("barrier_m", f32(tokens.barrier_m))
        self.register_buffer("coords", torch.as_tensor(B.token_coords(n, patch)))
        nt = terrain_m.shape[0]
        bmap = np.arange(nt) if bias_terrain is None else np.asarray(bias_terrain)
        if bmap.shape != (nt,):
            raise ValueError(f"PatchTransformer: bias_terrain must have shape ({nt},)")
        self.register_buffer("bias_terrain", torch.as_tensor(bmap, dtype=torch.long))
        self.embed = nn.Linear(3 * patch * patch, spec.dim)
        self.wind_embed = nn.Linear(2, spec.dim)
        self.pos = nn.Parameter(torch.randn(g * g, spec.dim) * 0.02)
        self.blocks = nn.ModuleList(Block(spec) for _ in range(spec.layers))
        self.norm = nn.LayerNorm(spec.dim)
        self.head = nn.Linear(spec.dim, patch * patch)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.bias = B.AttentionBias(variant, spec.heads, g)

    def patchify(self, img: torch.Tensor) -> torch.Tensor:
        """``(B, C, n, n)`` → ``(B, T, C·p²)``."""
        b, c, n, _ = img.shape
        p, g = self.patch, n // self.patch
        return img.reshape(b, c, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(b, g * g, -1)

    def unpatchify(self, tok: torch.Tensor) -> torch.Tensor:
        """``(B, T, p²)`` → ``(B, n, n)``."""
        b = tok.shape[0]
        p, g = self.patch, self.n // self.patch
        return tok.reshape(b, g, g, p, p).permute(0, 1, 3, 2, 4).reshape(b, self.n, self.n)

    def bias_inputs(self, terrain_id: torch.Tensor, wind_ms: torch.Tensor) -> B.BiasInputs:
        tb = self.bias_terrain[terrain_id]
        return B.BiasInputs(self.coords, self.elev_m[tb], self.elev_z[tb], self.barrier_m[tb],
                            wind_ms)

    def forward(self, base: torch.Tensor, q0: torch.Tensor, terrain_id: torch.Tensor,
                wind_ms: torch.Tensor) -> torch.Tensor:
        img = torch.stack([base, q0, self.terrain[terrain_id]], dim=1)
        x = self.embed(self.patchify(img)) + self.pos
        x = x + self.wind_embed(wind_ms / WIND_SCALE_MS)[:, None, :]
        # The no-bias model is a plain transformer: no mask at all, not a (B,H,T,T) tensor of
        # zeros (allocating and reading one made it the slowest variant in notebook 05).
        bias = None if self.variant == "none" else self.bias(self.bias_inputs(terrain_id, wind_ms))
        if self.variant == "misaligned":
            order = wind_scan_order_torch(self.coords, wind_ms)
            x = torch.gather(x, 1, order[..., None].expand_as(x))
        for blk in self.blocks:
            x = blk(x, bias)
        if self.variant == "misaligned":
            x = torch.empty_like(x).scatter_(1, order[..., None].expand_as(x), x)
        return base + self.unpatchify(self.head(self.norm(x)))


def n_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def base_forecast(data: TransportData, base: str) -> np.ndarray:
    """The model's base input, ``(S, n, n)``: q(t) (``persistence``) or the advection forecast."""
    if base not in BASES:
        raise ValueError(f"base must be one of {BASES}, got {base!r}")
    return data.q0 if base == "persistence" else advection_only(data)


def tensors(data: TransportData, base: str | np.ndarray) -> tuple[torch.Tensor, ...]:
    """(base, q0, q1, terrain_id, wind_ms) as torch tensors (float32 / long), rows = samples.

    ``base`` is a name in :data:`BASES` or a precomputed ``(S, n, n)`` base forecast.
    """
    b = base_forecast(data, base) if isinstance(base, str) else np.asarray(base, np.float32)
    return (torch.as_tensor(b), torch.as_tensor(data.q0), torch.as_tensor(data.q1),
            torch.as_tensor(data.terrain_id, dtype=torch.long),
            torch.as_tensor(data.wind_ms, dtype=torch.float32))


def _loss(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
    base, q0, q1, tid, wind = batch
    return {"loss": torch.mean((model(base, q0, tid, wind) - q1) ** 2)}


@torch.no_grad()
def predict(model: nn.Module, data: TransportData, base: str | np.ndarray, batch: int = 256
            ) -> np.ndarray:
    """Model prediction of q at the horizon, ``(S, n, n)`` float32 (eval mode)."""
    model.eval()
    bs, q0, _, tid, wind = tensors(data, base)
    out = [model(bs[a:a + batch], q0[a:a + batch], tid[a:a + batch], wind[a:a + batch])
           for a in range(0, len(data), batch)]
    return torch.cat(out).numpy()


def build(variant: str, data: TransportData, train_terrains: np.ndarray, seed: int,
          spec: ModelSpec | None = None, tokens: TerrainTokens | None = None) -> PatchTransformer:
    """A freshly initialised model (weights from ``seed``, torch's global RNG untouched).

    For ``barrier_shuffled`` the terrain→bias map is a derangement drawn from ``seed``.
    """
    tokens = tokens or terrain_tokens(data.terrain_m, data.spec.patch, train_terrains)
    bmap = None
    if variant == "barrier_shuffled":
        bmap = B.derangement(data.terrain_m.shape[0], np.random.default_rng([seed, 7]))
    with _train.seeded(seed):
        return PatchTransformer(variant, data.terrain_m, tokens, data.spec.patch, spec, bmap)


def fit(model: PatchTransformer, train_data: TransportData, val_data: TransportData,
        base: str, config: _train.TrainConfig, out_dir: str | Path,
        bases: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """Train with :func:`physml.train.train` (MSE on q at the horizon); returns its history.

    ``bases``: precomputed (train, val) base forecasts, to skip recomputing them.
    """
    tb, vb = bases if bases is not None else (base, base)
    val = tensors(val_data, vb)

    def validate(m: nn.Module) -> dict[str, float]:
        return {"loss": float(torch.mean((m(val[0], val[1], val[3], val[4]) - val[2]) ** 2))}

    return _train.train(model, _loss, tensors(train_data, tb), validate, config, out_dir,
                        extra_config={"variant": model.variant, "base": base,
                                      "spec": vars(model.spec),
                                      "n_parameters": n_parameters(model)})
