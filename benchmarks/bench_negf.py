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

Modules: ``timing.py`` (measurement and hardware helpers, shared with the other benchmark scripts),
``negf_cases.py`` (the systems and benchmarks 1-3), ``negf_profile.py`` (benchmarks 4-5); this
script keeps the command line, the targets and the summary.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling modules, also when imported
import timing  # noqa: E402
from negf_cases import (bench_param_scaling, bench_seebeck, bench_strip, print_param_scaling,  # noqa: E402
                        print_seebeck, print_strip)
from negf_profile import bench_split, bench_threads, child_forward, print_split, print_threads  # noqa: E402
from timing import header, hardware_info, print_hardware  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short smoke run (small sizes, 1 repeat)")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per measurement (after 1 warm-up)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads before running")
    ap.add_argument("--json", metavar="PATH", default=None, help="also write the JSON summary to PATH")
    ap.add_argument("--only", default="1,2,3,4,5", help="comma-separated benchmark numbers to run (default all)")
    ap.add_argument("--max-busy", type=float, default=timing.MAX_BUSY,
                    help="redo a timing round when other processes used more than this share of all CPUs "
                         f"during it (default {timing.MAX_BUSY}; 1 disables)")
    ap.add_argument("--max-retries", type=int, default=None,
                    help="redone rounds allowed per measurement (default 2 x repeats)")
    ap.add_argument("--child-forward", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    timing.set_busy_limits(args.max_busy, args.max_retries)
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
               "max_busy": args.max_busy, "hardware": info, "benchmarks": {}}
    t_start = time.perf_counter()

    W, L, NE = (20, 40, 20) if q else (20, 200, 100)
    if 1 in only:
        header("(1) square-lattice strip: forward T(E) and gradient w.r.t. all on-site energies")
        r = bench_strip(W, L, NE, reps)
        print_strip(r)
        summary["benchmarks"]["1_strip"] = r

    if 2 in only:
        ne = 40 if q else 400
        for atoms in (240, 70):
            header(f"(2) Mott Seebeck coefficient, 7-AGNR ~{atoms} atoms, {ne} energies: autodiff vs finite differences")
            r = bench_seebeck(atoms, ne, reps_slow)
            print_seebeck(r, target=2.0 if atoms == 240 else None)
            summary["benchmarks"][f"2_seebeck_{atoms}_atoms"] = r

    if 3 in only:
        counts = (1, 10, 100) if q else (1, 10, 100, 1000, 10000)
        fixed_len = 5 if q else 500
        ne = 8 if q else 20
        header("(3) gradient cost / forward cost vs number of on-site parameters")
        r = bench_param_scaling(counts, 20, fixed_len, ne, reps_slow)
        print_param_scaling(r)
        summary["benchmarks"]["3_param_scaling"] = r

    if 4 in only:
        header(f"(4) time split for (1): leads vs RGF vs backward (W={W}, L={L}, {NE} energies)")
        r = bench_split(W, L, NE, reps, seebeck_energies=40 if q else 400)
        print_split(r)
        summary["benchmarks"]["4_split"] = {k: v for k, v in r.items() if not k.endswith("_text")}
        summary["benchmarks"]["4_split"]["cprofile_top"] = r["cprofile_text"].splitlines()
        if "seebeck_cprofile_text" in r:
            summary["benchmarks"]["4_split"]["seebeck_cprofile_top"] = r["seebeck_cprofile_text"].splitlines()

    if 5 in only:
        header(f"(5) intra-op threads: forward of (1) (W={W}, L={L}, {NE} energies)")
        r = bench_threads(W, L, NE, reps)
        print_threads(r)
        summary["benchmarks"]["5_threads"] = r

    summary["total_wall_s"] = time.perf_counter() - t_start
    summary["loadavg_at_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    summary["targets"] = _targets(summary)
    header("Targets")
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
        header("JSON summary (key results; the full summary is in the --json file)")
        print(json.dumps(_key_results(summary), indent=1, default=_json_default))
    else:
        header("JSON summary")
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
