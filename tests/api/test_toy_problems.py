"""Every toy problem passes the Problem contract and has the optimum it declares."""

import math

import pytest
import torch

from invdesign.testing import TOY_PROBLEMS, ProblemContract
from invdesign.testing.toy_problems import ProfileFit

D = torch.float64
REQUIRED = {"quadratic", "rosenbrock2", "rosenbrock20", "bounded_quadratic", "constrained", "failing"}


def _contract_class(name, factory):
    return type(f"TestContract_{name}", (ProblemContract,), {"make_problem": lambda self: factory()})


for _name, _factory in TOY_PROBLEMS.items():
    globals()[f"TestContract_{_name}"] = _contract_class(_name, _factory)


class TestContractProfileFit(ProblemContract):
    """sigmoid B-spline profile, log10 scalar, frozen entries and parameter constraints."""

    def make_problem(self):
        return ProfileFit()


def test_registry_holds_the_required_problems():
    assert REQUIRED <= set(TOY_PROBLEMS)
    for name, factory in TOY_PROBLEMS.items():
        p = factory()
        assert p.name == name
        assert p.optimum_value is not None and p.optimum_x is not None and p.tolerance > 0
        assert p.grad_cost_factor == 2.0


@pytest.mark.parametrize("name", [*TOY_PROBLEMS, "profile_fit"])
def test_declared_optimum(name):
    p = ProfileFit() if name == "profile_fit" else TOY_PROBLEMS[name]()
    (best,) = p.evaluate(torch.tensor([p.optimum_x], dtype=D), need_grad=True)
    assert best.feasible and best.value == pytest.approx(p.optimum_value, abs=1e-12)
    # no feasible point nearby (nor at random in the box) does better
    gen = torch.Generator().manual_seed(0)
    near = torch.tensor(p.optimum_x, dtype=D) + 1e-3 * torch.randn(200, p.dim, generator=gen, dtype=D)
    near = torch.minimum(torch.maximum(near, p.bounds[0]), p.bounds[1])
    for ev in p.evaluate(torch.cat([near, p.random_points(200, gen)])):
        if ev.feasible and not p.constraints:
            assert ev.value >= p.optimum_value - 1e-12
        elif ev.feasible:  # the constrained toys allow slack tol on the constraint
            slack = max(s.tol for s in p.constraint_specs)
            assert ev.value >= p.optimum_value - 2 * math.sqrt(slack + 1e-12) - 1e-9


def test_specific_toys():
    assert TOY_PROBLEMS["rosenbrock20"]().dim == 20
    assert TOY_PROBLEMS["quadratic"](dim=3).dim == 3
    bq = TOY_PROBLEMS["bounded_quadratic"]()
    assert bq.optimum_x == [1.0, 0.0, 0.5] and bq.optimum_value == 0.5
    c = TOY_PROBLEMS["constrained"]()
    assert c.optimum_value == -math.sqrt(2) and [s.kind for s in c.constraint_specs] == ["ineq"]
    assert [s.kind for s in TOY_PROBLEMS["constrained_eq"]().constraint_specs] == ["eq"]
    f = TOY_PROBLEMS["failing"]()
    raised, nan, ok = f.evaluate(torch.tensor([[0.9, 0.0], [0.0, 0.9], [-0.5, -0.5]], dtype=D), need_grad=True)
    assert raised.failed and raised.reason.startswith("RuntimeError: toy solver did not converge")
    assert nan.failed and nan.reason == "NonFiniteError: objective value is nan"
    assert ok.value == 0.0 and ok.grad == [0.0, 0.0]
