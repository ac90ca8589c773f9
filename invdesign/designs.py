"""Designs as files: a parameter space as JSON, and a point as named physical values with units.

- ``space_to_dict`` / ``space_from_dict``: a ``ParameterSpace`` as plain JSON data (blocks with shape,
  bounds, transform, init, frozen mask and basis), so that readers without the problem (the report)
  can map stored optimizer coordinates to physical values. Only the library's transforms and bases
  serialise; ``space_to_dict`` raises ``ValueError`` for custom ones.
- ``design_dict`` / ``write_design``: ``{"format", "problem", "parameters": {name: {"value", "unit"}}, ...}``
  with every block's physical value (nested lists of the block's shape).
- ``load_design(problem, path)``: optimizer coordinates ``(dim,)`` of a design file for ``problem``
  (names and shapes checked); ``evaluate_design`` re-evaluates it.

Units come from the problem's optional ``parameter_units`` dict (block name -> unit string, e.g.
``{"onsite": "eV"}``); blocks without one are written with unit ``""``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from invdesign.params import Block, ParameterSpace
from invdesign.transforms import TRANSFORMS, BSplineBasis, GaussianBumps

DESIGN_FORMAT = "invdesign-design/1"


def _enc(t: torch.Tensor) -> Any:
    """Nested lists; non-finite floats as the strings ``"inf"``, ``"-inf"``, ``"nan"`` (strict JSON)."""
    flat = [v if math.isfinite(v) else str(v) for v in t.reshape(-1).tolist()]
    if t.ndim == 0:
        return flat[0]
    out: Any = flat
    for size in reversed(t.shape[1:]):
        out = [out[i:i + size] for i in range(0, len(out), size)]
    return out


def _dec(v: Any) -> torch.Tensor:
    def conv(x):
        return [conv(y) for y in x] if isinstance(x, list) else float(x)
    return torch.as_tensor(conv(v), dtype=torch.float64)


def _compact(t: torch.Tensor) -> Any:
    """A scalar where every entry is equal (blocks broadcast it back), else the nested lists."""
    flat = t.reshape(-1)
    if flat.numel() and bool((flat == flat[0]).all()) or (t.dtype != torch.bool and bool(torch.isnan(flat).all())):
        return _enc(flat[0]) if t.dtype != torch.bool else bool(flat[0])
    return _enc(t) if t.dtype != torch.bool else t.tolist()


def _basis_dict(basis) -> dict[str, Any] | None:
    if basis is None:
        return None
    if type(basis) is BSplineBasis:
        return {"type": "bspline", "n_coeffs": basis.n_coeffs, "n_points": basis.n_points, "degree": basis.degree}
    if type(basis) is GaussianBumps:
        return {"type": "gaussian", "n_bumps": basis.n_coeffs, "n_points": basis.n_points, "width": basis.width}
    raise ValueError(f"basis {type(basis).__name__} cannot be written as JSON")


def _basis(d: dict[str, Any] | None):
    if d is None:
        return None
    if d["type"] == "bspline":
        return BSplineBasis(d["n_coeffs"], d["n_points"], d["degree"])
    if d["type"] == "gaussian":
        return GaussianBumps(d["n_bumps"], d["n_points"], d["width"])
    raise ValueError(f"unknown basis type {d['type']!r}")


def space_to_dict(space: ParameterSpace) -> dict[str, Any]:
    """JSON data that ``space_from_dict`` turns back into an equivalent space (ValueError if it cannot)."""
    blocks = []
    for b in space.blocks:
        if type(b.transform) is not type(TRANSFORMS.get(b.transform.name)):
            raise ValueError(f"block '{b.name}': transform {type(b.transform).__name__} cannot be written as JSON")
        blocks.append({"name": b.name, "shape": list(b.shape), "transform": b.transform.name,
                       "lower": _compact(b.lower), "upper": _compact(b.upper), "init": _compact(b.init),
                       "frozen": _compact(b.frozen), "basis": _basis_dict(b.basis)})
    return {"blocks": blocks}


def space_from_dict(d: Mapping[str, Any]) -> ParameterSpace:
    return ParameterSpace([
        Block(b["name"], tuple(b["shape"]), _dec(b["lower"]), _dec(b["upper"]), b["transform"], _dec(b["init"]),
              np.asarray(b["frozen"], dtype=bool), _basis(b["basis"]))
        for b in d["blocks"]])


def try_space_dict(problem: Any) -> dict[str, Any] | None:
    """``space_to_dict(problem.space)``, or None where the space has custom parts (or no space)."""
    try:
        return space_to_dict(problem.space)
    except (AttributeError, ValueError):
        return None


def physical_values(space: ParameterSpace, z) -> dict[str, torch.Tensor]:
    """Physical values of every block at optimizer coordinates ``z`` (dim,), detached."""
    with torch.no_grad():
        return {k: v.detach() for k, v in space.to_params(torch.as_tensor(z, dtype=torch.float64)).items()}


def design_dict(space: ParameterSpace, z, units: Mapping[str, str] | None = None, problem: str = "",
                **meta: Any) -> dict[str, Any]:
    """The design file's content for point ``z`` (optimizer coordinates, (dim,))."""
    units = units or {}
    params = physical_values(space, z)
    return {"format": DESIGN_FORMAT, "problem": problem,
            "parameters": {k: {"value": _enc(v), "unit": units.get(k, ""), "shape": list(v.shape)}
                           for k, v in params.items()},
            **meta}


def write_design(path: str | os.PathLike, problem: Any, z, **meta: Any) -> Path:
    """Write ``problem``'s design at ``z`` as JSON (``meta``: e.g. value, run, feasible)."""
    d = design_dict(problem.space, z, getattr(problem, "parameter_units", None), getattr(problem, "name", ""), **meta)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(d, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return path


def load_design(problem: Any, path: str | os.PathLike) -> torch.Tensor:
    """Optimizer coordinates (dim,) of the design in ``path`` for ``problem`` (blocks and units checked)."""
    d = json.loads(Path(path).read_text(encoding="utf-8"))
    if d.get("format") != DESIGN_FORMAT:
        raise ValueError(f"{path}: not an invdesign design file (format {d.get('format')!r}, expected {DESIGN_FORMAT!r})")
    names = [b.name for b in problem.space.blocks]
    given = d.get("parameters", {})
    if sorted(given) != sorted(names):
        raise ValueError(f"{path}: design has parameters {sorted(given)}, the problem {sorted(names)}")
    units = getattr(problem, "parameter_units", None) or {}
    for name in names:
        if given[name].get("unit", "") != units.get(name, ""):
            raise ValueError(f"{path}: parameter {name!r} is in {given[name].get('unit')!r}, the problem expects "
                             f"{units.get(name, '')!r}")
    return problem.space.from_params({k: _dec(v["value"]) for k, v in given.items()})


def evaluate_design(problem: Any, path: str | os.PathLike, need_grad: bool = False):
    """``problem.evaluate_one`` at the design in ``path`` (an ``Evaluation``)."""
    return problem.evaluate_one(load_design(problem, path), need_grad)
