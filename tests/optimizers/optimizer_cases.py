"""Shared cases for the optimizer tests: configurations under test, tiny problems, failure injection.

(A plain module rather than a conftest so the tables can be imported by name.)
"""

from __future__ import annotations

import math
from typing import Any

import torch

from invdesign.constraints import LowerBound, UpperBound
from invdesign.objectives import ResponseValue
from invdesign.params import Block, ParameterSpace
from invdesign.problem import Evaluation, Problem

# Configurations under test: id -> (registry name, settings). Every registered optimizer appears
# at least once (checked by test_every_registered_optimizer_is_covered); nevergrad several times.
CHEAP_BOTORCH = {"num_restarts": 2, "raw_samples": 32, "mc_samples": 32, "acqf_maxiter": 25}
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "adam": ("adam", {}),
    "lbfgs": ("lbfgs", {}),
    "scipy_lbfgsb": ("scipy_lbfgsb", {}),
    "scipy_slsqp": ("scipy_slsqp", {}),
    "ng_cma": ("nevergrad", {"optimizer": "CMA"}),
    "ng_twopointsde": ("nevergrad", {"optimizer": "TwoPointsDE"}),
    "ng_pso_q4": ("nevergrad", {"optimizer": "PSO", "batch_size": 4}),
    "ng_oneplusone": ("nevergrad", {"optimizer": "OnePlusOne"}),
    "botorch": ("botorch", dict(CHEAP_BOTORCH)),
    "botorch_q2": ("botorch", {**CHEAP_BOTORCH, "batch_size": 2}),
    "random": ("random", {}),
    "sobol_q4": ("sobol", {"batch_size": 4}),
    "chain": ("chain", {}),
    "chain_cma_lbfgs": ("chain", {"stages": [
        {"optimizer": "nevergrad", "settings": {"optimizer": "CMA"}, "max_cost": 40},
        {"optimizer": "lbfgs"}]}),
    "turbo": ("turbo", {"n_candidates": 200}),
    "multistart": ("multistart", {}),
    "multistart_adam": ("multistart", {"local": "adam", "members": 2}),
    "multistart_halving": ("multistart", {"members": 4, "screen": 8, "halving": 1}),
}

# Configurations whose trajectory depends on the seed even when nothing fails.
STOCHASTIC = {"ng_cma", "ng_twopointsde", "ng_pso_q4", "ng_oneplusone", "botorch", "botorch_q2",
              "random", "sobol_q4", "chain", "chain_cma_lbfgs", "multistart", "multistart_adam",
              "multistart_halving", "turbo"}


class _Scalar(Problem):
    """One variable ``x`` in ``[lower, upper]`` with ``f(x)`` and optional constraints on ``x``."""

    grad_cost_factor = 2.0
    objective = ResponseValue("f")

    def __init__(self, name: str, fn, lower: float, upper: float, constraints=(), init=None) -> None:
        self.name, self.fn = name, fn
        self.space = ParameterSpace([Block("x", (1,), lower=lower, upper=upper, init=init)])
        self.constraints = list(constraints)

    def simulate(self, params):
        x = params["x"][0]
        return {"f": self.fn(x), "x": x}


def scalar_problem(name: str, fn, lower: float, upper: float, *, at_most: float | None = None,
                   at_least: float | None = None, init: float | None = None) -> Problem:
    """Minimise ``fn(x)`` on ``[lower, upper]`` subject to ``x <= at_most`` / ``x >= at_least``
    (as response constraints, so optimizers must use the constraint machinery, not the box)."""
    constraints = []
    if at_most is not None:
        constraints.append(UpperBound("x", at_most, name="x_at_most"))
    if at_least is not None:
        constraints.append(LowerBound("x", at_least, name="x_at_least"))
    return _Scalar(name, fn, lower, upper, constraints, init)


class Flaky:
    """A problem whose evaluations fail where ``fails(call_index, row)`` says so (failure injection).

    Delegates everything else to ``problem``; an injected failure looks like a real one (value
    NaN, no gradient, constraints NaN, ``failed=True``, the same cost).
    """

    def __init__(self, problem: Any, fails) -> None:
        self._problem, self._fails = problem, fails
        self.n_evaluated = 0

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._problem, attribute)

    def evaluate(self, z: torch.Tensor, need_grad: bool = False) -> list[Evaluation]:
        out = []
        for evaluation in self._problem.evaluate(z, need_grad):
            if self._fails(self.n_evaluated, evaluation.x):
                evaluation = Evaluation(
                    x=evaluation.x, value=math.nan, constraints=[math.nan] * len(evaluation.constraints),
                    feasible=False, failed=True, reason="RuntimeError: injected failure",
                    cost=evaluation.cost)
            self.n_evaluated += 1
            out.append(evaluation)
        return out
