"""Cheap constraints (``on="params"``, ``invdesign/constraints.py``): tested on a point without simulating it.

Not an optimizer: the helpers every optimizer uses so that a point violating a cheap constraint never
costs a simulation (``Problem.evaluate`` simulates every point it is given, so the optimizer must not ask
for one). Sampling methods reject such points before asking (``feasible``, ``feasible_starts``); nevergrad
registers ``feasible`` as its cheap constraint; gradient members are told ``rejection`` (a failed
evaluation of cost 0) so their line search backs off, exactly as from a failed simulation.

A constraint that raises or returns NaN on a point counts as violated there (the problem would record
that point as failed anyway).
"""

from __future__ import annotations

import math
from typing import Any

import torch

PROJECTION_STEPS = 50  # Newton steps of project() at most
MARGIN = 1e-12  # project() lands this far inside (in the constraint's units): rounding must not undo it


def cheap_indices(problem: Any) -> list[int]:
    """Indices (in the problem's constraint order) of the ``on="params"`` constraints."""
    return [i for i, spec in enumerate(problem.constraint_specs) if spec.on == "params"]


def violated(problem: Any, z: torch.Tensor) -> str | None:
    """Name of the first cheap constraint point ``z`` (shape ``(dim,)``, optimizer coordinates) violates,
    None when it satisfies all of them (or the problem has none)."""
    indices = cheap_indices(problem)
    if not indices:
        return None
    specs = problem.constraint_specs
    with torch.no_grad():
        params = problem.to_params(torch.as_tensor(z, dtype=torch.float64))
        for i in indices:
            try:
                value = float(problem.constraints[i](None, params))
            except Exception:
                value = math.nan
            if not specs[i].satisfied(value):
                return specs[i].name
    return None


def feasible(problem: Any, z: torch.Tensor) -> bool:
    """Whether ``z`` (shape ``(dim,)``) satisfies every cheap constraint."""
    return violated(problem, z) is None


def feasible_mask(problem: Any, points: torch.Tensor) -> torch.Tensor:
    """Bool tensor ``(n,)``: which rows of ``points`` ``(n, dim)`` satisfy every cheap constraint."""
    if not cheap_indices(problem):
        return torch.ones(points.shape[0], dtype=torch.bool)
    return torch.tensor([feasible(problem, z) for z in points], dtype=torch.bool)


def violation(problem: Any, z: torch.Tensor) -> torch.Tensor:
    """Differentiable total violation ``sum max(g - tol, 0)`` (``|h| - tol`` for equalities) of the cheap
    constraints at ``z`` (shape ``(dim,)``); a 0-d tensor, 0 when feasible."""
    specs = problem.constraint_specs
    params = problem.to_params(z)
    total = torch.zeros((), dtype=torch.float64)
    for i in cheap_indices(problem):
        g = problem.constraints[i](None, params)
        excess = g.abs() if specs[i].kind == "eq" else g
        total = total + torch.clamp(excess - specs[i].tol, min=0.0)
    return total


def excess(problem: Any, z: torch.Tensor) -> float:
    """``violation`` at ``z`` as a float (0 when feasible); ``inf`` where a constraint raises or is NaN."""
    try:
        with torch.no_grad():
            value = float(violation(problem, torch.as_tensor(z, dtype=torch.float64)))
    except Exception:
        return math.inf
    return value if value == value else math.inf


def project(problem: Any, y: torch.Tensor, steps: int = PROJECTION_STEPS) -> torch.Tensor:
    """A point satisfying the cheap constraints near ``y`` (shape ``(dim,)``), differentiable in ``y``.

    Newton steps on the total violation ``v``: ``x <- clip(x - (v + MARGIN) / |grad v|^2 grad v)``, until
    feasible (no simulation). One violated linear constraint ``a.x <= b`` is one step onto its boundary
    (``MARGIN`` inside), whose Jacobian ``I - a a^T / |a|^2`` is the orthogonal projector, so a gradient
    pulled back through it vanishes exactly at the constrained optimum (``multistart``'s projected path).
    Returns the last iterate if it gets no further (callers test it with ``feasible``); ``y`` itself if it
    is feasible."""
    bounds = torch.as_tensor(problem.bounds, dtype=torch.float64)
    track = y.requires_grad  # build the graph through the steps (pull_back), or not (repair)
    x = y
    for _ in range(steps):
        if feasible(problem, x.detach()):
            return x
        with torch.enable_grad():
            leaf = x if track else x.detach().requires_grad_(True)
            try:
                total = violation(problem, leaf)
                (grad,) = torch.autograd.grad(total, leaf, create_graph=track)
            except Exception:  # a constraint that raises, or does not depend on the point: nothing to follow
                return x
        if not track:
            total, grad = total.detach(), grad.detach()
        norm2 = grad @ grad
        if not float(norm2) > 0.0 or not math.isfinite(float(norm2)):
            return x
        x = torch.minimum(torch.maximum(x - (total + MARGIN) / norm2 * grad, bounds[0]), bounds[1])
    return x


def repair(problem: Any, z: torch.Tensor) -> torch.Tensor:
    """``project`` without derivatives: a cheap-feasible point near ``z`` (shape ``(dim,)``), or the last
    iterate of the attempt (callers test it with ``feasible``)."""
    return project(problem, torch.as_tensor(z, dtype=torch.float64).detach()).detach()


def pull_back(problem: Any, y: torch.Tensor, gradients: list[list[float]]) -> list[list[float]]:
    """Gradients at ``project(y)`` pulled back to ``y``: ``J^T g`` for each ``g`` (lists of length dim),
    ``J`` the Jacobian of ``project`` at ``y`` (shape ``(dim,)``)."""
    with torch.enable_grad():
        leaf = torch.as_tensor(y, dtype=torch.float64).detach().clone().requires_grad_(True)
        x = project(problem, leaf)
        if not x.requires_grad:  # y was feasible: the identity
            return [list(g) for g in gradients]
        return [torch.autograd.grad(x, leaf, grad_outputs=torch.as_tensor(g, dtype=torch.float64),
                                    retain_graph=True)[0].tolist() for g in gradients]


def feasible_starts(problem: Any, draw: Any, n: int, max_draws: int) -> tuple[torch.Tensor, int]:
    """``n`` unit-cube points satisfying the cheap constraints, from ``draw(k) -> (k, dim)`` unit-cube points
    (a seeded Sobol engine's ``draw``), rejecting the others, at most ``max_draws`` draws; points still
    missing then are ``repair``-ed from the rejected draws (and kept even if repair fails: the caller's
    last resort). Returns ``(points (n, dim), draws used)``."""
    kept: list[torch.Tensor] = []
    rejected: list[torch.Tensor] = []
    used = 0
    while len(kept) < n and used < max_draws:
        u = draw(1).to(torch.float64)[0]
        used += 1
        (kept if feasible(problem, problem.from_unit(u)) else rejected).append(u)
    for u in rejected[: n - len(kept)]:
        kept.append(problem.to_unit(repair(problem, problem.from_unit(u))).clamp(0.0, 1.0))
    return torch.stack(kept) if kept else torch.zeros(0, problem.dim, dtype=torch.float64), used


def rejection(z: torch.Tensor, name: str, n_constraints: int) -> Any:
    """The failed, free (cost 0) evaluation a gradient method is told for a point it asked that violates
    cheap constraint ``name``: never simulated, so no value and no gradient."""
    from invdesign.problem import Evaluation  # the optimizers import without the core API

    return Evaluation(x=torch.as_tensor(z).tolist(), value=math.nan, constraints=[math.nan] * n_constraints,
                      feasible=False, failed=True, cost=0.0,
                      reason=f"CheapConstraint: violates '{name}' (rejected before simulating)")
