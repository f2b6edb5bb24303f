"""Physics losses and training: PINN residual on exact and perturbed solutions, NaN stop."""

import numpy as np
import pytest
import torch

from physml.tracks import data as D
from physml.tracks import models, training
from physml.tracks.field import GaussianField
from physml.tracks.propagate import propagate, rhs
from physml.train import NonFiniteLossError


class _TrajectoryPINN(torch.nn.Module):
    """Stands in for a PINN: state_at(u, zeta) is a cubic-Hermite interpolation of a dense RK4
    solution (nodes every ``h`` mm), optionally plus a smooth perturbation of x."""

    def __init__(self, s0, dz, field, h=10.0, perturb_mm=0.0):
        super().__init__()
        z = np.arange(0.0, dz + h / 2, h)
        traj = [s0]
        for a, b in zip(z[:-1], z[1:], strict=True):
            traj.append(propagate(traj[-1], a, b, field, step_mm=h))
        y = np.stack(traj)  # (nodes, n, 5)
        f = np.stack([rhs(zz, yy, field) for zz, yy in zip(z, y, strict=True)])
        self.z, self.h, self.dz = z, h, dz
        self.y = torch.tensor(y[:, :, :4])
        self.f = torch.tensor(f[:, :, :4])
        self.perturb = perturb_mm
        self.out_std = torch.ones(4, dtype=torch.float64)

    def scale(self, u):
        return torch.ones(u.shape[0], 4, dtype=torch.float64)

    def state_at(self, u, zeta):
        zz = zeta * self.dz
        k = torch.clamp(torch.floor(zz.detach() / self.h), 0, len(self.z) - 2).long()
        t = (zz - k * self.h) / self.h
        n = torch.arange(u.shape[0])
        y0, y1 = self.y[k, n], self.y[k + 1, n]
        f0, f1 = self.f[k, n] * self.h, self.f[k + 1, n] * self.h
        t = t[:, None]
        h00, h10 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t
        h01, h11 = -2 * t**3 + 3 * t**2, t**3 - t**2
        s = h00 * y0 + h10 * f0 + h01 * y1 + h11 * f1
        bump = torch.zeros_like(s)
        bump[:, 0] = self.perturb * torch.sin(torch.pi * zeta)
        return s + bump


def _exact_setup(perturb):
    g = GaussianField()
    rng = np.random.default_rng(0)
    s0, _ = D.sample_initial_states(6, rng, D.DatasetSpec(p_range_gev=(3.0, 50.0)))
    dz = 8000.0
    model = _TrajectoryPINN(s0, dz, g, perturb_mm=perturb)
    u = torch.tensor(np.c_[s0, np.full(6, dz)])
    zeta = torch.tensor(rng.uniform(0.01, 0.99, 6))
    return training.pinn_residual(model, u, zeta, g).detach().numpy()


def test_pinn_residual_vanishes_on_the_exact_solution_and_not_on_a_perturbed_one():
    exact = np.abs(_exact_setup(0.0)).max()
    perturbed = np.abs(_exact_setup(1.0)).max()  # 1 mm sin(pi zeta) bump in x
    assert exact < 1e-3  # mm per unit zeta (Hermite interpolation error)
    assert perturbed > 1.0  # ~ pi mm
    assert perturbed > 1e3 * exact


def _tiny_data(n, seed, nan_row=None):
    rng = np.random.default_rng(seed)
    s, dz = D.sample_initial_states(n, rng, D.DatasetSpec(p_range_gev=(5.0, 100.0)))
    fin = propagate(s, 0.0, 4000.0, GaussianField())
    d = {"initial": s, "dz": np.full(n, 4000.0), "final": fin}
    if nan_row is not None:
        d["final"][nan_row, 0] = np.nan
    return d


def test_a_nan_in_training_stops_with_the_epoch_named(tmp_path):
    tr = _tiny_data(64, 1)
    tr_nan = {k: np.concatenate([v, _tiny_data(8, 2, nan_row=3)[k]]) for k, v in tr.items()}
    cfg = training.RunConfig(arch="pinn", epochs=3, batch_size=1000, n_colloc=8)
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, batch 0: loss term '\w+' is nan"):
        training.run(cfg, tr_nan, tr, tr, GaussianField(), "nan-test", root=tmp_path, export=False)


def test_runs_are_cached_by_configuration(tmp_path):
    tr, va = _tiny_data(200, 3), _tiny_data(50, 4)
    cfg = training.RunConfig(arch="mlp", epochs=2, batch_size=64)
    a = training.run(cfg, tr, va, va, GaussianField(), "k", root=tmp_path, export=False)
    b = training.run(cfg, tr, va, va, GaussianField(), "k", root=tmp_path, export=False)
    assert a == b and (tmp_path / f"{cfg.name}-{cfg.key('k')}" / "history.json").is_file()
    model = training.load_model(a["run_dir"])
    u, _ = training.to_inputs(va)
    pred = training.predict(model, u)
    assert training.metrics(pred, va["final"][:, :4])["pos_mean_mm"] == pytest.approx(
        a["pos_mean_mm"], rel=1e-5)


def test_rk_stage_residuals_are_small_for_a_straight_track_in_zero_field():
    from physml.tracks.field import UniformField

    rng = np.random.default_rng(5)
    s, dz = D.sample_initial_states(50, rng, D.DatasetSpec())
    norm = models.Normalization.fit(s, dz, s, prior="straight")
    m = models.build("rk_pinn", "tiny", norm).double()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.Linear):
                mod.weight.zero_()
                mod.bias.zero_()
    u = torch.tensor(np.c_[s, dz])
    _, res = training.rk_stage_residuals(m, u, UniformField((0.0, 0.0, 0.0)))
    assert max(float(r.detach().abs().max()) for r in res) < 1e-9  # straight: field-free ODE
    _, res_b = training.rk_stage_residuals(m, u, UniformField((0.0, 1.0, 0.0)))
    assert max(float(r.detach().abs().max()) for r in res_b) > 1e-3  # but not the ODE in 1 T
