"""Objectives: the scalar a problem minimizes, computed from the simulated response and the params.

Minimizing is the one convention. To maximize a quantity wrap it in ``Maximize`` (the value is negated
and the metrics say so); ``LogRatio`` maximizes by default.

A response is whatever ``Problem.simulate`` returns: a tensor, or a dict of tensors; ready-made
objectives take ``key`` to pick an entry from a dict (``key=None`` uses the response itself).
Writing your own: subclass ``Objective`` and implement ``__call__(response, params) -> scalar tensor``
(differentiable, so gradient methods work); ``metrics`` may report extra floats for the run record.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from typing import Any, final

import torch

Params = Mapping[str, torch.Tensor]
DTYPE = torch.float64


def pick(response: Any, key: str | None, what: str = "objective") -> torch.Tensor:
    """The tensor ``response[key]`` (``response`` itself when ``key`` is None), with errors naming ``what``."""
    if key is None:
        if isinstance(response, Mapping):
            raise KeyError(f"{what}: the response is a dict with keys {sorted(response)}; pass key=")
        return torch.as_tensor(response)
    if not isinstance(response, Mapping):
        raise TypeError(f"{what}: key {key!r} given but the response is a {type(response).__name__}, not a dict")
    if key not in response:
        raise KeyError(f"{what}: the response has no key {key!r}; keys: {sorted(response)}")
    return torch.as_tensor(response[key])


def window_mask(x_grid, windows) -> torch.Tensor:
    """Boolean mask ``(n,)`` of grid points inside any closed window ``(lo, hi)``; ``windows`` is one pair or a list."""
    x = torch.as_tensor(x_grid, dtype=DTYPE)
    if len(windows) == 2 and all(isinstance(w, (int, float)) for w in windows):
        windows = [windows]
    mask = torch.zeros(x.shape, dtype=torch.bool)
    for lo, hi in windows:
        mask |= (x >= lo) & (x <= hi)
    return mask


def _selection(n_hint, mask, x_grid, windows, what: str) -> torch.Tensor | None:
    if mask is not None and (x_grid is not None or windows is not None):
        raise ValueError(f"{what}: give either mask or (x_grid, windows), not both")
    if (x_grid is None) != (windows is None):
        raise ValueError(f"{what}: x_grid and windows go together")
    if x_grid is not None:
        mask = window_mask(x_grid, windows)
    if mask is None:
        return None
    mask = torch.as_tensor(mask, dtype=torch.bool)
    if n_hint is not None and mask.shape != (n_hint,):
        raise ValueError(f"{what}: mask has shape {tuple(mask.shape)}; expected ({n_hint},)")
    if not mask.any():
        raise ValueError(f"{what}: the mask / windows select no points")
    return mask


class Objective(abc.ABC):
    """A scalar to minimize from ``(response, params)``."""

    name: str = "objective"

    @abc.abstractmethod
    def __call__(self, response: Any, params: Params) -> torch.Tensor:
        """The objective value, a scalar (0-d) tensor, differentiable in the response and params."""

    def metrics(self, response: Any, params: Params) -> dict[str, float]:
        """Extra numbers worth recording (called without gradient tracking)."""
        return {}


@final
class ResponseValue(Objective):
    """The response itself (or ``response[key]``), which must be a scalar: for simulations that compute the value."""

    name = "response_value"

    def __init__(self, key: str | None = None):
        self.key = key

    def __call__(self, response, params):
        value = pick(response, self.key, f"{self.name}")
        if value.numel() != 1:
            raise ValueError(f"{self.name}: response {self.key!r} has shape {tuple(value.shape)}; expected a scalar")
        return value.reshape(())


@final
class TargetCurve(Objective):
    """Mean squared (or relative squared) deviation of a curve from a target on selected points.

    curve = ``pick(response, key)``, shape ``(..., n)``; target shape ``(n,)``. Points are selected by a
    boolean ``mask`` ``(n,)`` or by ``windows`` (a pair ``(lo, hi)`` or a list of them) on ``x_grid``
    ``(n,)`` (energies, biases); default all. ``mode="relative"`` divides each deviation by
    ``max(|target|, floor)``, ``floor`` defaulting to 1e-3 of the largest selected ``|target|`` so zeros
    of the target do not dominate. ``batch_size`` averages a random subset of the selected points on
    each call (an unbiased minibatch estimate), drawn from a generator seeded with ``seed``; a repeated
    call on the same response object (wrappers reporting term values in their metrics) reuses the
    draw, so metrics never shift the stream. The ``metrics`` report the full-window error.
    """

    name = "target_curve"

    def __init__(self, target, key: str | None = None, *, mask=None, x_grid=None, windows=None,
                 mode: str = "mse", floor: float | None = None, batch_size: int | None = None, seed: int = 0):
        self.target = torch.as_tensor(target, dtype=DTYPE)
        if self.target.ndim != 1:
            raise ValueError(f"{self.name}: target must be 1-D; got shape {tuple(self.target.shape)}")
        if mode not in ("mse", "relative"):
            raise ValueError(f"{self.name}: mode must be 'mse' or 'relative'; got {mode!r}")
        self.key, self.mode = key, mode
        sel = _selection(self.target.shape[0], mask, x_grid, windows, self.name)
        self.index = torch.arange(self.target.shape[0]) if sel is None else torch.nonzero(sel).reshape(-1)
        peak = float(self.target[self.index].abs().max())
        self.floor = float(floor) if floor is not None else (1e-3 * peak if peak > 0 else 1.0)
        if batch_size is not None and not 1 <= batch_size <= self.index.numel():
            raise ValueError(f"{self.name}: batch_size must be in [1, {self.index.numel()}]; got {batch_size}")
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self._last_draw: tuple[Any, torch.Tensor] | None = None  # (response it was drawn for, indices)

    def _error(self, response, index: torch.Tensor) -> torch.Tensor:
        curve = pick(response, self.key, self.name)
        if curve.shape[-1:] != self.target.shape:
            raise ValueError(f"{self.name}: curve {self.key!r} has shape {tuple(curve.shape)}; the target has "
                             f"{tuple(self.target.shape)}")
        target = self.target[index]
        dev = curve[..., index] - target
        if self.mode == "relative":
            dev = dev / target.abs().clamp_min(self.floor)
        return (dev**2).mean()

    def __call__(self, response, params):
        index = self.index
        if self.batch_size is not None:
            if self._last_draw is None or self._last_draw[0] is not response:
                chosen = torch.randperm(index.numel(), generator=self.generator)[: self.batch_size].sort().values
                self._last_draw = (response, index[chosen])  # holding the response keeps its id from being reused
            index = self._last_draw[1]
        return self._error(response, index)

    def metrics(self, response, params):
        return {f"{self.name}_full": float(self._error(response, self.index))}


@final
class WindowAverage(Objective):
    """Mean of a curve ``(..., n)`` over selected points (``mask`` or ``windows`` on ``x_grid``, default all)."""

    name = "window_average"

    def __init__(self, key: str | None = None, *, mask=None, x_grid=None, windows=None):
        self.key = key
        self.mask = _selection(None, mask, x_grid, windows, self.name)

    def __call__(self, response, params):
        curve = pick(response, self.key, self.name)
        if self.mask is None:
            return curve.mean()
        if curve.shape[-1:] != self.mask.shape:
            raise ValueError(f"{self.name}: curve {self.key!r} has shape {tuple(curve.shape)}; the mask has "
                             f"{tuple(self.mask.shape)}")
        return curve[..., self.mask].mean()


Quantity = str | Callable[[Any, Params], torch.Tensor]


def quantity(source: Quantity, response: Any, params: Params, what: str) -> torch.Tensor:
    """A scalar from a response key or from a callable ``(response, params) -> tensor`` (objectives qualify)."""
    value = source(response, params) if callable(source) else pick(response, source, what)
    value = torch.as_tensor(value)
    if value.numel() != 1:
        raise ValueError(f"{what}: {source!r} gave shape {tuple(value.shape)}; expected a scalar")
    return value.reshape(())


@final
class LogRatio(Objective):
    """``log10(|numerator| / |denominator|)``, e.g. ``log10(Ion / Ioff)``; negated when ``maximize`` (default).

    ``numerator`` and ``denominator`` are response keys or callables ``(response, params) -> scalar``.
    """

    name = "log_ratio"

    def __init__(self, numerator: Quantity, denominator: Quantity, maximize: bool = True):
        self.numerator, self.denominator, self.maximize = numerator, denominator, maximize

    def ratio(self, response, params) -> torch.Tensor:
        num = quantity(self.numerator, response, params, self.name)
        den = quantity(self.denominator, response, params, self.name)
        return torch.log10(num.abs()) - torch.log10(den.abs())

    def __call__(self, response, params):
        r = self.ratio(response, params)
        return -r if self.maximize else r

    def metrics(self, response, params):
        return {"log10_ratio": float(self.ratio(response, params)), "maximize": float(self.maximize)}


@final
class Maximize(Objective):
    """Maximize ``objective``: the value is ``-objective``; metrics add ``maximize = 1`` and the un-negated value."""

    def __init__(self, objective: Objective):
        self.objective = objective
        self.name = f"maximize_{objective.name}"

    def __call__(self, response, params):
        return -self.objective(response, params)

    def metrics(self, response, params):
        return {**self.objective.metrics(response, params), "maximize": 1.0,
                "maximized_value": float(self.objective(response, params))}


@final
class WeightedSum(Objective):
    """``sum_i w_i * objective_i`` from ``[(w, objective), ...]``; metrics report each term as ``term{i}.{name}``."""

    name = "weighted_sum"

    def __init__(self, terms: Sequence[tuple[float, Objective]]):
        if not terms:
            raise ValueError(f"{self.name}: needs at least one (weight, objective) term")
        self.terms = [(float(w), obj) for w, obj in terms]

    def __call__(self, response, params):
        return sum(w * obj(response, params) for w, obj in self.terms)

    def metrics(self, response, params):
        out: dict[str, float] = {}
        for i, (_, obj) in enumerate(self.terms):
            out[f"term{i}.{obj.name}"] = float(obj(response, params))
            out.update({f"term{i}.{k}": v for k, v in obj.metrics(response, params).items()})
        return out


@final
class WorstCase(Objective):
    """The largest of several values: ``max_i f_i`` over bias points, corners or samples.

    The values ``f_i`` are the objectives in ``terms``, or the entries of the curve
    ``pick(response, key)`` (e.g. a per-bias loss). ``smooth=s`` replaces the max by
    ``s * logsumexp(f / s)``, a differentiable upper bound within ``s * log(m)``.

    Epigraph formulation: ``min_x max_i f_i(x)`` equals ``min_{x,t} t`` subject to ``f_i(x) - t <= 0``,
    which is smooth. A constrained optimizer uses it by adding a scalar block ``t`` to the space and
    taking the objective and constraints from ``invdesign.constraints.epigraph(worst_case, "t", m)``;
    ``values`` is the hook that returns all ``f_i``.
    """

    name = "worst_case"

    def __init__(self, terms: Sequence[Objective] | None = None, *, key: str | None = None,
                 smooth: float | None = None):
        if (terms is None) == (key is None):
            raise ValueError(f"{self.name}: give either terms or key")
        if smooth is not None and not smooth > 0:
            raise ValueError(f"{self.name}: smooth must be > 0; got {smooth}")
        self.terms, self.key, self.smooth = (list(terms) if terms is not None else None), key, smooth

    def values(self, response: Any, params: Params) -> torch.Tensor:
        """All values ``f_i``, shape ``(m,)``."""
        if self.terms is not None:
            return torch.stack([torch.as_tensor(t(response, params)).reshape(()) for t in self.terms])
        return pick(response, self.key, self.name).reshape(-1)

    def __call__(self, response, params):
        f = self.values(response, params)
        return f.max() if self.smooth is None else self.smooth * torch.logsumexp(f / self.smooth, dim=0)

    def metrics(self, response, params):
        f = self.values(response, params)
        return {"worst_case_index": float(f.argmax()), "worst_case_max": float(f.max())}


@final
class Smoothness(Objective):
    """Roughness of a params block: ``sum (diff^order x)^2`` along its last axis (a regulariser)."""

    name = "smoothness"

    def __init__(self, block: str, order: int = 1):
        if order < 1:
            raise ValueError(f"{self.name}: order must be >= 1; got {order}")
        self.block, self.order = block, order

    def __call__(self, response, params):
        x = pick(params, self.block, f"{self.name} (params)")
        if x.ndim == 0 or x.shape[-1] <= self.order:
            raise ValueError(f"{self.name}: block {self.block!r} of shape {tuple(x.shape)} is too short for "
                             f"differences of order {self.order}")
        return (torch.diff(x, n=self.order, dim=-1) ** 2).sum()


@final
class TotalDose(Objective):
    """``sum(weights * x)`` of a params block (e.g. total dopant count with cell volumes as weights)."""

    name = "total_dose"

    def __init__(self, block: str, weights=None):
        self.block = block
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=DTYPE)

    def __call__(self, response, params):
        x = pick(params, self.block, f"{self.name} (params)")
        return (x if self.weights is None else x * self.weights).sum()
