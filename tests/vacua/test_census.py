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
    # T = 1: F_m is a good base for m in 0..8 and 12; F_9..F_11 carry non-toric (4, 6) points
    # on their −m curve; F_13 has a (4, 6) curve
    fm = np.array([canonical_cycle((0, m, 0, -m)) for m in range(14)], np.int8)
    st = census.status_rows(fm)
    assert [m for m in range(14) if st[m] == census.GOOD] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 12]
    assert census.bad_sites_rows(fm)[[9, 10, 11]].tolist() == [[0, 1]] * 3
    assert st[13] == census.DEAD


def test_canonical_form_and_blow_ups_match_the_pure_python_geometry():
    rng = np.random.default_rng(0)
    geoms = enumerate_toric_surfaces(8)
    cyc = [g.self_int for g in rng.choice(np.array(geoms, dtype=object), 40, replace=False)]
    for c in cyc:
        rot = np.roll(np.array(c[::-1], np.int8), 3)[None]
        assert tuple(census.canonical_rows(rot)[0]) == canonical_cycle(c)
        kids = census._children(np.array([c], np.int8))
        assert {tuple(k) for k in kids} == {canonical_cycle(blow_up_cycle(c, i))
                                          for i in range(len(c))}


def test_pruned_search_finds_every_good_base_brute_force_finds():
    # brute force: every smooth toric surface with D² >= −12 up to 10 rays, judged one by one
    max_rays = 10
    every = enumerate_toric_surfaces(max_rays)
    by_r: dict[int, int] = {}
    for g in every:
        if census._bad_sites(np.asarray(g.self_int, np.int64)) == (0, 0):
            by_r[g.n_rays] = by_r.get(g.n_rays, 0) + 1
    per, extra = census.enumerate_bases(max_rays, keep_cycles=True)
    assert dict(zip(per.rays, per.good, strict=True)) == by_r
    assert len(set(extra["cycles"])) == sum(by_r.values())


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="max_rays"):
        census.enumerate_bases(2)
