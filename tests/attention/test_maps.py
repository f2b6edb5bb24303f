"""attention.maps (notebook 02) against hand-derived references: ALiBi's map is −¼ × the
Euclidean patch distance, the released bias is the clamp formula on z-scored patch means, the
misaligned map is the barrier_wind row of the token the wind scan puts in the query's place,
bias scales are maxima and means over token pairs, and the logit spread is that of the model's
own first block."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from physml.attention import bias as B
from physml.attention import maps
from physml.attention import model as M

N, PATCH = 24, 8  # 3 × 3 tokens


def _terrain(seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:N, 0:N]
    h = np.zeros((N, N))
    for _ in range(4):
        cx, cy = rng.uniform(0, N, 2)
        h += rng.uniform(200, 800) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 30.0)
    return h


def test_alibi_none_relpos_and_released_maps_match_their_formulas():
    terrain = _terrain(0)
    z_mean, z_std = 300.0, 150.0
    query = 4  # the centre token
    out = maps.query_maps(terrain, np.array([5.0, 0.0]), PATCH, query,
                          ["none", "alibi2d", "relpos", "elev_released_fixed"], z_mean, z_std)
    assert set(out) == {"none", "alibi2d", "relpos", "elev_released_fixed"}
    r, c = np.mgrid[0:3, 0:3]
    # head 0 of 4: slope 2^(-8/4) = 1/4 per patch
    np.testing.assert_allclose(out["alibi2d"], -0.25 * np.hypot(r - 1, c - 1), atol=1e-6)
    np.testing.assert_array_equal(out["none"], np.zeros((3, 3)))
    np.testing.assert_array_equal(out["relpos"], np.zeros((3, 3)))
    e = terrain.reshape(3, PATCH, 3, PATCH).mean(axis=(1, 3))  # patch means, (row, col)
    z = (e - z_mean) / z_std
    want = np.clip(-2.0 * np.maximum(z - z[1, 1], 0.0) / 1000.0, -10.0, 0.0)
    assert want.min() < 0
    np.testing.assert_allclose(out["elev_released_fixed"], want, rtol=1e-5, atol=1e-9)


def test_misaligned_map_is_the_barrier_row_of_the_token_scanned_into_the_query_place():
    """Wind along +x scans tokens column by column, so token t = 3r + c sits at scanned place
    3c + r (a transpose T). The query q = 5 (r 1, c 2) sits at place 7; it receives bias row 7
    of barrier_wind, whose entry m lands on the key scanned into place m, token T(m): the map is
    barrier_wind's map at query 7, transposed."""
    y, x = np.mgrid[0:N, 0:N]
    # a north-south ridge between the first and second token columns, higher to the north
    terrain = (400.0 + 20.0 * y) * np.exp(-((x - 7.5) ** 2) / 4.0) + 0.1 * _terrain(1)
    wind = np.array([6.0, 0.0])
    order = B.wind_scan_order(B.token_coords(N, PATCH), wind[None])[0]
    np.testing.assert_array_equal(order, [0, 3, 6, 1, 4, 7, 2, 5, 8])
    mis = maps.query_maps(terrain, wind, PATCH, 5, ["misaligned"], 0.0, 1.0)["misaligned"]
    bw7 = maps.query_maps(terrain, wind, PATCH, 7, ["barrier_wind"], 0.0, 1.0)["barrier_wind"]
    bw5 = maps.query_maps(terrain, wind, PATCH, 5, ["barrier_wind"], 0.0, 1.0)["barrier_wind"]
    assert np.abs(bw7).max() > 1e-3 and not np.allclose(bw7, bw7.T)
    np.testing.assert_allclose(mis, bw7.T, atol=1e-7)
    assert not np.allclose(mis, bw5)
    # wind (2, 1): bands round(u·r) across the wind, by hand [0 3 | 1 4 6 | 2 5 7 | 8], an
    # order that is not its own inverse; query 1 sits at place 2
    oblique = np.array([6.0, 3.0])
    order = B.wind_scan_order(B.token_coords(N, PATCH), oblique[None])[0]
    np.testing.assert_array_equal(order, [0, 3, 1, 4, 6, 2, 5, 7, 8])
    mis = maps.query_maps(terrain, oblique, PATCH, 1, ["misaligned"], 0.0, 1.0)["misaligned"]
    bw2 = maps.query_maps(terrain, oblique, PATCH, 2, ["barrier_wind"], 0.0, 1.0)["barrier_wind"]
    want = np.empty(9)
    want[order] = bw2.ravel()
    assert np.abs(bw2).max() > 1e-3
    np.testing.assert_allclose(mis.ravel(), want, atol=1e-7)


def test_shuffled_map_uses_the_other_terrain_and_is_refused_without_it():
    terrain, other = _terrain(2), _terrain(3)
    wind = np.array([0.0, 7.0])
    got = maps.query_maps(terrain, wind, PATCH, 4, ["barrier_shuffled", "barrier_wind"], 0.0,
                          1.0, shuffled_terrain_m=other)
    on_other = maps.query_maps(other, wind, PATCH, 4, ["barrier_wind"], 0.0, 1.0)
    np.testing.assert_allclose(got["barrier_shuffled"], on_other["barrier_wind"], atol=1e-7)
    assert not np.allclose(got["barrier_shuffled"], got["barrier_wind"])
    with pytest.raises(ValueError, match="barrier_shuffled needs shuffled_terrain_m"):
        maps.query_maps(terrain, wind, PATCH, 4, ["barrier_shuffled"], 0.0, 1.0)


@pytest.fixture
def data(small_data):
    return small_data


def test_bias_scales_are_the_largest_and_mean_bias_over_token_pairs(data):
    tab = maps.bias_scales(data, ["none", "alibi2d", "barrier"], 0.0, 1.0).set_index("variant")
    assert list(tab.columns) == ["max_abs_bias", "mean_abs_bias"]
    coords = B.token_coords(32, 8)
    dist = cdist(coords, coords)
    assert tab.loc["none"].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(tab.loc["alibi2d"], [0.25 * dist.max(), 0.25 * dist.mean()],
                               rtol=1e-6)
    # barrier, α = 2 per km, over the first max_samples samples only
    centres = B.token_centres(32, 8)
    for k in (3, len(data)):
        bars = [B.path_barrier(data.terrain_m[t], centres) for t in data.terrain_id[:k]]
        one = maps.bias_scales(data, ["barrier"], 0.0, 1.0, max_samples=k).iloc[0]
        np.testing.assert_allclose([one.max_abs_bias, one.mean_abs_bias],
                                   [2e-3 * np.max(bars), 2e-3 * np.mean(bars)], rtol=1e-5)
    assert tab.loc["barrier", "max_abs_bias"] > 0


def test_logit_std_is_that_of_the_first_block_inside_the_model(data):
    """The spread the notebook compares biases with is the one the model's own forward pass
    produces in its first attention layer (read through a hook, not rebuilt by hand)."""
    base = data.q0
    net = M.build("alibi2d", data, np.arange(4), 3)
    with torch.no_grad():
        torch.nn.init.normal_(net.wind_embed.weight, std=0.5)  # the wind term must count
    seen = []
    hook = net.blocks[0].qkv.register_forward_hook(lambda m, i, o: seen.append(o))
    bs, q0, _, tid, wind = (x[:7] for x in M.tensors(data, base))
    with torch.no_grad():
        net(bs, q0, tid, wind)
    hook.remove()
    b, t, _ = seen[0].shape
    h = net.spec.heads
    q, k, _ = seen[0].reshape(b, t, 3, h, -1).permute(2, 0, 3, 1, 4)
    want = float((q @ k.transpose(-2, -1) / np.sqrt(q.shape[-1])).std(dim=-1).mean())
    got = maps.attention_logit_std(net, data, base, max_samples=7)
    assert got == pytest.approx(want, rel=1e-5)
    assert got != pytest.approx(maps.attention_logit_std(net, data, base, max_samples=20),
                                rel=1e-4)
