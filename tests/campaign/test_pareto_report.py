"""The multi-objective part of the report: stored objective vectors, hypervolume tables equal to a hand
computation from the raw history lines, median attainment, the front table and CSV, resume after a crash
at every write for the multi-objective optimizers, and the knee/extreme design figures."""

import csv
import json
import math

import numpy as np
import pytest

from invdesign import pareto
from invdesign.campaign import run_campaign
from invdesign.report import load, write_report
from invdesign.report import pareto_analysis as pa
from invdesign.report.pareto_report import pareto_design_figures
from tests.campaign.test_runner import crash_everywhere_and_resume, unit_of

TOY = "invdesign.testing.toy_multiobjective:two_quadratics_constrained"
SPEC = {
    "name": "mo_small", "seeds": [0, 1], "budget": {"max_cost": 40},
    "problems": [{"name": TOY, "label": "quads"}],
    "optimizers": [{"name": "scalarization_sweep", "label": "sweep", "settings": {"n_weights": 4, "steps": 5}},
                   {"name": "nevergrad_mo", "settings": {"batch_size": 4}}, "random"],
}


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pareto") / "campaign"
    run_campaign(SPEC, out=directory)
    write_report(directory)
    return directory


def test_histories_store_objective_vectors_and_specs(campaign):
    settings = json.loads((campaign / "runs" / "quads__sweep__s0" / "settings.json").read_text())
    assert settings["problem_info"]["objectives"] == [{"name": "f1", "sense": "min", "ref": 1.5},
                                                     {"name": "f2", "sense": "min", "ref": 1.5}]
    for line in (campaign / "runs" / "quads__sweep__s0" / "history.jsonl").read_text().splitlines():
        rec = json.loads(line)
        assert len(rec["objectives"]) == 2 and len(rec["objective_grads"]) == 2


def test_hypervolume_table_equals_hand_computation(campaign):
    data = load(campaign)
    ref, source = pa.reference(data, "quads")
    assert ref == [1.5, 1.5] and source == "declared"
    rows, _ = pa.hypervolume_table(pa.run_fronts(data, "quads", ref), 40.0)
    for row in rows:
        hand = []
        for seed in (0, 1):
            lines = (campaign / "runs" / f"quads__{row.optimizer}__s{seed}" / "history.jsonl").read_text().splitlines()
            cost, ys = 0.0, []
            for rec in map(json.loads, lines):
                cost += float(rec["cost"])
                if cost <= 40 and rec["feasible"] and not rec["failed"]:
                    ys.append(rec["objectives"])
            hand.append(pareto.hypervolume(np.array(ys).reshape(-1, 2), ref))
        assert row.median == pytest.approx(float(np.median(hand)), rel=1e-12)
    report = (campaign / "report.md").read_text()
    assert "## Pareto fronts" in report and "median attainment" not in report.split("## Pareto")[0]
    assert (campaign / "figures" / "pareto_front_quads.png").exists()
    assert (campaign / "figures" / "hypervolume_quads.png").exists()


def test_front_csv_is_the_union_front_with_physical_values(campaign):
    rows = list(csv.DictReader(open(campaign / "pareto_quads.csv")))
    y = np.array([[float(r["f1"]), float(r["f2"])] for r in rows])
    assert pareto.non_dominated(y).all() and {"x[0]", "x[1]", "x[2]", "role"} <= set(rows[0])
    roles = [r["role"] for r in rows if r["role"]]
    assert any("knee" in r for r in roles) and any("best f1" in r for r in roles)
    assert all(float(r["x[0]"]) <= 0.25 + 1e-12 for r in rows)  # feasible only: x0 <= 0.25


def test_median_attainment_is_exact_in_two_dimensions():
    a, b, c = np.array([[0, 3], [1, 1], [3, 0]]), np.array([[0.5, 2], [2, 0.5]]), np.array([[1, 4]])
    assert pa.median_attainment([a, b, c]).tolist() == [[0.5, 3], [1, 2], [2, 1], [3, 0.5]]
    assert pa.median_attainment([a, np.zeros((0, 2)), np.zeros((0, 2))]).shape == (0, 2)


@pytest.mark.parametrize("optimizer, settings, budget", [
    ("scalarization_sweep", {"n_weights": 3, "steps": 3}, {"max_cost": 100}),
    ("nevergrad_mo", {"batch_size": 2}, {"max_evals": 6}),
], ids=["sweep", "nevergrad_mo"])
def test_crash_at_every_write_resumes_exactly(tmp_path, monkeypatch, optimizer, settings, budget):
    records, done = crash_everywhere_and_resume(tmp_path, monkeypatch, unit_of(TOY, optimizer, settings, budget))
    assert done["status"] == "completed" and all(len(r["objectives"]) == 2 for r in records)


@pytest.mark.slow
def test_botorch_mo_resumes_exactly_after_a_crash(tmp_path, monkeypatch):
    records, done = crash_everywhere_and_resume(
        tmp_path, monkeypatch, unit_of(TOY, "botorch_mo", {"n_init": 2, "num_restarts": 1, "raw_samples": 16,
                                                           "mc_samples": 16, "acqf_maxiter": 10}, {"max_evals": 3}))
    assert done["status"] == "completed" and len(records) == 3


def test_knee_and_extreme_designs_are_plotted_by_the_problem(tmp_path):
    spec = {"name": "ribbon_tiny", "seeds": [0], "budget": {"max_cost": 24},
            "problems": [{"name": "ribbon/filter_pareto", "label": "ribbon"}],
            "optimizers": [{"name": "scalarization_sweep", "settings": {"n_weights": 4, "steps": 4, "lr": 0.1}}]}
    run_campaign(spec, out=tmp_path / "c")
    from invdesign.campaign import registry

    figures = pareto_design_figures(tmp_path / "c", registry.make_problem)
    assert any("knee" in key for key in figures) and any("best mean_T_pass" in key for key in figures)
    for paths in figures.values():
        assert all(p.exists() for p in paths)
    report = write_report(tmp_path / "c", figures).read_text()
    assert "knee" in report and math.isfinite(float(report.count("filter.png")))
