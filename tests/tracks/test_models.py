"""Surrogate architectures: shapes, priors (straight line, single kick), the built-in initial
condition, the RK-PINN endpoint rule, ONNX export."""

import math

import numpy as np
import onnxruntime as ort
import pytest
import torch
from scipy.integrate import quad

from onnx_export_check import export_silently
from physml.tracks import models, priors
from physml.tracks.field import GaussianField
from physml.tracks.propagate import propagate

PRIOR_CASES = [("straight", False), ("kick", False), ("kick", True)]


def _norm(prior="straight", qop_scale=False, seed=0):
    rng = np.random.default_rng(seed)
    ini = np.c_[rng.normal(0, 30, (200, 2)), rng.uniform(-0.3, 0.3, (200, 2)),
                rng.choice([-1, 1], 200) * rng.uniform(0.01, 1, 200)]
    dz = rng.uniform(500, 12000, 200)
    fin = ini + rng.normal(0, 1, (200, 5))
    table = priors.KickTable.from_field(GaussianField()) if prior == "kick" else None
    return models.Normalization.fit(ini, dz, fin, prior, qop_scale, table), ini, dz, table


def _zero(m):
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.Linear):
                mod.weight.zero_()
                mod.bias.zero_()
    return m


@pytest.mark.parametrize("arch", models.ARCHITECTURES)
@pytest.mark.parametrize("size", ["tiny", "medium"])
def test_every_model_maps_n_by_6_to_n_by_4(arch, size):
    norm, ini, dz, _ = _norm()
    m = models.build(arch, size, norm)
    u = torch.tensor(np.c_[ini, dz], dtype=torch.float32)
    assert m.predict(u).shape == (200, 4)


@pytest.mark.parametrize("arch", models.ARCHITECTURES)
@pytest.mark.parametrize("prior,qop_scale", PRIOR_CASES)
def test_a_model_with_zero_output_is_its_prior(arch, prior, qop_scale):
    norm, ini, dz, table = _norm(prior, qop_scale)
    m = _zero(models.build(arch, "tiny", norm))
    u = torch.tensor(np.c_[ini, dz], dtype=torch.float32)
    want = models.prior_numpy(prior, ini, dz, table)
    np.testing.assert_allclose(m.predict(u).detach().numpy(), want, rtol=1e-5, atol=2e-3)


def test_kick_table_integrals_match_the_closed_form_of_the_gaussian_field():
    g = GaussianField()
    t = priors.KickTable.from_field(g, step_mm=5.0)

    def i0(z):
        s = g.sigma_mm * math.sqrt(2)
        return g.b0_tesla * g.sigma_mm * math.sqrt(math.pi / 2) * (
            math.erf((z - g.z0_mm) / s) - math.erf(-g.z0_mm / s))

    for z in (1234.5, 5007.0, 9000.0, 14000.0):
        a0, a1 = t.at(np.array([z]))
        assert a0[0] == pytest.approx(i0(z), rel=2e-5)  # linear between 5 mm nodes
        assert a1[0] == pytest.approx(quad(i0, 0, z, epsabs=1e-6)[0], rel=2e-5)
    # beyond the table: a field-free drift of the last integrals
    a0, a1 = t.at(np.array([15500.0]))
    b0, b1 = t.at(np.array([t.z_mm[-1]]))
    assert a0[0] == b0[0] and a1[0] == pytest.approx(b1[0] + b0[0] * (15500 - t.z_mm[-1]))


class _UniformBy:
    """By = 0.5 T everywhere: I0 = 0.5 (z - z0), I1 = 0.25 (z - z0)^2, both exact under the
    trapezoid rule (I0 is linear)."""

    def __call__(self, pts):
        b = np.zeros_like(np.asarray(pts, float))
        b[:, 1] = 0.5
        return b


def test_kick_table_spans_its_range_on_whole_steps_from_z0():
    t = priors.KickTable.from_field(_UniformBy(), z0_mm=100.0, z_max_mm=1000.0, step_mm=7.0)
    assert len(t.z_mm) == 130 and t.z_mm[0] == 100.0  # ceil(900 / 7) steps, the last past 1000
    assert 1000.0 <= t.z_mm[-1] < 1007.0
    np.testing.assert_allclose(np.diff(t.z_mm), 7.0)
    np.testing.assert_allclose(t.i0, 0.5 * (t.z_mm - 100.0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t.i1, 0.25 * (t.z_mm - 100.0) ** 2, rtol=1e-12, atol=1e-9)
    i0, i1 = t.at(np.array([103.5, 555.0]))  # linear between nodes
    np.testing.assert_allclose(i0, [1.75, 227.5], rtol=1e-12)
    assert i1[0] == pytest.approx(0.5 * 0.25 * 49.0)


@pytest.mark.parametrize("bad", [dict(z0_mm=5.0, z_max_mm=5.0), dict(z0_mm=5.0, z_max_mm=1.0),
                                 dict(step_mm=0.0), dict(step_mm=-5.0)])
def test_kick_table_refuses_an_empty_range_or_a_non_positive_step(bad):
    with pytest.raises(ValueError, match="need z_max_mm > z0_mm and step_mm > 0"):
        priors.KickTable.from_field(_UniformBy(), **bad)


def test_interp_table_is_linear_interpolation_from_its_own_origin():
    values = torch.tensor([0.0, 2.0, -1.0, 4.0], dtype=torch.float64)
    nodes = 250.0 + 10.0 * np.arange(4)
    z = torch.tensor([240.0, 250.0, 253.0, 266.5, 280.0, 300.0], dtype=torch.float64)
    got = priors.interp_table(z, 250.0, 10.0, values, 3).numpy()
    np.testing.assert_allclose(got, np.interp(z.numpy(), nodes, values.numpy()), atol=1e-12)


def test_torch_kick_equals_the_numpy_kick_with_an_offset_origin_and_past_the_table():
    # table from z0 = -200 mm to 6000 mm; tracks end inside it and up to 3 m beyond its end
    # (a field-free drift there)
    g = GaussianField()
    t = priors.KickTable.from_field(g, z0_mm=-200.0, z_max_mm=6000.0, step_mm=5.0)
    rng = np.random.default_rng(4)
    n = 32
    ini = np.c_[rng.uniform(-50, 50, (n, 2)), rng.uniform(-0.2, 0.2, (n, 2)),
                rng.choice([-1.0, 1.0], n) / rng.uniform(2, 50, n)]
    dz = rng.uniform(100.0, 9000.0, n)
    assert (dz > 6200.0).sum() > 5 and (dz < 6200.0).sum() > 5
    want = priors.kick_numpy(ini, dz, t, z0_mm=-200.0)
    u = torch.tensor(np.c_[ini, dz])
    table = (torch.tensor(t.i0), torch.tensor(t.i1))
    got = priors.kick(u, 1.0, table, -200.0, 5.0, float(t.z_mm[-1])).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-9)


def test_kick_prior_error_is_second_order_in_q_over_p():
    """The kick prior is the first-order solution: its error vs RK4 falls ~4x when p doubles
    (a wrong sign or a missing factor would leave a first-order error, falling ~2x)."""
    g = GaussianField()
    t = priors.KickTable.from_field(g)
    errs = []
    for p in (20.0, 40.0, 80.0):
        s = np.array([[10.0, -5.0, 0.1, -0.05, 1 / p], [0.0, 3.0, -0.2, 0.1, -1 / p]])
        exact = propagate(s, 0.0, 8500.0, g, step_mm=50.0)
        kick = priors.kick_numpy(s, np.full(2, 8500.0), t)
        straight = models.straight(s, np.full(2, 8500.0))
        errs.append(np.abs(kick[:, 0] - exact[:, 0]).max())
        assert errs[-1] < 0.05 * np.abs(straight[:, 0] - exact[:, 0]).max()
    ratios = np.array(errs[:-1]) / np.array(errs[1:])
    assert np.all((ratios > 3.0) & (ratios < 5.0)), ratios


@pytest.mark.parametrize("prior", ["straight", "kick"])
def test_pinn_initial_condition_is_built_in(prior):
    norm, ini, dz, _ = _norm(prior, qop_scale=True)
    torch.manual_seed(0)
    m = models.build("pinn", "tiny", norm).double()
    u = torch.tensor(np.c_[ini, dz])
    s0 = m.state_at(u, torch.zeros(len(dz), dtype=torch.float64)).detach().numpy()
    np.testing.assert_allclose(s0, ini[:, :4], atol=1e-9)
    s1 = m.predict(u).detach().numpy()
    assert np.abs(s1 - m.base(u, 1.0).detach().numpy()).max() > 1e-6  # the net does act at 1


def test_rk_pinn_endpoint_from_exact_stages_is_exact():
    g = GaussianField()
    rng = np.random.default_rng(3)
    p = np.exp(rng.uniform(np.log(2), np.log(100), 20))
    s = np.c_[rng.uniform(-50, 50, (20, 2)), rng.uniform(-0.3, 0.3, (20, 2)),
              rng.choice([-1, 1], 20) / p]
    dz = 8500.0
    stages = [torch.tensor(propagate(s, 0.0, z * dz, g, step_mm=25.0)[:, :4])
              for z in models.STAGES]
    u = torch.tensor(np.c_[s, np.full(20, dz)])
    end = models.RKPINN.combine(u, stages).numpy()
    exact = propagate(s, 0.0, dz, g, step_mm=25.0)
    assert np.hypot(*(end[:, :2] - exact[:, :2]).T).max() < 1e-3  # < 1 um


def test_prior_none_is_refused_where_the_initial_condition_is_built_in():
    norm, *_ = _norm("none")
    models.build("mlp", "tiny", norm)
    for arch in ("pinn", "rk_pinn"):
        with pytest.raises(ValueError, match="prior"):
            models.build(arch, "tiny", norm)


def test_normalization_round_trips_through_json(tmp_path):
    for prior, q in PRIOR_CASES + [("none", False)]:
        norm, *_ = _norm(prior, q)
        norm.save(tmp_path / "normalization.json")
        assert models.Normalization.load(tmp_path / "normalization.json") == norm


@pytest.mark.parametrize("arch,prior,qop_scale", [("mlp", "straight", False),
                                                  ("pinn", "kick", True),
                                                  ("rk_pinn", "kick", True),
                                                  ("mlp", "kick", True)])
def test_onnx_export_matches_torch_in_onnxruntime(arch, prior, qop_scale, tmp_path, caplog):
    norm, ini, dz, _ = _norm(prior, qop_scale)
    m = models.build(arch, "tiny", norm)
    path = export_silently(m, tmp_path / "m.onnx", arch == "pinn", caplog)
    u = np.c_[ini, dz].astype(np.float32)
    got = ort.InferenceSession(str(path)).run(None, {"u": u})[0]
    want = m.predict(torch.tensor(u)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


def test_unknown_arch_size_or_prior_raises():
    norm, *_ = _norm()
    with pytest.raises(ValueError, match="arch"):
        models.build("transformer", "tiny", norm)
    with pytest.raises(ValueError, match="size"):
        models.build("mlp", "huge", norm)
    with pytest.raises(ValueError, match="prior"):
        _norm("helix")
