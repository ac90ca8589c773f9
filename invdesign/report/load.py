"""Read a campaign directory into arrays (through the storage format only: no optimizer, no physics)."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from invdesign.campaign.records import best_feasible_so_far, best_index, is_feasible, num, violation
from invdesign.campaign.storage import (
    ERROR_FILE,
    HISTORY_FILE,
    SETTINGS_FILE,
    load_campaign,
    read_completed,
    read_history,
    read_json,
    run_dir,
    run_id,
    run_state,
)


@dataclasses.dataclass
class RunData:
    """One run's history as arrays. ``best[i]``: best feasible value after evaluation ``i`` (NaN before
    the first feasible one); ``least_violation[i]``: least total constraint violation so far (0 once a
    feasible point was found, inf while every evaluation failed); ``cost[i]``: cumulative
    forward-equivalent cost; ``elapsed[i]``: run time [s]."""

    problem: str
    optimizer: str
    seed: int
    unit: dict[str, Any]
    problem_info: dict[str, Any]
    status: str
    records: list[dict[str, Any]]
    cost: np.ndarray
    elapsed: np.ndarray
    value: np.ndarray
    feasible: np.ndarray
    failed: np.ndarray
    best: np.ndarray
    least_violation: np.ndarray
    completed: dict[str, Any] | None
    error: str | None

    @property
    def run_id(self) -> str:
        return run_id(self.problem, self.optimizer, self.seed)

    @property
    def n(self) -> int:
        return len(self.records)

    @property
    def final_best(self) -> float:
        """Best feasible value of the whole run (NaN if none)."""
        return float(self.best[-1]) if self.n else math.nan

    @property
    def best_record(self) -> dict[str, Any] | None:
        """The best record (feasible first, as in the summary)."""
        i = best_index(self.records, self.problem_info.get("constraints", []))
        return None if i is None else self.records[i]

    def best_within(self, budget: float) -> float:
        """Lowest feasible value among evaluations whose cumulative cost is <= ``budget`` (NaN if none)."""
        k = int(np.searchsorted(self.cost, budget + 1e-9, side="right"))
        return float(self.best[k - 1]) if k else math.nan

    def best_within_time(self, seconds: float) -> float:
        """Lowest feasible value among evaluations finished within ``seconds`` of run time (NaN if none)."""
        k = int(np.searchsorted(self.elapsed, seconds * (1 + 1e-12), side="right"))
        return float(self.best[k - 1]) if k else math.nan

    def cost_to_reach(self, target: float) -> float:
        """Cumulative cost at the first evaluation whose best-so-far is <= ``target`` (inf if never)."""
        hit = np.nonzero(np.nan_to_num(self.best, nan=np.inf) <= target)[0]
        return float(self.cost[hit[0]]) if hit.size else math.inf

    def time_to_reach(self, target: float) -> float:
        hit = np.nonzero(np.nan_to_num(self.best, nan=np.inf) <= target)[0]
        return float(self.elapsed[hit[0]]) if hit.size else math.inf


@dataclasses.dataclass
class CampaignData:
    directory: Path
    spec: dict[str, Any]
    runs: list[RunData]

    @property
    def name(self) -> str:
        return str(self.spec.get("name", self.directory.name))

    @property
    def problems(self) -> list[str]:
        return [p["label"] for p in self.spec["problems"]]

    @property
    def optimizers(self) -> list[str]:
        return [o["label"] for o in self.spec["optimizers"]]

    @property
    def seeds(self) -> list[int]:
        return list(self.spec["seeds"])

    def group(self, problem: str, optimizer: str | None = None) -> list[RunData]:
        return [r for r in self.runs if r.problem == problem and (optimizer is None or r.optimizer == optimizer)]

    def problem_entry(self, problem: str) -> dict[str, Any]:
        return next(p for p in self.spec["problems"] if p["label"] == problem)

    def problem_info(self, problem: str) -> dict[str, Any]:
        for r in self.group(problem):
            if r.problem_info:
                return r.problem_info
        return {}


def _arrays(records: list[dict[str, Any]], specs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    violations = [0.0 if is_feasible(r) else violation(r, specs) for r in records]
    return {
        "least_violation": np.minimum.accumulate(np.array(violations, dtype=float)) if records else np.zeros(0),
        "cost": np.cumsum([num(r.get("cost", 1.0)) for r in records]) if records else np.zeros(0),
        "elapsed": np.array([num(r.get("elapsed_s", 0.0)) for r in records], dtype=float),
        "value": np.array([num(r.get("value")) for r in records], dtype=float),
        "feasible": np.array([bool(r.get("feasible")) and not r.get("failed") for r in records], dtype=bool),
        "failed": np.array([bool(r.get("failed")) for r in records], dtype=bool),
        "best": np.array(best_feasible_so_far(records), dtype=float),
    }


def load_run(campaign_dir: str | os.PathLike, unit: dict[str, Any]) -> RunData:
    rdir = run_dir(campaign_dir, run_id(unit["problem"], unit["optimizer"], unit["seed"]))
    records, _ = read_history(rdir / HISTORY_FILE)
    settings = read_json(rdir / SETTINGS_FILE, {}) or {}
    info = settings.get("problem_info") or {}
    error = (rdir / ERROR_FILE).read_text(encoding="utf-8") if (rdir / ERROR_FILE).exists() else None
    return RunData(problem=unit["problem"], optimizer=unit["optimizer"], seed=int(unit["seed"]), unit=unit,
                   problem_info=info, status=run_state(rdir), records=records, completed=read_completed(rdir),
                   error=error, **_arrays(records, info.get("constraints", [])))


def load(campaign_dir: str | os.PathLike) -> CampaignData:
    """Every run of the campaign in ``campaign_dir`` (pending runs included, with empty histories)."""
    campaign_dir = Path(campaign_dir)
    stored = load_campaign(campaign_dir)
    runs = [load_run(campaign_dir, u) for u in stored["units"]]
    return CampaignData(campaign_dir, stored["spec"], runs)
