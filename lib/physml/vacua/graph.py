"""Graph baseline: message passing on the fan's cycle graph vs a tabular model, same split.

Each geometry is a cycle of toric curves; node i carries its self-intersection D_i² and talks to
its two neighbours. The graph model reads the cycle (3 rounds of neighbour messages, masked mean
and sum pooling) and, like the tabular model, the potential's coefficient features; the tabular
model sees the coefficients plus n_moduli. Both train with :func:`physml.train.train` on the same
geometry-held-out split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from physml.train import TrainConfig, load_history, seeded, train

from .active_learning import COUNT_FEATURES, POTENTIAL_FEATURES, VACUUM_CLASSES, geometry_split
from .geometry import Geometry


def cycle_links(n_nodes, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Previous- and next-neighbour indices ``(B, width)`` int64 of cycles of ``n_nodes``
    ``(B,)`` nodes padded to ``width`` slots: node i of a cycle of n links to (i − 1) mod n and
    (i + 1) mod n; a padding slot links to itself.

    >>> [a.tolist() for a in cycle_links(np.array([3]), 4)]
    [[[2, 0, 1, 3]], [[1, 2, 0, 3]]]
    """
    n = np.asarray(n_nodes, dtype=np.int64)[:, None]
    ar = np.arange(width)[None]
    real = ar < n
    return (np.where(real, (ar - 1) % np.maximum(n, 1), ar),
            np.where(real, (ar + 1) % np.maximum(n, 1), ar))


def fan_tensors(geometries: list[Geometry], gid) -> tuple[torch.Tensor, ...]:
    """Padded cycle graphs for rows with geometry ids ``gid`` ``(B,)``.

    Returns node features ``(B, R, 3)`` = (D²/12, [D² = −1], [D² <= −2]), node mask ``(B, R)``,
    previous- and next-neighbour indices ``(B, R)`` (int64; padding points at itself).
    """
    by_id = {g.gid: g for g in geometries}
    gid = np.asarray(gid)
    missing = {i.item() for i in np.unique(gid)} - set(by_id)
    if missing:
        raise ValueError(f"gid(s) {sorted(missing)[:5]} not among the given geometries")
    R = max(by_id[i].n_rays for i in np.unique(gid))
    uniq, inv = np.unique(gid, return_inverse=True)
    X = np.zeros((len(uniq), R, 3))
    M = np.zeros((len(uniq), R))
    for k, g in enumerate(uniq):
        s = np.asarray(by_id[g].self_int, float)
        r = len(s)
        X[k, :r] = np.stack([s / 12.0, s == -1, s <= -2], 1)
        M[k, :r] = 1.0
    prev, nxt = cycle_links(M.sum(1), R)
    t = torch.as_tensor
    return (t(X[inv], dtype=torch.float32), t(M[inv], dtype=torch.float32),
            t(prev[inv]), t(nxt[inv]))


class FanGNN(nn.Module):
    """Message passing on cycle graphs + the potential's scalar features -> class logits."""

    def __init__(self, n_node: int, n_scalar: int, n_classes: int, hidden: int = 32,
                 layers: int = 3, use_scalars: bool = True):
        super().__init__()
        self.inp = nn.Linear(n_node, hidden)
        self.self_lin = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers))
        self.nb_lin = nn.ModuleList(nn.Linear(hidden, hidden, bias=False) for _ in range(layers))
        self.use_scalars = use_scalars
        d = 2 * hidden + (n_scalar if use_scalars else 0)
        self.head = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))

    def forward(self, x, mask, prev, nxt, scalars):
        m = mask[..., None]
        h = torch.relu(self.inp(x)) * m
        idx = lambda ix: ix[..., None].expand(-1, -1, h.shape[-1])  # noqa: E731
        for s_lin, n_lin in zip(self.self_lin, self.nb_lin, strict=True):
            msg = torch.gather(h, 1, idx(prev)) + torch.gather(h, 1, idx(nxt))
            h = torch.relu(s_lin(h) + n_lin(msg)) * m
        n = m.sum(1).clamp(min=1.0)
        pooled = [h.sum(1) / n, h.sum(1) / x.shape[1]]
        if self.use_scalars:
            pooled.append(scalars)
        return self.head(torch.cat(pooled, -1))


class TabularMLP(nn.Module):
    """MLP on the scalar features (coefficients + n_moduli) -> class logits."""

    def __init__(self, n_scalar: int, n_classes: int, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_scalar, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, n_classes))

    def forward(self, x, mask, prev, nxt, scalars):
        return self.net(scalars)


def _fit_eval(model, data, tr, va, te, cfg: TrainConfig, out_dir: Path) -> float | dict:
    X, M, P, N, S, y = data
    sel = lambda ix: tuple(d[ix] for d in (X, M, P, N, S))  # noqa: E731
    ce = nn.CrossEntropyLoss()

    def loss_terms(model, batch):
        *inp, yb = batch
        return {"loss": ce(model(*inp), yb)}

    def validate(model):
        logits = model(*sel(va))
        return {"loss": float(ce(logits, y[va])),
                "accuracy": float((logits.argmax(1) == y[va]).float().mean())}

    train_data = (*sel(tr), y[tr])
    train(model, loss_terms, train_data, validate, cfg, out_dir)
    model.eval()
    with torch.no_grad():
        if isinstance(te, dict):  # several evaluation sides: {name: indices} -> {name: acc}
            return {k: float((model(*sel(ix)).argmax(1) == y[ix]).float().mean())
                    for k, ix in te.items()}
        return float((model(*sel(te)).argmax(1) == y[te]).float().mean())


def _run_dir(base: Path, seed: int, name: str) -> Path:
    return base / f"seed{seed}" / name.replace(" ", "_").replace("+", "and")


NEURAL_MODELS = ("graph + coefficients", "graph only", "tabular MLP")
CLOSED_FORM = "closed-form rule"


def training_histories(seed: int, out_dir: str | Path | None = None) -> dict:
    """{model name: history} written by :func:`compare_graph_tabular` for ``seed``."""
    from physml.paths import artifacts_dir

    base = Path(out_dir) if out_dir else artifacts_dir("vacua", "graph")
    return {m: load_history(_run_dir(base, int(seed), m)) for m in NEURAL_MODELS}


def compare_graph_tabular(geometries: list[Geometry], gid, features: pd.DataFrame, labels,
                          seeds, epochs: int = 40, test_fraction: float = 0.25,
                          out_dir: str | Path | None = None, rule=None) -> pd.DataFrame:
    """Test accuracy per model and seed on geometry-held-out splits (test and validation both
    hold out whole geometries). Models: ``graph + coefficients`` (FanGNN), ``graph only``
    (FanGNN without scalars), ``tabular MLP`` (coefficients + n_moduli), ``majority class``,
    and, when ``rule`` ``(B,)`` (class codes of a closed-form rule) is given, ``closed-form
    rule`` scored on the same test geometries.

    gid ``(B,)``; features: DataFrame with the columns of :data:`POTENTIAL_FEATURES` and
    n_moduli; labels ``(B,)`` codes into :data:`VACUUM_CLASSES`. Returns rows (model, seed,
    accuracy).
    """
    from physml.paths import artifacts_dir

    base = Path(out_dir) if out_dir else artifacts_dir("vacua", "graph")
    gid = np.asarray(gid)
    y_np = np.asarray(labels, dtype=np.int64)
    X, M, P, N = fan_tensors(geometries, gid)
    cols = list(POTENTIAL_FEATURES) + list(COUNT_FEATURES)
    rows = []
    for seed in seeds:
        rng = np.random.default_rng(int(seed))
        trva, te = geometry_split(gid, test_fraction, rng)
        sub_tr, sub_va = geometry_split(gid[trva], 0.2, rng)
        tr, va = trva[sub_tr], trva[sub_va]
        F = features[cols].to_numpy(float)
        F = (F - F[tr].mean(0)) / (F[tr].std(0) + 1e-12)
        data = (X, M, P, N, torch.as_tensor(F, dtype=torch.float32), torch.as_tensor(y_np))
        cfg = TrainConfig(epochs=epochs, batch_size=128, lr=3e-3, weight_decay=1e-4,
                          warmup_epochs=1, patience=10, seed=int(seed), progress=False)
        nc = len(VACUUM_CLASSES)
        specs = [("graph + coefficients", FanGNN, (3, len(cols), nc), {}),
                 ("graph only", FanGNN, (3, len(cols), nc), {"use_scalars": False}),
                 ("tabular MLP", TabularMLP, (len(cols), nc), {})]
        for name, cls, args, kwargs in specs:
            with seeded(int(seed)):  # initial weights from the seed, global RNG left alone
                model = cls(*args, **kwargs)
            acc = _fit_eval(model, data, tr, va, te, cfg, _run_dir(base, int(seed), name))
            rows.append(dict(model=name, seed=int(seed), accuracy=acc))
        vals, cnt = np.unique(y_np[tr], return_counts=True)
        rows.append(dict(model="majority class", seed=int(seed),
                         accuracy=float((y_np[te] == vals[cnt.argmax()]).mean())))
        if rule is not None:
            rows.append(dict(model=CLOSED_FORM, seed=int(seed),
                             accuracy=float((np.asarray(rule)[te] == y_np[te]).mean())))
    return pd.DataFrame(rows)
