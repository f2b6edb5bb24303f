"""Attention biases over patch tokens: geometry, terrain and wind terms, one module per variant.

Convention: a bias ``b[..., i, j]`` is added to the attention logit of query token i attending
to key token j (before the softmax). Tokens are the ``g × g`` patches of an ``n × n`` grid
(``g = n / patch``) in row-major order; token centres are in cells (cell k centred at k).

Variants (:data:`VARIANTS`)
---------------------------
- ``none``: no bias.
- ``alibi2d``: −m_h · |r_i − r_j| (patch units), ALiBi's fixed geometric slopes m_h = 2^(−8h/H).
- ``relpos``: a learned table over the (2g−1)² relative offsets, one per head (zero-initialised).
- ``elev_released_fixed`` / ``elev_released_learned``: the source's endpoint elevation bias as
  released, ``clamp(−α · relu((e_j − e_i) / 1000), −10, 0)`` with e the patch-mean elevation
  *already z-scored* (so Δe/1000 is ~1e-3 and the bias is ~0.006 logits); α = 2 fixed, or one
  learnable α initialised at 2 shared by all heads (the release's ``nn.Parameter(ones(1)*2)``).
- ``elev_scaled``: the same formula on elevations in metres, /1000 m (i.e. kilometres, what the
  source meant), one learnable α per head (initialised at 2).
- ``elev_scaled_wind``: ``elev_scaled`` × wind gate.
- ``barrier``: path barrier −α_h · P_ij / 1000 m, where P_ij = max over the segment from token i's
  centre to token j's centre of h, minus the higher endpoint (≥ 0; 0 when no ridge lies between).
- ``barrier_wind``: ``barrier`` × wind gate.
- ``barrier_shuffled``: ``barrier_wind`` computed from another terrain (control; see
  :func:`derangement`) — any gain of ``barrier_wind`` that survives this is not about terrain.
- ``misaligned``: ``barrier_wind``, but the model reorders its tokens by a wind scan and does not
  reorder the bias (the release's bug); see :mod:`.model`.

Wind gate: ``g_ij = relu(cos θ_ij) · A_h(|U|)`` where θ_ij is the angle between the background
wind and r_i − r_j (key j upwind of query i: g > 0; downwind: 0; i = j: 0) and
``A_h(|U|) = softplus(a_h + c_h · |U| / 10 m/s) / softplus(a_h)`` is a learned per-head speed
response (starts at 1: c_h = 0), so a head can learn that blocking fades in strong wind. The gate
uses no knowledge of the simulator's blocking rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import map_coordinates

VARIANTS = (
    "none", "alibi2d", "relpos", "elev_released_fixed", "elev_released_learned", "elev_scaled",
    "elev_scaled_wind", "barrier", "barrier_wind", "barrier_shuffled", "misaligned",
)
WIND_GATED = ("elev_scaled_wind", "barrier_wind", "barrier_shuffled", "misaligned")
RELEASED_ELEVATION_SCALE = 1000.0  # the release divides (already z-scored) elevations by this
RELEASED_ALPHA = 2.0
RELEASED_CLAMP = (-10.0, 0.0)
METRES_PER_KM = 1000.0
WIND_SPEED_SCALE_MS = 10.0


def check_patch(n_cells: int, patch: int) -> int:
    """Tokens per side ``n_cells // patch``; raises ValueError naming ``patch`` if it does not
    divide ``n_cells``."""
    if patch < 1 or n_cells % patch:
        raise ValueError(f"patch={patch} must divide the grid n_cells={n_cells}")
    return n_cells // patch


def token_centres(n_cells: int, patch: int) -> np.ndarray:
    """Centres of the patch tokens in cells, ``(T, 2)`` as (x, y), row-major token order.

    >>> token_centres(16, 8).tolist()
    [[3.5, 3.5], [11.5, 3.5], [3.5, 11.5], [11.5, 11.5]]
    """
    g = check_patch(n_cells, patch)
    r, c = np.divmod(np.arange(g * g), g)
    return np.stack([(c + 0.5) * patch - 0.5, (r + 0.5) * patch - 0.5], axis=1)


def token_coords(n_cells: int, patch: int) -> np.ndarray:
    """Token positions in patch units, ``(T, 2)`` integer (x, y) — for ALiBi and relpos."""
    g = check_patch(n_cells, patch)
    r, c = np.divmod(np.arange(g * g), g)
    return np.stack([c, r], axis=1)


def patch_means(field: np.ndarray, patch: int) -> np.ndarray:
    """Mean of ``field`` ``(..., n, n)`` over each patch, ``(..., T)`` row-major."""
    n = field.shape[-1]
    g = check_patch(n, patch)
    f = field.reshape(*field.shape[:-2], g, patch, g, patch)
    return f.mean(axis=(-3, -1)).reshape(*field.shape[:-2], g * g)


def path_barrier(terrain_m: np.ndarray, centres: np.ndarray, step_cells: float = 0.5
                 ) -> np.ndarray:
    """Highest terrain along each segment i → j above the higher endpoint, metres, ``(T, T)``.

    ``terrain_m`` ``(n, n)``; ``centres`` ``(T, 2)`` (x, y) in cells. The terrain is sampled
    bilinearly every ``step_cells`` (at most) along each segment, endpoints included, so
    ``P_ii = 0``, ``P_ij = P_ji >= 0`` and P is 0 between two points with no ridge in between.
    """
    c = np.asarray(centres, dtype=float)
    t = c.shape[0]
    length = np.hypot(*(c[:, None, :] - c[None, :, :]).transpose(2, 0, 1)).max()
    s = np.linspace(0.0, 1.0, max(2, int(math.ceil(length / step_cells)) + 1))
    iu = np.triu_indices(t, k=1)
    a, b = c[iu[0]], c[iu[1]]
    pts = a[:, None, :] + s[None, :, None] * (b - a)[:, None, :]  # (pairs, S, 2)
    h = map_coordinates(terrain_m, [pts[..., 1].ravel(), pts[..., 0].ravel()], order=1,
                        mode="nearest").reshape(pts.shape[:2])
    barrier = np.maximum(h.max(axis=1) - np.maximum(h[:, 0], h[:, -1]), 0.0)
    out = np.zeros((t, t))
    out[iu] = barrier
    return out + out.T


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of ``range(n)`` with no fixed point (n >= 2), ``(n,)``."""
    if n < 2:
        raise ValueError(f"derangement: needs n >= 2, got {n}")
    while True:
        p = rng.permutation(n)
        if np.all(p != np.arange(n)):
            return p


def wind_scan_order(coords: np.ndarray, wind_ms: np.ndarray) -> np.ndarray:
    """Token order of a wind scan: by upwind-to-downwind band, then across the wind (position
    on the wind direction turned 90° anticlockwise, ascending); the wind's speed does not matter.

    ``coords`` ``(T, 2)`` patch units; ``wind_ms`` ``(B, 2)``. Returns ``(B, T)`` permutations
    (``order[b, k]`` = original index of the k-th scanned token). A simpler stand-in for the
    release's banded Hilbert scan over 16 wind sectors: what matters here is that the order
    depends on the wind.
    """
    w = np.asarray(wind_ms, dtype=float)
    u = w / np.maximum(np.hypot(w[:, :1], w[:, 1:]), 1e-12)
    c = np.asarray(coords, dtype=float)
    along = np.round(c @ u.T).T  # (B, T) band index along the wind
    across = (c @ np.stack([-u[:, 1], u[:, 0]], axis=1).T).T
    return np.lexsort((across, along), axis=-1)


@dataclass
class BiasInputs:
    """What the biases are computed from, for a batch of B samples and T tokens (torch).

    coords: ``(T, 2)`` positions in patch units. elev_m: ``(B, T)`` patch-mean elevation,
    metres. elev_z: ``(B, T)`` the same z-scored with the training terrains' mean and std (the
    release's input). barrier_m: ``(B, T, T)`` :func:`path_barrier`. wind_ms: ``(B, 2)``.
    """

    coords: torch.Tensor
    elev_m: torch.Tensor
    elev_z: torch.Tensor
    barrier_m: torch.Tensor
    wind_ms: torch.Tensor

    def permuted(self, perm: torch.Tensor) -> BiasInputs:
        """The same inputs with tokens reordered by ``perm`` ``(T,)`` (new k = old perm[k])."""
        return BiasInputs(self.coords[perm], self.elev_m[:, perm], self.elev_z[:, perm],
                          self.barrier_m[:, perm][:, :, perm], self.wind_ms)


def released_elevation_bias(elev_z: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
    """The release's bias clamp(−α·relu((e_j − e_i)/1000), −10, 0): ``(B, T)`` → ``(B, T, T)``."""
    diff = (elev_z[:, None, :] - elev_z[:, :, None]) / RELEASED_ELEVATION_SCALE
    return torch.clamp(-alpha * torch.relu(diff), *RELEASED_CLAMP)


def uphill_km(elev_m: torch.Tensor) -> torch.Tensor:
    """relu(e_j − e_i) in km, ``(B, T)`` → ``(B, T, T)`` (key higher than query)."""
    return torch.relu(elev_m[:, None, :] - elev_m[:, :, None]) / METRES_PER_KM


def upwind_cosine(coords: torch.Tensor, wind_ms: torch.Tensor) -> torch.Tensor:
    """relu(cos θ_ij), θ_ij between the wind and r_i − r_j; ``(B, T, T)``, 0 on the diagonal."""
    d = coords[:, None, :] - coords[None, :, :]  # r_i - r_j, (T, T, 2)
    dist = torch.linalg.vector_norm(d, dim=-1)
    unit = d / torch.where(dist > 0, dist, torch.ones_like(dist))[..., None]
    w = wind_ms / torch.linalg.vector_norm(wind_ms, dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.relu(torch.einsum("ijc,bc->bij", unit, w))


def alibi_slopes(heads: int) -> torch.Tensor:
    """ALiBi's geometric head slopes 2^(−8h/H), h = 1..H, ``(H,)``."""
    return torch.tensor([2.0 ** (-8.0 * h / heads) for h in range(1, heads + 1)])


class AttentionBias(torch.nn.Module):
    """The bias of one variant, ``(B, H, T, T)`` from :class:`BiasInputs` (zeros for ``none``).

    Parameters: variant (one of :data:`VARIANTS`), heads H, grid g (tokens per side, for the
    relpos table). Learnable parameters exist only where the variant says so.
    """

    def __init__(self, variant: str, heads: int, grid: int):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"AttentionBias: variant must be one of {VARIANTS}, got {variant!r}")
        self.variant, self.heads, self.grid = variant, heads, grid
        if variant == "alibi2d":
            self.register_buffer("slopes", alibi_slopes(heads))
        elif variant == "relpos":
            self.table = torch.nn.Parameter(torch.zeros(heads, (2 * grid - 1) ** 2))
        elif variant == "elev_released_fixed":
            self.register_buffer("alpha", torch.tensor(RELEASED_ALPHA))
        elif variant == "elev_released_learned":
            self.alpha = torch.nn.Parameter(torch.tensor(RELEASED_ALPHA))
        elif variant != "none":
            self.alpha = torch.nn.Parameter(torch.full((heads,), RELEASED_ALPHA))
        if variant in WIND_GATED:
            inv = math.log(math.expm1(1.0))  # softplus(inv) = 1
            self.gate_a = torch.nn.Parameter(torch.full((heads,), inv))
            self.gate_c = torch.nn.Parameter(torch.zeros(heads))

    def learned_alpha(self) -> float:
        """The bias strength α (mean over heads), NaN for variants without one.

        Compared with its initial value :data:`RELEASED_ALPHA`, it says whether training used
        the bias at all.
        """
        alpha = getattr(self, "alpha", None)
        return float("nan") if alpha is None else float(alpha.detach().mean())

    def speed_response(self, wind_ms: torch.Tensor) -> torch.Tensor:
        """A_h(|U|) ``(B, H)`` (1 at initialisation)."""
        s = torch.linalg.vector_norm(wind_ms, dim=-1, keepdim=True) / WIND_SPEED_SCALE_MS
        sp = torch.nn.functional.softplus
        return sp(self.gate_a + self.gate_c * s) / sp(self.gate_a)

    def forward(self, x: BiasInputs) -> torch.Tensor:
        v, h = self.variant, self.heads
        b = x.elev_m.shape[0]
        t = x.coords.shape[0]
        if v == "none":
            return x.elev_m.new_zeros(b, h, t, t)
        if v == "alibi2d":
            dist = torch.cdist(x.coords.to(x.elev_m.dtype), x.coords.to(x.elev_m.dtype))
            return (-self.slopes[:, None, None] * dist).expand(b, h, t, t)
        if v == "relpos":
            d = x.coords[:, None, :] - x.coords[None, :, :] + (self.grid - 1)
            idx = (d[..., 1] * (2 * self.grid - 1) + d[..., 0]).long()
            return self.table[:, idx].expand(b, h, t, t)
        if v.startswith("elev_released"):
            return released_elevation_bias(x.elev_z, self.alpha)[:, None].expand(b, h, t, t)
        term = uphill_km(x.elev_m) if v.startswith("elev") else x.barrier_m / METRES_PER_KM
        bias = -self.alpha[None, :, None, None] * term[:, None]
        if v.startswith("elev"):
            bias = torch.clamp(bias, *RELEASED_CLAMP)
        if v in WIND_GATED:
            gate = upwind_cosine(x.coords.to(x.elev_m.dtype), x.wind_ms)
            bias = bias * gate[:, None] * self.speed_response(x.wind_ms)[:, :, None, None]
        return bias


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None
           ) -> torch.Tensor:
    """softmax(q kᵀ / sqrt(d) + bias) v; q, k, v ``(B, H, T, d)``, bias ``(B, H, T, T)`` or
    None (no bias).

    (torch's fused ``scaled_dot_product_attention`` with an additive float mask.)
    """
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
