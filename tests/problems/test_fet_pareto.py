"""fet/pareto: the FET of fet/doping_profile with Ion and Ioff as objectives, on a reduced device (the
contract's gradient check on a few random directions; ~1 min)."""

import math

import pytest

import problems
from invdesign.testing import ProblemContract

SMALL = {"source_cells": 4, "gate_cells": 6, "drain_cells": 4, "n_coeffs": 6, "n_energies": 40,
         "grad_cost_factor": 2.0}


@pytest.mark.slow
class TestFETParetoContract(ProblemContract):
    n_points = 2
    fd_directions = 2
    grad_rtol = 1e-4

    def make_problem(self):
        return problems.PROBLEMS["fet/pareto"](**SMALL)


def test_objectives_are_the_single_objective_problems_currents():
    pareto = problems.PROBLEMS["fet/pareto"](**SMALL)
    single = problems.PROBLEMS["fet/doping_profile"](**SMALL)
    z = pareto.initial_point()
    e, s = pareto.evaluate_one(z), single.evaluate_one(z)
    assert e.objectives[0] == s.value  # -log10 Ion, minimised convention, as fet/doping_profile's value
    assert abs(e.objectives[1] - (s.constraints[1] + math.log10(single.ioff_target))) < 1e-12  # log10 Ioff
    assert [c.spec.name for c in pareto.constraints] == ["dose<=baseline"] and e.constraints == s.constraints[:1]
    assert pareto.objective.ref_point == [7.0, -6.0] and pareto.n_objectives == 2
