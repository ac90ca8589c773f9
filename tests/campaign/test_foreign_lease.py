"""A run leased on another host (unverifiable from here): ``invdesign resume --quiet`` says so at once on
stderr (host, pid, expiry, the way out) instead of waiting silently until the lease expires (a day, for a
lease taken with ``--lease-ttl 86400``); ``--steal-leases`` takes it over, ``--wait`` waits for it."""

import json
import time

from invdesign.campaign import run_campaign
from invdesign.campaign.storage import COMPLETED_FILE, LEASE_FILE
from tests.campaign.helpers import cli, comparable_summary, small_spec, start_cli

RUN = "quad__random__s1"


def _campaign(tmp_path, name: str):
    spec = small_spec(problems=[{"name": "toy/quadratic", "label": "quad"}], optimizers=["random"], seeds=[0, 1],
                      budget={"max_evals": 6})
    run_campaign(spec, tmp_path / "ref", progress=False)
    out = tmp_path / name
    run_campaign(spec, out, progress=False)
    (out / "runs" / RUN / COMPLETED_FILE).unlink()  # as if the other host were still running it
    return tmp_path / "ref", out


def _foreign_lease(out, expires_in: float, pid: int = 424242) -> None:
    now = time.time()
    lease = {"host": "faraway-node-7", "pid": pid, "start": "1", "token": "f" * 16, "acquired": now,
             "renewed": now, "expires": now + expires_in}
    (out / "runs" / RUN / LEASE_FILE).write_text(json.dumps(lease))


def test_a_day_long_foreign_lease_fails_fast_naming_host_pid_expiry(tmp_path):
    _, out = _campaign(tmp_path, "c")
    _foreign_lease(out, 86400.0)
    start = time.monotonic()
    done = cli("resume", out, "--quiet", "--no-report", timeout=60)  # was: waited 24 h (TimeoutExpired)
    assert time.monotonic() - start < 45
    assert done.returncode == 1, done.stderr
    err = done.stderr
    assert "faraway-node-7" in err and "424242" in err and RUN in err
    assert "--steal-leases" in err and "--wait" in err and "in 23:59:" in err
    assert json.loads((out / "runs" / RUN / LEASE_FILE).read_text())["host"] == "faraway-node-7"  # left alone
    assert not (out / "runs" / RUN / COMPLETED_FILE).exists()
    assert (out / "runs" / "quad__random__s0" / COMPLETED_FILE).exists()


def test_steal_leases_takes_the_foreign_run_over(tmp_path):
    ref, out = _campaign(tmp_path, "c")
    _foreign_lease(out, 86400.0)
    done = cli("resume", out, "--quiet", "--no-report", "--steal-leases", timeout=60)
    assert done.returncode == 0, done.stderr
    assert comparable_summary(out) == comparable_summary(ref)
    assert not (out / "runs" / RUN / LEASE_FILE).exists()


def _resume_until_waiting(out, *flags) -> tuple[int, str]:
    """``invdesign resume OUT --quiet FLAGS``; once it announces that it waits for the foreign lease, the
    lease goes (as when that host finishes): returns its exit status and stderr."""
    proc = start_cli(["resume", out, "--quiet", "--no-report", *flags])
    lines = []
    deadline = time.monotonic() + 120
    for line in iter(proc.stderr.readline, b""):
        lines.append(line.decode())
        if "waiting for it" in lines[-1]:
            (out / "runs" / RUN / LEASE_FILE).unlink()
            break
        assert time.monotonic() < deadline, "".join(lines)
    rest = proc.communicate(timeout=120)[1].decode()
    return proc.returncode, "".join(lines) + rest


def test_wait_waits_for_a_foreign_lease_and_says_so(tmp_path):
    ref, out = _campaign(tmp_path, "c")
    _foreign_lease(out, 3600.0)  # beyond 2 TTLs: only --wait waits for it
    code, err = _resume_until_waiting(out, "--wait")
    assert code == 0, err
    assert "faraway-node-7" in err and "424242" in err
    assert comparable_summary(out) == comparable_summary(ref)


def test_a_short_foreign_lease_is_waited_for_unasked_but_not_silently(tmp_path):
    """A lease that expires within 2 lease TTLs (a killed Dask worker's, or a live holder renewing) is worth
    waiting for without --wait; the wait is announced on stderr also with --quiet."""
    ref, out = _campaign(tmp_path, "c")
    _foreign_lease(out, 100.0)  # within 2 x the default 60 s TTL
    code, err = _resume_until_waiting(out)
    assert code == 0, err
    assert "faraway-node-7" in err
    assert comparable_summary(out) == comparable_summary(ref)


def test_a_zombie_holder_is_dead(tmp_path):
    """A SIGKILLed worker its parent has not reaped yet is a zombie: its lease frees the unit at once (was:
    ``os.kill(pid, 0)`` succeeds on a zombie, so the unit waited out the whole lease TTL)."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    from invdesign.campaign.lease import holder_is_dead, pid_alive

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert pid_alive(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(child.pid) and time.monotonic() < deadline:  # not reaped: a zombie
            time.sleep(0.01)
        assert not pid_alive(child.pid)
        lease = {"host": socket.gethostname(), "pid": child.pid, "start": None, "expires": time.time() + 3600}
        assert holder_is_dead(lease)
    finally:
        child.kill()
        child.wait()
    assert pid_alive(os.getpid())
