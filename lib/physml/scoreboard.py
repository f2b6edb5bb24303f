"""The cross-study scoreboard: every study's headlines, side by side, with their verdicts.

Rows come from the results files the renderer writes (``reports/<study>/NN_topic.json``,
section ``"headlines"``, see :mod:`physml.results`). A row whose notebook failed at its last
render, whose notebook or study library changed since (stale), or that was rendered with the
smoke profile carries that status; its numbers are never shown as if current.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
from pathlib import Path
from typing import Any

from physml import paths
from physml.paths import all_notebooks, repo_root
from physml.results import format_ci, keep_intervals_whole

SIDES = ("physics", "ml", "hybrid")
VERDICT_COLOURS = {"physics": "#1f5fa8", "ml": "#b3541e", "hybrid": "#5b3f99",
                   "tie": "#4d7a2a", "inconclusive": "#777"}
SIDE_COLOURS = {"physics": "#1f5fa8", "ml": "#b3541e", "hybrid": "#5b3f99"}


# --------------------------------------------------------------------------- fingerprints


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def inputs_fingerprint(notebook: Path, params: dict[str, Any], root: Path | None = None
                       ) -> dict[str, str]:
    """Hashes of what a report depends on: the notebook, its params, its study's library code.

    Stored in every results file; a report is *stale* when the notebook or the study library
    of the current tree hashes differently.
    """
    root = root or repo_root()
    lib = paths.study_lib_dir(notebook.parent.name, root)
    code = b"".join(p.relative_to(root).as_posix().encode() + p.read_bytes()
                    for p in sorted(lib.rglob("*.py"))) if lib.is_dir() else b""
    return {"notebook": _sha(notebook.read_bytes()),
            "params": _sha(json.dumps(params, sort_keys=True, default=str).encode()),
            "library": _sha(code)}


def freshness(data: dict[str, Any], notebook: Path, root: Path | None = None) -> str | None:
    """Why a successful report no longer matches the tree (None when it does)."""
    stored = data.get("inputs")
    if not stored:
        return "rendered before inputs were fingerprinted"
    if not notebook.exists():
        return "notebook no longer exists"
    now = inputs_fingerprint(notebook, data.get("params", {}), root)
    changed = [k for k in ("notebook", "library") if stored.get(k) != now[k]]
    return f"{' and '.join(changed)} changed since this render" if changed else None


# --------------------------------------------------------------------------- rows


def _status(reports_dir: Path, nb: Path, root: Path) -> tuple[str, str, dict[str, Any] | None]:
    """(status, detail, last good results) of one notebook's report."""
    base = reports_dir / nb.parent.name
    ok_path, fail_path = base / f"{nb.stem}.json", base / f"{nb.stem}.failed.json"
    ok = json.loads(ok_path.read_text()) if ok_path.exists() else None
    if fail_path.exists() and (ok is None or fail_path.stat().st_mtime >= ok_path.stat().st_mtime):
        detail = json.loads(fail_path.read_text()).get("detail", "")
        return ("failed", f"last render failed ({detail[:200]}); numbers from the last good "
                "render", ok)
    if ok is None:
        return "never rendered", "", None
    why = freshness(ok, nb, root)
    profile = ok.get("profile", "default")
    smoke = f"{profile} profile (not research-grade numbers)" if profile != "default" else ""
    if why:
        return "stale", "; ".join(filter(None, [why, smoke])), ok
    return "ok", smoke, ok


def rows(reports_dir: Path | None = None, root: Path | None = None) -> list[dict[str, Any]]:
    """One row per headline of every notebook with a results file, in study / notebook order.

    Each row: ``study, notebook, report, key, question, metric, unit, better, physics, ml,
    hybrid`` (each ``{value, ci_low, ci_high, unit, name}`` or None), ``verdict``, ``detail``,
    ``anchor``, ``scale``, ``status`` (ok / stale / failed) and ``status_detail``.
    """
    root = root or repo_root()
    reports_dir = reports_dir or paths.reports_dir(root)
    out = []
    for nb in all_notebooks(root):
        status, why, data = _status(reports_dir, nb, root)
        if data is None:
            continue
        for key, h in (data.get("headlines") or {}).items():
            out.append({
                "study": nb.parent.name, "notebook": f"{nb.parent.name}/{nb.stem}",
                "report": f"{nb.parent.name}/{nb.stem}.html", "key": key,
                "question": h.get("question"), "metric": h.get("metric"),
                "unit": h.get("unit"), "better": h.get("better"), "scale": h.get("scale"),
                **{s: _side(h.get(s), h.get("unit")) for s in SIDES},
                "verdict": h.get("verdict"),
                "verdict_label": verdict_label(h.get("verdict"), h.get("pairs")),
                "detail": h.get("detail"),
                "anchor": h.get("anchor"), "status": status, "status_detail": why,
            })
    return out


def verdict_label(verdict: str | None, pairs: dict[str, Any] | None) -> str:
    """The verdict as the scoreboard shows it: the winning side, "inconclusive", or for a
    tie the sides that are equivalent (e.g. ``"ml ≈ hybrid"``, read off the best side's
    pairwise comparisons ``"<best>_vs_<other>"`` of :func:`physml.results.headline`), so that
    a tie of two sides is not read as a tie of all three. ``"tie"`` when no pairs are stored.

    >>> verdict_label("tie", {"ml_vs_hybrid": {"outcome": "tie"},
    ...                       "ml_vs_physics": {"outcome": "a"}})
    'ml ≈ hybrid'
    >>> verdict_label("hybrid", {}), verdict_label(None, None)
    ('hybrid', '')
    """
    if verdict != "tie" or not pairs:
        return verdict or ""
    best = {k.split("_vs_")[0] for k in pairs}
    tied = {k.split("_vs_")[1] for k, p in pairs.items() if p.get("outcome") == "tie"}
    if len(best) != 1 or not tied:
        return verdict
    return " ≈ ".join(s for s in SIDES if s in best | tied)


def _side(s: dict[str, Any] | None, unit: str | None) -> dict[str, Any] | None:
    if not s:
        return None
    return {"value": s.get("value"), "ci_low": s.get("ci_low"), "ci_high": s.get("ci_high"),
            "unit": unit, "name": s.get("name")}


def studies_without_headlines(reports_dir: Path | None = None, root: Path | None = None
                              ) -> list[str]:
    """Studies with notebooks but no headline in any results file."""
    root = root or repo_root()
    have = {r["study"] for r in rows(reports_dir, root)}
    return sorted({nb.parent.name for nb in all_notebooks(root)} - have)


# --------------------------------------------------------------------------- text


def _cell(s: dict[str, Any] | None) -> str:
    if not s:
        return "—"
    return format_ci(s["value"], s["ci_low"], s["ci_high"])


def to_text(table: list[dict[str, Any]]) -> str:
    """The scoreboard as a plain-text table for the terminal."""
    if not table:
        return "no headlines recorded yet (render the studies: make reports)"
    head = ["study", "headline", "physics", "ML", "hybrid", "verdict", "status"]
    body = []
    for r in table:
        unit = f" ({r['unit']})" if r.get("unit") else ""
        status = r["status"] + (f": {r['status_detail']}" if r["status_detail"] else "")
        body.append([r["study"], f"{r['key']}{unit}", _cell(r["physics"]), _cell(r["ml"]),
                     _cell(r["hybrid"]), r.get("verdict_label", r["verdict"]) or "", status])
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head))]
    widths[-1] = min(widths[-1], 60)
    line = lambda cols: "  ".join(str(c)[:w].ljust(w) for c, w in zip(cols, widths, strict=True))  # noqa: E731
    return "\n".join([line(head), "  ".join("-" * w for w in widths), *map(line, body)])


# --------------------------------------------------------------------------- html


def _svg(r: dict[str, Any], width: int = 180, height: int = 46) -> str:
    """Dots with 95% CI whiskers for each side on a shared axis (log axis for scale='log')."""
    sides = [(s, r[s]) for s in SIDES if r.get(s)]
    vals = [v for _, s in sides for v in (s["ci_low"], s["ci_high"], s["value"])
            if isinstance(v, (int, float)) and math.isfinite(v)]
    if not vals:
        return ""
    log = r.get("scale") == "log" and min(vals) > 0
    f = math.log10 if log else (lambda x: x)
    lo, hi = f(min(vals)), f(max(vals))
    pad = (hi - lo) * 0.08 or 1.0
    lo, hi = lo - pad, hi + pad
    x = lambda v: 6 + (f(v) - lo) / (hi - lo) * (width - 12)  # noqa: E731
    parts = []
    for i, (name, s) in enumerate(sides):
        y = 9 + i * 14
        c = SIDE_COLOURS[name]
        parts.append(
            f'<line x1="{x(s["ci_low"]):.1f}" x2="{x(s["ci_high"]):.1f}" y1="{y}" y2="{y}" '
            f'stroke="{c}" stroke-width="2"/><circle cx="{x(s["value"]):.1f}" cy="{y}" r="3.5" '
            f'fill="{c}"><title>{name}: {_cell(s)}</title></circle>')
    axis = "log axis" if log else "linear axis"
    return (f'<svg class="sb-chart" width="{width}" height="{height}" role="img" '
            f'aria-label="{html.escape(r["key"])}: answers with 95% CI, {axis}">'
            + "".join(parts) + "</svg>")


def to_html(table: list[dict[str, Any]]) -> str:
    """The scoreboard table for the index page (links are relative to the reports folder)."""
    if not table:
        return ('<p class="sb-empty">No headlines recorded yet: render the studies '
                "(<code>make reports</code>).</p>")
    out = ['<table class="scoreboard"><tr><th>study</th><th>question</th><th>physics</th>'
           "<th>ML</th><th>hybrid</th><th>verdict</th><th>95% CIs</th><th>notebook</th></tr>"]
    for r in table:
        def cell(s: dict[str, Any] | None) -> str:
            if not s:
                return '<td class="sb-none">—</td>'
            name = f'<div class="sb-name">{html.escape(s["name"])}</div>' if s.get("name") else ""
            return f"<td>{html.escape(keep_intervals_whole(_cell(s)))}{name}</td>"

        unit = f" ({html.escape(r['unit'])})" if r.get("unit") else ""
        anchor = ""
        if r.get("anchor"):
            a = r["anchor"]
            anchor = (f'<div class="sb-anchor">reference: {html.escape(a.get("name", ""))} '
                      f'{html.escape(a.get("text", ""))}</div>')
        marker = ""
        if r["status"] != "ok":
            marker = (f'<div class="sb-status">{html.escape(r["status"].upper())}: '
                      f'{html.escape(r["status_detail"])}</div>')
        elif r["status_detail"]:
            marker = f'<div class="sb-note">{html.escape(r["status_detail"])}</div>'
        colour = VERDICT_COLOURS.get(r["verdict"], "#777")
        out.append(
            f'<tr class="sb-row sb-{r["status"]}"><td>{html.escape(r["study"])}</td>'
            f'<td class="sb-question"><b>{html.escape(r["question"] or "")}</b>'
            f'<div class="sb-metric">{html.escape(r["metric"] or "")}{unit}, '
            f'{html.escape(r["better"] or "")} is better'
            f"</div>{anchor}{marker}</td>"
            + cell(r["physics"]) + cell(r["ml"]) + cell(r["hybrid"])
            + f'<td class="sb-verdict" title="{html.escape(r["detail"] or "")}">'
            f'<span style="background:{colour}">'
            f'{html.escape(r.get("verdict_label", r["verdict"]) or "")}</span></td>'
            f"<td>{_svg(r)}</td>"
            f'<td><a href="{html.escape(r["report"])}">'
            f'{html.escape(r["notebook"]).replace("/", "/<wbr>")}</a></td></tr>')
    out.append("</table>")
    legend = " ".join(f'<span style="color:{c}">● {s}</span>' for s, c in SIDE_COLOURS.items())
    out.append(f'<p class="sb-legend">{legend} — dots are means, bars 95% CIs. A side wins when '
               "its difference to every other side has a CI excluding zero; a tie needs an "
               "equivalence test (TOST) within the study's declared margin; anything else is "
               "inconclusive. Hover a verdict for its reason.</p>")
    return "\n".join(out)


CSS = """
table.scoreboard { border-collapse: collapse; margin-bottom: 8px; }
table.scoreboard th, table.scoreboard td { text-align: left; padding: 5px 9px;
  border-bottom: 1px solid #ddd; vertical-align: top; }
.sb-metric, .sb-name, .sb-anchor { color: #666; font-size: 12px; }
td.sb-question { min-width: 14em; }  /* the intervals beside it no longer wrap inside */
.sb-verdict span { color: white; border-radius: 4px; padding: 2px 7px; font-weight: bold; }
.sb-status { font-size: 12px; font-weight: bold; color: #b00020; }
.sb-stale .sb-status { color: #a66a00; }
.sb-note { font-size: 12px; color: #6a5d00; font-style: italic; }
tr.sb-failed td, tr.sb-stale td { background: #fff7e6; }
.sb-legend { color: #555; font-size: 12px; max-width: 1000px; }
"""
