"""``physml cnc ...``: the CNC study's command line (``physml cnc evaluate MODEL_DIR FILE...``).

Only :mod:`argparse` is imported at module level; the study's modules load when a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``cnc`` sub-commands to ``parser`` (the ``physml cnc`` parser)."""
    sub = parser.add_subparsers(dest="cnc_command", required=True)
    ev = sub.add_parser("evaluate", help="score a saved model (notebook 04 or 05) on recordings "
                        "in the original *_aligned.csv[.gz] layout")
    ev.add_argument("model_dir", metavar="MODEL_DIR",
                    help="folder with manifest.json (e.g. reports/cnc/models/alignment)")
    ev.add_argument("files", nargs="+", metavar="FILE", help="recordings (.csv or .csv.gz)")
    ev.add_argument("--json", metavar="OUT", help="also write the full result as JSON to OUT")
    ev.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Run :func:`physml.cnc.evaluate`; print a summary; 1 on a bad file/model."""
    from pathlib import Path

    from .data import RecordingError
    from .evaluation import evaluate

    try:
        res = evaluate(args.model_dir, args.files)
    except (RecordingError, FileNotFoundError, ValueError) as exc:
        print(f"physml cnc evaluate: {exc}", file=sys.stderr)
        return 1
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    keys = ["kind", "rows", "command_balanced_accuracy", "token_accuracy_free_running",
            "line_exact_accuracy", "operation_accuracy"]
    print(f"files: {len(res['files'])}")
    for k in keys:
        if k in res:
            v = res[k]
            print(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}")
    ign = res["ignored"]
    print("ignored columns (unknown): " + (", ".join(ign["unknown_columns"]) or "none"))
    unused = ign["unused_input_columns"]
    groups = sorted({c.split(".", 1)[0] if "." in c else c for c in unused})
    print(f"ignored input columns (not used by the model): {len(unused)}"
          + (f", from {', '.join(groups)}" if groups else "") + " (full list in --json)")
    return 0
