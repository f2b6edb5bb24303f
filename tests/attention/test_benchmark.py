"""attention.benchmark's timed calls do the work they are named for: the simulator call
reproduces the data set's own targets, the model call runs the named base forecast through
the model, and the barrier call gives each terrain's path-barrier matrix."""

import numpy as np
import pytest
import torch

from physml.attention import benchmark
from physml.attention import bias as B
from physml.attention import dataset as D
from physml.attention import model as M


@pytest.fixture
def data(small_data):
    return small_data


def test_simulator_call_reproduces_the_targets_it_stands_for(data):
    out = benchmark.simulator_fn(data)()
    assert out.shape == data.q1.shape
    np.testing.assert_allclose(out, data.q1, rtol=0, atol=1e-6)
    assert np.abs(data.q1 - data.q0).max() > 1e-2  # the horizon moves the tracer


def test_model_call_runs_the_named_base_forecast_in_eval_mode(data):
    net = M.build("barrier", data, np.arange(4), 0)
    with torch.no_grad():
        torch.nn.init.normal_(net.head.weight, std=0.1)
    net.train()
    _, q0, _, tid, wind = M.tensors(data, "persistence")
    for base, b in (("persistence", data.q0), ("advection", D.advection_only(data))):
        got = benchmark.forward_fn(net, data, base)()
        assert not net.training
        with torch.no_grad():
            want = net(torch.as_tensor(b), q0, tid, wind)
        torch.testing.assert_close(got, want)
    adv = benchmark.forward_fn(net, data, "advection")()
    per = benchmark.forward_fn(net, data, "persistence")()
    assert float((adv - per).abs().max()) > 1e-2


def test_barrier_call_gives_each_terrain_its_path_barriers(data):
    got = benchmark.barrier_fn(data.terrain_m, 8)()
    tok = M.terrain_tokens(data.terrain_m, 8, np.arange(4))
    assert got.shape == (4, 16, 16)
    np.testing.assert_allclose(got, tok.barrier_m, rtol=1e-6)
    centres = B.token_centres(32, 8)
    np.testing.assert_allclose(got[2], B.path_barrier(data.terrain_m[2], centres))
    assert got.max() > 0
