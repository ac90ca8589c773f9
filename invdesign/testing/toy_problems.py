"""Cheap toy problems with known optima, for the optimizer and problem contract tests.

``TOY_PROBLEMS`` maps a name to a factory; every factory's keyword defaults are the module constants
below. Each problem sets ``optimum_value``, ``optimum_x`` (optimizer coordinates) and ``tolerance``
(absolute, on the value). Simulations are float64 torch arithmetic; ``grad_cost_factor`` is fixed at
2 so cost accounting is deterministic.

``ProfileFit`` is not registered: it exercises every kind of block (sigmoid, log10, a B-spline basis,
frozen entries) and parameter constraints, for tests of the core API.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import final

import torch

from invdesign.constraints import Equality, LinearParamConstraint, TotalDoseConstraint, UpperBound
from invdesign.objectives import ResponseValue, TargetCurve, WeightedSum
from invdesign.params import DTYPE, Block, BSplineBasis, ParameterSpace
from invdesign.problem import Problem
from invdesign.registry import register

QUADRATIC_DIM = 5
QUADRATIC_CONDITION = 10.0  # ratio of the largest to the smallest curvature
QUADRATIC_BOUND = 5.0
ROSENBROCK_BOUND = 2.0
BOUNDED_QUADRATIC_CENTER = (1.5, -0.5, 0.5)  # box [0, 1]^3: optimum (1, 0, 0.5), value 0.5
CONSTRAINT_TOL = 1e-6  # slack on x0^2 + x1^2 <= 1
EQUALITY_TOL = 1e-4
TOLERANCE = 1e-3
ROSENBROCK20_TOLERANCE = 1e-2
TOY_GRAD_COST_FACTOR = 2.0


class ToyProblem(Problem):
    """Base of the toy problems: the value is the simulated response itself (or its ``"f"`` entry)."""

    grad_cost_factor = TOY_GRAD_COST_FACTOR
    objective = ResponseValue()


@final
class Quadratic(ToyProblem):
    """``sum_i w_i (x_i - c_i)^2`` on ``[-bound, bound]^dim``, curvatures ``w`` log-spaced from 1 to ``condition``."""

    name = "quadratic"
    description = "convex, mildly ill-conditioned quadratic; optimum 0 inside the box"

    def __init__(self, dim: int = QUADRATIC_DIM, condition: float = QUADRATIC_CONDITION,
                 bound: float = QUADRATIC_BOUND, tolerance: float = TOLERANCE):
        self.weights = torch.logspace(0.0, math.log10(condition), dim, dtype=DTYPE)
        self.center = torch.linspace(-1.0, 1.5, dim, dtype=DTYPE)
        self.space = ParameterSpace([Block("x", (dim,), lower=-bound, upper=bound)])
        self.optimum_value, self.optimum_x, self.tolerance = 0.0, self.center.tolist(), tolerance

    def simulate(self, params):
        return (self.weights * (params["x"] - self.center) ** 2).sum()


@final
class Rosenbrock(ToyProblem):
    """``sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2`` on ``[-bound, bound]^dim``; optimum 0 at ones."""

    description = "Rosenbrock's banana valley; optimum 0 at (1, ..., 1)"

    def __init__(self, dim: int = 2, bound: float = ROSENBROCK_BOUND, tolerance: float = TOLERANCE):
        self.name = f"rosenbrock{dim}"
        self.space = ParameterSpace([Block("x", (dim,), lower=-bound, upper=bound)])
        self.optimum_value, self.optimum_x, self.tolerance = 0.0, [1.0] * dim, tolerance

    def simulate(self, params):
        x = params["x"]
        return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()


@final
class BoundedQuadratic(ToyProblem):
    """``sum_i (x_i - c_i)^2`` on ``[0, 1]^3`` with ``c`` partly outside: the optimum sits on the bounds."""

    name = "bounded_quadratic"
    description = "quadratic whose optimum lies on the box boundary (two active bounds)"

    def __init__(self, center=BOUNDED_QUADRATIC_CENTER, tolerance: float = TOLERANCE):
        self.center = torch.as_tensor(center, dtype=DTYPE)
        self.space = ParameterSpace([Block("x", self.center.shape, lower=0.0, upper=1.0)])
        best = self.center.clamp(0.0, 1.0)
        self.optimum_value = float(((best - self.center) ** 2).sum())
        self.optimum_x, self.tolerance = best.tolist(), tolerance

    def simulate(self, params):
        return ((params["x"] - self.center) ** 2).sum()


@final
class Constrained(ToyProblem):
    """``min x0 + x1`` s.t. ``x0^2 + x1^2 <= 1`` (or ``= 1``) on ``[-2, 2]^2``; optimum -sqrt(2) at -(1, 1)/sqrt(2).

    The constraint reads the simulated response ``"r2"``, so it is a response constraint.
    """

    objective = ResponseValue("f")
    description = "linear objective on the unit disk (nonlinear constraint active at the optimum)"

    def __init__(self, equality: bool = False, tol: float | None = None, tolerance: float = TOLERANCE):
        if equality:
            self.name = "constrained_eq"
            self.constraints = [Equality("r2", 1.0, tol=EQUALITY_TOL if tol is None else tol, name="unit_circle")]
        else:
            self.name = "constrained"
            self.constraints = [UpperBound("r2", 1.0, tol=CONSTRAINT_TOL if tol is None else tol, name="unit_disk")]
        self.space = ParameterSpace([Block("x", (2,), lower=-2.0, upper=2.0)])
        self.optimum_value, self.optimum_x = -math.sqrt(2.0), [-math.sqrt(0.5)] * 2
        self.tolerance = tolerance

    def simulate(self, params):
        x = params["x"]
        return {"f": x.sum(), "r2": (x**2).sum()}


@final
class Failing(ToyProblem):
    """``(x0 + 0.5)^2 + (x1 + 0.5)^2`` on ``[-1, 1]^2``; the simulation raises where ``x0 > 0.5`` and returns NaN
    where ``x1 > 0.5`` (both far from the optimum 0 at ``(-0.5, -0.5)``)."""

    name = "failing"
    description = "quadratic whose simulation fails on part of the box (exception and NaN regions)"

    def __init__(self, tolerance: float = TOLERANCE):
        self.space = ParameterSpace([Block("x", (2,), lower=-1.0, upper=1.0)])
        self.optimum_value, self.optimum_x, self.tolerance = 0.0, [-0.5, -0.5], tolerance

    def simulate(self, params):
        x = params["x"]
        if x[0].item() > 0.5:
            raise RuntimeError(f"toy solver did not converge at x0 = {x[0].item():.3g} > 0.5")
        value = ((x + 0.5) ** 2).sum()
        return value * math.nan if x[1].item() > 0.5 else value


@final
class ProfileFit(ToyProblem):
    """Fit a bounded smooth profile, a log-scale dose and a partly frozen vector; optimum 0.

    Blocks: ``profile`` (32 points, 8 cubic B-spline coefficients in [0, 1] via sigmoid: unbounded
    coordinates), ``dose`` (log10 in [1e-2, 1e2]), ``w`` (3 entries in [-1, 1], ``w[1]`` frozen at 0).
    Parameter constraints: ``w0 + w2 <= 0.5`` and total profile dose <= 24, both inactive at the optimum.
    """

    name = "profile_fit"
    description = "mixed space: sigmoid B-spline profile, log10 scalar, frozen entries, parameter constraints"

    def __init__(self, tolerance: float = TOLERANCE):
        basis = BSplineBasis(8, 32)
        self.space = ParameterSpace([
            Block("profile", (32,), lower=0.0, upper=1.0, transform="sigmoid", basis=basis),
            Block("dose", (), lower=1e-2, upper=1e2, transform="log10", init=1.0),
            Block("w", (3,), lower=-1.0, upper=1.0, init=0.0, frozen=[False, True, False]),
        ])
        coeffs = torch.linspace(0.2, 0.7, 8, dtype=DTYPE) + 0.1 * torch.sin(torch.arange(8, dtype=DTYPE))
        self.w_target = torch.tensor([0.3, 0.0, -0.4], dtype=DTYPE)
        self.dose_target = 10**0.5
        fit = TargetCurve(basis(coeffs), key="profile")
        self.objective = WeightedSum([(1.0, fit), (1.0, ResponseValue("penalty"))])
        self.constraints = [LinearParamConstraint("w", [1.0, 0.0, 1.0], 0.5), TotalDoseConstraint("profile", 24.0)]
        best = {"profile": basis(coeffs), "dose": torch.tensor(self.dose_target, dtype=DTYPE), "w": self.w_target}
        self.optimum_value, self.optimum_x = 0.0, self.space.from_params(best).tolist()
        self.tolerance = tolerance

    def simulate(self, params):
        penalty = (torch.log10(params["dose"]) - 0.5) ** 2 + ((params["w"] - self.w_target) ** 2).sum()
        return {"profile": params["profile"], "penalty": penalty}


def quadratic(dim: int = QUADRATIC_DIM, condition: float = QUADRATIC_CONDITION,
              tolerance: float = TOLERANCE) -> Problem:
    return Quadratic(dim=dim, condition=condition, tolerance=tolerance)


def rosenbrock2(tolerance: float = TOLERANCE) -> Problem:
    return Rosenbrock(dim=2, tolerance=tolerance)


def rosenbrock20(tolerance: float = ROSENBROCK20_TOLERANCE) -> Problem:
    return Rosenbrock(dim=20, tolerance=tolerance)


def bounded_quadratic(tolerance: float = TOLERANCE) -> Problem:
    return BoundedQuadratic(tolerance=tolerance)


def constrained(tolerance: float = TOLERANCE) -> Problem:
    return Constrained(equality=False, tolerance=tolerance)


def constrained_eq(tolerance: float = TOLERANCE) -> Problem:
    return Constrained(equality=True, tolerance=tolerance)


def failing(tolerance: float = TOLERANCE) -> Problem:
    return Failing(tolerance=tolerance)


TOY_PROBLEMS: dict[str, Callable[..., Problem]] = {
    "quadratic": quadratic,
    "rosenbrock2": rosenbrock2,
    "rosenbrock20": rosenbrock20,
    "bounded_quadratic": bounded_quadratic,
    "constrained": constrained,
    "constrained_eq": constrained_eq,
    "failing": failing,
}

for _name, _factory in TOY_PROBLEMS.items():  # campaigns and `invdesign list` know them as toy/<name>
    register(f"toy/{_name}")(_factory)
