"""Batched evaluation: a problem that simulates a batch of points in one call.

A problem declares it by defining ``simulate_batch(params) -> list`` beside ``simulate``: ``params`` holds
each block with a leading batch dimension ``n`` (``space.to_params`` of ``(n, dim)`` points) and the
method returns ``n`` responses, response ``i`` being what ``simulate`` returns for point ``i`` (for a
physics problem: one solve of a Hamiltonian with a leading batch dimension instead of ``n`` solves).
``Problem.evaluate`` then evaluates batches of two or more points here; one point, and every point this
path cannot take, go through ``Problem._evaluate_point`` (the reference path), so a batch evaluates to the
same ``Evaluation`` records as point by point (tests pin 1e-12 on values and gradients).

Cost and wall time. Every point still costs its forward-equivalents (``cost``: 1, or ``grad_cost_factor``
with a gradient): batching saves wall time, not simulations. ``wall_time_s`` of a point evaluated in the
batched call is its share of that call (the call's seconds over its points), so the records of a batch
sum to the call's wall time.

Gradients. Points of a batch are independent, so the gradient of ``sum_i f_i`` with respect to the
``(n, dim)`` leaf has row ``i`` equal to ``d f_i / d z_i``: one backward pass per output (objective, each
constraint, each further objective of a multi-objective problem) for the whole batch, as the one-point
path needs per point.

Failures stay per point: a point outside the box, a point whose objective, constraint or gradient is not
finite (or raises), and every point of a batch whose ``simulate_batch`` raised, are evaluated again
alone by the reference path, which records the failure exactly as it would without batching.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import torch

from invdesign.problem import Evaluation, Problem, _scalar

__all__ = ["evaluate_batch"]


def evaluate_batch(problem: Problem, z: torch.Tensor, need_grad: bool, cost: float) -> list[Evaluation]:
    """Evaluations of the ``(n, dim)`` points ``z``, in order, the simulations of the points inside the box
    done by one ``simulate_batch`` call; ``cost`` is charged to every point."""
    start = time.perf_counter()
    inside = [i for i in range(z.shape[0]) if problem.outside_bounds(z[i]) is None]
    batched: dict[int, Evaluation] = {}
    if len(inside) > 1:
        try:
            found = _batched(problem, z[inside], need_grad, cost)
        except Exception as err:  # the batched simulation failed as a whole: each point alone says why
            if not getattr(problem, "_warned_batch_failure", False):
                problem._warned_batch_failure = True
                warnings.warn(f"problem '{problem.name}': simulate_batch raised {type(err).__name__}: {err}; "
                              "evaluating the batch point by point", RuntimeWarning, stacklevel=3)
            found = [None] * len(inside)
        batched = {i: e for i, e in zip(inside, found) if e is not None}
        share = (time.perf_counter() - start) / max(len(batched), 1)
        for evaluation in batched.values():
            evaluation.wall_time_s = share
    return [batched[i] if i in batched else problem._evaluate_point(z[i], need_grad, cost)
            for i in range(z.shape[0])]


def _batched(problem: Problem, z: torch.Tensor, need_grad: bool, cost: float) -> list[Evaluation | None]:
    """One ``simulate_batch`` call for ``z`` (n, dim); None for a point the reference path must redo."""
    specs = problem.constraint_specs
    n = z.shape[0]
    with torch.inference_mode(False):  # as Problem._compute: grad mode is ours to set
        with torch.set_grad_enabled(need_grad):
            leaf = z.detach().clone().requires_grad_(need_grad)
            params = problem.space.to_params(leaf)  # each block (n, *shape)
            rows = [{k: v[i] for k, v in params.items()} for i in range(n)]
            responses = list(problem.simulate_batch(params))
            if len(responses) != n:
                raise ValueError(f"simulate_batch returned {len(responses)} responses for {n} points")
            outputs = [_outputs(problem, specs, r, p) for r, p in zip(responses, rows)]
        grads = _gradients(leaf, outputs, len(specs), getattr(problem.objective, "primary", None)) \
            if need_grad else None
        with torch.no_grad():
            out = []
            for i, (response, p, o) in enumerate(zip(responses, rows, outputs)):
                if o is None or (grads is not None and grads[i] is None):
                    out.append(None)
                    continue
                try:
                    metrics = {k: float(v) for k, v in problem.objective.metrics(response, p).items()}
                except Exception:  # the reference path records it as the point's failure
                    out.append(None)
                    continue
                out.append(_record(problem, specs, z[i], o, None if grads is None else grads[i], metrics, cost))
    return out


def _outputs(problem: Problem, specs: list, response: Any, params: dict) -> list[torch.Tensor] | None:
    """``[value, *constraints, *objectives]`` of one point (scalar tensors), None if any is not finite or
    raises. Params constraints get ``response=None``, as in ``Problem._compute``."""
    try:
        g = [_scalar(c(response if s.on == "response" else None, params), f"constraint '{s.name}'")
             for c, s in zip(problem.constraints, specs)]
        value = _scalar(problem.objective(response, params), "objective value")
        minimized = getattr(problem.objective, "minimized", None)
        f = [_scalar(v, f"objective {i}") for i, v in enumerate(minimized(response, params))] \
            if minimized is not None else []
    except Exception:
        return None
    return [value, *g, *f]


def _gradients(leaf: torch.Tensor, outputs: list, n_constraints: int,
               primary: int | None) -> list[list[list[float]] | None]:
    """Per point, the gradient rows of its outputs (None where one is not finite): one backward pass per
    output over the whole batch (module docstring). ``primary``: the objective whose gradient is the value's."""
    ok = [i for i, o in enumerate(outputs) if o is not None]
    if not ok:
        return [None] * len(outputs)
    columns: list[torch.Tensor] = []  # per output, (n, dim)
    for j in range(len(outputs[ok[0]])):
        if primary is not None and j == 1 + n_constraints + primary:
            columns.append(columns[0])  # a multi-objective value is its primary objective: no second pass
            continue
        terms = [outputs[i][j] for i in ok if outputs[i][j].requires_grad]
        grad = None
        if terms:
            (grad,) = torch.autograd.grad(torch.stack(terms).sum(), leaf, retain_graph=True, allow_unused=True)
        columns.append(torch.zeros_like(leaf) if grad is None else grad.detach())
    per_point: list[list[list[float]] | None] = [None] * len(outputs)
    for i in ok:
        rows = [c[i] for c in columns]
        if all(bool(torch.isfinite(r).all()) for r in rows):
            per_point[i] = [r.tolist() for r in rows]
    return per_point


def _record(problem: Problem, specs: list, z: torch.Tensor, outputs: list[torch.Tensor],
            grads: list[list[float]] | None, metrics: dict[str, float], cost: float) -> Evaluation:
    """The Evaluation of one point from its outputs ``[value, *constraints, *objectives]`` and their
    gradient rows (None without gradients)."""
    values = [float(o.detach()) for o in outputs]
    n_c = len(specs)
    g_values, f_values = values[1:1 + n_c], values[1 + n_c:]
    multi = problem.n_objectives > 1
    return Evaluation(
        x=z.detach().tolist(), value=values[0], grad=None if grads is None else grads[0],
        constraints=g_values, constraint_grads=None if grads is None else grads[1:1 + n_c],
        feasible=all(s.satisfied(g) for s, g in zip(specs, g_values)), failed=False, reason=None,
        metrics=metrics, cost=cost,
        objectives=f_values if multi else None,
        objective_grads=(grads[1 + n_c:] or None) if multi and grads is not None else None)
