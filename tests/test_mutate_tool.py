"""tools/mutate.py: the mutation check finds the changes a test file does not notice."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "mutate.py"


def _tool():
    spec = importlib.util.spec_from_file_location("mutate_tool", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_each_kind_of_mutant_is_found_and_applied():
    m = _tool()
    tree = ast.parse("x = not True\ny = -z\nw = a < b\nv = p and q\n")
    found = m.mutants(tree)
    assert sorted(c[0] for _, _, c in found) == ["boolean", "compare", "compare", "constant",
                                                 "drop", "drop"]
    texts = {ast.unparse(m.apply(tree, i, c)) for i, _, c in found}
    assert "x = True\ny = -z\nw = a < b\nv = p and q" in texts  # not dropped
    assert "x = not False\ny = -z\nw = a < b\nv = p and q" in texts
    assert "x = not True\ny = z\nw = a < b\nv = p and q" in texts  # minus dropped
    assert "x = not True\ny = -z\nw = a <= b\nv = p and q" in texts
    assert "x = not True\ny = -z\nw = a > b\nv = p and q" in texts
    assert "x = not True\ny = -z\nw = a < b\nv = p or q" in texts
    assert ast.unparse(tree) == "x = not True\ny = -z\nw = a < b\nv = p and q"  # untouched


def _project(tmp_path, src, test_body):
    """mod.py with ``src`` and test_mod.py whose test_f runs ``test_body`` (indented lines)."""
    (tmp_path / "mod.py").write_text(src)
    (tmp_path / "test_mod.py").write_text("import time\n\nfrom mod import f\n\n\ndef test_f():\n"
                                          + test_body)


def _run_tool(tmp_path, *tests):
    return subprocess.run([sys.executable, str(TOOL), "mod.py", *tests], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)


def test_a_run_counts_the_survivors_and_restores_the_module(tmp_path):
    src = "def f(a, b):\n    # the sum when a < b\n    return a + b if a < b else a - b\n"
    _project(tmp_path, src, "    assert f(1, 2) == 3\n")
    res = _run_tool(tmp_path, "test_mod.py")
    assert res.returncode == 0, res.stderr
    # < to <= and the else branch's - to + go unnoticed; < to > and + to - are caught
    assert "4 mutants, 2 survived" in res.stdout
    assert res.stdout.count("SURVIVED") == 2 and res.stdout.count("killed") == 2
    assert (tmp_path / "mod.py").read_text() == src  # comments and layout restored


def test_tests_that_do_not_pass_unchanged_stop_the_run_instead_of_killing_every_mutant(
        tmp_path):
    src = "def f(a, b):\n    return a + b\n"
    _project(tmp_path, src, "    assert f(1, 2) == 4\n")
    for tests in (["test_mod.py"], ["test_missing.py"]):  # failing; a misspelt path
        res = _run_tool(tmp_path, *tests)
        assert res.returncode != 0 and "do not pass on the unchanged mod.py" in res.stderr
        assert "killed" not in res.stdout and "mutants" not in res.stdout
        assert (tmp_path / "mod.py").read_text() == src


def test_a_killed_run_restores_the_module(tmp_path):
    import time

    src = "def f(a, b):\n    return a + b\n"
    _project(tmp_path, src, "    time.sleep(1)\n    assert f(1, 2) == 3\n")
    proc = subprocess.Popen([sys.executable, str(TOOL), "mod.py", "test_mod.py"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while (tmp_path / "mod.py").read_text() == src:  # until the first mutant is written
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.terminate()
    proc.wait(timeout=60)
    assert (tmp_path / "mod.py").read_text() == src
