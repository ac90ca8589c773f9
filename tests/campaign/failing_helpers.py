"""Test-only problems whose every evaluation fails the same way (a setting mistake), for the fail-fast tests.

Referenced from specs as ``"tests.campaign.failing_helpers:<factory>"`` so worker processes import them too.
"""

from __future__ import annotations

import torch

from invdesign.constraints import UpperBound
from invdesign.testing.toy_problems import Quadratic


class VectorObjective(Quadratic):
    """The simulation returns a vector where the objective expects a scalar: every evaluation fails."""

    def simulate(self, params):
        return params["x"] ** 2


class NaNConstraint(Quadratic):
    """A constraint that returns NaN: every evaluation fails."""

    constraints = [UpperBound(lambda r, p: torch.tensor(float("nan"), dtype=torch.float64), 0.0,
                              name="always_nan", on="params")]


def vector_objective(dim: int = 3) -> Quadratic:
    """Quadratic whose simulation returns a vector (every evaluation fails)."""
    return VectorObjective(dim=dim)


def nan_constraint(dim: int = 3) -> Quadratic:
    """Quadratic with a NaN constraint (every evaluation fails)."""
    return NaNConstraint(dim=dim)
