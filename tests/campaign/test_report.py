"""The report of a finished campaign: files written, and its numbers equal a hand computation from the
histories (read here with json and numpy only)."""

import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest

from invdesign.cli import main
from invdesign.report import fixed_budget_table, load, target_for, win_rates, write_report
from invdesign.report import analysis
from tests.campaign.helpers import REPO

BUDGET = 40.0  # max_cost of REFERENCE_SPEC
OPTIMA = {"quad": 0.0, "disk": -math.sqrt(2.0)}
TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def finished(reference, tmp_path_factory):
    directory = tmp_path_factory.mktemp("report") / "campaign"
    shutil.copytree(reference[1], directory)
    return directory


def hand_values(directory, problem, optimizer):
    """Best feasible value within the budget of each seed's run, from the raw history lines."""
    out = []
    for seed in (0, 1):
        lines = (directory / "runs" / f"{problem}__{optimizer}__s{seed}" / "history.jsonl").read_text().splitlines()
        cost, best = 0.0, math.inf
        for line in lines:
            rec = json.loads(line)
            cost += float(rec["cost"])
            if cost <= BUDGET and rec["feasible"] and not rec["failed"]:
                best = min(best, float(rec["value"]))
        out.append(best)
    return out


def test_files_and_fixed_budget_table(finished):
    path = write_report(finished)
    text = path.read_text()
    for name in ("convergence_quad.png", "convergence_disk.png", "ecdf.png", "winrate.png"):
        assert (finished / "figures" / name).stat().st_size > 1000
        assert f"figures/{name}" in text
    data = load(finished)
    rows = {(r.problem, r.optimizer): r for r in fixed_budget_table(data)}
    assert len(rows) == 6
    for (problem, optimizer), row in rows.items():
        values = hand_values(finished, problem, optimizer)
        assert row.budget == BUDGET and row.runs == 2 and row.finished == 2
        assert row.median == pytest.approx(np.median(values), rel=1e-15, abs=1e-300)
        assert row.q25 == pytest.approx(np.percentile(values, 25), rel=1e-15, abs=1e-300)
        assert row.q75 == pytest.approx(np.percentile(values, 75), rel=1e-15, abs=1e-300)
        target = OPTIMA[problem] + TOLERANCE
        assert row.target == target and target_for(data, problem)[1] == "known optimum + tolerance"
        assert row.success_rate == np.mean([v <= target for v in values])
        cells = f"| {problem} | {optimizer} | 40 | {row.median:.6g} | {row.q25:.6g} | {row.q75:.6g} | " \
                f"{row.success_rate:.3g} | 2 (2) |"
        assert cells in text
    # the data profile at an unlimited cost is the success rate over all runs of the optimizer
    for optimizer in ("lbfgs", "cma", "random"):
        solved = analysis.ecdf(analysis.hitting_costs(data, optimizer, multi_target=False), np.array([1e9]))[0]
        assert solved == np.mean([rows[(p, optimizer)].success_rate for p in ("quad", "disk")])


def test_win_rates_by_hand(finished):
    data = load(finished)
    matrix = win_rates(data)
    optimizers = data.optimizers
    for a, oa in enumerate(optimizers):
        for b, ob in enumerate(optimizers):
            if a == b:
                assert math.isnan(matrix[a, b])
                continue
            per_problem = []
            for problem in ("quad", "disk"):
                target = OPTIMA[problem] + TOLERANCE
                score = 0.0
                for va in hand_values(finished, problem, oa):
                    for vb in hand_values(finished, problem, ob):
                        score += 0.5 if (va == vb or (va <= target and vb <= target)) else float(va < vb)
                per_problem.append(score / 4)
            assert matrix[a, b] == pytest.approx(np.mean(per_problem), abs=1e-15)
            assert matrix[a, b] + matrix[b, a] == pytest.approx(1.0)


def test_design_plot_hook_via_the_cli(tmp_path):
    from invdesign.campaign import run_campaign

    spec = {"seeds": [0], "budget": {"max_cost": 20},
            "problems": [{"name": "tests.campaign.helpers:with_design_plot", "label": "designed"}],
            "optimizers": ["lbfgs"]}
    run_campaign(spec, tmp_path / "c", progress=False)
    assert main(["report", str(tmp_path / "c"), "--design-figures"]) == 0
    image = tmp_path / "c" / "figures" / "design_designed" / "design.png"
    assert image.exists()
    assert "figures/design_designed/design.png" in (tmp_path / "c" / "report.md").read_text()


def test_report_reads_storage_only():
    code = ("import sys, invdesign.report; bad = [m for m in sys.modules if m.startswith(('invdesign.optimizers', "
            "'invdesign.negf', 'invdesign.campaign.runner', 'torch', 'problems'))]; print(bad); assert not bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_report_of_an_unfinished_campaign(tmp_path):
    """Pending and failed runs do not break the report; they are listed."""
    from invdesign.campaign import CampaignSpec, prepare_directory
    from invdesign.campaign.runner import run_unit

    spec = CampaignSpec.from_dict({"seeds": [0, 1], "budget": {"max_evals": 40},
                                   "problems": ["toy/failing", {"name": "toy/quadratic", "settings": {"dim": 0}}],
                                   "optimizers": ["random"]})
    directory = prepare_directory(spec, tmp_path / "c")
    for unit in spec.units()[1:]:
        run_unit(directory, unit)
    text = write_report(directory).read_text()
    assert "toy-failing__random__s0`: pending" in text
    assert "toy-quadratic__random__s0`: error" in text
    assert "## Failed evaluations" in text and "RuntimeError: toy solver did not converge" in text
    assert "| toy/failing | random | 40 | " in text and "| 1 (1) | 40 |" in text  # the pending run is left out


def hand_time_values(directory, problem, optimizer, seconds):
    """Best feasible value among the evaluations finished within ``seconds`` of each seed's run."""
    out = []
    for seed in (0, 1):
        lines = (directory / "runs" / f"{problem}__{optimizer}__s{seed}" / "history.jsonl").read_text().splitlines()
        best = math.inf
        for rec in map(json.loads, lines):
            if float(rec["elapsed_s"]) <= seconds and rec["feasible"] and not rec["failed"]:
                best = min(best, float(rec["value"]))
        out.append(best)
    return out


def test_fixed_wall_time_table_by_hand(finished):
    data = load(finished)
    rows = analysis.fixed_budget_table(data, axis="time")
    assert len(rows) == 6
    for problem in ("quad", "disk"):
        finals = {o: [json.loads((finished / "runs" / f"{problem}__{o}__s{s}" / "history.jsonl")
                                 .read_text().splitlines()[-1])["elapsed_s"] for s in (0, 1)]
                  for o in ("lbfgs", "cma", "random")}
        seconds = min(float(np.median(v)) for v in finals.values())
        assert analysis.time_budget(data, problem) == pytest.approx(seconds, rel=1e-15)
        for row in (r for r in rows if r.problem == problem):
            values = hand_time_values(finished, problem, row.optimizer, seconds)
            assert row.budget == pytest.approx(seconds, rel=1e-15)
            assert row.median == pytest.approx(np.median(values), rel=1e-15, abs=1e-300)
            assert row.success_rate == np.mean([v <= OPTIMA[problem] + TOLERANCE for v in values])
    text = write_report(finished).read_text()
    assert "## Fixed wall time" in text
    assert f"| {rows[0].problem} | {rows[0].optimizer} | {rows[0].budget:.3g} | {rows[0].median:.6g} |" in text


def test_least_violation_so_far_by_hand(finished):
    data = load(finished)
    specs = data.problem_info("disk")["constraints"]
    assert specs  # the disk problem is constrained: its convergence figure has the violation panel
    for run in data.group("disk"):
        least, out = math.inf, []
        for rec in run.records:
            g = [float(v) for v in rec["constraints"]]
            v = 0.0 if (rec["feasible"] and not rec["failed"]) else sum(
                max(x - s["tol"], 0.0) if s["kind"] != "eq" else max(abs(x) - s["tol"], 0.0) for x, s in zip(g, specs))
            least = min(least, v)
            out.append(least)
        np.testing.assert_array_equal(run.least_violation, out)
        assert (np.diff(run.least_violation) <= 0).all()
    b = analysis.band(data.group("disk", "random"), "cost", quantity="violation")
    assert np.nanmax(b.median) >= 0.0 and (np.diff(b.median[np.isfinite(b.median)]) <= 1e-15).all()
