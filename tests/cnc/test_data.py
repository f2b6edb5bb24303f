"""Loader of the original CSV layout and the shipped columnar copy (issue 11)."""

from __future__ import annotations

import gzip
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from physml.cnc import data, schema

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "cnc"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/cnc not present")

HEADER = (["t_console", "stat", "line", "posx", "posy", "posz", "mpox", "mpoy", "mpoz", "vel",
           "feed", "unit", "dist", "plane", "coor", "momo", "raw_json"]
          + list(schema.MOTOR_SIGNALS) + list(schema.node_columns("frame_l2"))
          + list(schema.node_columns("frame_r2")) + list(schema.node_columns("y_bed__3"))
          + ["gcode_line", "gcode_string"])


def _rows(n: int = 3) -> list[list[str]]:
    out = []
    for i in range(n):
        r = {c: "1.5" for c in HEADER}
        r.update({"t_console": f"10:00:0{i}.250", "vel": "", "plane": "", "raw_json": '"{}"',
                  "gcode_line": str(16 + i),
                  "gcode_string": ["G0 X1. Y2.", "Z0.6", "G1 Z0.1"][i % 3]})
        out.append([r[c] for c in HEADER])
    return out


def _write(path: Path, header=HEADER, rows=None, gz: bool = True) -> Path:
    rows = _rows() if rows is None else rows
    text = ",".join(header) + "\n" + "\n".join(",".join(r) for r in rows) + "\n"
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def test_minimal_file_reads_with_mask_not_zeros(tmp_path):
    rec = data.read_recording(_write(tmp_path / "face_001_aligned.csv.gz"))
    assert rec.present["frame_l2"] and rec.present["motor"]
    assert not rec.present["spindle2"] and not rec.present["motor_current"]
    # an absent node is NaN, never a zero reading
    assert rec.rows["spindle2.Ax"].isna().all()
    assert (rec.rows["frame_l2.Ax"] == 1.5).all()
    assert rec.rows["t_s"].tolist() == [0.0, 1.0, 2.0]
    assert rec.meta["operation"] == "face" and rec.meta["campaign"] == "c1"


def test_plain_csv_and_gzip_read_the_same(tmp_path):
    a = data.read_recording(_write(tmp_path / "face_001_aligned.csv.gz")).rows
    b = data.read_recording(_write(tmp_path / "face_001_aligned.csv", gz=False)).rows
    pd.testing.assert_frame_equal(a, b)


def test_missing_target_column_is_named(tmp_path):
    header = [c for c in HEADER if c != "gcode_string"]
    rows = [r[:-1] for r in _rows()]
    p = _write(tmp_path / "pocket_002_aligned.csv.gz", header, rows)
    with pytest.raises(data.RecordingError, match=r"pocket_002_aligned.csv.gz.*'gcode_string'"):
        data.read_recording(p)


def test_non_numeric_sensor_cell_names_file_row_column(tmp_path):
    rows = _rows()
    rows[2][HEADER.index("frame_r2.Gy")] = "abc"
    p = _write(tmp_path / "face_003_aligned.csv.gz", rows=rows)
    with pytest.raises(data.RecordingError) as e:
        data.read_recording(p)
    assert e.value.file == "face_003_aligned.csv.gz"
    assert e.value.row == 2 and e.value.column == "frame_r2.Gy"
    assert "CSV line 4" in str(e.value) and "'abc'" in str(e.value)


def test_empty_sensor_cell_in_present_node_is_an_error(tmp_path):
    rows = _rows()
    rows[1][HEADER.index("y_bed__3.RMS")] = ""
    with pytest.raises(data.RecordingError, match=r"row 1 .*'y_bed__3.RMS'"):
        data.read_recording(_write(tmp_path / "face_004_aligned.csv.gz", rows=rows))


def test_unreadable_gzip_names_file(tmp_path):
    p = tmp_path / "face_005_aligned.csv.gz"
    p.write_bytes(b"this is not gzip data at all")
    with pytest.raises(data.RecordingError, match="face_005_aligned.csv.gz.*unreadable"):
        data.read_recording(p)


def test_truncated_gzip_names_file(tmp_path):
    good = _write(tmp_path / "x.csv.gz")
    p = tmp_path / "face_006_aligned.csv.gz"
    p.write_bytes(good.read_bytes()[:-12])
    with pytest.raises(data.RecordingError, match="face_006_aligned.csv.gz"):
        data.read_recording(p)


def test_empty_target_cell_is_an_error_unless_a_trailing_empty_block(tmp_path):
    rows = _rows(3)
    rows[1][HEADER.index("gcode_line")] = ""
    with pytest.raises(data.RecordingError, match=r"row 1 .*'gcode_line'"):
        data.read_recording(_write(tmp_path / "face_007_aligned.csv.gz", rows=rows),
                            untargeted="drop_tail")
    rows = _rows(3)
    tail = [""] * len(HEADER)
    tail[0] = "10:00:09.000"
    p = _write(tmp_path / "face_008_aligned.csv.gz", rows=rows + [tail, tail])
    with pytest.raises(data.RecordingError, match="row 3"):
        data.read_recording(p)
    rec = data.read_recording(p, untargeted="drop_tail")
    assert rec.dropped_tail == 2 and len(rec.rows) == 3


def test_unknown_node_is_reported_not_used(tmp_path):
    header = HEADER[:-2] + ["new_node.Ax"] + HEADER[-2:]
    rows = [r[:-2] + ["7"] + r[-2:] for r in _rows()]
    rec = data.read_recording(_write(tmp_path / "face_009_aligned.csv.gz", header, rows))
    assert rec.ignored == ("new_node.Ax",)
    assert "new_node.Ax" not in rec.rows.columns


def test_console_time_wraps_at_midnight_and_accepts_minute_form():
    assert data.parse_console_times(pd.Series(["59:59.9", "00:00.1"]), "f").round(6).tolist() \
        == [0.0, 0.2]
    with pytest.raises(data.RecordingError, match="t_console"):
        data.parse_console_times(pd.Series(["10:00:00.0", "bad"]), "f")


@needs_shared
def test_facts_of_the_shared_recordings_hold_in_the_shipped_copy():
    d = data.load_shipped()
    assert len(d.files) == 114
    m = d.mask()
    assert set(m.columns[m.all()]) == set(schema.ALWAYS_PRESENT_NODES) | {"motor"}
    # 16 node names occur; vel/plane are dropped (all empty in the source)
    assert m[list(schema.NODES)].any().all()
    assert "vel" not in d.rows.columns and "raw_json" not in d.rows.columns
    # rows: 63,667 in the CSVs minus face150025_001's 2773 controller-only tail rows
    assert len(d.rows) == 63667 - 2773
    assert d.files.set_index("file").loc["face150025_001", "dropped_tail"] == 2773
    # NaN exactly where the mask says a source is absent
    rm = d.row_mask()
    for j, s in enumerate(schema.SOURCES):
        col = schema.source_columns(s)[0]
        assert np.array_equal(d.rows[col].isna().to_numpy(), ~rm[:, j]), s


@needs_shared
def test_shipped_copy_equals_the_csvs():
    names = ["pocket150025_012", "face150025_001", "adaptive_003"]
    csv = data.load_csvs([SHARED / f"{n}_aligned.csv.gz" for n in names], untargeted="drop_tail")
    shipped = data.load_shipped().subset(names)
    key = ["file", "row"]
    a = csv.rows.sort_values(key).reset_index(drop=True)
    b = shipped.rows.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b[a.columns])


def test_shipped_copy_is_small_fast_and_checksummed(tmp_path):
    d = data.shipped_dir()
    total = sum(p.stat().st_size for p in d.iterdir() if p.is_file())
    assert total <= 30e6
    assert (d / "SOURCE.md").read_text().count("MIT") >= 1
    t = time.perf_counter()
    data.load_shipped()
    assert time.perf_counter() - t <= 5.0 * 3  # 5 s target; x3 slack for a loaded test machine
    copy = tmp_path / "cnc"
    shutil.copytree(d, copy)
    with open(copy / data.SHIPPED_FILES, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(data.ChecksumError, match=data.SHIPPED_FILES):
        data.load_shipped(copy)


@needs_shared
def test_build_script_writes_a_loadable_checksummed_copy(tmp_path, monkeypatch, capsys):
    from physml.cnc import build_data

    src = tmp_path / "src"
    src.mkdir()
    for n in ("face_001", "pocket150025_012"):
        shutil.copy(SHARED / f"{n}_aligned.csv.gz", src)
    shutil.copy(SHARED / "SOURCE.md", src)
    sizes = build_data.build(src, tmp_path / "out")
    assert set(sizes) >= {"rows.parquet", "files.parquet", "SOURCE.md", "SHA256SUMS"}
    assert sizes["rows.parquet"] == (tmp_path / "out" / "rows.parquet").stat().st_size
    d = data.load_shipped(tmp_path / "out")
    assert sorted(d.files["file"]) == ["face_001", "pocket150025_012"]
    # the copy holds what the CSVs hold: every kept column, float32 bit for bit
    ref = data.load_csvs(src, untargeted="drop_tail")
    pd.testing.assert_frame_equal(d.rows.reset_index(drop=True),
                                  ref.rows[d.rows.columns].reset_index(drop=True))
    pd.testing.assert_frame_equal(d.files, ref.files)
    assert (tmp_path / "out" / "SOURCE.md").read_bytes() == (src / "SOURCE.md").read_bytes()
    import pyarrow.parquet as pq

    stored = set(pq.read_schema(tmp_path / "out" / "rows.parquet").names)
    assert {"file", "row", "t_s", "gcode_line", "gcode_string", "momo"} <= stored
    assert "raw_json" not in stored and "mpox" not in stored  # controller fields not kept
    absent = [c for c in schema.INPUT_COLUMNS if ref.rows[c].isna().all()]
    assert absent and not stored & set(absent)  # a source no file has is not stored
    # the command line writes the same files, to --out or else to the data folder (here a
    # temporary one: a bug in main must never overwrite the repository's shipped copy)
    import physml.paths

    default = tmp_path / "default_out"
    monkeypatch.setattr(physml.paths, "data_dir", lambda study: default / study)
    build_data.main(["--source", str(src), "--out", str(tmp_path / "cli")])
    assert (tmp_path / "cli" / "SHA256SUMS").read_text() == (
        tmp_path / "out" / "SHA256SUMS").read_text()
    assert not default.exists()
    build_data.main(["--source", str(src)])  # into a folder two levels down, not there yet
    assert (default / "cnc" / "SHA256SUMS").read_text() == (
        tmp_path / "out" / "SHA256SUMS").read_text()
    capsys.readouterr()
    build_data.main(["--source", str(src)])  # again: the folder exists now
    total = capsys.readouterr().out.splitlines()[-1].split()
    assert total[0] == "total" and float(total[1]) == pytest.approx(sum(sizes.values()) / 1e6,
                                                                    abs=0.006)
    (src / "SOURCE.md").unlink()
    with pytest.raises(FileNotFoundError, match="licence notice"):
        build_data.build(src, tmp_path / "again")


# ---------------------------------------------------------------- edges the mutation sweep found
def test_console_time_counts_hours_minutes_and_seconds():
    t = data.parse_console_times(pd.Series(["01:59:59.0", "02:00:01.5", "02:30:01.5"]), "f")
    assert t.tolist() == [0.0, 2.5, 1802.5]


def test_an_incomplete_source_names_its_missing_column(tmp_path):
    gone = "frame_r2.Gy"
    header = [c for c in HEADER if c != gone]
    rows = [[v for c, v in zip(HEADER, r, strict=True) if c != gone] for r in _rows()]
    with pytest.raises(data.RecordingError,
                       match=rf"source frame_r2 is incomplete: missing \['{gone}'\]"):
        data.read_recording(_write(tmp_path / "face_010_aligned.csv.gz", header, rows))


def test_targets_are_read_when_present_even_if_not_required(tmp_path):
    rec = data.read_recording(_write(tmp_path / "face_011_aligned.csv.gz"),
                              require_targets=False)
    assert rec.rows["gcode_line"].tolist() == [16, 17, 18]
    header = HEADER[:-2]
    rows = [r[:-2] for r in _rows()]
    bare = data.read_recording(_write(tmp_path / "face_012_aligned.csv.gz", header, rows),
                               require_targets=False)
    assert "gcode_line" not in bare.rows.columns and len(bare.rows) == 3


def test_a_non_integer_line_number_names_its_row(tmp_path):
    rows = _rows(3)
    rows[2][HEADER.index("gcode_line")] = "17.5"
    with pytest.raises(data.RecordingError, match=r"row 2 .*'gcode_line'.*17.5 is not an integer"):
        data.read_recording(_write(tmp_path / "face_013_aligned.csv.gz", rows=rows))


def test_duplicate_recordings_are_refused_by_name(tmp_path):
    p = _write(tmp_path / "face_014_aligned.csv.gz")
    q = _write(tmp_path / "face_015_aligned.csv.gz")
    with pytest.raises(ValueError, match=r"duplicate recording names: \['face_014', 'face_014'\]"):
        data.load_csvs([p, q, p])


def test_first_per_kind_and_load_from_a_folder_or_the_default(tmp_path):
    d = data.load_shipped()
    with pytest.raises(ValueError, match="n must be >= 0"):
        data.first_per_kind(d, -1)
    assert data.first_per_kind(d, 0) is d
    one = data.first_per_kind(d, 1)
    assert len(one.files) == d.files["kind"].fillna("unknown").nunique()
    assert list(one.rows.columns) == list(d.rows.columns)
    assert list(one.files.columns) == list(d.files.columns)
    assert one.rows.index.tolist() == list(range(len(one.rows)))
    for f in data.shipped_dir().iterdir():
        shutil.copy(f, tmp_path / f.name)
    again = data.load(tmp_path)  # a folder holding a shipped copy
    pd.testing.assert_frame_equal(again.rows, d.rows)
    assert len(data.load("").files) == len(data.load(None).files) == len(d.files) == 114
    csvs = tmp_path / "csvs"
    csvs.mkdir()
    _write(csvs / "face_016_aligned.csv.gz")
    assert data.load(csvs).files["file"].tolist() == ["face_016"]  # a folder of CSVs
