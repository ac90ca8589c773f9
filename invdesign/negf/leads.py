"""Lead surface Green's functions and self-energies, differentiable by the implicit function theorem.

The forward value comes from any solver of the Dyson fixed point ``g = [A00 - A01 g A10]^-1``
(exact Bloch modes by default: closed form when ``h01 = alpha 1`` (``lead_chain``), else ``lead_fast``
batched in torch, ``lead_modes`` (QZ) where its checks fail; Lopez-Sancho decimation as an
alternative), memoised on the inputs' values (``lead_cache``).
The backward pass never unrolls the solver: at the fixed point (dg = -g dM g with M = g^-1),
    dg - (g A01) dg (A10 g) = -g [dA00 - dA01 g A10 - A01 g dA10] g,
a Stein equation, so the vector-Jacobian product solves the adjoint Stein equation once. The backward is
written in differentiable torch operations, so higher derivatives (e.g. d/dtheta of dT/dE) work.
Conventions (orientation of h01, sign of Sigma and Gamma): ``invdesign.negf``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from invdesign.negf import lead_cache
from invdesign.negf.energies import as_energies, broadened_energies
from invdesign.negf.errors import ConvergenceError, NEGFInputError
from invdesign.negf.lead_chain import chain_lead, chain_surface_gf
from invdesign.negf.lead_fast import hopping_bases, surface_gf_fast
from invdesign.negf.lead_modes import count_open_channels, surface_gf_modes
from invdesign.negf.system import Lead

SANCHO_TOL = 1e-13
COUNT_SHIFT_EV = 1e-6
SANCHO_MAX_ITER = 200


def lead_blocks(lead: Lead, z: torch.Tensor, dtype: torch.dtype):
    """``(A00, A01, A10)`` of ``A = z S - H`` for energies ``z`` (nE,): shapes ``(..., nE, n, n)``."""
    zz = z.to(dtype)[:, None, None]
    h00, h01 = (m.to(dtype=dtype, device=z.device).unsqueeze(-3) for m in (lead.h00, lead.h01))
    if lead.has_overlap:
        s00, s01 = (m.to(dtype=dtype, device=z.device).unsqueeze(-3) for m in (lead.s00, lead.s01))
        a00, a01, a10 = zz * s00 - h00, zz * s01 - h01, zz * s01.mH - h01.mH
    else:
        eye = torch.eye(lead.size, dtype=dtype, device=z.device)
        a00, a01, a10 = zz * eye - h00, -h01, -h01.mH
    return torch.broadcast_tensors(a00, a01, a10)


STEIN_CHUNK_BYTES = 2**28  # peak memory of one chunk of Kronecker systems (256 MiB)
STEIN_RTOL = 1e-12  # residual of the eigenbasis Stein solve, relative to |C| + |X|, accepted below this


def _solve_stein_kronecker(p: torch.Tensor, q: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``X - P X Q = C`` (flat batch) by the dense Kronecker form, O((r1 r2)^3) per member; differentiable.

    Solved in chunks of the batch so that the (r1 r2)^2 systems stay within ``STEIN_CHUNK_BYTES``.
    """
    r1, r2 = p.shape[-1], q.shape[-1]
    eye = torch.eye(r1 * r2, dtype=p.dtype, device=p.device)
    chunk = max(1, STEIN_CHUNK_BYTES // (p.element_size() * (r1 * r2) ** 2))
    out = []
    for lo in range(0, p.shape[0], chunk):
        sl = slice(lo, lo + chunk)
        kron = torch.einsum("nac,ndb->nabcd", p[sl], q[sl]).reshape(-1, r1 * r2, r1 * r2)
        out.append(torch.linalg.solve(eye - kron, c[sl].reshape(-1, r1 * r2, 1)))
    return torch.cat(out).reshape(-1, r1, r2)


def _solve_stein_eig(p: torch.Tensor, q: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, ok)`` for ``X - P X Q = C`` (flat batch) in the eigenbases of P and Q, O(r^3) per member.

    With ``P = Wp Dp Wp^-1``, ``Q = Wq Dq Wq^-1``: ``Y = Wp^-1 C Wq / (1 - dp_i dq_j)``, ``X = Wp Y Wq^-1``.
    ``ok`` marks members whose residual passes ``STEIN_RTOL`` (near a band edge P is close to defective
    and its eigenbasis ill-conditioned; those members are solved in the Kronecker form instead).
    """
    dp, wp = torch.linalg.eig(p)
    dq, wq = torch.linalg.eig(q)
    y, info_p = torch.linalg.solve_ex(wp, c @ wq)
    y = y / (1 - dp[:, :, None] * dq[:, None, :])
    x, info_q = torch.linalg.solve_ex(wq, wp @ y, left=False)
    residual = (x - p @ x @ q - c).abs().amax((-2, -1))
    scale = c.abs().amax((-2, -1)) + x.abs().amax((-2, -1))
    ok = (info_p == 0) & (info_q == 0) & torch.isfinite(residual) & (residual <= STEIN_RTOL * scale)
    return x, ok


def _solve_stein(p: torch.Tensor, q: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Solve ``X - P X Q = C`` for batched square P (r1), Q (r2).

    Under autograd (a double backward) the Kronecker form, whose ops are differentiable; otherwise the
    O(r^3) eigenbasis solve, with the Kronecker form for the members it cannot resolve.
    """
    r1, r2 = p.shape[-1], q.shape[-1]
    batch = torch.broadcast_shapes(p.shape[:-2], q.shape[:-2], c.shape[:-2])
    p, q, c = (x.expand(*batch, *x.shape[-2:]).reshape(-1, *x.shape[-2:]) for x in (p, q, c))
    if torch.is_grad_enabled():
        return _solve_stein_kronecker(p, q, c).reshape(*batch, r1, r2)
    x, ok = _solve_stein_eig(p, q, c)
    if not bool(ok.all()):
        bad = torch.nonzero(~ok).reshape(-1)
        x = x.index_copy(0, bad, _solve_stein_kronecker(p[bad], q[bad], c[bad]))
    return x.reshape(*batch, r1, r2)


def _nonzero_index(m: torch.Tensor, dim: int) -> torch.Tensor:
    """Indices along ``dim`` (-2: rows, -1: columns) where ``m`` has any nonzero entry in the batch."""
    other = -1 if dim == -2 else -2
    mask = m.detach().abs().amax(dim=other).reshape(-1, m.shape[dim]).amax(0) > 0
    return torch.nonzero(mask).reshape(-1)


def _implicit_vjp(a00, a01, a10, g, gbar):
    """Adjoints ``(A00bar, A01bar, A10bar)`` of ``g`` at the Dyson fixed point, given ``gbar``.

    ``Mbar`` solves ``Mbar - (g^H A01^H) Mbar (A10^H g^H) = g^H gbar g^H`` and ``A00bar = -Mbar``.
    In a first-order backward only the rows of A01 and the columns of A10 that are not zero enter
    that Stein equation, so it is solved on those r1 x r2 entries (graphene leads: a few orbitals,
    not the whole cell). When the backward itself is differentiated (``create_graph``), all entries
    are kept, so second derivatives also reach hopping entries that are currently zero.
    """
    gh = g.mH
    c = gh @ gbar @ gh
    if torch.is_grad_enabled():  # double backward: keep every entry differentiable
        rows = cols = torch.arange(g.shape[-1], device=g.device)
    else:
        rows = _nonzero_index(a01, -2)  # j with A01[j, :] != 0
        cols = _nonzero_index(a10, -1)  # k with A10[:, k] != 0
    if len(rows) == 0 or len(cols) == 0:
        mbar = c
    else:
        u = gh @ a01.mH[..., :, rows]  # (n, r1)
        v = a10.mH[..., cols, :] @ gh  # (r2, n)
        z = _solve_stein(u[..., rows, :], v[..., :, cols], c[..., rows, :][..., :, cols])
        mbar = c + u @ z @ v
    # g = M^-1 with M = A00 - A01 g A10, so dg = -g dM g: the adjoint of A00 is -Mbar.
    return -mbar, mbar @ (g @ a10).mH, (a01 @ g).mH @ mbar


class _SurfaceGF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a00, a01, a10, solver):
        g = solver(a00.detach(), a01.detach(), a10.detach())
        ctx.save_for_backward(a00, a01, a10, g)
        return g

    @staticmethod
    def backward(ctx, gbar):
        a00, a01, a10, g = ctx.saved_tensors
        if not any(ctx.needs_input_grad[:3]):
            return None, None, None, None
        return (*_implicit_vjp(a00, a01, a10, g, gbar), None)


class _SurfaceGFMirrorPair(torch.autograd.Function):
    """``(g_right, g_left)`` of a lead and its mirror image (the other lead of a uniform wire) from one
    solve. The left lead's own blocks are inputs too, so its parameters get their gradients
    (the caller checked that their values mirror the right lead's)."""

    @staticmethod
    def forward(ctx, a00, a01, a10, a00_l, a01_l, a10_l, solver):
        g, g_l = solver(a00.detach(), a01.detach(), a10.detach())
        ctx.save_for_backward(a00, a01, a10, g, a00_l, a01_l, a10_l, g_l)
        return g, g_l

    @staticmethod
    def backward(ctx, gbar, gbar_l):
        a00, a01, a10, g, a00_l, a01_l, a10_l, g_l = ctx.saved_tensors
        return (*_implicit_vjp(a00, a01, a10, g, gbar), *_implicit_vjp(a00_l, a01_l, a10_l, g_l, gbar_l), None)


def _is_mirror(left: Lead, right: Lead) -> bool:
    """True when ``left`` is ``right`` seen from the other side: same h00 (s00), h01_L = h01_R^dagger."""
    if left.size != right.size or left.has_overlap != right.has_overlap:
        return False
    pairs = [(left.h00, right.h00), (left.h01, right.h01.mH)]
    if left.has_overlap:
        pairs += [(left.s00, right.s00), (left.s01, right.s01.mH)]
    return all(a.shape == b.shape and torch.equal(a.detach(), b.detach().to(a.dtype)) for a, b in pairs)


def _memoised(lead: Lead, z: torch.Tensor, method: str, dtype: torch.dtype, mirror: bool = False) -> Callable:
    """The solver of ``method`` behind :mod:`invdesign.negf.lead_cache`, keyed by the lead's values and
    ``z``; the hopping bases of the fast path are computed on a miss only."""
    keys = (lead.h00, lead.h01, lead.s00, lead.s01, z)
    tag = ("mirror" if mirror else "single", method, dtype)
    extra = {"mirror": True} if mirror else {}

    def run(*blocks):
        hit = lead_cache.lookup(tag, keys)
        if hit is not None:  # copies: callers (and autograd) may modify their outputs in place
            hit = tuple(h.clone() for h in hit)
            return hit if len(hit) > 1 else hit[0]
        out = _chain_solver(lead, z, blocks, mirror) if method == "modes" else None
        if out is None:
            out = SOLVERS[method](*blocks, bases=_bases(lead, method), **extra)
        lead_cache.store(tag, keys, out if isinstance(out, tuple) else (out,))
        return out

    return run


def _chain_solver(lead: Lead, z: torch.Tensor, blocks, mirror: bool):
    """g (with ``mirror``: the pair) in closed form when ``h01 = alpha 1`` (``invdesign.negf.lead_chain``),
    else None. ``blocks`` are ``lead_blocks(lead, z)``; only their shape and dtype are used."""
    chain = chain_lead(lead.h00, lead.h01, lead.has_overlap)
    if chain is None:
        return None
    shape = torch.broadcast_shapes(*(b.shape for b in blocks))
    g = chain_surface_gf(chain, z).to(blocks[0].device)
    if not bool(torch.isfinite(g).all()):  # zeta + sqrt(..) = 0 needs alpha = 0, excluded; kept as a guard
        return None
    g = g.to(blocks[0].dtype)
    if g.shape != shape:
        g = g.expand(shape).contiguous()
    return (g, g.clone()) if mirror else g


def surface_gf_pair_z(left: Lead, right: Lead, z: torch.Tensor, method: str = "modes", dtype=torch.complex128):
    """``(g_left, g_right)`` at validated energies; one solve when the leads mirror each other."""
    if method in MODE_METHODS and _is_mirror(left, right):
        solver = _memoised(right, z, method, dtype, mirror=True)
        g_right, g_left = _SurfaceGFMirrorPair.apply(*lead_blocks(right, z, dtype), *lead_blocks(left, z, dtype), solver)
        return g_left, g_right
    return surface_gf_z(left, z, method, dtype), surface_gf_z(right, z, method, dtype)


def _exact_modes(a00, a01, a10, mirror: bool = False):
    """The exact mode solver (numpy, complex128 on the CPU), results back in the inputs' dtype/device."""
    out = surface_gf_modes(*(x.cpu().to(torch.complex128).numpy() for x in (a00, a01, a10)), mirror=mirror)
    back = lambda g: torch.as_tensor(g).to(dtype=a00.dtype, device=a00.device)  # noqa: E731
    return tuple(back(g) for g in out) if mirror else back(out)


def _fast_then_exact(a00, a01, a10, u, v, refine: bool, mirror: bool = False):
    """g for blocks ``(..., n, n)`` (and, with ``mirror``, g of the mirror lead ``(A00, A10, A01)``).

    The batched torch path on the blocks' device (``invdesign.negf.lead_fast``) first; the members
    that fail its checks go to the exact QZ path, which for a mirror pair solves both leads from one
    QZ (their errors then stay consistent next to a pole, where g is huge).
    """
    shape = torch.broadcast_shapes(a00.shape, a01.shape, a10.shape)
    n = shape[-1]
    flat = [x.expand(shape).reshape(-1, n, n).to(torch.complex128) for x in (a00, a01, a10)]
    u, v = u.to(flat[0].device), v.to(flat[0].device)
    fast = surface_gf_fast(*flat, u, v, refine, mirror)  # a mirror pair from one eigendecomposition
    out, ok = list(fast[::2]), fast[1] if not mirror else fast[1] & fast[3]
    if not bool(ok.all()):
        bad = torch.nonzero(~ok).reshape(-1)
        exact = surface_gf_modes(*(x[bad].cpu().numpy() for x in flat), mirror=mirror)
        exact = exact if mirror else (exact,)
        out = [o.index_copy(0, bad, torch.as_tensor(e).to(o.device)) for o, e in zip(out, exact)]
    out = tuple(o.reshape(shape).to(a00.dtype) for o in out)
    return out if mirror else out[0]


def _modes_solver(a00, a01, a10, mirror: bool = False, bases: tuple | None = None):
    """Exact surface Green's function(s): fast batched path, exact QZ fallback (see ``_fast_then_exact``).

    ``bases = (U, V, refine)``: the lead's hopping bases (:func:`~invdesign.negf.lead_fast.hopping_bases`)
    and whether they need reducing member by member (see ``surface_gf_fast``).
    """
    u, v, refine = bases
    return _fast_then_exact(a00, a01, a10, u, v, refine, mirror)


def _bases(lead: Lead, method: str):
    """``(U, V, refine)`` for the fast path: refined per member when ``E s01 - h01`` may have a lower
    rank than ``[h01, s01]`` (overlap) or the batch holds several leads."""
    if method != "modes":
        return None
    return (*hopping_bases(lead.h01, lead.s01), lead.has_overlap or lead.h01.ndim > 2)


def _sancho_iterate(a00, a01, a10, max_iter: int = SANCHO_MAX_ITER, tol: float = SANCHO_TOL):
    """Lopez-Sancho decimation (torch, batched); differentiable when its inputs are (unrolled)."""
    es, e, a, b = a00, a00, a01, a10
    history = []
    scale = max(1.0, float(a00.detach().abs().max()))
    for _ in range(max_iter):
        rhs = torch.cat([b, a], dim=-1)
        gb, ga = torch.linalg.solve(e, rhs).split(b.shape[-1], dim=-1)  # e^-1 b, e^-1 a
        es = es - a @ gb
        e = e - a @ gb - b @ ga
        a, b = -(a @ ga), -(b @ gb)
        res = float(torch.maximum(a.detach().abs().amax(), b.detach().abs().amax())) / scale
        history.append(res)
        if res < tol:
            return torch.linalg.inv(es), history
    raise ConvergenceError(
        "Lopez-Sancho decimation did not converge (inside a band it needs eta > 0; the default "
        "method='modes' is exact at real energies)",
        history,
    )


def _sancho_solver(a00, a01, a10, bases=None):
    return _sancho_iterate(a00, a01, a10)[0]


def _qz_solver(a00, a01, a10, mirror: bool = False, bases=None):
    return _exact_modes(a00, a01, a10, mirror)


# "modes": exact, fast batched path with the QZ path as its verified fallback (default);
# "qz": the QZ mode path alone (the reference the fast path is tested against); "sancho": decimation.
SOLVERS: dict[str, Callable] = {"modes": _modes_solver, "qz": _qz_solver, "sancho": _sancho_solver}
MODE_METHODS = ("modes", "qz")


def surface_gf_z(lead: Lead, z: torch.Tensor, method: str = "modes", dtype=torch.complex128) -> torch.Tensor:
    """Surface Green's function at validated 1-D complex energies ``z``: ``(..., nE, n, n)``."""
    if method not in SOLVERS:
        raise NEGFInputError(f"unknown surface Green's function method {method!r}; choose from {tuple(SOLVERS)}")
    return _SurfaceGF.apply(*lead_blocks(lead, z, dtype), _memoised(lead, z, method, dtype))


def self_energy_z(
    lead: Lead, z: torch.Tensor, edge_size: int, method: str = "modes", dtype=torch.complex128, g=None
) -> torch.Tensor:
    """Self-energy at validated 1-D complex energies ``z``: ``(..., nE, m, m)`` (``g``: if known)."""
    c, sc = lead.coupling_to(edge_size)
    g = surface_gf_z(lead, z, method, dtype) if g is None else g
    zz = z.to(dtype)[:, None, None]
    c = c.to(dtype=dtype, device=g.device).unsqueeze(-3)
    if sc is None:
        tau, tau_dag = -c, -c.mH
    else:
        sc = sc.to(dtype=dtype, device=g.device).unsqueeze(-3)
        tau, tau_dag = zz * sc - c, zz * sc.mH - c.mH
    return tau_dag @ g @ tau


def surface_green_function(
    lead: Lead,
    energies,
    *,
    method: str = "modes",
    eta: float = 0.0,
    dtype: torch.dtype = torch.complex128,
) -> torch.Tensor:
    """Retarded surface Green's function of lead cell 0, shape ``(..., nE, n, n)`` (1/eV).

    Args:
        lead: the lead; its matrices may carry batch dimensions ``...``.
        energies: number or 1-D grid (eV), real or complex with Im >= 0; may require grad.
            A number gives shape ``(..., n, n)``.
        method: ``"modes"`` (exact at real energies, default; batched fast path with the QZ path as
            its checked fallback), ``"qz"`` (the QZ mode path alone) or ``"sancho"`` (decimation;
            needs ``eta > 0`` inside a band).
        eta: optional broadening (eV) added as ``E + i eta``; 0 by default.
        dtype: complex working dtype.
    """
    z, scalar = broadened_energies(energies, eta, dtype, lead.h00.device)
    g = surface_gf_z(lead, z, method, dtype)
    return g.squeeze(-3) if scalar else g


def surface_green_function_sancho_unrolled(
    lead: Lead, energies, *, eta: float, dtype: torch.dtype = torch.complex128
) -> torch.Tensor:
    """Lopez-Sancho surface Green's function with autograd *through the iterations*.

    A reference for testing the implicit backward; slower and memory-hungry, not for production.
    """
    z, scalar = broadened_energies(energies, eta, dtype, lead.h00.device)
    g = _sancho_iterate(*lead_blocks(lead, z, dtype))[0]
    return g.squeeze(-3) if scalar else g


def self_energy(
    lead: Lead,
    energies,
    edge_size: int | None = None,
    *,
    method: str = "modes",
    eta: float = 0.0,
    dtype: torch.dtype = torch.complex128,
) -> torch.Tensor:
    """Lead self-energy on the device edge slice, shape ``(..., nE, m, m)`` (eV).

    ``Sigma = (E s_c^dagger - c^dagger) g (E s_c - c)`` with ``c = coupling``, i.e. ``c^dagger g c`` for
    an orthogonal basis. ``edge_size`` defaults to the lead cell size (coupling = h01^dagger).
    """
    z, scalar = broadened_energies(energies, eta, dtype, lead.h00.device)
    sigma = self_energy_z(lead, z, lead.size if edge_size is None else edge_size, method, dtype)
    return sigma.squeeze(-3) if scalar else sigma


def broadening(sigma: torch.Tensor) -> torch.Tensor:
    """``Gamma = i (Sigma - Sigma^dagger)``."""
    return 1j * (sigma - sigma.mH)


def open_channels(lead: Lead, energies) -> np.ndarray:
    """Number of open (propagating, outgoing) channels of the lead at real energies, shape ``(..., nE)``.

    The ideal transmission of a perfect lead; at a band edge itself the count is ambiguous, and exactly
    at a high-order band touching (a flat band) it is the limit from above (E + 1e-6 eV).
    """
    z, scalar = as_energies(energies)
    if z.imag.abs().max() > 0:
        raise NEGFInputError("open_channels needs real energies")
    blocks, above = ([x.detach().cpu().numpy() for x in lead_blocks(lead, zz, torch.complex128)]
                     for zz in (z, z + COUNT_SHIFT_EV))
    counts = count_open_channels(blocks, above)
    return counts[..., 0] if scalar else counts


__all__ = [
    "broadening",
    "lead_blocks",
    "open_channels",
    "self_energy",
    "surface_green_function",
    "surface_green_function_sancho_unrolled",
]
