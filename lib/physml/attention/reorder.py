"""Token reordering (notebook 04): permutation equivariance of every bias, and the release's bug.

Attention with a pairwise bias is permutation-equivariant when the bias is permuted with the
tokens: attention(P·x, P·B·Pᵀ) = P·attention(x, B). The release reorders its tokens by a wind
scan but keeps the bias in the original order; :func:`equivariance_errors` measures both cases
and :func:`misalignment_damage` the test error a trained model loses to the bug.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import bias as B
from . import model as M
from .ablation import AblationConfig, make_split
from .dataset import TransportData, advection_only, make_dataset, mse_per_sample


@torch.no_grad()
def equivariance_errors(data: TransportData, variants: list[str], seed: int, n_samples: int = 8,
                        heads: int = 4, head_dim: int = 8) -> pd.DataFrame:
    """Per variant, the largest |attention(P·x, B') − P·attention(x, B)| over ``n_samples``
    samples, with P each sample's wind-scan order, random q, k, v (float64) and the bias
    module's parameters randomised (seeded), for two choices of B':

    - ``aligned``: B' = bias computed from the permuted tokens (what a correct model does);
    - ``unpermuted``: B' = B, the bias left in the original order (the release's bug).

    Columns: variant, aligned_max_abs_error, unpermuted_max_abs_error, as_used_max_abs_error
    (the unpermuted error for ``misaligned``, whose model does not permute its bias, the
    aligned one for every other variant), bias_changed (whether the bias varies across token
    pairs, i.e. whether misalignment can matter at all).
    """
    gen = torch.Generator().manual_seed(seed)
    n = data.terrain_m.shape[-1]
    g = B.check_patch(n, data.spec.patch)
    idx = np.arange(min(n_samples, len(data)))
    tok = M.terrain_tokens(data.terrain_m, data.spec.patch, np.unique(data.terrain_id))
    tid = data.terrain_id[idx]
    f64 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
    x = B.BiasInputs(torch.as_tensor(B.token_coords(n, data.spec.patch)), f64(tok.elev_m[tid]),
                     f64(tok.elev_z[tid]), f64(tok.barrier_m[tid]), f64(data.wind_ms[idx]))
    orders = B.wind_scan_order(B.token_coords(n, data.spec.patch), data.wind_ms[idx])
    t = g * g
    rows = []
    for v in variants:
        mod = B.AttentionBias(v, heads, g).double()
        for p in mod.parameters():
            p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.3)
        q, k, val = (torch.randn(len(idx), heads, t, head_dim, generator=gen,
                                 dtype=torch.float64) for _ in range(3))
        bias = mod(x)
        ref = B.attend(q, k, val, bias)
        err_a, err_u = 0.0, 0.0
        for b in range(len(idx)):
            perm = torch.as_tensor(orders[b])
            xb = B.BiasInputs(x.coords, x.elev_m[b:b + 1], x.elev_z[b:b + 1],
                              x.barrier_m[b:b + 1], x.wind_ms[b:b + 1])
            qp, kp, vp = (a[b:b + 1, :, perm] for a in (q, k, val))
            want = ref[b:b + 1, :, perm]
            got_a = B.attend(qp, kp, vp, mod(xb.permuted(perm)))
            got_u = B.attend(qp, kp, vp, bias[b:b + 1])
            err_a = max(err_a, float((got_a - want).abs().max()))
            err_u = max(err_u, float((got_u - want).abs().max()))
        rows.append({"variant": v, "aligned_max_abs_error": err_a,
                     "unpermuted_max_abs_error": err_u,
                     "as_used_max_abs_error": err_u if v == "misaligned" else err_a,
                     "bias_changed": bool(float(bias.std()) > 0)})
    return pd.DataFrame(rows)


def misalignment_damage(cfg: AblationConfig, out_dir: str | Path) -> pd.DataFrame:
    """Per seed: train ``barrier_wind`` on held-out-terrain split, then score it on the test set
    as trained (aligned) and with the same weights in the ``misaligned`` model (tokens
    wind-scanned, bias not). Columns: seed, model ("aligned" / "misaligned"), mse."""
    rows = []
    for seed in cfg.seeds:
        data = make_dataset(np.random.default_rng([seed, 2024]), cfg.data)
        base = advection_only(data) if cfg.base == "advection" else data.q0
        tr, va, te = make_split(cfg, data, "terrain", seed)
        train_t = np.unique(data.terrain_id[tr])
        tok = M.terrain_tokens(data.terrain_m, cfg.data.patch, train_t)
        good = M.build("barrier_wind", data, train_t, seed, cfg.model, tok)
        M.fit(good, data.subset(tr), data.subset(va), cfg.base, cfg.train_config(seed),
              Path(out_dir) / f"seed{seed}", bases=(base[tr], base[va]))
        bad = M.build("misaligned", data, train_t, seed, cfg.model, tok)
        bad.load_state_dict(good.state_dict())
        test = data.subset(te)
        for name, m in (("aligned", good), ("misaligned", bad)):
            err = mse_per_sample(M.predict(m, test, base[te]), test)
            rows.append({"seed": seed, "model": name, "mse": float(err.mean())})
    return pd.DataFrame(rows)
