"""Record the figures a notebook produces, for tests, the index page and other readers.

Inside ``physml render`` the environment variable ``PHYSML_RESULTS_FILE`` names the notebook's
results file (a temporary path that the renderer moves into ``reports/<study>/NN_topic.json``
only when the notebook succeeds). Interactively, values are kept in memory
(:func:`recorded`), so a notebook behaves the same in JupyterLab.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

ENV_VAR = "PHYSML_RESULTS_FILE"

_memory: dict[str, dict[str, Any]] = {}


def to_jsonable(value: Any, *, where: str = "value") -> Any:
    """Convert numpy scalars/arrays, tuples and dataclass-like objects into plain JSON types.

    Non-finite floats are kept as the strings
    ``"nan"``, ``"inf"``, ``"-inf"`` (``None`` would hide them). Anything else that is not
    JSON-serialisable raises.
    """
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, where=f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, where=f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist(), where=where)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else str(v)
    if value is None or isinstance(value, str):
        return value
    if hasattr(value, "as_dict"):
        return to_jsonable(value.as_dict(), where=where)
    raise TypeError(f"cannot record {where}: {type(value).__name__} is not JSON-serialisable")


def record(name: str, value: Any, unit: str | None = None, note: str | None = None) -> Any:
    """Record one named figure; returns ``value`` unchanged so it can be used inline.

    Parameters
    ----------
    name : str
        Key in the results file, e.g. ``"rk4_tracks_per_second"``.
    value : number, str, bool, list, dict, numpy array/scalar, or an object with ``as_dict()``
        (e.g. :class:`physml.stats.CI`).
    unit, note : str, optional
        Unit of the value and a short human-readable note.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"results.record: name must be a non-empty string, got {name!r}")
    entry = {"value": to_jsonable(value, where=name), "unit": unit, "note": note}
    _memory[name] = entry
    path = os.environ.get(ENV_VAR)
    if path:
        _write(Path(path), name, entry)
    return value


def recorded() -> dict[str, dict[str, Any]]:
    """Everything recorded in this process so far: ``{name: {"value", "unit", "note"}}``."""
    return dict(_memory)


def _write(path: Path, name: str, entry: dict[str, Any]) -> None:
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault("figures", {})[name] = entry
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def load(path: str | Path) -> dict[str, Any]:
    """Read a results JSON written by ``physml render`` (figures, params, provenance, ...)."""
    return json.loads(Path(path).read_text())
