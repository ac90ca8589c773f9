"""Energy-grid validation and the complex working dtype (conventions: ``invdesign.negf``)."""

from __future__ import annotations

import math

import numpy as np
import torch

from invdesign.negf.errors import NEGFInputError

WORKING_DTYPES = (torch.complex128, torch.complex64)
SINGLE_PRECISION = (torch.float16, torch.bfloat16, torch.float32, torch.complex32, torch.complex64)


def precision_error(name: str, given: torch.dtype, dtype: torch.dtype) -> str | None:
    """Why a ``given``-typed input cannot feed a ``dtype`` computation without losing digits, or None.

    The engine is exact to ~1e-14 in complex128; a float32 input carries 7 digits (1.05 eV is stored
    as 1.0499999523 eV), so it is refused unless single precision was asked for.
    """
    if dtype == torch.complex128 and given in SINGLE_PRECISION:
        return (f"{name} is {given} (about 7 significant digits) but the computation runs in complex128: "
                f"give float64/complex128 values (e.g. torch.tensor(..., dtype=torch.float64)), or ask for "
                f"single precision with dtype=torch.complex64")
    return None


def check_dtype(dtype: torch.dtype) -> torch.dtype:
    if dtype not in WORKING_DTYPES:
        raise NEGFInputError(f"dtype must be torch.complex128 (default) or torch.complex64; got {dtype}")
    return dtype


def as_energies(energies, dtype: torch.dtype = torch.complex128, device=None) -> tuple[torch.Tensor, bool]:
    """Validate energies (eV) and return ``(z, scalar)`` with ``z`` a 1-D complex tensor.

    Accepts a number, a sequence, a 1-D numpy array or a 1-D tensor (real, or complex with Im >= 0
    for contour integration). Autograd through a real tensor of energies is kept.
    ``scalar`` says the input was a single number, so outputs drop the energy dimension.
    """
    check_dtype(dtype)
    if isinstance(energies, torch.Tensor):
        e = energies
    else:
        arr = np.asarray(energies)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)):
            raise NEGFInputError(f"energies must be numbers (eV); got {type(energies).__name__} of {arr.dtype}")
        e = torch.as_tensor(arr)
    if e.ndim > 1:
        raise NEGFInputError(
            f"energies must be a number or a 1-D grid (eV); got shape {tuple(e.shape)}. "
            "Batch over parameter sets through the Hamiltonian's leading dimensions instead."
        )
    if not (e.is_floating_point() or e.is_complex()):
        e = e.to(torch.float64)
    scalar = e.ndim == 0
    e = e.reshape(-1)
    if e.numel() == 0:
        raise NEGFInputError("energies is empty")
    if not torch.isfinite(e.detach()).all():
        raise NEGFInputError("energies contain NaN or infinite values")
    if e.is_complex() and (e.detach().imag < 0).any():
        raise NEGFInputError("complex energies must have Im(E) >= 0 (retarded Green's functions)")
    why = precision_error("energies", e.dtype, dtype)
    if why:
        raise NEGFInputError(why + " (float32 energies shift E by up to 1e-7 relative)")
    return e.to(dtype=dtype, device=device), scalar


def broadened_energies(energies, eta: float, dtype: torch.dtype = torch.complex128, device=None):
    """:func:`as_energies` plus an optional broadening ``E + i eta`` (eta >= 0, eV)."""
    if not math.isfinite(eta) or eta < 0:
        raise NEGFInputError(f"eta must be a finite number >= 0 (eV); got {eta}")
    z, scalar = as_energies(energies, dtype, device)
    return (z + 1j * eta if eta else z), scalar


def edge_panel_grid(lo, hi, breakpoints, nodes: int, max_panel_ev: float,
                    min_panels: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and weights on ``[lo, hi]`` (eV) for integrands with ``1/sqrt`` or ``sqrt`` behaviour at the
    ``breakpoints`` (lead band edges: van Hove singularities of the spectral function).

    Each segment ``[a, b]`` between consecutive breakpoints is mapped by ``E = c - h cos(theta)``
    (``c, h`` its centre and half-width, ``theta`` in ``[0, pi]``), whose Jacobian ``h sin(theta)``
    vanishes like ``sqrt`` at both ends, so ``(E - a)^(+-1/2)`` times a smooth function becomes smooth in
    ``theta``; ``theta`` is split into ``max(min_panels, ceil((b - a) / max_panel_ev))`` equal panels
    of ``nodes`` Gauss-Legendre points. Errors fall exponentially with ``nodes`` instead of as a low
    power of the node spacing. ``lo``, ``hi`` and the breakpoints may be tensors: nodes and weights
    then follow them differentiably (a node stays at the same place relative to a moving band edge).
    Returns ``(E, w)``, both ``(n,)`` float64.
    """
    if nodes < 1 or not max_panel_ev > 0 or min_panels < 1:
        raise NEGFInputError(f"edge_panel_grid needs nodes >= 1, max_panel_ev > 0 and min_panels >= 1; got "
                             f"{nodes}, {max_panel_ev}, {min_panels}")
    lo = torch.as_tensor(lo, dtype=torch.float64)
    hi = torch.as_tensor(hi, dtype=torch.float64)
    f_lo, f_hi = float(lo.detach()), float(hi.detach())
    if not f_hi > f_lo:
        raise NEGFInputError(f"edge_panel_grid needs lo < hi; got [{f_lo}, {f_hi}] eV")
    inside: dict[float, torch.Tensor] = {}
    for b in breakpoints:
        fb = float(b.detach()) if isinstance(b, torch.Tensor) else float(b)
        if f_lo < fb < f_hi:
            inside.setdefault(fb, torch.as_tensor(b, dtype=torch.float64))
    bounds = [lo, *(inside[k] for k in sorted(inside)), hi]
    x, w = (torch.as_tensor(v, dtype=torch.float64) for v in np.polynomial.legendre.leggauss(nodes))
    energies, weights = [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        m = max(min_panels, math.ceil(float((b - a).detach()) / max_panel_ev))
        t = torch.arange(m + 1, dtype=torch.float64) * (math.pi / m)
        theta = (0.5 * (t[1:, None] + t[:-1, None]) + 0.5 * (math.pi / m) * x).reshape(-1)
        w_theta = (0.5 * (math.pi / m) * w).repeat(m)
        c, h = 0.5 * (a + b), 0.5 * (b - a)
        energies.append(c - h * torch.cos(theta))
        weights.append(h * torch.sin(theta) * w_theta)
    return torch.cat(energies), torch.cat(weights)
