"""The 06 benchmark's fit anchor: differential evolution at its best honest configuration, i.e.
in the constrained model's physical box, never in an arbitrary cube of parameter scales."""

import numpy as np
import pytest
from scipy.constants import mu_0

from physml.magnets import benchmark, refit
from physml.magnets.hand import default_hand

SESSION = {"hold_s": 1.0, "repeats": 1}


def _cylinder_moment_Am2(d_m, h_m, br_T):
    """Br/µ0 · volume of a cylinder, written out here (independent of field.cylinder_moment)."""
    return br_T / mu_0 * np.pi * d_m**2 / 4 * h_m


@pytest.fixture(scope="module")
def anchor_and_boxes():
    """bench_fit_anchor on two tiny recordings (L-BFGS runs of 30 iterations passed in) with a
    spy on scipy's differential_evolution that records the bounds every DE run searched."""
    boxes = []
    real = refit.differential_evolution

    def spy(func, bounds, **kw):
        boxes.append(np.asarray(bounds, float))
        return real(func, bounds, **kw)

    from physml.magnets.heldout import fit_seed

    lbfgs = [fit_seed(s, "constrained", session=SESSION, maxiter=30) for s in (0, 1)]
    mp = pytest.MonkeyPatch()
    mp.setattr(refit, "differential_evolution", spy)
    try:
        out = benchmark.bench_fit_anchor([0, 1], session=SESSION, generations=2, popsize=1,
                                         lbfgs_runs=lbfgs)
    finally:
        mp.undo()
    return out, boxes


def test_fit_anchor_searches_the_physical_box(anchor_and_boxes):
    """Widths of the searched box in physical units (scaled width × the parameter's scale):
    segment lengths 0.7–1.3× the hand's, moments the N48 Ø6×3 mm ±0.1 mm range, offset ±30 µT.
    A ±2-scale cube (the old straw man: width 4 in every scaled coordinate) fails all three."""
    out, boxes = anchor_and_boxes
    assert len(boxes) == 2 and all(r["fit"].model == "constrained" for r in out["runs"]["de_box"])
    # constrained parameters in order: base (5, 3), lengths (5, 2), flexed (5, 2), extended
    # (5, 2), mount 5, tilt 5, moment 5, offset 3 (scales 5 mm, 5 mm, ..., 0.01 A·m², 10 µT)
    lengths, moment, offset = slice(15, 25), slice(55, 60), slice(60, 63)
    hand = default_hand()
    for b in boxes:
        assert b.shape == (63, 2)
        width = b[:, 1] - b[:, 0]
        np.testing.assert_allclose(width[lengths] * 0.005, 0.6 * np.ravel(hand.lengths_m),
                                   rtol=1e-9)
        lo = _cylinder_moment_Am2(0.0059, 0.0029, 1.37)
        hi = _cylinder_moment_Am2(0.0061, 0.0031, 1.42)
        np.testing.assert_allclose(width[moment] * 0.01, hi - lo, rtol=1e-9)
        np.testing.assert_allclose(width[offset] * 10.0, 60.0, rtol=1e-9)


def test_fit_anchor_compares_the_same_seeds_and_reports_both_sides(anchor_and_boxes):
    out, _ = anchor_and_boxes
    assert set(out["runs"]) == {"lbfgs", "de_box"}
    assert all(len(v) == 2 for v in out["runs"].values())
    # two DE generations against 30 L-BFGS iterations from the same nominal hand: L-BFGS
    # removes more of the error, on both seeds
    gain = [lb["fit"].error_reduction - de["fit"].error_reduction
            for lb, de in zip(out["runs"]["lbfgs"], out["runs"]["de_box"], strict=True)]
    assert min(gain) > 0 and out["reduction_gain"].diff.mean == pytest.approx(np.mean(gain))
    figs = benchmark.fit_anchor_figures(out)
    assert set(figs) == {f"{o}_{k}" for o in ("lbfgs", "de_box")
                         for k in ("error_reduction", "seconds", "residual_rms_uT")}
    # each interval within its metric's range: a fraction of the loss removed is at most 1
    for o in ("lbfgs", "de_box"):
        assert out[o]["error_reduction"].high <= 1.0
        assert out[o]["seconds"].low >= 0.0 and out[o]["residual_rms_uT"].low >= 0.0


def test_fit_anchor_rejects_runs_of_another_model():
    from physml.magnets.heldout import fit_seed

    free = [fit_seed(s, "free", session=SESSION, maxiter=5) for s in (0, 1)]
    with pytest.raises(ValueError, match="one constrained fit per seed"):
        benchmark.bench_fit_anchor([0, 1], session=SESSION, lbfgs_runs=free)


def test_physical_box_summary_states_the_box_the_fit_gets():
    b = refit.physical_box_summary(offset_box_uT=25.0)
    assert b["joint_mm"] == pytest.approx(15.0) and b["length_frac"] == pytest.approx(0.3)
    assert b["offset_uT"] == pytest.approx(25.0)
    np.testing.assert_allclose(b["moment_Am2"], [_cylinder_moment_Am2(0.0059, 0.0029, 1.37),
                                                 _cylinder_moment_Am2(0.0061, 0.0031, 1.42)])
    assert "±15 mm" in b["text"] and "±30%" in b["text"] and "±25 µT" in b["text"]
