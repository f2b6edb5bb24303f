"""Run tables of a research-profile render kept in the repository (``data/tracks/research/``),
so that a default render can set its small-budget answer beside the converged one.

Notebook 04 trains its physics-loss ablation for a few hundred optimiser steps per run in the
default profile (a minute) and for >= 20,000 in the research profile (about an hour reduced,
far longer in full, on 2 cores). A research render given ``record_to`` writes its run tables
with :func:`save`; that file, copied to ``data/tracks/research/``, is read back by :func:`load`
in every other render, which recomputes each CI and verdict from the per-seed values with the
same functions as for its own runs (nothing is copied from the research report's text).

Format (JSON): ``kind`` (:data:`KIND`), ``format`` (:data:`FORMAT`), ``notebook``, ``params``
(the parameters the runs were trained with), ``git`` {commit, dirty}, ``date_utc``, ``command``
(the render that re-creates the file), ``tables`` {name: [row, ...]}, each row holding the
:data:`COLUMNS` its run table has. :func:`load` raises :class:`RecordError` naming the file and
the field that is missing or malformed.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from physml.jsonfile import read_object

KIND = "tracks.recorded_runs"
FORMAT = 1
COLUMNS = ("setting", "arch", "model", "n_train", "seed", "label", "steps", "optimizer_steps",
           "pos_mean_mm", "pos_95_mm", "slope_mean", "low_p_pos_mean_mm")
"""Columns of a run table that a record keeps (those present)."""
REQUIRED = {"kind": str, "format": int, "notebook": str, "params": dict, "git": dict,
            "date_utc": str, "command": str, "tables": dict}
ROW_REQUIRED = ("seed", "label", "optimizer_steps", "pos_mean_mm")
"""Columns every recorded row must hold (the CIs are over seeds of pos_mean_mm)."""


class RecordError(ValueError):
    """A recorded-runs file that cannot be used, naming the file and the field."""


@dataclass(frozen=True)
class Record:
    """A loaded record: its run ``tables`` (name -> DataFrame) and where they came from."""

    path: Path
    tables: dict[str, pd.DataFrame]
    params: dict
    commit: str | None
    dirty: bool | None
    date_utc: str
    command: str

    def provenance(self) -> str:
        """One sentence: the command, the commit (and a dirty tree) and the date."""
        commit = (self.commit or "unknown")[:10] + (" (uncommitted changes in the tree)"
                                                    if self.dirty else "")
        return (f"recorded by `{self.command}` at commit {commit} on {self.date_utc[:10]} "
                f"({self.path.name})")


def _plain(v):
    """A JSON value for one table cell (numpy scalars as Python numbers)."""
    if isinstance(v, np.generic):
        return v.item()
    return v


def render_command(notebook: str, params: dict, profile: str = "research") -> str:
    """The ``physml render`` command line that re-runs ``notebook`` (a path under the
    repository) in ``profile`` with ``params`` (each ``-p 'key=value'``, lists as JSON, which
    the render's YAML reads).

    >>> render_command("notebooks/tracks/04.ipynb", {"seeds": [0, 1], "size": "small"})
    "physml render notebooks/tracks/04.ipynb --profile research -p 'seeds=[0, 1]' -p 'size=small'"
    """
    return " ".join([f"physml render {notebook} --profile {profile}"] + [
        f"-p '{k}={json.dumps(v) if isinstance(v, (list, tuple, dict)) else v}'"
        for k, v in params.items()])


def save(path: str | Path, tables: dict[str, pd.DataFrame], *, notebook: str, params: dict,
         command: str, git: dict | None = None) -> Path:
    """Write the :data:`COLUMNS` of each run table in ``tables`` and their provenance to
    ``path`` (JSON). ``git``: {commit, dirty} of the code that trained them (default: this
    repository's now). Raises RecordError if a table lacks a :data:`ROW_REQUIRED` column."""
    from physml import provenance
    from physml.paths import repo_root

    out = {}
    for name, t in tables.items():
        missing = [c for c in ROW_REQUIRED if c not in t.columns]
        if missing:
            raise RecordError(f"recorded.save: table {name!r} lacks columns {missing}")
        cols = [c for c in COLUMNS if c in t.columns]
        out[name] = [{c: _plain(v) for c, v in row.items()}
                     for row in t[cols].to_dict("records")]
    doc = {"kind": KIND, "format": FORMAT, "notebook": notebook, "params": params,
           "git": git if git is not None else provenance.git_state(repo_root()),
           "date_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
           "command": command, "tables": out}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    return path


def load(path: str | Path) -> Record:
    """Read and check a record written by :func:`save`."""
    path = Path(path)
    doc = read_object(path, RecordError, "recorded-runs file")
    for key, typ in REQUIRED.items():
        if key not in doc:
            raise RecordError(f"{path}: missing field {key!r}")
        if not isinstance(doc[key], typ):
            raise RecordError(f"{path}: field {key!r} must be {typ.__name__}, got "
                              f"{type(doc[key]).__name__}")
    if doc["kind"] != KIND:
        raise RecordError(f"{path}: kind {doc['kind']!r} is not {KIND!r}")
    if doc["format"] != FORMAT:
        raise RecordError(f"{path}: format {doc['format']} (this code reads {FORMAT})")
    tables = {}
    for name, rows in doc["tables"].items():
        if not isinstance(rows, list) or not rows:
            raise RecordError(f"{path}: tables.{name} must be a non-empty list of rows")
        for i, row in enumerate(rows):
            missing = [c for c in ROW_REQUIRED if not isinstance(row, dict) or c not in row]
            if missing:
                raise RecordError(f"{path}: tables.{name}[{i}] lacks {missing}")
            if not (isinstance(row["pos_mean_mm"], (int, float))
                    and np.isfinite(row["pos_mean_mm"])):
                raise RecordError(f"{path}: tables.{name}[{i}].pos_mean_mm is not a finite "
                                  f"number: {row['pos_mean_mm']!r}")
        tables[name] = pd.DataFrame(rows)
    git = doc["git"]
    return Record(path, tables, doc["params"], git.get("commit"), git.get("dirty"),
                  doc["date_utc"], doc["command"])
