"""Multi-objective nevergrad: vector losses told as ``optimizer.tell(candidate, [f_1, ..., f_m])``.

Nevergrad handles a vector loss through its ``HypervolumePareto`` archive: each told point is scored by
the hypervolume it adds to the archive's front (points beyond the upper bounds by their distance to
them), and the underlying optimizer minimises that score. The default optimizer is ``DE`` (nevergrad's
documentation recommends DE and its variants for multi-objective problems; CMA's covariance adapts to a
single basin, DE's population spreads along a front). The upper bounds are the problem's reference point
when declared (told first, as ``ng.p.MultiobjectiveReference``), else nevergrad picks them from its first
evaluations (``auto_bound``).

Why nevergrad and not pymoo's NSGA-II: pymoo is not installed and would be a new heavy dependency
(nevergrad's ``PymooNSGA2`` wraps it); nevergrad is already a dependency, its DE is checkpointable by
pickling like every other nevergrad optimizer here, and it runs ask/tell without a callback thread.

Everything else is the single-objective adapter's (``nevergrad_opt.Nevergrad``: unit-cube
parametrization with tanh bounds, seeding and numpy stream, archive cap, state). Constraints: each loss
component gets the adapter's exact penalty ``penalty * (1 + |f_i|) * sum max(v, 0)`` and nevergrad the
violation vector, as in the single-objective adapter. A failed evaluation is told as
``worst_i + max(1, |worst_i|)`` per objective (``worst_i``: the highest value of objective ``i`` seen); a
candidate violating a cheap constraint is told that plus its graded violation, never simulated.
"""

from __future__ import annotations

import math
from typing import Any, final

from invdesign.optimizers.base import decode_float, encode_float, usable
from invdesign.optimizers.nevergrad_opt import Nevergrad


@final
class NevergradMO(Nevergrad):
    """Nevergrad (DE by default) on the vector of objectives, reference point as its upper bounds."""

    name = "nevergrad_mo"
    multi_objective = True  # needs a problem with n_objectives >= 2
    description = "nevergrad on vector losses (HypervolumePareto; DE by default), native constraint violations"

    def __init__(self, problem: Any, seed: int, *, optimizer: str = "DE", batch_size: int = 1,
                 budget: int | None = None, penalty: float = 10.0) -> None:
        """
        optimizer: name in ``nevergrad.optimizers.registry`` (default DE). batch_size: candidates per
        ask. budget: evaluations nevergrad may plan for (``done`` once reached). penalty: weight of the
        adapter's exact penalty on each objective of an infeasible point.
        """
        m = int(getattr(problem, "n_objectives", 1))
        if m < 2:
            raise ValueError(f"{self.name}: the problem has {m} objective; it needs a MultiObjective (m >= 2)")
        super().__init__(problem, seed, optimizer=optimizer, batch_size=batch_size, budget=budget, penalty=penalty)
        self.m = m
        self._worst_m = [-math.inf] * m
        ref = getattr(getattr(problem, "objective", None), "ref_point", None)
        if ref is not None:
            import nevergrad as ng

            with self._own_numpy_stream():
                self._ng.tell(ng.p.MultiobjectiveReference(), list(map(float, ref)))

    def _tell(self, points: Any, evaluations: list[Any]) -> None:
        with self._own_numpy_stream():
            for candidate, evaluation in zip(self._candidates, evaluations):
                vector = evaluation.objectives
                ok = usable(evaluation) and vector is not None and len(vector) == self.m \
                    and all(map(math.isfinite, [*vector, *evaluation.constraints]))
                if not ok:
                    self._ng.tell(candidate, self._failed_loss())
                    continue
                losses = [float(v) for v in vector]
                self._worst_m = [max(w, v) for w, v in zip(self._worst_m, losses)]
                if not self.specs:
                    self._ng.tell(candidate, losses)
                    continue
                v = self.violations(evaluation)
                excess = sum(max(x, 0.0) for x in v)
                losses = [f + self.settings["penalty"] * (1.0 + abs(f)) * excess for f in losses]
                self._ng.tell(candidate, losses, constraint_violation=v)
        self._candidates = []

    def _failed_loss(self, extra: float = 0.0) -> list[float]:
        """Per objective: above the worst value seen (a candidate rejected by a cheap constraint: plus
        ``extra``, as in the single-objective adapter)."""
        worst = [w if math.isfinite(w) else 0.0 for w in self._worst_m]
        return [w + max(1.0, abs(w)) + extra for w in worst]

    def _state_dict(self) -> dict[str, Any]:
        return {**super()._state_dict(), "worst_m": [encode_float(w) for w in self._worst_m]}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        super()._load_state_dict(state)
        self._worst_m = [decode_float(w) for w in state["worst_m"]]
