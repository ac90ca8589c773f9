"""Graphene nanoribbons (nearest-neighbour pz) and two-lead devices built from periodic cells.

Geometry: transport along +x, cells of length ``period`` (nm). ``h01 = <cell n|H|cell n+1>`` couples a
cell to its right neighbour. Leads follow the convention of ``invdesign.negf`` (cells numbered away
from the device), so the right lead uses ``h01`` and the left lead ``h01^dagger``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from invdesign.negf import Device, Lead

ACC_NM = 0.142  # carbon-carbon distance, nm
T_EV = -2.7  # nearest-neighbour pz hopping, eV


@dataclasses.dataclass(frozen=True)
class PeriodicCell:
    """One unit cell of a quasi-1D crystal: positions (nm), cell Hamiltonian and hopping (eV)."""

    positions: np.ndarray  # (n, 2 or 3), nm
    period: float  # nm, along x
    h00: torch.Tensor  # (n, n)
    h01: torch.Tensor  # (n, n), <n|H|n+1>

    def leads(self) -> tuple[Lead, Lead]:
        """(left, right) leads made of this cell."""
        return Lead(self.h00, self.h01.mH), Lead(self.h00, self.h01)

    def device(self, cells: int, onsite: torch.Tensor | None = None) -> Device:
        """``cells`` copies of the cell between two leads of the same cell.

        ``onsite`` (optional, shape ``(..., cells, n)``, eV) adds an on-site potential per device orbital.
        """
        left, right = self.leads()
        blocks = [self.h00] * cells
        if onsite is not None:
            blocks = [self.h00 + torch.diag_embed(onsite[..., i, :].to(self.h00.dtype)) for i in range(cells)]
        return Device(blocks, [self.h01] * (cells - 1), left, right)


def nearest_neighbour_cell(positions: np.ndarray, period: float, hopping: float, bond: float) -> PeriodicCell:
    """Cell Hamiltonian with ``hopping`` between all pairs at distance ``bond`` (within 1e-3 nm)."""
    pos = np.asarray(positions, dtype=float)
    shift = np.zeros(pos.shape[1])
    shift[0] = period

    def hops(offset):
        d = np.linalg.norm(pos[:, None, :] - (pos[None, :, :] + offset), axis=-1)
        return torch.as_tensor(np.where(np.abs(d - bond) < 1e-3, hopping, 0.0))

    return PeriodicCell(pos, period, hops(0 * shift), hops(shift))


def armchair_ribbon(width: int, t: float = T_EV, acc: float = ACC_NM) -> PeriodicCell:
    """Armchair ribbon with ``width`` dimer lines (N-AGNR): 2N atoms per cell of length 3 acc."""
    rows = []
    for j in range(width):
        x0 = 0.0 if j % 2 == 0 else 1.5 * acc
        y = j * math.sqrt(3) / 2 * acc
        rows += [(x0, y), (x0 + acc, y)]
    return nearest_neighbour_cell(np.array(rows), 3 * acc, t, acc)


def zigzag_ribbon(width: int, t: float = T_EV, acc: float = ACC_NM) -> PeriodicCell:
    """Zigzag ribbon with ``width`` zigzag chains (N-ZGNR): 2N atoms per cell of length sqrt(3) acc."""
    a = math.sqrt(3) * acc
    rows = []
    for j in range(width):
        s = 0.0 if j % 2 == 0 else a / 2
        y = 1.5 * acc * j
        rows += [(s % a, y), ((s + a / 2) % a, y + acc / 2)]
    return nearest_neighbour_cell(np.array(rows), a, t, acc)
