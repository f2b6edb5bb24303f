"""What-if placement explorer.

* `whatif_widget`: ipywidgets (finger, magnet position/tilt/size, sensor offset, noise) driving a
  Plotly FigureWidget of the 32 states' fields, live in JupyterLab.
* `static_whatif`: a plain Plotly figure whose slider steps were precomputed, so the what-if
  stays interactive in the static HTML report without a kernel.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .figures import FIELD_SCENE, state_field_points
from .hand import FINGERS
from .placement import Placements, default_placement, separability


def _title(sc, label=""):
    return (f"{label}min state distance {sc['min_distance_sigma'][0]:.2f} σ, expected accuracy "
            f"{sc['expected_accuracy'][0]:.3f}")


def _layout(title):
    return dict(title=title, height=560, scene=FIELD_SCENE)


def static_whatif(hand, values_mm=None, noise_uT=3.0, placement=None):
    """Figure with a slider moving the sensor along z (away from the hand), all steps
    precomputed in one vectorised call.

    Args:
        hand: Hand.
        values_mm: sensor z offsets (mm, >= 0: on or above the back of the hand);
            default 0 … 40 mm.
        noise_uT: reading noise σ per axis, µT.
        placement: starting Placements (1); default the hand's own.

    Returns:
        (go.Figure, dict {"offset_mm", "min_distance_sigma", "expected_accuracy"}).
    """
    v = np.linspace(0, 40, 17) if values_mm is None else np.asarray(values_mm, float)
    p0 = placement or default_placement(hand)
    n = len(v)
    off = np.tile(p0.sensor_offset_m, (n, 1))
    off[:, 2] += 1e-3 * v
    batch = Placements(np.tile(p0.mount_m, (n, 1)), np.tile(p0.tilt_rad, (n, 1)),
                       np.tile(p0.diameter_m, (n, 1)), off)
    sc = separability(hand, batch, noise_uT)
    f = sc["fields_uT"]
    i0 = int(np.argmin(np.abs(v)))
    fig = go.Figure(state_field_points(f[i0]))
    steps = []
    for i in range(n):  # one precomputed slider step per value (figure metadata, not compute)
        t = (f"sensor z {v[i]:+g} mm: min distance {sc['min_distance_sigma'][i]:.2f} σ, "
             f"expected accuracy {sc['expected_accuracy'][i]:.3f}")
        steps.append(dict(method="update", label=f"{v[i]:+g}",  # 2.5 mm reads +2.5, not +2
                          args=[{"x": [f[i, :, 0]], "y": [f[i, :, 1]], "z": [f[i, :, 2]]},
                                {"title.text": t}]))
    fig.update_layout(**_layout(steps[i0]["args"][1]["title.text"]),
                      sliders=[dict(active=i0, steps=steps, pad=dict(t=30),
                                    currentvalue=dict(prefix="sensor z offset (mm): "))])
    return fig, {"offset_mm": v.tolist(), "min_distance_sigma": sc["min_distance_sigma"].tolist(),
                 "expected_accuracy": sc["expected_accuracy"].tolist()}


class WhatIf:
    """Live what-if: `.widget` (ipywidgets.VBox) holds the controls and `.figure`
    (plotly FigureWidget). Every control change rescores the placement (one jit call)."""

    def __init__(self, hand, noise_uT=3.0, placement=None):
        import ipywidgets as w

        self.hand = hand
        p = placement or default_placement(hand)
        self.placement = Placements(p.mount_m.copy(), p.tilt_rad.copy(), p.diameter_m.copy(),
                                    p.sensor_offset_m.copy())
        self.noise_uT = float(noise_uT)
        sc = separability(hand, self.placement, self.noise_uT)
        self.figure = go.FigureWidget(data=[state_field_points(sc["fields_uT"][0])],
                                      layout=_layout(_title(sc)))
        total = 1e3 * hand.lengths_m.sum(1)
        style = {"description_width": "150px"}
        lay = w.Layout(width="480px")
        self.finger = w.Dropdown(options=list(FINGERS), value="index", description="finger",
                                 style=style, layout=lay)
        self.mount = w.FloatSlider(min=5.0, max=float(total.max()), step=1.0,
                                   description="magnet position (mm)", style=style, layout=lay,
                                   continuous_update=True)
        self.tilt = w.FloatSlider(min=-180.0, max=180.0, step=5.0,
                                  description="magnet tilt (deg)", style=style, layout=lay)
        self.diameter = w.FloatSlider(min=2.0, max=10.0, step=0.5,
                                      description="magnet diameter (mm)", style=style, layout=lay)
        self.sensor = [w.FloatSlider(value=0.0, min=0.0 if a == "z" else -20.0, max=30.0,
                                     step=1.0, description=f"sensor {a} (mm)", style=style,
                                     layout=lay) for a in "xyz"]
        self.noise = w.FloatLogSlider(value=self.noise_uT, base=10, min=-1, max=1.3, step=0.05,
                                      description="noise σ (µT)", style=style, layout=lay)
        self.status = w.HTML()
        self._sync_finger()
        self.finger.observe(lambda ch: self._sync_finger(), names="value")
        for s in (self.mount, self.tilt, self.diameter, *self.sensor, self.noise):
            s.observe(self._on_change, names="value")
        self.widget = w.VBox([w.HBox([w.VBox([self.finger, self.mount, self.tilt,
                                              self.diameter]),
                                      w.VBox([*self.sensor, self.noise])]),
                              self.status, self.figure])
        self.update()

    def _sync_finger(self):
        f = FINGERS.index(self.finger.value)
        self._syncing = True
        self.mount.value = 1e3 * float(self.placement.mount_m[0, f])
        self.tilt.value = float(np.rad2deg(self.placement.tilt_rad[0, f]))
        self.diameter.value = 1e3 * float(self.placement.diameter_m[0, f])
        self._syncing = False

    def _on_change(self, change):
        if getattr(self, "_syncing", False):
            return
        f = FINGERS.index(self.finger.value)
        self.placement.mount_m[0, f] = 1e-3 * self.mount.value
        self.placement.tilt_rad[0, f] = np.deg2rad(self.tilt.value)
        self.placement.diameter_m[0, f] = 1e-3 * self.diameter.value
        self.placement.sensor_offset_m[0] = [1e-3 * s.value for s in self.sensor]
        self.noise_uT = float(self.noise.value)
        self.update()

    def update(self):
        """Rescore the current placement and redraw; returns the scores."""
        import time

        t0 = time.perf_counter()
        sc = separability(self.hand, self.placement, self.noise_uT)
        f = sc["fields_uT"][0]
        with self.figure.batch_update():
            self.figure.data[0].x, self.figure.data[0].y, self.figure.data[0].z = (
                f[:, 0], f[:, 1], f[:, 2])
            self.figure.layout.title.text = _title(sc)
        self.status.value = f"rescored in {1e3 * (time.perf_counter() - t0):.1f} ms"
        self.last = sc
        return sc


def whatif_widget(hand, noise_uT=3.0, placement=None):
    """Build the live what-if (see `WhatIf`); display `.widget` in a notebook."""
    return WhatIf(hand, noise_uT, placement)


def sweep_endpoints(sweep):
    """The sensor-z sweep at its nominal position (0 mm, else the first step) and its last
    step, as flat figures: offset_mm, min_distance_sigma and expected_accuracy at each end."""
    off = list(sweep["offset_mm"])
    i0 = off.index(0.0) if 0.0 in off else 0
    return {f"{key}_{end}": float(sweep[key][i])
            for end, i in (("nominal", i0), ("last", len(off) - 1))
            for key in ("offset_mm", "min_distance_sigma", "expected_accuracy")}
