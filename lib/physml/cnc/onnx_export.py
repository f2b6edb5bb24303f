"""ONNX export of the CNC models and onnxruntime inference, for the throughput benchmark.

:func:`export` writes a model to an ``.onnx`` file with ``torch.onnx.export`` (``dynamo=True``,
the torch.export-based exporter, by default; ``dynamo=False`` selects the TorchScript-based
one; the caller chooses, nothing falls back silently) with a dynamic batch axis.
:func:`session` opens it in onnxruntime on the CPU with a fixed thread count, and
:func:`run` feeds numpy arrays. Graphs:

- ``CommandCNN``: input ``x`` ``(batch, window, f)`` → ``logits`` ``(batch, 4)``;
- ``EncoderDecoder`` (one teacher-forced pass): inputs ``x`` and ``tgt`` ``(batch, T)`` int64
  → ``class_logits`` ``(batch, 4)`` and ``token_logits`` ``(batch, T, vocab)``;
- :class:`~physml.cnc.encoder_decoder.GreedyPredictor` (the full prediction): ``x`` →
  ``token_ids`` ``(batch, steps)`` int64 and ``classes`` ``(batch,)`` int64, the greedy
  decoding loop unrolled into the graph;
- :class:`~physml.cnc.encoder_decoder.EncoderStage` (its first stage alone, for the time
  breakdown): ``x`` → ``memory`` ``(batch, window, d_model)`` and ``classes``.

:func:`benchmark` times onnxruntime against torch on the same batch and also records the
process CPU time of each call (all threads), because wall time on a shared machine depends
on the other load. :func:`breakdown` splits the full prediction's time into the encoder and
the decoder steps.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from physml import stats, timing


def export(model: torch.nn.Module, example: Sequence[torch.Tensor], path: str | Path,
           input_names: Sequence[str], output_names: Sequence[str], *, dynamo: bool = True,
           opset: int = 18, optimize: bool = True) -> Path:
    """Export ``model`` (eval mode) called on ``example`` to ``path``; axis 0 of every input
    and output is a dynamic batch axis. Returns the path. ``optimize=False`` skips the dynamo
    exporter's own graph optimiser (most of its time on a large unrolled graph;
    :func:`session` optimises the graph at load anyway)."""
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
        kw["optimize"] = optimize
    with warnings.catch_warnings(), _quiet_loggers(_NARRATING_LOGGERS):
        # the exporters narrate their steps through warnings and log records (torchvision
        # ops skipped, constant folding skipped); the equality test is the check
        warnings.simplefilter("ignore")
        torch.onnx.export(model, tuple(example), str(path), input_names=list(input_names),
                          output_names=list(output_names), dynamo=dynamo, opset_version=opset,
                          external_data=False, **kw)
    return path


#: Loggers of the dynamo exporter (and the ONNX IR it builds with) that report routine steps
#: at WARNING level.
_NARRATING_LOGGERS = ("torch.onnx", "onnxscript", "onnx_ir")


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
    """An onnxruntime CPU ``InferenceSession`` with ``threads`` intra-op threads and every
    graph optimisation (``ORT_ENABLE_ALL``: constant folding, operator fusion, layouts)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
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


def prediction_agreement(model: torch.nn.Module, sess, x: torch.Tensor) -> float:
    """Fraction of the windows ``x`` ``(b, window, f)`` on which onnxruntime's full prediction
    (every output: token ids and class) equals torch's (integer outputs: equal, not close)."""
    model.eval()
    with torch.no_grad():
        ref = [t.numpy() for t in model(x)]
    got = run(sess, x=x.numpy())
    same = np.ones(len(x), dtype=bool)
    for r, g in zip(ref, got, strict=True):
        if r.shape != g.shape:
            raise ValueError(f"prediction_agreement: output shapes differ, torch {r.shape} vs "
                             f"onnxruntime {g.shape}")
        same &= (r == g).reshape(len(x), -1).all(1)
    return float(same.mean())


@dataclass(frozen=True)
class Benchmark:
    """:func:`benchmark`'s result: the wall-clock comparison (``ratio``, a
    :class:`physml.timing.AnchorRatio`: ``ours`` = onnxruntime, ``anchor`` = torch) and the
    process CPU seconds of each timed call, ``(repeats,)`` each."""

    ratio: timing.AnchorRatio
    cpu_ours: np.ndarray
    cpu_anchor: np.ndarray

    @property
    def ours(self) -> timing.Timing:
        return self.ratio.ours

    @property
    def anchor(self) -> timing.Timing:
        return self.ratio.anchor

    @property
    def speedup(self):
        return self.ratio.speedup

    @property
    def cpu_per_second(self) -> dict[str, stats.CI]:
        """Windows per CPU second (all threads of the process), ``{"onnxruntime", "torch"}``."""
        n = self.ours.items
        return {"onnxruntime": stats.mean_ci(n / self.cpu_ours),
                "torch": stats.mean_ci(self.anchor.items / self.cpu_anchor)}


def benchmark(model: torch.nn.Module, example: Sequence[torch.Tensor], path: str | Path,
              input_names: Sequence[str], *, threads: int = 1, repeats: int = 7,
              warmup: int = 2) -> Benchmark:
    """onnxruntime against torch (the anchor) on the same batch, interleaved, with
    :func:`physml.timing.against_anchor`; ``items`` = the batch size (windows). ``path``: an
    exported model of ``model``. Both run with ``threads`` threads. The process CPU time of
    every timed call is recorded beside the wall time."""
    sess = session(path, threads)
    feeds = {n: t.numpy() for n, t in zip(input_names, example, strict=True)}
    model.eval()
    cpu = {"ours": [], "anchor": []}

    def timed(key, fn):
        def call():
            c0 = time.process_time()
            fn()
            cpu[key].append(time.process_time() - c0)
        return call

    def torch_fn():
        with torch.no_grad():
            model(*example)

    with timing.threads(threads):
        r = timing.against_anchor(timed("ours", lambda: sess.run(None, feeds)),
                                  timed("anchor", torch_fn), items=int(example[0].shape[0]),
                                  repeats=repeats, warmup=warmup)
    # the last ``repeats`` calls of each are the timed ones (warm-up calls come first)
    return Benchmark(r, np.array(cpu["ours"][-repeats:]), np.array(cpu["anchor"][-repeats:]))


def breakdown(full: timing.Timing, encoder: timing.Timing, steps: int) -> dict[str, float]:
    """Where the full prediction's time goes, in ms per call (median over repeats): ``total``,
    ``encoder`` (the encoder and command head alone, timed as their own graph), and
    ``decoder_per_step`` = (total - encoder) / ``steps`` (the memory's key/value projection,
    the decoder layers, the vocabulary projection and the grammar of one greedy step).
    Both timings must be over the same number of windows."""
    if full.items != encoder.items:
        raise ValueError(f"breakdown: {full.items} windows in the full timing, "
                         f"{encoder.items} in the encoder's")
    if steps < 1:
        raise ValueError(f"breakdown: steps must be >= 1, got {steps}")
    total, enc = 1e3 * full.median_s, 1e3 * encoder.median_s
    return {"total": total, "encoder": enc, "decoder_per_step": (total - enc) / steps,
            "steps": float(steps)}
