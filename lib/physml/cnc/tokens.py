"""G-code lines as token sequences, the programs behind the recordings, and command classes.

Tokenizer (documented, lossless)
--------------------------------
A line is a list of words separated by single spaces (``G1 Z0.025 F7.3``). Each word becomes:

- one *command* token when its letter is G, M or T (``G1``, ``G55``, ``M30``): the whole word;
- an *address* token (the letter: ``X Y Z I J K R F S P Q``) followed by a *value* token that
  keeps the number exactly as written (``0.025``, ``-0.1254``, ``0.``): no rounding, so
  :func:`detokenize` (join words with one space) gives back the original string byte for byte.

Token types are ``command``, ``axis`` and ``value`` (:func:`token_types`); a vocabulary maps
tokens to ids with the specials ``<pad> <bos> <eos> <unk>`` first. A line that does not follow
this grammar (empty word, unknown letter, malformed number, leading/trailing/double spaces)
raises ``ValueError`` naming the line.

Programs
--------
Only a few programs were run. Each recording reports ``(gcode_line, gcode_string)`` pairs for
the lines it saw. :func:`recover_programs` groups recordings whose pairs never disagree and
overlap strongly (union-find), and a program is the union of its recordings' pairs.

Command classes
---------------
The motion mode is modal: ``X3.275 Y0.3746 R0.083`` continues the last G0/G1/G2/G3.
:func:`command_classes` walks a program in line-number order and fills the mode forward. The
recovered text lacks the lines no recording reported, and a mode switch can sit on one of them
(P2 switches from its G0 approach to G1 cutting on an unreported line, so the text alone calls
3,584 cutting rows rapids). Where a line's text has no motion word, the mode the controller
reported on that line (``momo``, :func:`reported_modes`) is the mode in force; ``momo`` serves
the labels only, never a model's input.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

SPECIALS: tuple[str, ...] = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = range(4)
COMMAND_LETTERS = frozenset("GMT")
ADDRESS_LETTERS = frozenset("XYZIJKRFSPQ")
MOTION_CLASSES: tuple[str, ...] = ("G0", "G1", "G2", "G3")
_WORD = re.compile(r"^([A-Z])([-+]?(?:\d+\.?\d*|\.\d+))$")


def tokenize(line: str) -> list[str]:
    """Tokens of one G-code line (see the module docstring).

    >>> tokenize("G1 Z0.025 F7.3")
    ['G1', 'Z', '0.025', 'F', '7.3']
    >>> tokenize("X3.2871 Z0.")
    ['X', '3.2871', 'Z', '0.']
    """
    if not isinstance(line, str) or line == "":
        raise ValueError(f"G-code line must be a non-empty string, got {line!r}")
    out: list[str] = []
    for word in line.split(" "):
        m = _WORD.match(word)
        if m is None:
            raise ValueError(f"G-code line {line!r}: word {word!r} is not LETTER+NUMBER "
                             "(single spaces between words)")
        letter, number = m.groups()
        if letter in COMMAND_LETTERS:
            out.append(word)
        elif letter in ADDRESS_LETTERS:
            out.extend((letter, number))
        else:
            raise ValueError(f"G-code line {line!r}: unknown address letter {letter!r}")
    return out


def detokenize(tokens: Sequence[str]) -> str:
    """Inverse of :func:`tokenize`: ``detokenize(tokenize(s)) == s`` for every valid line.

    Raises ``ValueError`` when the sequence breaks the grammar (a value without its address,
    an address without its value, a special token).
    """
    words: list[str] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        kind = token_type(t)
        if kind == "command":
            words.append(t)
            i += 1
        elif kind == "axis" and i + 1 < len(tokens) and token_type(tokens[i + 1]) == "value":
            words.append(t + tokens[i + 1])
            i += 2
        else:
            raise ValueError(f"token sequence {list(tokens)!r} breaks the grammar at {i} ({t!r})")
    return " ".join(words)


def token_type(token: str) -> str:
    """``"command"``, ``"axis"``, ``"value"`` or ``"special"``."""
    if token in SPECIALS:
        return "special"
    if len(token) == 1 and token in ADDRESS_LETTERS:
        return "axis"
    if token[:1] in COMMAND_LETTERS and _WORD.match(token):
        return "command"
    if re.fullmatch(r"[-+]?(?:\d+\.?\d*|\.\d+)", token):
        return "value"
    raise ValueError(f"not a G-code token: {token!r}")


def token_types(tokens: Sequence[str]) -> list[str]:
    """:func:`token_type` of each token."""
    return [token_type(t) for t in tokens]


@dataclass(frozen=True)
class Vocabulary:
    """Token ↔ id map; ids 0..3 are ``<pad> <bos> <eos> <unk>``."""

    tokens: tuple[str, ...]

    @classmethod
    def build(cls, lines: Iterable[str]) -> Vocabulary:
        """Every token of ``lines``, specials first, then sorted (deterministic)."""
        seen = sorted({t for s in set(lines) for t in tokenize(s)})
        return cls(SPECIALS + tuple(seen))

    def __len__(self) -> int:
        return len(self.tokens)

    @functools.cached_property
    def index(self) -> dict[str, int]:
        """Token → id (built once per vocabulary; ``encode`` used to rebuild it per line)."""
        return {t: i for i, t in enumerate(self.tokens)}

    def encode(self, line: str, max_len: int | None = None) -> np.ndarray:
        """``[<bos>, tokens..., <eos>]`` as int ids (unknown → ``<unk>``), padded to ``max_len``."""
        idx = self.index
        ids = [BOS] + [idx.get(t, UNK) for t in tokenize(line)] + [EOS]
        if max_len is not None:
            if len(ids) > max_len:
                raise ValueError(f"line {line!r} needs {len(ids)} tokens > max_len {max_len}")
            ids += [PAD] * (max_len - len(ids))
        return np.asarray(ids, dtype=np.int64)

    def decode(self, ids: Sequence[int]) -> list[str]:
        """Tokens up to the first ``<eos>`` (``<bos>``/``<pad>`` skipped)."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i in (BOS, PAD):
                continue
            out.append(self.tokens[i])
        return out


def token_accuracy(pred: Sequence[str], true: Sequence[str]) -> float:
    """Fraction of the true tokens matched at the same position (EOS not counted).

    A shorter prediction scores its missing positions as wrong; extra predicted tokens do not
    add to the denominator (free-running, per-line, as in issue 11).

    >>> token_accuracy(["G1", "X", "1."], ["G1", "X", "2.", "Y", "3."])
    0.4
    """
    if len(true) == 0:
        raise ValueError("token_accuracy: empty true sequence")
    hits = sum(p == t for p, t in zip(pred, true, strict=False))
    return hits / len(true)


def line_token_scores(pred_lines: Sequence[str], true_lines: Sequence[str]) -> pd.DataFrame:
    """Per row: tokens matched and tokens in the true line, total and per token type.

    Returns a frame with columns ``n``, ``hit``, and ``n_<type>``, ``hit_<type>`` for the types
    command/axis/value, plus ``exact`` (bool). Shapes: both inputs ``(n,)``.
    """
    if len(pred_lines) != len(true_lines):
        raise ValueError(f"{len(pred_lines)} predictions for {len(true_lines)} lines")
    cache: dict[tuple[str, str], tuple] = {}
    types = ("command", "axis", "value")
    rows = []
    for p, t in zip(pred_lines, true_lines, strict=False):
        key = (p, t)
        if key not in cache:
            tt = tokenize(t)
            pt = tokenize(p) if p else []
            ty = token_types(tt)
            hit = [a == b for a, b in zip(pt, tt, strict=False)]
            hit += [False] * max(0, len(tt) - len(pt))
            rec = [len(tt), sum(hit)]
            for k in types:
                rec += [sum(1 for y in ty if y == k),
                        sum(h for h, y in zip(hit, ty, strict=True) if y == k)]
            rec.append(p == t)
            cache[key] = tuple(rec)
        rows.append(cache[key])
    cols = ["n", "hit"] + [f"{a}_{k}" for k in types for a in ("n", "hit")] + ["exact"]
    return pd.DataFrame(rows, columns=cols)


# ---------------------------------------------------------------- programs

@dataclass(frozen=True)
class Program:
    """A recovered program: ``lines`` maps line number → text; ``files`` ran it."""

    name: str
    lines: dict[int, str]
    files: tuple[str, ...]

    def ordered(self) -> list[tuple[int, str]]:
        return sorted(self.lines.items())


def _pairs(rows: pd.DataFrame) -> dict[str, dict[int, str]]:
    out: dict[str, dict[int, str]] = {}
    u = rows[["file", "gcode_line", "gcode_string"]].drop_duplicates()
    for f, g in u.groupby("file", sort=False):
        m: dict[int, str] = {}
        for ln, s in zip(g["gcode_line"].tolist(), g["gcode_string"].tolist(), strict=False):
            if ln in m and m[ln] != s:
                raise ValueError(f"file {f}: gcode_line {ln} has two texts {m[ln]!r} / {s!r}")
            m[ln] = s
        out[str(f)] = m
    return out


def recover_programs(rows: pd.DataFrame, min_overlap: float = 0.3) -> list[Program]:
    """Group recordings into programs from their ``(gcode_line, gcode_string)`` pairs alone.

    Two files are joined when they share at least ``min_overlap`` of the smaller file's lines
    and no shared line number has different text (union-find, so chains join too). Program
    names are ``P1, P2, ...`` ordered by their first file's name. Raises ``ValueError`` if a
    merged program ends up with two texts for one line number.
    """
    pairs = _pairs(rows)
    names = sorted(pairs)
    parent = {n: n for n in names}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    keys = {n: set(pairs[n]) for n in names}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            common = keys[a] & keys[b]
            if len(common) < min_overlap * min(len(keys[a]), len(keys[b])):
                continue
            if any(pairs[a][k] != pairs[b][k] for k in common):
                continue
            parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(find(n), []).append(n)
    progs = []
    for k, members in enumerate(sorted(groups.values(), key=lambda m: m[0])):
        lines: dict[int, str] = {}
        for f in members:
            for ln, s in pairs[f].items():
                if lines.setdefault(ln, s) != s:
                    raise ValueError(f"program of {members[0]}: line {ln} has texts "
                                     f"{lines[ln]!r} and {s!r} (file {f})")
        progs.append(Program(f"P{k + 1}", lines, tuple(members)))
    return progs


def program_of_file(programs: Sequence[Program]) -> dict[str, str]:
    """``{file: program name}``."""
    return {f: p.name for p in programs for f in p.files}


def motion_word(line: str) -> str | None:
    """The explicit G0/G1/G2/G3 word of a line, or ``None`` when it has none (modal).

    >>> motion_word("G0 X3.3121 Y0.0427"), motion_word("Z0.6")
    ('G0', None)
    """
    found = [t for t in tokenize(line) if t in MOTION_CLASSES]
    if len(found) > 1:
        raise ValueError(f"G-code line {line!r} has two motion words {found}")
    return found[0] if found else None


def modal_commands(program_lines: Sequence[tuple[int, str]],
                   reported: dict[int, str] | None = None) -> dict[int, str | None]:
    """Motion mode in force on each line, filled forward in line-number order.

    ``program_lines``: ``(line number, text)`` pairs (not every line of the program: lines no
    recording saw are missing). Lines before the first motion word get ``None``.
    ``reported``: ``{line: "G0".."G3"}``, the mode the controller reported in force on a line
    (:func:`reported_modes`). It sets the mode of a line whose text has no motion word (a switch
    made on an unreported line is then not missed) and the fill carries it on; an explicit
    motion word always wins.
    Without a report, one geometric rule repairs the gaps: an arc needs a radius or centre, so a
    modal line without ``R``/``I``/``J``/``K`` while the filled mode is G2/G3 means an unseen
    line switched to linear motion: it gets ``G1`` (the mode then stays G1).
    A line with no axis word (``G55``, ``T2``, ``M30``: set-up and program end) moves nothing
    and gets ``None`` ("none"), while the mode carries on past it.
    """
    mode: str | None = None
    out: dict[int, str | None] = {}
    for ln, s in sorted(program_lines):
        w = motion_word(s)
        if w is not None:
            mode = w
        elif reported and ln in reported:
            mode = reported[ln]
        elif mode in ("G2", "G3") and not any(t in ("R", "I", "J", "K") for t in tokenize(s)):
            mode = "G1"
        moves = any(token_type(t) == "axis" for t in tokenize(s))
        out[ln] = mode if moves else None
    return out


#: Controller ``momo`` codes of the motion modes.
MOMO_MODES: dict[float, str] = {0.0: "G0", 1.0: "G1", 2.0: "G2", 3.0: "G3"}


def reported_modes(rows: pd.DataFrame) -> dict[int, str]:
    """Motion mode in force on each line, the most frequent controller ``momo`` report over
    the rows of ONE program (``gcode_line``, ``momo``; codes 0-3 only; ties to the lower code).
    It reconstructs what the program text says on lines no recording reported, for labels and
    the kinematic timelines (from training files only there); never a model's input."""
    need = {"gcode_line", "momo"} - set(rows.columns)
    if need:
        raise ValueError(f"reported_modes: rows lack columns {sorted(need)}")
    m = rows[rows["momo"].isin(list(MOMO_MODES))]
    c = m.groupby(["gcode_line", "momo"]).size().reset_index(name="n")
    c = c.sort_values(["gcode_line", "n", "momo"], ascending=[True, False, True])
    top = c.drop_duplicates("gcode_line")
    return {int(k): MOMO_MODES[float(v)] for k, v in zip(top["gcode_line"], top["momo"],
                                                         strict=True)}


def command_classes(rows: pd.DataFrame, programs: Sequence[Program],
                    reports: bool = True) -> np.ndarray:
    """Command class (``G0 G1 G2 G3`` or ``"none"``) of every row, modal state filled forward
    through the row's program in line order (:func:`modal_commands`). ``reports=True`` (needs a
    ``momo`` column; ``ValueError`` otherwise) fills lines without a motion word with the mode
    the controller reported on them over the program's rows in ``rows``
    (:func:`reported_modes`); ``False`` reads the text alone. Shape ``(n_rows,)``, object."""
    if reports and "momo" not in rows.columns:
        raise ValueError("command_classes(reports=True): rows have no controller column 'momo'; "
                         "pass reports=False to fill the modes from the G-code text alone")
    prog = program_of_file(programs)
    files = rows["file"].to_numpy()
    modes = {}
    for p in programs:
        rep = reported_modes(rows[np.isin(files, list(p.files))]) if reports else None
        modes[p.name] = modal_commands(p.ordered(), rep)
    lines = rows["gcode_line"].to_numpy()
    out = np.empty(len(rows), dtype=object)
    for i, (f, ln) in enumerate(zip(files, lines, strict=False)):
        if f not in prog:
            raise KeyError(f"file {f} belongs to no recovered program")
        m = modes[prog[f]][int(ln)]
        out[i] = m if m is not None else "none"
    return out
