"""Contract matrix: every registered optimizer on every toy problem reaches its target within its
budget; constrained results are feasible.

One table, ``EXPECTATIONS``, states per (configuration, problem) the budget (forward-equivalent
cost; a value+gradient evaluation of a toy problem costs 2) and the target on ``best - optimum``:
the problem's own tolerance unless a relaxed target is given with its reason. Relaxed targets are
set ~2x looser than the value measured with seed 0, so they catch regressions without being
brittle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest
from tests.optimizers.optimizer_cases import CONFIGS

from invdesign.optimizers import MULTI_OBJECTIVE, OPTIMIZERS, make_optimizer, minimize
from invdesign.testing.toy_problems import TOY_PROBLEMS, Constrained

# Equality constraints |h| <= 1e-4 are a thin ring that gradient-free methods essentially never
# sample; they are tested on the same problem with |h| <= 1e-2 ("constrained_eq" relaxed variant).
RELAXED_EQ_TOL = 1e-2


@dataclass(frozen=True)
class Expect:
    budget: float                     # max_cost, forward-equivalents
    target: float | None = None       # max (best - optimum); None: the problem's tolerance
    why: str = ""                     # reason for a relaxed target or problem variant
    settings: tuple = ()              # extra optimizer settings, as (key, value) pairs
    relaxed_eq: bool = False          # use Constrained(equality=True, tol=RELAXED_EQ_TOL)
    skip: str = ""                    # why the pair is not run in the unit suite


GRADIENT_FREE_20D = "gradient-free in 20-D: thousands of evaluations needed; checks progress only"
THIN_RING = "gradient-free on a 1e-4 equality ring: tested with |h| <= 1e-2"

# (configuration, problem) -> expectation; the matrix configurations are those appearing here.
EXPECTATIONS: dict[tuple[str, str], Expect] = {
    # --- gradient methods: the problems' own tolerances, small budgets
    ("adam", "quadratic"): Expect(400),
    ("adam", "rosenbrock2"): Expect(1200),
    ("adam", "rosenbrock20"): Expect(2400),
    ("adam", "bounded_quadratic"): Expect(100),
    ("adam", "constrained"): Expect(800),
    ("adam", "constrained_eq"): Expect(800),
    ("adam", "failing"): Expect(400),
    ("lbfgs", "quadratic"): Expect(100),
    ("lbfgs", "rosenbrock2"): Expect(150),
    ("lbfgs", "rosenbrock20"): Expect(600),
    ("lbfgs", "bounded_quadratic"): Expect(40),
    ("lbfgs", "constrained"): Expect(200),
    ("lbfgs", "constrained_eq"): Expect(200),
    ("lbfgs", "failing"): Expect(40),
    ("scipy_lbfgsb", "quadratic"): Expect(100),
    ("scipy_lbfgsb", "rosenbrock2"): Expect(150),
    ("scipy_lbfgsb", "rosenbrock20"): Expect(600),
    ("scipy_lbfgsb", "bounded_quadratic"): Expect(40),
    ("scipy_lbfgsb", "constrained"): Expect(200),
    ("scipy_lbfgsb", "constrained_eq"): Expect(200),
    ("scipy_lbfgsb", "failing"): Expect(40),
    ("scipy_slsqp", "quadratic"): Expect(100),
    ("scipy_slsqp", "rosenbrock2"): Expect(150),
    ("scipy_slsqp", "rosenbrock20"): Expect(800),
    ("scipy_slsqp", "bounded_quadratic"): Expect(40),
    ("scipy_slsqp", "constrained"): Expect(100),
    ("scipy_slsqp", "constrained_eq"): Expect(100),
    ("scipy_slsqp", "failing"): Expect(40),
    # --- nevergrad (CMA, the default)
    ("ng_cma", "quadratic"): Expect(400),
    ("ng_cma", "rosenbrock2"): Expect(600),
    ("ng_cma", "rosenbrock20"): Expect(400, target=40.0, why=GRADIENT_FREE_20D),
    ("ng_cma", "bounded_quadratic"): Expect(300),
    ("ng_cma", "constrained"): Expect(300),
    ("ng_cma", "constrained_eq"): Expect(600, target=2e-2, why=THIN_RING, relaxed_eq=True),
    ("ng_cma", "failing"): Expect(150),
    # --- BoTorch: a handful of GP steps each (each costs ~0.3-0.8 s here)
    ("botorch", "quadratic"): Expect(20, target=2.0, why="5-D, 9 GP steps after 11 Sobol points"),
    ("botorch", "rosenbrock2"): Expect(15, target=1.5, why="10 GP steps on a badly scaled valley"),
    ("botorch", "rosenbrock20"): Expect(13, target=5000.0, settings=(("n_init", 10),),
                                        why="20-D, 3 GP steps: a smoke test (GP fits, acqf runs)"),
    ("botorch", "bounded_quadratic"): Expect(12),
    ("botorch", "constrained"): Expect(12, target=0.1, why="7 GP steps with a constraint model"),
    ("botorch", "constrained_eq"): Expect(
        30, target=2e-2, relaxed_eq=True, why=THIN_RING,
        skip="too slow for the unit suite: 9 GP steps found no feasible point on the 1e-2 ring; "
             "30 evaluations reach best - optimum = -6.5e-3, feasible, in ~28 s (measured)"),
    ("botorch", "failing"): Expect(10, target=5e-3, why="5 GP steps"),
    # --- random / Sobol: baselines; the targets record what the samplers reach
    ("random", "quadratic"): Expect(300, target=25.0, why="random sampling baseline"),
    ("random", "rosenbrock2"): Expect(300, target=0.1, why="random sampling baseline"),
    ("random", "rosenbrock20"): Expect(300, target=4000.0, why="random sampling baseline"),
    ("random", "bounded_quadratic"): Expect(300, target=0.4, why="random sampling baseline"),
    ("random", "constrained"): Expect(300, target=0.2, why="random sampling baseline"),
    ("random", "constrained_eq"): Expect(300, target=0.3, why="random sampling baseline; " + THIN_RING,
                                         relaxed_eq=True),
    ("random", "failing"): Expect(300, target=1e-2, why="random sampling baseline"),
    ("sobol_q4", "quadratic"): Expect(300, target=25.0, why="Sobol sampling baseline"),
    ("sobol_q4", "rosenbrock2"): Expect(300, target=0.1, why="Sobol sampling baseline"),
    ("sobol_q4", "rosenbrock20"): Expect(300, target=5000.0, why="Sobol sampling baseline"),
    ("sobol_q4", "bounded_quadratic"): Expect(300, target=0.3, why="Sobol sampling baseline"),
    ("sobol_q4", "constrained"): Expect(300, target=0.2, why="Sobol sampling baseline"),
    ("sobol_q4", "constrained_eq"): Expect(500, target=0.2, why="Sobol sampling baseline; " + THIN_RING,
                                           relaxed_eq=True),
    ("sobol_q4", "failing"): Expect(300, target=2e-2, why="Sobol sampling baseline"),
    # --- chains: global stage then L-BFGS polish reach the tolerances
    ("chain", "quadratic"): Expect(150),
    ("chain", "rosenbrock2"): Expect(150),
    ("chain", "rosenbrock20"): Expect(600),
    ("chain", "bounded_quadratic"): Expect(60),
    ("chain", "constrained"): Expect(250),
    ("chain", "constrained_eq"): Expect(250),
    ("chain", "failing"): Expect(60),
    ("chain_cma_lbfgs", "quadratic"): Expect(200),
    ("chain_cma_lbfgs", "rosenbrock2"): Expect(200),
    ("chain_cma_lbfgs", "rosenbrock20"): Expect(700),
    ("chain_cma_lbfgs", "bounded_quadratic"): Expect(100),
    ("chain_cma_lbfgs", "constrained"): Expect(300),
    ("chain_cma_lbfgs", "constrained_eq"): Expect(300),
    ("chain_cma_lbfgs", "failing"): Expect(100),
    # --- TuRBO: a handful of trust-region GP steps each (~0.1-0.3 s each on one thread)
    ("turbo", "quadratic"): Expect(20, target=12.0, why="5-D, 9 TuRBO steps after 11 Sobol points"),
    ("turbo", "rosenbrock2"): Expect(15, target=0.7, why="10 TuRBO steps on a badly scaled valley"),
    ("turbo", "rosenbrock20"): Expect(13, target=9000.0, settings=(("n_init", 10),),
                                      why="20-D, 3 TuRBO steps: a smoke test (GP fits, sampling runs)"),
    ("turbo", "bounded_quadratic"): Expect(12, target=0.08, why="5 TuRBO steps after 7 Sobol points"),
    ("turbo", "constrained"): Expect(12, target=0.09, why="7 TuRBO steps, constrained Thompson sampling"),
    ("turbo", "constrained_eq"): Expect(30, target=0.08, relaxed_eq=True, why=THIN_RING),
    ("turbo", "failing"): Expect(10, target=0.02, why="5 TuRBO steps"),
    # --- multi-start: a 32-point screen, then 8 L-BFGS members (here: 2 Adam members) share the budget
    ("multistart", "quadratic"): Expect(400),
    ("multistart", "rosenbrock2"): Expect(550),
    ("multistart", "rosenbrock20"): Expect(3300),
    ("multistart", "bounded_quadratic"): Expect(160),
    ("multistart", "constrained"): Expect(160),
    ("multistart", "constrained_eq"): Expect(320),
    ("multistart", "failing"): Expect(200),
    ("multistart_adam", "quadratic"): Expect(750),
    ("multistart_adam", "rosenbrock2"): Expect(2600),
    ("multistart_adam", "rosenbrock20"): Expect(1600),
    ("multistart_adam", "bounded_quadratic"): Expect(150),
    ("multistart_adam", "constrained"): Expect(2600),
    ("multistart_adam", "constrained_eq"): Expect(750),
    ("multistart_adam", "failing"): Expect(150),
}

MATRIX_CONFIGS = sorted({config for config, _ in EXPECTATIONS})


def _problem(name: str, expect: Expect) -> Any:
    if expect.relaxed_eq:
        assert name == "constrained_eq"
        return Constrained(equality=True, tol=RELAXED_EQ_TOL)
    return TOY_PROBLEMS[name]()


def _cases() -> list[Any]:
    cases = []
    for (config, problem), expect in EXPECTATIONS.items():
        marks = [pytest.mark.skip(reason=expect.skip)] if expect.skip else []
        if config.startswith(("botorch", "turbo")):
            marks.append(pytest.mark.slow)  # GP fits: ~1-5 s each; -m "not slow" skips them
        cases.append(pytest.param(config, problem, expect, id=f"{config}-{problem}", marks=marks))
    return cases


def test_table_covers_every_registered_optimizer_on_every_toy_problem():
    registered = {CONFIGS[config][0] for config in MATRIX_CONFIGS}
    assert registered == set(OPTIMIZERS) - MULTI_OBJECTIVE  # those: tests/optimizers/test_mo_contract.py
    for config in MATRIX_CONFIGS:
        assert {p for c, p in EXPECTATIONS if c == config} == set(TOY_PROBLEMS), config
    for expect in EXPECTATIONS.values():
        assert expect.target is None or expect.why, "a relaxed target needs its reason"


@pytest.mark.parametrize("config, problem_name, expect", _cases())
def test_reaches_target_within_budget(config: str, problem_name: str, expect: Expect):
    problem = _problem(problem_name, expect)
    name, settings = CONFIGS[config]
    optimizer = make_optimizer(name, problem, seed=0, **settings, **dict(expect.settings))
    result = minimize(problem, optimizer, max_cost=expect.budget)
    assert result.total_cost <= expect.budget
    assert result.total_cost == pytest.approx(sum(e.cost for e in result.history))
    best = result.best
    assert best is not None and not best.failed
    target = problem.tolerance if expect.target is None else expect.target
    error = best.value - problem.optimum_value
    assert best.feasible, f"best point is infeasible: constraints {best.constraints}"
    assert math.isfinite(error) and error <= target, (
        f"{config} on {problem_name}: best - optimum = {error:.3e} > target {target:.1e} "
        f"after cost {result.total_cost} ({result.stop_reason})")
