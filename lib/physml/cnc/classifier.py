"""A small 1-D CNN over a window of sensor rows → command class G0/G1/G2/G3 (task a).

Architecture: two ``Conv1d`` layers (kernel 3, same padding, GELU) over the time axis of a
``(batch, window, features)`` input; the last row's channels (the row being labelled) beside
their average over the window; one linear layer to the 4 classes. Trained with
:func:`physml.train.train` on the focal loss (``gamma = 0`` is cross-entropy) with
inverse-frequency class weights from the training rows, early stopping on the loss of
validation *files* held out inside the training fold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from physml import train as _train

from .baselines import balanced_accuracy_score
from .focal import focal_loss
from .folds import run_folds
from .sequences import CLASSES, NO_CLASS, Scaler, inner_validation


class CommandCNN(nn.Module):
    """``(b, window, n_features)`` → ``(b, 4)`` class logits."""

    def __init__(self, n_features: int, channels: int = 64, n_classes: int = len(CLASSES),
                 dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(n_features, channels, 3, padding=1), nn.GELU(), nn.Dropout(dropout),
            nn.Conv1d(channels, channels, 3, padding=1), nn.GELU(),
        )
        self.head = nn.Linear(2 * channels, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.net(x.transpose(1, 2))  # (b, channels, window)
        return self.head(torch.cat([h[:, :, -1], h.mean(dim=2)], dim=1))


def class_weights(y: np.ndarray, n_classes: int = len(CLASSES)) -> torch.Tensor:
    """Inverse-frequency weights ``n / (k * count)`` of the classes in ``y`` (``NO_CLASS``
    ignored); a class absent from ``y`` gets weight 0 (it contributes no loss anyway)."""
    y = np.asarray(y)
    y = y[y != NO_CLASS]
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    w = np.zeros(n_classes)
    w[present] = len(y) / (present.sum() * counts[present])
    return torch.tensor(w, dtype=torch.float32)


@dataclass
class ClassifierConfig:
    """Architecture and loss of :class:`CommandCNN`. ``gamma``: focal exponent (0 = CE);
    ``balanced``: inverse-frequency class weights."""

    channels: int = 64
    dropout: float = 0.1
    gamma: float = 0.0
    balanced: bool = True


def fit_classifier(table: torch.Tensor, index: np.ndarray, y: np.ndarray, fit_rows: np.ndarray,
                   val_rows: np.ndarray, cfg: ClassifierConfig, train_cfg: _train.TrainConfig,
                   out_dir: str | Path) -> tuple[CommandCNN, dict]:
    """Train a :class:`CommandCNN` on ``fit_rows`` (rows without a class are skipped),
    early-stopped on ``val_rows``. ``table``: ``(n, f)`` scaled inputs; ``index``:
    ``(n, window)`` window rows; ``y``: ``(n,)`` class ids. Returns the model (best epoch)
    and its history."""
    fit_rows = fit_rows[y[fit_rows] != NO_CLASS]
    val_rows = val_rows[y[val_rows] != NO_CLASS]
    if fit_rows.size == 0 or val_rows.size == 0:
        raise ValueError("fit_classifier: no training or validation row has a command class")
    idx_t = torch.from_numpy(np.asarray(index))
    y_t = torch.from_numpy(np.asarray(y, dtype=np.int64))
    w = class_weights(y[fit_rows]) if cfg.balanced else None
    with _train.seeded(train_cfg.seed):
        model = CommandCNN(table.shape[1], cfg.channels, dropout=cfg.dropout)

    def loss_terms(m, batch):
        (rows,) = batch
        return {"loss": focal_loss(m(table[idx_t[rows]]), y_t[rows], cfg.gamma, weight=w)}

    vr = torch.from_numpy(val_rows)

    def validate(m):
        logits = m(table[idx_t[vr]])
        return {"loss": float(focal_loss(logits, y_t[vr], cfg.gamma, weight=w)),
                "accuracy": float((logits.argmax(1) == y_t[vr]).float().mean())}

    hist = _train.train(model, loss_terms, (torch.from_numpy(fit_rows),), validate, train_cfg,
                        out_dir, extra_config={"model": "CommandCNN", **cfg.__dict__})
    return model, hist


@torch.no_grad()
def predict_classes(model: nn.Module, table: torch.Tensor, index: np.ndarray,
                    rows: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Class ids ``(len(rows),)`` predicted for ``rows`` (eval mode, batched)."""
    model.eval()
    idx_t = torch.from_numpy(np.asarray(index))
    out = []
    for a in range(0, len(rows), batch):
        r = torch.from_numpy(np.asarray(rows[a:a + batch]))
        out.append(model(table[idx_t[r]]).argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def run_fold(ds, train_rows: np.ndarray, test_rows: np.ndarray, cfg: ClassifierConfig,
             train_cfg: _train.TrainConfig, out_dir: str | Path, *, n_inner: int = 5,
             train_stride: int = 1, test_stride: int = 1) -> dict[str, float]:
    """Scaler fitted on ``train_rows`` (training files only), early stopping on validation
    files held out inside them, every ``train_stride``-th remaining row used for fitting;
    returns the balanced accuracy on ``test_rows`` (rows with a command class; every
    ``test_stride``-th row, 1 in every report) and the best epoch.
    ``ds``: a :class:`physml.cnc.sequences.Dataset`."""
    train_rows, test_rows = np.asarray(train_rows), np.asarray(test_rows)
    fit_rows, val_rows = inner_validation(ds.files, train_rows, n_inner, train_cfg.seed)
    scaler = Scaler.fit(ds.inputs.values[train_rows], ds.inputs.columns)
    table = ds.inputs.table(scaler)
    y = ds.targets.command
    model, hist = fit_classifier(table, ds.inputs.window_index, y, fit_rows[::train_stride],
                                 val_rows, cfg, train_cfg, out_dir)
    te = test_rows[::test_stride]
    te = te[y[te] != NO_CLASS]
    pred = predict_classes(model, table, ds.inputs.window_index, te)
    return {"command_balanced_accuracy": balanced_accuracy_score(y[te], pred),
            "best_epoch": hist["best_epoch"]}


def cross_validate(ds, split_list, cfg: ClassifierConfig, train_cfg: _train.TrainConfig,
                   out_root: str | Path, client=None, **fold_kw):
    """:func:`run_fold` for every ``(seed, Split)`` (training seed = split seed): a frame
    with one row per (seed, fold). ``client``: run the folds on it
    (:func:`physml.cnc.folds.run_folds`)."""
    res = run_folds(run_fold, ds, split_list, cfg, train_cfg, out_root, client=client,
                    **fold_kw)
    return pd.DataFrame([{"seed": int(seed), "fold": int(sp.fold), **s}
                         for (seed, sp), s in zip(split_list, res, strict=True)])


def fit_final(ds, cfg: ClassifierConfig, train_cfg: _train.TrainConfig, out_dir: str | Path,
              *, n_inner: int = 5, train_stride: int = 1) -> tuple[CommandCNN, Scaler]:
    """A classifier on every file (validation files held out for early stopping, never a
    test fold); returns the model and its scaler (e.g. for the ONNX export)."""
    rows = np.arange(len(ds.files))
    fit_rows, val_rows = inner_validation(ds.files, rows, n_inner, train_cfg.seed)
    scaler = Scaler.fit(ds.inputs.values, ds.inputs.columns)
    model, _ = fit_classifier(ds.inputs.table(scaler), ds.inputs.window_index,
                              ds.targets.command, fit_rows[::train_stride], val_rows, cfg,
                              train_cfg, out_dir)
    return model, scaler
