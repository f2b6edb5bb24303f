"""Render notebooks into reports: validate params, execute with papermill, export HTML.

For each notebook ``notebooks/<study>/NN_topic.ipynb`` the renderer

1. resolves its parameters: ``params/<study>/NN_topic[.smoke].yaml``, then ``--params FILE``,
   then ``-p KEY=VALUE`` (later wins);
2. validates them against the notebook's ``parameters`` cell *before any kernel starts*: an
   unknown key or a wrong type raises :class:`ParamsError` naming the key, the notebook and
   the accepted keys;
3. executes it with papermill on the ``physml`` kernel in a child process (killed at the
   per-notebook timeout), with ``PHYSML_RESULTS_FILE`` pointing at a temporary results file;
4. on success writes ``reports/<study>/NN_topic.html`` and ``NN_topic.json`` atomically (a
   temporary file renamed into place), on failure keeps the last good report untouched and saves
   the executed notebook as ``NN_topic.failed.ipynb`` beside it, with ``NN_topic.failed.json``
   describing the failing cell and error;
5. regenerates ``reports/index.html``.
"""

from __future__ import annotations

import ast
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import yaml

from physml import provenance, report, scoreboard
from physml.paths import all_notebooks, notebooks_dir, params_file, repo_root, reports_dir

KERNEL = "physml"
PROFILES = ("default", "smoke", "research")
DEFAULT_TIMEOUT_S = 3600.0
TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "str": (str,), "bool": (bool,),
    "list": (list,), "dict": (dict,),
}


class RenderError(Exception):
    """A problem found before execution (missing notebook or params file, bad params)."""


class ParamsError(RenderError):
    """Parameters that do not match the notebook's ``parameters`` cell."""


@dataclass
class Job:
    """One notebook to render: where it is, where its report goes, and its parameters."""

    notebook: Path
    study: str
    stem: str
    params: dict[str, Any]
    params_sources: list[str]
    reports_dir: Path
    profile: str = "default"

    @property
    def name(self) -> str:
        return f"{self.study}/{self.stem}"

    @property
    def html(self) -> Path:
        return self.reports_dir / self.study / f"{self.stem}.html"

    @property
    def results(self) -> Path:
        return self.reports_dir / self.study / f"{self.stem}.json"

    @property
    def failed_notebook(self) -> Path:
        return self.reports_dir / self.study / f"{self.stem}.failed.ipynb"

    @property
    def failed_info(self) -> Path:
        return self.reports_dir / self.study / f"{self.stem}.failed.json"


@dataclass
class Outcome:
    """What happened to one job."""

    name: str
    status: str  # "ok" or "failed"
    wall_s: float
    detail: str = ""
    report: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- discovery


def select(targets: Sequence[str | Path], root: Path | None = None) -> list[Path]:
    """Notebooks named by ``targets`` (notebook files or study folders); all when empty."""
    if not targets:
        found = all_notebooks(root)
        if not found:
            raise RenderError(f"no notebooks under {notebooks_dir(root)}")
        return found
    out: list[Path] = []
    for t in targets:
        p = Path(t).resolve()
        if p.is_dir():
            nbs = sorted(p.glob("*.ipynb"))
            if not nbs:
                raise RenderError(f"{t}: folder holds no notebooks")
            out.extend(nbs)
        elif p.suffix == ".ipynb" and p.is_file():
            out.append(p)
        else:
            raise RenderError(f"{t}: not a notebook (.ipynb) or a study folder")
    return list(dict.fromkeys(out))


def params_path(notebook: Path, profile: str, root: Path | None = None) -> Path:
    """``params/<study>/<stem>.yaml`` (default) or ``<stem>.<profile>.yaml`` (smoke, research)."""
    if profile not in PROFILES:
        raise RenderError(f"unknown profile {profile!r}; profiles: {', '.join(PROFILES)}")
    suffix = ".yaml" if profile == "default" else f".{profile}.yaml"
    return params_file(notebook, suffix, root)


# --------------------------------------------------------------------------- parameters


def read_params_file(path: Path) -> dict[str, Any]:
    """A YAML mapping of parameter values; raises naming the file when it is anything else."""
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise RenderError(f"params file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamsError(
            f"{path}: expected a mapping of parameter: value, got {type(data).__name__}"
        )
    return data


def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """``["n=3", "seeds=[0, 1]"]`` -> ``{"n": 3, "seeds": [0, 1]}`` (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ParamsError(f"-p {pair!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise ParamsError(f"-p {pair!r}: value is not valid YAML: {e}") from None
    return out


def declared_parameters(notebook: Path) -> dict[str, dict[str, Any]]:
    """``{name: {"type": str, "default": value, "help": str}}`` from the ``parameters`` cell.

    The type is the annotation (``n: int = 3``) or, without one, the type of the default.
    Raises :class:`RenderError` when the notebook has no cell tagged ``parameters``.
    """
    import papermill

    nb = nbformat.read(notebook, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise RenderError(f"{notebook}: no cell tagged 'parameters' (papermill needs one)")
    inspected = papermill.inspect_notebook(str(notebook))
    _check_all_declarations_parsed(notebook, cells[0].source, inspected)
    out = {}
    for name, info in inspected.items():
        try:
            default = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            default = info["default"]
        tname = info["inferred_type_name"]
        if tname in (None, "None"):
            tname = type(default).__name__
        out[name] = {"type": tname, "default": default, "help": info.get("help", "")}
    return out


def _check_all_declarations_parsed(notebook: Path, source: str, inspected: dict) -> None:
    """Every top-level assignment in the parameters cell must be one papermill understood.

    papermill skips a line it cannot parse with only a log message; the parameter would then
    be rejected as unknown (or silently not overridable), so name the line instead.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise RenderError(f"{notebook}: parameters cell is not valid Python: {e}") from None
    lines = source.splitlines()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        for name in names:
            if name not in inspected:
                raise RenderError(
                    f"{notebook}: papermill cannot parse the declaration of {name!r} in the "
                    f"parameters cell (line {node.lineno}: {lines[node.lineno - 1].strip()!r}); "
                    "write it as `name: type = literal  # help`"
                )


def validate(notebook: Path, params: dict[str, Any], sources: Sequence[str]) -> None:
    """Check every key exists in the notebook's parameters cell with a value of its type."""
    declared = declared_parameters(notebook)
    accepted = ", ".join(sorted(declared)) or "(none)"
    origin = " + ".join(sources) or "defaults"
    for key, value in params.items():
        if key not in declared:
            raise ParamsError(
                f"unknown parameter {key!r} for {notebook.name} (from {origin}); "
                f"accepted keys: {accepted}"
            )
        tname = declared[key]["type"]
        allowed = TYPES.get(tname)
        if allowed is None:
            continue  # a type papermill cannot express in YAML; the kernel checks it
        if isinstance(value, bool) and bool not in allowed:
            ok = False
        else:
            ok = isinstance(value, allowed)
        if not ok:
            raise ParamsError(
                f"parameter {key!r} of {notebook.name} (from {origin}) must be {tname}, "
                f"got {type(value).__name__} {value!r}"
            )


def _profile_params(nb: Path, profile: str, root: Path) -> tuple[dict[str, Any], list[str]]:
    """The profile's parameters and the files they came from.

    ``default`` and ``smoke`` read their own file, which must exist. ``research`` is the
    default file overlaid with ``NN_topic.research.yaml``; a notebook without one renders with
    its default parameters, and its sources say so.
    """
    ppath = params_path(nb, "default" if profile == "research" else profile, root)
    if not ppath.exists():
        raise RenderError(f"{nb.name}: params file missing: {ppath}")
    params, sources = read_params_file(ppath), [str(ppath.relative_to(root))]
    if profile == "research":
        rpath = params_path(nb, "research", root)
        if rpath.exists():
            params.update(read_params_file(rpath))
            sources.append(str(rpath.relative_to(root)))
        else:
            sources.append("(no research profile: default parameters)")
    return params, sources


def default_mismatches(notebook: Path, root: Path | None = None) -> list[str]:
    """Keys whose value in ``params/<study>/NN_topic.yaml`` differs from the notebook's default.

    The default profile and the ``parameters`` cell are one source of truth seen from two
    places (papermill and JupyterLab); each entry names the key and both values.
    """
    declared = declared_parameters(notebook)
    ppath = params_path(notebook, "default", root)
    out = []
    for key, value in read_params_file(ppath).items():
        if key in declared and declared[key]["default"] != value:
            out.append(f"{notebook.parent.name}/{notebook.name}: {key!r} is "
                       f"{declared[key]['default']!r} in the parameters cell but {value!r} in "
                       f"{ppath.name}")
    return out


SMOKE_SUBDIR = "smoke"


def plan(
    targets: Sequence[str | Path] = (),
    profile: str = "default",
    params_file: str | Path | None = None,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    root: Path | None = None,
) -> list[Job]:
    """Resolve and validate every job; raises before anything executes.

    Reports go to ``out`` if given, else to ``reports/`` — except smoke renders, which go to
    ``reports/smoke/`` so that they never replace a report of real (default or research) runs.
    """
    root = root or repo_root()
    if out:
        reports = Path(out).resolve()
    else:
        reports = reports_dir(root) / SMOKE_SUBDIR if profile == "smoke" else reports_dir(root)
    extra = read_params_file(Path(params_file)) if params_file else {}
    cli = parse_overrides(overrides)
    jobs = []
    for nb in select(targets, root):
        base, sources = _profile_params(nb, profile, root)
        params = {**base, **extra, **cli}
        sources += ([str(params_file)] if extra else []) + (
            ["-p " + " ".join(overrides)] if cli else [])
        validate(nb, params, sources)
        jobs.append(Job(nb, nb.parent.name, nb.stem, params, sources, reports, profile))
    return jobs


# --------------------------------------------------------------------------- execution


INJECTED_TAGS = {"injected-parameters", "papermill-error-cell-tag"}


def _first_error(nb: nbformat.NotebookNode) -> str:
    """``cell N ('first line'): Error: message`` with N counted 1-based in the source notebook."""
    cells = [c for c in nb.cells if not INJECTED_TAGS & set(c.get("metadata", {}).get("tags", []))]
    for i, cell in enumerate(cells, start=1):
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                src = cell.source.strip().splitlines()
                head = src[0][:80] if src else ""
                return f"cell {i} ({head!r}): {o.get('ename')}: {str(o.get('evalue'))[:300]}"
    return ""


def _atomic_write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.partial"
    try:
        tmp.write_bytes(data if isinstance(data, bytes) else data.encode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def run_job(job: Job, timeout_s: float = DEFAULT_TIMEOUT_S, progress: bool = False) -> Outcome:
    """Execute one notebook and write its report; never raises for notebook failures."""
    root = repo_root()
    prov = provenance.collect(root)
    # what the report depends on, hashed before it runs: an edit during the run makes it stale
    inputs = scoreboard.inputs_fingerprint(job.notebook, job.params)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="physml-render-") as tmp:
        tmpd = Path(tmp)
        executed, results_tmp = tmpd / "executed.ipynb", tmpd / "results.json"
        params_tmp = tmpd / "params.yaml"
        params_tmp.write_text(yaml.safe_dump(job.params))
        env = {**os.environ, "PHYSML_RESULTS_FILE": str(results_tmp), "PHYSML_RENDER": "1",
               "PHYSML_REPORTS_DIR": str(job.reports_dir),  # where the other reports are
               "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
        cmd = [sys.executable, "-m", "papermill", str(job.notebook), str(executed),
               "-k", KERNEL, "-f", str(params_tmp), "--cwd", str(job.notebook.parent),
               "--log-level", "WARNING", "--progress-bar" if progress else "--no-progress-bar"]
        # a single notebook shows papermill's cell progress; several are summarised per line
        pipe = None if progress else subprocess.PIPE
        proc, held = _spawn(cmd, env=env, start_new_session=True, stdout=pipe,
                            stderr=None if progress else subprocess.STDOUT, text=True)
        detail = ""
        try:
            if held:  # an interrupt arrived while papermill started: stop it now
                raise KeyboardInterrupt(f"signal {held[0]}")
            log, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill(proc)
            log, detail = "", f"timed out after {timeout_s:g} s"
        except BaseException:
            _kill(proc)
            raise
        wall = time.perf_counter() - t0
        nb = nbformat.read(executed, as_version=4) if executed.exists() else None
        if proc.returncode == 0 and nb is not None and not detail:
            try:
                return _publish(job, nb, results_tmp, prov, wall, inputs)
            except Exception as e:  # export problems fail this notebook only, loudly
                detail = f"report export failed: {type(e).__name__}: {e}"
        if not detail:
            detail = (_first_error(nb) if nb is not None else "") or (
                f"papermill exited {proc.returncode}: " + (log or "").strip()[-500:])
        return _record_failure(job, nb, detail, prov, wall)


def _spawn(cmd: list[str], **kwargs: Any) -> tuple[subprocess.Popen, list[int]]:
    """``subprocess.Popen(cmd, **kwargs)`` with SIGINT / SIGTERM held until the child exists.

    An interrupt landing inside ``Popen`` would leave papermill running in its own session
    with nobody to kill it (and holding the terminal's output open). In the main thread the
    signals are recorded instead and returned, for the caller to act on once it holds the
    process; elsewhere (Dask worker threads cannot set handlers) Popen runs as is.
    """
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        return subprocess.Popen(cmd, **kwargs), held
    old = {s: signal.signal(s, lambda signum, frame: held.append(signum))
           for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return subprocess.Popen(cmd, **kwargs), held
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _kill(proc: subprocess.Popen) -> None:
    """Kill papermill and its kernel (they share a process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _publish(job: Job, nb: nbformat.NotebookNode, results_tmp: Path, prov: dict,
             wall: float, inputs: dict[str, str]) -> Outcome:
    prov = {**prov, "wall_time_s": round(wall, 2)}
    recorded = json.loads(results_tmp.read_text()) if results_tmp.exists() else {}
    meta = {"notebook": job.name, "status": "ok", "profile": job.profile, "params": job.params,
            "params_sources": job.params_sources, "provenance": prov,
            "inputs": inputs,
            "figures": recorded.get("figures", {}), "headlines": recorded.get("headlines", {})}
    html = report.to_html(nb, job.name, job.params, prov, meta["headlines"])
    _atomic_write(job.html, html)
    _atomic_write(job.results, json.dumps(meta, indent=1))
    job.failed_notebook.unlink(missing_ok=True)
    job.failed_info.unlink(missing_ok=True)
    return Outcome(job.name, "ok", wall, report=str(job.html))


def _record_failure(job: Job, nb: nbformat.NotebookNode | None, detail: str, prov: dict,
                    wall: float) -> Outcome:
    if nb is not None:
        _atomic_write(job.failed_notebook, nbformat.writes(nb))
    info = {"notebook": job.name, "status": "failed", "detail": detail, "params": job.params,
            "provenance": {**prov, "wall_time_s": round(wall, 2)},
            "failed_notebook": str(job.failed_notebook) if nb is not None else None}
    _atomic_write(job.failed_info, json.dumps(info, indent=1))
    return Outcome(job.name, "failed", wall, detail=detail)


# --------------------------------------------------------------------------- orchestration


def run_chain(task: tuple[list[Job], float]) -> list[Outcome]:
    """A study's notebooks in number order (later ones may read earlier ones' artifacts)."""
    jobs, timeout_s = task
    return [run_job(j, timeout_s) for j in jobs]


def render(
    jobs: list[Job],
    timeout_s: float = DEFAULT_TIMEOUT_S,
    workers: int | None = None,
    scheduler: str | None = None,
    echo: Callable[[str], None] = print,
) -> list[Outcome]:
    """Run the jobs (serially, or one task per study on Dask) and regenerate the index."""
    if not jobs:
        return []
    reports_dir = jobs[0].reports_dir
    outcomes: list[Outcome] = []

    def done(o: Outcome) -> None:
        outcomes.append(o)
        mark = "ok" if o.status == "ok" else "FAILED"
        echo(f"[{len(outcomes)}/{len(jobs)}] {o.name}: {mark} ({o.wall_s:.1f} s)"
             + (f" — {o.detail}" if o.detail else ""))
        report.write_index(reports_dir)

    if workers is None and scheduler is None:
        single = len(jobs) == 1
        for j in jobs:
            echo(f"rendering {j.name} ({', '.join(j.params_sources)}) ...")
            done(run_job(j, timeout_s, progress=single))
    else:
        from physml.parallel import as_completed_tasks

        chains: dict[str, list[Job]] = {}
        for j in jobs:
            chains.setdefault(j.study, []).append(j)
        ordered = longest_first(list(chains.values()))
        echo(f"rendering {len(jobs)} notebooks in {len(chains)} study chains on Dask "
             + (f"scheduler {scheduler}" if scheduler else f"LocalCluster({workers} workers)")
             + ", longest first: " + ", ".join(c[0].study for c in ordered))
        for result in as_completed_tasks(run_chain, [(c, timeout_s) for c in ordered],
                                         workers=workers, scheduler=scheduler):
            for o in result:
                done(o)
    report.write_index(reports_dir)
    return outcomes


def last_wall_s(job: Job) -> float | None:
    """Wall time (s) of the job's last successful render with the same profile, if any."""
    try:
        data = json.loads(job.results.read_text())
    except (OSError, ValueError):
        return None
    if data.get("profile") != job.profile:
        return None
    wall = data.get("provenance", {}).get("wall_time_s")
    return float(wall) if isinstance(wall, (int, float)) else None


def longest_first(chains: list[list[Job]]) -> list[list[Job]]:
    """Study chains ordered by expected duration, longest first (Dask hands tasks out in
    submission order, so the longest chain starts at once instead of last on an idle worker).

    Expected duration: the sum of the chain's last wall times for the same profile; a chain with
    a notebook never rendered that way counts as longest (its duration is unknown). Ties keep
    the given order.
    """
    def expected(chain: list[Job]) -> float:
        walls = [last_wall_s(j) for j in chain]
        return math.inf if None in walls else sum(walls)

    return sorted(chains, key=expected, reverse=True)


def summary_table(outcomes: Sequence[Outcome]) -> str:
    """Plain-text table: notebook, status, wall time, detail."""
    w = max([len(o.name) for o in outcomes] + [8])
    lines = [f"{'notebook':<{w}}  status  wall_s  detail", "-" * (w + 40)]
    for o in outcomes:
        lines.append(f"{o.name:<{w}}  {o.status:<6}  {o.wall_s:6.1f}  {o.detail}")
    n_fail = sum(o.status != "ok" for o in outcomes)
    lines.append(f"{len(outcomes) - n_fail} ok, {n_fail} failed")
    return "\n".join(lines)
