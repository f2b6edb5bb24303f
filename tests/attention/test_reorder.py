"""Equivariance check on real samples: every bias is equivariant when reordered with the tokens;
the un-reordered (released) bias is not, unless it is constant."""

import numpy as np
import pytest
import torch

from physml.attention import bias as B
from physml.attention import dataset as D
from physml.attention import reorder
from physml.attention.terrain import TerrainSpec


def test_equivariance_errors_on_wind_scan_permutations():
    spec = D.DataSpec(terrain=TerrainSpec(n_cells=32, margin_cells=6), n_terrains=3,
                      samples_per_terrain=2)
    data = D.make_dataset(np.random.default_rng(5), spec)
    eq = reorder.equivariance_errors(data, list(B.VARIANTS), seed=0, n_samples=3).set_index(
        "variant")
    assert (eq["aligned_max_abs_error"] < 1e-10).all()
    assert eq.loc["none", "unpermuted_max_abs_error"] < 1e-10  # a zero bias cannot misalign
    for v in ("alibi2d", "relpos", "barrier", "barrier_wind"):
        assert eq.loc[v, "unpermuted_max_abs_error"] > 1e-3, v
    assert eq.loc["misaligned", "as_used_max_abs_error"] > 1e-3
    # the released bias is too small for its misalignment to matter much
    assert eq.loc["elev_released_fixed", "unpermuted_max_abs_error"] < 0.05
    # only the zero bias is constant over token pairs: misalignment cannot matter there alone
    assert eq["bias_changed"].to_dict() == {v: v != "none" for v in B.VARIANTS}
    # the error "as used": the misaligned model keeps its bias unpermuted, every other permutes
    assert eq.loc["misaligned", "as_used_max_abs_error"] == eq.loc[
        "misaligned", "unpermuted_max_abs_error"]
    assert eq.loc["barrier", "as_used_max_abs_error"] == eq.loc[
        "barrier", "aligned_max_abs_error"]


@pytest.mark.parametrize("base", ["advection", "persistence"])
def test_misalignment_damage_scores_one_model_in_both_token_orders(tmp_path, monkeypatch, base):
    """Training is replaced by a spy (a fixed seeded move of the weights), so the aligned score
    can be recomputed here from a freshly built model on the config's base forecast."""
    from physml.attention import ablation as A
    from physml.attention import model as M

    spec = D.DataSpec(terrain=TerrainSpec(n_cells=32, margin_cells=6), n_terrains=8,
                      samples_per_terrain=3)
    cfg = A.AblationConfig(variants=("none", "barrier_wind"), seeds=(0, 1), data=spec, epochs=1,
                           splits=("terrain",), base=base)
    calls = []

    def train(model):  # "training": a seeded move away from the start (whose output head is 0)
        gen = torch.Generator().manual_seed(7)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=gen))

    def spy_fit(model, tr, va, base_name, config, out_dir, bases):
        calls.append((base_name, out_dir, bases))
        train(model)
        return {}

    monkeypatch.setattr(M, "fit", spy_fit)
    dmg = reorder.misalignment_damage(cfg, tmp_path)
    assert dmg[["seed", "model"]].values.tolist() == [
        [0, "aligned"], [0, "misaligned"], [1, "aligned"], [1, "misaligned"]]
    for seed, (base_name, out_dir, bases) in zip(cfg.seeds, calls, strict=True):
        data = D.make_dataset(np.random.default_rng([seed, 2024]), spec)
        want_base = D.advection_only(data) if base == "advection" else data.q0
        tr, va, te = A.make_split(cfg, data, "terrain", seed)
        assert base_name == base and out_dir == tmp_path / f"seed{seed}"
        np.testing.assert_array_equal(bases[0], want_base[tr])
        np.testing.assert_array_equal(bases[1], want_base[va])
        train_t = np.unique(data.terrain_id[tr])
        good = M.build("barrier_wind", data, train_t, seed, cfg.model,
                       M.terrain_tokens(data.terrain_m, spec.patch, train_t))
        train(good)
        test = data.subset(te)
        want = D.mse_per_sample(M.predict(good, test, want_base[te]), test).mean()
        got = dmg.set_index(["seed", "model"]).loc[(seed, "aligned"), "mse"]
        assert got == pytest.approx(want, rel=1e-6)
        # the same weights with the bias left in the original token order score differently
        assert dmg.set_index(["seed", "model"]).loc[(seed, "misaligned"), "mse"] != (
            pytest.approx(got, rel=1e-6))
