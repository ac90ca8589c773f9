"""The same campaign on a Dask LocalCluster and on the local process pool: identical summaries and histories."""

import pytest

from invdesign.campaign import run_campaign
from tests.campaign.helpers import comparable_summary, histories

distributed = pytest.importorskip("distributed")


def test_dask_local_cluster_and_local_pool_agree(reference, tmp_path):
    spec_path, expected_dir = reference
    # one in-process worker thread: tasks run in this process (no worker start-up); nevergrad swaps
    # numpy's global RNG state, so units must not share a process concurrently (see executors.py)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            dask_result = run_campaign(spec_path, tmp_path / "dask", scheduler=client, progress=False)
    assert dask_result.complete and not dask_result.errors
    pool_result = run_campaign(spec_path, tmp_path / "pool", workers=2, progress=False)
    assert pool_result.complete

    assert comparable_summary(tmp_path / "dask") == comparable_summary(tmp_path / "pool")
    assert comparable_summary(tmp_path / "dask") == comparable_summary(expected_dir)
    assert histories(tmp_path / "dask") == histories(tmp_path / "pool") == histories(expected_dir)
    log = (tmp_path / "dask" / "campaign.log").read_text()
    assert "Dask cluster at" in log and "local process pool (2 workers" in (tmp_path / "pool" / "campaign.log").read_text()


def test_dask_scheduler_address(tmp_path):
    """``--scheduler tcp://...``: the executor connects by address."""
    from invdesign.campaign.spec import CampaignSpec

    spec = CampaignSpec.from_dict({"seeds": [0], "budget": {"max_cost": 20}, "problems": ["toy/quadratic"],
                                   "optimizers": ["lbfgs", "random"]})
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                                  scheduler_port=0) as cluster:
        result = run_campaign(spec, tmp_path / "c", scheduler=cluster.scheduler_address, progress=False)
    assert [r["status"] for r in result.rows] == ["completed", "completed"]
