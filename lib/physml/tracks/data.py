"""Training data: initial states inside the acceptance, RK4 ground-truth endpoints, .npz shards.

A sample is (x, y, tx, ty, q/p) at z_start, a distance dz (mm) and the state at z_start + dz.
Initial states: x, y uniform in +-``xy_half_mm`` around the beam line, tx, ty uniform in
+-``slope_max``, p log-uniform in ``p_range_gev``, both charges equally. dz uniform in
``dz_range_mm`` (or drawn from a fixed list of ``planes_mm``).

Acceptance after propagation (documented choice; the issue is silent): a track is kept only if it
reaches its end plane going forward (|tx|, |ty| <= ``max_final_slope``) and stays inside the
field map (|x|, |y| < ``max_final_xy_mm``). With ~4 T m, tracks below ~1.3-2 GeV (depending on
their initial slope and charge) curl up or leave sideways, so the *accepted* low-momentum subset
starts above 0.5 GeV; :func:`generate` reports the acceptance per momentum range.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from physml.parallel import map_tasks
from physml.paths import artifacts_dir
from physml.tracks.field import DipoleMagnet, GaussianField, default_field
from physml.tracks.propagate import propagate_to

MOMENTUM_RANGES = {"low": (0.5, 5.0), "mid": (5.0, 20.0), "high": (20.0, 100.0),
                   "full": (0.5, 100.0)}


@dataclass(frozen=True)
class DatasetSpec:
    """What to generate. Lengths in mm, momenta in GeV. ``field_model``: "default" (magpylib map) or
    "gaussian" (analytic). ``step_mm``: RK4 step of the ground truth (None: the default)."""

    n_tracks: int = 10_000
    seed: int = 0
    p_range_gev: tuple[float, float] = (0.5, 100.0)
    slope_max: float = 0.3
    xy_half_mm: float = 50.0
    z_start_mm: float = 0.0
    dz_range_mm: tuple[float, float] = (500.0, 12000.0)
    planes_mm: tuple[float, ...] | None = None
    max_final_slope: float = 1.0
    max_final_xy_mm: float = 3900.0
    field_model: str = "default"
    step_mm: float | None = None
    shard_size: int = 20_000
    magnet: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        lo, hi = self.p_range_gev
        checks = [
            (self.n_tracks >= 1, f"n_tracks = {self.n_tracks}, expected >= 1"),
            (0 < lo < hi, f"p_range_gev = {self.p_range_gev}, expected 0 < low < high"),
            (0 < self.slope_max < 1, f"slope_max = {self.slope_max}, expected in (0, 1)"),
            (0 < self.dz_range_mm[0] <= self.dz_range_mm[1],
             f"dz_range_mm = {self.dz_range_mm}, expected 0 < low <= high"),
            (self.field_model in ("default", "gaussian"),
             f"field_model = {self.field_model!r}, expected 'default' or 'gaussian'"),
            (self.shard_size >= 1, f"shard_size = {self.shard_size}, expected >= 1"),
        ]
        bad = [msg for ok, msg in checks if not ok]
        if bad:
            raise ValueError("DatasetSpec: " + "; ".join(bad))

    def key(self) -> str:
        """Short hash identifying the dataset (its cache folder name). For the magpylib map it
        includes the magnet's own key (:meth:`DipoleMagnet.key`), so a dataset made with one
        default magnet is never reused when the default changes."""
        payload = asdict(self)
        if self.field_model == "default":
            payload["magnet_key"] = DipoleMagnet(**self.magnet).key()
        return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]

    def make_field(self):
        if self.field_model == "gaussian":
            return GaussianField()
        return default_field(DipoleMagnet(**self.magnet))


def sample_initial_states(n: int, rng: np.random.Generator, spec: DatasetSpec):
    """Draw n initial states (n, 5) and distances dz (n,) in mm, per ``spec``."""
    lo, hi = np.log(spec.p_range_gev[0]), np.log(spec.p_range_gev[1])
    p = np.exp(rng.uniform(lo, hi, n))
    q = rng.choice(np.array([-1.0, 1.0]), n)
    states = np.stack([
        rng.uniform(-spec.xy_half_mm, spec.xy_half_mm, n),
        rng.uniform(-spec.xy_half_mm, spec.xy_half_mm, n),
        rng.uniform(-spec.slope_max, spec.slope_max, n),
        rng.uniform(-spec.slope_max, spec.slope_max, n),
        q / p,
    ], 1)
    if spec.planes_mm:
        dz = rng.choice(np.asarray(spec.planes_mm, dtype=np.float64), n)
    else:
        dz = rng.uniform(*spec.dz_range_mm, n)
    return states, dz


def accepted(final: np.ndarray, spec: DatasetSpec) -> np.ndarray:
    """Boolean (n,): the end state is finite, forward-going and inside the map (see module doc)."""
    ok = np.all(np.isfinite(final), axis=1)
    with np.errstate(invalid="ignore"):
        ok &= np.all(np.abs(final[:, 2:4]) <= spec.max_final_slope, axis=1)
        ok &= np.all(np.abs(final[:, 0:2]) < spec.max_final_xy_mm, axis=1)
    return ok


def make_shard(task: tuple[DatasetSpec, int, int]) -> dict:
    """Generate one shard: task = (spec, shard_index, n). Returns arrays initial (n, 5), dz (n,),
    final (n, 5) and the counts drawn / accepted. Seeded by (spec.seed, shard_index)."""
    spec, index, n = task
    rng = np.random.default_rng([spec.seed, index])
    fld = spec.make_field()
    keep_i, keep_dz, keep_f = [], [], []
    drawn = 0
    got = 0
    while got < n:
        m = max(int(1.5 * (n - got)), 64)
        s, dz = sample_initial_states(m, rng, spec)
        fin = propagate_to(s, spec.z_start_mm, spec.z_start_mm + dz, fld, step_mm=spec.step_mm)
        ok = accepted(fin, spec)
        drawn += m
        keep_i.append(s[ok])
        keep_dz.append(dz[ok])
        keep_f.append(fin[ok])
        got += int(ok.sum())
        if drawn > 50 * n:
            raise RuntimeError(f"make_shard: acceptance {got}/{drawn} is too low for {spec}")
    return {"initial": np.concatenate(keep_i)[:n], "dz": np.concatenate(keep_dz)[:n],
            "final": np.concatenate(keep_f)[:n], "drawn": drawn, "accepted": got}


def dataset_dir(spec: DatasetSpec) -> Path:
    return artifacts_dir("tracks", "data", spec.key())


def generate(spec: DatasetSpec, workers: int | None = None, scheduler: str | None = None) -> Path:
    """Generate (or find cached) shards for ``spec`` under artifacts/tracks/data/<key>/.

    Shards of ``spec.shard_size`` tracks are independent tasks run by
    :func:`physml.parallel.map_tasks` (serial, a local Dask cluster with ``workers``, or an
    existing cluster at ``scheduler``). Returns the folder; ``meta.json`` there records the spec
    and the acceptance (accepted / drawn).
    """
    out = dataset_dir(spec)
    meta_path = out / "meta.json"
    if meta_path.is_file():
        return out
    sizes = [spec.shard_size] * (spec.n_tracks // spec.shard_size)
    if spec.n_tracks % spec.shard_size:
        sizes.append(spec.n_tracks % spec.shard_size)
    tasks = [(spec, i, n) for i, n in enumerate(sizes)]
    shards = map_tasks(make_shard, tasks, workers=workers, scheduler=scheduler)
    drawn = accepted_n = 0
    for i, sh in enumerate(shards):
        np.savez(out / f"shard_{i:04d}.npz", initial=sh["initial"], dz=sh["dz"], final=sh["final"])
        drawn += sh["drawn"]
        accepted_n += sh["accepted"]
    meta = {"spec": asdict(spec), "n_shards": len(shards), "drawn": drawn,
            "accepted": accepted_n, "acceptance": accepted_n / drawn}
    tmp = meta_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=1))
    tmp.replace(meta_path)
    return out


def load(path: str | Path) -> dict:
    """Concatenate the shards of a dataset folder: dict initial (n, 5), dz (n,), final (n, 5)."""
    path = Path(path)
    files = sorted(path.glob("shard_*.npz"))
    if not files:
        raise FileNotFoundError(f"{path}: no shard_*.npz files (run tracks.data.generate first)")
    parts = [np.load(f) for f in files]
    return {k: np.concatenate([p[k] for p in parts]) for k in ("initial", "dz", "final")}


def get(spec: DatasetSpec, workers: int | None = None, scheduler: str | None = None) -> dict:
    """:func:`generate` then :func:`load`."""
    return load(generate(spec, workers=workers, scheduler=scheduler))


def momentum_subset(data: dict, name_or_range) -> dict:
    """Rows whose p = 1/|q/p| lies in a named range of :data:`MOMENTUM_RANGES` or (lo, hi) GeV."""
    lo, hi = (MOMENTUM_RANGES[name_or_range] if isinstance(name_or_range, str)
              else name_or_range)
    p = 1.0 / np.abs(data["initial"][:, 4])
    m = (p >= lo) & (p < hi)
    return {k: v[m] for k, v in data.items()}


def split(data: dict, fractions=(0.8, 0.1, 0.1), rng: np.random.Generator | None = None):
    """Split into train/val/test by track (every sample is an independent track, so splitting
    tracks cannot leak). Returns three dicts."""
    if rng is None:
        raise ValueError("split: pass rng (a numpy Generator) — randomness is explicit")
    n = data["initial"].shape[0]
    perm = rng.permutation(n)
    a = int(fractions[0] * n)
    b = a + int(fractions[1] * n)
    idx = (perm[:a], perm[a:b], perm[b:])
    return tuple({k: v[i] for k, v in data.items()} for i in idx)
