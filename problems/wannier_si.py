"""A device from a Wannier90 file: a potential profile along bulk Si [011] shaped into an energy filter.

The model file ``results/wannier_si/model/si_vogl1983_hr.dat`` (+ ``.win``, ``_centres.xyz``) was
written by our own tools (``python -m problems.wannier_si``) from the published sp3s* parameters of
Vogl, Hjalmarson and Dow, J. Phys. Chem. Solids 44, 365 (1983) (``invdesign.tb.tables.vogl_sp3s``), and
the problem reads it back through ``invdesign.tb.read_wannier90`` exactly as it would a DFT model.

Device: ``CELLS`` primitive cells of bulk Si along a1 = a/2 (0, 1, 1), semi-infinite Si leads, transverse
k on a ``K_GRID`` grid (each k a batch member of one solve; T is the k-average per transverse cell). The
design is a potential energy per device cell, ``U`` in [-``U_BOX_EV``, ``U_BOX_EV``] eV (uniform across the
cross-section, so transverse k stays conserved: a gate/doping profile). Objective (minimised):
``mean T(block window) - mean T(pass window)``, windows ``PASS_EV`` and ``BLOCK_EV`` above the conduction
band minimum of the model (computed from the file's bands at build time).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

from invdesign.negf import solve
from invdesign.objectives import Objective
from invdesign.params import DTYPE, Block, ParameterSpace
from invdesign.problem import Problem
from invdesign.tb import builders, read_wannier90, tables, write_wannier90
from invdesign.tb.structure import Structure
from invdesign.tb.wannier90 import from_tb
from invdesign.tb.wannier_transport import k_average, k_grid, wannier_two_terminal
from problems import PROBLEMS

MODEL_SEED = Path(__file__).resolve().parents[1] / "results" / "wannier_si" / "model" / "si_vogl1983"
SOURCE = "Vogl, Hjalmarson, Dow, J. Phys. Chem. Solids 44, 365 (1983): sp3s*, Si"
CELLS = 6
K_GRID = (2, 2)
U_BOX_EV = 0.3
PASS_EV = (0.05, 0.25)  # above the CBM
BLOCK_EV = (0.35, 0.65)
N_ENERGIES = 12  # per window
CBM_SAMPLES = 4096


def write_model(seed: Path = MODEL_SEED) -> list[Path]:
    """Write the Vogl 1983 Si sp3s* model as Wannier90 files (``_hr.dat``, ``.win``, ``_centres.xyz``)."""
    model = tables.vogl_sp3s("Si")
    crystal = builders.zincblende(tables.lattice_constant_nm(model.name), *sorted(model.species))
    seed.parent.mkdir(parents=True, exist_ok=True)
    return write_wannier90(seed, from_tb(model, crystal), header=f"invdesign: {SOURCE}", structure=crystal)


class FilterContrast(Objective):
    name = "filter_contrast"

    def __call__(self, response, params):
        return response["block"].mean() - response["pass"].mean()

    def metrics(self, response, params):
        return {"T_pass": float(response["pass"].mean()), "T_block": float(response["block"].mean())}


class WannierSiFilter(Problem):
    name = "wannier/si_filter"
    description = "Si [011] potential profile from a Wannier90 file (Vogl 1983 sp3s*): energy filter"
    objective = FilterContrast()
    parameter_units = {"U": "eV"}

    def __init__(self, model_seed: str = str(MODEL_SEED), cells: int = CELLS, u_box_ev: float = U_BOX_EV):
        if not Path(f"{model_seed}_hr.dat").exists():
            raise FileNotFoundError(f"{model_seed}_hr.dat not found: write it with `python -m problems.wannier_si`")
        self.model = read_wannier90(model_seed)
        self.cells = cells
        self.k = k_grid(K_GRID, direction=0)
        a = 2 * math.pi * torch.linalg.inv(self.model.lattice_nm).T  # reciprocal vectors (rows), 1/nm
        frac = torch.rand(CBM_SAMPLES, 3, generator=torch.Generator().manual_seed(0), dtype=DTYPE)
        with torch.no_grad():
            n_val = 4  # 8 electrons, spinless bands
            self.cbm_ev = float(self.model.bloch().energies(frac @ a)[:, n_val].min())
        self.energies = {w: torch.linspace(self.cbm_ev + lo, self.cbm_ev + hi, N_ENERGIES, dtype=DTYPE)
                         for w, (lo, hi) in (("pass", PASS_EV), ("block", BLOCK_EV))}
        self.space = ParameterSpace([Block("U", (cells,), lower=-u_box_ev, upper=u_box_ev, init=0.0)])

    def simulate(self, params):
        n = self.model.num_wann
        u = params["U"].repeat_interleave(n)  # one value per cell, on every orbital of it
        system = wannier_two_terminal(self.model, self.cells, k_transverse=self.k, potential_ev=u)
        E = torch.cat([self.energies["pass"], self.energies["block"]])
        T = k_average(solve(system.device, E).transmission(), system.weights)
        return {"pass": T[:N_ENERGIES], "block": T[N_ENERGIES:]}

    def design_structure(self, params) -> Structure:
        """The device's Si atoms (nm): Wannier centres of the s orbitals, cell by cell."""
        centres = self.model.centres_nm[::5]  # sp3s*: 5 orbitals per atom, all centred on it
        a1 = self.model.lattice_nm[0]
        pos = torch.cat([centres + p * a1 for p in range(self.cells)])
        return Structure(pos, ("Si",) * len(pos))


def wannier_si_filter(model_seed: str = str(MODEL_SEED), cells: int = CELLS, u_box_ev: float = U_BOX_EV) -> Problem:
    """Si [011] energy filter: potential per cell, device read from a Wannier90 file (Vogl 1983 sp3s*)."""
    return WannierSiFilter(model_seed, cells, u_box_ev)


PROBLEMS["wannier/si_filter"] = wannier_si_filter

if __name__ == "__main__":
    for path in write_model(Path(sys.argv[1]) if len(sys.argv) > 1 else MODEL_SEED):
        print(f"wrote {path}")
