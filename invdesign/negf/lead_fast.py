"""Batched lead surface Green's function in torch, on the tensors' device: the fast path.

The exact mode solver (``invdesign.negf.lead_modes``) runs a QZ of the full ``2n x 2n`` pencil per
energy on the CPU. Here the whole batch (energies x parameter sets) is solved at once, on a pencil
reduced to the rank of the hopping, and every member is checked; members that fail a check are
handed back to the exact solver (``invdesign.negf.leads`` does that), so answers never change.

Reduction (conventions of ``A = E S - H``, ``A01``, ``A10``: ``invdesign.negf``). With orthonormal
bases ``U`` (n x r1) of the column space of ``[h01, s01]`` and ``V`` (n x r2) of ``[h01^H, s01^H]``
(energy independent), ``A01 = U K01 V^H`` and ``A10 = V K10 U^H`` at every energy. A Bloch solution
``psi_m = lambda^m phi`` of ``A10 psi_{m-1} + A00 psi_m + A01 psi_{m+1} = 0`` gives, with
``a = V^H phi`` (r2), ``b = U^H phi / lambda`` (r1) and ``G = A00^-1``,
    a + (V^H G V K10) b = -lambda (V^H G U K01) a,      -(U^H G V K10) b = lambda [(U^H G U K01) a + b],
a pencil ``L x = lambda R x`` of size r1 + r2 (graphene ribbons: the few edge orbitals, not the cell).
It is solved as the standard eigenproblem ``(L^-1 R) x = x / lambda`` (``torch.linalg.eig``).
The surface Green's function of a semi-infinite lead is ``g = [A00 - A01 g A10]^-1``; its only
unknown is ``X = V^H g V`` (r2 x r2). A source at cell 0 reaches cell 1 through ``A10``, so each
outgoing mode obeys ``X (K10 b) = -a``: with the r2 outgoing modes as columns, ``X = -A (K10 B)^-1``
and ``g = [A00 - U K01 X K10 U^H]^-1``.

Outgoing modes: ``|lambda| < 1``, or ``|lambda| = 1`` with group velocity
``v ~ 2 Im(lambda phi^H A01 phi) = 2 |lambda|^2 Im(b^H K01 a)`` > 0 (same formula as the exact path).
Degenerate propagating modes (e.g. symmetric bands of a nanotube) need no rotation when the current
form on their common eigenspace is definite (then every vector of it moves the same way); that is
checked (Cholesky), as is everything else that the exact path resolves and this one does not:
    * no eigenvalue in the band-edge zone ``PROPAGATING_TOL <= ||lambda| - 1| < EDGE_ZONE``, no
      propagating velocity below ``VELOCITY_RTOL``, no outgoing eigenvalue within ``SEPARATION_RTOL``
      of an incoming one (band edges, where two modes merge into a Jordan pair; flat bands);
    * exactly r2 outgoing modes, as many right- as left-movers at real energies;
    * the Dyson residual ``|g M - 1| <= FAST_DYSON_RTOL max(1, |g|) max(1, |M|)`` and
      ``<= lead_modes.DYSON_RTOL max(1, |g|)`` (the exact path's own rule),
      ``M = A00 - A01 g A10``, and
      ``i (g - g^H) >= 0`` at real energies;
    * every factorisation nonsingular (``A00`` at an eigenvalue of ``h00`` is handed back, for one).
"""

from __future__ import annotations

import torch

from invdesign.negf.lead_modes import DYSON_RTOL

PROPAGATING_TOL = 1e-10  # ||lambda| - 1| below this: propagating (eig's error away from band edges ~1e-14)
EDGE_ZONE = 1e-6  # ... between the two: too close to a band edge to classify here (exact path)
SEPARATION_RTOL = 1e-3  # outgoing vs incoming eigenvalues closer than this: a band edge (exact path)
DEGENERATE_TOL = 1e-7  # propagating eigenvalues closer than this form one eigenspace
VELOCITY_RTOL = 1e-8  # |v| below this x |K01|: a band edge (exact path)
FAST_DYSON_RTOL = 3e-14  # |g M - 1| / (|g| |M|), M = g^-1: tighter than the exact path's acceptance
# (lead_modes.DYSON_RTOL x |g|, also required) wherever |M| < 3e4.
# Near band edges eig's basis is less accurate than QZ's reordered Schur basis
# (measured: g off by up to 1e-10 at residuals of 1e-13); those 1-2 % of energies go to the exact path.
POSITIVITY_RTOL = 1e-9  # -min eig i(g - g^H) allowed, x max(1, |g|): a wrong mode choice gives O(|g|)
RANK_RTOL = 1e-13  # singular values of the hopping below this x the largest are zero
HERMITIAN_RTOL = 1e-14  # A00 Hermitian and A10 = A01^H to this: a real energy


def hopping_bases(h01: torch.Tensor, s01: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthonormal ``(U, V)``, shapes ``(n, r1)``, ``(n, r2)``, with ``A01 = U U^H A01 V V^H``.

    ``h01``/``s01``: ``(..., n, n)``; the bases span the union over the batch, so one pair serves all
    parameter sets and energies (``A01 = E s01 - h01``, ``A10 = E s01^H - h01^H``).
    """
    mats = [h01] if s01 is None else [h01, s01]
    n = h01.shape[-1]
    cols = torch.cat([m.detach().to(torch.complex128).reshape(-1, n, n) for m in mats])  # (k, n, n)
    u = _range_basis(cols.transpose(0, 1).reshape(n, -1))  # columns of every block side by side
    v = _range_basis(cols.mH.transpose(0, 1).reshape(n, -1))
    return u, v


def _range_basis(m: torch.Tensor) -> torch.Tensor:
    if m.abs().max() == 0:
        return m[:, :0]
    u, s, _ = torch.linalg.svd(m, full_matrices=False)
    return u[:, : int((s > RANK_RTOL * s[0]).sum())]


def _member_bases(u, v, k01, k10):
    """Per-member bases ``(B, n, r)`` on which ``A01`` and ``A10`` of each member live, with the
    reduced ``K01``, ``K10``: ``r`` is the largest numerical rank in the batch (members of lower rank
    carry spurious eigenvalues at 0 and infinity and fail the checks)."""
    uk = torch.linalg.svd(torch.cat([k01, k10.mH], dim=-1), full_matrices=False)
    vk = torch.linalg.svd(torch.cat([k01.mH, k10], dim=-1), full_matrices=False)
    r1 = int((uk.S > RANK_RTOL * uk.S[..., :1]).sum(-1).max())
    r2 = int((vk.S > RANK_RTOL * vk.S[..., :1]).sum(-1).max())
    uu, vv = uk.U[..., :r1], vk.U[..., :r2]
    return u @ uu, v @ vv, uu.mH @ k01 @ vv, vv.mH @ k10 @ uu


def _entry_max(x: torch.Tensor) -> torch.Tensor:
    """Largest |Re| or |Im| of the entries of each matrix ``(B, n, n) -> (B,)``, within sqrt 2 of max |x_ij|
    (complex abs, a hypot per entry, cost more than the rest of a check)."""
    return torch.view_as_real(x).abs().amax((-3, -2, -1)) if x.is_complex() else x.abs().amax((-2, -1))


def _is_real(a00, a01, a10) -> torch.Tensor:
    scale = torch.maximum(_entry_max(a00), _entry_max(a01)).clamp(min=1.0)
    off = _entry_max(a10 - a01.mH)
    herm = _entry_max(a00 - a00.mH)
    return (off <= HERMITIAN_RTOL * scale) & (herm <= HERMITIAN_RTOL * scale)


def surface_gf_fast(a00: torch.Tensor, a01: torch.Tensor, a10: torch.Tensor, u: torch.Tensor,
                    v: torch.Tensor, refine: bool = True, mirror: bool = False) -> tuple[torch.Tensor, ...]:
    """``(g, ok)`` for a flat batch ``(B, n, n)`` of complex128 blocks, on their device.

    ``g`` is ``(B, n, n)``; ``ok`` ``(B,)`` marks the members that passed every check (the others
    hold garbage and must be solved by the exact path). ``u``, ``v``: :func:`hopping_bases`.
    ``refine``: reduce further to each member's own rank of ``A01`` (needed when ``A01 = E s01 - h01``
    has a lower rank than the span of ``h01`` and ``s01`` together, as for graphene with overlap, or
    for a batch of leads); ``False`` when ``U^H A01 V`` is known to have full rank.
    ``mirror``: also ``(g_m, ok_m)`` of the mirror lead ``(A00, A10, A01)`` (the other lead of a uniform
    wire) from the same eigendecomposition: its Bloch solutions are the same with ``lambda -> 1/lambda``,
    so its outgoing modes are this lead's incoming ones, with ``a' = U^H phi ~ b``, ``b' = V^H phi ~ a``
    and the bases and ``K01``/``K10`` trading places.
    """
    batch, n = a00.shape[0], a00.shape[-1]
    r1, r2 = u.shape[-1], v.shape[-1]
    eye_n = torch.eye(n, dtype=a00.dtype, device=a00.device)
    real = _is_real(a00, a01, a10)
    k01 = u.mH @ a01 @ v  # (B, r1, r2)
    k10 = v.mH @ a10 @ u  # (B, r2, r1)
    if refine and r1 and r2:
        u, v, k01, k10 = _member_bases(u, v, k01, k10)
        r1, r2 = u.shape[-1], v.shape[-1]
    if r1 == 0 or r2 == 0:  # decoupled cells: g = A00^-1
        g, info = torch.linalg.inv_ex(a00)
        return _verified(g, a00, a01, a10, real, info == 0)
    uv = torch.cat([u, v], dim=-1)
    y, info_g = torch.linalg.solve_ex(a00, uv.expand(batch, n, r1 + r2))
    w = uv.mH @ y  # [[U^H G U, U^H G V], [V^H G U, V^H G V]]
    ugu, ugv, vgu, vgv = w[:, :r1, :r1], w[:, :r1, r1:], w[:, r1:, :r1], w[:, r1:, r1:]
    m = r1 + r2
    lhs = torch.zeros(batch, m, m, dtype=a00.dtype, device=a00.device)
    rhs = torch.zeros_like(lhs)
    lhs[:, :r2, :r2] = torch.eye(r2, dtype=a00.dtype, device=a00.device)
    lhs[:, :r2, r2:] = vgv @ k10
    lhs[:, r2:, r2:] = -(ugv @ k10)
    rhs[:, :r2, :r2] = -(vgu @ k01)
    rhs[:, r2:, :r2] = ugu @ k01
    rhs[:, r2:, r2:] = torch.eye(r1, dtype=a00.dtype, device=a00.device)
    t, info_l = torch.linalg.solve_ex(lhs, rhs)
    ok = (info_g == 0) & (info_l == 0) & torch.isfinite(t).flatten(1).all(-1)
    t = torch.where(ok[:, None, None], t, torch.zeros_like(t))
    mu, x = torch.linalg.eig(t)  # mu = 1 / lambda; x = [a; b]
    a, b = x[:, :r2], x[:, r2:]
    dist = (mu.abs() - 1.0).abs()
    prop = real[:, None] & (dist < PROPAGATING_TOL)
    ok &= ~((dist < EDGE_ZONE) & ~prop).any(-1)
    # Current form on the modes: J_ij = -i (M_ij - conj(M_ji)), M = B^H K01 A; v_i = J_ii.
    cur = b.mH @ k01 @ a
    cur = -1j * (cur - cur.mH)
    vel = torch.diagonal(cur, dim1=-2, dim2=-1).real
    ok &= ~(prop & (vel.abs() <= VELOCITY_RTOL * _entry_max(k01)[:, None])).any(-1)
    same = prop[:, :, None] & prop[:, None, :] & ((mu[:, :, None] - mu[:, None, :]).abs() < DEGENERATE_TOL)
    sign = torch.sign(vel)
    ok &= ~(same & (sign[:, :, None] != sign[:, None, :])).any((-2, -1))
    form = torch.where(same, cur, torch.zeros_like(cur)) * sign[:, :, None]
    form = form + torch.diag_embed((~prop).to(form.dtype))
    form = torch.where(ok[:, None, None], form, torch.eye(m, dtype=form.dtype, device=form.device))
    ok &= torch.linalg.cholesky_ex(form)[1] == 0
    outgoing = torch.where(prop, vel > 0, mu.abs() > 1.0)
    ok &= outgoing.sum(-1) == r2
    # An outgoing and an incoming eigenvalue this close (a band edge) are resolved by eig to only
    # ~eps / gap, and the Dyson residual is quadratic in that error there: it would not notice.
    gap = (mu[:, :, None] - mu[:, None, :]).abs() / mu.abs().clamp(min=1.0)[:, :, None]
    crossing = outgoing[:, :, None] & ~outgoing[:, None, :]
    ok &= ~(crossing & (gap < SEPARATION_RTOL)).any((-2, -1))
    ok &= (prop & (vel > 0)).sum(-1) == (prop & (vel < 0)).sum(-1)
    pick = torch.argsort((~outgoing).to(torch.int8), dim=-1, stable=True)[:, :r2]
    pick = pick[:, None, :].expand(batch, m, r2)
    xo = x.gather(-1, pick)
    c = k10 @ xo[:, r2:]  # (B, r2, r2)
    xx, info_c = torch.linalg.solve_ex(c, -xo[:, :r2], left=False)  # X C = -A
    ok &= info_c == 0
    g, info = torch.linalg.inv_ex(a00 - u @ (k01 @ xx @ k10) @ u.mH)
    # At a real energy with no propagating mode (a gap) the retarded g is Hermitian: i (g - g^H) is the
    # lead's spectral function. Projecting removes rounding that would show as a negative LDOS.
    gap_energy = (real & ~prop.any(-1))[:, None, None]
    g = torch.where(gap_energy, (g + g.mH) / 2, g)
    g, ok_g = _verified(g, a00, a01, a10, real, ok & (info == 0))
    if not mirror:
        return g, ok_g
    pick_m = torch.argsort(outgoing.to(torch.int8), dim=-1, stable=True)[:, :r1]
    xi = x.gather(-1, pick_m[:, None, :].expand(batch, m, r1))  # incoming modes = the mirror's outgoing
    xm, info_m = torch.linalg.solve_ex(k01 @ xi[:, :r2], -xi[:, r2:], left=False)  # X' (K10' B') = -A'
    g_m, info_gm = torch.linalg.inv_ex(a00 - v @ (k10 @ xm @ k01) @ v.mH)
    g_m = torch.where(gap_energy, (g_m + g_m.mH) / 2, g_m)
    return (g, ok_g) + _verified(g_m, a00, a10, a01, real, ok & (info_m == 0) & (info_gm == 0))


def _verified(g, a00, a01, a10, real, ok):
    """``(g, ok)`` with ``ok`` cleared where ``g`` fails the Dyson residual or positivity checks."""
    n = g.shape[-1]
    ok = ok & torch.isfinite(g).flatten(1).all(-1)
    g = torch.where(ok[:, None, None], g, torch.zeros_like(g))
    eye = torch.eye(n, dtype=g.dtype, device=g.device)
    m = a00 - a01 @ g @ a10
    residual = _entry_max(g @ m - eye)
    g_scale = _entry_max(g).clamp(min=1.0)
    ok &= residual <= FAST_DYSON_RTOL * g_scale * _entry_max(m).clamp(min=1.0)
    # ... and the exact path's own acceptance: next to a pole |M| grows with |g|, and a g that is no
    # inverse of M at all (residual 5e19 at E = 0 in a (13,0) tube lead, |g| = 4e18) met the first bound
    ok &= residual <= DYSON_RTOL * g_scale
    if real.any():
        # i (g - g^H) >= -tol  <=>  i (g - g^H) + tol 1 is positive definite: a Cholesky, not an eigensolve
        shifted = 1j * (g - g.mH) + (POSITIVITY_RTOL * g_scale)[:, None, None] * eye
        ok &= ~real | (torch.linalg.cholesky_ex(shifted)[1] == 0)
    return g, ok
