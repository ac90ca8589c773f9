"""Run an optimizer on a problem: ``step`` (one ask-evaluate-tell) and ``minimize`` (loop with
budgets).

Cost accounting is in forward-equivalent simulations: each Evaluation carries its ``cost``
(``problem.grad_cost_factor`` with a gradient, 1 without) and the driver sums them. Budgets are
never exceeded: a step runs only if its whole batch fits in what is left (``q`` evaluations,
costing ``q * grad_cost_factor`` when gradients are requested, ``q`` otherwise).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from invdesign.optimizers.base import Optimizer

FAIL_FAST_EVALS = 5  # a run whose first 5 evaluations all fail for one reason stops (0: never)


class NoFeasiblePointWarning(UserWarning):
    """``minimize`` ended without a feasible evaluation (``RunResult.best`` is None or infeasible)."""


def failing_from_start(reasons: Sequence[str | None], n: int = FAIL_FAST_EVALS) -> str | None:
    """The common reason when the first ``n`` evaluations all failed for the same reason, else None.

    ``reasons[i]`` is evaluation i's failure reason, None where it did not fail. A setting mistake (an
    objective returning a vector, a constraint returning NaN, a TypeError in the simulation) fails every
    evaluation the same way; stopping after ``n`` of them saves the rest of the budget.
    """
    if n <= 0 or len(reasons) < n:
        return None
    first = reasons[:n]
    return first[0] if first[0] is not None and all(r == first[0] for r in first) else None


def failing_message(reason: str, n: int) -> str:
    return (f"stopped early: the first {n} evaluations all failed with the same reason: {reason} "
            f"(fix the problem or its settings; fail_fast=0 turns this check off)")


@dataclass
class RunResult:
    """Outcome of ``minimize``.

    history: every evaluation in order. best: the optimizer's best (feasible first). total_cost:
    forward-equivalent simulations. stop_reason: the optimizer's ``done_reason`` when it stopped by
    itself ("converged", "step_limit", "evaluation_limit", "too_many_failures"), "max_cost",
    "max_evals", "max_time", "callback" or "failing" (the first ``fail_fast`` evaluations all failed for
    one reason). message: what happened in words, e.g. that no feasible point was found.
    """

    history: list[Any]
    best: Any
    total_cost: float
    n_evals: int
    wall_time_s: float
    stop_reason: str
    trace: list[float] = field(default_factory=list)  # best feasible value after each step
    message: str = ""

    @property
    def found_feasible(self) -> bool:
        return self.best is not None and bool(self.best.feasible)

    def to_dict(self) -> dict[str, Any]:
        return {
            "history": [e.to_dict() for e in self.history],
            "best": None if self.best is None else self.best.to_dict(),
            "total_cost": self.total_cost, "n_evals": self.n_evals,
            "wall_time_s": self.wall_time_s, "stop_reason": self.stop_reason, "trace": self.trace,
            "message": self.message,
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


@dataclass(frozen=True)
class Budget:
    """Per-run limits, and the one rule for when the next step may run (``minimize`` and the campaign
    runner both ask ``stop_reason`` before every step). None: no limit."""

    max_cost: float | None = None
    max_evals: int | None = None
    max_time_s: float | None = None
    fail_fast: int = FAIL_FAST_EVALS

    def stop_reason(self, problem: Any, optimizer: Optimizer, n_evals: int, cost: float, elapsed_s: float,
                    failure_reasons: Sequence[str | None] = ()) -> str | None:
        """Why no further step may run, or None. In order: "failing" (the first ``fail_fast`` evaluations
        all failed for one reason; ``failure_reasons[i]`` is evaluation i's reason, None where it did
        not fail), the optimizer's own ``done_reason``, then "max_evals" / "max_cost" when the whole
        next batch would not fit, "max_time" once ``elapsed_s`` reached the limit."""
        if failing_from_start(failure_reasons, self.fail_fast) is not None:
            return "failing"
        if optimizer.done:
            return optimizer.done_reason or "converged"
        if self.max_evals is not None and n_evals + optimizer.batch_size > self.max_evals:
            return "max_evals"
        if self.max_cost is not None and cost + next_step_cost(problem, optimizer) > self.max_cost + 1e-9:
            return "max_cost"
        if self.max_time_s is not None and elapsed_s >= self.max_time_s:
            return "max_time"
        return None


def minimize(problem: Any, optimizer: Optimizer, max_cost: float | None = None,
             max_evals: int | None = None, max_time_s: float | None = None,
             callback: Callable[[Optimizer, list[Any]], bool | None] | None = None,
             fail_fast: int = FAIL_FAST_EVALS, grad_cost: float | None = None) -> RunResult:
    """Step until the optimizer is done or a budget would be exceeded (``Budget.stop_reason``).

    ``callback(optimizer, evaluations)`` runs after each step; returning True stops the run.
    ``max_time_s`` is checked between steps (a step is never interrupted). ``fail_fast``: stop when
    the first that many evaluations all failed for the same reason (0: never). ``grad_cost``: a fixed
    forward-equivalent cost of a value + gradient, set as ``problem.grad_cost_factor`` (a campaign
    spec's ``budget.grad_cost``: ``minimize(problem, optimizer, **unit.budget)`` spends a budget exactly
    as the campaign does); None: the problem's own, declared or measured (load dependent). Without a
    feasible evaluation the result's ``message`` says so and a ``NoFeasiblePointWarning`` is issued.
    """
    if max_cost is None and max_evals is None and max_time_s is None and callback is None:
        raise ValueError("minimize needs a budget: max_cost, max_evals, max_time_s or a callback")
    if grad_cost is not None:
        if not grad_cost >= 1.0:
            raise ValueError(f"grad_cost must be >= 1 (forward-equivalent simulations); got {grad_cost!r}")
        problem.grad_cost_factor = float(grad_cost)
    budget = Budget(max_cost, max_evals, max_time_s, fail_fast)
    start = time.perf_counter()
    history: list[Any] = []
    trace: list[float] = []
    cost = 0.0
    while True:
        reasons = [e.reason if e.failed else None for e in history[:max(fail_fast, 0)]]
        reason = budget.stop_reason(problem, optimizer, len(history), cost, time.perf_counter() - start, reasons)
        if reason is not None:
            break
        evaluations = step(problem, optimizer)
        history.extend(evaluations)
        cost += sum(float(e.cost) for e in evaluations)
        best = optimizer.best
        trace.append(best.value if best is not None and best.feasible else float("nan"))
        if callback is not None and callback(optimizer, evaluations):
            reason = "callback"
            break
    result = RunResult(history=history, best=optimizer.best, total_cost=cost,
                       n_evals=len(history), wall_time_s=time.perf_counter() - start,
                       stop_reason=reason, trace=trace)
    result.message = outcome_message(result, fail_fast)
    if not result.found_feasible:
        warnings.warn(result.message, NoFeasiblePointWarning, stacklevel=2)
    return result


def outcome_message(result: RunResult, fail_fast: int = FAIL_FAST_EVALS) -> str:
    """One sentence on how a run ended, leading with the absence of a feasible point when so."""
    failed = sum(1 for e in result.history if e.failed)
    head = f"{result.n_evals} evaluations ({failed} failed), cost {result.total_cost:g}, stop: {result.stop_reason}"
    if result.stop_reason == "failing":
        head = failing_message(result.history[0].reason, fail_fast) + "; " + head
    if result.found_feasible:
        return f"best value {result.best.value:.6g}; {head}"
    if result.best is None:
        reasons = sorted({e.reason for e in result.history if e.failed and e.reason})
        why = f"; failure reasons: {'; '.join(reasons[:3])}" if reasons and result.stop_reason != "failing" else ""
        return f"no feasible point found: every evaluation failed (best is None); {head}{why}"
    return (f"no feasible point found: the best evaluation violates the constraints "
            f"({result.best.constraints}); {head}")
