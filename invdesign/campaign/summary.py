"""``summary.csv``: one row per run, in the spec's order (problem, then optimizer, then seed).

Columns: problem, optimizer, seed, best_value, best_feasible, evaluations, wall_time_s, status, then
cost (forward-equivalent simulations), failed_evaluations, stop_reason, and the cost of a value +
gradient the run was charged: grad_cost_factor, grad_cost_source ("spec": the spec's budget.grad_cost,
"problem": declared by the problem, "measured"; empty for runs not started or stored before sources
were recorded) and grad_cost_measured (the campaign's measurement, where one was made). Numbers are written with
``repr`` (exact); a run without any usable evaluation has best_value ``nan``. status is "completed",
"error", "partial" (started, not finished) or "pending". Everything is computed from the run
directories (the best from the history, ranked as in ``records.py``), never from an optimizer.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from invdesign.campaign.records import best_index, num
from invdesign.campaign.spec import Unit
from invdesign.campaign.storage import (
    CHECKPOINT_FILE,
    HISTORY_FILE,
    SETTINGS_FILE,
    SUMMARY_FILE,
    StorageError,
    atomic_write_text,
    read_completed,
    read_history,
    read_json,
    run_dir,
    run_state,
)

COLUMNS = ("problem", "optimizer", "seed", "best_value", "best_feasible", "evaluations", "wall_time_s", "status",
           "cost", "failed_evaluations", "stop_reason", "grad_cost_factor", "grad_cost_source", "grad_cost_measured")
COMPARED = tuple(c for c in COLUMNS if c not in ("wall_time_s", "grad_cost_measured"))  # what is reproducible


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def summarize_run(campaign_dir: str | os.PathLike, unit: Unit) -> dict[str, Any]:
    rdir = run_dir(campaign_dir, unit.run_id)
    row: dict[str, Any] = {"problem": unit.problem, "optimizer": unit.optimizer, "seed": unit.seed}
    status = run_state(rdir)
    done = read_completed(rdir)
    try:
        info = (read_json(rdir / SETTINGS_FILE, {}) or {}).get("problem_info") or {}
    except StorageError:
        info = {}
    row.update({k: info.get(k) for k in ("grad_cost_factor", "grad_cost_source", "grad_cost_measured")})
    if done is not None:
        row.update({k: done.get(k) for k in ("best_value", "best_feasible", "evaluations", "cost",
                                             "failed_evaluations", "stop_reason")})
        row["best_value"] = num(row["best_value"])
        row["wall_time_s"] = round(float(done.get("wall_time_s") or 0.0), 3)
    elif status == "partial":
        try:
            records = read_history(rdir / HISTORY_FILE)[0]
        except StorageError:
            records = []
        specs = info.get("constraints", [])
        i = best_index(records, specs)
        best = records[i] if i is not None else None
        checkpoint = read_json(rdir / CHECKPOINT_FILE, {}) or {}
        row.update({
            "best_value": num(best["value"]) if best else float("nan"),
            "best_feasible": bool(best and best.get("feasible") and not best.get("failed")),
            "evaluations": len(records), "cost": sum(num(r.get("cost", 1.0)) for r in records),
            "failed_evaluations": sum(1 for r in records if r.get("failed")), "stop_reason": None,
            "wall_time_s": round(max([float(checkpoint.get("elapsed_s", 0.0))]
                                     + [num(r.get("elapsed_s", 0.0)) for r in records[-1:]]), 3),
        })
    row["status"] = status
    return {c: row.get(c) for c in COLUMNS}


def summary_rows(campaign_dir: str | os.PathLike, units: list[Unit]) -> list[dict[str, Any]]:
    return [summarize_run(campaign_dir, u) for u in units]


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _fmt(row.get(c)) for c in COLUMNS})
    return buf.getvalue()


def write_summary(campaign_dir: str | os.PathLike, units: list[Unit]) -> list[dict[str, Any]]:
    rows = summary_rows(campaign_dir, units)
    atomic_write_text(Path(campaign_dir) / SUMMARY_FILE, to_csv(rows))
    return rows


def read_summary(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a ``summary.csv`` as strings (for comparisons and scripts)."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
