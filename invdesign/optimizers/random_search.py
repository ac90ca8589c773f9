"""Random and Sobol search: seeded samples of the unit cube, mapped with ``problem.from_unit``.

Baselines and the global stage of a ``chain``. Constraints are not used to steer the samples;
``best`` still prefers feasible points. Failed evaluations are simply not candidates for ``best``.
Cheap constraints (``on="params"``) are the exception: samples violating them are rejected before they
are asked (``cheap_constraints.feasible_starts``), so they never cost a simulation.
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
from invdesign.optimizers.cheap_constraints import cheap_indices, feasible_starts

CHEAP_DRAWS = 1000  # samples drawn per asked point before rejected ones are repaired


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
        return self.problem.from_unit(_samples(self, self._draw))

    def _draw(self, k: int) -> torch.Tensor:
        return torch.rand(k, self.dim, generator=self._generator, dtype=torch.float64)

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
        return self.problem.from_unit(_samples(self, self._draw))

    def _draw(self, k: int) -> torch.Tensor:
        self._n_drawn += k  # the state: the engine is fast-forwarded by this many on load
        return self._engine.draw(k, dtype=torch.float64)

    def _tell(self, points: torch.Tensor, evaluations: list) -> None:
        pass

    def _state_dict(self) -> dict[str, Any]:
        return {"n_drawn": self._n_drawn}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self._engine = torch.quasirandom.SobolEngine(self.dim, scramble=True, seed=self.seed)
        self._n_drawn = int(state["n_drawn"])
        if self._n_drawn:
            self._engine.fast_forward(self._n_drawn)


def _samples(optimizer: Optimizer, draw: Any) -> torch.Tensor:
    """The next batch, shape ``(batch_size, dim)`` on the unit cube, from ``draw(k) -> (k, dim)``; samples
    violating a cheap constraint are rejected (the stream advances past them either way)."""
    if not cheap_indices(optimizer.problem):
        return draw(optimizer.batch_size)
    return feasible_starts(optimizer.problem, draw, optimizer.batch_size, CHEAP_DRAWS * optimizer.batch_size)[0]
