"""Bayesian optimisation with BoTorch: SingleTaskGP + qLogNoisyExpectedImprovement, batch q.

Design: the first ``n_init`` points are a scrambled Sobol design of the unit cube (seeded); after
that each ask fits one multi-output SingleTaskGP (independent outputs: the objective and every
constraint) on unit-cube inputs with standardized outcomes (``Standardize``), and maximises
qLogNEI of ``-value`` over the unit cube with ``optimize_acqf`` (small ``num_restarts`` /
``raw_samples`` by default: cheap, good enough for tests; raise them for real campaigns).

Constraints, native: BoTorch's outcome-constraint callables are feasible when ``<= 0``, the same
sign as the problem's ``g <= tol``, so inequalities are passed as ``g - tol``; equalities become
``|h| - tol``. (Pinned by ``tests/optimizers/test_signs.py``.)

Failed evaluations are imputed, not dropped: objective = the worst value observed, each constraint
= its largest observed value. Dropping them would let the GP keep proposing the failing region;
the imputation marks it bad at the price of a discontinuity in the data.

Determinism: fitting and acquisition run inside ``torch.random.fork_rng`` seeded from
``(seed, round)``, and the QMC sampler has a fixed seed, so the state is only the data
(unit-cube points and outcomes) and the number of Sobol points drawn; refitting on load gives
the same next batch.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from invdesign.optimizers.base import BatchOfSamples, Optimizer, as_tensor, usable


class BoTorch(BatchOfSamples, Optimizer):
    """GP Bayesian optimisation (qLogNEI, outcome constraints) on the unit cube.

    Not final: ``botorch_mo.BoTorchMO`` reuses its Sobol start, seeded rounds and state.
    """

    name = "botorch"
    uses_gradient = False
    constraint_handling = "native"
    description = "BoTorch SingleTaskGP + qLogNoisyExpectedImprovement, Sobol start, constraints"

    def __init__(self, problem: Any, seed: int, *, batch_size: int = 1, n_init: int | None = None,
                 num_restarts: int = 2, raw_samples: int = 64, mc_samples: int = 64,
                 acqf_maxiter: int = 50, max_evals: int | None = None) -> None:
        """
        batch_size: q. n_init: Sobol points before the first GP (default ``2 * dim + 1``).
        num_restarts, raw_samples, acqf_maxiter: ``optimize_acqf`` effort. mc_samples: QMC
        samples of qLogNEI. max_evals: ``done`` after this many evaluations (None: never).
        """
        super().__init__(problem, seed, {
            "batch_size": batch_size, "n_init": n_init, "num_restarts": num_restarts,
            "raw_samples": raw_samples, "mc_samples": mc_samples, "acqf_maxiter": acqf_maxiter,
            "max_evals": max_evals})
        self._n_init = 2 * self.dim + 1 if n_init is None else int(n_init)
        self._sobol = torch.quasirandom.SobolEngine(self.dim, scramble=True, seed=self.seed)
        self._n_sobol = 0
        self._u: list[list[float]] = []                  # unit-cube inputs, (n, dim)
        self._y: list[list[float] | None] = []           # [value, *constraints] or None if failed
        self._round = 0

    def _ask(self) -> torch.Tensor:
        n_good = sum(y is not None for y in self._y)
        if len(self._u) < self._n_init or n_good < 2:
            u = self._sobol.draw(self.batch_size, dtype=torch.float64)
            self._n_sobol += self.batch_size
        else:
            with torch.random.fork_rng():
                torch.manual_seed(self.seed * 1_000_003 + self._round)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # numerical notes from gpytorch/botorch
                    u = self._acquire()
            self._round += 1
        return self.problem.from_unit(u.clamp(0.0, 1.0))

    def training_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (n, dim) on the unit cube and outcomes (n, 1 + m): ``[-value, constraints]``
        (botorch maximises), failed points imputed (module docstring)."""
        good = [y for y in self._y if y is not None]
        worst = [max(column) for column in zip(*good)]
        rows = [y if y is not None else worst for y in self._y]
        outcomes = as_tensor(rows)
        outcomes[:, 0] = -outcomes[:, 0]
        return as_tensor(self._u), outcomes

    def constraint_callables(self) -> list[Any]:
        """BoTorch outcome constraints on samples ``Z`` (..., 1 + m): feasible when ``<= 0``."""
        callables = []
        for i, spec in enumerate(self.specs):
            if spec.kind == "eq":
                callables.append(lambda Z, i=i, tol=spec.tol: Z[..., 1 + i].abs() - tol)
            else:
                callables.append(lambda Z, i=i, tol=spec.tol: Z[..., 1 + i] - tol)
        return callables

    def _acquire(self) -> torch.Tensor:
        from botorch.acquisition.logei import qLogNoisyExpectedImprovement
        from botorch.acquisition.objective import GenericMCObjective
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP
        from botorch.models.transforms.outcome import Standardize
        from botorch.optim import optimize_acqf
        from botorch.sampling import SobolQMCNormalSampler
        from gpytorch.mlls import ExactMarginalLogLikelihood

        s = self.settings
        x, y = self.training_data()
        model = SingleTaskGP(x, y, outcome_transform=Standardize(m=y.shape[-1]))
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        acquisition = qLogNoisyExpectedImprovement(
            model, X_baseline=x,
            sampler=SobolQMCNormalSampler(torch.Size([s["mc_samples"]]), seed=self.seed),
            objective=GenericMCObjective(lambda Z, X=None: Z[..., 0]),
            constraints=self.constraint_callables() or None)
        unit = torch.stack([torch.zeros(self.dim), torch.ones(self.dim)]).to(torch.float64)
        candidates, _ = optimize_acqf(
            acquisition, bounds=unit, q=self.batch_size, num_restarts=s["num_restarts"],
            raw_samples=s["raw_samples"], options={"maxiter": s["acqf_maxiter"]})
        return candidates.detach()

    def _tell(self, points: torch.Tensor, evaluations: list[Any]) -> None:
        u = self.problem.to_unit(points).clamp(0.0, 1.0)
        for row, evaluation in zip(u.tolist(), evaluations):
            values = [float(evaluation.value), *map(float, evaluation.constraints)]
            ok = usable(evaluation) and len(values) == 1 + len(self.specs)
            self._u.append(row)
            self._y.append(values if ok and all(map(math.isfinite, values)) else None)

    def _state_dict(self) -> dict[str, Any]:
        return {"n_sobol": self._n_sobol, "u": self._u, "y": self._y, "round": self._round}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self._sobol = torch.quasirandom.SobolEngine(self.dim, scramble=True, seed=self.seed)
        self._n_sobol = int(state["n_sobol"])
        if self._n_sobol:
            self._sobol.fast_forward(self._n_sobol)
        self._u = [list(r) for r in state["u"]]
        self._y = [None if r is None else list(r) for r in state["y"]]
        self._round = int(state["round"])
