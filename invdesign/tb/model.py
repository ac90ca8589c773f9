"""Empirical tight-binding models: species, neighbour shells, distance scaling, overlap, spin-orbit.

A ``TBModel`` is plain data whose numbers may be tensors with ``requires_grad``, so every built H and S
is differentiable w.r.t. every empirical parameter. ``named_parameters()`` / ``replace()`` expose the
parameters under stable names for fitting and optimisation (``"onsite/C/p"``, ``"bond/C-C/0/pp_pi"``,
``"overlap/C-C/0/pp_pi"``, ``"spin_orbit/Si"``). Orbital names and integral names:
``invdesign.tb.slater_koster``.

Distance dependence: a bond at distance ``d`` belongs to shell k when ``|d - d0_k| <= tol d0_k``
(``d0_k = shell.distance_nm``, ``tol = model.shell_tolerance``); its integrals are scaled by
``(d0/d)^eta`` (Harrison power law, ``scaling=("power", eta)``) or ``exp(-beta (d/d0 - 1))``
(``scaling=("exp", beta)``); unscaled when ``scaling=None`` (the default). Overlap integrals are
scaled the same way.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import torch

from invdesign.tb.slater_koster import ORBITAL_TYPE, check_integrals, check_orbitals

Number = float | torch.Tensor


@dataclasses.dataclass(frozen=True)
class Species:
    """An atom type: its orbitals (order of ``slater_koster.ORBITALS``), on-site energies (eV), SO.

    ``onsite`` maps an orbital type (``"s"``, ``"p"``, ``"d"``, ``"s*"``) or an orbital name
    (``"pz"``, ``"dz2"``; overrides its type) to an energy. ``spin_orbit`` is ``lam`` of
    ``lam L.sigma`` on the p shell (eV; atomic splitting ``Delta = 3 lam``).
    """

    orbitals: tuple[str, ...]
    onsite: Mapping[str, Number]
    spin_orbit: Number = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "orbitals", check_orbitals(self.orbitals, "Species.orbitals"))
        known = set(self.orbitals) | {_type_key(o) for o in self.orbitals}
        bad = [k for k in self.onsite if k not in known]
        if bad:
            raise ValueError(f"Species.onsite has keys {bad} that match none of its orbitals {self.orbitals}")
        missing = [o for o in self.orbitals if o not in self.onsite and _type_key(o) not in self.onsite]
        if missing:
            raise ValueError(f"Species.onsite gives no energy for orbitals {missing}")
        if _nonzero(self.spin_orbit) and not {"px", "py", "pz"} <= set(self.orbitals):
            raise ValueError("spin_orbit needs the full p shell (px, py, pz) among the orbitals")

    def onsite_energy(self, orbital: str) -> Number:
        return self.onsite[orbital] if orbital in self.onsite else self.onsite[_type_key(orbital)]


def _type_key(orbital: str) -> str:
    t = ORBITAL_TYPE[orbital]
    return "s*" if t == "S" else t


def _differ(x: Number, y: Number) -> bool:
    return abs(float(torch.as_tensor(x).detach()) - float(torch.as_tensor(y).detach())) > 1e-12 * (
        1 + abs(float(torch.as_tensor(x).detach())))


def _nonzero(x: Number) -> bool:
    return bool(torch.as_tensor(x).detach().abs().max() > 0) if isinstance(x, torch.Tensor) else x != 0


@dataclasses.dataclass(frozen=True)
class Shell:
    """One neighbour shell of an ordered species pair: nominal distance (nm) and integrals (eV)."""

    distance_nm: float
    integrals: Mapping[str, Number]
    overlap: Mapping[str, Number] | None = None

    def __post_init__(self) -> None:
        if not (self.distance_nm > 0):
            raise ValueError(f"Shell.distance_nm must be > 0; got {self.distance_nm}")
        check_integrals(self.integrals, f"Shell({self.distance_nm} nm).integrals")
        if self.overlap is not None:
            check_integrals(self.overlap, f"Shell({self.distance_nm} nm).overlap")


@dataclasses.dataclass(frozen=True)
class TBModel:
    """Species, bonds (ordered pair -> shells) and distance scaling.

    ``bonds[(A, B)]`` holds the integrals with the first orbital type on A; if only ``(A, B)`` is given,
    ``(B, A)`` reads the same shells with the parity rule of ``slater_koster`` (exact for homopolar
    pairs; heteropolar pairs such as zincblende anion-cation need both orders of mixed-type integrals,
    given either as ``"ps_sigma"`` keys in ``(A, B)`` or in a ``(B, A)`` entry with the same distances).
    """

    species: Mapping[str, Species]
    bonds: Mapping[tuple[str, str], tuple[Shell, ...]]
    scaling: tuple[str, float] | None = None
    shell_tolerance: float = 0.05
    isotropic: bool = False
    name: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        bonds = {}
        for pair, shells in self.bonds.items():
            if len(pair) != 2 or any(p not in self.species for p in pair):
                raise ValueError(f"bond pair {pair} names unknown species; known: {sorted(self.species)}")
            shells = tuple(shells) if not isinstance(shells, Shell) else (shells,)
            d = sorted(s.distance_nm for s in shells)
            for a, b in zip(d, d[1:]):
                if b - a <= self.shell_tolerance * (a + b):
                    raise ValueError(f"shells of {pair} at {a} and {b} nm overlap for shell_tolerance {self.shell_tolerance}")
            bonds[tuple(pair)] = tuple(sorted(shells, key=lambda s: s.distance_nm))
        for (a, b), shells in bonds.items():
            rev = bonds.get((b, a))
            if rev is None or a == b:
                continue
            if [s.distance_nm for s in rev] != [s.distance_nm for s in shells]:
                raise ValueError(f"bonds {(a, b)} and {(b, a)} must list the same shell distances")
            for k, (sh, sr) in enumerate(zip(shells, rev)):
                for kind in ("integrals", "overlap"):
                    fwd, back = getattr(sh, kind) or {}, getattr(sr, kind) or {}
                    for key, v in fwd.items():
                        types, bond = key.split("_")
                        twin_key = f"{types[1]}{types[0]}_{bond}"
                        twin = back.get(twin_key)
                        if twin is not None and _differ(v, twin):
                            raise ValueError(
                                f"bonds {(a, b)} shell {k} {kind} {key!r} = {float(v)} and {(b, a)} "
                                f"{twin_key!r} = {float(twin)} are the same integral with different values")
        object.__setattr__(self, "bonds", bonds)
        if self.isotropic:
            if any(sp.orbitals != ("pz",) for sp in self.species.values()):
                raise ValueError("isotropic models are pz-only: every species must have orbitals ('pz',)")
            keys = {k for shells in bonds.values() for sh in shells for k in (*sh.integrals, *(sh.overlap or {}))}
            if keys - {"pp_pi"}:
                raise ValueError(f"isotropic models use only 'pp_pi' integrals; got {sorted(keys - {'pp_pi'})}")
        if self.scaling is not None and (len(self.scaling) != 2 or self.scaling[0] not in ("power", "exp")):
            raise ValueError(f"scaling must be None, ('power', eta) or ('exp', beta); got {self.scaling}")

    @property
    def spinful(self) -> bool:
        return any(_nonzero(s.spin_orbit) for s in self.species.values())

    @property
    def has_overlap(self) -> bool:
        return any(s.overlap for shells in self.bonds.values() for s in shells)

    @property
    def cutoff_nm(self) -> float:
        """Largest distance at which any pair interacts."""
        return max((s.distance_nm for shells in self.bonds.values() for s in shells), default=0.0) * (
            1 + self.shell_tolerance)

    def shells(self, a: str, b: str) -> tuple[tuple[Shell, ...], tuple[Shell, ...]] | None:
        """(shells of (a, b), shells of (b, a)) or None if the pair does not interact."""
        ab, ba = self.bonds.get((a, b)), self.bonds.get((b, a))
        if ab is None and ba is None:
            return None
        return (ab if ab is not None else _reversed(ba)), (ba if ba is not None else _reversed(ab))

    def scale(self, value: Number, d: torch.Tensor, d0: float) -> torch.Tensor:
        """Distance-scaled integral at distances ``d`` (nm, shape (B,))."""
        if self.scaling is None:
            return torch.as_tensor(value, dtype=d.dtype, device=d.device).expand(d.shape)
        kind, p = self.scaling
        f = (d0 / d) ** p if kind == "power" else torch.exp(-p * (d / d0 - 1))
        return value * f

    # ---- parameters by name ----------------------------------------------------------------------
    def named_parameters(self) -> dict[str, Number]:
        """Every number of the model under a stable name (see module docstring)."""
        out: dict[str, Number] = {}
        for name, sp in self.species.items():
            for k, v in sp.onsite.items():
                out[f"onsite/{name}/{k}"] = v
            if {"px", "py", "pz"} <= set(sp.orbitals):
                out[f"spin_orbit/{name}"] = sp.spin_orbit  # a zero value switches spin on when replaced
        for (a, b), shells in self.bonds.items():
            for i, sh in enumerate(shells):
                for k, v in sh.integrals.items():
                    out[f"bond/{a}-{b}/{i}/{k}"] = v
                for k, v in (sh.overlap or {}).items():
                    out[f"overlap/{a}-{b}/{i}/{k}"] = v
        return out

    def replace(self, values: Mapping[str, Number]) -> "TBModel":
        """A copy with the named parameters replaced (e.g. by tensors that require grad)."""
        known = self.named_parameters()
        bad = [k for k in values if k not in known]
        if bad:
            raise KeyError(f"unknown model parameters {bad}; see TBModel.named_parameters()")
        species = {}
        for name, sp in self.species.items():
            onsite = {k: values.get(f"onsite/{name}/{k}", v) for k, v in sp.onsite.items()}
            so = values.get(f"spin_orbit/{name}", sp.spin_orbit)
            species[name] = dataclasses.replace(sp, onsite=onsite, spin_orbit=so)
        bonds = {}
        for (a, b), shells in self.bonds.items():
            new = []
            for i, sh in enumerate(shells):
                ints = {k: values.get(f"bond/{a}-{b}/{i}/{k}", v) for k, v in sh.integrals.items()}
                ov = None if sh.overlap is None else {
                    k: values.get(f"overlap/{a}-{b}/{i}/{k}", v) for k, v in sh.overlap.items()}
                new.append(Shell(sh.distance_nm, ints, ov))
            bonds[(a, b)] = tuple(new)
        return dataclasses.replace(self, species=species, bonds=bonds)

    def with_species(self, name: str, species: Species, bonds: Mapping[tuple[str, str], tuple[Shell, ...]]) -> "TBModel":
        """A copy with one more species (e.g. a dopant) and its bonds to existing species.

        Pairs without a ``bonds`` entry do not interact: give ``(name, name)`` too if dopants can be
        neighbours of each other.
        """
        if name in self.species:
            raise ValueError(f"species {name!r} already exists")
        return dataclasses.replace(self, species={**self.species, name: species}, bonds={**self.bonds, **bonds})


def _reversed(shells: tuple[Shell, ...]) -> tuple[Shell, ...]:
    """The (B, A) view of (A, B) shells: type-swapped keys, e.g. "sp_sigma" -> "ps_sigma"."""
    def swap(ints):
        if ints is None:
            return None
        out = {}
        for k, v in ints.items():
            types, bond = k.split("_")
            out[f"{types[1]}{types[0]}_{bond}"] = v
        return out
    return tuple(Shell(s.distance_nm, swap(s.integrals), swap(s.overlap)) for s in shells)


def vogl_to_two_centre(p: Mapping[str, float]) -> dict[str, float]:
    """Vogl et al. (1983) combined sp3s* nearest-neighbour parameters -> two-centre integrals.

    Anion first: ``V(s,s) = 4 V_ss_sigma``, ``V(x,x) = 4/3 (V_pp_sigma + 2 V_pp_pi)``,
    ``V(x,y) = 4/3 (V_pp_sigma - V_pp_pi)``, ``V(sa,pc) = 4/sqrt3 V_sp_sigma`` (s on the anion, p on the
    cation), likewise ``V(sc,pa)``, ``V(s*a,pc)``, ``V(pa,s*c)``. Returns integrals for the ordered
    pair (anion, cation).
    """
    a = 0.75 * p["Vxx"]  # V_sigma + 2 V_pi
    b = 0.75 * p["Vxy"]  # V_sigma - V_pi
    pi = (a - b) / 3
    k = math.sqrt(3) / 4
    return {
        "ss_sigma": p["Vss"] / 4,
        "pp_sigma": b + pi,
        "pp_pi": pi,
        "sp_sigma": k * p["V(sa,pc)"],    # s on anion, p on cation
        "ps_sigma": k * p["V(sc,pa)"],    # p on anion, s on cation
        "Sp_sigma": k * p["V(s*a,pc)"],   # s* on anion, p on cation
        "pS_sigma": k * p["V(pa,s*c)"],   # p on anion, s* on cation
    }
