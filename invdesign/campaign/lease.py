"""Leases: at most one worker runs a unit at a time, and a dead worker's unit is picked up again.

A lease is ``lease.json`` in the run directory: owner (host, pid, process start time, a random
token) and an expiry time. The holder renews it every ``ttl / 4`` seconds from a heartbeat thread.
Another worker may take the unit when

- there is no lease, or
- the lease has expired (its holder stopped renewing: a dead or hung machine), or
- the holder ran on this host and its process is gone (pid missing or a different process start
  time), which frees a killed worker's unit at once instead of after ``ttl``.

Every read-modify-write of ``lease.json`` (acquire, renew, release) happens under a short mutex, the
file ``lease.lock`` created with ``O_CREAT | O_EXCL`` (atomic on local filesystems and on NFSv3+).
A mutex older than ``MUTEX_STALE_S`` is left over by a process killed while holding it (it is held for
milliseconds) and is broken. A holder that finds someone else's token at renewal has lost the lease
(it stalled past ``ttl``) and must stop writing: ``Lease.lost`` is set and ``Lease.check()`` raises.

A lease held on *another* host cannot be checked (its pid means nothing here): it protects the unit
until it expires. ``Lease.acquire(..., steal_foreign=True)`` takes such a lease over at once (the user
says that host runs nothing: ``invdesign resume --steal-leases``); a holder that was alive after all
finds the foreign token at its next renewal and stops writing (``Lease.lost``). ``foreign_holder``
names the host, pid and expiry for the campaign's messages.

Assumptions (documented for cluster use): the run directories are on a filesystem shared by all
workers, and the machines' clocks agree to well within ``ttl``.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any

from invdesign.campaign.storage import LEASE_FILE, StorageError, atomic_write_json, read_json

DEFAULT_TTL_S = 60.0
MUTEX_STALE_S = 30.0
MUTEX_TIMEOUT_S = 60.0
LOCK_FILE = "lease.lock"


class LeaseLost(RuntimeError):
    """This worker's lease on a run was taken over; it must not write to the run any more."""


def _process_start(pid: int) -> str | None:
    """Start time of process ``pid`` in clock ticks since boot (Linux), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (the one liveness test: leases, pool workers' watch).

    A zombie is dead: a SIGKILLed worker stays in the process table until its parent reaps it, and a
    parent that does not (a stuck nanny, a test harness) kept its lease "alive" until the lease expired
    (a Dask run waited its whole 60 s TTL for a killed worker)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux), or it just went: the signal test above is all there is
    return state not in ("Z", "X")


def this_owner() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _process_start(pid),
            "token": secrets.token_hex(8)}


def holder_is_dead(lease: dict[str, Any], now: float | None = None) -> bool:
    """Whether a lease no longer protects its unit (expired, or its process on this host is gone)."""
    now = time.time() if now is None else now
    try:
        if now > float(lease["expires"]):
            return True
        if lease["host"] == socket.gethostname():
            pid = int(lease["pid"])
            if not pid_alive(pid):
                return True
            start = _process_start(pid)
            if lease.get("start") is not None and start is not None and start != lease["start"]:
                return True  # the pid was reused by another process
    except (KeyError, TypeError, ValueError):
        return True  # unreadable lease: treat as abandoned
    return False


def foreign_holder(lease: dict[str, Any] | None) -> dict[str, Any] | None:
    """``{"host", "pid", "expires"}`` of a lease held on another host (unverifiable here), else None."""
    if not isinstance(lease, dict) or lease.get("host") in (None, socket.gethostname()):
        return None
    try:
        return {"host": str(lease["host"]), "pid": int(lease["pid"]), "expires": float(lease["expires"])}
    except (KeyError, TypeError, ValueError):
        return None


class _Mutex:
    def __init__(self, directory: Path):
        self.path = directory / LOCK_FILE

    def __enter__(self) -> _Mutex:
        deadline = time.monotonic() + MUTEX_TIMEOUT_S
        while True:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                os.write(fd, f"{socket.gethostname()} {os.getpid()} {time.time()}\n".encode())
                os.close(fd)
                return self
            except FileExistsError:
                try:
                    if time.time() - self.path.stat().st_mtime > MUTEX_STALE_S:
                        self.path.unlink()  # left by a process killed while holding it
                        continue
                except FileNotFoundError:
                    continue
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.path}: could not take the lease mutex in {MUTEX_TIMEOUT_S} s") from None
                time.sleep(0.005 + 0.01 * secrets.randbelow(100) / 100)

    def __exit__(self, *exc) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


class Lease:
    """A held lease on one run directory, renewed by a heartbeat thread until ``release()``."""

    def __init__(self, directory: Path, owner: dict[str, Any], ttl: float):
        self.directory = directory
        self.owner = owner
        self.ttl = ttl
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> Path:
        return self.directory / LEASE_FILE

    def _record(self) -> dict[str, Any]:
        now = time.time()
        return {**self.owner, "acquired": getattr(self, "_acquired", now), "renewed": now, "expires": now + self.ttl}

    @classmethod
    def acquire(cls, directory: str | os.PathLike, ttl: float = DEFAULT_TTL_S, heartbeat: bool = True,
                steal_foreign: bool = False) -> Lease | None:
        """Take the lease on ``directory`` (created if missing); None if a live worker holds it.

        steal_foreign: also take a lease that is held (and not expired) on another host.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        lease = cls(directory, this_owner(), float(ttl))
        with _Mutex(directory):
            try:
                current = read_json(lease.path) if lease.path.exists() else None
            except StorageError:  # leases are written atomically: an unreadable one names no live holder
                current = None
            if current is not None and not holder_is_dead(current) \
                    and not (steal_foreign and foreign_holder(current) is not None):
                return None
            lease._acquired = time.time()
            atomic_write_json(lease.path, lease._record())
        if heartbeat:
            lease._thread = threading.Thread(target=lease._beat, name=f"lease-{directory.name}", daemon=True)
            lease._thread.start()
        return lease

    def renew(self) -> bool:
        """Push the expiry forward; False (and ``lost`` set) if the lease is no longer ours."""
        if self.lost:
            return False
        with _Mutex(self.directory):
            try:
                current = read_json(self.path)
            except Exception:
                current = None
            if current is None or current.get("token") != self.owner["token"]:
                self.lost = True
                return False
            atomic_write_json(self.path, self._record())
        return True

    def check(self) -> None:
        """Raise LeaseLost if the lease was taken over."""
        if self.lost:
            raise LeaseLost(f"{self.directory}: the lease was taken over by another worker")

    def _beat(self) -> None:
        interval = max(self.ttl / 4.0, 0.05)
        while not self._stop.wait(interval):
            try:
                if not self.renew():
                    return
            except Exception:  # a transient filesystem error: try again next beat
                continue

    def release(self) -> None:
        """Stop the heartbeat and delete the lease if it is still ours."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        if self.lost:
            return
        with _Mutex(self.directory):
            try:
                current = read_json(self.path)
            except Exception:
                current = None
            if current is not None and current.get("token") == self.owner["token"]:
                self.path.unlink()
