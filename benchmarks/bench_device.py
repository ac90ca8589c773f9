"""The engine on every torch device present: the same systems as ``bench_kwant.py`` on the CPU and, when
one is present, on CUDA; T(E) compared with the CPU to 1e-12 and forward / forward+gradient timed (issue 12).

The whole fast path (Hamiltonian, lead solver ``invdesign.negf.lead_fast``, RGF, observables) runs on
the Hamiltonian's device; only energies that fail the fast lead path's checks are solved by the exact
QZ path on the CPU (a few per cent, next to band edges), and their count is printed per case. Without a
GPU the script says so and times the CPU alone. Run from the repository root::

    python benchmarks/bench_device.py [--cases strip20,agnr7,cnt10] [--repeats 3] [--threads 1] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

import torch

from bench_kwant import ALL_CASES, make_case
from invdesign.negf import Device, Lead, lead_cache, solve
from invdesign.negf import leads as negf_leads
from timing import hardware_info, print_hardware

TOL = 1e-12


def lead_to(lead: Lead, device: torch.device) -> Lead:
    move = {f.name: getattr(lead, f.name) for f in dataclasses.fields(lead)}
    return Lead(**{k: None if v is None else v.to(device) for k, v in move.items()})


def device_to(dev: Device, device: torch.device) -> Device:
    overlap = None if dev.overlap is None else ([s.to(device) for s in dev.overlap[0]],
                                                [s.to(device) for s in dev.overlap[1]])
    return Device([b.to(device) for b in dev.blocks], [c.to(device) for c in dev.couplings],
                  lead_to(dev.left, device), lead_to(dev.right, device), overlap, dev.hermitian_atol)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int) -> tuple[float, float, object]:
    """Median wall and CPU seconds of ``repeats`` calls after one warm-up; leads solved afresh each call."""
    lead_cache.clear()
    out = fn()
    walls, cpus = [], []
    for _ in range(repeats):
        lead_cache.clear()
        sync(device)
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        sync(device)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), out


def count_fallbacks(fn) -> int:
    """Energies (x leads) that the fast lead path handed to the exact QZ path during ``fn()``."""
    calls = []
    original = negf_leads.surface_gf_modes

    def counting(*blocks, **kw):
        calls.append(blocks[0].shape[0])
        return original(*blocks, **kw)

    negf_leads.surface_gf_modes = counting
    try:
        lead_cache.clear()
        fn()
    finally:
        negf_leads.surface_gf_modes = original
    return sum(calls)


def run_case(name: str, device: torch.device, repeats: int, reference: torch.Tensor | None) -> dict:
    case = make_case(name)
    energies = case.energies.to(device)
    base = case.base.to(device)
    dev = device_to(case.device(case.base), device)

    def forward():
        with torch.no_grad():
            return solve(dev, energies).transmission()

    def gradient():
        theta = base.clone().requires_grad_(True)
        d = device_to(case.device(theta.cpu() if device.type != "cpu" else theta), device)
        solve(d, energies).transmission().sum().backward()
        return theta.grad

    fw, fc, t = timed(forward, device, repeats)
    gw, gc, _ = timed(gradient, device, repeats)
    result = {"case": name, "device": str(device), "forward_wall_s": fw, "forward_cpu_s": fc,
              "grad_wall_s": gw, "grad_cpu_s": gc, "grad_over_forward": gw / fw,
              "exact_path_energies": count_fallbacks(forward), "n_energies": len(case.energies)}
    if reference is not None:
        result["max_abs_dT_vs_cpu"] = float((t.cpu() - reference).abs().max())
        if not result["max_abs_dT_vs_cpu"] <= TOL:
            raise SystemExit(f"FAIL {name} on {device}: max |dT| vs CPU = {result['max_abs_dT_vs_cpu']:.2e}")
    result["T"] = t.cpu()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="strip20,agnr7,cnt10")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print_hardware(hardware_info())
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
        print(f"CUDA: {torch.cuda.get_device_name(0)}")
    else:
        print("no CUDA device present: timing the CPU only (the CUDA rows need a GPU machine)")
    rows = []
    for name in args.cases.split(","):
        if name not in ALL_CASES:
            raise SystemExit(f"unknown case {name!r}; choose from {ALL_CASES}")
        ref = None
        for device in devices:
            r = run_case(name, device, args.repeats, ref)
            ref = r.pop("T") if ref is None else ref
            r.pop("T", None)
            rows.append(r)
            dt = f", max|dT| vs CPU {r['max_abs_dT_vs_cpu']:.1e}" if "max_abs_dT_vs_cpu" in r else ""
            print(f"{name:8s} {r['device']:5s} forward {r['forward_wall_s']:.3f} s wall / {r['forward_cpu_s']:.3f} s "
                  f"CPU; forward+gradient {r['grad_wall_s']:.3f} s ({r['grad_over_forward']:.2f}x); exact-path "
                  f"energies {r['exact_path_energies']} of {r['n_energies']} x 2 leads{dt}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
