"""Synthetic recordings with a known sensor → line relation, in the loader's exact layout.

For tests and documentation examples of the neural models: every file runs the same small
program (:data:`PROGRAM`) line by line; each line lasts a random number of rows; the 17
channels of node ``frame_l2`` carry the index of the executing line (plus independent noise),
every other sensor channel is noise. A model that learns anything should read the line off
that node.

>>> d = recordings(n_files=2, seed=0)
>>> sorted(d.files["file"]), d.rows["gcode_string"].iloc[0]
(['face_001', 'face_002'], 'G0 X1. Y1.')
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import schema
from .data import CNCData

#: ``(line number, text)`` of the synthetic program: all four motion classes occur.
PROGRAM: tuple[tuple[int, str], ...] = (
    (1, "G0 X1. Y1."), (2, "G1 X2. Y1. F10."), (3, "G2 X3. Y0. R1."), (4, "G1 Z-0.1"),
    (5, "G3 X1. Y1. R1."), (6, "G0 Z1."),
)
SIGNAL_NODE = "frame_l2"


def recordings(n_files: int = 4, seed: int = 0, rows_per_line: tuple[int, int] = (4, 9),
               extra_sources: Sequence[str] = (), absent: dict[str, Sequence[str]] | None = None,
               noise: float = 0.1) -> CNCData:
    """``n_files`` synthetic recordings named ``face_001 ...`` (kind/operation ``face``).

    ``extra_sources``: sources beyond :data:`physml.cnc.features.COMMON_SOURCES` to include;
    ``absent``: ``{file: [source, ...]}`` sources missing from a file (NaN and mask False, as
    the loader gives them). Each line lasts ``rows_per_line[0] .. rows_per_line[1] - 1`` rows.
    """
    from .features import COMMON_SOURCES

    rng = np.random.default_rng(seed)
    absent = absent or {}
    sources = list(COMMON_SOURCES) + [s for s in extra_sources if s not in COMMON_SOURCES]
    frames, metas = [], []
    for k in range(n_files):
        name = f"face_{k + 1:03d}"
        reps = rng.integers(rows_per_line[0], rows_per_line[1], size=len(PROGRAM))
        li = np.repeat(np.arange(len(PROGRAM)), reps)
        n = li.size
        block = np.full((n, len(schema.INPUT_COLUMNS)), np.nan, dtype=np.float32)
        present = {s: s in sources and s not in absent.get(name, ()) for s in schema.SOURCES}
        for j, c in enumerate(schema.INPUT_COLUMNS):
            src = schema.source_of(c)
            if present[src]:
                block[:, j] = rng.normal(0.0, noise, n) + (li if src == SIGNAL_NODE else 0.0)
        num = np.array([PROGRAM[i][0] for i in li], dtype=np.int64)
        text = np.array([PROGRAM[i][1] for i in li], dtype=object)
        ctrl = {"stat": np.full(n, 5.0), "line": num.astype(float),
                "posx": li * 0.5, "posy": li * 0.25, "posz": np.zeros(n),
                "feed": np.full(n, 10.0), "momo": np.ones(n)}
        rows = pd.DataFrame({"file": name, "row": np.arange(n), "t_s": np.arange(n) * 0.25,
                             **ctrl, "gcode_line": num, "gcode_string": text})
        frames.append(pd.concat([rows, pd.DataFrame(block, columns=schema.INPUT_COLUMNS)],
                                axis=1))
        metas.append({**schema.parse_file_name(f"{name}_aligned.csv"), "n_rows": n,
                      "dropped_tail": 0, **{f"has_{s}": present[s] for s in schema.SOURCES}})
    return CNCData(pd.concat(frames, ignore_index=True), pd.DataFrame(metas))
