"""Slater-Koster two-centre integrals for s, p, d and s* orbitals (Slater & Koster, PRB 94, 1498 (1954)).

Conventions (stated once, here)
===============================
Orbitals and their order on a site (a species uses any subset, in this order):
    ``s, px, py, pz, dyz, dzx, dxy, dx2-y2, dz2, s*``.
The real d orbitals have the angular parts ``sqrt3 yz, sqrt3 zx, sqrt3 xy, (sqrt3/2)(x^2-y^2),
(3z^2-r^2)/2`` (on the unit sphere), the usual Slater-Koster normalisation.

Integral names: ``"<a><b>_<bond>"`` with orbital types ``s, p, d, S`` (S is s*) and bond
``sigma, pi, delta``, e.g. ``"sp_sigma"``, ``"pd_pi"``, ``"dd_delta"``, ``"sS_sigma"``, ``"Sp_sigma"``.
For an ordered pair of atoms (A, B), ``"<a><b>_<bond>"`` is the integral with orbital type ``a`` on A
and ``b`` on B. The matrix element ``<a_A|H|b_B>`` for the bond vector ``d = r_B - r_A`` is the
Slater-Koster expression E_ab(d / |d|) with that integral. When the table orders types the other way
(``l_a > l_b``, or ``S`` before ``s``), parity gives
    ``<a_A|H|b_B> = (-1)^(l_a + l_b) E_ba(d)``  with the integral of type ``b`` on B and ``a`` on A,
which a pair table may give as ``"<a><b>_<bond>"`` (e.g. ``"ps_sigma"``: p on A, s on B) or which is
taken from the reversed pair's ``"<b><a>_<bond>"``. Thus ``<px_A|H|s_B> = -l V_ps_sigma``: for a
homopolar pair ``V_ps = V_sp`` and this is the textbook ``E_x,s = -l V_sp_sigma``.

The blocks are built from projectors onto the sigma / pi / delta components relative to the bond
axis rather than from the expanded table, so every block is covariant under rotations by construction
(pinned by a property test) and smooth in the bond direction (gradients w.r.t. positions).
"""

from __future__ import annotations

import math
from typing import Mapping

import torch

ORBITALS = ("s", "px", "py", "pz", "dyz", "dzx", "dxy", "dx2-y2", "dz2", "s*")
ORBITAL_TYPE = {"s": "s", "px": "p", "py": "p", "pz": "p", "s*": "S",
                "dyz": "d", "dzx": "d", "dxy": "d", "dx2-y2": "d", "dz2": "d"}
ANGULAR_MOMENTUM = {"s": 0, "S": 0, "p": 1, "d": 2}
_TYPE_RANK = {"s": 0, "S": 1, "p": 2, "d": 3}  # canonical order of a pair of types in a table key
_BONDS = ("sigma", "pi", "delta")
_P_INDEX = {"px": 0, "py": 1, "pz": 2}
_D_INDEX = {"dyz": 0, "dzx": 1, "dxy": 2, "dx2-y2": 3, "dz2": 4}
SQRT3 = math.sqrt(3.0)


def integral_names() -> list[str]:
    """Every valid integral name (both orders of the types)."""
    names = []
    for a in "sSpd":
        for b in "sSpd":
            for k, bond in enumerate(_BONDS):
                if k <= min(ANGULAR_MOMENTUM[a], ANGULAR_MOMENTUM[b]):
                    names.append(f"{a}{b}_{bond}")
    return names


VALID_INTEGRALS = frozenset(integral_names())


def check_orbitals(orbitals, name: str) -> tuple[str, ...]:
    orbs = tuple(orbitals)
    unknown = [o for o in orbs if o not in ORBITALS]
    if unknown:
        raise ValueError(f"{name}: unknown orbitals {unknown}; valid: {ORBITALS}")
    if len(set(orbs)) != len(orbs):
        raise ValueError(f"{name}: repeated orbitals in {orbs}")
    return orbs


def check_integrals(integrals: Mapping[str, object], name: str) -> None:
    bad = [k for k in integrals if k not in VALID_INTEGRALS]
    if bad:
        raise ValueError(f"{name}: unknown Slater-Koster integral names {bad}; valid names look like "
                         "'ss_sigma', 'sp_sigma', 'ps_sigma', 'pp_pi', 'pd_pi', 'dd_delta', 'sS_sigma', 'Sp_sigma'")


def _d_from_quadratic(q: torch.Tensor) -> torch.Tensor:
    """Coordinates in the real d basis of the function r^T Q r, for symmetric traceless Q (..., 3, 3)."""
    return torch.stack([
        2 * q[..., 1, 2] / SQRT3,
        2 * q[..., 2, 0] / SQRT3,
        2 * q[..., 0, 1] / SQRT3,
        (q[..., 0, 0] - q[..., 1, 1]) / SQRT3,
        q[..., 2, 2],
    ], dim=-1)


def _components(u: torch.Tensor) -> dict[str, torch.Tensor]:
    """Sigma and pi components of the p and d orbitals relative to unit bond vectors ``u`` (B, 3).

    ``p_sigma (B, 3) = u``; ``p_pi (B, 3, 3) = 1 - u u^T`` (projector, rows: p orbitals);
    ``d_sigma (B, 5)``: the function (3 (u.r)^2 - r^2)/2; ``d_pi (B, 5, 3)``: column j is the d function
    sqrt3 (u.r)(w_j.r) with w_j the part of e_j orthogonal to u, so ``d_pi d_pi^T`` projects onto the
    pi subspace and ``d_pi[:, :, j]`` pairs with the pi component of p_j.
    """
    eye = torch.eye(3, dtype=u.dtype, device=u.device)
    uu = u[:, :, None] * u[:, None, :]
    p_pi = eye - uu
    d_sigma = _d_from_quadratic((3 * uu - eye) / 2)
    # Q_j = (sqrt3/2) (u w_j^T + w_j u^T), w_j = p_pi[:, :, j]
    w = p_pi.transpose(1, 2)  # (B, j, 3)
    q = (SQRT3 / 2) * (u[:, None, :, None] * w[:, :, None, :] + w[:, :, :, None] * u[:, None, None, :])
    d_pi = _d_from_quadratic(q).transpose(1, 2)  # (B, 5, 3)
    return {"p_sigma": u, "p_pi": p_pi, "d_sigma": d_sigma, "d_pi": d_pi}


def _type_block(ta: str, tb: str, c: dict[str, torch.Tensor], v: dict[str, torch.Tensor]) -> torch.Tensor:
    """E_ab for canonical types (rank ta <= rank tb): shape (B, n_a, n_b) with n = 1, 3, 5 for s/S, p, d."""
    la, lb = ANGULAR_MOMENTUM[ta], ANGULAR_MOMENTUM[tb]
    sig = v["sigma"][:, None, None]
    if la == 0 and lb == 0:
        return sig
    if la == 0 and lb == 1:
        return sig * c["p_sigma"][:, None, :]
    if la == 0 and lb == 2:
        return sig * c["d_sigma"][:, None, :]
    pi = v["pi"][:, None, None]
    if la == 1 and lb == 1:
        return sig * c["p_sigma"][:, :, None] * c["p_sigma"][:, None, :] + pi * c["p_pi"]
    if la == 1 and lb == 2:
        return sig * c["p_sigma"][:, :, None] * c["d_sigma"][:, None, :] + pi * c["d_pi"].transpose(1, 2)
    # d-d: sigma, pi and the rest (delta) of the identity
    ds, dp = c["d_sigma"], c["d_pi"]
    p_sigma = ds[:, :, None] * ds[:, None, :]
    p_pi = dp @ dp.transpose(1, 2)
    eye = torch.eye(5, dtype=ds.dtype, device=ds.device)
    return sig * p_sigma + pi * p_pi + v["delta"][:, None, None] * (eye - p_sigma - p_pi)


def _rows(orbs: tuple[str, ...], t: str) -> tuple[list[int], list[int]]:
    """Positions in ``orbs`` of the orbitals of type t, and their index within the type's block."""
    pos, sub = [], []
    for i, o in enumerate(orbs):
        if ORBITAL_TYPE[o] == t:
            pos.append(i)
            sub.append(_P_INDEX.get(o, _D_INDEX.get(o, 0)))
    return pos, sub


def _lookup(ta: str, tb: str, bond: str, v_ab: Mapping, v_ba: Mapping):
    """Integral for type ta on A and tb on B (either table may hold it: ``"<ta><tb>"`` in the (A, B)
    table is ``"<tb><ta>"`` in the (B, A) one)."""
    key, swapped = f"{ta}{tb}_{bond}", f"{tb}{ta}_{bond}"
    x = v_ab.get(key)
    return v_ba.get(swapped) if x is None else x


def sk_block(
    orbitals_a,
    orbitals_b,
    bond_vectors: torch.Tensor,
    integrals_ab: Mapping[str, torch.Tensor | float],
    integrals_ba: Mapping[str, torch.Tensor | float] | None = None,
) -> torch.Tensor:
    """Two-centre blocks ``<a_A|H|b_B>`` for B bonds.

    Args:
        orbitals_a, orbitals_b: orbital names on atoms A and B (subsets of ``ORBITALS``, in that order).
        bond_vectors: (B, 3) real tensor, ``r_B - r_A`` (any length unit; only the direction is used).
        integrals_ab: integrals (eV) for the ordered pair (A, B); each a number or a tensor of shape
            (B,) (distance-scaled values). Missing integrals are zero.
        integrals_ba: the reversed pair's integrals; defaults to ``integrals_ab`` (homopolar pairs).
    Returns:
        (B, len(orbitals_a), len(orbitals_b)) tensor, real dtype of ``bond_vectors``.
    """
    oa = check_orbitals(orbitals_a, "orbitals_a")
    ob = check_orbitals(orbitals_b, "orbitals_b")
    check_integrals(integrals_ab, "integrals_ab")
    v_ba = integrals_ab if integrals_ba is None else integrals_ba
    check_integrals(v_ba, "integrals_ba")
    d = torch.as_tensor(bond_vectors)
    if d.ndim != 2 or d.shape[-1] != 3 or not d.is_floating_point():
        raise ValueError(f"bond_vectors must be a real (B, 3) tensor; got {tuple(d.shape)} {d.dtype}")
    norm = torch.linalg.vector_norm(d, dim=-1)
    if (norm.detach() == 0).any():
        raise ValueError("bond_vectors contains a zero-length bond (two atoms at the same position)")
    u = d / norm[:, None]
    n_bonds = d.shape[0]
    comp = _components(u)
    out = torch.zeros(n_bonds, len(oa), len(ob), dtype=d.dtype, device=d.device)
    zero = torch.zeros(n_bonds, dtype=d.dtype, device=d.device)
    for ta in "sSpd":
        ra, sa = _rows(oa, ta)
        if not ra:
            continue
        for tb in "sSpd":
            rb, sb = _rows(ob, tb)
            if not rb:
                continue
            lmin = min(ANGULAR_MOMENTUM[ta], ANGULAR_MOMENTUM[tb])
            vals = {}
            for bond in _BONDS[: lmin + 1]:
                x = _lookup(ta, tb, bond, integrals_ab, v_ba)
                vals[bond] = zero if x is None else torch.as_tensor(x, dtype=d.dtype, device=d.device).expand(n_bonds)
            if all(x is zero for x in vals.values()):
                continue
            if _TYPE_RANK[ta] <= _TYPE_RANK[tb]:
                block = _type_block(ta, tb, comp, vals)
            else:
                sign = (-1) ** (ANGULAR_MOMENTUM[ta] + ANGULAR_MOMENTUM[tb])
                block = sign * _type_block(tb, ta, comp, vals).transpose(1, 2)
            sub = block.expand(n_bonds, -1, -1)[:, sa][:, :, sb]
            idx = (torch.arange(n_bonds, device=d.device)[:, None, None],
                   torch.tensor(ra, device=d.device)[None, :, None], torch.tensor(rb, device=d.device)[None, None, :])
            out = out.index_put(idx, sub, accumulate=True)  # out of place: keeps autograd simple
    return out


def spin_orbit_p(lam: torch.Tensor | float, dtype=torch.complex128) -> torch.Tensor:
    """``lam L.sigma`` on (px, py, pz) x (up, down), spin-major order: (6, 6), eV.

    ``(L_k)_ij = -i eps_kij`` in the real p basis, so the j = 3/2 and j = 1/2 levels sit at +lam and
    -2 lam: the atomic splitting is ``Delta = 3 lam``.
    """
    eps = torch.zeros(3, 3, 3, dtype=dtype)
    for i, j, k in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
        eps[i, j, k], eps[i, k, j] = 1, -1
    L = -1j * eps  # L[k] = (L_k)_ij
    sx = torch.tensor([[0, 1], [1, 0]], dtype=dtype)
    sy = torch.tensor([[0, -1j], [1j, 0]], dtype=dtype)
    sz = torch.tensor([[1, 0], [0, -1]], dtype=dtype)
    h = sum(torch.kron(s, L[k]) for k, s in enumerate((sx, sy, sz)))
    lam = lam if isinstance(lam, torch.Tensor) else torch.tensor(lam, dtype=torch.float64)  # not float32
    return lam.to(dtype) * h
