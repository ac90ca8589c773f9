"""One NEGF solve of a device on an energy grid; observables are computed lazily from shared sweeps.

Conventions (Caroli formula, spectral functions, LDOS with overlap): ``invdesign.negf``.
All outputs have shape ``(..., nE)`` or ``(..., nE, n_orbitals)``, where ``...`` are the batch
dimensions of the Hamiltonian and ``nE`` is dropped when a single energy was given.
"""

from __future__ import annotations

import math
from functools import cached_property

import torch

from invdesign.negf import rgf
from invdesign.negf.energies import broadened_energies
from invdesign.negf.errors import NEGFInputError
from invdesign.negf.leads import SOLVERS, broadening, self_energy_z, surface_gf_pair_z
from invdesign.negf.system import Device, check_precision


def _cast(m: torch.Tensor, dtype, device) -> torch.Tensor:
    return m.to(dtype=dtype, device=device).unsqueeze(-3)  # insert the energy dimension


class Solution:
    """Green's-function data of ``device`` at energies ``z``; build with :func:`solve`.

    Observables (methods) are on the energies given to :func:`solve`. The attributes ``z``,
    ``sigma_*``, ``gamma_*`` and the G blocks are on the grid actually evaluated, which gains the
    points ``E +- delta`` when a lead's surface Green's function has a pole at a requested E.
    """

    def __init__(self, device: Device, z: torch.Tensor, scalar: bool, method: str, dtype: torch.dtype,
                 level: int = 0):
        self.device, self.scalar, self.dtype, self.method = device, scalar, dtype, method
        self._level, self._fallback = level, None  # re-solve of energies where the device matrix is singular
        dev = z.device
        sizes = device.slice_sizes
        self.sigma_left, self.sigma_right = _self_energies(device, z, method, dtype)
        self._combine = None
        pole = _nan_energies(self.sigma_left) | _nan_energies(self.sigma_right)
        if pole.any():
            # A lead's surface Green's function has a pole at these energies (a bound state of the
            # lead's own termination). The device G is analytic there, so evaluate at E +- delta and
            # average: exact to O(delta^2) ~ 1e-12 relative
            # (delta = 1e-6 eV, larger only if E +- delta is singular too).
            for shift in POLE_SHIFTS_EV:
                z_new, combine = _shift_off_poles(z, pole, shift)
                ok, shifted = ~pole, z_new[int((~pole).sum()):]
                extra_l, extra_r = _self_energies(device, shifted, method, dtype)
                if not (_nan_energies(extra_l) | _nan_energies(extra_r)).any():
                    break
            else:
                bad = z[pole].detach().real.tolist()
                raise NEGFInputError(f"a lead's surface Green's function is singular at E and at E +- "
                                     f"{POLE_SHIFTS_EV} eV for E = {bad[:5]}")
            z, self._combine = z_new, combine
            # the regular energies are solved again, apart: the first solve's graph holds NaN at the
            # poles, which backward would spread (0 * NaN) into dT/dE and into lead-parameter gradients
            n_ok = int(ok.sum())
            if n_ok:
                base_l, base_r = _self_energies(device, z_new[:n_ok], method, dtype)
                extra_l, extra_r = torch.cat([base_l, extra_l], dim=-3), torch.cat([base_r, extra_r], dim=-3)
            self.sigma_left, self.sigma_right = extra_l, extra_r
        self.z = z  # the energies actually evaluated (G blocks live on this grid)
        zz = z[:, None, None]
        self.gamma_left = broadening(self.sigma_left)
        self.gamma_right = broadening(self.sigma_right)
        h = [_cast(b, dtype, dev) for b in device.blocks]
        hc = [_cast(c, dtype, dev) for c in device.couplings]
        if device.overlap is None:
            eye = [torch.eye(b, dtype=dtype, device=dev) for b in sizes]
            self.s_diag, self.s_up = None, None
            diag = [zz * e - hb for e, hb in zip(eye, h)]
            up = [-c for c in hc]
            down = [-c.mH for c in hc]
        else:
            self.s_diag = [_cast(s, dtype, dev) for s in device.overlap[0]]
            self.s_up = [_cast(s, dtype, dev) for s in device.overlap[1]]
            diag = [zz * s - hb for s, hb in zip(self.s_diag, h)]
            up = [zz * s - c for s, c in zip(self.s_up, hc)]
            down = [zz * s.mH - c.mH for s, c in zip(self.s_up, hc)]
        diag[0] = diag[0] - self.sigma_left
        diag[-1] = diag[-1] - self.sigma_right
        batch = torch.broadcast_shapes(*(m.shape[:-2] for m in diag + up))
        expand = lambda m: m.expand(*batch, *m.shape[-2:])  # noqa: E731
        self.diag, self.up, self.down = [expand(m) for m in diag], [expand(m) for m in up], [expand(m) for m in down]

    def _out(self, x: torch.Tensor, per_orbital: bool = False) -> torch.Tensor:
        if self._combine is not None:
            c = self._combine.to(x.dtype)
            x = c @ x if per_orbital else x @ c.mT
        if per_orbital:
            x = self.device.to_original_order(x)
        return x.squeeze(-2 if per_orbital else -1) if self.scalar else x

    # ---- sweeps (cached) ----
    @cached_property
    def g_last_first(self) -> torch.Tensor:
        """``G_{N-1,0}``, from a single forward sweep."""
        return rgf.last_first_block(self.diag, self.up, self.down)

    @cached_property
    def _gl(self):
        return rgf.left_connected(self.diag, self.up, self.down)

    @cached_property
    def _gr(self):
        return rgf.right_connected(self.diag, self.up, self.down)

    @cached_property
    def g_diagonal(self) -> list[torch.Tensor]:
        """Diagonal blocks ``G_ii``, each ``(..., nE, b_i, b_i)``."""
        return rgf.full_diagonal(self.diag, self.up, self.down, self._gl, self._gr)

    @cached_property
    def g_first_column(self) -> list[torch.Tensor]:
        return rgf.first_column(self.down, self._gr, self.g_diagonal)

    @cached_property
    def g_last_column(self) -> list[torch.Tensor]:
        return rgf.last_column(self.up, self._gl, self.g_diagonal)

    @cached_property
    def g_off_diagonal(self):
        return rgf.off_diagonal(self.up, self.down, self._gl, self.g_diagonal)

    # ---- observables ----
    def transmission(self) -> torch.Tensor:
        """T(E) from left to right, ``Tr[Gamma_R G_{N-1,0} Gamma_L G_{N-1,0}^dagger]``; ``(..., nE)``."""
        return self._observable("_transmission_raw")

    def _transmission_raw(self) -> torch.Tensor:
        x = self.g_last_first
        return torch.einsum("...ab,...bc,...cd,...ad->...", self.gamma_right, x, self.gamma_left, x.conj()).real

    def transmission_right_to_left(self) -> torch.Tensor:
        """``Tr[Gamma_L G_{0,N-1} Gamma_R G_{0,N-1}^dagger]`` (equal to :meth:`transmission`)."""
        return self._observable("_transmission_right_to_left_raw")

    def _transmission_right_to_left_raw(self) -> torch.Tensor:
        x = self.g_last_column[0]
        return torch.einsum("...ab,...bc,...cd,...ad->...", self.gamma_left, x, self.gamma_right, x.conj()).real

    def _observable(self, name: str, per_orbital: bool = False):
        """Evaluate a raw observable; energies where the device matrix is singular are re-solved.

        A state decoupled from the leads exactly at a requested real E makes ``E S - H - Sigma``
        singular there (G has a pole, the observables do not). Those energies are evaluated at
        E +- delta and averaged, like lead poles (error O(delta^2)); the G blocks and ``z`` of this
        object stay on the original grid.
        """
        if self._fallback is not None:
            return self._fallback._observable(name, per_orbital)
        x = getattr(self, name)()
        parts = x if isinstance(x, tuple) else (x,)
        bad = torch.zeros(len(self.z), dtype=torch.bool, device=self.z.device)
        for p in parts:
            nan = torch.isnan(p.detach())
            if per_orbital:
                nan = nan.any(-1)
            bad |= nan.reshape(-1, nan.shape[-1]).any(0)
        if bad.any():
            if self._level >= len(POLE_SHIFTS_EV):
                e = self.z[bad].detach().real.tolist()
                raise NEGFInputError(f"the device matrix E S - H - Sigma is singular (or H holds NaN) at E = {e[:5]} "
                                     f"eV and at E +- {POLE_SHIFTS_EV} eV")
            z_new, combine = _shift_off_poles(self.z, bad, POLE_SHIFTS_EV[self._level])
            sub = Solution(self.device, z_new, False, self.method, self.dtype, level=self._level + 1)
            total = combine if sub._combine is None else combine @ sub._combine
            sub._combine = total if self._combine is None else self._combine @ total
            sub.scalar = self.scalar
            self._fallback = sub
            return sub._observable(name, per_orbital)
        if isinstance(x, tuple):
            return tuple(self._out(p, per_orbital) for p in x)
        return self._out(x, per_orbital)

    def _orbital_density(self, blocks_diag, blocks_up, blocks_down) -> torch.Tensor:
        """``Re[(A S)_oo] / 2 pi`` per orbital from blocks of a spectral-like matrix A."""
        parts = []
        n = len(blocks_diag)
        for i in range(n):
            if self.s_diag is None:
                d = torch.diagonal(blocks_diag[i], dim1=-2, dim2=-1)
            else:
                d = torch.einsum("...ab,...ba->...a", blocks_diag[i], self.s_diag[i])
                if i > 0:  # (A)_{i,i-1} S_{i-1,i}
                    d = d + torch.einsum("...ab,...ba->...a", blocks_down[i - 1], self.s_up[i - 1])
                if i < n - 1:  # (A)_{i,i+1} S_{i+1,i}
                    d = d + torch.einsum("...ab,...ba->...a", blocks_up[i], self.s_up[i].mH)
            parts.append(d.real / (2 * math.pi))
        return torch.cat(parts, dim=-1)

    def ldos(self) -> torch.Tensor:
        """Local density of states per orbital (states/eV/spin), ``(..., nE, n_orbitals)``."""
        return self._observable("_ldos_raw", per_orbital=True)

    def _ldos_raw(self) -> torch.Tensor:
        gd = self.g_diagonal
        a_diag = [1j * (g - g.mH) for g in gd]
        a_up = a_down = None
        if self.s_diag is not None:
            g_up, g_down = self.g_off_diagonal
            a_up = [1j * (u - d.mH) for u, d in zip(g_up, g_down)]  # A_{i,i+1}
            a_down = [1j * (d - u.mH) for u, d in zip(g_up, g_down)]  # A_{i+1,i}
        return self._orbital_density(a_diag, a_up, a_down)

    def dos(self) -> torch.Tensor:
        """Total density of states (states/eV/spin), ``(..., nE)``."""
        return self.ldos().sum(-1)

    def spectral_functions(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Lead-resolved LDOS ``(A_L, A_R)`` per orbital: ``Re[(G Gamma_X G^dagger S)_oo] / 2 pi``.

        Each ``(..., nE, n_orbitals)``; they add up to :meth:`ldos`.
        """
        return self._observable("_spectral_functions_raw", per_orbital=True)

    def _spectral_functions_raw(self) -> tuple[torch.Tensor, torch.Tensor]:
        out = []
        for col, gamma in ((self.g_first_column, self.gamma_left), (self.g_last_column, self.gamma_right)):
            a_diag = [c @ gamma @ c.mH for c in col]
            a_up = a_down = None
            if self.s_diag is not None:
                a_up = [col[i] @ gamma @ col[i + 1].mH for i in range(len(col) - 1)]
                a_down = [col[i + 1] @ gamma @ col[i].mH for i in range(len(col) - 1)]
            out.append(self._orbital_density(a_diag, a_up, a_down))
        return out[0], out[1]


POLE_SHIFTS_EV = (1e-6, 1e-5, 1e-4)  # tried in turn; the average's error is O(shift^2)


def _self_energies(device: Device, z: torch.Tensor, method: str, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    sizes = device.slice_sizes
    g_left, g_right = surface_gf_pair_z(device.left, device.right, z, method, dtype)
    return (self_energy_z(device.left, z, sizes[0], method, dtype, g_left),
            self_energy_z(device.right, z, sizes[-1], method, dtype, g_right))


def _nan_energies(sigma: torch.Tensor) -> torch.Tensor:
    """Energies (last batch dim before the matrix) at which sigma is NaN for any batch member."""
    bad = torch.isnan(sigma.detach()).any(-1).any(-1)
    return bad.reshape(-1, bad.shape[-1]).any(0)


def _shift_off_poles(z: torch.Tensor, pole: torch.Tensor, shift: float) -> tuple[torch.Tensor, torch.Tensor]:
    """New grid ``[z_ok, z_pole - d, z_pole + d]`` and the (nE, nE_new) averaging matrix back."""
    ok = torch.nonzero(~pole).reshape(-1)
    bad = torch.nonzero(pole).reshape(-1)
    z_new = torch.cat([z[ok], z[bad] - shift, z[bad] + shift])
    combine = torch.zeros(len(z), len(z_new), dtype=torch.float64, device=z.device)
    combine[ok, torch.arange(len(ok))] = 1.0
    combine[bad, len(ok) + torch.arange(len(bad))] = 0.5
    combine[bad, len(ok) + len(bad) + torch.arange(len(bad))] = 0.5
    return z_new, combine


def solve(
    device: Device,
    energies,
    *,
    method: str = "modes",
    eta: float = 0.0,
    dtype: torch.dtype = torch.complex128,
) -> Solution:
    """Set up the NEGF problem of ``device`` at ``energies`` (eV); observables are methods of the result.

    Args:
        device: the device with its two leads.
        energies: number or 1-D grid (eV), real (or complex with Im >= 0); may require grad.
        method: lead solver: ``"modes"`` (exact, default: a batched torch path on the Hamiltonian's
            device, every energy checked, the QZ mode path where a check fails; surface Green's
            functions are reused across calls with equal lead values, ``invdesign.negf.lead_cache``),
            ``"qz"`` (the QZ mode path alone, on the CPU) or ``"sancho"`` (needs ``eta > 0`` in bands).
        eta: broadening added as ``E + i eta`` (eV); 0 by default, the leads alone make G retarded.
        dtype: ``torch.complex128`` (default) or ``torch.complex64``.
    """
    if not isinstance(device, Device):
        raise NEGFInputError(f"solve() needs an invdesign.negf.Device; got {type(device).__name__}")
    if method not in SOLVERS:
        raise NEGFInputError(f"unknown lead method {method!r}; choose from {tuple(SOLVERS)}")
    z, scalar = broadened_energies(energies, eta, dtype, device.blocks[0].device)
    check_precision(device, dtype)
    return Solution(device, z, scalar, method, dtype)
