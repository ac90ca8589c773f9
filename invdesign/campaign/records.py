"""Ranking of history records (dicts in the ``Evaluation.to_dict`` format), standard library only.

The order is ``invdesign.ranking``'s (the one the optimizers' ``best`` follows too): feasible points by
value, then infeasible ones by total constraint violation, failed evaluations last; the first of equal
records wins. This module reads it off the record dicts. ``specs`` are the problem's constraint specs
as dicts ``{"name", "kind", "tol"}`` (``settings.json["problem_info"]["constraints"]``); ``kind`` is
``"eq"`` for equalities.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from invdesign import ranking
from invdesign.jsonfloat import decode_float


def num(value: Any) -> float:
    """A float from a record field (JSON numbers, or the strings ``"nan"``, ``"inf"``, ``"-inf"``)."""
    return math.nan if value is None else decode_float(value)


def is_feasible(rec: dict[str, Any]) -> bool:
    """Not failed, feasible and with a finite value."""
    return ranking.is_feasible(bool(rec.get("failed")), bool(rec.get("feasible")), num(rec.get("value")))


def _specs(specs: Sequence[dict[str, Any]]) -> list[tuple[str, float]]:
    return [(str(s.get("kind")), float(s.get("tol", 0.0))) for s in specs]


def violation(rec: dict[str, Any], specs: Sequence[dict[str, Any]]) -> float:
    """Total violation ``sum max(g - tol, 0) + sum max(|h| - tol, 0)``; inf for failed records or NaN constraints."""
    return ranking.violation([num(v) for v in rec.get("constraints", [])], _specs(specs), bool(rec.get("failed")))


def rank_key(rec: dict[str, Any], specs: Sequence[dict[str, Any]]) -> tuple[int, float]:
    """Sort key, smaller is better: ``(0, value)`` feasible, ``(1, violation)`` infeasible, ``(2, 0)`` failed."""
    return ranking.rank_key(bool(rec.get("failed")), bool(rec.get("feasible")), num(rec.get("value")),
                            [num(v) for v in rec.get("constraints", [])], _specs(specs))


def best_index(records: Iterable[dict[str, Any]], specs: Sequence[dict[str, Any]]) -> int | None:
    """Index of the best record (the first among equals); None if there is no non-failed record."""
    best, best_key = None, None
    for i, rec in enumerate(records):
        key = rank_key(rec, specs)
        if key == ranking.FAILED_KEY:
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
