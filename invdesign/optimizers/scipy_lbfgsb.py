"""scipy's L-BFGS-B (native bounds) as an ask/tell optimizer, by deterministic replay.

See ``scipy_replay.py`` for how scipy's callback loop becomes ask/tell. Bounds go to scipy as they
are (infinite entries as None). Constraints: augmented Lagrangian, one scipy run per multiplier
update, each started from the previous solution (the outer loop is replayed too: the multipliers
are a deterministic function of the recorded evaluations).
"""

from __future__ import annotations

from typing import Any, final

import numpy as np
from scipy.optimize import minimize

from invdesign.optimizers.augmented_lagrangian import AugmentedLagrangian
from invdesign.optimizers.base import as_tensor
from invdesign.optimizers.scipy_replay import Oracle, ScipyReplay


@final
class ScipyLBFGSB(ScipyReplay):
    """``scipy.optimize.minimize(method="L-BFGS-B")`` with an augmented Lagrangian outer loop."""

    name = "scipy_lbfgsb"
    uses_gradient = True
    constraint_handling = "augmented_lagrangian"
    description = "scipy L-BFGS-B (bounds), augmented Lagrangian for constraints, by replay"

    def __init__(self, problem: Any, seed: int, *, maxiter: int = 15_000, ftol: float = 1e-15,
                 gtol: float = 1e-10, maxcor: int = 10, rho: float = 10.0, max_outer: int = 30,
                 ctol: float = 1e-7, restarts: int = 3) -> None:
        """
        maxiter, ftol, gtol, maxcor: scipy's L-BFGS-B options (per scipy run). rho: initial
        augmented-Lagrangian penalty. max_outer: multiplier updates at most. ctol: stop when
        feasible and the complementarity residual is below it. restarts: random restarts after a
        failed start or an unsuccessful scipy run (``scipy_replay.py``).
        """
        super().__init__(problem, seed, {
            "maxiter": maxiter, "ftol": ftol, "gtol": gtol, "maxcor": maxcor, "rho": rho,
            "max_outer": max_outer, "ctol": ctol, "restarts": restarts})

    def _run(self, oracle: Oracle, x0: np.ndarray) -> bool:
        s = self.settings
        al = AugmentedLagrangian(self.specs, rho=s["rho"])

        def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
            raw = oracle.raw(x)
            if raw is None:
                return oracle.failed_value(), np.zeros_like(x)
            value, grad = al.merit(raw["value"], as_tensor(raw["grad"]), raw["constraints"],
                                   raw["constraint_grads"])
            return oracle.saw(value), grad.numpy()

        options = {"maxiter": s["maxiter"], "maxfun": 10 * s["maxiter"], "ftol": s["ftol"],
                   "gtol": s["gtol"], "maxcor": s["maxcor"]}
        x = x0
        for _ in range(s["max_outer"] + 1):
            result = minimize(fun, x, jac=True, method="L-BFGS-B", bounds=self.scipy_bounds,
                              options=options)
            x = result.x
            raw = oracle.raw(x)
            if not al.active or raw is None:
                return bool(result.success) and raw is not None
            constraints = raw["constraints"]
            if al.max_violation(constraints) <= 0.0 and al.residual(constraints) <= s["ctol"]:
                return True
            al.update(constraints)
        return False
