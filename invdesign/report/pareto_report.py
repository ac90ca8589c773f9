"""The multi-objective part of ``report.md``: hypervolume tables, Pareto-front and hypervolume figures, the
non-dominated designs with their physical parameters (also written in full to ``pareto_<problem>.csv``),
and, where the caller can build the problems, design figures of the knee and the extremes.

``pareto_section`` reads stored data only (histories and ``settings.json``); ``pareto_design_figures``
needs a ``build_problem`` callable (the CLI passes the registry's) and runs the problem's own
``plot_design`` on the knee and extreme designs. Definitions: ``pareto_analysis``.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invdesign.campaign.records import num
from invdesign.campaign.storage import sanitize
from invdesign.report import pareto_analysis as pa
from invdesign.report import pareto_plots
from invdesign.report.analysis import problem_budget
from invdesign.report.load import CampaignData, load
from invdesign.report.table import best_point_label, physical_columns, run_space

MAX_TABLE_ROWS = 30


def _g(v: float, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}g}"


def _rel(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def _shown(points: list[pa.FrontPoint]) -> list[pa.FrontPoint]:
    """At most ``MAX_TABLE_ROWS`` points: the marked ones and an even spread of the others."""
    if len(points) <= MAX_TABLE_ROWS:
        return points
    step = len(points) / (MAX_TABLE_ROWS - 3)
    keep = {int(i * step) for i in range(MAX_TABLE_ROWS - 3)} | {i for i, p in enumerate(points) if p.role}
    return [p for i, p in enumerate(points) if i in keep]


def write_front_csv(points: list[pa.FrontPoint], specs: list[dict], path: Path) -> Path:
    """Every non-dominated design: run, evaluation, objectives (natural units), role, physical values."""
    sign = pa.signs(specs)
    rows = []
    for p in points:
        row: dict[str, Any] = {"optimizer": p.run.optimizer, "seed": p.run.seed, "n": p.index, "role": p.role,
                               "cumulative_cost": float(p.run.cost[p.index])}
        row.update({s["name"]: float(v) for s, v in zip(specs, sign * p.values)})
        space = run_space(p.run)
        if space is not None:
            row.update(physical_columns(space, p.record.get("x")))
        rows.append(row)
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: repr(v) if isinstance(v, float) else v for k, v in row.items()} for row in rows)
    return path


def pareto_section(data: CampaignData, figdir: Path) -> list[str]:
    """Markdown lines of the multi-objective section (empty when no problem has several objectives)."""
    problems = [p for p in data.problems if pa.is_multi_objective(data, p) and any(r.n for r in data.group(p))]
    if not problems:
        return []
    root = data.directory
    lines = ["## Pareto fronts (multi-objective problems)\n",
             "Fronts, hypervolumes and the designs on the front, from the stored objective vectors (feasible "
             "evaluations only; definitions in `invdesign/report/pareto_analysis.py`). Hypervolume within the "
             "cost budget over seeds (median, IQR); at a fixed wall time: the smallest median run time of any "
             "optimizer on the problem, so every optimizer had at least that long in half of its runs. The sections "
             "above rank runs of these problems by their primary objective alone (the first: the problem's scalar "
             "value); this section compares whole fronts.\n"]
    add = lines.append
    for problem in problems:
        specs = pa.objective_specs(data, problem)
        ref, source = pa.reference(data, problem)
        add(f"### {problem}\n")
        names = ", ".join(pa.axis_label(s) for s in specs)
        if ref is None:
            add(f"Objectives: {names}. No feasible point yet: no front.\n")
            continue
        natural_ref = [float(v) for v in pa.signs(specs) * ref]
        add(f"Objectives: {names}. Reference point ({source}): "
            + ", ".join(f"{s['name']} = {_g(v, 6)}" for s, v in zip(specs, natural_ref)) + ".\n")
        fronts = pa.run_fronts(data, problem, ref)
        budget = problem_budget(data, problem)
        rows, fixed_time = pa.hypervolume_table(fronts, budget)
        add(f"| optimizer | runs | hypervolume (budget {_g(budget)}) | q25 | q75 | at {_g(fixed_time, 3)} s | "
            "front size | evaluations | wall time [s] |")
        add("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            add(f"| {r.optimizer} | {r.runs} | {_g(r.median, 5)} | {_g(r.q25, 5)} | {_g(r.q75, 5)} | "
                f"{_g(r.at_wall_time, 5)} | {_g(r.median_front_size, 3)} | {_g(r.median_evaluations, 4)} | "
                f"{_g(r.median_wall_time_s, 3)} |")
        add("")
        tag = sanitize(problem)
        path = pareto_plots.fronts(problem, fronts, specs, figdir / f"pareto_front_{tag}.png")
        add(f"![Pareto fronts on {problem}]({_rel(path, root)})\n")
        path = pareto_plots.hypervolume(problem, fronts, figdir / f"hypervolume_{tag}.png")
        add(f"![hypervolume on {problem}]({_rel(path, root)})\n")
        points = pa.union_front(fronts, specs)
        csv_path = write_front_csv(points, specs, root / f"pareto_{tag}.csv")
        shown = _shown(points)
        add(f"Non-dominated designs over all runs: {len(points)} ({len(shown)} shown; all in "
            f"[`{csv_path.name}`]({_rel(csv_path, root)})), sorted by {specs[0]['name']}.\n")
        add("| " + " | ".join(s["name"] for s in specs) + " | role | run | evaluation | point |")
        add("|" + "---|" * (len(specs) + 4))
        sign = pa.signs(specs)
        for p in shown:
            values = " | ".join(_g(float(v), 6) for v in sign * p.values)
            add(f"| {values} | {p.role or ''} | `{p.run.run_id}` | {p.index} | "
                f"{best_point_label(p.run, p.record, shown=6)} |")
        add("")
    return lines


def pareto_design_figures(directory: str | os.PathLike, build_problem: Callable[[str, dict], Any]) -> dict[str, list]:
    """The problem's own ``plot_design`` on the knee and the extremes of each multi-objective problem's union
    front: ``{"<problem>: <role>": [paths]}`` (figures under ``figures/pareto_<problem>_<role>/``)."""
    import torch

    data = load(directory)
    out: dict[str, list] = {}
    for problem in data.problems:
        if not pa.is_multi_objective(data, problem):
            continue
        ref, _ = pa.reference(data, problem)
        if ref is None:
            continue
        points = [p for p in pa.union_front(pa.run_fronts(data, problem, ref), pa.objective_specs(data, problem))
                  if p.role and p.record.get("x") is not None]
        if not points:
            continue
        unit = points[0].run.unit
        built = build_problem(unit["problem_name"], dict(unit.get("problem_settings") or {}))
        plot = getattr(built, "plot_design", None)
        if plot is None:
            continue
        for p in points:
            target = data.directory / "figures" / f"pareto_{sanitize(problem)}_{sanitize(p.role)}"
            target.mkdir(parents=True, exist_ok=True)
            z = torch.tensor([num(v) for v in p.record["x"]], dtype=torch.float64)
            params = {k: v.detach() for k, v in built.to_params(z).items()}
            out[f"{problem}: {p.role} (`{p.run.run_id}`, evaluation {p.index})"] = \
                [Path(q) for q in (plot(params, target) or [])]
    return out
