"""NEGF benchmarks (4) and (5) of ``bench_negf.py``: where the time of benchmark (1) goes (lead
self-energies, RGF sweep, Caroli trace, backward; cProfile and torch-profiler tables) and the
forward of (1) with different intra-op thread settings (one of them in a child process).
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import platform
import pstats
import subprocess
import sys
import time

import torch

from invdesign.negf import seebeck, solve
from invdesign.negf import rgf
from invdesign.negf.self_energies import lead_self_energies
from invdesign.negf.leads import self_energy_z
from negf_cases import TEMPERATURE_K, DisorderedStrip, agnr_device, midpoint_grid
from timing import fmt_stats, least_busy, measure_interleaved, ratio_stats, time_stats, without_last

# the script whose ``--child-forward`` mode runs :func:`child_forward`
BENCH_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_negf.py")

# ----------------------------------------------------------------------------------------------
# benchmark 4: where the time goes (benchmark 1 system)
# ----------------------------------------------------------------------------------------------


def bench_split(width, length, n_energies, repeats, profile_rows=18, seed=0, seebeck_energies=400) -> dict:
    s = DisorderedStrip.make(width, length, n_energies, seed)
    energies, base, left, right = s.energies, s.base, s.left, s.right
    z = energies.to(torch.complex128)
    dev = s.device()
    with torch.no_grad():
        sol = solve(dev, energies)

    # Time the lead path that solve() itself takes (e.g. one QZ per energy for mirror-image leads)
    # when the engine exposes it; otherwise the two leads one after the other.
    lead_path = "self_energies.lead_self_energies (path used by solve)"

    def leads_modes():
        with torch.no_grad():
            return lead_self_energies(dev, z, "modes", torch.complex128)

    def build_device():
        return s.device()

    def rgf_sweep():
        with torch.no_grad():
            return rgf.last_first_block(sol.diag, sol.up, sol.down)

    g = sol.g_last_first

    def caroli():
        with torch.no_grad():
            return torch.einsum("...ab,...bc,...cd,...ad->...", sol.gamma_right, g, sol.gamma_left, g.conj()).real

    def backward_only():
        theta = base.clone().requires_grad_(True)
        t = s.transmission_for(theta)
        t0 = time.perf_counter()
        t.sum().backward()
        return time.perf_counter() - t0

    res = measure_interleaved({"leads_modes": leads_modes, "device_build": build_device, "rgf_sweep": rgf_sweep,
                               "caroli_trace": caroli}, repeats)
    bw = [backward_only() for _ in range(repeats)]
    out = {k: without_last(v) for k, v in res.items()}
    out["lead_path_timed"] = lead_path
    out["backward_only"] = time_stats(bw)

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
        out["leads_sancho_eta1e-6"] = without_last(r2["leads_sancho"])
        out["leads_sancho_eta1e-6"]["max_abs_diff_vs_modes_eV"] = float((sig_s - sig_m).abs().max())
    except Exception as exc:  # ConvergenceError or anything else: report, do not abort the run
        out["leads_sancho_eta1e-6"] = {"error": f"{type(exc).__name__}: {exc}"[:200]}

    # cProfile of one forward + backward (the least contended of a few tries)
    fwd_bwd = s.gradient
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

        tp, busy = least_busy(torch_prof)
        out["torch_profiler_text"] = tp.key_averages().table(sort_by="self_cpu_time_total", row_limit=profile_rows,
                                                             max_name_column_width=40)
        out["torch_profiler_others_busy"] = busy
    except Exception as exc:  # profiler unavailable: not fatal
        out["torch_profiler_text"] = f"(torch profiler failed: {exc})"
    return out


ENGINE_FUNCTIONS = ("solve", "transmission", "seebeck", "lead_self_energies", "surface_gf_modes", "lead_modes",
                    "_qz", "_classify", "_simple_modes", "_mode_space", "_reordered_basis", "_gf_from_modes",
                    "last_first_block", "_implicit_vjp", "_solve_stein", "backward", "grad", "run_backward")


def _cprofile(fn, rows: int):
    """cProfile of ``fn()``: (top-``rows`` text by own time, {engine function: times}, busy fraction)."""
    def run():
        prof = cProfile.Profile()
        prof.enable()
        fn()
        prof.disable()
        return prof

    prof, busy = least_busy(run)
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
        print(f"  {label:38s}: {fmt_stats(r[k])}  {100 * r[k]['median_s'] / total:5.1f} % of forward parts")
    print(f"  {'':38s}  (lead path timed: {r['lead_path_timed']})")
    print(f"  {'backward() alone':38s}: {fmt_stats(r['backward_only'])}")
    s = r["leads_sancho_eta1e-6"]
    if "error" in s:
        print(f"  {'lead self-energies, torch Sancho':38s}: failed: {s['error']}")
    else:
        print(f"  {'lead self-energies, torch Sancho':38s}: {fmt_stats(s)}  (2 leads, eta = 1e-6 eV, batched over energies; "
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
    s = DisorderedStrip.make(width, length, n_energies, seed)
    default = torch.get_num_threads()

    def fwd(nthreads):
        def run():
            torch.set_num_threads(nthreads)
            try:
                return s.forward()
            finally:
                torch.set_num_threads(default)
        return run

    fns = {f"threads_{default}": fwd(default)}
    if default != 1:
        fns["threads_1"] = fwd(1)
    res = measure_interleaved(fns, repeats)
    out = {k: without_last(v) for k, v in res.items()}
    out["default_threads"] = default
    if default != 1:
        out["ratio_1_over_default"] = ratio_stats(res, "threads_1", f"threads_{default}")["ratio_of_medians"]
        # OpenMP threads busy-wait by default; on a loaded machine that can cost more than the second
        # thread gains. OMP_WAIT_POLICY must be set before torch starts: measure in a child process.
        if "OMP_WAIT_POLICY" not in os.environ:
            env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
            cmd = [sys.executable, BENCH_SCRIPT, "--child-forward",
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
    s = DisorderedStrip.make(width, length, n_energies, seed)
    print(json.dumps(without_last(measure_interleaved({"f": s.forward}, repeats)["f"])))


def print_threads(r: dict) -> None:
    for k, v in r.items():
        if k.startswith("threads_"):
            label = k.replace("threads_", "threads = ").replace("_omp_passive", ", OMP_WAIT_POLICY=PASSIVE")
            print(f"  forward, {label:38s}: {fmt_stats(v)}")
    if "ratio_1_over_default" in r:
        print(f"  time(1 thread) / time({r['default_threads']} threads) = {r['ratio_1_over_default']:.2f}")
    if "ratio_passive_over_default" in r:
        print(f"  (child process, OMP_WAIT_POLICY=PASSIVE, {r['default_threads']} threads): "
              f"time / default = {r['ratio_passive_over_default']:.2f}")
    if "omp_passive_error" in r:
        print(f"  OMP_WAIT_POLICY=PASSIVE child run failed: {r['omp_passive_error']}")
