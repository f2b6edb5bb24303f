"""Neural surrogates of the extrapolation (x, y, tx, ty, q/p, dz) -> (x, y, tx, ty) at z + dz.

Three architectures, four sizes each (the source study's):

- ``mlp``: inputs -> hidden layers -> 4 outputs (trained on endpoint data only).
- ``pinn``: the same network with a 7th input zeta in [0, 1]; the state at z0 + zeta dz is
  ``prior(zeta) + zeta * scale * net(u, zeta)``, so the initial condition (zeta = 0 gives the
  input state) is built in, not a loss. The ODE residual d state / d zeta - dz f(state, z) is
  taken by autodiff at collocation points (:mod:`physml.tracks.training`); endpoint: zeta = 1.
- ``rk_pinn``: a shared backbone and four stage heads predicting the state at zeta = 0.25,
  0.5, 0.75, 1 (each ``prior(zeta_k) + zeta_k * scale * head_k``); the **endpoint is the last
  stage** (zeta = 1), so exact stage states give the exact endpoint. The intermediate stages
  are tied to it by the stage ODE residuals (the physics loss). (The first version combined
  stage secants with RK4-like weights, which is exact only for straight tracks: fed the exact
  stages it was 407 mm off on average.)

Every model adds its network output to a physics **prior** (:mod:`physml.tracks.priors`):
``none`` (absolute target around the training mean; MLP only), ``straight`` (field-free line)
or ``kick`` (single kick of the on-axis field integral at the By centroid — the hybrid), or
``rk4`` (a few RK4 steps through the field map, numba, outside torch; MLP only), and
scales the network output per track by |q/p| when ``qop_scale`` (the residual of each prior
is proportional to q/p to first order). ``model.predict(u)`` maps physical inputs (n, 6) to
physical outputs (n, 4) and is what ONNX export wraps — except for the ``rk4`` prior, whose
ONNX graph is the network part only: inputs ``u`` (n, 6) and ``prior`` (n, 4) (the coarse RK4
end state, computed by numba beside it), output prior + scale(u) * net(u).
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from physml.tracks import priors

SIZES = {"tiny": [64, 64], "small": [128, 128], "medium": [256, 256, 128],
         "wide": [512, 512, 256, 128]}
ARCHITECTURES = ("mlp", "pinn", "rk_pinn")
STAGES = (0.25, 0.5, 0.75, 1.0)
INPUTS = ("x_mm", "y_mm", "tx", "ty", "qop_per_gev", "dz_mm")
OUTPUTS = ("x_mm", "y_mm", "tx", "ty")


@dataclass
class Normalization:
    """Input shift/scale (6,), output shift/scale (4,) in physical units, the prior (one of
    :data:`physml.tracks.priors.PRIORS`), whether outputs are scaled per track by |q/p|, the
    kick table (z0, step in mm; i0, i1 lists) when ``prior == "kick"`` and the fields of the
    :class:`~physml.tracks.priors.RK4Prior` (``rk4``: steps, length_mm, map_sha1, field, z0_mm,
    magnet) when ``prior == "rk4"``."""

    in_mean: list
    in_std: list
    out_mean: list
    out_std: list
    prior: str = "straight"
    qop_scale: bool = False
    kick_z0_mm: float = 0.0
    kick_step_mm: float = 0.0
    kick_i0: list = field(default_factory=list)
    kick_i1: list = field(default_factory=list)
    rk4: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.prior not in priors.PRIORS:
            raise ValueError(f"Normalization: prior {self.prior!r} not in {priors.PRIORS}")
        if self.prior == "kick" and len(self.kick_i0) < 2:
            raise ValueError("Normalization: prior 'kick' needs a kick table (kick_i0, kick_i1)")
        if self.prior == "rk4":
            if not self.rk4:
                raise ValueError("Normalization: prior 'rk4' needs its RK4Prior fields (rk4)")
            self.rk4_prior()  # validates the fields

    def rk4_prior(self) -> priors.RK4Prior:
        """The :class:`~physml.tracks.priors.RK4Prior` of prior 'rk4'."""
        return priors.RK4Prior(**self.rk4)

    def table(self) -> priors.KickTable:
        z = self.kick_z0_mm + self.kick_step_mm * np.arange(len(self.kick_i0))
        return priors.KickTable(z, np.asarray(self.kick_i0), np.asarray(self.kick_i1))

    @classmethod
    def fit(cls, initial: np.ndarray, dz: np.ndarray, final: np.ndarray, prior: str = "straight",
            qop_scale: bool = False, table: priors.KickTable | None = None,
            rk4: priors.RK4Prior | None = None):
        """From training arrays initial (n, 5), dz (n,), final (n, 5); ``table`` for "kick",
        ``rk4`` for "rk4". Output scale: the std of the residual target final - prior (divided
        by |q/p| if ``qop_scale``) per component."""
        extra = {}
        if prior == "rk4":
            if rk4 is None:
                raise ValueError("Normalization.fit: prior 'rk4' needs an RK4Prior")
            extra = {"rk4": asdict(rk4) | {"map_digest": None if rk4.map_digest is None
                                            else list(rk4.map_digest)}}  # as JSON reads it
        if prior == "kick":
            if table is None:
                raise ValueError("Normalization.fit: prior 'kick' needs a KickTable")
            extra = {"kick_z0_mm": float(table.z_mm[0]),
                    "kick_step_mm": float(table.z_mm[1] - table.z_mm[0]),
                    "kick_i0": table.i0.tolist(), "kick_i1": table.i1.tolist()}
        u = np.concatenate([initial, dz[:, None]], 1)
        target = final[:, :4] - prior_numpy(prior, initial, dz, table, rk4)
        if qop_scale:
            target = target / np.abs(initial[:, 4:5])
        in_std = u.std(0)
        in_std[in_std == 0] = 1.0
        out_std = target.std(0)
        out_std[out_std == 0] = 1.0
        out_mean = target.mean(0).tolist() if prior == "none" else [0.0] * 4
        return cls(u.mean(0).tolist(), in_std.tolist(), out_mean, out_std.tolist(), prior,
                   bool(qop_scale), **extra)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: str | Path) -> Normalization:
        return cls(**json.loads(Path(path).read_text()))


def prior_numpy(prior: str, initial: np.ndarray, dz: np.ndarray,
                table: priors.KickTable | None = None,
                rk4: priors.RK4Prior | None = None) -> np.ndarray:
    """The prior's end state (n, 4) in NumPy ("none": zeros)."""
    if prior == "none":
        return np.zeros((initial.shape[0], 4))
    if prior == "straight":
        return straight(initial, dz)
    if prior == "kick":
        return priors.kick_numpy(initial, dz, table)
    if prior == "rk4":
        return rk4(initial, dz)
    raise ValueError(f"prior {prior!r} not in {priors.PRIORS}")


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
    """Base: holds the normalisation and the prior as buffers; physical <-> normalised units."""

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
        self.prior = norm.prior
        self.qop_scale = bool(norm.qop_scale)
        if self.prior == "kick":
            self.register_buffer("kick_i0", torch.tensor(norm.kick_i0, dtype=f))
            self.register_buffer("kick_i1", torch.tensor(norm.kick_i1, dtype=f))
            self._kick = (float(norm.kick_z0_mm), float(norm.kick_step_mm),
                          float(norm.kick_z0_mm + norm.kick_step_mm * (len(norm.kick_i0) - 1)))
        if self.prior == "rk4":
            self._rk4 = norm.rk4_prior()

    def encode(self, u: torch.Tensor) -> torch.Tensor:
        return (u - self.in_mean) / self.in_std

    def base(self, u: torch.Tensor, zeta) -> torch.Tensor:
        """Physical prior state (n, 4) the scaled network output is added to, at fraction zeta."""
        if self.prior == "none":
            return self.out_mean.expand(u.shape[0], 4)
        if self.prior == "straight":
            return priors.straight(u, zeta)
        if self.prior == "rk4":
            if not (isinstance(zeta, float | int) and zeta == 1):
                raise ValueError(f"{self.arch}: the rk4 prior gives the end state only "
                                 f"(zeta = 1), got zeta = {zeta!r}")
            return self._rk4.torch(u)
        z0, step, last = self._kick
        return priors.kick(u, zeta, (self.kick_i0, self.kick_i1), z0, step, last)

    def scale(self, u: torch.Tensor) -> torch.Tensor:
        """Per-track output scale (n, 4) in physical units: out_std, times |q/p| if qop_scale."""
        s = self.out_std.expand(u.shape[0], 4)
        return s * u[:, 4:5].abs() if self.qop_scale else s

    def decode(self, u: torch.Tensor, out: torch.Tensor, zeta) -> torch.Tensor:
        return self.base(u, zeta) + self.scale(u) * out

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

    def residual_forward(self, u: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """prior (n, 4) + scale(u) * net(u): ``predict`` with the prior's end state given (the
        ONNX graph of the rk4 hybrid, whose prior runs in numba beside it)."""
        return prior + self.scale(u) * self.net(self.encode(u))


def _needs_prior(norm: Normalization, arch: str) -> None:
    if norm.prior in ("none", "rk4"):
        raise ValueError(f"{arch}: the initial condition is built in as prior + zeta * net, so "
                         f"the prior must be 'straight' or 'kick' (a torch state at every "
                         f"zeta), not {norm.prior!r}")


class PINN(Surrogate):
    """z-conditioned: ``state_at(u, zeta)`` (n, 6), (n,) -> (n, 4); endpoint at zeta = 1;
    state_at(u, 0) is the input state exactly (built-in initial condition)."""

    arch = "pinn"

    def __init__(self, norm: Normalization, hidden: list[int]):
        _needs_prior(norm, "pinn")
        super().__init__(norm, hidden)
        self.net = _mlp(7, hidden, 4)

    def raw(self, u, zeta):
        """Normalised network output at zeta (n,): (n, 4)."""
        return self.net(torch.cat([self.encode(u), (2 * zeta - 1)[:, None]], 1))

    def state_at(self, u, zeta):
        """Physical state (n, 4) at z0 + zeta dz for zeta (n,)."""
        return self.decode(u, zeta[:, None] * self.raw(u, zeta), zeta)

    def predict(self, u):
        return self.state_at(u, torch.ones(u.shape[0], dtype=u.dtype, device=u.device))


class RKPINN(Surrogate):
    """Shared backbone, four stage heads at zeta = 0.25, 0.5, 0.75, 1; endpoint = last stage."""

    arch = "rk_pinn"

    def __init__(self, norm: Normalization, hidden: list[int]):
        _needs_prior(norm, "rk_pinn")
        super().__init__(norm, hidden)
        self.backbone = _mlp(6, hidden[:-1], hidden[-1]) if len(hidden) > 1 else nn.Identity()
        width = hidden[-1] if len(hidden) > 1 else 6
        self.act = nn.SiLU()
        self.heads = nn.ModuleList([nn.Linear(width, 4) for _ in STAGES])
        self.register_buffer("zetas", torch.tensor(STAGES))

    def stage_raw(self, u):
        """Normalised stage outputs: list of four (n, 4)."""
        h = self.act(self.backbone(self.encode(u)))
        return [head(h) for head in self.heads]

    def stage_states(self, u):
        """Physical states at the four stage planes: list of four (n, 4)."""
        return [self.decode(u, z * r, z) for r, z in zip(self.stage_raw(u), STAGES, strict=True)]

    @staticmethod
    def combine(u, stages):
        """Endpoint (n, 4) from the stage states: the stage at zeta = 1 (exact for exact stages)."""
        return stages[STAGES.index(1.0)]

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


class _ExportResidual(nn.Module):
    def __init__(self, model: MLP):
        super().__init__()
        self.model = model

    def forward(self, u, prior):
        return self.model.residual_forward(u, prior)


def onnx_inputs(model: Surrogate, u: np.ndarray) -> dict:
    """The ONNX Runtime feeds of :func:`export_onnx`'s graph for physical inputs u (n, 6)
    float32: {"u": u}, plus {"prior": coarse RK4 end state (n, 4) float32} (numba) for the rk4
    prior."""
    if model.prior != "rk4":
        return {"u": u}
    prior = model._rk4(u[:, :5].astype(np.float64), u[:, 5].astype(np.float64))
    return {"u": u, "prior": prior.astype(np.float32)}


@contextlib.contextmanager
def _exporter_noise_muted():
    """Mute what torch's dynamo exporter prints on every export without anything being wrong
    with the model: "torchvision is not installed. Skipping torchvision::nms" (four lines, its
    op registry's log), a FutureWarning from torch's own pytree code and, for the rk4 prior's
    two inputs, a UserWarning that their shared batch axis n is one axis. A research render
    exports one model per run, and the notebook's output drowned in them."""
    registry = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry.level
    registry.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)`",
                                    category=FutureWarning)
            warnings.filterwarnings("ignore", message=r"# The axis name: n will not be used",
                                    category=UserWarning)  # u and prior share their n
            yield
    finally:
        registry.setLevel(level)


def export_onnx(model: Surrogate, path: str | Path, dynamo: bool = False) -> Path:
    """Write ``model.predict`` (physical inputs (n, 6) float32 -> (n, 4)) as ONNX, dynamic n.
    For the rk4 prior (numba, not a torch graph) the graph is the network part: inputs u (n, 6)
    and prior (n, 4), output prior + scale(u) net(u) (feeds: :func:`onnx_inputs`).

    ``dynamo=True``: the ``torch.export``-based exporter (graph optimised by onnxscript; tens
    of seconds per model on a loaded CPU); False: the TorchScript tracer (about a second)."""
    path = Path(path)
    model = model.eval()
    example = torch.zeros(8, 6)
    example[:, 5] = 5000.0
    if model.prior == "rk4":
        wrapper, args, names = _ExportResidual(model), (example, torch.zeros(8, 4)), ["u", "prior"]
    else:
        wrapper, args, names = _Export(model), (example,), ["u"]
    wrapper.eval()  # a new module is in training mode: the exporter warned on every export
    if dynamo:
        n = torch.export.Dim("n")
        with _exporter_noise_muted():
            torch.onnx.export(wrapper, args, str(path), input_names=names,
                              output_names=["state"], dynamic_shapes=tuple({0: n} for _ in args),
                              dynamo=True, verbose=False)
    else:
        torch.onnx.export(wrapper, args, str(path), input_names=names,
                          output_names=["state"],
                          dynamic_axes={**{k: {0: "n"} for k in names}, "state": {0: "n"}},
                          dynamo=False)
    return path
