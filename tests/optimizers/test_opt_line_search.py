"""The strong-Wolfe line search (replayed over its trials) and L-BFGS details beyond the matrix."""

from __future__ import annotations

import math

import pytest
import torch

from invdesign.objectives import ResponseValue
from invdesign.optimizers import make_optimizer, minimize
from invdesign.optimizers.line_search import strong_wolfe
from invdesign.params import Block, ParameterSpace
from invdesign.problem import Problem


def _search(phi, alpha1: float = 1.0, alpha_max: float = 1e10, c2: float = 0.9):
    """Drive strong_wolfe on phi(alpha) -> (value, slope); returns (verdict, alpha, trials)."""
    phi0, dphi0 = phi(0.0)
    trials = []
    while True:
        verdict, value = strong_wolfe(phi0, dphi0, alpha1, alpha_max, trials, c2=c2)
        if verdict != "try":
            alpha = trials[int(value)][0] if verdict == "accept" else math.nan
            return verdict, alpha, trials
        trials.append((value, *phi(value)))


def test_accepts_a_strong_wolfe_point():
    def phi(a):  # minimum at a = 10, far beyond the first trial: needs extrapolation
        return (a - 10.0) ** 2 - 100.0, 2.0 * (a - 10.0)

    verdict, alpha, trials = _search(phi, c2=0.1)
    (phi0, dphi0), (value, slope) = phi(0.0), phi(alpha)
    assert verdict == "accept" and len(trials) > 1
    assert value <= phi0 + 1e-4 * alpha * dphi0  # sufficient decrease
    assert abs(slope) <= 0.1 * abs(dphi0)         # curvature (strong)


def test_failed_trials_are_bisected_back():
    def phi(a):  # fails (NaN region) beyond a = 0.3; minimum at 0.25
        if a > 0.3:
            return math.inf, math.nan
        return (a - 0.25) ** 2, 2.0 * (a - 0.25)

    verdict, alpha, trials = _search(phi, alpha1=1.0)
    assert verdict == "accept" and 0.0 < alpha <= 0.3
    assert [t[0] for t in trials][:3] == [1.0, 0.5, 0.25]


def test_no_decrease_fails_cleanly():
    verdict, _, trials = _search(lambda a: (1.0 + a, -1.0) if a == 0 else (1.0 + a, 1.0))
    assert verdict == "fail" and 0 < len(trials) <= 25


def test_replay_detects_a_diverged_history():
    with pytest.raises(RuntimeError, match="diverged"):
        strong_wolfe(0.0, -1.0, 1.0, 1e10, [(0.7, -0.5, 0.0)])


class _FreeRosenbrock(Problem):
    """Rosenbrock in 2-D with no bounds at all (optimizer box is +-inf)."""

    name = "free_rosenbrock"
    grad_cost_factor = 2.0
    objective = ResponseValue()
    space = ParameterSpace([Block("x", (2,), init=[-1.2, 1.0])])

    def simulate(self, params):
        x = params["x"]
        return 100.0 * (x[1] - x[0] ** 2) ** 2 + (1.0 - x[0]) ** 2


@pytest.mark.parametrize("name, reached", [("lbfgs", 1e-12), ("scipy_lbfgsb", 1e-12),
                                           ("scipy_slsqp", 1e-8), ("adam", 1e-2)])
def test_gradient_optimizers_without_bounds(name: str, reached: float):
    problem = _FreeRosenbrock()  # classic start (-1.2, 1); Adam is slow in the curved valley
    assert torch.isinf(problem.bounds).all()
    result = minimize(problem, make_optimizer(name, problem, 0), max_cost=3000)
    assert result.best.value < reached


def test_lbfgs_matches_scipy_lbfgsb_closely_on_a_quadratic():
    from invdesign.testing.toy_problems import TOY_PROBLEMS

    problem = TOY_PROBLEMS["quadratic"]()
    ours = minimize(problem, make_optimizer("lbfgs", problem, 0), max_cost=200)
    theirs = minimize(problem, make_optimizer("scipy_lbfgsb", problem, 0), max_cost=200)
    assert ours.best.value < 1e-12 and theirs.best.value < 1e-12
    assert ours.n_evals <= theirs.n_evals + 5  # comparable efficiency, not a slower imitation
