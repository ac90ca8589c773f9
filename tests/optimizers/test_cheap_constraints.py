"""Cheap constraints (``on="params"``) never cost a simulation: a counting toy problem records every point it
simulates, and no optimizer that handles them (rejection, nevergrad's cheap-constraint registration,
BoTorch's feasible design and constrained acquisition, TuRBO's candidate filter, multistart's unsimulated
rejections) ever simulates a point that violates one."""

from __future__ import annotations

import json

import pytest
import torch

from invdesign.constraints import LinearParamConstraint, UpperBound
from invdesign.objectives import ResponseValue
from invdesign.optimizers import make_optimizer, minimize
from invdesign.optimizers.cheap_constraints import feasible, feasible_starts, repair, violated
from invdesign.params import Block, ParameterSpace
from invdesign.problem import Problem

LIMIT = 0.5  # x0 + x1 <= LIMIT: the unconstrained optimum (0.8, 0.8, .) lies outside


class Counting(Problem):
    """``sum (x - c)^2`` on ``[-1, 1]^3``, ``c = (0.8, 0.8, -0.3)``, cheap constraint ``x0 + x1 <= 0.5``
    (optimum 0.605 at ``(0.25, 0.25, -0.3)``); optionally a response constraint ``f <= 2``. ``simulated``
    lists every point simulated."""

    name = "counting"
    grad_cost_factor = 2.0
    objective = ResponseValue("f")

    def __init__(self, response_constraint: bool = False):
        self.space = ParameterSpace([Block("x", (3,), lower=-1.0, upper=1.0, init=[-0.5, -0.5, 0.5])])
        self.constraints = [LinearParamConstraint("x", [1.0, 1.0, 0.0], LIMIT, name="sum")]
        if response_constraint:
            self.constraints.append(UpperBound("f", 2.0, name="f_at_most_2"))
        self.center = torch.tensor([0.8, 0.8, -0.3], dtype=torch.float64)
        self.simulated: list[list[float]] = []

    def simulate(self, params):
        x = params["x"]
        self.simulated.append(x.detach().tolist())
        return {"f": ((x - self.center) ** 2).sum()}


CASES = {
    "multistart": ("multistart", {}, 60),
    "multistart_adam": ("multistart", {"local": "adam", "members": 2}, 60),
    "multistart_no_screen": ("multistart", {"screen": 0}, 60),
    "multistart_reject": ("multistart", {"cheap": "reject"}, 60),
    "ng_cma": ("nevergrad", {"optimizer": "CMA"}, 60),
    "ng_de": ("nevergrad", {"optimizer": "TwoPointsDE"}, 60),
    "ng_pso_q4": ("nevergrad", {"optimizer": "PSO", "batch_size": 4}, 60),
    "random": ("random", {}, 60),
    "sobol_q4": ("sobol", {"batch_size": 4}, 60),
    "botorch": ("botorch", {"n_init": 4, "num_restarts": 2, "raw_samples": 16, "acqf_maxiter": 20}, 8),
    "turbo": ("turbo", {"n_init": 4, "n_candidates": 200}, 10),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("response_constraint", [False, True])
def test_no_simulation_violates_a_cheap_constraint(case, response_constraint):
    name, settings, evals = CASES[case]
    problem = Counting(response_constraint)
    optimizer = make_optimizer(name, problem, 0, **settings)
    result = minimize(problem, optimizer, max_evals=evals)
    assert problem.simulated, "nothing was simulated"
    worst = max(x[0] + x[1] for x in problem.simulated)
    assert worst <= LIMIT, f"{case}: simulated a point with x0 + x1 = {worst} > {LIMIT}"
    assert len(problem.simulated) == result.n_evals  # rejected points are not evaluations
    assert result.best.feasible and result.best.value < 2.0
    json.dumps(optimizer.state_dict(), allow_nan=False)


def test_multistart_projects_onto_cheap_constraints_and_reaches_the_constrained_optimum():
    problem = Counting()
    optimizer = make_optimizer("multistart", problem, 0)
    result = minimize(problem, optimizer, max_cost=200)  # the 32-point screen, then 8 members
    assert result.best.value - 0.605 <= 1e-9  # slides along x0 + x1 = 0.5 to (0.25, 0.25, -0.3)
    assert result.total_cost == pytest.approx(2.0 * result.n_evals)


def test_multistart_rejection_tells_unsimulated_failures_and_stops_at_the_boundary():
    problem = Counting()
    optimizer = make_optimizer("multistart", problem, 0, cheap="reject", screen=0)
    result = minimize(problem, optimizer, max_cost=120)
    assert optimizer.counts["rejected"] > 0  # members ran into the constraint and backed off, uncharged
    assert result.total_cost == pytest.approx(2.0 * result.n_evals)
    assert 0.0 < result.best.value - 0.605 <= 0.1  # a barrier: near the boundary, not along it


def test_helpers_reject_repair_and_draw_feasible_starts():
    problem = Counting()
    outside = torch.tensor([0.9, 0.9, 0.0], dtype=torch.float64)
    assert violated(problem, outside) == "sum" and not feasible(problem, outside)
    fixed = repair(problem, outside)
    assert feasible(problem, fixed) and float(fixed[0] + fixed[1]) <= LIMIT
    engine = torch.quasirandom.SobolEngine(3, scramble=True, seed=0)
    points, used = feasible_starts(problem, lambda k: engine.draw(k, dtype=torch.float64), 10, 1000)
    assert points.shape == (10, 3) and used >= 10
    assert all(feasible(problem, problem.from_unit(u)) for u in points)


class CountingMO(Problem):
    """Two objectives, ``|x - c1|^2`` and ``|x - c2|^2`` on ``[-1, 1]^3`` (c1 = (0.8, 0.8, -0.3), c2 = (0.8,
    -0.8, 0.3)), under the cheap constraint ``x0 + x1 <= 0.5``; ``simulated`` lists every point simulated."""

    name = "counting_mo"
    grad_cost_factor = 2.0

    def __init__(self):
        from invdesign.multiobjective import MultiObjective, ObjectiveSpec

        self.space = ParameterSpace([Block("x", (3,), lower=-1.0, upper=1.0, init=[-0.5, -0.5, 0.5])])
        self.objective = MultiObjective([(ObjectiveSpec("f1", "min", 12.0), "f1"),
                                         (ObjectiveSpec("f2", "min", 12.0), "f2")])
        self.constraints = [LinearParamConstraint("x", [1.0, 1.0, 0.0], LIMIT, name="sum")]
        self.c1 = torch.tensor([0.8, 0.8, -0.3], dtype=torch.float64)
        self.c2 = torch.tensor([0.8, -0.8, 0.3], dtype=torch.float64)
        self.simulated: list[list[float]] = []

    def simulate(self, params):
        x = params["x"]
        self.simulated.append(x.detach().tolist())
        return {"f1": ((x - self.c1) ** 2).sum(), "f2": ((x - self.c2) ** 2).sum()}


MO_CASES = {
    "ng_de_q4": ("nevergrad_mo", {"optimizer": "DE", "batch_size": 4}, 60),
    "ng_cma": ("nevergrad_mo", {"optimizer": "CMA"}, 60),
    "random_q4": ("random", {"batch_size": 4}, 60),
    "sweep": ("scalarization_sweep", {"n_weights": 4, "steps": 15}, 60),
    "sweep_initial": ("scalarization_sweep", {"n_weights": 3, "steps": 20, "start": "initial"}, 60),
}


@pytest.mark.parametrize("case", sorted(MO_CASES))
def test_multi_objective_optimizers_never_simulate_a_cheap_violation(case):
    """A rejected candidate is told a vector loss (a scalar one made nevergrad_mo raise: 'Expected 2
    loss(es), but received 1', found by the fet_pareto campaign)."""
    name, settings, evals = MO_CASES[case]
    problem = CountingMO()
    optimizer = make_optimizer(name, problem, 0, **settings)
    result = minimize(problem, optimizer, max_evals=evals)
    assert len(problem.simulated) == result.n_evals == evals
    worst = max(x[0] + x[1] for x in problem.simulated)
    assert worst <= LIMIT, f"{case}: simulated a point with x0 + x1 = {worst} > {LIMIT}"
    assert all(e.feasible for e in result.history)
    json.dumps(optimizer.state_dict(), allow_nan=False)


def test_sweep_slides_along_a_cheap_constraint_to_the_constrained_front():
    """The f1-only member (weights (1, 0)) ends at f1's constrained minimum 0.605 at (0.25, 0.25, -0.3) on
    x0 + x1 = 0.5; with Adam's iterates projected instead, it stuck at 0.661 (per-coordinate steps along
    the constraint's normal)."""
    problem = CountingMO()
    result = minimize(problem, make_optimizer("scalarization_sweep", problem, 0, n_weights=4, steps=30),
                      max_evals=120)
    assert min(e.objectives[0] for e in result.history) <= 0.605 + 2e-3
    assert min(e.objectives[1] for e in result.history) <= 5e-3  # f2's minimum (0.8, -0.8, 0.3) is feasible
    assert max(x[0] + x[1] for x in problem.simulated) <= LIMIT


def test_sweep_with_an_unsatisfiable_cheap_constraint_is_done_without_simulating():
    """No point of the box satisfies x0 + x1 <= -3: every member fails unsimulated and stops, and the
    sweep says it is done before it is asked (never an empty batch)."""
    problem = CountingMO()
    problem.constraints = [LinearParamConstraint("x", [1.0, 1.0, 0.0], -3.0, name="impossible")]
    optimizer = make_optimizer("scalarization_sweep", problem, 0, n_weights=3, steps=5)
    assert optimizer.done and optimizer.done_reason == "too_many_failures"
    result = minimize(problem, optimizer, max_evals=20)
    assert result.n_evals == 0 and not problem.simulated
