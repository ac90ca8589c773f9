"""Comparisons of optimizers over seeds and problems, from histories only.

Definitions (all on the *best feasible value so far*, lower is better; a run with no feasible point yet
counts as +inf):

- Convergence curve of a run: best so far against cumulative forward-equivalent cost (or run time), a
  step function held constant after the run ends. Over seeds: median and interquartile band
  (25 and 75 % quantiles, linear interpolation, ``quantile`` below).
- Fixed budget ``B`` of a problem: its ``max_cost`` budget if it has one, else the largest cost any of
  its runs spent. A run's value at ``B``: best feasible value among evaluations with cumulative cost
  <= B. Success: that value <= the problem's target. Runs not started yet are left out; runs that
  started (finished or not) count, +inf while they have no feasible point.
- Fixed wall time ``T`` of a problem (``time_budget``): the shortest, over optimizers, of the median
  wall time of their finished runs, so every optimizer (in the median) ran at least this long. A run's
  value at ``T``: best feasible value among evaluations finished within ``T`` seconds of run time; a run
  that ended earlier keeps its final value. Wall time is each run's own (a batched call's time is shared
  by the points it evaluated), so it credits batching; it also depends on the machine's load.
- Least violation so far: per run, the smallest total constraint violation of any evaluation so far
  (0 once feasible, inf while every evaluation failed); over seeds, median and IQR like the curves.
- Target of a problem (``target_for``): the spec's ``target``; else ``optimum_value + tolerance``
  declared by the problem; else ``f_best + 1e-3 (f_start - f_best)`` (More & Wild), with ``f_best`` the
  best value any run found and ``f_start`` the median over runs of their first feasible value.
- Fixed-target ECDF (COCO style): for each run and each of several targets (``ecdf_targets``),
  the cost at which the target is first reached; the ECDF of an optimizer at cost ``c`` is the
  fraction of (problem, seed, target) triples reached by ``c``. The data profile is the same with the
  single success target per problem: the fraction of (problem, seed) runs solved by ``c``.
- Win rate of A over B: on each problem, every finished run (completed or error) of A against every
  finished run of B by final best value (both at or below the target, or equal: a tie, counted half);
  averaged over problems with both. Unfinished runs (partial, pending) are left out: their value is
  not final (``unfinished_runs`` counts them for the report).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from invdesign.report.load import CampaignData, RunData

MORE_WILD_TAU = 1e-3
FINISHED = ("completed", "error")  # run states whose values are final
ECDF_EXPONENTS_KNOWN = np.arange(2.0, -8.01, -0.5)      # targets f* + 10^k
ECDF_EXPONENTS_RELATIVE = np.arange(0.0, -7.01, -0.5)   # targets f_best + 10^k (f_start - f_best)


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default) where NaN means +inf; inf-safe (no inf * 0)."""
    v = np.sort(np.nan_to_num(np.asarray(values, dtype=float), nan=np.inf))
    if v.size == 0:
        return math.nan
    pos = q * (v.size - 1)
    lo, hi = int(math.floor(pos)), int(math.ceil(pos))
    frac = pos - lo
    if frac == 0.0 or v[lo] == v[hi]:
        return float(v[lo])
    if not math.isfinite(v[hi]):
        return math.inf
    return float(v[lo] + (v[hi] - v[lo]) * frac)


def step_values(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``y`` at the last ``x <= g`` for each grid point ``g`` (NaN before the first point)."""
    k = np.searchsorted(x, grid + 1e-12 * np.maximum(1.0, np.abs(grid)), side="right")
    out = np.full(grid.shape, np.nan)
    ok = k > 0
    out[ok] = y[k[ok] - 1]
    return out


@dataclasses.dataclass
class Band:
    grid: np.ndarray
    median: np.ndarray
    q25: np.ndarray
    q75: np.ndarray
    n_runs: int


def band(runs: list[RunData], axis: str = "cost", grid: np.ndarray | None = None, points: int = 200,
         quantity: str = "best") -> Band:
    """Median and IQR over ``runs`` of a so-far curve, ``quantity`` "best" (feasible value) or
    "violation" (least constraint violation), against ``axis`` ("cost" or "time")."""
    runs = [r for r in runs if r.n]
    xs = [r.cost if axis == "cost" else r.elapsed for r in runs]
    if grid is None:
        lo = min((float(x[0]) for x in xs if x.size), default=1.0)
        hi = max((float(x[-1]) for x in xs if x.size), default=1.0)
        lo = max(lo, 1e-6)
        grid = np.unique(np.concatenate([np.geomspace(lo, max(hi, lo * (1 + 1e-9)), points), [lo, hi]]))
    ys = [r.best if quantity == "best" else r.least_violation for r in runs]
    curves = np.array([step_values(x, y, grid) for x, y in zip(xs, ys)]).reshape(len(runs), grid.size)
    med, q25, q75 = (np.array([quantile(curves[:, j], q) for j in range(grid.size)]) for q in (0.5, 0.25, 0.75))
    return Band(grid, med, q25, q75, len(runs))


def problem_budget(data: CampaignData, problem: str) -> float:
    runs = [r for r in data.group(problem) if r.n]
    budget = (runs[0].unit.get("budget") or {}).get("max_cost") if runs else None
    if budget is None:
        entry = data.problem_entry(problem)
        budget = {**data.spec.get("budget", {}), **entry.get("budget", {})}.get("max_cost")
    if budget is None:
        budget = max((float(r.cost[-1]) for r in runs), default=0.0)
    return float(budget)


def target_for(data: CampaignData, problem: str) -> tuple[float, str]:
    """The success target of ``problem`` and where it comes from (see the module docstring)."""
    entry = data.problem_entry(problem)
    if entry.get("target") is not None:
        return float(entry["target"]), "spec target"
    info = data.problem_info(problem)
    if info.get("optimum_value") is not None and info.get("tolerance") is not None:
        return float(info["optimum_value"]) + float(info["tolerance"]), "known optimum + tolerance"
    f_best, f_start = _reference_values(data, problem)
    if math.isfinite(f_best) and math.isfinite(f_start):
        return f_best + MORE_WILD_TAU * (f_start - f_best), f"More-Wild, tau = {MORE_WILD_TAU:g}"
    return math.nan, "none (no feasible point)"


def _reference_values(data: CampaignData, problem: str) -> tuple[float, float]:
    finals = [r.final_best for r in data.group(problem) if r.n and not math.isnan(r.final_best)]
    starts = []
    for r in data.group(problem):
        first = np.nonzero(r.feasible & np.isfinite(r.value))[0]
        if first.size:
            starts.append(float(r.value[first[0]]))
    return (min(finals) if finals else math.nan), (float(np.median(starts)) if starts else math.nan)


def ecdf_targets(data: CampaignData, problem: str) -> np.ndarray:
    info = data.problem_info(problem)
    if info.get("optimum_value") is not None:
        return float(info["optimum_value"]) + 10.0 ** ECDF_EXPONENTS_KNOWN
    f_best, f_start = _reference_values(data, problem)
    if not (math.isfinite(f_best) and math.isfinite(f_start)):
        return np.zeros(0)
    return f_best + 10.0 ** ECDF_EXPONENTS_RELATIVE * max(f_start - f_best, 0.0)


@dataclasses.dataclass
class BudgetRow:
    problem: str
    optimizer: str
    budget: float
    runs: int
    finished: int
    median: float
    q25: float
    q75: float
    target: float
    success_rate: float
    median_evaluations: float
    failed_evaluations: int


def time_budget(data: CampaignData, problem: str) -> float:
    """Fixed wall time [s] of ``problem`` (module docstring); NaN while no optimizer has a finished run."""
    medians = []
    for optimizer in data.optimizers:
        times = [float(r.elapsed[-1]) for r in data.group(problem, optimizer) if r.n and r.status in FINISHED]
        if times:
            medians.append(float(np.median(times)))
    return min(medians) if medians else math.nan


def fixed_budget_table(data: CampaignData, axis: str = "cost") -> list[BudgetRow]:
    """One row per (problem, optimizer) at the problem's fixed budget: ``axis`` "cost" (``problem_budget``,
    forward-equivalents) or "time" (``time_budget``, seconds; ``median_evaluations`` then counts the
    evaluations finished by then)."""
    rows = []
    for problem in data.problems:
        budget = problem_budget(data, problem) if axis == "cost" else time_budget(data, problem)
        target, _ = target_for(data, problem)
        for optimizer in data.optimizers:
            runs = [r for r in data.group(problem, optimizer) if r.status != "pending"]  # not started: no data
            if axis == "cost":
                values, counts = [r.best_within(budget) for r in runs], [r.n for r in runs]
            else:
                values = [r.best_within_time(budget) for r in runs]
                counts = [int(np.searchsorted(r.elapsed, budget * (1 + 1e-12), side="right")) for r in runs]
            success = [(not math.isnan(v)) and not math.isnan(target) and v <= target for v in values]
            rows.append(BudgetRow(
                problem, optimizer, budget, len(runs),
                sum(1 for r in runs if r.status in ("completed", "error")),
                quantile(values, 0.5), quantile(values, 0.25), quantile(values, 0.75), target,
                (sum(success) / len(runs)) if runs and not math.isnan(target) else math.nan,
                float(np.median(counts)) if runs else math.nan,
                int(sum(int(r.failed.sum()) for r in runs))))
    return rows


def hitting_costs(data: CampaignData, optimizer: str, multi_target: bool, axis: str = "cost") -> list[float]:
    """Cost (or time) at which each (problem, seed[, target]) of ``optimizer`` was reached (inf: never)."""
    out = []
    for problem in data.problems:
        targets = ecdf_targets(data, problem) if multi_target else np.array([target_for(data, problem)[0]])
        targets = targets[np.isfinite(targets)]
        for r in data.group(problem, optimizer):
            reach = r.cost_to_reach if axis == "cost" else r.time_to_reach
            out.extend(reach(float(t)) for t in targets)
    return out


def ecdf(values: Sequence[float], grid: np.ndarray) -> np.ndarray:
    """Fraction of ``values`` <= each grid point."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return np.full(grid.shape, np.nan)
    return np.array([(v <= g).mean() for g in grid])


def _final(r: RunData) -> float:
    return r.final_best if r.n and not math.isnan(r.final_best) else math.inf



def unfinished_runs(data: CampaignData) -> int:
    """Runs left out of the win rates: started but not finished, or not started."""
    return sum(1 for r in data.runs if r.status not in FINISHED)


def win_rates(data: CampaignData) -> np.ndarray:
    """``W[a, b]``: probability that optimizer ``a``'s finished run beats ``b``'s (ties half), averaged over
    problems (NaN where a pair has no finished runs on any problem)."""
    k = len(data.optimizers)
    total = np.zeros((k, k))
    count = np.zeros((k, k))
    for problem in data.problems:
        target, _ = target_for(data, problem)
        finals = [[_final(r) for r in data.group(problem, o) if r.status in FINISHED] for o in data.optimizers]
        for a in range(k):
            for b in range(k):
                if a == b or not finals[a] or not finals[b]:
                    continue
                score = 0.0
                for va in finals[a]:
                    for vb in finals[b]:
                        if va == vb or (not math.isnan(target) and va <= target and vb <= target):
                            score += 0.5
                        elif va < vb:
                            score += 1.0
                total[a, b] += score / (len(finals[a]) * len(finals[b]))
                count[a, b] += 1
    with np.errstate(invalid="ignore"):
        out = total / count
    np.fill_diagonal(out, np.nan)
    return out
