"""Ranking of history records (dicts in the ``Evaluation.to_dict`` format), standard library only.

The same order as ``invdesign.optimizers.base.is_better`` (written again here so that the report can
rank records without importing the optimizers): feasible points (``feasible`` and a finite value) by
value; then infeasible ones by total constraint violation; failed evaluations last. The first of equal
records wins. ``specs`` are the problem's constraint specs as dicts ``{"name", "kind", "tol"}``
(``settings.json["problem_info"]["constraints"]``); ``kind`` is ``"eq"`` for equalities.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any


def num(value: Any) -> float:
    """A float from a record field (JSON numbers, or the strings ``"nan"``, ``"inf"``, ``"-inf"``)."""
    if value is None:
        return math.nan
    return float(value)


def is_feasible(rec: dict[str, Any]) -> bool:
    """Not failed, feasible and with a finite value."""
    return bool(rec.get("feasible")) and not rec.get("failed") and math.isfinite(num(rec.get("value")))


def violation(rec: dict[str, Any], specs: Sequence[dict[str, Any]]) -> float:
    """Total violation ``sum max(g - tol, 0) + sum max(|h| - tol, 0)``; inf for failed records or NaN constraints."""
    if rec.get("failed"):
        return math.inf
    total = 0.0
    for spec, value in zip(specs, rec.get("constraints", [])):
        value = num(value)
        if math.isnan(value):
            return math.inf
        excess = abs(value) if spec.get("kind") == "eq" else value
        total += max(excess - float(spec.get("tol", 0.0)), 0.0)
    return total


def rank_key(rec: dict[str, Any], specs: Sequence[dict[str, Any]]) -> tuple[int, float]:
    """Sort key, smaller is better: ``(0, value)`` feasible, ``(1, violation)`` infeasible, ``(2, 0)`` failed."""
    if rec.get("failed"):
        return (2, 0.0)
    if is_feasible(rec):
        return (0, num(rec["value"]))
    return (1, violation(rec, specs))


def best_index(records: Iterable[dict[str, Any]], specs: Sequence[dict[str, Any]]) -> int | None:
    """Index of the best record (the first among equals); None if there is no non-failed record."""
    best, best_key = None, None
    for i, rec in enumerate(records):
        key = rank_key(rec, specs)
        if key[0] == 2:
            continue
        if best_key is None or key < best_key:
            best, best_key = i, key
    return best


def best_feasible_so_far(records: Iterable[dict[str, Any]]) -> list[float]:
    """After each record, the lowest feasible value seen so far (NaN before the first feasible one)."""
    out, best = [], math.nan
    for rec in records:
        if is_feasible(rec):
            value = num(rec["value"])
            if math.isnan(best) or value < best:
                best = value
        out.append(best)
    return out
