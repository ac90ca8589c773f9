"""Campaign data out: the evaluation table (physical values by name), CSV / Parquet export, the report's
point column, best designs as JSON that the problem loads back, and as extended XYZ where it has atoms."""

import importlib.util
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from invdesign.campaign import run_campaign
from invdesign.cli import main
from invdesign.constraints import UpperBound
from invdesign.designs import evaluate_design, load_design, space_from_dict, space_to_dict
from invdesign.objectives import Objective
from invdesign.params import Block, BSplineBasis, GaussianBumps, ParameterSpace
from invdesign.problem import Problem
from invdesign.report import ExportError, export_table, load_table, write_report
from invdesign.tb.structure import Structure
from invdesign.testing.toy_problems import ProfileFit

F64 = torch.float64


class Value(Objective):
    name = "value"

    def __call__(self, response, params):
        return response["f"]

    def metrics(self, response, params):
        return {"dose_error": float(abs(torch.log10(params["dose"]) - 0.5))}


class DoseProblem(Problem):
    """``(log10 dose - 0.5)^2 + |shift - 0.3|^2`` with a log10 block (physical value != coordinate), a
    sigmoid block with units, a constraint, and atoms whose positions are the design."""

    name = "dose_problem"
    objective = Value()
    grad_cost_factor = 2.0
    parameter_units = {"dose": "1/cm^2", "shift": "nm"}

    def __init__(self):
        self.space = ParameterSpace([Block("dose", (), lower=1e-2, upper=1e2, transform="log10", init=1.0),
                                     Block("shift", (2,), lower=-1.0, upper=1.0, transform="sigmoid")])
        self.constraints = [UpperBound("r", 0.8, name="shift_norm")]

    def simulate(self, params):
        s = params["shift"]
        return {"f": (torch.log10(params["dose"]) - 0.5) ** 2 + ((s - 0.3) ** 2).sum(), "r": (s**2).sum()}

    def design_structure(self, params):
        s = params["shift"]
        return Structure([[0.0, 0.0, 0.0], [0.2 + float(s[0]), float(s[1]), 0.0]], ("C", "dopant"), [[0.5, 0, 0]])


def make_problem():
    return DoseProblem()


SPEC = {"name": "export", "seeds": [0], "budget": {"max_evals": 12},
        "problems": [{"name": "tests.campaign.test_export:make_problem", "label": "dose"}],
        "optimizers": ["lbfgs", {"name": "random", "settings": {"batch_size": 4}}]}


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    directory = tmp_path_factory.mktemp("export") / "campaign"
    run_campaign(SPEC, directory, progress=False)
    return directory


def history(directory, rid):
    return [json.loads(ln) for ln in (directory / "runs" / rid / "history.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("space", [
    ProfileFit().space,
    ParameterSpace([Block("g", (2, 9), lower=-1, upper=2, transform="sigmoid", basis=GaussianBumps(4, 9, 0.2)),
                    Block("b", (7,), lower=0, upper=1, basis=BSplineBasis(5, 7, 2), frozen=np.array([True, False, False, False, False]))]),
])
def test_space_json_round_trip(space):
    back = space_from_dict(json.loads(json.dumps(space_to_dict(space), allow_nan=False)))
    assert back.names() == space.names()
    z = space.random_points(5, 0)
    assert torch.equal(back.bounds, space.bounds)
    for k, v in space.to_params(z).items():
        assert torch.allclose(back.to_params(z)[k], v, rtol=0, atol=1e-12)


def test_table_holds_every_evaluation_with_physical_values(campaign):
    df = load_table(campaign)
    problem = make_problem()
    for rid in ("dose__lbfgs__s0", "dose__random__s0"):
        recs = history(campaign, rid)
        part = df[df["run"] == rid].reset_index(drop=True)
        assert len(part) == len(recs) > 0
        assert np.allclose(part["cumulative_cost"], np.cumsum([r["cost"] for r in recs]), rtol=0, atol=1e-12)
        for i, rec in enumerate(recs):
            params = problem.to_params(torch.tensor(rec["x"], dtype=F64))
            assert part.loc[i, "dose"] == pytest.approx(float(params["dose"]), abs=1e-12, rel=1e-12)
            assert part.loc[i, "shift[1]"] == pytest.approx(float(params["shift"][1]), abs=1e-12)
            assert part.loc[i, "value"] == pytest.approx(float(rec["value"]), abs=1e-12)
            assert part.loc[i, "constraint:shift_norm"] == pytest.approx(float(rec["constraints"][0]), abs=1e-12)
            assert part.loc[i, "metric:dose_error"] == pytest.approx(float(rec["metrics"]["dose_error"]), abs=1e-12)
    assert set(df["optimizer"]) == {"lbfgs", "random"} and set(df["seed"]) == {0}
    assert df.attrs["units"]["dose"] == "1/cm^2" and df.attrs["units"]["shift[0]"] == "nm"
    for col in ("campaign", "problem", "n", "cost", "wall_time_s", "elapsed_s", "feasible", "failed"):
        assert col in df.columns


def test_cli_export_csv_round_trips_the_table(campaign, capsys):
    assert main(["export", str(campaign)]) == 0
    back = pd.read_csv(campaign / "evaluations.csv")
    df = load_table(campaign)
    assert list(back.columns) == list(df.columns)
    for col in df.columns:
        if df[col].dtype.kind == "f":
            assert np.allclose(back[col], df[col], rtol=1e-12, atol=1e-12, equal_nan=True), col
        elif col != "reason":
            assert list(back[col]) == list(df[col]), col
    assert "design:" in capsys.readouterr().out


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="parquet needs pyarrow")
def test_parquet_round_trips_the_table(campaign, tmp_path):
    path = export_table(campaign, "parquet", tmp_path / "e.parquet")
    back, df = pd.read_parquet(path), load_table(campaign)
    assert list(back.columns) == list(df.columns)
    assert np.allclose(back["dose"], df["dose"], rtol=0, atol=1e-12)


def test_parquet_without_pyarrow_is_a_clear_error(campaign, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    with pytest.raises(ExportError) as err:
        export_table(campaign, "parquet")
    assert str(err.value) == ("parquet export needs pyarrow, which is not installed: pip install 'invdesign[parquet]' "
                              "(or use --format csv)")
    assert main(["export", str(campaign), "--format", "parquet"]) == 2
    assert "parquet export needs pyarrow" in capsys.readouterr().err


def test_best_designs_load_back_and_re_evaluate(campaign):
    main(["export", str(campaign)])
    problem = make_problem()
    for rid in ("dose__lbfgs__s0", "dose__random__s0"):
        path = campaign / "designs" / f"{rid}.json"
        d = json.loads(path.read_text())
        assert d["parameters"]["dose"]["unit"] == "1/cm^2" and d["parameters"]["shift"]["unit"] == "nm"
        done = json.loads((campaign / "runs" / rid / "completed").read_text())
        z = load_design(problem, path)
        assert torch.allclose(z, torch.tensor(done["best_x"], dtype=F64), rtol=0, atol=1e-12)
        assert evaluate_design(problem, path).value == pytest.approx(float(done["best_value"]), abs=1e-12)
        assert d["value"] == pytest.approx(float(done["best_value"]), abs=1e-12)


def test_design_with_wrong_unit_is_refused(campaign, tmp_path):
    main(["export", str(campaign)])
    d = json.loads((campaign / "designs" / "dose__lbfgs__s0.json").read_text())
    d["parameters"]["shift"]["unit"] = "Angstrom"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError) as err:
        load_design(make_problem(), path)
    assert str(err.value) == f"{path}: parameter 'shift' is in 'Angstrom', the problem expects 'nm'"


def test_design_structure_is_ase_readable(campaign):
    ase_io = pytest.importorskip("ase.io")
    from invdesign.tb.ase_io import from_ase

    main(["export", str(campaign), "--structures"])  # atoms come from the problem's own code: opt-in
    problem = make_problem()
    z = load_design(problem, campaign / "designs" / "dose__random__s0.json")
    expected = problem.design_structure(problem.to_params(z))
    got = from_ase(ase_io.read(campaign / "designs" / "dose__random__s0.xyz"))
    assert got.species == expected.species
    assert torch.allclose(got.positions, expected.positions, rtol=0, atol=1e-12)


def test_report_point_column_shows_physical_values_by_name(campaign):
    text = write_report(campaign).read_text()
    section = text.split("## Best designs")[1]
    row = next(ln for ln in section.splitlines() if ln.startswith("| dose |"))
    assert "dose=" in row and "1/cm^2" in row and "shift[0]=" in row and "nm" in row
    best = min((r for rid in ("dose__lbfgs__s0", "dose__random__s0") for r in history(campaign, rid)
                if r["feasible"]), key=lambda r: r["value"])
    dose = float(make_problem().to_params(torch.tensor(best["x"], dtype=F64))["dose"])
    assert f"dose={dose:.4g} 1/cm^2" in row
    assert math.isfinite(dose)
