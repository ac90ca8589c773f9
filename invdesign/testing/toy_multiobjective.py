"""Cheap multi-objective toy problems with known Pareto fronts and hypervolumes, for the contract tests.

``TOY_MULTIOBJECTIVE`` maps a name to a factory. Each problem declares its reference point (through its
``MultiObjective``) and ``hypervolume_optimum``, the hypervolume of its true front from that point, in the
minimised convention (``invdesign.multiobjective``); ``grad_cost_factor`` is 2 as for the other toys.

- ``two_quadratics``: ``f1 = |x - a|^2``, ``f2 = |x - b|^2`` in 3-D with ``|b - a| = 1``: the Pareto set is
  the segment ``a + t (b - a)``, the front ``f2 = (1 - sqrt f1)^2`` (convex). From ``ref = (R, R)``,
  ``R >= 1``: ``HV = R^2 - 1/6``.
- ``two_quadratics_constrained``: the same with the response constraint ``x0 <= 0.25``, which cuts the
  set at ``t = 3/4``: ``HV = R^2 - [c - 4/3 c^1.5 + c^2/2] - (R - c)/16`` with ``c = 9/16``.
- ``zdt1``: ZDT1 in 4-D (Zitzler, Deb, Thiele 2000) with the second objective *maximised* as
  ``1 - f2`` (so senses are exercised): front ``f2 = 1 - sqrt f1``; from the minimised ``ref = (1.1, 0.1)``
  (``f1 <= 1.1``, ``1 - f2 >= -0.1``), ``HV = 1.1 * 1.1 - 1/3``. ``x0 >= 1e-6`` keeps the gradient finite.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import final

import torch

from invdesign.constraints import UpperBound
from invdesign.multiobjective import MultiObjective, ObjectiveSpec
from invdesign.params import DTYPE, Block, ParameterSpace
from invdesign.problem import Problem

QUAD_A = (-0.5, 0.0, 0.25)
QUAD_B = (0.5, 0.0, 0.25)
QUAD_BOUND = 2.0
QUAD_REF = 1.5
X0_LIMIT = 0.25
ZDT_DIM = 4
ZDT_REF = (1.1, 0.1)  # minimised convention: f1 <= 1.1, (1 - f2) >= -0.1
ZDT_X0_MIN = 1e-6
TOY_GRAD_COST_FACTOR = 2.0


@final
class TwoQuadratics(Problem):
    """Two squared distances to the points ``a`` and ``b``; optionally ``x0 <= x0_limit``."""

    grad_cost_factor = TOY_GRAD_COST_FACTOR

    def __init__(self, constrained: bool = False, ref: float = QUAD_REF):
        self.a, self.b = torch.tensor(QUAD_A, dtype=DTYPE), torch.tensor(QUAD_B, dtype=DTYPE)
        self.space = ParameterSpace([Block("x", (3,), lower=-QUAD_BOUND, upper=QUAD_BOUND)])
        self.objective = MultiObjective([(ObjectiveSpec("f1", "min", ref), "f1"),
                                         (ObjectiveSpec("f2", "min", ref), "f2")])
        if constrained:
            self.name = "two_quadratics_constrained"
            self.constraints = [UpperBound("x0", X0_LIMIT, name="x0<=0.25")]
            c = 9 / 16
            self.hypervolume_optimum = ref**2 - (c - 4 / 3 * c**1.5 + c**2 / 2) - (ref - c) / 16
        else:
            self.name = "two_quadratics"
            self.hypervolume_optimum = ref**2 - 1 / 6
        self.description = "two squared distances in 3-D: a straight Pareto set, convex front" + (
            ", cut by x0 <= 0.25" if constrained else "")

    def simulate(self, params):
        x = params["x"]
        return {"f1": ((x - self.a) ** 2).sum(), "f2": ((x - self.b) ** 2).sum(), "x0": x[0]}


@final
class ZDT1(Problem):
    """ZDT1 in ``dim`` dimensions: minimise ``f1 = x0``, maximise ``1 - f2``, ``f2 = g (1 - sqrt(f1 / g))``."""

    name = "zdt1"
    description = "ZDT1 (4-D), second objective maximised as 1 - f2: front f2 = 1 - sqrt(f1)"
    grad_cost_factor = TOY_GRAD_COST_FACTOR

    def __init__(self, dim: int = ZDT_DIM):
        self.space = ParameterSpace([Block("x0", (), lower=ZDT_X0_MIN, upper=1.0, init=0.5),
                                     Block("rest", (dim - 1,), lower=0.0, upper=1.0, init=0.5)])
        self.objective = MultiObjective([(ObjectiveSpec("f1", "min", ZDT_REF[0]), "f1"),
                                         (ObjectiveSpec("one_minus_f2", "max", -ZDT_REF[1]), "one_minus_f2")])
        self.hypervolume_optimum = ZDT_REF[0] * (1.0 + ZDT_REF[1]) - 1 / 3

    def simulate(self, params):
        x0, rest = params["x0"], params["rest"]
        g = 1.0 + 9.0 * rest.sum() / rest.numel()
        f2 = g * (1.0 - torch.sqrt(x0 / g))
        return {"f1": x0, "one_minus_f2": 1.0 - f2}


def two_quadratics() -> Problem:
    return TwoQuadratics(constrained=False)


def two_quadratics_constrained() -> Problem:
    return TwoQuadratics(constrained=True)


def zdt1() -> Problem:
    return ZDT1()


TOY_MULTIOBJECTIVE: dict[str, Callable[[], Problem]] = {
    "two_quadratics": two_quadratics,
    "two_quadratics_constrained": two_quadratics_constrained,
    "zdt1": zdt1,
}
