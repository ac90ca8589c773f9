"""Runs that fail on every evaluation stop after the first few (an error with its reason), and
``invdesign run`` exits non-zero with a summary of what went wrong when any run ended in error."""

import pytest

from invdesign.campaign import CampaignSpec, SpecError, run_campaign
from invdesign.campaign.storage import HISTORY_FILE, read_history
from invdesign.cli import main
from tests.campaign.helpers import small_spec, write_toml

SPEC = """
name = "failing"
seeds = [0, 1]
[budget]
max_evals = 60
[[problems]]
name = "tests.campaign.failing_helpers:vector_objective"
label = "vec"
[[problems]]
name = "toy/quadratic"
label = "ok"
[[optimizers]]
name = "random"
settings = { batch_size = 2 }
"""


def test_all_failing_runs_stop_early_as_errors(tmp_path):
    result = run_campaign(CampaignSpec.from_dict(small_spec(
        problems=[{"name": "tests.campaign.failing_helpers:nan_constraint", "label": "nan"}],
        optimizers=["random", "lbfgs"], seeds=[0], budget={"max_cost": 100})), tmp_path / "c", progress=False)
    assert [r["status"] for r in result.rows] == ["error", "error"]
    for rid in ("nan__random__s0", "nan__lbfgs__s0"):
        rdir = tmp_path / "c" / "runs" / rid
        assert len(read_history(rdir / HISTORY_FILE)[0]) <= 6  # was: the whole budget (100 evaluations)
        assert "constraint 'always_nan' is nan" in (rdir / "error.txt").read_text()


def test_fail_fast_is_a_budget_setting():
    spec = CampaignSpec.from_dict(small_spec(budget={"max_evals": 10, "fail_fast": 0}))
    assert spec.units()[0].budget["fail_fast"] == 0
    assert "fail_fast" not in CampaignSpec.from_dict(small_spec()).units()[0].budget  # stored units unchanged
    with pytest.raises(SpecError, match="non-negative integer"):
        CampaignSpec.from_dict(small_spec(budget={"max_evals": 10, "fail_fast": -1}))
    with pytest.raises(SpecError, match="has no budget"):
        CampaignSpec.from_dict(small_spec(budget={"fail_fast": 3}))


def test_cli_exits_non_zero_with_a_summary_when_runs_errored(tmp_path, capsys):
    spec = write_toml(tmp_path / "failing.toml", SPEC)
    code = main(["run", str(spec), "--out", str(tmp_path / "out"), "--quiet", "--no-report"])
    err = capsys.readouterr().err
    assert code == 1  # was: 0 although half the runs errored
    assert "2 of 4 runs ended in error" in err
    assert "2 x stopped early: the first 5 evaluations all failed with the same reason: ValueError" in err
    assert "invdesign resume --retry-errors" in err
