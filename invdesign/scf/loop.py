"""The self-consistent Poisson-NEGF loop (conventions: ``invdesign.scf``).

Unknown: the potential energy ``U`` (eV) on the orbitals. Fixed point (in volts):

    F(U) = U - u0 - K dn(U, theta) = 0,     u0 = -G_ext V - K N

(``dn``: electrons per orbital relative to neutral, from NEGF; ``N``: doping; ``K``: Poisson kernel).
Every iteration evaluates the NEGF charge once. Two phases:

1. far from the solution (``max|F| > switch_v``): predictor-corrector steps. The *nonlinear* Poisson
   problem ``U = u0 + K [dn(U_k) + q(U) - q(U_k)]`` is solved by damped Newton with a cheap local
   charge model ``q`` (the quasi-equilibrium predictor, :mod:`invdesign.scf.predictor`: the leads'
   bulk bands filled to the local Fermi level), then the NEGF charge is re-evaluated there;
2. near it: Newton-type steps ``(I - K diag(D0)) dU = -F`` with the predictor's response
   ``D0 = dq/dU`` frozen (one LU), accelerated by Anderson mixing over the last ``memory`` steps; a
   step that doubles the residual restarts the mixing. The loop also enters this phase when the
   predictor phase stalls below ``STALL_NEAR * switch_v`` (``max|F|`` fell by less than ``STALL_RATIO``
   over ``STALL_STEPS`` charge evaluations: the local model misjudges the charge, as on a CNT-FET at
   V_gs = -0.3 V, where it crept at 0.208 V for 80 evaluations); Anderson mixing corrects what the
   frozen model gets wrong.

Convergence: ``max |F| < tol_v`` (V). Failure raises :class:`invdesign.negf.ConvergenceError` with
the residual history (never a silent unconverged answer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from invdesign.negf.errors import ConvergenceError, NEGFInputError
from invdesign.scf.predictor import ExponentialPredictor, solve_predictor

ChargeFn = Callable[[torch.Tensor], torch.Tensor]
# the predictor phase has stalled when max|F| (below STALL_NEAR switch_v: far out the local model still
# leads) fell by less than STALL_RATIO over STALL_STEPS charge evaluations
STALL_RATIO, STALL_STEPS, STALL_NEAR = 0.8, 3, 10.0


@dataclass(frozen=True)
class SCFOptions:
    """Settings of the loop and of its adjoint.

    tol_v: convergence when ``max |F(U)| < tol_v`` (V).
    max_iter: NEGF charge evaluations allowed (the response estimate counts as one).
    memory: Anderson history length of the linear phase (0: plain Newton-type steps).
    switch_v: residual (V) below which the loop leaves the nonlinear predictor phase for Anderson-
        accelerated Newton steps with a freshly measured ``D0``.
    response_step_ev: rigid shift (eV) for the finite-difference charge response ``D0``.
    response_floor: lower bound of ``|D0|`` (electrons/eV) keeping the predictor well posed.
    adjoint_tol: relative residual of the adjoint solve.
    adjoint_max_iter: Krylov iterations allowed in the adjoint solve.
    thomas_fermi_start: a device's cold start (no ``warm`` bias point) is the Thomas-Fermi potential of
        its bulk predictor (``invdesign.scf.predictor.thomas_fermi_start``) instead of the electrodes'
        potential alone: the first NEGF residual drops from ~3 V to ~0.15 V on the default FET, one or
        two charge evaluations fewer per cold bias point.
    """

    tol_v: float = 1e-6
    max_iter: int = 60
    memory: int = 5
    switch_v: float = 0.05
    response_step_ev: float = 1e-4
    response_floor: float = 1e-8
    adjoint_tol: float = 1e-11
    adjoint_max_iter: int = 200
    thomas_fermi_start: bool = True

    def __post_init__(self):
        if not self.tol_v > 0 or self.max_iter < 1 or self.memory < 0:
            raise NEGFInputError(f"bad SCFOptions: tol_v={self.tol_v}, max_iter={self.max_iter}, memory={self.memory}")


@dataclass
class FixedPointResult:
    """Converged potential ``potential`` (eV, detached), charge ``delta_n``, ``history`` of max |F| (V)."""

    potential: torch.Tensor
    delta_n: torch.Tensor
    history: list[float]
    response: torch.Tensor
    evaluations: int = 0
    extras: dict = field(default_factory=dict)

    @property
    def iterations(self) -> int:
        return len(self.history)


def charge_response(charge: ChargeFn, potential: torch.Tensor, dn: torch.Tensor, step: float,
                    floor: float) -> torch.Tensor:
    """``D0_i = [dn_i(U + h) - dn_i(U)] / h`` (electrons per eV), clipped to ``<= -floor``."""
    shifted = charge(potential + step)
    return torch.clamp((shifted - dn) / step, max=-floor)


def solve_fixed_point(charge: ChargeFn, kernel: torch.Tensor, u0: torch.Tensor, predictor=None, *,
                      initial: torch.Tensor | None = None, kt: float = 0.025852,
                      options: SCFOptions = SCFOptions()) -> FixedPointResult:
    """Solve ``U = u0 + K charge(U)`` (no autograd; see :mod:`invdesign.scf.adjoint` for gradients).

    Args:
        charge: ``U (n,) -> dn (n,)`` electrons per orbital relative to neutral, no grad needed.
        kernel: ``K`` (n, n), V per e.  u0: ``(n,)`` potential energy without free charge (eV).
        predictor: a charge predictor (:mod:`invdesign.scf.predictor`); default: an
            :class:`ExponentialPredictor` with the measured response (one extra charge evaluation).
        initial: starting potential (warm start); default ``u0``.
        kt: thermal energy (eV) of the default predictor.
    Returns a :class:`FixedPointResult`; its ``response`` is ``D0`` at the solution.
    """
    with torch.no_grad():
        u0 = u0.detach()
        u = (u0 if initial is None else initial.detach()).clone()
        history: list[float] = []
        evaluations = 0
        us, gs = [], []
        best = float("inf")
        lu = response = None  # D0 and the LU of I - K diag(D0) of the linear (Anderson) phase
        while evaluations < options.max_iter:
            dn = charge(u)
            evaluations += 1
            if not torch.isfinite(dn).all():
                raise ConvergenceError("the NEGF charge is not finite (NaN or inf) at the current potential",
                                       history)
            residual = u - u0 - kernel @ dn
            res = float(residual.abs().max())
            history.append(res)
            if res < options.tol_v:
                if response is None:
                    response = _response(predictor, charge, u, dn, options)
                return FixedPointResult(u, dn, history, response, evaluations)
            if evaluations >= options.max_iter:
                break
            if predictor is None:
                predictor = ExponentialPredictor(_response(None, charge, u, dn, options), kt, u.clone())
                evaluations += 1
            stalled = (len(history) > STALL_STEPS and res < STALL_NEAR * options.switch_v
                       and res > STALL_RATIO * history[-1 - STALL_STEPS])
            if res > options.switch_v and lu is None and not stalled:
                # far from the solution: nonlinear Poisson with the quasi-equilibrium predictor
                u = solve_predictor(predictor, u0, kernel, u, dn, max(0.1 * options.tol_v, 1e-3 * res))
                continue
            if lu is None:
                response = predictor.response(u, dn)
                n = u.shape[-1]
                lu = torch.linalg.lu_factor(torch.eye(n, dtype=kernel.dtype) - kernel * response.unsqueeze(-2))
            step = torch.linalg.lu_solve(*lu, -residual.unsqueeze(-1)).squeeze(-1)  # Newton step, D ~ D0
            if res > 2 * best:  # the mixing went astray: restart it
                us, gs = [], []
            best = min(best, res)
            us.append(u.clone())
            gs.append(step)
            if len(us) > options.memory + 1:
                us.pop(0)
                gs.pop(0)
            u = _anderson(us, gs)
        raise ConvergenceError(
            f"self-consistent loop did not reach max|F| < {options.tol_v:g} V in {options.max_iter} charge "
            "evaluations", history)


def _response(predictor, charge, u, dn, options) -> torch.Tensor:
    if predictor is not None:
        return predictor.response(u, dn)
    return charge_response(charge, u, dn, options.response_step_ev, options.response_floor)


def _anderson(us: list[torch.Tensor], gs: list[torch.Tensor]) -> torch.Tensor:
    """Anderson (type II) update from iterates ``us`` and their preconditioned steps ``gs``."""
    u, g = us[-1], gs[-1]
    if len(us) == 1:
        return u + g
    du = torch.stack([us[i + 1] - us[i] for i in range(len(us) - 1)], dim=-1)
    dg = torch.stack([gs[i + 1] - gs[i] for i in range(len(gs) - 1)], dim=-1)
    # gelsd: the default CPU driver (gelsy) is not bitwise reproducible from call to call
    gamma = torch.linalg.lstsq(dg, g.unsqueeze(-1), rcond=None, driver="gelsd").solution.squeeze(-1)
    if not torch.isfinite(gamma).all():
        return u + g
    return u + g - (du + dg) @ gamma


def plain_iterations(charge: Callable[[torch.Tensor], torch.Tensor], kernel: torch.Tensor, u0: torch.Tensor,
                     steps: int, mixing: float, initial: torch.Tensor | None = None) -> torch.Tensor:
    """``steps`` damped fixed-point iterations ``U <- U + mixing (u0 + K dn(U) - U)`` kept in the graph.

    A reference for testing the implicit gradient (autograd unrolls every iteration: memory grows with
    ``steps``); not for production.
    """
    u = u0 if initial is None else initial
    for _ in range(steps):
        u = u + mixing * (u0 + kernel @ charge(u) - u)
    return u

