"""The staged ONNX prediction (prefill graph + one-step graph in a host loop that drops
finished rows) gives torch's greedy token ids and classes, and its bookkeeping is right."""

from __future__ import annotations

import time

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from cnc.test_encoder_decoder import (
    _greedy_by_full_recompute,  # independent reference
    random_model,
)
from physml.cnc import encoder_decoder as ed
from physml.cnc import onnx_export, synthetic, tokens

pytestmark = pytest.mark.slow

CFG = ed.EDConfig(hidden=8, d_model=8, heads=2, layers=2, dropout=0.0)
STEPS = 6


def _model(vocab, seed=0, eos_bias=None):
    return random_model(vocab, CFG, seed, eos_bias)


def _x(n, seed=1):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return torch.randn(n, 3, 5) * 2


def _lengths(ids):
    """Tokens before <eos> per row (the row's steps when it never emits <eos>)."""
    ended = ids == tokens.EOS
    return np.where(ended.any(1), ended.argmax(1), ids.shape[1])


@pytest.fixture(scope="module")
def synthetic_case(tmp_path_factory):
    vocab = tokens.Vocabulary.build([s for _, s in synthetic.PROGRAM])
    # <eos> raised a little: lines of many different lengths, some cut by the last step
    model = _model(vocab, eos_bias=2.0)
    pred = ed.GreedyPredictor(model, ed.vocab_type_codes(vocab), STEPS).eval()
    paths = onnx_export.export_staged(pred, _x(4, seed=9), tmp_path_factory.mktemp("staged"),
                                      dynamo=False)
    return vocab, model, pred, paths


@pytest.mark.parametrize("compact", [0.0, 0.5, 1.0])
def test_staged_prediction_equals_torch_and_the_full_recomputation(synthetic_case, compact):
    vocab, model, pred, paths = synthetic_case
    sess = onnx_export.StagedSession(*paths, STEPS, compact=compact)
    x = _x(200)
    ids, cls = sess.predict(x.numpy())
    ref, ref_cls = _greedy_by_full_recompute(model, x, ed.vocab_type_codes(vocab), STEPS)
    np.testing.assert_array_equal(ids, ref[:, :STEPS])
    np.testing.assert_array_equal(cls, ref_cls)
    with torch.no_grad():
        t_ids, t_cls = pred(x)
    np.testing.assert_array_equal(ids, t_ids.numpy())
    np.testing.assert_array_equal(cls, t_cls.numpy())
    # the case is a real one: rows of at least three lengths, some cut by the last step
    # (where only <eos> or the pending value is allowed), and value tokens decoded
    lengths = _lengths(ids)
    assert len(set(lengths.tolist())) >= 3 and (lengths == STEPS).any()
    assert (ed.vocab_type_codes(vocab)[ids[ids != tokens.PAD]] == 3).any()
    assert onnx_export.prediction_agreement(pred, sess, x) == 1.0


def test_finished_rows_are_dropped_and_the_loop_stops(synthetic_case):
    vocab, model, pred, paths = synthetic_case
    x = _x(200)
    ids, _ = pred(x)
    ids = ids.numpy()
    lengths = _lengths(ids)
    sess = onnx_export.StagedSession(*paths, STEPS, compact=1.0)  # drop at every chance
    trace = []
    sess.predict(x.numpy(), trace)
    # step t (token t) runs on the rows whose line had not ended before token t
    want = [("prefill", len(x))] + [(f"step {t}", int((lengths >= t - 1).sum()))
                                    for t in range(2, STEPS + 1) if (lengths >= t - 1).any()]
    assert [(c.stage, c.rows) for c in trace] == want
    assert all(c.wall_s > 0 and c.cpu_s >= 0 for c in trace)
    # with compact=0 the rows are never dropped, but the loop still stops at the last line
    trace0 = []
    sess.compact = 0.0
    sess.predict(x.numpy(), trace0)
    assert [c.stage for c in trace0] == [s for s, _ in want]
    assert all(c.rows == len(x) for c in trace0)


def test_the_loop_stops_when_every_line_has_ended(tmp_path):
    vocab = tokens.Vocabulary.build([s for _, s in synthetic.PROGRAM])
    model = _model(vocab, eos_bias=1e3)  # <eos> as soon as the grammar allows it
    pred = ed.GreedyPredictor(model, ed.vocab_type_codes(vocab), STEPS).eval()
    sess = onnx_export.StagedSession(*onnx_export.export_staged(pred, _x(4), tmp_path,
                                                                dynamo=False), STEPS)
    x = _x(64)
    trace = []
    ids, _ = sess.predict(x.numpy(), trace)
    ref, _ = _greedy_by_full_recompute(model, x, ed.vocab_type_codes(vocab), STEPS)
    np.testing.assert_array_equal(ids, ref[:, :STEPS])
    last = int(_lengths(ids).max())
    assert last < STEPS - 1
    assert [c.stage for c in trace] == ["prefill"] + [f"step {t}" for t in range(2, last + 2)]


def test_staged_prediction_on_shipped_data(tmp_path):
    # real windows of the shipped recordings and the real vocabulary (all shipped lines),
    # the torch.export-based exporter (the notebook's default); the weights are random
    # (no trained model ships with the repository), scaled so the lines differ
    from physml.cnc import data as cncdata
    from physml.cnc import sequences as S

    d = cncdata.load(None)
    ds = S.prepare(d, S.default_columns(["frame_l2", "motor"]), 4, "standardise")
    scaler = S.Scaler.fit(ds.inputs.values, ds.inputs.columns)
    vocab = tokens.Vocabulary.build(ds.targets.line)
    cfg = ed.EDConfig(hidden=16, d_model=16, heads=2, layers=2, dropout=0.0)
    with torch.random.fork_rng():
        torch.manual_seed(4)
        model = ed.EncoderDecoder(ds.inputs.n_features, len(vocab), cfg)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(2.0)
            model.out.bias[tokens.EOS] = 3.0
    model.eval()
    steps = ed.decode_steps(ds.targets.line)
    pred = ed.GreedyPredictor(model, ed.vocab_type_codes(vocab), steps).eval()
    rows = np.linspace(0, len(d.rows) - 1, 600).astype(int)  # every recording
    x = ds.inputs.windows(scaler, rows)
    sess = onnx_export.StagedSession(*onnx_export.export_staged(pred, x[:8], tmp_path), steps)
    ids, cls = sess.predict(x.numpy())
    with torch.no_grad():
        t_ids, t_cls = pred(x)
    np.testing.assert_array_equal(ids, t_ids.numpy())
    np.testing.assert_array_equal(cls, t_cls.numpy())
    assert len(set(_lengths(ids).tolist())) >= 3  # rows of different lengths
    assert len(set(ed.ids_to_lines(vocab, ids))) > 10


def test_staged_breakdown_adds_up(synthetic_case):
    _, _, _, paths = synthetic_case
    sess = onnx_export.StagedSession(*paths, STEPS)
    x = _x(50).numpy()
    trace = []
    sess.predict(x, trace)
    t0 = time.perf_counter()
    b = onnx_export.staged_breakdown(sess, x, repeats=1, warmup=0)
    elapsed_ms = 1e3 * (time.perf_counter() - t0)
    assert b.loc[b["stage"] == "total", "wall_ms"].item() <= elapsed_ms  # within the call
    assert list(b["stage"]) == [c.stage for c in trace] + ["host loop", "total"]
    calls = b["stage"].isin([c.stage for c in trace])
    for clock in ("wall_ms", "cpu_ms"):  # one repeat: the parts add up to the total exactly
        total = b.loc[b["stage"] == "total", clock].item()
        host = b.loc[b["stage"] == "host loop", clock].item()
        assert b.loc[calls, clock].sum() + host == pytest.approx(total)
    assert b.loc[b["stage"] == "host loop", "wall_ms"].item() > 0
    assert (b.loc[calls, "wall_ms"] > 0).all()


def test_benchmark_accepts_a_staged_session(synthetic_case):
    _, _, pred, paths = synthetic_case
    sess = onnx_export.StagedSession(*paths, STEPS)
    x = _x(32)
    r = onnx_export.benchmark(pred, (x,), sess, ["x"], repeats=2, warmup=1)
    assert r.ours.items == 32 and r.cpu_ours.shape == (2,)


def test_staged_inputs_are_checked(synthetic_case, tmp_path):
    _, _, pred, paths = synthetic_case
    with pytest.raises(ValueError, match="steps"):
        onnx_export.StagedSession(*paths, 1)
    with pytest.raises(ValueError, match="compact"):
        onnx_export.StagedSession(*paths, STEPS, compact=1.5)
    with pytest.raises(ValueError, match="run"):
        onnx_export.StagedSession(*paths, STEPS).run(["token_ids"], {"x": _x(2).numpy()})
    with pytest.raises(ValueError, match="b >= 2"):
        onnx_export.export_staged(pred, _x(1), tmp_path, dynamo=False)
    with pytest.raises(ValueError, match="not among the inputs"):
        onnx_export.export(pred, (_x(2),), tmp_path / "p.onnx", ["x"], ["ids", "cls"],
                           dynamo=False, axes={"y": {1: "n"}})
    with pytest.raises(ValueError, match="has inputs"):  # the prefill graph is no step graph
        onnx_export.StagedSession(paths[0], paths[0], STEPS)
    # a graph with a memory and a cache tensor but not the step's first three inputs
    names = ["tok", "state", "t", "m0", "c0"]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["tok"], ["out"])], "not_a_step",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in names],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), tmp_path / "renamed.onnx")
    with pytest.raises(ValueError, match=r"has inputs \['tok', 'state', 't', 'm0', 'c0'\]"):
        onnx_export.StagedSession(paths[0], tmp_path / "renamed.onnx", STEPS)
    sess = onnx_export.StagedSession(*paths, STEPS)
    for bad in ({"repeats": 0}, {"warmup": -1}):  # each alone
        with pytest.raises(ValueError, match="repeats must be >= 1 and warmup >= 0"):
            onnx_export.staged_breakdown(sess, _x(2).numpy(), **bad)
    one = ed.GreedyPredictor(pred.model, pred.codes.numpy(), 1).eval()
    with pytest.raises(ValueError, match="decodes 1 step; the staged export needs >= 2"):
        onnx_export.export_staged(one, _x(2), tmp_path, dynamo=False)


def test_the_smallest_staged_export_is_accepted(synthetic_case, tmp_path):
    # two decoder steps, an example batch of two rows and a one-layer decoder (its memory's
    # and its cache's keys and values: four tensors): the least export_staged and
    # StagedSession take
    vocab, _, pred, _ = synthetic_case
    model = random_model(vocab, ed.EDConfig(hidden=8, d_model=8, heads=2, layers=1,
                                            dropout=0.0), seed=4)
    two = ed.GreedyPredictor(model, pred.codes.numpy(), 2).eval()
    paths = onnx_export.export_staged(two, _x(2), tmp_path, dynamo=False)
    ids, cls = onnx_export.StagedSession(*paths, 2).predict(_x(5).numpy())
    ref, ref_cls = two(_x(5))
    np.testing.assert_array_equal(ids, ref.numpy())
    np.testing.assert_array_equal(cls, ref_cls.numpy())
