"""Problem.evaluate: values, gradients, constraints, failures, cost; the Evaluation record."""

import json
import math

import pytest
import torch

from invdesign.constraints import LinearParamConstraint, ParamConstraint, UpperBound
from invdesign.objectives import LogRatio, Maximize, Objective, ResponseValue, TargetCurve
from invdesign.params import Block, ParameterSpace
from invdesign.problem import DEFAULT_GRAD_COST_FACTOR, Evaluation, Problem

D = torch.float64


def t(x):
    return torch.tensor(x, dtype=D)


class Paraboloid(Problem):
    """f = sum x^2 with a params constraint x0 + x1 <= 1 and a response constraint f <= 2."""

    name = "paraboloid"
    space = ParameterSpace([Block("x", (2,), lower=-3.0, upper=3.0)])
    objective = ResponseValue("f")
    grad_cost_factor = 2.5

    def __init__(self, mode: str = "ok"):
        self.mode = mode
        self.simulated = 0
        # response constraint listed first: evaluate still computes the params one before simulating
        self.constraints = [UpperBound("f", 2.0, name="f_cap"), LinearParamConstraint("x", [1.0, 1.0], 1.0)]

    def simulate(self, params):
        self.simulated += 1
        x = params["x"]
        if self.mode == "raise":
            raise FloatingPointError("Poisson loop diverged")
        f = (x**2).sum()
        if self.mode == "nan":
            f = f * math.nan
        if self.mode == "inf":
            f = f + math.inf
        if self.mode == "vector":
            f = x**2
        if self.mode == "kink":  # sqrt at 0: the value is fine, the gradient is not
            f = torch.sqrt(f)
        return {"f": f}


def test_evaluate_values_gradients_and_constraints():
    p = Paraboloid()
    evs = p.evaluate(t([[1.0, -0.5], [1.0, 1.0]]), need_grad=True)
    a, b = evs
    assert a.x == [1.0, -0.5] and a.value == 1.25 and a.grad == [2.0, -1.0]
    assert a.constraints == [1.25 - 2.0, 0.5 - 1.0] and a.constraint_grads == [[2.0, -1.0], [1.0, 1.0]]
    assert a.feasible and not a.failed and a.reason is None and a.cost == 2.5
    assert b.constraints == [0.0, 1.0] and not b.feasible and not b.failed
    assert [s.name for s in p.constraint_specs] == ["f_cap", "linear(x)"]
    plain = p.evaluate_one(t([1.0, -0.5]))
    assert plain.grad is None and plain.constraint_grads is None and plain.cost == 1.0
    assert plain.value == a.value and plain.constraints == a.constraints


def test_one_point_and_bad_shapes():
    p = Paraboloid()
    assert len(p.evaluate(t([0.1, 0.2]))) == 1
    with pytest.raises(ValueError, match=r"problem 'paraboloid': points must have shape \(n, 2\); got \(1, 3\)"):
        p.evaluate(t([[0.1, 0.2, 0.3]]))
    with pytest.raises(ValueError, match=r"problem 'paraboloid': a point must have shape \(2,\)"):
        p.evaluate_one(t([[0.1, 0.2]]))


@pytest.mark.parametrize("mode, reason", [
    ("raise", "FloatingPointError: Poisson loop diverged"),
    ("nan", "NonFiniteError: constraint 'f_cap' is nan"),
    ("inf", "NonFiniteError: constraint 'f_cap' is inf"),
    ("vector", "ValueError: constraint 'f_cap': 'f' gave shape (2,); expected a scalar"),
])
def test_failures_are_recorded_never_raised(mode, reason):
    p = Paraboloid(mode)
    for need_grad in (False, True):
        (ev,) = p.evaluate(t([[0.5, 0.25]]), need_grad=need_grad)
        assert ev.failed and not ev.feasible and math.isnan(ev.value) and ev.reason == reason
        assert ev.grad is None and ev.constraint_grads is None
        # the params constraint is known even though the simulation failed
        assert math.isnan(ev.constraints[0]) and ev.constraints[1] == -0.25
        assert ev.cost == (2.5 if need_grad else 1.0) and ev.wall_time_s > 0


def test_non_finite_objective_and_gradient():
    class Nan(Objective):
        def __call__(self, response, params):
            return response["f"] * math.nan

    p = Paraboloid()
    p.objective = Nan()
    (ev,) = p.evaluate(t([[0.5, 0.25]]))
    assert ev.failed and ev.reason == "NonFiniteError: objective value is nan"
    kink = Paraboloid("kink")
    ok, bad = kink.evaluate(t([[0.6, 0.8], [0.0, 0.0]]), need_grad=True)
    assert ok.value == pytest.approx(1.0) and not ok.failed
    assert bad.failed and bad.reason == "NonFiniteError: gradient of the objective contains NaN or inf"
    (value_only,) = kink.evaluate(t([[0.0, 0.0]]))
    assert not value_only.failed and value_only.value == 0.0


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_gradients_whatever_the_callers_grad_mode(mode):
    p = Paraboloid()
    with mode():
        (ev,) = p.evaluate(t([[1.0, -0.5]]), need_grad=True)
    assert ev.grad == [2.0, -1.0] and ev.constraint_grads == [[2.0, -1.0], [1.0, 1.0]]


def test_interrupts_are_not_swallowed():
    p = Paraboloid()

    def interrupted(params):
        raise KeyboardInterrupt

    p.simulate = interrupted
    with pytest.raises(KeyboardInterrupt):
        p.evaluate(t([[0.0, 0.0]]))


def test_params_constraints_are_evaluated_before_simulating_and_simulation_always_runs():
    p = Paraboloid()
    calls = []
    first = p.constraints[1]

    class Spy(ParamConstraint):  # records when it runs
        spec = first.spec

        def __call__(self, response, params):
            calls.append(("params", p.simulated))
            return first(response, params)

    p.constraints = [p.constraints[0], Spy()]
    (ev,) = p.evaluate(t([[2.0, 2.0]]))  # infeasible in the params
    assert calls == [("params", 0)] and p.simulated == 1 and ev.value == 8.0 and not ev.feasible


def test_constraint_not_depending_on_z_has_zero_gradient():
    p = Paraboloid()
    p.constraints = [UpperBound(lambda r, params: torch.tensor(-1.0, dtype=D), 0.0, name="const")]
    (ev,) = p.evaluate(t([[0.5, 0.25]]), need_grad=True)
    assert ev.constraint_grads == [[0.0, 0.0]] and ev.feasible


def test_metrics_are_recorded_and_maximize_says_so():
    p = Paraboloid()
    p.objective = Maximize(LogRatio("f", "g", maximize=False))
    p.simulate = lambda params: {"f": (params["x"] ** 2).sum(), "g": torch.tensor(1e-3, dtype=D)}
    (ev,) = p.evaluate(t([[1.0, 0.0]]), need_grad=True)
    assert ev.value == pytest.approx(-3.0) and ev.grad == pytest.approx([-2.0 / math.log(10), 0.0])
    assert ev.metrics == {"log10_ratio": pytest.approx(3.0), "maximize": 1.0, "maximized_value": pytest.approx(3.0)}


def test_grad_cost_factor_is_measured_lazily_once_and_can_be_set():
    class Measured(Problem):
        name = "measured"
        space = ParameterSpace([Block("x", (50,), lower=-1.0, upper=1.0)])
        objective = TargetCurve(torch.zeros(50, dtype=D))

        def simulate(self, params):
            return torch.cumsum(torch.sin(params["x"]), 0)

    p = Measured()
    assert "_grad_cost_factor" not in vars(p)
    factor = p.grad_cost_factor
    assert factor >= 1.0 and p.grad_cost_factor == factor
    assert p.evaluate(p.initial_point(), need_grad=True)[0].cost == factor
    p.grad_cost_factor = 3.0
    assert p.evaluate(p.initial_point(), need_grad=True)[0].cost == 3.0

    broken = Measured()
    broken.simulate = lambda params: 1 / 0
    assert broken.grad_cost_factor == DEFAULT_GRAD_COST_FACTOR


def test_duplicate_constraint_names_are_an_error():
    p = Paraboloid()
    p.constraints = [UpperBound("f", 1.0, name="cap"), UpperBound("f", 2.0, name="cap")]
    with pytest.raises(ValueError, match=r"problem 'paraboloid': duplicate constraint names \['cap'\]"):
        p.evaluate(t([[0.0, 0.0]]))


def test_evaluation_json_round_trip_with_non_finite_numbers():
    ev = Evaluation(x=[0.1, -2.5e-300], value=math.nan, grad=[math.inf, -math.inf], constraints=[math.nan, 1.0 / 3],
                    constraint_grads=[[math.nan, 0.0], [1e308, -0.0]], feasible=False, failed=True,
                    reason="RuntimeError: boom", metrics={"a": math.inf, "b": 0.1 + 0.2}, cost=2.0, wall_time_s=1e-5)
    text = json.dumps(ev.to_dict(), allow_nan=False)
    back = Evaluation.from_dict(json.loads(text))
    assert back.to_dict() == ev.to_dict()
    assert math.isnan(back.value) and back.grad == [math.inf, -math.inf] and math.isnan(back.constraints[0])
    assert back.constraints[1] == 1.0 / 3 and back.metrics["b"] == 0.1 + 0.2 and back.x[1] == -2.5e-300
    assert math.copysign(1.0, back.constraint_grads[1][1]) == -1.0
    plain = Evaluation(x=[1.0], value=2.0)
    assert Evaluation.from_dict(json.loads(json.dumps(plain.to_dict()))) == plain


def test_grad_cost_factor_counts_cpu_time_not_waiting():
    """The factor is a CPU-time ratio: a forward pass that waits (I/O, a loaded machine) does not
    dilute it. Forward: 10 ms of CPU + 40 ms asleep; the backward adds 20 ms of CPU: factor 3."""
    import time as _time

    def burn(seconds):
        end = _time.process_time() + seconds
        while _time.process_time() < end:
            pass

    class SlowBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            burn(0.02)
            return g

    class Waiting(Problem):
        name = "waiting"
        space = ParameterSpace([Block("x", (3,), lower=-1.0, upper=1.0)])
        objective = TargetCurve(torch.zeros(3, dtype=D))

        def simulate(self, params):
            burn(0.01)
            _time.sleep(0.04)
            return SlowBackward.apply(params["x"])

    factor = Waiting().measure_grad_cost_factor()
    assert 2.2 < factor < 4.0, factor  # wall time would give ~1.4
