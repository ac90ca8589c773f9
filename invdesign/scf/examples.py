"""Worked examples: ready-made FETs and the NanoTCAD ViDES (13,0) nanotube recipe (``invdesign.scf``).

- :func:`chain_fet`: 1D effective-mass n-i-n FET with the screened 1D Poisson model (fast; tests).
- :func:`ribbon_fet` / :func:`default_fet`: armchair graphene-ribbon FET, doping per unit cell.
- :func:`vides_cnt_fet`: the ViDES CNT-FET tutorial on a 3D Poisson grid.

ViDES tutorial recipe: (13,0) carbon nanotube, 5 nm source / 5 nm channel / 5 nm drain, source and
drain doped with 5e-3 donors per atom, double gate (top and bottom planes) over the channel with
1.5 nm SiO2 (eps_r 3.9) between the tube surface and each gate, V_ds = 0.1 V, V_gs = 0 .. 0.5 V, 300 K.
Here the Poisson equation is solved on a 3D grid around the tube (SiO2 everywhere, zero-field
side boundaries, source/drain planes at the tube ends held at their neutral potentials), the channel
is the real-space pz nearest-neighbour tube of ``invdesign.tb`` (t = -2.7 eV, a_cc = 0.142 nm), one ring per
slice (:func:`nanotube_channel`).

Run ``python -m invdesign.scf.examples`` to write ``results/scf_vides/`` (CSV + PNG).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from invdesign.negf.system import Device
from invdesign.scf.device import FETDevice
from invdesign.scf.grid import Box, screened_1d, tensor_grid
from invdesign.scf.loop import SCFOptions
from invdesign.scf.modespace import effective_mass_chain
from invdesign.tb import nanotube, two_terminal, wire
from invdesign.tb.ribbons import ACC_NM, T_EV, armchair_ribbon_cell, pz_model


def chain_fet(source: int = 12, channel: int = 24, drain: int = 12, *, a_nm: float = 0.25, mstar: float = 0.19,
              lambda_nm: float = 1.0, gate_capacitance: float = 20.0, doping: float = 1e-2,
              gate_offset_ev: float = 0.5, temperature_k: float = 300.0,
              options: SCFOptions = SCFOptions()) -> FETDevice:
    """1D effective-mass n-i-n FET: ``source/channel/drain`` sites of spacing ``a_nm`` (nm).

    Conduction band only (``reference = 0``); donors ``doping`` per site in source and drain; one gate
    over the channel with line capacitance ``gate_capacitance`` (units of eps0) and screening length
    ``lambda_nm``; the gate's work-function offset ``gate_offset_ev`` puts the channel band edge at
    ``offset - V_g`` (eV) under a long gate.
    """
    n = source + channel + drain
    device, pos = effective_mass_chain(n, a_nm, mstar)
    x = pos[:, 0]
    nodes = np.concatenate([[x[0] - a_nm], x, [x[-1] + a_nm]])
    grid = screened_1d(nodes, [("gate", x[source] - a_nm / 2, x[source + channel - 1] + a_nm / 2, gate_capacitance)],
                       lambda_nm=lambda_nm)
    dop = torch.zeros(n, dtype=torch.float64)
    dop[:source] = doping
    dop[n - drain:] = doping
    return FETDevice(device, pos, grid, dop, temperature_k, gates={"gate": gate_offset_ev}, reference=0.0,
                     contact_doping=(doping, doping), options=options)


def ribbon_fet(width: int = 12, cells: int = 50, contact_cells: int = 15, *, doping: float = 5e-3,
               lambda_nm: float = 1.0, t_ox_nm: float = 1.0, eps_ox: float = 3.9,
               gate_offset_ev: float = 0.0, temperature_k: float = 300.0,
               options: SCFOptions = SCFOptions()) -> tuple[FETDevice, torch.Tensor]:
    """Double-gate armchair-ribbon FET (pz, t = -2.7 eV), screened 1D Poisson along the ribbon.

    ``cells`` unit cells (3 a_cc each); the first and last ``contact_cells`` carry ``doping`` donors per
    atom, the gate covers the rest. Returns ``(fet, cell_of_orbital)``: the (n_orbitals,) index of each
    orbital's cell, to build the doping from a per-cell profile ``fet.doping = profile[cell_of_orbital]``.
    """
    cell = armchair_ribbon_cell(width)
    device = cell.device(cells)
    base = np.asarray(cell.positions, dtype=float)
    base = np.column_stack([base, np.zeros((len(base), 3 - base.shape[1]))]) if base.shape[1] < 3 else base
    pos = np.concatenate([base + np.array([k * cell.period, 0.0, 0.0]) for k in range(cells)])
    cell_index = torch.as_tensor(np.repeat(np.arange(cells), len(base)))
    profile = torch.zeros(cells, dtype=torch.float64)
    profile[:contact_cells] = doping
    profile[cells - contact_cells:] = doping
    width_nm = float(np.ptp(base[:, 1])) + ACC_NM
    from invdesign.scf.grid import planar_capacitance
    c_g = planar_capacitance(width_nm, t_ox_nm, eps_ox, gates=2)
    x0, x1 = pos[:, 0].min(), pos[:, 0].max()
    nodes = np.arange(x0 - cell.period, x1 + cell.period + 1e-9, cell.period / 4)
    g0, g1 = contact_cells * cell.period, (cells - contact_cells) * cell.period - cell.period / 2
    grid = screened_1d(nodes, [("gate", g0, g1, c_g)], lambda_nm=lambda_nm)
    fet = FETDevice(device, pos, grid, profile[cell_index], temperature_k, gates={"gate": gate_offset_ev},
                    reference=1.0, contact_doping=(doping, doping), options=options)
    return fet, cell_index


def default_fet(**kwargs) -> tuple[FETDevice, torch.Tensor]:
    """The benchmark device: 12-AGNR double-gate FET, 50 cells (21.3 nm), 15-cell n+ contacts."""
    return ribbon_fet(**kwargs)


def nanotube_channel(n: int, m: int, cells: int, t: float = T_EV, acc: float = ACC_NM) -> tuple[Device, np.ndarray]:
    """An (n, m) carbon-nanotube channel: ``cells`` unit cells of ``invdesign.tb.nanotube(n, m)`` between
    leads of the same tube, nearest-neighbour pz (hopping ``t`` eV between atoms ``acc`` nm apart).

    Returns ``(device, orbital positions (nm) in slice order)``, axis along x through y = z = 0. The
    slicing follows the bonds: one ring (n atoms) per slice for an (n, 0) tube, whose unit cell (length
    3 acc) holds 4 rings at x = 0, acc, 3acc/2, 5acc/2.
    """
    system = two_terminal(pz_model(t, acc), *wire(nanotube(n, m, acc), cells))
    return system.device, system.orbital_positions_nm.detach().cpu().numpy()


@dataclass(frozen=True)
class ViDESRecipe:
    """Geometry and bias of the ViDES CNT-FET tutorial (lengths nm, voltages V)."""

    source_nm: float = 5.0
    channel_nm: float = 5.0
    drain_nm: float = 5.0
    t_ox_nm: float = 1.5
    eps_ox: float = 3.9
    doping_per_atom: float = 5e-3
    vds: float = 0.1
    temperature_k: float = 300.0
    grid_step_nm: float = 0.25
    lateral_margin_nm: float = 0.0  # extra oxide beside the tube beyond the gate distance
    contact_halfwidth_nm: float | None = None  # source/drain end electrodes: |y|,|z| <= this; None: whole face


def vides_fet(channel: tuple[Device, np.ndarray], recipe: ViDESRecipe = ViDESRecipe()) -> FETDevice:
    """The ViDES double-gate CNT-FET around ``channel`` = ``(device, positions)`` (axis along x at y = z = 0).

    The source/drain regions are the orbitals with ``x`` within ``source_nm`` of the tube's start /
    ``drain_nm`` of its end; gates (planes at ``z = +-(r + t_ox)``) cover the channel in between.
    """
    device, pos = channel
    pos = np.asarray(pos, dtype=float)
    x0, x1 = pos[:, 0].min(), pos[:, 0].max()
    radius = float(np.max(np.hypot(pos[:, 1], pos[:, 2])))
    zg = radius + recipe.t_ox_nm
    h = recipe.grid_step_nm
    pad = h
    nx = max(2, int(math.ceil((x1 - x0 + 2 * pad) / h)) + 1)
    xs = np.linspace(x0 - pad, x1 + pad, nx)
    ny = max(3, int(math.ceil(2 * (zg + recipe.lateral_margin_nm) / h)) + 1)
    ys = np.linspace(-(zg + recipe.lateral_margin_nm), zg + recipe.lateral_margin_nm, ny)
    zs = np.linspace(-zg, zg, max(3, int(math.ceil(2 * zg / h)) + 1))
    g0, g1 = x0 + recipe.source_nm, x1 - recipe.drain_nm
    big = 1e3
    c = big if recipe.contact_halfwidth_nm is None else recipe.contact_halfwidth_nm
    grid = tensor_grid(
        [xs, ys, zs], eps=recipe.eps_ox,
        electrodes={
            "source": [Box([xs[0], -c, -c], [xs[0], c, c])],
            "drain": [Box([xs[-1], -c, -c], [xs[-1], c, c])],
            "gate": [Box([g0, -big, zs[-1]], [g1, big, zs[-1]]), Box([g0, -big, zs[0]], [g1, big, zs[0]])],
        })
    doping = torch.zeros(len(pos), dtype=torch.float64)
    contacts = (pos[:, 0] < x0 + recipe.source_nm) | (pos[:, 0] > x1 - recipe.drain_nm)
    doping[torch.as_tensor(contacts)] = recipe.doping_per_atom
    return FETDevice(device, pos, grid, doping, recipe.temperature_k, gates={"gate": 0.0}, reference=1.0,
                     contact_doping=(recipe.doping_per_atom, recipe.doping_per_atom))


def vides_cnt_fet(channel: tuple[Device, np.ndarray] | None = None, vg_values=None,
                  recipe: ViDESRecipe = ViDESRecipe(), out_dir: str | None = "results/scf_vides"):
    """Run the ViDES recipe: Id-Vg at ``recipe.vds``; write ``id_vg.csv`` and ``id_vg.png`` to ``out_dir``.

    ``channel`` defaults to a (13,0) tube spanning source + channel + drain. Returns ``(fet, sweep)``.
    """
    from invdesign.scf.sweeps import id_vg

    if channel is None:
        length = recipe.source_nm + recipe.channel_nm + recipe.drain_nm
        channel = nanotube_channel(13, 0, int(round(length / (3 * ACC_NM))))
    vg_values = np.linspace(0.0, 0.5, 11) if vg_values is None else np.asarray(vg_values, float)
    fet = vides_fet(channel, recipe)
    sweep = id_vg(fet, vg_values, recipe.vds, keep=True)
    if out_dir is not None:
        _write(out_dir, fet, sweep, recipe)
    return fet, sweep


def _write(out_dir: str, fet: FETDevice, sweep, recipe: ViDESRecipe) -> None:
    import pathlib

    from invdesign.scf.plot import plot_id_vg, plot_profiles
    from invdesign.scf.sweeps import swing_between

    path = pathlib.Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    ss = np.concatenate([[np.nan], swing_between(sweep.voltages, sweep.currents)])
    rows = ["vgs_V,vds_V,id_A,id_uA,swing_mV_per_dec,iterations"]
    for v, i, s, it in zip(sweep.voltages, sweep.currents, ss, sweep.iterations):
        rows.append(f"{v:.4f},{recipe.vds:.4f},{i:.6e},{i * 1e6:.6e},{s:.3f},{it}")
    (path / "id_vg.csv").write_text("\n".join(rows) + "\n")
    plot_id_vg(sweep, path / "id_vg.png", title=f"(13,0) CNT-FET, ViDES recipe, Vds = {recipe.vds} V")
    plot_profiles([sweep.points[0], sweep.points[-1]], path / "profiles.png", band_gap_ev=0.735)


if __name__ == "__main__":
    _, result = vides_cnt_fet()
    for v, i in zip(result.voltages, result.currents):
        print(f"Vgs = {v:.2f} V   Id = {i:.4e} A")
