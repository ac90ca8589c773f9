"""Several objectives of one problem: names, senses (min / max), an optional reference point.

A multi-objective problem sets ``objective = MultiObjective([...])``; nothing else changes::

    objective = MultiObjective([
        (ObjectiveSpec("mean_T_in_window", "max", ref=0.0), "t_in"),     # a response key ...
        (ObjectiveSpec("max_T_outside", "min", ref=1.0), max_outside),    # ... or a callable / Objective
    ])

Single-objective code is untouched: ``MultiObjective`` is an ``Objective`` whose value is one of its
objectives (``primary``, default the first) in the minimised convention, so ``Evaluation.value``, the
optimizer's ``best``, the campaign summary and every single-objective optimizer see a scalar as before.
``Problem.evaluate`` records in addition ``Evaluation.objectives``: the vector of all ``m`` objectives,
shape ``(m,)``, **minimised** convention (``-f`` for a ``"max"`` objective, like ``Maximize``), and, with
gradients, ``Evaluation.objective_grads``, shape ``(m, dim)``. ``metrics`` carries the natural values by
name. Senses and the reference point are stored with the campaign (``problem_info["objectives"]``), so
reports map the stored vectors back to natural units without the problem.

Reference point: ``ref`` of each objective, in natural units, is the worst value still of interest (the
hypervolume is measured from it). Give all or none; where none is given, hypervolumes use a point
inferred from the data (``invdesign.pareto.reference_point``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, final

import torch

from invdesign.objectives import Objective, Params, Quantity, quantity

SENSES = ("min", "max")


@dataclasses.dataclass(frozen=True)
class ObjectiveSpec:
    """One objective: ``name``, ``sense`` ("min" or "max") and the reference value ``ref`` (natural units)."""

    name: str
    sense: str = "min"
    ref: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"ObjectiveSpec: name must be a non-empty string; got {self.name!r}")
        if self.sense not in SENSES:
            raise ValueError(f"objective '{self.name}': sense must be one of {SENSES}; got {self.sense!r}")
        if self.ref is not None and not math.isfinite(self.ref):
            raise ValueError(f"objective '{self.name}': ref must be finite or None; got {self.ref!r}")

    @property
    def sign(self) -> float:
        """+1 for "min", -1 for "max": ``minimised = sign * natural``."""
        return 1.0 if self.sense == "min" else -1.0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sense": self.sense, "ref": self.ref}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ObjectiveSpec:
        return cls(str(d["name"]), str(d.get("sense", "min")), None if d.get("ref") is None else float(d["ref"]))


@final
class MultiObjective(Objective):
    """``m >= 2`` objectives of one response; its scalar value is objective ``primary``, minimised convention.

    ``terms``: ``(spec, source)`` pairs; ``spec`` an ``ObjectiveSpec`` (or a name: sense "min"), ``source``
    a response key or a callable ``(response, params) -> scalar`` (any ``Objective`` qualifies).
    """

    name = "multi_objective"

    def __init__(self, terms: Sequence[tuple[ObjectiveSpec | str, Quantity]], primary: int = 0):
        specs = [t[0] if isinstance(t[0], ObjectiveSpec) else ObjectiveSpec(str(t[0])) for t in terms]
        if len(specs) < 2:
            raise ValueError(f"{self.name}: needs at least two objectives; got {len(specs)}")
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate objective names {names}")
        refs = [s.ref is None for s in specs]
        if any(refs) and not all(refs):
            raise ValueError(f"{self.name}: give a ref for every objective or for none ({names})")
        if not 0 <= primary < len(specs):
            raise ValueError(f"{self.name}: primary must index one of the {len(specs)} objectives; got {primary}")
        self.specs, self.sources, self.primary = specs, [t[1] for t in terms], int(primary)

    @property
    def n_objectives(self) -> int:
        return len(self.specs)

    @property
    def ref_point(self) -> list[float] | None:
        """The reference point in the minimised convention, shape ``(m,)``; None when not declared."""
        if self.specs[0].ref is None:
            return None
        return [s.sign * float(s.ref) for s in self.specs]

    def natural(self, response: Any, params: Params) -> list[torch.Tensor]:
        """The ``m`` objectives in their own sense, 0-d tensors (differentiable)."""
        return [quantity(src, response, params, f"objective '{s.name}'") for s, src in zip(self.specs, self.sources)]

    def minimized(self, response: Any, params: Params) -> list[torch.Tensor]:
        """The ``m`` objectives in the minimised convention (``-f`` for "max"), 0-d tensors."""
        return [s.sign * f for s, f in zip(self.specs, self.natural(response, params))]

    def __call__(self, response, params):
        return self.minimized(response, params)[self.primary]

    def metrics(self, response, params):
        return {s.name: float(f.detach()) for s, f in zip(self.specs, self.natural(response, params))}


def objective_specs(problem: Any) -> list[ObjectiveSpec]:
    """The problem's objectives: its ``MultiObjective``'s specs, else one "min" objective (the value)."""
    objective = getattr(problem, "objective", None)
    if isinstance(objective, MultiObjective):
        return list(objective.specs)
    return [ObjectiveSpec(getattr(objective, "name", None) or "value", "min")]


def objectives_info(problem: Any) -> list[dict[str, Any]]:
    """``objective_specs`` as JSON dicts (what the campaign stores in ``problem_info["objectives"]``)."""
    return [s.to_dict() for s in objective_specs(problem)]


def ref_point_of(problem: Any) -> list[float] | None:
    """The declared reference point, minimised convention, shape ``(m,)``; None when not declared."""
    objective = getattr(problem, "objective", None)
    return objective.ref_point if isinstance(objective, MultiObjective) else None
