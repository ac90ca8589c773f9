"""``report.md`` with its figures under ``figures/``, in the campaign directory."""

from __future__ import annotations

import collections
import datetime
import json
import math
import os
from pathlib import Path

import numpy as np

from invdesign.campaign.storage import atomic_write_text, sanitize
from invdesign.report import analysis, pareto_report, plots
from invdesign.report.load import CampaignData, load
from invdesign.report.table import best_point_label

REPORT_FILE = "report.md"
FIGURES_DIR = "figures"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg")


def _g(v: float, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.{digits}g}"


def _settings(s: dict) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in s.items()) or "defaults"


def _rel(path: Path, root: Path) -> str:
    try:
        return Path(os.path.relpath(path, root)).as_posix()
    except ValueError:
        return Path(path).as_posix()


def best_runs(data: CampaignData) -> dict[str, object]:
    """The run with the best final value of each problem (None where no run has a feasible point)."""
    out = {}
    for problem in data.problems:
        runs = [r for r in data.group(problem) if r.n and not math.isnan(r.final_best)]
        out[problem] = min(runs, key=lambda r: r.final_best) if runs else None
    return out


def write_report(campaign_dir: str | os.PathLike, design_figures: dict[str, list] | None = None) -> Path:
    """Write ``report.md`` and ``figures/*.png``; ``design_figures`` maps a problem label to image paths
    made by the problem's own ``plot_design`` (the CLI computes them; the report only links them)."""
    data = load(campaign_dir)
    root = data.directory
    figdir = root / FIGURES_DIR
    figdir.mkdir(exist_ok=True)
    lines: list[str] = []
    add = lines.append

    statuses = collections.Counter(r.status for r in data.runs)
    add(f"# Campaign report: {data.name}\n")
    if data.spec.get("description"):
        add(data.spec["description"] + "\n")
    add(f"Generated {datetime.datetime.now().isoformat(timespec='seconds')} from `{root}`. "
        f"{len(data.runs)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) + ".\n")
    add(f"Seeds: {', '.join(map(str, data.seeds))}. Budget per run: "
        f"{_settings(data.spec.get('budget', {}))} (cost in forward-equivalent simulations; a gradient "
        f"evaluation costs the problem's grad_cost_factor: the gradient cost column, with where it came "
        f"from, spec, problem or measured, and the campaign's measurement beside a fixed one).\n")
    add("| problem | registered as | settings | dim | budget | gradient cost | success target |")
    add("|---|---|---|---|---|---|---|")
    for p in data.spec["problems"]:
        target, source = analysis.target_for(data, p["label"])
        info = data.problem_info(p["label"])
        add(f"| {p['label']} | `{p['name']}` | {_settings(p['settings'])} | {info.get('dim', '-')} | "
            f"{_settings(p.get('budget') or {}) if p.get('budget') else 'campaign'} | {_grad_cost(info)} | "
            f"{_g(target, 6)} ({source}) |")
    add("")
    add("| optimizer | registered as | settings |")
    add("|---|---|---|")
    for o in data.spec["optimizers"]:
        add(f"| {o['label']} | `{o['name']}` | {_settings(o['settings'])} |")
    add("")

    add("## Fixed budget\n")
    add("Best feasible value reached within the problem's budget (cost), over seeds: median, interquartile "
        "range, and the fraction of runs at or below the success target. `inf`: no feasible point. Runs: started "
        "(finished); runs not started yet are left out.\n")
    add("| problem | optimizer | budget | median | q25 | q75 | success | runs (finished) | median evals | failed evals |")
    add("|---|---|---|---|---|---|---|---|---|---|")
    for row in analysis.fixed_budget_table(data):
        add(f"| {row.problem} | {row.optimizer} | {_g(row.budget)} | {_g(row.median, 6)} | {_g(row.q25, 6)} | "
            f"{_g(row.q75, 6)} | {_g(row.success_rate, 3)} | {row.runs} ({row.finished}) | "
            f"{_g(row.median_evaluations)} | {row.failed_evaluations} |")
    add("")

    add("## Fixed wall time\n")
    add("The same at a fixed wall time per run: the shortest median run time of any optimizer on the problem, "
        "so every optimizer ran at least that long in the median (a batched call's time is shared by the "
        "points it evaluated, so batching is credited; the machine's load is in these numbers). Evals: the "
        "median number finished by then.\n")
    add("| problem | optimizer | wall time [s] | median | q25 | q75 | success | runs (finished) | median evals |")
    add("|---|---|---|---|---|---|---|---|---|")
    for row in analysis.fixed_budget_table(data, axis="time"):
        add(f"| {row.problem} | {row.optimizer} | {_g(row.budget, 3)} | {_g(row.median, 6)} | {_g(row.q25, 6)} | "
            f"{_g(row.q75, 6)} | {_g(row.success_rate, 3)} | {row.runs} ({row.finished}) | "
            f"{_g(row.median_evaluations)} |")
    add("")

    add("## Convergence\n")
    add("Best feasible value so far against forward-equivalent evaluations (left) and the run's wall time "
        "(middle or right); lines are medians over seeds, bands the interquartile range; the legend counts "
        "runs and the runs that found a feasible point. Problems with constraints add a right panel: the "
        "least total constraint violation so far against cost (runs that never became feasible show there).\n")
    for problem in data.problems:
        if not any(r.n for r in data.group(problem)):
            continue
        path = plots.convergence(data, problem, figdir / f"convergence_{sanitize(problem)}.png")
        add(f"![convergence on {problem}]({_rel(path, root)})\n")

    add("## Fixed-target ECDF and data profile\n")
    add("Left: fraction of (problem, seed, target) triples reached within a cost, targets "
        "`f* + 10^k`, k = 2 .. -8 when the optimum is known, else `f_best + 10^k (f_start - f_best)`, "
        "k = 0 .. -7. Right: fraction of runs reaching the problem's success target (data profile).\n")
    if any(r.n for r in data.runs):
        path = plots.ecdf(data, figdir / "ecdf.png")
        add(f"![ECDF]({_rel(path, root)})\n")

    add("## Win rates\n")
    add("Probability that a run of the row optimizer ends better than a run of the column optimizer on the "
        "same problem (all seed pairs; both at or below the target, or equal, is a tie counted half), "
        "averaged over problems.\n")
    unfinished = analysis.unfinished_runs(data)
    if unfinished:
        add(f"{unfinished} unfinished run(s) (partial or pending) are left out: their values are not final.\n")
    matrix = analysis.win_rates(data)
    add("| | " + " | ".join(data.optimizers) + " | mean |")
    add("|---" * (len(data.optimizers) + 2) + "|")
    for a, name in enumerate(data.optimizers):
        cells = [_g(matrix[a, b], 3) for b in range(len(data.optimizers))]
        with np.errstate(all="ignore"):
            mean = float(np.nanmean(matrix[a])) if np.isfinite(matrix[a]).any() else math.nan
        add(f"| **{name}** | " + " | ".join(cells) + f" | {_g(mean, 3)} |")
    add("")
    if len(data.optimizers) > 1:
        path = plots.win_rate(data, matrix, figdir / "winrate.png")
        add(f"![win rates]({_rel(path, root)})\n")

    lines.extend(pareto_report.pareto_section(data, figdir))  # multi-objective problems only

    add("## Best designs\n")
    add("| problem | best value | run | feasible | point |")
    add("|---|---|---|---|---|")
    for problem, run in best_runs(data).items():
        if run is None:
            add(f"| {problem} | - | - | - | - |")
            continue
        rec = run.best_record
        add(f"| {problem} | {_g(run.final_best, 8)} | `{run.run_id}` | {rec.get('feasible') if rec else '-'} | "
            f"{best_point_label(run, rec)} |")
    add("")
    for problem, paths in (design_figures or {}).items():
        if paths:
            add(f"### {problem}\n")
            for p in map(Path, paths):
                if p.suffix.lower() in IMAGE_SUFFIXES:
                    add(f"![{problem}: {p.stem}]({_rel(p, root)})\n")
                else:
                    add(f"- [{p.name}]({_rel(p, root)})\n")

    failed = [(r.problem, rec.get("reason")) for r in data.runs for rec in r.records if rec.get("failed")]
    if failed:
        add("## Failed evaluations\n")
        add("Failed evaluations are kept in the histories (cost counted); the most frequent reasons:\n")
        add("| problem | count | reason |")
        add("|---|---|---|")
        for (problem, reason), count in collections.Counter(
                (p, (r or "").split(" at ")[0][:120]) for p, r in failed).most_common(10):
            add(f"| {problem} | {count} | {reason} |")
        add("")

    errored = [r for r in data.runs if r.status == "error"]
    incomplete = [r for r in data.runs if r.status in ("partial", "pending")]
    if errored or incomplete:
        add("## Runs that did not complete\n")
        for r in errored:
            last = (r.error or "").strip().splitlines()[-1:] or ["(no traceback)"]
            add(f"- `{r.run_id}`: error, `{last[0][:200]}` (traceback in `runs/{r.run_id}/error.txt`)")
        for r in incomplete:
            add(f"- `{r.run_id}`: {r.status} ({r.n} evaluations so far)")
        add("")

    path = root / REPORT_FILE
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _grad_cost(info: dict) -> str:
    """``2 (spec; measured 1.07)``: the factor a problem's runs were charged, its source, the measurement."""
    factor = info.get("grad_cost_factor")
    if factor is None:
        return "-"
    source, measured = info.get("grad_cost_source"), info.get("grad_cost_measured")
    notes = [source] if source else []
    if measured is not None and source != "measured":
        notes.append(f"measured {_g(measured, 3)}")
    return f"{_g(factor, 4)}" + (f" ({'; '.join(notes)})" if notes else "")
