"""``paper/agnr_doping`` evaluates a batch as one batched NEGF solve, equal to point-by-point evaluation."""

from __future__ import annotations

import torch

from problems.agnr_doping import AGNRDoping


def _assert_same(batched, single) -> None:
    for a, b in zip(batched, single):
        assert not a.failed and not b.failed
        assert abs(a.value - b.value) <= 1e-12
        assert max(abs(u - v) for u, v in zip(a.grad, b.grad)) <= 1e-12
        assert a.cost == b.cost


def test_batch_is_one_solve_equal_to_one_by_one(monkeypatch):
    problem = AGNRDoping()
    problem.grad_cost_factor = 2.0
    z = torch.cat([problem.initial_point()[None], problem.random_points(4, 0)])
    calls = []
    simulate = problem.simulate
    monkeypatch.setattr(problem, "simulate", lambda params: calls.append(1) or simulate(params))
    batched = problem.evaluate(z, need_grad=True)
    assert calls == []  # no per-point simulation: one batched solve
    monkeypatch.undo()
    _assert_same(batched, [problem.evaluate_one(zi, need_grad=True) for zi in z])
    assert len({e.wall_time_s for e in batched}) == 1  # the batched call's time, shared out


def test_doped_leads_fall_back_to_the_per_point_path():
    problem = AGNRDoping(doped_leads=True, cells=2, n_energies=8)
    problem.grad_cost_factor = 2.0
    z = problem.random_points(2, 1)
    assert problem._batched_devices() is None
    _assert_same(problem.evaluate(z, need_grad=True), [problem.evaluate_one(zi, need_grad=True) for zi in z])
