"""Campaign-file faults: a truncated grad_costs/*.json is measured again (was: every later run an error
with exit 0); a read-only campaign directory is a one-line error naming the path (was: a traceback)."""

import json

from invdesign.campaign import resume_campaign, run_campaign
from invdesign.campaign.storage import COMPLETED_FILE
from invdesign.cli import main
from tests.campaign.helpers import small_spec, write_toml


def test_truncated_grad_cost_file_is_measured_again(tmp_path):
    spec = small_spec(problems=[{"name": "tests.campaign.helpers:measured_quadratic", "label": "quad"}],
                      optimizers=["lbfgs"], seeds=[0, 1], budget={"max_evals": 4})  # a problem that measures
    run_campaign(spec, tmp_path / "c", progress=False)
    costs = tmp_path / "c" / "grad_costs" / "quad.json"
    costs.write_text('{"grad_cost_fac')  # truncated
    rdir = tmp_path / "c" / "runs" / "quad__lbfgs__s1"
    (rdir / COMPLETED_FILE).unlink()
    (rdir / "settings.json").unlink()  # a run that had not started yet
    rows = resume_campaign(tmp_path / "c", progress=False).rows
    assert [r["status"] for r in rows] == ["completed", "completed"]
    assert json.loads(costs.read_text())["grad_cost_factor"] >= 1.0  # measured again, replaced atomically


def test_read_only_directory_is_a_clear_error(tmp_path, capsys, monkeypatch):
    import invdesign.campaign as campaign

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "out" / "campaign.json"))

    monkeypatch.setattr(campaign, "run_campaign", read_only)  # root ignores chmod: simulate the OS answer
    spec = write_toml(tmp_path / "s.toml", 'seeds = [0]\n[budget]\nmax_evals = 2\n[[problems]]\n'
                                           'name = "toy/quadratic"\n[[optimizers]]\nname = "random"\n')
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "cannot write" in err and "campaign.json" in err and "permission denied" in err
    assert "Traceback" not in err
