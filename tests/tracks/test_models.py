"""Surrogate architectures: shapes, the straight-line residual, RK weights, ONNX export."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from physml.tracks import models


def _norm(residual=True, seed=0):
    rng = np.random.default_rng(seed)
    ini = np.c_[rng.normal(0, 30, (200, 2)), rng.uniform(-0.3, 0.3, (200, 2)),
                rng.uniform(-1, 1, 200)]
    dz = rng.uniform(500, 12000, 200)
    fin = ini + rng.normal(0, 1, (200, 5))
    return models.Normalization.fit(ini, dz, fin, residual), ini, dz


@pytest.mark.parametrize("arch", models.ARCHITECTURES)
@pytest.mark.parametrize("size", ["tiny", "medium"])
def test_every_model_maps_n_by_6_to_n_by_4(arch, size):
    norm, ini, dz = _norm()
    m = models.build(arch, size, norm)
    u = torch.tensor(np.c_[ini, dz], dtype=torch.float32)
    assert m.predict(u).shape == (200, 4)


@pytest.mark.parametrize("arch", models.ARCHITECTURES)
def test_residual_model_with_zero_output_is_the_straight_line(arch):
    norm, ini, dz = _norm()
    m = models.build(arch, "tiny", norm)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.Linear):
                mod.weight.zero_()
                mod.bias.zero_()
    u = torch.tensor(np.c_[ini, dz], dtype=torch.float64)
    m = m.double()
    np.testing.assert_allclose(m.predict(u).detach().numpy(), models.straight(ini, dz),
                               rtol=1e-6, atol=1e-9)  # RK weights are float32 [1,2,2,1]/6


def test_rk_pinn_weights_start_at_rk4_values():
    norm, _, _ = _norm()
    m = models.build("rk_pinn", "small", norm)
    np.testing.assert_allclose(m.weights.detach().numpy(), np.array([1, 2, 2, 1]) / 6, rtol=1e-6)


def test_normalization_round_trips_through_json(tmp_path):
    norm, _, _ = _norm(residual=False)
    norm.save(tmp_path / "normalization.json")
    assert models.Normalization.load(tmp_path / "normalization.json") == norm


@pytest.mark.parametrize("arch", models.ARCHITECTURES)
def test_onnx_export_matches_torch_in_onnxruntime(arch, tmp_path):
    norm, ini, dz = _norm()
    m = models.build(arch, "tiny", norm)
    path = models.export_onnx(m, tmp_path / "m.onnx")
    u = np.c_[ini, dz].astype(np.float32)
    got = ort.InferenceSession(str(path)).run(None, {"u": u})[0]
    want = m.predict(torch.tensor(u)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


def test_unknown_arch_or_size_raises():
    norm, _, _ = _norm()
    with pytest.raises(ValueError, match="arch"):
        models.build("transformer", "tiny", norm)
    with pytest.raises(ValueError, match="size"):
        models.build("mlp", "huge", norm)
