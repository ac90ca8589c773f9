"""scipy's SLSQP (native nonlinear constraints and bounds) as an ask/tell optimizer, by replay.

See ``scipy_replay.py`` for how scipy's callback loop becomes ask/tell.

Sign adapter (the one place it is translated): the problem's convention is ``g(z) <= 0``
feasible, scipy's ``{"type": "ineq"}`` wants ``fun(x) >= 0`` feasible, so inequalities are passed
as ``-g`` with Jacobian ``-dg``. Equalities ``h(z) = 0`` pass unchanged (SLSQP drives them to 0,
inside the problem's ``tol``). A failed point answers zero constraint values and gradients (its
objective is already worse than anything seen, which is what SLSQP's merit line search needs).
"""

from __future__ import annotations

from typing import Any, final

import numpy as np
from scipy.optimize import minimize

from invdesign.optimizers.scipy_replay import Oracle, ScipyReplay


@final
class ScipySLSQP(ScipyReplay):
    """``scipy.optimize.minimize(method="SLSQP")`` with the problem's constraints."""

    name = "scipy_slsqp"
    uses_gradient = True
    constraint_handling = "native"
    description = "scipy SLSQP with native (sign-adapted) constraints and bounds, by replay"

    def __init__(self, problem: Any, seed: int, *, maxiter: int = 1000, ftol: float = 1e-9,
                 restarts: int = 3) -> None:
        """maxiter, ftol: scipy's SLSQP options. restarts: random restarts after a failed start
        or an unsuccessful scipy run (``scipy_replay.py``)."""
        super().__init__(problem, seed, {"maxiter": maxiter, "ftol": ftol, "restarts": restarts})

    def _run(self, oracle: Oracle, x0: np.ndarray) -> bool:
        def fun(x: np.ndarray) -> float:
            raw = oracle.raw(x)
            return oracle.failed_value() if raw is None else oracle.saw(raw["value"])

        def jac(x: np.ndarray) -> np.ndarray:
            raw = oracle.raw(x)
            return np.zeros_like(x) if raw is None else np.asarray(raw["grad"], dtype=np.float64)

        constraints = []
        for i, spec in enumerate(self.specs):
            sign = -1.0 if spec.kind == "ineq" else 1.0  # scipy: ineq feasible when fun >= 0
            constraints.append({
                "type": spec.kind,
                "fun": lambda x, i=i, sign=sign: sign * _constraint(oracle.raw(x), i),
                "jac": lambda x, i=i, sign=sign: sign * _constraint_grad(oracle.raw(x), i, x.size),
            })
        result = minimize(fun, x0, jac=jac, method="SLSQP", bounds=self.scipy_bounds,
                          constraints=constraints,
                          options={"maxiter": self.settings["maxiter"], "ftol": self.settings["ftol"]})
        return bool(result.success)


def _constraint(raw: dict[str, Any] | None, i: int) -> float:
    return 0.0 if raw is None else float(raw["constraints"][i])


def _constraint_grad(raw: dict[str, Any] | None, i: int, dim: int) -> np.ndarray:
    if raw is None:
        return np.zeros(dim)
    if raw["constraint_grads"] is None:
        raise ValueError("scipy_slsqp needs constraint gradients (Evaluation.constraint_grads)")
    return np.asarray(raw["constraint_grads"][i], dtype=np.float64)
