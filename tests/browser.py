"""Headless Chromium for the browser tests: the Debian package's binary, the flags that work on
this machine, and the rule for when it is absent (skip here, fail on CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def require_chromium() -> None:
    """Skip the calling test when Chromium is absent; on CI (CI set) fail instead: .ci/run
    installs it."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is absent on CI: .ci/run must install the chromium package")
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium; CI installs it)")
