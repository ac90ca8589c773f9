"""Parameter spaces: named blocks of physical parameters and the optimizer coordinates behind them.

Three coordinate systems, all float64:

- physical values, what ``Problem.simulate`` receives: ``dict[str, Tensor]``, one tensor of each
  block's ``shape`` (with a leading batch dimension when a batch of points is mapped);
- optimizer coordinates ``z``, shape ``(dim,)`` or ``(n, dim)``: the free (non-frozen) entries of
  every block after the block's transform, in block order; this is what gradient methods move;
- the unit cube ``u`` in ``[0, 1]^dim``: what gradient-free and Bayesian methods search.

A block maps ``z -> coefficients = transform.forward(z) -> profile = basis(coefficients)`` (no basis:
the coefficients are the values). Bounds, transform, ``init`` and ``frozen`` refer to the
coefficients. The bases here are partitions of unity with non-negative weights (every profile point is
a convex combination of coefficients), so coefficient bounds ``[lower, upper]`` keep the profile
inside ``[lower, upper]`` too.

Optimizer bounds per coordinate are ``transform.z_bounds(lower, upper)`` and may be infinite (the
sigmoid box transform is unbounded in ``z``). The unit-cube map per coordinate, with ``[lo, hi]`` its
optimizer bounds:

- both finite: ``u = (z - lo) / (hi - lo)``;
- both infinite: ``u = sigmoid(z)``; for the sigmoid transform this is exactly the relative position
  in the physical box, so a uniform search of the cube is a uniform search of the box;
- only ``lo`` finite: ``u = tanh((z - lo) / 2)``; only ``hi`` finite: ``u = 1 + tanh((z - hi) / 2)``.

``from_unit`` clips ``u`` to ``[0, 1]`` (to ``[UNIT_EPS, 1 - UNIT_EPS]`` on a side where ``z`` is
infinite), so every cube point maps to a finite point inside the optimizer bounds.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import final

import numpy as np
import torch

from invdesign.transforms import (  # noqa: F401  (re-exported)
    DTYPE,
    TRANSFORMS,
    Basis,
    BSplineBasis,
    GaussianBumps,
    Identity,
    Log10,
    ParameterError,
    Sigmoid,
    Transform,
    UNIT_EPS,
    _first,
    _where,
)

BOUND_RTOL = 1e-9  # from_params accepts values this far (relative) outside the bounds, then clips


# --------------------------------------------------------------------------- blocks


@final
class Block:
    """A named array of parameters.

    Args:
        name: key of the block in the params dict.
        shape: physical shape; with a basis, ``shape[-1]`` is the basis' ``n_points``.
        lower, upper: bounds of the coefficients (scalars or arrays broadcastable to the coefficient
            shape); ``None`` is unbounded (``lower=None`` with log10 means 0).
        transform: ``"identity"``, ``"log10"``, ``"sigmoid"`` or a ``Transform`` instance.
        init: initial physical coefficient values; default: the midpoint of the optimizer bounds (the
            geometric mean for log10, the box centre for sigmoid), ``bound +- 1`` in ``z`` when one
            side is open, 0 when both are.
        frozen: boolean mask of the coefficient shape; frozen entries stay at ``init`` and are not
            optimizer coordinates.
        basis: a ``Basis`` along the last axis; coefficient shape is ``shape[:-1] + (n_coeffs,)``.
    """

    def __init__(self, name: str, shape: Sequence[int] | int = (), lower=None, upper=None,
                 transform: str | Transform = "identity", init=None, frozen=None, basis: Basis | None = None):
        if not isinstance(name, str) or not name:
            raise ParameterError(f"block names must be non-empty strings; got {name!r}")
        self.name = name
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        if not all(isinstance(s, (int, np.integer)) and s >= 1 for s in shape):
            raise ParameterError(f"block '{name}': shape must be positive integers; got {shape}")
        self.shape = tuple(int(s) for s in shape)
        self.basis = basis
        if basis is not None and (not self.shape or self.shape[-1] != basis.n_points):
            raise ParameterError(f"block '{name}': shape {self.shape} must end with the basis' n_points = "
                                 f"{basis.n_points}")
        self.coeff_shape = self.shape[:-1] + (basis.n_coeffs,) if basis is not None else self.shape
        if isinstance(transform, str):
            if transform not in TRANSFORMS:
                raise ParameterError(f"block '{name}': unknown transform {transform!r}; choose from "
                                     f"{sorted(TRANSFORMS)} or pass a Transform instance")
            transform = TRANSFORMS[transform]
        self.transform = transform

        self.lower = self._array(lower, transform.natural_lower, "lower")
        self.upper = self._array(upper, math.inf, "upper")
        if torch.isnan(self.lower).any() or torch.isnan(self.upper).any():
            raise ParameterError(f"block '{name}': bounds contain NaN")
        bad = self.lower >= self.upper
        if bad.any():
            raise ParameterError(f"block '{name}': lower must be < upper; got lower={_first(self.lower, bad)}, "
                                 f"upper={_first(self.upper, bad)} at entry {_where(bad)}")
        transform.check(name, self.lower, self.upper)
        self.z_lower, self.z_upper = (b.to(DTYPE) for b in transform.z_bounds(self.lower, self.upper))

        if init is None:
            self.z_init = _default_z(self.z_lower, self.z_upper)
            self.init = transform.forward(self.z_init, self.lower, self.upper)
        else:
            self.init = self._array(init, None, "init")
            bad = ~torch.isfinite(self.init) | (self.init < self.lower) | (self.init > self.upper)
            if bad.any():
                raise ParameterError(f"block '{name}': init {_first(self.init, bad)} at entry {_where(bad)} is "
                                     f"outside the bounds [{_first(self.lower, bad)}, {_first(self.upper, bad)}]")
            self.z_init = transform.inverse(self.init, self.lower, self.upper)
        if not torch.isfinite(self.z_init).all():
            raise ParameterError(f"block '{name}': init {_first(self.init, ~torch.isfinite(self.z_init))} has no "
                                 f"finite optimizer coordinate under transform '{transform.name}'")
        self.frozen = torch.zeros(self.coeff_shape, dtype=torch.bool) if frozen is None else self._mask(frozen)
        self.free_index = torch.nonzero(~self.frozen.reshape(-1)).reshape(-1)

    def _array(self, value, fill: float | None, what: str) -> torch.Tensor:
        if value is None:
            return torch.full(self.coeff_shape, fill, dtype=DTYPE)
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        try:
            return torch.as_tensor(np.asarray(value, dtype=np.float64)).broadcast_to(self.coeff_shape).clone()
        except (ValueError, RuntimeError, TypeError) as err:
            raise ParameterError(f"block '{self.name}': {what} cannot be read as an array broadcastable to the "
                                 f"coefficient shape {self.coeff_shape}: {err}") from None

    def _mask(self, frozen) -> torch.Tensor:
        arr = np.asarray(frozen)
        if arr.dtype != bool:
            raise ParameterError(f"block '{self.name}': frozen must be a boolean mask; got dtype {arr.dtype}")
        try:
            return torch.as_tensor(np.broadcast_to(arr, self.coeff_shape).copy())
        except ValueError:
            raise ParameterError(f"block '{self.name}': frozen has shape {arr.shape}, not broadcastable to the "
                                 f"coefficient shape {self.coeff_shape}") from None

    @property
    def n_free(self) -> int:
        return int(self.free_index.numel())

    def labels(self) -> list[str]:
        """One label per free coordinate: ``name``, ``name[i]``, ``name[i,j]``; ``name.c[i]`` for basis coefficients."""
        stem = f"{self.name}.c" if self.basis is not None else self.name
        indices = list(itertools.product(*(range(s) for s in self.coeff_shape)))
        out = [stem if not idx else f"{stem}[{','.join(map(str, idx))}]" for idx in indices]
        return [out[i] for i in self.free_index.tolist()]

    def to_physical(self, z: torch.Tensor) -> torch.Tensor:
        """Physical values ``(n, *shape)`` from this block's free coordinates ``(n, n_free)``."""
        n = z.shape[0]
        full = self.z_init.reshape(1, -1).repeat(n, 1)
        full[:, self.free_index] = z
        lower, upper = self.lower.reshape(1, -1), self.upper.reshape(1, -1)
        # frozen entries are exactly init (10**log10(x) need not round-trip to the last bit)
        coeffs = torch.where(self.frozen.reshape(1, -1), self.init.reshape(1, -1),
                             self.transform.forward(full, lower, upper))
        coeffs = coeffs.reshape(n, *self.coeff_shape)
        return self.basis(coeffs) if self.basis is not None else coeffs

    def from_physical(self, x: torch.Tensor) -> torch.Tensor:
        """Free coordinates ``(n, n_free)`` from physical values ``(n, *shape)``; profiles are projected."""
        coeffs = self.basis.project(x) if self.basis is not None else x
        coeffs = coeffs.reshape(x.shape[0], -1)
        lower, upper = self.lower.reshape(1, -1), self.upper.reshape(1, -1)
        slack = BOUND_RTOL * torch.maximum(coeffs.abs(), torch.ones_like(coeffs))
        bad = (coeffs < lower - slack) | (coeffs > upper + slack) | torch.isnan(coeffs)
        if bad.any():
            row, col = (int(i) for i in torch.nonzero(bad)[0])
            raise ParameterError(f"block '{self.name}': value {coeffs[row, col].item():.6g} (coefficient {col}) "
                                 f"is outside the bounds [{lower[0, col].item():.6g}, {upper[0, col].item():.6g}]")
        z = self.transform.inverse(torch.minimum(torch.maximum(coeffs, lower), upper), lower, upper)[:, self.free_index]
        if not torch.isfinite(z).all():
            raise ParameterError(f"block '{self.name}': a value has no finite optimizer coordinate under transform "
                                 f"'{self.transform.name}' (e.g. 0 under log10)")
        return z

    def __repr__(self) -> str:
        basis = f", basis={type(self.basis).__name__}" if self.basis is not None else ""
        return f"Block({self.name!r}, shape={self.shape}, transform={self.transform.name!r}{basis})"


# --------------------------------------------------------------------------- the space


@final
class ParameterSpace:
    """The blocks of a problem and the maps between physical values, optimizer coordinates and the unit cube."""

    def __init__(self, blocks: Sequence[Block]):
        self.blocks = tuple(blocks)
        if not self.blocks or not all(isinstance(b, Block) for b in self.blocks):
            raise ParameterError(f"ParameterSpace needs a non-empty sequence of Block; got {blocks!r}")
        names = [b.name for b in self.blocks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ParameterError(f"ParameterSpace: duplicate block names {duplicates}")
        self._slices: dict[str, slice] = {}
        start = 0
        for b in self.blocks:
            self._slices[b.name] = slice(start, start + b.n_free)
            start += b.n_free
        self.dim = start
        self._lower = torch.cat([b.z_lower.reshape(-1)[b.free_index] for b in self.blocks])
        self._upper = torch.cat([b.z_upper.reshape(-1)[b.free_index] for b in self.blocks])
        self._z_init = torch.cat([b.z_init.reshape(-1)[b.free_index] for b in self.blocks])

    @property
    def bounds(self) -> torch.Tensor:
        """Optimizer-coordinate bounds, shape ``(2, dim)`` float64 (``[0]`` lower, ``[1]`` upper; may be infinite)."""
        return torch.stack([self._lower, self._upper])

    def block(self, name: str) -> Block:
        for b in self.blocks:
            if b.name == name:
                return b
        raise KeyError(f"ParameterSpace has no block {name!r}; blocks: {[b.name for b in self.blocks]}")

    def block_slice(self, name: str) -> slice:
        """Where block ``name``'s free coordinates sit in ``z``."""
        self.block(name)
        return self._slices[name]

    def names(self) -> list[str]:
        """One label per optimizer coordinate, length ``dim``."""
        return [label for b in self.blocks for label in b.labels()]

    def _points(self, z, what: str) -> tuple[torch.Tensor, bool]:
        z = torch.as_tensor(z)
        z = z if z.dtype == DTYPE else z.to(DTYPE)
        if z.ndim not in (1, 2) or z.shape[-1] != self.dim:
            raise ParameterError(f"{what} must have shape ({self.dim},) or (n, {self.dim}); got {tuple(z.shape)}")
        return (z, False) if z.ndim == 2 else (z.unsqueeze(0), True)

    def to_params(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Physical values from optimizer coordinates ``(dim,)`` -> ``shape``, or ``(n, dim)`` -> ``(n, *shape)``.

        Differentiable with respect to ``z``.
        """
        zb, single = self._points(z, "z")
        out = {b.name: b.to_physical(zb[:, self._slices[b.name]]) for b in self.blocks}
        return {k: v[0] for k, v in out.items()} if single else out

    def from_params(self, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Optimizer coordinates ``(dim,)`` (or ``(n, dim)`` for batched values) from physical values.

        Every block must be present (frozen entries are ignored); values must lie inside the bounds.
        """
        unknown = sorted(set(params) - {b.name for b in self.blocks})
        if unknown:
            raise ParameterError(f"from_params: unknown blocks {unknown}; blocks: {[b.name for b in self.blocks]}")
        parts, single = [], None
        for b in self.blocks:
            if b.name not in params:
                raise ParameterError(f"from_params: block '{b.name}' is missing")
            x = torch.as_tensor(params[b.name], dtype=DTYPE)
            if tuple(x.shape) == b.shape:
                x, this_single = x.unsqueeze(0), True
            elif tuple(x.shape[1:]) == b.shape and x.ndim == len(b.shape) + 1:
                this_single = False
            else:
                raise ParameterError(f"block '{b.name}': value has shape {tuple(x.shape)}; expected {b.shape} "
                                     f"or (n, *{b.shape})")
            if single is not None and this_single != single:
                raise ParameterError(f"from_params: block '{b.name}' is {'un' if this_single else ''}batched "
                                     f"unlike the blocks before it")
            single = this_single
            parts.append(b.from_physical(x))
        z = torch.cat(parts, dim=1)
        return z[0] if single else z

    def to_unit(self, z: torch.Tensor) -> torch.Tensor:
        """Unit-cube coordinates of optimizer coordinates, same shape (see the module docstring)."""
        z, single = self._points(z, "z")
        lo, hi = self._lower, self._upper
        fin_lo, fin_hi = torch.isfinite(lo), torch.isfinite(hi)
        lo0, hi0 = torch.where(fin_lo, lo, 0.0), torch.where(fin_hi, hi, 0.0)  # finite stand-ins keep grads NaN-free
        span = torch.where(fin_lo & fin_hi, hi0 - lo0, 1.0)
        u = torch.where(fin_lo & fin_hi, (z - lo0) / span,
                        torch.where(fin_lo, torch.tanh((z - lo0) / 2),
                                    torch.where(fin_hi, 1 + torch.tanh((z - hi0) / 2), torch.sigmoid(z))))
        return u[0] if single else u

    def from_unit(self, u: torch.Tensor) -> torch.Tensor:
        """Optimizer coordinates of unit-cube points, same shape; ``u`` is clipped (see the module docstring)."""
        u, single = self._points(u, "u")
        lo, hi = self._lower, self._upper
        fin_lo, fin_hi = torch.isfinite(lo), torch.isfinite(hi)
        u = torch.minimum(torch.maximum(u, torch.where(fin_lo, 0.0, UNIT_EPS).to(DTYPE)),
                          torch.where(fin_hi, 1.0, 1.0 - UNIT_EPS).to(DTYPE))
        lo0, hi0 = torch.where(fin_lo, lo, 0.0), torch.where(fin_hi, hi, 0.0)
        box = torch.minimum(torch.maximum(lo0 + u * (hi0 - lo0), lo0), hi0)
        # every branch gets an input inside its domain so torch.where's backward sees no inf * 0
        z = torch.where(fin_lo & fin_hi, box,
                        torch.where(fin_lo, lo0 + 2 * torch.atanh(u.clamp(max=1 - UNIT_EPS)),
                                    torch.where(fin_hi, hi0 + 2 * torch.atanh(u.clamp(min=UNIT_EPS) - 1),
                                                torch.logit(u.clamp(UNIT_EPS, 1 - UNIT_EPS)))))
        return z[0] if single else z

    def initial_point(self) -> torch.Tensor:
        """Optimizer coordinates of every block's ``init``, shape ``(dim,)``."""
        return self._z_init.clone()

    def random_points(self, n: int, generator: torch.Generator | int) -> torch.Tensor:
        """``n`` points uniform in the unit cube mapped to optimizer coordinates, shape ``(n, dim)``.

        ``generator`` (or an int seed) is the only source of randomness.
        """
        if isinstance(generator, int):
            generator = torch.Generator().manual_seed(generator)
        return self.from_unit(torch.rand((n, self.dim), generator=generator, dtype=DTYPE))

    def __repr__(self) -> str:
        return f"ParameterSpace(dim={self.dim}, blocks={list(self.blocks)})"


def _default_z(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    fin_lo, fin_hi = torch.isfinite(lo), torch.isfinite(hi)
    lo0, hi0 = torch.where(fin_lo, lo, 0.0), torch.where(fin_hi, hi, 0.0)
    return torch.where(fin_lo & fin_hi, (lo0 + hi0) / 2,
                       torch.where(fin_lo, lo0 + 1.0, torch.where(fin_hi, hi0 - 1.0, torch.zeros_like(lo))))
