"""Timing and hardware helpers shared by the benchmark scripts in this folder.

Timings are wall clock (``time.perf_counter``). For every timed call :func:`timed` also reads
``/proc/stat`` and the process's own CPU times, and reports the share of all CPUs that *other*
processes used meanwhile; :func:`measure_interleaved` redoes a round in which that share exceeded
:data:`MAX_BUSY` (see :func:`set_busy_limits`).

The scripts import this module as ``timing``: running ``python benchmarks/<script>.py`` puts this
folder first on ``sys.path``. torch, numpy and scipy are imported only by :func:`hardware_info`.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import subprocess
import time

MAX_BUSY = 0.25  # a timing round is redone when other processes used more than this share of the CPUs
MAX_RETRIES = None  # redone rounds allowed per measurement (None: 2 x repeats)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def set_busy_limits(max_busy: float, max_retries: int | None) -> None:
    """Set :data:`MAX_BUSY` and :data:`MAX_RETRIES` for all later measurements."""
    global MAX_BUSY, MAX_RETRIES
    MAX_BUSY, MAX_RETRIES = max_busy, max_retries


# ----------------------------------------------------------------------------------------------
# measurements
# ----------------------------------------------------------------------------------------------


def time_stats(times: list[float], others: list[float] | None = None) -> dict:
    """Median, min, max, count and the rounded times; ``others``: busy fractions of other processes."""
    st = {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "n": len(times),
        "times_s": [round(t, 6) for t in times],
    }
    if others:
        st["other_cpu_frac"] = [round(x, 3) for x in others]
    return st


def fmt_stats(st: dict) -> str:
    """One line ``median s [min, max, n]`` of :func:`time_stats`, with notes on a contended machine."""
    text = f"{st['median_s']:8.3f} s  [min {st['min_s']:.3f}, max {st['max_s']:.3f}, n={st['n']}]"
    oc = st.get("other_cpu_frac")
    if oc and max(oc) >= 0.1:
        text += f"  (others busy: up to {100 * max(oc):.0f}%)"
    if st.get("discarded_busy_rounds_s"):
        text += f"  ({len(st['discarded_busy_rounds_s'])} busy rounds redone)"
    return text


def cpu_seconds() -> tuple[float, float] | None:
    """``(busy, total)`` CPU seconds of all processes on all CPUs so far, from ``/proc/stat``.

    busy = user + nice + system + irq + softirq + steal; total adds idle and iowait. None when
    ``/proc/stat`` cannot be read.
    """
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
        user, nice, system, idle, iowait, irq, softirq, steal = fields
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    busy = user + nice + system + irq + softirq + steal
    return busy / tick, (busy + idle + iowait) / tick


def busy_seconds() -> float | None:
    """CPU seconds all processes have spent so far (user+nice+system+irq+softirq+steal), /proc/stat."""
    both = cpu_seconds()
    return None if both is None else both[0]


def timed(fn):
    """``(wall seconds, result, other_cpu_frac)``.

    ``other_cpu_frac``: CPU time used by *other* processes during the call, as a fraction of all
    cores x wall time (0 = machine to ourselves). Above ~0.1 the timing is contended.
    """
    gc.collect()
    b0, c0 = busy_seconds(), os.times()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    b1, c1 = busy_seconds(), os.times()
    other = None
    if b0 is not None and dt > 0.05:
        own = (c1.user + c1.system + c1.children_user + c1.children_system) - \
              (c0.user + c0.system + c0.children_user + c0.children_system)
        other = max(0.0, ((b1 - b0) - own) / (dt * (os.cpu_count() or 1)))
    return dt, out, other


def measure_interleaved(fns: dict, repeats: int, warmup: int = 1) -> dict:
    """Run each callable in ``fns`` once per round (interleaved), ``warmup`` + ``repeats`` rounds.

    Interleaving makes ratios between the callables robust to slow drifts of the machine load.
    Returns ``{name: stats}``; the last return value of each callable is in ``stats['last']``.
    """
    times = {k: [] for k in fns}
    others = {k: [] for k in fns}
    discarded = {k: [] for k in fns}
    last = {}
    retries_left = MAX_RETRIES if MAX_RETRIES is not None else 2 * repeats
    for _ in range(warmup):
        for k, fn in fns.items():
            last[k] = fn()
    kept = 0
    while kept < repeats:
        round_t, round_o = {}, {}
        for k, fn in fns.items():
            dt, out, other = timed(fn)
            last[k] = out
            round_t[k], round_o[k] = dt, other
        busy = max((o for o in round_o.values() if o is not None), default=0.0)
        if busy > MAX_BUSY and retries_left > 0:
            # another process took a large share of the CPUs during this round: redo it
            retries_left -= 1
            for k in fns:
                discarded[k].append(round(round_t[k], 6))
            continue
        kept += 1
        for k in fns:
            times[k].append(round_t[k])
            if round_o[k] is not None:
                others[k].append(round_o[k])
    result = {k: time_stats(v, others[k]) for k, v in times.items()}
    for k in fns:
        if discarded[k]:
            result[k]["discarded_busy_rounds_s"] = discarded[k]
    for k in fns:
        result[k]["last"] = last[k]
    return result


def least_busy(run, tries: int = 4):
    """Run ``run()`` until other processes used at most MAX_BUSY of the CPUs (at most ``tries`` times);
    return the result of the least contended try and its busy fraction."""
    best = None
    for _ in range(tries):
        _dt, res, other = timed(run)
        other = other or 0.0
        if best is None or other < best[1]:
            best = (res, other)
        if other <= MAX_BUSY:
            break
    return best


def ratio_stats(res: dict, num: str, den: str) -> dict:
    """Ratio of two interleaved measurements of :func:`measure_interleaved`: of medians and per round."""
    a, b = res[num]["times_s"], res[den]["times_s"]
    per_round = [x / y for x, y in zip(a, b)]
    return {
        "ratio_of_medians": res[num]["median_s"] / res[den]["median_s"],
        "median_of_ratios": statistics.median(per_round),
        "min": min(per_round),
        "max": max(per_round),
    }


def without_last(st: dict) -> dict:
    """The stats of :func:`measure_interleaved` without the callable's last return value."""
    return {k: v for k, v in st.items() if k != "last"}


# ----------------------------------------------------------------------------------------------
# hardware
# ----------------------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (else ``platform.processor()`` or "unknown")."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return cpu


def usable_cores() -> int | None:
    """Cores this process may run on (``sched_getaffinity``; else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def git_commit(root: str = REPO) -> str | None:
    """Short commit hash of HEAD in ``root`` (None outside a checkout).

    Raises ``OSError`` or ``subprocess.SubprocessError`` (no git, time-out) for the caller to handle.
    """
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                          text=True, timeout=10).stdout.strip() or None


def hardware_info() -> dict:
    """CPU, cores, library versions, torch threads, CUDA device, load average, git HEAD and the
    uncommitted files under ``invdesign/``."""
    import numpy as np
    import scipy
    import torch

    info = {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "loadavg_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    try:
        info["git_commit"] = git_commit()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "invdesign"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.split("\n")
        info["engine_files_modified"] = [line[3:] for line in dirty if line.strip()]
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


def header(title: str) -> None:
    """A section title between two lines of ``=``."""
    print()
    print("=" * 100)
    print(title)
    print("=" * 100)


def print_hardware(info: dict) -> None:
    """Print :func:`hardware_info` as a block."""
    print("=" * 100)
    print("Hardware / software")
    print("=" * 100)
    print(f"  CPU model            : {info['cpu_model']}")
    print(f"  cores                : {info['logical_cores']} logical, {info['usable_cores']} usable by this process")
    print(f"  python / torch       : {info['python']} / {info['torch']}")
    print(f"  torch threads        : intra-op {info['torch_num_threads']}, inter-op {info['torch_num_interop_threads']}")
    print(f"  numpy / scipy        : {info['numpy']} / {info['scipy']}")
    if info["cuda_available"]:
        print(f"  CUDA device          : {info['cuda_device']} (benchmarks run on CPU)")
    else:
        print("  CUDA device          : none (torch.cuda.is_available() is False)")
    if info["loadavg_at_start"] is not None:
        la = ", ".join(f"{x:.2f}" for x in info["loadavg_at_start"])
        print(f"  load average (start) : {la}  (other processes on the machine add noise)")
    if info.get("git_commit"):
        mod = info.get("engine_files_modified") or []
        print(f"  git HEAD             : {info['git_commit']}"
              + (f"  (uncommitted changes in: {', '.join(mod)})" if mod else ""))
    print()
