"""Quasi-equilibrium charge predictors, nonlinear Poisson steps, contact neutrality (``invdesign.scf``).

The loop's nonlinear Poisson step solves ``U = u0 + K [dn_k + q(U) - q(U_k)]`` for the potential,
with the NEGF charge ``dn_k`` of the current iterate ``U_k`` and a cheap local model ``q`` of how the
charge follows the potential (the quasi-equilibrium predictor):

- :class:`BulkPredictor` (default for devices): each orbital holds the charge of the bulk lead
  crystal whose bands are shifted by ``U_i``, filled up to its side's Fermi level (Thomas-Fermi with
  the leads' exact tight-binding bands: electrons and holes, degenerate or not).
- :class:`ExponentialPredictor` (generic): Boltzmann carriers with a measured slope ``D0``.

Both also give ``D0 = d q / d U`` (e/eV, <= 0): the diagonal charge response used by the Newton
steps near convergence and by the adjoint's preconditioner.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
import torch

from invdesign.negf.constants import KB_EV
from invdesign.negf.errors import NEGFInputError
from invdesign.negf.lead_bands import lead_bands, zone_midpoints
from invdesign.negf.system import Lead

MAX_EXPONENT = 40.0
TRUST_REGION_EV = 0.5  # how far one nonlinear Poisson step may move the potential


def neutral_shift(lead: Lead, doping: float, reference: float, mu_ev: float, temperature_k: float,
                  n_k: int = 4096) -> float:
    """Rigid potential energy ``u`` (eV) that makes the bulk lead neutral: mean ``n - n0`` = ``doping``.

    ``doping`` and ``reference`` are per lead orbital (e). The electrons per cell are
    ``2 sum_b <f(e_b(k) + u - mu)>_k`` (both spins), from :func:`invdesign.negf.lead_bands.lead_bands` on
    ``n_k`` zone midpoints; the k sum converges
    exponentially (checked against the NEGF density of the bulk crystal in the tests). Brent's method,
    1e-13 eV.
    """
    bands = lead_bands(lead, zone_midpoints(n_k))
    kt = KB_EV * temperature_k
    n_orb = bands.shape[-1]

    def excess(u: float) -> float:
        occupation = 0.5 * (1 - np.tanh((bands + u - mu_ev) / (2 * kt)))
        return 2 * occupation.sum(-1).mean() / n_orb - reference - doping

    lo, hi = bands.min() - mu_ev - 1.0, bands.max() - mu_ev + 1.0  # u range: band fully below / above mu
    lo, hi = -hi, -lo
    f_lo, f_hi = excess(lo), excess(hi)
    if f_lo * f_hi > 0:
        raise NEGFInputError(
            f"no potential makes the contact neutral for doping {doping:g} e/orbital with reference "
            f"{reference:g} e/orbital (excess {f_lo:.3g} .. {f_hi:.3g} e): a full or empty band cannot "
            "hold that charge")
    return float(scipy.optimize.brentq(excess, lo, hi, xtol=1e-13, rtol=1e-15))


class BulkDensity:
    """Electrons per orbital (both spins) of a lead's crystal vs ``eta = mu - U`` (eV), tabulated.

    ``n(eta) = (2 / n_orb) sum_b <f(e_b(k) - eta)>_k`` from :func:`invdesign.negf.lead_bands.lead_bands` on
    ``n_k`` zone midpoints, on an ``eta`` grid of
    spacing ``kT / 8`` (a histogram of the band energies convolved with the Fermi function); linear
    interpolation between nodes, constant beyond the spectrum (a predictor, not a density).
    """

    def __init__(self, lead: Lead, temperature_k: float, n_k: int = 2048):
        kt = KB_EV * temperature_k
        bands = lead_bands(lead, zone_midpoints(n_k))
        n_orb = bands.shape[-1]
        step = kt / 8
        margin = 40 * kt
        lo, hi = bands.min() - margin, bands.max() + margin
        m = int(np.ceil((hi - lo) / step)) + 1
        counts = np.bincount(np.clip(np.rint((bands.ravel() - lo) / step).astype(int), 0, m - 1), minlength=m)
        counts = counts * (2.0 / (n_k * n_orb))  # electrons per orbital when the state is full
        offsets = np.arange(-(m - 1), m) * step  # G_k = f(-k step): n_j = sum_m c_m f((m - j) step)
        fermi = 0.5 * (1 - np.tanh(-offsets / (2 * kt)))
        slope = fermi * (1 - fermi) / kt  # d f(E - eta) / d eta
        self.lo, self.step = lo, step
        self.density = torch.as_tensor(np.convolve(counts, fermi)[m - 1: 2 * m - 1])
        self.slope = torch.as_tensor(np.convolve(counts, slope)[m - 1: 2 * m - 1])

    def __call__(self, eta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(n(eta), dn/deta)`` (electrons per orbital, per eV) at ``eta`` (eV), any shape."""
        x = torch.clamp((eta - self.lo) / self.step, 0.0, len(self.density) - 1.000001)
        i = x.floor().long()
        w = x - i
        n = self.density[i] * (1 - w) + self.density[i + 1] * w
        d = self.slope[i] * (1 - w) + self.slope[i + 1] * w
        return n, d


class BulkPredictor:
    """Thomas-Fermi charge predictor from the leads' bands (see the module docstring).

    ``tables``: (source, drain) :class:`BulkDensity`; ``side``: (n,) bool, True for orbitals that take
    the drain's bands and Fermi level; ``mu``: (source, drain) Fermi levels (eV).
    """

    def __init__(self, tables: tuple[BulkDensity, BulkDensity], side: torch.Tensor, mu: tuple[float, float]):
        self.tables, self.side = tables, side
        self.mu = torch.where(side, float(mu[1]), float(mu[0])).to(torch.float64)

    def density(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bulk electrons per orbital at potential ``u`` and ``d n / d U`` (<= 0)."""
        eta = self.mu - u
        n_s, d_s = self.tables[0](eta)
        n_d, d_d = self.tables[1](eta)
        return torch.where(self.side, n_d, n_s), -torch.where(self.side, d_d, d_s)

    def predict(self, u: torch.Tensor, u_k: torch.Tensor, dn_k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(dn_k + n(U) - n(U_k), d/dU)``: the NEGF charge at ``U_k`` carried to ``U``."""
        n, d = self.density(u)
        n_k, _ = self.density(u_k)
        return dn_k + n - n_k, d

    def response(self, u: torch.Tensor, dn: torch.Tensor) -> torch.Tensor:
        return self.density(u)[1]


class ExponentialPredictor:
    """Boltzmann carriers whose slope ``response`` (e/eV, <= 0) was measured at ``u_ref``.

    At an iterate ``U_k`` the slope is carried along as Boltzmann statistics would,
    ``D_k = D exp(-s (U_k - u_ref) / kT)``, with ``s = +1`` (electrons) where ``dn_k >= 0`` and ``-1``
    (holes) elsewhere, and ``q(U) = dn_k - s D_k kT (exp(-s (U - U_k)/kT) - 1)`` (so ``q'(U_k) = D_k``).
    """

    def __init__(self, response: torch.Tensor, kt: float, u_ref: torch.Tensor):
        self.d0, self.kt, self.u_ref = response, kt, u_ref

    def _slope(self, u_k, sign):
        return self.d0 * torch.exp(torch.clamp(-sign * (u_k - self.u_ref) / self.kt, -MAX_EXPONENT, MAX_EXPONENT))

    def predict(self, u, u_k, dn_k):
        sign = torch.where(dn_k >= 0, 1.0, -1.0).to(u.dtype)
        d_k = self._slope(u_k, sign)
        e = torch.exp(torch.clamp(-sign * (u - u_k) / self.kt, max=MAX_EXPONENT))
        return dn_k - sign * d_k * self.kt * (e - 1), d_k * e

    def response(self, u, dn):
        return self._slope(u, torch.where(dn >= 0, 1.0, -1.0).to(u.dtype))


def solve_predictor(predictor, u0: torch.Tensor, kernel: torch.Tensor, u_k: torch.Tensor, dn_k: torch.Tensor,
                    tol: float, max_iter: int = 40, max_move: float = TRUST_REGION_EV) -> torch.Tensor:
    """Nonlinear Poisson step: solve ``U = u0 + K dn_pred(U)`` by damped Newton from ``U_k`` (eV).

    ``dn_pred`` is ``predictor.predict(U, U_k, dn_k)``. The potential stays within ``max_move`` (eV) of
    ``U_k`` (a trust region: the predictor is a local model); Newton steps are halved while they
    increase the max-norm residual. Stops at ``max|G| < tol`` (V) or after ``max_iter`` steps.
    """
    n = u_k.shape[-1]
    eye = torch.eye(n, dtype=kernel.dtype)

    def residual(u):
        q, dq = predictor.predict(u, u_k, dn_k)
        return u - u0 - kernel @ q, dq

    u = u_k.clone()
    g, dq = residual(u)
    norm = float(g.abs().max())
    for _ in range(max_iter):
        if norm < tol:
            break
        step = torch.linalg.solve(eye - kernel * dq.unsqueeze(-2), -g)
        for _ in range(30):  # backtracking on the max-norm residual
            trial = u_k + torch.clamp(u + step - u_k, -max_move, max_move)
            g_new, dq_new = residual(trial)
            new = float(g_new.abs().max())
            if new < norm or float(step.abs().max()) < 1e-12:
                break
            step = step / 2
        if float((trial - u).abs().max()) < 1e-14:
            break
        u, g, dq, norm = trial, g_new, dq_new, new
    return u


def thomas_fermi_start(predictor: BulkPredictor, u0: torch.Tensor, kernel: torch.Tensor, u_start: torch.Tensor,
                       reference: torch.Tensor, tol: float = 1e-4, rounds: int = 8) -> torch.Tensor:
    """Potential (eV) of ``U = u0 + K (n_bulk(U) - reference)``: the device as Thomas-Fermi sees it,
    a cold start for the loop closer than the electrodes' potential alone (``u_start``). Solved by
    :func:`solve_predictor` rounds (each moves at most its trust region) until ``max|G| < tol`` (V)."""
    u = u_start
    for _ in range(rounds):
        dn = predictor.density(u)[0] - reference
        nxt = solve_predictor(predictor, u0, kernel, u, dn, tol)
        if not bool(torch.isfinite(nxt).all()):  # a model that cannot say: the electrodes' start
            return u_start
        done = float((nxt - u).abs().max()) < TRUST_REGION_EV - 1e-9  # not stopped by the trust region
        u = nxt
        if done:
            break
    return u
