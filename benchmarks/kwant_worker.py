"""Kwant side of ``bench_kwant.py``: builds a system in Kwant and times ``kwant.smatrix`` over energies.

Runs under the *Kwant* Python (see ``bench_kwant.py`` for the install recipe), never under the repo's
venv: it imports nothing from ``invdesign``. It reads one JSON command per line on stdin and writes
one JSON reply per line on stdout, so that the parent can alternate Kwant and invdesign timings:

``{"cmd": "info"}``
    versions (python, kwant, numpy, scipy), the default solver's module, BLAS thread variables.
``{"cmd": "build", "kind": "square", "width": W, "length": L, "t": t, "onsite": [[...]] (L x W)}``
    nearest-neighbour square lattice (``kwant.lattice.square``), leads along -x and +x.
``{"cmd": "build", "kind": "wire", "positions": [[x, y, z], ...], "period": a, "t": t,
"cutoff": d, "onsite": [[...]] (cells x n)}``
    a quasi-1D crystal with one site per atom (one sublattice per atom of the cell, lattice vector
    ``(a, 0, 0)``); hoppings ``t`` between all atoms closer than ``cutoff`` (found here from the
    geometry, within a cell and to the next cell; ``lat.neighbors()`` would miss the longer bonds of
    an unrelaxed nanotube). Device: cells ``0 .. cells-1``; leads: the pristine cell repeated.
    Reply: number of sites and hoppings of the finalized scattering region.
``{"cmd": "run", "energies": [...], "full": false}``
    ``kwant.smatrix(fsyst, E, in_leads=[0], out_leads=[1]).transmission(1, 0)`` (lead 0 = left,
    lead 1 = right; ``full``: the whole scattering matrix, ``kwant.smatrix(fsyst, E)``) for every E;
    reply ``{"T": [...], "wall_s": w, "cpu_s": c}`` (this process's wall / CPU time of the loop only).
``{"cmd": "quit"}``
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

import kwant
import numpy as np
import scipy


def info() -> dict:
    import kwant.solvers.default as default

    return {
        "python": platform.python_version(),
        "kwant": kwant.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "solver": default.smatrix.__self__.__class__.__module__,
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
    }


def build_square(width: int, length: int, t: float, onsite: list[list[float]]):
    lat = kwant.lattice.square(a=1, norbs=1)
    syst = kwant.Builder()
    for x in range(length):
        for y in range(width):
            syst[lat(x, y)] = float(onsite[x][y])
    syst[lat.neighbors()] = t
    lead = kwant.Builder(kwant.TranslationalSymmetry((-1, 0)))
    lead[(lat(0, y) for y in range(width))] = 0.0
    lead[lat.neighbors()] = t
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


def build_wire(positions: list[list[float]], period: float, t: float, cutoff: float,
               onsite: list[list[float]]):
    pos = np.asarray(positions, dtype=float)
    lat = kwant.lattice.general([[period, 0.0, 0.0]], pos, norbs=1)
    subs = lat.sublattices
    kinds = []
    for dx in (0, 1):
        d = np.linalg.norm(pos[None, :, :] + np.array([dx * period, 0, 0]) - pos[:, None, :], axis=-1)
        for i, j in zip(*np.nonzero(d < cutoff)):
            if dx == 1 or i < j:
                kinds.append(kwant.builder.HoppingKind((dx,), subs[j], subs[i]))
    syst = kwant.Builder()
    for x, row in enumerate(onsite):
        for j, v in enumerate(row):
            syst[subs[j](x)] = float(v)
    for k in kinds:
        syst[k] = t
    lead = kwant.Builder(kwant.TranslationalSymmetry(lat.vec((-1,))))
    for s in subs:
        lead[s(0)] = 0.0
    for k in kinds:
        lead[k] = t
    syst.attach_lead(lead)
    syst.attach_lead(lead.reversed())
    return syst.finalized()


def run(fsyst, energies: list[float], full: bool = False) -> dict:
    kw = {} if full else {"in_leads": [0], "out_leads": [1]}
    c0, t0 = time.process_time(), time.perf_counter()
    trans = [kwant.smatrix(fsyst, float(e), **kw).transmission(1, 0) for e in energies]
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"T": [float(x) for x in trans], "wall_s": wall, "cpu_s": cpu}


def main() -> None:
    fsyst = None
    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg.pop("cmd")
        try:
            if cmd == "quit":
                break
            if cmd == "info":
                out = info()
            elif cmd == "build":
                kind = msg.pop("kind")
                fsyst = build_square(**msg) if kind == "square" else build_wire(**msg)
                out = {"sites": fsyst.graph.num_nodes, "hoppings": fsyst.graph.num_edges // 2,
                       "leads": len(fsyst.leads)}
            elif cmd == "run":
                out = run(fsyst, msg["energies"], msg.get("full", False))
            else:
                raise ValueError(f"unknown command {cmd!r}")
        except Exception as exc:  # reported to the parent, which fails loudly
            out = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
