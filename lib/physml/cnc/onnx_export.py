"""ONNX export of the CNC models and onnxruntime inference, for the throughput benchmark.

:func:`export` writes a model to an ``.onnx`` file with ``torch.onnx.export`` (``dynamo=True``,
the torch.export-based exporter, by default; ``dynamo=False`` selects the TorchScript-based
one; the caller chooses, nothing falls back silently) with a dynamic batch axis.
:func:`session` opens it in onnxruntime on the CPU with a fixed thread count, and
:func:`run` feeds numpy arrays. Graphs:

- ``CommandCNN``: input ``x`` ``(batch, window, f)`` → ``logits`` ``(batch, 4)``;
- ``EncoderDecoder`` (one teacher-forced pass): inputs ``x`` and ``tgt`` ``(batch, T)`` int64
  → ``class_logits`` ``(batch, 4)`` and ``token_logits`` ``(batch, T, vocab)``.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch


def export(model: torch.nn.Module, example: Sequence[torch.Tensor], path: str | Path,
           input_names: Sequence[str], output_names: Sequence[str], *, dynamo: bool = True,
           opset: int = 18) -> Path:
    """Export ``model`` (eval mode) called on ``example`` to ``path``; axis 0 of every input
    and output is a dynamic batch axis. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    if dynamo:
        batch = torch.export.Dim("batch", min=1, max=1 << 20)
        shapes = {n: {0: batch} for n in input_names}
        kw = {"dynamic_shapes": shapes}
    else:
        axes = {n: {0: "batch"} for n in [*input_names, *output_names]}
        kw = {"dynamic_axes": axes}
    if dynamo:
        kw["verbose"] = False  # no "[torch.onnx] ..." progress lines in the report
    with warnings.catch_warnings(), _quiet_loggers(_NARRATING_LOGGERS):
        # the exporters narrate their steps through warnings and log records (torchvision
        # ops skipped, constant folding skipped); the equality test is the check
        warnings.simplefilter("ignore")
        torch.onnx.export(model, tuple(example), str(path), input_names=list(input_names),
                          output_names=list(output_names), dynamo=dynamo, opset_version=opset,
                          external_data=False, **kw)
    return path


#: Loggers of the dynamo exporter that report routine steps at WARNING level.
_NARRATING_LOGGERS = ("torch.onnx", "onnxscript")


@contextlib.contextmanager
def _quiet_loggers(names: Sequence[str], level: int = logging.ERROR):
    """Raise the level of the named loggers to ``level`` for the block, then restore it."""
    loggers = [logging.getLogger(n) for n in names]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, lv in zip(loggers, old, strict=True):
            lg.setLevel(lv)


def session(path: str | Path, threads: int = 1):
    """An onnxruntime CPU ``InferenceSession`` with ``threads`` intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run(sess, **inputs: np.ndarray) -> list[np.ndarray]:
    """Outputs of ``sess`` for the named numpy inputs."""
    return sess.run(None, inputs)


def max_abs_difference(model: torch.nn.Module, sess, example: Sequence[torch.Tensor],
                       input_names: Sequence[str]) -> float:
    """Largest absolute difference between torch's and onnxruntime's outputs on ``example``."""
    model.eval()
    with torch.no_grad():
        ref = model(*example)
    ref = [ref] if isinstance(ref, torch.Tensor) else list(ref)
    got = run(sess, **{n: t.numpy() for n, t in zip(input_names, example, strict=True)})
    return max(float(np.max(np.abs(r.numpy() - g))) for r, g in zip(ref, got, strict=True))


def benchmark(model: torch.nn.Module, example: Sequence[torch.Tensor], path: str | Path,
              input_names: Sequence[str], *, threads: int = 1, repeats: int = 7,
              warmup: int = 2):
    """onnxruntime against torch (the anchor) on the same batch, interleaved, with
    :func:`physml.timing.against_anchor`; ``items`` = the batch size (windows). ``path``: an
    exported model of ``model``. Both run with ``threads`` threads."""
    from physml import timing

    sess = session(path, threads)
    feeds = {n: t.numpy() for n, t in zip(input_names, example, strict=True)}
    model.eval()

    def torch_fn():
        with torch.no_grad():
            model(*example)

    with timing.threads(threads):
        return timing.against_anchor(lambda: sess.run(None, feeds), torch_fn,
                                     items=int(example[0].shape[0]), repeats=repeats,
                                     warmup=warmup)
