"""Helpers that write fixture notebooks and params files for render tests."""

from __future__ import annotations

from pathlib import Path

import nbformat
import yaml

KERNELSPEC = {"name": "physml", "display_name": "physml (venv)", "language": "python"}


def write_notebook(path: Path, params_src: str | None, *cells: str, title: str = "# Fixture"):
    """Write a notebook: a title, an optional ``parameters`` cell, then code cells."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.cells.append(nbformat.v4.new_markdown_cell(title))
    if params_src is not None:
        c = nbformat.v4.new_code_cell(params_src)
        c.metadata["tags"] = ["parameters"]
        nb.cells.append(c)
    for src in cells:
        nb.cells.append(nbformat.v4.new_code_cell(src))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def write_params(root: Path, study: str, stem: str, default: dict, smoke: dict | None = None):
    d = root / "params" / study
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{stem}.yaml").write_text(yaml.safe_dump(default))
    (d / f"{stem}.smoke.yaml").write_text(yaml.safe_dump(smoke if smoke is not None else default))
