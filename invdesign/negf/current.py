"""Landauer current, differential conductance and Seebeck coefficient (conventions: ``invdesign.negf``).

The Hamiltonian is held fixed: the bias enters only through the leads' Fermi functions,
``mu_L = mu + V/2`` and ``mu_R = mu - V/2``; I > 0 is e times the electron flux from left to right. A bias-dependent potential profile is the caller's
device (or the self-consistent loop's).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from invdesign.negf.constants import G0_S, KB_EV
from invdesign.negf.errors import NEGFInputError
from invdesign.negf.solution import solve
from invdesign.negf.system import Device, Lead

WINDOW_KT = 40.0  # f(E) differs from a step by < e^-40 beyond this many kT from mu
GAUSS_POINTS_PER_PANEL = 8
# At low temperature (node spacing > kT / 4) the Fermi edges get their own panels, boundaries at
# mu_L, mu_R +- kT * FERMI_EDGE_STEPS (geometric: no panel is much wider than its distance to the edge)
FERMI_EDGE_STEPS = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


def check_temperature(temperature_k, name: str = "temperature_k") -> float:
    """``temperature_k`` as a float, or NEGFInputError unless it is a finite number >= 0 (K)."""
    t = _finite_number(temperature_k, name, "K")
    if t < 0:
        raise NEGFInputError(f"{name} must be >= 0 K (absolute temperature); got {t}")
    return t


def _finite_number(value, name: str, unit: str) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.is_complex():
            raise NEGFInputError(f"{name} must be a single real number ({unit}); got a tensor of shape "
                                 f"{tuple(value.shape)}, dtype {value.dtype}")
        value = float(value.detach())
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise NEGFInputError(f"{name} must be a real number ({unit}); got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise NEGFInputError(f"{name} must be a finite number ({unit}); got {value}")
    return float(value)


def fermi(energies: torch.Tensor, mu, temperature_k: float) -> torch.Tensor:
    """Fermi-Dirac occupation ``1 / (1 + exp((E - mu) / kT))``; a step (1/2 at E = mu) at 0 K."""
    if check_temperature(temperature_k) == 0:  # validated; a tensor temperature keeps its gradient below
        return torch.heaviside(mu - energies, torch.tensor(0.5, dtype=energies.dtype, device=energies.device))
    return torch.sigmoid((mu - energies) / (KB_EV * temperature_k))


def gauss_legendre_grid(lo, hi, n_energies: int, breakpoints=()) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite Gauss-Legendre nodes and weights on ``[lo, hi]`` (eV), about ``n_energies`` points.

    ``lo``/``hi`` may be tensors; nodes and weights then depend on them differentiably.
    ``breakpoints`` (eV, numbers or 0-d tensors, which keep their gradient): energies where the
    integrand has a kink or a step (lead band edges); those strictly inside ``(lo, hi)`` become panel
    boundaries, so no panel straddles one (the panels are shared out in proportion to the segments'
    lengths, at least one each).
    """
    panels = max(1, math.ceil(n_energies / GAUSS_POINTS_PER_PANEL))
    x, w = np.polynomial.legendre.leggauss(GAUSS_POINTS_PER_PANEL)
    lo = torch.as_tensor(lo, dtype=torch.float64)
    hi = torch.as_tensor(hi, dtype=torch.float64)
    f_lo, f_hi = float(lo.detach()), float(hi.detach())
    a_lo, a_hi = min(f_lo, f_hi), max(f_lo, f_hi)
    inside: dict[float, object] = {}
    for b in breakpoints:
        fb = float(b.detach()) if isinstance(b, torch.Tensor) else float(b)
        if a_lo < fb < a_hi:
            inside.setdefault(fb, b)
    inner = [inside[k] for k in sorted(inside, reverse=f_hi < f_lo)]  # a signed interval is walked lo -> hi
    bounds = [lo, *(torch.as_tensor(b, dtype=torch.float64) for b in inner), hi]
    lengths = [abs(float((b - a).detach())) for a, b in zip(bounds[:-1], bounds[1:])]
    total = sum(lengths) or 1.0
    nodes, weights = [], []
    for (a, b), length in zip(zip(bounds[:-1], bounds[1:]), lengths):
        k = max(1, round(panels * length / total))
        edges = torch.linspace(0.0, 1.0, k + 1, dtype=torch.float64)
        pa, pb = edges[:-1, None], edges[1:, None]
        t = (0.5 * (pb - pa) * torch.as_tensor(x) + 0.5 * (pa + pb)).reshape(-1)  # nodes on [0, 1]
        wt = (0.5 * (pb - pa) * torch.as_tensor(w)).reshape(-1)
        nodes.append(a + (b - a) * t)
        weights.append((b - a) * wt)
    return torch.cat(nodes), torch.cat(weights)


def lead_band_edges(lead: Lead, n_k: int = 1024) -> np.ndarray:
    """Band extrema of a lead (eV, sorted): where T(E) of a device between such leads has its steps.

    The bands of ``H(k) = h00 + h01 e^{ik} + h01^dagger e^{-ik}`` (and ``S(k)`` alike) are sampled on
    ``n_k`` points of the whole zone (no symmetry assumed: fields make E(k) != E(-k)); each local
    extremum of a sorted band is refined by a parabola through its neighbours (error ~ (dk)^3 times the
    third derivative; a crossing of two bands also shows up, which costs a panel, not accuracy).
    Only the first member of a batched lead is used. No gradient flows through the result.
    """
    def first(m):
        m = m.detach().cpu().to(torch.complex128)
        return m.reshape(-1, *m.shape[-2:])[0].numpy()

    h00, h01 = first(lead.h00), first(lead.h01)
    k = 2 * np.pi * np.arange(n_k) / n_k
    phase = np.exp(1j * k)[:, None, None]
    hk = h00 + h01 * phase + h01.conj().T * phase.conj()
    if lead.s00 is None:
        e = np.linalg.eigvalsh(hk)
    else:
        s00, s01 = first(lead.s00), first(lead.s01)
        sk = s00 + s01 * phase + s01.conj().T * phase.conj()
        c = np.linalg.cholesky(sk)
        ci = np.linalg.inv(c)
        e = np.linalg.eigvalsh(ci @ hk @ ci.conj().transpose(0, 2, 1))
    prev, nxt = np.roll(e, 1, axis=0), np.roll(e, -1, axis=0)  # periodic zone
    extremum = ((e <= prev) & (e <= nxt)) | ((e >= prev) & (e >= nxt))
    ik, ib = np.nonzero(extremum)
    y0, y1, y2 = prev[ik, ib], e[ik, ib], nxt[ik, ib]
    curvature = y0 - 2 * y1 + y2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(curvature) > 1e-300, 0.5 * (y0 - y2) / curvature, 0.0)
    edges = y1 - 0.25 * (y0 - y2) * shift  # the parabola's vertex
    return np.unique(np.round(edges, 12))


def current(
    device: Device,
    bias,
    temperature_k: float,
    *,
    mu: float = 0.0,
    n_energies: int = 400,
    window_kt: float = WINDOW_KT,
    breakpoints=(),
    **solve_kwargs,
) -> torch.Tensor:
    """Landauer current ``I = (2e/h) Int T(E) [f_L - f_R] dE`` in A (spin-degenerate).

    Args:
        device: the device (held fixed; the bias only moves the Fermi levels).
        bias: V (volts), a number or a 0-d tensor (may require grad: dI/dV by autodiff).
        temperature_k: K; 0 integrates exactly over ``[mu_R, mu_L]``.
        mu: equilibrium chemical potential (eV).
        n_energies: about this many Gauss-Legendre nodes over the window.
        window_kt: the window reaches this many kT beyond the outer chemical potential.
        breakpoints: energies (eV) where T(E) has steps or kinks, made panel boundaries; ``"leads"``:
            the band edges of both leads (:func:`lead_band_edges`), where T(E) of a clean device
            steps. A step inside a Gauss-Legendre panel costs accuracy at the 1e-2 level (7-10 % of
            a FET's on-current with 100 nodes). Default ``()``, none: the breakpoints are held fixed
            in the derivatives, so with ``"leads"`` autodiff w.r.t. *lead* parameters is the derivative
            of a rule that finite differences (which move the band edges) do not reproduce exactly.
    Where the Fermi edges are narrower than the node spacing (low temperature), panel boundaries are
    added at ``mu_L, mu_R +- kT * FERMI_EDGE_STEPS``; they follow the bias differentiably.
    Returns a tensor of shape ``(...)`` (the Hamiltonian's batch dimensions).
    """
    v = torch.as_tensor(bias, dtype=torch.float64)
    if v.ndim != 0:
        raise NEGFInputError(f"bias must be a single voltage; got shape {tuple(v.shape)} (loop over biases)")
    if not math.isfinite(float(v.detach())):
        raise NEGFInputError(f"bias must be a finite voltage (V); got {float(v.detach())}")
    temperature_k = check_temperature(temperature_k)
    mu = _finite_number(mu, "mu", "eV")
    window_kt = _finite_number(window_kt, "window_kt", "kT")
    if window_kt <= 0:
        raise NEGFInputError(f"window_kt must be > 0 (how many kT the window reaches beyond the outer "
                             f"chemical potential; default {WINDOW_KT}); got {window_kt}")
    if isinstance(n_energies, bool) or not isinstance(n_energies, (int, np.integer)) or n_energies < 1:
        raise NEGFInputError(f"n_energies must be a positive integer (quadrature nodes; default 400); "
                             f"got {n_energies!r}")
    mu_l, mu_r = mu + v / 2, mu - v / 2
    if temperature_k == 0:
        # I = G0 Int_{mu_R}^{mu_L} T dE over the signed interval: smooth in V, also at V = 0
        lo, hi = mu_r, mu_l
    else:
        kt = KB_EV * temperature_k
        # the window follows the bias differentiably, so I(V) is one smooth function of V (nodes
        # included) and autodiff dI/dV equals the limit of finite differences of the same quadrature
        lo, hi = mu - v.abs() / 2 - window_kt * kt, mu + v.abs() / 2 + window_kt * kt
    if isinstance(breakpoints, str):
        if breakpoints != "leads":
            raise NEGFInputError(f"breakpoints must be 'leads' or a sequence of energies (eV); got {breakpoints!r}")
        breakpoints = np.concatenate([lead_band_edges(device.left), lead_band_edges(device.right)])
    breakpoints = list(breakpoints)
    if temperature_k > 0:
        spacing = abs(float((hi - lo).detach())) / max(n_energies, GAUSS_POINTS_PER_PANEL)
        if spacing > 0.25 * KB_EV * temperature_k:  # the edges would fall between too few nodes
            kt = KB_EV * temperature_k
            breakpoints += [m + sign * step * kt for m in (mu_l, mu_r) for step in FERMI_EDGE_STEPS
                            for sign in ((1.0,) if step == 0 else (1.0, -1.0))]
    e, w = (x.to(device.blocks[0].device) for x in gauss_legendre_grid(lo, hi, n_energies, breakpoints))
    mu_l, mu_r = mu_l.to(e.device), mu_r.to(e.device)
    t = solve(device, e, **solve_kwargs).transmission()
    if temperature_k == 0:  # the (signed) weights already carry the direction
        window = torch.ones((), dtype=torch.float64, device=e.device)
    else:
        window = fermi(e, mu_l, temperature_k) - fermi(e, mu_r, temperature_k)
    return G0_S * (t * window * w).sum(-1)


def differential_conductance(device: Device, bias: float, temperature_k: float, **kwargs) -> torch.Tensor:
    """dI/dV (S) at a bias (V) by autodiff of :func:`current`; differentiable further."""
    v = torch.tensor(float(bias), dtype=torch.float64, requires_grad=True)
    i = current(device, v, temperature_k, **kwargs)
    if i.ndim != 0:
        raise NEGFInputError("differential_conductance needs an unbatched device")
    (g,) = torch.autograd.grad(i, v, create_graph=torch.is_grad_enabled())
    return g


def seebeck(device: Device, energies, temperature_k: float, **solve_kwargs) -> torch.Tensor:
    """Mott Seebeck coefficient ``S = -(pi^2 kB^2 T / 3e) d ln T / dE`` in V/K at each energy (eV).

    dT/dE comes from autodiff through the device and the leads (implicit lead gradients), kept in
    the graph so that S itself can be differentiated. Needs T(E) > 0 and an unbatched device.
    """
    temperature_k = check_temperature(temperature_k)
    e = torch.as_tensor(energies, dtype=torch.float64).detach().reshape(-1).requires_grad_(True)
    t = solve(device, e, **solve_kwargs).transmission()
    if t.ndim != 1:
        raise NEGFInputError("seebeck needs an unbatched device (one Hamiltonian)")
    (dt,) = torch.autograd.grad(t.sum(), e, create_graph=True)  # energies are independent
    out = -(math.pi**2 / 3) * KB_EV**2 * temperature_k * dt / t
    return out.reshape(np.shape(energies)) if np.ndim(energies) == 0 else out
