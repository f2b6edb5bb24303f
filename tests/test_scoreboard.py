"""The scoreboard: headlines rendered into the index, the CLI and each report's Findings box."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from browser import CHROMIUM, FLAGS, require_chromium
from notebook_fixtures import write_notebook, write_params
from physml import scoreboard

HEADLINE_CELL = (
    "import numpy as np\nfrom physml.results import headline\n"
    "rng = np.random.default_rng(0)\n"
    "h = headline('acc', 'Which method classifies held-out files?', 'balanced accuracy', None,\n"
    "             'higher', physics=0.60 + rng.normal(0, 0.01, 5) + shift,\n"
    "             ml=0.80 + rng.normal(0, 0.01, 5), hybrid=0.90 + rng.normal(0, 0.01, 5),\n"
    "             margin=0.02, names={'ml': 'FIXTURE_RF'},\n"
    "             anchor={'name': 'clock rule', 'value': 0.726, 'source': 'audit'})\n"
    "assert not fail, 'FIXTURE_FAILURE'"
)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "physml.cli", *args], capture_output=True,
                          text=True, timeout=300, env=os.environ.copy())


@pytest.fixture
def board(project):
    write_notebook(project / "notebooks/zeta/01_answer.ipynb",
                   "shift: float = 0.0\nfail: bool = False", HEADLINE_CELL,
                   title="# Zeta: a study with a headline")
    write_params(project, "zeta", "01_answer", {"shift": 0.0})
    res = cli("render", str(project / "notebooks/zeta/01_answer.ipynb"))
    assert res.returncode == 0, res.stdout + res.stderr
    return project


@pytest.mark.slow
def test_index_report_and_cli_show_the_headline_and_mark_staleness(board):
    # one render serves every read-only check (renders are the slow part)
    page = (board / "reports/index.html").read_text()
    assert page.index("Scoreboard") < page.index("Notebooks")
    assert "Which method classifies held-out files?" in page and "FIXTURE_RF" in page
    assert ">hybrid</span>" in page  # computed verdict, hybrid CI-separated from both
    assert 'href="zeta/01_answer.html"' in page and (board / "reports/zeta/01_answer.html").exists()
    assert "clock rule" in page and "<svg" in page
    # an interval breaks only before its bracket, in the table and in the Findings box
    assert re.search(r"<td>[0-9.]+ \[[0-9.]+,\u00a0[0-9.]+\]<div", page)
    assert ">zeta/<wbr>01_answer</a>" in page  # a long notebook name may wrap after its folder

    html = (board / "reports/zeta/01_answer.html").read_text()
    prov, find = html.index('class="physml-provenance"'), html.index('class="physml-findings"')
    assert prov < find
    assert "Verdict" in html[find:find + 3000] and "hybrid" in html[find:find + 3000]
    assert re.search(r"</b> \[[0-9.]+,\u00a0[0-9.]+\]", html[find:find + 3000])

    res = cli("scoreboard", "--json", "--reports", str(board / "reports"))
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert row["study"] == "zeta" and row["key"] == "acc" and row["verdict"] == "hybrid"
    assert row["status"] == "ok" and not row["status_detail"]
    for side in ("physics", "ml", "hybrid"):
        assert {"value", "ci_low", "ci_high", "unit"} <= set(row[side])
    text = cli("scoreboard", "--reports", str(board / "reports")).stdout
    assert "zeta" in text and "hybrid" in text
    assert "without a rendered headline: demo" in text  # the fixture demo study has none

    nb = board / "notebooks/zeta/01_answer.ipynb"
    nb.write_text(nb.read_text().replace("held-out files", "held-out FILES"))
    (row,) = scoreboard.rows(board / "reports", board)
    assert row["status"] == "stale" and "notebook changed" in row["status_detail"]
    from physml.report import write_index

    assert "STALE" in write_index(board / "reports", board).read_text()


@pytest.mark.slow
def test_failed_render_marks_the_row_failed_with_last_good_numbers(board):
    res = cli("render", str(board / "notebooks/zeta/01_answer.ipynb"), "-p", "fail=true")
    assert res.returncode == 1
    (row,) = scoreboard.rows(board / "reports", board)
    assert row["status"] == "failed" and "last good" in row["status_detail"]
    assert "FAILED" in (board / "reports/index.html").read_text()


def test_rows_skip_never_rendered_and_smoke_profile_is_marked(project, tmp_path):
    assert scoreboard.rows(project / "reports", project) == []
    reports = project / "reports" / "demo"
    reports.mkdir(parents=True)
    nb = project / "notebooks/demo/01_ok.ipynb"
    data = {"profile": "smoke", "params": {"n": 2},
            "inputs": scoreboard.inputs_fingerprint(nb, {"n": 2}, project),
            "headlines": {"k": {"question": "q", "metric": "m", "unit": "s",
                                "better": "lower", "verdict": "tie", "detail": "d",
                                "physics": {"value": 1.0, "ci_low": 0.9, "ci_high": 1.1},
                                "ml": {"value": 1.0, "ci_low": 0.95, "ci_high": 1.05}}}}
    (reports / "01_ok.json").write_text(json.dumps(data))
    (row,) = scoreboard.rows(project / "reports", project)
    assert row["status"] == "ok" and "smoke profile" in row["status_detail"]
    assert row["hybrid"] is None and row["physics"]["unit"] == "s"
    assert "smoke profile" in scoreboard.to_html([row])
    nb.write_text(nb.read_text().replace("FIXTURE_TRACE", "CHANGED_TRACE"))
    (row,) = scoreboard.rows(project / "reports", project)  # stale AND smoke: both are said
    assert row["status"] == "stale" and "notebook changed" in row["status_detail"]
    assert "smoke profile" in row["status_detail"]


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(300)
def test_scoreboard_renders_in_chromium_and_its_links_resolve(board, tmp_path):
    require_chromium()
    from playwright.sync_api import sync_playwright

    index = board / "reports" / "index.html"
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = ctx.new_page()
        page.goto(index.as_uri())
        rows = page.locator("table.scoreboard tr.sb-row")
        assert rows.count() == 1
        cells = rows.nth(0).locator("td")
        assert "hybrid" in cells.nth(5).inner_text()
        assert rows.nth(0).locator("svg circle").count() == 3  # one dot per side
        box = rows.nth(0).bounding_box()
        assert box and box["width"] > 400 and box["height"] > 20  # laid out, visible
        link = rows.nth(0).locator("a")
        link.click()
        page.wait_for_load_state()
        assert page.url.endswith("zeta/01_answer.html")
        assert page.locator(".physml-findings").is_visible()
        ctx.close()


def _row(scale, physics, ml):
    side = lambda v, lo, hi: {"value": v, "ci_low": lo, "ci_high": hi}  # noqa: E731
    return {"key": "k", "scale": scale, "physics": side(*physics), "ml": side(*ml),
            "hybrid": None}


def test_ci_chart_places_dots_on_a_padded_linear_or_log_axis():
    import re

    def dots(svg):
        return [float(v) for v in re.findall(r'cx="([-0-9.]+)"', svg)]

    # linear: values 0..1, padded by 8% of the range on each side, 6 px margins, 180 px wide
    lin = scoreboard._svg(_row("linear", (0.5, 0.0, 1.0), (0.25, 0.2, 0.3)))
    x = lambda v: 6 + (v + 0.08) / 1.16 * 168  # noqa: E731
    assert dots(lin) == pytest.approx([round(x(0.5), 1), round(x(0.25), 1)], abs=0.051)
    assert re.findall(r'cy="([0-9.]+)"', lin) == ["9", "23"]  # one row per side, 14 px apart
    assert "linear axis" in lin
    # log: 1..100 is 0..2 decades; 10 sits in the middle, padded by 0.16 decades
    log = scoreboard._svg(_row("log", (10.0, 1.0, 100.0), (10.0, 5.0, 20.0)))
    assert dots(log) == pytest.approx([90.0, 90.0], abs=0.051) and "log axis" in log
    # a log row with a non-positive value falls back to a linear axis
    assert "linear axis" in scoreboard._svg(_row("log", (0.5, 0.0, 1.0), (0.6, 0.2, 0.8)))
    # the pad is a share of the range, wherever the range lies
    shifted = scoreboard._svg(_row("linear", (1.5, 1.0, 2.0), (1.25, 1.2, 1.3)))
    assert dots(shifted) == pytest.approx([round(x(0.5), 1), round(x(0.25), 1)], abs=0.051)
    # every value equal: a unit pad, the dot in the middle
    flat = scoreboard._svg(_row("linear", (2.0, 2.0, 2.0), (2.0, 2.0, 2.0)))
    assert dots(flat) == pytest.approx([90.0, 90.0], abs=0.051)
    # a CI that could not be computed (NaN bounds, one seed) leaves the axis to the other numbers
    nan = float("nan")
    lone = scoreboard._svg(_row("linear", (0.5, nan, nan), (0.25, 0.0, 1.0)))
    assert dots(lone) == pytest.approx([round(x(0.5), 1), round(x(0.25), 1)], abs=0.051)
    assert scoreboard._svg(_row("linear", (nan, nan, nan), (nan, nan, nan))) == ""


def test_text_table_cuts_the_status_column_at_60_characters():
    row = {**_row("linear", (1.0, 0.9, 1.1), (2.0, 1.9, 2.1)), "study": "s", "unit": None,
           "verdict": "ml", "status": "stale", "status_detail": "x" * 200}
    text = scoreboard.to_text([row])
    assert max(len(line.rstrip()) for line in text.splitlines()) < 200
    assert "stale: " + "x" * 53 in text and "x" * 54 not in text
    assert text.splitlines()[2].split()[:6] == ["s", "k", "1.000", "[0.9000,", "1.100]", "2.000"]
    assert " ml " in text.splitlines()[2]


def test_fingerprint_follows_the_study_library(project):
    nb = project / "notebooks/demo/01_ok.ipynb"
    lib = project / "lib/physml/demo"
    lib.mkdir(parents=True, exist_ok=True)
    (lib / "model.py").write_text("A = 1\n")
    before = scoreboard.inputs_fingerprint(nb, {}, project)
    (lib / "model.py").write_text("A = 2\n")
    after = scoreboard.inputs_fingerprint(nb, {}, project)
    assert before["library"] != after["library"] and before["notebook"] == after["notebook"]
    # the params hash does not depend on the order of the keys
    assert scoreboard.inputs_fingerprint(nb, {"a": 1, "b": 2}, project)["params"] == \
        scoreboard.inputs_fingerprint(nb, {"b": 2, "a": 1}, project)["params"]


def test_a_failure_older_than_the_last_good_render_is_history(project):
    reports = project / "reports" / "demo"
    reports.mkdir(parents=True)
    nb = project / "notebooks/demo/01_ok.ipynb"
    data = {"params": {}, "inputs": scoreboard.inputs_fingerprint(nb, {}, project),
            "headlines": {"k": {"question": "q", "metric": "m", "unit": None,
                                "better": "higher", "verdict": "ml", "detail": "d",
                                "physics": {"value": 1.0, "ci_low": 0.9, "ci_high": 1.1},
                                "ml": {"value": 2.0, "ci_low": 1.9, "ci_high": 2.1}}}}
    ok, failed = reports / "01_ok.json", reports / "01_ok.failed.json"
    ok.write_text(json.dumps(data))
    failed.write_text(json.dumps({"detail": "boom"}))
    os.utime(failed, (1000.0, 1000.0))
    os.utime(ok, (2000.0, 2000.0))
    (row,) = scoreboard.rows(project / "reports", project)
    assert row["status"] == "ok"
    os.utime(failed, (2000.0, 2000.0))  # as recent as the good render: the failure stands
    (row,) = scoreboard.rows(project / "reports", project)
    assert row["status"] == "failed"
    os.utime(failed, (3000.0, 3000.0))
    (row,) = scoreboard.rows(project / "reports", project)
    assert row["status"] == "failed" and "boom" in row["status_detail"]
    page = scoreboard.to_html([row])
    assert "m, higher is better" in page and 'title="d"' in page


def test_fingerprints_rows_and_missing_studies_follow_an_explicit_root(tmp_path):
    """A root passed in is the tree read: its library, its notebooks, its reports."""
    for study in ("toy", "bare"):
        nb = tmp_path / "notebooks" / study / "01_a.ipynb"
        nb.parent.mkdir(parents=True)
        nb.write_text("{}")
    nb = tmp_path / "notebooks" / "toy" / "01_a.ipynb"
    lib = tmp_path / "lib" / "physml" / "toy"
    lib.mkdir(parents=True)
    (lib / "m.py").write_text("x = 1\n")
    before = scoreboard.inputs_fingerprint(nb, {}, tmp_path)
    (lib / "m.py").write_text("x = 2\n")
    now = scoreboard.inputs_fingerprint(nb, {}, tmp_path)
    assert now["library"] != before["library"] and now["notebook"] == before["notebook"]
    side = {"value": 1.0, "ci_low": 0.5, "ci_high": 1.5}
    out = tmp_path / "reports" / "toy"
    out.mkdir(parents=True)
    (out / "01_a.json").write_text(json.dumps({"inputs": now, "params": {}, "headlines": {
        "k": {"question": "q", "metric": "m", "verdict": "tie", "physics": side}}}))
    rows = scoreboard.rows(root=tmp_path)
    assert [(r["study"], r["key"], r["status"]) for r in rows] == [("toy", "k", "ok")]
    assert scoreboard.studies_without_headlines(root=tmp_path) == ["bare"]
