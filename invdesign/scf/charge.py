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

Lead self-energies depend only on the leads and the energies, so a :class:`DensityEvaluator` keeps
them between calls (the self-consistent loop changes only the device blocks).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from invdesign.negf.constants import KB_EV
from invdesign.negf.current import fermi, gauss_legendre_grid
from invdesign.negf.errors import NEGFInputError
from invdesign.negf import rgf
from invdesign.negf.leads import self_energy_z, surface_gf_pair_z
from invdesign.negf.system import Device

DEFAULT_WINDOW_KT = 20.0  # f_L - f_R < e^-20 ~ 2e-9 outside the window
DEFAULT_ENERGY_STEP_EV = 0.004  # mean node spacing of the real-axis grid
DTYPE = torch.complex128
NUDGE_EV = 1e-7


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


def lead_self_energies(device: Device, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(Sigma_L, Sigma_R, g_L, g_R)``: self-energies on the edge slices ``(..., nz, b, b)`` (eV) and
    the leads' surface Green's functions ``(..., nz, n_lead, n_lead)`` (1/eV) at energies ``z`` (nz,).

    Real energies where a lead's surface Green's function is singular (a bound state of the lead's
    own termination) are nudged by ``+1e-7`` eV (a quadrature node there changes the integral by
    O(1e-7) of one node's weight).
    """
    sizes = device.slice_sizes
    z = z.to(DTYPE)
    for _ in range(3):
        g_l, g_r = surface_gf_pair_z(device.left, device.right, z, "modes", DTYPE)
        s_l = self_energy_z(device.left, z, sizes[0], "modes", DTYPE, g_l)
        s_r = self_energy_z(device.right, z, sizes[-1], "modes", DTYPE, g_r)
        bad = _nan_energies(s_l) | _nan_energies(s_r)
        if not bad.any():
            return s_l, s_r, g_l, g_r
        z = torch.where(bad, z + NUDGE_EV, z)
    raise NEGFInputError(f"a lead's surface Green's function is singular at E = {z[bad].real.tolist()[:5]} eV")


def _nan_energies(sigma: torch.Tensor) -> torch.Tensor:
    bad = torch.isnan(sigma.detach()).any(-1).any(-1)
    return bad.reshape(-1, bad.shape[-1]).any(0)


def _matrix_blocks(device: Device, z: torch.Tensor, sigma_l: torch.Tensor, sigma_r: torch.Tensor):
    """``(diag, up, down, s_diag, s_up)`` of ``M = z S - H - Sigma`` per slice, ``(..., nz, b, b')``."""
    zz = z.to(DTYPE)[:, None, None]
    cast = lambda m: m.to(DTYPE).unsqueeze(-3)  # noqa: E731  (insert the energy dimension)
    h = [cast(b) for b in device.blocks]
    hc = [cast(c) for c in device.couplings]
    s_diag = s_up = None
    if device.overlap is None:
        diag = [zz * torch.eye(b.shape[-1], dtype=DTYPE) - b for b in h]
        up, down = [-c for c in hc], [-c.mH for c in hc]
    else:
        s_diag = [cast(s) for s in device.overlap[0]]
        s_up = [cast(s) for s in device.overlap[1]]
        diag = [zz * s - b for s, b in zip(s_diag, h)]
        up = [zz * s - c for s, c in zip(s_up, hc)]
        down = [zz * s.mH - c.mH for s, c in zip(s_up, hc)]
    diag[0] = diag[0] - sigma_l
    diag[-1] = diag[-1] - sigma_r
    batch = torch.broadcast_shapes(*(m.shape[:-2] for m in diag + up))
    expand = lambda m: m.expand(*batch, *m.shape[-2:])  # noqa: E731
    return [expand(m) for m in diag], [expand(m) for m in up], [expand(m) for m in down], s_diag, s_up


def _populations(a_diag, a_up, a_down, s_diag, s_up) -> torch.Tensor:
    """``Re[(A S)_ii]`` per orbital from the blocks of A (Mulliken with an overlap), ``(..., nz, n)``."""
    parts = []
    for i, a in enumerate(a_diag):
        if s_diag is None:
            d = torch.diagonal(a, dim1=-2, dim2=-1)
        else:
            d = torch.einsum("...ab,...ba->...a", a, s_diag[i])
            if i > 0:
                d = d + torch.einsum("...ab,...ba->...a", a_down[i - 1], s_up[i - 1])
            if i < len(a_diag) - 1:
                d = d + torch.einsum("...ab,...ba->...a", a_up[i], s_up[i].mH)
        parts.append(d.real)
    return torch.cat(parts, dim=-1)


def _unordered(device: Device) -> Device:
    """The device with ``orbital_order`` dropped, so per-orbital outputs come in slice order."""
    if device.orbital_order is None:
        return device
    return dataclasses.replace(device, orbital_order=None)


def _green_blocks(diag, up, down, off_diagonal: bool):
    """Diagonal blocks ``G_ii`` (and ``G_{i,i+1}``, ``G_{i+1,i}``) with one inversion per slice.

    Right-connected ``gR`` (``invdesign.negf.rgf``), then from the left:
    ``G_00 = gR_0``, ``G_ii = gR_i + gR_i M_{i,i-1} G_{i-1,i-1} M_{i-1,i} gR_i``,
    ``G_{i-1,i} = -G_{i-1,i-1} M_{i-1,i} gR_i``, ``G_{i,i-1} = -gR_i M_{i,i-1} G_{i-1,i-1}``.
    """
    gr = rgf.right_connected(diag, up, down)
    gd, g_up, g_down = [gr[0]], [], []
    for i in range(1, len(diag)):
        left = gr[i] @ down[i - 1]  # gR_i M_{i,i-1}
        right = up[i - 1] @ gr[i]  # M_{i-1,i} gR_i
        gd.append(gr[i] + left @ gd[i - 1] @ right)
        if off_diagonal:
            g_up.append(-gd[i - 1] @ right)
            g_down.append(-left @ gd[i - 1])
    return gd, g_up, g_down


def hermitian_green_population(device: Device, z: torch.Tensor, sigma_l, sigma_r, g_l, g_r) -> torch.Tensor:
    """``Re[(X S)_ii]`` with ``X = (G + G^dagger)/2`` at energies ``z``, shape ``(..., nz, n)`` (1/eV).

    With an overlap the Mulliken sum runs over the leads' first cells too (``G_{edge, lead} S_{lead, edge}``,
    from ``G_{D0,L0} = G_00 (c^dagger - z s_c^dagger) g_L``), so a perfect crystal has the same
    population on every orbital and the sum rule (1 state per orbital and spin) holds at the edges.
    """
    diag, up, down, s_diag, s_up = _matrix_blocks(device, z, sigma_l, sigma_r)
    gd, g_up, g_down = _green_blocks(diag, up, down, s_diag is not None)
    if s_diag is None:
        return torch.cat([torch.diagonal(g, dim1=-2, dim2=-1).real for g in gd], dim=-1)
    x_up = [(u + d.mH) / 2 for u, d in zip(g_up, g_down)]
    pop = _populations([(g + g.mH) / 2 for g in gd], x_up, [x.mH for x in x_up], s_diag, s_up)
    zz = z.to(DTYPE)[:, None, None]
    sizes = device.slice_sizes
    extra = []
    for lead, g_edge, g_lead, size in ((device.left, gd[0], g_l, sizes[0]), (device.right, gd[-1], g_r, sizes[-1])):
        c, sc = lead.coupling_to(size)
        c, sc = c.to(DTYPE).unsqueeze(-3), sc.to(DTYPE).unsqueeze(-3)
        g_dl = g_edge @ (c.mH - zz * sc.mH) @ g_lead  # G_{edge, lead cell 0}
        g_ld = g_lead @ (c - zz * sc) @ g_edge  # G_{lead cell 0, edge}
        term = torch.einsum("...ab,...ba->...a", g_dl, sc) + torch.einsum("...ba,...ba->...a", g_ld.conj(), sc)
        extra.append(term.real / 2)
    pop = pop.clone()
    pop[..., : sizes[0]] += extra[0]
    pop[..., pop.shape[-1] - sizes[-1]:] += extra[1]
    return pop


def left_spectral_population(device: Device, z: torch.Tensor, sigma_l, sigma_r, *_) -> torch.Tensor:
    """``A_L,i = Re[(G Gamma_L G^dagger S)_ii] / 2 pi`` (states/eV/spin) at real ``z``, ``(..., nz, n)``.

    With an overlap the Mulliken sum runs over the device only (as ``Solution.spectral_functions``):
    the lead-device bond populations of the bias window are left out at the two edge slices.
    ``G Gamma_L G^dagger = (G_{:,0} y)(G_{:,0} y)^dagger`` with ``Gamma_L = y y^dagger`` of the rank of
    ``Gamma_L`` (its open channels; eigenvalues below ``GAMMA_RANK_RTOL`` of the largest are rounding),
    so the column is carried for that many vectors only (``rgf.first_column_times``). Where gradients
    must reach the leads ``y = 1`` (an eigendecomposition is not differentiable at degenerate zeros).
    """
    diag, up, down, s_diag, s_up = _matrix_blocks(device, z, sigma_l, sigma_r)
    gamma = 1j * (sigma_l - sigma_l.mH)
    if gamma.requires_grad:
        y, weight = torch.eye(gamma.shape[-1], dtype=gamma.dtype, device=gamma.device), gamma
    else:
        y, weight = _gamma_factor(gamma), None
    col = rgf.first_column_times(diag, up, down, y)
    col_w = col if weight is None else [c @ weight for c in col]
    if s_diag is None:
        pop = torch.cat([torch.einsum("...ac,...ac->...a", cw, c.conj()).real for c, cw in zip(col, col_w)], dim=-1)
    else:
        a_diag = [cw @ c.mH for c, cw in zip(col, col_w)]
        a_up = [col_w[i] @ col[i + 1].mH for i in range(len(col) - 1)]
        pop = _populations(a_diag, a_up, [a.mH for a in a_up], s_diag, s_up)
    return pop / (2 * math.pi)


GAMMA_RANK_RTOL = 1e-14


def _gamma_factor(gamma: torch.Tensor) -> torch.Tensor:
    """``y`` with ``y y^dagger = Gamma`` to rounding, ``(..., nz, b, c)``, c the largest numerical rank."""
    w, v = torch.linalg.eigh(gamma)  # ascending
    keep = int((w > GAMMA_RANK_RTOL * w.amax().clamp(min=1e-300)).sum(-1).max())
    w, v = w[..., w.shape[-1] - keep:], v[..., v.shape[-1] - keep:]
    return v * w.clamp(min=0.0).sqrt().to(v.dtype)[..., None, :]


@dataclass(frozen=True)
class DensitySettings:
    """Numerical settings of the density (defaults reach ~1e-9 electrons per orbital).

    n_poles: Ozaki poles (``None``: from the spectral bound, see :func:`poles_for_range`).
    window_kt: the real-axis window reaches this many kT beyond the outer chemical potential.
    energy_step_ev: mean spacing of the Gauss-Legendre nodes of the real-axis window (eV).
    """

    n_poles: int | None = None
    window_kt: float = DEFAULT_WINDOW_KT
    energy_step_ev: float = DEFAULT_ENERGY_STEP_EV


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
        self._sigma_cache: dict[str, tuple[torch.Tensor, ...]] = {}
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

    def _sigma(self, key: str, device: Device, energies: torch.Tensor, cache):
        if not cache:
            return lead_self_energies(device, energies)
        if key not in self._sigma_cache:
            if cache == "graph":  # keep the autograd graph of the leads (shared by later calls)
                self._sigma_cache[key] = lead_self_energies(device, energies)
            else:
                with torch.no_grad():
                    self._sigma_cache[key] = lead_self_energies(device, energies.detach())
        return self._sigma_cache[key]

    def __call__(self, device: Device, cache: bool | str = True) -> torch.Tensor:
        """``n_i - 1`` per orbital for ``device``; ``cache``: True (leads solved once, no grad), False
        (solved every call, with grad), or ``"graph"`` (solved once, their graph kept and shared)."""
        device = _unordered(device)
        kt, mu_l, mu_r, poles, residues = self._grids(device)
        x = hermitian_green_population(device, poles, *self._sigma("poles", device, poles, cache))
        if torch.isnan(x).any():
            raise NEGFInputError("the Green's function is singular at a Fermi pole (H holds NaN?)")
        n = 4 * kt * torch.einsum("p,...pn->...n", residues, x)
        width = float((mu_l - mu_r).detach().abs())
        if width == 0.0 and not (mu_l.requires_grad or mu_r.requires_grad):
            return n
        return n + self.nonequilibrium(device, kt, mu_l, mu_r, cache)

    def nonequilibrium(self, device: Device, kt: float, mu_l, mu_r, cache) -> torch.Tensor:
        """``2 Int A_L (f_L - f_R) dE`` per orbital (electrons, both spins) on the real-axis window."""
        w = self.settings.window_kt * kt
        lo, hi = torch.minimum(mu_l, mu_r) - w, torch.maximum(mu_l, mu_r) + w  # nodes move with mu
        n_e = max(8, int(math.ceil(float((hi - lo).detach()) / self.settings.energy_step_ev)))
        e, wt = gauss_legendre_grid(lo, hi, n_e)
        a_left = left_spectral_population(device, e, *self._sigma("window", device, e, cache))  # (..., nE, n)
        if torch.isnan(a_left).any():
            raise NEGFInputError("the device matrix is singular at a real-axis node (a state decoupled from the "
                                 "leads); change DensitySettings.energy_step_ev slightly")
        window = fermi(e, mu_l, self.temperature_k) - fermi(e, mu_r, self.temperature_k)
        return 2 * torch.einsum("e,...en->...n", (window * wt).to(a_left.dtype), a_left)


def electron_density(device: Device, mu_left, mu_right, temperature_k: float,
                     settings: DensitySettings = DensitySettings()) -> torch.Tensor:
    """``n_i - 1`` electrons per orbital (both spins, relative to half filling), ``(..., n_orbitals)``.

    ``mu_left``/``mu_right`` in eV (numbers or 0-d tensors), ``temperature_k`` > 0 in K. Orbitals
    come in slice order. One-shot version of :class:`DensityEvaluator` (no caching).
    """
    return DensityEvaluator(mu_left, mu_right, temperature_k, settings)(device, cache=False)
