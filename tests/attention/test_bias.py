"""Attention biases: shapes, signs against hand-built terrains, the released scale, the
path barrier against an analytic ridge, permutation equivariance of every variant."""

import numpy as np
import pytest
import torch

from physml.attention import bias as B
from physml.attention.terrain import ridge

N, P = 64, 8
G = N // P


def _inputs(terrain_m, wind=(5.0, 0.0), z_mean=None, z_std=None):
    t = np.asarray(terrain_m, dtype=float)[None]
    e = B.patch_means(t, P)
    mu = t.mean() if z_mean is None else z_mean
    sd = t.std() if z_std is None else z_std
    bar = B.path_barrier(t[0], B.token_centres(N, P))[None]
    f = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    return B.BiasInputs(torch.tensor(B.token_coords(N, P)), f(e), f((e - mu) / sd), f(bar),
                        f(np.asarray(wind, dtype=float)[None]))


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


def _straight_ridge(height=1000.0):
    # crest along y through x = 31.5 (between token columns 3 and 4), width 2 cells
    return ridge(N, (31.5, 31.5), np.pi / 2, height, 1e6, 2.0)


def _tok(cx, cy):
    return cy * G + cx


@pytest.mark.parametrize("variant", B.VARIANTS)
def test_every_variant_has_the_bias_shape(variant):
    rng = np.random.default_rng(0)
    x = _inputs(rng.uniform(0, 500, size=(N, N)))
    out = B.AttentionBias(variant, heads=4, grid=G).double()(x)
    assert out.shape == (1, 4, G * G, G * G)
    assert torch.isfinite(out).all()
    if variant == "none":
        assert torch.count_nonzero(out) == 0


def test_path_barrier_matches_the_analytic_ridge_height():
    h = _straight_ridge(1000.0)
    c = B.token_centres(N, P)
    bar = B.path_barrier(h, c)
    i, j = _tok(1, 2), _tok(6, 2)  # both far from the crest (h ≈ 0)
    # the crest x = 31.5 falls between grid columns 31 and 32, each half a cell off the crest
    on_grid = 1000.0 * np.exp(-0.5 * (0.5 / 2.0) ** 2)
    assert bar[i, j] == pytest.approx(on_grid, rel=1e-6)
    k = _tok(1, 5)  # same side of the ridge as i: no barrier
    assert bar[i, k] == pytest.approx(0.0, abs=1e-6)
    assert np.allclose(bar, bar.T) and np.all(np.diag(bar) == 0) and bar.min() >= 0


def test_ridge_between_two_low_points_is_penalised_only_by_the_path_barrier():
    x = _inputs(_straight_ridge(1000.0), wind=(5.0, 0.0))
    i, j = _tok(6, 3), _tok(1, 3)  # query east of the ridge, key west (upwind for westerly)
    for v in ("elev_released_fixed", "elev_released_learned", "elev_scaled",
              "elev_scaled_wind"):
        b = B.AttentionBias(v, heads=2, grid=G).double()(x)
        assert abs(float(b[0, 0, i, j])) < 1e-9, v  # equal endpoints: nothing
    for v in ("barrier", "barrier_wind"):
        b = B.AttentionBias(v, heads=2, grid=G).double()(x)
        # α = 2 per km of barrier (0.969 km on the grid), gate cos 0 = 1 for the wind-gated one
        assert float(b[0, 0, i, j]) == pytest.approx(-2.0 * 0.9692, rel=1e-3), v


def test_endpoint_bias_penalises_uphill_keys_not_downhill():
    h = ridge(N, (3.5, 3.5), 0.0, 1500.0, 6.0, 6.0)  # a hill on token (0, 0)
    x = _inputs(h)
    top, low = _tok(0, 0), _tok(3, 3)
    for v in ("elev_released_fixed", "elev_scaled"):
        b = B.AttentionBias(v, heads=1, grid=G).double()(x)[0, 0]
        assert float(b[low, top]) < 0, v  # key higher than query: penalised
        assert float(b[top, low]) == 0.0, v  # key lower: not


def test_released_bias_is_about_a_hundredth_of_a_logit():
    # z-scored elevations divided by 1000: with α = 2 the bias is ~ 2·Δz/1000
    rng = np.random.default_rng(1)
    h = sum(ridge(N, tuple(rng.uniform(10, 54, 2)), rng.uniform(0, 3), 1500.0, 20.0, 3.0)
            for _ in range(3))
    x = _inputs(h, z_mean=h.mean(), z_std=h.std())
    released = B.AttentionBias("elev_released_fixed", 1, G).double()(x)
    e = B.patch_means(h, P)
    z = (e - h.mean()) / h.std()
    expected = -2.0 * np.maximum(z[None, :] - z[:, None], 0) / 1000.0  # by hand
    np.testing.assert_allclose(released[0, 0].numpy(), expected, atol=1e-12)
    assert 1e-3 < float(-released.min()) < 0.02
    scaled = B.AttentionBias("elev_scaled", 1, G).double()(x)
    assert float(-scaled.min()) > 0.5  # the same formula in km: logits of order one


def test_wind_gate_upwind_only():
    x = _inputs(_straight_ridge(1000.0), wind=(5.0, 0.0))
    b = B.AttentionBias("barrier_wind", 1, G).double()(x)[0, 0]
    east, west = _tok(6, 3), _tok(1, 3)
    assert float(b[east, west]) < -1.0  # key west = upwind of a westerly: gated on
    assert float(b[west, east]) == 0.0  # key downwind: gated off
    x2 = _inputs(_straight_ridge(1000.0), wind=(-5.0, 0.0))
    b2 = B.AttentionBias("barrier_wind", 1, G).double()(x2)[0, 0]
    assert float(b2[west, east]) < -1.0 and float(b2[east, west]) == 0.0


@pytest.mark.parametrize("variant", B.VARIANTS)
def test_permutation_equivariance(variant):
    torch.manual_seed(0)
    rng = np.random.default_rng(2)
    h = sum(ridge(N, tuple(rng.uniform(10, 54, 2)), rng.uniform(0, 3), 900.0, 15.0, 2.5)
            for _ in range(2))
    x = _inputs(h, wind=(3.0, -4.0))
    mod = B.AttentionBias(variant, heads=4, grid=G).double()
    with torch.no_grad():
        for p in mod.parameters():  # move off the initial values
            p.add_(torch.randn_like(p) * 0.3)
    perm = torch.tensor(rng.permutation(G * G))
    bias = mod(x)
    bias_p = mod(x.permuted(perm))
    torch.testing.assert_close(bias_p, bias[:, :, perm][:, :, :, perm], atol=1e-10, rtol=0)
    q, k, v = (torch.randn(1, 4, G * G, 8, dtype=torch.float64) for _ in range(3))
    out = B.attend(q, k, v, bias)
    out_p = B.attend(q[:, :, perm], k[:, :, perm], v[:, :, perm], bias_p)
    assert float((out_p - out[:, :, perm]).abs().max()) < 1e-5


def test_derangement_moves_every_terrain():
    p = B.derangement(10, np.random.default_rng(0))
    assert sorted(p.tolist()) == list(range(10)) and np.all(p != np.arange(10))


def test_wind_scan_order_depends_on_wind():
    c = B.token_coords(N, P)
    o = B.wind_scan_order(c, np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]]))
    assert all(sorted(r.tolist()) == list(range(G * G)) for r in o)
    # westerly: first scanned tokens are the western column (x = 0)
    assert set(c[o[0, :G], 0].tolist()) == {0}
    assert set(c[o[1, :G], 0].tolist()) == {G - 1}
    assert set(c[o[2, :G], 1].tolist()) == {0}


@pytest.mark.parametrize("patch", [7, 0, 65])
def test_patch_not_dividing_grid_rejected_by_name(patch):
    with pytest.raises(ValueError, match="patch"):
        B.token_centres(64, patch)


def test_token_centres_are_the_patch_means_of_the_cell_coordinates():
    # an independent definition: the centre of a patch is the mean position of its cells
    for n, p in ((16, 8), (12, 3), (4, 1)):
        ys, xs = np.mgrid[0:n, 0:n].astype(float)
        c = B.token_centres(n, p)
        np.testing.assert_allclose(c[:, 0], B.patch_means(xs, p))
        np.testing.assert_allclose(c[:, 1], B.patch_means(ys, p))
    assert B.token_centres(16, 8).tolist() == [[3.5, 3.5], [11.5, 3.5], [3.5, 11.5],
                                               [11.5, 11.5]]
    np.testing.assert_array_equal(B.token_coords(4, 1), B.token_centres(4, 1))  # patch 1


def test_patch_means_average_over_the_last_two_axes_only():
    f = np.random.default_rng(3).normal(size=(2, 3, 8, 8))
    m = B.patch_means(f, 4)
    assert m.shape == (2, 3, 4)
    np.testing.assert_allclose(m[1, 2, 3], f[1, 2, 4:, 4:].mean())  # token 3 = (x 1, y 1)
    np.testing.assert_allclose(m[0, 1, 1], f[0, 1, :4, 4:].mean())  # token 1 = (x 1, y 0)


def test_path_barrier_is_measured_from_the_higher_endpoint():
    h = _straight_ridge(1000.0)
    c = B.token_centres(N, P)
    # raising the whole terrain changes no barrier
    np.testing.assert_allclose(B.path_barrier(h + 500.0, c), B.path_barrier(h, c), atol=1e-9)
    # a slope with no ridge: the highest point of every segment is an endpoint
    ys, xs = np.mgrid[0:N, 0:N].astype(float)
    np.testing.assert_allclose(B.path_barrier(10.0 * xs + 3.0 * ys, c), 0.0, atol=1e-9)


def test_path_barrier_samples_the_segment_at_most_step_cells_apart():
    # a one-cell spike halfway between two points 8 cells apart: a step of 4 cells lands on it
    h = np.zeros((16, 16))
    h[4, 8] = 100.0
    two = np.array([[4.0, 4.0], [12.0, 4.0]])
    assert B.path_barrier(h, two, step_cells=4.0)[0, 1] == pytest.approx(100.0)
    assert B.path_barrier(h, two, step_cells=3.0)[0, 1] < 100.0  # 8/3 → 4 steps: misses it
    assert B.path_barrier(h, two, step_cells=8.0)[0, 1] == 0.0  # endpoints only


def test_scaled_elevation_bias_is_alpha_per_km_uphill_clamped_at_ten():
    h = ridge(N, (3.5, 3.5), 0.0, 1500.0, 6.0, 6.0)
    x = _inputs(h)
    e = x.elev_m[0].numpy()
    b = B.AttentionBias("elev_scaled", heads=1, grid=G).double()(x)[0, 0].numpy()
    np.testing.assert_allclose(b, -2.0 * np.maximum(e[None, :] - e[:, None], 0.0) / 1000.0,
                               atol=1e-12)
    steep = _inputs(8.0 * h)  # up to 12 km: 2 per km would exceed the clamp
    b8 = B.AttentionBias("elev_scaled", heads=1, grid=G).double()(steep)[0, 0]
    assert float(b8.min()) == -10.0


def test_wind_gate_speed_response_is_softplus_ratio_in_units_of_ten_metres_per_second():
    x = _inputs(_straight_ridge(1000.0), wind=(6.0, 8.0))  # |U| = 10 m/s
    mod = B.AttentionBias("barrier_wind", heads=2, grid=G).double()
    a0 = float(mod.gate_a[0])
    mod.gate_c.copy_(torch.tensor([1.5, -0.5], dtype=torch.float64))
    sp = lambda z: np.log1p(np.exp(z))  # noqa: E731
    want = [sp(a0 + c) / sp(a0) for c in (1.5, -0.5)]
    np.testing.assert_allclose(mod.speed_response(x.wind_ms)[0].numpy(), want, rtol=1e-12)
    slow = _inputs(_straight_ridge(1000.0), wind=(0.6, 0.8))  # 1 m/s: a tenth of the effect
    want_slow = [sp(a0 + c / 10) / sp(a0) for c in (1.5, -0.5)]
    np.testing.assert_allclose(mod.speed_response(slow.wind_ms)[0].numpy(), want_slow,
                               rtol=1e-12)
    # the bias is the barrier term × gate × response, per head
    gated = mod(x)[0]
    mod.gate_c.zero_()
    plain = mod(x)[0]
    for hd in range(2):
        torch.testing.assert_close(gated[hd], plain[hd] * want[hd], rtol=1e-12, atol=0)
    assert float(plain.min()) < -1.0


def test_relpos_table_is_indexed_by_the_offset_of_query_minus_key():
    g = 3
    mod = B.AttentionBias("relpos", heads=1, grid=g).double()
    dx, dy = np.meshgrid(np.arange(-(g - 1), g), np.arange(-(g - 1), g))  # row-major (dy, dx)
    mod.table.copy_(torch.tensor(100.0 * dy + dx, dtype=torch.float64).reshape(1, -1))
    coords = B.token_coords(g * 4, 4)
    x = B.BiasInputs(torch.tensor(coords), torch.zeros(1, g * g, dtype=torch.float64),
                     torch.zeros(1, g * g, dtype=torch.float64),
                     torch.zeros(1, g * g, g * g, dtype=torch.float64),
                     torch.tensor([[1.0, 0.0]], dtype=torch.float64))
    d = coords[:, None, :] - coords[None, :, :]  # r_i - r_j
    np.testing.assert_array_equal(mod(x)[0, 0].numpy(), 100.0 * d[..., 1] + d[..., 0])


def test_derangement_needs_two_elements():
    assert B.derangement(2, np.random.default_rng(0)).tolist() == [1, 0]
    with pytest.raises(ValueError, match="n >= 2"):
        B.derangement(1, np.random.default_rng(0))


def test_alibi_slopes_are_the_papers_geometric_sequence_and_scale_the_distance():
    # ALiBi (Press et al. 2022): for 8 heads the slopes are 1/2, 1/4, ..., 1/256
    np.testing.assert_allclose(B.alibi_slopes(8).numpy(), 0.5 ** np.arange(1, 9))
    np.testing.assert_allclose(B.alibi_slopes(4).numpy(), 0.25 ** np.arange(1, 5))
    x = _inputs(np.zeros((N, N)), z_std=1.0)  # flat terrain (alibi ignores it)
    b = B.AttentionBias("alibi2d", heads=4, grid=G).double()(x)[0].numpy()
    c = B.token_coords(N, P)
    dist = np.hypot(*(c[:, None, :] - c[None, :, :]).transpose(2, 0, 1))
    for hd in range(4):
        np.testing.assert_allclose(b[hd], -(0.25 ** (hd + 1)) * dist, rtol=1e-12)


def test_wind_scan_order_reads_each_band_across_the_wind_turned_anticlockwise():
    # across = position on the wind turned 90° anticlockwise: for a southerly (wind +y) that is
    # -x, so each row is read from east to west; for a westerly (+x) it is +y
    c = B.token_coords(N, P)
    o = B.wind_scan_order(c, np.array([[0.0, 1.0], [1.0, 0.0]]))
    south = c[o[0]]
    assert south[:G, 1].tolist() == [0] * G and south[:G, 0].tolist() == list(range(G))[::-1]
    west = c[o[1]]
    assert west[:G, 0].tolist() == [0] * G and west[:G, 1].tolist() == list(range(G))


def test_wind_scan_order_does_not_depend_on_the_wind_speed():
    c = B.token_coords(N, P)
    winds = np.array([[0.6, 0.8], [3.0, 4.0], [0.06, 0.08], [-12.0, 5.0], [-1.2, 0.5]])
    o = B.wind_scan_order(c, winds)
    np.testing.assert_array_equal(o[1], o[0])
    np.testing.assert_array_equal(o[2], o[0])
    np.testing.assert_array_equal(o[4], o[3])


def test_upwind_cosine_of_a_batch_is_each_sample_on_its_own():
    coords = torch.tensor(B.token_coords(N, P), dtype=torch.float64)
    winds = torch.tensor([[5.0, 0.0], [0.0, -2.0], [3.0, 4.0]], dtype=torch.float64)
    batch = B.upwind_cosine(coords, winds)
    for i in range(len(winds)):
        torch.testing.assert_close(batch[i], B.upwind_cosine(coords, winds[i:i + 1])[0])
    i, j = _tok(2, 3), _tok(1, 2)  # r_i - r_j = (1, 1): cos 45° to a (3, 4) wind is 7 / (5 √2)
    assert float(batch[2, i, j]) == pytest.approx(7.0 / (5.0 * np.sqrt(2.0)))


def test_learned_alpha_is_the_bias_strength_and_nan_without_one():
    assert B.AttentionBias("elev_scaled", 4, G).learned_alpha() == B.RELEASED_ALPHA
    assert B.AttentionBias("elev_released_learned", 4, G).learned_alpha() == B.RELEASED_ALPHA
    mod = B.AttentionBias("barrier_wind", 2, G)
    with torch.no_grad():
        mod.alpha.copy_(torch.tensor([1.0, 4.0]))
    assert mod.learned_alpha() == 2.5  # the mean over heads
    for variant in ("none", "alibi2d", "relpos"):
        assert np.isnan(B.AttentionBias(variant, 4, G).learned_alpha())
