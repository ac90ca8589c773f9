"""Structure builders: chains, square strips, graphene ribbons and junctions, nanotubes, bulk crystals.

All lengths nm; quasi-1D structures are periodic along +x (the transport direction) with one lattice
vector; bulk crystals carry three. Graphene defaults: carbon-carbon distance ``ACC_NM = 0.142``.
Every builder checks its arguments first (``invdesign.tb.arguments``: ``TBInputError``, a ``ValueError``
naming the argument and its allowed range).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from invdesign.tb.arguments import TBInputError, count, real, species_label
from invdesign.tb.structure import Structure, concatenate

ACC_NM = 0.142


def chain(a_nm: float = 0.1, species: str = "X") -> Structure:
    """One atom per cell, period ``a_nm`` along x."""
    a_nm, species = real("a_nm", a_nm, "nm", positive=True), species_label("species", species)
    return Structure([[0.0, 0.0, 0.0]], (species,), [[a_nm, 0.0, 0.0]])


def square_strip(width: int, a_nm: float = 0.1, species: str = "X") -> Structure:
    """A strip ``width`` atoms wide (along y) of the square lattice, period ``a_nm`` along x."""
    width, a_nm = count("width", width), real("a_nm", a_nm, "nm", positive=True)
    species = species_label("species", species)
    pos = [[0.0, j * a_nm, 0.0] for j in range(width)]
    return Structure(pos, (species,) * width, [[a_nm, 0.0, 0.0]])


def armchair_ribbon(width: int, acc_nm: float = ACC_NM, species: str = "C") -> Structure:
    """N-AGNR with ``width`` = N dimer lines: 2N atoms per cell of length 3 acc (no edge hydrogen)."""
    width, acc_nm = count("width", width), real("acc_nm", acc_nm, "nm", positive=True)
    species = species_label("species", species)
    pos = []
    for j in range(width):
        x0 = 0.0 if j % 2 == 0 else 1.5 * acc_nm
        y = j * math.sqrt(3) / 2 * acc_nm
        pos += [(x0, y, 0.0), (x0 + acc_nm, y, 0.0)]
    return Structure(pos, (species,) * len(pos), [[3 * acc_nm, 0.0, 0.0]])


def zigzag_ribbon(width: int, acc_nm: float = ACC_NM, species: str = "C") -> Structure:
    """N-ZGNR with ``width`` = N zigzag chains: 2N atoms per cell of length sqrt3 acc."""
    width, acc_nm = count("width", width), real("acc_nm", acc_nm, "nm", positive=True)
    species = species_label("species", species)
    a = math.sqrt(3) * acc_nm
    pos = []
    for j in range(width):
        s = 0.0 if j % 2 == 0 else a / 2
        y = 1.5 * acc_nm * j
        pos += [(s % a, y, 0.0), ((s + a / 2) % a, y + acc_nm / 2, 0.0)]
    return Structure(pos, (species,) * len(pos), [[a, 0.0, 0.0]])


def ribbon_junction(
    width_left: int,
    width_right: int,
    cells_left: int,
    cells_right: int,
    acc_nm: float = ACC_NM,
    species: str = "C",
    row_offset: int | None = None,
) -> tuple[Structure, Structure, Structure]:
    """Armchair ribbon junction ``(device, left lead cell, right lead cell)``, e.g. 7-4 or 5-2.

    The narrower ribbon's first dimer line sits on line ``row_offset`` of the wider one (default: the
    even offset nearest to centring it, which keeps both ribbons' unit cells aligned, so the device is
    ``cells_left`` whole cells of one and ``cells_right`` of the other). An odd offset shifts the
    narrow ribbon by half a period; its cell next to the interface is then completed from the
    honeycomb lattice (atoms that would duplicate the wide ribbon's are dropped). Carbon atoms left with
    a single bond at the interface (unmatched dimer lines of the wide ribbon) are removed. Leads:
    pristine ribbons of each width (lattice vectors point away from the device).
    """
    from invdesign.tb.transport import wire  # local: transport imports the engine

    width_left, width_right = count("width_left", width_left), count("width_right", width_right)
    cells_left, cells_right = count("cells_left", cells_left), count("cells_right", cells_right)
    acc_nm, species = real("acc_nm", acc_nm, "nm", positive=True), species_label("species", species)
    wide, narrow = max(width_left, width_right), min(width_left, width_right)
    if row_offset is None:
        half = (wide - narrow) / 2
        row_offset = min((r for r in range(wide - narrow + 1) if r % 2 == 0), key=lambda r: (abs(r - half), r))
    row_offset = count("row_offset", row_offset, minimum=0)
    if row_offset > wide - narrow:
        raise TBInputError(f"row_offset must be in [0, {wide - narrow}] for widths {width_left}-{width_right}; "
                           f"got {row_offset}")
    period = 3 * acc_nm
    odd = row_offset % 2 == 1
    shift = torch.tensor([1.5 * acc_nm if odd else 0.0, row_offset * math.sqrt(3) / 2 * acc_nm, 0.0],
                         dtype=torch.float64)
    left = armchair_ribbon(width_left, acc_nm, species)
    right = armchair_ribbon(width_right, acc_nm, species)
    narrow_is_right = width_left >= width_right
    if narrow_is_right:
        right = right.translated(shift)
    else:
        left = left.translated(shift - torch.tensor([3 * acc_nm if odd else 0.0, 0, 0], dtype=torch.float64))
    dev_l, lead_l, _ = wire(left, cells_left)
    x0 = torch.tensor([cells_left * period, 0.0, 0.0], dtype=torch.float64)
    dev_r, _, lead_r = wire(right.translated(x0), cells_right)
    if odd:  # complete the interface cell of the half-period-shifted narrow ribbon
        if narrow_is_right:
            extra = right.translated(x0 - torch.tensor([period, 0, 0], dtype=torch.float64))
            dev_r = concatenate(_without(extra, dev_l), dev_r)
        else:
            extra = left.translated(torch.tensor([cells_left * period, 0, 0], dtype=torch.float64))
            dev_l = concatenate(dev_l, _without(extra, dev_r))
    device = _prune_dangling(concatenate(dev_l, dev_r), (lead_l, lead_r), 1.1 * acc_nm)
    return device, lead_l, lead_r


def _prune_dangling(device: Structure, leads, bond_nm: float) -> Structure:
    """Drop device atoms with fewer than two neighbours (repeatedly): the singly bonded carbons a wide
    ribbon's unmatched dimer lines leave at a junction interface."""
    fixed = torch.cat([c.positions for c in leads])
    pos, species = device.positions, list(device.species)
    while True:
        d_dev = torch.cdist(pos, pos)
        d_fix = torch.cdist(pos, fixed)
        degree = ((d_dev < bond_nm).sum(1) - 1) + (d_fix < bond_nm).sum(1)
        keep = degree >= 2
        if bool(keep.all()):
            return Structure(pos, tuple(species))
        pos = pos[keep]
        species = [s for s, k in zip(species, keep.tolist()) if k]


def _without(part: Structure, other: Structure, tol_nm: float = 1e-6) -> Structure:
    """Atoms of ``part`` that do not sit on an atom of ``other``."""
    d = torch.cdist(part.positions, other.positions)
    keep = (d > tol_nm).all(dim=1)
    return Structure(part.positions[keep], tuple(s for s, k in zip(part.species, keep.tolist()) if k))


def graphene_sheet(acc_nm: float = ACC_NM, species: str = "C") -> Structure:
    """The honeycomb lattice: 2 atoms, lattice vectors a1 = a (1, 0), a2 = a (1/2, sqrt3/2), a = sqrt3 acc."""
    acc_nm, species = real("acc_nm", acc_nm, "nm", positive=True), species_label("species", species)
    a = math.sqrt(3) * acc_nm
    a1, a2 = np.array([a, 0.0, 0.0]), np.array([a / 2, a * math.sqrt(3) / 2, 0.0])
    b = (a1 + a2) / 3
    return Structure([[0.0, 0.0, 0.0], b.tolist()], (species, species), [a1.tolist(), a2.tolist()])


def nanotube(n: int, m: int, acc_nm: float = ACC_NM, species: str = "C") -> Structure:
    """(n, m) carbon nanotube rolled from graphene (no curvature relaxation), axis along x.

    One translational unit cell: ``2 N_hex`` atoms, ``N_hex = 2 (n^2 + nm + m^2) / d_R``,
    ``d_R = gcd(2m + n, 2n + m)``; radius ``|C| / 2 pi`` with ``C = n a1 + m a2``.
    """
    n, m = count("n", n), count("m", m, minimum=0)
    if m > n:
        raise TBInputError(f"nanotube chirality (n, m) must satisfy 0 <= m <= n (an (m, n) tube is the mirror "
                           f"image of (n, m)); got ({n}, {m})")
    acc_nm, species = real("acc_nm", acc_nm, "nm", positive=True), species_label("species", species)
    a = math.sqrt(3) * acc_nm
    a1, a2 = np.array([a, 0.0]), np.array([a / 2, a * math.sqrt(3) / 2])
    dr = math.gcd(2 * m + n, 2 * n + m)
    t1, t2 = (2 * m + n) // dr, -(2 * n + m) // dr
    C, T = n * a1 + m * a2, t1 * a1 + t2 * a2
    n_hex = 2 * (n * n + n * m + m * m) // dr
    basis = [np.zeros(2), (a1 + a2) / 3]
    M = np.linalg.inv(np.column_stack([C, T]))
    span = n + m + abs(t1) + abs(t2) + 2
    frac = []
    for i in range(-span, span + 1):
        for j in range(-span, span + 1):
            for b in basis:
                f = M @ (i * a1 + j * a2 + b)
                f = f - np.floor(f + 1e-9)  # wrap into [0, 1) robustly
                frac.append(f)
    frac = np.unique(np.round(np.array(frac), 9), axis=0)
    if len(frac) != 2 * n_hex:
        raise RuntimeError(f"nanotube ({n},{m}): found {len(frac)} atoms per cell, expected {2 * n_hex}")
    radius = np.linalg.norm(C) / (2 * math.pi)
    length = np.linalg.norm(T)
    theta = 2 * math.pi * frac[:, 0]
    pos = np.column_stack([frac[:, 1] * length, radius * np.cos(theta), radius * np.sin(theta)])
    order = np.lexsort((theta, pos[:, 0]))
    return Structure(pos[order], (species,) * len(pos), [[length, 0.0, 0.0]])


def fcc_lattice(a_nm: float) -> list[list[float]]:
    """Primitive fcc vectors a/2 (0,1,1), a/2 (1,0,1), a/2 (1,1,0)."""
    h = real("a_nm", a_nm, "nm", positive=True) / 2
    return [[0.0, h, h], [h, 0.0, h], [h, h, 0.0]]


def zincblende(a_nm: float, anion: str, cation: str) -> Structure:
    """Zincblende primitive cell: anion at 0, cation at a/4 (1, 1, 1) (diamond when anion == cation)."""
    a_nm = real("a_nm", a_nm, "nm", positive=True)
    anion, cation = species_label("anion", anion), species_label("cation", cation)
    q = a_nm / 4
    return Structure([[0.0, 0.0, 0.0], [q, q, q]], (anion, cation), fcc_lattice(a_nm))


def diamond(a_nm: float, species: str = "Si") -> Structure:
    """Diamond primitive cell (two atoms of ``species``)."""
    a_nm, species = real("a_nm", a_nm, "nm", positive=True), species_label("species", species)
    return zincblende(a_nm, species, species)
