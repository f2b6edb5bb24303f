"""ONNX export (torch.export-based, dynamo=True): onnxruntime gives torch's outputs."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from physml.cnc import classifier, onnx_export
from physml.cnc import encoder_decoder as ed

pytestmark = pytest.mark.slow


def _seeded(build):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return build()


def test_cnn_onnxruntime_equals_torch(tmp_path):
    m = _seeded(lambda: classifier.CommandCNN(11, channels=8))
    path = onnx_export.export(m, (torch.randn(3, 6, 11),), tmp_path / "cnn.onnx", ["x"],
                              ["logits"], dynamo=True)
    sess = onnx_export.session(path)
    x = _seeded(lambda: torch.randn(17, 6, 11))  # another batch size: the axis is dynamic
    assert onnx_export.max_abs_difference(m, sess, (x,), ["x"]) < 1e-4


def test_encoder_decoder_onnxruntime_equals_torch(tmp_path):
    cfg = ed.EDConfig(hidden=8, d_model=8, heads=2, layers=1)
    m = _seeded(lambda: ed.EncoderDecoder(11, 30, cfg))
    ex = (torch.randn(3, 6, 11), torch.randint(0, 30, (3, cfg.max_len - 1)))
    path = onnx_export.export(m, ex, tmp_path / "ed.onnx", ["x", "tgt"],
                              ["class_logits", "token_logits"], dynamo=True)
    sess = onnx_export.session(path)
    x = _seeded(lambda: (torch.randn(9, 6, 11), torch.randint(0, 30, (9, cfg.max_len - 1))))
    assert onnx_export.max_abs_difference(m, sess, x, ["x", "tgt"]) < 1e-4


def test_benchmark_reports_a_speedup_with_ci(tmp_path):
    m = _seeded(lambda: classifier.CommandCNN(5, channels=4))
    x = torch.randn(8, 4, 5)
    path = onnx_export.export(m, (x,), tmp_path / "c.onnx", ["x"], ["logits"], dynamo=False)
    r = onnx_export.benchmark(m, (x,), path, ["x"], repeats=3, warmup=1)
    assert r.ours.items == 8 and r.anchor.items == 8
    assert np.isfinite(r.speedup.diff.mean) and r.speedup.diff.low <= r.speedup.diff.high


def test_full_prediction_onnxruntime_equals_torch(tmp_path):
    # the greedy loop unrolled into one graph (cached keys/values, split vocabulary):
    # onnxruntime must give torch's token ids and classes on every window
    from physml.cnc import synthetic, tokens

    vocab = tokens.Vocabulary.build([s for _, s in synthetic.PROGRAM])
    cfg = ed.EDConfig(hidden=8, d_model=8, heads=2, layers=2, dropout=0.0)

    def build():
        m = ed.EncoderDecoder(5, len(vocab), cfg)
        with torch.no_grad():
            for p in m.parameters():
                p.mul_(3.0)
        return m

    m = _seeded(build)
    pred = ed.GreedyPredictor(m, ed.vocab_type_codes(vocab), 6).eval()
    path = onnx_export.export(pred, (torch.randn(4, 3, 5),), tmp_path / "p.onnx", ["x"],
                              ["token_ids", "classes"], dynamo=True, optimize=False)
    x = _seeded(lambda: torch.randn(50, 3, 5) * 2)  # another batch size
    sess = onnx_export.session(path)
    assert onnx_export.prediction_agreement(pred, sess, x) == 1.0
    ids = onnx_export.run(sess, x=x.numpy())[0]
    assert ids.shape == (50, 6) and len({tuple(r) for r in ids}) > 3
    # and the disagreement is counted: a different model's predictor disagrees somewhere
    other = ed.GreedyPredictor(_seeded(lambda: ed.EncoderDecoder(5, len(vocab), cfg)),
                               ed.vocab_type_codes(vocab), 6).eval()
    assert onnx_export.prediction_agreement(other, sess, x) < 1.0


def test_benchmark_records_cpu_time_per_timed_call(tmp_path):
    m = _seeded(lambda: classifier.CommandCNN(5, channels=4))
    x = torch.randn(8, 4, 5)
    path = onnx_export.export(m, (x,), tmp_path / "c.onnx", ["x"], ["logits"], dynamo=False)
    c0 = time.process_time()
    r = onnx_export.benchmark(m, (x,), path, ["x"], repeats=4, warmup=2)
    spent = time.process_time() - c0
    assert r.cpu_ours.shape == (4,) and r.cpu_anchor.shape == (4,)
    assert (r.cpu_ours > 0).all() and (r.cpu_anchor > 0).all()
    assert r.cpu_ours.sum() + r.cpu_anchor.sum() <= spent  # each call's own time, no more
    cps = r.cpu_per_second
    assert cps["onnxruntime"].mean == pytest.approx(np.mean(8 / r.cpu_ours))
    assert cps["torch"].mean == pytest.approx(np.mean(8 / r.cpu_anchor))
