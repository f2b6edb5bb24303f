"""physml.results: the figure schema, headlines and their computed verdicts."""

import json

import numpy as np
import pytest

from physml import results, stats
from physml.stats import mean_ci


@pytest.fixture
def results_file(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    monkeypatch.setenv(results.ENV_VAR, str(path))
    return path


def test_record_writes_numbers_and_cis_in_the_documented_shape(results_file):
    results.record("a", np.float64(1.5), unit="mm", note="n")
    results.record("acc", mean_ci([0.7, 0.8, 0.9]))
    data = json.loads(results_file.read_text())["figures"]
    assert data["a"] == {"value": 1.5, "unit": "mm", "note": "n"}
    ref = mean_ci([0.7, 0.8, 0.9])
    assert data["acc"] == {"value": pytest.approx(0.8), "ci_low": pytest.approx(ref.low),
                           "ci_high": pytest.approx(ref.high), "n": 3, "unit": None,
                           "note": None}
    assert not list(results_file.parent.glob("*.tmp"))


def test_record_flattens_dicts_into_one_key_per_figure(results_file):
    ci = mean_ci([1.0, 2.0, 3.0])
    results.record("time", {"ours": 0.5, "anchor": {"mean": 2.0, "low": 1.0, "high": 3.0}},
                   unit="s")
    results.record("acc", {"rf": ci, "physics": ci.as_dict()})
    data = json.loads(results_file.read_text())["figures"]
    assert data["time.ours"] == {"value": 0.5, "unit": "s", "note": None}
    assert data["time.anchor"]["ci_low"] == 1.0 and data["time.anchor"]["unit"] == "s"
    assert data["acc.rf"]["value"] == 2.0 and data["acc.physics"]["ci_high"] == ci.high
    assert "time" not in data and "acc" not in data


def test_record_stores_a_comparison_as_its_difference_and_verdict(results_file):
    cmp = stats.paired_difference([1.0, 1.1, 1.2], [0.5, 0.55, 0.6])
    results.record("gain", cmp)
    entry = json.loads(results_file.read_text())["figures"]["gain"]
    assert entry["value"] == pytest.approx(0.55) and entry["verdict"] == "greater"


def test_record_stores_a_target_check_as_one_figure_with_the_target_beside_its_ci(results_file):
    ci = mean_ci([0.80, 0.81, 0.82])
    results.record("line_target", stats.against_target(ci, 0.85, better="higher"), unit="1")
    results.record("rate_target", {"cpu": stats.against_target(ci, 0.5, better="lower")})
    data = json.loads(results_file.read_text())["figures"]
    assert data["line_target"] == {"value": pytest.approx(0.81), "ci_low": ci.low,
                                   "ci_high": ci.high, "n": 3, "target": 0.85,
                                   "outcome": "missed", "better": "higher", "unit": "1",
                                   "note": None}
    assert data["rate_target.cpu"]["outcome"] == "missed"
    assert data["rate_target.cpu"]["better"] == "lower"


@pytest.mark.parametrize("bad", [[1, 2, 3], np.arange(3), {"x": [1, 2]}, object(), {}])
def test_record_refuses_lists_and_objects_naming_the_key(bad, monkeypatch):
    monkeypatch.delenv(results.ENV_VAR, raising=False)
    with pytest.raises(TypeError, match="the_key"):
        results.record("the_key", bad)


def test_record_without_render_keeps_values_in_memory(monkeypatch):
    monkeypatch.delenv(results.ENV_VAR, raising=False)
    assert results.record("interactive_value", 3) == 3
    assert results.recorded()["interactive_value"]["value"] == 3


def test_non_finite_values_are_kept_visible(monkeypatch):
    monkeypatch.delenv(results.ENV_VAR, raising=False)
    results.record("nan_value", float("nan"))
    assert results.recorded()["nan_value"]["value"] == "nan"
    with pytest.raises(ValueError, match="non-empty"):
        results.record("", 1)


# --------------------------------------------------------------------------- headlines

RNG = np.random.default_rng(0)
PHYS = 0.90 + RNG.normal(0, 0.005, 6)
ML = 0.70 + RNG.normal(0, 0.005, 6)


def _h(**kw):
    base = dict(key="acc", question="Which classifies unseen states?", metric="accuracy",
                unit=None, better="higher", margin=0.02)
    return results.headline(**{**base, **kw})


def test_headline_names_the_ci_separated_winner_and_writes_it(results_file):
    h = _h(physics=PHYS, ml=ML, names={"ml": "random forest"})
    assert h.verdict == "physics"
    stored = json.loads(results_file.read_text())["headlines"]["acc"]
    assert stored["verdict"] == "physics"
    assert stored["physics"]["value"] == pytest.approx(PHYS.mean())
    assert stored["ml"]["name"] == "random forest" and stored["hybrid"] is None
    assert stored["physics"]["ci_low"] < stored["physics"]["value"] < stored["physics"]["ci_high"]
    assert "physics" in h.markdown() and "random forest" in h.markdown()


def test_headline_sentence_and_findings_set_each_name_apart(results_file):
    """Names hold parentheses of their own ("clock rule (program + row position)"), so the
    sentence writes "physics, *name*: value", not "physics (name) value"."""
    from physml.report import findings_html

    h = _h(physics=PHYS, ml=ML, names={"physics": "clock (op + row)", "ml": "random forest"})
    md = h.markdown()
    assert "physics, *clock (op + row)*: " in md and "ML, *random forest*: " in md
    box = findings_html(json.loads(results_file.read_text())["headlines"])
    assert "physics, <i>clock (op + row)</i>: <b>" in box
    assert "ML, <i>random forest</i>: <b>" in box


def test_headline_direction_follows_better():
    assert _h(physics=PHYS, ml=ML, better="lower").verdict == "ml"


def test_headline_tie_needs_equivalence_and_wide_cis_are_inconclusive():
    rng = np.random.default_rng(1)
    a = 0.80 + rng.normal(0, 0.002, 8)
    tight = _h(physics=a, ml=a + rng.normal(0, 0.002, 8), hybrid=a - 0.2)
    assert tight.verdict == "tie" and "hybrid" in tight.detail
    # the scoreboard and the Findings box name the tied sides, not all three
    from physml.report import findings_html
    from physml.scoreboard import verdict_label

    stored = tight.as_dict()
    assert verdict_label(stored["verdict"], stored["pairs"]) == "physics ≈ ml"
    assert ">physics ≈ ml</b>" in findings_html({"k": stored})
    w = 0.80 + rng.normal(0, 0.1, 5)
    wide = _h(physics=w, ml=w + rng.normal(0, 0.1, 5))
    assert wide.verdict == "inconclusive"


def test_headline_hybrid_wins_only_when_separated_from_both():
    hyb = 0.95 + RNG.normal(0, 0.004, 6)
    assert _h(physics=PHYS, ml=ML, hybrid=hyb).verdict == "hybrid"
    close = PHYS + np.array([0.01, -0.012, 0.008, -0.009, 0.011, -0.007])
    assert _h(physics=PHYS, ml=ML, hybrid=close).verdict != "hybrid"


def test_headline_rejects_a_typed_verdict_missing_ci_and_bad_arguments():
    with pytest.raises(TypeError, match="verdict is computed"):
        _h(physics=PHYS, ml=ML, verdict="physics")
    with pytest.raises(ValueError, match="no CI"):
        _h(physics=0.9, ml=ML)
    with pytest.raises(ValueError, match="no per-seed samples"):
        _h(physics=stats.CI(0.9, 0.8, 1.0, 5), ml=ML)
    with pytest.raises(ValueError, match="at least two"):
        _h(physics=PHYS)
    with pytest.raises(ValueError, match="margin"):
        _h(physics=PHYS, ml=ML, margin=0)
    with pytest.raises(ValueError, match="better"):
        _h(physics=PHYS, ml=ML, better="up")
    with pytest.raises(ValueError, match="same seeds"):
        _h(physics=PHYS, ml=ML[:4])
    with pytest.raises(ValueError, match="finite"):
        _h(physics=PHYS, ml=np.r_[ML[:5], np.nan])


def test_headline_on_log_scale_compares_speeds_as_ratios():
    rk4 = np.array([3.0e5, 3.1e5, 2.9e5, 3.05e5])
    nn = rk4 * np.array([10.2, 9.9, 10.4, 10.1])
    h = _h(key="speed", metric="throughput", unit="tracks/s", physics=rk4, ml=nn,
           scale="log", margin=0.1)
    assert h.verdict == "ml"
    assert h.sides["ml"].mean == pytest.approx(np.exp(np.log(nn).mean()))
    assert h.pairs["ml_vs_physics"].diff.mean == pytest.approx(
        np.exp(np.mean(np.log(nn / rk4))))


def test_headline_anchor_is_stored_beside_the_answers(results_file):
    _h(physics=PHYS, ml=ML, anchor={"name": "clock rule", "value": 0.726, "source": "issue 11"})
    stored = json.loads(results_file.read_text())["headlines"]["acc"]["anchor"]
    assert stored["name"] == "clock rule" and stored["value"] == 0.726
    h = _h(key="speed2", physics=PHYS, ml=ML, unit="ms",
           anchor={"name": "audit", "value": 3.7, "unit": "x", "source": "issue 15"})
    assert h.anchor["text"] == "3.7 x" and h.anchor["unit"] == "x"


def test_headline_anchor_per_fold_values_keep_the_metrics_bounds(results_file):
    # two folds of a clock's accuracy: the unclipped t interval runs past 1
    clock = [0.45, 0.81]
    assert mean_ci(clock).high > 1 and mean_ci(clock).low < 0
    h = _h(physics=PHYS, ml=ML, bounds=(0.0, 1.0),
           anchor={"name": "clock", "value": clock, "source": "notebook 03"})
    assert (h.anchor["ci_low"], h.anchor["ci_high"]) == (0.0, 1.0)
    assert h.anchor["text"] == "0.6300 [0.000, 1.000]"
    # an anchor in a unit of its own is not the headline's metric: no clipping
    ratio = _h(key="acc2", physics=PHYS, ml=ML, bounds=(0.0, 1.0),
               anchor={"name": "ratio", "value": clock, "unit": "x", "source": "audit"})
    assert ratio.anchor["ci_high"] > 1


def test_headline_bounds_clip_each_side_but_not_the_verdict():
    phys = [0.97, 1.0, 1.0, 0.99]
    ml = [0.6, 0.7, 0.65, 0.62]
    free = results.headline("acc_free", "q", "accuracy", None, "higher", physics=phys, ml=ml,
                            margin=0.02)
    h = results.headline("acc", "q", "accuracy", None, "higher", physics=phys, ml=ml,
                         margin=0.02, bounds=(0, 1))
    assert free.sides["physics"].high > 1 and h.sides["physics"].high == 1.0
    assert h.as_dict()["physics"]["ci_high"] == 1.0
    assert h.verdict == free.verdict == "physics"
    assert h.pairs["physics_vs_ml"].diff == free.pairs["physics_vs_ml"].diff
    t = results.headline("t", "q", "time", "s", "lower", physics=[1e-3, 2e-3, 0.5],
                         ml=[1.0, 1.1, 1.2], margin=0.1, scale="log", bounds=(0, 2))
    assert t.sides["physics"].high == 2.0 and "clipped" in t.sides["physics"].method
    with pytest.raises(ValueError, match="outside the metric's range"):
        results.headline("x", "q", "accuracy", None, "higher", physics=[0.5, 1.5],
                         ml=[0.5, 0.6], margin=0.02, bounds=(0, 1))


def test_a_dict_with_exactly_value_and_ci_keys_is_one_ci(results_file):
    results.record("acc", {"value": 0.8, "ci_low": 0.7, "ci_high": 0.9})
    results.record("time", {"mean": 2.0, "low": 1.0, "high": 3.0})
    data = json.loads(results_file.read_text())["figures"]
    assert data["acc"]["ci_low"] == 0.7 and data["acc"]["value"] == 0.8
    assert data["time"]["ci_high"] == 3.0 and "acc.value" not in data


def test_headline_refuses_malformed_keys_anchors_and_margins():
    for key in ("bad key", 3, "acc!"):
        with pytest.raises(ValueError, match="key must be an identifier"):
            _h(key=key, physics=PHYS, ml=ML)
    for margin in (True, "0.1", 0, -0.1):
        with pytest.raises(ValueError, match="'acc': margin must be a positive number"):
            _h(physics=PHYS, ml=ML, margin=margin)
    for anchor in ({"name": "clock"}, {"value": 0.7}, [("name", "clock"), ("value", 0.7)]):
        with pytest.raises(ValueError, match="headline anchor: expected"):
            _h(physics=PHYS, ml=ML, anchor=anchor)
    with pytest.raises(ValueError, match="scale='log' needs positive values"):
        _h(physics=np.array([1.0, 2.0]), ml=np.array([0.0, 1.0]), scale="log")


def test_headline_anchor_given_per_seed_values_is_stored_as_a_ci():
    h = _h(physics=PHYS, ml=ML, anchor={"name": "clock", "value": [0.70, 0.72, 0.74]})
    ref = mean_ci([0.70, 0.72, 0.74])
    assert h.anchor["ci_low"] == pytest.approx(ref.low) and h.anchor["value"] == pytest.approx(0.72)


def test_a_tie_with_one_side_and_no_decision_on_another_is_inconclusive():
    rng = np.random.default_rng(2)
    a = 0.80 + rng.normal(0, 0.002, 8)
    h = _h(physics=a, ml=a + rng.normal(0, 0.002, 8), hybrid=a - 0.03 + rng.normal(0, 0.1, 8))
    outcomes = sorted(p.outcome for p in h.pairs.values())
    assert outcomes == ["inconclusive", "tie"]
    assert h.verdict == "inconclusive" and "neither CI-separated nor equivalent" in h.detail


def test_log_scale_verdicts_speak_of_ratios_and_fractions():
    rk4 = np.array([3.0e5, 3.1e5, 2.9e5, 3.05e5])
    win = _h(key="speed", physics=rk4, ml=rk4 * 10, scale="log", margin=0.1)
    assert "ML is best; its ratio to physics has a 95% CI that excludes 1" in win.detail
    tie = _h(key="speed", physics=rk4, ml=rk4 * np.array([1.01, 0.99, 1.0, 1.005]),
             scale="log", margin=0.1)
    assert tie.verdict == "tie" and "within ±0.1 (fraction)" in tie.detail
    lin = _h(physics=PHYS, ml=ML)
    assert "its difference to ML has a 95% CI that excludes 0" in lin.detail


def test_format_number_edges():
    f = results.format_number
    assert [f(9999.4), f(10000.0), f(-25000.0), f(999_940_000.0), f(1e9)] == [
        "9999", "10,000", "-25,000", "999,900,000", "1e+09"]
    assert [f(True), f(float("inf")), f(np.int64(12345)), f([1, 2])] == [
        "True", "inf", "12,340", "[1, 2]"]


def test_count_noun_writes_the_plural_unless_one():
    from physml.results import count_noun

    assert [count_noun(n, "thread") for n in (1, 2, 0, 1.0, 2.5)] == \
        ["1 thread", "2 threads", "0 threads", "1 thread", "2.5 threads"]
    assert count_noun(np.int64(12000), "step call") == "12,000 step calls"


def _other_report(tmp_path, monkeypatch, figures, status="ok", fresh=True):
    """A report of notebook cnc/04 in a reports folder of this render (PHYSML_REPORTS_DIR)."""
    from physml import paths, scoreboard

    monkeypatch.setenv(results.REPORTS_ENV_VAR, str(tmp_path))
    nb = paths.notebooks_dir() / "cnc/04_encoder_decoder.ipynb"
    inputs = scoreboard.inputs_fingerprint(nb, {})
    if not fresh:
        inputs = {**inputs, "library": "0" * 16}
    path = tmp_path / "cnc" / "04_encoder_decoder.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"status": status, "params": {}, "inputs": inputs,
                                "figures": {k: {"value": v} for k, v in figures.items()}}))
    return path


def test_fold_figures_reads_the_same_folds_of_a_current_report(tmp_path, monkeypatch):
    _other_report(tmp_path, monkeypatch, {"acc.seed0_b": 0.2, "acc.seed0_a": 0.1, "x": 1.0})
    assert results.report_file("cnc/04_encoder_decoder").parent == tmp_path / "cnc"
    assert results.fold_figures("cnc/04_encoder_decoder", "acc", ["seed0_a", "seed0_b"]) == \
        {"seed0_a": 0.1, "seed0_b": 0.2}
    with pytest.raises(LookupError, match="other folds"):
        results.fold_figures("cnc/04_encoder_decoder", "acc", ["seed0_a", "seed0_c"])


@pytest.mark.parametrize("status, fresh, match", [("failed", True, "status 'failed'"),
                                                   ("ok", False, "stale .*library changed")])
def test_fold_figures_refuses_a_failed_or_stale_report(tmp_path, monkeypatch, status, fresh,
                                                       match):
    _other_report(tmp_path, monkeypatch, {"acc.seed0_a": 0.1}, status=status, fresh=fresh)
    with pytest.raises(LookupError, match=match):
        results.fold_figures("cnc/04_encoder_decoder", "acc", ["seed0_a"])


def test_fold_figures_says_when_there_is_no_report(tmp_path, monkeypatch):
    monkeypatch.setenv(results.REPORTS_ENV_VAR, str(tmp_path))
    with pytest.raises(LookupError, match="no report of cnc/04_encoder_decoder .*render it"):
        results.fold_figures("cnc/04_encoder_decoder", "acc", ["seed0_a"])
