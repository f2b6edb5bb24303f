"""One PyTorch training loop for every neural model in physml.

``train`` runs train/validation epochs with AdamW and a cosine learning-rate schedule with
linear warm-up, early stopping on the validation loss, a best-model checkpoint, resumption from
the last checkpoint, and a guard that stops on the first NaN/inf loss term with an error naming
the epoch, the batch and the term. Everything it learns is written to ``out_dir``:

- ``history.json``: ``{"train": [{"epoch", "loss", <terms>, "lr"}], "val": [{"epoch", "loss",
  <metrics>}], "best_epoch", "best_val_loss", "training_time", "stopped"}``
- ``config.json``: the :class:`TrainConfig` plus the caller's ``extra_config``
- ``best_model.pt`` (state dict of the best epoch) and ``last.pt`` (full resumable state).

Runs are deterministic under ``TrainConfig.seed``: shuffling uses a private generator and the
global torch RNG (dropout, ...) is seeded inside :func:`seeded`, which restores it afterwards.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

LossTerms = Callable[[torch.nn.Module, tuple[torch.Tensor, ...]], dict[str, torch.Tensor]]
Validate = Callable[[torch.nn.Module], dict[str, float]]


class NonFiniteLossError(FloatingPointError):
    """A loss term or validation metric became NaN or inf; names the epoch, batch and term."""

    def __init__(self, epoch: int, term: str, value: float, batch: int | None = None):
        self.epoch, self.term, self.value, self.batch = epoch, term, value, batch
        where = f"epoch {epoch}" + (f", batch {batch}" if batch is not None else " (validation)")
        super().__init__(f"training stopped at {where}: loss term {term!r} is {value}")

    def __reduce__(self):
        # rebuilt from its own arguments: a run on a Dask worker (physml.parallel) sends its
        # exception back pickled, and the default rebuild passes only the message
        return type(self), (self.epoch, self.term, self.value, self.batch)


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train`.

    epochs: maximum number of epochs. batch_size: samples per step. lr: peak learning rate
    (AdamW). weight_decay: AdamW decoupled weight decay. warmup_epochs: linear warm-up length
    (may be fractional). min_lr: floor of the cosine schedule. patience: epochs without a
    validation improvement larger than ``min_delta`` before stopping (None: never stop early).
    grad_clip: max gradient norm (None: no clipping). seed: shuffling and torch RNG seed.
    progress: tqdm bar (None: only on an interactive terminal, never under ``physml render``).
    """

    epochs: int = 50
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    min_lr: float = 0.0
    patience: int | None = 10
    min_delta: float = 0.0
    grad_clip: float | None = None
    seed: int = 0
    progress: bool | None = None

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
            "warmup_epochs": self.warmup_epochs >= 0,
            "min_lr": 0 <= self.min_lr <= self.lr,
            "patience": self.patience is None or self.patience >= 1,
            "min_delta": self.min_delta >= 0,
            "grad_clip": self.grad_clip is None or self.grad_clip > 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                "TrainConfig: invalid " + ", ".join(f"{k}={getattr(self, k)!r}" for k in bad)
                + " (epochs, batch_size, patience >= 1; lr > 0; 0 <= min_lr <= lr; others >= 0)"
            )


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's global RNG inside the block (e.g. model construction), then restore it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def lr_factor(step: int, total_steps: int, warmup_steps: int, min_ratio: float) -> float:
    """Factor on the peak learning rate at ``step``: linear warm-up, cosine to min_ratio."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _show_progress(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    return sys.stderr.isatty() and "PHYSML_RENDER" not in os.environ


def _atomic_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _atomic_torch(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _check_data(train_data: tuple[torch.Tensor, ...]) -> int:
    if not isinstance(train_data, tuple) or not train_data:
        raise TypeError("train: train_data must be a non-empty tuple of tensors")
    n = train_data[0].shape[0]
    for i, t in enumerate(train_data):
        if not isinstance(t, torch.Tensor):
            raise TypeError(
                f"train: train_data[{i}] is {type(t).__name__}, expected a torch.Tensor"
            )
        if t.shape[0] != n:
            raise ValueError(
                f"train: train_data[{i}] has {t.shape[0]} rows, train_data[0] has {n}"
            )
    if n == 0:
        raise ValueError("train: train_data is empty")
    return n


@dataclass
class _State:
    """Everything a run carries from epoch to epoch (and into ``last.pt``)."""

    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    gen: torch.Generator
    history: dict[str, Any]
    best_state: dict[str, torch.Tensor] | None = None
    since_best: int = 0
    start_epoch: int = 1


def _new_state(model: torch.nn.Module, config: TrainConfig, n: int) -> _State:
    """AdamW with linear warm-up then cosine decay, per optimiser step; a seeded shuffler."""
    steps_per_epoch = math.ceil(n / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = int(round(config.warmup_epochs * steps_per_epoch))
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, total_steps, warmup_steps, config.min_lr / config.lr)
    )
    history: dict[str, Any] = {
        "train": [], "val": [], "best_epoch": None, "best_val_loss": None,
        "training_time": 0.0, "stopped": None,
    }
    return _State(opt, sched, torch.Generator().manual_seed(config.seed), history)


def _resume(state: _State, model: torch.nn.Module, last_path: Path, cfg_dict: dict) -> None:
    """Restore model, optimiser, schedule, RNGs and history from ``last.pt``."""
    ckpt = torch.load(last_path, weights_only=False)
    if ckpt["config"] != cfg_dict:
        raise ValueError(
            f"train: cannot resume from {last_path}: its config differs from this one "
            f"(saved {ckpt['config']}, now {cfg_dict})"
        )
    model.load_state_dict(ckpt["model"])
    state.opt.load_state_dict(ckpt["optimizer"])
    state.sched.load_state_dict(ckpt["scheduler"])
    state.gen.set_state(ckpt["generator"])
    torch.set_rng_state(ckpt["torch_rng"])
    state.history, state.best_state = ckpt["history"], ckpt["best_state"]
    state.since_best = ckpt["since_best"]
    train_hist = state.history["train"]
    state.start_epoch = train_hist[-1]["epoch"] + 1 if train_hist else 1


def _train_epoch(model: torch.nn.Module, loss_terms: LossTerms,
                 train_data: tuple[torch.Tensor, ...], config: TrainConfig, state: _State,
                 epoch: int) -> dict[str, float]:
    """One pass over shuffled batches; returns the row-weighted mean of every loss term.

    Raises :class:`NonFiniteLossError` naming the epoch, batch and term at the first NaN/inf,
    before the optimiser steps on it.
    """
    n = train_data[0].shape[0]
    model.train()
    perm = torch.randperm(n, generator=state.gen)
    sums: dict[str, float] = {}
    for b in range(math.ceil(n / config.batch_size)):
        idx = perm[b * config.batch_size:(b + 1) * config.batch_size]
        terms = loss_terms(model, tuple(t[idx] for t in train_data))
        if "loss" not in terms:
            raise KeyError(f"train: loss_terms returned {sorted(terms)}, without 'loss'")
        vals = torch.stack([v.detach().reshape(()) for v in terms.values()])
        if not bool(torch.isfinite(vals).all()):
            for name, v in zip(terms, vals.tolist(), strict=True):
                if not math.isfinite(v):
                    raise NonFiniteLossError(epoch, name, v, batch=b)
        state.opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        state.opt.step()
        state.sched.step()
        w = idx.numel() / n
        for name, v in zip(terms, vals.tolist(), strict=True):
            sums[name] = sums.get(name, 0.0) + w * v
    return sums


def _validate(model: torch.nn.Module, validate: Validate, epoch: int) -> dict[str, float]:
    model.eval()
    with torch.no_grad():
        val = {k: float(v) for k, v in validate(model).items()}
    if "loss" not in val:
        raise KeyError(f"train: validate returned {sorted(val)}, without 'loss'")
    for k, v in val.items():
        if not math.isfinite(v):
            raise NonFiniteLossError(epoch, f"val {k}", v)
    return val


def _after_epoch(state: _State, model: torch.nn.Module, config: TrainConfig, epoch: int,
                 val_loss: float, out: Path) -> None:
    """Best-model bookkeeping (checkpoint on improvement) and the stopping decision."""
    history = state.history
    best = history["best_val_loss"]
    if best is None or val_loss < best - config.min_delta:
        history["best_epoch"], history["best_val_loss"] = epoch, val_loss
        state.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        _atomic_torch(out / "best_model.pt", state.best_state)
        state.since_best = 0
    else:
        state.since_best += 1
    if config.patience is not None and state.since_best >= config.patience:
        history["stopped"] = f"early stopping at epoch {epoch}"
    elif epoch == config.epochs:
        history["stopped"] = f"completed {epoch} epochs"


def _checkpoint(state: _State, model: torch.nn.Module, cfg_dict: dict, out: Path) -> None:
    _atomic_torch(out / "last.pt", {
        "config": cfg_dict, "model": model.state_dict(), "optimizer": state.opt.state_dict(),
        "scheduler": state.sched.state_dict(), "generator": state.gen.get_state(),
        "torch_rng": torch.get_rng_state(), "history": state.history,
        "best_state": state.best_state, "since_best": state.since_best,
    })
    _atomic_json(out / "history.json", state.history)


def train(
    model: torch.nn.Module,
    loss_terms: LossTerms,
    train_data: tuple[torch.Tensor, ...],
    validate: Validate,
    config: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    extra_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``model`` and return its history, with the best epoch's weights loaded.

    Parameters
    ----------
    model : torch.nn.Module
    loss_terms : callable ``(model, batch) -> {name: scalar tensor}``
        ``batch`` is a tuple of row-slices of ``train_data``. Must contain ``"loss"`` (the total
        that is minimised); other entries (e.g. ``data_loss``, ``pde_loss``) are logged.
    train_data : tuple of tensors, each ``(n, ...)``
        Shuffled each epoch with a generator seeded by ``config.seed``.
    validate : callable ``(model) -> {name: float}``
        Called once per epoch in eval mode under ``torch.no_grad()``; must contain ``"loss"``,
        which drives early stopping and the best-model choice.
    config : TrainConfig
    out_dir : path
        Receives ``history.json``, ``config.json``, ``best_model.pt`` and ``last.pt``.
    resume : bool
        Continue from ``out_dir/last.pt`` if it exists (its config must match ``config``).
    extra_config : dict, optional
        Saved in ``config.json`` beside the training config (architecture, data sizes, ...).
    """
    n = _check_data(train_data)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg_dict = {"train": asdict(config), "extra": extra_config or {}}
    cfg_dict["train"].pop("progress")
    state = _new_state(model, config, n)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        if resume and (out / "last.pt").exists():
            _resume(state, model, out / "last.pt", cfg_dict)
        _atomic_json(out / "config.json", cfg_dict)
        if state.history["stopped"] is not None:
            state.start_epoch = config.epochs + 1
        bar = tqdm(range(state.start_epoch, config.epochs + 1),
                   disable=not _show_progress(config.progress), desc=f"train {out.name}",
                   leave=False)
        for epoch in bar:
            t0 = time.perf_counter()
            lr_epoch = state.opt.param_groups[0]["lr"]
            sums = _train_epoch(model, loss_terms, train_data, config, state, epoch)
            val = _validate(model, validate, epoch)
            state.history["training_time"] += time.perf_counter() - t0
            state.history["train"].append({"epoch": epoch, **sums, "lr": lr_epoch})
            state.history["val"].append({"epoch": epoch, **val})
            _after_epoch(state, model, config, epoch, val["loss"], out)
            bar.set_postfix(loss=f"{sums['loss']:.3g}", val=f"{val['loss']:.3g}")
            _checkpoint(state, model, cfg_dict, out)
            if (state.history["stopped"] or "").startswith("early"):
                break
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    return state.history


def ended_by_budget(best_epochs, epochs: int) -> int:
    """How many runs had their best validation epoch at the last epoch allowed, ``epochs``
    (``best_epoch`` of :func:`train`'s history counts from 1): the epoch budget, not early
    stopping, ended them, so their validation loss may still have been falling."""
    return sum(int(b) >= epochs for b in best_epochs)


def load_history(out_dir: str | Path) -> dict[str, Any]:
    """Read ``out_dir/history.json`` written by :func:`train`."""
    path = Path(out_dir) / "history.json"
    if not path.exists():
        raise FileNotFoundError(f"no training history at {path}")
    return json.loads(path.read_text())

