"""Constraints, with one sign convention for the whole package.

- Inequality ``g(x) <= 0`` is feasible; reported ``g`` is positive when violated. Feasible means
  ``g <= tol`` (``tol`` defaults to 0; a small positive ``tol`` is slack for iterative optimizers).
- Equality ``h(x) = 0``: reported ``h``; feasible means ``|h| <= tol``.

Every optimizer adapter (nevergrad, BoTorch, scipy) translates from this convention, in one place,
next to the optimizer, and tests pin the sign there.

A constraint is ``on="params"`` (cheap: needs only the params; ``ParamConstraint``) or
``on="response"`` (needs the simulation). ``Problem.evaluate`` computes the params constraints first
and then simulates anyway, so every evaluation records its objective value even where infeasible
(penalty and filter methods need it, and a Bayesian model learns from it).
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import Any, final

import torch

from invdesign.objectives import DTYPE, Objective, Params, Quantity, pick, quantity


@dataclasses.dataclass(frozen=True)
class ConstraintSpec:
    """What an optimizer needs to know about a constraint: its name, kind, tolerance and what it reads."""

    name: str
    kind: str = "ineq"  # "ineq": g <= 0 feasible; "eq": h = 0 (|h| <= tol) feasible
    tol: float = 0.0
    on: str = "response"  # "params" (no simulation needed) or "response"

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"ConstraintSpec: name must be a non-empty string; got {self.name!r}")
        if self.kind not in ("ineq", "eq"):
            raise ValueError(f"constraint '{self.name}': kind must be 'ineq' or 'eq'; got {self.kind!r}")
        if self.on not in ("params", "response"):
            raise ValueError(f"constraint '{self.name}': on must be 'params' or 'response'; got {self.on!r}")
        if not (self.tol >= 0 and math.isfinite(self.tol)):
            raise ValueError(f"constraint '{self.name}': tol must be finite and >= 0; got {self.tol!r}")

    def violation(self, value: float) -> float:
        """How far ``value`` is outside the feasible set: 0 when feasible, ``inf`` for NaN."""
        if math.isnan(value):
            return math.inf
        excess = value if self.kind == "ineq" else abs(value)
        return max(0.0, excess - self.tol)

    def satisfied(self, value: float) -> bool:
        return self.violation(value) == 0.0


class Constraint(abc.ABC):
    """``__call__(response, params)`` returns ``g`` (or ``h``), a scalar tensor, in the convention above."""

    spec: ConstraintSpec

    @abc.abstractmethod
    def __call__(self, response: Any, params: Params) -> torch.Tensor:
        """The constraint value, a 0-d tensor, differentiable in the response and params."""


class ParamConstraint(Constraint, abc.ABC):
    """A constraint on the params alone (``spec.on == "params"``); called with ``response=None``."""


@final
class LinearParamConstraint(ParamConstraint):
    """``sum(a * x) - b <= 0`` for the params block ``x`` (``a`` broadcasts to the block's shape)."""

    def __init__(self, block: str, a, b: float, name: str | None = None, tol: float = 0.0):
        self.block, self.a, self.b = block, torch.as_tensor(a, dtype=DTYPE), float(b)
        self.spec = ConstraintSpec(name or f"linear({block})", "ineq", tol, "params")

    def __call__(self, response, params):
        x = pick(params, self.block, f"constraint '{self.spec.name}' (params)")
        try:
            shape = torch.broadcast_shapes(self.a.shape, x.shape)
        except RuntimeError:
            shape = None
        if shape != x.shape:
            raise ValueError(f"constraint '{self.spec.name}': a of shape {tuple(self.a.shape)} does not broadcast to "
                             f"block {self.block!r} of shape {tuple(x.shape)}")
        return (self.a * x).sum() - self.b


@final
class TotalDoseConstraint(ParamConstraint):
    """``sum(weights * x) - max_dose <= 0`` for the params block ``x``."""

    def __init__(self, block: str, max_dose: float, weights=None, name: str | None = None, tol: float = 0.0):
        self.block, self.max_dose = block, float(max_dose)
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=DTYPE)
        self.spec = ConstraintSpec(name or f"total_dose({block})<={max_dose:g}", "ineq", tol, "params")

    def __call__(self, response, params):
        x = pick(params, self.block, f"constraint '{self.spec.name}' (params)")
        return (x if self.weights is None else x * self.weights).sum() - self.max_dose


def _label(source: Quantity) -> str:
    if isinstance(source, str):
        return source
    return getattr(source, "name", None) or getattr(source, "__name__", None) or type(source).__name__


@final
class UpperBound(Constraint):
    """``f - limit <= 0``; ``f`` is a response key or a callable ``(response, params) -> scalar`` (an Objective works).

    Pass ``on="params"`` when the callable reads only the params.
    """

    def __init__(self, fn_or_key: Quantity, limit: float, name: str | None = None, tol: float = 0.0,
                 on: str = "response"):
        self.source, self.limit = fn_or_key, float(limit)
        self.spec = ConstraintSpec(name or f"{_label(fn_or_key)}<={limit:g}", "ineq", tol, on)

    def __call__(self, response, params):
        return quantity(self.source, response, params, f"constraint '{self.spec.name}'") - self.limit


@final
class LowerBound(Constraint):
    """``limit - f <= 0``; ``f`` as in ``UpperBound``."""

    def __init__(self, fn_or_key: Quantity, limit: float, name: str | None = None, tol: float = 0.0,
                 on: str = "response"):
        self.source, self.limit = fn_or_key, float(limit)
        self.spec = ConstraintSpec(name or f"{_label(fn_or_key)}>={limit:g}", "ineq", tol, on)

    def __call__(self, response, params):
        return self.limit - quantity(self.source, response, params, f"constraint '{self.spec.name}'")


@final
class Equality(Constraint):
    """``h = f - target``, feasible when ``|h| <= tol``; ``f`` as in ``UpperBound``."""

    def __init__(self, fn_or_key: Quantity, target: float, tol: float, name: str | None = None,
                 on: str = "response"):
        self.source, self.target = fn_or_key, float(target)
        self.spec = ConstraintSpec(name or f"{_label(fn_or_key)}=={target:g}", "eq", tol, on)

    def __call__(self, response, params):
        return quantity(self.source, response, params, f"constraint '{self.spec.name}'") - self.target


# --------------------------------------------------------------------------- epigraph of a worst case


@final
class BlockValue(Objective):
    """The value of a scalar params block (the auxiliary ``t`` of an epigraph formulation)."""

    name = "block_value"

    def __init__(self, block: str):
        self.block = block

    def __call__(self, response, params):
        t = pick(params, self.block, f"{self.name} (params)")
        if t.numel() != 1:
            raise ValueError(f"{self.name}: block {self.block!r} has shape {tuple(t.shape)}; expected a scalar")
        return t.reshape(())


@final
class EpigraphCase(Constraint):
    """``f_i - t <= 0`` for case ``index`` of a ``WorstCase`` and the scalar params block ``t``."""

    def __init__(self, worst_case, t_block: str, index: int, tol: float = 0.0):
        self.worst_case, self.t = worst_case, BlockValue(t_block)
        self.index = index
        self.spec = ConstraintSpec(f"{worst_case.name}[{index}]<={t_block}", "ineq", tol, "response")

    def __call__(self, response, params):
        f = self.worst_case.values(response, params)
        if not 0 <= self.index < f.shape[0]:
            raise IndexError(f"constraint '{self.spec.name}': the worst case has {f.shape[0]} values")
        return f[self.index] - self.t(response, params)


def epigraph(worst_case, t_block: str, n_cases: int, tol: float = 0.0) -> tuple[Objective, list[Constraint]]:
    """Objective ``t`` and constraints ``f_i - t <= 0`` (``i < n_cases``) replacing ``min max_i f_i``.

    ``worst_case`` is an ``invdesign.objectives.WorstCase``; the problem's space needs a scalar block
    ``t_block`` whose bounds cover the range of the ``f_i``.
    """
    return BlockValue(t_block), [EpigraphCase(worst_case, t_block, i, tol) for i in range(n_cases)]
