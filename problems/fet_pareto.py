"""The (13,0) CNT-FET of ``fet/doping_profile`` as a two-objective problem: maximise Ion, minimise Ioff.

Everything physical is ``problems/fet_doping.py``'s (device, SCF Poisson-NEGF, currents, the B-spline donor
profile and the gate work function as design variables, the baseline start, ``plot_design``): this file
only swaps the objective. Instead of maximising Ion at ``Ioff <= target`` it returns both as objectives,

- ``log10_Ion_A`` (maximised): ``log10 I_d(V_gs = V_DD)``, ``V_ds = V_DD``;
- ``log10_Ioff_A`` (minimised): ``log10 I_d(V_gs = 0)``;

with the total dose <= the baseline's as the one constraint (a params constraint: no simulation needed to
check it). The front is the designer's whole Ion-Ioff trade-off (each point a doping profile and a work
function), which the single-objective problem samples at one Ioff.

Reference point: ``log10 Ion >= REF_LOG10_ION`` (1e-7 A; the baseline has Ion = 1.0e-5 A at Ioff = 1.0e-9 A,
the ballistic ceiling is 7.7e-5 A) and ``log10 Ioff <= REF_LOG10_IOFF`` (1e-6 A, a leaky device); designs
outside count for nothing in the hypervolume.
Cost: as ``fet/doping_profile``: at the baseline 1.5 s CPU per evaluation, 2.8 s with the gradient (measured
here, one thread; 5.4 s and 11 s of wall time on the shared, loaded 2-core machine); more near strongly doped
designs. ``grad_cost_factor`` as there.
"""

from __future__ import annotations

from typing import final

from invdesign.multiobjective import MultiObjective, ObjectiveSpec
from invdesign.problem import Problem
from invdesign.settings import settings_like
from problems import PROBLEMS
from problems.fet_doping import FETDoping

REF_LOG10_ION = -7.0
REF_LOG10_IOFF = -6.0


@final
class FETPareto(Problem):
    """Ion (max) and Ioff (min) of the (13,0) CNT-FET of ``fet/doping_profile``; dose <= baseline."""

    name = "fet_pareto"
    description = "(13,0) CNT-FET, SCF Poisson-NEGF: doping profile + gate WF, max Ion and min Ioff, dose <= baseline"

    def __init__(self, **settings):
        self.fet = FETDoping(**settings)  # its settings are checked there (settings_like below declares them)
        self.space = self.fet.space
        self.parameter_units = dict(getattr(self.fet, "parameter_units", {}) or {})
        self.constraints = [c for c in self.fet.constraints if c.spec.on == "params"]  # the dose
        self.objective = MultiObjective([
            (ObjectiveSpec("log10_Ion_A", "max", REF_LOG10_ION), "log10_ion"),
            (ObjectiveSpec("log10_Ioff_A", "min", REF_LOG10_IOFF), "log10_ioff"),
        ])

    def simulate(self, params):
        return self.fet.simulate(params)

    def measure_grad_cost_factor(self, repeats: int = 3) -> float:
        """The FET's own (given in the settings, else measured there): the same simulation and gradients."""
        return self.fet.grad_cost_factor

    def plot_design(self, params: dict, out_dir) -> list:
        """``fet/doping_profile``'s figures: doping and band profiles, Id-Vg against the baseline, summary."""
        return self.fet.plot_design(params, out_dir)


@settings_like(FETDoping)
def fet_pareto(**settings) -> FETPareto:
    """(13,0) CNT-FET under SCF Poisson-NEGF, two objectives: max Ion, min Ioff; dose <= baseline."""
    return FETPareto(**settings)


PROBLEMS["fet/pareto"] = fet_pareto
