"""Wannier90 tight-binding models: ``seedname_hr.dat`` (+ ``seedname_centres.xyz``, lattice from ``.win``).

File format (Wannier90 user guide, ``hamiltonian_write_hr``)::

    header line (free text)
    num_wann
    nrpts
    ndegen(1) ... ndegen(nrpts)            15 integers per line
    R1 R2 R3  m  n  Re(H)  Im(H)           num_wann^2 lines per R, m running fastest

with ``H_mn(R) = <m, 0|H|n, R>`` in eV and ``R`` in lattice coordinates. The tight-binding Hamiltonian
is ``H(k) = sum_R exp(i k.R) H(R) / ndegen(R)``, so a ``WannierModel`` stores ``h = H(R) / ndegen(R)``
(the hopping that enters H once per listed R) and multiplies back when writing. That is exactly the
cell gauge of ``invdesign.tb.bands.BlochHamiltonian`` (``h[r] = <cell 0|H|cell R_r>``), so a model can
be read into the same objects our builders produce (``WannierModel.bloch()``), and written from them
(``from_bloch``, ``from_tb``).

Units: the files are in eV and Angstrom (``.win`` may say ``bohr``); everything here is eV and nm.
Errors name the file, the line (1-based) and the field.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from invdesign.tb.bands import BlochHamiltonian, bloch_hamiltonian
from invdesign.tb.model import TBModel
from invdesign.tb.structure import Structure

ANGSTROM_NM = 0.1
BOHR_NM = 0.0529177210903  # CODATA 2018
HERMITIAN_ATOL_EV = 1e-5  # Wannier90 prints H(R) with 6 decimals: H(R) and H(-R)^dagger agree to ~1e-6 eV
DEGENERACIES_PER_LINE = 15
HOPPING_FIELDS = ("R1", "R2", "R3", "m", "n", "Re(H)", "Im(H)")


class Wannier90FormatError(ValueError):
    """A Wannier90 file does not follow the format (the message names file, line and field)."""


@dataclasses.dataclass(frozen=True, eq=False)
class WannierModel:
    """Hoppings ``h[r] = H(R_r) / ndegen(R_r)`` of a Wannier tight-binding model.

    Attributes:
        R: (nR, 3) int64 lattice coordinates of the translations.
        h: (nR, n, n) complex128 tensor, eV; ``h[r][m, n] = <m, 0|H|n, R_r>`` (degeneracy divided
            out). May require grad: any hopping can be a design parameter (``with_hopping``).
        degeneracy: (nR,) int64 Wigner-Seitz weights as read (kept for writing the file back).
        lattice_nm: (3, 3) rows a1, a2, a3 in nm, or None (then only lattice-coordinate work is possible).
        centres_nm: (n, 3) Wannier centres in nm (in the home cell), or None.
        name: where it came from.
    """

    R: np.ndarray
    h: torch.Tensor
    degeneracy: np.ndarray
    lattice_nm: torch.Tensor | None = None
    centres_nm: torch.Tensor | None = None
    name: str = ""

    def __post_init__(self) -> None:
        R = np.asarray(self.R, dtype=np.int64).reshape(-1, 3)
        object.__setattr__(self, "R", R)
        h = torch.as_tensor(self.h).to(torch.complex128)
        if h.ndim != 3 or h.shape[0] != len(R) or h.shape[1] != h.shape[2]:
            raise ValueError(f"WannierModel.h must have shape ({len(R)}, n, n); got {tuple(h.shape)}")
        object.__setattr__(self, "h", h)
        object.__setattr__(self, "degeneracy", np.asarray(self.degeneracy, dtype=np.int64).reshape(-1))
        if len(self.degeneracy) != len(R):
            raise ValueError(f"WannierModel: {len(R)} translations but {len(self.degeneracy)} degeneracies")
        if len({tuple(r) for r in R.tolist()}) != len(R):
            raise ValueError("WannierModel: a translation R is listed twice")
        if self.lattice_nm is not None:
            lat = torch.as_tensor(self.lattice_nm, dtype=torch.float64)
            if lat.shape != (3, 3) or abs(float(torch.linalg.det(lat))) < 1e-12:
                raise ValueError(f"WannierModel.lattice_nm must be 3 independent vectors (3, 3) nm; got {lat.tolist()}")
            object.__setattr__(self, "lattice_nm", lat)
        if self.centres_nm is not None:
            c = torch.as_tensor(self.centres_nm, dtype=torch.float64)
            if c.shape != (self.num_wann, 3):
                raise ValueError(f"WannierModel.centres_nm must have shape ({self.num_wann}, 3); got {tuple(c.shape)}")
            object.__setattr__(self, "centres_nm", c)

    @property
    def num_wann(self) -> int:
        return self.h.shape[-1]

    def index(self, R: Sequence[int]) -> int:
        """Row of translation ``R`` (lattice coordinates) in ``self.R``; KeyError if absent."""
        hit = np.nonzero((self.R == np.asarray(R, dtype=np.int64)).all(axis=1))[0]
        if not len(hit):
            raise KeyError(f"translation R = {tuple(int(v) for v in R)} is not in the model")
        return int(hit[0])

    def check_hermitian(self, atol_ev: float = HERMITIAN_ATOL_EV, where: str = "") -> None:
        """Raise unless ``H(-R) = H(R)^dagger`` for every R (within ``atol_ev``, eV)."""
        h = self.h.detach()
        for r, R in enumerate(self.R.tolist()):
            try:
                q = self.index([-v for v in R])
            except KeyError:
                if float(h[r].abs().max()) > atol_ev:
                    raise Wannier90FormatError(f"{where}H(R) is listed for R = {tuple(R)} but not for -R: the "
                                               "Hamiltonian is not Hermitian") from None
                continue
            diff = (h[r] - h[q].mH).abs()
            if float(diff.max()) > atol_ev:
                m, n = divmod(int(diff.argmax()), self.num_wann)
                raise Wannier90FormatError(
                    f"{where}H(R) and H(-R)^dagger differ by {float(diff.max()):.3e} eV at R = {tuple(R)}, "
                    f"m = {m + 1}, n = {n + 1} (1-based, as in the file): the Hamiltonian is not Hermitian "
                    f"(tolerance {atol_ev:.1e} eV)")

    def hermitized(self) -> "WannierModel":
        """``h(R) -> (h(R) + h(-R)^dagger) / 2``: exact Hermiticity (rounding in the file removed).

        A translation whose -R is absent is dropped (``check_hermitian`` has found its hoppings ~0).
        """
        keys = {tuple(R): r for r, R in enumerate(self.R.tolist())}
        keep = [r for r, R in enumerate(self.R.tolist()) if tuple(-v for v in R) in keys]
        partner = [keys[tuple(-v for v in self.R[r].tolist())] for r in keep]
        idx = torch.as_tensor(keep)
        h = 0.5 * (self.h[idx] + self.h[torch.as_tensor(partner)].mH)
        return dataclasses.replace(self, R=self.R[keep], h=h, degeneracy=self.degeneracy[keep])

    def with_hopping(self, R: Sequence[int], m: int, n: int, value: torch.Tensor | complex) -> "WannierModel":
        """A copy with ``<m,0|H|n,R> = value`` and its Hermitian partner ``<n,0|H|m,-R> = conj(value)``.

        ``m, n`` are 0-based; ``value`` (eV) may require grad. ``R`` must be in the model.
        """
        r, q = self.index(R), self.index([-v for v in R])
        v = torch.as_tensor(value).to(torch.complex128)
        h = self.h.index_put((torch.tensor([r]), torch.tensor([m]), torch.tensor([n])), v.reshape(1))
        if (r, m) != (q, n):
            h = h.index_put((torch.tensor([q]), torch.tensor([n]), torch.tensor([m])), v.conj().reshape(1))
        return dataclasses.replace(self, h=h)

    def truncated(self, threshold_ev: float) -> "WannierModel":
        """Drop translations whose every hopping is below ``threshold_ev`` (eV) in magnitude (R = 0 kept).

        DFT models carry tails of tiny far hoppings; dropping them shortens the principal layers.
        """
        keep = [r for r, R in enumerate(self.R.tolist())
                if not any(R) or float(self.h[r].detach().abs().max()) >= threshold_ev]
        idx = torch.as_tensor(keep)
        return dataclasses.replace(self, R=self.R[keep], h=self.h[idx], degeneracy=self.degeneracy[keep])

    def bloch(self) -> BlochHamiltonian:
        """The model as a ``BlochHamiltonian`` (Cartesian translations; needs ``lattice_nm``)."""
        if self.lattice_nm is None:
            raise ValueError(f"WannierModel {self.name!r} has no lattice: give lattice_nm (e.g. from the .win file)")
        trans = torch.as_tensor(self.R, dtype=torch.float64) @ self.lattice_nm
        return BlochHamiltonian(self.lattice_nm, trans, self.h, None)


# --------------------------------------------------------------------------- from our own models


def complete_lattice(lattice_nm: torch.Tensor) -> torch.Tensor:
    """Three lattice vectors (3, 3) nm from 1 to 3: missing ones are 1 nm unit vectors orthogonal to the rest.

    A quasi-1D or 2D crystal has no translations along the filler vectors, so their length is arbitrary.
    """
    lat = torch.as_tensor(lattice_nm, dtype=torch.float64).reshape(-1, 3)
    while lat.shape[0] < 3:
        # the smallest right-singular vector is orthogonal to all given rows
        _, _, vh = torch.linalg.svd(torch.cat([lat, torch.zeros(3 - lat.shape[0], 3, dtype=lat.dtype)]))
        lat = torch.cat([lat, vh[-1:] if lat.shape[0] else torch.eye(3, dtype=lat.dtype)[:1]])
    return lat


def from_bloch(bloch: BlochHamiltonian, centres_nm: torch.Tensor | None = None, name: str = "") -> WannierModel:
    """A ``WannierModel`` from real-space blocks (orthogonal basis only), all degeneracies 1."""
    if bloch.s is not None:
        raise ValueError("Wannier90 models are orthogonal: this BlochHamiltonian has an overlap matrix")
    lat = complete_lattice(bloch.lattice)
    frac = torch.linalg.solve(lat.T, bloch.translations.detach().T).T  # (R, 3) lattice coordinates
    R = torch.round(frac)
    if float((frac - R).abs().max()) > 1e-8:
        raise ValueError("from_bloch: a translation is not an integer combination of the lattice vectors")
    return WannierModel(R.to(torch.int64).numpy(), bloch.h, np.ones(len(R), dtype=np.int64), lat, centres_nm, name)


def from_tb(model: TBModel, crystal: Structure) -> WannierModel:
    """Our tight-binding model on a periodic structure as a Wannier model (centres at the atoms).

    Orbital order: ``invdesign.tb.hamiltonian`` (atoms in order, each atom's orbitals; spin blocks per atom).
    """
    from invdesign.tb.hamiltonian import orbitals_per_atom

    counts = torch.as_tensor(orbitals_per_atom(model, crystal.species))
    centres = torch.repeat_interleave(crystal.positions.detach(), counts, dim=0)
    return from_bloch(bloch_hamiltonian(model, crystal), centres, model.name)


# --------------------------------------------------------------------------- reading


def _int(token: str, path, line: int, field: str, positive: bool = False) -> int:
    try:
        value = int(token)
    except ValueError:
        raise Wannier90FormatError(f"{path}: line {line}, field {field}: expected an integer, got {token!r}") from None
    if positive and value < 1:
        raise Wannier90FormatError(f"{path}: line {line}, field {field}: expected a positive integer, got {value}")
    return value


def parse_hr(text: str, path: str | os.PathLike = "<hr.dat>") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(R (nR, 3), H (nR, n, n) complex as in the file, ndegen (nR,))`` from the text of ``_hr.dat``."""
    lines = text.splitlines()
    if len(lines) < 3:
        raise Wannier90FormatError(f"{path}: too short: expected a header line, num_wann and nrpts")
    num_wann = _int(lines[1].strip(), path, 2, "num_wann", positive=True)
    nrpts = _int(lines[2].strip(), path, 3, "nrpts", positive=True)
    n_deg_lines = math.ceil(nrpts / DEGENERACIES_PER_LINE)
    degeneracy: list[int] = []
    for k in range(n_deg_lines):
        number = 4 + k
        if number > len(lines):
            raise Wannier90FormatError(f"{path}: ends at line {len(lines)} inside the degeneracy weights "
                                       f"(nrpts = {nrpts} weights, {DEGENERACIES_PER_LINE} per line)")
        tokens = lines[number - 1].split()
        expected = min(DEGENERACIES_PER_LINE, nrpts - len(degeneracy))
        if len(tokens) != expected:
            hint = " (a hopping line: the degeneracy line is missing)" if len(tokens) == len(HOPPING_FIELDS) else ""
            raise Wannier90FormatError(f"{path}: line {number}: expected {expected} degeneracy weights, found "
                                       f"{len(tokens)} fields{hint}")
        for j, tok in enumerate(tokens):
            field = f"ndegen({len(degeneracy) + 1})"
            if not re.fullmatch(r"[+-]?\d+", tok):
                raise Wannier90FormatError(f"{path}: line {number}, field {field}: expected an integer, got {tok!r}"
                                           + (" (the degeneracy line is missing)" if "." in tok else ""))
            degeneracy.append(_int(tok, path, number, field, positive=True))
    first = 4 + n_deg_lines
    body = [(i, ln) for i, ln in enumerate(lines[first - 1:], start=first) if ln.strip()]
    expected = nrpts * num_wann * num_wann
    if len(body) != expected:
        raise Wannier90FormatError(f"{path}: expected nrpts x num_wann^2 = {nrpts} x {num_wann}^2 = {expected} "
                                   f"hopping lines after line {first - 1}; found {len(body)}")
    try:  # fast path; the slow one below names the offending line and field
        table = np.array(" ".join(ln for _, ln in body).split(), dtype=float).reshape(expected, 7)
        ok = np.all(table[:, :5] == np.round(table[:, :5]))
    except ValueError:
        ok = False
    if not ok:
        table = np.array([_hopping_line(ln, i, path) for i, ln in body], dtype=float)
    ints = table[:, :5].astype(np.int64)
    bad = np.nonzero((ints[:, 3:5] < 1).any(1) | (ints[:, 3:5] > num_wann).any(1))[0]
    if len(bad):
        i = bad[0]
        field = "m" if not 1 <= ints[i, 3] <= num_wann else "n"
        value = ints[i, 3] if field == "m" else ints[i, 4]
        raise Wannier90FormatError(f"{path}: line {body[i][0]}, field {field}: orbital {value} outside 1..{num_wann}")
    keys, inverse = np.unique(ints[:, :3], axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    if len(keys) != nrpts:
        raise Wannier90FormatError(f"{path}: nrpts = {nrpts} but the hopping lines list {len(keys)} distinct R")
    order = _file_order(ints[:, :3], keys, inverse)  # keep R in the order of the file (ndegen follows it)
    H = np.zeros((nrpts, num_wann, num_wann), dtype=np.complex128)
    R = keys[np.argsort(order)]
    r = order[inverse]
    m, n = ints[:, 3] - 1, ints[:, 4] - 1
    dup = np.nonzero(np.bincount((r * num_wann + m) * num_wann + n, minlength=expected) > 1)[0]
    if len(dup):
        rr, rest = divmod(int(dup[0]), num_wann * num_wann)
        mm, nn = divmod(rest, num_wann)
        line = next(body[i][0] for i in range(len(body)) if (r[i], m[i], n[i]) == (rr, mm, nn))
        raise Wannier90FormatError(f"{path}: R = {tuple(R[rr].tolist())}, m = {mm + 1}, n = {nn + 1} "
                                   f"is listed more than once (first at line {line})")
    H[r, m, n] = table[:, 5] + 1j * table[:, 6]
    return R, H, np.asarray(degeneracy, dtype=np.int64)


def _file_order(R_lines: np.ndarray, keys: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """For each sorted key, its rank by first appearance in the file."""
    first = np.full(len(keys), len(R_lines))
    np.minimum.at(first, inverse, np.arange(len(R_lines)))
    rank = np.empty(len(keys), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(keys))
    return rank


def _hopping_line(line: str, number: int, path) -> list[float]:
    tokens = line.split()
    if len(tokens) != len(HOPPING_FIELDS):
        raise Wannier90FormatError(f"{path}: line {number}: expected {len(HOPPING_FIELDS)} fields "
                                   f"({' '.join(HOPPING_FIELDS)}), found {len(tokens)}")
    out: list[float] = []
    for field, tok in zip(HOPPING_FIELDS, tokens):
        if field in ("Re(H)", "Im(H)"):
            try:
                value = float(tok)
            except ValueError:
                raise Wannier90FormatError(f"{path}: line {number}, field {field}: expected a number, "
                                           f"got {tok!r}") from None
            if not math.isfinite(value):
                raise Wannier90FormatError(f"{path}: line {number}, field {field}: {tok!r} is not finite")
            out.append(value)
        else:
            out.append(float(_int(tok, path, number, field)))
    return out


def read_hr(path: str | os.PathLike, lattice_nm=None, centres_nm=None,
            hermitian_atol_ev: float = HERMITIAN_ATOL_EV) -> WannierModel:
    """Read ``seedname_hr.dat``; checks ``H(-R) = H(R)^dagger`` and makes it exact (``hermitized``)."""
    R, H, deg = parse_hr(Path(path).read_text(encoding="utf-8"), path)
    h = torch.as_tensor(H / deg[:, None, None])
    model = WannierModel(R, h, deg, lattice_nm, centres_nm, name=str(path))
    model.check_hermitian(hermitian_atol_ev, where=f"{path}: ")
    return model.hermitized()


def read_win_lattice(path: str | os.PathLike) -> torch.Tensor:
    """The ``unit_cell_cart`` block of a ``.win`` file as (3, 3) nm (``ang`` is the default unit, ``bohr`` allowed)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    begin = [i for i, ln in enumerate(lines) if re.match(r"\s*begin\s+unit_cell_cart\b", ln, re.I)]
    if not begin:
        raise Wannier90FormatError(f"{path}: no 'begin unit_cell_cart' block")
    rows, scale, i = [], ANGSTROM_NM, begin[0] + 1
    while i < len(lines) and not re.match(r"\s*end\s+unit_cell_cart\b", lines[i], re.I):
        body = lines[i].split("!")[0].split("#")[0].strip()
        if body.lower() in ("ang", "bohr"):
            scale = ANGSTROM_NM if body.lower() == "ang" else BOHR_NM
        elif body:
            try:
                rows.append([float(v) for v in body.split()])
            except ValueError:
                raise Wannier90FormatError(f"{path}: line {i + 1}: expected three numbers (a lattice vector), "
                                           f"got {body!r}") from None
            if len(rows[-1]) != 3:
                raise Wannier90FormatError(f"{path}: line {i + 1}: expected three numbers, found {len(rows[-1])}")
        i += 1
    if len(rows) != 3:
        raise Wannier90FormatError(f"{path}: unit_cell_cart holds {len(rows)} vectors, expected 3")
    return torch.tensor(rows, dtype=torch.float64) * scale


def read_centres(path: str | os.PathLike) -> torch.Tensor:
    """Wannier centres (``X`` lines of ``seedname_centres.xyz``, Angstrom) as (n, 3) nm."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    out = []
    for i, ln in enumerate(lines[2:], start=3):
        tokens = ln.split()
        if tokens and tokens[0] == "X":
            try:
                out.append([float(v) for v in tokens[1:4]])
            except ValueError:
                raise Wannier90FormatError(f"{path}: line {i}: expected 'X x y z' in Angstrom, got {ln.strip()!r}") from None
    if not out:
        raise Wannier90FormatError(f"{path}: no Wannier centres (lines starting with 'X')")
    return torch.tensor(out, dtype=torch.float64) * ANGSTROM_NM


def read_wannier90(seed: str | os.PathLike, lattice_nm=None, hermitian_atol_ev: float = HERMITIAN_ATOL_EV) -> WannierModel:
    """``<seed>_hr.dat`` with, where they exist, ``<seed>_centres.xyz`` and the lattice of ``<seed>.win``.

    ``seed`` may also be the ``_hr.dat`` path itself. ``lattice_nm`` (3, 3) nm overrides the ``.win``.
    """
    seed = str(seed)
    if seed.endswith("_hr.dat"):
        seed = seed[: -len("_hr.dat")]
    centres = Path(f"{seed}_centres.xyz")
    win = Path(f"{seed}.win")
    if lattice_nm is None and win.exists():
        lattice_nm = read_win_lattice(win)
    return read_hr(f"{seed}_hr.dat", lattice_nm, read_centres(centres) if centres.exists() else None,
                   hermitian_atol_ev)


# --------------------------------------------------------------------------- writing


def format_hr(model: WannierModel, header: str = "written by invdesign") -> str:
    """The ``_hr.dat`` text of ``model`` (full double precision; values times their degeneracy)."""
    n = model.num_wann
    H = model.h.detach().cpu().numpy() * model.degeneracy[:, None, None]
    out = [header.replace("\n", " "), f"{n:12d}", f"{len(model.R):12d}"]
    deg = [f"{d:5d}" for d in model.degeneracy.tolist()]
    out += ["".join(deg[i:i + DEGENERACIES_PER_LINE]) for i in range(0, len(deg), DEGENERACIES_PER_LINE)]
    for r, R in enumerate(model.R.tolist()):
        head = f"{R[0]:5d}{R[1]:5d}{R[2]:5d}"
        for j in range(n):  # column n outer, row m fastest: the order Wannier90 writes
            for i in range(n):
                v = H[r, i, j]
                out.append(f"{head}{i + 1:5d}{j + 1:5d} {v.real: .17e} {v.imag: .17e}")
    return "\n".join(out) + "\n"


def write_wannier90(seed: str | os.PathLike, model: WannierModel, header: str = "written by invdesign",
                    structure: Structure | None = None) -> list[Path]:
    """Write ``<seed>_hr.dat``, and ``<seed>.win`` (lattice) / ``<seed>_centres.xyz`` where known.

    ``structure`` (optional) adds its atoms after the centres, as Wannier90 does. Returns the paths.
    """
    seed = str(seed)
    paths = [Path(f"{seed}_hr.dat")]
    paths[0].write_text(format_hr(model, header), encoding="utf-8")
    if model.lattice_nm is not None:
        lat = model.lattice_nm.detach().numpy() / ANGSTROM_NM
        rows = "\n".join(" ".join(f"{v: .17e}" for v in row) for row in lat)
        win = Path(f"{seed}.win")
        win.write_text(f"! {header}\nnum_wann = {model.num_wann}\n\nbegin unit_cell_cart\nang\n{rows}\n"
                       "end unit_cell_cart\n", encoding="utf-8")
        paths.append(win)
    if model.centres_nm is not None:
        atoms = [] if structure is None else list(zip(structure.species, structure.positions.detach().numpy()))
        lines = [str(model.num_wann + len(atoms)), header]
        lines += ["X " + " ".join(f"{v / ANGSTROM_NM: .15f}" for v in c) for c in model.centres_nm.numpy()]
        lines += [f"{s} " + " ".join(f"{v / ANGSTROM_NM: .15f}" for v in p) for s, p in atoms]
        xyz = Path(f"{seed}_centres.xyz")
        xyz.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(xyz)
    return paths
