"""Electron density of an open device from its Green's function (conventions: ``invdesign.scf``).

Per orbital and for both spins, relative to half filling (1 electron per orbital):

    n_i - 1 = 4 kT sum_p R_p Re[(G(mu_R + i z_p kT) S)_ii]                (equilibrium part at mu_R)
            + 2 Int A_L,i(E) [f_L(E) - f_R(E)] dE                          (non-equilibrium part)

The first line is Ozaki's continued-fraction pole expansion of the Fermi function,
``f(x) = 1/2 - sum_p R_p [1/(x - i z_p) + 1/(x + i z_p)]`` with ``x = (E - mu)/kT``: the constant 1/2
integrates the spectral sum rule (1 state per orbital and spin), and the poles, closed in the upper
half plane where the retarded G is analytic, leave ``(2/beta) sum_p R_p Re G(alpha_p)`` per spin.
Bound states are included exactly. The second line integrates the lead-resolved spectral function
``A_L = Re[(G Gamma_L G^dagger S)_ii] / 2 pi`` (states/eV/spin, ``Solution.spectral_functions``) on
composite Gauss-Legendre nodes over ``[min(mu) - w kT, max(mu) + w kT]``; it vanishes at zero bias.
With an overlap, populations are Mulliken's, ``Re[(rho S)_ii]``.

Both parts run on ``invdesign.negf.Solution`` (its sweeps, its rule for energies at a lead pole, its
re-solve where the device matrix is singular at a node). Lead self-energies depend only on the leads
and the energies, so a :class:`DensityEvaluator` keeps them between calls (the self-consistent loop
changes only the device blocks).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from invdesign.negf.constants import KB_EV
from invdesign.negf.current import fermi_window
from invdesign.negf.lead_bands import lead_band_edges
from invdesign.negf.energies import edge_panel_grid
from invdesign.negf.errors import NEGFInputError
from invdesign.negf.self_energies import LeadSelfEnergies, lead_self_energies
from invdesign.negf.solution import Solution
from invdesign.negf.system import Device

DEFAULT_WINDOW_KT = 20.0  # f_L - f_R < e^-20 ~ 2e-9 outside the window
DEFAULT_PANEL_NODES = 12  # Gauss-Legendre nodes per real-axis panel
DEFAULT_PANEL_KT = 6.0  # panel length (kT) between the leads' band edges
DTYPE = torch.complex128


def ozaki_poles(n_poles: int) -> tuple[np.ndarray, np.ndarray]:
    """Poles ``z_p > 0`` and residues ``R_p`` of Ozaki's expansion of the Fermi function (PRB 75 035123).

    ``1/(1+e^x) = 1/2 - sum_p R_p [1/(x - i z_p) + 1/(x + i z_p)]``; exact to ~1e-14 for
    ``|x| < n_poles^2 / 4`` (checked in the tests). Cached: every charge evaluation asks for them, and
    the eigensolve took 0.4 s on a busy machine.
    """
    if n_poles < 1:
        raise NEGFInputError(f"n_poles must be >= 1; got {n_poles}")
    poles, residues = _ozaki_poles(int(n_poles))
    return poles.copy(), residues.copy()


@functools.lru_cache(maxsize=32)
def _ozaki_poles(n_poles: int) -> tuple[np.ndarray, np.ndarray]:
    m = 2 * n_poles
    k = np.arange(1, m)
    off = 1.0 / (2.0 * np.sqrt((2 * k - 1) * (2 * k + 1)))
    b = np.diag(off, 1) + np.diag(off, -1)
    w, v = np.linalg.eigh(b)
    keep = w > 0
    return 1.0 / w[keep], v[0, keep] ** 2 / (4.0 * w[keep] ** 2)


def poles_for_range(x_max: float) -> int:
    """Number of Ozaki poles for a spectrum within ``|E - mu| < x_max kT`` (margin included)."""
    return max(16, int(math.ceil(2.0 * math.sqrt(x_max))) + 8)


def spectral_bound(device: Device) -> float:
    """An upper bound (eV) on ``|E|`` for the spectrum of the device and its leads (Gershgorin rows)."""
    def rows(*ms):
        total = None
        for m in ms:
            r = m.detach().abs().sum(-1).reshape(-1, m.shape[-2]).amax(0)
            total = r if total is None else total + r
        return float(total.max())
    bound = 0.0
    sizes = device.slice_sizes
    for i, b in enumerate(device.blocks):
        ms = [b]
        if i > 0:
            ms.append(device.couplings[i - 1].mH if device.couplings[i - 1].is_complex() else device.couplings[i - 1].mT)
        if i < len(sizes) - 1:
            ms.append(device.couplings[i])
        bound = max(bound, rows(*[m for m in ms if m.shape[-2] == sizes[i]]))
    for lead in (device.left, device.right):
        h01 = lead.h01
        bound = max(bound, rows(lead.h00, h01, h01.mH if h01.is_complex() else h01.mT))
    if device.overlap is not None:
        bound *= 2.0  # generalised problem: keep a wide margin (the overlap is close to 1)
    return bound


def _unordered(device: Device) -> Device:
    """The device with ``orbital_order`` dropped, so per-orbital outputs come in slice order."""
    if device.orbital_order is None:
        return device
    return dataclasses.replace(device, orbital_order=None)


@dataclass(frozen=True)
class DensitySettings:
    """Numerical settings of the density (defaults reach ~1e-11 electrons per orbital on the default FET).

    n_poles: Ozaki poles (``None``: from the spectral bound, see :func:`poles_for_range`).
    window_kt: the real-axis window reaches this many kT beyond the outer chemical potential.
    panel_nodes: Gauss-Legendre nodes per panel of the real-axis window
        (``invdesign.negf.energies.edge_panel_grid``: segments split at the leads' band edges, mapped
        so that the van Hove ``1/sqrt`` there is integrated exactly).
    panel_kt: a segment between band edges gets ``max(2, ceil(length / (panel_kt kT)))`` panels.
    Measured on the default FET (window 44 kT, four band edges): 144 nodes give 1e-11 electrons per
    orbital, where the former uniform composite grid of 288 nodes was off by 1.5e-4.
    """

    n_poles: int | None = None
    window_kt: float = DEFAULT_WINDOW_KT
    panel_nodes: int = DEFAULT_PANEL_NODES
    panel_kt: float = DEFAULT_PANEL_KT

    def __post_init__(self):
        if self.n_poles is not None and self.n_poles < 1:
            raise NEGFInputError(f"DensitySettings.n_poles must be >= 1 or None; got {self.n_poles}")
        if not self.window_kt > 0 or self.panel_nodes < 1 or not self.panel_kt > 0:
            raise NEGFInputError(f"DensitySettings needs window_kt > 0, panel_nodes >= 1, panel_kt > 0; got "
                                 f"{self.window_kt}, {self.panel_nodes}, {self.panel_kt}")


class DensityEvaluator:
    """Electron density per orbital of devices sharing the same leads, at fixed ``mu_L, mu_R, T``.

    Call with a device (same leads as the first one) to get ``n_i - 1`` per orbital, both spins,
    shape ``(..., n_orbitals)`` in slice order. Lead self-energies are computed once (without grad
    when ``cache=True``); pass ``cache=False`` where gradients must reach the leads or the Fermi levels.
    """

    def __init__(self, mu_left, mu_right, temperature_k: float, settings: DensitySettings = DensitySettings(),
                 bound_ev: float | None = None):
        if temperature_k <= 0:
            raise NEGFInputError(f"the density needs a temperature > 0 K; got {temperature_k}")
        self.mu_left, self.mu_right = mu_left, mu_right
        self.temperature_k, self.settings, self.bound_ev = float(temperature_k), settings, bound_ev
        self._sigma_cache: dict[str, LeadSelfEnergies] = {}
        self._edges: dict[int, np.ndarray] = {}
        self._n_poles: int | None = None

    def _grids(self, device: Device):
        kt = KB_EV * self.temperature_k
        mu_l = torch.as_tensor(self.mu_left, dtype=torch.float64)
        mu_r = torch.as_tensor(self.mu_right, dtype=torch.float64)
        n_poles = self.settings.n_poles or self._n_poles
        if n_poles is None:  # fixed at the first call, so that cached grids stay valid
            bound = self.bound_ev if self.bound_ev is not None else spectral_bound(device)
            n_poles = self._n_poles = poles_for_range((bound + abs(float(mu_r.detach()))) / kt)
        z, r = ozaki_poles(n_poles)
        poles = mu_r.to(DTYPE) + 1j * kt * torch.as_tensor(z)
        return kt, mu_l, mu_r, poles, torch.as_tensor(r)

    def _solution(self, key: str, device: Device, energies: torch.Tensor, cache) -> Solution:
        z = energies.to(DTYPE)
        if not cache:
            leads = lead_self_energies(device, z)
        else:
            if key not in self._sigma_cache:
                if cache == "graph":  # keep the autograd graph of the leads (shared by later calls)
                    self._sigma_cache[key] = lead_self_energies(device, z)
                else:
                    with torch.no_grad():
                        self._sigma_cache[key] = lead_self_energies(device, z.detach())
            leads = self._sigma_cache[key]
        return Solution(device, z, False, "modes", DTYPE, leads=leads)

    def __call__(self, device: Device, cache: bool | str = True, lead_shifts=None) -> torch.Tensor:
        """``n_i - 1`` per orbital for ``device``; ``cache``: True (leads solved once, no grad), False
        (solved every call, with grad), or ``"graph"`` (solved once, their graph kept and shared).
        ``lead_shifts``: ``(u_L, u_R)`` (eV, tensors that may carry gradients), the rigid shifts already
        applied to ``device``'s leads, so that the real-axis nodes move with the band edges under
        differentiation (values are taken from the leads themselves)."""
        device = _unordered(device)
        kt, mu_l, mu_r, poles, residues = self._grids(device)
        x = self._solution("poles", device, poles, cache).hermitian_green_population()
        n = 4 * kt * torch.einsum("p,...pn->...n", residues, x)
        width = float((mu_l - mu_r).detach().abs())
        if width == 0.0 and not (mu_l.requires_grad or mu_r.requires_grad):
            return n
        return n + self.nonequilibrium(device, kt, mu_l, mu_r, cache, lead_shifts)

    def band_edges(self, device: Device, lead_shifts=None) -> list:
        """Band edges (eV) of both leads of ``device`` (computed once per evaluator: its devices share
        their leads). With ``lead_shifts`` the edges carry the shifts' gradient, and a batch of shifts
        gives every member's edges (a batched lead's bands are computed for its first member)."""
        edges = []
        for i, lead in enumerate((device.left, device.right)):
            if i not in self._edges:
                self._edges[i] = lead_band_edges(lead)
            if lead_shifts is None:
                edges.extend(float(e) for e in self._edges[i])
                continue
            shift = torch.as_tensor(lead_shifts[i], dtype=torch.float64).reshape(-1)
            for k in range(len(shift)):  # member k's edges: the first member's moved by u_k - u_0
                offset = (shift[k] - shift[0].detach()) if shift.requires_grad else float(shift[k] - shift[0])
                edges.extend(float(e) + offset for e in self._edges[i])
        return edges

    def nonequilibrium(self, device: Device, kt: float, mu_l, mu_r, cache, lead_shifts=None) -> torch.Tensor:
        """``2 Int A_L (f_L - f_R) dE`` per orbital (electrons, both spins) on the real-axis window."""
        w = self.settings.window_kt * kt
        lo, hi = torch.minimum(mu_l, mu_r) - w, torch.maximum(mu_l, mu_r) + w  # nodes move with mu
        e, wt = edge_panel_grid(lo, hi, self.band_edges(device, lead_shifts), self.settings.panel_nodes,
                                self.settings.panel_kt * kt)
        a_left = self._solution("window", device, e, cache).spectral_function("left")  # (..., nE, n)
        window = fermi_window(e, mu_l, mu_r, self.temperature_k)
        return 2 * torch.einsum("e,...en->...n", (window * wt).to(a_left.dtype), a_left)


def electron_density(device: Device, mu_left, mu_right, temperature_k: float,
                     settings: DensitySettings = DensitySettings()) -> torch.Tensor:
    """``n_i - 1`` electrons per orbital (both spins, relative to half filling), ``(..., n_orbitals)``.

    ``mu_left``/``mu_right`` in eV (numbers or 0-d tensors), ``temperature_k`` > 0 in K. Orbitals
    come in slice order. One-shot version of :class:`DensityEvaluator` (no caching).
    """
    return DensityEvaluator(mu_left, mu_right, temperature_k, settings)(device, cache=False)
