"""Smooth complete toric surfaces: the geometries whose moduli the toy potentials live on.

Every smooth complete toric surface is a toric blow-up of P² or of a Hirzebruch surface F_n
(Oda's classification). A fan is a cyclically ordered list of primitive rays v_0..v_{r-1} in Z²
with det(v_i, v_{i+1}) = 1; the toric curve D_i has self-intersection D_i² = -a_i where
v_{i-1} + v_{i+1} = a_i v_i. A toric blow-up inserts v_i + v_{i+1} between two adjacent rays:
the new curve has self-intersection -1 and both neighbours drop by 1.

A smooth complete toric surface is fixed up to GL(2, Z) by its cycle of self-intersections, so
geometries are deduplicated by a canonical form of that cycle under rotation and reflection.
Following the 6D F-theory bound, a geometry is kept only if every curve has D² >= -12. Since a
blow-up only lowers self-intersections, every blow-down of a kept surface is kept too, and a
breadth-first search from P² and F_0..F_12 finds every such surface up to a ray cap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_SELF_INTERSECTION = -12
MAX_MODULI = 32
MIN_MODULI = 2


def canonical_cycle(self_int) -> tuple[int, ...]:
    """Lexicographically smallest rotation/reflection of a cyclic sequence, shape ``(r,)``."""
    s = tuple(int(x) for x in self_int)
    r = len(s)
    candidates = [s[i:] + s[:i] for i in range(r)]
    rev = s[::-1]
    candidates += [rev[i:] + rev[:i] for i in range(r)]
    return min(candidates)


def rays_from_self_intersections(self_int) -> np.ndarray:
    """Rays ``(r, 2)`` (integer) of the smooth fan with the given self-intersection cycle.

    Starts from v_0 = (1, 0), v_1 = (0, 1) and applies v_{i+1} = -D_i² v_i - v_{i-1}... written as
    v_{i+1} = a_i v_i - v_{i-1} with a_i = -D_i². Raises ValueError when the cycle does not close
    (the sequence is not the self-intersection cycle of a smooth complete toric surface).
    """
    s = [int(x) for x in self_int]
    r = len(s)
    if r < 3:
        raise ValueError(f"a complete toric surface needs >= 3 rays, got self_int={s}")
    v = [np.array([1, 0]), np.array([0, 1])]
    for i in range(1, r - 1):
        a_i = -s[i]
        v.append(a_i * v[i] - v[i - 1])
    rays = np.array(v, dtype=np.int64)
    # closure: v_{r-1} -> v_0 and v_0 -> v_1 must satisfy the same relation
    close1 = (-s[r - 1]) * rays[r - 1] - rays[r - 2]
    close2 = (-s[0]) * rays[0] - rays[r - 1]
    if not (np.array_equal(close1, rays[0]) and np.array_equal(close2, rays[1])):
        raise ValueError(f"self-intersection cycle {s} does not close into a smooth complete fan")
    return rays


def self_intersections_from_rays(rays) -> np.ndarray:
    """D_i² ``(r,)`` from rays ``(r, 2)``: v_{i-1} + v_{i+1} = -D_i² v_i. Checks smoothness.

    Raises ValueError when adjacent rays do not span Z² with det = +1 (not smooth or not
    counter-clockwise) or when v_{i-1} + v_{i+1} is not a multiple of v_i.
    """
    v = np.asarray(rays, dtype=np.int64)
    r = len(v)
    out = np.empty(r, dtype=np.int64)
    for i in range(r):
        prev, cur, nxt = v[i - 1], v[i], v[(i + 1) % r]
        det = cur[0] * nxt[1] - cur[1] * nxt[0]
        if det != 1:
            raise ValueError(f"rays {i},{(i + 1) % r} have det {det}, expected 1 (smooth, ccw)")
        w = prev + nxt
        # w = a * cur with a integer; cur is primitive
        k = 0 if cur[0] != 0 else 1
        a = w[k] // cur[k]
        if not np.array_equal(a * cur, w):
            raise ValueError(f"v_{i-1} + v_{i+1} = {w} is not a multiple of v_{i} = {cur}")
        out[i] = -a
    return out


def blow_up_cycle(self_int, i: int) -> tuple[int, ...]:
    """Blow up the torus-fixed point between curves i and i+1 (cyclic); returns the new cycle.

    The new curve (self-intersection -1) is inserted after position i; D_i² and D_{i+1}² drop by 1.
    """
    s = list(int(x) for x in self_int)
    r = len(s)
    if not 0 <= i < r:
        raise ValueError(f"blow-up position i={i} outside [0, {r})")
    j = (i + 1) % r
    s[i] -= 1
    s[j] -= 1
    return tuple(s[: i + 1] + [-1] + s[i + 1 :])


def blow_up_rays(rays, i: int) -> np.ndarray:
    """Insert v_i + v_{i+1} after ray i; rays ``(r, 2)`` -> ``(r + 1, 2)``."""
    v = np.asarray(rays, dtype=np.int64)
    j = (i + 1) % len(v)
    return np.insert(v, i + 1, v[i] + v[j], axis=0)


def p2_cycle() -> tuple[int, ...]:
    """P²: rays (1,0), (0,1), (-1,-1); three lines of self-intersection +1."""
    return (1, 1, 1)


def hirzebruch_cycle(n: int) -> tuple[int, ...]:
    """F_n: rays (1,0), (0,1), (-1,n), (0,-1); self-intersections (0, n, 0, -n)."""
    if n < 0:
        raise ValueError(f"Hirzebruch index n={n} must be >= 0")
    return (0, n, 0, -n)


@dataclass(frozen=True)
class Geometry:
    """One smooth complete toric surface.

    Attributes: ``self_int`` the canonical cycle of self-intersections ``(r,)``; ``rays`` the fan
    ``(r, 2)``; ``h11`` = r - 2; ``n_moduli`` = clip(h11, 2, 32); ``gid`` an integer id.
    """

    gid: int
    self_int: tuple[int, ...]

    @property
    def n_rays(self) -> int:
        return len(self.self_int)

    @property
    def h11(self) -> int:
        return len(self.self_int) - 2

    @property
    def n_moduli(self) -> int:
        return int(np.clip(self.h11, MIN_MODULI, MAX_MODULI))

    @property
    def rays(self) -> np.ndarray:
        return rays_from_self_intersections(self.self_int)


def enumerate_toric_surfaces(
    max_rays: int, min_self_intersection: int = MIN_SELF_INTERSECTION
) -> list[Geometry]:
    """All smooth complete toric surfaces with <= ``max_rays`` rays and every D² >= bound.

    Breadth-first over the number of rays from P² and F_0..F_{-bound}, deduplicated up to
    rotation/reflection of the self-intersection cycle. ``max_rays`` must be in [3, 40]
    (the count grows roughly geometrically with the number of rays).
    Returns geometries sorted by (n_rays, cycle), ids 0..N-1.
    """
    if not 3 <= max_rays <= 40:
        raise ValueError(f"max_rays={max_rays} outside the allowed range [3, 40]")
    if min_self_intersection > -1:
        raise ValueError(f"min_self_intersection={min_self_intersection} must be <= -1")
    seeds = {canonical_cycle(p2_cycle())}
    seeds |= {canonical_cycle(hirzebruch_cycle(n)) for n in range(0, -min_self_intersection + 1)}
    by_rays: dict[int, set[tuple[int, ...]]] = {}
    for s in seeds:
        if len(s) <= max_rays:
            by_rays.setdefault(len(s), set()).add(s)
    for r in range(3, max_rays):
        for s in sorted(by_rays.get(r, ())):
            for i in range(r):
                t = blow_up_cycle(s, i)
                if min(t) >= min_self_intersection:
                    by_rays.setdefault(r + 1, set()).add(canonical_cycle(t))
    cycles = sorted((c for level in by_rays.values() for c in level), key=lambda c: (len(c), c))
    return [Geometry(gid=k, self_int=c) for k, c in enumerate(cycles)]


def count_by_rays(geometries: list[Geometry]) -> dict[int, int]:
    """Number of geometries per number of rays."""
    out: dict[int, int] = {}
    for g in geometries:
        out[g.n_rays] = out.get(g.n_rays, 0) + 1
    return dict(sorted(out.items()))


def cycle_graph(geometry: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """The fan's cycle graph: node features ``(r, 1)`` = D_i² (float) and edges ``(2, 2r)`` (both
    directions, int64) between adjacent rays."""
    r = geometry.n_rays
    idx = np.arange(r)
    src = np.concatenate([idx, (idx + 1) % r])
    dst = np.concatenate([(idx + 1) % r, idx])
    x = np.asarray(geometry.self_int, dtype=float)[:, None]
    return x, np.stack([src, dst]).astype(np.int64)
