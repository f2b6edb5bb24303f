"""Neural surrogates of the extrapolation (x, y, tx, ty, q/p, dz) -> (x, y, tx, ty) at z + dz.

Three architectures, four sizes each (the source study's):

- ``mlp``: inputs -> hidden layers -> 4 outputs (trained on endpoint data only).
- ``pinn``: the same network with a 7th input zeta in [0, 1] — it predicts the state at
  z0 + zeta dz, so the ODE residual d state / d zeta - dz f(state, z) can be taken by autodiff at
  collocation points (:mod:`physml.tracks.losses`); the endpoint is zeta = 1.
- ``rk_pinn``: a shared backbone and four stage heads predicting the state at zeta = 0.25, 0.5,
  0.75, 1; the output is s0 + sum_k w_k (s_k - s0) / zeta_k (each stage's secant carried to
  zeta = 1) with learnable w initialised to RK4's [1, 2, 2, 1] / 6. This combination is exact
  for straight tracks only: for a curved track exact stage states combine to the exact endpoint
  only if w -> [0, 0, 0, 1]; the learned w are reported. (Our reading of the source's wording.)

Every model works in normalised units (:class:`Normalization`, saved as normalization.json) and
optionally predicts the *residual* from the straight-line extrapolation (x + tx dz, y + ty dz,
tx, ty) instead of the state itself. ``model.predict(u)`` maps physical inputs (n, 6) to
physical outputs (n, 4) and is what ONNX export wraps.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

SIZES = {"tiny": [64, 64], "small": [128, 128], "medium": [256, 256, 128],
         "wide": [512, 512, 256, 128]}
ARCHITECTURES = ("mlp", "pinn", "rk_pinn")
STAGES = (0.25, 0.5, 0.75, 1.0)
INPUTS = ("x_mm", "y_mm", "tx", "ty", "qop_per_gev", "dz_mm")
OUTPUTS = ("x_mm", "y_mm", "tx", "ty")


@dataclass
class Normalization:
    """Input shift/scale (6,), output shift/scale (4,) in physical units; ``residual``: outputs
    are the deviation from the straight line (shift 0) rather than the state itself."""

    in_mean: list
    in_std: list
    out_mean: list
    out_std: list
    residual: bool

    @classmethod
    def fit(cls, initial: np.ndarray, dz: np.ndarray, final: np.ndarray, residual: bool):
        """From training arrays initial (n, 5), dz (n,), final (n, 5)."""
        u = np.concatenate([initial, dz[:, None]], 1)
        target = final[:, :4] - straight(initial, dz) if residual else final[:, :4]
        in_std = u.std(0)
        in_std[in_std == 0] = 1.0
        out_std = target.std(0)
        out_std[out_std == 0] = 1.0
        return cls(u.mean(0).tolist(), in_std.tolist(),
                   ([0.0] * 4 if residual else target.mean(0).tolist()), out_std.tolist(), residual)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> Normalization:
        return cls(**json.loads(Path(path).read_text()))


def straight(initial: np.ndarray, dz: np.ndarray) -> np.ndarray:
    """Straight-line (x + tx dz, y + ty dz, tx, ty): (n, 4), NumPy."""
    return np.stack([initial[:, 0] + initial[:, 2] * dz, initial[:, 1] + initial[:, 3] * dz,
                     initial[:, 2], initial[:, 3]], 1)


def _mlp(n_in: int, hidden: list[int], n_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(n_in, h), nn.SiLU()]
        n_in = h
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class Surrogate(nn.Module):
    """Base: holds the normalisation as buffers and maps physical <-> normalised units."""

    arch = "base"

    def __init__(self, norm: Normalization, hidden: list[int]):
        super().__init__()
        self.hidden = list(hidden)
        self.norm = norm
        f = torch.float32
        self.register_buffer("in_mean", torch.tensor(norm.in_mean, dtype=f))
        self.register_buffer("in_std", torch.tensor(norm.in_std, dtype=f))
        self.register_buffer("out_mean", torch.tensor(norm.out_mean, dtype=f))
        self.register_buffer("out_std", torch.tensor(norm.out_std, dtype=f))
        self.residual = bool(norm.residual)

    def encode(self, u: torch.Tensor) -> torch.Tensor:
        return (u - self.in_mean) / self.in_std

    def base(self, u: torch.Tensor, zeta) -> torch.Tensor:
        """Physical state the network output is added to at fraction zeta of dz: (n, 4)."""
        if not self.residual:
            return self.out_mean.expand(u.shape[0], 4)
        d = u[:, 5] * zeta
        return torch.stack([u[:, 0] + u[:, 2] * d, u[:, 1] + u[:, 3] * d, u[:, 2], u[:, 3]], 1)

    def decode(self, u: torch.Tensor, out: torch.Tensor, zeta) -> torch.Tensor:
        return self.base(u, zeta) + self.out_std * out

    def predict(self, u: torch.Tensor) -> torch.Tensor:
        """Physical inputs (n, 6) -> physical end state (n, 4)."""
        raise NotImplementedError

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.predict(u)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


class MLP(Surrogate):
    arch = "mlp"

    def __init__(self, norm: Normalization, hidden: list[int]):
        super().__init__(norm, hidden)
        self.net = _mlp(6, hidden, 4)

    def predict(self, u):
        return self.decode(u, self.net(self.encode(u)), 1.0)


class PINN(Surrogate):
    """z-conditioned: ``state_at(u, zeta)`` (n, 6), (n,) -> (n, 4); endpoint at zeta = 1."""

    arch = "pinn"

    def __init__(self, norm: Normalization, hidden: list[int]):
        super().__init__(norm, hidden)
        self.net = _mlp(7, hidden, 4)

    def raw(self, u, zeta):
        """Normalised network output at zeta (n,): (n, 4)."""
        return self.net(torch.cat([self.encode(u), (2 * zeta - 1)[:, None]], 1))

    def state_at(self, u, zeta):
        """Physical state (n, 4) at z0 + zeta dz for zeta (n,)."""
        return self.decode(u, self.raw(u, zeta), zeta)

    def predict(self, u):
        return self.state_at(u, torch.ones(u.shape[0], dtype=u.dtype, device=u.device))


class RKPINN(Surrogate):
    """Shared backbone, four stage heads at zeta = 0.25, 0.5, 0.75, 1, learnable RK weights."""

    arch = "rk_pinn"

    def __init__(self, norm: Normalization, hidden: list[int]):
        super().__init__(norm, hidden)
        self.backbone = _mlp(6, hidden[:-1], hidden[-1]) if len(hidden) > 1 else nn.Identity()
        width = hidden[-1] if len(hidden) > 1 else 6
        self.act = nn.SiLU()
        self.heads = nn.ModuleList([nn.Linear(width, 4) for _ in STAGES])
        self.weights = nn.Parameter(torch.tensor([1.0, 2.0, 2.0, 1.0]) / 6.0)
        self.register_buffer("zetas", torch.tensor(STAGES))

    def stage_raw(self, u):
        """Normalised stage outputs: list of four (n, 4)."""
        h = self.act(self.backbone(self.encode(u)))
        return [head(h) for head in self.heads]

    def stage_states(self, u):
        """Physical states at the four stage planes: list of four (n, 4)."""
        return [self.decode(u, r, z) for r, z in zip(self.stage_raw(u), STAGES, strict=True)]

    def combine(self, u, stages):
        s0 = u[:, :4]
        out = s0
        for k, (z, s) in enumerate(zip(STAGES, stages, strict=True)):
            out = out + self.weights[k] * (s - s0) / z
        return out

    def predict(self, u):
        return self.combine(u, self.stage_states(u))


MODELS = {"mlp": MLP, "pinn": PINN, "rk_pinn": RKPINN}


def build(arch: str, size: str | list[int], norm: Normalization) -> Surrogate:
    """A model of ``arch`` in ARCHITECTURES and ``size`` in SIZES (or a list of widths)."""
    if arch not in MODELS:
        raise ValueError(f"build: arch {arch!r} not in {ARCHITECTURES}")
    if isinstance(size, str) and size not in SIZES:
        raise ValueError(f"build: size {size!r} not in {sorted(SIZES)}")
    hidden = SIZES[size] if isinstance(size, str) else list(size)
    return MODELS[arch](norm, hidden)


class _Export(nn.Module):
    def __init__(self, model: Surrogate):
        super().__init__()
        self.model = model

    def forward(self, u):
        return self.model.predict(u)


def export_onnx(model: Surrogate, path: str | Path) -> Path:
    """Write ``model.predict`` (physical inputs (n, 6) float32 -> (n, 4)) as ONNX, dynamic n."""
    path = Path(path)
    model = model.eval()
    example = torch.zeros(8, 6)
    example[:, 5] = 5000.0
    torch.onnx.export(_Export(model), (example,), str(path), input_names=["u"],
                      output_names=["state"], dynamic_axes={"u": {0: "n"}, "state": {0: "n"}},
                      dynamo=False)
    return path
