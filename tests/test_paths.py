"""physml.paths.locked: a second process waits for the first to finish making an artifact."""

import subprocess
import sys
import time

from physml.paths import locked

_HOLDER = """
import sys, time
from pathlib import Path
from physml.paths import locked
art = Path(sys.argv[1])
with locked(art):
    Path(sys.argv[2]).touch()  # tells the test the lock is held
    time.sleep(1.0)
    art.write_text("made")
"""


def test_a_process_waits_while_another_holds_the_lock_and_then_finds_the_artifact(tmp_path):
    art, ready = tmp_path / "map.npz", tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(art), str(ready)])
    try:
        t0 = time.monotonic()
        while not ready.exists():
            assert holder.poll() is None and time.monotonic() - t0 < 60, "holder did not start"
            time.sleep(0.02)
        with locked(art):
            assert art.read_text() == "made"  # without the lock we would get here first
    finally:
        holder.wait(timeout=60)
    assert holder.returncode == 0
