"""SIGKILL a running campaign (process pool and all) at random moments, resume, and get exactly the
uninterrupted campaign: same summary (wall times aside), same histories, nothing lost or duplicated."""

import os
import random
import signal
import time

from invdesign.campaign import run_campaign
from tests.campaign.helpers import (REFERENCE_SPEC, RENDEZVOUS_ENV, assert_same_campaign, comparable_summary,
                                   histories, history_bytes, kill_at_random_moments, start_cli, write_toml)

WORKERS = [2, 1, 2]  # one kill per entry: the pool (campaign process and workers together), or in-process


def test_sigkill_at_random_moments_then_resume(reference, tmp_path):
    spec_path, expected_dir = reference
    out = tmp_path / "killed"
    command = kill_at_random_moments(["run", spec_path, "--out", out], out, random.Random(20240611), WORKERS,
                                     max_new_lines=5)
    final = start_cli([*command, "--quiet", "--no-report"])
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err.decode()
    assert_same_campaign(out, expected_dir)


def test_two_campaign_processes_on_one_directory(tmp_path):
    """Two campaign processes on the same directory (as on two machines sharing a filesystem) split the
    units between them through the leases: each unit runs once, both run some, and the result is the
    uninterrupted one. The quadratic's first evaluation in each process waits for the other process to
    evaluate too (``helpers.rendezvous_quadratic``), so neither can run every unit before the other starts."""
    spec_path = write_toml(tmp_path / "small.toml", REFERENCE_SPEC.replace(
        'name = "toy/quadratic"', 'name = "tests.campaign.helpers:rendezvous_quadratic"'))
    expected_dir = tmp_path / "reference"
    run_campaign(spec_path, expected_dir, progress=False)  # in-process, no rendezvous: the uninterrupted result
    out, meeting = tmp_path / "shared", tmp_path / "meeting"
    meeting.mkdir()
    procs = [start_cli(["run", spec_path, "--out", out, "--quiet", "--no-report"], {RENDEZVOUS_ENV: str(meeting)})
             for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err.decode()
    assert len(list(meeting.glob("evaluating.*"))) == 2  # both processes evaluated
    assert comparable_summary(out) == comparable_summary(expected_dir)
    assert histories(out) == histories(expected_dir)
    log = (out / "campaign.log").read_text()
    workers = set()
    for rid in histories(expected_dir):
        lines = [line for line in log.splitlines() if f"run {rid}: completed" in line]
        assert len(lines) == 1, rid  # run (and logged) by exactly one process
        workers.add(lines[0].split("[")[1].split("]")[0])
    assert log.count("campaign 'small': 12 runs") == 2
    assert workers == {str(p.pid) for p in procs}  # each process completed units of its own


def test_workers_stop_when_the_campaign_process_is_killed_alone(tmp_path):
    """``kill <campaign pid>`` (not its process group): the pool's workers must not run their units on
    as orphans (their parent, the fork server, can outlive the campaign), heartbeating their leases."""
    spec = tmp_path / "long.toml"
    spec.write_text('seeds = [0, 1]\n[budget]\nmax_evals = 10000000\n'
                    '[[problems]]\nname = "toy/rosenbrock20"\n[[optimizers]]\nname = "random"\n')
    out = tmp_path / "out"
    proc = start_cli(["run", spec, "--out", out, "--workers", 2, "--quiet", "--no-report"])
    deadline = time.monotonic() + 60
    while len(list(out.glob("runs/*/history.jsonl"))) < 2 or history_bytes(out) == 0:
        assert time.monotonic() < deadline and proc.poll() is None, "the campaign did not start its runs"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    deadline = time.monotonic() + 20
    while True:
        before = history_bytes(out)
        time.sleep(2.5)  # the workers' watch polls every second
        if history_bytes(out) == before:
            break
        assert time.monotonic() < deadline, "the workers went on after the campaign process died"
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # clean up whatever is left of the session (fork server)
    except ProcessLookupError:
        pass
