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
from invdesign.negf.system import Device

WINDOW_KT = 40.0  # f(E) differs from a step by < e^-40 beyond this many kT from mu
GAUSS_POINTS_PER_PANEL = 8


def fermi(energies: torch.Tensor, mu, temperature_k: float) -> torch.Tensor:
    """Fermi-Dirac occupation ``1 / (1 + exp((E - mu) / kT))``; a step (1/2 at E = mu) at 0 K."""
    if temperature_k < 0:
        raise NEGFInputError(f"temperature must be >= 0 K; got {temperature_k}")
    if temperature_k == 0:
        return torch.heaviside(mu - energies, torch.tensor(0.5, dtype=energies.dtype, device=energies.device))
    return torch.sigmoid((mu - energies) / (KB_EV * temperature_k))


def gauss_legendre_grid(lo, hi, n_energies: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite Gauss-Legendre nodes and weights on ``[lo, hi]`` (eV), about ``n_energies`` points.

    ``lo``/``hi`` may be tensors; nodes and weights then depend on them differentiably.
    """
    panels = max(1, math.ceil(n_energies / GAUSS_POINTS_PER_PANEL))
    x, w = np.polynomial.legendre.leggauss(GAUSS_POINTS_PER_PANEL)
    lo = torch.as_tensor(lo, dtype=torch.float64)
    hi = torch.as_tensor(hi, dtype=torch.float64)
    edges = torch.linspace(0.0, 1.0, panels + 1, dtype=torch.float64)
    a, b = edges[:-1, None], edges[1:, None]
    t = (0.5 * (b - a) * torch.as_tensor(x) + 0.5 * (a + b)).reshape(-1)  # nodes on [0, 1]
    wt = (0.5 * (b - a) * torch.as_tensor(w)).reshape(-1)
    return lo + (hi - lo) * t, (hi - lo) * wt


def current(
    device: Device,
    bias,
    temperature_k: float,
    *,
    mu: float = 0.0,
    n_energies: int = 400,
    window_kt: float = WINDOW_KT,
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
    Returns a tensor of shape ``(...)`` (the Hamiltonian's batch dimensions).
    """
    v = torch.as_tensor(bias, dtype=torch.float64)
    if v.ndim != 0:
        raise NEGFInputError(f"bias must be a single voltage; got shape {tuple(v.shape)} (loop over biases)")
    mu_l, mu_r = mu + v / 2, mu - v / 2
    if temperature_k == 0:
        # I = G0 Int_{mu_R}^{mu_L} T dE over the signed interval: smooth in V, also at V = 0
        lo, hi = mu_r, mu_l
    else:
        kt = KB_EV * temperature_k
        # the window follows the bias differentiably, so I(V) is one smooth function of V (nodes
        # included) and autodiff dI/dV equals the limit of finite differences of the same quadrature
        lo, hi = mu - v.abs() / 2 - window_kt * kt, mu + v.abs() / 2 + window_kt * kt
    e, w = (x.to(device.blocks[0].device) for x in gauss_legendre_grid(lo, hi, n_energies))
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
    e = torch.as_tensor(energies, dtype=torch.float64).detach().reshape(-1).requires_grad_(True)
    t = solve(device, e, **solve_kwargs).transmission()
    if t.ndim != 1:
        raise NEGFInputError("seebeck needs an unbatched device (one Hamiltonian)")
    (dt,) = torch.autograd.grad(t.sum(), e, create_graph=True)  # energies are independent
    out = -(math.pi**2 / 3) * KB_EV**2 * temperature_k * dt / t
    return out.reshape(np.shape(energies)) if np.ndim(energies) == 0 else out
