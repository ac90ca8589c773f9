"""Structure figures: atoms coloured by species, bonds, highlighted sites, faded lead cells.

Part of ``invdesign.tb.plot`` (conventions, ``gid``s and figure handling are described there); also
holds the small helpers the other figures share.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import EllipseCollection, PolyCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy.spatial import cKDTree

PROJECTIONS = {"xy": (0, 1), "xz": (0, 2), "yz": (1, 2)}
_VIEW_SIGN = {"xy": 1.0, "xz": -1.0, "yz": 1.0}  # e_i x e_j points towards the viewer: +z, -y, +x

SPECIES_COLORS = {
    "C": "#3b3b3b", "H": "#e0e0e0", "B": "#f08a24", "N": "#2f5fd0", "O": "#d62728", "P": "#9a4fd0",
    "S": "#d4b21a", "Si": "#c49a3a", "Ge": "#5f8f8f", "Ga": "#b0707a", "As": "#8a5cc2", "Al": "#9aa5b1",
    "In": "#a67c6a", "Sb": "#6b8e23",
}
_CYCLE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
HIGHLIGHT_COLOR = "#e4007c"
BOND_COLOR = "#8c8c8c"
LEAD_FADE = 0.62  # fraction of the way to white for lead atoms and bonds
DEPTH_FADE = 0.5  # fraction of the way to white for the farthest atoms of a 3D structure
POINT_LABELS = {"G": "Γ", "GAMMA": "Γ", "Γ": "Γ"}


# ---- helpers --------------------------------------------------------------------------------------

def _np(x, name: str) -> np.ndarray:
    """A real float array from a tensor (grad or not), array or sequence."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if np.iscomplexobj(a):
        if np.abs(a.imag).max(initial=0.0) > 1e-12 * max(1.0, np.abs(a.real).max(initial=0.0)):
            raise ValueError(f"{name} must be real; got complex values")
        a = a.real
    return a.astype(float)


def _new_axes(figsize: tuple[float, float]) -> Axes:
    return Figure(figsize=figsize, layout="constrained").add_subplot()


def _lighten(rgba: np.ndarray, fraction) -> np.ndarray:
    """Blend RGB towards white by ``fraction`` (scalar or per row); alpha unchanged."""
    out = np.array(rgba, dtype=float, copy=True)
    f = np.asarray(fraction, dtype=float)
    if f.ndim:
        f = f[:, None]
    out[..., :3] = out[..., :3] + (1.0 - out[..., :3]) * f
    return out


def _darken(rgba: np.ndarray, factor: float = 0.6) -> np.ndarray:
    out = np.array(rgba, dtype=float, copy=True)
    out[..., :3] *= factor
    return out


def _species_colors(names: Sequence[str]) -> dict[str, str]:
    """Known elements get their colour; others take the cycle in order of first appearance."""
    colors, free = {}, [c for c in _CYCLE if c not in SPECIES_COLORS.values()]
    i = 0
    for name in dict.fromkeys(names):
        if name in SPECIES_COLORS:
            colors[name] = SPECIES_COLORS[name]
        else:
            colors[name] = free[i % len(free)]
            i += 1
    return colors


def _point_label(label: str) -> str:
    return POINT_LABELS.get(label.upper(), label)


# ---- structures -----------------------------------------------------------------------------------

def _cutoff_table(names: list[str], model, bond_cutoff_nm, nn_distance: float) -> np.ndarray:
    """Bond length limit (nm) for every ordered pair of species indices; 0 means never bonded."""
    n = len(names)
    if bond_cutoff_nm is not None:
        if not bond_cutoff_nm >= 0:
            raise ValueError(f"bond_cutoff_nm must be >= 0; got {bond_cutoff_nm}")
        return np.full((n, n), float(bond_cutoff_nm))
    if model is None:
        return np.full((n, n), 1.1 * nn_distance if np.isfinite(nn_distance) else 0.0)
    table = np.zeros((n, n))
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            shells = model.shells(a, b)
            if shells is not None and shells[0]:
                table[i, j] = shells[0][0].distance_nm * (1 + model.shell_tolerance)
    return table


def _pairs(pa: np.ndarray, pb: np.ndarray | None, rmax: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs (and distances) within ``rmax``: i < j inside ``pa`` if ``pb`` is None, else pa x pb."""
    empty = (np.zeros(0, int), np.zeros(0, int), np.zeros(0))
    if rmax <= 0 or len(pa) == 0 or (pb is not None and len(pb) == 0):
        return empty
    ta = cKDTree(pa)
    if pb is None:
        ij = ta.query_pairs(rmax, output_type="ndarray")
        if len(ij) == 0:
            return empty
        i, j = ij[:, 0], ij[:, 1]
        d = np.linalg.norm(pa[i] - pa[j], axis=1)
    else:
        m = ta.sparse_distance_matrix(cKDTree(pb), rmax, output_type="ndarray")
        i, j, d = m["i"], m["j"], m["v"]
    keep = d > 1e-6
    order = np.lexsort((j[keep], i[keep]))
    return i[keep][order], j[keep][order], d[keep][order]


def _bond_polygons(p: np.ndarray, q: np.ndarray, half_width: float) -> np.ndarray:
    """Rectangles (B, 4, 2) of the given half width (data units) from p to q."""
    d = q - p
    length = np.linalg.norm(d, axis=1, keepdims=True)
    n = np.where(length > 1e-12, np.stack([-d[:, 1], d[:, 0]], axis=1) / np.maximum(length, 1e-300), 0.0)
    w = half_width * n
    return np.stack([p + w, q + w, q - w, p - w], axis=1)


def plot_structure(
    structure,
    model=None,
    ax: Axes | None = None,
    highlight: Sequence[int] | None = None,
    projection: str = "xy",
    bond_cutoff_nm: float | None = None,
    *,
    leads=None,
    highlight_label: str = "highlighted",
    atom_radius_nm: float | None = None,
    depth_cue: bool = True,
    legend: bool = True,
) -> Axes:
    """Atoms (coloured by species) and bonds of a structure, projected onto a plane.

    Args:
        structure: a ``Structure`` (its atoms are drawn once; periodic images are not), or a
            ``transport.TransportSystem`` (then its lead cells are drawn too, unless ``leads`` is given).
        model: a ``TBModel``; a pair of atoms is bonded when closer than the first neighbour shell of
            its species pair (times ``1 + shell_tolerance``); pairs the model does not couple are not.
        ax: axes to draw into (default: a new figure sized to the structure).
        highlight: indices of atoms of ``structure`` to emphasise (ringed), e.g. dopant sites.
        projection: ``"xy"``, ``"xz"`` or ``"yz"`` (horizontal axis first); the viewer looks along
            the third axis. For 3D structures (tubes, crystals) nearer atoms are drawn on top and
            farther ones lighter (``depth_cue``).
        bond_cutoff_nm: bond every pair closer than this (overrides ``model``). With neither, atoms
            closer than 1.1 x the nearest-neighbour distance are bonded.
        leads: ``(left_cell, right_cell)`` structures (either may be None), drawn faded, with their
            bonds to the device.
        highlight_label: legend entry of the highlighted sites.
        atom_radius_nm: circle radius (default 0.28 x the nearest-neighbour distance).
        legend: draw the species legend above the axes (set a title with ``pad=20`` or so).

    Returns:
        The Axes.
    """
    if projection not in PROJECTIONS:
        raise ValueError(f"projection must be one of {sorted(PROJECTIONS)}; got {projection!r}")
    if all(hasattr(structure, a) for a in ("structure", "left_cell", "right_cell")):  # a TransportSystem
        if leads is None:
            leads = (structure.left_cell, structure.right_cell)
        structure = structure.structure
    if leads is not None and (isinstance(leads, (str, bytes)) or len(leads) != 2):
        raise ValueError("leads must be a pair (left_cell, right_cell); either may be None")
    lead_cells = [c for c in (leads or ()) if c is not None]

    pos = _np(structure.positions, "structure.positions")
    species = list(structure.species)
    n_dev = len(species)
    lead_pos = [_np(c.positions, "lead positions") for c in lead_cells]
    lead_species = [list(c.species) for c in lead_cells]
    all_pos = np.concatenate([pos, *lead_pos]) if lead_pos else pos
    all_species = species + sum(lead_species, [])
    part = np.concatenate([np.zeros(n_dev, int)] + [np.full(len(p), k + 1) for k, p in enumerate(lead_pos)])

    hl = []
    for i in highlight if highlight is not None else ():
        i = int(i)
        if not -n_dev <= i < n_dev:
            raise IndexError(f"highlight site {i} out of range for {n_dev} atoms")
        hl.append(i % n_dev)
    hl = list(dict.fromkeys(hl))

    # nearest-neighbour distance: sets the default bond cutoff and atom size
    if len(all_pos) > 1:
        dist, _ = cKDTree(all_pos).query(all_pos, k=2)
        d = dist[:, 1][dist[:, 1] > 1e-6]
        nn = float(d.min()) if len(d) else np.inf
    else:
        nn = np.inf
    radius = atom_radius_nm if atom_radius_nm is not None else (0.28 * nn if np.isfinite(nn) else 0.05)
    if not radius > 0:
        raise ValueError(f"atom_radius_nm must be > 0; got {atom_radius_nm}")

    names = list(dict.fromkeys(all_species))
    code = np.array([names.index(s) for s in all_species], dtype=int)
    table = _cutoff_table(names, model, bond_cutoff_nm, nn)
    rmax = float(table.max(initial=0.0))

    # bonds: inside the device, inside each lead cell, and lead cell <-> device
    bonds = []  # (atom i, atom j, is a lead bond, distance), atoms indexed device first, then leads
    off = np.cumsum([0, n_dev, *[len(p) for p in lead_pos]])
    i, j, dd = _pairs(pos, None, rmax)
    bonds.append((i, j, False, dd))
    for k, lp in enumerate(lead_pos):
        i, j, dd = _pairs(lp, None, rmax)
        bonds.append((i + off[k + 1], j + off[k + 1], True, dd))
        i, j, dd = _pairs(lp, pos, rmax)
        bonds.append((i + off[k + 1], j, True, dd))

    a, b = PROJECTIONS[projection]
    xy = all_pos[:, [a, b]]
    depth = _VIEW_SIGN[projection] * all_pos[:, 3 - a - b]
    span = float(np.ptp(depth)) if len(depth) else 0.0
    t = (depth - depth.min()) / span if (depth_cue and span > 1e-3) else np.ones(len(depth))  # 1 = nearest
    layer = (t >= 0.5).astype(int)
    fade = DEPTH_FADE * (1.0 - t)
    fade = np.where(part > 0, 1.0 - (1.0 - fade) * (1.0 - LEAD_FADE), fade)

    pad = 3.0 * radius
    if ax is None:
        w, h = np.maximum(np.ptp(xy, axis=0) + 2 * pad, 1e-3) if len(xy) else (1.0, 1.0)
        if w >= h:
            ax = _new_axes((8.0, float(np.clip(7.0 * h / w + 1.5, 2.6, 8.0))))
        else:
            ax = _new_axes((float(np.clip(5.5 * w / h + 1.6, 3.2, 8.0)), 6.5))
        ax.margins(0.0)  # the padding below is enough

    colors = _species_colors(all_species)
    base = np.array([to_rgba(colors[s]) for s in all_species]).reshape(-1, 4)
    face = _lighten(base, fade)
    bond_rgba = np.array(to_rgba(BOND_COLOR))

    # bonds under atoms, back layer under front layer
    for gi, gj, is_lead, dd in bonds:
        keep = dd <= table[code[gi], code[gj]] + 1e-12
        gi, gj = gi[keep], gj[keep]
        if len(gi) == 0:
            continue
        polys = _bond_polygons(xy[gi], xy[gj], 0.22 * radius)
        fb = DEPTH_FADE * (1.0 - 0.5 * (t[gi] + t[gj]))
        if is_lead:
            fb = 1.0 - (1.0 - fb) * (1.0 - LEAD_FADE)
        lb = np.minimum(layer[gi], layer[gj])  # the farther end's layer: a bond never covers its own atoms
        for lay in (0, 1):
            sel = lb == lay
            if not sel.any():
                continue
            coll = PolyCollection(polys[sel], facecolors=_lighten(np.tile(bond_rgba, (sel.sum(), 1)), fb[sel]),
                                  edgecolors="none", zorder=1.0 + 2 * lay)
            coll.set_gid("lead-bonds" if is_lead else "bonds")
            ax.add_collection(coll, autolim=False)

    # atoms: one collection per (part, species, layer)
    for p in range(1 + len(lead_pos)):
        for s in names:
            for lay in (0, 1):
                sel = np.flatnonzero((part == p) & (code == names.index(s)) & (layer == lay))
                if len(sel) == 0:
                    continue
                sel = sel[np.argsort(t[sel], kind="stable")]  # nearer drawn later
                coll = EllipseCollection(2 * radius, 2 * radius, 0.0, units="xy", offsets=xy[sel],
                                         offset_transform=ax.transData, facecolors=face[sel],
                                         edgecolors=_darken(face[sel], 0.65), linewidths=0.6,
                                         zorder=1.5 + 2 * lay)
                coll.set_gid("lead-atoms" if p > 0 else f"atoms:{s}")
                ax.add_collection(coll, autolim=False)

    if hl:
        ring = EllipseCollection(3.2 * radius, 3.2 * radius, 0.0, units="xy", offsets=xy[hl],
                                 offset_transform=ax.transData, facecolors="none", edgecolors=HIGHLIGHT_COLOR,
                                 linewidths=1.8, zorder=5.0)
        ring.set_gid("highlight")
        ax.add_collection(ring, autolim=False)

    if len(xy):
        ax.update_datalim(np.array([xy.min(axis=0) - pad, xy.max(axis=0) + pad]))
        ax.autoscale_view()
    ax.set_aspect("equal")
    ax.set_xlabel(f"{projection[0]} (nm)")
    ax.set_ylabel(f"{projection[1]} (nm)")

    if legend:
        handles = [Line2D([], [], ls="", marker="o", ms=8, mfc=colors[s], mec=_darken(to_rgba(colors[s]), 0.65),
                          label=s) for s in dict.fromkeys(species)]
        handles += [Line2D([], [], ls="", marker="o", ms=8, mfc=_lighten(to_rgba(colors[s]), LEAD_FADE),
                           mec=_lighten(_darken(to_rgba(colors[s]), 0.65), LEAD_FADE), label=f"{s} (lead)")
                    for s in dict.fromkeys(sum(lead_species, [])) if s not in species]
        if len(all_species) > n_dev:
            handles.append(Line2D([], [], ls="", marker="o", ms=8, mfc=_lighten(to_rgba(colors[all_species[n_dev]]),
                                  LEAD_FADE), mec="none", label="lead cells"))
        if hl:
            handles.append(Line2D([], [], ls="", marker="o", ms=11, mfc="none", mec=HIGHLIGHT_COLOR, mew=1.8,
                                  label=highlight_label))
        if handles:
            _legend_above(ax, handles)
    return ax


def _legend_above(ax: Axes, handles) -> None:
    """A one-row legend just above the axes (never covers data; titles need ``pad``)."""
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=len(handles), frameon=False,
              borderaxespad=0.0, handletextpad=0.3, columnspacing=1.2, fontsize="small")


# ---- bands ----------------------------------------------------------------------------------------
