"""Hamiltonian and overlap blocks between two sets of atoms, from a ``TBModel``.

Orbital layout: atoms in structure order; on each atom its species' orbitals in the order the
``Species`` lists them; with spin (a model with spin-orbit) each atom holds all its orbitals for
spin up, then all for spin down.

Magnetic field ``B`` along +z (tesla) enters by Peierls substitution in the Landau gauge
``A = (-B y, 0, 0)``, which keeps translation invariance along the transport direction x. For an
electron (charge -e), ``H_ij -> H_ij exp(-i (e/hbar) Int_{r_j}^{r_i} A.dl)
= H_ij exp(+i (e/hbar) B (y_i + y_j)/2 (x_i - x_j))``; overlaps take the same phase.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial import cKDTree

from invdesign.tb.model import TBModel
from invdesign.tb.slater_koster import sk_block, spin_orbit_p
from invdesign.tb.structure import Structure

E_OVER_HBAR_PER_T_NM2 = 2 * math.pi * 1.602176634e-19 / 6.62607015e-34 * 1e-18  # e/hbar, 1/(T nm^2), exact SI
SAME_SITE_NM = 1e-6  # atoms closer than this are the same site


def orbitals_per_atom(model: TBModel, species: tuple[str, ...]) -> np.ndarray:
    """Number of orbitals (spin included) of each atom."""
    missing = sorted({s for s in species if s not in model.species})
    if missing:
        raise ValueError(f"structure has species {missing} that the model {model.name!r} does not define; "
                         f"known: {sorted(model.species)}")
    spin = 2 if model.spinful else 1
    return np.array([spin * len(model.species[s].orbitals) for s in species], dtype=np.int64)


def orbital_offsets(model: TBModel, species: tuple[str, ...]) -> np.ndarray:
    """(n_atoms + 1,) start index of each atom's orbitals; the last entry is the total."""
    return np.concatenate([[0], np.cumsum(orbitals_per_atom(model, species))])


def working_dtype(model: TBModel, magnetic_field_t: float = 0.0) -> torch.dtype:
    return torch.complex128 if (model.spinful or magnetic_field_t) else torch.float64


def find_pairs(a_pos: np.ndarray, b_pos: np.ndarray, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i in a, j in b) closer than ``cutoff`` and farther than ``SAME_SITE_NM``."""
    if len(a_pos) == 0 or len(b_pos) == 0 or cutoff <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    sparse = cKDTree(a_pos).sparse_distance_matrix(cKDTree(b_pos), cutoff, output_type="coo_matrix")
    keep = sparse.data > SAME_SITE_NM
    order = np.lexsort((sparse.col[keep], sparse.row[keep]))
    return sparse.row[keep][order].astype(np.int64), sparse.col[keep][order].astype(np.int64)


def coupling_blocks(
    model: TBModel,
    a: Structure,
    b: Structure,
    shift: torch.Tensor | None = None,
    onsite: bool = False,
    magnetic_field_t: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``H_ab = <a|H|b + shift>`` and ``S_ab`` (None for an orthogonal model), dense.

    Args:
        a, b: structures (their lattices are ignored here); ``shift`` (3,) nm translates b.
        onsite: add on-site energies, spin-orbit and unit overlap for atoms of a and b at the same
            place (use for a block of a structure with itself).
    Returns:
        (n_orb_a, n_orb_b) tensors, float64 or complex128 (spin-orbit or magnetic field).
    """
    dtype = working_dtype(model, magnetic_field_t)
    off_a, off_b = orbital_offsets(model, a.species), orbital_offsets(model, b.species)
    pb = b.positions if shift is None else b.positions + shift
    H = torch.zeros(off_a[-1], off_b[-1], dtype=dtype)
    S = torch.zeros(off_a[-1], off_b[-1], dtype=dtype) if model.has_overlap else None
    spin = 2 if model.spinful else 1
    rows, cols, groups = _shell_groups(model, a, b, pb)
    vec = (pb[cols] - a.positions[rows]) if len(rows) else None
    dist = torch.linalg.vector_norm(vec, dim=-1) if len(rows) else None
    for (sa, sb, k), members in groups.items():
        idx = torch.as_tensor(members)
        sh_ab, sh_ba = model.shells(sa, sb)
        d = dist[idx]
        oa, ob = model.species[sa].orbitals, model.species[sb].orbitals
        for target, key in ((H, "integrals"), (S, "overlap")):
            if target is None:
                continue
            ints_ab = getattr(sh_ab[k], key) or {}
            ints_ba = getattr(sh_ba[k], key) or {}
            if not ints_ab and not ints_ba:
                continue
            d0 = sh_ab[k].distance_nm
            v_ab = {n_: model.scale(v, d, d0) for n_, v in ints_ab.items()}
            v_ba = {n_: model.scale(v, d, d0) for n_, v in ints_ba.items()}
            if model.isotropic:
                blocks = v_ab.get("pp_pi", torch.zeros_like(d))[:, None, None].to(dtype)
            else:
                blocks = sk_block(oa, ob, vec[idx], v_ab, v_ba).to(dtype)
            if magnetic_field_t:
                ri, rj = a.positions[rows[members]], pb[cols[members]]
                phase = E_OVER_HBAR_PER_T_NM2 * magnetic_field_t * 0.5 * (ri[:, 1] + rj[:, 1]) * (ri[:, 0] - rj[:, 0])
                blocks = blocks * torch.exp(1j * phase.to(torch.float64))[:, None, None]
            new = _scatter_blocks(target, blocks, off_a[rows[members]], off_b[cols[members]], len(oa), len(ob), spin)
            if key == "integrals":
                H = new
            else:
                S = new
    if onsite:
        H, S = _add_onsite(model, a, b, pb, H, S, off_a, off_b, dtype)
    return H, S


SHELL_GROUP_MEMO = 64  # geometries remembered by _shell_groups (an optimisation changes integrals, not atoms)
_shell_group_memo: dict[tuple, tuple] = {}


def _shell_groups(model: TBModel, a: Structure, b: Structure, pb: torch.Tensor):
    """Atom pairs (rows in a, cols in b) within the cutoff and their (species a, species b, shell) groups.

    Pure geometry (positions, species, shell distances), so it is remembered by value: a design loop
    that changes only integrals rebuilds its Hamiltonian without a neighbour search. Treat the result
    as read-only.
    """
    pa_np, pb_np = a.positions.detach().cpu().numpy(), pb.detach().cpu().numpy()
    return _memo(("groups",) + _geometry_key(model, a, b, pa_np, pb_np),
                 lambda: _find_shell_groups(model, a, b, pa_np, pb_np))


def _geometry_key(model: TBModel, a: Structure, b: Structure, pa_np: np.ndarray, pb_np: np.ndarray) -> tuple:
    """Everything the neighbour shells depend on: positions, species, cutoff and shell distances."""
    species_pairs = sorted({(sa, sb) for sa in set(a.species) for sb in set(b.species)})
    shells = tuple((sa, sb, None if (pair := model.shells(sa, sb)) is None else tuple(float(sh.distance_nm) for sh in pair[0]))
                   for sa, sb in species_pairs)
    return (pa_np.tobytes(), pa_np.shape, pb_np.tobytes(), pb_np.shape, tuple(a.species), tuple(b.species),
            float(model.cutoff_nm), float(model.shell_tolerance), shells)


def _memo(key: tuple, compute):
    hit = _shell_group_memo.get(key)
    if hit is None:
        hit = compute()
        if len(_shell_group_memo) >= SHELL_GROUP_MEMO:
            _shell_group_memo.pop(next(iter(_shell_group_memo)))
        _shell_group_memo[key] = hit
    return hit


def _find_shell_groups(model: TBModel, a: Structure, b: Structure, pa_np: np.ndarray, pb_np: np.ndarray):
    rows, cols = find_pairs(pa_np, pb_np, model.cutoff_nm)
    groups: dict[tuple[str, str, int], list[int]] = {}
    if len(rows) == 0:
        return rows, cols, groups
    dist = np.linalg.norm(pb_np[cols] - pa_np[rows], axis=-1)
    for n, (i, j) in enumerate(zip(rows, cols)):
        sa, sb = a.species[i], b.species[j]
        pair = model.shells(sa, sb)
        if pair is None:
            continue
        for k, sh in enumerate(pair[0]):
            if abs(dist[n] - sh.distance_nm) <= model.shell_tolerance * sh.distance_nm:
                groups.setdefault((sa, sb, k), []).append(n)
                break
    return rows, cols, groups


def bond_mask(model: TBModel, a: Structure, b: Structure, shift: torch.Tensor | None = None,
              onsite: bool = False) -> torch.Tensor:
    """Structural non-zero pattern of ``coupling_blocks`` (bool, (n_orb_a, n_orb_b)).

    True for every orbital pair of two atoms in a neighbour shell, whatever the integrals' current
    values (so an integral that happens to be 0 keeps its place in the slicing and gets a gradient).
    Remembered by value like :func:`_shell_groups` (a copy is returned).
    """
    off_a, off_b = orbital_offsets(model, a.species), orbital_offsets(model, b.species)
    pb = b.positions if shift is None else b.positions + shift
    key = ("mask", onsite, off_a.tobytes(), off_b.tobytes()) + _geometry_key(
        model, a, b, a.positions.detach().cpu().numpy(), pb.detach().cpu().numpy())
    return _memo(key, lambda: _bond_mask(model, a, b, pb, onsite, off_a, off_b)).clone()


def _bond_mask(model, a, b, pb, onsite, off_a, off_b) -> torch.Tensor:
    mask = torch.zeros(off_a[-1], off_b[-1], dtype=torch.bool)
    rows, cols, groups = _shell_groups(model, a, b, pb)
    pairs = [(rows[n], cols[n]) for members in groups.values() for n in members]
    if onsite:
        tree = cKDTree(pb.detach().cpu().numpy())
        for i, p in enumerate(a.positions.detach().cpu().numpy()):
            pairs += [(i, j) for j in tree.query_ball_point(p, SAME_SITE_NM)]
    for i, j in pairs:
        mask[off_a[i]:off_a[i + 1], off_b[j]:off_b[j + 1]] = True
    return mask


def _scatter_blocks(target, blocks, row0, col0, na, nb, spin):
    out = target
    for s in range(spin):
        r = torch.as_tensor(row0 + s * na)[:, None, None] + torch.arange(na)[None, :, None]
        c = torch.as_tensor(col0 + s * nb)[:, None, None] + torch.arange(nb)[None, None, :]
        out = out.index_put((r, c), blocks, accumulate=True)
    return out


def _add_onsite(model, a, b, pb, H, S, off_a, off_b, dtype):
    """On-site energies (+ spin-orbit) and unit overlap for atoms of a and b at the same place."""
    pa, pbn = a.positions.detach().cpu().numpy(), pb.detach().cpu().numpy()
    tree = cKDTree(pbn)
    spin = 2 if model.spinful else 1
    cache: dict[str, torch.Tensor] = {}
    rows, cols, vals = [], [], []
    for i, p in enumerate(pa):
        js = tree.query_ball_point(p, SAME_SITE_NM)
        if not js:
            continue
        j = js[0]
        if a.species[i] != b.species[j]:
            raise ValueError(f"two atoms of different species ({a.species[i]}, {b.species[j]}) at {p.tolist()} nm")
        name = a.species[i]
        if name not in cache:
            cache[name] = _onsite_block(model.species[name], spin, dtype)
        n = cache[name].shape[0]
        r = torch.arange(off_a[i], off_a[i] + n)
        c = torch.arange(off_b[j], off_b[j] + n)
        rows.append(r[:, None].expand(n, n).reshape(-1))
        cols.append(c[None, :].expand(n, n).reshape(-1))
        vals.append(name)
    if not rows:
        return H, S
    R, C = torch.cat(rows), torch.cat(cols)
    H = H.index_put((R, C), torch.cat([cache[v].reshape(-1) for v in vals]), accumulate=True)
    if S is not None:
        eye = {k: torch.eye(m.shape[0], dtype=dtype).reshape(-1) for k, m in cache.items()}
        S = S.index_put((R, C), torch.cat([eye[v] for v in vals]), accumulate=True)
    return H, S


def _onsite_block(sp, spin: int, dtype) -> torch.Tensor:
    e = torch.stack([torch.as_tensor(sp.onsite_energy(o), dtype=torch.float64) for o in sp.orbitals])
    block = torch.diag_embed(e.repeat(spin)).to(dtype)
    if spin == 2 and torch.as_tensor(sp.spin_orbit).detach().abs() > 0:
        p_idx = [sp.orbitals.index(o) for o in ("px", "py", "pz")]
        n = len(sp.orbitals)
        idx = torch.as_tensor(p_idx + [n + q for q in p_idx])
        block = block.index_put((idx[:, None], idx[None, :]), spin_orbit_p(sp.spin_orbit), accumulate=True)
    return block


def add_potential(H: torch.Tensor, S: torch.Tensor | None, potential_ev: torch.Tensor, model: TBModel,
                  species: tuple[str, ...]) -> torch.Tensor:
    """``H + U`` for a potential energy per atom ``potential_ev`` (..., n_atoms), eV.

    Orthogonal basis: ``U`` on the diagonal; with overlap ``H_ij += (U_i + U_j)/2 S_ij`` (gauge
    invariant: a constant U shifts every eigenvalue by U).
    """
    n_orb = orbitals_per_atom(model, species)
    u = torch.as_tensor(potential_ev)
    if u.shape[-1] != len(species):
        raise ValueError(f"potential_ev must end in the number of atoms {len(species)}; got {tuple(u.shape)}")
    per_orb = torch.repeat_interleave(u, torch.as_tensor(n_orb), dim=-1).to(H.dtype)
    if S is None:
        return H + torch.diag_embed(per_orb)
    return H + 0.5 * (per_orb[..., :, None] + per_orb[..., None, :]) * S


def reach_cells(model: TBModel, cell: Structure, vector: torch.Tensor, max_cells: int = 16) -> int:
    """Smallest m >= 1 such that no atom of a cell interacts with the cell m + 1 translations away."""
    pos = cell.positions.detach().cpu().numpy()
    v = vector.detach().cpu().numpy()
    for m in range(1, max_cells + 1):
        r, _ = find_pairs(pos, pos + (m + 1) * v, model.cutoff_nm)
        if len(r) == 0:
            return m
    raise ValueError(f"interactions reach more than {max_cells} cells along {v.tolist()} nm: cutoff "
                     f"{model.cutoff_nm:.4g} nm vs cell length {math.hypot(*v):.4g} nm")
