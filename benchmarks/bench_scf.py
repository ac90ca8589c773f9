#!/usr/bin/env python
"""Benchmark of the self-consistent Poisson-NEGF loop and its implicit gradient (``invdesign.scf``).

Run from the repository root with the virtual environment active:

    python benchmarks/bench_scf.py               # default device, 3 repeats
    python benchmarks/bench_scf.py --repeats 5 --threads 1 --json out.json
    python benchmarks/bench_scf.py --quick       # small 1D device, 1 repeat (smoke test)

What is timed (wall clock, ``time.perf_counter``, median [min, max] of ``--repeats`` runs after one
warm-up run that also builds the Poisson kernel and the contact data):

  forward   one bias point of the default device (``invdesign.scf.examples.default_fet``: 12-AGNR
            double-gate FET, 50 unit cells = 1200 pz orbitals, 15-cell n+ contacts, V_gs = 0.2 V,
            V_ds = 0.1 V, 300 K): the self-consistent loop from a cold start (tolerance 1e-6 V) plus
            the drain current (400 energies).
  gradient  d I_d / d (doping of each of the 50 cells) by the implicit adjoint: the backward pass only.
The ratio gradient / forward is the target quantity (< 3). Also reported: loop iterations (NEGF
charge evaluations), adjoint GMRES iterations, and the gradient's agreement with a central finite
difference on one cell.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time

import torch

from invdesign.scf import bias_point
from invdesign.scf.examples import chain_fet, default_fet
from timing import cpu_model

VG, VD = 0.2, 0.1


def _device(quick: bool):
    if quick:
        fet = chain_fet(source=20, channel=10, drain=20)
        cell = torch.arange(fet.channel.num_orbitals)
        return fet, cell, fet.doping.clone()
    fet, cell = default_fet()
    profile = torch.zeros(int(cell.max()) + 1, dtype=torch.float64)
    profile[:15] = 5e-3
    profile[-15:] = 5e-3
    return fet, cell, profile


def run_once(fet, cell, profile):
    p = profile.clone().requires_grad_(True)
    fet.doping = p[cell]
    t0, c0 = time.perf_counter(), time.process_time()
    bp = bias_point(fet, VG, VD)
    current = bp.current()
    t1, c1 = time.perf_counter(), time.process_time()
    (grad,) = torch.autograd.grad(current, p)
    t2, c2 = time.perf_counter(), time.process_time()
    return {"forward_s": t1 - t0, "gradient_s": t2 - t1, "forward_cpu_s": c1 - c0, "gradient_cpu_s": c2 - c1,
            "iterations": bp.result.iterations,
            "adjoint_iterations": len(fet.last_adjoint_history), "current_A": float(current.detach()), "grad": grad}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    fet, cell, profile = _device(args.quick)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS')}, cpu '{cpu_model()}', "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    print(f"device: {fet.channel.num_orbitals} orbitals in {len(fet.channel.slice_sizes)} slices, "
          f"{len(profile)} doping parameters")
    t = time.perf_counter()
    warm = run_once(fet, cell, profile)  # builds the Poisson kernel, contact and bulk data
    print(f"warm-up (incl. setup): {time.perf_counter() - t:.2f} s")
    runs = [run_once(fet, cell, profile) for _ in range(args.repeats)]
    fwd = [r["forward_s"] for r in runs]
    grd = [r["gradient_s"] for r in runs]
    ratio = [g / f for f, g in zip(fwd, grd)]

    def fmt(x):
        return f"{statistics.median(x):.3f} [{min(x):.3f}, {max(x):.3f}]"

    # one finite-difference check of the gradient (central, on a contact-edge cell)
    k = 14 if not args.quick else 5
    h = 1e-5
    fet.options = dataclasses.replace(fet.options, tol_v=1e-10)  # FD needs a tight loop
    with torch.no_grad():
        values = []
        for sign in (1, -1):
            q = profile.clone()
            q[k] += sign * h
            fet.doping = q[cell]
            values.append(float(bias_point(fet, VG, VD).current()))
    fd = (values[0] - values[1]) / (2 * h)
    ad = float(warm["grad"][k])
    summary = {
        "forward_s": statistics.median(fwd), "gradient_s": statistics.median(grd),
        "forward_cpu_s": statistics.median(r["forward_cpu_s"] for r in runs),
        "gradient_cpu_s": statistics.median(r["gradient_cpu_s"] for r in runs),
        "gradient_over_forward": statistics.median(ratio), "iterations": runs[0]["iterations"],
        "adjoint_gmres_iterations": runs[0]["adjoint_iterations"], "current_A": runs[0]["current_A"],
        "fd_check_cell": k, "grad_ad": ad, "grad_fd": fd, "fd_relative_difference": abs(ad - fd) / abs(fd),
        "threads": torch.get_num_threads(), "processor": cpu_model(),
    }
    print(f"forward  (SCF + current): {fmt(fwd)} s wall, {fmt([r['forward_cpu_s'] for r in runs])} s CPU, "
          f"{runs[0]['iterations']} NEGF charge evaluations")
    print(f"gradient (implicit, 50 cells): {fmt(grd)} s wall, {fmt([r['gradient_cpu_s'] for r in runs])} s CPU, "
          f"{runs[0]['adjoint_iterations']} adjoint GMRES iterations")
    print(f"gradient / forward: {fmt(ratio)}   (target < 3)")
    print(f"I_d = {runs[0]['current_A']:.4e} A;  dI/dN[{k}]: implicit {ad:.6e}, finite difference {fd:.6e} "
          f"(relative difference {summary['fd_relative_difference']:.1e})")
    print(json.dumps(summary))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(summary, fh, indent=2)


if __name__ == "__main__":
    main()
