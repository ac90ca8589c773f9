"""Demo: transmission and density of states of a 7-atom-wide armchair graphene nanoribbon.

Run ``python -m invdesign.demo [--out results/demo]``: prints T(E), DOS and the number of open
channels at a few energies, and writes ``transmission_dos.png`` and ``transmission_dos.csv``.
"""

from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np
import torch

from invdesign.negf import open_channels, solve
from invdesign.tb.ribbons import armchair_ribbon_cell


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/demo", help="output directory")
    parser.add_argument("--width", type=int, default=7, help="ribbon width N (dimer lines)")
    parser.add_argument("--cells", type=int, default=8, help="device length in unit cells")
    parser.add_argument("--energies", type=int, default=801, help="number of energies in [-3, 3] eV")
    args = parser.parse_args(argv)

    cell = armchair_ribbon_cell(args.width)
    device = cell.device(args.cells)
    energies = torch.linspace(-3.0, 3.0, args.energies, dtype=torch.float64)
    start = time.perf_counter()
    sol = solve(device, energies)
    t, d = sol.transmission(), sol.dos()
    elapsed = time.perf_counter() - start
    channels = open_channels(cell.leads()[1], energies)

    print(f"{args.width}-AGNR, {args.cells} cells ({device.num_orbitals} pz orbitals), t = -2.7 eV")
    print(f"{len(energies)} energies solved in {elapsed:.2f} s (T and DOS from one solve)")
    print(f"{'E (eV)':>8} {'T(E)':>8} {'channels':>8} {'DOS (1/eV)':>11}")
    for e in (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0):
        k = int(torch.argmin((energies - e).abs()))
        print(f"{energies[k]:8.3f} {t[k]:8.4f} {channels[k]:8d} {d[k]:11.4f}")
    gap = energies[t < 0.5]
    gap = gap[(gap > -1.5) & (gap < 1.5)]
    if len(gap):
        print(f"transport gap around E = 0: [{gap.min():.3f}, {gap.max():.3f}] eV on this grid")

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = np.column_stack([energies.numpy(), t.detach().numpy(), channels, d.detach().numpy()])
    np.savetxt(out / "transmission_dos.csv", table, delimiter=",", header="E_eV,T,open_channels,DOS_per_eV",
               comments="")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    ax1.plot(t.detach(), energies, lw=1.2, label="T(E)")
    ax1.plot(channels, energies, "k:", lw=0.8, label="open channels")
    ax1.set_xlabel("transmission")
    ax1.set_ylabel("E (eV)")
    ax1.legend(loc="upper right", fontsize=8)
    ax2.plot(d.detach(), energies, color="tab:red", lw=1.0)
    ax2.set_xlabel("DOS (states/eV/spin)")
    fig.suptitle(f"{args.width}-AGNR, {args.cells} cells: NEGF with exact leads")
    fig.tight_layout()
    fig.savefig(out / "transmission_dos.png", dpi=120)
    print(f"wrote {out / 'transmission_dos.png'} and {out / 'transmission_dos.csv'}")


if __name__ == "__main__":
    main()
