"""HTML reports: one self-contained page per executed notebook, and the index over all.

A report opens with the notebook's title and its provenance (parameters, git commit and dirty
flag, package versions, CPU, wall time). Code cells are collapsed behind a "Show code" toggle so
the report reads without code; cell tags refine that: ``remove-cell`` drops a cell,
``remove-input`` (or ``hide-input``) drops its code for good, ``remove-output`` its outputs.
Images are embedded and Plotly figures carry plotly.js inline (see :mod:`physml.plots`), so the
page works offline.
"""

from __future__ import annotations

import copy
import datetime as _dt
import html
import json
import os
import re
from pathlib import Path
from typing import Any

import nbformat

from physml.paths import all_notebooks

CSS = """
<style>
body.physml-hide-code .jp-CodeCell .jp-Cell-inputWrapper { display: none; }
.jp-InputPrompt, .jp-OutputPrompt { visibility: hidden; min-width: 0; width: 0; }
#physml-toolbar { position: sticky; top: 0; z-index: 1000; display: flex;
  justify-content: flex-end; padding: 4px 14px; background: rgba(255, 255, 255, 0.96);
  border-bottom: 1px solid #e1e4e8; }
#physml-code-toggle { padding: 3px 10px; font: 13px sans-serif; background: #f4f4f4;
  border: 1px solid #999; border-radius: 4px; cursor: pointer; }
.physml-provenance { font: 13px/1.4 sans-serif; background: #f6f8fa; border: 1px solid #d0d7de;
  border-radius: 6px; padding: 8px 12px; margin: 6px 0 14px 0; }
.physml-provenance table { border-collapse: collapse; margin: 4px 0; }
.physml-provenance td { padding: 1px 10px 1px 0; vertical-align: top; }
.physml-findings { font: 14px/1.45 sans-serif; background: #f3f8f1; border: 1px solid #9cc490;
  border-radius: 6px; padding: 8px 14px; margin: 6px 0 14px 0; }
.physml-findings h3 { margin: 2px 0 4px 0; font-size: 15px; }
.physml-findings li { margin: 3px 0; }
</style>
"""

TOOLBAR = ('<div id="physml-toolbar">'
           '<button id="physml-code-toggle" type="button">Show code</button></div>\n')
"""The bar that opens the page's body and stays at the top of the window as the page scrolls
(sticky, its own strip: a button floating over the page covered the end of whatever line
scrolled under it)."""

TOGGLE = """
<script>
(function () {
  var b = document.getElementById('physml-code-toggle');
  document.body.classList.add('physml-hide-code');
  b.addEventListener('click', function () {
    var hidden = document.body.classList.toggle('physml-hide-code');
    b.textContent = hidden ? 'Show code' : 'Hide code';
  });
})();
</script>
"""


def provenance_html(name: str, params: dict[str, Any], prov: dict[str, Any]) -> str:
    """The provenance block that opens every report."""
    git = prov.get("git", {})
    commit = (git.get("commit") or "unknown")[:12]
    dirty = {True: " (dirty tree)", False: " (clean tree)"}.get(git.get("dirty"), "")
    versions = ", ".join(f"{k} {v}" for k, v in prov.get("versions", {}).items() if v)
    rows = "".join(
        f"<tr><td><code>{html.escape(str(k))}</code></td>"
        f"<td><code>{html.escape(json.dumps(v))}</code></td></tr>" for k, v in params.items()
    ) or "<tr><td>(notebook defaults)</td></tr>"
    return (
        '<div class="physml-provenance">'
        f"<b>{html.escape(name)}</b> · commit <code>{commit}</code>{dirty} · "
        f"wall time {prov.get('wall_time_s', float('nan')):.1f} s · started {prov.get('started')}"
        f"<br>CPU: {html.escape(str(prov.get('cpu')))} · {html.escape(str(prov.get('platform')))}"
        f"<br>Versions: {html.escape(versions)}"
        f"<details><summary>Parameters ({len(params)})</summary><table>{rows}</table></details>"
        "</div>"
    )


def findings_html(headlines: dict[str, Any]) -> str:
    """The "Findings" box that opens a report: one item per headline the notebook recorded."""
    from physml.results import ci_parts, keep_intervals_whole
    from physml.scoreboard import VERDICT_COLOURS, verdict_label

    items = []
    for h in headlines.values():
        sides = []
        for s, label in (("physics", "physics"), ("ml", "ML"), ("hybrid", "hybrid")):
            v = h.get(s)
            if v:
                nm = f", <i>{html.escape(v['name'])}</i>" if v.get("name") else ""
                m, lo, hi = ci_parts(v["value"], v["ci_low"], v["ci_high"])
                sides.append(keep_intervals_whole(f"{label}{nm}: <b>{m}</b> [{lo}, {hi}]"))
        unit = f" ({html.escape(h['unit'])})" if h.get("unit") else ""
        colour = VERDICT_COLOURS.get(h["verdict"], "#777")
        items.append(
            f"<li><b>{html.escape(h['question'])}</b> {html.escape(h['metric'])}{unit}, "
            f"{html.escape(h['better'])} is better: {'; '.join(sides)}. Verdict: "
            f'<b style="color:{colour}">{html.escape(verdict_label(h["verdict"], h.get("pairs")))}'
            f"</b> — {html.escape(h['detail'])}.</li>")
    return ('<div class="physml-findings"><h3>Findings</h3><ul>' + "".join(items)
            + "</ul></div>")


def _with_provenance(nb: nbformat.NotebookNode, block: str) -> nbformat.NotebookNode:
    nb = copy.deepcopy(nb)
    cell = nbformat.v4.new_markdown_cell(block)
    cell.metadata["tags"] = ["physml-provenance"]
    first_md = nb.cells and nb.cells[0].cell_type == "markdown"
    nb.cells.insert(1 if first_md else 0, cell)
    return nb


def to_html(nb: nbformat.NotebookNode, name: str, params: dict[str, Any],
            prov: dict[str, Any], headlines: dict[str, Any] | None = None) -> str:
    """Export an executed notebook to one self-contained HTML page: provenance, then the
    Findings box built from the notebook's headlines (when it recorded any)."""
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from traitlets.config import Config

    cfg = Config()
    cfg.TagRemovePreprocessor.enabled = True
    cfg.TagRemovePreprocessor.remove_cell_tags = {"remove-cell"}
    cfg.TagRemovePreprocessor.remove_input_tags = {"remove-input", "hide-input"}
    cfg.TagRemovePreprocessor.remove_all_outputs_tags = {"remove-output"}
    exporter = HTMLExporter(config=cfg, template_name="lab", embed_images=True)
    exporter.register_preprocessor(TagRemovePreprocessor(config=cfg), enabled=True)
    body, _ = exporter.from_notebook_node(
        _with_provenance(nb, provenance_html(name, params, prov)
                         + (findings_html(headlines) if headlines else "")),
        resources={"metadata": {"name": name}},
    )
    body = body.replace("</head>", CSS + "</head>", 1)
    body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + TOOLBAR, body, count=1)
    return body.replace("</body>", TOGGLE + "</body>", 1)


# --------------------------------------------------------------------------- index


def notebook_status(reports_dir: Path, study: str, stem: str) -> dict[str, Any]:
    """Status of one notebook from its results/failure files: ok, failed or never rendered."""
    base = reports_dir / study
    ok_path, fail_path = base / f"{stem}.json", base / f"{stem}.failed.json"
    ok = json.loads(ok_path.read_text()) if ok_path.exists() else None
    failed = json.loads(fail_path.read_text()) if fail_path.exists() else None
    if failed is not None and (ok is None or fail_path.stat().st_mtime >= ok_path.stat().st_mtime):
        return {"status": "failed", "detail": failed.get("detail", ""), "data": ok,
                "wall_s": failed.get("provenance", {}).get("wall_time_s"),
                "last_good": ok is not None, "figures": (ok or {}).get("figures", {}),
                "when": failed.get("provenance", {}).get("started")}
    if ok is not None:
        return {"status": "ok", "detail": "", "data": ok,
                "wall_s": ok["provenance"].get("wall_time_s"),
                "last_good": True, "figures": ok.get("figures", {}),
                "when": ok["provenance"].get("started")}
    return {"status": "never rendered", "detail": "", "data": None, "wall_s": None,
            "last_good": False,
            "figures": {}, "when": None}


def key_figures(figures: dict[str, Any], k: int = 4) -> str:
    """The first ``k`` scalar figures as ``name = value unit`` (numbers as
    :func:`physml.results.format_number` writes them: 127,000, not 1.27e+05)."""
    from physml.results import format_number

    out = []
    for name, f in figures.items():
        v = f.get("value")
        if isinstance(v, bool) or not isinstance(v, (int, float, str)) or (
                isinstance(v, str) and len(v) > 30):
            continue
        val = format_number(v) if isinstance(v, float) else str(v)
        out.append(f"{name} = {val}" + (f" {f['unit']}" if f.get("unit") else ""))
        if len(out) == k:
            break
    return "; ".join(out)


def write_index(reports_dir: Path, root: Path | None = None) -> Path:
    """Write ``reports_dir/index.html``: the scoreboard over every study's headlines, then the
    list of every notebook in the repository with its status."""
    from physml import scoreboard

    board = scoreboard.to_html(scoreboard.rows(reports_dir, root))
    rows = []
    for nb in all_notebooks(root):
        study, stem = nb.parent.name, nb.stem
        st = notebook_status(reports_dir, study, stem)
        why = scoreboard.freshness(st["data"], nb, root) if st["status"] == "ok" else None
        if why:
            st = {**st, "status": "stale", "detail": why}
        link = (f'<a href="{study}/{stem}.html">{study}/{stem}</a>' if st["last_good"]
                else f"{study}/{stem}")
        status = st["status"] + (" (last good report linked)" if st["status"] == "failed"
                                 and st["last_good"] else "")
        wall = "" if st["wall_s"] is None else f"{st['wall_s']:.1f}"
        rows.append(
            f'<tr class="{st["status"].replace(" ", "-")}"><td>{link}</td>'
            f"<td>{html.escape(status)}</td><td>{wall}</td><td>{html.escape(st['when'] or '')}</td>"
            f"<td>{html.escape(key_figures(st['figures']))}</td>"
            f"<td>{html.escape(st['detail'])}</td></tr>"
        )
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>physml reports</title>
<style>
body {{ font: 14px/1.45 sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; }}
th, td {{ text-align: left; padding: 4px 10px; border-bottom: 1px solid #ddd;
          vertical-align: top; }}
tr.failed td:nth-child(2) {{ color: #b00020; font-weight: bold; }}
tr.ok td:nth-child(2) {{ color: #1b7f3b; }}
tr.never-rendered td:nth-child(2) {{ color: #888; }}
tr.stale td:nth-child(2) {{ color: #a66a00; font-weight: bold; }}
{scoreboard.CSS}
</style></head><body>
<h1>physml reports</h1>
<p>Where does physics beat machine learning, where does ML beat physics, and what does combining
them buy? Regenerated {now}.</p>
<h2>Scoreboard</h2>
{board}
<h2>Notebooks</h2>
<table class="notebooks"><tr><th>notebook</th><th>status</th><th>wall time (s)</th>
<th>rendered (UTC)</th><th>key figures</th><th>failure</th></tr>
{''.join(rows)}
</table></body></html>
"""
    reports_dir.mkdir(parents=True, exist_ok=True)
    tmp = reports_dir / ".index.html.partial"
    tmp.write_text(page)
    os.replace(tmp, reports_dir / "index.html")
    return reports_dir / "index.html"
