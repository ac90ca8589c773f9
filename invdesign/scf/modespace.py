"""Effective-mass channels: a 1D chain and a 2D channel in (uncoupled) mode space (``invdesign.scf``).

Finite differences of ``-hbar^2/(2 m*) d^2/dx^2`` on a lattice of spacing ``a`` (nm) give the chain
``H_nn = 2 t0 + E_c``, ``H_n,n+1 = -t0``, ``t0 = hbar^2 / (2 m* a^2)`` (eV); its band is
``[E_c, E_c + 4 t0]`` and the leads are the same chain. Such channels hold conduction electrons only:
their neutral reference is an empty band (``FETDevice(reference=0.0)``) and the doping is in
donors per site.

A 2D channel of width ``W`` (hard walls along y) is written in the basis of its transverse modes
``chi_m(y) = sqrt(2/W) sin(m pi y / W)`` with energies ``E_m = hbar^2 pi^2 m^2 / (2 m* W^2)``. When the
potential does not vary across the width, the modes decouple: each slice holds ``n_modes`` orbitals
(one per mode, all at the same position), each a 1D chain raised by ``E_m``. The charge of a slice is
the sum over its modes. This is the uncoupled mode-space approximation.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from invdesign.negf.errors import NEGFInputError
from invdesign.negf.system import Device, Lead

HBAR2_OVER_2M0_EV_NM2 = 0.0380998211615486  # hbar^2 / (2 m0), eV nm^2


def hopping_energy(a_nm: float, mstar: float) -> float:
    """``t0 = hbar^2 / (2 m* a^2)`` (eV) for lattice spacing ``a_nm`` and relative mass ``mstar``."""
    if a_nm <= 0 or mstar <= 0:
        raise NEGFInputError(f"a_nm and mstar must be positive; got {a_nm}, {mstar}")
    return HBAR2_OVER_2M0_EV_NM2 / (mstar * a_nm**2)


def mode_energies(width_nm: float, mstar: float, n_modes: int) -> np.ndarray:
    """Subband bottoms ``E_m = hbar^2 pi^2 m^2 / (2 m* W^2)`` (eV), m = 1..n_modes."""
    if width_nm <= 0 or n_modes < 1:
        raise NEGFInputError(f"width_nm > 0 and n_modes >= 1 needed; got {width_nm}, {n_modes}")
    m = np.arange(1, n_modes + 1)
    return HBAR2_OVER_2M0_EV_NM2 * (math.pi * m / width_nm) ** 2 / mstar


def mode_space_channel(n_slices: int, a_nm: float, mstar: float, offsets_ev: np.ndarray,
                       x0_nm: float = 0.0, y_nm: float = 0.0, z_nm: float = 0.0) -> tuple[Device, np.ndarray]:
    """Channel of ``n_slices`` lattice points, one orbital per mode (subband offset ``offsets_ev``) per slice.

    Returns ``(device, positions)``: a ``Device`` with diagonal ``(n_modes, n_modes)`` blocks
    ``diag(2 t0 + E_m)`` and couplings ``-t0 I`` (leads: the same chain), and ``(n_slices * n_modes, 3)``
    positions (nm) with slice ``i`` at ``x = x0 + i a``.
    """
    if n_slices < 1:
        raise NEGFInputError(f"n_slices must be >= 1; got {n_slices}")
    t0 = hopping_energy(a_nm, mstar)
    e = np.asarray(offsets_ev, dtype=float).reshape(-1)
    h00 = torch.as_tensor(np.diag(2 * t0 + e))
    h01 = torch.as_tensor(-t0 * np.eye(len(e)))
    lead = Lead(h00, h01)
    device = Device([h00] * n_slices, [h01] * (n_slices - 1), lead, lead)
    x = x0_nm + a_nm * np.arange(n_slices)
    positions = np.zeros((n_slices * len(e), 3))
    positions[:, 0] = np.repeat(x, len(e))
    positions[:, 1] = y_nm
    positions[:, 2] = z_nm
    return device, positions


def effective_mass_chain(n_sites: int, a_nm: float, mstar: float, band_edge_ev: float = 0.0,
                         x0_nm: float = 0.0) -> tuple[Device, np.ndarray]:
    """1D effective-mass chain with conduction band edge ``band_edge_ev`` (one mode)."""
    return mode_space_channel(n_sites, a_nm, mstar, np.array([band_edge_ev]), x0_nm)


def doping_per_site(n_cm3: float, site_volume_nm3: float) -> float:
    """Donors per site for a volume density ``n_cm3`` (cm^-3) and a site volume (nm^3): ``n 1e-21 V``."""
    return n_cm3 * 1e-21 * site_volume_nm3
