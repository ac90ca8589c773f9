#!/usr/bin/env python
"""Performance benchmarks of the differentiable NEGF engine (``invdesign.negf``).

Run from the repository root with the virtual environment active:

    python benchmarks/bench_negf.py            # full run (a few minutes on 2 CPU cores)
    python benchmarks/bench_negf.py --quick    # smoke run (small sizes, 1 repeat)
    python benchmarks/bench_negf.py --json out.json --threads 1

Benchmarks (all timings are wall clock, ``time.perf_counter``; each reported as median [min, max] of
``--repeats`` runs after one warm-up run; ratios are taken from runs interleaved in the same process):

  1. Square-lattice strip W=20, L=200 (t = -1 eV, leads = the same strip cell), 100 energies in
     (-3.5, 3.5) eV: forward T(E); forward + gradient of sum_E T(E) w.r.t. all W*L on-site energies.
     Targets: forward < 1 s; (forward + backward) / forward < 3.
  2. Mott Seebeck coefficient of a disordered 7-AGNR (armchair_ribbon(7), 14 atoms per cell):
     ~240 atoms (17 cells = 238 atoms) and 70 atoms (5 cells), 400 energies in [-2, 2] eV, by autodiff
     (``invdesign.negf.seebeck``) vs central finite differences of ln T with steps 1e-2 .. 1e-5 eV.
     Target: < 2 s (240 atoms). AD-NEGF paper numbers printed alongside.
  3. Gradient cost / forward cost as the number of on-site parameters grows (1 .. 10^4), for
     (a) a fixed device (W=20, L=500 strip: 10^4 sites; the parameters are the first p on-site
     energies, the others are fixed) and (b) a growing device (W=20, L=max(1, p/20) slices).
     Target: flat, at most 3.
  4. Where the time goes in benchmark 1: lead self-energies vs RGF sweep vs backward, a cProfile
     of forward + backward, a torch-profiler table of the autograd ops, and (for comparison) the
     batched torch Lopez-Sancho lead solver on the same energies.
  5. Intra-op threads: forward of benchmark 1 with torch.set_num_threads(1) vs the default.

A machine-readable summary is printed as JSON at the end (and written to ``--json PATH``).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import math
import os
import platform
import pstats
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from invdesign.negf import KB_EV, Device, Lead, seebeck, solve
from invdesign.negf import rgf
from invdesign.negf import solution as _solution_module
from invdesign.negf.leads import self_energy_z
from invdesign.tb.ribbons import armchair_ribbon

# Reference timings from the AD-NEGF paper (Zhouyin et al.): Seebeck coefficient of a 7-AGNR at
# 400 energies, autodiff vs finite differences.
PAPER = {240: {"ad_s": 363.1, "fd_s": 512.6}, 70: {"ad_s": 71.1, "fd_s": 98.3}}
TEMPERATURE_K = 300.0
MAX_BUSY = 0.25  # a timing round is redone when other processes used more than this share of the CPUs
MAX_RETRIES = None  # redone rounds allowed per measurement (None: 2 x repeats)
FD_STEPS = (1e-2, 1e-3, 1e-4, 1e-5)


# ----------------------------------------------------------------------------------------------
# timing helpers
# ----------------------------------------------------------------------------------------------


def _stats(times: list[float], others: list[float] | None = None) -> dict:
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


def _fmt(st: dict) -> str:
    text = f"{st['median_s']:8.3f} s  [min {st['min_s']:.3f}, max {st['max_s']:.3f}, n={st['n']}]"
    oc = st.get("other_cpu_frac")
    if oc and max(oc) >= 0.1:
        text += f"  (others busy: up to {100 * max(oc):.0f}%)"
    if st.get("discarded_busy_rounds_s"):
        text += f"  ({len(st['discarded_busy_rounds_s'])} busy rounds redone)"
    return text


def _busy_seconds() -> float | None:
    """CPU seconds all processes have spent so far (user+nice+system+irq+softirq+steal), /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None


def _timed(fn):
    """``(wall seconds, result, other_cpu_frac)``.

    ``other_cpu_frac``: CPU time used by *other* processes during the call, as a fraction of all
    cores x wall time (0 = machine to ourselves). Above ~0.1 the timing is contended.
    """
    gc.collect()
    b0, c0 = _busy_seconds(), os.times()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    b1, c1 = _busy_seconds(), os.times()
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
            dt, out, other = _timed(fn)
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
    result = {k: _stats(v, others[k]) for k, v in times.items()}
    for k in fns:
        if discarded[k]:
            result[k]["discarded_busy_rounds_s"] = discarded[k]
    for k in fns:
        result[k]["last"] = last[k]
    return result


def _ratio(res: dict, num: str, den: str) -> dict:
    a, b = res[num]["times_s"], res[den]["times_s"]
    per_round = [x / y for x, y in zip(a, b)]
    return {
        "ratio_of_medians": res[num]["median_s"] / res[den]["median_s"],
        "median_of_ratios": statistics.median(per_round),
        "min": min(per_round),
        "max": max(per_round),
    }


def _strip(st: dict) -> dict:
    return {k: v for k, v in st.items() if k != "last"}


# ----------------------------------------------------------------------------------------------
# hardware
# ----------------------------------------------------------------------------------------------


def hardware_info() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    info = {
        "cpu_model": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "numpy": np.__version__,
        "scipy": __import__("scipy").__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "loadavg_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    try:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "invdesign"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.split("\n")
        info["git_commit"] = commit or None
        info["engine_files_modified"] = [line[3:] for line in dirty if line.strip()]
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


def print_hardware(info: dict) -> None:
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


# ----------------------------------------------------------------------------------------------
# systems
# ----------------------------------------------------------------------------------------------


def square_strip(width: int, t: float = -1.0):
    """(h00, h01, left, right) of a nearest-neighbour square-lattice strip of ``width`` sites."""
    h00 = torch.zeros(width, width, dtype=torch.float64)
    i = torch.arange(width - 1)
    h00[i, i + 1] = t
    h00[i + 1, i] = t
    h01 = t * torch.eye(width, dtype=torch.float64)
    # h01 = t I is symmetric: h01 and h01^dagger coincide, so both leads are Lead(h00, h01).
    return h00, h01, Lead(h00, h01), Lead(h00, h01)


def strip_device(h00, h01, left, right, onsite: torch.Tensor) -> Device:
    """Device of ``onsite.shape[0]`` strip slices; ``onsite`` (L, W) is added to the block diagonals."""
    blocks = [h00 + torch.diag_embed(onsite[k]) for k in range(onsite.shape[0])]
    return Device(blocks, [h01] * (onsite.shape[0] - 1), left, right)


def midpoint_grid(lo: float, hi: float, n: int) -> torch.Tensor:
    """``n`` cell midpoints of [lo, hi]: never the end points, never E = 0 for symmetric even n."""
    return lo + (torch.arange(n, dtype=torch.float64) + 0.5) * (hi - lo) / n


def lead_band_extrema(h00: torch.Tensor, h01: torch.Tensor, nk: int = 2001) -> np.ndarray:
    """Band extrema (eV) of the periodic lead from a dense k grid (includes k = 0 and pi)."""
    k = np.linspace(0.0, np.pi, nk)
    a, b = h00.numpy(), h01.numpy()
    bands = np.array([np.linalg.eigvalsh(a + b * np.exp(1j * q) + b.T * np.exp(-1j * q)) for q in k])
    ext = []
    for j in range(bands.shape[1]):
        e = bands[:, j]
        ext += [e[0], e[-1]]
        inner = np.nonzero((np.diff(np.sign(np.diff(e))) != 0))[0] + 1
        ext += list(e[inner])
    return np.unique(np.round(ext, 10))


# ----------------------------------------------------------------------------------------------
# benchmark 1: strip forward / gradient
# ----------------------------------------------------------------------------------------------


def bench_strip(width, length, n_energies, repeats, seed=0) -> dict:
    h00, h01, left, right = square_strip(width)
    energies = midpoint_grid(-3.5, 3.5, n_energies)
    gen = torch.Generator().manual_seed(seed)
    # Weak Anderson disorder (uniform in [-0.25, 0.25] eV) so that the gradient is not trivially zero
    # (for a clean strip T is at a maximum and dT/d eps = 0); the cost does not depend on the values.
    base = 0.5 * (torch.rand(length, width, generator=gen, dtype=torch.float64) - 0.5)

    def forward():
        with torch.no_grad():
            return solve(strip_device(h00, h01, left, right, base), energies).transmission()

    def forward_with_graph():
        theta = base.clone().requires_grad_(True)
        return solve(strip_device(h00, h01, left, right, theta), energies).transmission().detach()

    def gradient():
        theta = base.clone().requires_grad_(True)
        t = solve(strip_device(h00, h01, left, right, theta), energies).transmission()
        t.sum().backward()
        return theta.grad

    res = measure_interleaved({"forward": forward, "forward_graph": forward_with_graph, "gradient": gradient},
                              repeats)
    t_e = res["forward"]["last"]
    grad = res["gradient"]["last"]
    # correctness spot check: directional derivative by central differences
    d = torch.randn(length, width, generator=gen, dtype=torch.float64)
    h = 1e-5
    with torch.no_grad():
        tp = solve(strip_device(h00, h01, left, right, base + h * d), energies).transmission().sum()
        tm = solve(strip_device(h00, h01, left, right, base - h * d), energies).transmission().sum()
    fd = float((tp - tm) / (2 * h))
    ad = float((grad * d).sum())
    return {
        "system": f"square strip W={width}, L={length} ({width * length} sites), t=-1 eV, "
                  f"{n_energies} energies (midpoints of (-3.5, 3.5) eV)",
        "n_params": width * length,
        "forward": _strip(res["forward"]),
        "forward_with_graph": _strip(res["forward_graph"]),
        "forward_plus_backward": _strip(res["gradient"]),
        "ratio_grad_over_forward": _ratio(res, "gradient", "forward"),
        "ratio_grad_over_forward_with_graph": _ratio(res, "gradient", "forward_graph"),
        "T_range": [float(t_e.min()), float(t_e.max())],
        "grad_check": {"directional_ad": ad, "directional_fd_h1e-5": fd,
                       "rel_err": abs(ad - fd) / max(abs(fd), 1e-300)},
    }


def print_strip(r: dict, fwd_target=1.0, ratio_target=3.0) -> None:
    print(f"  system               : {r['system']}")
    print(f"  forward T(E)         : {_fmt(r['forward'])}   (no_grad; target < {fwd_target} s: "
          f"{'MET' if r['forward']['median_s'] < fwd_target else 'NOT MET'})")
    print(f"  forward, graph kept  : {_fmt(r['forward_with_graph'])}")
    print(f"  forward + backward   : {_fmt(r['forward_plus_backward'])}   (grad of sum T w.r.t. "
          f"{r['n_params']} on-site energies)")
    q = r["ratio_grad_over_forward"]
    print(f"  ratio (fwd+bwd)/fwd  : {q['ratio_of_medians']:.2f}  (per-round median {q['median_of_ratios']:.2f}, "
          f"range {q['min']:.2f}..{q['max']:.2f}; target < {ratio_target}: "
          f"{'MET' if q['ratio_of_medians'] < ratio_target else 'NOT MET'})")
    q2 = r["ratio_grad_over_forward_with_graph"]
    print(f"  ratio vs graph fwd   : {q2['ratio_of_medians']:.2f}")
    g = r["grad_check"]
    print(f"  T(E) range           : {r['T_range'][0]:.3f} .. {r['T_range'][1]:.3f}")
    print(f"  gradient check       : directional AD {g['directional_ad']:.6e} vs FD {g['directional_fd_h1e-5']:.6e} "
          f"(rel. err {g['rel_err']:.1e})")


# ----------------------------------------------------------------------------------------------
# benchmark 2: Seebeck of a 7-AGNR, AD vs FD
# ----------------------------------------------------------------------------------------------


def agnr_device(n_atoms_target: int, seed: int = 1):
    """Disordered 7-AGNR device of round(n_atoms_target / 14) cells; returns (device, cells).

    Anderson disorder (uniform in [-0.5, 0.5] eV): a clean ribbon has a step-like T(E) with
    d ln T / dE = 0 between band edges, which would make the AD-vs-FD comparison empty.
    """
    cell = armchair_ribbon(7)
    n_cell = cell.h00.shape[-1]
    cells = max(1, round(n_atoms_target / n_cell))
    gen = torch.Generator().manual_seed(seed)
    onsite = 1.0 * (torch.rand(cells, n_cell, generator=gen, dtype=torch.float64) - 0.5)
    return cell.device(cells, onsite=onsite), cells


def bench_seebeck(n_atoms_target, n_energies, repeats, steps=FD_STEPS, seed=1) -> dict:
    cell = armchair_ribbon(7)
    n_cell = cell.h00.shape[-1]
    dev, cells = agnr_device(n_atoms_target, seed)
    energies = midpoint_grid(-2.0, 2.0, n_energies)
    edges = lead_band_extrema(cell.h00, cell.h01)
    edges_in = edges[(edges > -2.0) & (edges < 2.0)]
    e_np = energies.numpy()
    dist_edge = (np.min(np.abs(e_np[:, None] - edges_in[None, :]), axis=1) if edges_in.size
                 else np.full(e_np.shape, np.inf))
    pref = -(math.pi**2 / 3) * KB_EV**2 * TEMPERATURE_K

    def ad():
        with torch.enable_grad():
            s = seebeck(dev, energies, TEMPERATURE_K)
        return s.detach()

    def make_fd(h):
        def fd():
            with torch.no_grad():
                t = solve(dev, torch.cat([energies - h, energies + h])).transmission()
            tm, tp = t[:n_energies].numpy(), t[n_energies:].numpy()
            with np.errstate(all="ignore"):
                return pref * (np.log(tp) - np.log(tm)) / (2 * h)
        return fd

    def transmission():
        with torch.no_grad():
            return solve(dev, energies).transmission()

    fns = {"ad": ad, "T_only": transmission}
    fns.update({f"fd_{h:.0e}": make_fd(h) for h in steps})
    res = measure_interleaved(fns, repeats)
    s_ad = res["ad"]["last"].numpy()
    t_e = res["T_only"]["last"].numpy()
    mask = t_e > 0.5
    out = {
        "system": f"7-AGNR, {cells} cells x {n_cell} atoms = {cells * n_cell} atoms "
                  f"(target {n_atoms_target}), on-site disorder U(-0.5, 0.5) eV, T = {TEMPERATURE_K} K",
        "n_atoms": cells * n_cell,
        "cells": cells,
        "n_energies": n_energies,
        "energy_grid": "midpoints of [-2, 2] eV",
        "lead_band_extrema_in_window_eV": [round(float(x), 6) for x in edges_in],
        "min_distance_grid_to_band_edge_eV": float(dist_edge.min()),
        "n_energies_T_gt_0.5": int(mask.sum()),
        "T_only": _strip(res["T_only"]),
        "ad": _strip(res["ad"]),
        "fd": {},
    }
    sref = np.abs(s_ad[mask]).max() if mask.any() else np.nan
    for h in steps:
        k = f"fd_{h:.0e}"
        s_fd = res[k]["last"]
        diff = np.abs(s_fd - s_ad)
        rel = diff / np.abs(s_ad)
        far = mask & (dist_edge > 2 * h)
        out["fd"][k] = {
            "step_eV": h,
            **_strip(res[k]),
            "max_rel_err_T_gt_0.5": float(np.nanmax(rel[mask])) if mask.any() else None,
            "median_rel_err_T_gt_0.5": float(np.nanmedian(rel[mask])) if mask.any() else None,
            "normwise_rel_err_T_gt_0.5": float(np.nanmax(diff[mask]) / sref) if mask.any() else None,
            "max_rel_err_T_gt_0.5_away_from_edges": float(np.nanmax(rel[far])) if far.any() else None,
            "n_away_from_edges": int(far.sum()),
            "ratio_fd_over_ad_time": res[k]["median_s"] / res["ad"]["median_s"],
        }
    paper = PAPER.get(n_atoms_target)
    if paper and n_energies == 400:  # the paper's grid size; no comparison in --quick mode
        out["paper"] = {**paper, "atoms": n_atoms_target, "paper_fd_over_ad": paper["fd_s"] / paper["ad_s"],
                        "speedup_vs_paper_ad": paper["ad_s"] / res["ad"]["median_s"]}
    return out


def print_seebeck(r: dict, target=None) -> None:
    print(f"  system               : {r['system']}")
    print(f"  energies             : {r['n_energies']} {r['energy_grid']}; lead band extrema in the window: "
          f"{r['lead_band_extrema_in_window_eV']} eV;")
    print(f"                         closest grid point to a band edge: {r['min_distance_grid_to_band_edge_eV']:.2e} eV "
          f"(no point exactly on an edge); {r['n_energies_T_gt_0.5']} energies with T > 0.5")
    print(f"  T(E) alone (no_grad) : {_fmt(r['T_only'])}")
    line = f"  Seebeck, autodiff    : {_fmt(r['ad'])}"
    if target is not None:
        line += f"   (target < {target} s: {'MET' if r['ad']['median_s'] < target else 'NOT MET'})"
    print(line)
    print("  Seebeck, central FD of ln T (2 x nE energies per step):")
    print("      step     time (median [min,max])          FD/AD time   max rel err   median rel   normwise   "
          "max rel err >2h from edges")
    for k, f in r["fd"].items():
        mx = f["max_rel_err_T_gt_0.5"]
        print(f"    {f['step_eV']:7.0e}  {f['median_s']:7.3f} s [{f['min_s']:.3f}, {f['max_s']:.3f}]"
              f"          {f['ratio_fd_over_ad_time']:5.2f}       {mx:9.2e}    {f['median_rel_err_T_gt_0.5']:9.2e}  "
              f"{f['normwise_rel_err_T_gt_0.5']:9.2e}   {f['max_rel_err_T_gt_0.5_away_from_edges']:9.2e} "
              f"(n={f['n_away_from_edges']})")
    if "paper" in r:
        p = r["paper"]
        fd3 = r["fd"].get("fd_1e-03") or next(iter(r["fd"].values()))
        print(f"  AD-NEGF paper (7-AGNR, {r['paper']['atoms']} atoms, 400 energies): "
              f"AD {p['ad_s']:.1f} s, FD {p['fd_s']:.1f} s (FD/AD {p['paper_fd_over_ad']:.2f})")
        print(f"  this run                : AD {r['ad']['median_s']:.3f} s, FD (one step) {fd3['median_s']:.3f} s "
              f"(FD/AD {fd3['ratio_fd_over_ad_time']:.2f});  AD speed-up vs paper: x{p['speedup_vs_paper_ad']:.0f}"
              "  (different hardware; see README)")


# ----------------------------------------------------------------------------------------------
# benchmark 3: gradient / forward vs number of parameters
# ----------------------------------------------------------------------------------------------


def bench_param_scaling(counts, width, fixed_length, n_energies, repeats, seed=2) -> dict:
    h00, h01, left, right = square_strip(width)
    energies = midpoint_grid(-3.5, 3.5, n_energies)
    gen = torch.Generator().manual_seed(seed)
    rows = {"fixed_device": [], "growing_device": []}
    for variant in rows:
        for p in counts:
            length = fixed_length if variant == "fixed_device" else max(1, math.ceil(p / width))
            if p > length * width:
                continue
            base = 0.5 * (torch.rand(length * width, generator=gen, dtype=torch.float64) - 0.5)

            def onsite(theta, base=base, length=length, p=p):
                return torch.cat([theta, base[p:]]).reshape(length, width)

            def forward(base=base, length=length):
                with torch.no_grad():
                    return solve(strip_device(h00, h01, left, right, base.reshape(length, width)),
                                 energies).transmission()

            def gradient(base=base, p=p, onsite=onsite):
                theta = base[:p].clone().requires_grad_(True)
                t = solve(strip_device(h00, h01, left, right, onsite(theta)), energies).transmission()
                t.sum().backward()
                return theta.grad

            res = measure_interleaved({"forward": forward, "gradient": gradient}, repeats)
            q = _ratio(res, "gradient", "forward")
            rows[variant].append({
                "n_params": p, "L": length, "W": width, "sites": length * width,
                "forward": _strip(res["forward"]), "forward_plus_backward": _strip(res["gradient"]),
                "ratio": q["ratio_of_medians"], "ratio_median_of_rounds": q["median_of_ratios"],
            })
    return {
        "n_energies": n_energies,
        "fixed_device_desc": f"W={width}, L={fixed_length} strip ({width * fixed_length} sites); parameters = the "
                        "first p on-site energies (slice-major), the others fixed",
        "growing_device_desc": f"W={width}, L=max(1, ceil(p/{width})) slices; parameters = the first p on-site "
                          "energies (all of them once p >= W)",
        **rows,
    }


def print_param_scaling(r: dict, target=3.0) -> None:
    print(f"  energies             : {r['n_energies']} (midpoints of (-3.5, 3.5) eV)")
    for variant in ("fixed_device", "growing_device"):
        desc = r["fixed_device_desc" if variant == "fixed_device" else "growing_device_desc"]
        print(f"  ({'a' if variant == 'fixed_device' else 'b'}) {variant.replace('_', ' ')}: {desc}")
        print("      params   L x W      forward (median)   fwd+bwd (median)   ratio   per-round ratio")
        for row in r[variant]:
            print(f"    {row['n_params']:8d}  {row['L']:4d}x{row['W']:<3d}   {row['forward']['median_s']:8.3f} s"
                  f"         {row['forward_plus_backward']['median_s']:8.3f} s     {row['ratio']:5.2f}   "
                  f"{row['ratio_median_of_rounds']:5.2f}")
        ratios = [row["ratio"] for row in r[variant]]
        if ratios:
            print(f"      max ratio {max(ratios):.2f}, spread max/min {max(ratios) / min(ratios):.2f} "
                  f"(target: flat, <= {target}: {'MET' if max(ratios) <= target else 'NOT MET'})")


# ----------------------------------------------------------------------------------------------
# benchmark 4: where the time goes (benchmark 1 system)
# ----------------------------------------------------------------------------------------------


def bench_split(width, length, n_energies, repeats, profile_rows=18, seed=0, seebeck_energies=400) -> dict:
    h00, h01, left, right = square_strip(width)
    energies = midpoint_grid(-3.5, 3.5, n_energies)
    z = energies.to(torch.complex128)
    gen = torch.Generator().manual_seed(seed)
    base = 0.5 * (torch.rand(length, width, generator=gen, dtype=torch.float64) - 0.5)
    dev = strip_device(h00, h01, left, right, base)
    with torch.no_grad():
        sol = solve(dev, energies)

    # Time the lead path that solve() itself takes (e.g. one QZ per energy for mirror-image leads)
    # when the engine exposes it; otherwise the two leads one after the other.
    pair = getattr(_solution_module, "_self_energies", None)
    lead_path = "solution._self_energies (path used by solve)" if pair else "self_energy_z x 2 leads"

    def leads_modes():
        with torch.no_grad():
            if pair is not None:
                return pair(dev, z, "modes", torch.complex128)
            return (self_energy_z(left, z, width, "modes"), self_energy_z(right, z, width, "modes"))

    def build_device():
        return strip_device(h00, h01, left, right, base)

    def rgf_sweep():
        with torch.no_grad():
            return rgf.last_first_block(sol.diag, sol.up, sol.down)

    g = sol.g_last_first

    def caroli():
        with torch.no_grad():
            return torch.einsum("...ab,...bc,...cd,...ad->...", sol.gamma_right, g, sol.gamma_left, g.conj()).real

    def backward_only():
        theta = base.clone().requires_grad_(True)
        t = solve(strip_device(h00, h01, left, right, theta), energies).transmission()
        t0 = time.perf_counter()
        t.sum().backward()
        return time.perf_counter() - t0

    res = measure_interleaved({"leads_modes": leads_modes, "device_build": build_device, "rgf_sweep": rgf_sweep,
                               "caroli_trace": caroli}, repeats)
    bw = [backward_only() for _ in range(repeats)]
    out = {k: _strip(v) for k, v in res.items()}
    out["lead_path_timed"] = lead_path
    out["backward_only"] = _stats(bw)

    # batched torch Lopez-Sancho on the same energies, for comparison (needs eta > 0 in bands)
    eta = 1e-6

    def leads_sancho():
        with torch.no_grad():
            return (self_energy_z(left, z + 1j * eta, width, "sancho"),
                    self_energy_z(right, z + 1j * eta, width, "sancho"))

    try:
        r2 = measure_interleaved({"leads_sancho": leads_sancho}, repeats)
        sig_s = r2["leads_sancho"]["last"][0]
        sig_m = res["leads_modes"]["last"][0]
        out["leads_sancho_eta1e-6"] = _strip(r2["leads_sancho"])
        out["leads_sancho_eta1e-6"]["max_abs_diff_vs_modes_eV"] = float((sig_s - sig_m).abs().max())
    except Exception as exc:  # ConvergenceError or anything else: report, do not abort the run
        out["leads_sancho_eta1e-6"] = {"error": f"{type(exc).__name__}: {exc}"[:200]}

    # cProfile of one forward + backward (the least contended of a few tries)
    def fwd_bwd():
        theta = base.clone().requires_grad_(True)
        t = solve(strip_device(h00, h01, left, right, theta), energies).transmission()
        t.sum().backward()

    text, named, busy = _cprofile(fwd_bwd, profile_rows)
    out["cprofile_named"], out["cprofile_text"], out["cprofile_others_busy"] = named, text, busy

    # cProfile of the Seebeck coefficient by autodiff, 7-AGNR with 238 atoms, 400 energies (benchmark 2)
    if seebeck_energies:
        dev_r, _cells = agnr_device(240)
        e_r = midpoint_grid(-2.0, 2.0, seebeck_energies)
        text, named, busy = _cprofile(lambda: seebeck(dev_r, e_r, TEMPERATURE_K), profile_rows)
        out["seebeck_cprofile_named"], out["seebeck_cprofile_text"] = named, text
        out["seebeck_cprofile_others_busy"] = busy

    # torch profiler (op level) of one forward + backward
    try:
        from torch.profiler import ProfilerActivity, profile

        def torch_prof():
            with profile(activities=[ProfilerActivity.CPU]) as tp:
                fwd_bwd()
            return tp

        tp, busy = _least_busy(torch_prof)
        out["torch_profiler_text"] = tp.key_averages().table(sort_by="self_cpu_time_total", row_limit=profile_rows,
                                                             max_name_column_width=40)
        out["torch_profiler_others_busy"] = busy
    except Exception as exc:  # profiler unavailable: not fatal
        out["torch_profiler_text"] = f"(torch profiler failed: {exc})"
    return out


ENGINE_FUNCTIONS = ("solve", "transmission", "seebeck", "_self_energies", "surface_gf_modes", "lead_modes",
                    "_qz", "_classify", "_simple_modes", "_mode_space", "_reordered_basis", "_gf_from_modes",
                    "last_first_block", "_implicit_vjp", "_solve_stein", "backward", "grad", "run_backward")


def _least_busy(run, tries: int = 4):
    """Run ``run()`` until other processes used at most MAX_BUSY of the CPUs (at most ``tries`` times);
    return the result of the least contended try and its busy fraction."""
    best = None
    for _ in range(tries):
        _dt, res, other = _timed(run)
        other = other or 0.0
        if best is None or other < best[1]:
            best = (res, other)
        if other <= MAX_BUSY:
            break
    return best


def _cprofile(fn, rows: int):
    """cProfile of ``fn()``: (top-``rows`` text by own time, {engine function: times}, busy fraction)."""
    def run():
        prof = cProfile.Profile()
        prof.enable()
        fn()
        prof.disable()
        return prof

    prof, busy = _least_busy(run)
    buf = io.StringIO()
    ps = pstats.Stats(prof, stream=buf)
    ps.sort_stats("tottime").print_stats(rows)
    named = {}
    for (fname, _line, func), (_cc, nc, tt, ct, _callers) in ps.stats.items():
        if func in ENGINE_FUNCTIONS or "run_backward" in func:
            if func in ("backward", "grad") and "autograd" not in fname and "leads" not in fname:
                continue
            key = f"{os.path.basename(fname)}:{func}"
            named[key] = {"ncalls": nc, "tottime_s": round(tt, 4), "cumtime_s": round(ct, 4)}
    named = dict(sorted(named.items(), key=lambda kv: -kv[1]["cumtime_s"]))
    return _trim_profile(buf.getvalue()), named, busy


def _trim_profile(text: str) -> str:
    lines = [ln.replace(os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + "/", "")
             for ln in text.splitlines()]
    lines = [ln.replace(sys.prefix + "/lib/python" + ".".join(platform.python_version_tuple()[:2])
                        + "/site-packages/", "") for ln in lines]
    start = next((i for i, ln in enumerate(lines) if "ncalls" in ln), 0)
    head = next((ln.strip() for ln in lines if "function calls" in ln), "")
    return "\n".join([head] + [ln for ln in lines[start:] if ln.strip()])


def print_split(r: dict) -> None:
    total = r["leads_modes"]["median_s"] + r["device_build"]["median_s"] + r["rgf_sweep"]["median_s"] + \
        r["caroli_trace"]["median_s"]
    for k, label in (("device_build", "Device() construction (checks)"),
                     ("leads_modes", "lead self-energies, both leads (modes)"),
                     ("rgf_sweep", "RGF sweep last_first_block"),
                     ("caroli_trace", "Caroli trace (einsum)")):
        print(f"  {label:38s}: {_fmt(r[k])}  {100 * r[k]['median_s'] / total:5.1f} % of forward parts")
    print(f"  {'':38s}  (lead path timed: {r['lead_path_timed']})")
    print(f"  {'backward() alone':38s}: {_fmt(r['backward_only'])}")
    s = r["leads_sancho_eta1e-6"]
    if "error" in s:
        print(f"  {'lead self-energies, torch Sancho':38s}: failed: {s['error']}")
    else:
        print(f"  {'lead self-energies, torch Sancho':38s}: {_fmt(s)}  (2 leads, eta = 1e-6 eV, batched over energies; "
              f"max |Sigma_sancho - Sigma_modes| = {s['max_abs_diff_vs_modes_eV']:.1e} eV)")
    print()
    for key, title in (("cprofile", "cProfile, one forward + backward of (1)"),
                       ("seebeck_cprofile", "cProfile, Seebeck by autodiff of (2), 238 atoms, 400 energies")):
        if f"{key}_text" not in r:
            continue
        print(f"  {title} (others busy during it: {100 * r[key + '_others_busy']:.0f}%)")
        print("    engine functions by cumulative time:")
        for name, v in r[f"{key}_named"].items():
            print(f"      {name:40s} ncalls {v['ncalls']:6d}   cum {v['cumtime_s']:8.3f} s   own {v['tottime_s']:8.3f} s")
        print("    top functions by own time:")
        for ln in r[f"{key}_text"].splitlines():
            print("    " + ln)
        print()
    print(f"  torch profiler, one forward + backward of (1), sorted by self CPU time (others busy during it: "
          f"{100 * r.get('torch_profiler_others_busy', 0):.0f}%):")
    for ln in r["torch_profiler_text"].splitlines():
        print("    " + ln)


# ----------------------------------------------------------------------------------------------
# benchmark 5: intra-op threads
# ----------------------------------------------------------------------------------------------


def bench_threads(width, length, n_energies, repeats, seed=0) -> dict:
    h00, h01, left, right = square_strip(width)
    energies = midpoint_grid(-3.5, 3.5, n_energies)
    gen = torch.Generator().manual_seed(seed)
    base = 0.5 * (torch.rand(length, width, generator=gen, dtype=torch.float64) - 0.5)
    default = torch.get_num_threads()

    def fwd(nthreads):
        def run():
            torch.set_num_threads(nthreads)
            try:
                with torch.no_grad():
                    return solve(strip_device(h00, h01, left, right, base), energies).transmission()
            finally:
                torch.set_num_threads(default)
        return run

    fns = {f"threads_{default}": fwd(default)}
    if default != 1:
        fns["threads_1"] = fwd(1)
    res = measure_interleaved(fns, repeats)
    out = {k: _strip(v) for k, v in res.items()}
    out["default_threads"] = default
    if default != 1:
        out["ratio_1_over_default"] = _ratio(res, "threads_1", f"threads_{default}")["ratio_of_medians"]
        # OpenMP threads busy-wait by default; on a loaded machine that can cost more than the second
        # thread gains. OMP_WAIT_POLICY must be set before torch starts: measure in a child process.
        if "OMP_WAIT_POLICY" not in os.environ:
            env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
            cmd = [sys.executable, os.path.abspath(__file__), "--child-forward",
                   f"{width},{length},{n_energies},{repeats},{seed},{default}"]
            try:
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
                line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
                out[f"threads_{default}_omp_passive"] = json.loads(line)
                out["ratio_passive_over_default"] = (out[f"threads_{default}_omp_passive"]["median_s"]
                                                     / out[f"threads_{default}"]["median_s"])
            except (subprocess.SubprocessError, IndexError, ValueError, OSError) as exc:
                out["omp_passive_error"] = f"{type(exc).__name__}: {exc}"[:200]
    return out


def child_forward(spec: str) -> None:
    """Child process of :func:`bench_threads`: time the forward of (1), print one JSON line."""
    width, length, n_energies, repeats, seed, nthreads = (int(x) for x in spec.split(","))
    torch.set_num_threads(nthreads)
    h00, h01, left, right = square_strip(width)
    energies = midpoint_grid(-3.5, 3.5, n_energies)
    gen = torch.Generator().manual_seed(seed)
    base = 0.5 * (torch.rand(length, width, generator=gen, dtype=torch.float64) - 0.5)

    def run():
        with torch.no_grad():
            return solve(strip_device(h00, h01, left, right, base), energies).transmission()

    print(json.dumps(_strip(measure_interleaved({"f": run}, repeats)["f"])))


def print_threads(r: dict) -> None:
    for k, v in r.items():
        if k.startswith("threads_"):
            label = k.replace("threads_", "threads = ").replace("_omp_passive", ", OMP_WAIT_POLICY=PASSIVE")
            print(f"  forward, {label:38s}: {_fmt(v)}")
    if "ratio_1_over_default" in r:
        print(f"  time(1 thread) / time({r['default_threads']} threads) = {r['ratio_1_over_default']:.2f}")
    if "ratio_passive_over_default" in r:
        print(f"  (child process, OMP_WAIT_POLICY=PASSIVE, {r['default_threads']} threads): "
              f"time / default = {r['ratio_passive_over_default']:.2f}")
    if "omp_passive_error" in r:
        print(f"  OMP_WAIT_POLICY=PASSIVE child run failed: {r['omp_passive_error']}")


# ----------------------------------------------------------------------------------------------


def _header(title: str) -> None:
    print()
    print("=" * 100)
    print(title)
    print("=" * 100)


def main(argv=None) -> int:
    global MAX_BUSY, MAX_RETRIES
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short smoke run (small sizes, 1 repeat)")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per measurement (after 1 warm-up)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads before running")
    ap.add_argument("--json", metavar="PATH", default=None, help="also write the JSON summary to PATH")
    ap.add_argument("--only", default="1,2,3,4,5", help="comma-separated benchmark numbers to run (default all)")
    ap.add_argument("--max-busy", type=float, default=MAX_BUSY,
                    help="redo a timing round when other processes used more than this share of all CPUs "
                         f"during it (default {MAX_BUSY}; 1 disables)")
    ap.add_argument("--max-retries", type=int, default=None,
                    help="redone rounds allowed per measurement (default 2 x repeats)")
    ap.add_argument("--child-forward", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    MAX_BUSY, MAX_RETRIES = args.max_busy, args.max_retries
    if args.child_forward:
        child_forward(args.child_forward)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    only = {int(x) for x in args.only.split(",") if x.strip()}
    q = args.quick
    reps = args.repeats or (1 if q else 5)
    reps_slow = args.repeats or (1 if q else 3)

    info = hardware_info()
    print_hardware(info)
    summary = {"mode": "quick" if q else "full", "repeats": reps, "repeats_slow": reps_slow,
               "max_busy": MAX_BUSY, "hardware": info, "benchmarks": {}}
    t_start = time.perf_counter()

    W, L, NE = (20, 40, 20) if q else (20, 200, 100)
    if 1 in only:
        _header(f"(1) square-lattice strip: forward T(E) and gradient w.r.t. all on-site energies")
        r = bench_strip(W, L, NE, reps)
        print_strip(r)
        summary["benchmarks"]["1_strip"] = r

    if 2 in only:
        ne = 40 if q else 400
        for atoms in (240, 70):
            _header(f"(2) Mott Seebeck coefficient, 7-AGNR ~{atoms} atoms, {ne} energies: autodiff vs finite differences")
            r = bench_seebeck(atoms, ne, reps_slow)
            print_seebeck(r, target=2.0 if atoms == 240 else None)
            summary["benchmarks"][f"2_seebeck_{atoms}_atoms"] = r

    if 3 in only:
        counts = (1, 10, 100) if q else (1, 10, 100, 1000, 10000)
        fixed_len = 5 if q else 500
        ne = 8 if q else 20
        _header("(3) gradient cost / forward cost vs number of on-site parameters")
        r = bench_param_scaling(counts, 20, fixed_len, ne, reps_slow)
        print_param_scaling(r)
        summary["benchmarks"]["3_param_scaling"] = r

    if 4 in only:
        _header(f"(4) time split for (1): leads vs RGF vs backward (W={W}, L={L}, {NE} energies)")
        r = bench_split(W, L, NE, reps, seebeck_energies=40 if q else 400)
        print_split(r)
        summary["benchmarks"]["4_split"] = {k: v for k, v in r.items() if not k.endswith("_text")}
        summary["benchmarks"]["4_split"]["cprofile_top"] = r["cprofile_text"].splitlines()
        if "seebeck_cprofile_text" in r:
            summary["benchmarks"]["4_split"]["seebeck_cprofile_top"] = r["seebeck_cprofile_text"].splitlines()

    if 5 in only:
        _header(f"(5) intra-op threads: forward of (1) (W={W}, L={L}, {NE} energies)")
        r = bench_threads(W, L, NE, reps)
        print_threads(r)
        summary["benchmarks"]["5_threads"] = r

    summary["total_wall_s"] = time.perf_counter() - t_start
    summary["loadavg_at_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    summary["targets"] = _targets(summary)
    _header("Targets")
    for name, t in summary["targets"].items():
        extra = f"   [from min times: {t['min']:.3f}]" if "min" in t else ""
        print(f"  {name:45s}: {t['value']:.3f} (target {t['target']}) -> {'MET' if t['met'] else 'NOT MET'}{extra}")
    print("  (values from medians; '[from min times]': the least contended estimate)")
    print(f"\n  total wall time {summary['total_wall_s']:.1f} s; load average at end: "
          f"{', '.join(f'{x:.2f}' for x in summary['loadavg_at_end'] or [])}")

    text = json.dumps(summary, indent=1, default=_json_default)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
        print(f"\n  full JSON summary written to {args.json}")
        _header("JSON summary (key results; the full summary is in the --json file)")
        print(json.dumps(_key_results(summary), indent=1, default=_json_default))
    else:
        _header("JSON summary")
        print(text)
    return 0


def _key_results(summary: dict) -> dict:
    """Medians, ratios and target verdicts only (no per-repeat times, no profiles)."""
    b = summary["benchmarks"]
    med = lambda st: round(st["median_s"], 4)  # noqa: E731
    out = {"mode": summary["mode"], "total_wall_s": round(summary["total_wall_s"], 1),
           "hardware": {k: summary["hardware"].get(k) for k in
                        ("cpu_model", "logical_cores", "torch", "torch_num_threads", "cuda_device", "git_commit")},
           "targets": summary["targets"]}
    if "1_strip" in b:
        r = b["1_strip"]
        out["1_strip"] = {"forward_s": med(r["forward"]), "forward_plus_backward_s": med(r["forward_plus_backward"]),
                          "ratio": round(r["ratio_grad_over_forward"]["ratio_of_medians"], 3),
                          "grad_check_rel_err": r["grad_check"]["rel_err"]}
    for key in ("2_seebeck_240_atoms", "2_seebeck_70_atoms"):
        if key in b:
            r = b[key]
            out[key] = {"n_atoms": r["n_atoms"], "T_only_s": med(r["T_only"]), "ad_s": med(r["ad"]),
                        "fd": {k: {"s": med(v), "max_rel_err_T_gt_0.5": v["max_rel_err_T_gt_0.5"]}
                               for k, v in r["fd"].items()}}
            if "paper" in r:
                out[key]["paper"] = {k: r["paper"][k] for k in ("ad_s", "fd_s")}
    if "3_param_scaling" in b:
        r = b["3_param_scaling"]
        out["3_param_scaling"] = {v: {str(row["n_params"]): round(row["ratio"], 3) for row in r[v]}
                                  for v in ("fixed_device", "growing_device")}
    if "4_split" in b:
        r = b["4_split"]
        out["4_split"] = {k: med(r[k]) for k in ("device_build", "leads_modes", "rgf_sweep", "caroli_trace",
                                                  "backward_only") if k in r}
        if "median_s" in r.get("leads_sancho_eta1e-6", {}):
            out["4_split"]["leads_sancho_eta1e-6"] = med(r["leads_sancho_eta1e-6"])
    if "5_threads" in b:
        out["5_threads"] = {k: (med(v) if isinstance(v, dict) else v) for k, v in b["5_threads"].items()
                            if k.startswith("threads_") or k.startswith("ratio")}
    return out


def _targets(summary: dict) -> dict:
    b = summary["benchmarks"]
    out = {}
    if "1_strip" in b:
        out["(1) forward time, s"] = {"value": b["1_strip"]["forward"]["median_s"], "target": "< 1 s",
                                      "min": b["1_strip"]["forward"]["min_s"]}
        out["(1) forward time, s"]["met"] = out["(1) forward time, s"]["value"] < 1.0
        v = b["1_strip"]["ratio_grad_over_forward"]["ratio_of_medians"]
        out["(1) (fwd+bwd)/fwd"] = {"value": v, "target": "< 3", "met": v < 3.0}
    if "2_seebeck_240_atoms" in b:
        v = b["2_seebeck_240_atoms"]["ad"]["median_s"]
        out["(2) Seebeck by autodiff, 240 atoms, s"] = {"value": v, "target": "< 2 s", "met": v < 2.0,
                                                      "min": b["2_seebeck_240_atoms"]["ad"]["min_s"]}
    if "3_param_scaling" in b:
        for variant in ("fixed_device", "growing_device"):
            rows = b["3_param_scaling"][variant]
            if rows:
                v = max(r["ratio"] for r in rows)
                out[f"(3{'a' if variant == 'fixed_device' else 'b'}) max (fwd+bwd)/fwd over p"] = {
                    "value": v, "target": "<= 3, flat", "met": v <= 3.0}
    return out


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, torch.Tensor):
        return x.tolist()
    return str(x)


if __name__ == "__main__":
    sys.exit(main())
