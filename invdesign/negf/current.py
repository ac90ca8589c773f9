"""Landauer current, differential conductance and Seebeck coefficient (conventions: ``invdesign.negf``).

:func:`landauer_integral` is the one place where T(E) on an energy grid becomes a current; the
device-level :func:`landauer_current` (two chemical potentials) and :func:`current` (a bias) build on it.

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
from invdesign.negf.lead_bands import lead_band_edges
from invdesign.negf.solution import solve
from invdesign.negf.system import Device

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


def fermi_window(energies: torch.Tensor, mu_left, mu_right, temperature_k) -> torch.Tensor:
    """``f_L(E) - f_R(E)`` at ``energies`` (eV); ``temperature_k``: one temperature (K) or ``(T_left, T_right)``."""
    t_left, t_right = _contact_temperatures(temperature_k)
    return fermi(energies, mu_left, t_left) - fermi(energies, mu_right, t_right)


def landauer_integral(transmission: torch.Tensor, energies: torch.Tensor, weights: torch.Tensor, mu_left, mu_right,
                      temperature_k) -> torch.Tensor:
    """Landauer current ``I = (2e/h) sum_i w_i T(E_i) [f_L(E_i) - f_R(E_i)]`` in A (spin-degenerate).

    The one place where T(E) becomes a current: :func:`landauer_current` (and so :func:`current`), the
    SCF's drain current and the problems call it.

    Args:
        transmission: ``(..., n_E)`` T at ``energies``.
        energies, weights: ``(n_E,)`` quadrature nodes and weights (eV), e.g. :func:`landauer_grid`.
        mu_left, mu_right: the contacts' chemical potentials (eV), numbers or 0-d tensors (differentiable).
        temperature_k: K, one number or ``(T_left, T_right)``. At 0 K in both contacts the Fermi functions
            are steps; the grid must then be the oriented interval from ``mu_right`` to ``mu_left`` (weights
            < 0 where ``mu_left < mu_right``), on which ``f_L - f_R`` is 1: a step would be lost between
            nodes, and the oriented interval keeps I smooth in the bias through V = 0.
    Returns ``(...)``.
    """
    t_left, t_right = _contact_temperatures(temperature_k)
    if t_left == 0 and t_right == 0:  # the (signed) weights already carry the direction
        window = torch.ones((), dtype=torch.float64, device=energies.device)
    else:
        mu_l, mu_r = (torch.as_tensor(m, dtype=torch.float64).to(energies.device) for m in (mu_left, mu_right))
        window = fermi(energies, mu_l, t_left) - fermi(energies, mu_r, t_right)
    return G0_S * (transmission * window * weights).sum(-1)


def landauer_grid(mu_left, mu_right, temperature_k: float, n_energies: int = 400, window_kt: float = WINDOW_KT,
                  breakpoints=(), fermi_edge_panels: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Legendre nodes and weights (eV) of the Landauer window, for :func:`landauer_integral`.

    The window is ``[min mu - window_kt kT, max mu + window_kt kT]`` (``mu_left``/``mu_right`` in eV,
    numbers or 0-d tensors: the ends follow them differentiably, so dI/dV by autodiff is the limit of
    finite differences of the same quadrature), at 0 K the oriented interval ``[mu_right, mu_left]``.
    ``breakpoints`` (eV) become panel boundaries (:func:`gauss_legendre_grid`). With
    ``fermi_edge_panels``, where the Fermi edges are narrower than the node spacing (low temperature),
    boundaries are added at ``mu_L, mu_R +- kT * FERMI_EDGE_STEPS``; they follow the chemical potentials.
    """
    mu_l, mu_r = (torch.as_tensor(m, dtype=torch.float64) for m in (mu_left, mu_right))
    if temperature_k == 0:
        # I = G0 Int_{mu_R}^{mu_L} T dE over the signed interval: smooth in V, also at V = 0
        lo, hi = mu_r, mu_l
    else:
        kt = KB_EV * temperature_k
        lo, hi = torch.minimum(mu_l, mu_r) - window_kt * kt, torch.maximum(mu_l, mu_r) + window_kt * kt
    breakpoints = list(breakpoints)
    if temperature_k > 0 and fermi_edge_panels:
        spacing = abs(float((hi - lo).detach())) / max(n_energies, GAUSS_POINTS_PER_PANEL)
        if spacing > 0.25 * KB_EV * temperature_k:  # the edges would fall between too few nodes
            kt = KB_EV * temperature_k
            breakpoints += [m + sign * step * kt for m in (mu_l, mu_r) for step in FERMI_EDGE_STEPS
                            for sign in ((1.0,) if step == 0 else (1.0, -1.0))]
    return gauss_legendre_grid(lo, hi, n_energies, breakpoints)


def landauer_current(device: Device, mu_left, mu_right, temperature_k: float, n_energies: int = 400,
                     window_kt: float = WINDOW_KT, *, breakpoints=(), fermi_edge_panels: bool = True,
                     **solve_kwargs) -> torch.Tensor:
    """Current (A) through ``device`` between contacts at ``mu_left``, ``mu_right`` (eV; numbers or 0-d tensors).

    ``I > 0`` for electrons flowing left -> right. T(E) from :func:`invdesign.negf.solve` on
    :func:`landauer_grid`, integrated by :func:`landauer_integral`. ``breakpoints``: energies (eV) where
    T(E) steps, or ``"leads"`` (see :func:`current`). Returns ``(...)`` (the Hamiltonian's batch dimensions).
    """
    for name, m in (("mu_left", mu_left), ("mu_right", mu_right)):
        _finite_number(m, name, "eV")
    temperature_k = check_temperature(temperature_k)
    window_kt = _finite_number(window_kt, "window_kt", "kT")
    if window_kt <= 0:
        raise NEGFInputError(f"window_kt must be > 0 (how many kT the window reaches beyond the outer "
                             f"chemical potential; default {WINDOW_KT}); got {window_kt}")
    if isinstance(n_energies, bool) or not isinstance(n_energies, (int, np.integer)) or n_energies < 1:
        raise NEGFInputError(f"n_energies must be a positive integer (quadrature nodes; default 400); "
                             f"got {n_energies!r}")
    if isinstance(breakpoints, str):
        if breakpoints != "leads":
            raise NEGFInputError(f"breakpoints must be 'leads' or a sequence of energies (eV); got {breakpoints!r}")
        breakpoints = np.concatenate([lead_band_edges(device.left), lead_band_edges(device.right)])
    e, w = (x.to(device.blocks[0].device) for x in
            landauer_grid(mu_left, mu_right, temperature_k, n_energies, window_kt, breakpoints, fermi_edge_panels))
    t = solve(device, e, **solve_kwargs).transmission()
    return landauer_integral(t, e, w, mu_left, mu_right, temperature_k)


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
    """Landauer current ``I = (2e/h) Int T(E) [f_L - f_R] dE`` in A (spin-degenerate) at a bias.

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
    :func:`landauer_current` with ``mu_L = mu + V/2``, ``mu_R = mu - V/2``; returns ``(...)``.
    """
    v = torch.as_tensor(bias, dtype=torch.float64)
    if v.ndim != 0:
        raise NEGFInputError(f"bias must be a single voltage; got shape {tuple(v.shape)} (loop over biases)")
    if not math.isfinite(float(v.detach())):
        raise NEGFInputError(f"bias must be a finite voltage (V); got {float(v.detach())}")
    temperature_k = check_temperature(temperature_k)
    mu = _finite_number(mu, "mu", "eV")
    return landauer_current(device, mu + v / 2, mu - v / 2, temperature_k, n_energies, window_kt,
                            breakpoints=breakpoints, **solve_kwargs)


def _contact_temperatures(temperature_k) -> tuple[float, float]:
    """``(T_left, T_right)`` (K) from one temperature or a pair, validated."""
    if isinstance(temperature_k, (tuple, list)):
        if len(temperature_k) != 2:
            raise NEGFInputError(f"temperature_k must be one temperature or (T_left, T_right) in K; got {temperature_k!r}")
        return (check_temperature(temperature_k[0], "temperature_k[0]"),
                check_temperature(temperature_k[1], "temperature_k[1]"))
    t = check_temperature(temperature_k)
    return t, t


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
