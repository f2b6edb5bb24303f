"""Read CNC recordings: the original ``*_aligned.csv[.gz]`` files and the shipped columnar copy.

Both paths give the same :class:`CNCData`: one pandas frame of rows (every file concatenated)
and one frame of files. Every row frame has the same columns whatever the file held:

- ``file`` (str), ``row`` (int, 0-based position in the file), ``t_s`` (float64, seconds since
  the file's first row, from ``t_console``);
- every column of :data:`~physml.cnc.schema.INPUT_COLUMNS` as float32; a source (node or
  motor group) absent from a file is NaN there **and** ``False`` in the files frame's
  ``has_<source>`` mask column; NaN never appears in a present source;
- :data:`~physml.cnc.schema.KEPT_CONTROLLER_FIELDS` (float64; never model inputs);
- ``gcode_line`` (int64) and ``gcode_string`` (str).

Errors: a malformed file raises :class:`RecordingError` naming the file, the row (0-based data
row and the 1-based CSV line) and the column.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import schema

SHIPPED_ROWS = "rows.parquet"
SHIPPED_FILES = "files.parquet"
CHECKSUMS = "SHA256SUMS"


class RecordingError(ValueError):
    """A recording that cannot be read as documented; names file, row and column."""

    def __init__(self, file: str, message: str, row: int | None = None,
                 column: str | None = None):
        self.file, self.row, self.column = file, row, column
        where = [f"file {file}"]
        if row is not None:
            where.append(f"row {row} (CSV line {row + 2})")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(", ".join(where) + f": {message}")


class ChecksumError(RuntimeError):
    """A shipped data file whose SHA-256 differs from ``SHA256SUMS``."""


@dataclass
class Recording:
    """One file read by :func:`read_recording`.

    ``rows``: frame with the columns listed in the module docstring (without ``file``).
    ``present``: ``{source: bool}`` for every source in :data:`schema.SOURCES`.
    ``ignored``: columns of the file that are neither inputs, controller fields nor targets
    (e.g. a node this package does not know); they are reported, never used.
    ``dropped_tail``: rows dropped at the end because they carry neither target nor sensors
    (only with ``untargeted="drop_tail"``).
    """

    name: str
    rows: pd.DataFrame
    present: dict[str, bool]
    ignored: tuple[str, ...] = ()
    dropped_tail: int = 0
    meta: dict[str, object] = field(default_factory=dict)


def _read_text(path: Path) -> pd.DataFrame:
    name = path.name
    try:
        if name.endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                raw = fh.read()
        else:
            raw = path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error, OSError) as exc:
        raise RecordingError(name, f"unreadable file ({type(exc).__name__}: {exc})") from exc
    try:
        return pd.read_csv(io.BytesIO(raw), low_memory=False, dtype={"gcode_string": str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise RecordingError(name, f"not a readable CSV ({exc})") from exc


_HMS = re.compile(r"^(\d+):(\d+):(\d+(?:\.\d*)?)$")
_MS = re.compile(r"^(\d+):(\d+(?:\.\d*)?)$")


def parse_console_times(values: pd.Series, file: str) -> np.ndarray:
    """``t_console`` strings (``HH:MM:SS.mmm`` or ``MM:SS.s``) → seconds since the first row.

    Clock wrap-arounds (midnight, or the hour in the ``MM:SS`` form) are unwrapped so the result
    never decreases by more than the clock's period. Shape ``(n,)``, float64.

    >>> parse_console_times(pd.Series(["23:59:59.5", "00:00:00.25"]), "f").tolist()
    [0.0, 0.75]
    """
    text = values.astype(str).to_numpy()
    out = np.empty(len(text))
    period = None
    for i, s in enumerate(text):
        m = _HMS.match(s)
        if m:
            out[i] = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
            p = 86400.0
        else:
            m = _MS.match(s)
            if not m:
                raise RecordingError(file, f"t_console {s!r} is not HH:MM:SS.s or MM:SS.s",
                                     row=i, column="t_console")
            out[i] = int(m[1]) * 60 + float(m[2])
            p = 3600.0
        if period is not None and p != period:
            raise RecordingError(file, "t_console mixes HH:MM:SS and MM:SS forms",
                                 row=i, column="t_console")
        period = p
    if len(out) == 0:
        return out
    jumps = np.diff(out) < -period / 2
    out[1:] += np.cumsum(jumps) * period
    return out - out[0]


def _numeric(df: pd.DataFrame, col: str, file: str) -> np.ndarray:
    s = df[col]
    if pd.api.types.is_numeric_dtype(s):
        return s.to_numpy(dtype=float)
    num = pd.to_numeric(s, errors="coerce")
    bad = num.isna() & s.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise RecordingError(file, f"non-numeric value {s.iloc[i]!r}", row=i, column=col)
    return num.to_numpy(dtype=float)


def _untargeted_tail(df: pd.DataFrame, inputs: list[str]) -> int:
    """Rows at the end with empty targets and empty inputs (count)."""
    empty = df["gcode_string"].isna().to_numpy() & df["gcode_line"].isna().to_numpy()
    if inputs:
        empty &= df[inputs].isna().all(axis=1).to_numpy()
    n = 0
    for e in empty[::-1]:
        if not e:
            break
        n += 1
    return n


def read_recording(path: str | Path, *, untargeted: str = "error",
                   require_targets: bool = True) -> Recording:
    """Read one ``*_aligned.csv`` or ``.csv.gz`` file in the source's layout.

    ``untargeted``: ``"error"`` (default) raises on any row without ``gcode_line`` /
    ``gcode_string``; ``"drop_tail"`` drops a block of rows at the *end* of the file that has no
    target and no sensor reading (one shipped file, ``face150025_001``, has 2773 such controller-
    only rows after the run) and reports the count in ``Recording.dropped_tail``; an empty
    target anywhere else still raises. ``require_targets=False`` reads files without target
    columns (prediction on new recordings); the target columns are then absent.

    Raises :class:`RecordingError` for: unreadable gzip/CSV, a missing target column, a
    non-numeric or empty cell in a present sensor/motor column, an empty or non-integer target,
    a bad ``t_console``.
    """
    if untargeted not in ("error", "drop_tail"):
        raise ValueError(f"untargeted must be 'error' or 'drop_tail', got {untargeted!r}")
    path = Path(path)
    name = path.name
    df = _read_text(path)
    for t in schema.TARGETS:
        if require_targets and t not in df.columns:
            raise RecordingError(name, "target column missing (header)", column=t)
    present = {s: all(c in df.columns for c in schema.source_columns(s)) for s in schema.SOURCES}
    for s in schema.SOURCES:
        cols = [c for c in schema.source_columns(s) if c in df.columns]
        if cols and not present[s]:
            missing = [c for c in schema.source_columns(s) if c not in df.columns]
            raise RecordingError(name, f"source {s} is incomplete: missing {missing}",
                                 column=missing[0])
    known = set(schema.INPUT_COLUMNS) | set(schema.CONTROLLER_FIELDS) | set(schema.TARGETS)
    ignored = tuple(c for c in df.columns if c not in known)
    inputs = [c for c in schema.INPUT_COLUMNS if c in df.columns]

    dropped = 0
    if untargeted == "drop_tail" and all(t in df.columns for t in schema.TARGETS):
        dropped = _untargeted_tail(df, inputs)
        if dropped:
            df = df.iloc[: len(df) - dropped].reset_index(drop=True)
    n = len(df)
    if n == 0:
        raise RecordingError(name, "no data rows")

    out: dict[str, np.ndarray] = {"row": np.arange(n, dtype=np.int64)}
    if "t_console" not in df.columns:
        raise RecordingError(name, "column missing (header)", column="t_console")
    out["t_s"] = parse_console_times(df["t_console"], name)
    block = np.full((n, len(schema.INPUT_COLUMNS)), np.nan, dtype=np.float32)
    col_index = {c: j for j, c in enumerate(schema.INPUT_COLUMNS)}
    for c in inputs:
        v = _numeric(df, c, name)
        nan = np.isnan(v)
        if nan.any():
            raise RecordingError(name, "empty sensor cell in a present source",
                                 row=int(np.flatnonzero(nan)[0]), column=c)
        block[:, col_index[c]] = v
    for c in schema.KEPT_CONTROLLER_FIELDS:
        out[c] = _numeric(df, c, name) if c in df.columns else np.full(n, np.nan)
    if require_targets or all(t in df.columns for t in schema.TARGETS):
        line = _numeric(df, "gcode_line", name)
        text = df["gcode_string"]
        for col, empty in (("gcode_line", np.isnan(line)), ("gcode_string", text.isna())):
            if np.any(empty):
                i = int(np.flatnonzero(np.asarray(empty))[0])
                raise RecordingError(name, "empty target cell", row=i, column=col)
        if np.any(line != np.round(line)):
            i = int(np.flatnonzero(line != np.round(line))[0])
            raise RecordingError(name, f"gcode_line {line[i]} is not an integer",
                                 row=i, column="gcode_line")
        out["gcode_line"] = line.astype(np.int64)
        out["gcode_string"] = text.astype(str).to_numpy()
    rows = pd.concat([pd.DataFrame(out), pd.DataFrame(block, columns=schema.INPUT_COLUMNS)],
                     axis=1)
    meta = schema.parse_file_name(name)
    return Recording(meta["file"], rows, present, ignored, dropped, meta)


@dataclass
class CNCData:
    """All rows and all files of a set of recordings.

    ``rows``: one row per status report, columns as in the module docstring, with ``file``.
    ``files``: one row per file: ``file kind operation campaign damaged number n_rows
    dropped_tail`` and one boolean ``has_<source>`` column per source (the missing-node mask).
    """

    rows: pd.DataFrame
    files: pd.DataFrame

    def mask(self) -> pd.DataFrame:
        """``(n_files, n_sources)`` boolean frame: is each source present in each file."""
        return self.files.set_index("file")[[f"has_{s}" for s in schema.SOURCES]].rename(
            columns=lambda c: c.removeprefix("has_"))

    def row_mask(self) -> np.ndarray:
        """``(n_rows, n_sources)`` boolean array: the file mask broadcast to rows."""
        m = self.mask()
        return m.loc[self.rows["file"]].to_numpy(dtype=bool)

    def subset(self, files) -> CNCData:
        """Only the given files (names as in ``files['file']``), order kept."""
        keep = set(files)
        unknown = keep - set(self.files["file"])
        if unknown:
            raise KeyError(f"unknown files: {sorted(unknown)}")
        return CNCData(self.rows[self.rows["file"].isin(keep)].reset_index(drop=True),
                       self.files[self.files["file"].isin(keep)].reset_index(drop=True))


def first_per_kind(data: CNCData, n: int) -> CNCData:
    """The first ``n`` files (by name) of every kind; ``n = 0`` keeps everything.

    For quick (smoke) runs that still contain every program and campaign.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n == 0:
        return data
    f = data.files.sort_values("file")
    keep = f.groupby(f["kind"].fillna("unknown"), sort=False).head(n)["file"]
    return data.subset(keep)


def _files_frame(recs: list[Recording]) -> pd.DataFrame:
    out = []
    for r in recs:
        d = dict(r.meta)
        d["n_rows"] = len(r.rows)
        d["dropped_tail"] = r.dropped_tail
        d.update({f"has_{s}": bool(r.present[s]) for s in schema.SOURCES})
        out.append(d)
    return pd.DataFrame(out)


def load_csvs(paths, *, untargeted: str = "error") -> CNCData:
    """Read original-layout files (a directory, one path, or a list) into a :class:`CNCData`.

    A directory is read as its ``*_aligned.csv`` and ``*_aligned.csv.gz`` files, sorted by name.
    """
    if isinstance(paths, (str, Path)) and Path(paths).is_dir():
        d = Path(paths)
        paths = sorted(list(d.glob("*_aligned.csv")) + list(d.glob("*_aligned.csv.gz")))
        if not paths:
            raise FileNotFoundError(f"no *_aligned.csv[.gz] files in {d}")
    elif isinstance(paths, (str, Path)):
        paths = [paths]
    recs = [read_recording(p, untargeted=untargeted) for p in paths]
    names = [r.name for r in recs]
    if len(set(names)) != len(names):
        dup = sorted(n for n in names if names.count(n) > 1)
        raise ValueError(f"duplicate recording names: {dup}")
    rows = pd.concat([r.rows.assign(file=r.name) for r in recs], ignore_index=True)
    rows = rows[["file"] + [c for c in rows.columns if c != "file"]]
    return CNCData(rows, _files_frame(recs))


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_checksums(directory: Path) -> None:
    """Check every file listed in ``directory/SHA256SUMS``; raise :class:`ChecksumError`."""
    sums = directory / CHECKSUMS
    if not sums.is_file():
        raise ChecksumError(f"{sums} is missing; rebuild with `python -m physml.cnc.build_data`")
    for line in sums.read_text().splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        path = directory / name.strip().lstrip("*")
        if not path.is_file():
            raise ChecksumError(f"{path} listed in {sums} is missing")
        got = sha256(path)
        if got != digest:
            raise ChecksumError(f"{path}: SHA-256 {got} differs from {digest} in {sums}")


def shipped_dir() -> Path:
    """``data/cnc`` in the repository."""
    from physml.paths import data_dir

    return data_dir("cnc")


def load_shipped(directory: str | Path | None = None, *, verify: bool = True) -> CNCData:
    """The shipped columnar copy (``data/cnc``), checksums verified first.

    Sensor columns come back float32 exactly as :func:`load_csvs` gives them.
    """
    d = Path(directory) if directory is not None else shipped_dir()
    if verify:
        verify_checksums(d)
    rows = pd.read_parquet(d / SHIPPED_ROWS)
    files = pd.read_parquet(d / SHIPPED_FILES)
    rows["file"] = rows["file"].astype(str)
    rows["gcode_string"] = rows["gcode_string"].astype(str).to_numpy()
    missing = [c for c in schema.INPUT_COLUMNS if c not in rows.columns]
    if missing:
        extra = pd.DataFrame(np.full((len(rows), len(missing)), np.nan, np.float32),
                             columns=missing)
        rows = pd.concat([rows, extra], axis=1)
    order = (["file", "row", "t_s"] + list(schema.KEPT_CONTROLLER_FIELDS) + list(schema.TARGETS)
             + list(schema.INPUT_COLUMNS))
    return CNCData(rows[order], files)


def load(source: str | Path | None = None) -> CNCData:
    """The study's data: the shipped copy (``source=None``), or original CSVs at ``source``.

    CSVs are read with ``untargeted="drop_tail"`` (as the shipped copy was built).
    """
    if source is None or str(source) == "":
        return load_shipped()
    p = Path(source)
    if p.is_dir() and (p / SHIPPED_ROWS).is_file():
        return load_shipped(p)
    return load_csvs(p, untargeted="drop_tail")


def manifest(data: CNCData) -> dict:
    """Summary written beside the shipped copy: counts per kind, rows, dropped rows."""
    f = data.files
    return {
        "files": int(len(f)),
        "rows": int(len(data.rows)),
        "dropped_tail_rows": {r.file: int(r.dropped_tail) for r in f.itertuples()
                              if r.dropped_tail},
        "files_per_kind": {k: int(v) for k, v in f["kind"].value_counts().sort_index().items()},
    }


def write_manifest(data: CNCData, path: Path) -> None:
    path.write_text(json.dumps(manifest(data), indent=2, sort_keys=True) + "\n")
