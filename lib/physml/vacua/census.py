"""The census of toric bases for 6-D F-theory (Morrison & Taylor, arXiv:1204.0283: 61,539).

A smooth complete toric surface B is a *good base* when the generic Weierstrass model
y² = x³ + f x + g over it (f ∈ H⁰(−4K), g ∈ H⁰(−6K)) has no point or curve where
(ord f, ord g) >= (4, 6). Everything follows from the cycle of self-intersections s_i = D_i²:

* Vanishing orders along the toric curves. The fixed part Σ a_i D_i of |−nK| (n = 4 for f,
  6 for g) is the smallest a >= 0 with (−nK − Σ a_j D_j)·D_i >= 0 on every curve of negative
  self-intersection, i.e. a_i >= ⌈(a_{i−1} + a_{i+1} − n(2 + s_i)) / (−s_i)⌉, raised until stable.
  On a toric surface the remainder is nef, hence base-point free, so these a_i are the exact
  orders of the generic f, g (a −12 curve gets (4, 5), a −3 curve next to a −2 curve (2, 3), …).
  If the remainder is negative on a curve with s_i >= 0, −nK has no such section: no model.
* (4, 6) curve: a_i(f) >= 4 and a_i(g) >= 6. Blowing up points only shrinks the linear systems,
  so such a curve never goes away (nor does "no model"): the search prunes these surfaces.
* (4, 6) torus-fixed point D_i ∩ D_{i+1}: a_i + a_{i+1} >= 4 for f and >= 6 for g. Only
  blowing up that very point can remove it (multiplicities only grow under other blow-ups, and
  blow-ups at distinct points commute), so such a surface is a stepping stone whose one child
  has all its (4, 6) points blown up at once; it is not counted.
* (4, 6) point inside a curve (not torus-fixed): the residual f, g restricted to D_i have
  deg_n = (−nK − Σ a_j D_j)·D_i generic zeros in the open orbit, at distinct points for f and g.
  When (a_f >= 4, a_g = 5) every one of the deg_g zeros of g is a (4, 6) point, and when
  (a_f = 3, a_g >= 6) every one of the deg_f zeros of f is — e.g. an isolated −11, −10, −9 curve
  carries 1, 2, 3 of them. Each is removed by one (non-toric) blow-up of a generic point of
  D_i, which lowers D_i² by one and leaves a (0, 0) exceptional −1 curve (an isolated −9,
  −10, −11 curve ends up as a −12 curve). Such a surface is counted as a base whose h^{1,1}
  is raised by the number of these points — the convention that reproduces Morrison &
  Taylor's count and T range exactly (inferred from that agreement and from their T = 193
  base, which needs it; the paper's text was not available here):

      T = (number of rays) − 3 + (number of non-toric (4, 6) points).

  (Their T = 193 base has 194 rays: a 0-curve and the chain −12//−11//−12//…//−12//−11//−12
  of 17 e8 curves joined by −1,−2,−2,−3,−1,−5,−1,−3,−2,−2,−1 — two −11 curves, one point each.)

Every smooth complete toric surface is a chain of toric blow-ups of P² or some F_m (Oda). A
surface is *dead* if it has a (4, 6) curve or no Weierstrass model (then so is every blow-up),
a *stepping stone* if it has a torus-fixed (4, 6) point (its one child blows them all up), and
a *good base* otherwise. The breadth-first search from P², F_0 … F_12 over the number of rays
therefore reaches every good base; it ends by itself (at 194 rays: no surface with 195 rays
survives). Surfaces are identified up to GL(2, Z), i.e. up to rotation and reflection of the
cycle. The kernels are compiled with numba; a level of the search is processed as one integer
array.

Status against the published census (measured, notebook 06): 61,539 good bases with
T = 0 … 193, equal to Morrison & Taylor's count and range. Of those, 34,868 need no
non-toric blow-up; the other 26,671 carry −9/−10/−11-type curves (the previous version of
this module left them out, which lost the whole T > 129 tail).
"""

from __future__ import annotations

import time

import numba
import numpy as np
import pandas as pd

#: Morrison & Taylor's published census (arXiv:1204.0283): bases, range of T = h^{1,1} − 1
PUBLISHED_COUNT = 61_539
PUBLISHED_T_MAX = 193

#: the e8 link between two −12 (or −11) curves in the long chains of large-T bases
E8_LINK = (-1, -2, -2, -3, -1, -5, -1, -3, -2, -2, -1)


def t193_cycle() -> tuple[int, ...]:
    """The toric cycle ``(194,)`` of the published T = 193 base: a 0-curve, then
    −12//−11//−12//…//−12//−11//−12 (17 e8 curves, "//" = :data:`E8_LINK`)."""
    big = [-12, -11] + [-12] * 13 + [-11, -12]
    out = [0]
    for k, b in enumerate(big):
        out.append(b)
        if k < len(big) - 1:
            out += E8_LINK
    return tuple(out)

DEAD, STEPPING_STONE, GOOD = 0, 1, 2


@numba.njit(cache=True)
def _least_rotation(s):
    n = s.shape[0]
    i, j, k = 0, 1, 0
    while i < n and j < n and k < n:
        a = s[(i + k) % n]
        b = s[(j + k) % n]
        if a == b:
            k += 1
            continue
        if a > b:
            i = i + k + 1
        else:
            j = j + k + 1
        if i == j:
            j += 1
        k = 0
    return min(i, j)


@numba.njit(cache=True)
def _canonical_into(s, out):
    """Write the lexicographically smallest rotation/reflection of cycle ``s`` into ``out``."""
    n = s.shape[0]
    rev = s[::-1].copy()
    i = _least_rotation(s)
    j = _least_rotation(rev)
    use_rev = False
    for k in range(n):
        a = s[(i + k) % n]
        b = rev[(j + k) % n]
        if a != b:
            use_rev = b < a
            break
    for k in range(n):
        out[k] = rev[(j + k) % n] if use_rev else s[(i + k) % n]


@numba.njit(cache=True)
def canonical_rows(cycles):
    """Canonical form of every row of ``cycles`` ``(m, r)`` (int8)."""
    out = np.empty_like(cycles)
    for k in range(cycles.shape[0]):
        _canonical_into(cycles[k], out[k])
    return out


@numba.njit(cache=True)
def _fixed_part(s, n):
    """Orders a ``(r,)`` of the generic section of −nK along every toric curve, and whether
    −nK has sections at all (False when the remainder is negative on a curve with s_i >= 0)."""
    return _fixed_part_from(s, n, np.zeros(s.shape[0], np.int64))


@numba.njit(cache=True)
def _fixed_part_from(s, n, a):
    """:func:`_fixed_part` started from lower bounds ``a`` ``(r,)`` (modified in place): the
    iteration only raises orders, so any lower bound gives the same fixed point."""
    r = s.shape[0]
    changed = True
    sweeps = 0
    while changed and sweeps < 10_000:
        changed = False
        sweeps += 1
        for i in range(r):
            if s[i] < 0:
                need = a[(i - 1) % r] + a[(i + 1) % r] - n * (2 + s[i])
                m = -s[i]
                lo = -((-need) // m)  # ceil(need / m)
                if lo > a[i]:
                    a[i] = lo
                    changed = True
    ok = True
    for i in range(r):
        if s[i] >= 0:
            if n * (2 + s[i]) - a[(i - 1) % r] - a[(i + 1) % r] - a[i] * s[i] < 0:
                ok = False
    return a, ok


@numba.njit(cache=True)
def _bad_sites(s):
    """Bad sites of cycle ``s``: (torus-fixed (4, 6) points, non-toric (4, 6) points);
    (−1, −1) when the surface is dead ((4, 6) curve or no Weierstrass model)."""
    af, okf = _fixed_part(s, 4)
    ag, okg = _fixed_part(s, 6)
    return _bad_sites_given(s, af, okf, ag, okg)


@numba.njit(cache=True)
def _points_per_curve(s, af, ag):
    """Number of non-toric (4, 6) points on every curve ``(r,)`` (orders ``af``, ``ag``)."""
    r = s.shape[0]
    out = np.zeros(r, np.int64)
    for i in range(r):
        j = (i + 1) % r
        deg_f = 4 * (2 + s[i]) - af[(i - 1) % r] - af[j] - af[i] * s[i]
        deg_g = 6 * (2 + s[i]) - ag[(i - 1) % r] - ag[j] - ag[i] * s[i]
        if af[i] >= 4 and ag[i] == 5 and deg_g > 0:
            out[i] = deg_g
        elif af[i] == 3 and ag[i] >= 6 and deg_f > 0:
            out[i] = deg_f
    return out


@numba.njit(cache=True)
def _bad_sites_given(s, af, okf, ag, okg):
    r = s.shape[0]
    if not (okf and okg):
        return -1, -1
    for i in range(r):
        if af[i] >= 4 and ag[i] >= 6:
            return -1, -1
    toric = 0
    for i in range(r):
        j = (i + 1) % r
        if af[i] + af[j] >= 4 and ag[i] + ag[j] >= 6:
            toric += 1
    return toric, _points_per_curve(s, af, ag).sum()


@numba.njit(cache=True)
def bad_sites_rows(cycles):
    """:func:`_bad_sites` of every cycle ``(m, r)``: ``(m, 2)`` int64 (torus-fixed, non-toric
    (4, 6) points); −1 = dead, (0, k) = good base with T = r − 3 + k."""
    out = np.empty((cycles.shape[0], 2), np.int64)
    for k in range(cycles.shape[0]):
        t, o = _bad_sites(cycles[k].astype(np.int64))
        out[k, 0] = t
        out[k, 1] = o
    return out


def status_rows(cycles) -> np.ndarray:
    """Status ``(m,)`` of every cycle ``(m, r)``: 0 dead ((4, 6) curve or no Weierstrass
    model), 1 stepping stone (a torus-fixed (4, 6) point), 2 good base (possibly with
    non-toric (4, 6) points, which count towards T)."""
    b = bad_sites_rows(np.ascontiguousarray(cycles))
    dead = b[:, 0] < 0
    good = b[:, 0] == 0
    return np.where(dead, DEAD, np.where(good, GOOD, STEPPING_STONE)).astype(np.int8)


def tensor_count(cycle) -> int:
    """T = h^{1,1} − 1 of the base of a good cycle ``(r,)``: r − 3 plus its non-toric (4, 6)
    points; raises ValueError when the cycle is not a good base."""
    s = np.asarray(cycle, np.int64)
    t, o = _bad_sites(s)
    if t != 0:
        raise ValueError(f"cycle {tuple(int(x) for x in s)} is not a good base "
                         f"({'dead' if t < 0 else f'{t} torus-fixed (4, 6) points'})")
    return len(s) - 3 + int(o)


def blown_up_self_intersections(cycle) -> np.ndarray:
    """Self-intersections ``(r,)`` of the toric curves of a good cycle after the non-toric
    blow-ups of its (4, 6) points (D_i² minus the points on D_i)."""
    s = np.asarray(cycle, np.int64)
    af, okf = _fixed_part(s, 4)
    ag, okg = _fixed_part(s, 6)
    if _bad_sites_given(s, af, okf, ag, okg)[0] != 0:
        raise ValueError(f"cycle {tuple(int(x) for x in s)} is not a good base")
    return s - _points_per_curve(s, af, ag)


@numba.njit(cache=True)
def _blow_up_many(s, af, ag, points, n_points):
    """Blow up the torus-fixed points D_i ∩ D_{i+1} for the ``n_points`` positions i in
    ``points`` (sorted) at once; returns the cycle and lower bounds of its orders."""
    r = s.shape[0]
    rr = r + n_points
    out = np.empty(rr, np.int64)
    bf = np.empty(rr, np.int64)
    bg = np.empty(rr, np.int64)
    pos = np.empty(r, np.int64)  # new position of old curve q
    q_new = 0
    p = 0
    for q in range(r):
        pos[q] = q_new
        out[q_new] = s[q]
        bf[q_new] = af[q]
        bg[q_new] = ag[q]
        q_new += 1
        if p < n_points and points[p] == q:
            j = (q + 1) % r
            out[q_new] = -1
            bf[q_new] = max(0, af[q] + af[j] - 4)
            bg[q_new] = max(0, ag[q] + ag[j] - 6)
            q_new += 1
            p += 1
    for p in range(n_points):
        q = points[p]
        out[pos[q]] -= 1
        out[pos[(q + 1) % r]] -= 1
    return out, bf, bg


@numba.njit(cache=True)
def _alive_children(cycles):
    """The blow-ups of every cycle ``(m, r)`` that are not dead, canonicalised and padded
    with 0 to width 2r: ``(k, 2r)`` int8, their numbers of rays ``(k,)`` and (4, 6) point
    counts (torus-fixed, non-toric) ``(k, 2)``.

    A torus-fixed (4, 6) point survives every blow-up elsewhere and blow-ups at distinct points
    commute, so a surface with such points has one child: all of them blown up at once. Any
    other surface has one child per torus-fixed point. Orders start from the parent's (orders
    along strict transforms only grow; a new curve gets max(0, a_i + a_{i+1} − n)), so the
    fixed-point iteration is short.
    """
    m, r = cycles.shape
    out = np.zeros((m * r, 2 * r), cycles.dtype)
    nrays = np.empty(m * r, np.int64)
    bad = np.empty((m * r, 2), np.int64)
    points = np.empty(r, np.int64)
    k_out = 0
    for k in range(m):
        s = cycles[k].astype(np.int64)
        pf, _ = _fixed_part(s, 4)
        pg, _ = _fixed_part(s, 6)
        n_forced = 0
        for i in range(r):
            j = (i + 1) % r
            if pf[i] + pf[j] >= 4 and pg[i] + pg[j] >= 6:
                points[n_forced] = i
                n_forced += 1
        n_children = 1 if n_forced > 0 else r
        for c in range(n_children):
            if n_forced == 0:
                points[0] = c
                buf, af, ag = _blow_up_many(s, pf, pg, points, 1)
            else:
                buf, af, ag = _blow_up_many(s, pf, pg, points, n_forced)
            af2, okf = _fixed_part_from(buf, 4, af)
            ag2, okg = _fixed_part_from(buf, 6, ag)
            t, o = _bad_sites_given(buf, af2, okf, ag2, okg)
            if t >= 0:
                rr = buf.shape[0]
                tmp = np.empty(rr, cycles.dtype)
                _canonical_into(buf.astype(cycles.dtype), tmp)
                out[k_out, :rr] = tmp
                nrays[k_out] = rr
                bad[k_out, 0] = t
                bad[k_out, 1] = o
                k_out += 1
    return out[:k_out], nrays[:k_out], bad[:k_out]


def _unique_index(a: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of every distinct row of ``a`` ``(m, r)``, in order."""
    if len(a) == 0:
        return np.zeros(0, np.int64)
    v = np.ascontiguousarray(a).view(np.dtype((np.void, a.dtype.itemsize * a.shape[1])))
    _, idx = np.unique(v.ravel(), return_index=True)
    return np.sort(idx)


def _unique_rows(a: np.ndarray) -> np.ndarray:
    return a[_unique_index(a)]


def seeds() -> dict[int, np.ndarray]:
    """P² (3 rays) and F_0 … F_12 (4 rays) as canonical cycles, by number of rays."""
    p2 = np.array([[1, 1, 1]], np.int8)
    fm = np.array([[0, m, 0, -m] for m in range(13)], np.int8)
    return {3: canonical_rows(p2), 4: _unique_rows(canonical_rows(fm))}


def _level_task(cycles):
    return _alive_children(cycles)


def enumerate_bases(max_rays: int = 400, workers: int | None = None,
                    scheduler: str | None = None, chunk_rows: int = 20_000,
                    keep_cycles: bool = False, on_level=None) -> tuple[pd.DataFrame, dict]:
    """Breadth-first census of good toric bases with at most ``max_rays`` rays (3 … 400).

    Level r holds every surface with r rays that is not dead: good bases and stepping stones
    (torus-fixed (4, 6) points). Its blow-ups (:func:`_alive_children`) are generated, judged
    and canonicalised in chunks of ``chunk_rows`` surfaces, serially or on a Dask cluster
    (``workers`` / ``scheduler``, :mod:`physml.parallel`), then filed under their number of
    rays and deduplicated. The search stops when a level is empty or at ``max_rays``.

    Returns ``(per_level, extra)``: ``per_level`` has one row per number of rays (rays, good
    bases, of which with non-toric (4, 6) points, stepping stones, seconds);
    ``extra["by_T"]`` one row per T = rays − 3 + non-toric points (T, bases, of which with
    non-toric points); ``extra["exhausted"]`` is True when the search ended by itself (no
    surface survives at the next number of rays) rather than at the cap;
    ``extra["cycles"]`` lists the good cycles when ``keep_cycles``. ``on_level(row)`` is called
    after each level (progress reporting).
    """
    from physml.parallel import map_tasks

    if not 3 <= max_rays <= 400:
        raise ValueError(f"max_rays={max_rays} outside [3, 400]")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows={chunk_rows} must be >= 1")
    pending: dict[int, list] = {}
    for rr, cyc in seeds().items():
        pending.setdefault(rr, []).append((cyc, bad_sites_rows(cyc)))
    rows, good_cycles, by_t, by_t_nt = [], [], {}, {}
    truncated = False
    for r in range(3, max_rays + 1):
        if not pending:
            break
        t0 = time.perf_counter()
        parts = pending.pop(r, [])
        if not parts:
            rows.append(dict(rays=r, good=0, good_non_toric=0, stepping_stones=0,
                             seconds=0.0))
            continue
        level = np.concatenate([p[0] for p in parts])
        bad = np.concatenate([p[1] for p in parts])
        idx = _unique_index(level)
        level, bad = level[idx], bad[idx]
        alive = bad[:, 0] >= 0
        level, bad = level[alive], bad[alive]
        good = bad[:, 0] == 0
        tens = r - 3 + bad[good, 1]
        for tt, cc in zip(*np.unique(tens, return_counts=True), strict=True):
            by_t[int(tt)] = by_t.get(int(tt), 0) + int(cc)
        for tt, cc in zip(*np.unique(tens[bad[good, 1] > 0], return_counts=True), strict=True):
            by_t_nt[int(tt)] = by_t_nt.get(int(tt), 0) + int(cc)
        if keep_cycles:
            good_cycles += [tuple(int(x) for x in c) for c in level[good]]
        if len(level):
            chunks = [level[k:k + chunk_rows] for k in range(0, len(level), chunk_rows)]
            if workers is None and scheduler is None:
                outs = [_alive_children(c) for c in chunks]
            else:
                outs = map_tasks(_level_task, chunks, workers, scheduler)
            kids = np.concatenate([o[0] for o in outs])
            nr = np.concatenate([o[1] for o in outs])
            kb = np.concatenate([o[2] for o in outs])
            truncated |= bool((nr > max_rays).any())
            for rr in np.unique(nr):
                if rr <= max_rays:
                    sel = nr == rr
                    pending.setdefault(int(rr), []).append(
                        (np.ascontiguousarray(kids[sel, :rr]), kb[sel]))
        rows.append(dict(rays=r, good=int(good.sum()),
                         good_non_toric=int((bad[good, 1] > 0).sum()),
                         stepping_stones=int((~good).sum()),
                         seconds=time.perf_counter() - t0))
        if on_level is not None:
            on_level(rows[-1])
    ts = sorted(by_t)
    extra = dict(by_T=pd.DataFrame(dict(T=ts, bases=[by_t[t] for t in ts],
                                        non_toric=[by_t_nt.get(t, 0) for t in ts])),
                 exhausted=not truncated)
    if keep_cycles:
        extra["cycles"] = good_cycles
    return pd.DataFrame(rows), extra


def census_summary(per_level: pd.DataFrame, extra: dict) -> dict:
    """Total good bases, the T range they span, how many need non-toric blow-ups, whether the
    search ended by itself, the published figures and the difference."""
    by_t = extra["by_T"]
    total = int(by_t.bases.sum())
    if total != int(per_level.good.sum()):
        raise ValueError(f"per-T total {total} != per-level total {int(per_level.good.sum())}")
    return dict(toric_bases_count=total, T_min=int(by_t["T"].min()) if total else None,
                T_max=int(by_t["T"].max()) if total else None,
                non_toric_count=int(by_t.non_toric.sum()),
                max_rays=int(per_level.rays[per_level.good > 0].max()) if total else None,
                exhausted=bool(extra["exhausted"]),
                published_count=PUBLISHED_COUNT, difference=total - PUBLISHED_COUNT,
                published_T_max=PUBLISHED_T_MAX, seconds=float(per_level.seconds.sum()))
