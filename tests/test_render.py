"""physml render on fixture notebooks: validation, execution, atomic reports, index, provenance."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from browser import CHROMIUM, FLAGS, require_chromium
from notebook_fixtures import write_notebook, write_params
from physml import render as R


def cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "physml.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=os.environ.copy())


# --------------------------------------------------------------------------- validation


def test_unknown_key_fails_fast_naming_key_notebook_and_accepted_keys(project):
    res = cli("render", str(project / "notebooks/demo/01_ok.ipynb"), "-p", "no_such_key=1")
    assert res.returncode == 2
    assert "no_such_key" in res.stderr and "01_ok.ipynb" in res.stderr
    assert "accepted keys: fail, label, n, scale" in res.stderr
    # failing before any kernel starts: nothing executed, nothing written (no timed assertion:
    # wall time on a loaded machine says nothing about where the check happens)
    assert not (project / "reports").exists()


def test_unknown_key_in_params_file_names_the_file(project):
    (project / "params/demo/01_ok.yaml").write_text("n: 2\ntypo_key: 3\n")
    with pytest.raises(R.ParamsError, match=r"typo_key.*params/demo/01_ok.yaml"):
        R.plan([project / "notebooks/demo/01_ok.ipynb"])


@pytest.mark.parametrize(("override", "expected"), [
    ("n=2.5", "'n' of 01_ok.ipynb .* must be int, got float"),
    ("n=true", "'n' of 01_ok.ipynb .* must be int, got bool"),
    ("scale=abc", "'scale' of 01_ok.ipynb .* must be float, got str"),
    ("fail=1", "'fail' of 01_ok.ipynb .* must be bool, got int"),
])
def test_wrong_type_is_rejected_before_execution(project, override, expected):
    with pytest.raises(R.ParamsError, match=expected):
        R.plan([project / "notebooks/demo/01_ok.ipynb"], overrides=[override])


def test_int_is_accepted_for_float(project):
    (job,) = R.plan([project / "notebooks/demo/01_ok.ipynb"], overrides=["scale=2"])
    assert job.params["scale"] == 2


def test_notebook_without_parameters_cell_is_an_error(project):
    nb = write_notebook(project / "notebooks/demo/03_noparams.ipynb", None, "x = 1")
    write_params(project, "demo", "03_noparams", {})
    with pytest.raises(R.RenderError, match="no cell tagged 'parameters'"):
        R.plan([nb])


def test_missing_params_file_is_an_error(project):
    (project / "params/demo/01_ok.smoke.yaml").unlink()
    with pytest.raises(R.RenderError, match="params file missing.*01_ok.smoke.yaml"):
        R.plan([project / "notebooks/demo/01_ok.ipynb"], profile="smoke")


def test_params_precedence_profile_then_file_then_cli(project, tmp_path):
    over = tmp_path / "over.yaml"
    over.write_text("n: 7\nlabel: from-file\n")
    (job,) = R.plan([project / "notebooks/demo/01_ok.ipynb"], params_file=over,
                    overrides=["label=from-cli"])
    assert job.params == {"n": 7, "label": "from-cli"}
    (smoke,) = R.plan([project / "notebooks/demo/01_ok.ipynb"], profile="smoke")
    assert smoke.params == {"n": 2}


def test_research_profile_overlays_its_file_or_says_it_has_none(project):
    nb = project / "notebooks/demo/01_ok.ipynb"
    (job,) = R.plan([nb], profile="research")
    assert job.params == R.plan([nb])[0].params
    assert job.params_sources[-1] == "(no research profile: default parameters)"
    research = project / "params/demo/01_ok.research.yaml"
    research.write_text("n: 9\n")
    try:
        (job,) = R.plan([nb], profile="research")
        assert job.params["n"] == 9 and job.params_sources[-1].endswith("01_ok.research.yaml")
    finally:
        research.unlink()


def test_overrides_need_a_key_and_an_equals_sign():
    assert R.parse_overrides(["n=3", " seeds = [0, 1]", "label="]) == {
        "n": 3, "seeds": [0, 1], "label": ""}
    for bad in ("n", "=3", " =3"):
        with pytest.raises(R.ParamsError, match="expected KEY=VALUE"):
            R.parse_overrides([bad])


def test_smoke_renders_never_replace_real_reports(project, tmp_path):
    """Without --out a smoke render goes to reports/smoke/ (a smoke render had overwritten a
    36-minute default report); default and research renders go to reports/."""
    nb = project / "notebooks/demo/01_ok.ipynb"
    (smoke,) = R.plan([nb], profile="smoke")
    (default,) = R.plan([nb])
    assert default.reports_dir == project / "reports"
    assert smoke.reports_dir == project / "reports" / "smoke"
    (elsewhere,) = R.plan([nb], profile="smoke", out=tmp_path / "x")
    assert elsewhere.reports_dir == (tmp_path / "x").resolve()


def test_study_folder_selects_its_notebooks_in_number_order(project):
    jobs = R.plan([project / "notebooks/demo"])
    assert [j.stem for j in jobs] == ["01_ok", "02_sleep"]


# --------------------------------------------------------------------------- execution


@pytest.fixture
def rendered(project):
    """One successful render of demo/01_ok with default params (n=4)."""
    res = cli("render", str(project / "notebooks/demo/01_ok.ipynb"))
    assert res.returncode == 0, res.stdout + res.stderr
    return project / "reports"


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(300)
def test_code_toggle_stays_in_a_strip_of_its_own_while_the_report_scrolls(rendered, tmp_path):
    """The toggle lives in a sticky bar that opens the body: scrolled to the end, the bar is
    still at the window's top and every point around the button is the bar's, not a line of
    the report (a button floating over the page covered the end of the line under it)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=FLAGS, headless=True,
            viewport={"width": 900, "height": 300})
        page = ctx.new_page()
        page.goto((rendered / "demo/01_ok.html").as_uri())
        assert page.evaluate("document.body.firstElementChild.id") == "physml-toolbar"
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_timeout(200)
        assert page.evaluate("window.scrollY") > 300  # the report scrolled under the bar
        bar = page.locator("#physml-toolbar").bounding_box()
        button = page.locator("#physml-toolbar #physml-code-toggle")
        b = button.bounding_box()
        assert bar and b and abs(bar["y"]) < 1 and bar["width"] > 800
        around = [(b["x"] - 8, b["y"] + b["height"] / 2), (b["x"] + b["width"] / 2, b["y"] - 2),
                  (b["x"] + b["width"] / 2, b["y"] + b["height"] + 2), (20, b["y"] + 5)]
        for x, y in around:
            assert page.evaluate(f"document.elementFromPoint({x}, {y})"
                                 ".closest('#physml-toolbar') !== null"), (x, y)
        assert page.evaluate("document.body.classList.contains('physml-hide-code')")
        button.click()
        assert button.inner_text() == "Hide code"
        assert not page.evaluate("document.body.classList.contains('physml-hide-code')")
        ctx.close()


@pytest.mark.slow
def test_success_writes_html_json_and_index(rendered):
    html = (rendered / "demo/01_ok.html").read_text()
    data = json.loads((rendered / "demo/01_ok.json").read_text())
    assert data["status"] == "ok" and data["params"] == {"n": 4}
    assert data["figures"]["n_squared"] == {"value": 16, "unit": "count", "note": "n times n"}
    assert data["figures"]["scaled"]["value"] == pytest.approx(6.0)
    assert data["figures"]["own_report"]["value"] == str(rendered / "demo/01_ok.json")
    # a Plotly figure survives with plotly.js inline (offline) and the trace data
    assert "FIXTURE_TRACE" in html and "Plotly.newPlot" in html
    assert '<script src="https://cdn.plot.ly' not in html and "plotly.js v" in html
    # code collapsed behind a toggle, but present
    assert 'id="physml-code-toggle"' in html and "physml-hide-code" in html
    assert "SECRET_CODE_MARKER" in html
    index = (rendered / "index.html").read_text()
    assert 'href="demo/01_ok.html"' in index and "n_squared = 16 count" in index
    assert "never rendered" in index  # 02_sleep was not rendered


@pytest.mark.slow
def test_a_notebook_finds_the_other_reports_of_its_render_in_the_out_folder(project, tmp_path):
    out = tmp_path / "elsewhere"
    res = cli("render", str(project / "notebooks/demo/01_ok.ipynb"), "--out", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    data = json.loads((out / "demo/01_ok.json").read_text())
    assert data["figures"]["own_report"]["value"] == str(out.resolve() / "demo/01_ok.json")


@pytest.mark.slow
def test_provenance_in_report_and_results(rendered):
    data = json.loads((rendered / "demo/01_ok.json").read_text())
    prov = data["provenance"]
    for pkg in ("python", "numpy", "scipy", "jax", "torch", "magpylib", "scikit-learn", "plotly"):
        assert prov["versions"][pkg], pkg
    assert {"git", "cpu", "wall_time_s", "started"} <= set(prov)
    assert prov["wall_time_s"] > 0
    # the notebook's own run time: no longer than the time since it started
    from datetime import UTC, datetime

    since = (datetime.now(UTC) - datetime.fromisoformat(prov["started"])).total_seconds()
    assert prov["wall_time_s"] <= since + 1.0
    html = (rendered / "demo/01_ok.html").read_text()
    start = html.index('class="physml-provenance"')
    assert start < html.index("FIXTURE_TRACE")  # provenance opens the report
    for word in ("commit", "wall time", "CPU", "torch", "magpylib", "Parameters"):
        assert word in html[start:start + 4000], word


@pytest.mark.slow
def test_failing_cell_keeps_last_good_report_and_saves_failed_notebook(rendered):
    html_before = (rendered / "demo/01_ok.html").read_bytes()
    json_before = (rendered / "demo/01_ok.json").read_bytes()
    res = cli("render", str(rendered.parent / "notebooks/demo/01_ok.ipynb"), "-p", "fail=true")
    assert res.returncode == 1
    assert "FIXTURE_FAILURE requested" in res.stdout and "cell 6 (\"assert not fail" in res.stdout
    assert "0 ok, 1 failed" in res.stdout
    assert (rendered / "demo/01_ok.html").read_bytes() == html_before
    assert (rendered / "demo/01_ok.json").read_bytes() == json_before
    failed = rendered / "demo/01_ok.failed.ipynb"
    assert failed.exists() and "FIXTURE_FAILURE" in failed.read_text()
    index = (rendered / "index.html").read_text()
    assert "failed (last good report linked)" in index
    # a later success clears the failure
    assert cli("render", str(rendered.parent / "notebooks/demo/01_ok.ipynb")).returncode == 0
    assert not failed.exists()


@pytest.mark.slow
def test_failure_is_isolated_other_notebooks_still_render(project):
    res = cli("render", str(project / "notebooks/demo"), "-p", "fail=true")
    # -p applies to all selected notebooks; 02_sleep has no `fail` key -> rejected up front
    assert res.returncode == 2 and "fail" in res.stderr
    (project / "params/demo/01_ok.yaml").write_text("fail: true\n")
    res = cli("render", str(project / "notebooks/demo"))
    assert res.returncode == 1
    assert "demo/02_sleep: ok" in res.stdout and "demo/01_ok: FAILED" in res.stdout
    assert (project / "reports/demo/02_sleep.html").exists()
    assert not (project / "reports/demo/01_ok.html").exists()


@pytest.mark.slow
def test_per_notebook_timeout(project):
    t0 = time.perf_counter()
    res = cli("render", str(project / "notebooks/demo/02_sleep.ipynb"), "-p", "seconds=120",
              "--timeout", "8")
    assert res.returncode == 1 and "timed out after 8 s" in res.stdout
    assert time.perf_counter() - t0 < 60
    assert not (project / "reports/demo/02_sleep.html").exists()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_leaves_no_partial_report(project, sig):
    reports = project / "reports"
    render = [sys.executable, "-m", "physml.cli", "render",
              str(project / "notebooks/demo/02_sleep.ipynb"), "-p", "seconds=60"]
    proc = subprocess.Popen(
        # started with SIGINT ignored, as a shell starts a script's background job (and with
        # the shell's trap, not a preexec_fn: forking this JAX-importing process warns)
        ["sh", "-c", "trap '' INT; exec \"$@\"", "sh", *render],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    # "rendering ..." is printed once the signal handlers are installed and execution starts
    assert proc.stdout.readline().startswith("rendering demo/02_sleep"), proc.stderr.read()
    time.sleep(4)  # on an idle machine the kernel is in the sleep cell by now
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "interrupted" in err
    leftovers = [p for p in reports.rglob("*") if p.is_file()] if reports.exists() else []
    assert not [p for p in leftovers if p.suffix in (".html", ".json", ".partial")
                and p.name != "index.html"], leftovers


def test_interrupt_while_papermill_starts_kills_it(project, monkeypatch):
    """A SIGINT that lands inside Popen (before run_job holds the process) still stops papermill."""
    (job,) = R.plan([project / "notebooks/demo/02_sleep.ipynb"], overrides=["seconds=60"])
    started = []
    real_popen = subprocess.Popen

    def popen_then_interrupted(cmd, *args, **kwargs):
        if "papermill" not in cmd:  # git and other helpers start as usual
            return real_popen(cmd, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # delivered while papermill is being started
        started.append(real_popen(cmd, *args, **kwargs))
        return started[0]

    monkeypatch.setattr(R.subprocess, "Popen", popen_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        R.run_job(job, timeout_s=120)
    assert started and started[0].poll() is not None  # papermill was killed, not orphaned
    assert not job.html.exists() and not job.results.exists()


@pytest.mark.slow
def test_a_notebook_edited_during_its_render_leaves_a_stale_report(project, monkeypatch):
    """The report's input hashes are taken before it runs: an edit made while it runs (here
    just after papermill starts) marks the report stale instead of passing for the new one."""
    from physml import scoreboard

    nb_path = project / "notebooks/demo/02_sleep.ipynb"
    (job,) = R.plan([nb_path], overrides=["seconds=1"])
    real_popen = subprocess.Popen

    def popen_then_edit(cmd, *args, **kwargs):
        proc = real_popen(cmd, *args, **kwargs)
        if "papermill" in cmd:
            nb = json.loads(nb_path.read_text())
            nb["metadata"]["edited_during_render"] = True
            nb_path.write_text(json.dumps(nb))
        return proc

    monkeypatch.setattr(R.subprocess, "Popen", popen_then_edit)
    assert R.run_job(job, timeout_s=120).status == "ok"
    data = json.loads(job.results.read_text())
    assert scoreboard.freshness(data, nb_path, project) == "notebook changed since this render"


def test_workers_render_on_a_dask_local_cluster(project):
    write_notebook(project / "notebooks/other/01_more.ipynb", "k: int = 1",
                   "from physml.results import record\nrecord('k', k)")
    write_params(project, "other", "01_more", {"k": 5})
    res = cli("render", "--workers", "2", timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "LocalCluster(2 workers)" in res.stdout
    for name in ("demo/01_ok", "demo/02_sleep", "other/01_more"):
        assert json.loads((project / f"reports/{name}.json").read_text())["status"] == "ok"
    assert json.loads((project / "reports/other/01_more.json").read_text())[
        "figures"]["k"]["value"] == 5


def test_list_shows_params_files_and_status(project):
    (project / "params/demo/02_sleep.smoke.yaml").unlink()
    res = cli("list")
    assert res.returncode == 0
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("demo/02_sleep"))
    assert "MISSING" in line and "never rendered" in line


def test_out_dir_option(project, tmp_path):
    (job,) = R.plan([project / "notebooks/demo/01_ok.ipynb"], out=tmp_path / "elsewhere")
    assert job.html == (tmp_path / "elsewhere/demo/01_ok.html").resolve()


def test_index_lists_never_rendered_notebooks(project):
    from physml.report import write_index

    page = write_index(project / "reports").read_text()
    assert page.count("never rendered") == 2


def test_report_tags_remove_cells_and_inputs():
    import nbformat

    from physml.report import to_html

    nb = nbformat.v4.new_notebook()
    gone = nbformat.v4.new_code_cell("print('DROPPED_CELL')")
    gone.metadata["tags"] = ["remove-cell"]
    noin = nbformat.v4.new_code_cell("print('DROPPED_INPUT')")
    noin.metadata["tags"] = ["remove-input"]
    noin.outputs = [nbformat.v4.new_output("stream", name="stdout", text="KEPT_OUTPUT\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("# T"), gone, noin]
    html = to_html(nb, "x/y", {"a": 1}, {"git": {}, "versions": {}, "wall_time_s": 1.0})
    assert "DROPPED_CELL" not in html and "DROPPED_INPUT" not in html
    assert "KEPT_OUTPUT" in html


def test_sources_relative_paths_resolve_to_repo(project):
    (job,) = R.plan([Path(os.path.relpath(project / "notebooks/demo/01_ok.ipynb"))])
    assert job.notebook.is_absolute()


@pytest.mark.slow
def test_scheduler_sends_the_same_tasks_to_an_existing_cluster(project):
    from dask.distributed import LocalCluster

    # workers inherit PHYSML_ROOT from this process, as cluster workers share the file system
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        res = cli("render", str(project / "notebooks/demo/02_sleep.ipynb"),
                  "--scheduler", cluster.scheduler_address, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"scheduler {cluster.scheduler_address}" in res.stdout
    assert json.loads((project / "reports/demo/02_sleep.json").read_text())["status"] == "ok"


def test_declaration_papermill_cannot_parse_is_named(project):
    # papermill's line parser does not understand a tuple-unpacking declaration
    nb = write_notebook(project / "notebooks/demo/04_odd.ipynb", "a, b = 1, 2\nc: int = 3")
    write_params(project, "demo", "04_odd", {})
    with pytest.raises(R.RenderError, match=r"cannot parse the declaration of 'a'.*line 1"):
        R.plan([nb])


def test_render_process_does_not_import_what_it_does_not_use():
    """Each render starts two Python processes that import nbformat (the CLI and papermill):
    rfc3987_syntax (compiles grammars at import; `make install` removes it) cost 3-7 s each, and
    scipy.stats another 1-2 s in the CLI, which only formats numbers."""
    code = ("import sys, nbformat, physml.cli, papermill\n"
            "print(','.join(m for m in ('rfc3987_syntax', 'scipy.stats') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_study_chains_on_dask_start_longest_first(project):
    """The chain with the largest last wall time (same profile) goes first; a never-rendered
    notebook makes its chain first (unknown duration); a smoke-profile time does not count."""
    write_notebook(project / "notebooks/other/01_more.ipynb", "k: int = 1", "x = k")
    write_params(project, "other", "01_more", {"k": 1})
    jobs = R.plan([project / "notebooks/demo", project / "notebooks/other"])
    by_study = {}
    for j in jobs:
        by_study.setdefault(j.study, []).append(j)
    demo, other = by_study["demo"], by_study["other"]

    def wrote(job, wall, profile="default"):
        job.results.parent.mkdir(parents=True, exist_ok=True)
        job.results.write_text(json.dumps({"profile": profile,
                                           "provenance": {"wall_time_s": wall}}))

    assert R.longest_first([demo, other]) == [demo, other]  # nothing known: given order
    wrote(demo[0], 5.0)
    wrote(demo[1], 5.0)
    wrote(other[0], 30.0, profile="smoke")
    assert R.longest_first([demo, other]) == [other, demo]  # other's default time is unknown
    wrote(other[0], 8.0)
    assert R.longest_first([demo, other]) == [demo, other]  # 10 s > 8 s
    wrote(other[0], 12.0)
    assert R.longest_first([demo, other]) == [other, demo]  # 12 s > 10 s


def test_an_unannotated_parameter_takes_the_type_of_its_default(tmp_path):
    nb = write_notebook(tmp_path / "nb.ipynb", "n = 3\nlabel = 'x'\nscale: float = 1")
    declared = R.declared_parameters(nb)
    assert {k: v["type"] for k, v in declared.items()} == {"n": "int", "label": "str",
                                                           "scale": "float"}
    assert declared["label"]["default"] == "x"


def test_key_figures_are_the_first_scalars_with_thousands_separators():
    from physml.report import key_figures

    figs = {"rate": {"value": 127012.3, "unit": "tracks/s"}, "flag": {"value": True},
            "arr": {"value": [1, 2]}, "long": {"value": "x" * 31}, "n": {"value": 22},
            "err": {"value": 0.00019457}, "label": {"value": "rk4"}, "more": {"value": 1.0},
            "count": {"value": 12345}}
    assert key_figures(figs) == "rate = 127,000 tracks/s; n = 22; err = 0.0001946; label = rk4"
    assert key_figures(figs, k=1) == "rate = 127,000 tracks/s"
    assert key_figures({"count": figs["count"]}) == "count = 12345"  # an integer stays exact
    assert key_figures({"s": {"value": "y" * 30}}) == "s = " + "y" * 30  # 30 characters fit
