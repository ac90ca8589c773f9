"""Both leads' self-energies on an energy grid, with the one rule for energies at a lead pole.

A lead's surface Green's function has a pole at a real energy where the lead's own termination has a
bound state; the device G is analytic there. Such energies are evaluated at ``E +- delta`` and the
observables averaged (error O(delta^2) ~ 1e-12 relative for delta = 1e-6 eV; a larger delta from
``POLE_SHIFTS_EV`` only if ``E +- delta`` is singular too). This is the only place that decides it:
``Solution`` (every observable) and the SCF charge take their self-energies from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from invdesign.negf.errors import NEGFInputError
from invdesign.negf.leads import self_energy_z, surface_gf_pair_z
from invdesign.negf.system import Device

POLE_SHIFTS_EV = (1e-6, 1e-5, 1e-4)  # tried in turn; the average's error is O(shift^2)


@dataclass(frozen=True)
class LeadSelfEnergies:
    """Self-energies of both leads on the grid actually evaluated.

    z: the evaluated energies ``(nE',)``: the requested ones that are regular, then ``E - delta`` and
        ``E + delta`` for those at a lead pole.
    combine: ``(nE, nE')`` float64 averaging matrix back to the requested grid, or None (nE' = nE).
    sigma_left, sigma_right: ``(..., nE', b, b)`` on the edge slices (eV).
    g_left, g_right: surface Green's functions ``(..., nE', n_lead, n_lead)`` (1/eV).
    """

    z: torch.Tensor
    combine: torch.Tensor | None
    sigma_left: torch.Tensor
    sigma_right: torch.Tensor
    g_left: torch.Tensor
    g_right: torch.Tensor


def _evaluate(device: Device, z: torch.Tensor, method: str, dtype) -> tuple[torch.Tensor, ...]:
    sizes = device.slice_sizes
    g_left, g_right = surface_gf_pair_z(device.left, device.right, z, method, dtype)
    return (self_energy_z(device.left, z, sizes[0], method, dtype, g_left),
            self_energy_z(device.right, z, sizes[-1], method, dtype, g_right), g_left, g_right)


def singular_energies(*tensors: torch.Tensor) -> torch.Tensor:
    """Energies (the last batch dimension before the matrix) at which any tensor is NaN for any batch
    member: ``(nE,)`` bool."""
    bad = None
    for t in tensors:
        nan = torch.isnan(t.detach()).any(-1).any(-1)
        nan = nan.reshape(-1, nan.shape[-1]).any(0)
        bad = nan if bad is None else bad | nan
    return bad


def shift_off_poles(z: torch.Tensor, pole: torch.Tensor, shift: float) -> tuple[torch.Tensor, torch.Tensor]:
    """New grid ``[z_ok, z_pole - d, z_pole + d]`` and the (nE, nE_new) averaging matrix back."""
    ok = torch.nonzero(~pole).reshape(-1)
    bad = torch.nonzero(pole).reshape(-1)
    z_new = torch.cat([z[ok], z[bad] - shift, z[bad] + shift])
    combine = torch.zeros(len(z), len(z_new), dtype=torch.float64, device=z.device)
    combine[ok, torch.arange(len(ok))] = 1.0
    combine[bad, len(ok) + torch.arange(len(bad))] = 0.5
    combine[bad, len(ok) + len(bad) + torch.arange(len(bad))] = 0.5
    return z_new, combine


def lead_self_energies(device: Device, z: torch.Tensor, method: str = "modes",
                       dtype: torch.dtype = torch.complex128) -> LeadSelfEnergies:
    """Self-energies of ``device``'s leads at validated 1-D complex energies ``z`` (eV), lead poles
    moved off the grid by the rule of this module."""
    first = _evaluate(device, z, method, dtype)
    pole = singular_energies(first[0], first[1])
    if not pole.any():
        return LeadSelfEnergies(z, None, *first)
    for shift in POLE_SHIFTS_EV:
        z_new, combine = shift_off_poles(z, pole, shift)
        n_ok = int((~pole).sum())
        extra = _evaluate(device, z_new[n_ok:], method, dtype)
        if not singular_energies(extra[0], extra[1]).any():
            break
    else:
        bad = z[pole].detach().real.tolist()
        raise NEGFInputError(f"a lead's surface Green's function is singular at E and at E +- "
                             f"{POLE_SHIFTS_EV} eV for E = {bad[:5]}")
    if n_ok:
        # the regular energies are solved again, apart: the first solve's graph holds NaN at the
        # poles, which backward would spread (0 * NaN) into dT/dE and into lead-parameter gradients
        base = _evaluate(device, z_new[:n_ok], method, dtype)
        extra = tuple(torch.cat([b, e], dim=-3) for b, e in zip(base, extra))
    return LeadSelfEnergies(z_new, combine, *extra)
