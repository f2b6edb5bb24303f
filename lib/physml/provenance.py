"""Where a result came from: git commit, package versions, CPU, wall time."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("numpy", "scipy", "jax", "torch", "magpylib", "scikit-learn", "plotly", "physml")


def git_state(root: Path) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the repository at ``root``."""
    def git(*args: str) -> str | None:
        try:
            res = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                                 timeout=20, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return res.stdout
    sha = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": sha.strip() if sha else None,
            "dirty": None if status is None else bool(status.strip())}


def cpu_description() -> str:
    """CPU model and logical core count, e.g. ``"AMD EPYC 7B13 (2 logical cores)"``."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model} ({os.cpu_count()} logical cores)"


def machine() -> str:
    """One line naming where timings were taken: CPU, usable cores, load average, Python."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return f"{cpu_description()}, {usable} usable{load}, Python {platform.python_version()}"


def versions() -> dict[str, str | None]:
    """Installed versions of python and the packages results depend on (None: not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def collect(root: Path) -> dict[str, Any]:
    """Everything except the wall time, which the renderer adds when the notebook finishes."""
    return {
        "git": git_state(root),
        "versions": versions(),
        "cpu": cpu_description(),
        "platform": platform.platform(),
        "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
