"""Multi-objective Bayesian optimisation with BoTorch: SingleTaskGP + qLogNoisyExpectedHypervolumeImprovement.

The multi-objective sibling of ``botorch_opt.py`` (same design, same determinism). The first ``n_init``
points are a scrambled Sobol design of the unit cube; after that each ask fits one multi-output
SingleTaskGP (independent outputs: the ``m`` objectives, then every constraint) on unit-cube inputs with
standardised outcomes and maximises qLogNEHVI (Ament et al. 2023, ``botorch.acquisition.multi_objective
.logei``; BoTorch 0.18) of ``-F`` (BoTorch maximises; ``F`` is ``Evaluation.objectives``, minimised
convention) with ``optimize_acqf``.

Reference point: the problem's declared one (``MultiObjective`` refs); without one, BoTorch's
``infer_reference_point`` on the feasible front observed so far (recomputed each round from the data,
so resume sees the same point).

Constraints, native: outcome-constraint callables feasible when ``<= 0``: ``g - tol`` for inequalities,
``|h| - tol`` for equalities (the sign convention of ``botorch_opt.py``). Failed evaluations are imputed
with the worst observed value of every column (objectives and constraints, minimised convention), as
in ``botorch_opt.py``.

Determinism: fitting and acquisition run inside ``torch.random.fork_rng`` seeded from ``(seed, round)``
and the QMC sampler has a fixed seed; the state is the data and the number of Sobol points drawn.
"""

from __future__ import annotations

import math
from typing import Any, final

import torch

from invdesign.optimizers.base import as_tensor, usable
from invdesign.optimizers.botorch_opt import BoTorch


@final
class BoTorchMO(BoTorch):
    """GP Bayesian optimisation of several objectives (qLogNEHVI, outcome constraints) on the unit cube.

    A ``BoTorch`` with a multi-objective model and acquisition: the Sobol start, the seeded rounds and
    the state (data and Sobol count) are the parent's; the data rows hold ``[*F, *constraints]``.
    """

    name = "botorch_mo"
    multi_objective = True  # needs a problem with n_objectives >= 2
    description = "BoTorch multi-output SingleTaskGP + qLogNEHVI, Sobol start, constraints"

    def __init__(self, problem: Any, seed: int, *, batch_size: int = 1, n_init: int | None = None,
                 num_restarts: int = 2, raw_samples: int = 64, mc_samples: int = 64,
                 acqf_maxiter: int = 50, max_evals: int | None = None) -> None:
        """
        batch_size: q. n_init: Sobol points before the first GP (default ``2 * dim + 1``).
        num_restarts, raw_samples, acqf_maxiter: ``optimize_acqf`` effort. mc_samples: QMC samples of
        qLogNEHVI. max_evals: ``done`` after this many evaluations (None: never).
        """
        m = int(getattr(problem, "n_objectives", 1))
        if m < 2:
            raise ValueError(f"{self.name}: the problem has {m} objective; it needs a MultiObjective (m >= 2)")
        super().__init__(problem, seed, batch_size=batch_size, n_init=n_init, num_restarts=num_restarts,
                         raw_samples=raw_samples, mc_samples=mc_samples, acqf_maxiter=acqf_maxiter,
                         max_evals=max_evals)
        self.m = m

    def training_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (n, dim) on the unit cube and outcomes (n, m + c): ``[-F, constraints]`` (BoTorch
        maximises the objectives), failed points imputed (module docstring)."""
        good = [y for y in self._y if y is not None]
        worst = [max(column) for column in zip(*good)]
        outcomes = as_tensor([y if y is not None else worst for y in self._y])
        outcomes[:, : self.m] = -outcomes[:, : self.m]
        return as_tensor(self._u), outcomes

    def ref_point(self) -> list[float]:
        """Reference point in BoTorch's (maximised) convention, shape ``(m,)``."""
        from invdesign.pareto import reference_point

        declared = getattr(getattr(self.problem, "objective", None), "ref_point", None)
        if declared is not None:
            return [-v for v in declared]
        feasible = [y[: self.m] for y in self._y if y is not None and self._feasible(y)]
        inferred = reference_point(feasible or [y[: self.m] for y in self._y if y is not None])
        return [-v for v in inferred]

    def _feasible(self, y: list[float]) -> bool:
        return all(((abs(c) if s.kind == "eq" else c) - s.tol) <= 0 for s, c in zip(self.specs, y[self.m:]))

    def _acquire(self) -> torch.Tensor:
        from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
        from botorch.acquisition.multi_objective.objective import IdentityMCMultiOutputObjective
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP
        from botorch.models.transforms.outcome import Standardize
        from botorch.optim import optimize_acqf
        from botorch.sampling import SobolQMCNormalSampler
        from gpytorch.mlls import ExactMarginalLogLikelihood

        s, m = self.settings, self.m
        x, y = self.training_data()
        model = SingleTaskGP(x, y, outcome_transform=Standardize(m=y.shape[-1]))
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        constraints = [
            (lambda Z, i=i, tol=spec.tol: Z[..., m + i].abs() - tol) if spec.kind == "eq"
            else (lambda Z, i=i, tol=spec.tol: Z[..., m + i] - tol)
            for i, spec in enumerate(self.specs)]
        acquisition = qLogNoisyExpectedHypervolumeImprovement(
            model, ref_point=self.ref_point(), X_baseline=x, prune_baseline=True,
            sampler=SobolQMCNormalSampler(torch.Size([s["mc_samples"]]), seed=self.seed),
            objective=IdentityMCMultiOutputObjective(outcomes=list(range(m))),
            constraints=constraints or None)
        unit = torch.stack([torch.zeros(self.dim), torch.ones(self.dim)]).to(torch.float64)
        candidates, _ = optimize_acqf(
            acquisition, bounds=unit, q=self.batch_size, num_restarts=s["num_restarts"],
            raw_samples=s["raw_samples"], options={"maxiter": s["acqf_maxiter"]}, sequential=True)
        return candidates.detach()

    def _tell(self, points: torch.Tensor, evaluations: list[Any]) -> None:
        u = self.problem.to_unit(points).clamp(0.0, 1.0)
        for row, evaluation in zip(u.tolist(), evaluations):
            vector = evaluation.objectives
            ok = usable(evaluation) and vector is not None and len(vector) == self.m
            values = [*map(float, vector), *map(float, evaluation.constraints)] if ok else []
            self._u.append(row)
            self._y.append(values if ok and all(map(math.isfinite, values)) else None)
