"""The same campaign on a Dask LocalCluster and on the local process pool: identical summaries and histories;
and on a real cluster (a scheduler and two workers as separate processes on 127.0.0.1), one worker SIGKILLed
midway, the physics campaign still ends with the uninterrupted summary."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from invdesign.campaign import run_campaign
from tests.campaign.helpers import REPO, assert_same_campaign, comparable_summary, histories, history_bytes

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


def _dask(*args: str, log: Path) -> subprocess.Popen:
    """``dask ARGS`` as a process of its own (its own session: a kill takes nothing else), one torch thread."""
    exe = shutil.which("dask", path=str(Path(sys.executable).parent)) or shutil.which("dask")
    if exe is None:
        pytest.skip("the dask command is not installed")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen([exe, *args], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "wb"),
                            start_new_session=True)


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.mark.slow
def test_real_cluster_with_a_worker_killed_midway(agnr_reference, tmp_path):
    spec, expected = agnr_reference
    info = tmp_path / "scheduler.json"
    procs = [_dask("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file",
                   str(info), log=tmp_path / "scheduler.log")]
    try:
        deadline = time.monotonic() + 120
        while not info.exists() and time.monotonic() < deadline:
            assert procs[0].poll() is None, (tmp_path / "scheduler.log").read_text()
            time.sleep(0.1)
        # no nanny: the worker is the process itself, so SIGKILL takes it down for good (a nanny would restart it)
        procs += [_dask("worker", "--scheduler-file", str(info), "--host", "127.0.0.1", "--nthreads", "1",
                        "--no-nanny", "--no-dashboard", "--name", f"w{i}", log=tmp_path / f"worker{i}.log")
                  for i in range(2)]
        address = json.loads(info.read_text())["address"]
        out, killed = tmp_path / "dask", []

        def kill_one_worker_midway() -> None:
            deadline = time.monotonic() + 300
            while history_bytes(out) < 4000 and time.monotonic() < deadline:  # a few evaluations in
                time.sleep(0.02)
            os.kill(procs[1].pid, signal.SIGKILL)
            killed.append(time.monotonic())

        with distributed.Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
            killer = threading.Thread(target=kill_one_worker_midway, daemon=True)
            killer.start()
            result = run_campaign(spec, out, scheduler=client, progress=False)
            killer.join(timeout=1)
        assert killed, "the campaign finished before a worker could be killed"
        log = (out / "campaign.log").read_text()
        # the killed worker is a zombie until reaped below: its lease must not pass for a live holder's
        # (was: its unit waited out the whole 60 s lease TTL)
        assert "leased by a live process" not in log and "leased by another live worker" not in log, log
        assert procs[1].wait(timeout=30) == -signal.SIGKILL
        assert result.complete and not result.errors
        assert_same_campaign(out, expected)
    finally:
        _stop(procs)
