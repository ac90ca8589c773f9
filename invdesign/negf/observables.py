"""Functional shortcuts: one call per observable (each call runs its own :func:`solve`).

To get several observables at the same energies, call :func:`invdesign.negf.solve` once and use the
methods of the returned :class:`~invdesign.negf.solution.Solution`; the leads are then solved once.
Conventions and units: ``invdesign.negf``.
"""

from __future__ import annotations

import torch

from invdesign.negf.solution import solve
from invdesign.negf.system import Device


def transmission(device: Device, energies, **kwargs) -> torch.Tensor:
    """Transmission T(E) from left to right, shape ``(..., nE)`` (dimensionless)."""
    return solve(device, energies, **kwargs).transmission()


def dos(device: Device, energies, **kwargs) -> torch.Tensor:
    """Device density of states (states/eV/spin), shape ``(..., nE)``."""
    return solve(device, energies, **kwargs).dos()


def ldos(device: Device, energies, **kwargs) -> torch.Tensor:
    """Local density of states per orbital (states/eV/spin), shape ``(..., nE, n_orbitals)``."""
    return solve(device, energies, **kwargs).ldos()


def spectral_functions(device: Device, energies, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Lead-resolved LDOS ``(A_L, A_R)`` per orbital (states/eV/spin); they sum to :func:`ldos`."""
    return solve(device, energies, **kwargs).spectral_functions()
