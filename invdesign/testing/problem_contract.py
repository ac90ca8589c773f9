"""``ProblemContract``: checks every ``Problem`` must pass, as a pytest mixin.

Use::

    class TestMyProblem(ProblemContract):
        def make_problem(self):
            return MyProblem()

Every ``test_*`` method below then runs on it. Class attributes tune the checks (``grad_rtol``,
``fd_step``, ``n_points`` ...); keep ``n_points`` small for expensive simulations. Points that fail
to evaluate (a problem may have failure regions) are skipped by the gradient check, which still needs
one successful point.
"""

from __future__ import annotations

import json
import math
from typing import final

import torch

from invdesign.objectives import Objective
from invdesign.params import DTYPE
from invdesign.problem import Evaluation, Problem


def _unit_interior(problem: Problem, n: int, seed: int) -> torch.Tensor:
    # away from the faces of the cube: finite differences need room and sigmoid coordinates stay moderate
    gen = torch.Generator().manual_seed(seed)
    return problem.from_unit(0.15 + 0.7 * torch.rand((n, problem.dim), generator=gen, dtype=DTYPE))


def _json_round_trip(ev: Evaluation) -> Evaluation:
    return Evaluation.from_dict(json.loads(json.dumps(ev.to_dict(), allow_nan=False)))


def _comparable(ev: Evaluation) -> dict:
    d = ev.to_dict()
    d.pop("wall_time_s")
    d.pop("cost")
    return d


class ProblemContract:
    """Mixin of pytest checks; a subclass (named ``Test...``) implements ``make_problem``."""

    seed = 1234
    n_points = 3
    fd_step = 1e-6  # relative central-difference step in optimizer coordinates
    grad_rtol = 1e-5  # |grad - fd| <= grad_rtol * max(|grad|, |fd|) + grad_atol (2-norms)
    grad_atol = 1e-7
    round_trip_rtol = 1e-7
    fd_directions: int | None = None  # None: every coordinate; k: k random directions (large problems)

    def make_problem(self) -> Problem:
        raise NotImplementedError("a ProblemContract subclass implements make_problem()")

    def test_declares_its_attributes(self):
        p = self.make_problem()
        assert isinstance(p.name, str) and p.name
        assert isinstance(p.dim, int) and p.dim >= 1
        assert p.grad_cost_factor >= 1.0
        assert len({s.name for s in p.constraint_specs}) == len(p.constraints)
        if p.optimum_x is not None:
            assert len(p.optimum_x) == p.dim

    def test_bounds_initial_and_random_points(self):
        p = self.make_problem()
        b = p.bounds
        assert b.shape == (2, p.dim) and b.dtype == DTYPE
        assert not torch.isnan(b).any() and (b[0] < b[1]).all()
        z0 = p.initial_point()
        assert z0.shape == (p.dim,) and z0.dtype == DTYPE and torch.isfinite(z0).all()
        assert ((b[0] <= z0) & (z0 <= b[1])).all()
        z = p.random_points(self.n_points, torch.Generator().manual_seed(self.seed))
        assert z.shape == (self.n_points, p.dim) and z.dtype == DTYPE and torch.isfinite(z).all()
        assert ((b[0] <= z) & (z <= b[1])).all()

    def test_unit_cube_round_trip(self):
        p = self.make_problem()
        gen = torch.Generator().manual_seed(self.seed)
        u = 0.05 + 0.9 * torch.rand((self.n_points, p.dim), generator=gen, dtype=DTYPE)
        z = p.from_unit(u)
        torch.testing.assert_close(p.to_unit(z), u, rtol=self.round_trip_rtol, atol=1e-10)
        u0 = p.to_unit(p.initial_point())
        assert ((0 <= u0) & (u0 <= 1)).all()

    def test_params_round_trip(self):
        p = self.make_problem()
        z = _unit_interior(p, self.n_points, self.seed)
        params = p.to_params(z)
        for block in p.space.blocks:
            assert params[block.name].shape == (self.n_points, *block.shape), block.name
        torch.testing.assert_close(p.from_params(params), z, rtol=self.round_trip_rtol, atol=1e-9)
        single = p.to_params(z[0])
        for block in p.space.blocks:
            assert single[block.name].shape == block.shape, block.name
        torch.testing.assert_close(p.from_params(single), z[0], rtol=self.round_trip_rtol, atol=1e-9)

    def test_evaluations_are_well_formed(self):
        p = self.make_problem()
        z = torch.cat([p.initial_point()[None], _unit_interior(p, self.n_points - 1, self.seed)])
        m = len(p.constraints)
        for need_grad in (False, True):
            evs = p.evaluate(z, need_grad=need_grad)
            assert len(evs) == len(z)
            for zi, ev in zip(z, evs):
                assert isinstance(ev, Evaluation)
                assert ev.x == zi.tolist()
                assert len(ev.constraints) == m
                assert ev.cost == (p.grad_cost_factor if need_grad else 1.0)
                assert ev.wall_time_s >= 0.0
                assert all(isinstance(v, float) for v in ev.metrics.values())
                if ev.failed:
                    assert math.isnan(ev.value) and not ev.feasible and ev.reason
                else:
                    assert math.isfinite(ev.value) and ev.reason is None
                    assert ev.feasible == all(s.satisfied(g) for s, g in zip(p.constraint_specs, ev.constraints))
                    if need_grad:
                        assert len(ev.grad) == p.dim
                        assert len(ev.constraint_grads) == m and all(len(g) == p.dim for g in ev.constraint_grads)
                    else:
                        assert ev.grad is None and ev.constraint_grads is None
                assert _json_round_trip(ev).to_dict() == ev.to_dict()

    def test_gradient_matches_finite_differences(self):
        """Central differences along every coordinate, or along ``fd_directions`` random unit
        directions (then the directional derivatives ``grad . d`` are compared)."""
        p = self.make_problem()
        checked = 0
        gen = torch.Generator().manual_seed(self.seed + 2)
        for z in _unit_interior(p, self.n_points, self.seed + 1):
            ev = p.evaluate_one(z, need_grad=True)
            if ev.failed:
                continue
            if self.fd_directions is None:
                directions = torch.eye(p.dim, dtype=DTYPE)
            else:
                directions = torch.randn(self.fd_directions, p.dim, generator=gen, dtype=DTYPE)
                directions = directions / directions.norm(dim=1, keepdim=True)
            fd_value = torch.zeros(len(directions), dtype=DTYPE)
            fd_cons = torch.zeros(len(p.constraints), len(directions), dtype=DTYPE)
            m = len(ev.objectives) if ev.objectives is not None else 0  # multi-objective: every objective too
            fd_objs = torch.zeros(m, len(directions), dtype=DTYPE)
            for i, d in enumerate(directions):
                h = self.fd_step * max(1.0, float((z * d).abs().max()) if self.fd_directions is None
                                       else float(z.abs().max()))
                ep, em = p.evaluate(torch.stack([z + h * d, z - h * d]))
                assert not (ep.failed or em.failed), f"evaluation failed next to a good point: {ep.reason or em.reason}"
                fd_value[i] = (ep.value - em.value) / (2 * h)
                g_plus, g_minus = (torch.tensor(e.constraints, dtype=DTYPE) for e in (ep, em))
                fd_cons[:, i] = (g_plus - g_minus) / (2 * h)
                if m:
                    fd_objs[:, i] = (torch.tensor(ep.objectives, dtype=DTYPE) - torch.tensor(em.objectives, dtype=DTYPE)) / (2 * h)
            pairs = [("objective", directions @ torch.tensor(ev.grad, dtype=DTYPE), fd_value)]
            pairs += [(s.name, directions @ torch.tensor(g, dtype=DTYPE), fd)
                      for s, g, fd in zip(p.constraint_specs, ev.constraint_grads, fd_cons)]
            pairs += [(f"objective {j}", directions @ torch.tensor(g, dtype=DTYPE), fd)
                      for j, (g, fd) in enumerate(zip(ev.objective_grads or [], fd_objs))]
            for what, grad, fd in pairs:
                err = float((grad - fd).norm())
                scale = max(float(grad.norm()), float(fd.norm()))
                assert err <= self.grad_rtol * scale + self.grad_atol, (
                    f"{what}: autograd {grad.tolist()} vs finite differences {fd.tolist()} at z = {z.tolist()}")
            checked += 1
        assert checked, "no point evaluated successfully, so no gradient was checked"

    def test_objective_vectors(self):
        """Multi-objective problems record all ``n_objectives`` values (minimised convention; the value is
        the primary one) and their gradients; single-objective problems record none."""
        p = self.make_problem()
        m = p.n_objectives
        for need_grad in (False, True):
            for ev in p.evaluate(_unit_interior(p, self.n_points, self.seed), need_grad=need_grad):
                if m == 1:
                    assert ev.objectives is None and ev.objective_grads is None
                    continue
                assert len(ev.objectives) == m
                if ev.failed:
                    assert all(math.isnan(v) for v in ev.objectives)
                    continue
                assert all(math.isfinite(v) for v in ev.objectives)
                assert ev.value == ev.objectives[p.objective.primary]
                assert set(ev.metrics) >= {s.name for s in p.objective.specs}
                if need_grad:
                    assert len(ev.objective_grads) == m and all(len(g) == p.dim for g in ev.objective_grads)
                else:
                    assert ev.objective_grads is None

    def test_deterministic_under_a_seed(self):
        runs = []
        for _ in range(2):
            p = self.make_problem()
            z = p.random_points(self.n_points, torch.Generator().manual_seed(self.seed))
            runs.append((z, [_comparable(ev) for ev in p.evaluate(z, need_grad=True)]))
        assert torch.equal(runs[0][0], runs[1][0])
        assert runs[0][1] == runs[1][1]

    def test_failures_are_recorded(self):
        p = self.make_problem()

        def broken(params):
            raise RuntimeError("solver exploded")

        p.simulate = broken  # instance attribute shadows the method
        for need_grad in (False, True):
            (ev,) = p.evaluate(p.initial_point()[None], need_grad=need_grad)
            assert ev.failed and not ev.feasible and math.isnan(ev.value)
            assert ev.reason == "RuntimeError: solver exploded"
            assert ev.cost == (p.grad_cost_factor if need_grad else 1.0)
            assert _json_round_trip(ev).to_dict() == ev.to_dict()

    def test_non_finite_values_are_recorded(self):
        p = self.make_problem()
        for bad in (math.nan, math.inf):
            p.objective = _ConstantObjective(bad)  # instance attribute shadows the problem's objective
            (ev,) = p.evaluate(p.initial_point()[None], need_grad=True)
            assert ev.failed and math.isnan(ev.value) and ev.grad is None
            assert ev.reason.startswith("NonFiniteError:") and "objective" in ev.reason


@final
class _ConstantObjective(Objective):
    name = "constant"

    def __init__(self, value: float):
        self.value = value

    def __call__(self, response, params):
        return torch.tensor(self.value, dtype=DTYPE)

