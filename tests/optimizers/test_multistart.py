"""The multistart optimizer's own behaviour: one batched ask of K points per step (one simulate_batch call),
the screen's evaluations reused as the members' starts, culling and restarts, max_starts."""

from __future__ import annotations

import pytest
import torch

from invdesign.objectives import ResponseValue
from invdesign.optimizers import make_optimizer, minimize, step
from invdesign.params import Block, ParameterSpace
from invdesign.problem import Problem
from invdesign.testing.toy_problems import TOY_PROBLEMS


class TwoWells(Problem):
    """``min(|x - a|^2, |x - b|^2 + 0.1)`` smoothed, on ``[-1, 1]^2``: two basins; ``simulate_batch`` counts
    its calls and the points it simulated."""

    name = "two_wells"
    grad_cost_factor = 2.0
    objective = ResponseValue()

    def __init__(self):
        self.space = ParameterSpace([Block("x", (2,), lower=-1.0, upper=1.0)])
        self.a = torch.tensor([0.5, 0.5], dtype=torch.float64)
        self.b = torch.tensor([-0.5, -0.5], dtype=torch.float64)
        self.calls, self.points = 0, []

    def _f(self, x: torch.Tensor) -> torch.Tensor:
        wells = torch.stack([((x - self.a) ** 2).sum(-1), ((x - self.b) ** 2).sum(-1) + 0.1])
        return -torch.logsumexp(-wells / 0.01, 0) * 0.01

    def simulate(self, params):
        self.points.append(params["x"].detach().tolist())
        return self._f(params["x"])

    def simulate_batch(self, params):
        self.calls += 1
        self.points += params["x"].detach().tolist()
        return list(self._f(params["x"]))


def test_every_step_is_one_batched_call_of_k_points_and_the_screen_is_reused():
    problem = TwoWells()
    optimizer = make_optimizer("multistart", problem, 0, members=4, screen=8, halving=0)
    assert optimizer.batch_size == 8  # the screen comes first
    first = step(problem, optimizer)
    assert len(first) == 8 and problem.calls == 1
    assert first[0].x == problem.initial_point().tolist()  # the initial point is screened first
    for n in range(2, 6):
        evaluations = step(problem, optimizer)
        assert len(evaluations) == optimizer.batch_size == 4 and problem.calls == n
    screened = {tuple(x) for x in problem.points[:8]}
    later = [tuple(x) for x in problem.points[8:]]
    assert not screened & set(later)  # members were told their start's evaluation, not asked it again


def test_finds_the_better_basin_and_restarts_converged_members():
    problem = TwoWells()
    optimizer = make_optimizer("multistart", problem, 0, members=4, screen=8, halving=0)
    result = minimize(problem, optimizer, max_cost=400)
    assert result.best.value == pytest.approx(0.0, abs=1e-8)
    counts = optimizer.counts
    assert counts["converged"] >= 1 and optimizer.n_starts > 4
    assert counts["duplicate"] + counts["known_basin"] >= 1  # members descending into a basin found already


def test_max_starts_shrinks_the_batch_and_ends_the_run():
    problem = TOY_PROBLEMS["bounded_quadratic"]()
    optimizer = make_optimizer("multistart", problem, 0, members=3, screen=0, max_starts=4)
    result = minimize(problem, optimizer, max_cost=10_000)
    assert result.stop_reason == "converged" and optimizer.done
    assert optimizer.n_starts == 4
    assert result.best.value - problem.optimum_value <= problem.tolerance


def test_bad_settings_are_refused():
    problem = TOY_PROBLEMS["quadratic"]()
    with pytest.raises(ValueError, match="local"):
        make_optimizer("multistart", problem, 0, local="bfgs")
    with pytest.raises(ValueError, match="cheap"):
        make_optimizer("multistart", problem, 0, cheap="ignore")
    with pytest.raises(ValueError, match="members"):
        make_optimizer("multistart", problem, 0, members=0)
    with pytest.raises(ValueError, match="no setting"):
        make_optimizer("multistart", problem, 0, local_settings={"learning_rate": 1.0})


def test_successive_halving_halves_the_batch_and_doubles_the_rung():
    problem = TOY_PROBLEMS["rosenbrock20"]()
    optimizer = make_optimizer("multistart", problem, 0, members=8, screen=16, halving=2)
    step(problem, optimizer)  # the screen
    sizes = [len(step(problem, optimizer)) for _ in range(2 + 4 + 8 + 3)]
    assert sizes == [8, 8, 4, 4, 4, 4, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1]
    assert optimizer.counts["halved"] == 4 + 2 + 1


def test_successive_halving_drops_the_worse_members_by_their_best():
    problem = TwoWells()
    optimizer = make_optimizer("multistart", problem, 0, members=4, screen=8, halving=1)
    step(problem, optimizer)
    members = list(optimizer._members)
    evaluations = step(problem, optimizer)  # one step: then the worse two stop
    assert len(evaluations) == 4
    ranked = sorted(members, key=lambda m: m.key)
    assert [m.number for m in optimizer._members] == sorted(m.number for m in ranked[:2])
    assert optimizer.counts["halved"] == 2 and optimizer.batch_size == 2


def test_halving_by_default_only_without_response_constraints():
    assert make_optimizer("multistart", TOY_PROBLEMS["rosenbrock20"](), 0).settings["halving"] == 2
    assert make_optimizer("multistart", TOY_PROBLEMS["constrained_eq"](), 0).settings["halving"] == 0
    assert make_optimizer("multistart", TOY_PROBLEMS["constrained"](), 0, halving=3).settings["halving"] == 3
    with pytest.raises(ValueError, match="halving"):
        make_optimizer("multistart", TwoWells(), 0, halving=-1)


def test_a_checkpoint_from_before_halving_continues_without_it():
    problem = TOY_PROBLEMS["rosenbrock20"]()
    optimizer = make_optimizer("multistart", problem, 0, members=4, screen=8, halving=2)
    step(problem, optimizer)  # the screen
    state = optimizer.state_dict()
    del state["state"]["halving"], state["settings"]["halving"]  # as written before successive halving existed
    resumed = make_optimizer("multistart", problem, 0, members=4, screen=8, halving=2)
    resumed.load_state_dict(state)
    assert [len(step(problem, resumed)) for _ in range(6)] == [4] * 6
    assert resumed.counts["halved"] == 0
    assert [len(step(problem, optimizer)) for _ in range(6)] == [4, 4, 2, 2, 2, 2]  # the same, continued anew
