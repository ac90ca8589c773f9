"""L-BFGS with a strong-Wolfe line search, as an ask/tell state machine (float64).

Why not ``torch.optim.LBFGS``: its closure interface evaluates inside ``step()``, which cannot be
paused for an external (batched, checkpointed) evaluation. Here each ``ask()`` is one trial point
and the state is plain data: iterate, memory pairs, search direction, and the line-search trials
(``line_search.strong_wolfe`` replays its algorithm over those, so it needs no other state).

Bounds (``problem.bounds``, may be infinite) are handled by projection: variables at a bound whose
gradient pushes outwards are frozen for the step (their gradient entries and direction are zeroed
before and after the two-loop recursion), and the line search runs along the projected path
``z(alpha) = clip(z + alpha d)``, whose slope only counts the unclipped coordinates. Without finite
bounds this is plain L-BFGS. Constraints: augmented Lagrangian (``augmented_lagrangian.py``); the
inner L-BFGS restarts (memory cleared) after each multiplier update.

Failed evaluations: a failed trial is ``phi = +inf`` to the line search (it bisects back); a failed
starting point is replaced by ``problem.random_points`` from the seeded generator.
"""

from __future__ import annotations

import math
from typing import Any, final

import torch

from invdesign.optimizers.augmented_lagrangian import AugmentedLagrangian
from invdesign.optimizers.base import (
    Optimizer,
    as_tensor,
    decode_float,
    encode_float,
    generator_state,
    gradient_record,
    make_generator,
    set_generator_state,
)
from invdesign.optimizers.line_search import strong_wolfe


@final
class LBFGS(Optimizer):
    """Projected L-BFGS with strong-Wolfe line search; augmented Lagrangian for constraints."""

    name = "lbfgs"
    uses_gradient = True
    constraint_handling = "augmented_lagrangian"
    description = "L-BFGS, strong-Wolfe line search, bound projection, augmented Lagrangian"

    def __init__(self, problem: Any, seed: int, *, history: int = 10, max_iter: int = 10_000,
                 gtol: float = 1e-9, ftol: float = 1e-15, c1: float = 1e-4, c2: float = 0.9,
                 max_line_search: int = 25, rho: float = 10.0, max_outer: int = 30,
                 ctol: float = 1e-7) -> None:
        """
        history: memory pairs kept. max_iter: accepted steps before ``done``. gtol: stop when the
        projected gradient's max-norm is below it. ftol: stop when a step lowers the merit by less
        than ``ftol * max(|f|, 1)``. c1, c2: Wolfe constants. max_line_search: trials per search.
        rho: initial augmented-Lagrangian penalty. max_outer: multiplier updates at most.
        ctol: stop when feasible and the complementarity residual is below it.
        """
        super().__init__(problem, seed, {
            "history": history, "max_iter": max_iter, "gtol": gtol, "ftol": ftol, "c1": c1,
            "c2": c2, "max_line_search": max_line_search, "rho": rho, "max_outer": max_outer,
            "ctol": ctol})
        bounds = torch.as_tensor(problem.bounds, dtype=torch.float64)
        self._lo, self._hi = bounds[0], bounds[1]
        self._generator = make_generator(self.seed)
        self._al = AugmentedLagrangian(self.specs, rho=rho)
        self._start = self._project(torch.as_tensor(problem.initial_point(), dtype=torch.float64))
        self._x: torch.Tensor | None = None        # current iterate, (dim,)
        self._raw: dict[str, Any] | None = None    # its raw evaluation (value, grad, constraints)
        self._f = math.nan                         # merit at the iterate
        self._g: torch.Tensor | None = None        # merit gradient at the iterate, (dim,)
        self._memory: list[tuple[torch.Tensor, torch.Tensor]] = []  # (s, y) pairs, oldest first
        self._d: torch.Tensor | None = None        # search direction, (dim,)
        self._search: dict[str, float] = {}        # phi0, dphi0, alpha1, alpha_max, alpha_tol
        self._trials: list[tuple[float, float, float]] = []  # (alpha, phi, dphi)
        self._trial_raw: list[dict[str, Any] | None] = []
        self._alpha = math.nan                     # step length of the pending trial
        self._n_iter = 0
        self._n_outer = 0
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    # ----- ask / tell ----------------------------------------------------------------------------

    def _ask(self) -> torch.Tensor:
        if self._x is None:
            return self._start[None]
        if self._done:
            return self._x[None]
        return self._path(self._alpha)[None]

    def _tell(self, points: torch.Tensor, evaluations: list[Any]) -> None:
        evaluation = evaluations[0]
        raw = gradient_record(evaluation)
        if self._done:
            return
        if self._x is None:
            if raw is None:  # failed start: try a seeded random point instead
                self._start = self.problem.random_points(1, self._generator)[0].to(torch.float64)
                return
            self._x, self._raw = points[0], raw
            self._set_merit()
            self._new_direction()
            return
        if raw is None:
            phi, dphi = math.inf, math.nan
        else:
            phi, grad = self._al.merit(raw["value"], as_tensor(raw["grad"]), raw["constraints"],
                                       raw["constraint_grads"])
            dphi = float(grad @ self._slope_direction(self._alpha))
        self._trials.append((self._alpha, phi, dphi))
        self._trial_raw.append(raw)
        self._advance_search()

    # ----- the state machine ---------------------------------------------------------------------

    def _advance_search(self) -> None:
        s = self.settings
        verdict, value = strong_wolfe(
            self._search["phi0"], self._search["dphi0"], self._search["alpha1"],
            self._search["alpha_max"], self._trials, c1=s["c1"], c2=s["c2"],
            alpha_tol=self._search["alpha_tol"], max_trials=s["max_line_search"])
        if verdict == "try":
            self._alpha = value
        elif verdict == "accept":
            self._accept(int(value))
        elif self._memory:  # failed along a quasi-Newton direction: retry steepest descent
            self._memory = []
            self._new_direction()
        else:
            self._inner_converged()
            self._new_direction()

    def _accept(self, index: int) -> None:
        alpha = self._trials[index][0]
        x_new = self._path(alpha)
        f_old, g_old, x_old = self._f, self._g, self._x
        self._x, self._raw = x_new, self._trial_raw[index]
        self._set_merit()
        s, y = x_new - x_old, self._g - g_old
        if float(s @ y) > 1e-10 * float(s.norm() * y.norm()):  # keeps the inverse Hessian SPD
            self._memory.append((s, y))
            self._memory = self._memory[-self.settings["history"]:]
        self._n_iter += 1
        if self._n_iter >= self.settings["max_iter"]:
            self._done = True
        elif f_old - self._f <= self.settings["ftol"] * max(abs(f_old), abs(self._f), 1.0):
            self._inner_converged()
            self._new_direction()
        else:
            self._new_direction()

    def _new_direction(self) -> None:
        """Two-loop recursion on the free variables; starts a line search, or ends the inner loop
        when the projected gradient is small."""
        while not self._done and self._projected_gradient_norm() <= self.settings["gtol"]:
            self._inner_converged()  # ends the run, or updates multipliers (bounded by max_outer)
        if self._done:
            return
        x, g = self._x, self._g
        free = ~(((x <= self._lo) & (g > 0)) | ((x >= self._hi) & (g < 0)))
        q = torch.where(free, g, 0.0)
        d = -torch.where(free, self._two_loop(q), 0.0)
        if not float(d @ g) < 0.0:  # not a descent direction: forget the curvature pairs
            self._memory = []
            d = -q
        self._d = d
        dmax = float(d.abs().max())
        alpha1 = 1.0 if self._memory else min(1.0, 1.0 / float(d.norm()))
        alpha_max = self._alpha_max(d)
        self._search = {
            "phi0": self._f, "dphi0": float(d @ g), "alpha1": min(alpha1, alpha_max),
            "alpha_max": alpha_max,
            "alpha_tol": 1e-15 * max(1.0, float(x.abs().max())) / dmax,
        }
        self._trials, self._trial_raw = [], []
        self._advance_search()

    def _inner_converged(self) -> None:
        """The (augmented Lagrangian) subproblem is solved: finish, or update multipliers (the
        caller then starts a new search on the new merit)."""
        if not self._al.active:
            self._done = True
            return
        constraints = self._raw["constraints"]
        feasible = self._al.max_violation(constraints) <= 0.0
        if feasible and self._al.residual(constraints) <= self.settings["ctol"]:
            self._done = True
            return
        self._n_outer += 1
        if self._n_outer > self.settings["max_outer"]:
            self._done = True
            return
        self._al.update(constraints)
        self._memory = []
        self._set_merit()

    # ----- pieces --------------------------------------------------------------------------------

    def _two_loop(self, q: torch.Tensor) -> torch.Tensor:
        """Inverse-Hessian approximation times ``q`` (Nocedal & Wright, Algorithm 7.4)."""
        q = q.clone()
        coefficients = []
        for s, y in reversed(self._memory):
            rho = 1.0 / float(y @ s)
            a = rho * float(s @ q)
            q -= a * y
            coefficients.append((rho, a))
        if self._memory:
            s, y = self._memory[-1]
            q *= float(s @ y) / float(y @ y)
        for (s, y), (rho, a) in zip(self._memory, reversed(coefficients)):
            b = rho * float(y @ q)
            q += (a - b) * s
        return q

    def _projected_gradient_norm(self) -> float:
        return float((self._project(self._x - self._g) - self._x).abs().max())

    def _project(self, z: torch.Tensor) -> torch.Tensor:
        return torch.minimum(torch.maximum(z, self._lo), self._hi)

    def _path(self, alpha: float) -> torch.Tensor:
        return self._project(self._x + alpha * self._d)

    def _slope_direction(self, alpha: float) -> torch.Tensor:
        """d/dalpha of the projected path at ``alpha``: ``d`` on the coordinates not clipped."""
        raw = self._x + alpha * self._d
        inside = (raw > self._lo) & (raw < self._hi)
        return torch.where(inside, self._d, 0.0)

    def _alpha_max(self, d: torch.Tensor) -> float:
        """Step length beyond which the projected path no longer moves (capped at 1e10)."""
        target = torch.where(d > 0, self._hi, self._lo)
        moving = d != 0
        steps = ((target - self._x) / d)[moving]
        largest = float(steps.max()) if steps.numel() else 0.0
        return min(largest, 1e10) if math.isfinite(largest) else 1e10

    def _set_merit(self) -> None:
        raw = self._raw
        self._f, self._g = self._al.merit(raw["value"], as_tensor(raw["grad"]),
                                          raw["constraints"], raw["constraint_grads"])

    # ----- state ---------------------------------------------------------------------------------

    def _state_dict(self) -> dict[str, Any]:
        def listed(t: torch.Tensor | None) -> list | None:
            return None if t is None else t.tolist()

        return {
            "generator": generator_state(self._generator), "al": self._al.state_dict(),
            "start": self._start.tolist(), "x": listed(self._x), "raw": self._raw,
            "memory": [[s.tolist(), y.tolist()] for s, y in self._memory], "d": listed(self._d),
            "search": dict(self._search),
            "trials": [[encode_float(v) for v in t] for t in self._trials],
            "trial_raw": list(self._trial_raw), "alpha": encode_float(self._alpha), "n_iter": self._n_iter,
            "n_outer": self._n_outer, "done": self._done,
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        def tensor(v: list | None) -> torch.Tensor | None:
            return None if v is None else as_tensor(v)

        set_generator_state(self._generator, state["generator"])
        self._al.load_state_dict(state["al"])
        self._start = as_tensor(state["start"])
        self._x, self._raw = tensor(state["x"]), state["raw"]
        self._memory = [(as_tensor(s), as_tensor(y)) for s, y in state["memory"]]
        self._d = tensor(state["d"])
        self._search = dict(state["search"])
        self._trials = [tuple(decode_float(v) for v in t) for t in state["trials"]]
        self._trial_raw = list(state["trial_raw"])
        self._alpha = decode_float(state["alpha"])
        self._n_iter, self._n_outer = int(state["n_iter"]), int(state["n_outer"])
        self._done = bool(state["done"])
        if self._raw is not None:
            self._set_merit()  # deterministic function of raw and multipliers

