"""The cost of a value + gradient, made reproducible: a spec's ``budget.grad_cost`` fixes it for every run of
a problem, ``minimize(..., grad_cost=...)`` does the same in a Python session, so both spend a budget
identically; the measured factor (load dependent: 1.000 in a session vs 1.074 in a campaign, same problem)
is still recorded beside it, and settings.json / summary.csv / report.md say which one was used."""

from __future__ import annotations

import json

import pytest

from invdesign.campaign import CampaignSpec, run_campaign
from invdesign.campaign.registry import make_problem
from invdesign.campaign.spec import SpecError
from invdesign.campaign.storage import HISTORY_FILE, read_history
from invdesign.campaign.summary import read_summary
from invdesign.optimizers import make_optimizer
from invdesign.optimizers.driver import minimize

MEASURING = "tests.campaign.helpers:measured_quadratic"  # a problem that measures its factor


def _spec(**budget) -> CampaignSpec:
    return CampaignSpec.from_dict({"name": "g", "seeds": [0], "budget": {"max_cost": 31, **budget},
                                   "problems": [{"name": MEASURING, "label": "mq"}], "optimizers": ["lbfgs"]})


def test_session_and_campaign_spend_the_same_budget_identically(tmp_path):
    spec = _spec(grad_cost=2.5)
    run_campaign(spec, tmp_path / "c", progress=False)
    unit = spec.units()[0]
    records, _ = read_history(tmp_path / "c" / "runs" / unit.run_id / HISTORY_FILE)

    problem = make_problem(unit.problem_name, dict(unit.problem_settings))
    result = minimize(problem, make_optimizer(unit.optimizer_name, problem, unit.seed, **unit.optimizer_settings),
                      **unit.budget)
    assert [e.cost for e in result.history] == [r["cost"] for r in records] == [2.5] * 12  # 12 x 2.5 <= 31
    assert [e.x for e in result.history] == [r["x"] for r in records]
    assert result.total_cost == 30.0

    info = json.loads((tmp_path / "c" / "runs" / unit.run_id / "settings.json").read_text())["problem_info"]
    assert info["grad_cost_factor"] == 2.5 and info["grad_cost_source"] == "spec"
    assert info["grad_cost_measured"] >= 1.0  # measured anyway, recorded beside the value used
    row = read_summary(tmp_path / "c" / "summary.csv")[0]
    assert (row["grad_cost_factor"], row["grad_cost_source"]) == ("2.5", "spec")
    assert float(row["grad_cost_measured"]) == info["grad_cost_measured"]
    from invdesign.report import write_report

    assert f"| 2.5 (spec; measured {info['grad_cost_measured']:.3g}) |" in write_report(tmp_path / "c").read_text()


def test_sources_problem_and_measured_are_stated(tmp_path):
    declared = CampaignSpec.from_dict({"seeds": [0], "budget": {"max_evals": 4}, "problems": ["toy/quadratic"],
                                       "optimizers": ["lbfgs"]})
    run_campaign(declared, tmp_path / "d", progress=False)
    row = read_summary(tmp_path / "d" / "summary.csv")[0]
    assert (row["grad_cost_factor"], row["grad_cost_source"], row["grad_cost_measured"]) == ("2.0", "problem", "")
    assert not (tmp_path / "d" / "grad_costs").exists()  # a declared factor needs no measurement

    run_campaign(_spec(), tmp_path / "m", progress=False)
    row = read_summary(tmp_path / "m" / "summary.csv")[0]
    assert row["grad_cost_source"] == "measured" and row["grad_cost_factor"] == row["grad_cost_measured"]
    on_file = json.loads((tmp_path / "m" / "grad_costs" / "mq.json").read_text())
    assert float(row["grad_cost_factor"]) == on_file["grad_cost_factor"]


@pytest.mark.parametrize("bad", [0.5, "2", float("nan")])
def test_grad_cost_is_validated(bad):
    with pytest.raises(SpecError, match=r"budget.grad_cost: must be a number >= 1"):
        _spec(grad_cost=bad)
    with pytest.raises(SpecError, match="budget: is empty"):
        CampaignSpec.from_dict({"seeds": [0], "budget": {"grad_cost": 2.0}, "problems": ["toy/quadratic"],
                                "optimizers": ["lbfgs"]})


def test_minimize_refuses_a_grad_cost_below_one():
    problem = make_problem("toy/quadratic", {})
    with pytest.raises(ValueError, match="grad_cost must be >= 1"):
        minimize(problem, make_optimizer("lbfgs", problem, 0), max_cost=10, grad_cost=0.5)
