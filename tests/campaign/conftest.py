"""Finished campaigns, run once per session, that several tests compare against: a small toy one (in this
process) and a reduced physics one (``AGNR_SPEC``, through the command line in one process, as a user runs it)."""

import pytest

from invdesign.campaign import run_campaign
from tests.campaign.helpers import AGNR_SPEC, REFERENCE_SPEC, cli, write_toml


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """(spec path, campaign directory) of REFERENCE_SPEC run uninterrupted, in-process."""
    root = tmp_path_factory.mktemp("reference")
    spec = write_toml(root / "small.toml", REFERENCE_SPEC)
    run_campaign(spec, root / "campaign", progress=False)
    return spec, root / "campaign"


@pytest.fixture(scope="session")
def agnr_reference(tmp_path_factory):
    """(spec path, campaign directory) of AGNR_SPEC run uninterrupted by ``invdesign run --workers 1``."""
    root = tmp_path_factory.mktemp("agnr_reference")
    spec = write_toml(root / "agnr.toml", AGNR_SPEC)
    done = cli("run", spec, "--out", root / "campaign", "--quiet", "--no-report", timeout=600)
    assert done.returncode == 0, done.stderr
    return spec, root / "campaign"
