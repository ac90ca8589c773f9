"""Opening someone else's campaign directory runs none of its code: ``invdesign report`` and ``export`` read
the stored files only (was: both built every problem through its factory, and ``report`` called its
``plot_design``), and ``resume`` never unpickles a checkpoint (was: the nevergrad state was a base64 pickle,
so a crafted ``checkpoint.json`` ran arbitrary code); an old pickled state is replayed from the history."""

from __future__ import annotations

import base64
import json
import os
import pickle
from pathlib import Path

from invdesign.campaign import resume_campaign, run_campaign
from invdesign.campaign.storage import CHECKPOINT_FILE, COMPLETED_FILE, HISTORY_FILE
from invdesign.testing.toy_problems import Quadratic
from tests.campaign.helpers import REPO, cli, comparable_summary, histories

MARKER_ENV = "INVDESIGN_TEST_MARKER"


def marking_problem() -> Quadratic:
    """A quadratic whose factory leaves a file behind: proof that someone built it."""
    Path(os.environ[MARKER_ENV]).write_text("the factory ran\n")
    return Quadratic(dim=3)


def test_report_and_export_build_no_problem(tmp_path, monkeypatch):
    marker = tmp_path / "factory-ran"
    monkeypatch.setenv(MARKER_ENV, str(marker))
    spec = {"name": "t", "seeds": [0], "budget": {"max_evals": 6}, "optimizers": ["random"],
            "problems": [{"name": "tests.campaign.test_trust:marking_problem", "label": "marked"}]}
    run_campaign(spec, tmp_path / "c", progress=False)
    marker.unlink()  # running the campaign built it, as it must
    report = cli("report", tmp_path / "c", env_extra={MARKER_ENV: str(marker)})
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "c" / "report.md").exists() and "--design-figures" in report.stdout
    export = cli("export", tmp_path / "c", env_extra={MARKER_ENV: str(marker)})
    assert export.returncode == 0, export.stderr
    assert (tmp_path / "c" / "designs" / "marked__random__s0.json").exists()
    assert not marker.exists()
    opted_in = cli("report", tmp_path / "c", "--design-figures", env_extra={MARKER_ENV: str(marker)})
    assert opted_in.returncode == 0 and marker.exists()  # asked for: the problem is built


class _Payload:
    """Unpickling this creates a file: what a crafted checkpoint could do instead."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_a_crafted_pickled_checkpoint_is_not_unpickled_and_the_run_replays(tmp_path):
    spec = {"name": "t", "seeds": [0], "budget": {"max_evals": 12}, "problems": [{"name": "toy/quadratic",
            "label": "quad"}], "optimizers": [{"name": "nevergrad", "label": "cma", "settings": {"optimizer": "CMA"}}]}
    run_campaign(spec, tmp_path / "ref", progress=False)
    run_campaign(spec, tmp_path / "c", progress=False)
    rdir = tmp_path / "c" / "runs" / "quad__cma__s0"
    (rdir / COMPLETED_FILE).unlink()
    lines = (rdir / HISTORY_FILE).read_bytes().splitlines(keepends=True)
    (rdir / HISTORY_FILE).write_bytes(b"".join(lines[:7]))  # killed after 7 evaluations ...
    checkpoint = json.loads((rdir / CHECKPOINT_FILE).read_text())
    marker = tmp_path / "unpickled"
    blob = base64.b64encode(pickle.dumps(_Payload(str(marker)))).decode("ascii")
    checkpoint["optimizer"]["state"] = {"pickle": blob, "worst": 0.0}  # ... with a state in the old format
    checkpoint.update(step=7, n_evals=7, cost=7.0)
    checkpoint["optimizer"].update(n_told=7, pending=None)
    (rdir / CHECKPOINT_FILE).write_text(json.dumps(checkpoint))
    result = resume_campaign(tmp_path / "c", progress=False)
    assert not marker.exists()
    assert result.complete and not result.errors
    assert comparable_summary(tmp_path / "c") == comparable_summary(tmp_path / "ref")
    assert histories(tmp_path / "c") == histories(tmp_path / "ref")
    assert "pickle" not in (rdir / CHECKPOINT_FILE).read_text()


def test_readme_says_what_is_trusted():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## What is trusted", 1)[1].split("\n## ", 1)[0]
    for needle in ("invdesign report", "--design-figures", "resume", "pickle", "module:factory"):
        assert needle in section, needle
