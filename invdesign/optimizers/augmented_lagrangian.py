"""Augmented Lagrangian merit function shared by the gradient optimizers (adam, lbfgs, scipy_lbfgsb).

Not an optimizer: a small value object. For constraints ``g_i(z) <= 0`` (multipliers
``lam_i >= 0``) and ``h_j(z) = 0`` (multipliers ``nu_j``) with penalty ``rho`` (Powell-Hestenes-
Rockafellar form, Nocedal & Wright 17.4)::

    L(z) = f(z) + sum_i psi(g_i; lam_i) + sum_j (nu_j h_j + rho/2 h_j^2)
    psi(g; lam) = lam g + rho/2 g^2   if lam + rho g >= 0,   else  -lam^2 / (2 rho)

so ``dL/dg_i = max(0, lam_i + rho g_i)``. After each (approximate) inner minimisation the
multipliers take the first-order step ``lam <- max(0, lam + rho g)``, ``nu <- nu + rho h``; ``rho``
grows by ``growth`` whenever the violation did not shrink below ``0.25`` of the previous one.

Feasibility margin: the iterates of an augmented Lagrangian approach an active inequality from
outside (``g ~ +1e-9``), which the problem would report infeasible. The merit therefore uses
``g + margin`` for inequalities (``margin`` defaults to a tiny absolute 1e-9); equalities need no
margin since the problem accepts ``|h| <= tol``.
"""

from __future__ import annotations

import math
from typing import Any, final

import torch

from invdesign.optimizers.base import decode_float, encode_float


@final
class AugmentedLagrangian:
    """Multipliers and penalty for the problem's constraint specs; no constraints -> identity."""

    def __init__(self, specs: list[Any], rho: float = 10.0, growth: float = 10.0,
                 rho_max: float = 1e8, margin: float = 1e-9) -> None:
        self.kinds = [spec.kind for spec in specs]
        self.tols = [float(spec.tol) for spec in specs]
        self.multipliers = [0.0] * len(specs)
        self.rho = float(rho)
        self.growth = float(growth)
        self.rho_max = float(rho_max)
        self.margin = float(margin)
        self.last_violation = math.inf

    @property
    def active(self) -> bool:
        return bool(self.kinds)

    def _shifted(self, constraints: list[float]) -> list[float]:
        # inequalities are pushed ``margin`` inside so converged iterates test feasible
        return [c + self.margin if kind == "ineq" else c for kind, c in zip(self.kinds, constraints)]

    def merit(self, value: float, grad: torch.Tensor | None, constraints: list[float],
              constraint_grads: list[list[float]] | None) -> tuple[float, torch.Tensor | None]:
        """Merit value and gradient (shape ``(dim,)``, None when ``grad`` is None)."""
        total = float(value)
        out = None if grad is None else grad.clone()
        for i, (kind, c) in enumerate(zip(self.kinds, self._shifted(constraints))):
            lam = self.multipliers[i]
            if kind == "eq":
                total += lam * c + 0.5 * self.rho * c * c
                weight = lam + self.rho * c
            elif lam + self.rho * c >= 0.0:
                total += lam * c + 0.5 * self.rho * c * c
                weight = lam + self.rho * c
            else:
                total += -lam * lam / (2.0 * self.rho)
                weight = 0.0
            if out is not None and weight != 0.0:
                if constraint_grads is None:
                    raise ValueError("augmented Lagrangian needs constraint gradients "
                                     "(Evaluation.constraint_grads is None)")
                out += weight * torch.as_tensor(constraint_grads[i], dtype=torch.float64)
        return total, out

    def max_violation(self, constraints: list[float]) -> float:
        """Largest violation in the problem's own sense (ineq: g > tol; eq: |h| > tol); <= 0 when
        feasible."""
        worst = 0.0
        for kind, tol, c in zip(self.kinds, self.tols, constraints):
            worst = max(worst, (abs(c) if kind == "eq" else c) - tol)
        return worst

    def residual(self, constraints: list[float]) -> float:
        """First-order residual ``max(|h|, |min(-g', lam / rho)|)`` with ``g' = g + margin``:
        small when every inequality is either active or has a zero multiplier."""
        worst = 0.0
        for kind, lam, c in zip(self.kinds, self.multipliers, self._shifted(constraints)):
            worst = max(worst, abs(c) if kind == "eq" else abs(min(-c, lam / self.rho)))
        return worst

    def update(self, constraints: list[float]) -> None:
        """Multiplier step at the inner solution, and penalty growth if progress was too slow."""
        shifted = self._shifted(constraints)
        for i, (kind, c) in enumerate(zip(self.kinds, shifted)):
            step = self.multipliers[i] + self.rho * c
            self.multipliers[i] = step if kind == "eq" else max(0.0, step)
        current = max([abs(c) if k == "eq" else max(c, 0.0) for k, c in zip(self.kinds, shifted)],
                      default=0.0)
        if current > 0.25 * self.last_violation:
            self.rho = min(self.rho * self.growth, self.rho_max)
        self.last_violation = current

    def state_dict(self) -> dict[str, Any]:
        return {"multipliers": list(self.multipliers), "rho": self.rho,
                "last_violation": encode_float(self.last_violation)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.multipliers = [float(v) for v in state["multipliers"]]
        self.rho = float(state["rho"])
        self.last_violation = decode_float(state["last_violation"])
