"""The encoder–decoder: input gate, missing-node mask, scaler on training files, decoding
rules, the NaN guard, learning a known relation, and the saved-model interface."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch

from physml import splits
from physml.cnc import encoder_decoder as ed
from physml.cnc import features, schema, sequences, synthetic, tokens
from physml.train import NonFiniteLossError, TrainConfig

#: one xdist worker runs this module, so the module-scoped trained model is trained once
pytestmark = pytest.mark.xdist_group("cnc_encoder_decoder_tests")

#: the signal node and a 4-channel noise source (more noise channels need more files)
TRAINED_SOURCES = ("frame_l2", "motor")
SMALL = ed.EDConfig(hidden=16, d_model=16, heads=2, layers=1, dropout=0.0)


def _ds(data, sources=features.COMMON_SOURCES, window=4, per_file="none"):
    return sequences.prepare(data, features.model_input_columns(sources), window, per_file)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small model trained on 6 synthetic files, scored on 2 held-out files."""
    data = synthetic.recordings(n_files=8, seed=1)
    ds = _ds(data, sources=TRAINED_SOURCES, window=2)
    sp = splits.group_kfold(ds.files, 4, seed=0, what="file")[0]
    res = ed.run_fold(ds, sp.train, sp.test, ed.EDConfig(hidden=32, d_model=32, heads=2,
                                                         layers=1, dropout=0.0),
                      TrainConfig(epochs=40, batch_size=32, lr=3e-3, patience=None),
                      tmp_path_factory.mktemp("ed"), n_inner=3)
    return data, ds, sp, res


# ----------------------------------------------------------------- inputs


@pytest.mark.parametrize("col", ["line", "posx", "momo", "feed", "gcode_string", "stat"])
def test_build_inputs_refuses_controller_fields(col):
    data = synthetic.recordings(2)
    with pytest.raises(ValueError, match=col):
        sequences.build_inputs(data, ["frame_l2.Ax", col], 2)


def test_missing_source_is_masked_not_zero_reading():
    data = synthetic.recordings(3, extra_sources=["spindle2"], absent={"face_002": ["spindle2"]})
    cols = features.model_input_columns(features.COMMON_SOURCES + ("spindle2",))
    inp = sequences.build_inputs(data, cols, 3, per_file="none")
    f2 = inp.files == "face_002"
    j = inp.sources.index("spindle2")
    assert (inp.present[f2, j] == 0).all() and (inp.present[~f2, j] == 1).all()
    sp_cols = [k for k, c in enumerate(cols) if c.startswith("spindle2.")]
    assert np.isnan(inp.values[np.ix_(f2, sp_cols)]).all()
    scaler = sequences.Scaler.fit(inp.values, cols)
    table = inp.table(scaler).numpy()
    # absent: value 0 AND flag 0; present rows of the same source are real readings
    assert (table[np.ix_(f2, sp_cols)] == 0).all()
    assert table[f2, len(cols) + j].max() == 0
    assert np.abs(table[np.ix_(~f2, sp_cols)]).sum() > 0


def test_scaler_matches_numpy_on_training_rows_only():
    data = synthetic.recordings(4)
    ds = _ds(data)
    train = np.flatnonzero(ds.files != "face_004")
    sc = sequences.Scaler.fit(ds.inputs.values[train], ds.inputs.columns)
    np.testing.assert_allclose(sc.mean, ds.inputs.values[train].mean(axis=0))
    np.testing.assert_allclose(sc.std, ds.inputs.values[train].std(axis=0))
    everything = sequences.Scaler.fit(ds.inputs.values, ds.inputs.columns)
    assert not np.allclose(sc.mean, everything.mean)


def test_scaler_refuses_a_source_absent_from_every_training_file():
    data = synthetic.recordings(2, extra_sources=["spindle2"],
                                absent={"face_001": ["spindle2"], "face_002": ["spindle2"]})
    inp = sequences.build_inputs(data, features.model_input_columns(("spindle2",)), 2)
    with pytest.raises(ValueError, match="spindle2"):
        sequences.Scaler.fit(inp.values, inp.columns)


def test_window_index_stays_in_its_file():
    idx = sequences.window_index(np.array(["a"] * 3 + ["b"] * 3), 3)
    assert idx.tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 2], [3, 3, 3], [3, 3, 4], [3, 4, 5]]


# ----------------------------------------------------------------- decoding and metrics


def test_each_window_is_encoded_and_decoded_on_its_own():
    # (b, window, f) is batch-first everywhere: a row's memory and logits are those it gets
    # alone (read as (window, b, f), the LSTM would run across the batch's rows)
    with torch.random.fork_rng():
        torch.manual_seed(4)
        model = ed.EncoderDecoder(5, 11, SMALL).eval()
        x = torch.randn(6, 4, 5)
        tgt = torch.randint(0, 11, (6, 3))
    with torch.no_grad():
        cls, logits = model(x, tgt)
        for i in range(6):
            c1, l1 = model(x[i : i + 1], tgt[i : i + 1])
            torch.testing.assert_close(c1[0], cls[i], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(l1[0], logits[i], rtol=1e-5, atol=1e-6)
        # and the window is a sequence: reversing its rows changes the memory
        assert not torch.allclose(model.encode(x.flip(1)).flip(1), model.encode(x), atol=1e-4)
        # the command class reads the window's last row (its target row) and the window's
        # mean: moving the earlier rows with the mean kept changes nothing, moving the last
        # row (mean kept) changes the logits
        mem = model.encode(x)
        d = torch.randn(6, mem.shape[2])
        earlier, last = mem.clone(), mem.clone()
        earlier[:, 0] += d
        earlier[:, 1] -= d
        last[:, 3] += d
        last[:, 2] -= d
        torch.testing.assert_close(model.classify(earlier), model.classify(mem))
        assert not torch.allclose(model.classify(last), model.classify(mem), atol=1e-4)


def test_greedy_decoding_always_gives_a_valid_line():
    vocab = tokens.Vocabulary.build([s for _, s in synthetic.PROGRAM])
    with torch.random.fork_rng():
        torch.manual_seed(3)
        model = ed.EncoderDecoder(7, len(vocab), SMALL)
        x = torch.randn(64, 4, 7) * 3
    ids, cls = ed.greedy_decode(model, x, ed.vocab_type_codes(vocab))
    assert ids.shape == (64, SMALL.max_len - 1) and cls.shape == (64,)
    for line in ed.ids_to_lines(vocab, ids):  # detokenize raises on a broken grammar
        assert line and tokens.detokenize(tokens.tokenize(line)) == line


def test_greedy_predictor_refuses_a_vocabulary_steps_or_decoder_layout_it_cannot_decode():
    vocab = tokens.Vocabulary.build([s for _, s in synthetic.PROGRAM])
    model = ed.EncoderDecoder(7, len(vocab), SMALL)
    codes = ed.vocab_type_codes(vocab)
    ed.GreedyPredictor(model, codes)
    no_values = np.where(codes == 3, 2, codes)  # every value token relabelled an address
    no_words = np.where((codes == 1) | (codes == 2), 3, codes)
    for bad in (no_values, no_words):
        with pytest.raises(ValueError, match="needs command or address tokens and value"):
            ed.GreedyPredictor(model, bad)
    with pytest.raises(ValueError, match=r"type_codes has shape \(3,\)"):
        ed.GreedyPredictor(model, codes[:3])
    # steps: 1 .. max_len - 1
    assert ed.GreedyPredictor(model, codes, steps=1).steps == 1
    assert ed.GreedyPredictor(model, codes, steps=SMALL.max_len - 1).steps == SMALL.max_len - 1
    for steps in (0, SMALL.max_len):
        with pytest.raises(ValueError, match=rf"steps must be in \[1, max_len - 1 = "
                                             rf"{SMALL.max_len - 1}\], got {steps}"):
            ed.GreedyPredictor(model, codes, steps=steps)
    # only the decoder layout it implements: post-norm, ReLU (each departure alone)
    for attr, value in (("norm_first", True), ("activation", torch.nn.functional.gelu)):
        other = ed.EncoderDecoder(7, len(vocab), SMALL)
        setattr(other.decoder.layers[0], attr, value)
        with pytest.raises(ValueError, match="decoder layer 0 is not post-norm ReLU"):
            ed.GreedyPredictor(other, codes)


@torch.no_grad()
def _greedy_by_full_recompute(model, x, type_codes, steps):
    """Independent reference of the greedy decoder: at every step the whole prefix goes
    through ``nn.TransformerDecoder`` again (no caches) and the full vocabulary is masked by
    the grammar (written out here, not taken from the module under test)."""
    model.eval()
    memory = model.encode(x)
    codes = torch.from_numpy(type_codes)
    is_cmd, is_axis, is_val = codes == 1, codes == 2, codes == 3
    is_eos = torch.zeros_like(is_cmd)
    is_eos[tokens.EOS] = True
    tgt = torch.full((len(x), 1), tokens.BOS)
    state = torch.zeros(len(x), dtype=torch.long)
    done = torch.zeros(len(x), dtype=torch.bool)
    out = torch.full((len(x), model.cfg.max_len - 1), tokens.PAD)
    for t in range(steps):
        logits = model.decode(memory, tgt)[:, -1]
        after_word = is_eos if t == steps - 1 else is_cmd | is_axis | is_eos
        allowed = torch.stack([is_cmd | is_axis, after_word, is_val])[state]
        nxt = torch.where(allowed, logits, torch.tensor(float("-inf"))).argmax(1)
        nxt = torch.where(done, tokens.PAD, nxt)
        out[:, t] = nxt
        kind = codes[nxt]
        state = torch.where(kind == 2, 2, torch.where(kind == 0, state, 1))
        done |= nxt == tokens.EOS
        tgt = torch.cat([tgt, nxt[:, None]], 1)
    return out.numpy(), model.classify(memory).argmax(1).numpy()


def random_model(vocab, cfg, seed=0, eos_bias=None, n_features=5):
    """An untrained EncoderDecoder (eval mode) whose greedy lines depend on the input: weights
    drawn with ``seed`` and scaled up, decoder layers made to differ (nn.TransformerDecoder
    starts every layer as a copy of one, so a layer reading another layer's keys and values
    would go unnoticed); ``eos_bias`` sets the output bias of <eos>."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = ed.EncoderDecoder(n_features, len(vocab), cfg)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(3.0)
            for p in model.decoder.parameters():
                p.add_(0.3 * torch.randn_like(p))
            if eos_bias is not None:
                model.out.bias[tokens.EOS] = eos_bias
    return model.eval()


@pytest.mark.parametrize("cfg", [SMALL, ed.EDConfig(hidden=8, d_model=24, heads=4, layers=3,
                                                    dropout=0.0)], ids=["1x2", "3x4"])
@pytest.mark.parametrize("steps", [None, 4])
def test_cached_greedy_decoder_equals_full_recomputation(cfg, steps):
    # the cached, split-vocabulary decoder must reproduce the plain one token for token,
    # with rows in different grammar states at the same step (random weights)
    vocab = tokens.Vocabulary.build([s for _, s in synthetic.PROGRAM])
    codes = ed.vocab_type_codes(vocab)
    for seed in range(3):
        model = random_model(vocab, cfg, seed)
        with torch.random.fork_rng():
            torch.manual_seed(seed + 100)
            x = torch.randn(96, 4, 5) * 2
        ids, cls = ed.greedy_decode(model, x, codes, steps)
        ref, ref_cls = _greedy_by_full_recompute(model, x, codes, steps or cfg.max_len - 1)
        np.testing.assert_array_equal(ids, ref)
        np.testing.assert_array_equal(cls, ref_cls)
        assert len({tuple(r) for r in ids}) > 5  # the rows really differ
        # a value token (the split vocabulary's large part) was decoded somewhere
        assert (codes[ids[ids != tokens.PAD]] == 3).any()


def test_eager_decoding_stops_when_every_line_has_ended():
    # <eos> pushed up: every line ends after its first word, long before the last step;
    # the eager early exit must still return every step (<pad>) and the reference's ids
    vocab = tokens.Vocabulary.build([s for _, s in synthetic.PROGRAM])
    codes = ed.vocab_type_codes(vocab)
    with torch.random.fork_rng():
        torch.manual_seed(2)
        model = ed.EncoderDecoder(5, len(vocab), SMALL)
        x = torch.randn(32, 4, 5)
    with torch.no_grad():
        model.out.bias[tokens.EOS] = 100.0
    pred = ed.GreedyPredictor(model, codes).eval()
    calls = []
    step = pred.step

    def counted(*a):
        calls.append(1)
        return step(*a)

    pred.step = counted
    with torch.no_grad():
        ids, _ = pred(x)
    assert len(calls) == 2  # a word, then <eos> everywhere: no third decoder pass
    assert ids.shape == (32, SMALL.max_len - 1)
    assert (ids[:, 2:] == tokens.PAD).all() and (ids[:, 1] == tokens.EOS).all()
    ref, _ = _greedy_by_full_recompute(model, x, codes, SMALL.max_len - 1)
    np.testing.assert_array_equal(ids.numpy(), ref)


def test_greedy_steps_cap_the_line_length():
    vocab = tokens.Vocabulary.build([s for _, s in synthetic.PROGRAM])
    with torch.random.fork_rng():
        torch.manual_seed(1)
        model = ed.EncoderDecoder(5, len(vocab), SMALL)
        x = torch.randn(64, 4, 5)
    ids, _ = ed.greedy_decode(model, x, ed.vocab_type_codes(vocab), steps=3)
    assert ids.shape == (64, SMALL.max_len - 1)
    assert (ids[:, 3:] == tokens.PAD).all()
    with pytest.raises(ValueError, match="steps"):
        ed.greedy_decode(model, x, ed.vocab_type_codes(vocab), steps=SMALL.max_len)


def test_decode_steps_is_the_longest_line_plus_eos():
    # "G1 X1. Y2. F3." is G1 X 1. Y 2. F 3. = 7 tokens, + <eos>
    assert ed.decode_steps(["G0 Z1.", "G1 X1. Y2. F3.", "M30"]) == 8
    with pytest.raises(ValueError, match="no lines"):
        ed.decode_steps([])


def test_encoder_stage_matches_the_model():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = ed.EncoderDecoder(5, 20, SMALL).eval()
        x = torch.randn(7, 4, 5)
    mem, cls = ed.EncoderStage(model)(x)
    with torch.no_grad():
        torch.testing.assert_close(mem, model.encode(x))
        np.testing.assert_array_equal(cls.numpy(), model.classify(mem).argmax(1).numpy())


class _Fixed(torch.nn.Module):
    """Returns fixed token logits: predicts ``pred`` ids at every position."""

    def __init__(self, pred, vocab_size):
        super().__init__()
        self.pred, self.v = pred, vocab_size

    def forward(self, x, tgt):
        logits = torch.nn.functional.one_hot(self.pred, self.v).float()
        return torch.zeros(len(x), 4), logits


def test_teacher_forced_counts_eos_only_when_asked():
    # targets after <bos>: [7, 8, <eos>, <pad>]; predicted [7, 9, <eos>, 5]
    ids = torch.tensor([[tokens.BOS, 7, 8, tokens.EOS, tokens.PAD]])
    pred = torch.tensor([[7, 9, tokens.EOS, 5]])
    m = _Fixed(pred, 12)
    assert ed.teacher_forced_hits(m, torch.zeros(1, 2, 3), ids, include_eos=False) == (1, 2)
    assert ed.teacher_forced_hits(m, torch.zeros(1, 2, 3), ids, include_eos=True) == (2, 3)


def test_config_refuses_a_bad_length_focal_exponent_or_head_split_each_alone():
    ed.EDConfig(max_len=3, gamma=0.0)
    ed.EDConfig(gamma=2.0)  # the focal exponents of the ablation are accepted
    for bad, match in (({"max_len": 2}, "max_len must be >= 3"),
                       ({"gamma": -0.5}, "gamma must be >= 0"),
                       ({"d_model": 30, "heads": 4}, "divisible by heads")):
        with pytest.raises(ValueError, match=match):
            ed.EDConfig(**bad)


def test_training_refuses_empty_training_or_validation_rows_each_alone(tmp_path):
    data = synthetic.recordings(3)
    ds = _ds(data)
    table = ds.inputs.table(sequences.Scaler.fit(ds.inputs.values, ds.inputs.columns))
    vocab = tokens.Vocabulary.build(ds.targets.line)
    ids = sequences.encode_lines(vocab, ds.targets.line, SMALL.max_len)
    rows = np.arange(len(table))
    for fit, val in ((rows[:0], rows[:10]), (rows[10:], rows[:0])):
        with pytest.raises(ValueError, match="empty training or validation rows"):
            ed.fit_encoder_decoder(table, ds.inputs.window_index, ids, ds.targets.command, fit,
                                   val, len(vocab), SMALL, TrainConfig(epochs=1), tmp_path)


def test_vocab_type_codes():
    vocab = tokens.Vocabulary.build(["G1 X2.5"])
    codes = dict(zip(vocab.tokens, ed.vocab_type_codes(vocab).tolist(), strict=True))
    assert codes == {"<pad>": 0, "<bos>": 0, "<eos>": 0, "<unk>": 0, "2.5": 3, "G1": 1, "X": 2}


# ----------------------------------------------------------------- training


def test_nan_in_training_stops_with_the_epoch_named(tmp_path):
    data = synthetic.recordings(3)
    ds = _ds(data)
    scaler = sequences.Scaler.fit(ds.inputs.values, ds.inputs.columns)
    table = ds.inputs.table(scaler)
    table[5, 0] = float("nan")
    vocab = tokens.Vocabulary.build(ds.targets.line)
    ids = sequences.encode_lines(vocab, ds.targets.line, SMALL.max_len)
    rows = np.arange(len(table))
    with pytest.raises(NonFiniteLossError, match="epoch 1"):
        ed.fit_encoder_decoder(table, ds.inputs.window_index, ids, ds.targets.command, rows,
                               rows[:10], len(vocab), SMALL,
                               TrainConfig(epochs=2, batch_size=len(rows)), tmp_path)


def test_learns_the_synthetic_lines_on_held_out_files(trained):
    _, _, _, res = trained
    s = res.scores
    # the line index is written on one channel: a working model reads it off
    assert s["line_exact_accuracy"] > 0.8, s
    assert s["token_accuracy_free_running"] > 0.9, s
    assert s["command_balanced_accuracy"] > 0.8, s
    assert s["token_accuracy_teacher_forced"] > 0.9, s


def test_a_fold_scores_its_validation_rows_only_when_asked(trained):
    # the cross-validation folds score the test files; validation scores (val_*) are for
    # choosing among candidates, and only the final run asks for them
    *_, res = trained
    assert "line_exact_accuracy" in res.scores
    assert not any(k.startswith("val_") for k in res.scores)


def test_validation_scores_are_those_of_the_validation_files_not_the_test_files(tmp_path):
    # candidates are chosen on val_* scores: they must come from the validation files held
    # out of the training fold, never from the test fold
    data = synthetic.recordings(n_files=6, seed=2)
    ds = _ds(data, sources=TRAINED_SOURCES, window=2)
    sp = splits.group_kfold(ds.files, 3, seed=0, what="file")[0]
    res = ed.run_fold(ds, sp.train, sp.test, SMALL, TrainConfig(epochs=2, batch_size=64),
                      tmp_path, n_inner=3, val_rows_max=10**6, score_validation=True)
    _, val = sequences.inner_validation(ds.files, sp.train, 3, 0)
    assert set(ds.files[val]).isdisjoint(ds.files[sp.test])
    table = ds.inputs.table(res.scaler)
    ids = sequences.encode_lines(res.vocab, ds.targets.line, SMALL.max_len)
    on_val = ed.evaluate(res.model, table, ds.inputs.window_index, ids, ds.targets.command,
                         ds.targets.line, val, res.vocab, steps=res.steps)
    on_test = ed.evaluate(res.model, table, ds.inputs.window_index, ids, ds.targets.command,
                          ds.targets.line, sp.test, res.vocab, steps=res.steps)
    for k in on_val:
        assert res.scores[f"val_{k}"] == pytest.approx(on_val[k]), k
        assert res.scores[k] == pytest.approx(on_test[k]), k
    assert any(on_val[k] != pytest.approx(on_test[k]) for k in on_val)  # the two differ


def test_evaluate_scores_by_hand_in_any_batch_size(trained):
    # teacher-forced token accuracy: right next tokens over counted ones (pad never, eos only
    # in the _eos variant), summed over batches; command balanced accuracy over rows with a
    # class; computed here from one forward pass over all rows, not by the library's counter
    from sklearn.metrics import balanced_accuracy_score

    _, ds, sp, res = trained
    table = ds.inputs.table(res.scaler)
    # untrained: the trained model gets every teacher-forced token right, which would not
    # tell the counts with and without <eos> apart
    model = random_model(res.vocab, res.model.cfg, seed=3, n_features=table.shape[1])
    ids = sequences.encode_lines(res.vocab, ds.targets.line, model.cfg.max_len)
    rows = sp.test
    x = table[torch.from_numpy(ds.inputs.window_index[rows])]
    idt = torch.from_numpy(np.asarray(ids[rows], dtype=np.int64))
    with torch.no_grad():
        logits_c, logits = model(x, idt[:, :-1])
    right = (logits.argmax(-1) == idt[:, 1:]).numpy()
    target = idt[:, 1:].numpy()
    counted = target != tokens.PAD
    no_eos = counted & (target != tokens.EOS)
    y = np.asarray(ds.targets.command)[rows]
    has = y != sequences.NO_CLASS
    for batch in (len(rows), 7):
        got = ed.evaluate(model, table, ds.inputs.window_index, ids, ds.targets.command,
                          ds.targets.line, rows, res.vocab, batch=batch, steps=res.steps)
        assert got["token_accuracy_teacher_forced"] == pytest.approx(
            right[no_eos].sum() / no_eos.sum())
        assert got["token_accuracy_teacher_forced_eos"] == pytest.approx(
            right[counted].sum() / counted.sum())
        assert got["command_balanced_accuracy"] == pytest.approx(balanced_accuracy_score(
            y[has], logits_c.argmax(1).numpy()[has]))
    # the two token accuracies differ here, and both are neither 0 nor 1
    assert 0 < right[counted].mean() < right[no_eos].mean() < 1
    assert 0 < got["command_balanced_accuracy"] < 1


def test_scaler_of_a_fold_is_fitted_on_its_training_files(trained):
    _, ds, sp, res = trained
    np.testing.assert_allclose(res.scaler.mean, ds.inputs.values[sp.train].mean(axis=0))
    assert not np.allclose(res.scaler.mean, ds.inputs.values[sp.test].mean(axis=0))


# ----------------------------------------------------------------- saved model


def _blank_targets(data):
    rows = data.rows.copy()
    rows["gcode_string"] = "G0 X0."
    rows["gcode_line"] = 0
    for c in schema.KEPT_CONTROLLER_FIELDS:
        rows[c] = np.nan
    return type(data)(rows, data.files)


def test_save_load_predict(trained, tmp_path):
    data, ds, sp, res = trained
    d = ed.save_model(tmp_path / "m", res, inputs=ds.inputs, params={"epochs": 60},
                      commit="abc")
    man = json.loads((d / "manifest.json").read_text())
    assert man["kind"] == "encoder_decoder" and man["window"] == 2 and man["commit"] == "abc"
    assert not any(schema.is_forbidden_input(c) for c in man["input_columns"])
    p = ed.load_model(d)
    test = data.subset(sp.test_groups)
    out = p.predict(test)
    assert list(out.columns) == ["file", "command", "line"] and len(out) == len(test.rows)
    assert (out["file"].to_numpy() == test.rows["file"].to_numpy()).all()
    assert set(out["command"]) <= set(tokens.MOTION_CLASSES)
    exact = np.mean(out["line"].to_numpy() == test.rows["gcode_string"].to_numpy())
    assert exact == pytest.approx(res.scores["line_exact_accuracy"])
    # targets and controller fields are never read
    again = p.predict(_blank_targets(test))
    assert again.equals(out)


def test_save_model_into_a_new_nested_folder_and_again_over_a_saved_one(trained, tmp_path):
    # the default render saves under reports/cnc/models/... (new on a fresh clone) and
    # overwrites it at the next render
    _, ds, _, res = trained
    d = tmp_path / "reports" / "cnc" / "models" / "encoder_decoder"
    for commit in ("first", "second"):
        ed.save_model(d, res, inputs=ds.inputs, params={}, commit=commit)
    assert json.loads((d / "manifest.json").read_text())["commit"] == "second"
    loaded = ed.load_model(d).model.state_dict()  # the overwritten folder loads whole
    for name, w in res.model.state_dict().items():
        torch.testing.assert_close(loaded[name], w)


def test_predict_ignores_unseen_nodes_and_masks_missing_ones(trained, tmp_path):
    _, ds, _, res = trained
    d = ed.save_model(tmp_path / "m", res, inputs=ds.inputs, params={}, commit=None)
    p = ed.load_model(d)
    new = synthetic.recordings(2, seed=9, extra_sources=["spindle2"],
                               absent={"face_002": ["motor"]})
    out = p.predict(new)
    assert len(out) == len(new.rows)
    unseen = [c for s in ("frame_r2", "y_bed__3", "spindle2") for c in schema.source_columns(s)]
    assert sorted(p.ignored_columns) == sorted(unseen)
    # the values of nodes the model never saw do not matter
    rows = new.rows.copy()
    rows[unseen] = 1e6
    assert p.predict(type(new)(rows, new.files)).equals(out)
    # a missing source is masked: face_002 (no motor) still gets its lines right
    f2 = (new.rows["file"] == "face_002").to_numpy()
    exact = np.mean(out["line"].to_numpy()[f2] == new.rows["gcode_string"].to_numpy()[f2])
    assert exact > 0.8


def test_load_model_refuses_a_manifest_with_forbidden_inputs(trained, tmp_path):
    _, ds, _, res = trained
    d = ed.save_model(tmp_path / "m", res, inputs=ds.inputs, params={}, commit=None)
    man = json.loads((d / "manifest.json").read_text())
    man["input_columns"] = man["input_columns"] + ["posx"]
    (d / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ValueError, match="posx"):
        ed.load_model(d)


def test_load_model_names_the_missing_or_wrong_file(trained, tmp_path):
    _, ds, _, res = trained
    src = ed.save_model(tmp_path / "m", res, inputs=ds.inputs, params={}, commit=None)

    def copy(name):
        d = tmp_path / name
        d.mkdir()
        for f in src.iterdir():
            (d / f.name).write_bytes(f.read_bytes())
        return d

    d = copy("no_weights")
    (d / ed.WEIGHTS).unlink()
    with pytest.raises(FileNotFoundError, match=f"{ed.WEIGHTS} is missing"):
        ed.load_model(d)
    d = copy("other_kind")
    man = json.loads((d / ed.MANIFEST).read_text())
    (d / ed.MANIFEST).write_text(json.dumps(man | {"kind": "alignment"}))
    with pytest.raises(ValueError, match=rf"{ed.MANIFEST}: kind 'alignment', expected"):
        ed.load_model(d)
    d = copy("other_scaler")
    man["input_columns"] = man["input_columns"][::-1]  # allowed columns, another order
    (d / ed.MANIFEST).write_text(json.dumps(man))
    with pytest.raises(ValueError, match=rf"{ed.SCALER}: columns differ from the manifest"):
        ed.load_model(d)


def test_folds_are_notebook_03s():
    from physml.cnc import baselines

    data = synthetic.recordings(6, seed=4)
    ds = _ds(data)
    prep = baselines.prepare(data, window=2)
    ours, theirs = sequences.file_splits(ds, 3, [0, 1]), baselines.file_splits(prep, 3, [0, 1])
    assert [(s, tuple(sp.test)) for s, sp in ours] == [(s, tuple(sp.test)) for s, sp in theirs]


# ----------------------------------------------------------------- choice on validation files


def _candidate_table():
    # two folds x three candidates; candidate 2 has the best *test* score everywhere
    rows = []
    for fold, vals in [(0, [0.50, 0.70, 0.60]), (1, [0.80, 0.80, 0.10])]:
        for j, v in enumerate(vals):
            rows.append({"seed": 0, "fold": fold, "candidate": j, ed.CHOICE_SCORE: v,
                         "token_accuracy_free_running": 0.9 if j == 2 else 0.3})
    return pd.DataFrame(rows)


def test_choose_takes_the_best_validation_score_and_the_first_on_a_tie():
    chosen = ed.choose(_candidate_table())
    assert chosen[["fold", "candidate"]].values.tolist() == [[0, 1], [1, 0]]
    # several seeds, rows in any order: one row per (seed, fold), in seed then fold order
    two = pd.concat([_candidate_table().assign(seed=1), _candidate_table()]).iloc[::-1]
    chosen = ed.choose(two)
    assert chosen[["seed", "fold", "candidate"]].values.tolist() == [
        [0, 0, 1], [0, 1, 0], [1, 0, 1], [1, 1, 0]]


def test_choose_refuses_a_candidate_without_a_validation_score():
    t = _candidate_table()
    t.loc[4, ed.CHOICE_SCORE] = np.nan
    with pytest.raises(ValueError, match=r"val_token_accuracy_free_running.*\[0, 1, 1\]"):
        ed.choose(t)
    with pytest.raises(ValueError, match="no 'val_"):
        ed.choose(t.drop(columns=ed.CHOICE_SCORE))


def test_overrides_replace_settings_and_refuse_unknown_ones():
    cfg, tc = ed.with_overrides(SMALL, TrainConfig(lr=1e-3), {"hidden": 8, "lr": 0.01})
    assert (cfg.hidden, cfg.d_model, tc.lr) == (8, SMALL.d_model, 0.01)
    assert ed.with_overrides(SMALL, tc, {}) == (SMALL, tc)
    with pytest.raises(ValueError, match=r"\['hiden'\]"):
        ed.with_overrides(SMALL, tc, {"hiden": 8})
    with pytest.raises(ValueError, match="no candidate"):
        ed.cross_validate_choice(None, [], SMALL, tc, "unused", candidates=[])


def test_choice_keeps_the_candidate_that_learns_on_the_validation_files(tmp_path):
    data = synthetic.recordings(n_files=8, seed=1)
    ds = _ds(data, sources=TRAINED_SOURCES, window=2)
    split_list = [(0, sp) for sp in splits.group_kfold(ds.files, 4, seed=0, what="file")[:2]]
    cfg = ed.EDConfig(hidden=32, d_model=32, heads=2, layers=1, dropout=0.0)
    tc = TrainConfig(epochs=25, batch_size=32, lr=3e-3, patience=None)
    # candidate 0 cannot learn (a learning rate of ~0): the choice must pass it over
    cands = [{"lr": 1e-9}, {}]
    got = ed.cross_validate_choice(ds, split_list, cfg, tc, tmp_path, cands, n_inner=3)
    assert got.scores["candidate"].tolist() == [1, 1]
    assert got.scores["label"].tolist() == ["as configured"] * 2
    assert len(got.candidates) == 4 and (tmp_path / "seed0_fold0" / "candidate1").is_dir()
    for (_, row), res in zip(got.scores.iterrows(), got.folds, strict=True):
        assert res.scores["token_accuracy_free_running"] == row["token_accuracy_free_running"]
        assert res.model.cfg.hidden == 32
    worst = got.candidates.groupby("candidate")[ed.CHOICE_SCORE].max()
    assert worst[0] < 0.5 < got.scores[ed.CHOICE_SCORE].min(), got.candidates
    final, final_ds = ed.fit_final(ds, cfg, tc, tmp_path / "final", n_inner=3, candidates=cands)
    assert final.scores["candidate"] == 1 and final.scores["token_accuracy_free_running"] > 0.9
    assert final_ds is ds


def test_a_per_file_candidate_trains_on_its_variant_data_set(tmp_path, monkeypatch):
    data = synthetic.recordings(n_files=4, seed=1)
    ds = _ds(data, sources=TRAINED_SOURCES, window=2, per_file="none")
    std = _ds(data, sources=TRAINED_SOURCES, window=2, per_file="standardise")
    seen = []

    def fake_fold(d, train_rows, test_rows, cfg, train_cfg, out_dir, *, overrides,
                  score_validation, **kw):
        seen.append((d.inputs.per_file, dict(overrides)))
        good = d.inputs.per_file == "standardise"  # only the variant scores well
        return ed.FoldResult(None, None, None, {ed.CHOICE_SCORE: 0.9 if good else 0.1,
                                                "token_accuracy_free_running": 0.5}, {})

    monkeypatch.setattr(ed, "run_fold", fake_fold)
    split_list = [(0, sp) for sp in splits.group_kfold(ds.files, 2, seed=0, what="file")]
    cands = [{}, {"per_file": "standardise", "hidden": 8}]
    got = ed.cross_validate_choice(ds, split_list, SMALL, TrainConfig(), tmp_path, cands,
                                   variants={"standardise": std})
    assert seen == [("none", {}), ("standardise", {"hidden": 8})] * 2
    assert ed.split_per_file(cands[1]) == ("standardise", {"hidden": 8})
    assert ed.split_per_file({}) == (None, {})
    assert got.scores["candidate"].tolist() == [1, 1]
    assert got.scores["label"].tolist() == ["per_file standardise, hidden 8"] * 2
    with pytest.raises(ValueError, match=r"per_file 'standardise' has no prepared data set"):
        ed.cross_validate_choice(ds, split_list, SMALL, TrainConfig(), tmp_path, cands)
    with pytest.raises(ValueError, match="variant 'standardise' was prepared with per_file 'none'"):
        ed.cross_validate_choice(ds, split_list, SMALL, TrainConfig(), tmp_path, cands,
                                 variants={"standardise": ds})
    # the same number of rows, in another file order: not the same rows
    shuffled = dataclasses.replace(std, inputs=dataclasses.replace(std.inputs,
                                                                   files=std.files[::-1]))
    assert len(shuffled.files) == len(ds.files)
    with pytest.raises(ValueError, match="variant 'standardise' has other rows"):
        ed.cross_validate_choice(ds, split_list, SMALL, TrainConfig(), tmp_path, cands,
                                 variants={"standardise": shuffled})
