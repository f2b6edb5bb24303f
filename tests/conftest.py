"""Shared fixtures: a throw-away project root with fixture notebooks for render tests."""

from __future__ import annotations

import pytest

import physml  # noqa: F401  (first: it sets OPENBLAS_THREAD_TIMEOUT before numpy loads OpenBLAS)
from notebook_fixtures import write_notebook, write_params


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A minimal physml project root (PHYSML_ROOT) with one fixture study ``demo``.

    ``demo/01_ok``: records figures and shows a Plotly figure; ``fail`` makes a cell raise.
    ``demo/02_sleep``: sleeps ``seconds`` (for timeout and interrupt tests).
    """
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text("[project]\nname = 'fixture'\n")
    monkeypatch.setenv("PHYSML_ROOT", str(root))
    monkeypatch.setenv("PHYSML_ARTIFACTS", str(tmp_path / "artifacts"))
    write_notebook(
        root / "notebooks/demo/01_ok.ipynb",
        "n: int = 3  # how many\nscale: float = 1.5\nlabel: str = 'x'\nfail: bool = False",
        "from physml import plots\nfrom physml.results import record\n"
        "import plotly.graph_objects as go",
        "record('n_squared', n * n, unit='count', note='n times n')\n"
        "record('scaled', scale * n)\nrecord('label', label)\n"
        "from physml.results import report_file\n"
        "record('own_report', str(report_file('demo/01_ok')))",
        "go.Figure(go.Scatter(x=[0, 1, 2], y=[n, scale, 0], name='FIXTURE_TRACE'))",
        "assert not fail, 'FIXTURE_FAILURE requested'",
        "print('SECRET_CODE_MARKER')",
        title="# Fixture 01: records figures and a Plotly figure",
    )
    write_params(root, "demo", "01_ok", {"n": 4}, {"n": 2})
    write_notebook(
        root / "notebooks/demo/02_sleep.ipynb",
        "seconds: float = 0.0",
        "import time\ntime.sleep(seconds)\nfrom physml.results import record\n"
        "record('slept', seconds)",
    )
    write_params(root, "demo", "02_sleep", {"seconds": 0.0})
    return root
