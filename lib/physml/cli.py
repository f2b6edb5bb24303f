"""The ``physml`` command: ``physml render ...``, ``physml scoreboard`` and ``physml list``."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from physml import render as R
from physml.paths import all_notebooks, repo_root, reports_dir


def _on_sigterm(signum: int, frame: object) -> None:
    # Turn `kill` into an exception so running notebooks are stopped and temporary files removed.
    raise KeyboardInterrupt(f"signal {signum}")


def cmd_render(a: argparse.Namespace) -> int:
    try:
        jobs = R.plan(a.targets, profile=a.profile, params_file=a.params, overrides=a.p,
                      out=a.out)
    except R.RenderError as e:
        print(f"physml render: {e}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_sigterm)
    # Ctrl-C / kill -INT stop the render even where the parent started us with SIGINT ignored
    # (a background job of a non-interactive shell), which Python would otherwise inherit
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        outcomes = R.render(jobs, timeout_s=a.timeout, workers=a.workers, scheduler=a.scheduler)
    except KeyboardInterrupt:
        print("physml render: interrupted; reports already written are kept, "
              "the interrupted notebook's report was not replaced", file=sys.stderr)
        return 130
    print()
    print(R.summary_table(outcomes))
    if jobs:
        print(f"index: {jobs[0].reports_dir / 'index.html'}")
    return 0 if all(o.status == "ok" for o in outcomes) else 1


def cmd_list(a: argparse.Namespace) -> int:
    from physml.report import notebook_status

    root = repo_root()
    reports = reports_dir(root)
    print(f"{'notebook':<38} {'default params':<16} {'smoke params':<14} {'research':<10} "
          "last render")
    for nb in all_notebooks(root):
        have = [("yes" if R.params_path(nb, p, root).exists() else "MISSING") for p in R.PROFILES]
        have[2] = "yes" if have[2] == "yes" else "-"  # optional
        st = notebook_status(reports, nb.parent.name, nb.stem)
        when = f" ({st['when']}, {st['wall_s']:.1f} s)" if st["when"] else ""
        print(f"{nb.parent.name + '/' + nb.stem:<38} {have[0]:<16} {have[1]:<14} {have[2]:<10} "
              f"{st['status']}{when}")
    return 0


def cmd_scoreboard(a: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from physml import scoreboard

    reports = Path(a.reports) if a.reports else reports_dir()
    if not reports.is_dir():
        print(f"physml scoreboard: no reports folder at {reports} (run: make reports)",
              file=sys.stderr)
        return 2
    table = scoreboard.rows(reports)
    if a.json:
        print(json.dumps(table, indent=1))
    else:
        print(scoreboard.to_text(table))
        missing = scoreboard.studies_without_headlines(reports)
        if missing:
            print(f"\nstudies without a rendered headline: {', '.join(missing)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="physml", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="execute notebooks with parameters into HTML reports")
    r.add_argument("targets", nargs="*", help="notebooks or study folders (default: all)")
    r.add_argument("--profile", choices=R.PROFILES, default="default",
                   help="params/<study>/NN_topic.yaml (default), NN_topic.smoke.yaml, or "
                   "the default overlaid with NN_topic.research.yaml (research)")
    r.add_argument("--params", metavar="FILE", help="YAML file whose values override the profile")
    r.add_argument("-p", action="append", default=[], metavar="KEY=VALUE",
                   help="override one parameter (value parsed as YAML); repeatable")
    r.add_argument("--out", metavar="DIR", help="reports folder (default: <repo>/reports)")
    r.add_argument("--workers", type=int, metavar="N",
                   help="render on a Dask LocalCluster with N workers (one task per study)")
    r.add_argument("--scheduler", metavar="ADDRESS",
                   help="render on an existing Dask cluster, e.g. tcp://host:8786")
    r.add_argument("--timeout", type=float, default=R.DEFAULT_TIMEOUT_S, metavar="SECONDS",
                   help=f"per-notebook time limit (default {R.DEFAULT_TIMEOUT_S:g})")
    r.set_defaults(func=cmd_render)
    sb = sub.add_parser("scoreboard", help="every study's physics / ML / hybrid headlines")
    sb.add_argument("--reports", metavar="DIR", help="reports folder (default: <repo>/reports)")
    sb.add_argument("--json", action="store_true", help="print the rows as JSON")
    sb.set_defaults(func=cmd_scoreboard)
    ls = sub.add_parser("list", help="notebooks, their params files and last render status")
    ls.set_defaults(func=cmd_list)
    from physml.cnc import cli as cnc_cli

    cnc_cli.configure(sub.add_parser("cnc", help="CNC study: evaluate a saved model on recordings"))
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    if getattr(a, "workers", None) is not None and getattr(a, "scheduler", None) is not None:
        print("physml render: give --workers or --scheduler, not both", file=sys.stderr)
        return 2
    return a.func(a)


if __name__ == "__main__":
    sys.exit(main())
