"""Sign adapters, pinned: each library's own convention, then the adapter on a one-variable problem
whose answer is visibly wrong with the opposite sign (shown by a control run with the sign flipped).

Problem convention (``invdesign/constraints.py``): ``g(x) <= tol`` feasible.
- scipy SLSQP: ``{"type": "ineq"}`` is feasible when ``fun >= 0`` -> the adapter passes ``-g``.
- nevergrad: ``constraint_violation > 0`` is violated -> the adapter passes ``g - tol``.
- BoTorch: outcome constraints are feasible when ``< 0`` -> the adapter passes ``g - tol``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize as scipy_minimize

from invdesign.optimizers import make_optimizer, minimize
from invdesign.optimizers.botorch_opt import BoTorch
from invdesign.optimizers.nevergrad_opt import Nevergrad
from invdesign.problem import Evaluation
from invdesign.testing.toy_problems import TOY_PROBLEMS
from tests.optimizers.optimizer_cases import scalar_problem


def _squared_at_least_half():
    # min x^2 + 1 on [-1, 1] s.t. x >= 0.5 (g = 0.5 - x <= 0): answer x = 0.5; ignoring or
    # flipping the constraint gives x = 0. (+1 keeps the loss positive, see the nevergrad test.)
    return scalar_problem("x2_at_least_half", lambda x: x * x + 1.0, -1.0, 1.0, at_least=0.5)


# ----- scipy SLSQP ---------------------------------------------------------------------------------


def test_scipy_slsqp_ineq_means_fun_nonnegative():
    result = scipy_minimize(lambda x: float(x[0] ** 2), np.array([0.9]), method="SLSQP",
                            constraints=[{"type": "ineq", "fun": lambda x: x[0] - 0.5}])
    assert result.x[0] == pytest.approx(0.5, abs=1e-8)  # x - 0.5 >= 0 was enforced
    flipped = scipy_minimize(lambda x: float(x[0] ** 2), np.array([0.9]), method="SLSQP",
                             constraints=[{"type": "ineq", "fun": lambda x: 0.5 - x[0]}])
    assert flipped.x[0] == pytest.approx(0.0, abs=1e-8)  # passing g itself: wrong answer


def test_scipy_slsqp_adapter_sign():
    problem = _squared_at_least_half()
    result = minimize(problem, make_optimizer("scipy_slsqp", problem, seed=0), max_evals=60)
    assert result.best.feasible
    assert result.best.x[0] == pytest.approx(0.5, abs=1e-6)


# ----- nevergrad -----------------------------------------------------------------------------------


def test_nevergrad_positive_violation_means_infeasible():
    import nevergrad as ng

    optimizer = ng.optimizers.OnePlusOne(parametrization=ng.p.Array(shape=(1,)), budget=10)
    low, high = optimizer.ask(), optimizer.ask()
    optimizer.tell(low, 0.0, constraint_violation=[1.0])    # better loss, violated
    optimizer.tell(high, 10.0, constraint_violation=[-1.0])  # worse loss, satisfied
    assert optimizer.recommend().value[0] == high.value[0]


def test_nevergrad_adapter_violation_vector():
    problem = scalar_problem("v", lambda x: x, -1.0, 1.0, at_most=0.3, at_least=-0.3)
    adapter = Nevergrad(problem, seed=0)

    def evaluation(x: float) -> Evaluation:
        return problem.evaluate(torch.tensor([[x]]))[0]

    assert adapter.violations(evaluation(0.0)) == pytest.approx([-0.3, -0.3])
    assert adapter.violations(evaluation(0.5)) == pytest.approx([0.2, -0.8])  # x <= 0.3 violated
    assert adapter.violations(evaluation(-0.5)) == pytest.approx([-0.8, 0.2])


def _nevergrad_answer(flip: bool) -> float:
    problem = _squared_at_least_half()
    # penalty=0: nevergrad's own constraint handling alone
    optimizer = make_optimizer("nevergrad", problem, seed=0, optimizer="OnePlusOne", penalty=0.0)
    if flip:
        optimizer.violations = lambda e: [-v for v in Nevergrad.violations(optimizer, e)]
    minimize(problem, optimizer, max_evals=150)
    return float(optimizer._ng.recommend().value[0]) * 2.0 - 1.0  # unit cube -> [-1, 1]


def test_nevergrad_adapter_sign():
    assert _nevergrad_answer(flip=False) == pytest.approx(0.5, abs=2e-2)
    assert abs(_nevergrad_answer(flip=True)) < 0.2  # control: the flipped sign ends near x = 0


def _late_infeasible_share(penalty: float) -> float:
    problem = TOY_PROBLEMS["constrained"]()  # negative loss at the optimum (-sqrt 2)
    optimizer = make_optimizer("nevergrad", problem, seed=0, penalty=penalty)
    late = minimize(problem, optimizer, max_evals=200).history[-50:]
    return sum(not e.feasible for e in late) / len(late)


def test_nevergrad_native_handling_needs_the_adapter_penalty_for_negative_losses():
    assert _late_infeasible_share(penalty=0.0) > 0.5  # nevergrad's penalty is 0 for loss < 0
    assert _late_infeasible_share(penalty=10.0) < 0.3


# ----- BoTorch -------------------------------------------------------------------------------------


def test_botorch_outcome_constraint_negative_means_feasible():
    from botorch.utils.objective import compute_feasibility_indicator

    samples = torch.tensor([[-1.0], [1.0]], dtype=torch.float64)
    feasible = compute_feasibility_indicator([lambda Z: Z[..., 0]], samples)
    assert feasible.tolist() == [True, False]


def test_botorch_adapter_constraint_callables():
    problem = scalar_problem("b", lambda x: x, -1.0, 1.0, at_most=0.3)  # g = x - 0.3
    (callable_,) = BoTorch(problem, seed=0).constraint_callables()
    Z = torch.tensor([[0.0, -0.2], [0.0, 0.2]], dtype=torch.float64)  # columns: [-value, g]
    assert (callable_(Z) < 0).tolist() == [True, False]


def _botorch_proposals(flip: bool) -> list[float]:
    # max x on [0, 1] s.t. x <= 0.3: the answer is 0.3; flipped, the "feasible" side is x > 0.3
    problem = scalar_problem("b", lambda x: -x, 0.0, 1.0, at_most=0.3)
    optimizer = make_optimizer("botorch", problem, seed=0, n_init=3, num_restarts=2,
                               raw_samples=32, mc_samples=32, acqf_maxiter=25)
    if flip:
        original = optimizer.constraint_callables
        optimizer.constraint_callables = lambda: [lambda Z, c=c: -c(Z) for c in original()]
    result = minimize(problem, optimizer, max_evals=8)
    return [e.x[0] for e in result.history[3:]]  # the GP-chosen points


def test_botorch_adapter_sign():
    proposals = _botorch_proposals(flip=False)
    assert all(x <= 0.3 + 0.05 for x in proposals)
    assert max(proposals) > 0.2  # it goes for the boundary
    flipped = _botorch_proposals(flip=True)
    assert sum(x > 0.3 for x in flipped) >= len(flipped) - 1  # control: it chases the wrong side
    assert math.isfinite(max(flipped))
