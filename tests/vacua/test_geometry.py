"""Toric blow-up rules on P², F_1 and a hand-checked blow-up; invariants of every enumerated fan."""

import numpy as np
import pytest

from physml.vacua.geometry import (
    Geometry,
    blow_up_cycle,
    blow_up_rays,
    canonical_cycle,
    count_by_rays,
    cycle_graph,
    enumerate_toric_surfaces,
    hirzebruch_cycle,
    p2_cycle,
    rays_from_self_intersections,
    self_intersections_from_rays,
)

P2_RAYS = np.array([[1, 0], [0, 1], [-1, -1]])


def test_p2_rays_give_three_lines_of_self_intersection_plus_one():
    assert self_intersections_from_rays(P2_RAYS).tolist() == [1, 1, 1]
    g = Geometry(0, canonical_cycle(p2_cycle()))
    assert g.h11 == 1 and g.n_moduli == 2  # h11 = 3 − 2, clipped up to 2 moduli


def test_blowing_up_p2_gives_f1_with_rays_and_self_intersections_consistent():
    rays = blow_up_rays(P2_RAYS, 0)  # insert (1,0) + (0,1) = (1,1)
    assert rays.tolist() == [[1, 0], [1, 1], [0, 1], [-1, -1]]
    s = self_intersections_from_rays(rays)  # v_{i−1} + v_{i+1} = −D_i² v_i, checked from rays
    assert canonical_cycle(s) == canonical_cycle(hirzebruch_cycle(1))
    assert canonical_cycle(blow_up_cycle(p2_cycle(), 0)) == canonical_cycle((0, 1, 0, -1))
    assert Geometry(0, canonical_cycle(s)).h11 == 2


def test_hand_checked_blow_up_of_f1_equals_blow_up_of_f0():
    # F_1 = (0, −1, 0, 1); blowing up the point between the +1 curve and the first 0 curve:
    # the 0 curve and the +1 curve drop by one, a −1 curve appears: (−1, −1, 0, 0, −1).
    f1 = (0, -1, 0, 1)
    assert blow_up_cycle(f1, 3) == (-1, -1, 0, 0, -1)
    # P² blown up in two points is also F_0 blown up in one point (both = (−1,−1,−1,0,0))
    assert canonical_cycle(blow_up_cycle(hirzebruch_cycle(0), 0)) == canonical_cycle(
        (-1, -1, 0, 0, -1))
    rays = blow_up_rays(rays_from_self_intersections(f1), 3)
    assert canonical_cycle(self_intersections_from_rays(rays)) == canonical_cycle(
        (-1, -1, 0, 0, -1))


def test_every_enumerated_fan_is_smooth_closed_and_obeys_the_sum_rule():
    geoms = enumerate_toric_surfaces(9)
    for g in geoms:
        rays = g.rays
        s = self_intersections_from_rays(rays)  # raises unless det(v_i, v_{i+1}) = 1
        assert tuple(s) == g.self_int
        # Noether on a smooth complete toric surface: Σ D_i² = 12 − 3 r
        assert sum(g.self_int) == 12 - 3 * g.n_rays
        assert min(g.self_int) >= -12
        assert g.h11 == g.n_rays - 2


def test_enumeration_counts_hirzebruch_surfaces_and_deduplicates():
    counts = count_by_rays(enumerate_toric_surfaces(6))
    assert counts[3] == 1          # P²
    assert counts[4] == 13         # F_0 ... F_12
    geoms = enumerate_toric_surfaces(8)
    cycles = [g.self_int for g in geoms]
    assert len(set(cycles)) == len(cycles)
    # a reflected, rotated copy maps to the same canonical form
    s = geoms[-1].self_int
    assert canonical_cycle(s[::-1][2:] + s[::-1][:2]) == s


def test_enumeration_is_bounded():
    with pytest.raises(ValueError, match="max_rays"):
        enumerate_toric_surfaces(41)


def test_cycle_graph_links_each_curve_to_its_two_neighbours():
    g = Geometry(0, canonical_cycle(hirzebruch_cycle(2)))
    x, edges = cycle_graph(g)
    assert x[:, 0].tolist() == list(g.self_int)
    assert edges.shape == (2, 8)
    deg = np.bincount(edges[0], minlength=4)
    assert deg.tolist() == [2, 2, 2, 2]
