"""Weighted least-squares fits: residual vectors, Gauss-Newton curvature, parameter uncertainties, tables.

Framework level: everything here sees only a *residual function* ``r(x)`` of a parameter tensor
``x`` (shape ``(p,)``, float64) returning the weighted residuals ``(n,)``, so the loss is
``L(x) = sum_i r_i(x)^2``. What the residuals mean (band energies, transmissions, masses) is the
caller's business.

| function | does |
|---|---|
| ``weighted_residual_vector`` | ``sqrt(w_g) * r_g`` of named residual groups, concatenated in a fixed order |
| ``jacobian`` | ``dr/dx`` (n, p), whatever the caller's grad mode |
| ``gauss_newton_curvature`` | a ``Curvature``: loss, Jacobian, covariance and 1-sigma uncertainties at ``x`` |
| ``levenberg_marquardt`` | minimise ``sum r^2`` (optionally within a box) to a tight tolerance |
| ``residual_statistics`` | count, RMS, max abs and mean of named (unweighted) residual groups |
| ``markdown_table``, ``value_with_uncertainty``, ``parameter_table``, ``residual_table`` | report text |

Uncertainties: near a minimum the loss is ``L(x) ~ L(x*) + dx^T (J^T J) dx`` (Gauss-Newton: the
second derivatives of the residuals are dropped, which keeps the curvature finite and positive
semi-definite even where single residuals have kinks, e.g. at band crossings). With the residuals
treated as independent errors of a common unknown variance ``s^2``, estimated from the misfit itself
as ``s^2 = L(x*) / (n - p)``, the parameter covariance is ``C = s^2 (J^T J)^-1`` and the 1-sigma
uncertainty of parameter i is ``sqrt(C_ii)``. For a linear model ``r = W^(1/2) (X x - y)`` this is the
textbook ``s^2 (X^T W X)^-1``. The pseudo-inverse is used, so an unidentifiable combination of
parameters shows up as a tiny singular value, not as a crash. Caveat for model-vs-model fits: the
misfit is systematic (the smaller model cannot follow the larger one), not random noise, so these
sigmas measure how tightly the data pin the parameters *given* that misfit, not an error bar in a
statistical sense.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

__all__ = [
    "Curvature",
    "LeastSquaresResult",
    "gauss_newton_curvature",
    "jacobian",
    "levenberg_marquardt",
    "markdown_table",
    "parameter_table",
    "residual_statistics",
    "residual_table",
    "value_with_uncertainty",
    "weighted_residual_vector",
]

DTYPE = torch.float64
ResidualFn = Callable[[torch.Tensor], torch.Tensor]
JacobianFn = Callable[[torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------- residual vectors


def weighted_residual_vector(residuals: Mapping[str, torch.Tensor],
                             weights: Mapping[str, float | torch.Tensor]) -> torch.Tensor:
    """``sqrt(w_g) * r_g`` flattened and concatenated over the groups of ``weights``, in its order.

    ``residuals[g]``: a tensor of any shape (a scalar is one residual); ``weights[g]``: a float or a
    tensor broadcastable to it (per-element weights), >= 0. Groups of ``residuals`` missing from
    ``weights`` are an error (a silently dropped target is a silent change of the fit).
    """
    extra = sorted(set(residuals) - set(weights))
    if extra:
        raise KeyError(f"residual groups {extra} have no weight; weights given for {list(weights)}")
    parts = []
    for group, w in weights.items():
        if group not in residuals:
            raise KeyError(f"no residuals for weighted group {group!r}; residual groups: {sorted(residuals)}")
        r = torch.as_tensor(residuals[group], dtype=DTYPE)
        if isinstance(w, torch.Tensor):
            if (w < 0).any():
                raise ValueError(f"group {group!r}: weights must be >= 0")
            parts.append((torch.sqrt(w.to(DTYPE)) * r).reshape(-1))
        else:
            if w < 0:
                raise ValueError(f"group {group!r}: weight must be >= 0; got {w}")
            parts.append((math.sqrt(w) * r).reshape(-1))  # math.sqrt: correctly rounded, reproducible
    return torch.cat(parts)


def jacobian(residual_fn: ResidualFn, x: torch.Tensor) -> torch.Tensor:
    """``dr/dx`` of shape ``(n, p)`` at ``x`` (p,), by reverse mode (one backward pass per residual;
    ``torch.autograd.functional.jacobian``). Grad mode is switched on here: callers may sit in
    ``no_grad`` or ``inference_mode``."""
    x = torch.as_tensor(x, dtype=DTYPE).detach()
    with torch.inference_mode(False), torch.enable_grad():
        jac = torch.autograd.functional.jacobian(residual_fn, x)
    return jac.reshape(-1, x.numel()).detach()


def _checked_jacobian(jacobian_fn: JacobianFn, x: torch.Tensor, n: int) -> torch.Tensor:
    jac = torch.as_tensor(jacobian_fn(x), dtype=DTYPE).detach()
    if jac.shape != (n, x.numel()):
        raise ValueError(f"jacobian_fn returned shape {tuple(jac.shape)}; expected ({n}, {x.numel()})")
    return jac


# --------------------------------------------------------------------------- curvature and uncertainties


@dataclasses.dataclass(frozen=True)
class Curvature:
    """The Gauss-Newton picture of a weighted least-squares loss at one point (module docstring).

    ``x`` (p,): the point; ``residuals`` (n,): weighted residuals there; ``jacobian`` (n, p);
    ``loss = sum residuals^2``; ``dof = max(n - p, 1)``; ``residual_variance = loss / dof`` (the
    ``s^2`` of the covariance, or 1 when unscaled); ``covariance`` (p, p) ``= s^2 (J^T J)^+``.
    Units: those of ``x`` (sigma) and its squares (covariance).
    """

    names: tuple[str, ...]
    x: torch.Tensor
    residuals: torch.Tensor
    jacobian: torch.Tensor
    loss: float
    dof: int
    residual_variance: float
    covariance: torch.Tensor

    @property
    def sigma(self) -> torch.Tensor:
        """1-sigma uncertainties ``sqrt(diag C)`` (p,); round-off negatives clamp to 0."""
        return self.covariance.diagonal().clamp(min=0).sqrt()

    @property
    def correlation(self) -> torch.Tensor:
        """``C_ij / (sigma_i sigma_j)`` (p, p); 0 where a sigma is 0."""
        s = self.sigma
        denom = s[:, None] * s[None, :]
        return torch.where(denom > 0, self.covariance / torch.where(denom > 0, denom, 1.0), 0.0)

    @property
    def singular_values(self) -> torch.Tensor:
        """Singular values of the Jacobian, descending: a near-zero one is an unidentifiable combination."""
        return torch.linalg.svdvals(self.jacobian)

    def parameters(self) -> dict[str, float]:
        return dict(zip(self.names, self.x.tolist()))

    def sigmas(self) -> dict[str, float]:
        return dict(zip(self.names, self.sigma.tolist()))


def gauss_newton_curvature(residual_fn: ResidualFn, x: torch.Tensor, names: Sequence[str] | None = None,
                           *, scale_by_residual_variance: bool = True,
                           jacobian_fn: JacobianFn | None = None) -> Curvature:
    """Loss, Jacobian and parameter covariance of ``L = sum residual_fn(x)^2`` at ``x`` (p,).

    ``scale_by_residual_variance=False`` gives ``(J^T J)^+`` itself: the right covariance when the
    weights are already ``1 / variance`` of known, independent errors. ``jacobian_fn(x) -> (n, p)``:
    an analytic Jacobian to use instead of autograd's (``jacobian``).
    """
    x = torch.as_tensor(x, dtype=DTYPE).detach()
    names = tuple(names) if names is not None else tuple(f"x[{i}]" for i in range(x.numel()))
    if len(names) != x.numel():
        raise ValueError(f"{len(names)} names for {x.numel()} parameters")
    with torch.no_grad():
        rw = torch.as_tensor(residual_fn(x), dtype=DTYPE).detach().reshape(-1)
    jac = jacobian(residual_fn, x) if jacobian_fn is None else _checked_jacobian(jacobian_fn, x, len(rw))
    loss = float((rw**2).sum())
    dof = max(len(rw) - x.numel(), 1)
    s2 = loss / dof if scale_by_residual_variance else 1.0
    cov = s2 * torch.linalg.pinv(jac.T @ jac)
    return Curvature(names, x, rw, jac, loss, dof, s2, cov)


# --------------------------------------------------------------------------- a small solver


@dataclasses.dataclass(frozen=True)
class LeastSquaresResult:
    """Outcome of ``levenberg_marquardt``: ``x`` (p,), ``loss = sum r^2`` there, iterations (Jacobians
    computed), residual evaluations, whether a stopping test was met, and which."""

    x: torch.Tensor
    loss: float
    iterations: int
    evaluations: int
    converged: bool
    message: str


def levenberg_marquardt(residual_fn: ResidualFn, x0: torch.Tensor, *, lower: torch.Tensor | None = None,
                        upper: torch.Tensor | None = None, max_iter: int = 100, xtol: float = 1e-13,
                        ftol: float = 0.0, damping: float = 1e-3,
                        jacobian_fn: JacobianFn | None = None) -> LeastSquaresResult:
    """Minimise ``sum residual_fn(x)^2`` from ``x0`` by Levenberg-Marquardt, projected onto ``[lower, upper]``.

    Marquardt's scaling (the damping term is ``lam diag(J^T J)``) makes the steps independent of the
    parameters' units, which differ by orders of magnitude in physical fits (eV vs dimensionless).
    A trial step is accepted when it lowers the loss; ``lam`` then shrinks by 3, otherwise it grows by 4.
    Coordinates on a bound whose gradient points outwards are held there for the step (active set).
    Stops when an accepted step moves every coordinate by less than ``xtol (|x_i| + xtol)``, when it
    lowers the loss by less than ``ftol * loss`` (off by default: where an irreducible misfit dominates
    the loss, a relative-decrease test stops while the parameters are still moving at the 1e-7 level),
    or when ``lam`` passes 1e16 (no descent left at round-off level: also reported as converged).
    Near a zero-residual solution the steps are Gauss-Newton steps, so convergence is quadratic:
    recovering known parameters to ~1e-10 is routine. ``jacobian_fn(x) -> (n, p)``: an analytic
    Jacobian instead of autograd's (``jacobian``: one backward pass per residual).
    """
    x = torch.as_tensor(x0, dtype=DTYPE).detach().clone()
    lo = None if lower is None else torch.as_tensor(lower, dtype=DTYPE)
    hi = None if upper is None else torch.as_tensor(upper, dtype=DTYPE)

    def project(v: torch.Tensor) -> torch.Tensor:
        if lo is not None:
            v = torch.maximum(v, lo)
        if hi is not None:
            v = torch.minimum(v, hi)
        return v

    def value(v: torch.Tensor) -> tuple[torch.Tensor, float]:
        with torch.no_grad():
            r = torch.as_tensor(residual_fn(v), dtype=DTYPE).reshape(-1)
        return r, float((r**2).sum())

    x = project(x)
    r, loss = value(x)
    evaluations, lam = 1, None
    for iteration in range(1, max_iter + 1):
        jac = jacobian(residual_fn, x) if jacobian_fn is None else _checked_jacobian(jacobian_fn, x, len(r))
        g = jac.T @ r  # half the loss gradient
        # active set: coordinates on a bound that the gradient pushes outwards stay there this step
        # (a clipped full step would otherwise creep along the bound without ever converging)
        free = torch.ones_like(x, dtype=torch.bool)
        if lo is not None:
            free &= ~((x <= lo) & (g > 0))
        if hi is not None:
            free &= ~((x >= hi) & (g < 0))
        if not bool(free.any()):
            return LeastSquaresResult(x, loss, iteration, evaluations, True, "every coordinate held by a bound")
        jf = jac[:, free]
        a, gf = jf.T @ jf, g[free]
        diag = a.diagonal().clamp(min=1e-12 * float(a.diagonal().max().clamp(min=1e-300)))
        lam = damping if lam is None else lam
        while True:
            step = torch.zeros_like(x)
            step[free] = torch.linalg.solve(a + lam * torch.diag(diag), -gf)
            trial = project(x + step)
            r_trial, loss_trial = value(trial)
            evaluations += 1
            if math.isfinite(loss_trial) and loss_trial < loss:
                break
            lam *= 4.0
            if lam > 1e16:
                return LeastSquaresResult(x, loss, iteration, evaluations, True, "no descent at round-off level")
        moved = (trial - x).abs()
        decrease = loss - loss_trial
        x, r, loss, lam = trial, r_trial, loss_trial, lam / 3.0
        if bool((moved <= xtol * (x.abs() + xtol)).all()):
            return LeastSquaresResult(x, loss, iteration, evaluations, True, "step below xtol")
        if decrease <= ftol * loss_trial or loss == 0.0:
            return LeastSquaresResult(x, loss, iteration, evaluations, True, "loss decrease below ftol")
    return LeastSquaresResult(x, loss, max_iter, evaluations, False, "max_iter reached")


# --------------------------------------------------------------------------- tables


def residual_statistics(groups: Mapping[str, torch.Tensor], scale: float = 1.0) -> dict[str, dict[str, float]]:
    """Per group of (unweighted) residuals: ``n``, ``rms``, ``max_abs``, ``mean``, each times ``scale``
    (e.g. 1000 for eV -> meV). Empty groups give NaN statistics and ``n = 0``."""
    out = {}
    for name, r in groups.items():
        r = torch.as_tensor(r, dtype=DTYPE).detach().reshape(-1) * scale
        if r.numel() == 0:
            out[name] = {"n": 0, "rms": math.nan, "max_abs": math.nan, "mean": math.nan}
            continue
        out[name] = {"n": int(r.numel()), "rms": float(r.pow(2).mean().sqrt()), "max_abs": float(r.abs().max()),
                     "mean": float(r.mean())}
    return out


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table (cells converted with ``str``; a ``|`` inside a cell is escaped)."""
    def line(cells: Sequence[Any]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    lines = [line(header), "|" + "---|" * len(header)]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row {row!r} has {len(row)} cells for {len(header)} columns")
        lines.append(line(row))
    return "\n".join(lines) + "\n"


def value_with_uncertainty(value: float, sigma: float, digits: int = 2) -> str:
    """``"-2.9712 ± 0.0034"``: the value rounded where its uncertainty's ``digits`` significant digits end."""
    if not (math.isfinite(sigma) and sigma > 0):
        return f"{value:.6g} ± {sigma:.2g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(sigma)))
    return f"{value:.{decimals}f} ± {sigma:.{decimals}f}"


def parameter_table(values: Mapping[str, float], sigmas: Mapping[str, float], units: Mapping[str, str] | None = None,
                    columns: Mapping[str, Mapping[str, float]] | None = None) -> str:
    """Markdown: parameter, unit, value ± 1 sigma, relative sigma, then one column per entry of
    ``columns`` (e.g. ``{"start": {...}, "published": {...}}``; '-' where a parameter is absent).
    ``values``, ``sigmas``: as ``Curvature.parameters()``, ``Curvature.sigmas()``."""
    units, columns = units or {}, columns or {}
    rows = []
    for name, v in values.items():
        s = sigmas[name]
        rel = f"{s / abs(v):.2g}" if v != 0 else "-"
        extra = [f"{c[name]:.6g}" if name in c else "-" for c in columns.values()]
        rows.append([name, units.get(name, ""), value_with_uncertainty(v, s), rel, *extra])
    return markdown_table(["parameter", "unit", "value ± 1σ", "relative σ", *columns], rows)


def residual_table(stats: Mapping[str, Mapping[str, float]], unit: str = "") -> str:
    """Markdown of ``residual_statistics`` output: group, n, RMS, max |r|, mean (signed)."""
    u = f" ({unit})" if unit else ""
    rows = [[name, s["n"], f"{s['rms']:.4g}", f"{s['max_abs']:.4g}", f"{s['mean']:+.4g}"] for name, s in stats.items()]
    return markdown_table(["group", "n", f"RMS{u}", f"max abs{u}", f"mean{u}"], rows)
