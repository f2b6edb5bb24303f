"""Score a saved CNC model on recordings in the original CSV(.gz) layout (issue 11).

``evaluate(model_dir, paths)`` reads the files with :func:`physml.cnc.data.read_recording`,
lets the saved model predict every row from the sensor and motor columns alone, and only then
reads the targets (``gcode_line``, ``gcode_string``) to score. Dispatch is on
``manifest.json``'s ``kind``:

- ``"alignment"``: :class:`physml.cnc.hybrid.AlignmentModel` (notebook 05);
- ``"encoder_decoder"``: ``physml.cnc.encoder_decoder.load_model`` (notebook 04), whose
  ``predict(CNCData)`` returns one row per input row with ``file command line``.

:func:`predict` is the prediction half alone: it reads the files without their targets, so a
test can prove that blanking the target and controller columns changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from physml.jsonfile import read_object

from . import data as _data
from . import schema, tokens

KINDS: tuple[str, ...] = ("alignment", "encoder_decoder")
#: Keys every :func:`evaluate` result has.
RESULT_KEYS: tuple[str, ...] = ("kind", "files", "rows", "command_balanced_accuracy",
                                "token_accuracy_free_running", "line_exact_accuracy",
                                "ignored")


def read_manifest(model_dir: str | Path) -> dict:
    """``model_dir/manifest.json``; raises naming the file when missing or of unknown kind."""
    p = Path(model_dir) / "manifest.json"
    if not p.is_file():
        raise FileNotFoundError(f"{p} is missing: not a saved physml.cnc model")
    man = read_object(p, ValueError, "model manifest")
    if man.get("kind") not in KINDS:
        raise ValueError(f"{p}: kind {man.get('kind')!r} is not one of {KINDS}")
    return man


def _paths(paths) -> list[Path]:
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out = [Path(p) for p in paths]
    if not out:
        raise ValueError("evaluate: no recording files given")
    return out


def read_files(paths, *, require_targets: bool) -> tuple[_data.CNCData, list[str]]:
    """Read recordings (``untargeted="drop_tail"``) into a CNCData and the sorted list of
    columns no part of physml.cnc knows (reported as ignored)."""
    recs = [_data.read_recording(p, untargeted="drop_tail", require_targets=require_targets)
            for p in _paths(paths)]
    names = [r.name for r in recs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"duplicate recording names: {dup}")
    rows = pd.concat([r.rows.assign(file=r.name) for r in recs], ignore_index=True)
    rows = rows[["file"] + [c for c in rows.columns if c != "file"]]
    files = _data._files_frame(recs)
    unknown = sorted({c for r in recs for c in r.ignored})
    return _data.CNCData(rows, files), unknown


def _predict_data(model_dir: Path, man: dict, d: _data.CNCData) -> tuple[pd.DataFrame, list]:
    """Per-row predictions (``file line command`` [+ ``program``]) and unused input columns."""
    present = d.mask()
    here = [s for s in schema.SOURCES if present[s].any()]
    cols_here = [c for s in here for c in schema.source_columns(s)]
    if man["kind"] == "alignment":
        from .hybrid import AlignmentModel

        model = AlignmentModel.load(model_dir)
        pred = model.predict_rows(d.rows)
        unused = [c for c in cols_here if c not in model.feature_columns]
    else:
        from .encoder_decoder import load_model

        model = load_model(model_dir)
        pred = model.predict(d)
        unused = list(model.ignored_columns)
    if len(pred) != len(d.rows) or not np.array_equal(pred["file"].to_numpy(),
                                                      d.rows["file"].to_numpy()):
        raise RuntimeError(f"{model_dir}: the model returned {len(pred)} predictions for "
                           f"{len(d.rows)} rows (or in another order)")
    return pred.reset_index(drop=True), unused


def predict(model_dir: str | Path, paths) -> pd.DataFrame:
    """Predictions of a saved model for recordings, read WITHOUT their target columns
    (``file row line command`` and, for alignment, ``program``)."""
    man = read_manifest(model_dir)
    d, _ = read_files(paths, require_targets=False)
    pred, _ = _predict_data(Path(model_dir), man, d)
    return pred.assign(row=d.rows["row"].to_numpy())


def _true_commands(rows: pd.DataFrame) -> tuple[np.ndarray, str]:
    """Modal command class of each row from the files' own ``gcode_string``, lines without a
    motion word filled with their controller-reported ``momo`` where the files have it (scoring
    only, :func:`physml.cnc.tokens.command_classes`), and which of the two rules was used."""
    programs = tokens.recover_programs(rows)
    reports = "momo" in rows.columns and bool(rows["momo"].notna().any())
    return (tokens.command_classes(rows, programs, reports=reports),
            "gcode_string + momo" if reports else "gcode_string")


def evaluate(model_dir: str | Path, paths: Sequence[str | Path] | str | Path) -> dict:
    """Score the model saved in ``model_dir`` on recordings ``paths`` (original layout).

    Returns a JSON-ready dict with ``kind``, ``files`` (names), ``rows``,
    ``command_balanced_accuracy`` (G0-G3, rows whose line moves nothing excluded; true classes
    by ``command_labels``: ``"gcode_string + momo"`` where the files report ``momo``, else
    ``"gcode_string"``, see :func:`_true_commands`),
    ``token_accuracy_free_running`` and ``line_exact_accuracy`` (per row, see
    :func:`physml.cnc.baselines.score_lines`), ``token_accuracy_{command,axis,value}``,
    ``operation_accuracy`` (alignment: the predicted program's operation vs the file name's,
    over files whose name states one), ``per_file`` and ``ignored``:
    ``{"unknown_columns": [...], "unused_input_columns": [...], "dropped_tail_rows": {...}}``.
    Predictions are made before any target is looked at (:func:`_predict_data` gets no
    target-dependent input); a malformed file raises
    :class:`~physml.cnc.data.RecordingError` naming file, row and column.
    """
    from .baselines import balanced_accuracy_score, score_lines

    man = read_manifest(model_dir)
    d, unknown = read_files(paths, require_targets=True)
    sensors = d.rows.drop(columns=[c for c in (*schema.TARGETS, *schema.KEPT_CONTROLLER_FIELDS)
                                   if c in d.rows.columns])
    pred, unused = _predict_data(Path(model_dir), man, _data.CNCData(sensors, d.files))
    true_line = d.rows["gcode_string"].astype(str).tolist()
    s = score_lines(pred["line"].astype(str).tolist(), true_line)
    cmd_true, cmd_rule = _true_commands(d.rows)
    moving = cmd_true != "none"
    out = {
        "kind": man["kind"],
        "files": d.files["file"].astype(str).tolist(),
        "rows": int(len(d.rows)),
        "command_balanced_accuracy": (balanced_accuracy_score(
            cmd_true[moving], pred["command"].astype(str).to_numpy()[moving])
            if moving.any() else None),
        "command_labels": cmd_rule,
        "token_accuracy_free_running": float(s["token_accuracy"]),
        "line_exact_accuracy": float(s["line_exact_accuracy"]),
        **{f"token_accuracy_{k}": _num(s[f"token_accuracy_{k}"])
           for k in ("command", "axis", "value")},
    }
    per_file = []
    for f, idx in pred.groupby("file", sort=False).indices.items():
        sf = score_lines(pred["line"].astype(str).to_numpy()[idx].tolist(),
                         [true_line[i] for i in idx])
        rec = {"file": str(f), "rows": int(len(idx)),
               "line_exact_accuracy": float(sf["line_exact_accuracy"]),
               "token_accuracy_free_running": float(sf["token_accuracy"])}
        if "program" in pred.columns:
            rec["program"] = str(pred["program"].iloc[idx[0]])
        per_file.append(rec)
    if man["kind"] == "alignment":
        ops = _program_operations(man)
        got = []
        meta = d.files.set_index("file")
        for r in per_file:
            want = meta.loc[r["file"], "operation"]
            r["predicted_operation"] = ops.get(r["program"])
            if want is not None and not pd.isna(want):
                got.append(r["predicted_operation"] == want)
        out["operation_accuracy"] = float(np.mean(got)) if got else None
    out["per_file"] = per_file
    out["ignored"] = {"unknown_columns": unknown, "unused_input_columns": sorted(unused),
                      "dropped_tail_rows": {r.file: int(r.dropped_tail)
                                            for r in d.files.itertuples() if r.dropped_tail}}
    return out


def _num(x) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _program_operations(man: dict) -> dict[str, str | None]:
    """Operation of each known program: the one its training files' names state."""
    out = {}
    for p, files in man.get("info", {}).get("programs", {}).items():
        ops = {schema.parse_file_name(f + "_aligned.csv")["operation"] for f in files}
        ops.discard(None)
        out[p] = ops.pop() if len(ops) == 1 else None
    return out
