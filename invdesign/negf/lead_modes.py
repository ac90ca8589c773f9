"""Exact lead surface Green's function from the lead's Bloch modes (numpy/scipy, no autograd).

For a lead with ``A = E S - H`` (conventions: ``invdesign.negf``) a Bloch solution
``psi_n = lambda^n phi`` of ``A10 psi_{n-1} + A00 psi_n + A01 psi_{n+1} = 0`` is an eigenvector of the
pencil
    [[0, I], [-A10, -A00]] x = lambda [[I, 0], [0, A01]] x,      x = [psi_{n-1}; psi_n],
which stays well posed when ``h01`` is singular (infinite eigenvalues). The retarded surface Green's
function uses the n *outgoing* solutions: those decaying away from the device (|lambda| < 1), taken
as an orthonormal deflating subspace from an ordered QZ (robust to defective evanescent eigenvalues),
plus the propagating ones (|lambda| = 1) whose group velocity
    v ~ 2 Im(lambda phi^dagger A01 phi) / phi^dagger S(k) phi
points away from the device; degenerate propagating modes are rotated to diagonalise the velocity
(current) operator first. With ``X = [T; B]`` spanning the outgoing solutions (``B = F T``, ``F`` the
cell-to-cell propagator), ``g = (A00 + A01 F)^-1 = T (A00 T + A01 B)^-1``. No broadening is added.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from invdesign.negf.errors import ConvergenceError

UNIT_CIRCLE_TOL = 1e-8  # |1 - |lambda|| below this: propagating (eigenvalues carry ~1e-8 error at band edges)
DEGENERATE_TOL = 1e-7  # propagating eigenvalues closer than this share a velocity-diagonalised group
# g = T W^-1 has a pole where the lead's own termination carries a bound state (e.g. E = 0 for some
# graphene cells), and no mode basis exists exactly at a high-order band touching (E = 0 in zigzag
# ribbons), and next to such points the mode basis is too ill-conditioned for g to satisfy its
# own Dyson equation. There g is returned as NaN and the device solve (invdesign.negf.solution) evaluates at
# E +- delta instead and averages.
DYSON_RTOL = 1e-9  # |g (A00 - A01 g A10) - 1| or -min eig i(g - g^H) above this x max(1, |g|): NaN
SINGULAR_PENCIL_RTOL = 1e-12  # |alpha|, |beta| both below this (relative): singular pencil
NULL_SPACE_RTOL = 1e-6  # singular values of (A - lambda B) below this (relative) span the mode space
PAIRING_WINDOW = 1e-3  # at real E, eigenvalues this close to |lambda| = 1 are tested by pairing


def _is_real_energy(a00, a01, a10) -> bool:
    """A = E S - H at a real energy: A00 Hermitian and A10 = A01^dagger."""
    scale = max(1.0, np.abs(a00).max(), np.abs(a01).max())
    return bool(np.abs(a10 - a01.conj().T).max() <= 1e-14 * scale
                and np.abs(a00 - a00.conj().T).max() <= 1e-14 * scale)


def _pencil(a00: np.ndarray, a01: np.ndarray, a10: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = a00.shape[0]
    eye, zero = np.eye(n, dtype=complex), np.zeros((n, n), dtype=complex)
    lhs = np.block([[zero, eye], [-a10, -a00]])
    rhs = np.block([[eye, zero], [zero, a01]])
    return lhs, rhs


def _propagating_groups(lam: np.ndarray) -> list[list[int]]:
    """Cluster unit-circle eigenvalues (indices into ``lam``) that coincide to ``DEGENERATE_TOL``."""
    order = np.argsort(np.angle(lam))
    groups: list[list[int]] = []
    for i in order:
        for grp in groups:
            if abs(lam[grp[0]] - lam[i]) < DEGENERATE_TOL:
                grp.append(i)
                break
        else:
            groups.append([i])
    return groups


def _simple_modes(lhs, rhs, lams: np.ndarray) -> np.ndarray | None:
    """Unit eigenvectors ``(k, 2n)`` of simple eigenvalues by two steps of batched inverse iteration.

    Returns None if a shifted pencil is exactly singular (the caller then uses :func:`_mode_space`).
    """
    pencils = lhs[None] - lams[:, None, None] * rhs[None]
    start = np.exp(1j * 0.7391 * np.arange(1, lhs.shape[0] + 1))  # generic, fixed: reproducible
    try:
        with np.errstate(all="ignore"):
            x = np.linalg.solve(pencils, np.broadcast_to(start, (len(lams), len(start)))[..., None])
            x = x / np.linalg.norm(x, axis=1, keepdims=True)
            x = np.linalg.solve(pencils, x)[..., 0]
            x = x / np.linalg.norm(x, axis=1, keepdims=True)
    except np.linalg.LinAlgError:
        return None
    return x if np.all(np.isfinite(x)) else None


def _mode_space(pencil_at_lambda: np.ndarray, multiplicity: int) -> np.ndarray:
    """Orthonormal basis ``(2n, dim)`` of the null space of ``A - lambda B`` (SVD).

    Tells a genuinely degenerate eigenvalue (as many null directions as its multiplicity) from a band
    edge, where a pair of modes forms one Jordan chain and only one null direction exists.
    """
    _, sv, vh = np.linalg.svd(pencil_at_lambda)
    dim = min(multiplicity, int(np.count_nonzero(sv < NULL_SPACE_RTOL * max(1.0, sv[0]))))
    return vh[len(sv) - dim:].conj().T


def _on_unit_circle(lam: np.ndarray, real_energy: bool) -> np.ndarray:
    """Mask of propagating eigenvalues.

    At real energies eigenvalues come in pairs (lambda, 1/conj(lambda)), and a propagating one is its
    own partner. Near a flat band or a high-order band edge, eigenvalues cluster and carry errors far
    above rounding (~eps / gap^3), so the test "|lambda| = 1 within a tolerance" misfires; matching each
    eigenvalue's partner to itself rather than to a neighbour does not.
    """
    finite = np.isfinite(lam) & (lam != 0)
    near = finite & (np.abs(np.abs(lam) - 1.0) <= (PAIRING_WINDOW if real_energy else UNIT_CIRCLE_TOL))
    if not real_energy or not near.any():
        return near
    cand = np.nonzero(near)[0]
    pool = np.nonzero(finite)[0]
    partner = 1.0 / np.conj(lam[cand])
    dist = np.abs(lam[pool][None, :] - partner[:, None])  # (candidates, pool)
    dist[pool[None, :] == cand[:, None]] = np.inf  # exclude each candidate itself
    d_self = np.abs(lam[cand] - partner)
    out = np.zeros(lam.shape, dtype=bool)
    out[cand] = (d_self <= UNIT_CIRCLE_TOL) | (d_self < dist.min(axis=1))
    return out


def _classify(lhs, rhs, a01, alpha, beta, real_energy):
    """Decide which eigenvalues of the pencil are outgoing.

    Returns ``(select, select_in, velocities, velocities_in, split)``: ``select`` marks eigenvalues
    taken whole as outgoing (decaying ones and propagating groups that all move away from the
    device), ``select_in`` those taken whole as incoming; ``split`` lists groups of coinciding
    propagating eigenvalues that must be split by velocity (a band edge, i.e. a Jordan pair, or modes
    of opposite velocities at one k), as ``(is_edge, [(v, top, bottom), ...])``.
    The velocity of a mode x = [psi_0; psi_1] is ``2 Im(lambda psi_0^H A01 psi_0)`` (up to a positive
    norm); for a group it is the Hermitian current form ``-i (M - M^H)``, ``M = lambda X0^H A01 X0``.
    """
    n = lhs.shape[0] // 2
    finite = np.abs(beta) > 0
    lam = np.full(alpha.shape, np.inf + 0j)
    lam[finite] = alpha[finite] / beta[finite]
    on_circle = _on_unit_circle(lam, real_energy)
    select = (np.abs(alpha) < np.abs(beta)) & ~on_circle
    select_in = ~select & ~on_circle
    on_circle = np.nonzero(on_circle)[0]
    groups = _propagating_groups(lam[on_circle])
    velocities, velocities_in, split = [], [], []
    singles = [on_circle[g[0]] for g in groups if len(g) == 1]
    x = _simple_modes(lhs, rhs, lam[singles]) if singles else None
    if x is not None:
        top = x[:, :n]
        v = 2 * np.imag(lam[singles] * np.einsum("ka,ab,kb->k", top.conj(), a01, top))
        select[singles] = v > 0
        select_in[singles] = v <= 0
        velocities += list(v[v > 0])
        velocities_in += list(v[v <= 0])
        groups = [g for g in groups if len(g) > 1]
    for grp in groups:
        idx = on_circle[grp]
        lam_g = lam[idx].mean()
        x = _mode_space(lhs - lam_g * rhs, len(idx))
        dim = x.shape[1]
        top, bot = x[:n], x[n:]
        # Current form on the coefficients of x (the psi_0 parts alone may be dependent).
        m = lam_g * (top.conj().T @ a01 @ top)
        v, c = np.linalg.eigh(-1j * (m - m.conj().T))
        if dim == len(idx) and (np.all(v > 0) or np.all(v < 0)):
            select[idx] = v[0] > 0
            select_in[idx] = v[0] < 0
            velocities += list(v[v > 0])
            velocities_in += list(v[v < 0])
        else:
            split.append((dim < len(idx), [(v[k], top @ c[:, k], bot @ c[:, k]) for k in range(dim)]))
    return select, select_in, velocities, velocities_in, split


def _reordered_basis(qz, select: np.ndarray) -> np.ndarray:
    """Orthonormal basis (first columns of Z) of the deflating subspace of the selected eigenvalues."""
    aa, bb, q, z = qz
    tgsen = scipy.linalg.get_lapack_funcs("tgsen", (aa, bb))
    out = tgsen(select, aa, bb, q, z, ijob=0, lwork=1, liwork=1)
    if out[-1] != 0:
        raise ConvergenceError(f"reordering the lead's QZ decomposition failed (LAPACK tgsen info={out[-1]})")
    return out[-6][:, : int(np.count_nonzero(select))]


def _assemble(n, basis, whole_velocities, split, direction):
    """``(top, bottom, velocities)`` from the whole-eigenvalue basis and the split groups.

    ``direction`` is +1 for the outgoing modes and -1 for the incoming ones.
    """
    edge = [mode for is_edge, modes in split if is_edge for mode in modes]
    candidates = sorted((mode for is_edge, modes in split if not is_edge for mode in modes),
                        key=lambda mode: -direction * mode[0])
    n_pick = n - basis.shape[1] - len(edge)
    if n_pick < 0 or n_pick > len(candidates):
        raise ConvergenceError(
            f"lead mode classification failed: {basis.shape[1]} whole, {len(edge)} band-edge and "
            f"{len(candidates)} undecided propagating modes for a lead of {n} orbitals"
        )
    # Ranking the undecided modes by velocity (rather than testing the sign) keeps the count exact
    # where rounding blurs a sign.
    extra = edge + candidates[:n_pick]
    top = np.hstack([basis[:n]] + [t[:, None] for _, t, _ in extra])
    bot = np.hstack([basis[n:]] + [b[:, None] for _, _, b in extra])
    velocities = [direction * v for v in whole_velocities] + [direction * v for v, _, _ in extra if direction * v > 0]
    return top, bot, np.array(velocities), len(edge)


def lead_modes(a00: np.ndarray, a01: np.ndarray, a10: np.ndarray, mirror: bool = False):
    """Outgoing solutions of a lead (and of its mirror image) at one energy.

    Returns ``[(top, bottom, velocities, n_band_edge_modes)]``, plus a second tuple for the *mirror lead* ``(A00, A10,
    A01)`` when ``mirror`` (the other lead of a uniform wire: its h01 is this lead's h01^dagger).
    ``top``/``bottom`` are ``(n, n)`` with columns ``psi_0`` and ``psi_1`` of the n outgoing solutions;
    ``velocities`` holds ``dE/dk`` (up to a positive norm) of the propagating outgoing modes.
    The mirror lead's outgoing solutions are this lead's incoming ones read backwards, so one QZ
    serves both. Eigenvalues are gathered into orthonormal deflating subspaces by reordering the QZ,
    so nearly parallel eigenvectors (close to band edges and flat bands) do not spoil the basis.
    """
    n = a00.shape[0]
    lhs, rhs = _pencil(a00, a01, a10)
    real_energy = _is_real_energy(a00, a01, a10)
    qz = scipy.linalg.qz(lhs, rhs, output="complex")
    alpha, beta = np.diag(qz[0]), np.diag(qz[1])
    if np.any((np.abs(alpha) < SINGULAR_PENCIL_RTOL * np.abs(lhs).max())
              & (np.abs(beta) < SINGULAR_PENCIL_RTOL * max(1.0, np.abs(rhs).max()))):
        # det(A00 + A01 lambda + A10 / lambda) vanishes for every lambda: a flat band sits exactly
        # at this energy (E = |t| in armchair ribbons) and no mode basis exists.
        raise ConvergenceError("singular lead pencil: a flat band lies exactly at this energy")
    select, select_in, vel, vel_in, split = _classify(lhs, rhs, a01, alpha, beta, real_energy)
    result = [_assemble(n, _reordered_basis(qz, select), vel, split, +1)]
    if mirror:
        top, bot, v, n_edge = _assemble(n, _reordered_basis(qz, select_in), vel_in, split, -1)
        result.append((bot, top, v, n_edge))  # read backwards: psi_1 of this lead is psi_0 of the mirror
    return result


def _gf_from_modes(a00, a01, a10, top, bot, real_energy: bool) -> np.ndarray:
    """``g = T (A00 T + A01 B)^-1``, or NaN where it cannot be trusted (see ``DYSON_RTOL``)."""
    w = a00 @ top + a01 @ bot
    try:
        with np.errstate(all="ignore"):
            g = top @ np.linalg.solve(w, np.eye(len(a00)))
    except np.linalg.LinAlgError:
        return np.full(a00.shape, np.nan + 0j)  # exactly on a surface-state pole of g
    if not np.all(np.isfinite(g)):
        return np.full(a00.shape, np.nan + 0j)
    # Next to a pole or a multiple band touching the mode basis is ill-conditioned; the Dyson
    # residual tells whether g still solves its own equation.
    residual = np.abs(g @ (a00 - a01 @ g @ a10) - np.eye(len(a00))).max()
    scale = max(1.0, np.abs(g).max())
    if residual > DYSON_RTOL * scale:
        return np.full(a00.shape, np.nan + 0j)
    if real_energy and np.linalg.eigvalsh(1j * (g - g.conj().T)).min() < -DYSON_RTOL * scale:
        return np.full(a00.shape, np.nan + 0j)  # the lead's spectral function must be >= 0
    return g


def surface_gf_modes(a00: np.ndarray, a01: np.ndarray, a10: np.ndarray, mirror: bool = False):
    """Retarded surface Green's function for a batch ``(..., n, n)`` of ``(A00, A01, A10)``.

    With ``mirror``, returns ``(g, g_mirror)``, ``g_mirror`` for the lead ``(A00, A10, A01)``.
    NaN marks energies at a pole or an unresolvable band touching (see ``DYSON_RTOL``).
    """
    shape = a00.shape
    n = shape[-1]
    a00, a01, a10 = (np.broadcast_to(x, shape).reshape(-1, n, n) for x in (a00, a01, a10))
    out = np.empty((1 + mirror, a00.shape[0], n, n), dtype=complex)
    for i in range(a00.shape[0]):
        try:
            modes = lead_modes(a00[i], a01[i], a10[i], mirror)
        except ConvergenceError:  # exactly at a high-order band touching (flat band): treat as a pole
            out[:, i] = np.nan
            continue
        real = _is_real_energy(a00[i], a01[i], a10[i])
        out[0, i] = _gf_from_modes(a00[i], a01[i], a10[i], *modes[0][:2], real)
        if mirror:
            out[1, i] = _gf_from_modes(a00[i], a10[i], a01[i], *modes[1][:2], real)
    out = out.reshape(1 + mirror, *shape)
    return (out[0], out[1]) if mirror else out[0]


def count_open_channels(blocks, blocks_above) -> np.ndarray:
    """Number of propagating outgoing modes (open channels) for a batch ``(..., n, n)``.

    ``blocks = (A00, A01, A10)`` at the energies; ``blocks_above`` the same a little higher in energy,
    used exactly at a band edge or touching (where modes merge and the count is ambiguous): the limit
    from above.
    """
    shape = blocks[0].shape
    n = shape[-1]
    flat = [np.broadcast_to(x, shape).reshape(-1, n, n) for x in (*blocks, *blocks_above)]
    counts = np.empty(len(flat[0]), dtype=int)
    for i in range(len(counts)):
        try:
            _, _, v, n_edge = lead_modes(flat[0][i], flat[1][i], flat[2][i])[0]
        except ConvergenceError:
            n_edge = 1
        if n_edge:  # a band edge or touching at this very energy: count ambiguous, take the limit
            _, _, v, _ = lead_modes(flat[3][i], flat[4][i], flat[5][i])[0]
        counts[i] = np.count_nonzero(v > 0)
    return counts.reshape(shape[:-2])
