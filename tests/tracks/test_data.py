"""Dataset generation: sampling ranges, acceptance, shards, subsets, splits."""

import numpy as np
import pytest

from physml.tracks import data as D
from physml.tracks.propagate import propagate, propagate_scipy


def test_initial_states_fill_the_acceptance_with_both_charges():
    spec = D.DatasetSpec()
    s, dz = D.sample_initial_states(20000, np.random.default_rng(0), spec)
    assert np.abs(s[:, 2:4]).max() <= 0.3
    p = 1 / np.abs(s[:, 4])
    assert 0.5 <= p.min() and p.max() <= 100
    # log-uniform: the median momentum is the geometric mean of the range
    assert np.median(p) == pytest.approx(np.sqrt(0.5 * 100), rel=0.05)
    assert 0.48 < np.mean(s[:, 4] > 0) < 0.52
    assert 500 <= dz.min() and dz.max() <= 12000


def test_fixed_planes_are_respected():
    spec = D.DatasetSpec(planes_mm=(2000.0, 8500.0))
    _, dz = D.sample_initial_states(500, np.random.default_rng(1), spec)
    assert set(np.unique(dz)) == {2000.0, 8500.0}


def test_generated_shards_match_an_independent_solver_and_are_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("PHYSML_ARTIFACTS", str(tmp_path))
    spec = D.DatasetSpec(n_tracks=300, shard_size=200, field_model="gaussian", seed=3)
    folder = D.generate(spec)
    assert sorted(p.name for p in folder.glob("shard_*.npz")) == ["shard_0000.npz",
                                                                 "shard_0001.npz"]
    d = D.load(folder)
    assert d["initial"].shape == (300, 5) and d["final"].shape == (300, 5)
    assert np.all(D.accepted(d["final"], spec))
    fld = spec.make_field()
    for i in range(3):  # scipy DOP853 per track: independent of the batched RK4
        ref = propagate_scipy(d["initial"][i:i + 1], 0.0, d["dz"][i], fld)
        np.testing.assert_allclose(d["final"][i, :2], ref[0, :2], atol=1e-3)
    again = D.get(spec)
    np.testing.assert_array_equal(again["final"], d["final"])


def test_curling_tracks_are_rejected():
    spec = D.DatasetSpec(field_model="gaussian")
    s = np.array([[0.0, 0, 0.2, 0, -1 / 0.6]])  # 0.6 GeV: Delta sin(theta) ~ 2.2 -> curls up
    fin = propagate(s, 0.0, 8500.0, spec.make_field())
    assert not D.accepted(fin, spec)[0]


def test_momentum_subsets_and_splits_do_not_overlap():
    rng = np.random.default_rng(4)
    s, dz = D.sample_initial_states(1000, rng, D.DatasetSpec())
    d = {"initial": s, "dz": dz, "final": s.copy()}
    parts = [D.momentum_subset(d, k) for k in ("low", "mid", "high")]
    assert sum(len(p["dz"]) for p in parts) == 1000
    assert (1 / np.abs(parts[0]["initial"][:, 4])).max() < 5
    tr, va, te = D.split(d, rng=rng)
    keys = [set(map(tuple, x["initial"].round(12))) for x in (tr, va, te)]
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])


def test_bad_specs_raise():
    with pytest.raises(ValueError, match="p_range_gev"):
        D.DatasetSpec(p_range_gev=(5.0, 1.0))
    with pytest.raises(ValueError, match="field_model"):
        D.DatasetSpec(field_model="real")


def test_dataset_key_follows_the_default_magnet(monkeypatch):
    """A dataset cached for one default magnet is never reused after the default changes: the
    key of ``DatasetSpec()`` (empty ``magnet``) moves with ``DipoleMagnet().key()``; the
    Gaussian field's does not."""
    from physml.tracks import data as D

    before, gauss = D.DatasetSpec().key(), D.DatasetSpec(field_model="gaussian").key()

    class OtherDefault(D.DipoleMagnet):
        def key(self) -> str:
            return "another-magnet"

    monkeypatch.setattr(D, "DipoleMagnet", OtherDefault)
    assert D.DatasetSpec().key() != before
    assert D.DatasetSpec(field_model="gaussian").key() == gauss
