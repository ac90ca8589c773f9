"""Adam on the optimizer coordinates, projected onto the bounds, with an lr schedule.

The update is torch.optim.Adam's (no amsgrad, no weight decay), written out on float64 tensors so
that the moments are plain serialisable state. After each step the iterate is clipped to
``problem.bounds``. Constraints: augmented Lagrangian (``augmented_lagrangian.py``) with a
multiplier update every ``al_every`` steps.

Failed evaluations: the iterate goes back to the last successful point and the step that led to
the failure is halved (repeatedly, if needed); the moments are left untouched. A failed starting
point is replaced by ``problem.random_points`` from the seeded generator.
"""

from __future__ import annotations

import math
from typing import Any, final

import torch

from invdesign.optimizers.augmented_lagrangian import AugmentedLagrangian
from invdesign.optimizers.base import (
    Optimizer,
    as_tensor,
    generator_state,
    gradient_record,
    make_generator,
    set_generator_state,
)

SCHEDULES = ("constant", "cosine", "exponential")


@final
class Adam(Optimizer):
    """Projected Adam; ``done`` after ``steps`` updates or when the projected gradient vanishes."""

    name = "adam"
    uses_gradient = True
    constraint_handling = "augmented_lagrangian"
    description = "Adam with bound projection, lr schedule, augmented Lagrangian constraints"

    def __init__(self, problem: Any, seed: int, *, lr: float = 0.05, steps: int = 2000,
                 schedule: str = "cosine", lr_final: float = 1e-4, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8, gtol: float = 1e-10,
                 al_every: int = 50, rho: float = 10.0, max_failures: int = 30) -> None:
        """
        lr: initial step size in optimizer coordinates. steps: number of updates (the schedule's
        horizon; ``done`` after it). schedule: "constant", "cosine" (lr -> lr_final) or
        "exponential" (geometric lr -> lr_final). beta1, beta2, eps: Adam constants. gtol: done
        when the projected gradient's max-norm is below it (and constraints hold). al_every:
        steps between multiplier updates. rho: initial penalty. max_failures: consecutive failed
        evaluations before giving up.
        """
        if schedule not in SCHEDULES:
            raise ValueError(f"adam: schedule must be one of {SCHEDULES}, got {schedule!r}")
        super().__init__(problem, seed, {
            "lr": lr, "steps": steps, "schedule": schedule, "lr_final": lr_final, "beta1": beta1,
            "beta2": beta2, "eps": eps, "gtol": gtol, "al_every": al_every, "rho": rho,
            "max_failures": max_failures})
        bounds = torch.as_tensor(problem.bounds, dtype=torch.float64)
        self._lo, self._hi = bounds[0], bounds[1]
        self._generator = make_generator(self.seed)
        self._al = AugmentedLagrangian(self.specs, rho=rho)
        self._x = self._project(torch.as_tensor(problem.initial_point(), dtype=torch.float64))
        self._x_good: torch.Tensor | None = None   # last successfully evaluated point, (dim,)
        self._update = torch.zeros(self.dim, dtype=torch.float64)  # step taken from _x_good
        self._m = torch.zeros(self.dim, dtype=torch.float64)
        self._v = torch.zeros(self.dim, dtype=torch.float64)
        self._t = 0
        self._failures = 0
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    @property
    def done_reason(self) -> str | None:
        """"step_limit" after ``steps`` updates, "too_many_failures", or "converged" (projected gradient
        below ``gtol`` at a feasible point)."""
        if not self._done:
            return None
        if self._failures >= self.settings["max_failures"]:
            return "too_many_failures"
        return "step_limit" if self._t >= self.settings["steps"] else "converged"

    def learning_rate(self, t: int) -> float:
        """Step size of update number ``t`` (1-based)."""
        s = self.settings
        fraction = min(max(t - 1, 0) / max(s["steps"] - 1, 1), 1.0)
        if s["schedule"] == "constant":
            return s["lr"]
        if s["schedule"] == "cosine":
            return s["lr_final"] + 0.5 * (s["lr"] - s["lr_final"]) * (1 + math.cos(math.pi * fraction))
        return s["lr"] * (s["lr_final"] / s["lr"]) ** fraction

    def _ask(self) -> torch.Tensor:
        return self._x[None]

    def _tell(self, points: torch.Tensor, evaluations: list[Any]) -> None:
        evaluation = evaluations[0]
        if self._done:
            return
        record = gradient_record(evaluation)
        if record is None:
            self._failures += 1
            if self._failures >= self.settings["max_failures"]:
                self._done = True
            elif self._x_good is None:
                self._x = self.problem.random_points(1, self._generator)[0].to(torch.float64)
            else:
                self._update = 0.5 * self._update
                self._x = self._project(self._x_good + self._update)
            return
        self._failures = 0
        x = points[0]
        constraints = record["constraints"]
        _, g = self._al.merit(record["value"], as_tensor(record["grad"]), constraints,
                              record["constraint_grads"])
        s = self.settings
        projected = float((self._project(x - g) - x).abs().max())
        feasible = self._al.max_violation(constraints) <= 0.0
        if projected <= s["gtol"] and feasible:
            self._done = True
            return
        self._t += 1
        self._m = s["beta1"] * self._m + (1 - s["beta1"]) * g
        self._v = s["beta2"] * self._v + (1 - s["beta2"]) * g * g
        m_hat = self._m / (1 - s["beta1"] ** self._t)
        v_hat = self._v / (1 - s["beta2"] ** self._t)
        self._update = -self.learning_rate(self._t) * m_hat / (v_hat.sqrt() + s["eps"])
        self._x_good = x
        self._x = self._project(x + self._update)
        if self._al.active and self._t % s["al_every"] == 0:
            self._al.update(constraints)
        if self._t >= s["steps"]:
            self._done = True

    def _project(self, z: torch.Tensor) -> torch.Tensor:
        return torch.minimum(torch.maximum(z, self._lo), self._hi)

    def _state_dict(self) -> dict[str, Any]:
        return {
            "generator": generator_state(self._generator), "al": self._al.state_dict(),
            "x": self._x.tolist(),
            "x_good": None if self._x_good is None else self._x_good.tolist(),
            "update": self._update.tolist(), "m": self._m.tolist(), "v": self._v.tolist(),
            "t": self._t, "failures": self._failures, "done": self._done,
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        set_generator_state(self._generator, state["generator"])
        self._al.load_state_dict(state["al"])
        self._x = as_tensor(state["x"])
        self._x_good = None if state["x_good"] is None else as_tensor(state["x_good"])
        self._update, self._m, self._v = (as_tensor(state[k]) for k in ("update", "m", "v"))
        self._t, self._failures = int(state["t"]), int(state["failures"])
        self._done = bool(state["done"])
