"""Loss terms, validation metrics and cached training runs for the track surrogates.

Losses (all in normalised units — divided by the model's per-track output scale
``model.scale(u)``: out_std, times |q/p| for q/p-scaled models):

- ``data_loss``: endpoint MSE;
- (the initial condition of PINN and RK-PINN is built into the model, not a loss);
- ``pde_loss`` (PINN): at collocation points zeta ~ U[0, 1] (fresh every batch), the ODE residual
  d state/d zeta - dz f(state, z0 + zeta dz), d/d zeta by forward-mode autodiff
  (``torch.func.jvp``) and f with the field evaluated by the torch trilinear interpolator inside
  autograd; (RK-PINN) per stage k, (dz / zeta_k) d s_k/d dz - dz f(s_k, z0 + zeta_k dz) with d/d dz
  by autodiff through the dz input (``pde_stage1..4``; ``pde_loss`` is their mean).

The ``rk4`` prior (coarse RK4 in numba, MLP only) is computed once for the training tracks
and carried beside them (a third training tensor), so the loop runs the network only; the
validation and test predictions run the whole model (prior + network).

``loss = lambda_data data + lambda_pde pde``. The budget is counted in optimiser steps
(``RunConfig.steps``: epochs = ceil(steps / batches per epoch)); every summary records
``optimizer_steps``. Training goes through
:func:`physml.train.train`; each run lives in ``artifacts/tracks/runs/<name>-<hash>/`` with
history.json, normalization.json, model.onnx and summary.json (test metrics, throughput), and
is reused when the same configuration is asked for again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from physml.paths import artifacts_dir
from physml.tracks import models, priors
from physml.tracks.eom import derivatives
from physml.train import TrainConfig, train

TARGETS = {"pos_mean_mm": 0.1, "pos_95_mm": 0.3, "slope_mean": 1e-5}


@dataclass
class RunConfig:
    """One training run. ``prior``: "none" | "straight" | "kick" (:mod:`physml.tracks.priors`);
    ``qop_scale``: network output scaled per track by |q/p|; ``steps``: optimiser steps (> 0
    overrides ``epochs``); ``lambda_*``: loss weights; ``n_train``: training tracks used (0: all);
    ``train_p_range``: restrict training tracks to this momentum range (GeV), or None;
    ``n_colloc``: collocation points per batch (the first n_colloc tracks of each shuffled batch,
    each at a fresh zeta ~ U[0, 1]; the RK-PINN's stage residuals use the same tracks);
    ``onnx_dynamo``: export model.onnx with the dynamo exporter (else TorchScript);
    ``rk4_steps``, ``rk4_field``: the coarse RK4 of prior "rk4" (steps per track, map
    representation in :data:`physml.tracks.priors.RK4_FIELDS`; MLP only)."""

    arch: str = "mlp"
    size: str = "tiny"
    prior: str = "straight"
    qop_scale: bool = False
    lambda_data: float = 1.0
    lambda_pde: float = 1.0
    epochs: int = 20
    steps: int = 0
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.0
    patience: int | None = None
    seed: int = 0
    n_train: int = 0
    train_p_range: tuple[float, float] | None = None
    z0_mm: float = 0.0
    n_colloc: int = 64
    onnx_dynamo: bool = False
    rk4_steps: int = 0
    rk4_field: str = "trilinear"

    def __post_init__(self) -> None:
        if self.arch not in models.ARCHITECTURES:
            raise ValueError(f"RunConfig: arch {self.arch!r} not in {models.ARCHITECTURES}")
        if self.size not in models.SIZES:
            raise ValueError(f"RunConfig: size {self.size!r} not in {sorted(models.SIZES)}")
        for k in ("lambda_data", "lambda_pde", "steps"):
            if getattr(self, k) < 0:
                raise ValueError(f"RunConfig: {k} = {getattr(self, k)}, expected >= 0")
        if self.prior not in priors.PRIORS:
            raise ValueError(f"RunConfig: prior {self.prior!r} not in {priors.PRIORS}")
        if self.prior == "none" and self.arch != "mlp":
            raise ValueError(f"RunConfig: arch {self.arch!r} builds in the initial condition "
                             "and needs prior 'straight' or 'kick'")
        if self.prior == "rk4":
            if self.arch != "mlp":
                raise ValueError(f"RunConfig: prior 'rk4' (numba, end state only) needs arch "
                                 f"'mlp', got {self.arch!r}")
            if not (isinstance(self.rk4_steps, int) and self.rk4_steps >= 1):
                raise ValueError(f"RunConfig: rk4_steps = {self.rk4_steps!r}, expected an "
                                 "integer >= 1 with prior 'rk4'")
            if self.rk4_field not in priors.RK4_FIELDS:
                raise ValueError(f"RunConfig: rk4_field = {self.rk4_field!r}, expected one of "
                                 f"{priors.RK4_FIELDS}")
        elif self.rk4_steps:
            raise ValueError(f"RunConfig: rk4_steps = {self.rk4_steps} given with prior "
                             f"{self.prior!r} (only prior 'rk4' takes RK4 steps)")

    @property
    def model(self) -> str:
        """Model label: arch-size, '+kick' for the kick prior, '+rk4x<steps>' for the coarse
        RK4 prior ('+rk4x<steps>bs' on the B-spline), '/qp' when q/p-scaled, '/abs' without a
        prior."""
        rk4 = f"+rk4x{self.rk4_steps}{'bs' if self.rk4_field == 'bspline' else ''}"
        tag = {"none": "/abs", "straight": "", "kick": "+kick", "rk4": rk4}[self.prior]
        return f"{self.arch}-{self.size}{tag}{'/qp' if self.qop_scale else ''}"

    @property
    def name(self) -> str:
        return f"{self.model.replace('/', '_')}-s{self.seed}"

    def epochs_for(self, n_train: int) -> int:
        """Epochs that give ``steps`` optimiser steps on n_train tracks (``epochs`` if steps=0)."""
        if not self.steps:
            return self.epochs
        return max(1, int(np.ceil(self.steps / np.ceil(n_train / self.batch_size))))

    def key(self, data_key: str) -> str:
        cfg = asdict(self)
        if not cfg["onnx_dynamo"]:  # the TorchScript export keeps the keys of earlier runs
            cfg.pop("onnx_dynamo")
        if self.prior != "rk4":  # as do the runs without the rk4 prior
            cfg.pop("rk4_steps")
            cfg.pop("rk4_field")
        blob = json.dumps({"cfg": cfg, "data": data_key}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:10]


# --------------------------------------------------------------------------------------------
def to_inputs(data: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Physical input tensor (n, 6) and end-state target (n, 4), float32."""
    u = np.concatenate([data["initial"], data["dz"][:, None]], 1)
    return (torch.tensor(u, dtype=torch.float32),
            torch.tensor(data["final"][:, :4], dtype=torch.float32))


def metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Errors of predicted end states (n, 4) vs truth (n, 4): position |dr| mean and 95th
    percentile (mm), mean |dx|, |dy| (mm), mean slope error |d(tx, ty)|."""
    dr = np.hypot(pred[:, 0] - true[:, 0], pred[:, 1] - true[:, 1])
    ds = np.hypot(pred[:, 2] - true[:, 2], pred[:, 3] - true[:, 3])
    return {"pos_mean_mm": float(dr.mean()), "pos_95_mm": float(np.percentile(dr, 95)),
            "slope_mean": float(ds.mean()),
            "x_mean_mm": float(np.abs(pred[:, 0] - true[:, 0]).mean()),
            "y_mean_mm": float(np.abs(pred[:, 1] - true[:, 1]).mean())}


@torch.no_grad()
def predict(model: models.Surrogate, u: torch.Tensor, batch: int = 8192) -> np.ndarray:
    """Physical predictions (n, 4) in batches."""
    model.eval()
    return np.concatenate([model.predict(u[i:i + batch]).double().numpy()
                           for i in range(0, u.shape[0], batch)])


def _rhs_torch(state: torch.Tensor, qop: torch.Tensor, z: torch.Tensor, field) -> torch.Tensor:
    """(tx, ty, dtx/dz, dty/dz) (n, 4) at state (n, 4), z (n,) mm; field.torch in autograd."""
    pts = torch.stack([state[:, 0], state[:, 1], z], 1)
    b = field.torch(pts)
    dtx, dty = derivatives(state[:, 2], state[:, 3], qop, b[:, 0], b[:, 1], b[:, 2])
    return torch.stack([state[:, 2], state[:, 3], dtx, dty], 1)


def pinn_residual(model: models.PINN, u: torch.Tensor, zeta: torch.Tensor, field,
                  z0_mm: float = 0.0) -> torch.Tensor:
    """Normalised ODE residual (n, 4) of a PINN at zeta (n,): (ds/dzeta - dz f) / out_std."""
    s, ds = torch.func.jvp(lambda zz: model.state_at(u, zz), (zeta,), (torch.ones_like(zeta),))
    dz = u[:, 5]
    f = _rhs_torch(s, u[:, 4], z0_mm + zeta * dz, field)
    return (ds - dz[:, None] * f) / model.scale(u)


def rk_stage_residuals(model: models.RKPINN, u: torch.Tensor, field, z0_mm: float = 0.0):
    """Stage states (list of (n, 4)) and normalised per-stage ODE residuals (list of (n, 4))."""
    tangent = torch.zeros_like(u)
    tangent[:, 5] = 1.0
    stages, dstages = torch.func.jvp(lambda uu: tuple(model.stage_states(uu)), (u,), (tangent,))
    dz = u[:, 5]
    res = []
    for z, s, d in zip(models.STAGES, stages, dstages, strict=True):
        f = _rhs_torch(s, u[:, 4], z0_mm + z * dz, field)
        res.append(((dz / z)[:, None] * d - dz[:, None] * f) / model.scale(u))
    return list(stages), res


def make_loss_terms(cfg: RunConfig, field):
    """``loss_terms(model, (u, target))`` for :func:`physml.train.train`."""

    def data_term(model, u, y):
        return (((model.predict(u) - y) / model.scale(u)) ** 2).mean()

    def mlp_terms(model, batch):
        if len(batch) == 3:  # rk4 prior: (u, target, precomputed prior end state)
            u, y, prior = batch
            data = (((model.residual_forward(u, prior) - y) / model.scale(u)) ** 2).mean()
            return {"loss": cfg.lambda_data * data, "data_loss": data}
        u, y = batch
        data = data_term(model, u, y)
        return {"loss": cfg.lambda_data * data, "data_loss": data}

    def pinn_terms(model, batch):
        u, y = batch
        data = data_term(model, u, y)
        terms = {"data_loss": data}
        total = cfg.lambda_data * data
        if cfg.lambda_pde > 0:
            uc = u[: cfg.n_colloc]
            pde = (pinn_residual(model, uc, torch.rand(uc.shape[0]), field, cfg.z0_mm) ** 2).mean()
            terms["pde_loss"] = pde
            total = total + cfg.lambda_pde * pde
        terms["loss"] = total
        return terms

    def rk_terms(model, batch):
        u, y = batch
        data = data_term(model, u, y)
        res = (rk_stage_residuals(model, u[: cfg.n_colloc], field, cfg.z0_mm)[1]
               if cfg.lambda_pde > 0 else None)
        terms = {"data_loss": data}
        total = cfg.lambda_data * data
        if res is not None:
            per = [(r ** 2).mean() for r in res]
            for k, p in enumerate(per, 1):
                terms[f"pde_stage{k}"] = p
            pde = torch.stack(per).mean()
            terms["pde_loss"] = pde
            total = total + cfg.lambda_pde * pde
        terms["loss"] = total
        return terms

    return {"mlp": mlp_terms, "pinn": pinn_terms, "rk_pinn": rk_terms}[cfg.arch]


def make_validate(u_val: torch.Tensor, y_val: torch.Tensor):
    """``validate(model)``: normalised endpoint MSE as "loss" plus :func:`metrics`."""
    y_np = y_val.double().numpy()

    def validate(model):
        pred = predict(model, u_val)
        with torch.no_grad():
            scale = model.scale(u_val).double().numpy()
        loss = float(np.mean(((pred - y_np) / scale) ** 2))
        return {"loss": loss, **metrics(pred, y_np)}

    return validate


# --------------------------------------------------------------------------------------------
def onnx_session(path: str, threads: int):
    """An onnxruntime CPU session for timing: ``threads`` intra-op threads whose pool does not
    spin-wait between calls (``session.intra_op.allow_spinning`` 0).

    With spinning (onnxruntime's default) the pool's threads keep a core busy after each call,
    and whatever is timed next on the same cores pays for it: interleaved with a numba RK4 on
    2 threads (shipped mlp-small+kick-qp, batch 4096) the RK4 ran at ~380k tracks/s beside a
    spinning session and ~645k beside a non-spinning one, while the session itself ran
    1.07-1.14M tracks/s either way; so every ONNX ratio to RK4 was inflated."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def throughput(model: models.Surrogate, u: torch.Tensor, batch_sizes=(1, 32, 256, 1024, 4096),
               backend: str = "torch", onnx_path: str | Path | None = None,
               min_time_s: float = 0.3) -> dict[int, float]:
    """Tracks per second of ``model.predict`` per batch size (torch, no grad) or ONNX Runtime.

    Each batch size is timed over repeated calls for at least ``min_time_s`` after one warm-up.
    """
    if backend == "onnx":
        if onnx_path is None:
            raise ValueError("throughput: backend='onnx' needs onnx_path")
        sess = onnx_session(str(onnx_path), torch.get_num_threads())

        def run(x):
            return sess.run(None, {"u": x})
    elif backend == "torch":
        model.eval()

        def run(x):
            with torch.inference_mode():
                return model.predict(x)
    else:
        raise ValueError(f"throughput: backend {backend!r} not in ('torch', 'onnx')")
    out = {}
    for b in batch_sizes:
        idx = torch.arange(b) % u.shape[0]
        x = u[idx].numpy() if backend == "onnx" else u[idx]
        run(x)
        n, t0 = 0, time.perf_counter()
        while True:
            run(x)
            n += 1
            dt = time.perf_counter() - t0
            if dt >= min_time_s:
                break
        out[int(b)] = n * b / dt
    return out


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` intra-op torch threads, then restore. Small-batch training on
    a shared 2-core machine is ~40x faster with 1 thread than with OpenMP's 2 spinning ones."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def run(cfg: RunConfig, train_data: dict, val_data: dict, test_data: dict, field,
        data_key: str, root: str | Path | None = None, export: bool = True,
        threads: int = 1) -> dict:
    """Train (or reuse) one model with ``threads`` torch threads; returns its summary dict.

    Summary: config, n_params, training_time_s, epochs_run, best_epoch, test metrics
    (pos_mean_mm, pos_95_mm, slope_mean, x_mean_mm, y_mean_mm), learned RK weights, run_dir.
    """
    root = Path(root) if root else artifacts_dir("tracks", "runs")
    out = root / f"{cfg.name}-{cfg.key(data_key)}"
    summary_path = out / "summary.json"
    if summary_path.is_file():
        return json.loads(summary_path.read_text())
    out.mkdir(parents=True, exist_ok=True)
    tr = train_data
    if cfg.train_p_range is not None:
        p = 1 / np.abs(tr["initial"][:, 4])
        m = (p >= cfg.train_p_range[0]) & (p < cfg.train_p_range[1])
        tr = {k: v[m] for k, v in tr.items()}
    if cfg.n_train:
        if cfg.n_train > tr["initial"].shape[0]:
            raise ValueError(f"run: n_train = {cfg.n_train} > {tr['initial'].shape[0]} available")
        tr = {k: v[: cfg.n_train] for k, v in tr.items()}
    table = (priors.KickTable.from_field(field, cfg.z0_mm) if cfg.prior == "kick" else None)
    rk4 = (priors.RK4Prior.fit(field, cfg.rk4_steps, tr["dz"], cfg.rk4_field, cfg.z0_mm)
           if cfg.prior == "rk4" else None)
    norm = models.Normalization.fit(tr["initial"], tr["dz"], tr["final"], cfg.prior,
                                    cfg.qop_scale, table, rk4)
    norm.save(out / "normalization.json")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = models.build(cfg.arch, cfg.size, norm)
    u_tr, y_tr = to_inputs(tr)
    train_data = (u_tr, y_tr)
    if rk4 is not None:
        train_data += (rk4.torch(u_tr),)  # from the float32 inputs, exactly as predict does
    u_va, y_va = to_inputs(val_data)
    epochs = cfg.epochs_for(int(u_tr.shape[0]))
    tcfg = TrainConfig(epochs=epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                       weight_decay=cfg.weight_decay, warmup_epochs=min(1.0, epochs / 10),
                       patience=cfg.patience, seed=cfg.seed, progress=False)
    with torch_threads(threads):
        hist = train(model, make_loss_terms(cfg, field), train_data, make_validate(u_va, y_va),
                     tcfg, out, extra_config={"run": asdict(cfg), "data_key": data_key,
                                              "n_train": int(u_tr.shape[0])})
        u_te, y_te = to_inputs(test_data)
        test = metrics(predict(model, u_te), y_te.double().numpy())
    summary = {
        "config": asdict(cfg), "name": cfg.name, "model": cfg.model, "run_dir": str(out),
        "optimizer_steps": len(hist["train"]) * int(np.ceil(u_tr.shape[0] / cfg.batch_size)),
        "n_params": model.n_params(), "n_train": int(u_tr.shape[0]),
        "training_time_s": hist["training_time"], "epochs_run": len(hist["train"]),
        "best_epoch": hist["best_epoch"], **test,
        "meets_targets": bool(all(test[k] < v for k, v in TARGETS.items())),
    }
    if export:
        models.export_onnx(model, out / "model.onnx", dynamo=cfg.onnx_dynamo)
    summary_path.write_text(json.dumps(summary, indent=1))
    return summary


def load_model(run_dir: str | Path) -> models.Surrogate:
    """Rebuild a trained model from its run folder (normalization.json + best_model.pt)."""
    run_dir = Path(run_dir)
    cfg = json.loads((run_dir / "config.json").read_text())["extra"]["run"]
    norm = models.Normalization.load(run_dir / "normalization.json")
    model = models.build(cfg["arch"], cfg["size"], norm)
    model.load_state_dict(torch.load(run_dir / "best_model.pt", weights_only=True))
    return model.eval()
