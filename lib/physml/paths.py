"""Where things live: the repository root, shipped data and generated artifacts.

The project is installed in editable mode from ``lib/``, so the repository root is two levels
above this package. ``PHYSML_ROOT`` overrides it (for a non-editable install) and
``PHYSML_ARTIFACTS`` moves the artifacts folder (trained models, datasets, caches).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


def repo_root() -> Path:
    """The repository root (the folder holding ``pyproject.toml``)."""
    env = os.environ.get("PHYSML_ROOT")
    root = Path(env) if env else Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise FileNotFoundError(
            f"physml cannot find its repository root: {root} has no pyproject.toml. "
            "Install with `pip install -e .` from a clone, or set PHYSML_ROOT."
        )
    return root


def data_dir(study: str) -> Path:
    """``<root>/data/<study>``: small data shipped with the repository."""
    return repo_root() / "data" / study


def shared_data_dir(study: str) -> Path:
    """``<root>/../shared/data/<study>``: the upstream data a build script copies from."""
    return repo_root().parent / "shared" / "data" / study


def reports_dir(root: Path | None = None) -> Path:
    """``<root>/reports``: generated HTML reports, results JSON and the index (git-ignored)."""
    return (root or repo_root()) / "reports"


def params_file(notebook: Path, suffix: str, root: Path | None = None) -> Path:
    """``<root>/params/<study>/<stem><suffix>`` for ``notebooks/<study>/<stem>.ipynb``."""
    return (root or repo_root()) / "params" / notebook.parent.name / f"{notebook.stem}{suffix}"


def study_lib_dir(study: str, root: Path | None = None) -> Path:
    """``<root>/lib/physml/<study>``: the study's subpackage."""
    return (root or repo_root()) / "lib" / "physml" / study


def artifacts_dir(study: str, *parts: str) -> Path:
    """``<root>/artifacts/<study>/<parts...>`` (git-ignored), created on demand."""
    base = Path(os.environ["PHYSML_ARTIFACTS"]) if "PHYSML_ARTIFACTS" in os.environ else (
        repo_root() / "artifacts"
    )
    path = base.joinpath(study, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def locked(artifact: Path):
    """Hold an exclusive lock on ``<artifact>.lock`` (POSIX ``flock``) for the ``with`` block.

    For a cached artifact that is expensive to make: a process checks for it and makes it under
    the lock, so processes that need it at once (test workers, notebook renders, Dask workers)
    make it once and the others wait for it, instead of all computing it and writing it at
    the same time."""
    with open(Path(f"{artifact}.lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def notebooks_dir(root: Path | None = None) -> Path:
    """``<root>/notebooks``."""
    return (root or repo_root()) / "notebooks"


def all_notebooks(root: Path | None = None) -> list[Path]:
    """Every ``notebooks/<study>/NN_topic.ipynb``, by study then number."""
    base = notebooks_dir(root)
    return sorted(p for p in base.glob("*/*.ipynb") if ".ipynb_checkpoints" not in p.parts)
