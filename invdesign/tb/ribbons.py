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
import math
import numbers

import numpy as np
import torch

from invdesign.negf import Device, Lead
from invdesign.negf.energies import precision_error
from invdesign.negf.errors import NEGFInputError
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
        if not isinstance(cells, numbers.Integral) or isinstance(cells, bool) or cells < 1:
            raise NEGFInputError(f"cells must be a positive integer; got {cells!r}")
        left, right = self.leads()
        blocks = [self.h00] * cells
        if onsite is not None:
            u = self.check_onsite(onsite, int(cells))
            blocks = [self.h00 + torch.diag_embed(u[..., i, :]) for i in range(cells)]
        return Device(blocks, [self.h01] * (cells - 1), left, right)

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


def nearest_neighbour_model(t: float = T_EV, acc: float = ACC_NM) -> TBModel:
    """Isotropic pz model with hopping ``t`` (eV) between atoms ``acc`` (nm) apart."""
    return TBModel({"C": Species(("pz",), {"p": 0.0})}, {("C", "C"): (Shell(acc, {"pp_pi": t}),)},
                   isotropic=True, name=f"graphene_pz/NN t={t}")


def _check_real(name: str, value, unit: str, positive: bool = False) -> None:
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex():
        value = float(value.detach())
    if isinstance(value, complex) or (isinstance(value, (np.ndarray, torch.Tensor)) or
                                      not isinstance(value, numbers.Real) or isinstance(value, bool)):
        raise NEGFInputError(f"{name} must be a real number ({unit}); got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or (positive and value <= 0):
        raise NEGFInputError(f"{name} must be a finite{' positive' if positive else ''} number ({unit}); got {value}")


def _check_model(t, acc) -> None:
    _check_real("t", t, "eV")
    _check_real("acc", acc, "nm", positive=True)


def periodic_cell(structure: Structure, t: float = T_EV, acc: float = ACC_NM) -> PeriodicCell:
    """The cell of ``structure`` with nearest-neighbour hopping ``t`` (eV, real) at distance ``acc`` (nm)."""
    _check_model(t, acc)
    cell, blocks = lead_blocks(nearest_neighbour_model(t, acc), structure)
    return PeriodicCell(cell.positions.numpy(), float(cell.lattice[0, 0]), blocks["h00"], blocks["h01"])


def armchair_ribbon(width: int, t: float = T_EV, acc: float = ACC_NM) -> PeriodicCell:
    """Armchair ribbon with ``width`` dimer lines (N-AGNR): 2N atoms per cell of length 3 acc."""
    _check_model(t, acc)
    return periodic_cell(builders.armchair_ribbon(width, acc), t, acc)


def zigzag_ribbon(width: int, t: float = T_EV, acc: float = ACC_NM) -> PeriodicCell:
    """Zigzag ribbon with ``width`` zigzag chains (N-ZGNR): 2N atoms per cell of length sqrt(3) acc."""
    _check_model(t, acc)
    return periodic_cell(builders.zigzag_ribbon(width, acc), t, acc)
