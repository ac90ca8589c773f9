"""One NEGF solve of a device on an energy grid; observables are computed lazily from shared sweeps.

Conventions (Caroli formula, spectral functions, LDOS with overlap): ``invdesign.negf``.
All outputs have shape ``(..., nE)`` or ``(..., nE, n_orbitals)``, where ``...`` are the batch
dimensions of the Hamiltonian and ``nE`` is dropped when a single energy was given.
The SCF charge (``invdesign.scf.charge``) runs on this class too: its pole sum on
:meth:`Solution.hermitian_green_population`, its bias-window integral on :meth:`Solution.spectral_function`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cached_property

import torch

from invdesign.negf import rgf
from invdesign.negf.blocks import matrix_blocks, orbital_population
from invdesign.negf.energies import broadened_energies
from invdesign.negf.errors import NEGFInputError
from invdesign.negf.leads import SOLVERS, broadening
from invdesign.negf.regroup import merged, pad_self_energy
from invdesign.negf.self_energies import POLE_SHIFTS_EV, LeadSelfEnergies, lead_self_energies, shift_off_poles
from invdesign.negf.system import Device, check_precision
from invdesign.negf.thin import thinned

class Solution:
    """Green's-function data of ``device`` at energies ``z``; build with :func:`solve`.

    Observables (methods) are on the energies given to :func:`solve`. The attributes ``z``,
    ``sigma_*``, ``gamma_*`` and the G blocks are on the grid actually evaluated, which gains the
    points ``E +- delta`` when a lead's surface Green's function has a pole at a requested E
    (``invdesign.negf.self_energies``). ``leads``: self-energies already computed for this grid
    (from :func:`~invdesign.negf.self_energies.lead_self_energies`, e.g. kept across the iterations
    of a self-consistent loop).
    """

    def __init__(self, device: Device, z: torch.Tensor, scalar: bool, method: str, dtype: torch.dtype,
                 level: int = 0, leads: LeadSelfEnergies | None = None, thin: bool = True):
        self.scalar, self.dtype, self.method = scalar, dtype, method
        self._level = level  # how many times the energies were shifted off a singular device matrix
        self.leads = lead_self_energies(device, z, method, dtype) if leads is None else leads
        self._combine = self.leads.combine
        self.z = self.leads.z  # the energies actually evaluated (G blocks live on this grid)
        self.sigma_left, self.sigma_right = self.leads.sigma_left, self.leads.sigma_right
        # the sweeps run on thin slices where a slice splits (exact; per-orbital outputs keep their order)
        members = self.sigma_left.shape[:-2].numel()
        thinning = thinned(device, members) if thin else None
        if thinning is not None:
            device = thinning.device
            self.sigma_left = self.sigma_left[..., thinning.first, :][..., :, thinning.first]
            self.sigma_right = self.sigma_right[..., thinning.last, :][..., :, thinning.last]
        self.device = device
        self.gamma_left = broadening(self.sigma_left)
        self.gamma_right = broadening(self.sigma_right)
        self.diag, self.up, self.down, self.s_diag, self.s_up = matrix_blocks(
            device, self.z, self.sigma_left, self.sigma_right, dtype)

    def _out(self, x: torch.Tensor, per_orbital: bool = False) -> torch.Tensor:
        x = self._requested(x, per_orbital)
        if per_orbital:
            x = self.device.to_original_order(x)
        return x.squeeze(-2 if per_orbital else -1) if self.scalar else x

    # ---- sweeps (cached) ----
    @cached_property
    def _patterns(self) -> list:
        overlaps = None if self.device.overlap is None else list(self.device.overlap[1])
        return rgf.coupling_patterns(list(self.device.couplings), overlaps)

    @cached_property
    def g_last_first(self) -> torch.Tensor:
        """``G_{N-1,0}``, from a single forward sweep."""
        return rgf.last_first_block(self.diag, self.up, self.down, self._patterns)

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
    def g_off_diagonal(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """``([G_{i,i+1}], [G_{i+1,i}])``."""
        return rgf.off_diagonal(self.up, self.down, self._gl, self.g_diagonal)

    # ---- observables ----
    def transmission(self) -> torch.Tensor:
        """T(E) from left to right, ``Tr[Gamma_R G_{N-1,0} Gamma_L G_{N-1,0}^dagger]``; ``(..., nE)``."""
        return self._observable(Solution._transmission_raw)

    def _transmission_raw(self) -> torch.Tensor:
        x = self.g_last_first
        return torch.einsum("...ab,...bc,...cd,...ad->...", self.gamma_right, x, self.gamma_left, x.conj()).real

    def transmission_right_to_left(self) -> torch.Tensor:
        """``Tr[Gamma_L G_{0,N-1} Gamma_R G_{0,N-1}^dagger]`` (equal to :meth:`transmission`)."""
        return self._observable(Solution._transmission_right_to_left_raw)

    def _transmission_right_to_left_raw(self) -> torch.Tensor:
        x = self.g_last_column[0]
        return torch.einsum("...ab,...bc,...cd,...ad->...", self.gamma_left, x, self.gamma_right, x.conj()).real

    def _observable(self, raw: Callable[["Solution"], torch.Tensor | tuple], per_orbital: bool = False):
        """Evaluate ``raw(self)``; energies where a sweep failed are re-solved (:meth:`_values`)."""
        x = self._values(raw, per_orbital)
        if isinstance(x, tuple):
            return tuple(self._out(p, per_orbital) for p in x)
        return self._out(x, per_orbital)

    def _values(self, raw: Callable[["Solution"], torch.Tensor | tuple], per_orbital: bool):
        """``raw(self)`` on the evaluated grid ``self.z``, in slice order; energies where a sweep failed
        are re-solved apart, the others kept.

        First on merged slices (``invdesign.negf.regroup``: a slice's Schur complement can be singular
        or ill conditioned while the whole matrix is not; exact), down to one slice. Where the whole
        ``E S - H - Sigma`` is singular (a state decoupled from the leads exactly at a requested real
        E: G has a pole, the observables do not), those energies are evaluated at E +- delta and
        averaged, like lead poles (error O(delta^2)). Under autograd the kept energies are solved again
        too: the failed members' graph holds NaN, which backward would spread (0 * NaN).
        """
        with rgf.conditioning_guard(len(self.device.blocks) > 1):
            x = raw(self)
        parts = x if isinstance(x, tuple) else (x,)
        bad = torch.zeros(len(self.z), dtype=torch.bool, device=self.z.device)
        for p in parts:
            nan = torch.isnan(p.detach())
            if per_orbital:
                nan = nan.any(-1)
            bad |= nan.reshape(-1, nan.shape[-1]).any(0)
        if not bad.any():
            return x
        bad_idx, ok_idx = torch.nonzero(bad).reshape(-1), torch.nonzero(~bad).reshape(-1)
        if len(self.device.blocks) > 1:
            # an ill-conditioned slice (rgf marks it): the same matrix on slices twice as large pivots
            # inside the merged block; exact, so it comes before shifting the energy
            fixed = self._subset(bad_idx, merged(self.device, 2))._values(raw, per_orbital)
        else:
            if self._level >= len(POLE_SHIFTS_EV):
                e = self.z[bad].detach().real.tolist()
                raise NEGFInputError(f"the device matrix E S - H - Sigma is singular (or H holds NaN) at E = {e[:5]} "
                                     f"eV and at E +- {POLE_SHIFTS_EV} eV")
            zb, shift = self.z[bad_idx], POLE_SHIFTS_EV[self._level]
            sub = Solution(self.device, torch.cat([zb - shift, zb + shift]), False, self.method, self.dtype,
                           level=self._level + 1, thin=False)
            both = sub._values(raw, per_orbital)
            both = tuple(both) if isinstance(both, tuple) else (both,)
            dim = -2 if per_orbital else -1
            fixed = tuple((a + b) / 2 for a, b in (sub._requested(v, per_orbital).chunk(2, dim) for v in both))
            fixed = fixed if isinstance(x, tuple) else fixed[0]
        if not any(p.requires_grad for p in parts):
            return _spliced(x, None, fixed, ok_idx, bad_idx, per_orbital)
        kept = self._subset(ok_idx, self.device)._values(raw, per_orbital) if len(ok_idx) else None
        return _spliced(x, kept, fixed, ok_idx, bad_idx, per_orbital, resolved=True)

    def _subset(self, idx: torch.Tensor, device: Device) -> "Solution":
        """A solution at the evaluated energies ``idx`` on ``device`` (this device, or it with slices
        merged by ``regroup.merged``), from this one's self-energies: no lead is solved again."""
        grow = lambda s, size, at_start: pad_self_energy(s[..., idx, :, :], size, at_start)  # noqa: E731
        sizes = device.slice_sizes
        leads = LeadSelfEnergies(self.z[idx], None, grow(self.sigma_left, sizes[0], True),
                                 grow(self.sigma_right, sizes[-1], False),
                                 self.leads.g_left[..., idx, :, :], self.leads.g_right[..., idx, :, :])
        return Solution(device, leads.z, False, self.method, self.dtype, level=self._level, leads=leads, thin=False)

    def _requested(self, x: torch.Tensor, per_orbital: bool) -> torch.Tensor:
        """Values on the evaluated grid back on the requested one (lead poles averaged)."""
        if self._combine is None:
            return x
        c = self._combine.to(x.dtype)
        return c @ x if per_orbital else x @ c.mT

    def ldos(self) -> torch.Tensor:
        """Local density of states per orbital (states/eV/spin), ``(..., nE, n_orbitals)``."""
        return self._observable(Solution._ldos_raw, per_orbital=True)

    def _ldos_raw(self) -> torch.Tensor:
        gd = self.g_diagonal
        a_diag = [1j * (g - g.mH) for g in gd]
        a_up = a_down = None
        if self.s_diag is not None:
            g_up, g_down = self.g_off_diagonal
            a_up = [1j * (u - d.mH) for u, d in zip(g_up, g_down)]  # A_{i,i+1}
            a_down = [1j * (d - u.mH) for u, d in zip(g_up, g_down)]  # A_{i+1,i}
        return orbital_population(a_diag, a_up, a_down, self.s_diag, self.s_up) / (2 * math.pi)

    def dos(self) -> torch.Tensor:
        """Total density of states (states/eV/spin), ``(..., nE)``."""
        return self.ldos().sum(-1)

    def spectral_functions(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Lead-resolved LDOS ``(A_L, A_R)`` per orbital: ``Re[(G Gamma_X G^dagger S)_oo] / 2 pi``.

        Each ``(..., nE, n_orbitals)``; they add up to :meth:`ldos`. With an overlap the Mulliken sum
        runs over the device only (the lead-device bond populations are left out at the edges).
        """
        return self.spectral_function("left"), self.spectral_function("right")

    def spectral_function(self, side: str) -> torch.Tensor:
        """``A_X = Re[(G Gamma_X G^dagger S)_oo] / 2 pi`` of one lead (``"left"``/``"right"``),
        states/eV/spin, ``(..., nE, n_orbitals)``."""
        if side not in ("left", "right"):
            raise NEGFInputError(f"side must be 'left' or 'right'; got {side!r}")
        return self._observable(lambda sol: sol._injected_raw(side), per_orbital=True)

    def _injected_raw(self, side: str) -> torch.Tensor:
        """``G Gamma_X G^dagger`` per orbital from the column ``C = G_{:,e}`` at the lead's edge slice e
        (``rgf.first_column_times``; the right lead's by the mirrored sweep).

        ``Gamma_X = tau^dagger gamma_g tau`` with ``gamma_g = i (g - g^dagger)`` and ``tau`` the lead-device
        coupling (``Sigma = tau^dagger g tau``), so ``C Gamma C^dagger = (C tau_r^dagger) gamma_g,rr
        (C tau_r^dagger)^dagger`` on the lead orbitals r that ``tau`` touches: the column is carried for
        |r| vectors instead of b_e. No factorisation of Gamma: at a lead pole (E = 0 in zigzag ribbons)
        Gamma reaches 1e5 eV with rounding-level negative eigenvalues of 1e-7 eV, and a factor that
        clamps them is off by 1e-6 relative once G amplifies them. With an overlap at complex energies
        ``tau^dagger`` is not the adjoint of ``tau``: there ``Gamma`` itself is used, with ``y = 1``.
        """
        y, weight = self._gamma_factors(side)
        if side == "left":
            col = rgf.first_column_times(self.diag, self.up, self.down, y, self._patterns)
        else:
            col = rgf.first_column_times(self.diag[::-1], self.down[::-1], self.up[::-1], y,
                                         rgf.mirrored(self._patterns))[::-1]
        col_w = [c @ weight for c in col]
        if self.s_diag is None:
            pop = torch.cat([torch.einsum("...ac,...ac->...a", cw, c.conj()).real for c, cw in zip(col, col_w)],
                            dim=-1)
        else:
            a_diag = [cw @ c.mH for c, cw in zip(col, col_w)]
            a_up = [col_w[i] @ col[i + 1].mH for i in range(len(col) - 1)]
            pop = orbital_population(a_diag, a_up, [a.mH for a in a_up], self.s_diag, self.s_up)
        return pop / (2 * math.pi)

    def _gamma_factors(self, side: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y, w)`` with ``Gamma_X = y w y^dagger``: ``y = tau_r^dagger`` ``(..., nE, b_e, |r|)`` and
        ``w = gamma_g,rr`` ``(..., nE, |r|, |r|)``, or ``(1, Gamma_X)``."""
        lead = self.device.left if side == "left" else self.device.right
        g = self.leads.g_left if side == "left" else self.leads.g_right
        c, sc = lead.coupling_to(self.device.slice_sizes[0 if side == "left" else -1])
        real_z = not bool((self.z.imag != 0).any())
        if sc is not None and not real_z:
            gamma = self.gamma_left if side == "left" else self.gamma_right
            return torch.eye(gamma.shape[-1], dtype=gamma.dtype, device=gamma.device), gamma
        dev = g.device
        tau = -c.to(dtype=self.dtype, device=dev).unsqueeze(-3)
        if sc is not None:
            tau = tau + self.z.to(self.dtype)[:, None, None] * sc.to(dtype=self.dtype, device=dev).unsqueeze(-3)
        if not tau.requires_grad:  # zero rows that carry a gradient might be bonds at a zero value
            touched = (rgf._distinct(tau) != 0).reshape(-1, *tau.shape[-2:]).any(0).any(-1)
            if not bool(touched.all()):
                rows = torch.nonzero(touched).reshape(-1)
                tau, g = tau[..., rows, :], g[..., rows, :][..., :, rows]
        return tau.mH, 1j * (g - g.mH)

    def hermitian_green_population(self) -> torch.Tensor:
        """``Re[(X S)_oo]`` with ``X = (G + G^dagger)/2`` (1/eV), ``(..., nE, n_orbitals)``: at complex
        energies, the per-orbital sum that a contour (pole) integral of the density needs.

        With an overlap the Mulliken sum runs over the leads' first cells too (``G_{edge, lead} S_{lead,
        edge}``, from ``G_{D0,L0} = G_00 (c^dagger - z s_c^dagger) g_L``), so a perfect crystal has the
        same population on every orbital and the sum rule (1 state per orbital and spin) holds at the edges.
        """
        return self._observable(Solution._hermitian_population_raw, per_orbital=True)

    def _hermitian_population_raw(self) -> torch.Tensor:
        # Re G only, away from the real axis: the one-sweep recursion is accurate here and 3x cheaper
        gd, g_up, g_down = rgf.diagonal_blocks(self.diag, self.up, self.down, self._gr, self.s_diag is not None)
        if self.s_diag is None:
            return torch.cat([torch.diagonal(g, dim1=-2, dim2=-1).real for g in gd], dim=-1)
        x_up = [(u + d.mH) / 2 for u, d in zip(g_up, g_down)]
        pop = orbital_population([(g + g.mH) / 2 for g in gd], x_up, [x.mH for x in x_up], self.s_diag, self.s_up)
        zz = self.z.to(self.dtype)[:, None, None]
        sizes = self.device.slice_sizes
        extra = []
        for lead, g_edge, g_lead, size in ((self.device.left, gd[0], self.leads.g_left, sizes[0]),
                                           (self.device.right, gd[-1], self.leads.g_right, sizes[-1])):
            c, sc = lead.coupling_to(size)
            c = c.to(dtype=self.dtype, device=zz.device).unsqueeze(-3)
            sc = sc.to(dtype=self.dtype, device=zz.device).unsqueeze(-3)
            g_dl = g_edge @ (c.mH - zz * sc.mH) @ g_lead  # G_{edge, lead cell 0}
            g_ld = g_lead @ (c - zz * sc) @ g_edge  # G_{lead cell 0, edge}
            term = torch.einsum("...ab,...ba->...a", g_dl, sc) + torch.einsum("...ba,...ba->...a", g_ld.conj(), sc)
            extra.append(term.real / 2)
        pop = pop.clone()
        pop[..., : sizes[0]] += extra[0]
        pop[..., pop.shape[-1] - sizes[-1]:] += extra[1]
        return pop


def _spliced(x, kept, fixed, ok_idx, bad_idx, per_orbital: bool, resolved: bool = False):
    """The evaluated grid's values: ``fixed`` at ``bad_idx``; at ``ok_idx`` ``kept`` (solved apart, when
    ``resolved``; None if there are none) or else ``x`` itself. Tuples part by part."""
    if isinstance(x, tuple):
        kept = (None,) * len(x) if kept is None else kept
        return tuple(_spliced(a, k, f, ok_idx, bad_idx, per_orbital, resolved) for a, k, f in zip(x, kept, fixed))
    dim = x.ndim - 2 if per_orbital else x.ndim - 1
    if resolved:  # nothing of x's graph: its failed members hold NaN
        base = torch.zeros(x.shape, dtype=fixed.dtype, device=fixed.device)
        if kept is not None:
            base = base.index_copy(dim, ok_idx, kept.to(base.dtype))
    else:
        base = torch.where(torch.isnan(x), torch.zeros_like(x), x)
    return base.index_copy(dim, bad_idx, fixed.to(base.dtype))


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
        method: lead solver: ``"modes"`` (exact, default: closed form for leads with ``h01 = alpha 1``
            (``invdesign.negf.lead_chain``), else a batched torch path on the Hamiltonian's
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
