"""NEGF benchmark cases (1)-(3) of ``bench_negf.py``: the device builders, the square-strip forward and
gradient (1), the Seebeck coefficient of a 7-AGNR by autodiff vs finite differences (2) and the
gradient / forward cost vs the number of parameters (3). Each ``bench_*`` returns a dict that the
matching ``print_*`` prints and ``bench_negf.py`` puts into its JSON summary.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from invdesign.negf import KB_EV, Device, Lead, seebeck, solve
from invdesign.negf.lead_bands import lead_band_edges
from invdesign.tb.ribbons import armchair_ribbon_cell
from timing import fmt_stats, measure_interleaved, ratio_stats, without_last

# Reference timings from the AD-NEGF paper (Zhouyin et al.): Seebeck coefficient of a 7-AGNR at
# 400 energies, autodiff vs finite differences.
PAPER = {240: {"ad_s": 363.1, "fd_s": 512.6}, 70: {"ad_s": 71.1, "fd_s": 98.3}}
TEMPERATURE_K = 300.0
FD_STEPS = (1e-2, 1e-3, 1e-4, 1e-5)

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


@dataclasses.dataclass
class DisorderedStrip:
    """The system of benchmark (1), also timed in (4) and (5): a ``length`` x ``width`` strip with
    weak on-site disorder ``base`` (L, W) and midpoint energies in (-3.5, 3.5) eV."""

    h00: torch.Tensor
    h01: torch.Tensor
    left: Lead
    right: Lead
    energies: torch.Tensor
    base: torch.Tensor
    gen: torch.Generator  # continues the random stream that drew ``base``

    @classmethod
    def make(cls, width: int, length: int, n_energies: int, seed: int = 0) -> "DisorderedStrip":
        h00, h01, left, right = square_strip(width)
        energies = midpoint_grid(-3.5, 3.5, n_energies)
        gen = torch.Generator().manual_seed(seed)
        # Weak Anderson disorder (uniform in [-0.25, 0.25] eV) so that the gradient is not trivially zero
        # (for a clean strip T is at a maximum and dT/d eps = 0); the cost does not depend on the values.
        base = 0.5 * (torch.rand(length, width, generator=gen, dtype=torch.float64) - 0.5)
        return cls(h00, h01, left, right, energies, base, gen)

    def device(self, onsite: torch.Tensor | None = None) -> Device:
        """The device with on-site energies ``onsite`` (default ``base``)."""
        return strip_device(self.h00, self.h01, self.left, self.right, self.base if onsite is None else onsite)

    def transmission_for(self, onsite: torch.Tensor | None = None) -> torch.Tensor:
        return solve(self.device(onsite), self.energies).transmission()

    def forward(self) -> torch.Tensor:
        """T(E) without autograd."""
        with torch.no_grad():
            return self.transmission_for()

    def gradient(self) -> torch.Tensor:
        """Gradient of sum_E T(E) w.r.t. all on-site energies (forward + backward)."""
        theta = self.base.clone().requires_grad_(True)
        self.transmission_for(theta).sum().backward()
        return theta.grad


# ----------------------------------------------------------------------------------------------
# benchmark 1: strip forward / gradient
# ----------------------------------------------------------------------------------------------


def bench_strip(width, length, n_energies, repeats, seed=0) -> dict:
    s = DisorderedStrip.make(width, length, n_energies, seed)

    def forward_with_graph():
        theta = s.base.clone().requires_grad_(True)
        return s.transmission_for(theta).detach()

    res = measure_interleaved({"forward": s.forward, "forward_graph": forward_with_graph, "gradient": s.gradient},
                              repeats)
    t_e = res["forward"]["last"]
    grad = res["gradient"]["last"]
    # correctness spot check: directional derivative by central differences
    d = torch.randn(length, width, generator=s.gen, dtype=torch.float64)
    h = 1e-5
    with torch.no_grad():
        tp = s.transmission_for(s.base + h * d).sum()
        tm = s.transmission_for(s.base - h * d).sum()
    fd = float((tp - tm) / (2 * h))
    ad = float((grad * d).sum())
    return {
        "system": f"square strip W={width}, L={length} ({width * length} sites), t=-1 eV, "
                  f"{n_energies} energies (midpoints of (-3.5, 3.5) eV)",
        "n_params": width * length,
        "forward": without_last(res["forward"]),
        "forward_with_graph": without_last(res["forward_graph"]),
        "forward_plus_backward": without_last(res["gradient"]),
        "ratio_grad_over_forward": ratio_stats(res, "gradient", "forward"),
        "ratio_grad_over_forward_with_graph": ratio_stats(res, "gradient", "forward_graph"),
        "T_range": [float(t_e.min()), float(t_e.max())],
        "grad_check": {"directional_ad": ad, "directional_fd_h1e-5": fd,
                       "rel_err": abs(ad - fd) / max(abs(fd), 1e-300)},
    }


def print_strip(r: dict, fwd_target=1.0, ratio_target=3.0) -> None:
    print(f"  system               : {r['system']}")
    print(f"  forward T(E)         : {fmt_stats(r['forward'])}   (no_grad; target < {fwd_target} s: "
          f"{'MET' if r['forward']['median_s'] < fwd_target else 'NOT MET'})")
    print(f"  forward, graph kept  : {fmt_stats(r['forward_with_graph'])}")
    print(f"  forward + backward   : {fmt_stats(r['forward_plus_backward'])}   (grad of sum T w.r.t. "
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
    cell = armchair_ribbon_cell(7)
    n_cell = cell.h00.shape[-1]
    cells = max(1, round(n_atoms_target / n_cell))
    gen = torch.Generator().manual_seed(seed)
    onsite = 1.0 * (torch.rand(cells, n_cell, generator=gen, dtype=torch.float64) - 0.5)
    return cell.device(cells, onsite=onsite), cells


def bench_seebeck(n_atoms_target, n_energies, repeats, steps=FD_STEPS, seed=1) -> dict:
    cell = armchair_ribbon_cell(7)
    n_cell = cell.h00.shape[-1]
    dev, cells = agnr_device(n_atoms_target, seed)
    energies = midpoint_grid(-2.0, 2.0, n_energies)
    edges = lead_band_edges(cell.leads()[1])
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
        "T_only": without_last(res["T_only"]),
        "ad": without_last(res["ad"]),
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
            **without_last(res[k]),
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
    print(f"  T(E) alone (no_grad) : {fmt_stats(r['T_only'])}")
    line = f"  Seebeck, autodiff    : {fmt_stats(r['ad'])}"
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
            q = ratio_stats(res, "gradient", "forward")
            rows[variant].append({
                "n_params": p, "L": length, "W": width, "sites": length * width,
                "forward": without_last(res["forward"]), "forward_plus_backward": without_last(res["gradient"]),
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
