"""Doping profile of a (13,0) nanotube FET under self-consistent Poisson-NEGF: maximise Ion at fixed Ioff.

Device (issue 7, application 4): a (13,0) carbon nanotube (gap 0.735 eV); ``SOURCE_CELLS`` /
``GATE_CELLS`` / ``DRAIN_CELLS`` unit cells of 0.426 nm (4.3 / 8.5 / 4.3 nm); gate all around the middle
part (``T_OX_NM`` of oxide, ``EPS_OX``); ideal ohmic n+ leads with ``CONTACT_DOPING`` donors per atom
(ViDES' value); 300 K; ``V_ds = VDD_V``. Electrostatics: the screened 1D Poisson model (``screened_1d``)
with the coaxial gate capacitance and natural length ``lambda = (r + t_ox) / 2.405`` (first zero of J0;
1.04 nm). Transport: uncoupled mode space (Guo, Datta, Lundstrom), the usual CNT-FET model: for a
potential uniform around the tube an (n,0) tube splits exactly into n ring chains with alternating
hoppings ``t`` and ``2 t cos(pi j / n)``. Only the lowest subband pair (j = 4, 9) is kept; keeping the
next one too (j = 5, 8, edge 0.785 eV from midgap) moved the baseline's Ioff by +0.4 % and Ion by +1.1 %.
The pair is degenerate, so one chain is simulated (4 orbitals per cell) and the other is accounted for
exactly by halving the gate and screening capacitances (Poisson sees twice the chain's charge) and
doubling the current. Why this model: the 12-AGNR benchmark FET costs ~10 s per bias point; this one
~0.04 s per NEGF charge evaluation, and it keeps what makes the profile matter: two bands (ambipolar
band-to-band tunnelling at the drain dominates Ioff at V_ds = 0.5 V), source-drain tunnelling, source
degeneracy. Not modelled: scattering (ballistic), inter-subband coupling, discrete dopants (the device
holds ~5 donors as a continuous line density), fringing fields of the ungated contacts (1D Poisson).

Design variables: the donor line density ``doping`` (e/nm, one value per cell) as a cubic B-spline of
``N_COEFFS`` coefficients in ``[0, MAX_DOPING_FACTOR x contact]`` (a partition of unity: the profile
stays in the box), end coefficients frozen at the leads' value; and the gate work-function offset
``gate_wf`` (eV, ``W_gate - W_channel``). Constraints (``g <= 0``): total dose (donors) <= the
baseline's; ``log10(Ioff) <= log10(IOFF_TARGET_A)``, ``Ioff = I_d(V_gs = 0)``. Objective:
``-log10(Ion / A)``, ``Ion = I_d(V_gs = VDD_V)``.

Why the work function and an Ioff constraint: Ion and Ioff rise together with every donor near the
channel, so Ion alone is maximised by filling the channel. Ion at a fixed Ioff over a V_DD window, with the
gate metal setting the threshold, is the industry benchmark; the gate's potential is ``V_g - W``, so W is
exactly a rigid shift of the window, and both currents stay differentiable in W and the doping through
the SCF adjoint. No swing constraint: from the autodiff gm it would need second derivatives through the
adjoint (not available), from a third bias point 50 % more cost; ``plot_design`` reports the swing beside
the physical limits (59.53 mV/dec; ballistic ceiling modes x G0 x Vds; the sharper ceiling set by the
source's degeneracy).

Baseline (the initial point): uniform n+ contacts and an intrinsic gated channel, as abrupt as the basis
allows (coefficients whose Greville abscissa lies under the gate are 0, the others the contact value);
its dose is the dose limit, and ``INIT_GATE_WF_EV`` pins its Ioff to the target (``pin_workfunction``;
tested).

Accuracy: the current is integrated from the source lead's band edge (``current``), where 100 nodes agree
with 3200 to 0.1 % (on) and 1e-4 (off); on the engine's default window 100 nodes were off by 7-10 % at on
states, and an optimiser steered into that error. ``plot_design`` re-checks with 4x the nodes. A 2x coarser
real-axis grid for the SCF charge moved Ion and Ioff by < 5e-4. Cost (one thread): ~0.8 s CPU per
evaluation, ~1.6 s with the gradient, at the baseline; up to ~3 s near the optimum, where the loop needs
its fallback settings (``scf_options``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated, final

import numpy as np
import torch

from invdesign.constraints import TotalDoseConstraint, UpperBound
from invdesign.negf import G0_S, KB_EV, ConvergenceError, solve
from invdesign.negf.current import gauss_legendre_grid, landauer_integral
from invdesign.negf.system import Device, Lead
from invdesign.objectives import Objective
from invdesign.params import DTYPE, Block, BSplineBasis, ParameterSpace
from invdesign.problem import Problem
from invdesign.settings import Range, checked_settings, settings_like
from invdesign.scf import (BiasPoint, FETDevice, SCFOptions, bias_point, coaxial_capacitance, screened_1d,
                           swing_between)
from problems import PROBLEMS

TUBE_N, MODE_J = 13, 9  # (13,0) tube, lowest subband pair j = 4, 9 (|2 cos(pi j / n)| equal)
MODES = 2  # degenerate subbands carried by the one simulated chain
T_EV, ACC_NM = -2.7, 0.142
CELL_NM = 3 * ACC_NM  # 4 rings per unit cell
SOURCE_CELLS, GATE_CELLS, DRAIN_CELLS = 10, 20, 10
T_OX_NM, EPS_OX = 2.0, 16.0  # HfO2 gate all around
CONTACT_DOPING = 5e-3  # donors per atom in the leads (ViDES recipe)
MAX_DOPING_FACTOR = 2.0  # box upper bound / contact doping
N_COEFFS = 14
VDD_V = 0.5  # V_ds, and Vg window [0, VDD]
IOFF_TARGET_A = 1e-9
GATE_WF_BOX_EV = (-0.4, 0.6)
INIT_GATE_WF_EV = 0.0226  # pin_workfunction(baseline) for the default settings
N_ENERGIES = 100
WINDOW_KT = 40.0  # the current grid ends 40 kT above mu_S
TEMPERATURE_K = 300.0
TOL_V = 1e-6
Cells = Annotated[int, Range(1)]
Positive = Annotated[float, Range(0.0, low_open=True)]
SS_LIMIT_MV = 1e3 * KB_EV * TEMPERATURE_K * math.log(10)  # 59.53 mV/dec


def tube_radius_nm(n: int = TUBE_N) -> float:
    """Radius (nm) of an (n,0) tube."""
    return n * math.sqrt(3) * ACC_NM / (2 * math.pi)


def mode_hopping_ev(n: int = TUBE_N, j: int = MODE_J) -> float:
    """Zigzag-ring coupling ``2 t cos(pi j / n)`` (eV) of mode ``j`` of an (n,0) tube."""
    return 2 * T_EV * math.cos(math.pi * j / n)


def band_gap_ev(n: int = TUBE_N, j: int = MODE_J) -> float:
    """Gap of the mode chain, ``2 | |b| - |t| |`` (eV); 0.735 eV for the (13,0) tube."""
    return 2 * abs(abs(mode_hopping_ev(n, j)) - abs(T_EV))


def mode_chain(cells: int, n: int = TUBE_N, j: int = MODE_J) -> tuple[Device, np.ndarray]:
    """Mode-``j`` chain of an (n,0) tube: ``cells`` slices of 4 rings; leads of 2-ring cells. Positions (nm)."""
    b, t = mode_hopping_ev(n, j), T_EV
    h00 = torch.tensor([[0, b, 0, 0], [b, 0, t, 0], [0, t, 0, b], [0, 0, b, 0]], dtype=DTYPE)
    h01 = torch.zeros(4, 4, dtype=DTYPE)
    h01[3, 0] = t  # ring 3 -> ring 0 of the next cell (axial bond)
    l00 = torch.tensor([[0.0, b], [b, 0.0]], dtype=DTYPE)  # a lead cell: one zigzag ring pair
    r01 = torch.tensor([[0.0, 0.0], [t, 0.0]], dtype=DTYPE)  # cells numbered away from the device
    left_c, right_c = torch.zeros(2, 4, dtype=DTYPE), torch.zeros(2, 4, dtype=DTYPE)
    left_c[1, 0], right_c[0, 3] = t, t  # <lead cell 0|H|edge slice>
    device = Device([h00] * cells, [h01] * (cells - 1), Lead(l00, r01.mT.clone(), coupling=left_c),
                    Lead(l00, r01, coupling=right_c))
    x = (np.arange(cells)[:, None] * CELL_NM + np.array([0.0, 0.5, 1.5, 2.0])[None] * ACC_NM).reshape(-1)
    return device, np.column_stack([x, np.zeros_like(x), np.zeros_like(x)])


@final
class OnCurrent(Objective):
    """``-log10(Ion / A)`` (maximise Ion); metrics: Ion, Ioff (A) and log10(Ion/Ioff)."""

    name = "neg_log10_ion"

    def __call__(self, response, params):
        return -response["log10_ion"]

    def metrics(self, response, params):
        on, off = float(response["log10_ion"]), float(response["log10_ioff"])
        return {"ion_A": 10**on, "ioff_A": 10**off, "log10_ion_over_ioff": on - off}


@final
class FETDoping(Problem):
    """Doping profile + gate work function of a (13,0) CNT-FET: max Ion at Ioff <= target, dose <= baseline."""

    name = "fet_doping"
    description = "(13,0) CNT-FET, SCF Poisson-NEGF: B-spline doping profile + gate WF, max Ion s.t. Ioff, dose"

    @checked_settings
    def __init__(self, source_cells: Cells = SOURCE_CELLS, gate_cells: Cells = GATE_CELLS,
                 drain_cells: Cells = DRAIN_CELLS, n_coeffs: Annotated[int, Range(4)] = N_COEFFS,
                 vdd: Positive = VDD_V, ioff_target: Positive = IOFF_TARGET_A, contact_doping: Positive = CONTACT_DOPING,
                 max_doping_factor: Positive = MAX_DOPING_FACTOR, init_gate_wf: Annotated[float, Range(*GATE_WF_BOX_EV)]
                 = INIT_GATE_WF_EV, n_energies: Annotated[int, Range(2)] = N_ENERGIES, t_ox_nm: Positive = T_OX_NM,
                 eps_ox: Annotated[float, Range(1.0)] = EPS_OX, tol_v: Positive = TOL_V,
                 grad_cost_factor: Annotated[float | None, Range(1.0)] = None):
        self.cells = source_cells + gate_cells + drain_cells
        self.gate = (source_cells, source_cells + gate_cells)  # gated cells [start, end)
        self.vdd, self.ioff_target, self.n_energies = float(vdd), float(ioff_target), int(n_energies)
        # donors per nm of tube in the leads: per atom x atoms per ring x rings per nm
        self.contact_per_nm = contact_doping * TUBE_N * 4 / CELL_NM
        device, pos = mode_chain(self.cells)
        r = tube_radius_nm()
        lam = (r + t_ox_nm) / 2.405  # coaxial natural length: slowest decay exp(-x j01 / (r + t_ox))
        c_gate = coaxial_capacitance(r, t_ox_nm, eps_ox) / MODES  # one chain carries 1/MODES of the charge
        x = pos[:, 0]
        nodes = np.arange(x.min() - CELL_NM / 4, x.max() + CELL_NM / 4 + 1e-9, CELL_NM / 4)
        g0, g1 = self.gate[0] * CELL_NM - CELL_NM / 8, self.gate[1] * CELL_NM - CELL_NM / 8
        grid = screened_1d(nodes, [("gate", g0, g1, c_gate)], lambda_nm=lam)
        if not self.vdd < band_gap_ev():
            raise ValueError(f"V_ds = {vdd} V must stay below the gap {band_gap_ev():.3f} eV (see current())")
        self.cell_of_orbital = torch.as_tensor(np.repeat(np.arange(self.cells), 4))
        per_orbital = self.per_orbital(torch.full((self.cells,), self.contact_per_nm, dtype=DTYPE))[0]
        options = SCFOptions(tol_v=tol_v, max_iter=40, switch_v=0.2, adjoint_tol=1e-8)
        # The loop's Newton/Anderson phase uses a frozen quasi-equilibrium response, which fits neither the
        # BTBT-dominated off states (the predictor phase stalls near 0.1 V: switch early) nor some ballistic
        # on states near the ceiling (the Anderson phase stalls: switch late). Most points converge in 10-15
        # charge evaluations with the first settings; the others are tried in turn (where several converge,
        # the currents agree to 1e-5). A few doped-channel designs fail all three: a failed evaluation.
        self.scf_options = (options, dataclasses.replace(options, switch_v=0.02, max_iter=60),
                            dataclasses.replace(options, memory=10, max_iter=80))
        self.fet = FETDevice(device, pos, grid, torch.zeros(len(x), dtype=DTYPE), TEMPERATURE_K,
                             gates={"gate": 0.0}, reference=1.0, contact_doping=(float(per_orbital),) * 2,
                             options=options)
        basis = BSplineBasis(n_coeffs, self.cells)
        greville = basis.greville * (self.cells - 1)  # cell units
        under_gate = (greville > self.gate[0] - 0.5) & (greville < self.gate[1] - 0.5)
        init = np.where(under_gate, 0.0, self.contact_per_nm)
        frozen = np.zeros(n_coeffs, bool)
        frozen[[0, -1]] = True  # the device edges match the leads
        wf_lo, wf_hi = GATE_WF_BOX_EV
        self.space = ParameterSpace([
            Block("doping", (self.cells,), lower=0.0, upper=max_doping_factor * self.contact_per_nm,
                  init=init, frozen=frozen, basis=basis),
            Block("gate_wf", (), lower=wf_lo, upper=wf_hi, init=init_gate_wf)])
        self.baseline_profile = basis(torch.as_tensor(init, dtype=DTYPE))
        self.max_dose = float(self.baseline_profile.sum()) * CELL_NM
        self.objective = OnCurrent()
        self.constraints = [
            TotalDoseConstraint("doping", self.max_dose, weights=CELL_NM, name="dose<=baseline", tol=1e-9),
            UpperBound("log10_ioff", math.log10(self.ioff_target), name="log10(Ioff)<=target")]
        self.band_edge_ev = self.fet.contact_shifts[0] + band_gap_ev() / 2  # source lead's E_c (eV), mu_S = 0
        if grad_cost_factor is not None:
            self.grad_cost_factor = grad_cost_factor

    def per_orbital(self, doping_per_nm: torch.Tensor) -> torch.Tensor:
        """Donors per simulated orbital (one mode of one ring) from e/nm per cell, ``(..., n_orbitals)``."""
        return doping_per_nm[..., self.cell_of_orbital] * CELL_NM / (4 * MODES)

    def currents(self, doping_per_nm: torch.Tensor, gate_wf: float | torch.Tensor,
                 vgs: tuple[float, ...]) -> tuple[list[torch.Tensor], list[BiasPoint]]:
        """Drain currents (A, both modes) and bias points at gate voltages ``vgs`` (V), ``V_ds = vdd``."""
        self.fet.doping = self.per_orbital(doping_per_nm)
        points = [self._bias_point(vg - gate_wf) for vg in vgs]  # gate Dirichlet value = V_g - W
        return [self.current(p, self.n_energies) for p in points], points

    def current(self, point: BiasPoint, n_energies: int) -> torch.Tensor:
        """Drain current (A, both modes): Landauer on Gauss-Legendre nodes over [E_c(source lead), mu_S + 40 kT].

        Below the source lead's conduction band edge T(E) = 0 exactly down to the drain's valence band (V_ds is
        below the gap, contacts alike), where f_S - f_D < e^-30. Starting the grid at the edge puts the sharp
        onset of T(E) at a panel end: on the engine's window [mu_D - 40 kT, mu_S + 40 kT] it falls inside a
        panel: 100 nodes overestimated on currents by 7-10 % (200 nodes: 2 %), and SLSQP on the reduced test
        device steered into that error, reporting an Ion above the ballistic ceiling.
        """
        kt = KB_EV * TEMPERATURE_K
        e, w = gauss_legendre_grid(self.band_edge_ev, WINDOW_KT * kt, n_energies)  # mu_S = 0, mu_D = -vdd
        t = solve(point.device(), e).transmission()
        return MODES * landauer_integral(t, e, w, 0.0, -self.vdd, TEMPERATURE_K)

    def _bias_point(self, vg: float | torch.Tensor) -> BiasPoint:
        for k, options in enumerate(self.scf_options):
            self.fet.options = options
            try:
                return bias_point(self.fet, vg, self.vdd)
            except ConvergenceError:
                if k == len(self.scf_options) - 1:
                    raise
            finally:
                self.fet.options = self.scf_options[0]

    def simulate(self, params):
        (ioff, ion), _ = self.currents(params["doping"], params["gate_wf"], (0.0, self.vdd))
        return {"log10_ion": torch.log10(ion), "log10_ioff": torch.log10(ioff)}

    def pin_workfunction(self, doping_per_nm: torch.Tensor, start: float = INIT_GATE_WF_EV, steps: int = 8) -> float:
        """Work function (eV) with ``Ioff = ioff_target`` for a fixed profile (Newton on log10 Ioff, autodiff slope)."""
        wf = float(start)
        for _ in range(steps):
            w = torch.tensor(wf, dtype=DTYPE, requires_grad=True)
            (ioff,), _ = self.currents(doping_per_nm.detach(), w, (0.0,))
            f = torch.log10(ioff) - math.log10(self.ioff_target)
            (slope,) = torch.autograd.grad(f, w)
            wf = float(np.clip(wf - float(f.detach()) / float(slope), *GATE_WF_BOX_EV))
            if abs(float(f.detach())) < 1e-4:
                break
        return wf

    def limits(self) -> dict[str, float]:
        """Thermionic swing limit (mV/dec) and ballistic current ceilings (A) at ``V_ds = vdd``."""
        kt, e_c = KB_EV * TEMPERATURE_K, self.band_edge_ev
        supply = kt * (math.log1p(math.exp(-e_c / kt)) - math.log1p(math.exp((-self.vdd - e_c) / kt)))
        return {"ss_limit_mV_per_dec": SS_LIMIT_MV, "ballistic_ceiling_A": MODES * G0_S * self.vdd,
                "source_limited_ceiling_A": MODES * G0_S * supply}

    def plot_design(self, params: dict, out_dir) -> list:
        """Doping and band profiles, Id-Vg of baseline vs optimised with the physical limits, summary.txt."""
        import pathlib

        from matplotlib.figure import Figure

        out = pathlib.Path(out_dir)
        designs = {"baseline (uniform n+ S/D, intrinsic channel)": (self.baseline_profile, None),
                   "optimised": (params["doping"].detach(), float(params["gate_wf"]))}
        vgs = np.round(np.arange(-0.3, self.vdd + 0.2001, 0.05), 4)
        lim, rows, sweeps, bands, wfs = self.limits(), [], {}, {}, {}
        for label, (profile, wf) in designs.items():
            wf = wfs[label] = self.pin_workfunction(profile) if wf is None else wf  # baseline: Ioff pinned to target
            with torch.no_grad():
                currents, points = self.currents(profile, wf, tuple(vgs.tolist()))
                at = [int(np.argmin(abs(vgs - v))) for v in (0.0, self.vdd)]  # the off and on points
                fine = [float(self.current(points[k], 4 * self.n_energies)) for k in at]  # quadrature check
            current = np.array([float(c) for c in currents])
            ss = swing_between(vgs, current)
            i_off, i_on = (float(current[k]) for k in at)
            sweeps[label] = (current, ss)
            bands[label] = [points[k] for k in at]
            in_window = (vgs[1:] > 1e-9) & (vgs[:-1] < self.vdd - 1e-9)
            rows.append(f"{label}:\n  gate work function {wf:+.4f} eV, dose {float(profile.sum()) * CELL_NM:.4f} "
                        f"donors (limit {self.max_dose:.4f})\n  Ion {i_on:.4e} A, Ioff {i_off:.4e} A (target "
                        f"{self.ioff_target:.1e}), Ion/Ioff {i_on / i_off:.4e}\n  SS min in [0, VDD] "
                        f"{ss[in_window].min():.1f} mV/dec, SS at Ioff {ss[np.argmin(abs(vgs[:-1]))]:.1f} mV/dec\n"
                        f"  {4 * self.n_energies} vs {self.n_energies} current nodes: Ioff "
                        f"{fine[0] / i_off - 1:+.1e}, Ion {fine[1] / i_on - 1:+.1e} (relative)")
        (out / "summary.txt").write_text(
            f"(13,0) CNT-FET, V_ds = {self.vdd} V, Vg window [0, {self.vdd}] V, {TEMPERATURE_K:.0f} K\n"
            + "\n".join(rows) + f"\nlimits: thermionic swing {lim['ss_limit_mV_per_dec']:.2f} mV/dec; "
            f"ballistic ceiling modes x G0 x Vds = {MODES} x {G0_S * 1e6:.2f} uS x {self.vdd} V = "
            f"{lim['ballistic_ceiling_A']:.4e} A; source-limited ballistic ceiling (contact degeneracy) "
            f"{lim['source_limited_ceiling_A']:.4e} A\n")
        x = (np.arange(self.cells) + 0.5) * CELL_NM
        fig = Figure(figsize=(7, 7.5))
        ax_d, ax_b = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2, sharex=None)
        eg = band_gap_ev()
        for k, (label, (profile, _)) in enumerate(designs.items()):
            ax_d.plot(x, profile.numpy(), f"C{k}", label=label)
            for point, style in zip(bands[label], ("-", "--")):
                u = point.potential.detach().reshape(self.cells, 4).mean(1).numpy()
                tag = f"{label.split(' ')[0]}, Vg = {float(point.vg['gate']) + wfs[label]:.2f} V"
                ax_b.plot(x, u + eg / 2, f"C{k}{style}", label=tag)
                ax_b.plot(x, u - eg / 2, f"C{k}{style}")
        for ax in (ax_d, ax_b):
            ax.axvspan(self.gate[0] * CELL_NM, self.gate[1] * CELL_NM, color="0.92", zorder=0)
        ax_d.set_ylabel("donors (e/nm)")
        ax_d.set_title("doping profile (gate shaded)")
        ax_d.legend(fontsize=8)
        ax_b.axhline(0.0, color="k", lw=0.7, ls=":")
        ax_b.axhline(-self.vdd, color="k", lw=0.7, ls=":")
        ax_b.set_xlabel("x (nm)")
        ax_b.set_ylabel("band edges E_c, E_v (eV)")
        ax_b.set_title("band edges, off (solid) and on (dashed); dotted: mu_S = 0, mu_D = -Vds", fontsize=10)
        ax_b.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(out / "profiles.png", dpi=120)
        fig = Figure(figsize=(6.5, 4.5))
        ax = fig.add_subplot()
        for k, (label, (current, _)) in enumerate(sweeps.items()):
            ax.semilogy(vgs, current, f"C{k}o-", ms=3, label=label)
        v = np.linspace(-0.3, self.vdd + 0.2, 50)
        ax.semilogy(v, self.ioff_target * 10 ** (v / (SS_LIMIT_MV * 1e-3)), "k:",
                    label=f"thermionic limit {SS_LIMIT_MV:.2f} mV/dec through Ioff target")
        ax.axhline(lim["ballistic_ceiling_A"], color="r", ls="--", lw=1, label="ballistic ceiling modes x G0 x Vds")
        ax.axhline(lim["source_limited_ceiling_A"], color="m", ls="-.", lw=1, label="source-limited ceiling")
        ax.axvspan(0.0, self.vdd, color="0.93", zorder=0)
        ax.set_ylim(self.ioff_target / 100, 3 * lim["ballistic_ceiling_A"])
        ax.set_xlabel("V_gs (V)")
        ax.set_ylabel("I_d (A)")
        ax.set_title(f"Id-Vg at V_ds = {self.vdd} V (window [0, VDD] shaded)", fontsize=10)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "id_vg.png", dpi=120)
        return [out / "profiles.png", out / "id_vg.png", out / "summary.txt"]


@settings_like(FETDoping)
def fet_doping(**settings) -> FETDoping:
    """FET doping profile under SCF Poisson-NEGF: (13,0) CNT, max Ion at Ioff <= target, dose <= baseline."""
    return FETDoping(**settings)


PROBLEMS["fet/doping_profile"] = fet_doping
