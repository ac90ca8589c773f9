"""Ready-made periodic cells (nearest-neighbour pz) of graphene ribbons and tubes, for quick NEGF work.

A thin layer over ``invdesign.tb``: the structures come from ``builders`` (``armchair_ribbon_cell(7)``
is ``builders.armchair_ribbon(7)`` with its Hamiltonian), the model is ``tables.graphene_pz("NN_generic")``
(its hopping replaced when ``t`` is given), the blocks come from ``transport.lead_principal_layer``.
Transport along +x, cells of length ``period`` (nm), ``h01 = <cell n|H|cell n+1>``. Leads follow
``invdesign.negf`` (cells numbered away from the device), so the right lead uses ``h01`` and the left
lead ``h01^dagger``. For anything beyond a uniform wire (dopants, junctions, other models) use
``invdesign.tb.transport.two_terminal``.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np
import torch

from invdesign.negf import Device, Lead
from invdesign.negf.energies import precision_error
from invdesign.negf.errors import NEGFInputError
from invdesign.tb import builders, tables
from invdesign.tb.arguments import TBInputError, count, real
from invdesign.tb.model import TBModel
from invdesign.tb.structure import Structure
from invdesign.tb.transport import lead_principal_layer

ACC_NM = builders.ACC_NM  # carbon-carbon distance, nm
NN_SET = "NN_generic"  # the tables' nearest-neighbour pz set
T_EV = -2.7  # its hopping (eV), the default; tests/tb/test_builder_arguments.py checks it against the table
HOPPING = "bond/C-C/0/pp_pi"  # the hopping's name among the model's named_parameters()


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
        if not isinstance(cells, numbers.Integral) or isinstance(cells, bool) or cells < 1:
            raise NEGFInputError(f"cells must be a positive integer; got {cells!r}")
        left, right = self.leads()
        blocks = [self.h00] * cells
        if onsite is not None:
            u = self.check_onsite(onsite, int(cells))
            blocks = [self.h00 + torch.diag_embed(u[..., i, :]) for i in range(cells)]
        # onsite touches only the diagonal: the cell's zeros stay zero unless the cell itself is a parameter
        fixed = not (self.h00.requires_grad or self.h01.requires_grad)
        return Device(blocks, [self.h01] * (cells - 1), left, right, structural_zeros=fixed)

    def check_onsite(self, onsite, cells: int) -> torch.Tensor:
        """``onsite`` as a real tensor of the cell's dtype, shape ``(..., cells, n)``; clear errors otherwise."""
        n = self.h00.shape[-1]
        u = onsite if isinstance(onsite, torch.Tensor) else torch.as_tensor(np.asarray(onsite, dtype=np.complex128
                                                                             if np.iscomplexobj(onsite) else float))
        if u.ndim < 2 or tuple(u.shape[-2:]) != (cells, n):
            raise NEGFInputError(f"onsite must have shape (..., cells, orbitals per cell) = (..., {cells}, {n}) "
                                 f"(eV per device orbital); got {tuple(u.shape)}")
        if u.is_complex():
            im = float(u.detach().imag.abs().max())
            if im > 0:
                raise NEGFInputError(
                    f"onsite is complex with |Im| up to {im:.3g} eV: the device Hamiltonian must be Hermitian, so "
                    "an absorbing (imaginary) potential cannot go on the diagonal; broaden with solve(..., eta=) "
                    "or give a real onsite")
            u = u.real
        if not (u.is_floating_point()):
            u = u.to(torch.float64)
        if self.h00.dtype == torch.float64 and precision_error("onsite", u.dtype, torch.complex128):
            raise NEGFInputError(f"onsite is {u.dtype} (about 7 significant digits) but the cell is float64: "
                                 "give float64 values (e.g. torch.tensor(..., dtype=torch.float64))")
        if not torch.isfinite(u.detach()).all():
            raise NEGFInputError("onsite contains NaN or infinite values")
        return u.to(self.h00.dtype)


def pz_model(t: float = T_EV, acc: float = ACC_NM) -> TBModel:
    """``tables.graphene_pz("NN_generic", acc)`` with the hopping set to ``t`` (eV, real; acc in nm)."""
    t, acc = real("t", t, "eV"), real("acc", acc, "nm", positive=True)
    model = tables.graphene_pz(NN_SET, acc)
    if t == model.named_parameters()[HOPPING]:
        return model
    return dataclasses.replace(model.replace({HOPPING: t}), name=f"graphene_pz/{NN_SET} t={t}")


def periodic_cell(structure: Structure, t: float = T_EV, acc: float = ACC_NM) -> PeriodicCell:
    """The cell of ``structure`` (one lattice vector along +x) with nearest-neighbour hopping ``t`` (eV, real)
    at distance ``acc`` (nm); a principal layer of several cells where bonds reach further."""
    if not isinstance(structure, Structure):
        raise TBInputError(f"structure must be an invdesign.tb Structure; got {type(structure).__name__}")
    lattice = None if structure.lattice is None else structure.lattice.detach()
    if lattice is None or lattice.shape[0] != 1 or float(lattice[0, 0]) <= 0 or float(lattice[0, 1:].abs().max()) > 0:
        raise TBInputError("structure must be periodic along +x only (one lattice vector (a, 0, 0), a > 0 nm); got "
                           f"lattice {None if lattice is None else lattice.tolist()}")
    model = pz_model(t, acc)
    cell, blocks = lead_principal_layer(model, structure)
    return PeriodicCell(cell.positions.numpy(), float(cell.lattice[0, 0]), blocks["h00"], blocks["h01"])


def armchair_ribbon_cell(width: int, t: float = T_EV, acc: float = ACC_NM) -> PeriodicCell:
    """The cell of ``builders.armchair_ribbon(width)`` (N-AGNR: 2N atoms, length 3 acc), nearest-neighbour pz."""
    width, t, acc = count("width", width), real("t", t, "eV"), real("acc", acc, "nm", positive=True)
    return periodic_cell(builders.armchair_ribbon(width, acc), t, acc)


def zigzag_ribbon_cell(width: int, t: float = T_EV, acc: float = ACC_NM) -> PeriodicCell:
    """The cell of ``builders.zigzag_ribbon(width)`` (N-ZGNR: 2N atoms, length sqrt(3) acc), nearest-neighbour pz."""
    width, t, acc = count("width", width), real("t", t, "eV"), real("acc", acc, "nm", positive=True)
    return periodic_cell(builders.zigzag_ribbon(width, acc), t, acc)
