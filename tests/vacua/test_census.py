"""Census of toric bases for 6-D F-theory: vanishing orders against the published Kodaira /
non-Higgsable-cluster table, the T = 1 bases, and the pruned search against brute force."""

import numpy as np
import pytest

from physml.vacua import census
from physml.vacua.geometry import blow_up_cycle, canonical_cycle, enumerate_toric_surfaces


def _orders(cycle):
    s = np.asarray(cycle, np.int64)
    return census._fixed_part(s, 4)[0], census._fixed_part(s, 6)[0]


# minimal (ord f, ord g) on an isolated −n curve (Morrison & Taylor, arXiv:1201.1943, table of
# non-Higgsable clusters): su3, so8, f4, e6, e7, e7, e8
KODAIRA = {3: (2, 2), 4: (2, 3), 5: (3, 4), 6: (3, 4), 7: (3, 5), 8: (3, 5), 12: (4, 5)}


@pytest.mark.parametrize("n", sorted(KODAIRA))
def test_isolated_curve_orders_match_the_cluster_table(n):
    # F_n = (0, n, 0, −n): the −n curve meets two 0-curves, which carry no vanishing
    af, ag = _orders((0, n, 0, -n))
    assert (af[3], ag[3]) == KODAIRA[n]
    assert af[:3].tolist() == [0, 0, 0] and ag[:3].tolist() == [0, 0, 0]


def test_minus3_minus2_cluster_is_g2_plus_su2_and_minus4_minus2_has_a_46_point():
    # −3 next to −2: (2, 3) and (1, 2) (g2 ⊕ su2); −4 next to −2 forces (4, 6) at their meeting
    c = canonical_cycle(blow_up_cycle(blow_up_cycle((0, 2, 0, -2), 3), 4))  # −3 next to −2
    s = np.asarray(c, np.int64)
    af, ag = _orders(c)
    i3 = int(np.flatnonzero(s == -3)[0])
    nb = [(i3 - 1) % len(s), (i3 + 1) % len(s)]
    j2 = [j for j in nb if s[j] == -2][0]
    assert (af[i3], ag[i3]) == (2, 3) and (af[j2], ag[j2]) == (1, 2)
    assert census._bad_sites(s) == (0, 0)
    bad = np.array(blow_up_cycle(blow_up_cycle((0, 4, 0, -4), 1), 2), np.int64)  # −2, −4
    af, ag = _orders(bad)
    i4 = int(np.flatnonzero(bad == -4)[0])
    j = [k for k in ((i4 - 1) % 6, (i4 + 1) % 6) if bad[k] == -2][0]
    assert af[i4] + af[j] >= 4 and ag[i4] + ag[j] >= 6


def test_hirzebruch_bases_are_the_published_t1_set():
    # T = 1 (Morrison & Taylor, arXiv:1201.1943): F_m for m in 0..8 and 12. F_9, F_10, F_11
    # carry 3, 2, 1 non-toric (4, 6) points on their −m curve (residual g of degree
    # 12 − m): they are bases only after those blow-ups, with T = 1 + 12 − m; F_13 is dead
    fm = np.array([canonical_cycle((0, m, 0, -m)) for m in range(14)], np.int8)
    st = census.status_rows(fm)
    assert st[13] == census.DEAD
    assert all(st[m] == census.GOOD for m in range(13))
    tens = {m: census.tensor_count(fm[m]) for m in range(13)}
    assert [m for m in range(13) if tens[m] == 1] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 12]
    assert [tens[m] for m in (9, 10, 11)] == [4, 3, 2]
    assert census.bad_sites_rows(fm)[[9, 10, 11]].tolist() == [[0, 3], [0, 2], [0, 1]]
    for m in (9, 10, 11):  # the −m curve becomes a −12 curve
        assert sorted(census.blown_up_self_intersections(fm[m]).tolist())[0] == -12
    with pytest.raises(ValueError, match="not a good base"):
        census.tensor_count(fm[13])


def _is_smooth_complete_cycle(cycle):
    # rays v_{i+1} = −s_i v_i − v_{i−1} must close up after one turn: the product of the
    # matrices [[−s, 1], [−1, 0]] is the identity (independent of the census code)
    m = np.eye(2, dtype=object)
    for x in cycle:
        m = m @ np.array([[-x, 1], [-1, 0]], dtype=object)
    return (m == np.eye(2, dtype=object)).all() and sum(cycle) == 12 - 3 * len(cycle)


def test_published_t193_base_is_good_with_t_193_and_is_a_dead_end():
    # Morrison & Taylor's maximal base: 0, −12//−11//−12//…//−12//−11//−12 (17 e8 curves, two
    # of them −11 with one non-toric (4, 6) point each): 194 rays, T = 194 − 3 + 2 = 193
    c = census.t193_cycle()
    assert len(c) == 194 and c.count(-11) == 2 and c.count(-12) == 15
    assert _is_smooth_complete_cycle(c)
    s = np.array(c, np.int64)
    assert census._bad_sites(s) == (0, 2)
    assert census.tensor_count(c) == census.PUBLISHED_T_MAX == 193
    blown = census.blown_up_self_intersections(c)
    assert blown.min() == -12 and not np.isin(blown, [-9, -10, -11]).any()
    # no blow-up of it (following the forced blow-ups of torus-fixed (4, 6) points) leads to
    # another base: the search cannot go beyond it
    level = census.canonical_rows(np.array([c], np.int8))
    for _ in range(60):
        kids, nrays, bad = census._alive_children(level)
        assert not (bad[:, 0] == 0).any(), "a blow-up of the T = 193 base is a good base"
        if len(kids) == 0:
            break
        level = np.ascontiguousarray(kids[:, : nrays.max()]) if len(set(nrays)) == 1 else None
        assert level is not None
    else:
        raise AssertionError("blow-ups of the T = 193 base did not die out in 60 steps")


# non-Higgsable clusters (Morrison & Taylor, arXiv:1201.1943, table 1): the connected chains of
# curves with D² <= −2 that may occur, besides chains of −2 curves
ALLOWED_CLUSTERS = {(-3,), (-4,), (-5,), (-6,), (-7,), (-8,), (-12,), (-3, -2), (-2, -3),
                    (-3, -2, -2), (-2, -2, -3), (-2, -3, -2)}


def _clusters(cycle):
    s = list(cycle)
    k = next(i for i, x in enumerate(s) if x >= -1)  # start the cycle at a curve with D² >= −1
    s = s[k:] + s[:k]
    out, cur = [], []
    for x in s + [0]:
        if x <= -2:
            cur.append(x)
        elif cur:
            out.append(tuple(cur))
            cur = []
    return out


def test_good_bases_obey_the_published_cluster_rules():
    per, extra = census.enumerate_bases(11, keep_cycles=True)
    assert len(extra["cycles"]) > 500
    seen_non_toric = 0
    for c in extra["cycles"]:
        blown = census.blown_up_self_intersections(c)
        seen_non_toric += int((blown != np.array(c)).any())
        assert blown.min() >= -12 and not np.isin(blown, [-9, -10, -11]).any(), c
        for cl in _clusters(blown.tolist()):
            assert set(cl) == {-2} or cl in ALLOWED_CLUSTERS, (c, cl)
    assert seen_non_toric > 0


def test_canonical_form_and_blow_ups_match_the_pure_python_geometry():
    rng = np.random.default_rng(0)
    geoms = enumerate_toric_surfaces(8)
    cyc = [g.self_int for g in rng.choice(np.array(geoms, dtype=object), 40, replace=False)]
    for c in cyc:
        rot = np.roll(np.array(c[::-1], np.int8), 3)[None]
        assert tuple(census.canonical_rows(rot)[0]) == canonical_cycle(c)
        # the search's blow-up (_blow_up_many, one point at a time), canonicalised
        s = np.asarray(c, np.int64)
        zero = np.zeros(len(c), np.int64)
        for i in range(len(c)):
            kid, _, _ = census._blow_up_many(s, zero, zero, np.array([i]), 1)
            got = census.canonical_rows(kid.astype(np.int8)[None])[0]
            assert tuple(got) == canonical_cycle(blow_up_cycle(c, i)), (c, i)


def test_pruned_search_finds_every_good_base_brute_force_finds():
    # brute force: every smooth toric surface with D² >= −12 up to 10 rays, judged one by one
    max_rays = 10
    every = enumerate_toric_surfaces(max_rays)
    by_r: dict[int, int] = {}
    by_t: dict[int, int] = {}
    nt_r: dict[int, int] = {}  # of those, bases with non-toric (4, 6) points
    nt_t: dict[int, int] = {}
    for g in every:
        t, o = census._bad_sites(np.asarray(g.self_int, np.int64))
        if t == 0:
            by_r[g.n_rays] = by_r.get(g.n_rays, 0) + 1
            by_t[g.n_rays - 3 + o] = by_t.get(g.n_rays - 3 + o, 0) + 1
            nt_r[g.n_rays] = nt_r.get(g.n_rays, 0) + (o > 0)
            nt_t[g.n_rays - 3 + o] = nt_t.get(g.n_rays - 3 + o, 0) + (o > 0)
    per, extra = census.enumerate_bases(max_rays, keep_cycles=True)
    assert dict(zip(per.rays, per.good, strict=True)) == by_r
    assert dict(zip(per.rays, per.good_non_toric, strict=True)) == nt_r
    assert sum(nt_r.values()) > 10  # the non-toric counts are exercised
    assert len(set(extra["cycles"])) == sum(by_r.values())
    assert dict(zip(extra["by_T"]["T"], extra["by_T"].bases, strict=True)) == by_t
    assert dict(zip(extra["by_T"]["T"], extra["by_T"].non_toric, strict=True)) == nt_t
    assert not extra["exhausted"]  # 10 rays is a cap, not the end of the search
    summ = census.census_summary(per, extra)
    assert summ["T_min"] == 0 and summ["toric_bases_count"] == sum(by_r.values())
    assert extra["by_T"].bases.iloc[:2].tolist() == [1, 10]  # T = 0: P²; T = 1: ten F_m


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="max_rays"):
        census.enumerate_bases(2)
    with pytest.raises(ValueError, match="chunk_rows"):
        census.enumerate_bases(5, chunk_rows=0)
    # the smallest search is allowed: P² alone, cycle (1, 1, 1), T = 0
    per, extra = census.enumerate_bases(3, keep_cycles=True)
    assert per.rays.tolist() == [3] and per.good.tolist() == [1]
    assert extra["cycles"] == [(1, 1, 1)] and not extra["exhausted"]
    # the smallest chunk is allowed: one surface per chunk, the same census
    one, _ = census.enumerate_bases(5, chunk_rows=1)
    whole, _ = census.enumerate_bases(5)
    cols = ["rays", "good", "stepping_stones"]
    assert one[cols].equals(whole[cols])


def test_dask_search_equals_the_serial_search():
    # the same levels, chunked small so several tasks run on two Dask worker processes
    serial, s_extra = census.enumerate_bases(8, keep_cycles=True)
    dask, d_extra = census.enumerate_bases(8, keep_cycles=True, workers=2, chunk_rows=50)
    cols = ["rays", "good", "stepping_stones"]
    assert dask[cols].equals(serial[cols])
    assert sorted(d_extra["cycles"]) == sorted(s_extra["cycles"])


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_whole_search_ends_by_itself_at_the_published_count():
    # Morrison & Taylor, arXiv:1204.0283: 61,539 toric bases, the largest at T = 193; the
    # search must end by itself (no surface survives a further blow-up), not at the ray cap,
    # and keep no cycles unless asked
    per, extra = census.enumerate_bases(400)
    summ = census.census_summary(per, extra)
    assert extra["exhausted"] and "cycles" not in extra
    assert summ["toric_bases_count"] == census.PUBLISHED_COUNT == 61_539
    assert summ["T_max"] == census.PUBLISHED_T_MAX == 193 and summ["difference"] == 0
    assert per.rays.max() < 400
