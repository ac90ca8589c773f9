"""The registry, the driver (budgets, cost accounting, stop reasons) and the chain's stage logic."""

from __future__ import annotations

import json

import pytest
import torch

from invdesign.optimizers import MULTI_OBJECTIVE, OPTIMIZERS, make_optimizer, minimize, settings_of, step
from invdesign.optimizers.base import CONSTRAINT_HANDLING, Optimizer
from invdesign.testing.toy_multiobjective import TOY_MULTIOBJECTIVE
from invdesign.testing.toy_problems import TOY_PROBLEMS


def test_registry_entries_declare_the_interface():
    for key, cls in OPTIMIZERS.items():
        assert issubclass(cls, Optimizer) and key == cls.name
        assert isinstance(cls.uses_gradient, bool)
        assert cls.constraint_handling in CONSTRAINT_HANDLING
        assert cls.description
        problem = (TOY_MULTIOBJECTIVE["two_quadratics_constrained"] if key in MULTI_OBJECTIVE
                   else TOY_PROBLEMS["constrained"])()
        optimizer = cls(problem, 0)
        assert optimizer.batch_size >= 1 and not optimizer.done and optimizer.best is None
        json.dumps(optimizer.state_dict(), allow_nan=False)


def test_make_optimizer_rejects_unknown_names_and_settings():
    problem = TOY_PROBLEMS["quadratic"]()
    with pytest.raises(ValueError, match="unknown optimizer 'bfgs'.*lbfgs"):
        make_optimizer("bfgs", problem, 0)
    with pytest.raises(ValueError, match=r"no setting\(s\) \['learning_rate'\].*lr=0.05"):
        make_optimizer("adam", problem, 0, learning_rate=0.1)
    assert "history" in settings_of(OPTIMIZERS["lbfgs"])


def test_bad_setting_values_are_reported():
    problem = TOY_PROBLEMS["quadratic"]()
    with pytest.raises(ValueError, match="schedule"):
        make_optimizer("adam", problem, 0, schedule="linear")
    with pytest.raises(ValueError, match="no optimizer 'CMAES'"):
        make_optimizer("nevergrad", problem, 0, optimizer="CMAES")
    with pytest.raises(ValueError, match="budget"):
        make_optimizer("nevergrad", problem, 0, optimizer="NGOpt")
    with pytest.raises(ValueError, match="thread"):
        make_optimizer("nevergrad", problem, 0, optimizer="NelderMead")
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("chain", problem, 0, stages=[{"optimizer": "nope"}])
    with pytest.raises(ValueError, match="stage 0"):
        make_optimizer("chain", problem, 0, stages=[{"optimizer": "sobol", "budget": 3}])


def test_load_state_checks_name_seed_and_settings():
    problem = TOY_PROBLEMS["quadratic"]()
    state = make_optimizer("lbfgs", problem, 0).state_dict()
    with pytest.raises(ValueError, match="not 'adam'"):
        make_optimizer("adam", problem, 0).load_state_dict(state)
    with pytest.raises(ValueError, match="seed"):
        make_optimizer("lbfgs", problem, 1).load_state_dict(state)
    with pytest.raises(ValueError, match="settings"):
        make_optimizer("lbfgs", problem, 0, history=5).load_state_dict(state)


def test_step_asks_for_gradients_only_when_used():
    problem = TOY_PROBLEMS["quadratic"]()
    (with_grad,) = step(problem, make_optimizer("lbfgs", problem, 0))
    (without,) = step(problem, make_optimizer("random", problem, 0))
    assert with_grad.grad is not None and with_grad.cost == problem.grad_cost_factor == 2.0
    assert without.grad is None and without.cost == 1.0


def test_budgets_are_never_exceeded():
    problem = TOY_PROBLEMS["quadratic"]()
    result = minimize(problem, make_optimizer("sobol", problem, 0, batch_size=4), max_evals=10)
    assert (result.n_evals, result.stop_reason) == (8, "max_evals")  # a third batch would be 12
    result = minimize(problem, make_optimizer("adam", problem, 0), max_cost=7)
    assert (result.n_evals, result.total_cost, result.stop_reason) == (3, 6.0, "max_cost")
    result = minimize(problem, make_optimizer("random", problem, 0), max_time_s=0.0)
    assert (result.n_evals, result.stop_reason) == (0, "max_time")
    with pytest.raises(ValueError, match="budget"):
        minimize(problem, make_optimizer("random", problem, 0))


def test_stop_reasons_converged_and_callback():
    problem = TOY_PROBLEMS["quadratic"]()
    result = minimize(problem, make_optimizer("lbfgs", problem, 0), max_cost=1000)
    assert result.stop_reason == "converged" and result.total_cost < 1000
    assert result.trace[-1] == result.best.value
    seen = []
    result = minimize(problem, make_optimizer("random", problem, 0), max_evals=100,
                      callback=lambda opt, evals: seen.append(len(evals)) or len(seen) == 5)
    assert (result.n_evals, result.stop_reason) == (5, "callback")
    json.dumps(result.to_dict(), allow_nan=False)


def test_optimizer_done_flags():
    problem = TOY_PROBLEMS["quadratic"]()
    for name, settings in [("random", {"max_evals": 3}), ("sobol", {"max_evals": 3}),
                           ("botorch", {"max_evals": 3}),
                           ("nevergrad", {"optimizer": "OnePlusOne", "budget": 3})]:
        result = minimize(problem, make_optimizer(name, problem, 0, **settings), max_evals=50)
        assert (result.n_evals, result.stop_reason) == (3, "evaluation_limit"), name  # not "converged"


def test_ask_is_idempotent_until_tell():
    problem = TOY_PROBLEMS["rosenbrock2"]()
    optimizer = make_optimizer("nevergrad", problem, 0, batch_size=3)
    first = optimizer.ask()
    assert torch.equal(first, optimizer.ask()) and first.shape == (3, 2)
    with pytest.raises(ValueError, match="3 points"):
        optimizer.tell(problem.evaluate(first[:2]))
    optimizer.tell(problem.evaluate(first))
    with pytest.raises(RuntimeError, match="without a pending ask"):
        optimizer.tell(problem.evaluate(first))


def test_chain_switches_stage_and_starts_from_the_best_point():
    problem = TOY_PROBLEMS["rosenbrock2"]()
    chain = make_optimizer("chain", problem, 0, stages=[
        {"optimizer": "sobol", "settings": {"batch_size": 4}, "max_evals": 8},
        {"optimizer": "lbfgs", "max_cost": 20},
        {"optimizer": "adam"}])
    assert not chain.wants_gradient and chain.batch_size == 4
    step(problem, chain)
    step(problem, chain)
    assert chain.stage == 1 and chain.wants_gradient and chain.batch_size == 1
    assert chain.ask()[0].tolist() == chain.best.x  # L-BFGS starts at the best Sobol point
    costs = [sum(e.cost for e in step(problem, chain)) for _ in range(10)]
    assert costs[:10] == [2.0] * 10 and chain.stage == 2  # 20 forward-equivalents of L-BFGS
