"""Batched evaluation (``invdesign.batch_eval``): a problem with ``simulate_batch`` gives, for a batch, the
records point-by-point evaluation gives (values, constraints, gradients to 1e-12), failures stay per point,
and the batched call's wall time is shared out over its points."""

from __future__ import annotations

import math

import pytest
import torch

from invdesign.constraints import LinearParamConstraint, UpperBound
from invdesign.multiobjective import MultiObjective
from invdesign.objectives import ResponseValue
from invdesign.params import Block, ParameterSpace
from invdesign.problem import Problem


class Bowl(Problem):
    """``f = sum (x - c)^2 + sin(x0 x1)``, a response constraint ``|x|^2 <= 3``, a params constraint
    ``x0 + x1 <= 1``; simulate raises where ``x2 > 0.9``. ``simulate_batch`` does the same arithmetic on the
    whole batch at once and counts its calls."""

    name = "bowl"
    grad_cost_factor = 2.0
    objective = ResponseValue("f")

    def __init__(self, batched: bool = True):
        self.space = ParameterSpace([Block("x", (3,), lower=-1.0, upper=1.0)])
        self.constraints = [UpperBound("r2", 3.0, name="ball"), LinearParamConstraint("x", [1.0, 1.0, 0.0], 1.0)]
        self.center = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
        self.batch_calls = 0
        if not batched:
            self.simulate_batch = None

    @staticmethod
    def _response(x: torch.Tensor, center: torch.Tensor) -> dict:
        f = ((x - center) ** 2).sum(-1) + torch.sin(x[..., 0] * x[..., 1])
        return {"f": f, "r2": (x ** 2).sum(-1)}

    def simulate(self, params):
        x = params["x"]
        if float(x[2].detach()) > 0.9:
            raise RuntimeError("no convergence")
        return self._response(x, self.center)

    def simulate_batch(self, params):
        self.batch_calls += 1
        x = params["x"]  # (n, 3)
        if bool((x[:, 2] > 0.9).any()):
            raise RuntimeError("no convergence in the batch")
        r = self._response(x, self.center)
        return [{k: v[i] for k, v in r.items()} for i in range(x.shape[0])]


def _points(problem: Problem, n: int, seed: int) -> torch.Tensor:
    """Random points away from the failure regions (x0 <= 0.45, x2 <= 0.85)."""
    z = problem.random_points(n, seed)
    z[:, 0] = z[:, 0].clamp(max=0.45)
    z[:, 2] = z[:, 2].clamp(max=0.85)
    return z


def _close(a, b) -> None:
    assert a.failed == b.failed and a.feasible == b.feasible and a.reason == b.reason
    assert a.x == b.x and a.cost == b.cost
    if a.failed:
        return
    assert abs(a.value - b.value) <= 1e-12
    assert max(abs(u - v) for u, v in zip(a.constraints, b.constraints)) <= 1e-12
    assert (a.grad is None) == (b.grad is None) and (a.constraint_grads is None) == (b.constraint_grads is None)
    if a.grad is None:
        return
    for ga, gb in zip([a.grad, *a.constraint_grads], [b.grad, *b.constraint_grads]):
        assert max(abs(u - v) for u, v in zip(ga, gb)) <= 1e-12


@pytest.mark.parametrize("need_grad", [False, True])
def test_batch_equals_point_by_point(need_grad):
    batched, single = Bowl(), Bowl(batched=False)
    z = _points(batched, 6, 0)
    got = batched.evaluate(z, need_grad=need_grad)
    want = [single.evaluate_one(zi, need_grad=need_grad) for zi in z]
    assert batched.batch_calls == 1
    for a, b in zip(got, want):
        _close(a, b)
        assert (a.grad is None) == (not need_grad)


def test_failures_stay_per_point():
    problem = Bowl()
    z = _points(problem, 4, 1)
    z[1, 2] = 0.95          # simulate raises there: the whole batched call fails, each point is redone alone
    z[3, 0] = 7.0           # outside the box: refused, never simulated
    with pytest.warns(RuntimeWarning, match="point by point"):
        got = problem.evaluate(z, need_grad=True)
    want = [Bowl(batched=False).evaluate_one(zi, need_grad=True) for zi in z]
    for a, b in zip(got, want):
        _close(a, b)
    assert [e.failed for e in got] == [False, True, False, True]
    assert "no convergence" in got[1].reason and got[3].reason.startswith("OutOfBounds")


def test_nan_in_one_point_fails_only_that_point():
    class NanAt(Bowl):
        def simulate(self, params):
            r = super().simulate(params)
            return {**r, "f": r["f"] * math.nan} if float(params["x"][0].detach()) > 0.5 else r

        def simulate_batch(self, params):
            out = super().simulate_batch(params)
            return [{**r, "f": r["f"] * math.nan} if float(x[0].detach()) > 0.5 else r
                    for r, x in zip(out, params["x"])]

    problem = NanAt()
    z = _points(problem, 5, 2)
    z[2, 0] = 0.7
    got = problem.evaluate(z, need_grad=True)
    assert [e.failed for e in got] == [False, False, True, False, False]
    assert got[2].reason.startswith("NonFiniteError")
    single = Bowl(batched=False)
    for i in (0, 1, 3, 4):
        _close(got[i], single.evaluate_one(z[i], need_grad=True))


def test_cost_per_point_and_wall_time_shared():
    problem = Bowl()
    got = problem.evaluate(_points(problem, 4, 3), need_grad=True)
    assert [e.cost for e in got] == [2.0] * 4  # forward-equivalents per point, batched or not
    shares = {e.wall_time_s for e in got}
    assert len(shares) == 1 and shares.pop() > 0.0  # one call, its time split over the points
    problem.evaluate_one(problem.initial_point())  # one point: the plain path
    assert problem.batch_calls == 1


def test_multi_objective_records_match():
    class TwoGoals(Bowl):
        def __init__(self, batched=True):
            super().__init__(batched)
            self.objective = MultiObjective([("f", "f"), ("r2", "r2")])

    batched, single = TwoGoals(), TwoGoals(batched=False)
    z = _points(batched, 3, 4)
    for a, b in zip(batched.evaluate(z, need_grad=True), [single.evaluate_one(zi, True) for zi in z]):
        _close(a, b)
        assert max(abs(u - v) for u, v in zip(a.objectives, b.objectives)) <= 1e-12
        for ga, gb in zip(a.objective_grads, b.objective_grads):
            assert max(abs(u - v) for u, v in zip(ga, gb)) <= 1e-12
