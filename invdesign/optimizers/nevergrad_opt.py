"""Any nevergrad optimizer by name (CMA, DiagonalCMA, DE, TwoPointsDE, PSO, OnePlusOne, NGOpt, ...).

Works on the unit cube: the parametrization is ``ng.p.Array`` with bounds [0, 1] (tanh transform),
initialised at ``problem.to_unit(problem.initial_point())``; asked values are mapped with
``problem.from_unit``.
Batches use nevergrad's ``num_workers`` (q candidates asked, then all told).

Constraints, native: ``tell(candidate, loss, constraint_violation=v)`` with ``v > 0`` meaning
violated (nevergrad 1.0 sums ``max(v, 0)``). The adapter passes ``v_i = g_i - tol_i`` for
inequalities and ``v_j = |h_j| - tol_j`` for equalities (the problem's feasibility test).
Nevergrad's own penalty is ``(a * ratio + max(loss, 0)) * (1 + num_tell)^0.5 * sqrt(sum max(v, 0))``
with ``ratio = 0`` until half of a known budget is spent: for a negative loss and no budget it is
zero, and CMA on the toy ``constrained`` problem then spent 98% of its late samples outside the
disk. The adapter therefore also adds its own exact penalty ``penalty * (1 + |loss|) * sum max(v, 0)``
to the loss (``penalty`` setting, default 10; 0 leaves nevergrad's handling alone), and keeps
passing ``constraint_violation`` so nevergrad's archive still ranks infeasible points last.
A failed evaluation is told as ``worst + max(1, |worst|)`` (``worst``: highest loss seen).

Cheap constraints (``on="params"``) never cost a simulation: a candidate violating one is told back
unsimulated with a graded bad loss and another is asked (``_feasible_candidate``). Not nevergrad's
``parametrization.register_cheap_constraint``: its resampling (500 tries, then a 500-step repair) is
repeated inside meta-optimizers' sub-optimizers (CMA's), so on a box that is mostly infeasible (a
smoothness bound in 40 dimensions) one ask took over a minute (measured: > 60 s for an always-violated
constraint); rejection here is bounded and lets the optimizer learn where the feasible set is.

Which optimizers: the default is ``CMA`` (no budget needed; passing ``budget`` changes nevergrad's
CMA configuration and made it markedly worse on the toy problems). Two families are special:

- NGOpt-style selectors (``NGOptBase`` subclasses: NGOpt, NgIohTuned, ...) need ``budget``, and
  with nevergrad 1.0.12 under numpy >= 2.4 their MetaModel stage raises ``TypeError: only
  0-dimensional arrays can be converted to Python scalars`` on small problems (nevergrad calls
  ``float()`` on a 1-element array); they can also pick thread-based optimizers internally.
- Optimizers that wrap a callback library in a thread (``RecastOptimizer``: Powell, Cobyla,
  NelderMead, SQP, ...) are refused: their non-daemon thread cannot be checkpointed reliably and
  keeps the interpreter alive. Use ``scipy_lbfgsb`` / ``scipy_slsqp`` (replayed, no thread).

Seeding and state: ``parametrization.random_state`` is a ``numpy.random.RandomState(seed)``; some
nevergrad optimizers also draw from numpy's *global* stream, so the adapter swaps in its own
global-stream state around every nevergrad call.

State without pickles: a checkpoint must not run code when it is loaded (a campaign directory may come
from someone else), so the state is what was *told*, not nevergrad's objects: per told round, the part of
each evaluation ``_tell`` reads (value, failed, feasible, constraints, objectives; ``_told_record``), and
a chained SHA-256 of every candidate asked. Loading builds a fresh adapter with the same seed and
settings and replays the rounds (ask, tell the recorded evaluations), which retraces the run exactly:
nevergrad draws only from the seeded streams above. The digest of the replayed asks must equal the
stored one, so a nevergrad whose arithmetic changed is an error, never a silently different run. Cost:
one ask/tell per recorded evaluation on loading (measured 1.3-2.7 ms CPU each for CMA, TwoPointsDE and
OnePlusOne in 2-D and 20-D, about half of what the run itself spent in nevergrad), and the state grows by
~50-70 bytes per evaluation instead of holding a pickled archive (up to ``ARCHIVE_BYTES``). Subclasses (e.g.
``nevergrad_mo``) keep the contract by reading only those fields in ``_tell``.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from invdesign.optimizers.base import (
    Optimizer,
    UntrustedState,
    decode_float,
    encode_float,
    evaluation_from_dict,
    usable,
)
from invdesign.optimizers.cheap_constraints import cheap_indices, excess, feasible, repair

ARCHIVE_BYTES = 4 * 2**20  # nevergrad's archive of evaluated points is capped at about this much
CHEAP_RETRIES = 10  # candidates violating a cheap constraint told back unsimulated, per asked point


class Nevergrad(Optimizer):
    """Adapter to ``nevergrad.optimizers.registry[optimizer]`` on the unit cube.

    Not final: ``nevergrad_mo.NevergradMO`` reuses its parametrization, seeding, archive cap and state.
    """

    name = "nevergrad"
    uses_gradient = False
    constraint_handling = "native"
    description = "any nevergrad optimizer by name on the unit cube, native constraint violations"

    def __init__(self, problem: Any, seed: int, *, optimizer: str = "CMA", batch_size: int = 1,
                 budget: int | None = None, penalty: float = 10.0) -> None:
        """
        optimizer: name in ``nevergrad.optimizers.registry``. batch_size: candidates per ask
        (``num_workers``). budget: evaluations nevergrad may plan for (some optimizers adapt to
        it; ``done`` once reached; None: open-ended). penalty: weight of the adapter's exact
        penalty on top of nevergrad's constraint handling.
        """
        import nevergrad as ng
        from nevergrad.optimization.optimizerlib import NGOptBase
        from nevergrad.optimization.recaster import RecastOptimizer

        if optimizer not in ng.optimizers.registry:
            raise ValueError(f"nevergrad has no optimizer {optimizer!r}; some valid ones: "
                             "CMA, DiagonalCMA, DE, TwoPointsDE, PSO, OnePlusOne, NGOpt")
        factory = ng.optimizers.registry[optimizer]
        if budget is None and isinstance(factory, type) and issubclass(factory, NGOptBase):
            raise ValueError(f"nevergrad {optimizer} chooses its algorithm from the budget: pass "
                             "the 'budget' setting")
        super().__init__(problem, seed, {"optimizer": optimizer, "batch_size": batch_size,
                                         "budget": budget, "penalty": penalty})
        self._q = int(batch_size)
        start = problem.to_unit(torch.as_tensor(problem.initial_point(), dtype=torch.float64))
        # tanh maps nevergrad's unbounded standardized space onto the open cube: with "bouncing" or
        # "clipping" CMA stagnated 2e-2 away from an optimum with two active bounds (toy problem
        # bounded_quadratic); with tanh it reached 1e-12. The start must be strictly inside.
        init = start.clamp(1e-6, 1.0 - 1e-6).numpy()
        parametrization = ng.p.Array(init=init).set_bounds(0.0, 1.0, method="tanh")
        parametrization.random_state = np.random.RandomState(self.seed)
        self._cheap = bool(cheap_indices(problem))  # rejected before simulating (module docstring)
        self._n_rejected = 0  # candidates violating a cheap constraint: told back, never simulated
        self._numpy_state = np.random.RandomState(self.seed + 1).get_state()
        with self._own_numpy_stream():
            self._ng = factory(parametrization=parametrization, budget=budget, num_workers=self._q)
        self._cap_archive()
        if isinstance(self._ng, RecastOptimizer):
            raise ValueError(f"nevergrad {optimizer} runs a callback library in a thread, which "
                             "cannot be checkpointed; use scipy_lbfgsb or scipy_slsqp instead")
        self._candidates: list[Any] = []
        self._worst = -math.inf
        self._told: list[list[list[Any]]] = []  # per told round, _told_record of each evaluation
        self._asked_sha256 = ""  # chained digest of every asked candidate's values

    def _cap_archive(self) -> None:
        """Bound nevergrad's archive to ``ARCHIVE_BYTES`` of points.

        Its default keeps up to 1000 points (each stored twice): 160 MB at 10^4 dimensions, pickled
        into every checkpoint. Small problems keep nevergrad's default.
        """
        from nevergrad.optimization.utils import Pruning

        pruning = getattr(self._ng, "pruning", None)
        cap = max(12, ARCHIVE_BYTES // (16 * self.dim))
        if isinstance(pruning, Pruning) and cap < pruning.max_len:
            self._ng.pruning = Pruning(min_len=max(4, cap // 3), max_len=cap)

    @property
    def batch_size(self) -> int:
        return self._q

    @property
    def done(self) -> bool:
        budget = self.settings["budget"]
        return budget is not None and self.n_told >= budget

    @property
    def done_reason(self) -> str | None:
        return "evaluation_limit" if self.done else None  # its own budget, not a convergence test

    @contextlib.contextmanager
    def _own_numpy_stream(self) -> Iterator[None]:
        """Run nevergrad on this optimizer's copy of numpy's global RNG stream (and without its
        advisory warnings, e.g. cma's "orphanated injected solution" for ``ask(1)`` use)."""
        outside = np.random.get_state()
        np.random.set_state(self._numpy_state)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        finally:
            self._numpy_state = np.random.get_state()
            np.random.set_state(outside)

    def _ask(self) -> torch.Tensor:
        return self.problem.from_unit(torch.as_tensor(self._ask_unit(), dtype=torch.float64))

    def _ask_unit(self) -> np.ndarray:
        """The next candidates (``self._candidates``) on the unit cube, shape ``(q, dim)``; digested."""
        with self._own_numpy_stream():
            self._candidates, rows = [], []
            for _ in range(self._q):
                candidate, row = self._feasible_candidate()
                self._candidates.append(candidate)
                rows.append(row)
        values = np.stack(rows)
        self._asked_sha256 = hashlib.sha256(self._asked_sha256.encode() + values.tobytes()).hexdigest()
        return values

    def _feasible_candidate(self) -> tuple[Any, np.ndarray]:
        """One nevergrad candidate and the unit-cube point to evaluate for it, shape ``(dim,)``.

        A candidate violating a cheap constraint is told back at once, never simulated, with the loss of a
        failed evaluation plus its violation (so less violating candidates rank better), and another asked,
        ``CHEAP_RETRIES`` times at most; the last one's point is then repaired onto the constraints
        (``cheap_constraints.repair``) and told, later, with that point's loss."""
        for _ in range(CHEAP_RETRIES):
            candidate = self._ng.ask()
            u = np.asarray(candidate.value, dtype=np.float64)
            z = _from_unit(self.problem, u)
            if not self._cheap or feasible(self.problem, z):
                return candidate, u
            self._n_rejected += 1
            e = excess(self.problem, z)
            self._ng.tell(candidate, self._failed_loss(extra=1.0 if math.isinf(e) else e / (1.0 + e)))
        z = repair(self.problem, _from_unit(self.problem, u))
        return candidate, self.problem.to_unit(z).clamp(0.0, 1.0).numpy()

    def _failed_loss(self, extra: float = 0.0) -> Any:
        """What a failed candidate is told: above the worst loss seen (a rejected one: plus ``extra``, its
        graded violation in (0, 1]); a multi-objective subclass tells a vector."""
        worst = self._worst if math.isfinite(self._worst) else 0.0
        return worst + max(1.0, abs(worst)) + extra

    def tell(self, evaluations: list[Any]) -> None:
        super().tell(evaluations)  # -> _tell (also a subclass's)
        self._told.append([_told_record(e) for e in evaluations])

    def violations(self, evaluation: Any) -> list[float]:
        """Nevergrad's constraint_violation vector: > 0 violated (ineq: g - tol; eq: |h| - tol)."""
        return [(abs(c) if spec.kind == "eq" else c) - spec.tol
                for spec, c in zip(self.specs, evaluation.constraints)]

    def _tell(self, points: torch.Tensor, evaluations: list[Any]) -> None:
        with self._own_numpy_stream():
            for candidate, evaluation in zip(self._candidates, evaluations):
                if not usable(evaluation) or not all(map(math.isfinite, evaluation.constraints)):
                    self._ng.tell(candidate, self._failed_loss())
                    continue
                loss = float(evaluation.value)
                self._worst = max(self._worst, loss)
                if not self.specs:
                    self._ng.tell(candidate, loss)
                    continue
                v = self.violations(evaluation)
                excess = sum(max(x, 0.0) for x in v)
                loss += self.settings["penalty"] * (1.0 + abs(loss)) * excess
                self._ng.tell(candidate, loss, constraint_violation=v)
        self._candidates = []

    def _state_dict(self) -> dict[str, Any]:
        return {"format": "replay", "told": self._told, "asked_sha256": self._asked_sha256,
                "pending": bool(self._candidates)}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != "replay":
            raise UntrustedState(f"{self.name}: this state holds a pickled nevergrad optimizer (written before "
                                 "states were replayed); it is not loaded, since unpickling can run code")
        # everything the adapter (or a subclass) set up in __init__, fresh: replay starts from there
        fresh = type(self)(self.problem, self.seed, **self.settings)
        base = ("n_told", "_best", "_pending")  # restored by Optimizer.load_state_dict
        self.__dict__.update({k: v for k, v in fresh.__dict__.items() if k not in base})
        for told in state["told"]:  # _tell reads the candidates, not the points: no mapping needed
            points = torch.as_tensor(self._ask_unit(), dtype=torch.float64)
            self._tell(points, [evaluation_from_dict(_told_evaluation(r)) for r in told])
            self._told.append([list(r) for r in told])
        if state["pending"]:
            self._ask_unit()
        if self._asked_sha256 != state["asked_sha256"]:
            raise ValueError(f"{self.name}: replaying the {len(self._told)} recorded rounds asked other points "
                             "than the run did (nevergrad or numpy changed since the state was written); "
                             "the state cannot be continued exactly")


def _from_unit(problem: Any, u: Any) -> torch.Tensor:
    """Optimizer coordinates of nevergrad's unit-cube value ``u`` (a numpy array, shape ``(dim,)``)."""
    return problem.from_unit(torch.as_tensor(np.asarray(u, dtype=np.float64)))


def _told_record(evaluation: Any) -> list[Any]:
    """What ``_tell`` reads of an evaluation, JSON-ready: [value, failed, feasible, constraints, objectives]."""
    objectives = None if evaluation.objectives is None else [encode_float(v) for v in evaluation.objectives]
    return [encode_float(evaluation.value), bool(evaluation.failed), bool(evaluation.feasible),
            [encode_float(c) for c in evaluation.constraints], objectives]


def _told_evaluation(record: list[Any]) -> dict[str, Any]:
    """``Evaluation.from_dict`` input for a ``_told_record`` (no point: ``_tell`` uses its candidates)."""
    value, failed, feasible, constraints, objectives = record
    return {"x": [], "value": decode_float(value), "failed": failed, "feasible": feasible,
            "constraints": constraints, "objectives": objectives}
