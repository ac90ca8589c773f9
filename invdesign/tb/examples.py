"""Example figures of the tight-binding module: ``python -m invdesign.tb.examples [out_dir]``.

Writes into ``out_dir`` (default ``results/tb_examples``), in about ten seconds on one core:

- ``agnr7_dopant_structure.png``: a 7-AGNR device of 8 cells with one transverse row of 7 substitutional
  dopants (ringed), the lead cells faded.
- ``agnr7_bands_transmission_dos.png``: bands of the pristine 7-AGNR (pz, t = -2.7 eV) beside T(E) of the
  doped device with the leads' open channels (= the pristine T), and the doped device's DOS (NEGF,
  exact leads).
- ``cnt13_0_structure.png``: the (13,0) carbon nanotube, side view (xy) and end view (yz).
- ``si_boykin2004_bands.png``: Si bands along L-Γ-X, Boykin-Klimeck-Oyafuso 2004 sp3d5s* with
  spin-orbit, energies relative to the valence-band maximum.

The dopant is illustrative: a pz site with on-site energy +1.5 eV and the carbon hoppings (a simple
acceptor-like model, not a fitted boron parameter set).
"""

from __future__ import annotations

import math
import pathlib
import sys

import numpy as np
import torch
from matplotlib.figure import Figure

from invdesign.negf import open_channels, solve
from invdesign.tb import bands, builders, tables
from invdesign.tb.model import Species
from invdesign.tb.plot import plot_bands, plot_bands_and_transmission, plot_structure
from invdesign.tb.transport import two_terminal, wire

DOPANT_ONSITE_EV = 1.5
DPI = 150


def _doped_agnr(width: int = 7, cells: int = 8, row_cell: int = 4):
    """Model, structures and dopant sites: one transverse zigzag row of ``width`` atoms in cell ``row_cell``."""
    carbon = tables.graphene_pz("NN_generic")
    shells = carbon.bonds[("C", "C")]
    model = carbon.with_species("dopant", Species(("pz",), {"p": DOPANT_ONSITE_EV}),
                                {("C", "dopant"): shells, ("dopant", "dopant"): shells})
    cell = builders.armchair_ribbon(width)
    device, left, right = wire(cell, cells)
    # dimer line j holds local atoms 2j, 2j+1 at x0, x0 + acc (x0 = 0 for even j, 1.5 acc for odd j):
    # atoms x0 + acc (even j) and x0 (odd j) form a bonded zigzag line across the ribbon
    base = row_cell * len(cell)
    sites = [base + (2 * j + 1 if j % 2 == 0 else 2 * j) for j in range(width)]
    return model, cell, device.with_species(sites, "dopant"), left, right, sites


def agnr_figures(out: pathlib.Path) -> list[pathlib.Path]:
    model, cell, device, left, right, sites = _doped_agnr()
    ax = plot_structure(device, model, highlight=sites, leads=(left, right), highlight_label="dopant row")
    ax.set_title(f"7-AGNR device, 8 cells, {len(sites)} dopants (on-site {DOPANT_ONSITE_EV:+.1f} eV); "
                 "lead cells faded", fontsize="medium", pad=22)
    p1 = out / "agnr7_dopant_structure.png"
    ax.figure.savefig(p1, dpi=DPI, bbox_inches="tight", pad_inches=0.1)

    bloch = bands.bloch_hamiltonian(model, cell)
    a = float(cell.lattice[0, 0])
    k, dist, corners = bands.k_path([[0.0, 0.0, 0.0], [math.pi / a, 0.0, 0.0]], steps=200)
    energies = torch.linspace(-3.0, 3.0, 1201, dtype=torch.float64)
    system = two_terminal(model, device, left, right)
    sol = solve(system.device, energies)
    modes = open_channels(system.leads[1], energies)
    fig = plot_bands_and_transmission(bloch, k, dist, corners, ["G", "X"], energies, sol.transmission(),
                                      sol.dos(), modes,
                                      title="7-AGNR, pz t = -2.7 eV: pristine bands | doped device (NEGF)")
    p2 = out / "agnr7_bands_transmission_dos.png"
    fig.savefig(p2, dpi=DPI)
    return [p1, p2]


def nanotube_figure(out: pathlib.Path) -> pathlib.Path:
    tube = builders.nanotube(13, 0).repeated(4)
    model = tables.graphene_pz("NN_generic")
    fig = Figure(figsize=(10.0, 4.4), layout="constrained")
    side, end = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.9, 1.0]})
    plot_structure(tube, model, ax=side, projection="xy")
    plot_structure(tube, model, ax=end, projection="yz", legend=False)
    side.set_title("side view (4 unit cells)", fontsize="medium", pad=18)
    end.set_title("end view", fontsize="medium", pad=18)
    fig.suptitle(f"(13,0) carbon nanotube: {len(tube)} atoms, diameter "
                 f"{2 * float(tube.positions[:, 1:].norm(dim=1).mean()):.3f} nm")
    p = out / "cnt13_0_structure.png"
    fig.savefig(p, dpi=DPI)
    return p


def silicon_figure(out: pathlib.Path) -> pathlib.Path:
    model = tables.boykin_sp3d5s_si()
    a = tables.lattice_constant_nm(model.name)
    bloch = bands.bloch_hamiltonian(model, builders.diamond(a, "Si"))
    k, dist, corners = bands.k_path([bands.fcc_point(p, a) for p in ("L", "G", "X")], steps=150)
    with torch.no_grad():
        e = bloch.energies(k).numpy()
    n_val = 8  # 8 valence electrons per cell; spin-orbit bands are counted per spin
    vbm, cbm = e[:, n_val - 1].max(), e[:, n_val].min()
    ax = plot_bands(e, k, dist, corners, ["L", "G", "X"], energy_window=(-13.0, 7.0), reference_energy=vbm,
                    energy_label=r"$E - E_\mathrm{VBM}$ (eV)")
    ax.axhspan(0.0, cbm - vbm, color="#f2c14e", alpha=0.25, lw=0, zorder=0.2)
    i_c = int(np.argmin(e[:, n_val]))
    ax.plot(dist[i_c], cbm - vbm, "o", ms=5, color="C3", zorder=4)
    ax.annotate("CBM", (float(dist[i_c]), cbm - vbm), xytext=(0, -13), textcoords="offset points", ha="center",
                va="center", fontsize="x-small", color="C3")
    ax.text(0.5 * float(dist[corners[1]]), 0.5 * (cbm - vbm), f"$E_g$ = {cbm - vbm:.3f} eV (indirect)",
            ha="center", va="center", fontsize="small")
    ax.set_title("Si, sp3d5s* + spin-orbit (Boykin et al., PRB 69, 115201, 2004)", fontsize="medium")
    p = out / "si_boykin2004_bands.png"
    ax.figure.savefig(p, dpi=DPI)
    return p


def main(out_dir: str | pathlib.Path = "results/tb_examples") -> list[pathlib.Path]:
    """Write the example figures into ``out_dir``; returns their paths."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [*agnr_figures(out), nanotube_figure(out), silicon_figure(out)]
    for p in paths:
        print(f"wrote {p}")
    return paths


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/tb_examples")
