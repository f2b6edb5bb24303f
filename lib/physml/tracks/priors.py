"""Physics priors the surrogates add their network output to: straight line and single kick.

A prior maps the physical inputs u = (x, y, tx, ty, q/p, dz) (n, 6) and a fraction zeta of dz
to a physical state (x, y, tx, ty) (n, 4) at z0 + zeta dz, in torch (so it is part of the
model, its ONNX export and autograd).

- ``straight``: field-free line (x + tx d, y + ty d, tx, ty), d = zeta dz.
- ``kick``: the first-order (thin-lens, on-axis) solution of the equations of motion of
  :mod:`physml.tracks.eom`, with the slopes frozen at their initial values::

      c = -KAPPA (q/p) N,  N = sqrt(1 + tx^2 + ty^2)
      tx(z) = tx + c (1 + tx^2) I0(z),        x(z) = x + tx d + c (1 + tx^2) I1(z)
      ty(z) = ty + c  tx ty     I0(z),        y(z) = y + ty d + c  tx ty     I1(z)

  with I0(z) = int_{z0}^{z} By(0, 0, z') dz' (T mm) and I1(z) = int_{z0}^{z} (z - z') By dz'
  (T mm^2): the slope kick of the field integral, applied at the By centroid. Both integrals
  are tabulated once on a regular z grid (:class:`KickTable`) and interpolated linearly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from physml.tracks.eom import KAPPA

PRIORS = ("none", "straight", "kick")


@dataclass(frozen=True)
class KickTable:
    """On-axis field integrals from z0_mm on a regular grid: z_mm (m,), i0 (m,) T mm, i1 (m,)
    T mm^2. Beyond the last node the integrals are extrapolated as a field-free drift."""

    z_mm: np.ndarray
    i0: np.ndarray
    i1: np.ndarray

    @classmethod
    def from_field(cls, field, z0_mm: float = 0.0, z_max_mm: float = 14500.0,
                   step_mm: float = 5.0) -> KickTable:
        """Tabulate ``field`` (callable (n, 3) mm -> (n, 3) T) on the axis x = y = 0."""
        if not z_max_mm > z0_mm or not step_mm > 0:
            raise ValueError(f"KickTable: need z_max_mm > z0_mm and step_mm > 0, got "
                             f"{z0_mm}, {z_max_mm}, {step_mm}")
        m = int(np.ceil((z_max_mm - z0_mm) / step_mm)) + 1
        z = z0_mm + step_mm * np.arange(m)
        by = field(np.stack([np.zeros(m), np.zeros(m), z], 1))[:, 1]
        seg = 0.5 * (by[1:] + by[:-1]) * step_mm  # trapezoid
        i0 = np.concatenate([[0.0], np.cumsum(seg)])
        # I1(z) = int (z - z') By dz' = int_{z0}^{z} I0(z'') dz''
        i1 = np.concatenate([[0.0], np.cumsum(0.5 * (i0[1:] + i0[:-1]) * step_mm)])
        return cls(z, i0, i1)

    def at(self, z_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(I0, I1) at z (NumPy), linear between nodes, drift beyond the last node."""
        z = np.asarray(z_mm, dtype=np.float64)
        zc = np.clip(z, self.z_mm[0], self.z_mm[-1])
        i0 = np.interp(zc, self.z_mm, self.i0)
        i1 = np.interp(zc, self.z_mm, self.i1) + i0 * (z - zc)
        return i0, i1


def straight(u: torch.Tensor, zeta) -> torch.Tensor:
    """Field-free state (n, 4) at fraction zeta (scalar or (n,)) of dz."""
    d = u[:, 5] * zeta
    return torch.stack([u[:, 0] + u[:, 2] * d, u[:, 1] + u[:, 3] * d, u[:, 2], u[:, 3]], 1)


def interp_table(z: torch.Tensor, z0: float, step: float, values: torch.Tensor,
                 last: int) -> torch.Tensor:
    """Linear interpolation of ``values`` (last + 1,) on the regular grid z0 + step * k at z
    (n,), clamped to the end nodes (ONNX-exportable: floor, clamp, gather)."""
    f = torch.clamp((z - z0) / step, 0.0, float(last))
    i = torch.clamp(torch.floor(f.detach()), 0, last - 1).long()
    w = f - i
    return values[i] * (1 - w) + values[i + 1] * w


def kick(u: torch.Tensor, zeta, table: tuple[torch.Tensor, torch.Tensor], z0_mm: float,
         step_mm: float, z_last_mm: float) -> torch.Tensor:
    """Single-kick state (n, 4) at fraction zeta of dz; ``table`` = (i0, i1) tensors (m,)."""
    i0t, i1t = table
    last = int(round((z_last_mm - z0_mm) / step_mm))
    d = u[:, 5] * zeta
    z = z0_mm + d
    i0 = interp_table(z, z0_mm, step_mm, i0t, last)
    i1 = interp_table(z, z0_mm, step_mm, i1t, last) + i0 * torch.clamp(z - z_last_mm, min=0.0)
    tx, ty, qop = u[:, 2], u[:, 3], u[:, 4]
    c = -KAPPA * qop * torch.sqrt(1 + tx * tx + ty * ty)
    ax, ay = c * (1 + tx * tx), c * tx * ty
    return torch.stack([u[:, 0] + tx * d + ax * i1, u[:, 1] + ty * d + ay * i1,
                        tx + ax * i0, ty + ay * i0], 1)


def kick_numpy(initial: np.ndarray, dz: np.ndarray, table: KickTable, z0_mm: float = 0.0):
    """The ``kick`` prior in NumPy: initial (n, 5), dz (n,) mm -> (n, 4)."""
    x, y, tx, ty, qop = initial.T
    i0, i1 = table.at(z0_mm + dz)
    c = -KAPPA * qop * np.sqrt(1 + tx * tx + ty * ty)
    ax, ay = c * (1 + tx * tx), c * tx * ty
    return np.stack([x + tx * dz + ax * i1, y + ty * dz + ay * i1, tx + ax * i0, ty + ay * i0], 1)
