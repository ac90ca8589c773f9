"""AD-NEGF application 3: the Slater-Koster parameters of a dopant row in a 7-AGNR, minimising mean T.

Setup (arXiv 2202.05098, section 4; ``shared/paper-notes.md``): a 7-atom-wide armchair ribbon, graphene
pz model with third neighbours and overlap (TNN_Reich2002: on-site -0.28 eV, hoppings -2.97/-0.073/
-0.33 eV, overlaps 0.073/0.018/0.026). The atoms of the central dimer line of every device cell are a
dopant species ``D`` with its own 13 parameters: on-site energy, and the hopping and overlap integrals
of the D-D and C-D pairs over the three neighbour shells. Objective: the mean transmission over
``N_ENERGIES`` energies in ``[-1, 1]`` eV (no bias, no self-consistency).

Deviation from the paper, on purpose: the leads are *pristine* ribbons (the paper's leads were the
doped cell itself, so T(E) was an integer step function with zero gradient almost everywhere); set
``doped_leads=True`` for the paper's variant. Box: +-``BOX_EV`` around the carbon values for energies
as in the paper, +-``OVERLAP_BOX`` for the (dimensionless) overlaps so the overlap matrix stays
positive definite. The carbon values are a stationary point (a perfect ribbon maximises T), so the
default start is the box corner-ish point ``INIT_OFFSET`` away from them.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, final

import torch

from invdesign.negf import solve
from invdesign.objectives import WindowAverage
from invdesign.params import DTYPE, Block, ParameterSpace
from invdesign.problem import Problem
from invdesign.settings import OneOf, Range, checked_settings, settings_like
from invdesign.tb import Shell, Species, armchair_ribbon, tables, two_terminal, wire
from invdesign.tb.model import TBModel
from problems import PROBLEMS

WIDTH = 7
CELLS = 5
DOPANT_LINE = 3  # the central dimer line of a 7-AGNR (lines 0..6)
N_ENERGIES = 50
E_MIN_EV, E_MAX_EV = -1.0, 1.0
BOX_EV = 0.3
OVERLAP_BOX = 0.05
INIT_OFFSET = 0.2  # fraction of the box half-width, alternating sign, away from the carbon values
MODEL_SET = "TNN_Reich2002"
# declared ranges of the settings (shared with robust_doping, which builds this problem)
Count = Annotated[int, Range(1)]
Line = Annotated[int, Range(0)]  # and < width: checked in AGNRDoping
BoxEV = Annotated[float, Range(0.0, low_open=True)]
OverlapBox = Annotated[float, Range(0.0, 0.5)]
InitOffset = Annotated[float, Range(-1.0, 1.0)]
ModelSet = Annotated[str, OneOf(*tables.GRAPHENE_SETS)]
PARAM_NAMES = ["onsite"] + [f"{pair}_{kind}{shell}" for pair in ("DD", "CD") for shell in (1, 2, 3)
                            for kind in ("t", "s")]


def carbon_values(model: TBModel) -> torch.Tensor:
    """The 13 parameters of a dopant identical to carbon, in ``PARAM_NAMES`` order."""
    p = model.named_parameters()  # a model with fewer shells or no overlap: the missing ones are 0
    shells = [p.get(f"{kind}/C-C/{i}/pp_pi", 0.0) for i in range(3) for kind in ("bond", "overlap")]
    return torch.tensor([p["onsite/C/p"], *shells, *shells], dtype=DTYPE)


def doped_model(base: TBModel, x: torch.Tensor) -> TBModel:
    """``base`` plus the dopant ``D`` with parameters ``x`` (13,) in ``PARAM_NAMES`` order."""
    dd, cd = x[1:7], x[7:13]
    distances = [s.distance_nm for s in base.bonds[("C", "C")]]

    def overlap(v: torch.Tensor) -> dict | None:
        return {"pp_pi": v} if base.has_overlap else None

    dd_shells = tuple(Shell(d, {"pp_pi": dd[2 * i]}, overlap(dd[2 * i + 1])) for i, d in enumerate(distances))
    cd_shells = tuple(Shell(d, {"pp_pi": cd[2 * i]}, overlap(cd[2 * i + 1])) for i, d in enumerate(distances))
    return base.with_species("D", Species(("pz",), {"p": x[0]}), {("D", "D"): dd_shells, ("C", "D"): cd_shells})


def check_geometry(width: int, line: int, e_min: float, e_max: float) -> None:
    """Settings that bound each other: the dopant line inside the ribbon, a non-empty energy window."""
    if not 0 <= line < width:
        raise ValueError(f"line must be a dimer line of the {width}-AGNR, 0..{width - 1}; got {line} "
                         f"(the central one is {(width - 1) // 2})")
    if not e_min < e_max:
        raise ValueError(f"e_min must be below e_max (eV); got e_min={e_min}, e_max={e_max}")


def dopant_sites(width: int, cells: int, line: int) -> list[int]:
    """Atom indices of dimer line ``line`` in every cell of ``armchair_ribbon(width).repeated(cells)``."""
    return [c * 2 * width + 2 * line + k for c in range(cells) for k in (0, 1)]


@final
class AGNRDoping(Problem):
    """Minimise the mean T(E) over an energy window by the dopant's 13 Slater-Koster parameters."""

    name = "agnr_doping"
    description = "AD-NEGF app. 3: 13 dopant SK parameters in a 7-AGNR, minimise mean T over [-1, 1] eV"

    @checked_settings
    def __init__(self, width: Count = WIDTH, cells: Count = CELLS, line: Line = DOPANT_LINE,
                 n_energies: Count = N_ENERGIES, e_min: float = E_MIN_EV, e_max: float = E_MAX_EV,
                 box_ev: BoxEV = BOX_EV, overlap_box: OverlapBox = OVERLAP_BOX, init_offset: InitOffset = INIT_OFFSET,
                 model_set: ModelSet = MODEL_SET, doped_leads: bool = False):
        check_geometry(width, line, e_min, e_max)
        self.base = tables.graphene_pz(model_set)
        if not self.base.has_overlap:
            overlap_box = 0.0
        c = carbon_values(self.base)
        n_shells = len(self.base.bonds[("C", "C")])  # shells the model lacks stay frozen at 0
        per_shell = [v if i < n_shells else 0.0 for i in range(3) for v in (box_ev, overlap_box)]
        half = torch.tensor([box_ev] + per_shell * 2, dtype=DTYPE)
        sign = torch.tensor([(-1.0) ** i for i in range(13)], dtype=DTYPE)
        frozen = half == 0  # overlaps of a model without overlap stay zero
        lower, upper = c - half, c + half
        lower[frozen], upper[frozen] = c[frozen] - 1, c[frozen] + 1
        self.space = ParameterSpace([Block("dopant", (13,), lower=lower, upper=upper,
                                           init=c + init_offset * half * sign, frozen=frozen)])
        cell = armchair_ribbon(width)
        device, left, right = wire(cell, cells)
        sites = dopant_sites(width, cells, line)
        self.device_structure = device.with_species(sites, "D")
        if doped_leads:
            doped_cell = cell.with_species(dopant_sites(width, 1, line), "D")
            _, left, right = wire(doped_cell, cells)
        self.left, self.right = left, right
        self.energies = torch.linspace(e_min, e_max, n_energies, dtype=DTYPE)
        self.objective = WindowAverage(key="transmission")
        self.dopant_sites = sites
        self.carbon = c
        self.doped_leads = doped_leads

    def simulate(self, params):
        model = doped_model(self.base, params["dopant"])
        system = two_terminal(model, self.device_structure, self.left, self.right)
        return {"transmission": solve(system.device, self.energies).transmission()}

    def simulate_batch(self, params) -> list[dict]:
        """Responses of ``n`` points (``params["dopant"]`` of shape (n, 13)) from one batched solve: the n
        Hamiltonians stacked along a leading batch dimension (``robust_doping.BatchedDevices``, H and S linear
        in the shell integrals), T(E) of shape (n, nE). Doped leads, or a model that is not pz-only without
        distance scaling, fall back to ``simulate`` per point."""
        x = params["dopant"]
        batched = self._batched_devices()
        if batched is None:
            return [self.simulate({"dopant": xi}) for xi in x]
        device = batched.device(x, self._dopant_mask.expand(x.shape[0], -1))
        return [{"transmission": t} for t in solve(device, self.energies).transmission()]

    def _batched_devices(self):
        """The batched assembly, built on first use (building a problem must stay cheap); None where it does
        not apply (doped leads: its leads are pristine carbon)."""
        if not hasattr(self, "_batched"):
            from problems.robust_doping import BatchedDevices  # imports this module: not at the top

            self._batched = None
            if not self.doped_leads:
                pristine = dataclasses.replace(self.device_structure, species=("C",) * len(self.device_structure.species))
                try:
                    self._batched = BatchedDevices(self.base, pristine, self.left, self.right)
                except ValueError:  # e.g. a model with distance scaling: H is not linear in the integrals
                    self._batched = None
            self._dopant_mask = torch.zeros(len(self.device_structure.species), dtype=torch.bool)
            self._dopant_mask[self.dopant_sites] = True
        return self._batched


    def plot_design(self, params: dict, out_dir) -> list:
        """T(E) of the pristine ribbon, the starting dopant and the optimised one; the doped device."""
        import pathlib

        from matplotlib.figure import Figure

        from invdesign.tb.plot import plot_structure

        out = pathlib.Path(out_dir)
        energies = torch.linspace(-1.5, 1.5, 301, dtype=DTYPE)
        curves = {"dopant = carbon (pristine)": self.carbon,
                  "start": self.space.to_params(self.initial_point())["dopant"],
                  "optimised": params["dopant"]}
        ax = Figure(figsize=(7, 4)).add_subplot()
        for (label, x), style in zip(curves.items(), ("--", ":", "-")):
            system = two_terminal(doped_model(self.base, x.detach()), self.device_structure, self.left, self.right)
            t = solve(system.device, energies).transmission().detach()
            ax.plot(energies, t, style, label=f"{label}: mean T = {float(t[(energies >= self.energies[0]) & (energies <= self.energies[-1])].mean()):.3f}")
        ax.set_xlabel("E (eV)")
        ax.set_ylabel("transmission T(E)")
        ax.axvspan(float(self.energies[0]), float(self.energies[-1]), color="0.9", zorder=0)
        ax.set_title("7-AGNR with a dopant row: objective = mean T over the shaded window")
        ax.legend()
        ax.figure.savefig(out / "transmission.png", dpi=120, bbox_inches="tight")
        sax = plot_structure(self.device_structure, self.base.with_species(
            "D", Species(("pz",), {"p": 0.0}), {("C", "D"): self.base.bonds[("C", "C")]}),
            highlight=self.dopant_sites, leads=(self.left, self.right))
        sax.figure.savefig(out / "structure.png", dpi=120, bbox_inches="tight")
        values = ", ".join(f"{n} = {v:.4f}" for n, v in zip(PARAM_NAMES, params["dopant"].tolist()))
        (out / "parameters.txt").write_text(f"optimised dopant parameters (eV; overlaps dimensionless):\n{values}\n")
        return [out / "transmission.png", out / "structure.png", out / "parameters.txt"]


@settings_like(AGNRDoping)
def agnr_doping(**settings) -> AGNRDoping:
    """AD-NEGF app. 3: 13 dopant Slater-Koster parameters in a 7-AGNR minimising mean T over [-1, 1] eV."""
    return AGNRDoping(**settings)


PROBLEMS["paper/agnr_doping"] = agnr_doping
