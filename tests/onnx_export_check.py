"""ONNX export of a tracks surrogate that must print nothing (a research render exports one
model per run, and any warning or log line lands in the report)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from physml.tracks import models


def export_silently(model, path: Path, dynamo: bool, caplog) -> Path:
    """:func:`physml.tracks.models.export_onnx`, asserting that it raised no warning and logged
    nothing at WARNING or above: no training-mode warning, no torchvision, pytree or axis-name
    noise from the dynamo exporter. The TorchScript tracer (dynamo False, the fast default)
    says it is deprecated in DeprecationWarnings, which Python shows only for code run from
    __main__: those alone are let through."""
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        out = models.export_onnx(model, path, dynamo=dynamo)
    assert [str(w.message)[:80] for w in caught
            if not (not dynamo and w.category is DeprecationWarning)] == []
    assert [r.getMessage()[:80] for r in caplog.records] == []
    return out
