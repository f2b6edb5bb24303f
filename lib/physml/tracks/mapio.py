"""Reading and writing field maps: the study's .npz format and whitespace-separated text maps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from physml.tracks.grid import GridField


def save_npz(grid: GridField, path: str | Path) -> None:
    """Write ``grid`` to ``path`` (.npz): origin_mm (3,), spacing_mm (3,), b_tesla, meta (JSON)."""
    np.savez(path, origin_mm=grid.origin_mm, spacing_mm=grid.spacing_mm, b_tesla=grid.b_tesla,
             meta=json.dumps(grid.meta))


def load_npz(path: str | Path) -> GridField:
    """Read a map written by :func:`save_npz`; raises ValueError naming missing arrays."""
    with np.load(path) as d:
        missing = {"origin_mm", "spacing_mm", "b_tesla"} - set(d.files)
        if missing:
            raise ValueError(f"{path}: not a GridField file, missing arrays {sorted(missing)}")
        meta = json.loads(str(d["meta"])) if "meta" in d.files else {}
        return GridField(d["origin_mm"], d["spacing_mm"], d["b_tesla"], meta)


LENGTH_UNITS_MM = {"mm": 1.0, "cm": 10.0, "m": 1000.0}
FIELD_UNITS_T = {"T": 1.0, "tesla": 1.0, "gauss": 1e-4, "G": 1e-4, "kG": 0.1, "mT": 1e-3}


def load_text_map(path: str | Path, length_unit: str = "mm", field_unit: str = "gauss",
                  columns: tuple[str, ...] = ("x", "y", "z", "Bx", "By", "Bz"),
                  comments: str = "#", rtol: float = 1e-6) -> GridField:
    """Read a whitespace-separated text map with columns x y z Bx By Bz into a :class:`GridField`.

    ``columns`` names the file's columns in order (extra columns are allowed, named anything
    else); ``length_unit`` in {mm, cm, m}, ``field_unit`` in {T, gauss, kG, mT} (LHCb's maps: mm
    and gauss). The points may come in any order but must fill a complete regular grid; raises
    ``ValueError`` naming the file, the missing column, or the first offending row otherwise.
    """
    path = Path(path)
    if length_unit not in LENGTH_UNITS_MM:
        raise ValueError(
            f"load_text_map: length_unit {length_unit!r} not in {sorted(LENGTH_UNITS_MM)}")
    if field_unit not in FIELD_UNITS_T:
        raise ValueError(f"load_text_map: field_unit {field_unit!r} not in {sorted(FIELD_UNITS_T)}")
    need = ("x", "y", "z", "Bx", "By", "Bz")
    missing = [c for c in need if c not in columns]
    if missing:
        raise ValueError(f"{path}: column names {list(columns)} lack {missing} (need {list(need)})")
    try:
        data = np.loadtxt(path, comments=comments, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{path}: cannot parse as numbers: {exc}") from exc
    if data.shape[0] == 0:
        raise ValueError(f"{path}: no data rows")
    if data.shape[1] < len(columns):
        raise ValueError(
            f"{path}: rows have {data.shape[1]} columns, expected {len(columns)} "
            f"({' '.join(columns)}); column {columns[data.shape[1]]!r} is missing"
        )
    col = {name: data[:, i] for i, name in enumerate(columns)}
    xyz = np.stack([col["x"], col["y"], col["z"]], 1) * LENGTH_UNITS_MM[length_unit]
    b = np.stack([col["Bx"], col["By"], col["Bz"]], 1) * FIELD_UNITS_T[field_unit]
    axes, idx = [], []
    for a, name in enumerate("xyz"):
        vals = np.unique(xyz[:, a])
        if vals.size < 2:
            raise ValueError(
                f"{path}: column {name} has a single value; a grid needs >= 2 per axis")
        step = float(np.median(np.diff(vals)))
        k = np.rint((xyz[:, a] - vals[0]) / step).astype(np.int64)
        off = np.abs(xyz[:, a] - (vals[0] + k * step)) > rtol * step + 1e-9
        if np.any(off):
            bad = int(np.argmax(off))
            raise ValueError(
                f"{path}: data row {bad + 1}: {name} = "
                f"{xyz[bad, a] / LENGTH_UNITS_MM[length_unit]:.9g} "
                f"{length_unit} is not on a regular grid along {name} (spacing "
                f"{step / LENGTH_UNITS_MM[length_unit]:.6g} {length_unit})"
            )
        size = int(k.max()) + 1
        vals = vals[:1].repeat(size)  # only vals[0] and the count are used below
        axes.append((vals[0], step, vals.size))
        idx.append(k)
    shape = tuple(a[2] for a in axes)
    n_expected = int(np.prod(shape))
    flat = (idx[0] * shape[1] + idx[1]) * shape[2] + idx[2]
    counts = np.bincount(flat, minlength=n_expected)
    if data.shape[0] != n_expected or np.any(counts != 1):
        dup = np.flatnonzero(counts > 1)
        hole = np.flatnonzero(counts == 0)
        what = (f"{dup.size} duplicated node(s)" if dup.size else "") + (
            f"{' and ' if dup.size and hole.size else ''}{hole.size} missing node(s)"
            if hole.size else "")
        raise ValueError(
            f"{path}: {data.shape[0]} rows do not fill the {shape[0]} x {shape[1]} x {shape[2]} "
            f"grid ({n_expected} nodes): {what}"
        )
    grid = np.empty((n_expected, 3))
    grid[flat] = b
    return GridField(np.array([a[0] for a in axes]), np.array([a[1] for a in axes]),
                     grid.reshape(*shape, 3),
                     {"source": str(path), "length_unit": length_unit, "field_unit": field_unit})
