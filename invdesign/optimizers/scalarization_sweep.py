"""Gradient scalarisation sweep: ``W`` weight vectors, each a projected-Adam search on its own
scalarisation of the ``m`` objectives, all ``W`` advanced by one batched evaluation per step.

Each ask returns one point per active member, shape ``(W, dim)``; the problem evaluates them in one
call, with exact gradients of every objective (``Evaluation.objective_grads``, shape ``(m, dim)``) and
constraint. The scalarisations and the Adam updates are vectorised over the members (``scalarize``).

Scalarisation of member ``k`` with weights ``w_k`` (on the simplex), objectives ``F`` (minimised
convention) normalised as ``Ft_i = (F_i - u_ki) / s_i``:

- ``"chebyshev"`` (default): ``tau * logsumexp(w_k * Ft / tau) + rho * sum_i Ft_i`` (``smooth = tau``;
  ``tau = 0``: the exact ``max_i w_ki Ft_i``). The augmented Chebyshev form reaches non-convex parts of a
  front too, and the ``rho`` term keeps weakly dominated points out.
- ``"weighted_sum"``: ``sum_i w_ki Ft_i`` (convex parts of the front only).

Normalisation: the scale ``s`` and the starting utopia ``u`` come from the first batch (scale: the
declared reference point minus the batch's best values where a reference point is declared and lies
above them, else the batch's range; utopia: the batch's best values minus ``utopia_margin * s``), or
from the ``normalization`` setting ``[utopia (m,), scale (m,)]``. A member's utopia moves down (by the
same margin) whenever one of its own evaluations comes within the margin of it, so its terms stay
positive (a Chebyshev term below the utopia would flip the meaning of the weights). Per-member utopias
keep the members independent: ``W`` members in one batch take exactly the steps that ``W`` runs of one
member each take (tested).

Constraints: an augmented Lagrangian per member (``augmented_lagrangian.py``), multipliers updated every
``al_every`` steps. Steps: Adam with a cosine schedule ``lr -> lr_final``; ``lr`` is a fraction of each
coordinate's box width (absolute where the box is infinite); iterates are clipped to the box. Cheap
constraints (``on="params"``) never cost a simulation: a member at ``y`` is simulated at its projection
``x = project(y)`` (``cheap_constraints``: Newton steps on the violation) and descends ``f(project(y))``,
its gradients pulled back through the projection (``J^T g``, as ``multistart``), so it slides along the
constraint (projecting Adam's own iterates instead leaves it stuck: its per-coordinate step normalisation
can point straight into the constraint); a point the projection cannot make feasible counts as a failure
(below) without being simulated.
Failures: the member goes back to its last good point with half the step (as ``adam``; a failed start
is replaced by a seeded random point), and stops after ``max_failures`` in a row. ``done`` when every member has taken ``steps`` updates or stopped.
"""

from __future__ import annotations

import math
from typing import Any, final

import torch

from invdesign.optimizers.augmented_lagrangian import AugmentedLagrangian
from invdesign.optimizers.cheap_constraints import cheap_indices, feasible, pull_back, repair
from invdesign.optimizers.base import (
    Optimizer,
    as_tensor,
    generator_state,
    gradient_record,
    make_generator,
    set_generator_state,
)

SCALARIZATIONS = ("chebyshev", "weighted_sum")
STARTS = ("sobol", "initial")
SCALE_FLOOR = 1e-12


def simplex_weights(n: int, m: int) -> torch.Tensor:
    """``n`` weight vectors on the simplex, shape ``(n, m)``: evenly spaced for ``m = 2`` (both ends
    included), else the first ``n`` points of an unscrambled Sobol sequence mapped by sorted spacings."""
    if n < 1 or m < 2:
        raise ValueError(f"need n >= 1 weights of m >= 2 objectives; got n={n}, m={m}")
    if m == 2:
        t = torch.linspace(0.0, 1.0, n, dtype=torch.float64) if n > 1 else torch.tensor([0.5], dtype=torch.float64)
        return torch.stack([t, 1.0 - t], dim=1)
    u = torch.quasirandom.SobolEngine(m - 1, scramble=False).draw(n + 1, dtype=torch.float64)[1:]
    edges = torch.cat([torch.zeros(n, 1, dtype=torch.float64), u.sort(dim=1).values,
                       torch.ones(n, 1, dtype=torch.float64)], dim=1)
    return edges.diff(dim=1)


def scalarize(F: torch.Tensor, weights: torch.Tensor, utopia: torch.Tensor, scale: torch.Tensor,
              kind: str = "chebyshev", smooth: float = 0.01, rho: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Scalarised values ``(n,)`` and their derivatives ``d value / d F``, shape ``(n, m)``.

    ``F``: objectives, ``(n, m)``, minimised convention; ``weights``, ``utopia``: ``(n, m)``, one row per
    member; ``scale``: ``(m,)``. Row ``k`` of the result depends on row ``k`` of the inputs only.
    """
    ft = (F - utopia) / scale
    if kind == "weighted_sum":
        return (weights * ft).sum(dim=1), weights / scale
    if kind != "chebyshev":
        raise ValueError(f"scalarization must be one of {SCALARIZATIONS}; got {kind!r}")
    a = weights * ft
    if smooth > 0:
        value = smooth * torch.logsumexp(a / smooth, dim=1)
        share = torch.softmax(a / smooth, dim=1)
    else:
        value = a.max(dim=1).values
        share = torch.nn.functional.one_hot(a.argmax(dim=1), a.shape[1]).to(a.dtype)
    return value + rho * ft.sum(dim=1), (share * weights + rho) / scale


@final
class ScalarizationSweep(Optimizer):
    """``n_weights`` projected-Adam searches on Chebyshev (or weighted-sum) scalarisations, one batch a step."""

    name = "scalarization_sweep"
    multi_objective = True  # needs a problem with n_objectives >= 2
    uses_gradient = True
    constraint_handling = "augmented_lagrangian"
    description = "W-weight Chebyshev/weighted-sum sweep, vectorised projected Adam, one batched evaluation a step"

    def __init__(self, problem: Any, seed: int, *, n_weights: int = 8, weights: list | None = None,
                 scalarization: str = "chebyshev", smooth: float = 0.01, rho_aug: float = 1e-3,
                 normalization: list | None = None, utopia_margin: float = 0.5, start: str = "sobol",
                 lr: float = 0.05, lr_final: float = 1e-3, steps: int = 100, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8, al_every: int = 25, rho: float = 10.0,
                 max_failures: int = 10) -> None:
        """
        n_weights: W (ignored when ``weights``, a list of W weight vectors of length m, is given).
        scalarization: "chebyshev" or "weighted_sum"; smooth: Chebyshev log-sum-exp temperature on the
        normalised terms (0: exact max); rho_aug: augmentation weight. normalization: ``[utopia, scale]``
        (two lists of length m) instead of the first batch's. utopia_margin: how far below the best values
        the utopia sits, in scales. start: "sobol" (member 0 at the problem's initial point, the others at
        a Sobol design scrambled by the seed) or "initial" (all at the initial point). lr, lr_final, steps,
        beta1, beta2, eps: Adam (lr as a fraction of the box width). al_every, rho: augmented Lagrangian.
        max_failures: failed evaluations in a row before a member stops.
        """
        m = int(problem.n_objectives) if hasattr(problem, "n_objectives") else 1
        if m < 2:
            raise ValueError(f"{self.name}: the problem has {m} objective; it needs a MultiObjective (m >= 2)")
        if scalarization not in SCALARIZATIONS or start not in STARTS:
            raise ValueError(f"{self.name}: scalarization in {SCALARIZATIONS}, start in {STARTS}; got "
                             f"{scalarization!r}, {start!r}")
        super().__init__(problem, seed, {
            "n_weights": n_weights, "weights": weights, "scalarization": scalarization, "smooth": smooth,
            "rho_aug": rho_aug, "normalization": normalization, "utopia_margin": utopia_margin, "start": start,
            "lr": lr, "lr_final": lr_final, "steps": steps, "beta1": beta1, "beta2": beta2, "eps": eps,
            "al_every": al_every, "rho": rho, "max_failures": max_failures})
        self.m = m
        self.weights = as_tensor(weights) if weights is not None else simplex_weights(int(n_weights), m)
        if self.weights.ndim != 2 or self.weights.shape[1] != m or (self.weights < 0).any():
            raise ValueError(f"{self.name}: weights must be W non-negative vectors of length {m}")
        n = self.weights.shape[0]
        bounds = torch.as_tensor(problem.bounds, dtype=torch.float64)
        self._lo, self._hi = bounds[0], bounds[1]
        width = self._hi - self._lo
        self._step_scale = torch.where(torch.isfinite(width), width, torch.ones_like(width))
        x0 = torch.as_tensor(problem.initial_point(), dtype=torch.float64)
        self._cheap = bool(cheap_indices(problem))
        self._x = x0.expand(n, self.dim).clone()
        if start == "sobol" and n > 1:
            sobol = torch.quasirandom.SobolEngine(self.dim, scramble=True, seed=self.seed)
            self._x[1:] = problem.from_unit(sobol.draw(n - 1, dtype=torch.float64))
        self._x = self._project(self._x)
        self._x_good = torch.full((n, self.dim), math.nan, dtype=torch.float64)
        self._update = torch.zeros(n, self.dim, dtype=torch.float64)
        self._m1 = torch.zeros(n, self.dim, dtype=torch.float64)
        self._m2 = torch.zeros(n, self.dim, dtype=torch.float64)
        self._t = [0] * n
        self._failures = [0] * n
        self._stopped = [False] * n
        self._al = [AugmentedLagrangian(self.specs, rho=rho) for _ in range(n)]
        self._generator = make_generator(self.seed)  # new starts for members whose start failed
        self._utopia: torch.Tensor | None = None
        self._scale: torch.Tensor | None = None
        if normalization is not None:
            utopia, scale = (as_tensor(v) for v in normalization)
            if utopia.shape != (m,) or scale.shape != (m,) or not (scale > 0).all():
                raise ValueError(f"{self.name}: normalization is [utopia, scale], each of length {m}, scale > 0")
            self._utopia, self._scale = utopia.expand(n, m).clone(), scale
        self._active: list[int] = []
        self._settle()

    # ----- protocol ------------------------------------------------------------------------------

    @property
    def n_members(self) -> int:
        return int(self.weights.shape[0])

    def _alive(self) -> list[int]:
        return [k for k in range(self.n_members) if not self._stopped[k] and self._t[k] < self.settings["steps"]]

    @property
    def asked_members(self) -> list[int]:
        """Which member each row of the pending (or last) ask belongs to."""
        return list(self._active)

    @property
    def batch_size(self) -> int:
        return len(self._alive()) if self._pending is None else int(self._pending.shape[0])

    @property
    def done(self) -> bool:
        return not self._alive()

    @property
    def done_reason(self) -> str | None:
        if not self.done:
            return None
        return "too_many_failures" if all(self._stopped) else "step_limit"

    def _settle(self) -> None:
        """Members whose next point the projection cannot make cheap-feasible fail (unsimulated) until it
        can or they stop; run after every tell (and at the start), so ``done`` is known before an ask."""
        for k in self._alive():
            while self._cheap and not self._stopped[k] and not feasible(self.problem, self._cheap_feasible(self._x[k])):
                self._failed(k)

    def _ask(self) -> torch.Tensor:
        self._active = self._alive()
        return torch.stack([self._cheap_feasible(self._x[k]) for k in self._active]) if self._active \
            else self._x[:0].clone()

    def _tell(self, points: torch.Tensor, evaluations: list[Any]) -> None:
        self._update_members(points, evaluations)
        self._settle()

    def _update_members(self, points: torch.Tensor, evaluations: list[Any]) -> None:
        rows = self._active
        records = [gradient_record(e) if e.objective_grads is not None and e.objectives is not None
                   and all(map(math.isfinite, e.objectives)) else None for e in evaluations]
        if self._scale is None:
            self._normalise([e for e, r in zip(evaluations, records) if r is not None])
        good = [i for i, r in enumerate(records) if r is not None]
        for i, r in enumerate(records):
            if r is None:
                self._failed(rows[i])
        if not good or self._scale is None:
            return
        idx = torch.tensor([rows[i] for i in good])
        F = as_tensor([evaluations[i].objectives for i in good])                   # (g, m)
        G = as_tensor([evaluations[i].objective_grads for i in good])              # (g, m, dim)
        margin = self.settings["utopia_margin"] * self._scale
        self._utopia[idx] = torch.minimum(self._utopia[idx], torch.where(
            F - self._utopia[idx] < margin, F - 2 * margin, self._utopia[idx]))
        s = self.settings
        values, coeffs = scalarize(F, self.weights[idx], self._utopia[idx], self._scale, s["scalarization"],
                                   s["smooth"], s["rho_aug"])
        grads = (coeffs[:, :, None] * G).sum(dim=1)                                 # (g, dim)
        merit_grads = []
        for j, i in enumerate(good):
            k, ev = rows[i], evaluations[i]
            _, g = self._al[k].merit(float(values[j]), grads[j], list(ev.constraints), ev.constraint_grads)
            merit_grads.append(g)
            self._failures[k] = 0
            self._t[k] += 1
        y = self._x[idx].clone()  # the members' own points: ``points`` holds their projections
        if self._cheap:  # descend f(project(y)): gradients pulled back through the projection (J^T g)
            merit_grads = [torch.as_tensor(pull_back(self.problem, y[j], [g.tolist()])[0], dtype=torch.float64)
                           for j, g in enumerate(merit_grads)]
        self._adam(idx, y, torch.stack(merit_grads))
        for i in good:
            k = rows[i]
            if self._al[k].active and self._t[k] % s["al_every"] == 0:
                self._al[k].update(list(evaluations[i].constraints))

    # ----- pieces --------------------------------------------------------------------------------

    def _normalise(self, evaluations: list[Any]) -> None:
        """Scale and starting utopia from the first batch's usable evaluations (module docstring)."""
        if not evaluations:
            return
        F = as_tensor([e.objectives for e in evaluations])
        best, worst = F.min(dim=0).values, F.max(dim=0).values
        ref = getattr(getattr(self.problem, "objective", None), "ref_point", None)
        spread = worst - best
        if ref is not None:
            spread = torch.where(as_tensor(ref) - best > 0, as_tensor(ref) - best, spread)
        self._scale = torch.clamp(spread, min=SCALE_FLOOR * float(best.abs().max().clamp(min=1.0)))
        utopia = best - self.settings["utopia_margin"] * self._scale
        self._utopia = utopia.expand(self.n_members, self.m).clone()

    def _failed(self, k: int) -> None:
        self._failures[k] += 1
        if self._failures[k] >= self.settings["max_failures"]:
            self._stopped[k] = True
        elif torch.isnan(self._x_good[k]).any():  # a failed start: a seeded random one instead
            self._x[k] = self._project(self.problem.random_points(1, self._generator)[0].to(torch.float64))
        else:
            self._update[k] = 0.5 * self._update[k]
            self._x[k] = self._project(self._x_good[k] + self._update[k])

    def _adam(self, idx: torch.Tensor, x: torch.Tensor, g: torch.Tensor) -> None:
        """One Adam step for members ``idx`` at points ``x`` with merit gradients ``g``, both ``(g, dim)``."""
        s = self.settings
        t = as_tensor([self._t[int(k)] for k in idx])[:, None]
        fraction = torch.clamp((t - 1) / max(s["steps"] - 1, 1), 0.0, 1.0)
        lr = s["lr_final"] + 0.5 * (s["lr"] - s["lr_final"]) * (1 + torch.cos(math.pi * fraction))
        self._m1[idx] = s["beta1"] * self._m1[idx] + (1 - s["beta1"]) * g
        self._m2[idx] = s["beta2"] * self._m2[idx] + (1 - s["beta2"]) * g * g
        m_hat = self._m1[idx] / (1 - s["beta1"] ** t)
        v_hat = self._m2[idx] / (1 - s["beta2"] ** t)
        self._update[idx] = -lr * self._step_scale * m_hat / (v_hat.sqrt() + s["eps"])
        self._x_good[idx] = x
        self._x[idx] = self._project(x + self._update[idx])

    def _project(self, z: torch.Tensor) -> torch.Tensor:
        return torch.minimum(torch.maximum(z, self._lo), self._hi)

    def _cheap_feasible(self, y: torch.Tensor) -> torch.Tensor:
        """The point simulated for a member at ``y`` (``(dim,)``): ``y``, or its projection onto the cheap
        constraints (``cheap_constraints.repair``, no simulation; callers test it with ``feasible``)."""
        return y if not self._cheap or feasible(self.problem, y) else repair(self.problem, y)

    # ----- state ---------------------------------------------------------------------------------

    def _state_dict(self) -> dict[str, Any]:
        return {
            "x": self._x.tolist(), "x_good": [[v if math.isfinite(v) else "nan" for v in row]
                                              for row in self._x_good.tolist()],
            "update": self._update.tolist(), "m1": self._m1.tolist(), "m2": self._m2.tolist(),
            "t": list(self._t), "failures": list(self._failures), "stopped": list(self._stopped),
            "al": [al.state_dict() for al in self._al], "active": list(self._active),
            "generator": generator_state(self._generator),
            "utopia": None if self._utopia is None else self._utopia.tolist(),
            "scale": None if self._scale is None else self._scale.tolist(),
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self._x = as_tensor(state["x"])
        self._x_good = as_tensor([[float(v) for v in row] for row in state["x_good"]])
        self._update, self._m1, self._m2 = (as_tensor(state[k]) for k in ("update", "m1", "m2"))
        self._t, self._failures = [int(v) for v in state["t"]], [int(v) for v in state["failures"]]
        self._stopped = [bool(v) for v in state["stopped"]]
        for al, saved in zip(self._al, state["al"]):
            al.load_state_dict(saved)
        self._active = [int(k) for k in state["active"]]
        set_generator_state(self._generator, state["generator"])
        self._utopia = None if state["utopia"] is None else as_tensor(state["utopia"])
        self._scale = None if state["scale"] is None else as_tensor(state["scale"])
