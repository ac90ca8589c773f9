"""minimize on a problem whose every evaluation fails: it stops after the first few (same reason), says
plainly that no feasible point was found, and keeps running when the failures differ or fail_fast=0."""

import warnings

import pytest

from invdesign.optimizers import make_optimizer, minimize
from invdesign.optimizers.driver import FAIL_FAST_EVALS, NoFeasiblePointWarning, failing_from_start
from invdesign.testing.toy_problems import TOY_PROBLEMS
from tests.campaign.failing_helpers import nan_constraint, vector_objective


@pytest.mark.parametrize("optimizer", ["lbfgs", "random", "nevergrad"])
@pytest.mark.parametrize("factory", [vector_objective, nan_constraint])
def test_all_failing_run_stops_early_and_says_no_feasible_point(factory, optimizer):
    problem = factory()
    with pytest.warns(NoFeasiblePointWarning, match="no feasible point found"):
        result = minimize(problem, make_optimizer(optimizer, problem, seed=0), max_cost=200)
    assert result.stop_reason == "failing" and result.best is None and not result.found_feasible
    assert result.n_evals <= FAIL_FAST_EVALS + 5  # not the whole budget of 200 (was: 200 evaluations)
    assert "first 5 evaluations all failed with the same reason" in result.message
    assert result.history[0].reason in result.message


def test_fail_fast_zero_spends_the_budget():
    problem = vector_objective()
    with pytest.warns(NoFeasiblePointWarning):
        result = minimize(problem, make_optimizer("random", problem, seed=0), max_evals=12, fail_fast=0)
    assert result.n_evals == 12 and result.stop_reason == "max_evals"


def test_a_good_run_has_no_warning_and_a_message():
    problem = TOY_PROBLEMS["quadratic"]()
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoFeasiblePointWarning)
        result = minimize(problem, make_optimizer("random", problem, seed=0), max_evals=10)
    assert result.found_feasible and result.message.startswith("best value")
    assert result.to_dict()["message"] == result.message


def test_failing_from_start_needs_one_reason_for_all():
    assert failing_from_start(["E: a"] * 5) == "E: a"
    assert failing_from_start(["E: a"] * 4) is None  # not enough evidence yet
    assert failing_from_start(["E: a"] * 4 + ["E: b"]) is None  # different reasons: maybe a region
    assert failing_from_start([None] + ["E: a"] * 9) is None  # one success: the problem works
    assert failing_from_start(["E: a"] * 5, n=0) is None


def test_adam_at_its_step_limit_is_not_converged():
    problem = TOY_PROBLEMS["rosenbrock2"]()
    result = minimize(problem, make_optimizer("adam", problem, seed=0, steps=5), max_cost=1000)
    assert result.stop_reason == "step_limit"  # was: "converged" after 5 steps far from the optimum
    quad = TOY_PROBLEMS["quadratic"]()
    result = minimize(quad, make_optimizer("adam", quad, seed=0, lr=0.3, steps=5000, gtol=1e-4), max_cost=20000)
    assert result.stop_reason == "converged" and result.n_evals < 5000
