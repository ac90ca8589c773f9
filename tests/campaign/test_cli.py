"""The ``invdesign`` command (in-process through ``main``) and the progress display."""

import io

import pytest

from invdesign.campaign import run_campaign
from invdesign.cli import _spec_path, main
from tests.campaign.helpers import REPO, comparable_summary, histories, write_toml

SPEC = """
name = "cli"
seeds = [0]
[budget]
max_cost = 20
[[problems]]
name = "toy/failing"
[[optimizers]]
name = "lbfgs"
[[optimizers]]
name = "random"
"""


def test_list(capsys):
    assert main(["list", "--settings"]) == 0
    out = capsys.readouterr().out
    assert "toy/quadratic" in out and "convex, mildly ill-conditioned quadratic" in out
    assert "toy/failing" in out and "simulation fails on part of the box" in out
    assert "lbfgs" in out and "L-BFGS, strong-Wolfe line search" in out
    assert "lr=0.05" in out  # settings with defaults


def test_run_resume_report(tmp_path, capsys):
    spec = write_toml(tmp_path / "cli.toml", SPEC)
    out = tmp_path / "c"
    assert main(["run", str(spec), "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert f"summary: {out / 'summary.csv'}" in text and f"report:  {out / 'report.md'}" in text
    assert (out / "spec.toml").read_text() == SPEC and (out / "campaign.log").exists()
    before = (comparable_summary(out), histories(out))
    assert [row["status"] for row in before[0]] == ["completed", "completed"]
    assert main(["resume", str(out), "--quiet", "--no-report"]) == 0  # nothing left to do
    assert main(["run", str(spec), "--out", str(out), "--quiet", "--no-report"]) == 0  # same spec: continues
    assert (comparable_summary(out), histories(out)) == before
    assert main(["report", str(out)]) == 0
    assert "| toy/failing | lbfgs |" in (out / "report.md").read_text()


def test_errors(tmp_path, capsys):
    assert main(["resume", str(tmp_path)]) == 1
    assert "not a campaign directory" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read the spec file" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--workers must be >= 1"):
        main(["run", str(write_toml(tmp_path / "s.toml", SPEC)), "--workers", "0"])
    with pytest.raises(SystemExit):
        main(["frobnicate"])


def test_spec_names_resolve_to_problems_folder():
    assert _spec_path("default") == REPO / "problems" / "default.toml"
    assert str(_spec_path("some/file.toml")) == "some/file.toml"


def test_progress_lines_and_log(tmp_path):
    stream = io.StringIO()
    run_campaign({"seeds": [0, 1], "budget": {"max_evals": 30}, "problems": ["toy/quadratic"],
                  "optimizers": ["random"]}, tmp_path / "c", progress=stream)
    last = stream.getvalue().strip().splitlines()[-1]
    assert last.startswith("[####################] 2/2 runs | 60 evals | best: toy/quadratic ")
    assert "ETA" in last
    log = (tmp_path / "c" / "campaign.log").read_text()
    assert "run toy-quadratic__random__s1: completed (max_evals)" in log and "finished in" in log
