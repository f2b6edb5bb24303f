"""ONNX export of the CNC models and onnxruntime inference, for the throughput benchmark.

:func:`export` writes a model to an ``.onnx`` file with ``torch.onnx.export`` (``dynamo=True``,
the torch.export-based exporter, by default; ``dynamo=False`` selects the TorchScript-based
one; the caller chooses, nothing falls back silently) with a dynamic batch axis.
:func:`session` opens it in onnxruntime on the CPU with a fixed thread count, and
:func:`run` feeds numpy arrays. Graphs:

- ``CommandCNN``: input ``x`` ``(batch, window, f)`` → ``logits`` ``(batch, 4)``;
- ``EncoderDecoder`` (one teacher-forced pass): inputs ``x`` and ``tgt`` ``(batch, T)`` int64
  → ``class_logits`` ``(batch, 4)`` and ``token_logits`` ``(batch, T, vocab)``;
- :class:`~physml.cnc.encoder_decoder.GreedyPredictor` (the full prediction) as ONE graph:
  ``x`` → ``token_ids`` ``(batch, steps)`` int64 and ``classes`` ``(batch,)`` int64, the
  greedy loop unrolled (every step runs on every row, also after its line has ended);
- the same prediction STAGED (:func:`export_staged`, :class:`StagedSession`): a prefill
  graph (encoder, command head, the memory's keys and values, the first step) and a
  one-step graph with the key/value cache as inputs and outputs, driven by a host-side loop
  that drops the rows whose line has ended and stops when every line has;
- :class:`~physml.cnc.encoder_decoder.EncoderStage` (the encoder alone, for the time
  breakdown): ``x`` → ``memory`` ``(batch, window, d_model)`` and ``classes``.

:func:`benchmark` times onnxruntime against torch on the same batch and also records the
process CPU time of each call (all threads), because wall time on a shared machine depends
on the other load. :func:`staged_breakdown` splits a staged prediction's time into its
graph calls and the host loop.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from physml import stats, timing


def export(model: torch.nn.Module, example: Sequence[torch.Tensor], path: str | Path,
           input_names: Sequence[str], output_names: Sequence[str], *, dynamo: bool = True,
           opset: int = 18, optimize: bool = True,
           axes: Mapping[str, Mapping[int, str]] | None = None,
           static: Sequence[str] = ()) -> Path:
    """Export ``model`` (eval mode) called on ``example`` to ``path``; axis 0 of every input
    and output is a dynamic batch axis, except the inputs named in ``static`` (fixed shape,
    e.g. a step index). ``axes``: further dynamic axes by input or output name, ``{name:
    {axis: dim name}}`` (one name, one size; at least 1; the dynamo exporter derives the
    outputs' axes itself and reads only the inputs' entries). Returns the path.
    ``optimize=False`` skips the dynamo exporter's own graph optimiser (most of its time on
    a large unrolled graph; :func:`session` optimises the graph at load anyway)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    axes = dict(axes or {})
    unknown = set(axes) - set(input_names) - set(output_names)
    unknown |= set(static) - set(input_names)
    if unknown:
        raise ValueError(f"export: {sorted(unknown)} in axes/static are not among the inputs "
                         f"{list(input_names)} or outputs {list(output_names)}")
    spec = {n: ({} if n in static else {0: "batch"}) | dict(axes.get(n, {}))
            for n in [*input_names, *output_names]}
    if dynamo:
        dims = {name: torch.export.Dim(name, min=1, max=1 << 20)
                for n in input_names for name in spec[n].values()}
        # positional (the module's argument names need not be the graph's input names);
        # the tensors a ``*args`` parameter takes form one group
        shapes = tuple({a: dims[name] for a, name in spec[n].items()} or None
                       for n in input_names)
        params = list(inspect.signature(model.forward).parameters.values())
        if any(q.kind is q.VAR_POSITIONAL for q in params):
            k = [q.kind for q in params].index(inspect.Parameter.VAR_POSITIONAL)
            shapes = (*shapes[:k], shapes[k:])
        kw = {"dynamic_shapes": shapes}
    else:
        kw = {"dynamic_axes": {n: a for n, a in spec.items() if a}}
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


def benchmark(model: torch.nn.Module, example: Sequence[torch.Tensor], path,
              input_names: Sequence[str], *, threads: int = 1, repeats: int = 7,
              warmup: int = 2) -> Benchmark:
    """onnxruntime against torch (the anchor) on the same batch, interleaved, with
    :func:`physml.timing.against_anchor`; ``items`` = the batch size (windows). ``path``: an
    exported model of ``model`` (opened with :func:`session`), or an open session with
    ``run(None, feeds)`` (e.g. a :class:`StagedSession`; its threads were set when it was
    opened). Both run with ``threads`` threads. The process CPU time of every timed call is
    recorded beside the wall time."""
    sess = session(path, threads) if isinstance(path, (str, Path)) else path
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


# ------------------------------------------------------------------ staged prediction

def staged_names(layers: int) -> dict[str, tuple[str, ...]]:
    """Input and output names of the two staged graphs of a decoder with ``layers`` layers
    (:func:`export_staged`): ``memory_k0, memory_v0, ...`` the cross-attention keys and
    values, ``cache_k0, cache_v0, ...`` the self-attention cache."""
    mem = tuple(f"memory_{kv}{i}" for i in range(layers) for kv in "kv")
    cache = tuple(f"cache_{kv}{i}" for i in range(layers) for kv in "kv")
    return {"prefill_inputs": ("x",),
            "prefill_outputs": ("classes", "token", "state", *mem, *cache),
            "step_inputs": ("token", "state", "t", *mem, *cache),
            "step_outputs": ("next_token", "next_state", *(f"next_{c}" for c in cache))}


def export_staged(predictor, x: torch.Tensor, directory: str | Path, *, dynamo: bool = True,
                  stem: str = "prediction") -> tuple[Path, Path]:
    """Export a :class:`~physml.cnc.encoder_decoder.GreedyPredictor` as two graphs for
    :class:`StagedSession`: ``<stem>_prefill.onnx``
    (:class:`~physml.cnc.encoder_decoder.PrefillStage`: ``x`` → classes, the first token,
    its grammar state, the memory's keys and values and the self-attention cache) and
    ``<stem>_step.onnx`` (:class:`~physml.cnc.encoder_decoder.DecoderStep`: one greedy step,
    the cache's length a dynamic axis); names: :func:`staged_names`. ``x`` ``(b, window,
    f)``: an example batch, ``b >= 2``. Returns the two paths."""
    from .encoder_decoder import DecoderStep, PrefillStage

    if x.ndim != 3 or x.shape[0] < 2:
        raise ValueError(f"export_staged: x must be (b >= 2, window, f), got {tuple(x.shape)}")
    if predictor.steps < 2:
        raise ValueError(f"export_staged: the predictor decodes {predictor.steps} step; the "
                         "staged export needs >= 2 (one step is the prefill graph alone)")
    names = staged_names(len(predictor.model.decoder.layers))
    directory = Path(directory)
    prefill, step = PrefillStage(predictor).eval(), DecoderStep(predictor).eval()
    pre_path = export(prefill, (x,), directory / f"{stem}_prefill.onnx",
                      names["prefill_inputs"], names["prefill_outputs"], dynamo=dynamo)
    n = step.n
    with torch.no_grad():  # an example step with a cache of length 2 (a length-1 example
        _, tok, state, *kv = prefill(x)  # would be specialised to 1 by torch.export)
        tok, state, *cache = step(tok, state, torch.tensor([1]), *kv)
    ex = (tok, state, torch.tensor([2]), *kv[:n], *cache)
    axes = {c: {1: "past"} for c in names["step_inputs"][3 + n:]}
    axes |= {c: {1: "past_next"} for c in names["step_outputs"][2:]}
    step_path = export(step, ex, directory / f"{stem}_step.onnx", names["step_inputs"],
                       names["step_outputs"], dynamo=dynamo, static=("t",), axes=axes)
    return pre_path, step_path


@dataclass(frozen=True)
class Call:
    """One graph call of a traced :meth:`StagedSession.predict`: ``stage`` (``"prefill"``,
    which emits token 1, or ``"step t"``, which emits token t = 2 .. steps), the ``rows`` it
    ran on, its wall and process-CPU seconds."""

    stage: str
    rows: int
    wall_s: float
    cpu_s: float


class StagedSession:
    """The full greedy prediction in onnxruntime as a host-side loop over two graphs
    (:func:`export_staged`): the prefill graph once, then the step graph once per further
    step, each time on the rows whose line has not ended (finished rows are dropped between
    steps: their caches, memories and states are gathered out in numpy), stopping when every
    line has ended or after ``steps``. Token ids ``(b, steps)`` int64 (``<pad>`` after
    ``<eos>``) and classes ``(b,)`` int64, the outputs of
    :class:`~physml.cnc.encoder_decoder.GreedyPredictor`.

    ``run(None, {"x": x})`` mirrors ``InferenceSession.run`` (so :func:`run`,
    :func:`prediction_agreement` and :func:`benchmark` accept it); :meth:`predict` can also
    trace every graph call (:class:`Call`)."""

    def __init__(self, prefill_path: str | Path, step_path: str | Path, steps: int,
                 threads: int = 1, compact: float = 0.5):
        if steps < 2:
            raise ValueError(f"StagedSession: steps must be >= 2, got {steps}")
        if not 0.0 <= compact <= 1.0:
            raise ValueError(f"StagedSession: compact must be in [0, 1], got {compact}")
        self.compact = float(compact)
        self.prefill, self.step = session(prefill_path, threads), session(step_path, threads)
        self.steps = int(steps)
        self._t = [np.array([t], dtype=np.int64) for t in range(self.steps)]
        self._inputs = [i.name for i in self.step.get_inputs()]
        n_kv = len(self._inputs) - 3
        if self._inputs[:3] != ["token", "state", "t"] or n_kv < 2 or n_kv % 2:
            raise ValueError(f"StagedSession: {step_path} has inputs {self._inputs}, expected "
                             "token, state, t, then memory and cache tensors (export_staged)")
        self._n = n_kv // 2  # memory tensors (= cache tensors)

    def run(self, output_names, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        if output_names is not None or set(feeds) != {"x"}:
            raise ValueError("StagedSession.run: call as run(None, {'x': windows})")
        return list(self.predict(feeds["x"]))

    def predict(self, x: np.ndarray, trace: list | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """Token ids ``(b, steps)`` and classes ``(b,)`` of windows ``x`` ``(b, window, f)``
        float32. ``trace``: a list that receives one :class:`Call` per graph call."""
        from .tokens import EOS, PAD

        timed = trace is not None
        c = _clock() if timed else None
        cls, tok, state, *kv = self.prefill.run(None, {"x": x})
        if timed:
            trace.append(Call("prefill", len(x), *_since(c)))
        n, names = self._n, self._inputs
        ids = np.full((len(x), self.steps), PAD, dtype=np.int64)
        ids[:, 0] = tok
        rows = np.arange(len(x))  # the windows of the rows in the current batch
        done = np.zeros(len(x), dtype=bool)  # rows of the batch whose line has ended
        for t in range(1, self.steps):
            done |= tok == EOS
            live = ~done
            n_live = int(live.sum())
            if n_live == 0:
                break
            if n_live <= self.compact * len(rows):
                # drop the finished rows (a copy of the live rows' memories and caches)
                rows, tok, state = rows[live], tok[live], state[live]
                kv = [a[live] for a in kv]
                done, live = done[live], live[live]
            feeds = dict(zip(names, [tok, state, self._t[t], *kv], strict=True))
            c = _clock() if timed else None
            tok, state, *cache = self.step.run(None, feeds)
            if timed:
                trace.append(Call(f"step {t + 1}", len(rows), *_since(c)))
            kv[n:] = cache
            # a finished row left in the batch decodes on, but its tokens are not kept
            ids[rows[live], t] = tok[live]
        return ids, cls


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    w, c = _clock()
    return w - start[0], c - start[1]


def staged_breakdown(sess: StagedSession, x: np.ndarray, *, repeats: int = 7,
                     warmup: int = 2) -> pd.DataFrame:
    """Where a :class:`StagedSession`'s time goes on the batch ``x`` ``(b, window, f)``: one
    row per graph call (``stage``: ``prefill``, ``step 1``, ...; ``rows`` it ran on) plus
    ``host loop`` (the loop's own work between the calls: finished rows dropped, feeds and
    token ids assembled; the whole call minus its graph calls) and ``total``, with the
    median over ``repeats`` traced calls of the wall and the process-CPU milliseconds
    (``wall_ms``, ``cpu_ms``). The same batch takes the same steps every call."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"staged_breakdown: repeats must be >= 1 and warmup >= 0, got "
                         f"{repeats}, {warmup}")
    for _ in range(warmup):
        sess.predict(x)
    runs = []
    for _ in range(repeats):
        trace: list[Call] = []
        start = _clock()
        sess.predict(x, trace)
        wall, cpu = _since(start)
        runs.append((trace, wall, cpu))
    stages = [(c.stage, c.rows) for c in runs[0][0]]
    if any([(c.stage, c.rows) for c in tr] != stages for tr, _, _ in runs):
        raise RuntimeError("staged_breakdown: the calls differ between repeats on one batch")
    wall = np.array([[c.wall_s for c in tr] + [w - sum(c.wall_s for c in tr), w]
                     for tr, w, _ in runs])
    cpu = np.array([[c.cpu_s for c in tr] + [u - sum(c.cpu_s for c in tr), u]
                    for tr, _, u in runs])
    return pd.DataFrame({"stage": [s for s, _ in stages] + ["host loop", "total"],
                         "rows": [r for _, r in stages] + [len(x), len(x)],
                         "wall_ms": 1e3 * np.median(wall, 0), "cpu_ms": 1e3 * np.median(cpu, 0)})
