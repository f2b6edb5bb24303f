"""physml.parallel: serial and Dask LocalCluster give the same results."""

import math

import pytest

from physml.parallel import as_completed_tasks, map_tasks


def test_serial_map_keeps_order():
    assert map_tasks(math.factorial, [3, 1, 4]) == [6, 1, 24]
    assert list(as_completed_tasks(math.factorial, [3, 1])) == [6, 1]


@pytest.mark.slow
def test_local_cluster_matches_serial():
    items = list(range(8))
    assert map_tasks(math.factorial, items, workers=2) == [math.factorial(i) for i in items]
    assert sorted(as_completed_tasks(math.factorial, items, workers=2)) == sorted(
        math.factorial(i) for i in items)


def test_workers_and_scheduler_are_exclusive():
    with pytest.raises(ValueError, match="not both"):
        map_tasks(math.factorial, [1], workers=2, scheduler="tcp://127.0.0.1:1")
