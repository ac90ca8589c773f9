"""Graphene nanoribbons as ready-made periodic cells (nearest-neighbour pz), for quick NEGF work.

A thin layer over ``invdesign.tb.builders`` and ``invdesign.tb.transport``: the geometry comes from the
builders, the blocks from a nearest-neighbour isotropic pz model with hopping ``t``. Transport along
+x, cells of length ``period`` (nm), ``h01 = <cell n|H|cell n+1>``. Leads follow ``invdesign.negf``
(cells numbered away from the device), so the right lead uses ``h01`` and the left lead ``h01^dagger``.
For anything beyond a uniform ribbon (dopants, junctions, other models) use
``invdesign.tb.transport.two_terminal``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from invdesign.negf import Device, Lead
from invdesign.tb import builders
from invdesign.tb.model import Shell, Species, TBModel
from invdesign.tb.structure import Structure
from invdesign.tb.transport import lead_blocks

ACC_NM = builders.ACC_NM  # carbon-carbon distance, nm
T_EV = -2.7  # nearest-neighbour pz hopping, eV


@dataclasses.dataclass(frozen=True)
class PeriodicCell:
    """One unit cell of a quasi-1D crystal: positions (nm), cell Hamiltonian and hopping (eV)."""

    positions: np.ndarray  # (n, 3), nm
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


def nearest_neighbour_model(t: float = T_EV, acc: float = ACC_NM) -> TBModel:
    """Isotropic pz model with hopping ``t`` (eV) between atoms ``acc`` (nm) apart."""
    return TBModel({"C": Species(("pz",), {"p": 0.0})}, {("C", "C"): (Shell(acc, {"pp_pi": t}),)},
                   isotropic=True, name=f"graphene_pz/NN t={t}")


def periodic_cell(structure: Structure, t: float = T_EV, acc: float = ACC_NM) -> PeriodicCell:
    cell, blocks = lead_blocks(nearest_neighbour_model(t, acc), structure)
    return PeriodicCell(cell.positions.numpy(), float(cell.lattice[0, 0]), blocks["h00"], blocks["h01"])


def armchair_ribbon(width: int, t: float = T_EV, acc: float = ACC_NM) -> PeriodicCell:
    """Armchair ribbon with ``width`` dimer lines (N-AGNR): 2N atoms per cell of length 3 acc."""
    return periodic_cell(builders.armchair_ribbon(width, acc), t, acc)


def zigzag_ribbon(width: int, t: float = T_EV, acc: float = ACC_NM) -> PeriodicCell:
    """Zigzag ribbon with ``width`` zigzag chains (N-ZGNR): 2N atoms per cell of length sqrt(3) acc."""
    return periodic_cell(builders.zigzag_ribbon(width, acc), t, acc)
