"""Geometry -> principal layers -> ``Device`` and ``Lead``s (conventions: ``invdesign.negf``).

A lead is given as a periodic ``Structure`` whose positions are those of lead cell 0 in device
coordinates and whose single lattice vector points *away from the device* (cells 0, 1, 2, ... moving
outwards), exactly the engine's convention. If interactions reach beyond the next cell, the lead cell is
enlarged to a principal layer of several cells automatically. The device may touch lead cell 0 only.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from invdesign.negf import Device, Lead
from invdesign.tb.arguments import count
from invdesign.tb.hamiltonian import (
    add_potential,
    bond_mask,
    coupling_blocks,
    find_pairs,
    orbital_offsets,
    reach_cells,
)
from invdesign.tb.model import TBModel
from invdesign.tb.structure import Structure


@dataclasses.dataclass(frozen=True)
class TransportSystem:
    """A two-terminal system built from atoms.

    ``device`` is ready for ``invdesign.negf.solve``. ``orbital_positions_nm`` (n_orb, 3) and
    ``orbital_atoms`` (n_orb,) follow the *device's slice order* (the order of its blocks);
    ``device.to_original_order`` maps per-orbital outputs back to the structure's atom order.
    """

    device: Device
    structure: Structure
    left_cell: Structure
    right_cell: Structure
    orbital_positions_nm: torch.Tensor
    orbital_atoms: np.ndarray

    @property
    def leads(self) -> tuple[Lead, Lead]:
        return self.device.left, self.device.right


def lead_principal_layer(model: TBModel, cell: Structure, magnetic_field_t: float = 0.0) -> tuple[Structure, dict]:
    """The principal layer of a lead cell and its ``h00, h01`` (and ``s00, s01``; ``None`` without overlap).

    ``cell`` is enlarged to a supercell where the model's bonds reach beyond the next cell, so that only
    neighbouring layers couple (the engine's ``Lead``). Returns ``(layer, {"h00", "h01", "s00", "s01"})``.
    """
    if cell.lattice is None or cell.lattice.shape[0] != 1:
        raise ValueError("a lead cell must be a Structure with exactly one lattice vector (pointing away "
                         "from the device)")
    vec = cell.lattice[0]
    if magnetic_field_t and (abs(float(vec[1])) > 1e-12 or abs(float(vec[2])) > 1e-12):
        raise ValueError("a magnetic field needs leads periodic along x (Landau gauge A = (-B y, 0, 0))")
    m = reach_cells(model, cell, vec)
    if m > 1:
        cell = cell.supercell(m)
        vec = cell.lattice[0]
    h00, s00 = coupling_blocks(model, cell, cell, onsite=True, magnetic_field_t=magnetic_field_t)
    h01, s01 = coupling_blocks(model, cell, cell, shift=vec, magnetic_field_t=magnetic_field_t)
    return cell, {"h00": h00, "h01": h01, "s00": s00, "s01": s01}


def two_terminal(
    model: TBModel,
    device: Structure,
    left: Structure,
    right: Structure,
    potential_ev: torch.Tensor | None = None,
    magnetic_field_t: float = 0.0,
) -> TransportSystem:
    """Build the device Hamiltonian, both leads and their couplings, and slice it.

    Args:
        model: the tight-binding model (species of all three structures must be in it).
        device: the scattering region (finite; its lattice is ignored).
        left, right: lead cell 0 of each lead, lattice vector pointing away from the device.
        potential_ev: optional potential energy per device atom (..., n_atoms), eV.
        magnetic_field_t: B along z (T); see ``invdesign.tb.hamiltonian`` for the gauge.
    """
    device = dataclasses.replace(device, lattice=None)
    H, S = coupling_blocks(model, device, device, onsite=True, magnetic_field_t=magnetic_field_t)
    if potential_ev is not None:
        H = add_potential(H, S, potential_ev, model, device.species)
    leads, cells, touched = [], [], []
    for name, cell in (("left", left), ("right", right)):
        cell, blocks = lead_principal_layer(model, cell, magnetic_field_t)
        _check_touches_cell0_only(model, device, cell, name)
        c, sc = coupling_blocks(model, cell, device, magnetic_field_t=magnetic_field_t)
        cols = torch.nonzero(bond_mask(model, cell, device).any(0)).flatten()  # structural, not value-based
        if len(cols) == 0:
            raise ValueError(f"the {name} lead does not couple to the device: no atom of its cell 0 is within "
                             f"{model.cutoff_nm:.4g} nm of a device atom")
        leads.append(Lead(blocks["h00"], blocks["h01"], c[:, cols], blocks["s00"], blocks["s01"],
                          None if sc is None else sc[:, cols]))
        cells.append(cell)
        touched.append(cols.tolist())
    _check_leads_apart(model, cells[0], cells[1])
    dev = Device.from_matrix(H, leads[0], leads[1], touched[0], touched[1], overlap=S,
                             pattern=bond_mask(model, device, device, onsite=True))
    offsets = orbital_offsets(model, device.species)
    atom_of_orbital = np.repeat(np.arange(len(device)), np.diff(offsets))
    order = dev.orbital_order if dev.orbital_order is not None else np.arange(offsets[-1])
    atoms = atom_of_orbital[order]
    return TransportSystem(dev, device, cells[0], cells[1], device.positions[torch.as_tensor(atoms)], atoms)


def _check_leads_apart(model: TBModel, left: Structure, right: Structure) -> None:
    rows, _ = find_pairs(left.positions.detach().cpu().numpy(), right.positions.detach().cpu().numpy(),
                         model.cutoff_nm)
    if len(rows):
        raise ValueError(f"the left and right leads interact directly (atoms within the cutoff {model.cutoff_nm:.4g} nm): "
                         "the device region must be longer than the interaction range")


def _check_touches_cell0_only(model: TBModel, device: Structure, cell: Structure, name: str) -> None:
    far = cell.positions.detach().cpu().numpy() + cell.lattice[0].detach().cpu().numpy()
    rows, _ = find_pairs(far, device.positions.detach().cpu().numpy(), model.cutoff_nm)
    if len(rows):
        raise ValueError(f"device atoms interact with cell 1 of the {name} lead (cutoff {model.cutoff_nm:.4g} nm): "
                         "put more lead cells into the device region, or check the lead's lattice vector points "
                         "away from the device")
    same = np.linalg.norm(cell.positions.detach().cpu().numpy()[:, None] - device.positions.detach().cpu().numpy()[None], axis=-1)
    if (same < 1e-6).any():
        raise ValueError(f"an atom of the {name} lead's cell 0 sits on a device atom: the lead cell must be "
                         "outside the device region")


def wire(cell: Structure, cells: int) -> tuple[Structure, Structure, Structure]:
    """``(device, left, right)`` for ``cells`` cells of a quasi-1D crystal between leads of the same.

    ``cell`` has one lattice vector along +x; the device spans cells 0..cells-1, the left lead starts one
    period to the left (lattice vector reversed), the right lead one period after the last device cell.
    """
    if cell.lattice is None or cell.lattice.shape[0] != 1:
        raise ValueError("wire() needs a cell with exactly one lattice vector")
    cells = count("cells", cells)
    a = cell.lattice[0]
    device = cell.repeated(cells)
    left = Structure(cell.positions - a, cell.species, -a[None, :])
    right = Structure(cell.positions + cells * a, cell.species, a[None, :])
    return device, left, right
