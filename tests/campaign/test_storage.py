"""Storage: atomic files, the append-only history (torn last lines), run names, leases."""

import json
import socket
import subprocess
import sys
import time

import pytest

from invdesign.campaign import lease as lease_mod
from invdesign.campaign.lease import Lease, LeaseLost, holder_is_dead
from invdesign.campaign.storage import (
    HistoryWriter,
    StorageError,
    atomic_write_json,
    read_history,
    read_json,
    remove_temporaries,
    run_id,
    sanitize,
)


def test_atomic_json(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_json(path, {"x": 1})
    atomic_write_json(path, {"x": [2.5, "nan"]}, compact=True, sync_dir=False)
    assert read_json(path) == {"x": [2.5, "nan"]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # no temporaries left
    with pytest.raises(ValueError):  # strict JSON: NaN must be encoded by the caller
        atomic_write_json(path, {"x": float("nan")})
    assert read_json(path) == {"x": [2.5, "nan"]}  # the old content survives a failed write
    (tmp_path / ".a.json.tmp.123.abcd").write_text("{")
    remove_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(StorageError, match="bad.json"):
        read_json(tmp_path / "bad.json")
    assert read_json(tmp_path / "missing.json", 7) == 7


def test_history_drops_a_torn_last_line(tmp_path):
    path = tmp_path / "history.jsonl"
    with HistoryWriter(path) as w:
        for i in range(3):
            w.append({"n": i, "value": i * 1.5})
    full = path.read_bytes()
    path.write_bytes(full + b'{"n": 3, "val')  # killed in the middle of a write
    records, valid = read_history(path)
    assert [r["n"] for r in records] == [0, 1, 2] and valid == len(full)
    with HistoryWriter(path, valid) as w:  # truncates the torn line before appending
        w.append({"n": 3, "value": 4.5})
    records, _ = read_history(path)
    assert [r["n"] for r in records] == [0, 1, 2, 3]
    assert path.read_bytes().count(b"\n") == 4
    path.write_bytes(full.replace(b'"n":1', b'"n":1,,'))  # corruption in the middle is an error
    with pytest.raises(StorageError, match="line 2"):
        read_history(path)
    assert read_history(tmp_path / "none.jsonl") == ([], 0)


def test_run_names():
    assert sanitize("toy/quadratic") == "toy-quadratic"
    assert sanitize("a b//c") == "a-b-c" and sanitize("///") == "x"
    assert run_id("toy/quadratic", "cma", 3) == "toy-quadratic__cma__s3"


def _lease_of(**fields):
    base = {"host": socket.gethostname(), "pid": 1, "start": None, "token": "t", "expires": time.time() + 100}
    return {**base, **fields}


def test_lease_exclusive_and_released(tmp_path):
    first = Lease.acquire(tmp_path / "r", ttl=5)
    assert first is not None
    assert Lease.acquire(tmp_path / "r", ttl=5) is None  # held by a live process (this one)
    first.release()
    assert not (tmp_path / "r" / "lease.json").exists()
    second = Lease.acquire(tmp_path / "r", ttl=5)
    assert second is not None
    second.release()


def test_dead_or_expired_holders(tmp_path):
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(proc.stdout)
    assert holder_is_dead(_lease_of(pid=dead_pid))  # same host, process gone: free at once
    assert holder_is_dead(_lease_of(host="elsewhere", expires=time.time() - 1))  # expired
    assert not holder_is_dead(_lease_of(host="elsewhere"))  # another machine, still renewing
    assert holder_is_dead({"garbage": True})
    rdir = tmp_path / "r"
    rdir.mkdir()
    (rdir / "lease.json").write_text(json.dumps(_lease_of(pid=dead_pid)))
    taken = Lease.acquire(rdir, ttl=5)
    assert taken is not None
    taken.release()
    (rdir / "lease.json").write_text(json.dumps(_lease_of(host="elsewhere")))
    assert Lease.acquire(rdir, ttl=5) is None


def _eventually(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_heartbeat_and_takeover(tmp_path):
    held = Lease.acquire(tmp_path / "r", ttl=0.4)
    first_expiry = read_json(held.path)["expires"]
    # polled with a generous deadline: on a loaded machine the heartbeat thread may run late
    assert _eventually(lambda: read_json(held.path)["expires"] > first_expiry)  # renewed by the heartbeat
    # someone else took it (e.g. we were frozen past the ttl): we notice and stop writing
    atomic_write_json(held.path, _lease_of(host="elsewhere", token="theirs"))
    assert _eventually(lambda: held.lost)
    with pytest.raises(LeaseLost):
        held.check()
    held.release()
    assert read_json(held.path)["token"] == "theirs"  # release never deletes someone else's lease


def test_stale_mutex_is_broken(tmp_path, monkeypatch):
    rdir = tmp_path / "r"
    rdir.mkdir()
    lock = rdir / "lease.lock"
    lock.write_text("left by a killed process")
    monkeypatch.setattr(lease_mod, "MUTEX_STALE_S", 0.05)
    time.sleep(0.1)
    held = Lease.acquire(rdir, ttl=5, heartbeat=False)
    assert held is not None and not lock.exists()
    held.release()
