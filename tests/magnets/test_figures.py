import numpy as np

from physml.magnets import figures
from physml.magnets.hand import STATE_CODES


class _Fit:
    def __init__(self, moments, plausible):
        self._m, self._ok = np.asarray(moments, float), plausible

    def moments(self):
        return self._m

    def magnet_report(self):
        return [{"plausible": ok} for ok in self._ok]


def test_moments_figure_names_the_plausible_band_in_the_legend_and_counts_implausible_magnets():
    fits = {"free": _Fit(np.full(5, 0.09), [True] * 5),
            "constrained": _Fit(np.full(5, 0.2), [True, False, True, False, True])}
    fig = figures.moments_figure(fits, np.full(5, 0.092), (0.074, 0.107))
    band = [s for s in fig.layout.shapes]
    assert len(band) == 1 and (band[0].y0, band[0].y1) == (0.074, 0.107)
    assert band[0].layer == "below"  # behind the bars, not washing them out
    assert not fig.layout.annotations  # no label inside the band, over bars and markers
    names = [t.name for t in fig.data]
    assert names == ["free", "constrained", "true (simulator)",
                     "physically plausible (Ø6×3 mm, N35–N52)"]
    assert "2 implausible fitted magnets" in fig.layout.title.text


def test_residual_figure_hatches_exactly_the_states_the_fit_never_saw():
    train = [1, 6, 8]
    runs = {"constrained": {"train_states": train, "residual_uT": np.arange(32.0),
                            "unseen_rmse_uT": 2.7}}
    fig = figures.residual_figure(runs)
    shapes = list(fig.data[0].marker.pattern.shape)
    assert [i for i, s in enumerate(shapes) if s == ""] == train
    assert all(s == "/" for i, s in enumerate(shapes) if i not in train)
    assert list(fig.data[0].x) == list(STATE_CODES)
    assert "2.7 µT (constrained)" in fig.layout.title.text


def test_placement_figure_names_both_scenes_axes_with_units():
    rng = np.random.default_rng(0)
    fig = figures.placement_figure(rng.normal(size=(32, 3)), rng.normal(size=(32, 3)), 0.8, 1.0)
    for scene in (fig.layout.scene, fig.layout.scene2):
        assert [a.title.text for a in (scene.xaxis, scene.yaxis, scene.zaxis)] == [
            "Bx (µT)", "By (µT)", "Bz (µT)"]
        assert scene.zaxis.nticks == 5
    assert [list(t.text) for t in fig.data] == [list(STATE_CODES)] * 2
    assert "raises the expected accuracy (0.800 → 1.000)" in fig.layout.title.text


def test_field_error_title_gives_the_breakdown_and_the_error_at_the_closest_distance():
    curve = {"distance_diam": np.array([4.0, 0.75, 2.0]),
             "max_rel_err": np.array([0.002, 0.35, 0.02]),
             "median_rel_err": np.array([0.001, 0.1, 0.01])}
    fig = figures.field_error_figure(curve, 2.5)
    assert fig.layout.title.text == ("The dipole approximation is within 1% beyond 2.5 magnet "
                                     "diameters; at 0.75 diameters it is off by up to 35%")
