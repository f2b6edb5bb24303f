"""``physml.cnc.evaluate`` and ``physml cnc evaluate`` on recordings in the original layout."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from physml.cnc import data, schema
from physml.cnc import evaluation as E
from physml.cnc import hybrid as H

#: one xdist worker runs this module, so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group("cnc_test_evaluate")

FILES = ("face_001", "pocket_001")


def _to_csv(rows: pd.DataFrame, path, extra: dict | None = None, blank: str | None = None):
    """Write shipped rows of one file back in the source's CSV layout."""
    t = rows["t_s"].to_numpy() + 3600.0
    cols = {"t_console": [f"{int(s // 3600):02d}:{int(s % 3600 // 60):02d}:{s % 60:06.3f}"
                          for s in t]}
    for c in schema.KEPT_CONTROLLER_FIELDS:
        cols[c] = rows[c].to_numpy()
    for c in schema.INPUT_COLUMNS:
        v = rows[c].to_numpy()
        if not np.all(np.isnan(v)):
            cols[c] = v
    cols["gcode_line"] = rows["gcode_line"].to_numpy()
    cols["gcode_string"] = rows["gcode_string"].to_numpy()
    out = pd.DataFrame(cols)
    if blank == "drop":
        out = out.drop(columns=list(schema.TARGETS) + list(schema.KEPT_CONTROLLER_FIELDS))
    elif blank == "constant":
        for c in schema.KEPT_CONTROLLER_FIELDS:
            out[c] = 0.0
        out["gcode_line"] = 1
        out["gcode_string"] = "M30"
        out["t_console"] = "00:00:00.000"
    if extra:
        out = pd.concat([out, pd.DataFrame(extra, index=out.index)], axis=1)
    out.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def shipped():
    return data.first_per_kind(data.load_shipped(), 1)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, shipped):
    cfg = H.AlignmentConfig(gbm_iter=3, train_stride=8, weight=0.5, durations="observed")
    model = H.AlignmentModel.fit(shipped.rows, cfg)
    return model.save(tmp_path_factory.mktemp("model") / "alignment")


@pytest.fixture(scope="module")
def csvs(tmp_path_factory, shipped):
    d = tmp_path_factory.mktemp("csv")
    r = shipped.rows
    return [_to_csv(r[r["file"] == f], d / f"{f}_aligned.csv") for f in FILES]


def test_manifest_says_alignment(model_dir):
    man = json.loads((model_dir / "manifest.json").read_text())
    assert man["kind"] == "alignment"
    assert set(man["feature_columns"]) <= set(schema.INPUT_COLUMNS)
    assert not any(schema.is_forbidden_input(c) for c in man["feature_columns"])


def test_evaluate_returns_the_documented_keys(model_dir, csvs, shipped):
    res = E.evaluate(model_dir, csvs)
    assert set(E.RESULT_KEYS) <= set(res)
    assert res["files"] == list(FILES)
    assert res["rows"] == int(shipped.files.set_index("file").loc[list(FILES), "n_rows"].sum())
    for k in ("command_balanced_accuracy", "token_accuracy_free_running",
              "line_exact_accuracy", "operation_accuracy"):
        assert 0.0 <= res[k] <= 1.0, k
    assert res["command_labels"] == "gcode_string + momo"  # the files report momo
    json.dumps(res)  # JSON-ready


def test_predictions_do_not_change_when_targets_and_controller_are_blanked(
        model_dir, csvs, shipped, tmp_path):
    base = E.predict(model_dir, csvs)
    r = shipped.rows
    for mode in ("drop", "constant"):
        blanked = [_to_csv(r[r["file"] == f], tmp_path / f"{mode}_{f}_aligned.csv", blank=mode)
                   for f in FILES]
        other = E.predict(model_dir, blanked)
        cols = ["row", "line", "command", "program"]
        assert other[cols].equals(base[cols]), mode


def test_an_unseen_node_is_ignored_and_reported(model_dir, csvs, shipped, tmp_path):
    f = FILES[0]
    r = shipped.rows[shipped.rows["file"] == f]
    p = _to_csv(r, tmp_path / f"{f}_aligned.csv",
                extra={"mystery_node.Ax": np.linspace(0, 1, len(r)), "extra_note": "x"})
    res = E.evaluate(model_dir, [p])
    assert {"mystery_node.Ax", "extra_note"} <= set(res["ignored"]["unknown_columns"])
    assert E.predict(model_dir, [p])["line"].equals(E.predict(model_dir, [csvs[0]])["line"])


def test_a_malformed_file_errors_with_file_row_and_column(model_dir, shipped, tmp_path):
    f = FILES[0]
    r = shipped.rows[shipped.rows["file"] == f]
    p = _to_csv(r, tmp_path / f"{f}_aligned.csv")
    df = pd.read_csv(p, dtype={"gcode_string": str})
    df["frame_l2.Ax"] = df["frame_l2.Ax"].astype(object)
    df.loc[5, "frame_l2.Ax"] = "oops"
    df.to_csv(p, index=False)
    with pytest.raises(data.RecordingError, match=r"face_001.*row 5.*frame_l2\.Ax"):
        E.evaluate(model_dir, [p])


def test_a_wrong_manifest_kind_is_refused(tmp_path, csvs):
    (tmp_path / "manifest.json").write_text(json.dumps({"kind": "mystery"}))
    with pytest.raises(ValueError, match="mystery"):
        E.evaluate(tmp_path, csvs)
    (tmp_path / "manifest.json").write_text('{"kind": "alignment"')  # truncated
    with pytest.raises(ValueError, match=r"manifest\.json: not valid JSON"):
        E.evaluate(tmp_path, csvs)


def test_the_cli_writes_json_and_reports_ignored_columns(model_dir, csvs, tmp_path, capsys):
    from physml.cli import main

    out = tmp_path / "res.json"
    assert main(["cnc", "evaluate", str(model_dir), *map(str, csvs), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(E.RESULT_KEYS) <= set(res)
    assert "ignored columns" in capsys.readouterr().out
    assert main(["cnc", "evaluate", str(tmp_path), str(csvs[0])]) == 1  # no manifest


def test_true_commands_use_momo_where_reported_and_say_which_rule():
    # line 3 has no motion word; the controller says G1 there (a switch on unreported line 2)
    rows = pd.DataFrame({"file": ["a"] * 3, "gcode_line": [1, 3, 4],
                         "gcode_string": ["G0 X1.", "X2.", "X3."], "momo": [0.0, 1.0, 1.0]})
    cls, rule = E._true_commands(rows)
    assert list(cls) == ["G0", "G1", "G1"] and rule == "gcode_string + momo"
    cls, rule = E._true_commands(rows.assign(momo=np.nan))  # blanked controller column
    assert list(cls) == ["G0", "G0", "G0"] and rule == "gcode_string"
    cls, rule = E._true_commands(rows.drop(columns="momo"))
    assert rule == "gcode_string"
