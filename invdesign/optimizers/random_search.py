"""Random and Sobol search: seeded samples of the unit cube, mapped with ``problem.from_unit``.

Baselines and the global stage of a ``chain``. Constraints are not used to steer the samples;
``best`` still prefers feasible points. Failed evaluations are simply not candidates for ``best``.
"""

from __future__ import annotations

from typing import Any, final

import torch

from invdesign.optimizers.base import (
    BatchOfSamples,
    Optimizer,
    generator_state,
    make_generator,
    set_generator_state,
)


@final
class RandomSearch(BatchOfSamples, Optimizer):
    """Independent uniform samples of the unit cube, from a torch.Generator seeded with ``seed``."""

    name = "random"
    uses_gradient = False
    constraint_handling = "none"
    description = "uniform random samples of the unit cube (seeded); a baseline"

    def __init__(self, problem: Any, seed: int, *, batch_size: int = 1,
                 max_evals: int | None = None) -> None:
        """``batch_size``: points per ask; ``max_evals``: done after this many (None: never)."""
        super().__init__(problem, seed, {"batch_size": batch_size, "max_evals": max_evals})
        self._generator = make_generator(self.seed)

    def _ask(self) -> torch.Tensor:
        u = torch.rand(self.batch_size, self.dim, generator=self._generator, dtype=torch.float64)
        return self.problem.from_unit(u)

    def _tell(self, points: torch.Tensor, evaluations: list) -> None:
        pass  # nothing to learn: best is tracked by the base class

    def _state_dict(self) -> dict[str, Any]:
        return {"generator": generator_state(self._generator)}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        set_generator_state(self._generator, state["generator"])


@final
class SobolSearch(BatchOfSamples, Optimizer):
    """Scrambled Sobol sequence (torch.quasirandom.SobolEngine, scrambled with ``seed``).

    The first point is the first point of the scrambled sequence (not the centre), so two seeds
    give two different designs. State is just the number of points drawn: the engine is rebuilt
    and fast-forwarded on load, which reproduces the sequence exactly.
    """

    name = "sobol"
    uses_gradient = False
    constraint_handling = "none"
    description = "scrambled Sobol sequence of the unit cube (seeded); a space-filling baseline"

    def __init__(self, problem: Any, seed: int, *, batch_size: int = 1,
                 max_evals: int | None = None) -> None:
        """``batch_size``: points per ask; ``max_evals``: done after this many (None: never)."""
        super().__init__(problem, seed, {"batch_size": batch_size, "max_evals": max_evals})
        self._engine = torch.quasirandom.SobolEngine(self.dim, scramble=True, seed=self.seed)
        self._n_drawn = 0

    def _ask(self) -> torch.Tensor:
        u = self._engine.draw(self.batch_size, dtype=torch.float64)
        self._n_drawn += self.batch_size
        return self.problem.from_unit(u)

    def _tell(self, points: torch.Tensor, evaluations: list) -> None:
        pass

    def _state_dict(self) -> dict[str, Any]:
        return {"n_drawn": self._n_drawn}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self._engine = torch.quasirandom.SobolEngine(self.dim, scramble=True, seed=self.seed)
        self._n_drawn = int(state["n_drawn"])
        if self._n_drawn:
            self._engine.fast_forward(self._n_drawn)
