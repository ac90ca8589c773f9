"""Run an optimizer on a problem: ``step`` (one ask-evaluate-tell) and ``minimize`` (loop with
budgets).

Cost accounting is in forward-equivalent simulations: each Evaluation carries its ``cost``
(``problem.grad_cost_factor`` with a gradient, 1 without) and the driver sums them. Budgets are
never exceeded: a step runs only if its whole batch fits in what is left (``q`` evaluations,
costing ``q * grad_cost_factor`` when gradients are requested, ``q`` otherwise).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from invdesign.optimizers.base import Optimizer


@dataclass
class RunResult:
    """Outcome of ``minimize``.

    history: every evaluation in order. best: the optimizer's best (feasible first). total_cost:
    forward-equivalent simulations. stop_reason: "converged" (optimizer done), "max_cost",
    "max_evals", "max_time" or "callback".
    """

    history: list[Any]
    best: Any
    total_cost: float
    n_evals: int
    wall_time_s: float
    stop_reason: str
    trace: list[float] = field(default_factory=list)  # best feasible value after each step

    def to_dict(self) -> dict[str, Any]:
        return {
            "history": [e.to_dict() for e in self.history],
            "best": None if self.best is None else self.best.to_dict(),
            "total_cost": self.total_cost, "n_evals": self.n_evals,
            "wall_time_s": self.wall_time_s, "stop_reason": self.stop_reason, "trace": self.trace,
        }


def step(problem: Any, optimizer: Optimizer) -> list[Any]:
    """One ask-evaluate-tell round; returns the batch's evaluations (a checkpoint can follow)."""
    points = optimizer.ask()
    evaluations = problem.evaluate(points, need_grad=optimizer.wants_gradient)
    optimizer.tell(evaluations)
    return evaluations


def next_step_cost(problem: Any, optimizer: Optimizer) -> float:
    """Forward-equivalent cost the next ``step`` will charge (before it runs)."""
    factor = float(problem.grad_cost_factor) if optimizer.wants_gradient else 1.0
    return optimizer.batch_size * factor


def minimize(problem: Any, optimizer: Optimizer, max_cost: float | None = None,
             max_evals: int | None = None, max_time_s: float | None = None,
             callback: Callable[[Optimizer, list[Any]], bool | None] | None = None) -> RunResult:
    """Step until the optimizer is done or a budget would be exceeded.

    ``callback(optimizer, evaluations)`` runs after each step; returning True stops the run.
    ``max_time_s`` is checked between steps (a step is never interrupted).
    """
    if max_cost is None and max_evals is None and max_time_s is None and callback is None:
        raise ValueError("minimize needs a budget: max_cost, max_evals, max_time_s or a callback")
    start = time.perf_counter()
    history: list[Any] = []
    trace: list[float] = []
    cost = 0.0
    reason = "converged"
    while True:
        if optimizer.done:
            reason = "converged"
            break
        if max_evals is not None and len(history) + optimizer.batch_size > max_evals:
            reason = "max_evals"
            break
        if max_cost is not None and cost + next_step_cost(problem, optimizer) > max_cost + 1e-9:
            reason = "max_cost"
            break
        if max_time_s is not None and time.perf_counter() - start >= max_time_s:
            reason = "max_time"
            break
        evaluations = step(problem, optimizer)
        history.extend(evaluations)
        cost += sum(float(e.cost) for e in evaluations)
        best = optimizer.best
        trace.append(best.value if best is not None and best.feasible else float("nan"))
        if callback is not None and callback(optimizer, evaluations):
            reason = "callback"
            break
    return RunResult(history=history, best=optimizer.best, total_cost=cost,
                     n_evals=len(history), wall_time_s=time.perf_counter() - start,
                     stop_reason=reason, trace=trace)
