"""AD-NEGF application 1: differential quantities of a 7-AGNR by autodiff vs finite differences.

Seebeck coefficient ``S = -(pi^2 kB^2 T / 3e) d ln T / dE`` at 400 energies and differential
conductance dI/dV at a few biases, for devices of ~70 and ~240 carbon atoms (the paper's sizes), with
the paper's graphene model (3rd neighbours + overlap, TNN_Reich2002) and a weak on-site disorder so that
T(E) is smooth (not integer steps). Autodiff (AD) against central finite differences (FD) with steps
1e-2 .. 1e-5: accuracy (vs AD) and time, medians of repeats, measured side by side in one run.

Run: ``python benchmarks/bench_differential.py [--out results/paper_differential] [--repeats 3]``.
Writes ``table.md`` and ``seebeck.png`` there.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import time

import torch

from invdesign.negf import current, differential_conductance, seebeck, solve
from invdesign.tb import armchair_ribbon, tables, two_terminal, wire
from timing import cpu_model

TEMPERATURE_K = 300.0
N_ENERGIES = 400
E_WINDOW = (-2.5, -0.9)  # valence side of the 7-AGNR gap: T > 0 throughout
FD_STEPS = (1e-2, 1e-3, 1e-4, 1e-5)
BIASES = (0.05, 0.2, 0.4)
MU_EV = -1.5  # Fermi level in the valence band (the gap around 0 carries no current)
DISORDER_EV = 0.1
PAPER = {70: {"ad_s": 71.1, "fd_s": 98.3}, 240: {"ad_s": 363.1, "fd_s": 512.6}}  # arXiv 2202.05098, 400 energies


def device_of(n_atoms: int, seed: int = 1):
    cells = max(1, round(n_atoms / 14))
    dev, left, right = wire(armchair_ribbon(7), cells)
    g = torch.Generator().manual_seed(seed)
    u = DISORDER_EV * (2 * torch.rand(len(dev), generator=g, dtype=torch.float64) - 1)
    return two_terminal(tables.graphene_pz("TNN_Reich2002"), dev, left, right, potential_ev=u).device, len(dev)


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times)


def seebeck_fd(device, energies, step):
    t_plus = solve(device, energies + step).transmission()
    t_minus = solve(device, energies - step).transmission()
    dlnt = (torch.log(t_plus) - torch.log(t_minus)) / (2 * step)
    return -(torch.pi**2 / 3) * (8.617333262e-5) ** 2 * TEMPERATURE_K * dlnt


def didv_fd(device, bias, step):
    return (current(device, bias + step, TEMPERATURE_K, mu=MU_EV)
            - current(device, bias - step, TEMPERATURE_K, mu=MU_EV)) / (2 * step)


def run(out: pathlib.Path, repeats: int) -> str:
    energies = torch.linspace(*E_WINDOW, N_ENERGIES, dtype=torch.float64)
    rows, curves = [], {}
    for target in (70, 240):
        device, n = device_of(target)
        with torch.no_grad():
            _, t_fwd = timed(lambda: solve(device, energies).transmission(), repeats)
        s_ad, t_ad = timed(lambda: seebeck(device, energies, TEMPERATURE_K).detach(), repeats)
        curves[n] = {"AD": s_ad}
        fd = {}
        for h in FD_STEPS:
            with torch.no_grad():
                s_fd, t_h = timed(lambda: seebeck_fd(device, energies, h), repeats)
            err = float(((s_fd - s_ad).abs().max() / s_ad.abs().max()))
            fd[h] = (t_h, err)
            curves[n][f"FD {h:g}"] = s_fd
        g_ad, t_gad = timed(lambda: torch.stack([differential_conductance(device, v, TEMPERATURE_K, mu=MU_EV).detach()
                                                 for v in BIASES]), repeats)
        g_fd = {}
        for h in FD_STEPS:
            with torch.no_grad():
                g, t_g = timed(lambda: torch.stack([didv_fd(device, v, h) for v in BIASES]), repeats)
            g_fd[h] = (t_g, float(((g - g_ad).abs().max() / g_ad.abs().max())))
        rows.append((n, t_fwd, t_ad, fd, t_gad, g_fd))
    lines = [
        "# AD-NEGF application 1: differential quantities (measured here)", "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads. Medians of {repeats} repeats.",
        f"7-AGNR, TNN_Reich2002 (3rd neighbours + overlap), on-site disorder +-{DISORDER_EV} eV, T = "
        f"{TEMPERATURE_K:g} K; Seebeck at {N_ENERGIES} energies in {E_WINDOW} eV; dI/dV at biases {BIASES} V "
        f"around mu = {MU_EV} eV.", "",
        "| atoms | T(E) forward | Seebeck AD | Seebeck FD (step: time, max rel. deviation from AD) | paper AD / FD |",
        "|---|---|---|---|---|",
    ]
    for n, t_fwd, t_ad, fd, _, _ in rows:
        paper = PAPER[70 if n < 150 else 240]
        fd_txt = "; ".join(f"{h:g}: {t:.2f} s, {e:.1e}" for h, (t, e) in fd.items())
        lines.append(f"| {n} | {t_fwd:.2f} s | {t_ad:.2f} s | {fd_txt} | {paper['ad_s']} s / {paper['fd_s']} s |")
    lines += ["", "| atoms | dI/dV AD (3 biases) | dI/dV FD (step: time, max rel. deviation) |", "|---|---|---|"]
    for n, _, _, _, t_gad, g_fd in rows:
        lines.append(f"| {n} | {t_gad:.2f} s | " + "; ".join(f"{h:g}: {t:.2f} s, {e:.1e}" for h, (t, e) in g_fd.items()) + " |")
    text = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(text)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4))
    ax = fig.add_subplot()
    n = max(curves)
    for label, s in curves[n].items():
        ax.plot(energies, 1e6 * s, lw=2 if label == "AD" else 1, label=label)
    ax.set_xlabel("E (eV)")
    ax.set_ylabel("Seebeck S (uV/K)")
    ax.set_title(f"7-AGNR, {n} atoms: autodiff vs finite differences")
    ax.legend(fontsize=8)
    fig.savefig(out / "seebeck.png", dpi=120, bbox_inches="tight")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/paper_differential")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(run(pathlib.Path(args.out), args.repeats))


if __name__ == "__main__":
    main()
