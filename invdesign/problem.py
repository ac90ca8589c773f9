"""Problem: a parameter space, a simulation, an objective and constraints; and the record of one evaluation.

A concrete problem subclasses ``Problem``, sets ``name``, ``space``, ``objective`` (and optionally
``constraints``, ``grad_cost_factor``, ``optimum_value``...) as class attributes or in ``__init__``,
and implements ``simulate(params) -> response``. Optimizers only call ``evaluate``: it never raises
for a failed simulation; the failure becomes an ``Evaluation`` with ``failed=True`` and its reason.

Cost accounting: an evaluation costs 1 forward-equivalent simulation, or ``grad_cost_factor`` when
the gradient was asked for (failed evaluations cost the same: the work was done).
"""

from __future__ import annotations

import abc
import dataclasses
import math
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch

from invdesign.constraints import Constraint, ConstraintSpec
from invdesign.jsonfloat import decode_float as _dec
from invdesign.jsonfloat import encode_float as _enc
from invdesign.objectives import Objective
from invdesign.params import DTYPE, ParameterSpace

__all__ = ["ConstraintSpec", "Evaluation", "NonFiniteError", "Problem", "DEFAULT_GRAD_COST_FACTOR"]

DEFAULT_GRAD_COST_FACTOR = 2.0  # used when the measurement itself fails; a typical reverse-mode ratio
OUT_OF_BOUNDS_RTOL = 1e-9  # relative to the box width (at least 1): rounding of the unit-cube maps passes


class NonFiniteError(ArithmeticError):
    """The objective, a constraint or a gradient came out NaN or infinite."""


@dataclasses.dataclass
class Evaluation:
    """The outcome of evaluating one point.

    ``x``: optimizer coordinates (length ``dim``); ``value``: objective (minimized; NaN if failed);
    ``grad``: d value / d x when asked for; ``constraints``: one value per ``ConstraintSpec`` in the
    problem's order (sign convention in ``invdesign.constraints``), NaN where not computed;
    ``constraint_grads``: their gradients (``len(constraints)`` lists of length ``dim``);
    ``feasible``: not failed and every constraint satisfied; ``reason``: ``"ExceptionType: message"``
    of a failure; ``cost``: forward-equivalent simulations; ``wall_time_s``: seconds for this point
    (its share of the call when a batch was simulated in one call, ``invdesign.batch_eval``).
    Multi-objective problems (``invdesign.multiobjective``) also record ``objectives``, all ``m`` objectives
    (minimised convention, length ``m``), and with gradients ``objective_grads`` (``m`` lists of length
    ``dim``); both are None otherwise and then left out of ``to_dict``.
    """

    x: list[float]
    value: float
    grad: list[float] | None = None
    constraints: list[float] = dataclasses.field(default_factory=list)
    constraint_grads: list[list[float]] | None = None
    feasible: bool = True
    failed: bool = False
    reason: str | None = None
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    cost: float = 1.0
    wall_time_s: float = 0.0
    objectives: list[float] | None = None
    objective_grads: list[list[float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (``json.dumps(..., allow_nan=False)`` works): NaN/inf become ``"nan"``, ``"inf"``..."""
        out = {
            "x": [_enc(v) for v in self.x],
            "value": _enc(self.value),
            "grad": None if self.grad is None else [_enc(v) for v in self.grad],
            "constraints": [_enc(v) for v in self.constraints],
            "constraint_grads": None if self.constraint_grads is None
            else [[_enc(v) for v in row] for row in self.constraint_grads],
            "feasible": self.feasible,
            "failed": self.failed,
            "reason": self.reason,
            "metrics": {k: _enc(v) for k, v in self.metrics.items()},
            "cost": _enc(self.cost),
            "wall_time_s": _enc(self.wall_time_s),
        }
        if self.objectives is not None:  # multi-objective only: single-objective records stay as they were
            out["objectives"] = [_enc(v) for v in self.objectives]
        if self.objective_grads is not None:
            out["objective_grads"] = [[_enc(v) for v in row] for row in self.objective_grads]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Evaluation:
        """Inverse of ``to_dict``."""
        return cls(
            x=[_dec(v) for v in d["x"]],
            value=_dec(d["value"]),
            grad=None if d.get("grad") is None else [_dec(v) for v in d["grad"]],
            constraints=[_dec(v) for v in d.get("constraints", [])],
            constraint_grads=None if d.get("constraint_grads") is None
            else [[_dec(v) for v in row] for row in d["constraint_grads"]],
            feasible=bool(d["feasible"]),
            failed=bool(d["failed"]),
            reason=d.get("reason"),
            metrics={k: _dec(v) for k, v in d.get("metrics", {}).items()},
            cost=_dec(d.get("cost", 1.0)),
            wall_time_s=_dec(d.get("wall_time_s", 0.0)),
            objectives=None if d.get("objectives") is None else [_dec(v) for v in d["objectives"]],
            objective_grads=None if d.get("objective_grads") is None
            else [[_dec(v) for v in row] for row in d["objective_grads"]],
        )


def _scalar(value, what: str) -> torch.Tensor:
    value = torch.as_tensor(value)
    if value.numel() != 1:
        raise ValueError(f"{what} must be a scalar; got shape {tuple(value.shape)}")
    value = value.reshape(())
    if not torch.isfinite(value.detach()):
        raise NonFiniteError(f"{what} is {value.item()}")
    return value


class Problem(abc.ABC):
    """An inverse-design problem: minimize ``objective(simulate(params), params)`` subject to ``constraints``.

    Attributes (class attributes or set in ``__init__``):
        name, description: for registries and reports.
        space: the ``ParameterSpace``.
        objective: an ``Objective``.
        constraints: a sequence of ``Constraint`` (default none).
        grad_cost_factor: forward-equivalent cost of value + gradient. Set it when known (the toy
            problems use 2); otherwise it is measured once, lazily, at the initial point (best of 3
            timings each of value and value+gradient, at least 1) and cached; the timing runs are not
            counted as evaluations.
        optimum_value, optimum_x, tolerance: known optimum (value; optimizer coordinates) and the
            absolute tolerance on the value that counts as reaching it (tests), None when unknown.
    """

    name: str = ""
    description: str = ""
    space: ParameterSpace
    objective: Objective
    constraints: Sequence[Constraint] = ()
    optimum_value: float | None = None
    optimum_x: list[float] | None = None
    tolerance: float | None = None

    @abc.abstractmethod
    def simulate(self, params: dict[str, torch.Tensor]) -> Any:
        """The response (a tensor or a dict of tensors) for one point's params (tensors of each block's shape)."""

    # ------------------------------------------------------------------ delegates to the space

    @property
    def dim(self) -> int:
        return self.space.dim

    @property
    def bounds(self) -> torch.Tensor:
        """Shape ``(2, dim)``, optimizer coordinates."""
        return self.space.bounds

    def to_unit(self, z: torch.Tensor) -> torch.Tensor:
        return self.space.to_unit(z)

    def from_unit(self, u: torch.Tensor) -> torch.Tensor:
        return self.space.from_unit(u)

    def to_params(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.space.to_params(z)

    def from_params(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.space.from_params(params)

    def initial_point(self) -> torch.Tensor:
        """Shape ``(dim,)``."""
        return self.space.initial_point()

    def random_points(self, n: int, generator: torch.Generator | int) -> torch.Tensor:
        """Shape ``(n, dim)``, uniform in the unit cube."""
        return self.space.random_points(n, generator)

    @property
    def n_objectives(self) -> int:
        """Number of objectives: ``m`` of a ``MultiObjective`` objective, else 1."""
        return int(getattr(self.objective, "n_objectives", 1))

    @property
    def constraint_specs(self) -> list[ConstraintSpec]:
        specs = [c.spec for c in self.constraints]
        names = [s.name for s in specs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"problem '{self.name}': duplicate constraint names {duplicates}")
        return specs

    # ------------------------------------------------------------------ cost

    @property
    def grad_cost_factor(self) -> float:
        if getattr(self, "_grad_cost_factor", None) is None:
            self._grad_cost_factor = self.measure_grad_cost_factor()
        return self._grad_cost_factor

    @grad_cost_factor.setter
    def grad_cost_factor(self, value: float) -> None:
        self._grad_cost_factor = float(value)

    def measure_grad_cost_factor(self, repeats: int = 3) -> float:
        """Median over ``repeats`` interleaved (value, value + gradient) pairs at the initial point, after
        one warm-up pair, of their CPU-time ratio (>= 1).

        CPU time of this process, not wall time: on a shared machine other processes stretch single
        wall-clock timings by whole factors (a best-of-3 wall-time ratio came out 1.0 and 1.6 for the
        same problem in two runs started together), CPU time they do not touch.
        """
        z = self.initial_point()
        ratios = []
        for i in range(repeats + 1):
            cpu = []
            for need_grad in (False, True):
                start = time.process_time()
                if self._evaluate_point(z, need_grad, cost=1.0).failed:
                    return DEFAULT_GRAD_COST_FACTOR
                cpu.append(time.process_time() - start)
            if i:
                ratios.append(cpu[1] / max(cpu[0], 1e-9))
        return max(1.0, statistics.median(ratios))

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, z: torch.Tensor, need_grad: bool = False) -> list[Evaluation]:
        """Evaluate points ``z`` of shape ``(n, dim)`` (or one point ``(dim,)``), one ``Evaluation`` each.

        A problem that defines ``simulate_batch`` simulates a batch of two or more points in one call
        (``invdesign.batch_eval``: the same records, each point's cost unchanged).
        Raises only for a malformed call (``z`` of the wrong shape, duplicate constraint names): everything
        that goes wrong inside a point's simulation, objective, constraints or gradients is recorded as a
        failed evaluation.
        """
        z = torch.as_tensor(z, dtype=DTYPE)
        if z.ndim == 1:
            z = z.unsqueeze(0)
        if z.ndim != 2 or z.shape[1] != self.dim:
            raise ValueError(f"problem '{self.name}': points must have shape (n, {self.dim}); got {tuple(z.shape)}")
        cost = self.grad_cost_factor if need_grad else 1.0
        if len(z) > 1 and callable(getattr(self, "simulate_batch", None)):  # one batched simulation
            from invdesign.batch_eval import evaluate_batch

            return evaluate_batch(self, z, need_grad, cost)
        return [self._evaluate_point(zi, need_grad, cost) for zi in z]

    def evaluate_one(self, z: torch.Tensor, need_grad: bool = False) -> Evaluation:
        """Evaluate one point ``z`` of shape ``(dim,)``."""
        z = torch.as_tensor(z, dtype=DTYPE)
        if z.shape != (self.dim,):
            raise ValueError(f"problem '{self.name}': a point must have shape ({self.dim},); got {tuple(z.shape)}")
        return self.evaluate(z, need_grad)[0]

    def outside_bounds(self, z: torch.Tensor) -> str | None:
        """Why point ``z`` (optimizer coordinates) lies outside the box (beyond rounding), else None."""
        b = torch.as_tensor(self.bounds, dtype=DTYPE)
        width = torch.where(torch.isfinite(b[1] - b[0]), (b[1] - b[0]).abs(), torch.ones_like(b[0]))
        slack = OUT_OF_BOUNDS_RTOL * torch.clamp(width, min=1.0)
        bad = torch.nonzero((z < b[0] - slack) | (z > b[1] + slack) | torch.isnan(z)).reshape(-1)
        if not len(bad):
            return None
        i = int(bad[0])
        return (f"OutOfBounds: point outside the problem's box at {len(bad)} coordinate(s), e.g. z[{i}] = "
                f"{float(z[i])!r} not in [{float(b[0, i])!r}, {float(b[1, i])!r}] (optimizer coordinates; "
                f"clip it into problem.bounds, or widen the block's bounds)")

    def _evaluate_point(self, z: torch.Tensor, need_grad: bool, cost: float) -> Evaluation:
        start = time.perf_counter()
        specs = self.constraint_specs
        x = z.detach().clone()
        g_values = [math.nan] * len(specs)
        outside = self.outside_bounds(x)
        if outside is not None:  # refused: a value there is not a value of this problem
            return Evaluation(x=x.tolist(), value=math.nan, grad=None, constraints=g_values, constraint_grads=None,
                              feasible=False, failed=True, reason=outside, metrics={}, cost=cost,
                              wall_time_s=time.perf_counter() - start)
        try:
            vector: dict[str, list] = {}  # filled by _compute for multi-objective problems
            value, grad, g_values, g_grads, metrics = self._compute(x, need_grad, specs, g_values, vector)
            failed, reason = False, None
        except Exception as err:  # a failed point is data, not a crash
            value, grad, g_grads, metrics, vector = math.nan, None, None, {}, {}
            failed, reason = True, f"{type(err).__name__}: {err}"
        feasible = not failed and all(s.satisfied(g) for s, g in zip(specs, g_values))
        return Evaluation(x=x.tolist(), value=value, grad=grad, constraints=g_values, constraint_grads=g_grads,
                          feasible=feasible, failed=failed, reason=reason, metrics=metrics, cost=cost,
                          wall_time_s=time.perf_counter() - start,
                          objectives=vector.get("values", [math.nan] * self.n_objectives) if self.n_objectives > 1
                          else None, objective_grads=vector.get("grads"))

    def _compute(self, x: torch.Tensor, need_grad: bool, specs: list[ConstraintSpec], g_values: list[float],
                 vector: dict[str, list] | None = None):
        # grad mode is ours to set: callers may sit in no_grad or inference_mode (which would zero the gradients)
        with torch.inference_mode(False):
            with torch.set_grad_enabled(need_grad):
                z = x.clone().requires_grad_(need_grad)
                params = self.space.to_params(z)
                g_tensors: list[torch.Tensor | None] = [None] * len(specs)
                response = None
                # cheap params constraints first: their values are recorded even if the simulation fails
                for i in sorted(range(len(specs)), key=lambda i: specs[i].on != "params"):
                    if specs[i].on == "response" and response is None:
                        response = self.simulate(params)
                    g_tensors[i] = _scalar(self.constraints[i](response, params), f"constraint '{specs[i].name}'")
                    g_values[i] = float(g_tensors[i].detach())
                if response is None:
                    response = self.simulate(params)
                value = _scalar(self.objective(response, params), "objective value")
                minimized = getattr(self.objective, "minimized", None)
                f_tensors = [_scalar(f, f"objective {i}") for i, f in enumerate(minimized(response, params))] \
                    if minimized is not None else []
            with torch.no_grad():
                metrics = {k: float(v) for k, v in self.objective.metrics(response, params).items()}
            if f_tensors and vector is not None:
                vector["values"] = [float(f.detach()) for f in f_tensors]
            if not need_grad:
                return float(value.detach()), None, g_values, None, metrics
            whats = ["objective", *(f"constraint '{s.name}'" for s in specs)]
            grads = [self._grad(out, z, what) for out, what in zip([value, *g_tensors], whats)]
            if f_tensors and vector is not None:
                primary = getattr(self.objective, "primary", None)  # its gradient is the value's: no second backward
                vector["grads"] = [grads[0] if i == primary else self._grad(f, z, f"objective {i}")
                                   for i, f in enumerate(f_tensors)]
        return float(value.detach()), grads[0], g_values, grads[1:], metrics

    @staticmethod
    def _grad(out: torch.Tensor, z: torch.Tensor, what: str) -> list[float]:
        if not out.requires_grad:  # does not depend on z
            return [0.0] * z.numel()
        (g,) = torch.autograd.grad(out, z, retain_graph=True, allow_unused=True)
        if g is None:
            return [0.0] * z.numel()
        if not torch.isfinite(g).all():
            raise NonFiniteError(f"gradient of the {what} contains NaN or inf")
        return g.tolist()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, constraints={len(self.constraints)})"
