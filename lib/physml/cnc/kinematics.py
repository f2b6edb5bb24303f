"""A kinematic model of each G-code line: path length and feed → expected duration.

The programs of the recordings are written in inches (``F40.`` is reported by the controller
as ``feed = 1016`` mm/min, i.e. 40 in/min) with absolute coordinates (``G90``), feed per
minute (``G94``) and arcs in the XY plane (``G17``). A line's motion is:

- ``G0`` (rapid): straight line at the machine's rapid rate (a parameter: the machine and its
  configured rate are not documented by the source, so it is a stated assumption);
- ``G1``: straight line at the modal feed ``F`` (units per minute);
- ``G2``/``G3`` (clockwise / counter-clockwise arc in XY, helical if Z changes): the arc from
  its radius ``R`` (``R < 0`` selects the arc longer than a half circle) or its centre offset
  ``I J`` from the start point; a full circle when start equals end with ``I J``.

Modal state (motion mode, feed, position) carries from line to line, as in
:func:`physml.cnc.tokens.modal_commands`. Lines with no axis word move nothing and take no
time. Lines that no recording reported are absent from a recovered program, so a line's start
point is the end of the previous *known* line (a small error on the few lines it concerns).

Durations ignore acceleration (trapezoidal velocity profiles make short segments slower than
their feed says); the alignment (:mod:`physml.cnc.hybrid`) lets each row advance faster or
slower than the kinematic clock for that reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import tokens

MOTION_MODES: tuple[str, ...] = ("G0", "G1", "G2", "G3")


def _words(line: str) -> dict[str, str]:
    """Address letter → value text (commands under their own word, e.g. ``{"G1": ""}``)."""
    toks = tokens.tokenize(line)
    out: dict[str, str] = {}
    i = 0
    while i < len(toks):
        t = toks[i]
        if tokens.token_type(t) == "command":
            out[t] = ""
            i += 1
        else:
            out[t] = toks[i + 1]
            i += 2
    return out


def arc_length(start: Sequence[float], end: Sequence[float], clockwise: bool,
               radius: float | None = None, centre_offset: Sequence[float] | None = None
               ) -> float:
    """Length of an XY arc (helical when z changes) from ``start`` to ``end`` (x, y, z).

    Give either ``radius`` (G-code ``R``; negative for the arc longer than a half circle) or
    ``centre_offset`` ``(I, J)`` relative to ``start``. Units are those of the coordinates.

    >>> round(arc_length((1, 0, 0), (0, 1, 0), clockwise=False, radius=1.0), 6)  # quarter circle
    1.570796
    >>> round(arc_length((1, 0, 0), (0, 1, 0), clockwise=False, centre_offset=(-1, 0)), 6)
    1.570796
    """
    x0, y0, z0 = map(float, start)
    x1, y1, z1 = map(float, end)
    if (radius is None) == (centre_offset is None):
        raise ValueError("arc_length: give exactly one of radius (R) or centre_offset (I, J)")
    if radius is not None:
        r = abs(float(radius))
        chord = math.hypot(x1 - x0, y1 - y0)
        if r == 0 or chord > 2 * r * (1 + 1e-6):
            raise ValueError(f"arc with R={radius} cannot join points {chord:.6g} apart")
        half = math.asin(min(1.0, chord / (2 * r)))
        sweep = 2 * half if radius > 0 else 2 * math.pi - 2 * half
    else:
        i, j = map(float, centre_offset)
        cx, cy = x0 + i, y0 + j
        r = math.hypot(i, j)
        if r == 0:
            raise ValueError("arc with I=J=0 has no radius")
        a0 = math.atan2(y0 - cy, x0 - cx)
        a1 = math.atan2(y1 - cy, x1 - cx)
        sweep = (a0 - a1) if clockwise else (a1 - a0)
        sweep %= 2 * math.pi
        if sweep < 1e-12:
            sweep = 2 * math.pi
    return math.hypot(r * sweep, z1 - z0)


def line_motions(program_lines: Sequence[tuple[int, str]], rapid_rate: float,
                 start: Sequence[float] = (0.0, 0.0, 0.0),
                 feeds: dict[int, float] | None = None,
                 modes: dict[int, str] | None = None,
                 machine_move_s: float = 0.0) -> pd.DataFrame:
    """Motion of each line of a program, modal state carried in line-number order.

    ``program_lines``: ``(line number, text)`` pairs. ``rapid_rate``: G0 speed in program units
    per minute (> 0). ``start``: position before the first line.
    ``feeds``: ``{line: feed}`` (units/min) setting the feed in force on a line whose text
    does not say it. The recordings report only some lines, and several programs' ``F`` words
    sit on lines never reported (P2 cuts at F7.3 but no reported line says so); the feed in
    force is then recovered from training recordings (:func:`feeds_from_reports`). An explicit
    ``F`` word in the line's text always wins.
    ``modes``: ``{line: "G0".."G3"}``, the motion mode in force on a line whose text has no
    motion word, recovered the same way (:func:`physml.cnc.tokens.reported_modes`; P2's switch
    from G0 to G1 sits on an unreported line, so the text alone would call 700 cutting lines
    rapids). An explicit motion word wins.
    ``machine_move_s``: seconds given to a ``G53`` move (machine coordinates: its length in
    work coordinates is unknown); an assumption the caller states.

    Returns one row per line with ``line text mode length feed seconds x y z`` where ``mode`` is
    the motion mode in force (``"none"`` when the line moves nothing), ``length`` the path length
    (program units), ``feed`` the speed used (units/min), ``seconds`` the duration and ``x y z``
    the end point, ``approximate`` True where an arc could not close from the start point
    because unreported lines precede it and not every axis has been restated since (its chord
    length is used instead).
    Raises ``ValueError`` naming the line for an arc plane other than G17, a feed move before
    any ``F``, or an impossible arc right after its predecessor.
    """
    if not rapid_rate > 0:
        raise ValueError(f"rapid_rate must be > 0 units/min, got {rapid_rate}")
    pos = np.array(start, dtype=float)
    mode: str | None = None
    feed: float | None = None
    recs = []
    prev: int | None = None
    unsure: set[str] = set()
    for ln, text in sorted(program_lines):
        w = _words(text)
        if "G18" in w or "G19" in w:
            raise ValueError(f"line {ln} {text!r}: only arcs in the XY plane (G17) are modelled")
        explicit = [m for m in MOTION_MODES if m in w]
        if explicit:
            mode = explicit[0]
        elif modes and ln in modes:
            mode = modes[ln]
        if "F" in w:
            feed = float(w["F"])
        elif feeds and ln in feeds:
            feed = float(feeds[ln])
        machine = "G53" in w  # machine coordinates: a move we cannot place in work coordinates
        moves = any(a in w for a in "XYZ")
        if mode in ("G2", "G3") and moves and not any(a in w for a in "RIJ"):
            mode = "G1"  # same repair as tokens.modal_commands: an unseen line switched to G1
        if prev is not None and ln != prev + 1:
            unsure = {"X", "Y", "Z"}  # unreported lines may have moved any axis
        approx = False
        new = pos.copy()
        for k, a in enumerate("XYZ"):
            if a in w:
                new[k] = float(w[a])
        length, speed, m_out = 0.0, float("nan"), "none"
        if moves and mode is not None:
            m_out = mode
            if machine:
                # ``G53 G0 Z0.``: a retract in machine coordinates (height unknown in work
                # coordinates); modelled as zero length, so it takes no time
                length = 0.0
                new = pos.copy()
            elif mode in ("G0", "G1"):
                length = float(np.linalg.norm(new - pos))
            else:
                try:
                    if "R" in w:
                        length = arc_length(pos, new, mode == "G2", radius=float(w["R"]))
                    else:
                        length = arc_length(pos, new, mode == "G2",
                                            centre_offset=(float(w.get("I", 0.0)),
                                                           float(w.get("J", 0.0))))
                except ValueError as exc:
                    if not unsure:
                        raise ValueError(f"line {ln} {text!r}: {exc}") from exc
                    # the start point is the end of an earlier line (unreported lines in
                    # between), so the arc may not close: the chord stands in, flagged
                    length = float(np.linalg.norm(new - pos))
                    approx = True
            if mode == "G0":
                speed = rapid_rate
            else:
                if feed is None:
                    raise ValueError(f"line {ln} {text!r}: feed move before any F word")
                speed = feed
        seconds = 60.0 * length / speed if length > 0 else 0.0
        if machine and m_out != "none":
            seconds = float(machine_move_s)
        recs.append({"line": int(ln), "text": text, "mode": m_out, "length": length,
                     "feed": speed, "seconds": seconds,
                     "x": new[0], "y": new[1], "z": new[2], "approximate": approx})
        unsure -= {a for a in "XYZ" if a in w}
        pos = new
        prev = int(ln)
    return pd.DataFrame(recs)


def expected_rows(seconds: np.ndarray, rows_per_second: float) -> np.ndarray:
    """Expected status rows spent on each line: ``seconds * rows_per_second``. Shape kept."""
    if not rows_per_second > 0:
        raise ValueError(f"rows_per_second must be > 0, got {rows_per_second}")
    return np.asarray(seconds, dtype=float) * rows_per_second


#: Controller ``feed`` is reported in mm/min; the programs are written in inches.
MM_PER_INCH = 25.4


def feeds_from_reports(rows: pd.DataFrame, units_per_mm: float = 1.0 / MM_PER_INCH
                       ) -> dict[int, float]:
    """Feed in force on each line (program units/min), from training recordings' reports.

    ``rows``: rows of the training files of ONE program with ``gcode_line``, ``feed`` (mm/min)
    and ``momo`` (controller motion mode; only feed moves, ``momo`` 1-3, are used). The median
    over rows is taken per line. This reads the controller's report to reconstruct the program
    text (its unreported ``F`` words), never to predict a recording: the test files of a fold
    are not passed here.
    """
    need = {"gcode_line", "feed", "momo"} - set(rows.columns)
    if need:
        raise ValueError(f"feeds_from_reports: rows lack columns {sorted(need)}")
    m = rows[rows["momo"].isin([1.0, 2.0, 3.0]) & (rows["feed"] > 0)]
    med = m.groupby("gcode_line")["feed"].median() * units_per_mm
    return {int(k): float(v) for k, v in med.items()}
