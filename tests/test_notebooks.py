"""Every committed notebook: clean, parameterised, consistent defaults, and a smoke render each."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import nbformat
import pytest

from notebook_fixtures import write_notebook, write_params
from physml import render as R
from physml.paths import all_notebooks, repo_root

NOTEBOOKS = all_notebooks()
IDS = [f"{p.parent.name}/{p.stem}" for p in NOTEBOOKS]
STUDIES = sorted({p.parent.name for p in NOTEBOOKS})


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_committed_without_outputs_and_with_parameters_cell(nb_path):
    no_id = [i for i, c in enumerate(json.loads(nb_path.read_text())["cells"]) if "id" not in c]
    assert not no_id, f"{nb_path.name}: cells {no_id} have no id (nbformat warns, and will refuse)"
    nb = nbformat.read(nb_path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{nb_path.name}: cells {dirty} carry outputs; strip them"
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert nb.metadata.get("kernelspec", {}).get("name") == "physml"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


@pytest.mark.parametrize("profile", ["default", "smoke"])
@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_params_files_exist_and_validate(nb_path, profile):
    assert R.params_path(nb_path, profile).exists()
    R.plan([nb_path], profile=profile)  # raises on unknown keys or wrong types


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_research_profile_validates_where_present(nb_path):
    R.plan([nb_path], profile="research")


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_parameters_cell_defaults_equal_the_default_params_file(nb_path):
    assert R.default_mismatches(nb_path) == []


def test_default_mismatch_check_fails_on_an_altered_default(project):
    nb = write_notebook(project / "notebooks/demo/05_defaults.ipynb",
                        "n_samples: int = 20000\nlr: float = 0.001")
    write_params(project, "demo", "05_defaults", {"n_samples": 20000, "lr": 0.001})
    assert R.default_mismatches(nb, project) == []
    write_params(project, "demo", "05_defaults", {"n_samples": 100000, "lr": 0.001})
    (msg,) = R.default_mismatches(nb, project)
    assert "'n_samples' is 20000 in the parameters cell but 100000 in 05_defaults.yaml" in msg


@pytest.mark.parametrize("study", STUDIES)
def test_a_target_named_in_several_notebooks_of_a_study_has_one_default(study):
    """A stated target (a ``target_*`` parameter, e.g. cnc's ``target_command_lpo`` in 03 and
    04) is one number: two notebooks of a study must not judge against different defaults."""
    seen: dict[str, dict[str, object]] = {}
    for nb in NOTEBOOKS:
        if nb.parent.name == study:
            for name, info in R.declared_parameters(nb).items():
                if name.startswith("target_"):
                    seen.setdefault(name, {})[nb.stem] = info["default"]
    split = {k: v for k, v in seen.items() if len(set(map(repr, v.values()))) > 1}
    assert not split, f"{study}: targets with different defaults: {split}"


def test_notebook_paths_follow_the_naming_convention():
    for p in NOTEBOOKS:
        num, _, topic = p.stem.partition("_")
        assert num.isdigit() and len(num) == 2 and topic, p


@pytest.mark.parametrize("study", STUDIES)
def test_every_study_records_a_headline(study):
    """The scoreboard has a row for every study: some notebook of it calls headline(...)."""
    sources = "\n".join(
        c.source for nb in NOTEBOOKS if nb.parent.name == study
        for c in nbformat.read(nb, as_version=4).cells if c.cell_type == "code")
    assert re.search(r"\bheadline\(", sources), f"no notebook of {study} records a headline"


@pytest.fixture(scope="session")
def smoke_artifacts(tmp_path_factory):
    """One artifacts folder per test session, so later notebooks reuse earlier ones' caches."""
    return tmp_path_factory.mktemp("artifacts")


@pytest.mark.slow
@pytest.mark.parametrize(
    "nb_path",
    [pytest.param(p, marks=pytest.mark.xdist_group(p.parent.name)) for p in NOTEBOOKS],
    ids=IDS)
def test_notebook_smoke_renders(nb_path, smoke_artifacts, tmp_path):
    """The notebook's smoke profile renders into a report with recorded figures."""
    env = {**os.environ, "PHYSML_ARTIFACTS": str(smoke_artifacts / nb_path.parent.name)}
    out = tmp_path / "reports"
    res = subprocess.run(
        [sys.executable, "-m", "physml.cli", "render", str(nb_path), "--profile", "smoke",
         "--out", str(out), "--timeout", "600"],
        capture_output=True, text=True, env=env, cwd=repo_root(), timeout=900,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    data = json.loads((out / nb_path.parent.name / f"{nb_path.stem}.json").read_text())
    assert data["status"] == "ok" and data["figures"], nb_path
    html = (out / nb_path.parent.name / f"{nb_path.stem}.html").read_text()
    assert len(html) > 10_000
    # no raw Python repr reaches the report (a cell ending in a call that returns a value)
    # nor a dict, list or tuple of strings printed as Python writes it ({'mlp': 4000}), outside
    # the code and the page's scripts and styles
    shown = re.sub(r'<div class="highlight[^"]*">\s*<pre>.*?</pre>|<script.*?</script>|'
                   r'<style.*?</style>', "", html, flags=re.S)
    for pattern in (r"\bCI\(mean=", r"\bTiming\(seconds=", r" object at 0x[0-9a-f]+",
                    r"\{'[^'<]*': ", r"\['[^'<]*'[,\]]", r"\('[^'<]*',", r"np\.float64\("):
        assert not re.search(pattern, shown), (nb_path, pattern, re.search(pattern, shown))
    # nor a list of numbers as Python prints it ("best epochs [2, 2, 3, 4]"; a CI has two
    # numbers), outside code spans such as the parameter table
    prose = re.sub(r"<code>.*?</code>", "", shown, flags=re.S)
    hit = re.search(r"\[-?\d[\d.]*, -?\d[\d.]*, -?\d", prose)
    assert not hit, (nb_path, prose[max(0, hit.start() - 80):hit.end() + 20])
    assert (out / "index.html").exists()
