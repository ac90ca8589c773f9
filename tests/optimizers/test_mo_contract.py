"""Contract matrix of the multi-objective optimizers: every one on every multi-objective toy problem
reaches a share of the true front's hypervolume within its budget; hypervolume grows; state round trip;
the batched scalarisation sweep equals its members run one by one (1e-12).

``EXPECTATIONS`` states per (configuration, problem) the budget (forward-equivalent cost) and the share
of ``problem.hypervolume_optimum`` to reach, set about 0.02 below the lower of the shares measured with
seeds 0 and 1 (in brackets).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pytest
import torch
from tests.optimizers.optimizer_cases import Flaky
from tests.optimizers.test_opt_state import _run

from invdesign import pareto
from invdesign.optimizers import MULTI_OBJECTIVE, make_optimizer, minimize
from invdesign.optimizers.scalarization_sweep import scalarize, simplex_weights
from invdesign.testing.toy_multiobjective import TOY_MULTIOBJECTIVE

CHEAP_BOTORCH = {"num_restarts": 2, "raw_samples": 32, "mc_samples": 32, "acqf_maxiter": 25}
CONFIGS: dict[str, tuple[str, dict]] = {
    "botorch_mo": ("botorch_mo", {**CHEAP_BOTORCH, "n_init": 6}),
    "ng_de_q4": ("nevergrad_mo", {"optimizer": "DE", "batch_size": 4}),
    "sweep": ("scalarization_sweep", {"n_weights": 8, "steps": 40}),
    "sweep_ws": ("scalarization_sweep", {"n_weights": 6, "steps": 40, "scalarization": "weighted_sum"}),
}


@dataclass(frozen=True)
class Expect:
    budget: float   # max_cost, forward-equivalents (a value + gradient costs 2 on the toys)
    share: float    # hypervolume reached / hypervolume of the true front


EXPECTATIONS: dict[tuple[str, str], Expect] = {
    ("botorch_mo", "two_quadratics"): Expect(16, 0.92),  # (0.9571, 0.9382)
    ("botorch_mo", "two_quadratics_constrained"): Expect(16, 0.90),  # (0.9619, 0.921)
    ("botorch_mo", "zdt1"): Expect(16, 0.85),  # (0.9118, 0.8743)
    ("ng_de_q4", "two_quadratics"): Expect(400, 0.97),  # (0.9875, 0.9937)
    ("ng_de_q4", "two_quadratics_constrained"): Expect(400, 0.97),  # (0.9889, 0.9893)
    ("ng_de_q4", "zdt1"): Expect(400, 0.83),  # (0.8533, 0.855)
    ("sweep", "two_quadratics"): Expect(640, 0.95),  # (0.9756, 0.9684)
    ("sweep", "two_quadratics_constrained"): Expect(640, 0.955),  # (0.9824, 0.9749)
    ("sweep", "zdt1"): Expect(640, 0.82),  # (0.8426, 0.8574)
    ("sweep_ws", "two_quadratics"): Expect(480, 0.945),  # (0.9851, 0.9663)
    ("sweep_ws", "two_quadratics_constrained"): Expect(480, 0.955),  # (0.9851, 0.9749)
    ("sweep_ws", "zdt1"): Expect(480, 0.83),  # (0.8488, 0.9215)
}


@pytest.fixture(autouse=True)
def one_thread():
    """GP fits on a shared 2-core machine: torch's default threads slow them by whole factors."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _make(config: str, problem, seed: int = 0):
    name, settings = CONFIGS[config]
    return make_optimizer(name, problem, seed, **settings)


def _hv(history, problem) -> float:
    return pareto.hypervolume(pareto.evaluation_matrix(history, problem.n_objectives), problem.objective.ref_point)


def _cases():
    return [pytest.param(c, p, e, id=f"{c}-{p}", marks=[pytest.mark.slow] if c.startswith("botorch") else [])
            for (c, p), e in EXPECTATIONS.items()]


def test_table_covers_every_multi_objective_optimizer_on_every_toy():
    assert {CONFIGS[c][0] for c, _ in EXPECTATIONS} == set(MULTI_OBJECTIVE)
    for config in {c for c, _ in EXPECTATIONS}:
        assert {p for c, p in EXPECTATIONS if c == config} == set(TOY_MULTIOBJECTIVE)


@pytest.mark.parametrize("config, problem_name, expect", _cases())
def test_reaches_hypervolume_share_within_budget(config, problem_name, expect):
    problem = TOY_MULTIOBJECTIVE[problem_name]()
    result = minimize(problem, _make(config, problem), max_cost=expect.budget)
    assert result.total_cost <= expect.budget
    history = result.history
    assert all(e.objectives is not None and len(e.objectives) == problem.n_objectives for e in history)
    share = _hv(history, problem) / problem.hypervolume_optimum
    assert share >= expect.share, f"{config} on {problem_name}: hypervolume share {share:.4f} < {expect.share}"
    assert share <= 1.0 + 1e-9
    # hypervolume grows: the second half of the run adds to the first half's
    trace = pareto.hypervolume_trace(pareto.evaluation_matrix(history, problem.n_objectives),
                                     problem.objective.ref_point)
    assert (torch.diff(torch.as_tensor(trace)) >= 0).all()
    assert trace[-1] > trace[len(trace) // 4], f"{config}: no progress after the first quarter"
    for e in pareto.pareto_set(history, problem.n_objectives):
        assert e.feasible and not e.failed


def _fails_here(_: int, x: list[float]) -> bool:
    # deterministic in the point, so interrupted and uninterrupted runs see the same failures
    return int(abs(x[0]) * 1e6 + abs(x[1]) * 3e6) % 7 == 3


STATE_STEPS = {"botorch_mo": (8, 9)}  # Sobol points first, then GP rounds on both sides of the cut


@pytest.mark.parametrize("config", [pytest.param(c, marks=[pytest.mark.slow] if c.startswith("botorch") else [])
                                    for c in CONFIGS])
@pytest.mark.parametrize("pending", [False, True], ids=["after_tell", "between_ask_and_tell"])
def test_state_round_trip_continues_exactly(config, pending):
    """Interrupt, JSON round trip, continue: the asked points equal the uninterrupted run's bit for bit
    (constrained toy with injected failures)."""
    k, total = STATE_STEPS.get(config, (12, 20))
    problem = Flaky(TOY_MULTIOBJECTIVE["two_quadratics_constrained"](), _fails_here)
    reference = _run(problem, _make(config, problem), total)
    first = _make(config, problem)
    asked = _run(problem, first, k)
    if pending:
        waiting = first.ask()
    second = _make(config, problem)
    second.load_state_dict(json.loads(json.dumps(first.state_dict(), allow_nan=False)))
    if pending:
        assert torch.equal(second.ask(), waiting)
    asked += _run(problem, second, total - k)
    assert len(asked) == len(reference)
    for step, (a, b) in enumerate(zip(asked, reference)):
        assert torch.equal(a, b), f"{config}: step {step} differs after the round trip"


def test_multi_objective_optimizers_refuse_single_objective_problems():
    from invdesign.testing.toy_problems import TOY_PROBLEMS

    for name in MULTI_OBJECTIVE:
        with pytest.raises(ValueError, match="MultiObjective"):
            make_optimizer(name, TOY_PROBLEMS["quadratic"](), 0)


# ----- the sweep's batching ----------------------------------------------------------------------


@pytest.mark.parametrize("kind, smooth", [("chebyshev", 0.01), ("chebyshev", 0.0), ("weighted_sum", 0.0)])
def test_batched_scalarisation_equals_one_by_one(kind, smooth):
    gen = torch.Generator().manual_seed(0)
    n, m = 9, 3
    F = torch.rand(n, m, generator=gen, dtype=torch.float64) * 3
    w = simplex_weights(n, m)
    utopia = torch.rand(n, m, generator=gen, dtype=torch.float64) - 1.0
    scale = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    values, coeffs = scalarize(F, w, utopia, scale, kind, smooth)
    for k in range(n):
        v, c = scalarize(F[k:k + 1], w[k:k + 1], utopia[k:k + 1], scale, kind, smooth)
        assert abs(float(v[0] - values[k])) <= 1e-12 and float((c[0] - coeffs[k]).abs().max()) <= 1e-12
        # the coefficients are the derivatives of the value
        Fk = F[k].clone().requires_grad_(True)
        vk, _ = scalarize(Fk[None], w[k:k + 1], utopia[k:k + 1], scale, kind, smooth)
        (g,) = torch.autograd.grad(vk[0], Fk)
        torch.testing.assert_close(g, coeffs[k], rtol=0, atol=1e-12)


def test_sweep_of_w_weights_equals_w_runs_of_one_weight():
    """All W members advanced by one batched evaluation per step take exactly the steps of W separate
    one-member runs (same start, same normalisation), to 1e-12, constraints and failures included."""
    problem = Flaky(TOY_MULTIOBJECTIVE["two_quadratics_constrained"](), _fails_here)
    weights = simplex_weights(5, 2).tolist()
    common = {"start": "initial", "steps": 25, "normalization": [[-0.5, -0.5], [1.5, 1.5]], "al_every": 5}
    batched = make_optimizer("scalarization_sweep", problem, 0, weights=weights, **common)
    per_member: dict[int, list[torch.Tensor]] = {k: [] for k in range(len(weights))}
    rounds = 0
    while not batched.done:
        points = batched.ask()
        evaluations = problem.evaluate(points, need_grad=True)  # one call for all members
        for k, row in zip(batched.asked_members, points):
            per_member[k].append(row)
        batched.tell(evaluations)
        rounds += 1
    assert rounds > 25  # failures (injected) made some members repeat a step
    for k, w in enumerate(weights):
        single = make_optimizer("scalarization_sweep", problem, 0, weights=[w], **common)
        alone = [p[0] for p in _run(problem, single, 1000)]
        assert len(alone) == len(per_member[k]) >= 25
        for step, (a, b) in enumerate(zip(alone, per_member[k])):
            assert float((a - b).abs().max()) <= 1e-12, (k, step)


def test_sweep_members_end_on_the_true_front():
    """Two quadratics: the Pareto set is the segment a + t (b - a); every member's last point is on it."""
    problem = TOY_MULTIOBJECTIVE["two_quadratics"]()
    optimizer = make_optimizer("scalarization_sweep", problem, 0, n_weights=6, steps=150, lr=0.05)
    minimize(problem, optimizer, max_cost=10_000)
    a, b = problem.a, problem.b
    for x in optimizer._x_good:
        t = float((x - a) @ (b - a) / ((b - a) @ (b - a)))
        assert -1e-3 <= t <= 1 + 1e-3
        assert float((x - (a + t * (b - a))).norm()) < 1e-2
