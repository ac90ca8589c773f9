"""Bayesian optimisation with BoTorch: SingleTaskGP + qLogNoisyExpectedImprovement, batch q.

Design: the first ``n_init`` points (default ``min(2 dim + 1, N_INIT_MAX)``: 2d + 1 spent 81 of 150
evaluations on the start at 40 dimensions) are a scrambled Sobol design of the unit cube (seeded); after
that each ask fits one multi-output SingleTaskGP (independent outputs: the objective and every
constraint) on unit-cube inputs with standardized outcomes (``Standardize``), and maximises
qLogNEI of ``-value`` over the unit cube with ``optimize_acqf`` (small ``num_restarts`` /
``raw_samples`` by default: cheap, good enough for tests; raise them for real campaigns).

Cheap constraints (``on="params"``) never cost a simulation: the Sobol design keeps only points that
satisfy them (``cheap_constraints.feasible_starts``: rejection, then repair); with a model, the acquisition
is maximised under them as ``nonlinear_inequality_constraints`` of ``optimize_acqf`` (SLSQP) from
feasible starting points (feasible raw samples, ranked by the acquisition); a candidate that still
violates one (solver tolerance) is repaired, or replaced by a feasible Sobol point, before it is asked.

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
from invdesign.optimizers.cheap_constraints import cheap_indices, feasible, feasible_starts, repair

N_INIT_MAX = 20  # default Sobol start: 2 * dim + 1 points, at most this many
CHEAP_DRAWS = 1000  # Sobol draws per needed point before feasible_starts repairs rejected ones


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
        batch_size: q. n_init: Sobol points before the first GP (default ``min(2 * dim + 1, N_INIT_MAX)``).
        num_restarts, raw_samples, acqf_maxiter: ``optimize_acqf`` effort. mc_samples: QMC
        samples of qLogNEI. max_evals: ``done`` after this many evaluations (None: never).
        """
        super().__init__(problem, seed, {
            "batch_size": batch_size, "n_init": n_init, "num_restarts": num_restarts,
            "raw_samples": raw_samples, "mc_samples": mc_samples, "acqf_maxiter": acqf_maxiter,
            "max_evals": max_evals})
        self._n_init = min(2 * self.dim + 1, N_INIT_MAX) if n_init is None else int(n_init)
        self._cheap = [(i, self.specs[i]) for i in cheap_indices(problem)]
        self._sobol = torch.quasirandom.SobolEngine(self.dim, scramble=True, seed=self.seed)
        self._n_sobol = 0
        self._u: list[list[float]] = []                  # unit-cube inputs, (n, dim)
        self._y: list[list[float] | None] = []           # [value, *constraints] or None if failed
        self._round = 0

    def _ask(self) -> torch.Tensor:
        if self.in_design():
            u = self._sobol_points(self.batch_size)
        else:
            with torch.random.fork_rng():
                torch.manual_seed(self.seed * 1_000_003 + self._round)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # numerical notes from gpytorch/botorch
                    u = self._acquire()
            self._round += 1
            u = self._cheap_guard(u.clamp(0.0, 1.0))
        return self.problem.from_unit(u.clamp(0.0, 1.0))

    def in_design(self) -> bool:
        """Whether the next ask comes from the Sobol design (too little data for a model yet)."""
        return len(self._u) < self._n_init or sum(y is not None for y in self._y) < 2

    def _draw(self, k: int) -> torch.Tensor:
        """``k`` points of the seeded Sobol sequence, shape ``(k, dim)`` (counted: the state replays it)."""
        self._n_sobol += k
        return self._sobol.draw(k, dtype=torch.float64)

    def _sobol_points(self, n: int) -> torch.Tensor:
        """The next ``n`` Sobol points satisfying the cheap constraints, shape ``(n, dim)``, unit cube."""
        if not self._cheap:
            return self._draw(n)
        return feasible_starts(self.problem, self._draw, n, CHEAP_DRAWS * n)[0]

    def _cheap_guard(self, u: torch.Tensor) -> torch.Tensor:
        """Rows of ``u`` (q, dim) violating a cheap constraint repaired, else replaced by feasible Sobol points."""
        rows = []
        for row in u:
            z = self.problem.from_unit(row)
            if not feasible(self.problem, z):
                z = repair(self.problem, z)
                row = self.problem.to_unit(z) if feasible(self.problem, z) else self._sobol_points(1)[0]
            rows.append(row)
        return torch.stack(rows)

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
        return self.maximize(acquisition)

    def maximize(self, acquisition: Any, **options: Any) -> torch.Tensor:
        """``optimize_acqf`` of ``acquisition`` over the unit cube with this optimizer's effort settings,
        under the cheap constraints (module docstring); candidates ``(q, dim)``. ``options``: more
        ``optimize_acqf`` keywords (e.g. ``sequential=True``)."""
        from botorch.optim import optimize_acqf

        s = self.settings
        unit = torch.stack([torch.zeros(self.dim), torch.ones(self.dim)]).to(torch.float64)
        effort = {"num_restarts": s["num_restarts"], "options": {"maxiter": s["acqf_maxiter"]}}
        if self._cheap:
            effort.update(nonlinear_inequality_constraints=[(self._cheap_margin(i, spec), True)
                                                            for i, spec in self._cheap],
                          batch_initial_conditions=self._feasible_starts(acquisition))
        else:
            effort["raw_samples"] = s["raw_samples"]
        candidates, _ = optimize_acqf(acquisition, bounds=unit, q=self.batch_size, **effort, **options)
        return candidates.detach()

    def _cheap_margin(self, index: int, spec: Any) -> Any:
        """``x -> tol - g(x)`` (``tol - |h(x)|``) on the unit cube: BoTorch's ``>= 0`` feasible convention."""
        def margin(u: torch.Tensor) -> torch.Tensor:
            g = self.problem.constraints[index](None, self.problem.to_params(self.problem.from_unit(u)))
            return spec.tol - (g.abs() if spec.kind == "eq" else g)
        return margin

    def _feasible_starts(self, acquisition: Any) -> torch.Tensor:
        """``(num_restarts, q, dim)`` starting points of the constrained solve: the best, by ``acquisition``,
        of ``raw_samples`` cheap-feasible points of a Sobol sequence seeded by the round."""
        s, q = self.settings, self.batch_size
        engine = torch.quasirandom.SobolEngine(self.dim, scramble=True, seed=self.seed * 1_000_003 + self._round)
        raw = feasible_starts(self.problem, lambda k: engine.draw(k, dtype=torch.float64),
                              s["raw_samples"] * q, CHEAP_DRAWS * s["raw_samples"] * q)[0]
        groups = raw[: raw.shape[0] // q * q].reshape(-1, q, self.dim)
        with torch.no_grad():
            best = acquisition(groups).topk(min(s["num_restarts"], groups.shape[0])).indices
        return groups[best]

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
