"""Where units run: in this process, in a local process pool, or on a Dask distributed cluster.

Every executor has ``submit(fn, *args) -> future`` (``done()``, ``result()``, ``cancel()``) and
``shutdown()``; ``capacity`` is how many units run at once. Results travel back as small dicts; the
data itself is on disk, so a Dask cluster needs the campaign directory on a filesystem shared by the
client and every worker (same path everywhere).

Torch threads: a pool worker sets ``torch.set_num_threads(max(1, cores // workers))`` (and
``OMP_NUM_THREADS``) before its first unit; a Dask task sets ``max(1, cores // worker threads)``
on its worker, ``cores`` being that machine's usable cores. Run Dask workers with one thread each
(``dask worker --nthreads 1 --nworkers N``): units sharing a process share torch's thread setting and
numpy's global random state, which the nevergrad adapter swaps around its calls (not thread-safe). Pool workers exit when the parent process
dies (checked every second; with the "forkserver" start method the server exits with the campaign
process and its workers follow), so a killed campaign leaves no orphan running units.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import threading
import time
from typing import Any

from invdesign.campaign.lease import pid_alive
from invdesign.campaign.runner import run_unit


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    return max(1, (cores or usable_cores()) // max(1, workers))


class InlineExecutor:
    """Runs each unit in this process, at submit time (one worker; torch threads left as they are)."""

    def __init__(self) -> None:
        self.capacity = 1

    def submit(self, fn, *args) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args))
        except Exception as err:
            future.set_exception(err)
        return future

    def shutdown(self, cancel: bool = False) -> None:
        pass

    def describe(self) -> str:
        return "in-process (1 worker)"


def _watch_parent(parent: int, campaign: int) -> None:
    # The parent is the fork server, which can outlive a killed campaign process: watch both, or an
    # orphaned worker would run its unit on (hours) and keep its lease alive against a resume.
    while True:
        time.sleep(1.0)
        if os.getppid() != parent or not pid_alive(campaign):
            os._exit(70)  # the campaign died: stop now, like it (our lease then frees the unit at once)


def _init_worker(threads: int, campaign: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    threading.Thread(target=_watch_parent, args=(os.getppid(), campaign), daemon=True, name="parent-watch").start()


# Imported once by the fork server, so that each worker starts at once (forked, not re-importing torch).
PRELOAD = ["torch", "invdesign.campaign.runner", "invdesign.optimizers", "invdesign.problem"]


def _pool_context() -> multiprocessing.context.BaseContext:
    """"forkserver" where available (fork-safe: the server has run no torch op; workers start in
    milliseconds from its preloaded modules), else "spawn"."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


class LocalPool:
    """``workers`` processes (``concurrent.futures.ProcessPoolExecutor``, forkserver or spawn)."""

    def __init__(self, workers: int, threads: int | None = None):
        self.capacity = int(workers)
        self.threads = threads or threads_per_worker(workers)
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=self.capacity, mp_context=_pool_context(),
            initializer=_init_worker, initargs=(self.threads, os.getpid()))

    def submit(self, fn, *args) -> concurrent.futures.Future:
        return self._pool.submit(fn, *args)

    def shutdown(self, cancel: bool = False) -> None:
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)

    def describe(self) -> str:
        return f"local process pool ({self.capacity} workers, {self.threads} torch thread(s) each)"


def dask_run_unit(campaign_dir: str, unit: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """``run_unit`` on a Dask worker, with torch threads set from the worker's thread count."""
    nthreads = 1
    try:
        from distributed import get_worker

        nthreads = int(get_worker().state.nthreads)
    except Exception:
        pass
    options = dict(options)
    options.setdefault("threads", threads_per_worker(nthreads))
    return run_unit(campaign_dir, unit, options)


class DaskExecutor:
    """Tasks on a Dask distributed cluster: ``scheduler`` is an address (``tcp://host:port``) or a Client."""

    def __init__(self, scheduler: Any):
        from distributed import Client

        if isinstance(scheduler, Client):
            self.client, self._own = scheduler, False
        else:
            self.client, self._own = Client(scheduler, timeout="30s"), True
        info = self.client.scheduler_info()
        workers = info.get("workers", {})
        self.capacity = max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))
        self._address = getattr(self.client.scheduler, "address", str(scheduler))
        self._n_workers = len(workers)
        self._threaded = any(int(w.get("nthreads", 1)) > 1 for w in workers.values())

    def submit(self, fn, *args):
        if fn is run_unit:
            fn = dask_run_unit
        return self.client.submit(fn, *args, pure=False)

    def shutdown(self, cancel: bool = False) -> None:
        if self._own:
            self.client.close()

    def describe(self) -> str:
        text = f"Dask cluster at {self._address} ({self._n_workers} workers, {self.capacity} threads)"
        if self._threaded:
            text += (". WARNING: workers with several threads run units side by side in one process, where "
                     "torch's thread count and numpy's global random state (used by nevergrad) are shared; "
                     "start workers with --nthreads 1 for reproducible runs")
        return text


def make_executor(workers: int = 1, scheduler: Any = None) -> InlineExecutor | LocalPool | DaskExecutor:
    if scheduler is not None:
        return DaskExecutor(scheduler)
    if int(workers) <= 1:
        return InlineExecutor()
    return LocalPool(int(workers))
