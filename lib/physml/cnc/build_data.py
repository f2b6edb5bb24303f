"""Build the shipped columnar copy of the CNC recordings: ``python -m physml.cnc.build_data``.

Reads every ``*_aligned.csv[.gz]`` in ``--source`` (default ``../shared/data/cnc`` next to the
repository) with :func:`physml.cnc.data.load_csvs` (``untargeted="drop_tail"``) and writes to
``--out`` (default ``data/cnc``):

- ``rows.parquet``: the columns the study uses: ``file row t_s``, the kept controller fields
  (for the labelled leak demonstrations only), the targets, and every input column that is
  present in at least one file (float32, NaN where a source is absent). ``raw_json`` and the
  other controller fields are dropped. Encoding: zstd level 19 with byte-stream-split for the
  float columns (float bytes compress about twice as well split by byte plane).
- ``files.parquet``: one row per file with kind, campaign and the missing-source mask.
- ``manifest.json``: counts and the rows dropped per file.
- ``SOURCE.md``: the source notice (MIT licence), copied unchanged.
- ``SHA256SUMS``: SHA-256 of the files above, verified by :func:`physml.cnc.data.load_shipped`.

Why parquet and not compressed npz: npz compresses with zlib over interleaved float bytes
(about 1.3x on these sensor values); parquet's byte-stream-split + zstd gets about twice that,
keeps column names and types, and reads column-selectively. pyarrow is already a planned
dependency of physml.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import schema
from .data import CHECKSUMS, SHIPPED_FILES, SHIPPED_ROWS, load_csvs, sha256, write_manifest


def default_source() -> Path:
    """``../shared/data/cnc`` beside the repository (the upstream recordings)."""
    from physml.paths import shared_data_dir

    return shared_data_dir("cnc")


def build(source: Path, out: Path) -> dict[str, int]:
    """Write the shipped copy of ``source`` into ``out``; returns ``{file: bytes}``."""
    source, out = Path(source), Path(out)
    notice = source / "SOURCE.md"
    if not notice.is_file():
        raise FileNotFoundError(f"{notice} (the source's licence notice) is required")
    data = load_csvs(source, untargeted="drop_tail")
    out.mkdir(parents=True, exist_ok=True)
    rows = data.rows
    used = [c for c in schema.INPUT_COLUMNS if rows[c].notna().any()]
    keep = (["file", "row", "t_s"] + list(schema.KEPT_CONTROLLER_FIELDS) + list(schema.TARGETS)
            + used)
    table = pa.Table.from_pandas(rows[keep], preserve_index=False)
    table = table.set_column(0, "file", table.column("file").dictionary_encode())
    idx = table.schema.get_field_index("gcode_string")
    table = table.set_column(idx, "gcode_string", table.column("gcode_string").dictionary_encode())
    floats = [f.name for f in table.schema if pa.types.is_floating(f.type)]
    pq.write_table(table, out / SHIPPED_ROWS, compression="zstd", compression_level=19,
                   use_byte_stream_split=floats, use_dictionary=["file", "gcode_string"],
                   row_group_size=len(rows))
    pq.write_table(pa.Table.from_pandas(data.files, preserve_index=False), out / SHIPPED_FILES,
                   compression="zstd")
    write_manifest(data, out / "manifest.json")
    shutil.copyfile(notice, out / "SOURCE.md")
    names = [SHIPPED_ROWS, SHIPPED_FILES, "manifest.json", "SOURCE.md"]
    (out / CHECKSUMS).write_text("".join(f"{sha256(out / n)}  {n}\n" for n in names))
    return {n: (out / n).stat().st_size for n in names + [CHECKSUMS]}


def main(argv: list[str] | None = None) -> None:
    from physml.paths import data_dir

    ap = argparse.ArgumentParser(prog="python -m physml.cnc.build_data", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", type=Path, default=None,
                    help="folder of *_aligned.csv[.gz] files and SOURCE.md "
                         "(default: ../shared/data/cnc beside the repository)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: data/cnc)")
    a = ap.parse_args(argv)
    sizes = build(a.source or default_source(), a.out or data_dir("cnc"))
    for n, b in sizes.items():
        print(f"{n:16s} {b / 1e6:8.2f} MB")
    print(f"{'total':16s} {sum(sizes.values()) / 1e6:8.2f} MB")


if __name__ == "__main__":
    main()
