"""Recursive Green's function sweeps over a block-tridiagonal ``M = E S - H - Sigma`` (O(N b^3)).

Blocks carry leading batch dimensions ``(..., nE, b, b)`` (parameter sets, energies), so one sweep
serves a whole energy grid. ``diag[i] = M_ii``, ``up[i] = M_{i,i+1}``, ``down[i] = M_{i+1,i}``.
A slice whose Schur complement is exactly singular at some energy (a state decoupled from the leads
sitting exactly at E, e.g. E = 0 in some graphene junctions) gives NaN at that energy only;
``Solution`` then re-solves there at E +- delta.
Formulas (Schur complements; ``gL``/``gR``: Green's functions of the slices left/right of i, inclusive):
    gL_0 = M_00^-1,          gL_i = (M_ii - down_{i-1} gL_{i-1} up_{i-1})^-1
    gR_{N-1} = M_NN^-1,      gR_i = (M_ii - up_i gR_{i+1} down_i)^-1
    G_ii = (M_ii - down_{i-1} gL_{i-1} up_{i-1} - up_i gR_{i+1} down_i)^-1
    G_{i,0} = -gR_i down_{i-1} G_{i-1,0},      G_{i,N-1} = -gL_i up_i G_{i+1,N-1}
    G_{i,i+1} = -gL_i up_i G_{i+1,i+1},       G_{i+1,i} = -G_{i+1,i+1} down_i gL_i
"""

from __future__ import annotations

import torch


def _solve(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a^-1 b``; NaN for the batch members where ``a`` is exactly singular (the caller re-solves there)."""
    x, info = torch.linalg.solve_ex(a, b)
    if not bool(info.any()):
        return x
    return torch.where((info == 0)[..., None, None], x, torch.full_like(x, float("nan")))


def _inv(a: torch.Tensor) -> torch.Tensor:
    x, info = torch.linalg.inv_ex(a)
    if not bool(info.any()):
        return x
    return torch.where((info == 0)[..., None, None], x, torch.full_like(x, float("nan")))


def last_first_block(diag: list[torch.Tensor], up: list[torch.Tensor], down: list[torch.Tensor]) -> torch.Tensor:
    """``G_{N-1,0}`` by one left-to-right sweep with linear solves (no explicit inverses).

    Enough for the transmission; each step solves for ``gL_i up_i`` and ``gL_i down_{i-1} G_{i-1,0}``
    with one factorisation.
    """
    n = len(diag)
    b0 = diag[0].shape[-1]
    eye = torch.eye(b0, dtype=diag[0].dtype, device=diag[0].device).expand(*diag[0].shape[:-2], b0, b0)
    m = diag[0]
    column = eye  # right-hand side that becomes G^L_{i,0}
    for i in range(n):
        if i > 0:
            column = down[i - 1] @ column
        if i == n - 1:
            return _solve(m, column) * (-1) ** (n - 1)  # each step contributes a -1
        x = _solve(m, torch.cat([up[i], column], dim=-1))
        g_up, column = x[..., : up[i].shape[-1]], x[..., up[i].shape[-1]:]
        m = diag[i + 1] - down[i] @ g_up
    raise AssertionError("unreachable")


def left_connected(diag, up, down) -> list[torch.Tensor]:
    g = [_inv(diag[0])]
    for i in range(1, len(diag)):
        g.append(_inv(diag[i] - down[i - 1] @ g[i - 1] @ up[i - 1]))
    return g


def right_connected(diag, up, down) -> list[torch.Tensor]:
    n = len(diag)
    g = [None] * n
    g[n - 1] = _inv(diag[n - 1])
    for i in range(n - 2, -1, -1):
        g[i] = _inv(diag[i] - up[i] @ g[i + 1] @ down[i])
    return g


def full_diagonal(diag, up, down, gl, gr) -> list[torch.Tensor]:
    n = len(diag)
    out = []
    for i in range(n):
        m = diag[i]
        if i > 0:
            m = m - down[i - 1] @ gl[i - 1] @ up[i - 1]
        if i < n - 1:
            m = m - up[i] @ gr[i + 1] @ down[i]
        out.append(_inv(m))
    return out


def first_column(down, gr, g_diag) -> list[torch.Tensor]:
    """``[G_{i,0}]`` for all slices i."""
    col = [g_diag[0]]
    for i in range(1, len(g_diag)):
        col.append(-gr[i] @ down[i - 1] @ col[i - 1])
    return col


def last_column(up, gl, g_diag) -> list[torch.Tensor]:
    """``[G_{i,N-1}]`` for all slices i."""
    n = len(g_diag)
    col = [None] * n
    col[n - 1] = g_diag[n - 1]
    for i in range(n - 2, -1, -1):
        col[i] = -gl[i] @ up[i] @ col[i + 1]
    return col


def off_diagonal(up, down, gl, g_diag) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``([G_{i,i+1}], [G_{i+1,i}])``."""
    upper = [-gl[i] @ up[i] @ g_diag[i + 1] for i in range(len(up))]
    lower = [-g_diag[i + 1] @ down[i] @ gl[i] for i in range(len(down))]
    return upper, lower
