"""A chain of optimizers: e.g. a global stage (Sobol, CMA) then a local polish (L-BFGS).

Each stage is ``{"optimizer": name, "settings": {...}, "max_evals": int | None,
"max_cost": float | None}``. A stage ends when its optimizer is ``done`` or its own evaluation or
cost budget is spent (None: unlimited; the last stage usually runs until the driver's budget ends
it). The next stage starts from the chain's best point so far: it is built on a view of the
problem whose ``initial_point()`` is that point, so no optimizer needs a starting-point setting.
Stage ``i`` is seeded with ``seed + i``. Costs are the evaluations' own ``cost`` (forward-
equivalents), so a budget split in cost is fair between gradient and gradient-free stages.
"""

from __future__ import annotations

from typing import Any, final

import torch

from invdesign.optimizers.base import Optimizer, StartingAt, as_tensor

DEFAULT_STAGES: tuple[dict[str, Any], ...] = (
    {"optimizer": "sobol", "settings": {}, "max_evals": 16, "max_cost": None},
    {"optimizer": "lbfgs", "settings": {}, "max_evals": None, "max_cost": None},
)
STAGE_KEYS = ("optimizer", "settings", "max_evals", "max_cost")


@final
class Chain(Optimizer):
    """Runs its stages one after the other, each starting from the best point so far."""

    name = "chain"
    uses_gradient = True  # if any stage does; wants_gradient says what the current stage needs
    constraint_handling = "per_stage"
    description = "stages run in turn (default: 16 Sobol points, then L-BFGS from the best)"

    def __init__(self, problem: Any, seed: int, *,
                 stages: list[dict[str, Any]] | tuple[dict[str, Any], ...] = DEFAULT_STAGES) -> None:
        """stages: list of ``{"optimizer", "settings", "max_evals", "max_cost"}`` (module doc)."""
        full = []
        for i, stage in enumerate(stages):
            unknown = sorted(set(stage) - set(STAGE_KEYS))
            if unknown or "optimizer" not in stage:
                raise ValueError(f"chain stage {i}: needs 'optimizer', may have {STAGE_KEYS}; "
                                 f"got keys {sorted(stage)}")
            full.append({"optimizer": stage["optimizer"], "settings": dict(stage.get("settings", {})),
                         "max_evals": stage.get("max_evals"), "max_cost": stage.get("max_cost")})
        if not full:
            raise ValueError("chain needs at least one stage")
        super().__init__(problem, seed, {"stages": full})
        self._stages = full
        for i in range(len(full)):  # fail now, not halfway, on a bad name or setting
            self._build(i, torch.as_tensor(problem.initial_point(), dtype=torch.float64))
        self._index = 0
        self._start = torch.as_tensor(problem.initial_point(), dtype=torch.float64)
        self._current = self._build(0, self._start)
        self._stage_evals = 0
        self._stage_cost = 0.0
        self._done = False

    def _build(self, index: int, start: torch.Tensor) -> Optimizer:
        from invdesign.optimizers import make_optimizer  # the registry imports this module

        stage = self._stages[index]
        return make_optimizer(stage["optimizer"], StartingAt(self.problem, start),
                              self.seed + index, **stage["settings"])

    @property
    def batch_size(self) -> int:
        return self._current.batch_size

    @property
    def wants_gradient(self) -> bool:
        return self._current.wants_gradient

    @property
    def stage(self) -> int:
        """Index of the running stage."""
        return self._index

    @property
    def done(self) -> bool:
        return self._done

    def _ask(self) -> torch.Tensor:
        return self._current.ask()

    def _tell(self, points: torch.Tensor, evaluations: list[Any]) -> None:
        self._current.tell(evaluations)
        self._stage_evals += len(evaluations)
        self._stage_cost += sum(float(e.cost) for e in evaluations)
        stage = self._stages[self._index]
        spent = ((stage["max_evals"] is not None and self._stage_evals >= stage["max_evals"])
                 or (stage["max_cost"] is not None and self._stage_cost >= stage["max_cost"]))
        if not (spent or self._current.done):
            return
        if self._index + 1 == len(self._stages):
            self._done = True
            return
        self._index += 1
        best = self.best
        self._start = (as_tensor(best.x) if best is not None else
                       torch.as_tensor(self.problem.initial_point(), dtype=torch.float64))
        self._current = self._build(self._index, self._start)
        self._stage_evals, self._stage_cost = 0, 0.0

    def _state_dict(self) -> dict[str, Any]:
        return {"index": self._index, "start": self._start.tolist(),
                "stage_evals": self._stage_evals, "stage_cost": self._stage_cost,
                "done": self._done, "current": self._current.state_dict()}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self._index = int(state["index"])
        self._start = as_tensor(state["start"])
        self._current = self._build(self._index, self._start)
        self._current.load_state_dict(state["current"])
        self._stage_evals, self._stage_cost = int(state["stage_evals"]), float(state["stage_cost"])
        self._done = bool(state["done"])
