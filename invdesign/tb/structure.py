"""Atomic structures: positions (nm), species, and the lattice vectors of their periodic directions.

Transport runs along +x. A quasi-1D crystal (ribbon, tube, chain, lead) has one lattice vector along
x; a bulk crystal has three; a finite device region has none.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch


def _as_positions(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=torch.float64) if not isinstance(x, torch.Tensor) else x
    if t.ndim != 2 or t.shape[-1] not in (2, 3):
        raise ValueError(f"{name} must have shape (n, 3) (or (n, 2) in the plane), nm; got {tuple(t.shape)}")
    if t.shape[-1] == 2:
        t = torch.cat([t, torch.zeros(t.shape[0], 1, dtype=t.dtype, device=t.device)], dim=1)
    if not t.is_floating_point():
        t = t.to(torch.float64)
    return t


@dataclasses.dataclass(frozen=True)
class Structure:
    """Atoms at ``positions`` (n, 3) nm of ``species`` (n names), periodic along ``lattice`` (p, 3) nm.

    Positions may be a tensor that requires grad (gradients w.r.t. geometry flow through H and S).
    """

    positions: torch.Tensor
    species: tuple[str, ...]
    lattice: torch.Tensor | None = None

    def __post_init__(self) -> None:
        pos = _as_positions(self.positions, "Structure.positions")
        object.__setattr__(self, "positions", pos)
        sp = tuple(self.species) if not isinstance(self.species, str) else (self.species,) * pos.shape[0]
        if len(sp) != pos.shape[0]:
            raise ValueError(f"Structure has {pos.shape[0]} positions but {len(sp)} species")
        object.__setattr__(self, "species", sp)
        if self.lattice is not None:
            lat = _as_positions(self.lattice, "Structure.lattice")
            if lat.shape[0] > 3 or torch.linalg.matrix_rank(lat.detach()) < lat.shape[0]:
                raise ValueError(f"Structure.lattice must hold 1 to 3 independent vectors; got {lat.tolist()}")
            object.__setattr__(self, "lattice", lat)

    def __len__(self) -> int:
        return len(self.species)

    @property
    def periodic_dims(self) -> int:
        return 0 if self.lattice is None else self.lattice.shape[0]

    def translated(self, shift: Sequence[float] | torch.Tensor) -> "Structure":
        s = torch.as_tensor(shift, dtype=self.positions.dtype)
        return dataclasses.replace(self, positions=self.positions + s)

    def repeated(self, cells: int, axis: int = 0) -> "Structure":
        """``cells`` copies along lattice vector ``axis``; that direction becomes finite."""
        if self.lattice is None or axis >= self.lattice.shape[0]:
            raise ValueError(f"cannot repeat along lattice vector {axis}: structure has {self.periodic_dims}")
        if cells < 1:
            raise ValueError(f"cells must be >= 1; got {cells}")
        a = self.lattice[axis]
        pos = torch.cat([self.positions + i * a for i in range(cells)])
        rest = [v for i, v in enumerate(self.lattice) if i != axis]
        return Structure(pos, self.species * cells, torch.stack(rest) if rest else None)

    def supercell(self, cells: int, axis: int = 0) -> "Structure":
        """A periodic supercell of ``cells`` cells along ``axis`` (the lattice vector grows)."""
        rep = self.repeated(cells, axis)
        lat = self.lattice.clone()
        lat[axis] = cells * self.lattice[axis]
        return dataclasses.replace(rep, lattice=lat)

    def with_species(self, sites: Sequence[int], species: str) -> "Structure":
        """Substitute the atoms at ``sites`` by ``species`` (e.g. dopants)."""
        sp = list(self.species)
        for i in sites:
            if not -len(sp) <= i < len(sp):
                raise IndexError(f"site {i} out of range for {len(sp)} atoms")
            sp[i] = species
        return dataclasses.replace(self, species=tuple(sp))

    def nearest_sites(self, points, count: int = 1) -> list[int]:
        """Indices of the ``count`` atoms nearest to each point (nm); handy for placing dopants."""
        pts = np.atleast_2d(np.asarray(points, dtype=float))
        pos = self.positions.detach().cpu().numpy()[:, : pts.shape[1]]
        out: list[int] = []
        for p in pts:
            order = np.argsort(np.linalg.norm(pos - p, axis=1), kind="stable")
            out += [int(i) for i in order[:count]]
        return out


def concatenate(*parts: Structure, lattice=None) -> Structure:
    """Atoms of all parts in order (lattice given explicitly; parts' lattices are ignored)."""
    pos = torch.cat([p.positions for p in parts])
    species = sum((p.species for p in parts), ())
    return Structure(pos, species, lattice)
