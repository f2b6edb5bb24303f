"""physml.timing: repeats, interleaved anchor ratios and thread limits."""

import numpy as np
import pytest

from physml import stats, timing


def test_measure_counts_repeats_and_items():
    calls = []
    t = timing.measure(lambda: calls.append(1), items=10, repeats=4, warmup=2)
    assert len(calls) == 6 and t.seconds.shape == (4,)
    assert t.rates == pytest.approx(10 / t.seconds)
    assert t.min_s <= t.median_s


def test_against_anchor_measures_a_known_speed_ratio(monkeypatch):
    # a scripted clock (no sleeping: wall time on a loaded machine is noise): each anchor call
    # takes 8 ms for 1 item, each of ours 4 ms for 2 items -> ours is 4x faster per item
    clock = {"t": 0.0}
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock["t"])

    def advance(dt):
        return lambda: clock.__setitem__("t", clock["t"] + dt)

    jitter = iter([0.0, 1e-4, -1e-4, 2e-4, 0.0, -2e-4, 1e-4] * 4)
    ours = lambda: advance(0.004 + next(jitter))()  # noqa: E731
    slow = lambda: advance(0.008)()  # noqa: E731
    r = timing.against_anchor(ours, slow, items=2, anchor_items=1, repeats=5, warmup=0)
    assert 3.6 < r.speedup.diff.mean < 4.4
    assert r.speedup.verdict == "greater"
    assert r.anchor.items == 1 and r.ours.items == 2
    assert r.anchor.seconds == pytest.approx([0.008] * 5)


def test_against_anchor_compares_seconds_per_item_when_the_anchor_runs_several(monkeypatch):
    # anchor: 8 ms for 4 items (2 ms each); ours: 1 ms for 1 item -> ours is 2x faster per item
    clock = {"t": 0.0}
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock["t"])
    step = {"anchor": 0.008, "ours": 0.001}

    def call(name):
        return lambda: clock.__setitem__("t", clock["t"] + step[name])

    r = timing.against_anchor(call("ours"), call("anchor"), items=1, anchor_items=4,
                              repeats=3, warmup=0)
    assert r.speedup.diff.mean == pytest.approx(2.0)


def test_interleaving_pairs_each_repeat():
    order = []
    timing.against_anchor(lambda: order.append("o"), lambda: order.append("a"), items=1,
                          repeats=3, warmup=1)
    assert order == ["a", "o"] * 4


def test_interleaved_calls_round_robin_and_times_each_call(monkeypatch):
    clock = {"t": 0.0}
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock["t"])
    order = []

    def fn(name, dt):
        def call():
            order.append(name)
            clock["t"] += dt
        return call

    t = timing.interleaved({"a": fn("a", 0.002), "b": fn("b", 0.001)}, items=4, repeats=3,
                           warmup=1)
    assert order == ["a", "b"] * 4  # one warm-up round, then three timed rounds
    assert t["a"].seconds == pytest.approx([0.002] * 3)
    assert t["b"].best_per_second == pytest.approx(4000.0)
    with pytest.raises(ValueError, match="no functions"):
        timing.interleaved({}, items=1)
    per = timing.interleaved({"a": fn("a", 0.002), "b": fn("b", 0.001)},
                             items={"a": 4, "b": 1}, repeats=2, warmup=0)
    assert per["a"].best_per_second == pytest.approx(2000.0)
    assert per["b"].best_per_second == pytest.approx(1000.0)
    with pytest.raises(ValueError, match="items for"):
        timing.interleaved({"a": fn("a", 0.002)}, items={"b": 1})


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="repeats"):
        timing.measure(lambda: None, repeats=1)
    with pytest.raises(ValueError, match="n must be >= 1"):
        with timing.threads(0):
            pass
    with pytest.raises(ValueError, match="items"):
        timing.measure(lambda: None, items=0)


def test_threads_limits_and_restores_torch_and_blas():
    import torch
    from threadpoolctl import threadpool_info

    before = torch.get_num_threads()
    with timing.threads(1):
        assert torch.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info())
        np.ones((50, 50)) @ np.ones((50, 50))
    assert torch.get_num_threads() == before


def test_threads_does_not_import_torch_for_code_that_never_uses_it():
    import subprocess
    import sys

    code = ("import sys\nfrom physml import timing\nwith timing.threads(1):\n    pass\n"
            "assert 'torch' not in sys.modules, 'timing.threads imported torch'")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


def _python(code: str, **env: str) -> str:
    import os
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    out = subprocess.run([sys.executable, "-W", "always", "-c", code], env={**base, **env},
                         capture_output=True, text=True, timeout=120, check=True)
    return out.stdout + out.stderr


SPIN_CHECK = ("import os{first}; from physml import timing; import physml; "
              "print(os.environ['OPENBLAS_THREAD_TIMEOUT'], physml.BLAS_TIMEOUT_IN_EFFECT); "
              "timing.interleaved({{'a': lambda: None}}, items=1, repeats=2)")


def test_physml_stops_openblas_spinning_unless_numpy_loaded_it_first():
    first = _python(SPIN_CHECK.format(first=", physml"))
    assert first.startswith("4 True") and "RuntimeWarning" not in first
    late = _python(SPIN_CHECK.format(first=", numpy"))
    assert late.startswith("4 False")
    assert "RuntimeWarning" in late and "import physml first" in late
    # set before Python started: kept, and in effect whatever was imported first
    preset = _python(SPIN_CHECK.format(first=", numpy"), OPENBLAS_THREAD_TIMEOUT="6")
    assert preset.startswith("6 True") and "RuntimeWarning" not in preset


def test_the_spinning_warning_points_at_the_caller_however_it_is_reached(monkeypatch):
    import physml

    monkeypatch.setattr(physml, "BLAS_TIMEOUT_IN_EFFECT", False)
    calls = {"direct": lambda: timing.interleaved({"a": lambda: None}, items=1, repeats=2),
             "anchor": lambda: timing.against_anchor(lambda: None, lambda: None, items=1,
                                                     repeats=2)}
    for how, call in calls.items():
        with pytest.warns(RuntimeWarning, match="import physml first") as caught:
            call()
        assert [w.filename for w in caught] == [__file__], how


def test_the_rate_interval_is_a_t_interval_over_repeats_never_below_zero():
    steady = timing.Timing(np.array([0.5, 0.4, 0.5]), items=100)  # 200, 250, 200 items/s
    ci = steady.per_second
    ref = stats.mean_ci([200.0, 250.0, 200.0])
    assert (ci.mean, ci.low, ci.high, ci.n) == (pytest.approx(650 / 3), ref.low, ref.high, 3)
    scattered = timing.Timing(np.array([1.0, 0.1]), items=100)  # 100 and 1000 items/s
    assert stats.mean_ci([100.0, 1000.0]).low < 0  # two far-apart repeats: t = 12.7
    ci = scattered.per_second
    assert ci.low == 0.0 and ci.mean == pytest.approx(550.0)
    assert scattered.as_dict()["per_second_ci_low"] == 0.0
