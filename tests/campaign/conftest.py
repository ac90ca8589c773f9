"""A small finished campaign, run once per session in this process, that several tests compare against."""

import pytest

from invdesign.campaign import run_campaign
from tests.campaign.helpers import REFERENCE_SPEC, write_toml


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """(spec path, campaign directory) of REFERENCE_SPEC run uninterrupted, in-process."""
    root = tmp_path_factory.mktemp("reference")
    spec = write_toml(root / "small.toml", REFERENCE_SPEC)
    run_campaign(spec, root / "campaign", progress=False)
    return spec, root / "campaign"
