"""physml.results.record: JSON conversion and the results file written under render."""

import json

import numpy as np
import pytest

from physml import results
from physml.stats import mean_ci


def test_record_writes_the_results_file_named_by_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    monkeypatch.setenv(results.ENV_VAR, str(path))
    results.record("a", np.float64(1.5), unit="mm", note="n")
    results.record("b", {"x": np.arange(3), "ci": mean_ci([1.0, 2.0, 3.0])})
    data = json.loads(path.read_text())["figures"]
    assert data["a"] == {"value": 1.5, "unit": "mm", "note": "n"}
    assert data["b"]["value"]["x"] == [0, 1, 2]
    assert data["b"]["value"]["ci"]["mean"] == 2.0
    assert not list(tmp_path.glob("*.tmp"))


def test_record_without_render_keeps_values_in_memory(monkeypatch):
    monkeypatch.delenv(results.ENV_VAR, raising=False)
    assert results.record("interactive_value", 3) == 3
    assert results.recorded()["interactive_value"]["value"] == 3


def test_non_finite_values_are_kept_visible_and_objects_rejected(monkeypatch):
    monkeypatch.delenv(results.ENV_VAR, raising=False)
    results.record("nan_value", float("nan"))
    assert results.recorded()["nan_value"]["value"] == "nan"
    with pytest.raises(TypeError, match=r"bad\['k'\]: object"):
        results.record("bad", {"k": object()})
    with pytest.raises(ValueError, match="non-empty"):
        results.record("", 1)
