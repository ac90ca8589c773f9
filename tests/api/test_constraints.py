"""Constraints: the one sign convention, hand-computed values, gradients, the epigraph of a worst case."""

import math

import pytest
import torch
from torch.autograd import gradcheck

from invdesign.constraints import (
    ConstraintSpec,
    Equality,
    LinearParamConstraint,
    LowerBound,
    ParamConstraint,
    TotalDoseConstraint,
    UpperBound,
    epigraph,
)
from invdesign.objectives import ResponseValue, WindowAverage, WorstCase
from invdesign.params import Block, ParameterSpace
from invdesign.problem import ConstraintSpec as ReExported
from invdesign.problem import Problem

D = torch.float64


def t(x, grad=False):
    return torch.tensor(x, dtype=D, requires_grad=grad)


def test_spec_feasibility_convention():
    ineq = ConstraintSpec("g")
    assert (ineq.kind, ineq.tol, ineq.on) == ("ineq", 0.0, "response")
    assert ineq.satisfied(-1.0) and ineq.satisfied(0.0) and not ineq.satisfied(1e-12)
    assert ineq.violation(0.5) == 0.5 and ineq.violation(-3.0) == 0.0
    slack = ConstraintSpec("g", "ineq", tol=1e-3)
    assert slack.satisfied(5e-4) and slack.violation(2e-3) == pytest.approx(1e-3)
    eq = ConstraintSpec("h", "eq", tol=0.1)
    assert eq.satisfied(-0.1) and eq.satisfied(0.05) and not eq.satisfied(-0.2)
    assert eq.violation(-0.3) == pytest.approx(0.2)
    for spec in (ineq, eq):
        assert not spec.satisfied(math.nan) and spec.violation(math.nan) == math.inf
    assert ReExported is ConstraintSpec


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="g", kind="le"), "constraint 'g': kind must be"),
    (dict(name="g", on="both"), "constraint 'g': on must be"),
    (dict(name="g", tol=-1.0), "constraint 'g': tol must be"),
    (dict(name=""), "name must be a non-empty string"),
])
def test_spec_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConstraintSpec(**kwargs)


def test_linear_param_constraint():
    c = LinearParamConstraint("x", [1.0, -2.0, 0.5], 1.0)
    assert isinstance(c, ParamConstraint) and c.spec == ConstraintSpec("linear(x)", "ineq", 0.0, "params")
    assert float(c(None, {"x": t([1.0, 1.0, 4.0])})) == 1.0 - 2.0 + 2.0 - 1.0
    assert gradcheck(lambda x: c(None, {"x": x}), (t([0.3, -1.0, 2.0], grad=True),))
    scalar_a = LinearParamConstraint("x", 1.0, 0.0, name="sum")
    assert float(scalar_a(None, {"x": t([[1.0, 2.0], [3.0, 4.0]])})) == 10.0
    with pytest.raises(ValueError, match=r"constraint 'linear\(x\)': a of shape \(3,\) does not broadcast"):
        c(None, {"x": t([1.0, 2.0])})


def test_total_dose_constraint():
    c = TotalDoseConstraint("n", 10.0, weights=[1.0, 2.0])
    assert c.spec.on == "params" and c.spec.name == "total_dose(n)<=10"
    assert float(c(None, {"n": t([2.0, 3.0])})) == -2.0


def test_bounds_and_equality_on_keys_and_callables():
    resp = {"I": t(2e-6), "T": t([0.1, 0.3])}
    up = UpperBound("I", 1e-6)
    assert up.spec == ConstraintSpec("I<=1e-06", "ineq", 0.0, "response")
    assert float(up(resp, {})) == pytest.approx(1e-6)  # positive: violated
    low = LowerBound(WindowAverage("T"), 0.25, tol=0.01)
    assert low.spec.name == "window_average>=0.25" and low.spec.tol == 0.01
    assert float(low(resp, {})) == pytest.approx(0.05)
    eq = Equality(lambda r, p: p["x"].sum(), 1.0, tol=1e-3, on="params", name="sum_one")
    assert eq.spec == ConstraintSpec("sum_one", "eq", 1e-3, "params")
    assert float(eq(None, {"x": t([0.25, 0.5])})) == -0.25
    assert gradcheck(lambda i: up({"I": i}, {}), (t(3.0, grad=True),))
    with pytest.raises(ValueError, match=r"constraint 'T<=1': 'T' gave shape \(2,\)"):
        UpperBound("T", 1.0)(resp, {})


def test_epigraph_of_a_worst_case_in_a_problem():
    worst = WorstCase([ResponseValue("f0"), ResponseValue("f1")])
    objective, constraints = epigraph(worst, "t", 2)

    class MinMax(Problem):
        name = "minmax"
        space = ParameterSpace([Block("x", (), lower=-2.0, upper=2.0), Block("t", (), lower=-10.0, upper=10.0)])

        def __init__(self):
            self.objective, self.constraints = objective, constraints

        def simulate(self, params):
            x = params["x"]
            return {"f0": (x - 1) ** 2, "f1": (x + 1) ** 2}

    p = MinMax()
    assert [s.name for s in p.constraint_specs] == ["worst_case[0]<=t", "worst_case[1]<=t"]
    (ev,) = p.evaluate(t([[0.5, 2.0]]), need_grad=True)
    assert ev.value == 2.0
    assert ev.constraints == [0.25 - 2.0, 2.25 - 2.0] and not ev.feasible  # f1 = 2.25 exceeds t = 2
    assert ev.grad == [0.0, 1.0]
    assert ev.constraint_grads == [[2 * (0.5 - 1), -1.0], [2 * (0.5 + 1), -1.0]]
    # at the min-max solution x = 0, t = 1 both cases are active
    (best,) = p.evaluate(t([[0.0, 1.0]]))
    assert best.value == 1.0 and best.constraints == [0.0, 0.0] and best.feasible
