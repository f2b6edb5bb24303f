"""physml.parallel: serial and Dask LocalCluster give the same results."""

import math

import pytest

from physml.parallel import as_completed_tasks, map_tasks, start_client


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


def _scaled(shared, item):
    return shared["k"] * item


def test_shared_object_reaches_every_task_serially():
    assert map_tasks(_scaled, [1, 2, 3], shared={"k": 10}) == [10, 20, 30]
    assert list(as_completed_tasks(_scaled, [2], shared={"k": 3})) == [6]


def test_client_and_workers_are_exclusive():
    with pytest.raises(ValueError, match="not both"):
        map_tasks(math.factorial, [1], workers=2, client=object())


def test_start_client_without_workers_is_serial():
    assert start_client(None) is None and start_client(0, "") is None


@pytest.mark.slow
def test_client_kept_across_calls_with_shared_object():
    client = start_client(2)
    try:
        assert map_tasks(_scaled, range(6), client=client, shared={"k": 7}) == [
            7 * i for i in range(6)]
        assert map_tasks(math.factorial, [4, 5], client=client) == [24, 120]
        assert sorted(as_completed_tasks(_scaled, [1, 2], client=client, shared={"k": 2})) \
            == [2, 4]
        assert client.status == "running"  # map_tasks leaves a given client open
    finally:
        client.close()


def _malloc_trim_threshold(_):
    import os

    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


@pytest.mark.slow
def test_workers_keep_glibc_adaptive_mmap_threshold():
    # Dask's default 64 KiB trim threshold made torch training on a worker slower than serial
    assert map_tasks(_malloc_trim_threshold, [0], workers=1) == [None]
    client = start_client(1)
    try:
        assert map_tasks(_malloc_trim_threshold, [0], client=client) == [None]
    finally:
        client.close()


@pytest.mark.slow
def test_a_second_cluster_on_the_machine_puts_no_port_warning_in_the_report():
    import socket
    import warnings

    busy = socket.socket()  # Dask's default HTTP port taken, as by another render's cluster
    try:
        busy.bind(("127.0.0.1", 8787))
        busy.listen()
    except OSError:
        pass  # already taken by something else: the same situation
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            client = start_client(1)
            try:
                assert map_tasks(math.factorial, [3], client=client) == [6]
            finally:
                client.close()
            assert map_tasks(math.factorial, [4], workers=1) == [24]
        assert not [w for w in caught if "8787" in str(w.message)], [str(w.message) for w in caught]
    finally:
        busy.close()
