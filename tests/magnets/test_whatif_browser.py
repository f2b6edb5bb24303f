"""Browser test: JupyterLab (headless) runs 04_placement_whatif in Chromium; moving a slider
changes the live figure's data."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from browser import CHROMIUM, FLAGS, require_chromium

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "magnets" / "04_placement_whatif.ipynb"

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _widget_notebook(dest):
    """The committed notebook up to and including its live-widget cell: the cells after it (the
    static sweep and the placement optimiser) would run first in the kernel's queue and hold
    back every slider callback; they are rendered by the smoke test of the notebook."""
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    last = [i for i, c in enumerate(nb.cells) if "whatif_widget(" in c.source]
    assert last, f"{NOTEBOOK.name}: no cell calls whatif.whatif_widget"
    nb.cells = nb.cells[:last[0] + 1]
    nbformat.write(nb, dest)


@pytest.fixture
def lab(tmp_path):
    require_chromium()
    work = tmp_path / "nb"
    work.mkdir()
    _widget_notebook(work / NOTEBOOK.name)
    port = _free_port()
    jupyter = Path(sys.executable).with_name("jupyter")
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"))
    log = open(tmp_path / "lab.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(jupyter), "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         "--IdentityProvider.token=", "--ServerApp.password=",
         "--ServerApp.disable_check_xsrf=True", "--LabApp.extension_manager=readonly",
         f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError((tmp_path / "lab.log").read_text()) from None
                time.sleep(0.5)
        else:
            raise RuntimeError("JupyterLab did not start: " + (tmp_path / "lab.log").read_text())
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


LIVE_X = """() => {
  const d = document.querySelector('.widget-vbox .js-plotly-plot');
  return d && d.data && d.data.length ? Array.from(d.data[0].x) : null;
}"""


def test_moving_a_slider_in_jupyterlab_changes_the_live_figure(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{lab}/lab/tree/{NOTEBOOK.name}", timeout=120_000)
            page.wait_for_function("() => window.jupyterapp && document.querySelector("
                                   "'.jp-Notebook .jp-Cell')", timeout=120_000)
            # wait for the physml kernel to be idle, then run every cell
            page.wait_for_function(
                "() => { const w = window.jupyterapp.shell.currentWidget;"
                " return w && w.sessionContext && w.sessionContext.session &&"
                " w.sessionContext.session.kernel &&"
                " w.sessionContext.session.kernel.name === 'physml' &&"
                " w.sessionContext.session.kernel.status === 'idle'; }", timeout=120_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_function(f"() => ({LIVE_X})() !== null", timeout=180_000)
            before = page.evaluate(LIVE_X)
            slider = page.locator(".widget-slider", has_text="sensor z (mm)")
            handle = slider.locator(".noUi-handle").first
            handle.scroll_into_view_if_needed()
            handle.focus()
            for _ in range(10):
                handle.press("ArrowRight")
            page.wait_for_function(
                f"(b) => {{ const x = ({LIVE_X})(); return x && x.some((v, i) => v !== b[i]); }}",
                arg=before, timeout=60_000)
            after = page.evaluate(LIVE_X)
            assert len(after) == len(before) == 32
            assert any(abs(a - b) > 1e-6 for a, b in zip(after, before, strict=True))
        finally:
            browser.close()
