"""Recursive Green's function sweeps over a block-tridiagonal ``M = E S - H - Sigma`` (O(N b^3)).

Blocks carry leading batch dimensions ``(..., nE, b, b)`` (parameter sets, energies), so one sweep
serves a whole energy grid. ``diag[i] = M_ii``, ``up[i] = M_{i,i+1}``, ``down[i] = M_{i+1,i}``.
A slice whose Schur complement is singular or ill conditioned at some energy gives NaN at that energy
only (``_guarded``); ``Solution`` then re-solves there on merged slices (``invdesign.negf.regroup``:
exact), and where the whole matrix is singular (a state decoupled from the leads sitting exactly at E,
e.g. E = 0 in some graphene junctions) at E +- delta.
Formulas (Schur complements; ``gL``/``gR``: Green's functions of the slices left/right of i, inclusive):
    gL_0 = M_00^-1,          gL_i = (M_ii - down_{i-1} gL_{i-1} up_{i-1})^-1
    gR_{N-1} = M_NN^-1,      gR_i = (M_ii - up_i gR_{i+1} down_i)^-1
    G_ii = (M_ii - down_{i-1} gL_{i-1} up_{i-1} - up_i gR_{i+1} down_i)^-1
                             = gR_i + gR_i down_{i-1} G_{i-1,i-1} up_{i-1} gR_i
    G_{i,0} = -gR_i down_{i-1} G_{i-1,0},      G_{i,N-1} = -gL_i up_i G_{i+1,N-1}
    G_{i-1,i} = -G_{i-1,i-1} up_{i-1} gR_i,    G_{i,i-1} = -gR_i down_{i-1} G_{i-1,i-1}
"""

from __future__ import annotations

import contextlib
import contextvars
import weakref

import numpy as np
import torch


COND_LIMIT = 1e8  # |a^-1 b| |a| / |b| above this: the slice's elimination loses > 8 digits


def _amax(x: torch.Tensor) -> torch.Tensor:
    """Largest |Re| or |Im| entry of each matrix, ``(..., m, n) -> (...)`` (cheaper than complex abs)."""
    if x.is_conj():
        x = x.conj()  # a lazily conjugated view: its conjugate is plain, with the same magnitudes
    v, dims = (torch.view_as_real(x), (-3, -2, -1)) if x.is_complex() else (x, (-2, -1))
    return torch.maximum(v.amax(dims), v.amin(dims).neg())  # two reductions, no |x| temporary (NaN stays NaN)


_GUARD = contextvars.ContextVar("invdesign_rgf_conditioning_guard", default=True)


@contextlib.contextmanager
def conditioning_guard(enabled: bool):
    """Within this context, ill-conditioned slices are (or, with ``enabled=False``, are not) marked NaN.
    Off for a device of one slice: its factorisation pivots over the whole matrix, so a large condition
    number there is the physics (a state nearly decoupled from the leads), not the partition."""
    token = _GUARD.set(enabled)
    try:
        yield
    finally:
        _GUARD.reset(token)


def _guarded(x: torch.Tensor, info: torch.Tensor, a: torch.Tensor, b_scale) -> torch.Tensor:
    """NaN for the members where ``a`` is singular or so ill conditioned that the sweep would return
    digits of rounding (a slice's Schur complement can be near-singular while the whole matrix is not);
    the caller re-solves those energies on merged slices (``invdesign.negf.regroup``)."""
    bad = info != 0
    if _GUARD.get():
        with torch.no_grad():
            bad = bad | ~(_amax(x) * _amax(a) <= COND_LIMIT * b_scale)
    if not bool(bad.any()):
        return x
    return torch.where(bad[..., None, None], torch.full_like(x, float("nan")), x)


def _solve(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a^-1 b``; NaN for the batch members where ``a`` is singular or ill conditioned (``_guarded``)."""
    x, info = torch.linalg.solve_ex(a, b)
    return _guarded(x, info, a, _amax(b.detach()))


def _inv(a: torch.Tensor) -> torch.Tensor:
    x, info = torch.linalg.inv_ex(a)
    return _guarded(x, info, a, 1.0)


Pattern = tuple  # (p, q, diagonal) of one coupling, see _coupled


def _coupled(up: torch.Tensor, down: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, bool]:
    """``(p, q, diagonal)``: indices of the orbitals of slices i and i+1 that ``up_i``/``down_i`` couple
    (None for all), and whether both couplings are square and structurally diagonal (site i to its
    copy in the next slice: square and cubic lattices, discretised effective-mass models).

    ``up_i = P K_u Q^T``, ``down_i = Q K_d P^T`` with one-hot ``P``, ``Q`` on these indices. Entries
    that are zero now but carry a gradient might be bonds at a zero value: then every orbital counts.
    """
    if up.requires_grad or down.requires_grad:
        return None, None, False
    return _patterns_of(_nonzero_masks([up]) | _nonzero_masks([down]).transpose(0, 2, 1), up.device)[0]


def _patterns_of(nz: np.ndarray, device) -> list[Pattern]:
    """:func:`_coupled` patterns of couplings given as nonzero masks ``(L, b_i, b_{i+1})`` (``up`` or
    ``down^T`` nonzero): rows touched, columns touched, and structurally diagonal (a transpose keeps
    an entry off the diagonal, so ``up`` and ``down`` can share one mask)."""
    rows, cols = nz.any(2), nz.any(1)
    square = nz.shape[1] == nz.shape[2]
    diagonal = ~(nz & ~np.eye(nz.shape[1], dtype=bool)).any((1, 2)) if square else np.zeros(len(nz), bool)
    return [(_compact(torch.as_tensor(np.nonzero(rows[k])[0], device=device), nz.shape[1]),
             _compact(torch.as_tensor(np.nonzero(cols[k])[0], device=device), nz.shape[2]), bool(diagonal[k]))
            for k in range(len(nz))]


def _compact(idx: torch.Tensor, size: int):
    """None for all ``size`` orbitals, a ``slice`` for a contiguous run (views instead of gathers), else ``idx``."""
    if len(idx) == size:
        return None
    if len(idx) and int(idx[-1] - idx[0]) + 1 == len(idx):
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


def _count(idx, size: int) -> int:
    """Number of orbitals an index set of :func:`_compact` selects out of ``size``."""
    if idx is None:
        return size
    return idx.stop - idx.start if isinstance(idx, slice) else len(idx)


def _indices(idx, size: int, device) -> torch.Tensor:
    if idx is None:
        return torch.arange(size, device=device)
    return torch.arange(idx.start, idx.stop, device=device) if isinstance(idx, slice) else idx


_PATTERNS: dict[int, tuple] = {}  # id(h) -> (weakref to h, version key, pattern); the ref guards id reuse
PATTERN_MEMO = 4096  # couplings; a thin-slice device has hundreds


def coupling_patterns(couplings: list[torch.Tensor], overlaps: list[torch.Tensor] | None = None) -> list[Pattern]:
    """:func:`_coupled` of ``up_i = z s_i - h_i``, ``down_i = z s_i^dagger - h_i^dagger`` for every energy,
    from the device's coupling blocks ``h_i`` (and overlap blocks ``s_i``) alone: their zero pattern is
    the same at every energy. Memoised on the tensors (a self-consistent loop keeps its couplings while
    the diagonal blocks change), so the pattern is found once, not at every sweep; the others are read
    off in one pass per group of equally shaped couplings (a thin-slice device has hundreds)."""
    out: list = [None] * len(couplings)
    todo: dict = {}  # (shapes, device) -> indices of couplings whose pattern is not memoised
    keys = []
    for i, h in enumerate(couplings):
        s = None if overlaps is None else overlaps[i]
        key = (h._version, h.requires_grad, None if s is None else (id(s), s._version, s.requires_grad))
        keys.append(key)
        hit = _PATTERNS.get(id(h))
        if hit is not None and hit[0]() is h and hit[1] == key:
            out[i] = hit[2]
        elif h.requires_grad or (s is not None and s.requires_grad):
            out[i] = (None, None, False)
        else:
            todo.setdefault((_distinct(h).shape, h.device, None if s is None else _distinct(s).shape), []).append(i)
    for idx in todo.values():
        nz = _nonzero_masks([couplings[i] for i in idx])
        if overlaps is not None:
            nz = nz | _nonzero_masks([overlaps[i] for i in idx])
        for i, pattern in zip(idx, _patterns_of(nz, couplings[idx[0]].device)):
            out[i] = pattern
    for i, h in enumerate(couplings):
        if len(_PATTERNS) >= PATTERN_MEMO:
            _PATTERNS.clear()
        _PATTERNS[id(h)] = (weakref.ref(h), keys[i], out[i])
    return out


def _nonzero_masks(mats: list[torch.Tensor]) -> np.ndarray:
    """Entries that are nonzero in any batch member, bool ``(len(mats), rows, cols)``, in one pass."""
    x = torch.stack([_distinct(m) for m in mats]) if len(mats) > 1 else _distinct(mats[0]).unsqueeze(0)
    nz = x != 0
    return nz.reshape(nz.shape[0], -1, *nz.shape[-2:]).any(1).cpu().numpy()


def mirrored(patterns: list[Pattern]) -> list[Pattern]:
    """The patterns of the reversed chain (slice order flipped: ``up`` and ``down`` trade places)."""
    return [(q, p, d) for p, q, d in reversed(patterns)]


def _times(k: torch.Tensor, x: torch.Tensor, diagonal: bool) -> torch.Tensor:
    """``k @ x``; a row scaling when ``k`` is diagonal (O(b^2) instead of O(b^3))."""
    return torch.diagonal(k, dim1=-2, dim2=-1)[..., :, None] * x if diagonal else k @ x


def _distinct(x: torch.Tensor) -> torch.Tensor:
    """``x`` without its broadcast (stride 0) batch dimensions, e.g. a coupling shared by all energies."""
    x = x.detach()
    for dim in range(x.ndim - 2):
        if x.stride(dim) == 0:
            x = x.narrow(dim, 0, 1)
    return x


def _take(m: torch.Tensor, rows, cols) -> torch.Tensor:
    """``m[rows][:, cols]`` for index sets of :func:`_compact` (a view for None and slices)."""
    m = m if rows is None else m[..., rows, :]
    return m if cols is None else m[..., :, cols]


def _one_hot(idx, size: int, like: torch.Tensor) -> torch.Tensor:
    """Columns ``idx`` of the identity, with the batch dimensions of ``like`` (a 2-D right-hand side of
    the same shape as a batch of vectors would be read as vectors by ``torch.linalg.solve``)."""
    eye = torch.eye(size, dtype=like.dtype, device=like.device)[:, idx]
    return eye.expand(*like.shape[:-2], size, eye.shape[-1])


def _embed(x: torch.Tensor, idx, size: int) -> torch.Tensor:
    """``Q x`` (rows ``idx`` of a ``size``-row matrix, zero elsewhere); ``x`` itself when ``idx`` is None."""
    if idx is None:
        return x
    if isinstance(idx, slice):
        out = x.new_zeros(*x.shape[:-2], size, x.shape[-1])
        out[..., idx, :] = x
        return out
    return x.new_zeros(*x.shape[:-2], size, x.shape[-1]).index_copy(-2, idx, x)


def _minus_at(m: torch.Tensor, x: torch.Tensor, idx) -> torch.Tensor:
    """``m - Q x Q^T``: ``x`` subtracted from the ``idx`` x ``idx`` sub-block (no embedding into zeros)."""
    if idx is None:
        return m - x
    batch = m.shape[:-2] if m.shape[:-2] == x.shape[:-2] else torch.broadcast_shapes(m.shape[:-2], x.shape[:-2])
    out = m.expand(*batch, *m.shape[-2:]).clone()
    if isinstance(idx, slice):
        out[..., idx, idx] -= x
    else:
        out[..., idx[:, None], idx] -= x
    return out


def last_first_block(diag: list[torch.Tensor], up: list[torch.Tensor], down: list[torch.Tensor],
                     patterns: list[Pattern] | None = None) -> torch.Tensor:
    """``G_{N-1,0}`` by one left-to-right sweep with linear solves, restricted to the coupled orbitals.

    Enough for the transmission. With ``p_i``/``q_i`` the orbitals that coupling i touches in slices i
    and i+1 (:func:`_coupled`; ``up_i = P K_u Q^T``, ``down_i = Q K_d P^T``) the sweep carries
    ``XU_i = (g^L_i)_{p_i p_i} K_u,i`` for the next Schur complement
    ``m_{i+1} = M_{i+1,i+1} - Q_i K_d,i XU_i Q_i^T`` and ``c_i = (G^L_{i,0})_{p_i, :}`` for the column
    ``c_{i+1} = -(g^L_{i+1} Q_i K_d,i c_i)_{p_{i+1}, :}``. Each slice is factorised once, with the
    cheaper of two right-hand sides: ``[P K_u, Q K_d c]`` (|q_{i+1}| + b_0 columns, where couplings
    touch every orbital) or ``[P, Q]`` (|p_{i+1}| + |q_i| columns: graphene ribbons and tubes, where
    they touch a few edge atoms); diagonal couplings (square lattices) take ``g`` itself, scaled.
    ``patterns``: :func:`coupling_patterns` of the couplings if known (found here otherwise).
    """
    n = len(diag)
    g0 = _inv(diag[0])
    if n == 1:
        return g0
    if patterns is None:
        patterns = [_coupled(up[i], down[i]) for i in range(n - 1)]
    p, q, diagonal = patterns[0]
    xu = _times(_take(up[0], p, q).mT, _take(g0, p, p).mT, diagonal).mT
    c = _take(g0, p, None)
    for i in range(n - 1):
        k_down = _take(down[i], q, p)
        b_next = diag[i + 1].shape[-1]
        if isinstance(xu, tuple):  # (g_i, diag K_u,i): m = M - K_d g K_u in one pass over the batch
            g, k_u = xu
            k_d = torch.diagonal(k_down, dim1=-2, dim2=-1)
            m = torch.addcmul(diag[i + 1], g, k_d[..., :, None] * k_u[..., None, :], value=-1)
        else:
            m = _minus_at(diag[i + 1], _times(k_down, xu, diagonal), q)
        rhs_col = _times(k_down, c, diagonal)  # (|q_i|, b0)
        if i + 1 == n - 1:
            return -_solve(m, _embed(rhs_col, q, b_next))
        p_next, q_next, diagonal = patterns[i + 1]
        k_up = _take(up[i + 1], p_next, q_next)
        width = [_count(v, b) for v, b in ((p_next, b_next), (q, b_next), (q_next, k_up.shape[-1]))]
        if diagonal and q is None:  # g itself, scaled: one inverse and one product per slice
            g = _inv(m)
            k_u = torch.diagonal(k_up, dim1=-2, dim2=-1)
            # fused next update only without a graph: addcmul's backward costs more than it saves
            fused = not (torch.is_grad_enabled() and (g.requires_grad or k_up.requires_grad))
            xu, c = ((g, k_u) if fused else g * k_u[..., None, :]), -(g @ rhs_col)
        elif width[2] + c.shape[-1] <= width[0] + width[1]:
            y = _solve(m, torch.cat([_embed(k_up, p_next, b_next), _embed(rhs_col, q, b_next)], dim=-1))
            y = _take(y, p_next, None)
            xu, c = y[..., : width[2]], -y[..., width[2]:]
        else:
            cols = torch.cat([_indices(v, b_next, m.device) for v in (p_next, q)])
            y = _take(_solve(m, _one_hot(cols, b_next, m)), p_next, None)
            xu, c = y[..., : width[0]] @ k_up, -(y[..., width[0]:] @ rhs_col)
        p, q = p_next, q_next
    raise AssertionError("unreachable")


def first_column_times(diag: list[torch.Tensor], up: list[torch.Tensor], down: list[torch.Tensor],
                       y: torch.Tensor, patterns: list[Pattern] | None = None) -> list[torch.Tensor]:
    """``[G_{i,0} y]`` for all slices i (``y``: ``(..., b_0, c)``), by a right-to-left sweep that solves
    only for the orbitals each coupling touches, then the column from the left.

    ``G_{i,0} = -gR_i Q_{i-1} K_d (G_{i-1,0})_{p_{i-1}, :}`` needs only ``gR_i Q_{i-1}`` (columns of the
    right-connected Green's function at the orbitals coupled to slice i-1), and so does the Schur
    complement into slice i-1: one factorisation per slice with ``|q_{i-1}|`` right-hand sides, no
    explicit inverse. With ``y`` a factor of ``Gamma_L = y y^H`` this gives the left-injected spectral
    function ``G Gamma_L G^H`` at the cost of ``c`` = its rank columns. ``patterns``: as in
    :func:`last_first_block`.
    """
    n = len(diag)
    coupled = patterns if patterns is not None else [_coupled(up[i], down[i]) for i in range(n - 1)]
    ys: list[torch.Tensor | None] = [None] * n
    schur = None  # (up_{i} gR_{i+1} down_{i} on its coupled orbitals, those orbitals) of slice i
    for i in range(n - 1, 0, -1):
        m = diag[i] if schur is None else _minus_at(diag[i], *schur)
        p, q, _ = coupled[i - 1]
        b = m.shape[-1]
        ys[i] = _solve(m, torch.eye(b, dtype=m.dtype, device=m.device).expand_as(m) if q is None
                       else _one_hot(q, b, m))  # gR_i Q_{i-1}: (b_i, |q_{i-1}|)
        inner = _take(up[i - 1], p, q) @ _take(ys[i], q, None) @ _take(down[i - 1], q, p)
        schur = (inner, p)
    m0 = diag[0] if schur is None else _minus_at(diag[0], *schur)
    cols = [_solve(m0, y.expand(*m0.shape[:-2], *y.shape[-2:]))]
    for i in range(1, n):
        p, q, _ = coupled[i - 1]
        cols.append(-(ys[i] @ (_take(down[i - 1], q, p) @ _take(cols[-1], p, None))))
    return cols


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
    """``[G_ii]``, each the inverse of its own Schur complement: no cancellation between large terms,
    so ``i (G - G^dagger)`` keeps full relative accuracy where the LDOS is tiny (real energies in gaps)."""
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


def diagonal_blocks(diag, up, down, gr, off_diagonal: bool = False):
    """``([G_ii], [G_{i,i+1}], [G_{i+1,i}])`` from the right-connected ``gr``, without more inverses.

    One inverse per slice instead of three (:func:`full_diagonal`), for sums of ``G`` itself at
    complex energies (the SCF pole sum): ``G_ii`` is a sum, so ``Im G_ii`` at a real energy in a gap
    carries rounding of the larger terms (1e-12 absolute), which LDOS work must avoid.

    ``G_00 = gR_0``, ``G_ii = gR_i + gR_i down_{i-1} G_{i-1,i-1} up_{i-1} gR_i``,
    ``G_{i-1,i} = -G_{i-1,i-1} up_{i-1} gR_i``, ``G_{i,i-1} = -gR_i down_{i-1} G_{i-1,i-1}``
    (the off-diagonal lists are empty unless ``off_diagonal``).
    """
    gd, g_up, g_down = [gr[0]], [], []
    for i in range(1, len(diag)):
        left = gr[i] @ down[i - 1]  # gR_i M_{i,i-1}
        right = up[i - 1] @ gr[i]  # M_{i-1,i} gR_i
        gd.append(gr[i] + left @ gd[i - 1] @ right)
        if off_diagonal:
            g_up.append(-gd[i - 1] @ right)
            g_down.append(-left @ gd[i - 1])
    return gd, g_up, g_down


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
