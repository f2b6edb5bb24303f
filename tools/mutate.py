"""Mutation check: which one-operator changes of a module does its test file fail to notice?

    python tools/mutate.py lib/physml/stats.py tests/test_stats.py [more test paths]
    make mutate MODULE=lib/physml/stats.py TESTS=tests/test_stats.py

One mutant at a time, each of these is flipped in the module's source and the tests are run
(``pytest -x``): a comparison (``<`` to ``<=`` and to ``>``, ``==`` to ``!=``, ``in`` to
``not in``, ``is`` to ``is not``), an arithmetic operator (``+ - * /`` to its opposite), a
boolean operator (``and`` / ``or``), a negation (``not x`` and ``-x`` to ``x``) and a boolean
constant. The tests must pass on the unchanged module first (else nothing is tested). A mutant
is *killed* when the tests fail or hang (past ``--timeout`` seconds), and
*survives* when they pass. The last line counts both; every survivor is printed with its
line. A survivor is either a missing test or an equivalent mutant (e.g. a dataclass flag, or
``<`` vs ``<=`` where the two are never equal): read each one.

The module is rewritten in place (from its syntax tree, so comments and layout change in the
mutants) and restored when the run ends, also on Ctrl-C or a kill (SIGTERM); run it on a
clean checkout or a git worktree, never while editing the module. ``--lines 12,40`` limits the
mutants to those lines.
"""

from __future__ import annotations

import argparse
import ast
import copy
import signal
import subprocess
import sys
import time
from pathlib import Path

COMPARE_SWAPS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
                 ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In,
                 ast.Is: ast.IsNot, ast.IsNot: ast.Is}
COMPARE_FLIPS = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE}
ARITHMETIC_SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}


def mutants(tree: ast.Module) -> list[tuple[int, int, tuple]]:
    """Every mutation of ``tree``: ``(node index in ast.walk order, line, change)``."""
    out = []
    for i, node in enumerate(ast.walk(tree)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Compare):
            for j, op in enumerate(node.ops):
                for table in (COMPARE_SWAPS, COMPARE_FLIPS):
                    if type(op) in table:
                        out.append((i, line, ("compare", j, table[type(op)])))
        elif isinstance(node, ast.BinOp) and type(node.op) in ARITHMETIC_SWAPS:
            out.append((i, line, ("arithmetic", ARITHMETIC_SWAPS[type(node.op)])))
        elif isinstance(node, ast.BoolOp):
            out.append((i, line, ("boolean", ast.Or if isinstance(node.op, ast.And) else ast.And)))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
            out.append((i, line, ("drop", type(node.op))))
        elif isinstance(node, ast.Constant) and type(node.value) is bool:
            out.append((i, line, ("constant", not node.value)))
    return out


def apply(tree: ast.Module, index: int, change: tuple) -> ast.Module:
    """A copy of ``tree`` with ``change`` made at the node of ``ast.walk`` index ``index``."""
    tree = copy.deepcopy(tree)
    nodes = list(ast.walk(tree))
    node, kind = nodes[index], change[0]
    if kind == "compare":
        node.ops[change[1]] = change[2]()
    elif kind in ("arithmetic", "boolean"):
        node.op = change[1]()
    elif kind == "constant":
        node.value = change[1]
    elif kind == "drop":  # replace the unary node by its operand in its parent
        for parent in nodes:
            for field, value in ast.iter_fields(parent):
                if value is node:
                    setattr(parent, field, node.operand)
                    return tree
                if isinstance(value, list) and any(v is node for v in value):
                    value[[id(v) for v in value].index(id(node))] = node.operand
                    return tree
    return tree


def describe(change: tuple) -> str:
    kind = change[0]
    if kind in ("compare", "arithmetic", "boolean"):
        op = change[-1]
        return f"{kind} -> {op.__name__}"
    return f"{kind} {change[1].__name__ if kind == 'drop' else change[1]}"


def _pytest(tests: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                           *tests], capture_output=True, text=True, timeout=timeout)


def run(module: Path, tests: list[str], lines: set[int], timeout: float) -> tuple[int, int]:
    """Test every mutant of ``module``; print each result; return (mutants, survivors).

    The tests must pass on the unchanged module first: a failing suite, a misspelt test path
    or one that collects nothing would otherwise count every mutant as killed (SystemExit)."""
    source = module.read_text()
    tree = ast.parse(source)
    text = source.splitlines()
    base = _pytest(tests, timeout)
    if base.returncode != 0:
        tail = "\n".join((base.stdout + base.stderr).strip().splitlines()[-5:])
        raise SystemExit(f"mutate: the tests {tests} do not pass on the unchanged {module} "
                         f"(pytest exit {base.returncode}); no mutant tested:\n{tail}")
    todo = [m for m in mutants(tree) if not lines or m[1] in lines]
    survivors = 0
    try:
        for index, line, change in todo:
            module.write_text(ast.unparse(ast.fix_missing_locations(apply(tree, index, change))))
            t0 = time.perf_counter()
            try:
                killed = _pytest(tests, timeout).returncode != 0
            except subprocess.TimeoutExpired:
                killed = True
            survivors += not killed
            code = text[line - 1].strip() if 0 < line <= len(text) else ""
            print(f"{'killed  ' if killed else 'SURVIVED'} line {line}: {describe(change)}"
                  f"  | {code[:100]}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    finally:
        module.write_text(source)
    print(f"== {module}: {len(todo)} mutants, {survivors} survived")
    return len(todo), survivors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("module", type=Path)
    ap.add_argument("tests", nargs="+")
    ap.add_argument("--lines", default="", help="comma-separated line numbers (default: all)")
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="seconds before a mutant's test run counts as a hang (killed)")
    args = ap.parse_args(argv)
    # a plain kill (SIGTERM) unwinds like Ctrl-C, so the module is restored either way
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    lines = {int(v) for v in args.lines.split(",") if v}
    run(args.module, args.tests, lines, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
