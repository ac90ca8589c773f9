"""ASE ``Atoms`` <-> ``Structure`` (Angstrom <-> nm), and an extended-XYZ writer that needs no ASE.

ASE is optional (``pip install invdesign[ase]``); only ``from_ase`` / ``to_ase`` import it.

Species: a ``Structure`` names species freely (``"C"``, ``"Si_a"``, ``"dopant"``); an ``Atoms`` needs
chemical symbols. ``to_ase`` maps each species to a symbol (``symbols`` argument; else the name if it is
an element, else its part before ``_``, else ``"X"``), numbers the species in order of first appearance
as ASE ``tags`` (so dopant sites show up as a different tag in ASE's GUI) and keeps the names in the
per-atom array ``"invdesign_species"``, which ``from_ase`` reads back. Periodic directions: the cell
vectors with ``pbc`` True (in cell order), the others are zero with ``pbc`` False.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from invdesign.tb.structure import Structure

ANGSTROM_PER_NM = 10.0
SPECIES_ARRAY = "invdesign_species"


def _require_ase():
    try:
        import ase
    except ImportError:
        raise ImportError("this needs ASE, an optional extra: pip install 'invdesign[ase]'") from None
    return ase


# chemical symbols Z = 1..118 (IUPAC), so species names can be mapped without importing ASE
ELEMENTS = frozenset("""H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se
Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta
W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn
Nh Fl Mc Lv Ts Og""".split())


def _element(name: str, symbols: Mapping[str, str] | None) -> str:
    if symbols and name in symbols:
        return symbols[name]
    if name in ELEMENTS:
        return name
    head = name.split("_")[0]
    return head if head in ELEMENTS else "X"


def species_tags(species: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    """Distinct species in order of first appearance and each atom's index among them (n,)."""
    order = list(dict.fromkeys(species))
    return order, np.array([order.index(s) for s in species], dtype=np.int64)


def to_ase(structure: Structure, symbols: Mapping[str, str] | None = None) -> Any:
    """An ``ase.Atoms`` of ``structure`` (positions and cell in Angstrom; tags = species index)."""
    ase = _require_ase()
    _, tags = species_tags(structure.species)
    cell = np.zeros((3, 3))
    pbc = [False, False, False]
    if structure.lattice is not None:
        lat = structure.lattice.detach().cpu().numpy()
        cell[: len(lat)] = lat * ANGSTROM_PER_NM
        pbc[: len(lat)] = [True] * len(lat)
    atoms = ase.Atoms(symbols=[_element(s, symbols) for s in structure.species],
                      positions=structure.positions.detach().cpu().numpy() * ANGSTROM_PER_NM,
                      cell=cell, pbc=pbc, tags=tags)
    atoms.new_array(SPECIES_ARRAY, np.array(structure.species, dtype=str))
    return atoms


def from_ase(atoms: Any, transport_axis: int | None = None, species: Mapping[int, str] | None = None) -> Structure:
    """A ``Structure`` from an ``ase.Atoms``: positions nm, lattice = the periodic cell vectors (nm).

    Args:
        transport_axis: cell vector (0, 1, 2) to put first in the lattice (our transport direction);
            it must be periodic. Default: cell order.
        species: optional ``{tag: name}``: atoms with that ASE tag get species ``name`` (e.g. dopants
            tagged in ASE); others keep their names (``"invdesign_species"`` array, else chemical symbol).
    """
    names = list(atoms.arrays[SPECIES_ARRAY]) if SPECIES_ARRAY in atoms.arrays else list(atoms.get_chemical_symbols())
    if species:
        tags = atoms.get_tags()
        names = [species.get(int(t), s) for t, s in zip(tags, names)]
    periodic = [i for i in range(3) if atoms.pbc[i]]
    if transport_axis is not None:
        if transport_axis not in periodic:
            raise ValueError(f"transport_axis {transport_axis} is not a periodic direction of the Atoms "
                             f"(pbc = {list(map(bool, atoms.pbc))})")
        periodic = [transport_axis] + [i for i in periodic if i != transport_axis]
    cell = np.asarray(atoms.cell[:], dtype=np.float64)
    lattice = torch.as_tensor(cell[periodic] / ANGSTROM_PER_NM) if periodic else None
    positions = torch.as_tensor(np.asarray(atoms.positions, dtype=np.float64) / ANGSTROM_PER_NM)
    return Structure(positions, tuple(str(s) for s in names), lattice)


def write_extxyz(path: str | os.PathLike, structure: Structure, symbols: Mapping[str, str] | None = None,
                 comment: str = "") -> Path:
    """Write ``structure`` as extended XYZ (Angstrom), readable by ``ase.io.read``, without needing ASE.

    Columns: element symbol, position, ``tags`` (species index) and ``invdesign_species`` (the name).
    """
    _, tags = species_tags(structure.species)
    cell = np.zeros((3, 3))
    pbc = ["F", "F", "F"]
    if structure.lattice is not None:
        lat = structure.lattice.detach().cpu().numpy()
        cell[: len(lat)] = lat * ANGSTROM_PER_NM
        pbc[: len(lat)] = ["T"] * len(lat)
    for name in structure.species:
        if any(c.isspace() or c == '"' for c in name):
            raise ValueError(f"species name {name!r} cannot be written to extended XYZ (whitespace or quote)")
    lattice = " ".join(f"{v:.17g}" for v in cell.reshape(-1))
    head = (f'Lattice="{lattice}" Properties=species:S:1:pos:R:3:tags:I:1:{SPECIES_ARRAY}:S:1 '
            f'pbc="{" ".join(pbc)}"')
    if comment:
        head += f' comment="{comment.replace(chr(34), chr(39))}"'
    lines = [str(len(structure)), head]
    pos = structure.positions.detach().cpu().numpy() * ANGSTROM_PER_NM
    for s, p, t in zip(structure.species, pos, tags):
        lines.append(f"{_element(s, symbols)} {p[0]:.17g} {p[1]:.17g} {p[2]:.17g} {t} {s}")
    path = Path(path)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
