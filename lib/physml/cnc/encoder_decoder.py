"""The source's architecture rebuilt: BiLSTM sensor encoder, transformer decoder, two heads.

Model (:class:`EncoderDecoder`)
-------------------------------
- encoder: a bidirectional LSTM over the ``window`` rows of a sample, ``(b, window, f)`` →
  ``(b, window, 2 * hidden)``, projected to ``d_model``: the *memory*;
- command head: the last row's memory (the row being labelled) and the mean over the window
  → linear → G0/G1/G2/G3 logits;
- token decoder: ``nn.TransformerDecoder`` (causal self-attention over the tokens emitted so
  far, cross-attention to the memory) → logits over the vocabulary
  (:class:`physml.cnc.tokens.Vocabulary`, built from the *training* files' lines only; a test
  token never seen in training is ``<unk>`` and can never be predicted).

Loss: focal loss (``gamma = 0``: cross-entropy) on the next token, plus ``class_weight`` times
the focal loss of the command class (rows whose line moves nothing have no class).

Decoding
--------
*Teacher-forced* accuracy feeds the true prefix and compares each next-token argmax with the
truth (the source's metric; :func:`teacher_forced_hits` counts ``<eos>`` only when asked).
*Free-running* decoding is greedy, feeding back its own tokens (:func:`greedy_decode`), and is
constrained by the tokenizer's grammar (an address letter is followed by a value; ``<eos>``
only after a complete word), so every output detokenises to a G-code line.
Free-running token accuracy compares the decoded line with the true line position by
position, ``<eos>`` excluded (:func:`physml.cnc.tokens.token_accuracy`).
The decoding runs in :class:`GreedyPredictor`: the encoder once, the decoder one token per
step with cached keys and values (the same numbers as re-running the decoder on the whole
prefix), each row projected only onto the part of the vocabulary its grammar state allows,
and at most :func:`decode_steps` steps (the longest training line plus ``<eos>``). The module
is what :mod:`physml.cnc.onnx_export` exports for the full prediction, windows → lines: as
one graph, or split (:class:`PrefillStage`, :class:`DecoderStep`, both built from its
:meth:`GreedyPredictor.memory` and :meth:`GreedyPredictor.step`) for a host-side loop that
drops finished rows between steps.

Saved models
------------
:func:`save_model` writes ``manifest.json`` (``kind``, ``input_columns``, ``sources``,
``window``, ``per_file``, ``vocab``, ``classes``, ``max_len``, ``decode_steps``, ``params``,
``commit``),
``weights.pt`` and ``scaler.json``; :func:`load_model` returns a :class:`Predictor` whose
``predict(rec)`` uses only the manifest's input columns.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from physml import train as _train

from . import schema, tokens
from .baselines import balanced_accuracy_score, score_lines
from .classifier import class_weights
from .data import CNCData
from .focal import focal_loss
from .folds import Run, run_all, run_folds
from .sequences import (
    CLASSES,
    NO_CLASS,
    Dataset,
    Inputs,
    Scaler,
    build_inputs,
    check_inputs,
    encode_lines,
    inner_validation,
)

KIND = "encoder_decoder"
MANIFEST = "manifest.json"
WEIGHTS = "weights.pt"
SCALER = "scaler.json"
# token-type codes used by the grammar constraint
_SPECIAL, _COMMAND, _AXIS, _VALUE = 0, 1, 2, 3


@dataclass
class EDConfig:
    """Architecture and loss. ``hidden``: LSTM units per direction; ``d_model``: decoder
    width; ``heads``/``layers``: decoder attention heads and layers; ``max_len``: token
    positions incl. ``<bos>``/``<eos>`` (the longest line in the data has 9 tokens);
    ``gamma``: focal exponent (0 = cross-entropy) of both heads; ``class_weight``: weight of
    the command-class loss beside the token loss."""

    hidden: int = 64
    d_model: int = 64
    heads: int = 4
    layers: int = 2
    max_len: int = 12
    dropout: float = 0.1
    gamma: float = 0.0
    class_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.d_model % self.heads:
            raise ValueError(f"EDConfig: d_model {self.d_model} must be divisible by heads "
                             f"{self.heads}")
        if self.max_len < 3:
            raise ValueError(f"EDConfig: max_len must be >= 3, got {self.max_len}")
        if self.gamma < 0:
            raise ValueError(f"EDConfig: gamma must be >= 0, got {self.gamma}")


class EncoderDecoder(nn.Module):
    """BiLSTM encoder + transformer decoder + command head.

    ``forward(x (b, window, f), tgt (b, T) ids) -> (class logits (b, 4), token logits
    (b, T, vocab))``.
    """

    def __init__(self, n_features: int, vocab_size: int, cfg: EDConfig):
        super().__init__()
        self.cfg = cfg
        self.lstm = nn.LSTM(n_features, cfg.hidden, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * cfg.hidden, cfg.d_model)
        self.cls = nn.Linear(2 * cfg.d_model, len(CLASSES))
        self.emb = nn.Embedding(vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.max_len, cfg.d_model)
        layer = nn.TransformerDecoderLayer(cfg.d_model, cfg.heads, 2 * cfg.d_model,
                                           cfg.dropout, batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, cfg.layers)
        self.out = nn.Linear(cfg.d_model, vocab_size)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, window, f)`` → memory ``(b, window, d_model)``."""
        h, _ = self.lstm(x)
        return self.proj(h)

    def classify(self, memory: torch.Tensor) -> torch.Tensor:
        """Memory → command-class logits ``(b, 4)`` from the last row's state (the row whose
        line is the target) beside the mean over the window."""
        return self.cls(torch.cat([memory[:, -1], memory.mean(dim=1)], dim=1))

    def decode_hidden(self, memory: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """Decoder states ``(b, T, d_model)`` for the prefix ``tgt`` ``(b, T)`` (causal)."""
        T = tgt.shape[1]
        pos = torch.arange(T, device=tgt.device)
        e = self.emb(tgt) + self.pos(pos)[None]
        mask = torch.triu(torch.full((T, T), float("-inf"), device=tgt.device), diagonal=1)
        return self.decoder(e, memory, tgt_mask=mask, tgt_is_causal=True)

    def decode(self, memory: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """Token logits ``(b, T, vocab)`` for the prefix ``tgt`` ``(b, T)`` (causal)."""
        return self.out(self.decode_hidden(memory, tgt))

    def forward(self, x: torch.Tensor, tgt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        memory = self.encode(x)
        return self.classify(memory), self.decode(memory, tgt)


def _loss(model: EncoderDecoder, x, ids, y, gamma, class_weight, w):
    memory = model.encode(x)
    logits_c = model.classify(memory)
    target = ids[:, 1:]
    keep = target != tokens.PAD  # project only the counted positions onto the vocabulary
    logits_t = model.out(model.decode_hidden(memory, ids[:, :-1])[keep])
    tok = focal_loss(logits_t, target[keep], gamma)
    cls = focal_loss(logits_c, y, gamma, ignore_index=NO_CLASS, weight=w)
    return {"loss": tok + class_weight * cls, "token_loss": tok, "class_loss": cls}


def fit_encoder_decoder(table: torch.Tensor, index: np.ndarray, ids: np.ndarray, y: np.ndarray,
                        fit_rows: np.ndarray, val_rows: np.ndarray, vocab_size: int,
                        cfg: EDConfig, train_cfg: _train.TrainConfig, out_dir: str | Path
                        ) -> tuple[EncoderDecoder, dict]:
    """Train on ``fit_rows``, early-stopped on the loss of ``val_rows`` (validation files
    held out inside the training fold). ``table``: ``(n, f)`` scaled inputs; ``index``:
    ``(n, window)``; ``ids``: ``(n, max_len)`` token ids; ``y``: ``(n,)`` class ids."""
    if fit_rows.size == 0 or val_rows.size == 0:
        raise ValueError("fit_encoder_decoder: empty training or validation rows")
    idx_t = torch.from_numpy(np.asarray(index))
    ids_t = torch.from_numpy(np.asarray(ids, dtype=np.int64))
    y_t = torch.from_numpy(np.asarray(y, dtype=np.int64))
    w = class_weights(y[fit_rows])
    with _train.seeded(train_cfg.seed):
        model = EncoderDecoder(table.shape[1], vocab_size, cfg)

    def loss_terms(m, batch):
        (rows,) = batch
        return _loss(m, table[idx_t[rows]], ids_t[rows], y_t[rows], cfg.gamma,
                     cfg.class_weight, w)

    vr = torch.from_numpy(val_rows)

    def validate(m):
        terms = _loss(m, table[idx_t[vr]], ids_t[vr], y_t[vr], cfg.gamma, cfg.class_weight, w)
        return {k: float(v) for k, v in terms.items()}

    hist = _train.train(model, loss_terms, (torch.from_numpy(fit_rows),), validate, train_cfg,
                        out_dir, extra_config={"model": "EncoderDecoder", **asdict(cfg)})
    return model, hist


# ------------------------------------------------------------------ decoding and scores


def vocab_type_codes(vocab: tokens.Vocabulary) -> np.ndarray:
    """``(len(vocab),)`` int codes: 0 special, 1 command, 2 axis (address letter), 3 value."""
    code = {"special": _SPECIAL, "command": _COMMAND, "axis": _AXIS, "value": _VALUE}
    return np.array([code[tokens.token_type(t)] for t in vocab.tokens], dtype=np.int64)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, head_sum: torch.Tensor,
            head_spread: torch.Tensor) -> torch.Tensor:
    """Multi-head scaled dot-product attention of one query per row against ``n`` keys:
    ``q (b, d)``, ``k, v (b, n, d)`` → ``(b, d)``. ``head_sum`` ``(d, h)``: 1/sqrt(d/h) where
    channel i belongs to head j, else 0; ``head_spread`` ``(h, d)``: its 0/1 pattern
    transposed. Written as broadcast products and two small matrix products (no reshapes
    into heads: for a single query that is fewer and cheaper operations)."""
    w = torch.softmax((q[:, None] * k) @ head_sum, dim=1)  # (b, n, h)
    return ((w @ head_spread) * v).sum(1)


def _tracing() -> bool:
    """True while torch.export / torch.onnx (either exporter) traces the module."""
    return bool(torch.jit.is_tracing() or torch.compiler.is_exporting()
                or torch.compiler.is_compiling())


class GreedyPredictor(nn.Module):
    """The full prediction of an :class:`EncoderDecoder`: windows → token ids and classes.

    ``forward(x (b, window, f)) -> (ids (b, steps) int64, class ids (b,) int64)``: the
    encoder runs once; the memory's cross-attention keys and values are projected once per
    decoder layer; each of the ``steps`` greedy steps runs the decoder on the newest token
    only, with the self-attention keys and values of the earlier tokens cached (causal
    attention: an earlier position's states never change when a token is appended), and
    projects that one state onto the vocabulary. The same arithmetic as
    ``model.decode(memory, prefix)[:, -1]`` (tests hold it to the full recomputation);
    grammar-constrained like :func:`greedy_decode`, whose scores use this module. Run eagerly,
    the step loop stops once every line has ended; traced for export it has no
    data-dependent exit, so the module exports to ONNX as one graph (the loop unrolled,
    every step run); :class:`PrefillStage` and :class:`DecoderStep` export its pieces
    for a loop that does stop. ``steps``: decoder passes, at most ``max_len - 1``; the last
    one only allows ``<eos>`` (or the pending value).

    Supports the decoder :class:`EncoderDecoder` builds (post-norm
    ``nn.TransformerDecoderLayer`` with ReLU, no final norm); another layout raises.
    """

    def __init__(self, model: EncoderDecoder, type_codes: np.ndarray, steps: int | None = None):
        super().__init__()
        L = model.cfg.max_len
        steps = L - 1 if steps is None else int(steps)
        if not 1 <= steps <= L - 1:
            raise ValueError(f"GreedyPredictor: steps must be in [1, max_len - 1 = {L - 1}], "
                             f"got {steps}")
        if model.decoder.norm is not None:
            raise ValueError("GreedyPredictor: decoders with a final norm are not supported")
        for i, lay in enumerate(model.decoder.layers):
            if lay.norm_first or lay.activation is not torch.nn.functional.relu:
                raise ValueError(f"GreedyPredictor: decoder layer {i} is not post-norm ReLU")
        self.model, self.steps = model, steps
        d, h = model.cfg.d_model, model.cfg.heads
        member = (torch.arange(d)[:, None] // (d // h) == torch.arange(h)[None]).float()
        self.register_buffer("head_sum", member / math.sqrt(d // h), persistent=False)
        self.register_buffer("head_spread", member.T.contiguous(), persistent=False)
        codes = torch.as_tensor(np.asarray(type_codes), dtype=torch.long)
        if codes.shape != (model.out.out_features,):
            raise ValueError(f"GreedyPredictor: type_codes has shape {tuple(codes.shape)}, "
                             f"expected ({model.out.out_features},) (one per vocabulary token)")
        is_word = (codes == _COMMAND) | (codes == _AXIS)
        words = torch.cat([torch.nonzero(is_word)[:, 0], torch.tensor([tokens.EOS])])
        values = torch.nonzero(codes == _VALUE)[:, 0]
        if words.numel() == 1 or values.numel() == 0:
            raise ValueError("GreedyPredictor: the vocabulary needs command or address tokens "
                             "and value tokens")
        self.register_buffer("codes", codes, persistent=False)
        # the grammar splits the vocabulary: in states 0 (start) and 1 (after a word) only
        # words (commands, addresses, <eos>) are allowed, in state 2 (after an address) only
        # values; so each row is projected onto one of the two parts only
        self.register_buffer("words", words, persistent=False)
        self.register_buffer("values", values, persistent=False)
        is_eos = words == tokens.EOS
        # allowed words per state 0, 1, 2 (row 2 unused: those rows take a value)
        self.register_buffer("allow", torch.stack([~is_eos, torch.ones_like(is_eos), is_eos]),
                             persistent=False)
        self.register_buffer("allow_last", torch.stack([~is_eos, is_eos, is_eos]),
                             persistent=False)

    def memory(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The encoder once: ``x`` ``(b, window, f)`` → class ids ``(b,)`` int64 and the
        cross-attention keys and values of every decoder layer, ``[k_0, v_0, k_1, v_1,
        ...]``, each ``(b, window, d_model)``."""
        m = self.model
        memory = m.encode(x)
        cls = m.classify(memory).argmax(1)
        b, n, d = memory.shape
        flat = memory.reshape(b * n, d)  # 2-D: one Gemm with its bias in ONNX (3-D: MatMul + Add)
        kv = []
        for lay in m.decoder.layers:
            w, bias = lay.multihead_attn.in_proj_weight, lay.multihead_attn.in_proj_bias
            kv += [torch.nn.functional.linear(flat, w[d:2 * d], bias[d:2 * d]).reshape(b, n, d),
                   torch.nn.functional.linear(flat, w[2 * d:], bias[2 * d:]).reshape(b, n, d)]
        return cls, kv

    def step(self, tok: torch.Tensor, state: torch.Tensor, pos: torch.Tensor,
             allow: torch.Tensor, cache: Sequence[torch.Tensor] | None,
             mem: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One greedy step for ``b`` rows: ``tok`` ``(b,)`` the previous token, ``state``
        ``(b,)`` its grammar state (0 start, 1 after a word, 2 after an address), ``pos``
        ``(d_model,)`` or ``(1, d_model)`` this step's position embedding, ``allow`` ``(3,
        n_words)`` the words allowed per state (:attr:`allow`, or :attr:`allow_last` at the
        last step), ``cache`` the self-attention keys and values of the ``t`` earlier tokens,
        ``[k_0, v_0, k_1, v_1, ...]`` each ``(b, t, d_model)`` (``None`` at the first step),
        ``mem`` from :meth:`memory`. Returns the next token ``(b,)`` and the cache with this
        token's keys and values appended (each ``(b, t + 1, d_model)``). Rows are
        independent: a row's token does not depend on which other rows are in the batch.

        At the first step (``cache`` ``None``) the self-attention has one key, whose weight is
        exactly 1: its output is the value itself, taken without the scores (the same
        numbers, fewer operations)."""
        m, hs, hp = self.model, self.head_sum, self.head_spread
        d = mem[0].shape[-1]
        e = m.emb(tok) + pos
        kv = []
        for i, lay in enumerate(m.decoder.layers):
            sa = lay.self_attn
            qkv = torch.nn.functional.linear(e, sa.in_proj_weight, sa.in_proj_bias)
            k, v = qkv[:, None, d:2 * d], qkv[:, None, 2 * d:]
            if cache is None:  # one key: softmax weight 1, the output is its value
                att = qkv[:, 2 * d:]
            else:
                k, v = torch.cat([cache[2 * i], k], 1), torch.cat([cache[2 * i + 1], v], 1)
                att = _attend(qkv[:, :d], k, v, hs, hp)
            kv += [k, v]
            e = lay.norm1(e + sa.out_proj(att))
            ca = lay.multihead_attn
            q = torch.nn.functional.linear(e, ca.in_proj_weight[:d], ca.in_proj_bias[:d])
            e = lay.norm2(e + ca.out_proj(_attend(q, mem[2 * i], mem[2 * i + 1], hs, hp)))
            e = lay.norm3(e + lay.linear2(torch.relu(lay.linear1(e))))
        w_logits = torch.nn.functional.linear(e, m.out.weight[self.words], m.out.bias[self.words])
        neg = torch.tensor(float("-inf"), device=e.device)
        nxt = self.words[torch.where(allow[state], w_logits, neg).argmax(1)]
        # rows after an address take the best value: only they are projected onto the value
        # tokens, the bulk of the vocabulary (finished rows are in state 1, never 2)
        rows = torch.nonzero(state == 2)[:, 0]
        v_logits = torch.nn.functional.linear(e[rows], m.out.weight[self.values],
                                              m.out.bias[self.values])
        nxt = nxt.index_put((rows,), self.values[v_logits.argmax(1)])
        return nxt, kv

    def next_state(self, state: torch.Tensor, tok: torch.Tensor) -> torch.Tensor:
        """Grammar state after ``tok`` ``(b,)``: 2 after an address letter, unchanged after a
        special token (``<eos>``, ``<pad>``), else 1."""
        kind = self.codes[tok]
        return torch.where(kind == _AXIS, 2, torch.where(kind == _SPECIAL, state, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.model
        cls, mem = self.memory(x)
        b = x.shape[0]
        tok = torch.full((b,), tokens.BOS, dtype=torch.long, device=x.device)
        state = torch.zeros(b, dtype=torch.long, device=x.device)
        done = torch.zeros(b, dtype=torch.bool, device=x.device)
        pad = torch.full((b,), tokens.PAD, dtype=torch.long, device=x.device)
        cache = None
        out = []
        for t in range(self.steps):
            allow = self.allow_last if t == self.steps - 1 else self.allow
            nxt, cache = self.step(tok, state, m.pos.weight[t], allow, cache, mem)
            nxt = torch.where(done, pad, nxt)
            out.append(nxt)
            state = self.next_state(state, nxt)
            done = done | (nxt == tokens.EOS)
            tok = nxt
            if not _tracing() and bool(done.all()):
                # every line has ended: the remaining steps would only emit <pad> (eager
                # torch stops here; an exported graph has no data-dependent exit)
                out += [pad] * (self.steps - 1 - t)
                break
        return torch.stack(out, 1), cls


class PrefillStage(nn.Module):
    """The first graph of the staged prediction (:class:`GreedyPredictor` split for a
    host-side loop): the encoder, the command head, the memory's keys and values and the
    first greedy step. ``forward(x (b, window, f)) -> (classes (b,), token (b,), state (b,),
    *memory (2 * layers tensors (b, window, d_model)), *cache (2 * layers tensors (b, 1,
    d_model)))``: ``token`` is the first emitted token, ``state`` the grammar state after it
    (layout of ``memory`` and ``cache``: :meth:`GreedyPredictor.step`)."""

    def __init__(self, predictor: GreedyPredictor):
        super().__init__()
        self.p = predictor

    def forward(self, x: torch.Tensor):
        p = self.p
        cls, mem = p.memory(x)
        tok = torch.full((x.shape[0],), tokens.BOS, dtype=torch.long, device=x.device)
        state = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        allow = p.allow_last if p.steps == 1 else p.allow
        nxt, cache = p.step(tok, state, p.model.pos.weight[0], allow, None, mem)
        return (cls, nxt, p.next_state(state, nxt), *mem, *cache)


class DecoderStep(nn.Module):
    """One greedy step of the staged prediction, on the rows still decoding:
    ``forward(token (b,), state (b,), t (1,) int64, *memory, *cache) -> (token (b,), state
    (b,), *cache)``; ``memory``: 2 * layers tensors ``(b, window, d_model)``, ``cache``:
    2 * layers tensors ``(b, t, d_model)`` in, ``(b, t + 1, d_model)`` out
    (:meth:`GreedyPredictor.step`); ``t`` is the step's index (1 .. steps - 1; the last one
    allows only ``<eos>`` or the pending value)."""

    def __init__(self, predictor: GreedyPredictor):
        super().__init__()
        self.p = predictor
        self.n = 2 * len(predictor.model.decoder.layers)

    def forward(self, tok, state, t, *kv):
        p, n = self.p, self.n
        if len(kv) != 2 * n:
            raise ValueError(f"DecoderStep: expected {n} memory and {n} cache tensors, got "
                             f"{len(kv)} tensors")
        last = (t == p.steps - 1)[:, None]  # (1, 1); logical ops (no Where on booleans in ORT)
        allow = (p.allow & ~last) | (p.allow_last & last)
        pos = torch.nn.functional.embedding(t, p.model.pos.weight)  # (1, d)
        nxt, cache = p.step(tok, state, pos, allow, kv[n:], kv[:n])
        return (nxt, p.next_state(state, nxt), *cache)


class EncoderStage(nn.Module):
    """The first stage of :class:`GreedyPredictor` alone (for the time breakdown):
    ``forward(x (b, window, f)) -> (memory (b, window, d_model), class ids (b,))``."""

    def __init__(self, model: EncoderDecoder):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        memory = self.model.encode(x)
        return memory, self.model.classify(memory).argmax(1)


@torch.no_grad()
def greedy_decode(model: EncoderDecoder, x: torch.Tensor, type_codes: np.ndarray,
                  steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Greedy, grammar-constrained decoding of a batch ``x`` ``(b, window, f)``
    (:class:`GreedyPredictor`, ``steps`` decoder passes, default ``max_len - 1``).

    Allowed next tokens: at the start a command or an address letter; after an address
    letter only a value; after a complete word a command, an address letter or ``<eos>``;
    at the last step ``<eos>`` (or the pending value). ``<pad> <bos> <unk>`` are never
    emitted. Returns token ids ``(b, max_len - 1)`` (``<pad>`` after ``<eos>`` and after the
    last step) and the class ids ``(b,)`` from the command head.
    """
    model.eval()
    ids, cls = GreedyPredictor(model, type_codes, steps)(x)
    full = torch.full((x.shape[0], model.cfg.max_len - 1), tokens.PAD, dtype=torch.long)
    full[:, :ids.shape[1]] = ids
    return full.numpy(), cls.numpy()


def decode_steps(lines: Sequence[str]) -> int:
    """Greedy steps that cover the longest of ``lines``: its token count plus ``<eos>``
    (decoding further can only emit lines longer than any seen in training)."""
    if len(lines) == 0:
        raise ValueError("decode_steps: no lines")
    return max(len(tokens.tokenize(s)) for s in set(lines)) + 1


def ids_to_lines(vocab: tokens.Vocabulary, ids: np.ndarray) -> list[str]:
    """Decoded id rows → G-code lines (:func:`physml.cnc.tokens.detokenize`)."""
    cache: dict[tuple, str] = {}
    out = []
    for row in ids:
        key = tuple(int(i) for i in row)
        if key not in cache:
            cache[key] = tokens.detokenize(vocab.decode(key))
        out.append(cache[key])
    return out


@torch.no_grad()
def teacher_forced_hits(model: EncoderDecoder, x: torch.Tensor, ids: torch.Tensor,
                        include_eos: bool) -> tuple[int, int]:
    """(correct next tokens, counted tokens) with the true prefix fed in; ``<pad>`` never
    counts, ``<eos>`` only with ``include_eos`` (the source's protocol)."""
    without, with_eos = teacher_forced_counts(model, x, ids)
    return with_eos if include_eos else without


@torch.no_grad()
def teacher_forced_counts(model: EncoderDecoder, x: torch.Tensor, ids: torch.Tensor
                          ) -> tuple[tuple[int, int], tuple[int, int]]:
    """:func:`teacher_forced_hits` without and with ``<eos>`` from ONE forward pass:
    ``((hits, counted) excluding <eos>, (hits, counted) including it)``."""
    model.eval()
    _, logits = model(x, ids[:, :-1])
    target = ids[:, 1:]
    count = target != tokens.PAD
    no_eos = count & (target != tokens.EOS)
    right = logits.argmax(-1) == target
    return ((int((right & no_eos).sum()), int(no_eos.sum())),
            (int((right & count).sum()), int(count.sum())))


def evaluate(model: EncoderDecoder, table: torch.Tensor, index: np.ndarray, ids: np.ndarray,
             y: np.ndarray, lines: np.ndarray, rows: np.ndarray, vocab: tokens.Vocabulary,
             batch: int = 2048, steps: int | None = None) -> dict[str, float]:
    """All task (a)/(b) scores on ``rows``: command balanced accuracy (rows with a class),
    teacher-forced token accuracy without and with ``<eos>``, free-running token accuracy
    (overall and per type) and exact-line accuracy. ``steps``: greedy decoder passes
    (:func:`greedy_decode`)."""
    idx_t = torch.from_numpy(np.asarray(index))
    ids_t = torch.from_numpy(np.asarray(ids, dtype=np.int64))
    codes = vocab_type_codes(vocab)
    tf = np.zeros(4, dtype=np.int64)
    pred_ids, pred_cls = [], []
    for a in range(0, len(rows), batch):
        r = torch.from_numpy(np.asarray(rows[a:a + batch]))
        x = table[idx_t[r]]
        without, with_eos = teacher_forced_counts(model, x, ids_t[r])
        tf += np.r_[without, with_eos]
        p, c = greedy_decode(model, x, codes, steps)
        pred_ids.append(p)
        pred_cls.append(c)
    pred_lines = ids_to_lines(vocab, np.concatenate(pred_ids))
    cls = np.concatenate(pred_cls)
    yr = np.asarray(y)[rows]
    has = yr != NO_CLASS
    out = {"command_balanced_accuracy": balanced_accuracy_score(yr[has], cls[has]),
           "token_accuracy_teacher_forced": tf[0] / tf[1],
           "token_accuracy_teacher_forced_eos": tf[2] / tf[3]}
    s = score_lines(pred_lines, list(np.asarray(lines)[rows]))
    out["token_accuracy_free_running"] = float(s.pop("token_accuracy"))
    out.update({k: float(v) for k, v in s.items()})
    return out


# ------------------------------------------------------------------ one fold, many folds


@dataclass
class FoldResult:
    """A trained fold: the model, what it needs to predict, its scores and history.
    ``steps``: greedy decoder passes, :func:`decode_steps` of the training lines."""

    model: EncoderDecoder
    scaler: Scaler
    vocab: tokens.Vocabulary
    scores: dict[str, float]
    history: dict = field(repr=False)
    steps: int | None = None


def with_overrides(cfg: EDConfig, train_cfg: _train.TrainConfig, overrides: dict | None
                   ) -> tuple[EDConfig, _train.TrainConfig]:
    """``cfg`` and ``train_cfg`` with the settings of one candidate replaced: any
    :class:`EDConfig` field, and ``lr``. An unknown key is an error naming it."""
    overrides = dict(overrides or {})
    arch = {f.name for f in fields(EDConfig)}
    unknown = sorted(set(overrides) - arch - {"lr"})
    if unknown:
        raise ValueError(f"encoder-decoder candidate: unknown setting(s) {unknown}; allowed: "
                         f"{sorted(arch | {'lr'})}")
    lr = overrides.pop("lr", None)
    return (replace(cfg, **overrides),
            train_cfg if lr is None else replace(train_cfg, lr=float(lr)))


def split_per_file(over: dict) -> tuple[str | None, dict]:
    """A candidate's ``per_file`` setting (None if it keeps the data set's) and its other
    settings (those of :func:`with_overrides`)."""
    over = dict(over)
    return over.pop("per_file", None), over


def _dataset_of(over: dict, datasets: dict[str, Dataset], default: str) -> tuple[str, dict]:
    """(key in ``datasets`` of a candidate's ``per_file`` setting, its other settings)."""
    key, over = split_per_file(over)
    key = default if key is None else key
    if key not in datasets:
        raise ValueError(f"encoder-decoder candidate: per_file {key!r} has no prepared data "
                         f"set; prepared: {sorted(datasets)}")
    return key, over


def run_fold(ds: Dataset, train_rows: np.ndarray, test_rows: np.ndarray, cfg: EDConfig,
             train_cfg: _train.TrainConfig, out_dir: str | Path, *, n_inner: int = 5,
             train_stride: int = 1, val_rows_max: int = 2000, inner: str = "file",
             scaler_fit: str = "train", test_stride: int = 1, overrides: dict | None = None,
             score_validation: bool = False) -> FoldResult:
    """Fit the scaler and the vocabulary on ``train_rows`` (training files only), hold out
    about ``1/n_inner`` of the training files for early stopping, train on every
    ``train_stride``-th remaining row (overlapping windows are near-duplicates), score on
    ``test_rows`` (every ``test_stride``-th one: 1 in every report, more only for smoke
    runs). ``val_rows_max`` caps the validation rows (evenly thinned). ``overrides``: settings
    replaced in ``cfg`` / ``train_cfg`` (:func:`with_overrides`). ``score_validation``: also
    score the validation rows, as ``val_<score>`` (what :func:`choose` compares).

    Leaky options, only for reproducing the source in notebook 02 (see
    :mod:`physml.cnc.leaky`): ``inner="random"`` picks validation rows at random instead of
    whole files; ``scaler_fit="test"`` fits the scaler on the test rows (the source's bug).
    """
    train_rows, test_rows = np.asarray(train_rows), np.asarray(test_rows)
    cfg, train_cfg = with_overrides(cfg, train_cfg, overrides)
    fit_rows, val_rows = inner_validation(ds.files, train_rows, n_inner, train_cfg.seed, inner)
    if scaler_fit not in ("train", "test"):
        raise ValueError(f"scaler_fit must be 'train' or 'test', got {scaler_fit!r}")
    scaler_rows = train_rows if scaler_fit == "train" else test_rows
    res = _fit_and_score(ds, train_rows, scaler_rows, fit_rows[::train_stride], val_rows,
                         test_rows[::test_stride], cfg, train_cfg, out_dir, val_rows_max,
                         score_validation=score_validation)
    res.scores["best_epoch"] = res.history["best_epoch"]
    res.scores["best_val_loss"] = res.history["best_val_loss"]
    return res


def _fit_and_score(ds: Dataset, vocab_rows: np.ndarray, scaler_rows: np.ndarray,
                   fit_rows: np.ndarray, val_rows: np.ndarray, score_rows: np.ndarray | None,
                   cfg: EDConfig, train_cfg: _train.TrainConfig, out_dir: str | Path,
                   val_rows_max: int, *, score_validation: bool) -> FoldResult:
    """Scaler on ``scaler_rows``, vocabulary on the lines of ``vocab_rows``, training on
    ``fit_rows`` with early stopping on ``val_rows`` (evenly thinned to ``val_rows_max``),
    scores on ``score_rows`` (``None``: on the validation rows); ``score_validation``: the
    validation rows' scores too, as ``val_<score>``."""
    scaler = Scaler.fit(ds.inputs.values[scaler_rows], ds.inputs.columns)
    vocab = tokens.Vocabulary.build(ds.targets.line[vocab_rows])
    steps = min(decode_steps(ds.targets.line[vocab_rows]), cfg.max_len - 1)
    table = ds.inputs.table(scaler)
    ids = encode_lines(vocab, ds.targets.line, cfg.max_len)
    val = val_rows[:: max(1, int(np.ceil(len(val_rows) / val_rows_max)))]
    model, hist = fit_encoder_decoder(table, ds.inputs.window_index, ids, ds.targets.command,
                                      fit_rows, val, len(vocab), cfg, train_cfg, out_dir)
    def score(rows):
        return evaluate(model, table, ds.inputs.window_index, ids, ds.targets.command,
                        ds.targets.line, rows, vocab, steps=steps)

    scores = score(val if score_rows is None else score_rows)
    if score_validation:
        on_val = scores if score_rows is None else score(val)
        scores.update({f"val_{k}": v for k, v in on_val.items()})
    return FoldResult(model, scaler, vocab, scores, hist, steps)


def _final_run(ds: Dataset, rows: np.ndarray, _test_rows: np.ndarray, cfg: EDConfig,
               train_cfg: _train.TrainConfig, out_dir: str | Path, *, n_inner: int,
               train_stride: int, val_rows_max: int, overrides: dict) -> FoldResult:
    cfg, train_cfg = with_overrides(cfg, train_cfg, overrides)
    fit_rows, val_rows = inner_validation(ds.files, rows, n_inner, train_cfg.seed)
    return _fit_and_score(ds, rows, rows, fit_rows[::train_stride], val_rows, None, cfg,
                          train_cfg, out_dir, val_rows_max, score_validation=True)


def fit_final(ds: Dataset, cfg: EDConfig, train_cfg: _train.TrainConfig, out_dir: str | Path,
              *, n_inner: int = 5, train_stride: int = 1, val_rows_max: int = 2000,
              candidates: Sequence[dict] = ({},), client=None,
              variants: dict[str, Dataset] | None = None) -> tuple[FoldResult, Dataset]:
    """The model to save and the data set it was trained on: trained on every file except
    the validation files held out for early stopping (chosen on them, never on a test fold).
    Its ``scores`` are the validation scores (no test set is involved). With several
    ``candidates`` (settings as in :func:`cross_validate_choice`), each is trained in
    ``out_dir / "candidate<j>"`` (on ``client`` if given) and the one with the best
    validation score (:data:`CHOICE_SCORE`) is returned, its index as
    ``scores["candidate"]``."""
    datasets, picks = _check_candidates(ds, variants, cfg, train_cfg, candidates)
    rows = np.arange(len(ds.files))
    runs = [Run(key, train_cfg.seed, rows, rows[:0],
                Path(out_dir) / f"candidate{j}" if len(candidates) > 1 else Path(out_dir),
                {"overrides": over}) for j, (key, over) in enumerate(picks)]
    results = run_all(_final_run, datasets, runs, cfg, train_cfg, client=client,
                      n_inner=n_inner, train_stride=train_stride, val_rows_max=val_rows_max)
    for j, res in enumerate(results):
        res.scores["candidate"] = j
    table = pd.DataFrame([{"seed": 0, "fold": 0, **r.scores} for r in results])
    j = int(choose(table)["candidate"].iloc[0])
    return results[j], datasets[picks[j][0]]


def cross_validate(ds: Dataset, split_list: Sequence[tuple[int, object]], cfg: EDConfig,
                   train_cfg: _train.TrainConfig, out_root: str | Path, client=None,
                   **fold_kw) -> tuple[pd.DataFrame, list[FoldResult]]:
    """:func:`run_fold` for every ``(seed, Split)``; the training seed is the split's seed.
    Returns one row of scores per (seed, fold) and the fold results (same order).
    ``client``: run the folds on it (:func:`physml.cnc.folds.run_folds`)."""
    results = run_folds(run_fold, ds, split_list, cfg, train_cfg, out_root, client=client,
                        **fold_kw)
    rows = [{"seed": int(seed), "fold": int(sp.fold), **r.scores}
            for (seed, sp), r in zip(split_list, results, strict=True)]
    return pd.DataFrame(rows), results


#: the validation score a candidate is chosen by (higher is better)
CHOICE_SCORE = "val_token_accuracy_free_running"


def candidate_label(overrides: dict) -> str:
    """``"hidden 32, lr 0.005"``; ``"as configured"`` for no overrides."""
    return ", ".join(f"{k} {v}" for k, v in overrides.items()) or "as configured"


def _check_candidates(ds: Dataset, variants: dict[str, Dataset] | None, cfg: EDConfig,
                      train_cfg: _train.TrainConfig, candidates: Sequence[dict]
                      ) -> tuple[dict[str, Dataset], list[tuple[str, dict]]]:
    """The data sets by ``per_file`` and each candidate's (data set key, other settings);
    refuses an empty list or a bad setting before anything trains."""
    if not candidates:
        raise ValueError("encoder-decoder: no candidate settings to choose from")
    datasets = {ds.inputs.per_file: ds}
    for key, other in (variants or {}).items():
        if other.inputs.per_file != key:
            raise ValueError(f"encoder-decoder: the variant {key!r} was prepared with "
                             f"per_file {other.inputs.per_file!r}")
        if len(other.files) != len(ds.files) or not np.array_equal(other.files, ds.files):
            raise ValueError(f"encoder-decoder: the variant {key!r} has other rows than the "
                             f"data set")
        datasets.setdefault(key, other)
    picks = [_dataset_of(over, datasets, ds.inputs.per_file) for over in candidates]
    for _, over in picks:
        with_overrides(cfg, train_cfg, over)
    return datasets, picks


def choose(table: pd.DataFrame, by: str = CHOICE_SCORE) -> pd.DataFrame:
    """One row per ``(seed, fold)`` of ``table`` (one row per seed, fold and ``candidate``):
    the candidate with the highest ``by``, the lowest candidate index on a tie. Test scores
    play no part. A missing ``by`` is an error naming the rows."""
    bad = table[by].isna() if by in table else pd.Series(True, index=table.index)
    if bad.any():
        raise ValueError(f"choose: no {by!r} for seed/fold/candidate "
                         f"{table.loc[bad, ['seed', 'fold', 'candidate']].values.tolist()}")
    order = table.sort_values(["seed", "fold", by, "candidate"],
                              ascending=[True, True, False, True], kind="stable")
    return order.groupby(["seed", "fold"], sort=True).head(1).reset_index(drop=True)


@dataclass
class Choice:
    """:func:`cross_validate_choice`'s result. ``scores``: the chosen candidate's row per
    (seed, fold) (test scores, ``val_`` scores, ``candidate``, ``label``); ``folds``: their
    fold results, same order; ``candidates``: every candidate's row."""

    scores: pd.DataFrame
    folds: list[FoldResult]
    candidates: pd.DataFrame


def cross_validate_choice(ds: Dataset, split_list: Sequence[tuple[int, object]],
                          cfg: EDConfig, train_cfg: _train.TrainConfig, out_root: str | Path,
                          candidates: Sequence[dict], client=None,
                          variants: dict[str, Dataset] | None = None, **fold_kw) -> Choice:
    """Per ``(seed, Split)``, train every candidate on the fold's training files, each
    early-stopped on the same validation files, and keep the one with the best validation
    score (:func:`choose`): the fold's test files never take part in the choice.

    A candidate is a dict of settings: :class:`EDConfig` fields and ``lr``
    (:func:`with_overrides`; ``{}`` is ``cfg`` itself), and ``per_file``: the inputs'
    per-recording standardisation, ``ds``'s own or a key of ``variants`` (the same data
    prepared with that ``per_file``). Folders ``out_root / "seed<s>_fold<f>" /
    "candidate<j>"``; ``client``: the runs on it (:func:`physml.cnc.folds.run_all`)."""
    datasets, picks = _check_candidates(ds, variants, cfg, train_cfg, candidates)
    grid = [(int(seed), sp, j, key, over, cand)
            for seed, sp in split_list for j, ((key, over), cand) in enumerate(
                zip(picks, candidates, strict=True))]
    runs = [Run(key, seed, sp.train, sp.test,
                Path(out_root) / f"seed{seed}_fold{sp.fold}" / f"candidate{j}",
                {"overrides": over, "score_validation": True})
            for seed, sp, j, key, over, _ in grid]
    results = run_all(run_fold, datasets, runs, cfg, train_cfg, client=client, **fold_kw)
    pairs = enumerate(zip(grid, results, strict=True))
    table = pd.DataFrame([{"seed": seed, "fold": int(sp.fold), "candidate": j,
                           "label": candidate_label(cand), "run": i, **res.scores}
                          for i, ((seed, sp, j, _, _, cand), res) in pairs])
    chosen = choose(table)
    folds = [results[i] for i in chosen["run"]]
    return Choice(chosen.drop(columns="run"), folds, table.drop(columns="run"))


# ------------------------------------------------------------------ saved models


def save_model(model_dir: str | Path, result: FoldResult, *, inputs: Inputs, params: dict,
               commit: str | None) -> Path:
    """Write ``manifest.json``, ``weights.pt`` and ``scaler.json`` to ``model_dir``.

    ``inputs``: the :class:`~physml.cnc.sequences.Inputs` the model was trained on (its
    columns, sources, window and per-file standardisation go into the manifest); a column
    that is not an allowed model input (e.g. the leaky path of notebook 02) raises."""
    check_inputs(inputs.columns)
    d = Path(model_dir)
    d.mkdir(parents=True, exist_ok=True)
    manifest = {"kind": KIND, "input_columns": list(inputs.columns),
                "sources": list(inputs.sources), "window": int(inputs.window_index.shape[1]),
                "per_file": inputs.per_file, "vocab": list(result.vocab.tokens),
                "classes": list(CLASSES), "max_len": result.model.cfg.max_len,
                "decode_steps": result.steps,
                "config": asdict(result.model.cfg), "params": params, "commit": commit}
    torch.save(result.model.state_dict(), d / WEIGHTS)
    (d / SCALER).write_text(json.dumps(result.scaler.to_dict()))
    (d / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return d


class Predictor:
    """A saved encoder–decoder ready to predict recordings (:func:`load_model`).

    ``input_columns``: the only columns it reads. ``ignored_columns``: after
    :meth:`predict`, the input columns present in those recordings that the model never saw
    (e.g. a node it was not trained with); they are reported, never used.
    """

    def __init__(self, model: EncoderDecoder, manifest: dict, scaler: Scaler):
        self.model, self.manifest, self.scaler = model, manifest, scaler
        self.input_columns: list[str] = list(manifest["input_columns"])
        self.vocab = tokens.Vocabulary(tuple(manifest["vocab"]))
        # greedy decoder passes (absent in models saved before it was recorded: max_len - 1)
        self.steps: int | None = manifest.get("decode_steps")
        self.ignored_columns: list[str] = []

    def predict(self, rec: CNCData, batch: int = 2048) -> pd.DataFrame:
        """One row per row of ``rec.rows`` (same order): ``file``, ``command`` (G0..G3) and
        ``line`` (the decoded G-code text). Reads only :attr:`input_columns`; a source of the
        manifest that a file lacks goes through the mask (flag 0), never as zeros."""
        present = rec.mask()
        seen = [s for s in schema.SOURCES if s in present.columns and present[s].any()]
        cols_here = [c for s in seen for c in schema.source_columns(s)]
        self.ignored_columns = [c for c in cols_here if c not in self.input_columns]
        inp = build_inputs(rec, self.input_columns, int(self.manifest["window"]),
                           self.manifest["per_file"])
        table = inp.table(self.scaler)
        idx_t = torch.from_numpy(inp.window_index)
        codes = vocab_type_codes(self.vocab)
        ids, cls = [], []
        for a in range(0, len(table), batch):
            r = torch.arange(a, min(a + batch, len(table)))
            p, c = greedy_decode(self.model, table[idx_t[r]], codes, self.steps)
            ids.append(p)
            cls.append(c)
        lines = ids_to_lines(self.vocab, np.concatenate(ids)) if ids else []
        cls_a = np.concatenate(cls) if cls else np.zeros(0, np.int64)
        return pd.DataFrame({"file": rec.rows["file"].to_numpy(),
                             "command": np.asarray(CLASSES, dtype=object)[cls_a],
                             "line": np.asarray(lines, dtype=object)})


def load_model(model_dir: str | Path) -> Predictor:
    """Read a model written by :func:`save_model`; raises naming a missing or wrong file."""
    d = Path(model_dir)
    for name in (MANIFEST, WEIGHTS, SCALER):
        if not (d / name).is_file():
            raise FileNotFoundError(f"{d / name} is missing (not a saved encoder-decoder)")
    manifest = json.loads((d / MANIFEST).read_text())
    if manifest.get("kind") != KIND:
        raise ValueError(f"{d / MANIFEST}: kind {manifest.get('kind')!r}, expected {KIND!r}")
    check_inputs(manifest["input_columns"])
    scaler = Scaler.from_dict(json.loads((d / SCALER).read_text()))
    if list(scaler.columns) != list(manifest["input_columns"]):
        raise ValueError(f"{d / SCALER}: columns differ from the manifest's input_columns")
    cfg = EDConfig(**manifest["config"])
    n_features = len(manifest["input_columns"]) + len(manifest["sources"])
    model = EncoderDecoder(n_features, len(manifest["vocab"]), cfg)
    model.load_state_dict(torch.load(d / WEIGHTS, weights_only=True))
    model.eval()
    return Predictor(model, manifest, scaler)
