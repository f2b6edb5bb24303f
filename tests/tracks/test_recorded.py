"""Recorded research runs (physml.tracks.recorded): round trip, named refusals, the text of
notebook 04's research-budget section from hand-made runs, and the record the repository ships."""

import json
import shlex

import numpy as np
import pandas as pd
import pytest

from physml.paths import repo_root
from physml.stats import OUTCOME_SENTENCES
from physml.tracks import experiments, recorded

SHIPPED = repo_root() / "data/tracks/research/04_physics_ablation.json"


def _lam(values: dict[str, list[float]], steps: int = 20000) -> pd.DataFrame:
    rows = [{"setting": s, "seed": i, "label": f"{s}-s{i}", "optimizer_steps": steps,
             "pos_mean_mm": v, "arch": "pinn", "extra": "dropped"}
            for s, vs in values.items() for i, v in enumerate(vs)]
    return pd.DataFrame(rows)


def _eff() -> pd.DataFrame:
    rows = []
    for n, (mlp, pinn) in {100: ([5.0, 5.2, 5.1], [9.0, 9.4, 9.1]),
                           1000: ([1.0, 1.1, 1.05], [1.02, 1.12, 1.04])}.items():
        for arch, vs in (("mlp", mlp), ("pinn", pinn)):
            rows += [{"arch": arch, "n_train": n, "seed": i, "label": f"{arch}-n{n}-s{i}",
                      "optimizer_steps": 20000, "pos_mean_mm": v} for i, v in enumerate(vs)]
    return pd.DataFrame(rows)


def _ext() -> pd.DataFrame:
    return pd.DataFrame([{"arch": a, "seed": i, "label": f"{a}-s{i}", "optimizer_steps": 20000,
                          "pos_mean_mm": v}
                         for a, vs in (("mlp", [40.0, 42.0, 41.0]), ("pinn", [160.0, 170.0, 165.0]))
                         for i, v in enumerate(vs)])


def _save(tmp_path, **tables):
    return recorded.save(tmp_path / "rec.json", tables, notebook="tracks/04", params={
        "batch_size": 1024, "n_colloc": 256, "seeds": [0, 1, 2]}, command="physml render x",
        git={"commit": "0123456789abcdef", "dirty": False})


def test_a_saved_record_loads_back_with_its_columns_and_provenance(tmp_path):
    lam = _lam({"data_only": [1.1, 1.2, 1.0], "balanced": [30.0, 28.0, 29.0]})
    path = _save(tmp_path, **{"lambda": lam, "extrapolation": _ext()})
    rec = recorded.load(path)
    assert set(rec.tables) == {"lambda", "extrapolation"}
    got = rec.tables["lambda"]
    assert "extra" not in got.columns  # only recorded.COLUMNS are kept
    pd.testing.assert_frame_equal(got, lam.drop(columns="extra")[list(got.columns)])
    assert rec.params["n_colloc"] == 256 and rec.commit == "0123456789abcdef"
    text = rec.provenance()
    assert "`physml render x`" in text and "0123456789 " in text and "rec.json" in text
    assert rec.date_utc[:4].isdigit() and rec.date_utc[:10] in text
    dirty = recorded.save(tmp_path / "d.json", {"lambda": lam}, notebook="n", params={},
                          command="c", git={"commit": None, "dirty": True})
    assert "unknown (uncommitted changes in the tree)" in recorded.load(dirty).provenance()


def test_save_refuses_a_table_without_seeds_or_errors(tmp_path):
    with pytest.raises(recorded.RecordError, match=r"'lambda' lacks columns \['pos_mean_mm'\]"):
        _save(tmp_path, **{"lambda": _lam({"a": [1.0, 2.0]}).drop(columns="pos_mean_mm")})


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("tables"), "missing field 'tables'"),
    (lambda d: d.update(kind="tracks.shipped"), "kind 'tracks.shipped' is not"),
    (lambda d: d.update(format=2), "format 2"),
    (lambda d: d.update(params=[1]), "field 'params' must be dict"),
    (lambda d: d["tables"].update({"lambda": []}), "tables.lambda must be a non-empty list"),
    (lambda d: d["tables"]["lambda"][1].pop("seed"), r"tables.lambda\[1\] lacks \['seed'\]"),
    (lambda d: d["tables"]["lambda"][2].update(pos_mean_mm=float("nan")),
     r"tables.lambda\[2\].pos_mean_mm is not a finite number"),
])
def test_a_malformed_record_is_refused_naming_file_and_field(tmp_path, edit, message):
    path = _save(tmp_path, **{"lambda": _lam({"data_only": [1.0, 2.0, 3.0]})})
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(recorded.RecordError, match=message) as err:
        recorded.load(path)
    assert str(path) in str(err.value)


def test_a_missing_or_broken_file_is_named(tmp_path):
    with pytest.raises(recorded.RecordError, match="no such recorded-runs file"):
        recorded.load(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(recorded.RecordError, match="bad.json: not valid JSON"):
        recorded.load(tmp_path / "bad.json")


def test_research_budget_text_recomputes_every_verdict_from_the_recorded_seeds(tmp_path):
    lam = _lam({"data_only": [1.1, 1.2, 1.0], "weak": [2.0, 2.5, 2.2],
                "balanced": [30.0, 28.0, 29.0]})
    rec = recorded.load(_save(tmp_path, **{"lambda": lam, "efficiency": _eff(),
                                           "extrapolation": _ext()}))
    own = experiments.ablation_verdict(
        _lam({"data_only": [40.0, 50.0, 45.0], "balanced": [150.0, 160.0, 170.0]}, 300), 0.05)
    text = experiments.research_budget_markdown(rec, own["verdict"], 300, 0.05)
    assert "took 300 optimiser steps each; the research profile's took 20,000 (3 seeds" in text
    assert "per setting; batch 1,024, 256 collocation points)" in text
    assert "`physml render x`" in text
    assert "best weighting is **data_only** (1.10 [" in text
    ref = experiments.ablation_verdict(lam, 0.05)["verdict"]
    assert f"minus data-only: {ref.diff} mm — **{OUTCOME_SENTENCES['b']}**" in text
    assert "the same verdict as at this run's budget" in text
    # PINN - MLP: clearly worse at 100 tracks, within noise at 1000
    small = experiments.paired_verdict(_eff(), "arch", "pinn", "mlp", 0.05,
                                       where={"n_train": 100})
    assert f"with 100 training tracks {small.diff} mm ({OUTCOME_SENTENCES['b']})" in text
    tie = f"with 1,000 training tracks 0.0100 [-0.0330, 0.0530] mm ({OUTCOME_SENTENCES['tie']})"
    assert tie in text
    assert "tested on 2–5 GeV, PINN − MLP: 124 [" in text
    # a verdict that changed with the budget is said so
    flipped = experiments.ablation_verdict(
        _lam({"data_only": [150.0, 160.0, 170.0], "balanced": [40.0, 50.0, 45.0]}, 300), 0.05)
    other = experiments.research_budget_markdown(rec, flipped["verdict"], 300, 0.05)
    assert f"at this run's budget: {OUTCOME_SENTENCES['a']}" in other
    assert "the same verdict" not in other
    # without this run's verdict, or without the optional tables, the rest still reads
    only = recorded.load(_save(tmp_path, **{"lambda": lam}))
    bare = experiments.research_budget_markdown(only, None, 300, 0.05)
    assert "PINN − MLP" not in bare and "this run's budget:" not in bare
    assert "same verdict" not in bare


def test_the_render_command_quotes_lists_as_json_for_the_shell():
    cmd = recorded.render_command("nb.ipynb", {"settings": ["data_only", "weak"], "steps": 20000})
    assert cmd == ("physml render nb.ipynb --profile research -p 'settings=[\"data_only\", "
                   "\"weak\"]' -p 'steps=20000'")
    assert shlex.split(cmd)[-3] == 'settings=["data_only", "weak"]'


def test_the_shipped_record_answers_the_ablation_at_matched_budgets_of_20000_steps():
    """Issue 13: physics-loss ablation and data efficiency at matched, converged budgets
    (same optimiser steps, >= 20k), with CIs over seeds."""
    rec = recorded.load(SHIPPED)
    assert set(rec.tables) == {"lambda", "efficiency", "extrapolation"}
    for name, t in rec.tables.items():
        steps = t["optimizer_steps"]
        assert steps.min() >= 20000, name
        assert steps.max() <= 1.01 * steps.min(), name  # matched up to whole epochs
        if "n_train" in t.columns:  # compared runs (same training set) took the same steps
            assert t.groupby("n_train")["optimizer_steps"].nunique().max() == 1, name
        assert t.groupby(["label"]).size().max() == 1, name
    lam = rec.tables["lambda"]
    assert {"data_only", "balanced"} <= set(lam["setting"])
    assert lam.groupby("setting")["seed"].nunique().min() >= 3
    assert np.all(np.isfinite(lam["pos_mean_mm"]))
    assert rec.commit  # (dirty: the tree changed while it ran, see data/tracks/research/README)
    assert "-p 'steps=20000'" in rec.command and "--profile research" in rec.command


def test_the_extrapolation_ranges_are_worded_from_the_ranges_the_runs_use():
    import inspect

    sig = inspect.signature(experiments.extrapolation).parameters
    assert sig["train_p"].default == experiments.EXTRAPOLATION_TRAIN_P
    assert sig["test_p"].default == experiments.EXTRAPOLATION_TEST_P
    assert experiments.extrapolation_words() == "Trained on p > 5 GeV and tested on 2–5 GeV"
    assert experiments.extrapolation_words((8.0, 100.0), (1.5, 8.0)) == \
        "Trained on p > 8 GeV and tested on 1.5–8 GeV"
