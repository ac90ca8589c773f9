"""Elementwise transforms (optimizer coordinates -> physical values) and smooth profile bases.

Used by ``invdesign.params`` (see its docstring for the coordinate systems); both are re-exported there.
"""

from __future__ import annotations

import abc
import math

from typing import final

import numpy as np
import torch
from scipy.interpolate import BSpline

DTYPE = torch.float64
UNIT_EPS = 1e-12  # keeps logit/atanh finite at the open ends of the unit interval


class ParameterError(ValueError):
    """A block or a parameter value is malformed; the message names the block."""


# --------------------------------------------------------------------------- transforms


class Transform(abc.ABC):
    """Elementwise map from optimizer coordinates ``z`` to physical values ``x = forward(z)``.

    ``lower`` and ``upper`` are float64 tensors of the coefficient shape (``-inf``/``+inf`` where
    unbounded).
    """

    name: str = "transform"
    natural_lower: float = -math.inf  # what lower=None means

    def check(self, block: str, lower: torch.Tensor, upper: torch.Tensor) -> None:
        """Raise ``ParameterError`` naming ``block`` when the bounds do not suit this transform."""

    @abc.abstractmethod
    def forward(self, z: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
        """Physical values from optimizer coordinates (differentiable)."""

    @abc.abstractmethod
    def inverse(self, x: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
        """Optimizer coordinates from physical values inside the bounds."""

    @abc.abstractmethod
    def z_bounds(self, lower: torch.Tensor, upper: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bounds in optimizer coordinates (may be infinite)."""


@final
class Identity(Transform):
    name = "identity"

    def forward(self, z, lower, upper):
        return z

    def inverse(self, x, lower, upper):
        return x

    def z_bounds(self, lower, upper):
        return lower, upper


@final
class Log10(Transform):
    """``x = 10**z``, for quantities spanning decades (doping concentrations); ``lower=None`` means 0."""

    name = "log10"
    natural_lower = 0.0

    def check(self, block, lower, upper):
        bad = (lower < 0) | (upper <= 0)
        if bad.any():
            raise ParameterError(
                f"block '{block}': transform 'log10' needs positive bounds; got lower="
                f"{_first(lower, bad)}, upper={_first(upper, bad)} at entry {_where(bad)}"
            )

    def forward(self, z, lower, upper):
        return torch.pow(10.0, z)

    def inverse(self, x, lower, upper):
        return torch.log10(x)

    def z_bounds(self, lower, upper):
        return torch.log10(lower), torch.log10(upper)


@final
class Sigmoid(Transform):
    """``x = lower + (upper - lower) * sigmoid(z)``: a box without bounds in ``z``."""

    name = "sigmoid"

    def check(self, block, lower, upper):
        bad = ~(torch.isfinite(lower) & torch.isfinite(upper))
        if bad.any():
            raise ParameterError(f"block '{block}': transform 'sigmoid' needs finite lower and upper bounds "
                                 f"(entry {_where(bad)} is unbounded)")

    def forward(self, z, lower, upper):
        return lower + (upper - lower) * torch.sigmoid(z)

    def inverse(self, x, lower, upper):
        # values on the box edge would map to z = +-inf; nudge them inside
        return torch.logit(((x - lower) / (upper - lower)).clamp(UNIT_EPS, 1.0 - UNIT_EPS))

    def z_bounds(self, lower, upper):
        return torch.full_like(lower, -math.inf), torch.full_like(upper, math.inf)


TRANSFORMS: dict[str, Transform] = {t.name: t for t in (Identity(), Log10(), Sigmoid())}


# --------------------------------------------------------------------------- smooth bases


class Basis(abc.ABC):
    """Linear map from ``n_coeffs`` coefficients to a profile of ``n_points`` values.

    ``matrix`` has shape ``(n_points, n_coeffs)``, non-negative entries and rows summing to 1, so each
    profile value is a convex combination of the coefficients (bounded coefficients, bounded profile).
    """

    matrix: torch.Tensor
    _pinv: torch.Tensor | None = None

    @property
    def n_points(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_coeffs(self) -> int:
        return self.matrix.shape[1]

    def __call__(self, coeffs: torch.Tensor) -> torch.Tensor:
        """Profile ``(..., n_points)`` from coefficients ``(..., n_coeffs)``."""
        return coeffs @ self.matrix.mT

    def project(self, profile: torch.Tensor) -> torch.Tensor:
        """Least-squares coefficients ``(..., n_coeffs)`` of a profile ``(..., n_points)`` (exact in the span)."""
        if self._pinv is None:
            self._pinv = torch.linalg.pinv(self.matrix)
        return profile @ self._pinv.mT


@final
class BSplineBasis(Basis):
    """Clamped uniform B-splines of ``degree`` on ``n_points`` equally spaced points (C^(degree-1) profiles)."""

    def __init__(self, n_coeffs: int, n_points: int, degree: int = 3):
        if degree < 0 or n_coeffs < degree + 1 or n_points < n_coeffs:
            raise ParameterError(f"BSplineBasis needs 0 <= degree < n_coeffs <= n_points; got degree={degree}, "
                                 f"n_coeffs={n_coeffs}, n_points={n_points}")
        interior = np.linspace(0.0, 1.0, n_coeffs - degree + 1)[1:-1]
        self.knots = np.r_[np.zeros(degree + 1), interior, np.ones(degree + 1)]  # clamped, on [0, 1]
        design = BSpline.design_matrix(np.linspace(0.0, 1.0, n_points), self.knots, degree).toarray()
        self.degree = degree
        self.matrix = torch.as_tensor(design, dtype=DTYPE)

    @property
    def greville(self) -> np.ndarray:
        """``(n_coeffs,)`` Greville abscissae on [0, 1] (profile point ``i`` sits at ``i / (n_points - 1)``).

        Coefficient ``j``'s abscissa is the mean of knots ``j+1 .. j+degree`` (the knot-interval midpoint for
        degree 0): roughly where that coefficient acts, and coefficients ``c_j = a + b g_j`` give exactly the
        linear profile ``a + b x`` (so it places initial values and masks by position).
        """
        if self.degree == 0:
            return 0.5 * (self.knots[:-1] + self.knots[1:])
        return np.convolve(self.knots, np.ones(self.degree) / self.degree, "valid")[1:-1]


@final
class GaussianBumps(Basis):
    """Normalised Gaussian bumps (a smooth partition of unity) with equally spaced centres on [0, 1].

    ``width`` is the Gaussian standard deviation in units of the profile length (points span [0, 1]).
    Very wide bumps make the basis nearly rank-deficient, so ``project`` is then only approximate.
    """

    def __init__(self, n_bumps: int, n_points: int, width: float):
        if n_bumps < 1 or n_points < n_bumps or not width > 0:
            raise ParameterError(f"GaussianBumps needs 1 <= n_bumps <= n_points and width > 0; got "
                                 f"n_bumps={n_bumps}, n_points={n_points}, width={width}")
        t = torch.linspace(0.0, 1.0, n_points, dtype=DTYPE)
        centres = torch.linspace(0.0, 1.0, n_bumps, dtype=DTYPE) if n_bumps > 1 else torch.full((1,), 0.5, dtype=DTYPE)
        # softmax of the log-Gaussians: normalised without underflow far from every centre
        self.width = float(width)
        self.matrix = torch.softmax(-0.5 * ((t[:, None] - centres[None, :]) / width) ** 2, dim=1)


def _where(mask: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(i) for i in torch.nonzero(mask)[0]) if mask.ndim else ()


def _first(values: torch.Tensor, mask: torch.Tensor) -> float:
    return float(values[mask][0]) if mask.ndim else float(values)
