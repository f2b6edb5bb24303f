"""The study's dipole magnets (magpylib) and the cached maps made from them.

Three designs of :class:`DipoleMagnet`, all built from uniformly polarised magpylib cuboids, so
every map is an exact vacuum field (div B = 0, curl B = 0) wherever there is no source, i.e. in
the whole aperture the tracks cross, before interpolation:

- ``"iron_yoke"`` (the default): an iron-yoke-like window-frame dipole. Two pole pieces above
  and below the aperture, each a row of cuboid segments along z whose faces step outwards with z
  (a wedge-shaped gap, opening at 0.35 per unit z, so the study's tracks, |ty| <= 0.3 at the
  start and steeper in y once bent, stay inside: ``aperture_clearance`` in
  :mod:`physml.tracks.field`). A cuboid polarised along y is a magnetic charge sheet on its two
  y faces (none on the others), so each segment puts a uniform charge density on its stretch of
  pole face: together a piecewise-constant pole-face charge. A high-permeability pole face
  carries a surface charge too (set by the face being an equipotential: larger towards its
  edges and where the gap is wider), which a piecewise-constant one approximates. Here the
  segment polarisations are *fitted* instead (non-negative least squares with a smoothness
  penalty) so that By is uniform in a box around the magnet centre and the field integral is
  uniform across the aperture, the way pole profiling and shims make a real iron magnet
  uniform. This is a surrogate of iron, not a solution for it (no permeability, no saturation,
  no return yoke: the far faces of the thick pole blocks carry the return charge). The field is
  scaled so that the on-axis integral of By over the map's z range is ``integral_tesla_m``.
- ``"air_core"`` (the earlier default, an option by name, :meth:`DipoleMagnet.air_core`): two
  flat racetrack coils above and below the aperture; a uniform current sheet on the side faces of
  a ``W x t x L`` box has exactly the field of a uniformly polarised cuboid (K = J/mu0). Scaled so
  the on-axis By peaks at ``peak_tesla``; far from uniform across the aperture.
- ``"iron_poles"`` (:meth:`DipoleMagnet.iron_poles`): the same two-block model with the geometry
  of short iron poles (uniform in field integral, not pointwise).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from functools import lru_cache

import numpy as np

from physml.paths import artifacts_dir, locked
from physml.tracks.fieldbase import as_points
from physml.tracks.grid import GridField

MU0 = 4e-7 * np.pi  # T m / A
DESIGNS = ("iron_yoke", "air_core", "iron_poles")
_CHUNK = 50_000  # points per magpylib call

# fields of DipoleMagnet used by each design (the cache key hashes only these)
_GRID_FIELDS = ("z_center_mm", "half_width_mm", "z_min_mm", "z_max_mm", "spacing_mm")
_TWO_BLOCK_FIELDS = ("coil_length_z_mm", "coil_width_x_mm", "coil_thickness_mm", "gap_half_mm",
                     "peak_tesla")
_YOKE_FIELDS = ("pole_z_start_mm", "pole_z_end_mm", "pole_segment_mm", "pole_gap_half_min_mm",
                "pole_gap_slope", "pole_gap_margin_mm", "pole_gap_round_mm", "pole_thickness_mm",
                "pole_width_x_mm", "flat_half_xy_mm", "flat_half_z_mm", "fit_smoothness",
                "fit_integral_weight", "integral_tesla_m")


# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DipoleMagnet:
    """A dipole magnet of the study; ``design`` is one of :data:`DESIGNS` (module docstring).

    Lengths in mm, fields in T. Shared: ``z_center_mm`` (magnet centre on the beam line) and the
    map grid ``x, y in +-half_width_mm``, ``z in [z_min_mm, z_max_mm]`` at ``spacing_mm``
    (81 x 81 x 146 nodes at 100 mm, as LHCb's map).

    ``"iron_yoke"`` fields (``pole_*`` and below): poles from ``pole_z_start_mm`` to
    ``pole_z_end_mm`` in segments of ``pole_segment_mm``; the face of the segment ending at z
    sits at ``|y| = max(pole_gap_half_min_mm, pole_gap_slope * z + pole_gap_margin_mm)``
    rounded up to ``pole_gap_round_mm`` (the gap widens with z like LHCb's); each block
    ``pole_width_x_mm`` wide (x) and ``pole_thickness_mm`` thick (y). The segment polarisations
    are fitted so By is uniform over the box ``|x|, |y| <= flat_half_xy_mm``,
    ``|z - z_center_mm| <= flat_half_z_mm`` and the field integral along straight lines
    parallel to z is uniform over ``|x|, |y| <= flat_half_xy_mm`` (``fit_integral_weight``:
    weight of the latter; ``fit_smoothness``: of a penalty on differences of neighbouring
    polarisations), then scaled so ∫By dz on the axis over ``[z_min_mm, z_max_mm]`` is
    ``integral_tesla_m`` (T m).

    ``"air_core"`` / ``"iron_poles"`` fields: two blocks ``coil_width_x_mm`` (x) by
    ``coil_thickness_mm`` (y) by ``coil_length_z_mm`` (z) centred at x = 0, z = ``z_center_mm``,
    occupying ``gap_half_mm <= |y| <= gap_half_mm + coil_thickness_mm``; polarised so the on-axis
    By peaks at ``peak_tesla``.
    """

    design: str = "iron_yoke"
    # two-block designs (air-core coils, short iron poles)
    coil_length_z_mm: float = 3000.0
    coil_width_x_mm: float = 6000.0
    coil_thickness_mm: float = 1000.0
    gap_half_mm: float = 3000.0
    peak_tesla: float = 1.0
    # iron-yoke design
    pole_z_start_mm: float = 2000.0
    pole_z_end_mm: float = 8000.0
    pole_segment_mm: float = 500.0
    pole_gap_half_min_mm: float = 2000.0
    pole_gap_slope: float = 0.35
    pole_gap_margin_mm: float = 250.0
    pole_gap_round_mm: float = 50.0
    pole_thickness_mm: float = 3000.0
    pole_width_x_mm: float = 14000.0
    flat_half_xy_mm: float = 1500.0
    flat_half_z_mm: float = 750.0
    fit_smoothness: float = 0.01
    fit_integral_weight: float = 2.0
    integral_tesla_m: float = 4.0
    # shared
    z_center_mm: float = 5000.0
    half_width_mm: float = 4000.0
    z_min_mm: float = 0.0
    z_max_mm: float = 14500.0
    spacing_mm: float = 100.0

    def __post_init__(self) -> None:
        if self.design not in DESIGNS:
            raise ValueError(f"DipoleMagnet: design = {self.design!r}, expected one of {DESIGNS}")
        if self.design == "iron_yoke":
            checks = [
                (self.pole_z_end_mm > self.pole_z_start_mm,
                 f"pole_z_end_mm = {self.pole_z_end_mm} must exceed pole_z_start_mm = "
                 f"{self.pole_z_start_mm}"),
                (self.pole_segment_mm > 0,
                 f"pole_segment_mm = {self.pole_segment_mm}, expected > 0"),
                (self.pole_gap_half_min_mm > self.flat_half_xy_mm,
                 f"pole_gap_half_min_mm = {self.pole_gap_half_min_mm} must exceed "
                 f"flat_half_xy_mm = {self.flat_half_xy_mm} (the uniform box is in the gap)"),
                (self.pole_thickness_mm > 0 and self.pole_width_x_mm > 0,
                 "pole_thickness_mm and pole_width_x_mm must be > 0"),
                (self.flat_half_z_mm > 0 and self.fit_smoothness >= 0
                 and self.fit_integral_weight >= 0,
                 f"flat_half_z_mm = {self.flat_half_z_mm} (> 0), fit_smoothness = "
                 f"{self.fit_smoothness} (>= 0), fit_integral_weight = "
                 f"{self.fit_integral_weight} (>= 0)"),
                (self.integral_tesla_m > 0, f"integral_tesla_m = {self.integral_tesla_m}, "
                 "expected > 0"),
            ]
            bad = [msg for ok, msg in checks if not ok]
            if bad:
                raise ValueError("DipoleMagnet(design='iron_yoke'): " + "; ".join(bad))

    # ---- named designs ----
    @classmethod
    def air_core(cls, **overrides) -> DipoleMagnet:
        """The air-core window-frame option (the study's earlier default): two flat racetrack
        coils 6 m wide, 1 m thick, 3 m long at |y| >= 3 m, scaled to a 1 T on-axis peak.
        ``overrides``: any other field of :class:`DipoleMagnet`."""
        return cls(**{"design": "air_core", **overrides})

    @classmethod
    def iron_poles(cls, **overrides) -> DipoleMagnet:
        """The short-iron-pole option: the two-block model with the geometry of an iron dipole's
        poles, two blocks 14 m wide (x), 4 m thick, 3.5 m long (z), 2.5 m above and below the
        beam line. Its field integral is uniform to ~2% over |x|, |y| <= 1.5 m, but By at the
        centre plane is not (the poles are shorter than the gap is high).
        ``overrides``: any other field of :class:`DipoleMagnet`."""
        geometry = {"design": "iron_poles", "coil_width_x_mm": 14000.0,
                    "coil_thickness_mm": 4000.0, "gap_half_mm": 2500.0,
                    "coil_length_z_mm": 3500.0}
        return cls(**{**geometry, **overrides})

    def key(self) -> str:
        """Short hash of the parameters the design uses (the cache key of its map). The
        two-block designs hash exactly the fields they had before the iron-yoke design existed,
        so their cached maps stay valid."""
        names = _GRID_FIELDS + (_YOKE_FIELDS if self.design == "iron_yoke" else _TWO_BLOCK_FIELDS)
        d = {k: v for k, v in asdict(self).items() if k in names}
        if self.design == "iron_yoke":
            d["design"] = self.design
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def used_fields(self) -> dict:
        """The fields this design uses (name -> value), e.g. for provenance."""
        names = _GRID_FIELDS + (_YOKE_FIELDS if self.design == "iron_yoke" else _TWO_BLOCK_FIELDS)
        return {"design": self.design, **{f.name: getattr(self, f.name) for f in fields(self)
                                          if f.name in names}}

    # ---- iron-yoke geometry and fit ----
    def pole_segments(self) -> np.ndarray:
        """Iron-yoke pole segments (k, 3) in mm: z start, z end, gap half-height |y| of the face."""
        self._need("iron_yoke", "pole_segments")
        n = max(1, int(round((self.pole_z_end_mm - self.pole_z_start_mm) / self.pole_segment_mm)))
        edges = np.linspace(self.pole_z_start_mm, self.pole_z_end_mm, n + 1)
        g = np.maximum(self.pole_gap_half_min_mm,
                       self.pole_gap_slope * edges[1:] + self.pole_gap_margin_mm)
        g = np.ceil(g / self.pole_gap_round_mm - 1e-9) * self.pole_gap_round_mm
        return np.stack([edges[:-1], edges[1:], g], 1)

    def gap_half_mm_at(self, z_mm) -> np.ndarray:
        """Half-height (mm) of the free gap at z (array): the pole face of the segment covering
        z; ``inf`` outside the poles' z range (no pole there)."""
        self._need("iron_yoke", "gap_half_mm_at")
        z = np.asarray(z_mm, dtype=np.float64)
        seg = self.pole_segments()
        out = np.full(z.shape, np.inf)
        for z0, z1, g in seg:
            out = np.where((z >= z0) & (z <= z1), np.minimum(out, g), out)
        return out

    def _unit_sources(self, polarizations):
        import magpylib as magpy

        mm = 1e-3
        t = self.pole_thickness_mm
        blocks = []
        for (z0, z1, g), j in zip(self.pole_segments(), polarizations, strict=True):
            for s in (1, -1):
                blocks.append(magpy.magnet.Cuboid(
                    dimension=(self.pole_width_x_mm * mm, t * mm, (z1 - z0) * mm),
                    polarization=(0, float(j), 0),
                    position=(0, s * (g + t / 2) * mm, 0.5 * (z0 + z1) * mm)))
        return blocks

    def _segment_by(self, points_mm: np.ndarray) -> np.ndarray:
        """By (n, k) in T at points (n, 3) mm of each segment pair with unit polarisation."""
        import magpylib as magpy

        k = len(self.pole_segments())
        cols = []
        for i in range(k):
            j = np.zeros(k)
            j[i] = 1.0
            pair = [b for b in self._unit_sources(j) if b.polarization[1] != 0]
            cols.append(magpy.getB(pair, points_mm * 1e-3, sumup=True)[:, 1])
        return np.stack(cols, 1)

    def flat_box_points(self, n_xy: int = 7, n_z: int = 5) -> np.ndarray:
        """Points (n_xy² n_z, 3) mm on a grid over the box where By is fitted to be uniform."""
        g = np.linspace(-self.flat_half_xy_mm, self.flat_half_xy_mm, n_xy)
        zs = self.z_center_mm + np.linspace(-self.flat_half_z_mm, self.flat_half_z_mm, n_z)
        return np.stack(np.meshgrid(g, g, zs, indexing="ij"), -1).reshape(-1, 3)

    def pole_polarizations_tesla(self) -> np.ndarray:
        """Fitted polarisation J (k,) in T of each pole segment (same above and below)."""
        self._need("iron_yoke", "pole_polarizations_tesla")
        return _fit_polarizations(self).copy()

    # ---- two-block geometry ----
    def _two_blocks(self, polarization_tesla: float):
        import magpylib as magpy

        mm = 1e-3
        dim = (self.coil_width_x_mm * mm, self.coil_thickness_mm * mm, self.coil_length_z_mm * mm)
        yc = (self.gap_half_mm + self.coil_thickness_mm / 2) * mm
        return [magpy.magnet.Cuboid(dimension=dim, polarization=(0, polarization_tesla, 0),
                                    position=(0, s * yc, self.z_center_mm * mm))
                for s in (1, -1)]

    def polarization_tesla(self) -> float:
        """Two-block designs: the cuboid polarisation J (T) that makes the on-axis By peak at
        ``peak_tesla``."""
        if self.design == "iron_yoke":
            raise ValueError("DipoleMagnet.polarization_tesla: the iron-yoke design has one "
                             "polarisation per pole segment (pole_polarizations_tesla)")
        import magpylib as magpy

        z = np.linspace(self.z_min_mm, self.z_max_mm, 2901)
        pts = np.stack([np.zeros_like(z), np.zeros_like(z), z], 1)
        by = magpy.getB(self._two_blocks(1.0), pts * 1e-3, sumup=True)[:, 1]
        return float(self.peak_tesla / by.max())

    def ampere_turns(self) -> float:
        """Ampere-turns N I (A). Two-block designs: of each coil, K t = J t / mu0. Iron yoke:
        what drives the central field B0 = By(0, 0, z_center) across the gap of an ideal
        (mu -> infinity) yoke, B0 * 2 g / mu0 with g the face half-height at the centre."""
        if self.design == "iron_yoke":
            b0 = self.exact(np.array([[0.0, 0.0, self.z_center_mm]]))[0, 1]
            g = float(self.gap_half_mm_at(self.z_center_mm))
            return float(b0 * 2 * g * 1e-3 / MU0)
        return self.polarization_tesla() * self.coil_thickness_mm * 1e-3 / MU0

    # ---- evaluation ----
    def sources(self) -> list:
        """The magpylib sources (a list of Cuboids, SI units) of the scaled model."""
        if self.design == "iron_yoke":
            return self._unit_sources(_fit_polarizations(self))
        return self._two_blocks(self.polarization_tesla())

    def exact(self, points) -> np.ndarray:
        """magpylib's B (n, 3) in T at points (n, 3) in mm (no interpolation)."""
        import magpylib as magpy

        p = as_points(points)
        src = self.sources()
        out = np.empty((len(p), 3))
        for i in range(0, len(p), _CHUNK):  # bounded memory: magpylib holds (sources, n, 3)
            out[i:i + _CHUNK] = np.asarray(
                magpy.getB(src, p[i:i + _CHUNK] * 1e-3, sumup=True)).reshape(-1, 3)
        return out

    def grid(self) -> GridField:
        """Sample the model on its regular grid (81 x 81 x 146 nodes by default; the iron yoke
        takes ~1 CPU-minute, the two-block designs a few seconds)."""
        h = self.half_width_mm
        n_xy = int(round(2 * h / self.spacing_mm)) + 1
        n_z = int(round((self.z_max_mm - self.z_min_mm) / self.spacing_mm)) + 1
        xs = -h + self.spacing_mm * np.arange(n_xy)
        zs = self.z_min_mm + self.spacing_mm * np.arange(n_z)
        pts = np.stack(np.meshgrid(xs, xs, zs, indexing="ij"), -1).reshape(-1, 3)
        b = self.exact(pts).reshape(n_xy, n_xy, n_z, 3)
        meta = {"source": _SOURCES[self.design], "model": self.used_fields()}
        if self.design == "iron_yoke":
            meta["pole_segments_mm"] = self.pole_segments().tolist()
            meta["pole_polarizations_tesla"] = self.pole_polarizations_tesla().tolist()
        else:
            meta["ampere_turns_per_coil"] = self.ampere_turns()
        return GridField(np.array([-h, -h, self.z_min_mm]), np.full(3, self.spacing_mm), b, meta)

    def _need(self, design: str, what: str) -> None:
        if self.design != design:
            raise ValueError(f"DipoleMagnet.{what}: only for design {design!r}, this magnet is "
                             f"{self.design!r}")


_SOURCES = {"iron_yoke": "magpylib iron-yoke-like dipole (fitted pole-face charge, wedge gap)",
            "air_core": "magpylib air-core window-frame dipole (two flat coils)",
            "iron_poles": "magpylib short iron poles (two polarised blocks)"}


@lru_cache(maxsize=16)
def _fit_polarizations(magnet: DipoleMagnet) -> np.ndarray:
    """Segment polarisations (k,) in T by non-negative least squares (scipy nnls, deterministic).

    Rows: By = 1 at :meth:`DipoleMagnet.flat_box_points`; ``fit_integral_weight`` x the same
    number of rows asking the integral of By along 5 x 5 straight lines parallel to z
    (|x|, |y| <= flat_half_xy_mm, over the map's z range) to equal the on-axis one (in units
    of the effective length); ``fit_smoothness`` x the same number of rows penalising
    differences of neighbouring polarisations. Then scaled so the on-axis integral is
    ``integral_tesla_m``.
    """
    from scipy.optimize import nnls

    pts = magnet.flat_box_points()
    a = magnet._segment_by(pts)
    k = a.shape[1]
    z = np.arange(magnet.z_min_mm, magnet.z_max_mm + 1.0, 20.0)
    g = np.linspace(-magnet.flat_half_xy_mm, magnet.flat_half_xy_mm, 5)
    lines = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    line_pts = np.concatenate([np.stack([np.full_like(z, x), np.full_like(z, y), z], 1)
                               for x, y in lines])
    integ = np.trapezoid(magnet._segment_by(line_pts).reshape(len(lines), z.size, k), z,
                         axis=1)  # (lines, k) T mm per unit polarisation
    on_axis = integ[len(lines) // 2]
    l_eff = on_axis.mean() / a.mean()  # mm
    rows_i = (integ - on_axis) / l_eff * np.sqrt(magnet.fit_integral_weight * len(pts)
                                                 / len(lines))
    rows_d = np.diff(np.eye(k), axis=0) * np.sqrt(magnet.fit_smoothness * len(pts)) * a.mean()
    j, _ = nnls(np.vstack([a, rows_i, rows_d]),
                np.concatenate([np.ones(len(pts)), np.zeros(len(lines) + k - 1)]))
    if not np.any(j > 0):
        raise ValueError(f"DipoleMagnet: the pole fit found no positive polarisation for {magnet}")
    zi = np.arange(magnet.z_min_mm, magnet.z_max_mm + 1.0, 10.0)
    axis = np.stack([0 * zi, 0 * zi, zi], 1)
    integral = np.trapezoid(magnet._segment_by(axis) @ j, zi) / 1000.0  # T m per unit scale
    return j * (magnet.integral_tesla_m / integral)


def default_field(magnet: DipoleMagnet | str | None = None, cache: bool = True) -> GridField:
    """The study's field map: ``magnet`` (default: the iron-yoke :class:`DipoleMagnet`; a
    design name such as ``"air_core"`` for that design's defaults) sampled on its grid
    (81 x 81 x 146 nodes at 100 mm).

    Computed once with magpylib and cached as ``artifacts/tracks/field/dipole_<key>.npz`` keyed
    by the model parameters. Returns a :class:`GridField` (points (n, 3) mm -> B (n, 3) T).
    """
    if magnet is None:
        magnet = DipoleMagnet()
    elif isinstance(magnet, str):
        magnet = DipoleMagnet(design=magnet)
    if not cache:
        return magnet.grid()
    path = artifacts_dir("tracks", "field") / f"dipole_{magnet.key()}.npz"
    with locked(path):  # processes that need the map at once compute it once
        if path.is_file():
            return GridField.load_npz(path)
        grid = magnet.grid()
        tmp = path.with_suffix(".tmp.npz")
        grid.save(tmp)
        tmp.replace(path)
    return grid
