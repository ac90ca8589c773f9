"""Campaign specs: every error reported at once, with its key path and reason, before anything runs."""

import pytest

from invdesign.campaign import CampaignSpec, SpecError, load_spec, run_campaign, stored_spec
from invdesign.campaign.spec import check_setting_type
from tests.campaign.helpers import cli, small_spec, write_toml

GOOD = """
name = "tiny"
seeds = [0, 1]
[budget]
max_cost = 30
[[problems]]
name = "toy/quadratic"
settings = { dim = 3 }
[[problems]]
name = "toy/rosenbrock2"
label = "rb"
budget = { max_evals = 10 }
target = 1e-4
[[optimizers]]
name = "nevergrad"
label = "cma"
settings = { optimizer = "CMA" }
[[optimizers]]
name = "random"
"""


def errors_of(data) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        CampaignSpec.from_dict(data)
    return dict(info.value.errors)


def test_good_toml(tmp_path):
    spec = load_spec(write_toml(tmp_path / "tiny.toml", GOOD))
    units = spec.units()
    assert len(units) == 2 * 2 * 2
    assert [u.run_id for u in units[:3]] == ["toy-quadratic__cma__s0", "toy-quadratic__cma__s1",
                                             "toy-quadratic__random__s0"]
    rb = [u for u in units if u.problem == "rb"][0]
    assert rb.budget == {"max_cost": 30, "max_evals": 10, "max_time_s": None}
    assert rb.target == 1e-4 and rb.problem_name == "toy/rosenbrock2"
    assert units[0].optimizer_settings == {"optimizer": "CMA"} and units[0].problem_settings == {"dim": 3}
    # the normalised dict round-trips
    assert CampaignSpec.from_dict(spec.to_dict()) == spec


def test_default_spec_is_valid():
    from tests.campaign.helpers import REPO

    spec = load_spec(REPO / "problems" / "default.toml")
    assert spec.name == "default" and len(spec.units()) >= 2


def test_all_errors_reported_together_with_key_paths():
    errors = errors_of({
        "seeds": [0, "one", 2.5, -1, 0],
        "budget": {"max_cost": "lots", "max_evalz": 3},
        "problems": [{"name": "toy/quadratc"}, {"name": "toy/quadratic", "settings": {"dimm": 3, "dim": "3"}},
                     {"label": "nameless"}],
        "optimizers": [{"name": "adamm"}, {"name": "adam", "settings": {"lr": "fast", "lrr": 1}},
                       {"name": "random", "label": "rnd", "colour": "red"}],
        "extra": 1,
    })
    assert "must be a non-negative integer; got string 'one'" in errors["seeds[1]"]
    assert "got float 2.5" in errors["seeds[2]"] and "seeds[3]" in errors
    assert "duplicate seeds [0]" in errors["seeds"]
    assert "positive number" in errors["budget.max_cost"]
    assert "unknown budget key" in errors["budget.max_evalz"]
    assert "unknown problem 'toy/quadratc'" in errors["problems[0].name"]
    assert "toy/quadratic" in errors["problems[0].name"]  # the valid names are listed
    assert "has no setting 'dimm'" in errors["problems[1].settings.dimm"]
    assert "dim=5" in errors["problems[1].settings.dimm"]  # valid settings with defaults listed
    assert "must be an integer" in errors["problems[1].settings.dim"]
    assert errors["problems[2].name"] == "missing"
    assert "unknown optimizer 'adamm'" in errors["optimizers[0].name"] and "lbfgs" in errors["optimizers[0].name"]
    assert "must be a number" in errors["optimizers[1].settings.lr"]
    assert "no setting 'lrr'" in errors["optimizers[1].settings.lrr"] and "steps=" in errors["optimizers[1].settings.lrr"]
    assert "unknown key" in errors["optimizers[2].colour"]
    assert "unknown key" in errors["extra"]


def test_missing_pieces():
    errors = errors_of({"problems": ["toy/quadratic"], "optimizers": ["random"]})
    assert "missing" in errors["seeds"]
    assert "no budget" in errors["budget"]
    errors = errors_of({"seeds": [1], "budget": {}, "problems": [], "optimizers": "random"})
    assert "is empty" in errors["budget"]
    assert "non-empty array" in errors["problems"] and "non-empty array" in errors["optimizers"]
    # a per-problem budget is enough
    spec = CampaignSpec.from_dict({"seeds": [1], "problems": [{"name": "toy/quadratic", "budget": {"max_evals": 5}}],
                                   "optimizers": ["random"]})
    assert spec.units()[0].budget["max_evals"] == 5


def test_duplicate_labels_and_colliding_run_names():
    errors = errors_of(small_spec(optimizers=["random", {"name": "random", "settings": {"batch_size": 2}}]))
    assert "already used by optimizers[0]" in errors["optimizers[1].label"]
    with pytest.raises(SpecError, match="same run directory name"):
        CampaignSpec.from_dict(small_spec(optimizers=[{"name": "random", "label": "a/b"},
                                                      {"name": "random", "label": "a b"}]))


def test_setting_types():
    assert check_setting_type(3, 1.0) is None and check_setting_type(True, 1.0) is not None
    assert check_setting_type(3, 1) is None and check_setting_type(3.0, 1) is not None
    assert check_setting_type("CMA", "NGOpt") is None and check_setting_type(None, None) is None
    assert check_setting_type([{"optimizer": "sobol"}], ({"optimizer": "x"},)) is None


def test_module_factory_names():
    spec = CampaignSpec.from_dict(small_spec(problems=[{"name": "tests.campaign.helpers:exploding",
                                                        "settings": {"explode_at": 3}}]))
    assert spec.units()[0].problem == "tests.campaign.helpers:exploding"
    errors = errors_of(small_spec(problems=["no_such_module_xyz:f"]))
    assert "cannot import" in errors["problems[0].name"]


def test_toml_syntax_error(tmp_path):
    path = write_toml(tmp_path / "bad.toml", "seeds = [0, 1\n[budget]\n")
    with pytest.raises(SpecError, match="TOML syntax error") as info:
        load_spec(path)
    assert str(path) in str(info.value)


def test_cli_reports_errors_before_running(tmp_path):
    spec = write_toml(tmp_path / "bad.toml", GOOD.replace('name = "random"', 'name = "randon"')
                      .replace("seeds = [0, 1]", 'seeds = [0, "x"]'))
    out = tmp_path / "out"
    proc = cli("run", spec, "--out", out)
    assert proc.returncode == 2
    assert "optimizers[1].name: unknown optimizer 'randon'" in proc.stderr
    assert "seeds[1]: must be a non-negative integer" in proc.stderr
    assert not out.exists()  # nothing ran, nothing was created


def test_existing_directory_with_another_spec(tmp_path):
    out = tmp_path / "c"
    run_campaign(small_spec(problems=["toy/quadratic"], optimizers=["lbfgs"], seeds=[0]), out, progress=False)
    with pytest.raises(SpecError, match="drops run toy-quadratic__lbfgs__s0"):
        run_campaign(small_spec(problems=["toy/quadratic"], optimizers=["lbfgs"], seeds=[1]), out, progress=False)
    with pytest.raises(SpecError, match=r"changes run toy-quadratic__lbfgs__s0 \(budget\)"):
        run_campaign(small_spec(problems=["toy/quadratic"], optimizers=["lbfgs"], seeds=[0],
                                budget={"max_cost": 41}), out, progress=False)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file").write_text("x")
    with pytest.raises(SpecError, match="not a campaign directory"):
        run_campaign(small_spec(), tmp_path / "junk", progress=False)


def test_a_campaign_is_extended_by_a_spec_that_only_adds_runs(tmp_path):
    """More seeds and another optimizer: the finished run is reused as it is, only the new ones run."""
    out = tmp_path / "c"
    run_campaign(small_spec(problems=["toy/quadratic"], optimizers=["lbfgs"], seeds=[0]), out, progress=False)
    first = (out / "runs" / "toy-quadratic__lbfgs__s0" / "history.jsonl").read_bytes()
    bigger = small_spec(problems=["toy/quadratic"], optimizers=["lbfgs", "random"], seeds=[0, 1])
    marker = (out / "runs" / "toy-quadratic__lbfgs__s0" / "completed").stat().st_mtime_ns
    result = run_campaign(bigger, out, progress=False)
    assert result.complete and len(result.rows) == 4
    assert sorted(p.name for p in (out / "runs").iterdir()) == [
        "toy-quadratic__lbfgs__s0", "toy-quadratic__lbfgs__s1", "toy-quadratic__random__s0", "toy-quadratic__random__s1"]
    assert (out / "runs" / "toy-quadratic__lbfgs__s0" / "completed").stat().st_mtime_ns == marker  # not rerun
    assert (out / "runs" / "toy-quadratic__lbfgs__s0" / "history.jsonl").read_bytes() == first
    assert stored_spec(out).to_dict() == CampaignSpec.from_dict(bigger).to_dict()
