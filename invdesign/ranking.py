"""How evaluations rank, written once: for the optimizers' ``best`` and for the campaign's history records.

Feasible points (feasible, not failed, finite value) come first, by value; then infeasible ones, by
total constraint violation; failed evaluations last. Constraint convention as in
``invdesign.constraints``: an inequality is satisfied when ``g <= tol``, an equality when ``|h| <= tol``.

Standard library only, on plain values, so that readers of run directories (``invdesign.report``) rank
records without importing torch or the optimizers. ``invdesign.optimizers.base.is_better`` applies it to
``Evaluation`` objects, ``invdesign.campaign.records`` to history dicts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

FAILED_KEY = (2, 0.0)


def violation(constraints: Iterable[float], specs: Iterable[tuple[str, float]], failed: bool = False) -> float:
    """Total violation ``sum max(g - tol, 0) + sum max(|h| - tol, 0)`` (>= 0) over ``(kind, tol)`` specs
    (``kind == "eq"`` for equalities); inf when failed or a constraint is NaN, 0 without constraints."""
    if failed:
        return math.inf
    total = 0.0
    for (kind, tol), value in zip(specs, constraints):
        if math.isnan(value):
            return math.inf
        excess = abs(value) if kind == "eq" else value
        total += max(excess - tol, 0.0)
    return total


def is_feasible(failed: bool, feasible: bool, value: float) -> bool:
    """Counts as feasible: not failed, flagged feasible and with a finite value."""
    return bool(feasible) and not failed and math.isfinite(value)


def rank_key(failed: bool, feasible: bool, value: float, constraints: Iterable[float],
             specs: Iterable[tuple[str, float]]) -> tuple[int, float]:
    """Sort key, smaller is better: ``(0, value)`` feasible, ``(1, violation)`` infeasible, ``(2, 0)`` failed.
    The first of equal keys wins wherever a best is chosen."""
    if failed:
        return FAILED_KEY
    if is_feasible(failed, feasible, value):
        return (0, float(value))
    return (1, violation(constraints, specs))
