"""Faults on a physics campaign (a reduced ``paper/agnr_doping``: L-BFGS, CMA-ES and random search x 3 seeds):
SIGKILLed at 5 random moments (fixed RNG) and resumed, with the directory damaged after kills as a crash
or a careless user might leave it (a truncated checkpoint.json, a garbage last history line, a stale lease
of a dead process), and finished by two ``invdesign resume`` at once; the result is the uninterrupted
campaign, line for line. A read-only campaign directory is a clear error that writes nothing."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.campaign.helpers import assert_same_campaign, kill_at_random_moments, start_cli

pytestmark = pytest.mark.slow

KILLS_WORKERS = [2, 1, 1, 2, 1]  # one SIGKILL per entry: with a process pool (campaign and workers) or in-process


def _unfinished(out: Path) -> list[Path]:
    return [d for d in sorted((out / "runs").iterdir()) if not (d / "completed").exists()]


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


FAULTS = ("truncated checkpoint", "garbage history line", "stale lease")


def _damage(out: Path, fault: str) -> int:
    """Damage the unfinished runs as a crash (or a careless user) might; returns how many runs it hit."""
    started = [d for d in _unfinished(out) if (d / "history.jsonl").exists()]
    hit = 0
    if fault == "truncated checkpoint":  # of the runs in progress
        for d in started:
            if (d / "checkpoint.json").exists():
                data = (d / "checkpoint.json").read_bytes()
                (d / "checkpoint.json").write_bytes(data[: len(data) // 2])
                hit += 1
    elif fault == "garbage history line":  # after their last line (torn or not)
        for d in started:
            with open(d / "history.jsonl", "ab") as f:
                f.write(b'{"n": 99, "value": 0.1\xff\xfe garbage\n')
            hit += 1
    else:  # a lease of a dead process on this host, expiring in a day, on every unfinished run
        now = time.time()
        for d in _unfinished(out):
            (d / "lease.json").write_text(json.dumps({
                "host": socket.gethostname(), "pid": _dead_pid(), "start": "1", "token": "0" * 16,
                "acquired": now, "renewed": now, "expires": now + 86400.0}))
            hit += 1
    return hit


def test_killed_damaged_and_resumed_twice_at_once_equals_the_uninterrupted_run(agnr_reference, tmp_path):
    spec, expected = agnr_reference
    out = tmp_path / "killed"
    todo = list(FAULTS)

    def after_kill(_: int) -> None:  # each fault after the first kill that leaves runs it can hit
        if todo and _damage(out, todo[0]):
            todo.pop(0)

    command = kill_at_random_moments(["run", spec, "--out", out], out, random.Random(15), KILLS_WORKERS,
                                     after_kill=after_kill, max_delay_s=0.8, max_new_lines=8)
    assert not todo, f"not applied: {todo}"
    both = [start_cli([*command, "--quiet", "--no-report"]) for _ in range(2)]  # two resumes at once
    for proc in both:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    assert_same_campaign(out, expected)
    log = (out / "campaign.log").read_text()
    for rid in (d.name for d in (expected / "runs").iterdir()):
        assert (out / "runs" / rid / "completed").exists(), rid
        # finished at most once (never by both resumes); none when a kill came between the run's
        # `completed` marker, which is the record, and its log line
        assert sum(f"run {rid}: completed" in line for line in log.splitlines()) <= 1, rid


def _snapshot(root: Path) -> dict[str, tuple]:
    return {str(p.relative_to(root)): (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file()
                                       else None) for p in sorted(root.rglob("*"))}


@contextlib.contextmanager
def _read_only(root: Path, how: str) -> Iterator[None]:
    """Make ``root`` unwritable as the OS would: "mount" re-mounts it read-only (EROFS), "immutable" sets
    chattr +i on everything (EPERM, also for root), "chmod" drops write permission (EACCES; root ignores
    it, so only for other users). Skips where this machine does not allow it."""
    paths = [root, *root.rglob("*")]
    if how == "mount":
        done = subprocess.run(["mount", "--bind", str(root), str(root)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot bind-mount here: {done.stderr.decode().strip()}")
        done = subprocess.run(["mount", "-o", "remount,ro,bind", str(root)], capture_output=True)
        undo = [["umount", str(root)]]
    elif how == "immutable":
        done = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True)
        undo = [["chattr", "-i", *map(str, paths)]]
    else:
        if os.geteuid() == 0:
            pytest.skip("root ignores permission bits")
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
        done, undo = subprocess.CompletedProcess([], 0), []
    try:
        if done.returncode != 0:
            pytest.skip(f"cannot make {root} read-only by {how}: {done.stderr.decode().strip()}")
        yield
    finally:
        for command in undo:
            subprocess.run(command, capture_output=True)
        for p in paths:
            if how == "chmod":
                p.chmod(0o755 if p.is_dir() else 0o644)


@pytest.mark.parametrize("how", ["mount", "immutable", "chmod"])
def test_read_only_campaign_directory_is_a_clear_error_and_writes_nothing(agnr_reference, tmp_path, how):
    spec, expected = agnr_reference
    out = tmp_path / "campaign"
    shutil.copytree(expected, out)
    for d in sorted((out / "runs").iterdir())[:2]:  # two runs left halfway: resume has work to do
        (d / "completed").unlink()
        (d / "checkpoint.json").unlink()
        lines = (d / "history.jsonl").read_bytes().splitlines(keepends=True)
        (d / "history.jsonl").write_bytes(b"".join(lines[:3]))
    before = _snapshot(out)
    with _read_only(out, how):
        commands = [["resume", out]] + ([["run", spec, "--out", out / "new"]] if how == "mount" else [])
        for args in commands:  # (each start costs seconds of imports: the new-directory case once)
            proc = start_cli([*args, "--quiet", "--no-report"])
            _, err = proc.communicate(timeout=120)
            text = err.decode()
            assert proc.returncode == 1, text
            assert "cannot write" in text and str(out) in text and "Traceback" not in text, text  # was: a traceback (EROFS)
            assert _snapshot(out) == before  # nothing half-written, nothing created
