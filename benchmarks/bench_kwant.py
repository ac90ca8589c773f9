"""invdesign vs Kwant, side by side in one run: T(E) of the same systems, timed alternately (issue 12).

Kwant runs in its own Python (``--kwant-python``) in a child process (``kwant_worker.py``), which
builds the system with Kwant's own lattices and times ``kwant.smatrix(fsyst, E, in_leads=[0],
out_leads=[1]).transmission(1, 0)`` over the energies (Kwant's cheapest call for T, ~10 % faster here
than the full scattering matrix, which ``--kwant-full-smatrix`` times instead). This process builds
the same system with the repo's builders (``negf_cases.py``, ``invdesign.tb``) and times
``invdesign.negf.solve(device, energies).transmission()`` (forward, no autograd) and forward +
gradient of sum_E T(E) w.r.t. all device on-site energies. One round runs every timed call once (the
order flips every round); after one warm-up round, ``--repeats`` rounds give the medians of wall and
CPU time (``time.process_time`` of the process doing the work). Every round checks
max_E |T_ours - T_kwant| <= 1e-10, and the script exits with an error otherwise.

Systems (weak on-site disorder in the device, so that a device of the wrong length or a misplaced
site could not agree by accident; the leads are pristine):

- ``stripW`` (W = 10, 20, 40, 80): nearest-neighbour square lattice, t = -1 eV, L = 200 slices
  (``negf_cases.DisorderedStrip``, disorder U(-0.25, 0.25) eV), 100 energies in (-3.5, 3.5) eV;
  Kwant: ``kwant.lattice.square``.
- ``agnr7``: 7-AGNR, NN pz t = -2.7 eV, 17 cells = 238 atoms (``negf_cases.agnr_device``, disorder
  U(-0.5, 0.5) eV), 400 energies in (-2, 2) eV.
- ``cnt10``: (10,0) carbon nanotube, NN pz, 12 cells = 480 atoms (``invdesign.tb.builders.nanotube``),
  disorder U(-0.5, 0.5) eV, 100 energies in (-3, 3) eV.
  For both carbon systems Kwant gets the atom positions of one cell and finds the bonds itself
  (all pairs closer than 1.3 a_CC).

Energies: ``lo + (i + g) (hi - lo) / n``, g = (sqrt 5 - 1) / 2, so no point sits on a lead band
edge (the smallest distance to the leads' band extrema is printed). Ours are cold runs: when
``invdesign.negf.lead_cache`` exists it is cleared before each timed call (Kwant recomputes its lead
modes at every call too); a warm forward (leads reused) is timed beside it.

Installing Kwant 1.5.0 (its own venv, outside the repo; a plain ``pip install kwant`` fails)::

    apt-get install -y libmumps-seq-dev
    python3 -m venv /work/kwant-venv
    /work/kwant-venv/bin/pip install "numpy==1.26.4" "scipy==1.13.1" tinyarray cython setuptools wheel
    /work/kwant-venv/bin/pip install --no-build-isolation kwant==1.5.0

The worker runs with ``OPENBLAS_NUM_THREADS=1`` (also OMP/MKL); ``--threads`` (default 1) sets
torch.set_num_threads and the BLAS thread variables of this process. Run::

    python benchmarks/bench_kwant.py --kwant-python /work/kwant-venv/bin/python [--cases strip20,agnr7]
        [--repeats 5] [--threads 1] [--json OUT] [--kwant-full-smatrix]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import subprocess
import sys
import time
from typing import Callable

ALL_CASES = ("strip10", "strip20", "strip40", "strip80", "agnr7", "cnt10")
TOL = 1e-10
GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kwant_worker.py")
BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kwant-python", required=True, help="python of a venv that has Kwant 1.5")
    p.add_argument("--cases", default=",".join(ALL_CASES), help=f"comma-separated subset of {ALL_CASES}")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="torch / BLAS threads of this process")
    p.add_argument("--json", metavar="OUT", help="write the results to this file")
    p.add_argument("--kwant-full-smatrix", action="store_true",
                   help="time kwant.smatrix(fsyst, E) (all leads) instead of in_leads=[0], out_leads=[1]")
    return p.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    for _var in BLAS_VARS:  # before numpy / torch start their thread pools
        os.environ[_var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from invdesign.negf import Device, Lead, solve  # noqa: E402
from invdesign.negf.lead_bands import lead_band_edges  # noqa: E402
from invdesign.tb.builders import nanotube  # noqa: E402
from invdesign.tb.ribbons import ACC_NM, T_EV, armchair_ribbon_cell, periodic_cell  # noqa: E402
from negf_cases import DisorderedStrip, agnr_device  # noqa: E402
from timing import busy_seconds, fmt_stats, hardware_info, header, print_hardware, time_stats  # noqa: E402

try:
    from invdesign.negf import lead_cache
except ImportError:  # older engine: nothing is reused between calls
    lead_cache = None


@dataclasses.dataclass
class Case:
    """One system: our device as a function of the on-site energies, and the same system for Kwant."""

    name: str
    description: str
    energies: torch.Tensor
    base: torch.Tensor  # (slices, orbitals per slice) on-site energies of the device, eV
    device: Callable[[torch.Tensor], Device]
    kwant: dict  # the worker's "build" command
    h00: torch.Tensor  # lead cell, for the band-edge distance
    h01: torch.Tensor


def offset_grid(lo: float, hi: float, n: int) -> torch.Tensor:
    """``n`` energies in (lo, hi), offset by the golden fraction of a step (never on a band edge)."""
    return lo + (torch.arange(n, dtype=torch.float64) + GOLDEN) * (hi - lo) / n


def make_case(name: str) -> Case:
    if name.startswith("strip"):
        width, length, n_e = int(name[5:]), 200, 100
        s = DisorderedStrip.make(width, length, n_e)
        return Case(name, f"square strip W={width}, L={length} ({width * length} sites), t=-1 eV, {n_e} energies "
                    "in (-3.5, 3.5) eV", offset_grid(-3.5, 3.5, n_e), s.base, s.device,
                    {"kind": "square", "width": width, "length": length, "t": -1.0, "onsite": s.base.tolist()},
                    s.h00, s.h01)
    if name == "agnr7":
        cell, n_e = armchair_ribbon_cell(7), 400
        dev, cells = agnr_device(238)
        base = torch.stack([b.diagonal() - cell.h00.diagonal() for b in dev.blocks])
        desc = f"7-AGNR, {cells} cells = {base.numel()} atoms, NN pz t={T_EV} eV, {n_e} energies in (-2, 2) eV"
        grid = offset_grid(-2.0, 2.0, n_e)
    elif name == "cnt10":
        cell, cells, n_e = periodic_cell(nanotube(10, 0)), 12, 100
        gen = torch.Generator().manual_seed(3)
        base = 1.0 * (torch.rand(cells, cell.h00.shape[0], generator=gen, dtype=torch.float64) - 0.5)
        desc = f"(10,0) CNT, {cells} cells = {base.numel()} atoms, NN pz t={T_EV} eV, {n_e} energies in (-3, 3) eV"
        grid = offset_grid(-3.0, 3.0, n_e)
    else:
        raise SystemExit(f"unknown case {name!r}; choose from {ALL_CASES}")
    spec = {"kind": "wire", "positions": cell.positions.tolist(), "period": cell.period, "t": T_EV,
            "cutoff": 1.3 * ACC_NM, "onsite": base.tolist()}
    return Case(name, desc, grid, base, lambda onsite: cell.device(base.shape[0], onsite=onsite), spec,
                cell.h00, cell.h01)


class KwantWorker:
    """``kwant_worker.py`` under the Kwant python, one JSON line per command."""

    def __init__(self, python: str):
        env = dict(os.environ, **{v: "1" for v in BLAS_VARS})
        self.proc = subprocess.Popen([python, WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env, cwd=os.path.dirname(WORKER))

    def call(self, cmd: str, **kw) -> dict:
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the Kwant worker died (exit code {self.proc.poll()}); see its stderr above")
        out = json.loads(line)
        if "error" in out:
            raise SystemExit(f"Kwant worker, command {cmd!r}: {out['error']}")
        return out

    def close(self) -> None:
        self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def measure(fn: Callable[[], object], cold: bool, external: bool) -> tuple[float, float, float | None, object]:
    """``(wall, cpu, other_cpu_frac, result)`` of ``fn()``; ``cold``: clear the lead memo first.

    ``external``: ``fn`` returns ``(result, wall, cpu)`` measured in the Kwant worker; those are used, and
    the worker's CPU is not counted as "other processes" in ``other_cpu_frac``.
    """
    if cold and lead_cache is not None:
        lead_cache.clear()
    gc.collect()
    b0, c0, t0 = busy_seconds(), time.process_time(), time.perf_counter()
    out = fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    b1 = busy_seconds()
    used = cpu
    if external:
        out, wall_w, cpu_w = out
        used, wall, cpu = cpu + cpu_w, wall_w, cpu_w
    other = None
    if b0 is not None and wall > 0.05:
        other = max(0.0, (b1 - b0 - used) / (wall * (os.cpu_count() or 1)))
    return wall, cpu, other, out


def run_case(case: Case, worker: KwantWorker, repeats: int, full_smatrix: bool = False) -> dict:
    built = worker.call("build", **case.kwant)
    energies = case.energies.tolist()
    dev = case.device(case.base)
    n_orb = sum(dev.slice_sizes)
    if built["sites"] != n_orb:
        raise SystemExit(f"{case.name}: Kwant's scattering region has {built['sites']} sites, ours {n_orb} orbitals")

    def forward():
        with torch.no_grad():
            return solve(dev, case.energies).transmission()

    def gradient():
        theta = case.base.clone().requires_grad_(True)
        solve(case.device(theta), case.energies).transmission().sum().backward()
        return theta.grad

    def kwant():
        out = worker.call("run", energies=energies, full=full_smatrix)
        return np.asarray(out["T"]), float(out["wall_s"]), float(out["cpu_s"])

    fns = {"ours_forward": (forward, True, False), "ours_forward_plus_gradient": (gradient, True, False),
           "kwant": (kwant, False, True)}
    if lead_cache is not None:
        fns["ours_forward_leads_reused"] = (forward, False, False)
    wall = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    other = {k: [] for k in fns}
    max_dt = 0.0
    for r in range(repeats + 1):  # round 0: warm-up
        names = list(fns) if r % 2 == 0 else list(fns)[::-1]
        res = {}
        for k in names:
            w, c, o, res[k] = measure(*fns[k])
            if r > 0:
                wall[k].append(w)
                cpu[k].append(c)
                if o is not None:
                    other[k].append(o)
        for k in ("ours_forward", "ours_forward_leads_reused"):
            if k in res:
                dt = float(np.max(np.abs(res[k].numpy() - res["kwant"])))
                max_dt = max(max_dt, dt)
                if not dt <= TOL:
                    raise SystemExit(f"FAIL {case.name}: max |T_ours - T_kwant| = {dt:.3e} > {TOL:g} ({k}, round {r})")
    t_k = res["kwant"]
    edges = lead_band_edges(Lead(case.h00, case.h01))
    e = case.energies.numpy()
    stats = {k: {"wall": time_stats(wall[k], other[k]), "cpu": time_stats(cpu[k])} for k in fns}
    med = {k: (stats[k]["wall"]["median_s"], stats[k]["cpu"]["median_s"]) for k in fns}
    return {
        "system": case.description, "orbitals": n_orb, "n_energies": len(e), "kwant_build": built,
        "min_distance_to_lead_band_extrema_eV": float(np.min(np.abs(e[:, None] - edges[None, :]))),
        "T_range": [float(t_k.min()), float(t_k.max())], "max_abs_dT": max_dt,
        "times": stats,
        "kwant_over_ours_wall": med["kwant"][0] / med["ours_forward"][0],
        "kwant_over_ours_cpu": med["kwant"][1] / med["ours_forward"][1],
        "gradient_over_forward_wall": med["ours_forward_plus_gradient"][0] / med["ours_forward"][0],
        "gradient_over_forward_cpu": med["ours_forward_plus_gradient"][1] / med["ours_forward"][1],
    }


def print_case(name: str, r: dict) -> None:
    header(f"{name}: {r['system']}")
    print(f"  Kwant system          : {r['kwant_build']['sites']} sites, {r['kwant_build']['hoppings']} hoppings "
          f"(ours: {r['orbitals']} orbitals); T(E) in {r['T_range'][0]:.3f} .. {r['T_range'][1]:.3f}")
    print(f"  energies              : {r['n_energies']}, closest to a lead band extremum: "
          f"{r['min_distance_to_lead_band_extrema_eV']:.2e} eV")
    for k, st in r["times"].items():
        print(f"  {k:28s} wall {fmt_stats(st['wall'])}")
        print(f"  {'':28s} CPU  {fmt_stats(st['cpu'])}")
    print(f"  Kwant / ours (forward): wall {r['kwant_over_ours_wall']:.2f}x, CPU {r['kwant_over_ours_cpu']:.2f}x")
    print(f"  (fwd + grad) / fwd    : wall {r['gradient_over_forward_wall']:.2f}, "
          f"CPU {r['gradient_over_forward_cpu']:.2f}")
    print(f"  max |T_ours - T_kwant|: {r['max_abs_dT']:.2e}  (tolerance {TOL:g}: OK)")


def print_summary(results: dict) -> None:
    header("Summary (medians; wall / CPU seconds; Kwant/ours > 1: we are faster)")
    print(f"  {'case':8s} {'orb':>5s} {'nE':>4s} {'ours fwd':>15s} {'Kwant':>15s} {'Kwant/ours':>13s} "
          f"{'fwd+grad':>15s} {'grad/fwd':>11s} {'max|dT|':>9s}")
    for name, r in results.items():
        t = r["times"]

        def wc(k: str) -> str:
            return f"{t[k]['wall']['median_s']:.3f}/{t[k]['cpu']['median_s']:.3f}"

        print(f"  {name:8s} {r['orbitals']:5d} {r['n_energies']:4d} {wc('ours_forward'):>15s} {wc('kwant'):>15s} "
              f"{r['kwant_over_ours_wall']:6.2f}/{r['kwant_over_ours_cpu']:<6.2f} "
              f"{wc('ours_forward_plus_gradient'):>15s} {r['gradient_over_forward_wall']:5.2f}/"
              f"{r['gradient_over_forward_cpu']:<5.2f} {r['max_abs_dT']:9.1e}")


def main(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    cases = [make_case(n) for n in names]  # fail on an unknown name before starting anything
    info = hardware_info()
    print_hardware(info)
    worker = KwantWorker(args.kwant_python)
    try:
        kinfo = worker.call("info")
        print(f"  Kwant (worker)       : kwant {kinfo['kwant']}, python {kinfo['python']}, numpy {kinfo['numpy']}, "
              f"scipy {kinfo['scipy']}, solver {kinfo['solver']}, {kinfo['env']}")
        print(f"  this process         : torch threads {torch.get_num_threads()}, "
              f"{ {v: os.environ.get(v) for v in BLAS_VARS} }, lead cache "
              f"{'cleared before each cold run' if lead_cache else 'absent'}; repeats {args.repeats}; Kwant "
              f"{'full smatrix' if args.kwant_full_smatrix else 'smatrix(in_leads=[0], out_leads=[1])'}")
        results = {}
        for case in cases:
            results[case.name] = run_case(case, worker, args.repeats, args.kwant_full_smatrix)
            print_case(case.name, results[case.name])
            sys.stdout.flush()
    finally:
        worker.close()
    print_summary(results)
    summary = {"hardware": info, "kwant": kinfo, "threads": args.threads, "repeats": args.repeats,
               "kwant_full_smatrix": args.kwant_full_smatrix,
               "tolerance": TOL, "cases": results}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
        print(f"\nresults written to {args.json}")
    return summary


if __name__ == "__main__":
    main(ARGS)
