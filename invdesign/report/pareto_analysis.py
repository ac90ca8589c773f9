"""Pareto analysis of multi-objective campaigns, from the stored histories only.

A problem is multi-objective when its ``settings.json`` lists two or more objectives
(``problem_info["objectives"]``: name, sense, ref); each history record then holds ``objectives``, the
vector in the minimised convention (``invdesign.multiobjective``). Definitions:

- Front of a run: the feasible, non-failed, non-dominated records (``invdesign.pareto``, BoTorch).
- Reference point of a problem: the declared one; else one inferred (nadir + 10 % of the range) from the
  union of every run's front, so that all runs of the problem are measured from the same point.
- Hypervolume trace of a run: the hypervolume of its records so far against cumulative cost and against
  the run's wall time; over seeds, the median and interquartile band (as ``analysis.band``).
- Median attainment surface (two objectives): the boundary of the region attained (weakly dominated) by
  at least ``ceil(R / 2)`` of the ``R`` runs of an optimizer. Exact in 2-D: at every first-objective value
  of any front, the ``ceil(R/2)``-th smallest of the runs' best second objectives. For ``m > 2`` the report
  shows the per-seed fronts on the first two objectives instead (an attainment surface is then too heavy).
- Fixed wall time of a problem: the smallest median run wall time among its optimizers (every optimizer
  had at least that long in half of its runs); hypervolume reached by then.
- Knee of a front: the point nearest the ideal point after scaling each objective to [0, 1] over the
  front; extremes: the best point in each objective.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from invdesign import pareto
from invdesign.report.analysis import quantile, step_values
from invdesign.report.load import CampaignData, RunData


def objective_specs(data: CampaignData, problem: str) -> list[dict[str, Any]]:
    """The problem's objectives as stored (name, sense, ref); empty for old campaigns."""
    return list(data.problem_info(problem).get("objectives") or [])


def is_multi_objective(data: CampaignData, problem: str) -> bool:
    return len(objective_specs(data, problem)) >= 2


def signs(specs: list[dict[str, Any]]) -> np.ndarray:
    """``(m,)``: +1 for "min", -1 for "max" objectives (natural = sign * minimised)."""
    return np.array([-1.0 if s.get("sense") == "max" else 1.0 for s in specs])


def axis_label(spec: dict[str, Any]) -> str:
    return f"{spec['name']} ({'max' if spec.get('sense') == 'max' else 'min'})"


def matrix(run: RunData, m: int) -> np.ndarray:
    """The run's objective vectors ``(n, m)``, minimised convention, NaN rows where not feasible."""
    return pareto.evaluation_matrix(run.records, m)


def front_indices(run: RunData, m: int) -> np.ndarray:
    """Record indices of the run's front."""
    return np.nonzero(pareto.non_dominated(matrix(run, m)))[0]


def reference(data: CampaignData, problem: str) -> tuple[list[float] | None, str]:
    """The problem's reference point (minimised convention) and where it comes from."""
    specs = objective_specs(data, problem)
    if specs and all(s.get("ref") is not None for s in specs):
        return [float(x) for x in signs(specs) * np.array([float(s["ref"]) for s in specs])], "declared"
    m = len(specs)
    fronts = [matrix(r, m)[front_indices(r, m)] for r in data.group(problem) if r.n]
    union = np.vstack(fronts) if fronts else np.zeros((0, m))
    ref = pareto.reference_point(union) if len(union) else None
    return ref, "inferred from the union of all fronts (nadir + 10 % of the range)"


@dataclasses.dataclass
class RunFront:
    run: RunData
    indices: np.ndarray          # record indices of the front
    values: np.ndarray           # (k, m) minimised
    trace: np.ndarray            # (n,) hypervolume after each record

    @property
    def hypervolume(self) -> float:
        return float(self.trace[-1]) if self.trace.size else 0.0

    def hypervolume_within(self, limit: float, axis: str = "cost") -> float:
        x = self.run.cost if axis == "cost" else self.run.elapsed
        k = int(np.searchsorted(x, limit + 1e-9, side="right"))
        return float(self.trace[k - 1]) if k else 0.0


def run_fronts(data: CampaignData, problem: str, ref: list[float]) -> dict[str, list[RunFront]]:
    """Per optimizer, the fronts and hypervolume traces of its started runs."""
    m = len(objective_specs(data, problem))
    out: dict[str, list[RunFront]] = {}
    for optimizer in data.optimizers:
        fronts = []
        for r in data.group(problem, optimizer):
            if not r.n:
                continue
            y = matrix(r, m)
            idx = np.nonzero(pareto.non_dominated(y))[0]
            fronts.append(RunFront(r, idx, y[idx], pareto.hypervolume_trace(y, ref)))
        out[optimizer] = fronts
    return out


@dataclasses.dataclass
class CurveBand:
    grid: np.ndarray
    median: np.ndarray
    q25: np.ndarray
    q75: np.ndarray


def hypervolume_band(fronts: list[RunFront], axis: str = "cost", points: int = 200) -> CurveBand | None:
    """Median and IQR over runs of the hypervolume trace against cost or wall time (held after a run ends)."""
    if not fronts:
        return None
    xs = [f.run.cost if axis == "cost" else f.run.elapsed for f in fronts]
    lo = max(min(float(x[0]) for x in xs), 1e-6)
    hi = max(float(x[-1]) for x in xs)
    grid = np.unique(np.concatenate([np.geomspace(lo, max(hi, lo * (1 + 1e-9)), points), [lo, hi]]))
    curves = np.array([step_values(x, f.trace, grid) for x, f in zip(xs, fronts)])
    curves = np.nan_to_num(curves, nan=0.0)  # before its first record a run has no volume
    return CurveBand(grid, *(np.array([quantile(curves[:, j], q) for j in range(grid.size)])
                             for q in (0.5, 0.25, 0.75)))


def median_attainment(fronts: list[np.ndarray]) -> np.ndarray:
    """The 2-D median attainment surface of ``R`` fronts (each ``(k, 2)``, minimised): its corner points
    ``(x, y)``, x ascending, y = the ``ceil(R/2)``-th smallest best second objective at first-objective
    values up to x. Empty when fewer than half the runs have a front."""
    need = math.ceil(len(fronts) / 2)  # runs without a front attain nothing
    if not fronts or sum(1 for f in fronts if len(f)) < need:
        return np.zeros((0, 2))
    fronts = [f if len(f) else np.full((1, 2), np.inf) for f in fronts]
    xs = np.unique(np.concatenate([f[np.isfinite(f[:, 0]), 0] for f in fronts]))
    best = np.full((len(fronts), xs.size), np.inf)
    for i, f in enumerate(fronts):
        order = np.argsort(f[:, 0])
        f1, f2 = f[order, 0], np.minimum.accumulate(f[order, 1])
        k = np.searchsorted(f1, xs, side="right")
        best[i, k > 0] = f2[k[k > 0] - 1]
    y = np.sort(best, axis=0)[need - 1]
    ok = np.isfinite(y)
    return np.column_stack([xs[ok], y[ok]])


@dataclasses.dataclass
class HypervolumeRow:
    optimizer: str
    runs: int
    median: float
    q25: float
    q75: float
    at_wall_time: float
    median_front_size: float
    median_evaluations: float
    median_wall_time_s: float


def hypervolume_table(fronts: dict[str, list[RunFront]], budget: float) -> tuple[list[HypervolumeRow], float]:
    """Per optimizer: hypervolume within the cost budget (median, IQR over seeds), the median at the fixed
    wall time (module docstring), front size, evaluations and wall time; and that wall time."""
    walls = [float(np.median([f.run.elapsed[-1] for f in fs])) for fs in fronts.values() if fs]
    fixed_time = min(walls) if walls else math.nan
    rows = []
    for optimizer, fs in fronts.items():
        if not fs:
            continue
        hv = [f.hypervolume_within(budget) for f in fs]
        rows.append(HypervolumeRow(
            optimizer, len(fs), quantile(hv, 0.5), quantile(hv, 0.25), quantile(hv, 0.75),
            float(np.median([f.hypervolume_within(fixed_time, "time") for f in fs])),
            float(np.median([len(f.indices) for f in fs])), float(np.median([f.run.n for f in fs])),
            float(np.median([f.run.elapsed[-1] for f in fs]))))
    return rows, fixed_time


@dataclasses.dataclass
class FrontPoint:
    run: RunData
    index: int                  # record index in the run
    values: np.ndarray          # (m,) minimised
    role: str                   # "knee", "best <name>", or ""

    @property
    def record(self) -> dict[str, Any]:
        return self.run.records[self.index]


def union_front(fronts: dict[str, list[RunFront]], specs: list[dict[str, Any]]) -> list[FrontPoint]:
    """The non-dominated designs over every run of the problem, sorted by the first objective, with the
    knee and the extremes marked."""
    points = [FrontPoint(f.run, int(i), v, "") for fs in fronts.values() for f in fs
              for i, v in zip(f.indices, f.values)]
    if not points:
        return []
    mask = pareto.non_dominated(np.array([p.values for p in points]))
    points = sorted((p for p, keep in zip(points, mask) if keep), key=lambda p: tuple(p.values))
    values = np.array([p.values for p in points])
    for j, i in enumerate(pareto.extreme_indices(values)):
        points[i].role = ", ".join(filter(None, [points[i].role, f"best {specs[j]['name']}"]))
    knee = pareto.knee_index(values)
    points[knee].role = ", ".join(filter(None, [points[knee].role, "knee"]))
    return points
