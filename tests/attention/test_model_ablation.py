"""Model and ablation plumbing on a tiny problem: shapes, the zero-initialised head reproduces
its base forecast, splits hold out whole terrains and the Froude range, the shuffled control
looks up another terrain, the misaligned variant is not permutation-consistent, verdicts."""

import numpy as np
import pandas as pd
import pytest
import torch

from physml import plots, stats, timing
from physml.attention import ablation as A
from physml.attention import bias as B
from physml.attention import dataset as D
from physml.attention import model as M
from physml.attention.terrain import TerrainSpec

SPEC = D.DataSpec(terrain=TerrainSpec(n_cells=32, margin_cells=6), n_terrains=8,
                  samples_per_terrain=6)


@pytest.fixture(scope="module")
def data():
    return D.make_dataset(np.random.default_rng(0), SPEC)


def test_dataset_shapes_and_froude(data):
    assert data.q0.shape == data.q1.shape == (48, 32, 32)
    speed = np.hypot(*data.wind_ms.T)
    hmax = data.terrain_m.max(axis=(1, 2))[data.terrain_id]
    np.testing.assert_allclose(data.froude, speed / (0.01 * hmax))
    np.testing.assert_allclose(data.horizon_s * speed, 12.0 * 1000.0)


def test_patch_not_dividing_grid_rejected_by_name():
    with pytest.raises(ValueError, match="patch"):
        D.DataSpec(patch=7)


def test_negative_diffusivity_rejected_by_name():
    with pytest.raises(ValueError, match="diffusivity_m2s"):
        D.DataSpec(diffusivity_m2s=-1.0)


def test_advection_only_on_flat_terrain_is_the_simulator(data):
    flat = D.TransportData(data.q0, data.q1, np.zeros_like(data.terrain_m), data.terrain_id,
                           data.wind_ms, data.horizon_s, data.froude, SPEC)
    from physml.attention import transport as T
    w = T.deflected_wind(flat.terrain_m[flat.terrain_id], flat.wind_ms, 0.01, 1000.0)
    ref = T.simulate(flat.q0, w.astype(np.float32), flat.horizon_s, 1000.0, 20.0, "open")
    np.testing.assert_allclose(D.advection_only(flat), ref, atol=1e-6)


@pytest.mark.parametrize("variant", B.VARIANTS)
def test_untrained_model_is_its_base(data, variant):
    tok = M.terrain_tokens(data.terrain_m, 8, np.arange(6))
    m = M.build(variant, data, np.arange(6), seed=0, tokens=tok)
    base = D.advection_only(data)
    np.testing.assert_allclose(M.predict(m, data, base), base, atol=1e-6)
    assert 5_000 < M.n_parameters(m) < 100_000


def test_shuffled_control_uses_another_terrain(data):
    m = M.build("barrier_shuffled", data, np.arange(6), seed=3)
    tid = torch.arange(8)
    used = m.bias_terrain[tid]
    assert torch.all(used != tid)
    bar = m.bias_inputs(tid, torch.ones(8, 2)).barrier_m
    own = torch.as_tensor(M.terrain_tokens(data.terrain_m, 8, np.arange(6)).barrier_m,
                          dtype=torch.float32)
    assert all(not torch.allclose(bar[k], own[k]) for k in range(8))


def test_wind_scan_orders_agree(data):
    c = B.token_coords(32, 8)
    w = np.random.default_rng(1).normal(size=(20, 2))
    np.testing.assert_array_equal(
        M.wind_scan_order_torch(torch.as_tensor(c), torch.as_tensor(w)).numpy(),
        B.wind_scan_order(c, w))


def test_misaligned_differs_from_aligned_with_the_same_weights(data):
    tok = M.terrain_tokens(data.terrain_m, 8, np.arange(6))
    a = M.build("barrier_wind", data, np.arange(6), 0, tokens=tok)
    b = M.build("misaligned", data, np.arange(6), 0, tokens=tok)
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        for m in (a, b):
            torch.nn.init.normal_(m.head.weight, std=0.1)
            m.head.weight.copy_(a.head.weight)
    base, q0, _, tid, wind = M.tensors(data, "persistence")
    with torch.no_grad():
        ya, yb = a(base, q0, tid, wind), b(base, q0, tid, wind)
    assert float((ya - yb).abs().max()) > 1e-4


def test_splits_hold_out_terrains_and_froude_range(data):
    cfg = A.AblationConfig(variants=("none",), seeds=(0, 1), data=SPEC,
                           froude_holdout=(0.5, 2.0))
    tr, va, te = A.make_split(cfg, data, "froude", seed=0)
    assert not set(data.terrain_id[tr]) & set(data.terrain_id[te])
    assert not set(data.terrain_id[va]) & set(data.terrain_id[te] )
    fr_tr, fr_te = data.froude[tr], data.froude[te]
    assert np.all((fr_te >= 0.5) & (fr_te < 2.0))
    assert not np.any((fr_tr >= 0.5) & (fr_tr < 2.0))


def test_ablation_runs_and_tables(tmp_path):
    cfg = A.AblationConfig(variants=("none", "barrier_wind"), seeds=(0, 1), data=SPEC,
                           epochs=1, splits=("terrain",), base="advection")
    assert A.pure_ml_name(cfg) == A.PURE_ML
    assert A.pure_ml_name(A.AblationConfig(variants=("none",), seeds=(0, 1))) == "none"
    frame = A.run(cfg, tmp_path)
    models = {"none", "barrier_wind", "persistence", "advection", A.PURE_ML}
    assert set(frame["model"]) == models
    t = A.gain_table(frame, "terrain", A.ALL_BINS, min_gain=0.1, tie_margin=0.05)
    assert set(t["model"]) == models
    shown = plots.comparison_table(t, ci=A.TABLE_CI, fmt=A.TABLE_FORMATS).data  # as in the report
    assert {"test_mse [95% CI]", "rel_gain [95% CI]"} <= set(shown.columns)
    assert not set(shown.columns) & {c for pair in A.TABLE_CI.values() for c in pair}
    # a gain that rounds to zero reads +0.0%, never -0.0%
    tiny = pd.DataFrame({"rel_gain": [-1e-5], "gain_low": [-2e-5], "gain_high": [1e-5]})
    tiny = plots.comparison_table(tiny, ci={"rel_gain": A.TABLE_CI["rel_gain"]},
                                  fmt=A.TABLE_FORMATS)
    assert tiny.data.iloc[0, 0] == "+0.0% [+0.0%,\u00a0+0.0%]"
    # the persistence baseline is the data's own q(t): its MSE is computed independently here
    assert set(frame["froude_bin"]) >= {A.ALL_BINS, "Fr<1", "Fr>=1"}
    assert (tmp_path / "seed0" / "terrain" / "none" / "history.json").exists()
    # the trained bias strength is recorded where the variant has one, and only there
    assert frame.loc[frame["model"] == "barrier_wind", "alpha"].notna().all()
    assert frame.loc[frame["model"] != "barrier_wind", "alpha"].isna().all()
    why = A.why_no_gain(frame, "terrain", A.ALL_BINS, "barrier_wind", ml=A.PURE_ML)
    assert why["alpha_initial"] == 2.0 and why["alpha_trained"].n == 2
    w = A._wide(frame, "terrain", A.ALL_BINS)
    expect = np.exp(np.mean(np.log(w[A.PURE_ML].to_numpy() / w["advection"].to_numpy())))
    assert why["ml_over_advection"].mean == pytest.approx(expect)


def test_learned_alpha_starts_at_the_released_value_and_follows_training():
    assert np.isnan(B.AttentionBias("none", 2, 4).learned_alpha())
    b = B.AttentionBias("barrier", 2, 4)
    assert b.learned_alpha() == pytest.approx(B.RELEASED_ALPHA)
    with torch.no_grad():
        b.alpha.copy_(torch.tensor([1.0, 4.0]))
    assert b.learned_alpha() == pytest.approx(2.5)


def test_verdicts_on_constructed_cases():
    ref = np.array([1.0, 1.1, 0.9, 1.05, 0.95])
    assert A.verdict(ref * 0.7, ref, 0.1, 0.05)[0] == "gain"
    assert A.verdict(ref * 0.95, ref, 0.1, 0.05)[0] == "smaller gain"
    assert A.verdict(ref * 1.3, ref, 0.1, 0.05)[0] == "worse"
    same = ref * np.array([1.001, 0.999, 1.0, 1.002, 0.998])
    assert A.verdict(same, ref, 0.1, 0.05)[0] == "no effect"
    noisy = ref * np.array([0.6, 1.5, 0.8, 1.3, 1.0])
    assert A.verdict(noisy, ref, 0.1, 0.05)[0] == "inconclusive"


def test_mse_intervals_never_go_below_zero():
    import pandas as pd

    # two seeds, one tiny and one large MSE: the unbounded t-interval dips below zero
    frame = pd.DataFrame({"seed": [0, 0, 1, 1], "split": "terrain", "froude_bin": A.ALL_BINS,
                          "model": ["advection", "none"] * 2, "mse": [1e-6, 0.2, 4e-3, 0.3]})
    assert stats.mean_ci([1e-6, 4e-3]).low < 0
    cis = A.mse_cis(frame, "terrain", A.ALL_BINS)
    assert cis["advection"].low == 0.0 and cis["advection"].high > 4e-3
    t = A.gain_table(frame, "terrain", A.ALL_BINS, min_gain=0.1, tie_margin=0.05,
                     reference="none").set_index("model")
    assert t.loc["advection", "mse_low"] == 0.0


def test_gain_sentence_says_reduction_for_a_positive_gain():
    """The 03 figure title: a positive relative gain (lower MSE than no bias) reads "reduces",
    with the CI in the same orientation; a negative one reads "increases"."""
    up = {"rel_gain": 0.044, "gain_low": 0.025, "gain_high": 0.062}
    assert A.gain_sentence(up) == "reduces the test MSE by 4.4% [2.5, 6.2]"
    down = {"rel_gain": -0.03, "gain_low": -0.05, "gain_high": -0.01}
    assert A.gain_sentence(down) == "increases the test MSE by 3.0% [1.0, 5.0]"
    # a gain that rounds to zero has no minus sign on a zero bound
    zero = {"rel_gain": 0.0001, "gain_low": -0.0001, "gain_high": 0.0003}
    assert A.gain_sentence(zero) == "reduces the test MSE by 0.0% [0.0, 0.0]"
    with pytest.raises(ValueError, match="outside its CI"):
        A.gain_sentence({"rel_gain": 0.1, "gain_low": -0.05, "gain_high": 0.05})
    # no change at all reads as a reduction of zero; a gain on either bound is inside its CI
    exact = {"rel_gain": 0.0, "gain_low": -0.01, "gain_high": 0.01}
    assert A.gain_sentence(exact) == "reduces the test MSE by 0.0% [-1.0, 1.0]"
    assert A.gain_sentence({"rel_gain": 0.02, "gain_low": 0.02, "gain_high": 0.05}).startswith(
        "reduces the test MSE by 2.0% [2.0, 5.0]")
    assert A.gain_sentence({"rel_gain": 0.05, "gain_low": 0.02, "gain_high": 0.05}).endswith(
        "[2.0, 5.0]")


def test_bin_keys_name_every_bin_in_ascii_and_refuse_an_unknown_one():
    assert [A.bin_key(b) for b in (A.ALL_BINS, A.BLOCKED, A.PASSING)] == [
        "all", "blocked", "passing"]
    assert [A.bin_key(b) for b in D.froude_bin_labels()] == list(D.FROUDE_BIN_KEYS)
    with pytest.raises(ValueError, match="unknown Froude bin 'Fr<7'"):
        A.bin_key("Fr<7")


def test_bias_overheads_time_each_variant_against_the_no_bias_model(data):
    from physml.attention import benchmark

    over = benchmark.bias_overheads(data, ["alibi2d", "barrier"], "persistence", repeats=3)
    assert list(over["variant"]) == ["alibi2d", "barrier"]
    assert list(over.columns) == ["variant", "tokens_per_s", "none_tokens_per_s",
                                  "speed_vs_none", "speed_vs_none_low", "speed_vs_none_high"]
    assert np.all(over["tokens_per_s"] > 0) and np.all(over["none_tokens_per_s"] > 0)
    assert np.all((over["speed_vs_none_low"] <= over["speed_vs_none"])
                  & (over["speed_vs_none"] <= over["speed_vs_none_high"]))


def test_bias_overheads_put_each_rate_in_its_own_column(data, monkeypatch):
    """A variant made to do its forward pass eight times reads several times slower than the
    no-bias model (not faster): each rate is in its own column and the ratio is the
    variant's over the anchor's. Work, not a sleep, so a loaded machine slows both alike."""
    from physml.attention import benchmark

    real = benchmark.forward_fn

    def slowed(model, d, base):
        fn = real(model, d, base)
        if model.variant == "none":
            return fn

        def run():
            for _ in range(7):
                fn()
            return fn()
        return run

    monkeypatch.setattr(benchmark, "forward_fn", slowed)
    with timing.threads(1):  # as notebook 05 times: two threads on a busy machine stall
        over = benchmark.bias_overheads(data, ["alibi2d"], "persistence", repeats=5)
    assert over["tokens_per_s"][0] < 0.5 * over["none_tokens_per_s"][0]
    assert 0.02 < over["speed_vs_none"][0] < 0.5


def test_no_bias_model_runs_attention_without_a_mask(data, monkeypatch):
    """The no-bias anchor is a plain transformer (no mask tensor of zeros to allocate and
    read); the other variants pass their bias; both give the same output as an explicit zero
    mask would."""
    seen = []
    real = B.attend

    def spy(q, k, v, bias):
        seen.append(bias)
        return real(q, k, v, bias)

    monkeypatch.setattr(B, "attend", spy)
    tok = M.terrain_tokens(data.terrain_m, 8, np.arange(6))
    base, q0, _, tid, wind = M.tensors(data, "persistence")
    for variant, want_mask in (("none", False), ("alibi2d", True)):
        seen.clear()
        m = M.build(variant, data, np.arange(6), 0, tokens=tok)
        with torch.no_grad():
            torch.nn.init.normal_(m.head.weight, std=0.1)
            m(base, q0, tid, wind)
        assert len(seen) == m.spec.layers
        assert all((b is not None) == want_mask for b in seen), variant
    q, k, v = torch.randn(3, 2, 4, 16, 8).unbind(0)
    torch.testing.assert_close(real(q, k, v, None), real(q, k, v, torch.zeros(2, 4, 16, 16)))


def test_bias_overheads_count_every_token_of_every_sample(data, monkeypatch):
    """With each call taking at least 40 ms, the rates are at most samples × tokens / 40 ms
    (and not far below it: a call does little else)."""
    import time

    from physml.attention import benchmark

    monkeypatch.setattr(benchmark, "forward_fn", lambda model, d, base: lambda: time.sleep(0.04))
    over = benchmark.bias_overheads(data, ["alibi2d"], "persistence", repeats=3)
    ceiling = len(data) * data.spec.n_tokens / 0.04
    for col in ("tokens_per_s", "none_tokens_per_s"):
        assert 0.2 * ceiling < over[col][0] <= ceiling, col


@pytest.mark.parametrize("kw", [{"dim": 30}, {"dim": 0}, {"heads": 0}, {"layers": 0},
                                {"mlp": 0}])
def test_model_spec_refuses_each_bad_size_alone(kw):
    with pytest.raises(ValueError, match="ModelSpec"):
        M.ModelSpec(**kw)
    M.ModelSpec(dim=8, heads=2, layers=1, mlp=1)  # the smallest valid sizes pass


def test_wind_scan_orders_agree_on_the_smallest_grid():
    """On 2 × 2 tokens the across-wind offsets span up to √2 patches: the band key must
    still keep bands apart for every wind direction."""
    coords = B.token_coords(16, 8)
    ang = np.linspace(0, 2 * np.pi, 73)[:-1] + 0.01
    wind = np.stack([np.cos(ang), np.sin(ang)], axis=1) * 5.0
    want = B.wind_scan_order(coords, wind)
    got = M.wind_scan_order_torch(torch.as_tensor(coords), torch.as_tensor(wind))
    np.testing.assert_array_equal(got.numpy(), want)


def test_block_is_a_pre_norm_transformer_block_written_out_by_hand():
    """Block.forward against the textbook formula: x + W_o·softmax(q kᵀ/√d + bias) v over
    heads, then + MLP(LayerNorm(x)); explicit softmax, no fused kernel."""
    torch.manual_seed(3)
    spec = M.ModelSpec(dim=16, heads=4, layers=1, mlp=24)
    blk = M.Block(spec)
    for p in blk.parameters():  # non-trivial norms and biases too
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randn(2, 5, 16)
    bias = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        got = blk(x, bias)
        h = blk.norm1(x)
        qkv = h @ blk.qkv.weight.T + blk.qkv.bias
        q, k, v = qkv[..., :16], qkv[..., 16:32], qkv[..., 32:]
        heads = []
        for i in range(4):
            s = slice(4 * i, 4 * i + 4)
            logits = q[..., s] @ k[..., s].transpose(1, 2) / 2.0 + bias[:, i]
            heads.append(torch.softmax(logits, dim=-1) @ v[..., s])
        y = x + torch.cat(heads, dim=-1) @ blk.proj.weight.T + blk.proj.bias
        want = y + blk.mlp(blk.norm2(y))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_base_forecast_names_each_base():
    spec = D.DataSpec(terrain=TerrainSpec(n_cells=16, margin_cells=3), n_terrains=2,
                      samples_per_terrain=2)
    small = D.make_dataset(np.random.default_rng(2), spec)
    np.testing.assert_array_equal(M.base_forecast(small, "persistence"), small.q0)
    np.testing.assert_array_equal(M.base_forecast(small, "advection"), D.advection_only(small))
    with pytest.raises(ValueError, match="base must be one of"):
        M.base_forecast(small, "clock")


def test_model_adds_its_head_patch_by_patch_to_the_base(data):
    """Output minus base is the head's output laid back onto the grid: token (row gy, col gx)
    fills cells [gy·p, (gy+1)·p) × [gx·p, (gx+1)·p) in row-major order."""
    net = M.build("alibi2d", data, np.arange(6), 0)
    with torch.no_grad():
        torch.nn.init.normal_(net.head.weight, std=0.1)
    seen = []
    net.head.register_forward_hook(lambda m, i, o: seen.append(o))
    base, q0, _, tid, wind = (x[:3] for x in M.tensors(data, "persistence"))
    with torch.no_grad():
        out = net(base, q0, tid, wind)
    head = seen[0]  # (3, T, p*p)
    g, p = 4, 8
    for t in (0, 1, 6, 15):
        gy, gx = divmod(t, g)
        cell = (out - base)[:, gy * p:(gy + 1) * p, gx * p:(gx + 1) * p]
        torch.testing.assert_close(cell, head[:, t].reshape(3, p, p))
    assert float(head.abs().max()) > 1e-3


def test_fit_scores_validation_on_the_bases_it_is_given(data, tmp_path):
    """With precomputed bases, the validation loss of each epoch is the model's MSE on the
    validation samples with *those* bases (not recomputed from the base name)."""
    from physml.train import TrainConfig

    tr, va = np.arange(0, 30), np.arange(30, 48)
    zeros = (np.zeros_like(data.q0[tr]), np.zeros_like(data.q0[va]))
    cfg = TrainConfig(epochs=1, batch_size=16, patience=None, progress=False)
    net = M.build("none", data, np.arange(6), 0)
    hist = M.fit(net, data.subset(tr), data.subset(va), "persistence", cfg, tmp_path / "a",
                 bases=zeros)
    pred = M.predict(net, data.subset(va), zeros[1])
    want = float(np.mean((pred - data.q1[va]) ** 2))
    assert hist["val"][-1]["loss"] == pytest.approx(want, rel=1e-5)
    on_q0 = float(np.mean((M.predict(net, data.subset(va), "persistence") - data.q1[va]) ** 2))
    assert abs(on_q0 - want) > 1e-3 * want


def _input_of(data, layer):
    """What the untrained no-bias model's ``layer`` receives on two samples, with the base,
    q0 and wind fed to the model."""
    net = M.build("none", data, np.arange(6), 0)
    seen = []
    getattr(net, layer).register_forward_hook(lambda m, i, o: seen.append(i[0]))
    base, q0, _, tid, wind = (x[:2] for x in M.tensors(data, "advection"))
    with torch.no_grad():
        net(base, q0, tid, wind)
    return seen[0], base, q0, wind


def test_model_input_channels_are_base_tracer_and_scaled_terrain(data):
    """What the patch embedding reads, token by token: base, q0 and terrain / 1 km scale,
    each patch's cells in row-major order, channel by channel."""
    tok, base, q0, _ = _input_of(data, "embed")
    p = 8  # tok: (2, 16, 3·64)
    terrain = torch.as_tensor(data.terrain_m[data.terrain_id[:2]], dtype=torch.float32)
    for t in (0, 5, 14):
        gy, gx = divmod(t, 4)
        cells = np.s_[:, gy * p:(gy + 1) * p, gx * p:(gx + 1) * p]
        for c, img in enumerate((base, q0, terrain / M.TERRAIN_SCALE_M)):
            torch.testing.assert_close(tok[:, t, c * p * p:(c + 1) * p * p],
                                       img[cells].reshape(2, p * p))
    assert M.TERRAIN_SCALE_M > 1.0 and float(tok[..., 2 * p * p:].abs().max()) < 5.0


def test_training_loss_is_the_mean_squared_error_at_the_horizon(data):
    net = M.build("alibi2d", data, np.arange(6), 0)
    with torch.no_grad():
        torch.nn.init.normal_(net.head.weight, std=0.1)
    batch = tuple(x[:5] for x in M.tensors(data, "persistence"))
    with torch.no_grad():
        pred = net(batch[0], batch[1], batch[3], batch[4]).numpy()
        got = float(M._loss(net, batch)["loss"])
    assert got == pytest.approx(float(np.mean((pred - data.q1[:5]) ** 2)), rel=1e-5)


def test_wind_embedding_reads_the_wind_in_units_of_ten_metres_per_second(data):
    seen, _, _, wind = _input_of(data, "wind_embed")
    assert M.WIND_SCALE_MS == 10.0
    torch.testing.assert_close(seen, wind / 10.0)


def test_position_embeddings_start_small_beside_the_token_embedding(data):
    net = M.build("none", data, np.arange(6), 0)
    assert 0.01 < float(net.pos.detach().std()) < 0.03  # ViT's N(0, 0.02²) initialisation


def test_terrain_tokens_z_score_with_the_training_terrains_statistics(data):
    train = np.arange(3)
    tok = M.terrain_tokens(data.terrain_m, 8, train)
    cells = data.terrain_m[train]
    assert tok.z_mean_m == pytest.approx(cells.mean()) and tok.z_std_m == pytest.approx(cells.std())
    np.testing.assert_allclose(tok.elev_z, (tok.elev_m - cells.mean()) / cells.std(), rtol=1e-12)
    other = M.terrain_tokens(data.terrain_m, 8, np.arange(3, 6))
    assert other.z_mean_m != pytest.approx(tok.z_mean_m)  # the statistics follow the split
    np.testing.assert_allclose(other.elev_m, tok.elev_m)


def _config(**kw):
    return A.AblationConfig(variants=("none",), seeds=kw.pop("seeds", (0, 1)), **kw)


@pytest.mark.parametrize("kw", [{"seeds": (0,)}, {"froude_holdout": (-0.1, 1.0)},
                                {"froude_holdout": (1.0, 1.0)}, {"test_fraction": 0.0},
                                {"test_fraction": 1.0}, {"val_fraction": 0.0},
                                {"val_fraction": 1.0}])
def test_ablation_config_refuses_each_bad_setting_alone(kw):
    with pytest.raises(ValueError, match="AblationConfig"):
        _config(**kw)


def test_ablation_config_accepts_the_edges():
    _config(seeds=(0, 1), froude_holdout=(0.0, 0.5), test_fraction=0.5, val_fraction=0.5)


def _fake(froude, terrain=None):
    from types import SimpleNamespace

    fr = np.asarray(froude, dtype=float)
    tid = np.arange(fr.size) if terrain is None else np.asarray(terrain)
    return SimpleNamespace(froude=fr, terrain_id=tid,
                           froude_bin=lambda: np.digitize(fr, D.FROUDE_BINS[1:-1]))


def test_the_froude_regime_holds_out_lo_up_to_but_not_hi():
    got = A.froude_regime(_fake([0.4, 0.5, 0.99, 1.0, 2.0]), (0.5, 1.0))
    assert got.tolist() == ["trained Fr", "held-out Fr", "held-out Fr", "trained Fr",
                            "trained Fr"]


def test_a_froude_range_that_leaves_no_test_sample_is_refused():
    """Held-out Froude numbers only on training terrains: training samples remain, but no
    held-out terrain has a sample in the range."""
    terrain = np.repeat(np.arange(8), 5)
    by_t = A.split_by_terrain(_fake(np.ones(40), terrain), 0.25, 0)
    fr = np.full(40, 3.0)
    fr[by_t.train[:3]] = 0.7  # in the range (0.5, 1.0), on training terrains only
    with pytest.raises(ValueError, match=r"leaves \d+ training and 0 test samples"):
        A.split_by_froude(_fake(fr, terrain), (0.5, 1.0), 0.25, 0)


def test_each_test_sample_counts_in_all_its_regime_and_its_froude_bin():
    fr = [0.2, 0.5, 0.99, 1.0, 1.5, 2.0, 5.0]
    err = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    rows = pd.DataFrame(A._rows(err, _fake(fr), model="m")).set_index("froude_bin")
    assert rows.loc["all", "mse"] == 4.0 and rows.loc["all", "n"] == 7
    assert rows.loc[A.BLOCKED, "mse"] == 2.0 and rows.loc[A.BLOCKED, "n"] == 3  # Fr < 1
    assert rows.loc[A.PASSING, "mse"] == 5.5 and rows.loc[A.PASSING, "n"] == 4  # Fr >= 1
    labels = D.froude_bin_labels()  # bins open at their lower edge: 0.5, 1, 2
    assert rows.loc[labels, "n"].tolist() == [1, 2, 2, 2]
    assert rows.loc[labels, "mse"].tolist() == [1.0, 2.5, 4.5, 6.5]
    assert (rows["model"] == "m").all()


def test_a_quarter_of_the_terrains_is_held_out_whole():
    terrain = np.repeat(np.arange(8), 5)
    s = A.split_by_terrain(_fake(np.ones(40), terrain), 0.25, 0)
    held = np.unique(terrain[s.test])
    assert held.size == 2 and not set(held) & set(terrain[s.train])
    assert A.split_by_terrain(_fake(np.ones(40), terrain), 0.5, 0).test.size == 20


def _frame(models, split="terrain", froude_bin="all"):
    return pd.DataFrame([{"seed": s, "split": split, "froude_bin": froude_bin, "model": m,
                          "mse": float(v)} for m, vals in models.items()
                         for s, v in enumerate(vals)])


def test_gain_table_and_gain_cis_turn_the_paired_mse_ratio_into_one_minus_it():
    none = np.array([1.0, 1.1, 0.9, 1.2])
    a, b = none * np.array([0.5, 0.6, 0.4, 0.5]), none * 1.2
    frame = _frame({"none": none, "a": a, "b": b})
    t = A.gain_table(frame, "terrain", "all", 0.1, 0.02).set_index("model")
    ratio = stats.ratio_ci(a, none).diff  # a's MSE / the reference's, paired over seeds
    assert t.loc["a", "rel_gain"] == pytest.approx(  # the geometric mean ratio, by hand
        1 - np.exp(np.mean(np.log([0.5, 0.6, 0.4, 0.5]))))
    assert (t.loc["a", "gain_low"], t.loc["a", "gain_high"]) == (
        pytest.approx(1 - ratio.high), pytest.approx(1 - ratio.low))
    assert t.loc["a", "verdict"] == "gain" and t.loc["b", "verdict"] == "worse"
    assert t.loc["b", "rel_gain"] == pytest.approx(-0.2)
    assert np.isnan(t.loc["none", "rel_gain"]) and (t["n_seeds"] == 4).all()
    assert t.loc["none", "test_mse"] == pytest.approx(1.05)
    cis = A.gain_cis(frame, "terrain", "all")
    assert set(cis) == {"a", "b"}  # not the reference itself
    assert (cis["a"].mean, cis["a"].low, cis["a"].high) == (
        pytest.approx(t.loc["a", "rel_gain"]), pytest.approx(t.loc["a", "gain_low"]),
        pytest.approx(t.loc["a", "gain_high"]))
    np.testing.assert_allclose(cis["a"].samples, 1 - a / none)
    assert A.mse_cis(frame, "terrain", "all")["a"].mean == pytest.approx(a.mean())
    with pytest.raises(ValueError, match="reference 'c' not among"):
        A.gain_table(frame, "terrain", "all", 0.1, 0.02, reference="c")
    two = _frame({"none": none[:2], "a": a[:2]})
    assert len(A.gain_table(two, "terrain", "all", 0.1, 0.02)) == 2  # two seeds suffice
    one = _frame({"none": none[:1], "a": a[:1]})
    with pytest.raises(ValueError, match="fewer than 2 seeds"):
        A.gain_table(one, "terrain", "all", 0.1, 0.02)
    assert A.gain_cis(one, "terrain", "all") == {} == A.mse_cis(one, "terrain", "all")
    assert len(A.gain_cis(two, "terrain", "all")) == 1
    assert len(A.mse_cis(two, "terrain", "all")) == 2


def test_a_gain_under_the_minimum_is_a_smaller_gain():
    none = np.array([1.0, 1.1, 0.9, 1.2])
    a = none * np.array([0.95, 0.96, 0.94, 0.95])  # 5% better on every seed
    gain = 1 - A.verdict(a, none, 0.0, 0.01)[1].diff.mean  # about 0.05
    assert A.verdict(a, none, gain, 0.01)[0] == "gain"  # a gain of exactly the minimum counts
    label, v = A.verdict(a, none, np.nextafter(gain, 1.0), 0.01)
    assert label == "smaller gain" and v.outcome == "a"


def test_record_ablation_records_each_split_and_bin_with_two_seeds_and_a_reference(monkeypatch):
    from physml import results

    monkeypatch.setattr(results, "_memory", {})
    none = np.array([1.0, 1.1, 0.9, 1.2])
    good, bad = none * np.array([0.5, 0.6, 0.4, 0.5]), none * 1.3
    frame = pd.concat([
        _frame({"none": none, "a": good, "b": bad}, "terrain", A.ALL_BINS),
        _frame({"none": none, "a": bad, "b": good}, "froude", A.BLOCKED),
        _frame({"none": none[:1], "a": good[:1]}, "terrain", A.BLOCKED),  # one seed: skipped
        _frame({"a": good, "b": bad}, "froude", A.ALL_BINS),  # no reference: skipped
    ], ignore_index=True)
    done = A.record_ablation(frame, min_gain=0.1, tie_margin=0.02)
    assert done == ["terrain.all", "froude.blocked"]
    got = results.recorded()
    assert {k for k in got if ".froude.all" in k or ".terrain.blocked" in k} == set()
    assert got["test_mse.terrain.all.a"]["value"] == pytest.approx(good.mean())
    assert got["test_mse.terrain.all.none"]["unit"] == "tracer²"
    assert got["test_mse.froude.blocked.b"]["value"] == pytest.approx(good.mean())
    geo_mean_ratio = np.exp(np.mean(np.log([0.5, 0.6, 0.4, 0.5])))  # good / none, by hand
    assert got["rel_gain_vs_no_bias.terrain.all.a"]["value"] == pytest.approx(1 - geo_mean_ratio)
    assert "rel_gain_vs_no_bias.terrain.all.none" not in got
    assert got["verdict.terrain.all.a"]["value"] == "gain"
    assert got["verdict.terrain.all.b"]["value"] == "worse"
    assert got["verdict.froude.blocked.a"]["value"] == "worse"
    assert got["verdict.froude.blocked.b"]["value"] == "gain"
    assert "verdict.terrain.all.none" not in got
    # the same margins reach the verdict: a gain under min_gain is a smaller gain
    monkeypatch.setattr(results, "_memory", {})
    A.record_ablation(frame, min_gain=0.6, tie_margin=0.02)
    assert results.recorded()["verdict.terrain.all.a"]["value"] == "smaller gain"


def test_why_no_gain_needs_two_seeds_and_all_three_models():
    none = np.array([1.0, 1.1, 0.9])
    frame = _frame({"none": none, "advection": none * 2, "v": none * 0.9})
    frame["alpha"] = np.where(frame["model"] == "v", frame["seed"] + 1.0, np.nan)
    why = A.why_no_gain(frame, "terrain", "all", "v")
    assert why["ml_over_advection"].mean == pytest.approx(0.5)
    assert why["alpha_trained"].mean == pytest.approx(2.0) and why["alpha_trained"].n == 3
    for bad in (frame[frame["seed"] == 0], frame[frame["model"] != "advection"],
                frame[frame["model"] != "v"]):
        with pytest.raises(ValueError, match="need >= 2 seeds"):
            A.why_no_gain(bad, "terrain", "all", "v")
    with pytest.raises(ValueError, match="need >= 2 seeds"):
        A.why_no_gain(frame, "terrain", "all", "v", ml="other")
    frame.loc[frame["model"] == "v", "alpha"] = np.nan  # a variant without a bias strength
    with pytest.raises(ValueError, match="no learned bias strength"):
        A.why_no_gain(frame, "terrain", "all", "v")


def test_histories_reads_each_variant_of_one_seed_and_split(tmp_path):
    import json

    for seed, split, v in [(1, "terrain", "a"), (1, "terrain", "b"), (0, "terrain", "a"),
                           (1, "froude", "a")]:
        d = tmp_path / f"seed{seed}" / split / v
        d.mkdir(parents=True)
        (d / "history.json").write_text(json.dumps({"who": [seed, split, v]}))
    got = A.histories(tmp_path, 1, "terrain", ["a", "b"])
    assert got == {"a": {"who": [1, "terrain", "a"]}, "b": {"who": [1, "terrain", "b"]}}
    with pytest.raises(FileNotFoundError, match="no training history"):
        A.histories(tmp_path, 0, "terrain", ["b"])
